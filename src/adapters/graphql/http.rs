//! GraphQL over HTTP: authentication and rate limit (as REST's gate), body limit, CSRF rules
//! (mutations only over POST with a JSON body), batching cap, idempotency keys, and the
//! GraphQL-over-HTTP status rules for `application/graphql-response+json`.

use async_graphql::parser::types::{ExecutableDocument, OperationType};
use async_graphql::{BatchRequest, BatchResponse, Request as GqlRequest, Response as GqlResponse};
use axum::body::Bytes;
use axum::extract::{Request, State as AxumState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use super::State;
use super::error::{code_of, normalize, server_error};
use super::schema::{Batches, Caller, Introspection, parse, root_fields, vet};
use crate::adapters::http_error::{not_acceptable, status_of, unsupported_media_type};
use crate::adapters::request::{accepts, declares_more_than, header_str, peer_ip};
use crate::domain::error::{DomainError, ErrorCode};
use crate::domain::policy::Actor;
use crate::platform::admission::Admitted;
use crate::platform::ratelimit::Decision;

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";
/// The media types a GraphQL answer comes in.
const PRODUCES: [&str; 2] = [GRAPHQL_RESPONSE, "application/json"];

fn client_ip(req: &Request) -> String {
    peer_ip(req.extensions()).unwrap_or_else(|| "unknown".into())
}

/// Whether the client asked for `application/graphql-response+json` (else legacy JSON).
fn wants_graphql_response(headers: &HeaderMap) -> bool {
    header_str(headers, "accept").is_some_and(|a| a.contains(GRAPHQL_RESPONSE))
}

/// What every response of one request shares: media type and rate-limit headers.
struct Reply {
    modern: bool,
    decision: Option<Decision>,
}

impl Reply {
    fn body(&self, status: StatusCode, body: Vec<u8>) -> Response {
        let mut response = (status, Bytes::from(body)).into_response();
        let ct = if self.modern { GRAPHQL_RESPONSE } else { "application/json" };
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
        if let Some(d) = &self.decision {
            crate::adapters::request::rate_limit_headers(response.headers_mut(), d);
        }
        response
    }

    /// A refusal before execution: one error, the REST status of its code.
    fn refuse(&self, e: DomainError) -> Response {
        let status = status_of(&e);
        self.refuse_with(e, status)
    }

    /// A document refused before execution, like a validation error: legacy
    /// `application/json` answers 200 with the error, `graphql-response+json` a 400.
    fn refuse_document(&self, e: DomainError) -> Response {
        self.refuse_with(e, if self.modern { StatusCode::BAD_REQUEST } else { StatusCode::OK })
    }

    fn refuse_with(&self, e: DomainError, status: StatusCode) -> Response {
        let retry = e.retry_after;
        let unauthenticated = e.code == ErrorCode::Unauthenticated;
        let body = serde_json::to_vec(&serde_json::json!({ "errors": [server_error(e)] })).unwrap_or_default();
        let mut response = self.body(status, body);
        if let Some(secs) = retry {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if unauthenticated {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"polyport\""));
        }
        response
    }
}

/// Admission: one unit for the request (each root field is charged when it executes).
async fn admit(s: &State, headers: &HeaderMap, ip: &str, reply: &mut Reply) -> Result<Admitted, Response> {
    let presented = crate::adapters::request::credentials(headers);
    let verdict = s.shared.admission.admit(presented, ip, 1).await;
    reply.decision = Some(verdict.decision);
    verdict.admitted.map_err(|e| reply.refuse(e))
}

/// `GET /graphql`: GraphiQL for browsers (when enabled), else a query from the query string.
pub async fn get(AxumState(s): AxumState<State>, req: Request) -> Response {
    let headers = req.headers().clone();
    let mut reply = Reply { modern: wants_graphql_response(&headers), decision: None };
    let query = req.uri().query().unwrap_or_default().to_string();
    if query.is_empty() && header_str(&headers, "accept").is_some_and(|a| a.contains("text/html")) {
        if s.shared.graphql.playground {
            return Html(super::graphiql::PAGE).into_response();
        }
        return reply.refuse(DomainError::not_found("GraphiQL"));
    }
    if !accepts(&headers, &PRODUCES) {
        return reply.refuse(not_acceptable(GRAPHQL_RESPONSE));
    }
    let ip = client_ip(&req);
    let admitted = match admit(&s, &headers, &ip, &mut reply).await {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    let request = match async_graphql::http::parse_query_string(&query) {
        Ok(r) => r,
        Err(e) => return reply.refuse(DomainError::invalid(format!("bad query string: {e}"))),
    };
    if mutates(&request) {
        let e = DomainError::invalid("mutations and subscriptions must be sent with POST")
            .with_detail("method", "not_allowed");
        let mut response = reply.refuse(e);
        response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    execute(&s, BatchRequest::Single(request), Caller::new(admitted, None, 1), &reply).await
}

/// True when the document defines a mutation or subscription (refused over GET: CSRF).
fn mutates(request: &GqlRequest) -> bool {
    async_graphql::parser::parse_query(&request.query)
        .is_ok_and(|doc| doc.operations.iter().any(|(_, op)| op.node.ty != OperationType::Query))
}

/// `POST /graphql` with a JSON body (single or batched).
pub async fn post(AxumState(s): AxumState<State>, req: Request) -> Response {
    let headers = req.headers().clone();
    let mut reply = Reply { modern: wants_graphql_response(&headers), decision: None };
    let json = header_str(&headers, "content-type")
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|ct| ct.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return reply.refuse(unsupported_media_type("application/json"));
    }
    if !accepts(&headers, &PRODUCES) {
        return reply.refuse(not_acceptable(GRAPHQL_RESPONSE));
    }
    let ip = client_ip(&req);
    let admitted = match admit(&s, &headers, &ip, &mut reply).await {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    let too_large = declares_more_than(req.headers(), s.shared.limits.body_bytes);
    let read = if too_large {
        Err(())
    } else {
        axum::body::to_bytes(req.into_body(), s.shared.limits.body_bytes).await.map_err(|_| ())
    };
    let Ok(bytes) = read else {
        let e = DomainError::new(ErrorCode::PayloadTooLarge, "the request body is too large");
        return reply.refuse(e);
    };
    let batch = match parse_body(&bytes) {
        Ok(b) => b,
        Err(e) => {
            let e =
                DomainError::invalid(format!("the body is not a GraphQL request: {e}")).with_detail("body", "invalid");
            return reply.refuse(e);
        }
    };
    if !names_a_query(&bytes, matches!(batch, BatchRequest::Batch(_))) {
        let e =
            DomainError::invalid("a GraphQL request names its document in `query`").with_detail("query", "required");
        return reply.refuse(e);
    }
    if let BatchRequest::Batch(items) = &batch {
        let cap = s.shared.graphql.max_batch;
        if items.is_empty() || items.len() > cap {
            let e = DomainError::invalid(format!("a batch holds 1 to {cap} operations"))
                .with_detail("body", if cap == 0 { "batching_disabled" } else { "batch_too_large" });
            return reply.refuse(e);
        }
    }
    let key = header_str(&headers, crate::adapters::request::IDEMPOTENCY_KEY).map(str::to_string);
    if key.is_some() && matches!(batch, BatchRequest::Batch(_)) {
        let e = DomainError::invalid("an Idempotency-Key names one mutation: send it without batching")
            .with_detail("idempotency-key", "one_mutation");
        return reply.refuse(e);
    }
    execute(&s, batch, Caller::new(admitted, key, 1), &reply).await
}

/// The body as one request or a batch (a JSON array), told apart by its first character: the
/// engine's own `BatchRequest` is an untagged enum, which buffers the whole document and then
/// tries each shape in turn. (An empty array is a batch, refused for its size.)
fn parse_body(body: &[u8]) -> Result<BatchRequest, serde_json::Error> {
    if is_array(body) {
        serde_json::from_slice(body).map(BatchRequest::Batch)
    } else {
        serde_json::from_slice(body).map(BatchRequest::Single)
    }
}

fn is_array(body: &[u8]) -> bool {
    body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[')
}

/// True when the body (one request or a batch) gives every request a `query`: without one the
/// parameters are invalid (400), not an empty document.
fn names_a_query(body: &[u8], batch: bool) -> bool {
    #[derive(serde::Deserialize)]
    struct Params {
        query: Option<serde::de::IgnoredAny>,
    }
    if batch {
        serde_json::from_slice::<Vec<Params>>(body).is_ok_and(|ps| ps.iter().all(|p| p.query.is_some()))
    } else {
        serde_json::from_slice::<Params>(body).is_ok_and(|p| p.query.is_some())
    }
}

async fn execute(s: &State, mut batch: BatchRequest, caller: Caller, reply: &Reply) -> Response {
    let validated = match vet_all(s, &mut batch).await {
        Ok(validated) => validated,
        Err(e) => return reply.refuse_document(e),
    };
    if caller.idempotency_key.is_some()
        && let BatchRequest::Single(r) = &mut batch
        && r.parsed_query().is_ok_and(|doc| root_fields(doc) > 1)
    {
        let e = DomainError::invalid("an Idempotency-Key names one mutation: send one root field")
            .with_detail("idempotency-key", "one_mutation");
        return reply.refuse(e);
    }
    let replayed = caller.clone();
    let (status, body) = run(s, batch, caller, reply, validated).await;
    let mut response = reply.body(status, body);
    if replayed.was_replayed() {
        response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

/// Parsed documents by query text: clients send the same few operations over and over, and
/// parsing and validating are the costliest steps of a small query. Bounded; cleared when full.
/// Only documents that passed `vet` are kept; one that has also passed the engine's full
/// validation once (it executed) is marked so, and later requests with it run on the schema
/// that only re-checks what depends on the request (depth, complexity, variables' values at
/// execution).
#[derive(Default)]
pub struct DocumentCache(std::sync::Mutex<std::collections::HashMap<String, Cached>>);

#[derive(Clone)]
struct Cached {
    doc: ExecutableDocument,
    validated: bool,
}

const CACHED_DOCUMENTS: usize = 512;
const CACHED_QUERY_BYTES: usize = 8 * 1024;

impl DocumentCache {
    fn map(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Cached>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Parses (or finds) the request's document and vets its expanded size before the engine
    /// sees it; true when the document already passed the engine's full validation. Long
    /// documents are parsed on the blocking pool, off the request threads.
    async fn vet(
        &self,
        request: &mut GqlRequest,
        limits: &super::schema::GraphqlSettings,
    ) -> Result<bool, DomainError> {
        if request.query.trim().is_empty() {
            return Err(DomainError::invalid(
                "no query: send one as GET /graphql?query=... or POST /graphql {\"query\": ...}",
            )
            .with_detail("query", "missing"));
        }
        let cacheable = request.query.len() <= CACHED_QUERY_BYTES;
        let cached = if cacheable { self.map().get(&request.query).cloned() } else { None };
        if let Some(Cached { doc, validated }) = cached {
            request.set_parsed_query(doc);
            return Ok(validated);
        }
        let doc = if cacheable {
            parse(&request.query)?
        } else {
            let query = request.query.clone();
            tokio::task::spawn_blocking(move || parse(&query)).await.map_err(DomainError::internal)??
        };
        vet(&doc, limits)?;
        if cacheable {
            let mut map = self.map();
            if map.len() >= CACHED_DOCUMENTS {
                map.clear();
            }
            map.insert(request.query.clone(), Cached { doc: doc.clone(), validated: false });
        }
        request.set_parsed_query(doc);
        Ok(false)
    }

    /// Records that `query` passed the engine's full validation.
    fn validated(&self, query: &str) {
        if let Some(cached) = self.map().get_mut(query) {
            cached.validated = true;
        }
    }
}

fn prepare(s: &State, request: GqlRequest, caller: &Caller) -> GqlRequest {
    let introspect = may_introspect(s, &caller.actor);
    let batches = Batches::new(s.shared.clone(), caller.actor.clone());
    let request = request.data(caller.clone()).data(batches);
    if introspect { request } else { request.disable_introspection() }
}

/// Vets every document of the request; one refused document refuses the whole request. True
/// when the request is one document that already passed full validation.
async fn vet_all(s: &State, batch: &mut BatchRequest) -> Result<bool, DomainError> {
    let limits = &s.shared.graphql;
    match batch {
        BatchRequest::Single(r) => s.documents.vet(r, limits).await,
        BatchRequest::Batch(rs) => {
            for r in rs {
                s.documents.vet(r, limits).await?;
            }
            Ok(false)
        }
    }
}

/// Executes; answers the status and the body.
async fn run(s: &State, batch: BatchRequest, caller: Caller, reply: &Reply, validated: bool) -> (StatusCode, Vec<u8>) {
    let mut response = match batch {
        BatchRequest::Single(r) => {
            let query = (!validated).then(|| r.query.clone());
            let engine = if validated { &s.revalidating } else { &s.schema };
            let response = engine.execute(prepare(s, r, &caller)).await;
            if let Some(query) = query
                && response.data != async_graphql::Value::Null
            {
                s.documents.validated(&query);
            }
            BatchResponse::Single(response)
        }
        BatchRequest::Batch(rs) => {
            s.schema.execute_batch(BatchRequest::Batch(rs.into_iter().map(|r| prepare(s, r, &caller)).collect())).await
        }
    };
    let status = match &mut response {
        BatchResponse::Single(r) => {
            normalize(&mut r.errors);
            status_for(r, reply.modern)
        }
        BatchResponse::Batch(rs) => {
            rs.iter_mut().for_each(|r| normalize(&mut r.errors));
            StatusCode::OK
        }
    };
    let body = match &response {
        // A request error under graphql-response+json has no `data` entry at all.
        BatchResponse::Single(r) if status != StatusCode::OK => {
            serde_json::to_vec(&serde_json::json!({ "errors": r.errors })).unwrap_or_default()
        }
        _ => serde_json::to_vec(&response).unwrap_or_default(),
    };
    (status, body)
}

/// GraphQL over HTTP: legacy `application/json` answers 200 to every executed request; with
/// `application/graphql-response+json` a request error (nothing executed) is a 4xx/5xx.
fn status_for(r: &GqlResponse, modern: bool) -> StatusCode {
    let request_error = r.data == async_graphql::Value::Null && r.errors.iter().all(|e| e.path.is_empty());
    if !modern || !request_error || r.errors.is_empty() {
        return StatusCode::OK;
    }
    match r.errors.first().and_then(code_of) {
        Some(code) if code != ErrorCode::InvalidRequest => status_of(&DomainError::new(code, "")),
        _ => StatusCode::BAD_REQUEST,
    }
}

/// `GET /graphql/schema.graphql`: the served SDL, to whoever may introspect.
pub async fn sdl(AxumState(s): AxumState<State>, req: Request) -> Response {
    let headers = req.headers().clone();
    let mut reply = Reply { modern: false, decision: None };
    let ip = client_ip(&req);
    let admitted = match admit(&s, &headers, &ip, &mut reply).await {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    if !may_introspect(&s, admitted.actor()) {
        return reply.refuse(DomainError::not_found("schema"));
    }
    let mut response = s.sdl.to_string().into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

fn may_introspect(s: &State, actor: &Actor) -> bool {
    match s.shared.graphql.introspection {
        Introspection::On => true,
        Introspection::Off => false,
        Introspection::Authenticated => actor.principal().is_some(),
    }
}
