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

use axum::Router;
use axum::extract::Request;
use axum::middleware::{Next, from_fn};
use axum::response::{IntoResponse, Response};
use tonic::codec::CompressionEncoding;
use tonic::server::NamedService;
use tower::{Layer, ServiceExt};

use super::Shared;

/// Requests may come gzip-compressed (several client stacks compress by default); the size
/// limit applies to the decompressed message, so a small bomb is refused after the limit.
const GZIP: CompressionEncoding = CompressionEncoding::Gzip;

/// Every polyport.v1 service shares this handler state.
#[derive(Clone)]
pub struct Grpc {
    shared: Shared,
}

/// Adds one tonic service under `/{package.Service}/*`, with gRPC-Web translation.
fn mount<S>(router: Router, svc: S) -> Router
where
    S: tower::Service<
            axum::http::Request<tonic::body::Body>,
            Response = axum::http::Response<tonic::body::Body>,
            Error = std::convert::Infallible,
        > + NamedService
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let web = tonic_web::GrpcWebLayer::new().layer(svc.map_response(error::size_refusal));
    router.route_service(&format!("/{}/{{*rest}}", S::NAME), web)
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
    router = mount(router, health_service);
    router.layer(from_fn(deadline))
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

/// Honors `grpc-timeout`: past it the call's work is dropped and DEADLINE_EXCEEDED answered.
async fn deadline(req: Request, next: Next) -> Response {
    let limit = req.headers().get("grpc-timeout").and_then(|v| v.to_str().ok()).and_then(call::parse_timeout);
    match limit {
        None => next.run(req).await,
        Some(limit) => match tokio::time::timeout(limit, next.run(req)).await {
            Ok(response) => response,
            Err(_) => {
                tonic::Status::deadline_exceeded("deadline exceeded").into_http::<axum::body::Body>().into_response()
            }
        },
    }
}
