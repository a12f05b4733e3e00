//! Request guards the engine lacks: an alias cap, and the rate limit charged by complexity.

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextValidation};
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, Selection, SelectionSet};
use async_graphql::{ServerError, ServerResult, ValidationResult, Variables};

use super::super::error::server_error;
use super::Caller;
use crate::adapters::Shared;
use crate::domain::error::DomainError;

/// Complexity units per rate-limit unit (the request itself already paid one unit).
pub const COMPLEXITY_PER_UNIT: usize = 100;

pub struct Guard {
    pub max_aliases: usize,
}

impl ExtensionFactory for Guard {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(GuardExtension { max_aliases: self.max_aliases })
    }
}

struct GuardExtension {
    max_aliases: usize,
}

/// The complexity of a connection field: its page size (clamped by the same rule as every
/// list, `PageRequest::new`) times the cost of one item, plus one.
pub fn page_cost(first: Option<i32>, child_complexity: usize) -> usize {
    crate::domain::page::PageRequest::new(first.map(i64::from), None).limit as usize * child_complexity + 1
}

fn aliases(set: &SelectionSet) -> usize {
    set.items
        .iter()
        .map(|s| match &s.node {
            Selection::Field(f) => usize::from(f.node.alias.is_some()) + aliases(&f.node.selection_set.node),
            Selection::InlineFragment(i) => aliases(&i.node.selection_set.node),
            Selection::FragmentSpread(_) => 0,
        })
        .sum()
}

/// Aliases written anywhere in the document (operations and fragments).
pub fn count_aliases(doc: &ExecutableDocument) -> usize {
    let ops: usize = match &doc.operations {
        DocumentOperations::Single(op) => aliases(&op.node.selection_set.node),
        DocumentOperations::Multiple(map) => map.values().map(|op| aliases(&op.node.selection_set.node)).sum(),
    };
    ops + doc.fragments.values().map(|f| aliases(&f.node.selection_set.node)).sum::<usize>()
}

#[async_trait::async_trait]
impl Extension for GuardExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await?;
        if count_aliases(&doc) > self.max_aliases {
            return Err(server_error(
                DomainError::invalid(format!("at most {} aliases per document", self.max_aliases))
                    .with_detail("query", "too_many_aliases"),
            ));
        }
        Ok(doc)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await?;
        let extra = (result.complexity / COMPLEXITY_PER_UNIT) as u64;
        if extra > 0
            && let (Some(shared), Some(caller)) = (ctx.data_opt::<Shared>(), ctx.data_opt::<Caller>())
        {
            let (_, decision) = shared.charge(&caller.actor, &caller.ip, extra);
            if !decision.allowed {
                return Err(vec![server_error(DomainError::rate_limited(decision.reset_secs))]);
            }
        }
        Ok(result)
    }
}
