//! WebSocket protocol violations: closed with the RFC 6455 code, never a dropped connection.

use futures::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use super::assert_healthy;
use crate::graphql::gws;
use crate::helpers::spawn_app;
use crate::realtime_support::{WAIT, ws};

/// A text frame whose payload is not UTF-8 (tungstenite's client checks nothing it sends).
fn invalid_utf8() -> Message {
    Message::Text(unsafe {
        tokio_tungstenite::tungstenite::Utf8Bytes::from_bytes_unchecked(vec![b'{', 0xff, 0xfe, b'}'].into())
    })
}

#[tokio::test]
async fn invalid_utf8_in_a_text_frame_closes_ws_with_1007() {
    let app = spawn_app().await;
    let mut client = ws(&app).await;
    client.send_json(json!({"type": "ping"})).await;
    client.recv().await;
    client.stream.send(invalid_utf8()).await.unwrap();
    let closed = client.closed_within(WAIT).await;
    assert_eq!(closed.code, Some(1007), "{closed:?}");
    assert_healthy(&app).await;
}

#[tokio::test]
async fn invalid_utf8_in_a_text_frame_closes_graphql_ws_with_1007() {
    let app = spawn_app().await;
    let mut ws = gws(&app, "graphql-transport-ws").await;
    ws.init(json!({})).await;
    ws.0.send(invalid_utf8()).await.unwrap();
    assert_eq!(ws.closed().await, 1007);
    assert_healthy(&app).await;
}
