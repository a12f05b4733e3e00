//! Server-Sent Events at `GET /api/v1/events`: the event log, live and resumable, with
//! authorization at delivery; plus `POST /api/v1/events/token` for EventSource credentials.

mod stream;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::adapters::Shared;
use crate::adapters::http_error::ApiError;
use crate::adapters::request::{header_str, peer_ip};
use crate::domain::delivery::Topic;
use crate::domain::error::{DomainError, DomainResult};
use crate::platform::admission::Presented;

/// The event stream and the endpoint that mints its stream tokens.
pub const PATH: &str = "/api/v1/events";
pub const TOKEN_PATH: &str = "/api/v1/events/token";

pub fn routes(shared: Shared) -> Router {
    Router::new().route(PATH, get(open)).route(TOKEN_PATH, post(mint_token)).with_state(shared)
}

fn client_ip(ext: &axum::http::Extensions) -> String {
    peer_ip(ext).unwrap_or_else(|| "unknown".into())
}

/// The stream's parameters: `topics` (comma separated, may repeat) and `after` (`access_token`
/// is read by admission).
struct Params {
    topics: Vec<Topic>,
    after: Option<i64>,
}

fn params(pairs: Vec<(String, String)>, last_event_id: Option<&str>) -> DomainResult<Params> {
    let mut topics = Vec::new();
    let mut after = None;
    for (k, v) in pairs {
        match k.as_str() {
            "topics" | "topic" => topics.extend(v.split(',').filter(|t| !t.is_empty()).map(str::to_string)),
            "after" => after = Some(v),
            "access_token" => {}
            _ => {}
        }
    }
    let resume = last_event_id.map(str::to_string).or(after);
    let after = match resume.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
        Some(v) => Some(
            v.parse::<i64>()
                .map_err(|_| DomainError::invalid("`after` must be an event id").with_detail("after", "invalid"))?,
        ),
        None => None,
    };
    Ok(Params { topics: Topic::parse_all(&topics)?, after })
}

async fn open(
    State(s): State<Shared>,
    ext: axum::http::Extensions,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    match start(&s, &ext, &headers, pairs).await {
        Ok(response) => response,
        Err(e) => ApiError(e).into_response(),
    }
}

async fn start(
    s: &Shared,
    ext: &axum::http::Extensions,
    headers: &HeaderMap,
    pairs: Vec<(String, String)>,
) -> DomainResult<Response> {
    let token = pairs.iter().find(|(k, _)| k == "access_token").map(|(_, v)| v.as_str());
    let presented = Presented { stream_token: token, ..crate::adapters::request::credentials(headers) };
    let admitted = s.admission.admit(presented, &client_ip(ext), 1).await.admitted?;
    let p = params(pairs, header_str(headers, "last-event-id"))?;
    let slot = s.admission.stream_slot(&admitted).await?;
    let subscription = s.bus.subscribe(admitted.actor(), p.after).await?;
    Ok(stream::respond(s, admitted.auth, p.topics, subscription, slot))
}

/// Mints a stream token (EventSource cannot send headers; access tokens never go in URLs):
/// 201 `{token, expires_in}`, to pass as `access_token` to `GET /api/v1/events`. The token lives
/// with the caller's session or API key (see `Authenticator::mint_stream_token`), so the same
/// URL keeps working for EventSource's reconnects.
pub async fn mint_token(State(s): State<Shared>, ext: axum::http::Extensions, headers: HeaderMap) -> Response {
    let minted = async {
        let presented = crate::adapters::request::credentials(&headers);
        let admitted = s.admission.admit(presented, &client_ip(&ext), 1).await.admitted?;
        s.admission.authn.mint_stream_token(&admitted.auth, s.stream_settings.stream_token_ttl_secs)
    };
    match minted.await {
        Ok(token) => (
            StatusCode::CREATED,
            axum::Json(json!({"token": token, "expires_in": s.stream_settings.stream_token_ttl_secs})),
        )
            .into_response(),
        Err(e) => ApiError(e).into_response(),
    }
}
