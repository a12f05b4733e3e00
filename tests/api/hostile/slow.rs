//! Slow clients: a request head or body trickled in is cut off at its timeout, and streams are
//! capped per caller, so nobody can hold the server with patience alone.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::assert_healthy;
use crate::helpers::{Store, assert_error, spawn_app_with};
use crate::realtime_support::{Cred, sse, sse_request};

#[tokio::test]
async fn a_request_head_trickled_byte_by_byte_is_cut_off_at_the_header_timeout() {
    let app = spawn_app_with(Store::Sqlite, |s| s.header_read_timeout_secs = 2).await.unwrap();
    let mut tcp = TcpStream::connect(app.addr).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let started = Instant::now();
    let mut cut = false;
    for _ in 0..40 {
        if tcp.write_all(b"X").await.is_err() {
            cut = true;
            break;
        }
        let mut byte = [0u8; 64];
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(300), tcp.read(&mut byte)).await {
            cut = n == 0 || String::from_utf8_lossy(&byte[..n]).starts_with("HTTP/1.1 408");
            if cut {
                break;
            }
        }
    }
    assert!(cut, "the trickled head was cut off");
    assert!(started.elapsed() < Duration::from_secs(6), "within the header timeout: {:?}", started.elapsed());
    assert_healthy(&app).await;
}

#[tokio::test]
async fn a_body_trickled_in_is_answered_unavailable_at_the_request_timeout() {
    let app = spawn_app_with(Store::Sqlite, |s| s.request_timeout_secs = 2).await.unwrap();
    let user = app.member("ada").await;
    let mut tcp = TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST /api/v1/posts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{",
        user.token
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(6), async {
        loop {
            let _ = tcp.write_all(b" ").await;
            let mut buf = [0u8; 512];
            match tokio::time::timeout(Duration::from_millis(200), tcp.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return,
                Ok(Ok(n)) => {
                    answer.extend_from_slice(&buf[..n]);
                    if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                        return;
                    }
                }
                Err(_) => {}
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server answered or closed within the request timeout");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.is_empty() || text.starts_with("HTTP/1.1 503"), "{text}");
    assert_healthy(&app).await;
}

#[tokio::test]
async fn one_caller_cannot_hold_more_streams_than_its_cap() {
    let app = spawn_app_with(Store::Sqlite, |s| s.streams_per_caller = 3).await.unwrap();
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(sse(&app, "topics=posts", Cred::Anonymous, None).await);
    }
    let refused = sse_request(&app, "topics=posts", Cred::Anonymous, None).await;
    let retry = refused.headers().get("retry-after").cloned();
    assert_error(refused, reqwest::StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED").await;
    assert!(retry.is_some());
    open.pop();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let again = sse_request(&app, "topics=posts", Cred::Anonymous, None).await;
    assert_eq!(again.status(), reqwest::StatusCode::OK, "a closed stream frees its slot");
}
