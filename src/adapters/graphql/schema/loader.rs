//! Batched user lookups: every `author` of a page resolves with one `users.get_many` call.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use async_graphql::dataloader::Loader;

use super::super::error::to_graphql;
use crate::adapters::Shared;
use crate::domain::policy::Actor;
use crate::domain::service::UserView;

static BATCHES: AtomicU64 = AtomicU64::new(0);

/// How many batched user lookups this process has made (observability and the N+1 test).
pub fn user_batches() -> u64 {
    BATCHES.load(Ordering::Relaxed)
}

/// Loads users in the caller's view; one loader per request, so views never leak across callers.
pub struct UserLoader {
    pub shared: Shared,
    pub actor: Actor,
}

impl Loader<String> for UserLoader {
    type Value = UserView;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, UserView>, Self::Error> {
        BATCHES.fetch_add(1, Ordering::Relaxed);
        let users = self.shared.core.users.get_many(&self.actor, keys).await.map_err(to_graphql)?;
        Ok(users.into_iter().map(|u| (u.id().to_string(), u)).collect())
    }
}
