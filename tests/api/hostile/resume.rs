//! Resume points from the future: refused like expired ones, on every streaming protocol.

use polyport::adapters::grpc::pb;
use polyport::adapters::grpc::pb::event_service_client::EventServiceClient;
use reqwest::StatusCode;
use serde_json::json;
use tonic::Code;

use crate::graphql::gws;
use crate::grpc::{assert_rich, channel};
use crate::helpers::{Store, TestApp, assert_error, spawn_app_with};
use crate::realtime_support::{Cred, last_id, sse, sse_request, ws};

const FUTURE: i64 = 1_000_000_000_000;

async fn app() -> TestApp {
    spawn_app_with(Store::Sqlite, |_| {}).await.unwrap()
}

fn unknown() -> serde_json::Value {
    json!([{"field": "after", "issue": "unknown"}])
}

#[tokio::test]
async fn sse_refuses_a_last_event_id_or_after_beyond_the_newest_event() {
    let app = app().await;
    let ada = app.member("ada").await;
    app.published_post(&ada, "news").await;
    let r = sse_request(&app, "topics=posts", Cred::Anonymous, Some(FUTURE)).await;
    let body = assert_error(r, StatusCode::BAD_REQUEST, "INVALID_REQUEST").await;
    assert_eq!(body["error"]["details"], unknown());
    let r =
        sse_request(&app, &format!("topics=posts&after={}", last_id(&app).await + 1), Cred::Bearer(&ada.token), None)
            .await;
    let body = assert_error(r, StatusCode::BAD_REQUEST, "INVALID_REQUEST").await;
    assert_eq!(body["error"]["details"], unknown(), "one past the head is unknown too");
    // The head itself is a fine resume point.
    let mut stream = sse(&app, &format!("topics=posts&after={}", last_id(&app).await), Cred::Anonymous, None).await;
    app.published_post(&ada, "fresh").await;
    assert_eq!(stream.event().await.id, last_id(&app).await);
}

#[tokio::test]
async fn websocket_refuses_a_subscription_after_an_unknown_event() {
    let app = app().await;
    let mut client = ws(&app).await;
    client.send_json(json!({"type": "subscribe", "id": "s1", "topics": ["posts"], "after": FUTURE})).await;
    let reply = client.recv().await;
    assert_eq!(reply["type"], "error", "{reply}");
    assert_eq!(reply["id"], "s1");
    assert_eq!(reply["code"], "INVALID_REQUEST");
    assert_eq!(reply["details"], unknown());
    client.assert_alive().await;
}

#[tokio::test]
async fn graphql_subscriptions_refuse_an_after_beyond_the_newest_event() {
    let app = app().await;
    let mut ws = gws(&app, "graphql-transport-ws").await;
    ws.init(json!({})).await;
    let q = format!("subscription {{ events(topics: [\"posts\"], after: \"{FUTURE}\") {{ id }} }}");
    ws.send(json!({"type": "subscribe", "id": "1", "payload": {"query": q}})).await;
    let m = ws.recv().await;
    let error = &m["payload"]["errors"][0];
    assert_eq!(error["extensions"]["code"], "INVALID_REQUEST", "{m}");
    assert_eq!(error["extensions"]["details"], unknown());
}

#[tokio::test]
async fn grpc_subscribe_and_live_refuse_an_after_event_id_beyond_the_newest_event() {
    let app = app().await;
    let ch = channel(&app).await;
    let mut events = EventServiceClient::new(ch);
    let req = pb::SubscribeRequest { topics: vec!["posts".into()], after_event_id: Some(FUTURE) };
    let status = events.subscribe(req).await.unwrap_err();
    let details = assert_rich(&status, Code::InvalidArgument, "INVALID_REQUEST");
    let violation = &details.bad_request().expect("BadRequest details").field_violations[0];
    assert_eq!((violation.field.as_str(), violation.description.as_str()), ("after", "unknown"));
}
