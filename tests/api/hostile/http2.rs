//! HTTP/2 abuse on the shared port: rapid reset, the advertised stream cap, oversize header
//! lists. The connection is refused or reset; every other client goes on being served.

use std::time::Duration;

use axum::http;
use bytes::Bytes;
use h2::client;
use tokio::net::TcpStream;

use super::assert_healthy;
use crate::helpers::spawn_app;

async fn h2_connect(
    addr: std::net::SocketAddr,
) -> (client::SendRequest<Bytes>, tokio::task::JoinHandle<Result<(), h2::Error>>) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (send, connection) = client::handshake(tcp).await.expect("h2c handshake");
    (send, tokio::spawn(connection))
}

fn get(addr: std::net::SocketAddr, path: &str) -> http::Request<()> {
    http::Request::get(format!("http://{addr}{path}")).body(()).unwrap()
}

#[tokio::test]
async fn a_rapid_reset_flood_ends_its_own_connection_and_nobody_else_notices() {
    let app = spawn_app().await;
    let (mut send, connection) = h2_connect(app.addr).await;
    let mut sent = 0;
    for _ in 0..10_000 {
        let Ok(ready) = send.ready().await else { break };
        send = ready;
        let Ok((_response, mut stream)) = send.send_request(get(app.addr, "/api/v1/posts"), false) else { break };
        stream.send_reset(h2::Reason::CANCEL);
        sent += 1;
    }
    let ended =
        tokio::time::timeout(Duration::from_secs(10), connection).await.expect("the server ends the connection");
    assert!(sent < 10_000 || ended.is_ok_and(|r| r.is_err()), "the flood was cut short after {sent} resets");
    assert_healthy(&app).await;
}

#[tokio::test]
async fn the_server_advertises_its_stream_cap_and_refuses_oversize_header_lists() {
    let app = spawn_app().await;
    let tcp = TcpStream::connect(app.addr).await.unwrap();
    let (send, mut connection) = client::handshake(tcp).await.unwrap();
    let mut send = send.ready().await.unwrap();
    let (response, _) = send.send_request(get(app.addr, "/healthz"), true).unwrap();
    let status = tokio::select! {
        r = response => r.unwrap().status(),
        _ = &mut connection => panic!("the connection ended"),
    };
    assert_eq!(status, 200);
    assert_eq!(connection.max_concurrent_send_streams(), 256, "SETTINGS_MAX_CONCURRENT_STREAMS");

    let (send, connection) = h2_connect(app.addr).await;
    let mut send = send.ready().await.unwrap();
    let mut req = get(app.addr, "/healthz");
    for i in 0..40 {
        req.headers_mut().insert(
            http::HeaderName::from_bytes(format!("x-filler-{i}").as_bytes()).unwrap(),
            http::HeaderValue::from_str(&"a".repeat(4000)).unwrap(),
        );
    }
    let outcome = match send.send_request(req, true) {
        Ok((response, _)) => {
            tokio::time::timeout(Duration::from_secs(5), response).await.ok().map(|r| r.map(|r| r.status()))
        }
        Err(e) => Some(Err(e)),
    };
    assert!(!matches!(outcome, Some(Ok(s)) if s == 200), "160 KB of headers is not served: {outcome:?}");
    drop(connection);
    assert_healthy(&app).await;
}
