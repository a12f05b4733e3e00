//! The one HTTP router: every protocol's routes plus the cross-cutting layers (request ids,
//! logs, metrics, CORS, timeouts, body limits, panics), all answering in our error envelope.

use std::convert::Infallible;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::FutureExt;
use tower::{Layer, ServiceExt};
use tower_http::cors::{AllowOrigin, Cors, CorsLayer};
use tracing::Instrument;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use super::Shared;
use super::request::{TRACEPARENT, TRACERESPONSE, TRACESTATE, X_REQUEST_ID, header_str};
use super::rest::error::ApiError;
use super::rest::{openapi, ops};
use crate::domain::error::DomainError;
use crate::platform::metrics::{self, CodeLabels, RequestLabels, RouteLabels};
use crate::platform::request_id;
use crate::platform::trace::TraceContext;

/// The whole HTTP surface. Requests carrying `Origin` (browsers) go through the CORS layer;
/// others skip it, so server-to-server calls don't pay for headers only browsers read.
///
/// The cross-cutting steps (`observe`, the body limit) wrap the router from outside rather than
/// being layered onto every route with `Router::layer`: axum clones and boxes a route's whole
/// layer stack on every request, so each route-level layer costs every request allocations.
#[derive(Clone)]
pub struct HttpApp {
    plain: Observed,
    browser: Cors<Observed>,
}

impl HttpApp {
    pub fn new(shared: Shared) -> Self {
        let routes = DefaultBodyLimit::max(shared.limits.body_bytes).layer(router(shared.clone()));
        let plain = Observed { shared: shared.clone(), routes };
        let browser = cors(&shared.cors_origins).layer(plain.clone());
        Self { plain, browser }
    }
}

impl<B> tower::Service<axum::http::Request<B>> for HttpApp
where
    B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = ObservedFuture;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: axum::http::Request<B>) -> Self::Future {
        let req = req.map(axum::body::Body::new);
        if req.headers().contains_key(header::ORIGIN) { Box::pin(self.browser.call(req)) } else { self.plain.call(req) }
    }
}

/// The router under its body limit.
type Routes = <DefaultBodyLimit as tower::Layer<Router>>::Service;

/// Every request through `observe`, then the routes.
#[derive(Clone)]
struct Observed {
    shared: Shared,
    routes: Routes,
}

type ObservedFuture = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl tower::Service<Request> for Observed {
    type Response = Response;
    type Error = Infallible;
    type Future = ObservedFuture;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let (shared, routes) = (self.shared.clone(), self.routes.clone());
        Box::pin(async move { Ok(observe(shared, req, routes).await) })
    }
}

fn router(shared: Shared) -> Router {
    Router::new()
        .merge(tagged("rest", super::rest::routes(shared.clone())))
        .merge(tagged("sse", super::sse::routes(shared.clone())))
        .merge(tagged("websocket", super::ws::routes(shared.clone())))
        .merge(tagged("soap", super::soap::routes(shared.clone())))
        .merge(tagged("graphql", super::graphql::routes(shared.clone())))
        .merge(super::grpc::routes(shared.clone()))
        .merge(tagged(
            "http",
            Router::new()
                .merge(SwaggerUi::new("/docs").url("/api/v1/openapi.json", openapi::ApiDoc::openapi()))
                .merge(super::asyncapi::routes())
                .merge(super::console::routes())
                .merge(
                    Router::new()
                        .route("/healthz", get(ops::healthz))
                        .route("/readyz", get(ops::readyz))
                        .route("/metrics", get(ops::metrics))
                        .with_state(shared),
                ),
        ))
        .fallback(|| async { ApiError(DomainError::not_found("route")) })
        .method_not_allowed_fallback(|route: Option<MatchedPath>| async move {
            let refusal = DomainError::invalid("method not allowed on this route").with_detail("method", "not_allowed");
            let mut response = ApiError(refusal).into_response();
            response.extensions_mut().insert(Served { protocol: "http", route });
            response
        })
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

/// Bounds the time to a response and answers a panic as INTERNAL. (Each adapter refuses a
/// declared oversize body itself, in its own protocol's shape.)
async fn guarded(s: &Shared, req: Request, routes: Routes) -> Response {
    let answer = AssertUnwindSafe(routes.oneshot(req)).catch_unwind();
    match tokio::time::timeout(s.limits.request_timeout, answer).await {
        Ok(Ok(Ok(response))) => response,
        Ok(Ok(Err(never))) => match never {},
        Ok(Err(_panic)) => ApiError(DomainError::internal(anyhow::anyhow!("handler panicked"))).into_response(),
        Err(_) => ApiError(DomainError::unavailable("the request took too long")).into_response(),
    }
}

/// Which adapter answered and the route pattern it matched: the `protocol` and `route` labels
/// of a request's metrics ("http" and "unmatched" for the fallbacks).
#[derive(Clone)]
struct Served {
    protocol: &'static str,
    route: Option<MatchedPath>,
}

/// Names the protocol of every request of an adapter's routes in the request context (what
/// the audit log records) and the matched route in the request's span, and marks its responses
/// with both (the metrics labels).
fn tagged(protocol: &'static str, routes: Router) -> Router {
    routes.layer(TagLayer(protocol))
}

/// `tagged` as a plain tower layer: it runs on every request, so it boxes nothing. (gRPC puts
/// it in each service's own stack, see `grpc::mount`.)
#[derive(Clone, Copy)]
pub(super) struct TagLayer(pub &'static str);

impl<S> tower::Layer<S> for TagLayer {
    type Service = Tag<S>;
    fn layer(&self, inner: S) -> Tag<S> {
        Tag { inner, protocol: self.0 }
    }
}

#[derive(Clone)]
pub(super) struct Tag<S> {
    inner: S,
    protocol: &'static str,
}

impl<S, B, R> tower::Service<axum::http::Request<B>> for Tag<S>
where
    S: tower::Service<axum::http::Request<B>, Response = axum::http::Response<R>>,
{
    type Response = axum::http::Response<R>;
    type Error = S::Error;
    type Future = Tagged<S::Future>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: axum::http::Request<B>) -> Self::Future {
        request_id::set_protocol(self.protocol);
        let route = req.extensions().get::<MatchedPath>().cloned();
        if let Some(route) = &route {
            tracing::Span::current().record("route", route.as_str());
        }
        Tagged { inner: self.inner.call(req), served: Some(Served { protocol: self.protocol, route }) }
    }
}

pin_project_lite::pin_project! {
    /// The inner response, with what `Served` it put on it.
    pub(super) struct Tagged<F> {
        #[pin]
        inner: F,
        served: Option<Served>,
    }
}

impl<F, R, E> std::future::Future for Tagged<F>
where
    F: std::future::Future<Output = Result<axum::http::Response<R>, E>>,
{
    type Output = Result<axum::http::Response<R>, E>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        let this = self.project();
        let served = this.served;
        this.inner.poll(cx).map_ok(|mut response| {
            if let Some(served) = served.take() {
                response.extensions_mut().insert(served);
            }
            response
        })
    }
}

/// Request id, trace context (the client's `traceparent` continued, or a new trace), one span
/// per request, one log line per request (with the error the adapter recorded, if any),
/// metrics; then `guarded`. The response names our span in `traceresponse`.
async fn observe(s: Shared, req: Request, routes: Routes) -> Response {
    let id = request_id::accept_or_generate(req.headers().get(X_REQUEST_ID).and_then(|v| v.to_str().ok()));
    let parent = TraceContext::parent(header_str(req.headers(), TRACEPARENT), header_str(req.headers(), TRACESTATE));
    let method = metrics::method_label(req.method());
    let (span, trace) = crate::telemetry::request_span(&id, parent.as_ref(), method, None);
    let traceresponse = trace.to_traceparent();
    let started = Instant::now();
    s.metrics.in_flight.inc();
    let answered = async {
        let response = guarded(&s, req, routes).await;
        (response, request_id::take())
    };
    let (mut response, error) =
        request_id::scope_with(id.clone(), "http", trace, answered).instrument(span.clone()).await;
    s.metrics.in_flight.dec();
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    let served = response.extensions_mut().remove::<Served>();
    if served.as_ref().is_none_or(|s| s.route.is_none()) {
        span.record("route", "unmatched");
    }
    let protocol = served.as_ref().map_or("http", |s| s.protocol);
    let route =
        metrics::route_label(served.as_ref().and_then(|s| s.route.as_ref()).map_or("unmatched", MatchedPath::as_str));
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
    for (name, value) in [(X_REQUEST_ID, &id), (TRACERESPONSE, &traceresponse)] {
        if let Ok(mut v) = HeaderValue::from_str(value) {
            v.set_sensitive(true);
            response.headers_mut().insert(name, v);
        }
    }
    response
}
