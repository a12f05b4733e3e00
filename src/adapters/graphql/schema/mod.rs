//! The GraphQL schema: types, resolvers, loaders and guards over the core. No web framework
//! here; `super` mounts it on HTTP and WebSocket.

mod audit;
mod guard;
pub mod loader;
mod mutation;
mod query;
mod shape;
mod subscription;
mod types;

use async_graphql::{Context, Schema};

pub use guard::{COMPLEXITY_PER_UNIT, count_aliases, parse, root_fields, vet};
pub use loader::{Batches, post_batches, user_batches};
pub use mutation::Mutation;
pub use query::Query;
pub use subscription::Subscription;

use crate::adapters::Shared;
use crate::domain::policy::Actor;
use crate::platform::admission::Admitted;

pub type AppSchema = Schema<Query, Mutation, Subscription>;

/// The caller of one request or one subscription connection.
#[derive(Debug, Clone)]
pub struct Caller {
    pub actor: Actor,
    /// The caller as the last revalidation found it (its role may change during a long-lived
    /// connection): what subscriptions authorize each delivery with.
    pub current: std::sync::Arc<std::sync::RwLock<Actor>>,
    pub admitted: Admitted,
    /// The request's `Idempotency-Key`, for its one mutation.
    pub idempotency_key: Option<String>,
    /// Units admission already charged that the first operation need not pay again.
    prepaid: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Set when the request's mutation replayed a kept outcome.
    replayed: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Caller {
    /// A caller whose admission paid `prepaid` units (HTTP: the request; WebSocket: none, its
    /// `connection_init` was an operation of its own).
    pub fn new(admitted: Admitted, idempotency_key: Option<String>, prepaid: u64) -> Self {
        Self {
            actor: admitted.auth.actor.clone(),
            current: std::sync::Arc::new(std::sync::RwLock::new(admitted.auth.actor.clone())),
            admitted,
            idempotency_key,
            prepaid: std::sync::Arc::new(prepaid.into()),
            replayed: Default::default(),
        }
    }

    pub fn mark_replayed(&self) {
        self.replayed.store(true, std::sync::atomic::Ordering::Release);
    }

    pub fn was_replayed(&self) -> bool {
        self.replayed.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The caller now (see `current`).
    pub fn current_actor(&self) -> Actor {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn take_prepaid(&self) -> u64 {
        self.prepaid.swap(0, std::sync::atomic::Ordering::AcqRel)
    }
}

/// Who may introspect the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Introspection {
    On,
    Off,
    /// Only authenticated callers.
    Authenticated,
}

/// GraphQL knobs (limits, introspection, GraphiQL, suggestions).
#[derive(Debug, Clone, Copy)]
pub struct GraphqlSettings {
    pub max_depth: usize,
    pub max_complexity: usize,
    pub max_aliases: usize,
    /// Fields and inline fragments after fragment expansion.
    pub max_selections: u64,
    /// Fragment spreads after fragment expansion.
    pub max_spreads: u64,
    /// 0 turns batching off.
    pub max_batch: usize,
    pub introspection: Introspection,
    pub playground: bool,
    pub suggestions: bool,
}

impl Default for GraphqlSettings {
    fn default() -> Self {
        Self {
            max_depth: 16,
            max_complexity: 5000,
            max_aliases: 30,
            max_selections: 2000,
            max_spreads: 200,
            max_batch: 10,
            introspection: Introspection::On,
            playground: true,
            suggestions: true,
        }
    }
}

pub(super) fn shared<'a>(ctx: &Context<'a>) -> &'a Shared {
    ctx.data_unchecked::<Shared>()
}

/// The served schema, with limits and guards.
pub fn build(shared: Shared, settings: &GraphqlSettings, validation: async_graphql::ValidationMode) -> AppSchema {
    let mut builder = Schema::build(Query, Mutation, Subscription)
        .data(shared)
        .validation_mode(validation)
        .limit_depth(settings.max_depth)
        .limit_complexity(settings.max_complexity)
        .limit_recursive_depth(32)
        .limit_directives(16)
        .extension(guard::Guard { max_aliases: settings.max_aliases });
    if !settings.suggestions {
        builder = builder.disable_suggestions();
    }
    builder.finish()
}

/// The SDL of the schema (committed at `schema/schema.graphql`).
pub fn sdl() -> String {
    Schema::build(Query, Mutation, Subscription).finish().sdl()
}
