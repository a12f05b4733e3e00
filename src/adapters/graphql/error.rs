//! The one mapping of domain errors to GraphQL errors: `extensions.code` (the contract's code),
//! `requestId`, `details` and `retryAfter`. Each error is recorded for the request's one log
//! line; internal causes are never sent.

use async_graphql::{Error, ErrorExtensionValues, Value};

use crate::domain::error::{DomainError, ErrorCode};
use crate::platform::request_id;

/// A domain error as a GraphQL error.
pub fn to_graphql(e: DomainError) -> Error {
    request_id::record(&e);
    let mut ext = ErrorExtensionValues::default();
    fill(&mut ext, &e);
    Error { message: e.message, source: None, extensions: Some(ext) }
}

/// Writes the contract's fields into `ext`.
pub fn fill(ext: &mut ErrorExtensionValues, e: &DomainError) {
    ext.set("code", e.code.as_str());
    ext.set("requestId", request_id::current());
    let details: Vec<Value> = e
        .details
        .iter()
        .map(|d| {
            let mut m = async_graphql::indexmap::IndexMap::new();
            m.insert(async_graphql::Name::new("field"), Value::from(d.field.as_str()));
            m.insert(async_graphql::Name::new("issue"), Value::from(d.issue.as_str()));
            Value::Object(m)
        })
        .collect();
    ext.set("details", Value::List(details));
    if let Some(secs) = e.retry_after {
        ext.set("retryAfter", secs);
    }
}

/// A server error (request-level) for a domain error.
pub fn server_error(e: DomainError) -> async_graphql::ServerError {
    request_id::record(&e);
    let mut ext = ErrorExtensionValues::default();
    fill(&mut ext, &e);
    let mut err = async_graphql::ServerError::new(e.message, None);
    err.extensions = Some(ext);
    err
}

/// The code an error carries, if any.
pub fn code_of(e: &async_graphql::ServerError) -> Option<ErrorCode> {
    match e.extensions.as_ref()?.get("code")? {
        Value::String(s) => ErrorCode::parse(s),
        _ => None,
    }
}

/// Gives errors the engine raised itself (parse, validation, limits) the contract's shape:
/// INVALID_REQUEST with the request id.
pub fn normalize(errors: &mut [async_graphql::ServerError]) {
    for e in errors {
        if code_of(e).is_none() {
            request_id::record(&DomainError::invalid(e.message.clone()));
            let ext = e.extensions.get_or_insert_with(ErrorExtensionValues::default);
            ext.set("code", ErrorCode::InvalidRequest.as_str());
            ext.set("requestId", request_id::current());
            ext.set("details", Value::List(vec![]));
        }
    }
}

/// `.gql()?` converts a domain result. (A bare `?` would use async-graphql's Display
/// conversion, which would lose the code and could leak an internal cause.)
pub trait GqlResult<T> {
    fn gql(self) -> async_graphql::Result<T>;
}

impl<T> GqlResult<T> for Result<T, DomainError> {
    fn gql(self) -> async_graphql::Result<T> {
        self.map_err(to_graphql)
    }
}

/// Keeps partial data: a failing nullable field becomes null with its error recorded at its
/// path, instead of nulling its parent (the engine propagates resolver errors otherwise).
pub fn or_null<T>(ctx: &async_graphql::Context<'_>, result: async_graphql::Result<Option<T>>) -> Option<T> {
    match result {
        Ok(value) => value,
        Err(e) => {
            ctx.add_error(ctx.set_error_path(e.into_server_error(ctx.item.pos)));
            None
        }
    }
}
