//! The GraphQL adapter: `POST|GET /graphql` (GraphiQL for browsers) and subscriptions at
//! `/graphql/ws` over `graphql-transport-ws` and the legacy `graphql-ws`, and the SDL at
//! `/graphql/schema.graphql` (where introspection is allowed), GraphiQL's vendored assets. The schema lives in
//! `schema/` without any web framework; this module mounts it on axum.

pub mod error;
mod graphiql;
mod http;
pub mod schema;
mod ws;

use async_graphql::ValidationMode;
use axum::Router;
use axum::routing::get;

pub use schema::{GraphqlSettings, Introspection, post_batches, sdl, user_batches};

use crate::adapters::Shared;

/// State of the GraphQL routes: the platform and the built schema.
#[derive(Clone)]
struct State {
    shared: Shared,
    schema: schema::AppSchema,
    /// The same schema for documents that already passed full validation (see
    /// `http::DocumentCache`).
    revalidating: schema::AppSchema,
    sdl: std::sync::Arc<str>,
    documents: std::sync::Arc<http::DocumentCache>,
}

pub fn routes(shared: Shared) -> Router {
    let schema = schema::build(shared.clone(), &shared.graphql, ValidationMode::Strict);
    let revalidating = schema::build(shared.clone(), &shared.graphql, ValidationMode::Fast);
    Router::new()
        .route("/graphql", get(http::get).post(http::post))
        .route("/graphql/ws", get(ws::upgrade))
        .route("/graphql/schema.graphql", get(http::sdl))
        .route("/graphql/assets/{name}", get(graphiql::asset))
        .with_state(State { shared, sdl: schema.sdl().into(), schema, revalidating, documents: Default::default() })
}
