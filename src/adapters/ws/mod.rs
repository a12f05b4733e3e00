//! The WebSocket adapter at `GET /ws`: subscriptions to the event log and core operations over
//! one JSON-framed connection, with the same auth, limits and errors as every protocol.

mod connection;
mod frames;
mod ops;

pub use ops::OPS;

/// Where the WebSocket endpoint is mounted.
pub const PATH: &str = "/ws";

use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::adapters::Shared;
use crate::adapters::http_error::ApiError;
use crate::adapters::request::origin_allowed;
use crate::domain::error::{DomainError, DomainResult};

pub fn routes(shared: Shared) -> Router {
    Router::new().route(PATH, get(upgrade)).with_state(shared)
}

async fn upgrade(
    State(s): State<Shared>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let Ok(ws) = ws else {
        return ApiError(crate::adapters::http_error::upgrade_required()).into_response();
    };
    match accept(&s, &headers, peer.ip().to_string()).await {
        Ok(ctx) => {
            let settings = s.stream_settings;
            ws.read_buffer_size(2 * 1024)
                .write_buffer_size(0)
                .max_write_buffer_size(settings.ws_max_message_bytes.max(64 * 1024) * 2)
                .max_message_size(settings.ws_max_message_bytes)
                .max_frame_size(settings.ws_max_message_bytes)
                .on_upgrade(move |socket| connection::run(socket, s, ctx))
        }
        Err(e) => ApiError(e).into_response(),
    }
}

async fn accept(s: &Shared, headers: &HeaderMap, ip: String) -> DomainResult<connection::Opening> {
    if !origin_allowed(&s.cors_origins, headers) {
        return Err(DomainError::forbidden("this Origin may not open WebSockets here"));
    }
    let presented = crate::adapters::request::credentials(headers);
    let admitted = s.admission.admit(presented, &ip, 1).await.admitted?;
    let slot = s.admission.stream_slot(&admitted).await?;
    let trace = crate::platform::request_id::trace().unwrap_or_else(crate::platform::trace::TraceContext::root);
    Ok(connection::Opening { admitted, header_credentials: presented.any(), slot, trace })
}
