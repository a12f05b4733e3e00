//! Failures inside the server: generic answers outside, causes in the logs only.

use std::time::Duration;

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{Store, assert_error, spawn_app_with};

#[tokio::test]
async fn a_broken_store_answers_a_generic_internal_error_without_sql() {
    let dir = std::env::temp_dir().join(format!("polyport-broken-{}", uuid::Uuid::now_v7().simple()));
    let url = format!("sqlite://{}/db.sqlite", dir.display());
    let app_url = url.clone();
    let app = spawn_app_with(Store::Sqlite, move |s| s.database_url = app_url).await.unwrap();
    let ada = app.member("ada").await;
    rusqlite::Connection::open(dir.join("db.sqlite")).unwrap().execute_batch("DROP TABLE post_tags").unwrap();
    let r = app.get("/posts?tag=rust", Some(&ada.token)).await;
    let body = assert_error(r, StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL").await;
    assert_eq!(body["error"]["message"], "internal error");
    let text = body.to_string();
    assert!(!text.contains("post_tags") && !text.contains("SELECT") && !text.contains("sqlite"), "{text}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_request_that_takes_too_long_is_cut_off_with_503() {
    let app = spawn_app_with(Store::Sqlite, |s| s.request_timeout_secs = 1).await.unwrap();
    let ada = app.member("ada").await;
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST /api/v1/posts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{",
        ada.token
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await.unwrap().unwrap();
    let response = String::from_utf8_lossy(&buf[..n]);
    assert!(response.starts_with("HTTP/1.1 503"), "{response}");
    assert!(response.contains("\"UNAVAILABLE\"") && response.to_lowercase().contains("retry-after"));
}
