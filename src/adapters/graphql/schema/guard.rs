//! Request guards the engine lacks: the expanded size of a document (checked before the engine
//! sees it), an alias cap, and the rate limit charged by complexity.

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

#[derive(Clone, Copy)]
pub struct Guard {
    pub max_aliases: usize,
}

impl ExtensionFactory for Guard {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(GuardExtension(*self))
    }
}

struct GuardExtension(Guard);

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

/// The root fields of the document's largest operation, fragments at the root included (their
/// number is bounded by `vet`, which ran first).
pub fn root_fields(doc: &ExecutableDocument) -> u64 {
    fn count(doc: &ExecutableDocument, set: &SelectionSet, depth: usize) -> u64 {
        if depth > 64 {
            return 0;
        }
        set.items
            .iter()
            .map(|s| match &s.node {
                Selection::Field(_) => 1,
                Selection::InlineFragment(i) => count(doc, &i.node.selection_set.node, depth + 1),
                Selection::FragmentSpread(f) => doc
                    .fragments
                    .get(&f.node.fragment_name.node)
                    .map_or(0, |frag| count(doc, &frag.node.selection_set.node, depth + 1)),
            })
            .sum()
    }
    match &doc.operations {
        DocumentOperations::Single(op) => count(doc, &op.node.selection_set.node, 0),
        DocumentOperations::Multiple(map) => {
            map.values().map(|op| count(doc, &op.node.selection_set.node, 0)).max().unwrap_or(0)
        }
    }
}

/// A document refused for its size, before anything is validated or executed.
fn too_big(message: String, issue: &str) -> ServerError {
    server_error(refusal(message, issue))
}

fn refusal(message: String, issue: &str) -> DomainError {
    DomainError::invalid(message).with_detail("query", issue)
}

/// The longest query text accepted: parsing is linear but not free (about 0.7 ms per KiB).
pub const MAX_QUERY_BYTES: usize = 128 * 1024;

/// Parses a query into a document, or a short INVALID_REQUEST naming where it went wrong (the
/// engine's own message quotes the text back with ASCII art).
pub fn parse(query: &str) -> Result<ExecutableDocument, DomainError> {
    use async_graphql::parser::Error;
    if query.len() > MAX_QUERY_BYTES {
        return Err(refusal(format!("the query may be at most {MAX_QUERY_BYTES} bytes"), "too_long"));
    }
    async_graphql::parser::parse_query(query).map_err(|e| match e {
        Error::Syntax { start, .. } => {
            refusal(format!("the query is not valid GraphQL (line {}, column {})", start.line, start.column), "syntax")
        }
        Error::RecursionLimitExceeded => refusal("the query nests too deeply".into(), "too_deep"),
        other => refusal(other.to_string(), "invalid"),
    })
}

/// Refuses a document whose fragments expand beyond the limits. MUST run before the engine
/// sees the document: its recursion-depth check (run before any extension) and its depth and
/// complexity rules walk every spread, which is exponential in a fan-out of fragments.
pub fn vet(doc: &ExecutableDocument, limits: &super::GraphqlSettings) -> Result<(), DomainError> {
    let shape = super::shape::measure(doc);
    if shape.spreads > limits.max_spreads {
        let message = format!("at most {} fragment spreads once fragments are expanded", limits.max_spreads);
        return Err(refusal(message, "too_many_fragment_spreads"));
    }
    if shape.selections > limits.max_selections {
        let message = format!("at most {} fields once fragments are expanded", limits.max_selections);
        return Err(refusal(message, "too_many_selections"));
    }
    Ok(())
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
        // Each root field is an operation of its own, charged before anything else can refuse
        // it (what the request's admission paid is deducted once).
        if let (Some(shared), Some(caller)) = (ctx.data_opt::<Shared>(), ctx.data_opt::<Caller>()) {
            let cost = root_fields(&doc).saturating_sub(caller.take_prepaid());
            if cost > 0
                && let Err(e) = shared.admission.charge(&caller.admitted, cost).await
            {
                return Err(server_error(e));
            }
        }
        let limits = &self.0;
        if count_aliases(&doc) > limits.max_aliases {
            return Err(too_big(format!("at most {} aliases per document", limits.max_aliases), "too_many_aliases"));
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
            if let Err(e) = shared.admission.charge(&caller.admitted, extra).await {
                return Err(vec![server_error(e)]);
            }
        }
        Ok(result)
    }
}
