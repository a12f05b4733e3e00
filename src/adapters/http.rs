//! The one HTTP router: every protocol's routes plus the cross-cutting layers (request ids,
//! logs, metrics, CORS, timeouts, body limits, panics), all answering in our error envelope.

use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tracing::Instrument;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use super::Shared;
use super::request::header_str;
use super::rest::error::ApiError;
use super::rest::{openapi, ops};
use crate::domain::error::DomainError;
use crate::platform::metrics::{self, CodeLabels, RequestLabels, RouteLabels};
use crate::platform::request_id;
use crate::platform::trace::TraceContext;

/// The whole HTTP surface. Requests carrying `Origin` (browsers) go through the CORS layer;
/// others skip it, so server-to-server calls don't pay for headers only browsers read.
#[derive(Clone)]
pub struct HttpApp {
    plain: Router,
    browser: Router,
}

impl HttpApp {
    pub fn new(shared: Shared) -> Self {
        let plain = router(shared.clone());
        let browser = plain.clone().layer(cors(&shared.cors_origins));
        Self { plain, browser }
    }
}

impl<B> tower::Service<axum::http::Request<B>> for HttpApp
where
    B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = <Router as tower::Service<axum::http::Request<B>>>::Future;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: axum::http::Request<B>) -> Self::Future {
        if req.headers().contains_key(header::ORIGIN) { self.browser.call(req) } else { self.plain.call(req) }
    }
}

fn router(shared: Shared) -> Router {
    let body_limit = shared.limits.body_bytes;
    Router::new()
        .merge(tagged("rest", super::rest::routes(shared.clone())))
        .merge(tagged("sse", super::sse::routes(shared.clone())))
        .merge(tagged("websocket", super::ws::routes(shared.clone())))
        .merge(tagged("soap", super::soap::routes(shared.clone())))
        .merge(tagged("graphql", super::graphql::routes(shared.clone())))
        .merge(tagged("grpc", super::grpc::routes(shared.clone())))
        .merge(SwaggerUi::new("/docs").url("/api/v1/openapi.json", openapi::ApiDoc::openapi()))
        .merge(super::asyncapi::routes())
        .merge(super::console::routes())
        .merge(
            Router::new()
                .route("/healthz", get(ops::healthz))
                .route("/readyz", get(ops::readyz))
                .route("/metrics", get(ops::metrics))
                .with_state(shared.clone()),
        )
        .fallback(|| async { ApiError(DomainError::not_found("route")) })
        .method_not_allowed_fallback(|| async {
            ApiError(DomainError::invalid("method not allowed on this route").with_detail("method", "not_allowed"))
        })
        .layer(CatchPanicLayer::custom(|_: Box<dyn std::any::Any + Send>| {
            ApiError(DomainError::internal(anyhow::anyhow!("handler panicked"))).into_response()
        }))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(from_fn_with_state(shared, observe))
}

/// Restrictive CORS: only the configured origins, never credentials from anywhere else.
fn cors(origins: &[String]) -> CorsLayer {
    let allowed: Vec<HeaderValue> = origins.iter().filter_map(|o| HeaderValue::from_str(o.trim()).ok()).collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(allowed))
        .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE, Method::OPTIONS])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_MATCH,
            header::IF_NONE_MATCH,
            "x-api-key".parse().expect("static header name"),
            "idempotency-key".parse().expect("static header name"),
            "x-request-id".parse().expect("static header name"),
            "x-grpc-web".parse().expect("static header name"),
            "x-user-agent".parse().expect("static header name"),
            "grpc-timeout".parse().expect("static header name"),
            "traceparent".parse().expect("static header name"),
            "tracestate".parse().expect("static header name"),
        ])
        .expose_headers([
            header::ETAG,
            header::LINK,
            header::LOCATION,
            header::RETRY_AFTER,
            "x-request-id".parse().expect("static header name"),
            "traceresponse".parse().expect("static header name"),
            "idempotent-replayed".parse().expect("static header name"),
            "ratelimit-limit".parse().expect("static header name"),
            "ratelimit-remaining".parse().expect("static header name"),
            "ratelimit-reset".parse().expect("static header name"),
            "grpc-status".parse().expect("static header name"),
            "grpc-message".parse().expect("static header name"),
            "grpc-status-details-bin".parse().expect("static header name"),
        ])
        .max_age(std::time::Duration::from_secs(600))
}

/// Bounds the time to a response. (Each adapter refuses a declared oversize body itself, in
/// its own protocol's shape.)
async fn guarded(s: &Shared, req: Request, next: Next) -> Response {
    match tokio::time::timeout(s.limits.request_timeout, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError(DomainError::unavailable("the request took too long")).into_response(),
    }
}

/// Which adapter answered: the `protocol` label of a request's metrics ("http" for the
/// operational routes, the docs and fallbacks).
#[derive(Clone, Copy)]
struct Protocol(&'static str);

/// Names the protocol of every request of an adapter's routes in the request context (what
/// the audit log records) and marks its responses with it (the metrics label).
fn tagged(protocol: &'static str, routes: Router) -> Router {
    routes.layer(TagLayer(protocol))
}

/// `tagged` as a plain tower layer: it runs on every request, so it boxes nothing.
#[derive(Clone, Copy)]
struct TagLayer(&'static str);

impl<S> tower::Layer<S> for TagLayer {
    type Service = Tag<S>;
    fn layer(&self, inner: S) -> Tag<S> {
        Tag { inner, protocol: self.0 }
    }
}

#[derive(Clone)]
struct Tag<S> {
    inner: S,
    protocol: &'static str,
}

impl<S> tower::Service<Request> for Tag<S>
where
    S: tower::Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Tagged<S::Future>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        request_id::set_protocol(self.protocol);
        Tagged { inner: self.inner.call(req), protocol: self.protocol }
    }
}

pin_project_lite::pin_project! {
    /// The inner response, with the `Protocol` put on it.
    struct Tagged<F> {
        #[pin]
        inner: F,
        protocol: &'static str,
    }
}

impl<F, E> std::future::Future for Tagged<F>
where
    F: std::future::Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        let this = self.project();
        let protocol = *this.protocol;
        this.inner.poll(cx).map_ok(|mut response| {
            response.extensions_mut().insert(Protocol(protocol));
            response
        })
    }
}

/// Request id, trace context (the client's `traceparent` continued, or a new trace), one span
/// per request, one log line per request (with the error the adapter recorded, if any),
/// metrics; then `guarded`. The response names our span in `traceresponse`.
async fn observe(State(s): State<Shared>, req: Request, next: Next) -> Response {
    let id = request_id::accept_or_generate(req.headers().get("x-request-id").and_then(|v| v.to_str().ok()));
    let parent =
        TraceContext::parent(header_str(req.headers(), "traceparent"), header_str(req.headers(), "tracestate"));
    let method = metrics::method_label(req.method());
    let route = metrics::route_label(req.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str));
    let (span, trace) = crate::telemetry::request_span(&id, parent.as_ref(), method, route);
    let traceresponse = trace.to_traceparent();
    let started = Instant::now();
    s.metrics.in_flight.inc();
    let answered = async {
        let response = guarded(&s, req, next).await;
        (response, request_id::take())
    };
    let (mut response, error) =
        request_id::scope_with(id.clone(), "http", trace, answered).instrument(span.clone()).await;
    s.metrics.in_flight.dec();
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    let protocol = response.extensions().get::<Protocol>().map_or("http", |p| p.0);
    let latency_ms = elapsed.as_millis() as u64;
    span.in_scope(|| match &error {
        Some(e) if request_id::is_failure(e.code) => {
            tracing::error!(status, code = %e.code, error = %e.message, cause = e.cause.as_deref().unwrap_or(""), latency_ms, "request failed");
        }
        Some(e) => tracing::info!(status, code = %e.code, error = %e.message, latency_ms, "request refused"),
        None => tracing::info!(status, latency_ms, "request completed"),
    });
    if let Some(e) = &error {
        s.metrics.errors.get_or_create(&CodeLabels { code: e.code.as_str() }).inc();
    }
    s.metrics.requests.get_or_create(&RequestLabels { protocol, method, route, status }).inc();
    s.metrics.latency.get_or_create(&RouteLabels { protocol, route }).observe(elapsed.as_secs_f64());
    // Values new on every response are sent unindexed: in HTTP/2 each would otherwise take a
    // place in the connection's header table, evicting what repeats.
    for (name, value) in [("x-request-id", &id), ("traceresponse", &traceresponse)] {
        if let Ok(mut v) = HeaderValue::from_str(value) {
            v.set_sensitive(true);
            response.headers_mut().insert(name, v);
        }
    }
    response
}
