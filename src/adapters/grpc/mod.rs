//! The gRPC adapter (package `polyport.v1`): tonic services over the same core, mounted on the
//! shared HTTP router so gRPC, gRPC-Web (HTTP/1.1) and REST share one port.
//!
//! HTTP/2 limits (max concurrent streams, local error-reset cap, keepalive) are set once for the
//! shared listener in `startup.rs`; tonic's own server (whose defaults are unlimited) is not used.
//! Deadlines: `grpc-timeout` bounds every call here (the work is dropped, DEADLINE_EXCEEDED),
//! and streams watch it too. Message size: decoding is capped at the HTTP body limit, after
//! gzip decompression; over it the call answers RESOURCE_EXHAUSTED (PAYLOAD_TOO_LARGE).

mod audit;
mod auth;
mod call;
mod convert;
pub mod error;
mod events;
mod live;
pub mod pb;
mod posts;
mod stream;
mod users;
mod webhooks;

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::Router;
use axum::http::HeaderName;
use tonic::codec::CompressionEncoding;
use tonic::server::NamedService;
use tower::{Layer, ServiceExt};

use super::Shared;
use super::http::TagLayer;
use super::request::header_str;

/// Requests may come gzip-compressed (several client stacks compress by default); the size
/// limit applies to the decompressed message, so a small bomb is refused after the limit.
const GZIP: CompressionEncoding = CompressionEncoding::Gzip;

/// Every polyport.v1 service shares this handler state.
#[derive(Clone)]
pub struct Grpc {
    shared: Shared,
}

/// Adds one tonic service under `/{package.Service}/*`: tagged `grpc` (request context, span,
/// metrics labels), gRPC-Web translation, the call's deadline, then the service. The stack is
/// one concrete service, so the router boxes it once; a `Router::layer` would wrap (and clone
/// and box) every route again on every call.
fn mount<S>(router: Router, svc: S) -> Router
where
    S: tower::Service<
            axum::http::Request<tonic::body::Body>,
            Response = axum::http::Response<tonic::body::Body>,
            Error = Infallible,
        > + NamedService
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let stack =
        (TagLayer("grpc"), tonic_web::GrpcWebLayer::new()).layer(Deadline(svc.map_response(error::size_refusal)));
    router.route_service(&format!("/{}/{{*rest}}", S::NAME), stack)
}

/// The gRPC routes: polyport.v1, reflection (v1 and v1alpha) and health.
pub fn routes(shared: Shared) -> Router {
    let max = shared.limits.body_bytes;
    let grpc = Grpc { shared: shared.clone() };
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
    };
    let (health, health_service) = tonic_health::server::health_reporter();
    tokio::spawn(report_health(shared, health));
    let mut router = Router::new();
    router = mount(
        router,
        pb::auth_service_server::AuthServiceServer::new(grpc.clone())
            .max_decoding_message_size(max)
            .accept_compressed(GZIP),
    );
    router = mount(
        router,
        pb::user_service_server::UserServiceServer::new(grpc.clone())
            .max_decoding_message_size(max)
            .accept_compressed(GZIP),
    );
    router = mount(
        router,
        pb::post_service_server::PostServiceServer::new(grpc.clone())
            .max_decoding_message_size(max)
            .accept_compressed(GZIP),
    );
    router = mount(
        router,
        pb::event_service_server::EventServiceServer::new(grpc.clone())
            .max_decoding_message_size(max)
            .accept_compressed(GZIP),
    );
    router = mount(
        router,
        pb::webhook_service_server::WebhookServiceServer::new(grpc.clone())
            .max_decoding_message_size(max)
            .accept_compressed(GZIP),
    );
    router = mount(
        router,
        pb::audit_service_server::AuditServiceServer::new(grpc).max_decoding_message_size(max).accept_compressed(GZIP),
    );
    router = mount(router, reflection().build_v1().expect("the descriptor set is valid"));
    router = mount(router, reflection().build_v1alpha().expect("the descriptor set is valid"));
    mount(router, health_service)
}

/// SERVING until draining starts (SIGTERM), NOT_SERVING from then on.
async fn report_health(shared: Shared, health: tonic_health::server::HealthReporter) {
    const NAMES: [&str; 7] = [
        "",
        "polyport.v1.AuthService",
        "polyport.v1.UserService",
        "polyport.v1.PostService",
        "polyport.v1.EventService",
        "polyport.v1.WebhookService",
        "polyport.v1.AuditService",
    ];
    for name in NAMES {
        health.set_service_status(name, tonic_health::ServingStatus::Serving).await;
    }
    shared.shutdown.wait_draining().await;
    for name in NAMES {
        health.set_service_status(name, tonic_health::ServingStatus::NotServing).await;
    }
}

/// The `grpc-timeout` request header.
const GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");

/// Honors `grpc-timeout`: past it the call's work is dropped and DEADLINE_EXCEEDED answered.
#[derive(Clone)]
struct Deadline<S>(S);

impl<S, B> tower::Service<axum::http::Request<B>> for Deadline<S>
where
    S: tower::Service<axum::http::Request<B>, Response = axum::http::Response<tonic::body::Body>, Error = Infallible>,
{
    type Response = S::Response;
    type Error = Infallible;
    type Future = Deadlined<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: axum::http::Request<B>) -> Self::Future {
        let limit = header_str(req.headers(), GRPC_TIMEOUT).and_then(call::parse_timeout);
        Deadlined { answer: self.0.call(req), expiry: limit.map(tokio::time::sleep) }
    }
}

pin_project_lite::pin_project! {
    /// The call's answer, unless its deadline passes first.
    struct Deadlined<F> {
        #[pin]
        answer: F,
        #[pin]
        expiry: Option<tokio::time::Sleep>,
    }
}

impl<F> Future for Deadlined<F>
where
    F: Future<Output = Result<axum::http::Response<tonic::body::Body>, Infallible>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(answer) = this.answer.poll(cx) {
            return Poll::Ready(answer);
        }
        match this.expiry.as_pin_mut().map(|expiry| expiry.poll(cx)) {
            Some(Poll::Ready(())) => Poll::Ready(Ok(tonic::Status::deadline_exceeded("deadline exceeded").into_http())),
            _ => Poll::Pending,
        }
    }
}
