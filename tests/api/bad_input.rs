//! Hostile input: every malformed, oversize, forged or tampered request is answered in our error
//! envelope with the right status and code, and never with a 500.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::header::HeaderValue;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{PASSWORD, Store, TestApp, assert_error, spawn_app, spawn_app_with};

/// The default body limit (1 MiB).
const BODY_LIMIT: usize = 1024 * 1024;

/// Sends, then checks the status, the envelope, the code, and that the x-request-id header is
/// the body's request id. Returns the body.
async fn refused(rb: RequestBuilder, status: StatusCode, code: &str, what: &str) -> Value {
    let response = rb.send().await.unwrap_or_else(|e| panic!("{what}: {e}"));
    check(response, status, code, what).await
}

async fn check(response: Response, status: StatusCode, code: &str, what: &str) -> Value {
    assert_ne!(response.status(), StatusCode::INTERNAL_SERVER_ERROR, "{what}: never a 500");
    assert_eq!(response.status(), status, "{what}");
    let header_id = response.headers().get("x-request-id").map(|v| v.to_str().unwrap().to_string());
    let body = assert_error(response, status, code).await;
    assert_eq!(header_id.as_deref(), body["error"]["request_id"].as_str(), "{what}: x-request-id header vs body");
    body
}

fn details(body: &Value) -> Vec<(String, String)> {
    body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["field"].as_str().unwrap().to_string(), d["issue"].as_str().unwrap().to_string()))
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected.iter().map(|(f, i)| (f.to_string(), i.to_string())).collect()
}

/// A JSON request with raw body bytes.
fn raw_json(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: impl Into<Vec<u8>>,
) -> RequestBuilder {
    app.req(method, path, token).header("content-type", "application/json").body(body.into())
}

async fn post_count(app: &TestApp, token: &str) -> usize {
    let list: Value = app.get("/posts?limit=100", Some(token)).await.json().await.unwrap();
    list["data"].as_array().unwrap().len()
}

fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

/// Access-token claims as the server issues them, for `sub`, claiming the admin role.
fn claims(sub: &str) -> Value {
    json!({
        "sub": sub, "role": "admin", "jti": uuid::Uuid::now_v7().to_string(),
        "sid": uuid::Uuid::now_v7().to_string(), "typ": "access",
        "iat": now_secs(), "exp": now_secs() + 600, "iss": "polyport",
    })
}

/// An HS256 JWT over `claims` signed with `secret`.
fn hs256(claims: &Value, secret: &str) -> String {
    let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
    jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256), claims, &key).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Bodies
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn malformed_json_is_an_invalid_request() {
    let app = spawn_app().await;
    let user = app.member("ada").await;
    let post = app.create_post(&user, "original", &[]).await;
    let post_path = format!("/posts/{}", post["id"].as_str().unwrap());
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", br#"{"title": "x", "body": "#.to_vec()),
        ("trailing garbage", br#"{"title": "x"} {"title": "y"}"#.to_vec()),
        ("trailing text", br#"{"title": "x"}garbage"#.to_vec()),
        ("an array", br#"[{"title": "x"}]"#.to_vec()),
        ("a string", br#""title""#.to_vec()),
        ("null", b"null".to_vec()),
        ("empty", Vec::new()),
        ("single quotes", b"{'title': 'x'}".to_vec()),
        ("invalid UTF-8", b"{\"title\": \"\xff\xfe\"}".to_vec()),
        ("a lone surrogate", br#"{"title": "\ud800"}"#.to_vec()),
        ("deep nesting", deep.into_bytes()),
    ];
    for (what, body) in cases {
        let rb = raw_json(&app, Method::POST, "/posts", Some(&user.token), body.clone());
        refused(rb, StatusCode::BAD_REQUEST, "INVALID_REQUEST", &format!("create: {what}")).await;
        let rb = raw_json(&app, Method::PATCH, &post_path, Some(&user.token), body.clone());
        refused(rb, StatusCode::BAD_REQUEST, "INVALID_REQUEST", &format!("update: {what}")).await;
        let rb = raw_json(&app, Method::POST, "/users", None, body);
        refused(rb, StatusCode::BAD_REQUEST, "INVALID_REQUEST", &format!("register: {what}")).await;
    }
    assert_eq!(post_count(&app, &user.token).await, 1, "nothing was created");
    let stored: Value = app.get(&post_path, Some(&user.token)).await.json().await.unwrap();
    assert_eq!((stored["title"].as_str(), stored["version"].as_i64()), (Some("original"), Some(1)));
}

#[tokio::test]
async fn wrong_types_are_an_invalid_request() {
    let app = spawn_app().await;
    let user = app.member("ada").await;
    let me = format!("/users/{}", user.id);
    // Each detail names the client's own field (never `body`, which is also a post field).
    let cases = [
        (Method::POST, "/posts".to_string(), json!({"title": 5}), "title"),
        (Method::POST, "/posts".to_string(), json!({"title": ["x"]}), "title"),
        (Method::POST, "/posts".to_string(), json!({"title": "x", "tags": "rust"}), "tags"),
        (Method::POST, "/posts".to_string(), json!({"title": "x", "tags": [1, 2]}), "tags[0]"),
        (Method::POST, "/posts".to_string(), json!({"title": "x", "body": {"nested": true}}), "body"),
        (Method::PATCH, me.clone(), json!({"name": 5}), "name"),
        (Method::PATCH, me.clone(), json!({"role": "god"}), "role"),
        (Method::PATCH, me.clone(), json!({"role": "ADMIN"}), "role"),
        (Method::POST, "/users".to_string(), json!({"email": true, "name": "x", "password": PASSWORD}), "email"),
        (Method::POST, "/auth/login".to_string(), json!({"email": ["a@b.co"], "password": PASSWORD}), "email"),
        (Method::POST, "/api-keys".to_string(), json!({"name": "k", "scopes": "posts:read"}), "scopes"),
        (Method::POST, "/posts".to_string(), json!(["not", "an", "object"]), "$"),
    ];
    for (method, path, body, field) in cases {
        let rb = app.req(method.clone(), &path, Some(&user.token)).json(&body);
        let err = refused(rb, StatusCode::BAD_REQUEST, "INVALID_REQUEST", &format!("{method} {path} {body}")).await;
        assert_eq!(details(&err), pairs(&[(field, "invalid_type")]), "{err}");
    }
    let rb = app.req(Method::POST, "/posts", Some(&user.token)).json(&json!({"title": "x", "bogus": 1}));
    let err = refused(rb, StatusCode::BAD_REQUEST, "INVALID_REQUEST", "unknown field").await;
    assert_eq!(details(&err), pairs(&[("bogus", "unknown_field")]), "{err}");
    let rb = app.req(Method::GET, "/posts?limit=abc", None);
    let err = refused(rb, StatusCode::BAD_REQUEST, "INVALID_REQUEST", "limit=abc").await;
    assert_eq!(details(&err), pairs(&[("limit", "invalid")]), "{err}");
    assert_eq!(err["error"]["message"], "invalid query parameter `limit`", "no deserializer text: {err}");
    assert_eq!(post_count(&app, &user.token).await, 0);
    let profile: Value = app.get("/users/me", Some(&user.token)).await.json().await.unwrap();
    assert_eq!((profile["name"].as_str(), profile["role"].as_str()), (Some("ada"), Some("member")));
}

#[tokio::test]
async fn unknown_fields_are_an_invalid_request() {
    let app = spawn_app().await;
    let user = app.member("ada").await;
    let post = app.create_post(&user, "draft", &[]).await;
    let post_path = format!("/posts/{}", post["id"].as_str().unwrap());
    let cases = [
        (Method::POST, "/posts".to_string(), json!({"title": "x", "author_id": "someone-else"})),
        (Method::POST, "/posts".to_string(), json!({"title": "x", "status": "published"})),
        (Method::PATCH, post_path.clone(), json!({"status": "published"})),
        (Method::PATCH, format!("/users/{}", user.id), json!({"password": "a new password!"})),
        (
            Method::POST,
            "/users".to_string(),
            json!({"email": "e@example.com", "name": "E", "password": PASSWORD, "role": "admin"}),
        ),
        (
            Method::POST,
            "/auth/login".to_string(),
            json!({"email": user.email, "password": PASSWORD, "remember_me": true}),
        ),
        (Method::POST, "/api-keys".to_string(), json!({"name": "k", "scopes": ["posts:read"], "user_id": "someone"})),
    ];
    for (method, path, body) in cases {
        let rb = app.req(method.clone(), &path, Some(&user.token)).json(&body);
        refused(rb, StatusCode::BAD_REQUEST, "INVALID_REQUEST", &format!("{method} {path} {body}")).await;
    }
    let stored: Value = app.get(&post_path, Some(&user.token)).await.json().await.unwrap();
    assert_eq!(stored["status"], "draft");
    assert_eq!(post_count(&app, &user.token).await, 1);
}

#[tokio::test]
async fn a_body_without_a_json_content_type_is_an_unsupported_media_type() {
    let app = spawn_app().await;
    let user = app.member("ada").await;
    let body = r#"{"title": "x"}"#;
    let no_type = app.req(Method::POST, "/posts", Some(&user.token)).body(body);
    let err = refused(no_type, StatusCode::UNSUPPORTED_MEDIA_TYPE, "INVALID_REQUEST", "no content-type").await;
    assert_eq!(details(&err), pairs(&[("content-type", "unsupported")]));
    for content_type in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"] {
        let rb = app.req(Method::POST, "/posts", Some(&user.token)).header("content-type", content_type).body(body);
        refused(rb, StatusCode::UNSUPPORTED_MEDIA_TYPE, "INVALID_REQUEST", content_type).await;
    }
    assert_eq!(post_count(&app, &user.token).await, 0);
}

#[tokio::test]
async fn an_oversize_body_with_a_content_length_is_payload_too_large() {
    let app = spawn_app().await;
    let user = app.member("ada").await;
    let big = format!(r#"{{"title": "x", "body": "{}"}}"#, "a".repeat(BODY_LIMIT));
    let rb = raw_json(&app, Method::POST, "/posts", Some(&user.token), big.clone());
    refused(rb, StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE", "create with a big body").await;
    let rb = raw_json(&app, Method::POST, "/users", None, big);
    refused(rb, StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE", "register with a big body").await;

    // A declared length alone is enough: the body is never read.
    let (status, headers, body) =
        raw_request(&app, "POST /api/v1/posts", &format!("Content-Length: {}\r\n", BODY_LIMIT + 1), b"{").await;
    assert_raw_error(status, &headers, &body, 413, "PAYLOAD_TOO_LARGE");
    assert_eq!(post_count(&app, &user.token).await, 0);
}

#[tokio::test]
async fn an_oversize_chunked_body_is_payload_too_large() {
    let app = spawn_app().await;
    let user = app.member("ada").await;
    let auth = format!("Authorization: Bearer {}\r\n", user.token);
    for (what, target, extra) in [
        ("register", "POST /api/v1/users", String::new()),
        ("create", "POST /api/v1/posts", auth.clone()),
        ("create with an Idempotency-Key", "POST /api/v1/posts", format!("{auth}Idempotency-Key: big-1\r\n")),
    ] {
        let (status, headers, body) = chunked_request(&app, target, &extra, BODY_LIMIT + 64 * 1024).await;
        assert_raw_error(status, &headers, &body, 413, "PAYLOAD_TOO_LARGE");
        eprintln!("{what}: 413");
    }
    assert_eq!(post_count(&app, &user.token).await, 0);
}

/// Sends `target` with a chunked JSON body of about `size` bytes from one task while reading the
/// answer from another (the server answers before the body ends and may reset the connection).
async fn chunked_request(app: &TestApp, target: &str, extra_headers: &str, size: usize) -> (u16, String, String) {
    let stream = TcpStream::connect(app.addr).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let head = format!(
        "{target} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n{extra_headers}Connection: close\r\n\r\n",
        app.addr
    );
    let writer = tokio::spawn(async move {
        wr.write_all(head.as_bytes()).await?;
        let opening = br#"{"title": "x", "body": ""#;
        wr.write_all(format!("{:x}\r\n", opening.len()).as_bytes()).await?;
        wr.write_all(opening).await?;
        wr.write_all(b"\r\n").await?;
        let chunk = vec![b'a'; 16 * 1024];
        let mut sent = 0;
        while sent < size {
            wr.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).await?;
            wr.write_all(&chunk).await?;
            wr.write_all(b"\r\n").await?;
            sent += chunk.len();
        }
        wr.write_all(b"2\r\n\"}\r\n0\r\n\r\n").await?;
        wr.flush().await
    });
    let response = read_response(&mut rd).await;
    writer.abort();
    response
}

/// Sends a request head plus `body` as is, and reads the answer.
async fn raw_request(app: &TestApp, target: &str, extra_headers: &str, body: &[u8]) -> (u16, String, String) {
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "{target} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n{extra_headers}Connection: close\r\n\r\n",
        app.addr
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let _ = stream.write_all(body).await;
    let (mut rd, _wr) = stream.into_split();
    read_response(&mut rd).await
}

/// Reads until the connection ends (a reset after the answer is fine); returns (status,
/// lowercased header block, body).
async fn read_response(rd: &mut tokio::net::tcp::OwnedReadHalf) -> (u16, String, String) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, rd.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
        if response_complete(&buf) {
            break;
        }
    }
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no response head in {text:?}"));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status line");
    (status, head.to_lowercase(), body.to_string())
}

fn response_complete(buf: &[u8]) -> bool {
    let text = String::from_utf8_lossy(buf);
    let Some((head, body)) = text.split_once("\r\n\r\n") else { return false };
    head.to_lowercase()
        .lines()
        .find_map(|l| l.strip_prefix("content-length:").and_then(|n| n.trim().parse::<usize>().ok()))
        .is_some_and(|n| body.len() >= n)
}

fn assert_raw_error(status: u16, headers: &str, body: &str, expected_status: u16, code: &str) {
    assert_eq!(status, expected_status, "{headers}\n{body}");
    assert!(headers.contains("content-type: application/json"), "{headers}");
    let body: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("JSON envelope: {e}: {body}"));
    assert_eq!(body["error"]["code"], code);
    let id = body["error"]["request_id"].as_str().expect("a request id");
    assert!(headers.contains(&format!("x-request-id: {}", id.to_lowercase())), "{headers}");
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn every_bad_field_of_a_post_is_reported_at_once() {
    let app = spawn_app().await;
    let user = app.member("ada").await;
    let bad = json!({"title": "   ", "body": "x".repeat(100_001), "tags": ["ok", "Bad", "", "a b"]});
    let err = refused(
        app.req(Method::POST, "/posts", Some(&user.token)).json(&bad),
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
        "create",
    )
    .await;
    let expected = [
        ("title", "required"),
        ("body", "too_long"),
        ("tags[1]", "invalid_format"),
        ("tags[2]", "invalid_format"),
        ("tags[3]", "invalid_format"),
    ];
    assert_eq!(details(&err), pairs(&expected));

    let post = app.create_post(&user, "fine", &["ok"]).await;
    let path = format!("/posts/{}", post["id"].as_str().unwrap());
    for (body, expected) in [
        (
            json!({"title": "t".repeat(201), "tags": ["UPPER"]}),
            vec![("title", "too_long"), ("tags[0]", "invalid_format")],
        ),
        (json!({"title": "bell\u{7}"}), vec![("title", "invalid_characters")]),
        (json!({"tags": (0..11).map(|i| format!("t{i}")).collect::<Vec<_>>()}), vec![("tags", "too_many")]),
        (json!({"tags": ["x".repeat(33)]}), vec![("tags[0]", "invalid_format")]),
    ] {
        let rb = app.req(Method::PATCH, &path, Some(&user.token)).json(&body);
        let err = refused(rb, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED", "update").await;
        assert_eq!(details(&err), pairs(&expected), "{body}");
    }
    let stored: Value = app.get(&path, Some(&user.token)).await.json().await.unwrap();
    assert_eq!((stored["title"].as_str(), stored["version"].as_i64()), (Some("fine"), Some(1)));
    assert_eq!(stored["tags"], json!(["ok"]));
    assert_eq!(post_count(&app, &user.token).await, 1);
}

#[tokio::test]
async fn a_registration_reports_every_bad_field_at_once() {
    let app = spawn_app().await;
    let body = json!({"email": "not-an-email", "name": "   ", "password": "short"});
    let err = refused(
        app.req(Method::POST, "/users", None).json(&body),
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
        "register",
    )
    .await;
    assert_eq!(details(&err), pairs(&[("email", "invalid_format"), ("name", "required"), ("password", "too_short")]));
    let body = json!({"email": format!("{}@example.com", "a".repeat(250)), "name": "n".repeat(101), "password": "p".repeat(129)});
    let err = refused(
        app.req(Method::POST, "/users", None).json(&body),
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
        "register",
    )
    .await;
    assert_eq!(details(&err), pairs(&[("email", "too_long"), ("name", "too_long"), ("password", "too_long")]));
    let err = refused(
        app.req(Method::POST, "/users", None).json(&json!({})),
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
        "empty",
    )
    .await;
    assert_eq!(details(&err), pairs(&[("email", "required"), ("name", "required"), ("password", "required")]));
    assert!(app.event_types().await.is_empty(), "nobody was registered");
}

// ---------------------------------------------------------------------------------------------
// Pagination parameters
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn out_of_range_limits_are_clamped_and_non_numbers_refused() {
    let app = spawn_app().await;
    let user = app.member("ada").await;
    for i in 0..101 {
        let r = app.post("/posts", Some(&user.token), json!({"title": format!("post {i}")})).await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    for (limit, expected) in
        [("1000000", 100), ("9223372036854775807", 100), ("0", 1), ("-5", 1), ("-9223372036854775808", 1)]
    {
        let r = app.get(&format!("/posts?limit={limit}"), Some(&user.token)).await;
        assert_eq!(r.status(), StatusCode::OK, "limit={limit}");
        let page: Value = r.json().await.unwrap();
        assert_eq!(page["data"].as_array().unwrap().len(), expected, "limit={limit}");
        assert_eq!(page["has_more"], true, "limit={limit}");
    }
    let r = app.get("/users?limit=0", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    for limit in ["abc", "1.5", "1e3", "99999999999999999999", "%FF", "ten"] {
        for list in ["/posts", "/users"] {
            let rb = app.req(Method::GET, &format!("{list}?limit={limit}"), Some(&user.token));
            refused(rb, StatusCode::BAD_REQUEST, "INVALID_REQUEST", &format!("{list}?limit={limit}")).await;
        }
    }
}

#[tokio::test]
async fn a_forged_cursor_is_an_invalid_request() {
    let app = spawn_app().await;
    let user = app.member("ada").await;
    for i in 0..3 {
        app.published_post(&user, &format!("post {i}")).await;
    }
    let page: Value = app.get("/posts?limit=1", None).await.json().await.unwrap();
    let real = page["next_cursor"].as_str().expect("a next page").to_string();
    let (payload, mac) = real.split_once('.').unwrap();
    let mut flipped = mac.chars().collect::<Vec<_>>();
    flipped[3] = if flipped[3] == 'A' { 'B' } else { 'A' };
    let flipped: String = flipped.into_iter().collect();
    let other_key = format!("{}.{mac}", URL_SAFE_NO_PAD.encode("posts|||\n00000000-0000-7000-8000-000000000000"));
    for cursor in [
        "garbage".to_string(),
        "a.b".to_string(),
        "....".to_string(),
        format!("{payload}.{flipped}"),
        format!("{payload}."),
        format!("{payload}x.{mac}"),
        other_key,
        "A".repeat(600),
        "%FF%FE".to_string(),
    ] {
        let rb = app.req(Method::GET, &format!("/posts?limit=1&cursor={cursor}"), None);
        refused(rb, StatusCode::BAD_REQUEST, "INVALID_REQUEST", &format!("cursor {cursor:.40}")).await;
    }
    let r = app.get(&format!("/posts?limit=1&cursor={real}"), None).await;
    assert_eq!(r.status(), StatusCode::OK, "the real cursor still works");
}

#[tokio::test]
async fn a_cursor_only_continues_the_query_it_came_from() {
    let app = spawn_app().await;
    let user = app.member("ada").await;
    for i in 0..3 {
        let post = app.create_post(&user, &format!("post {i}"), &["rust"]).await;
        let r =
            app.post(&format!("/posts/{}/publish", post["id"].as_str().unwrap()), Some(&user.token), json!({})).await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    let page: Value = app.get("/posts?limit=1", None).await.json().await.unwrap();
    let cursor = page["next_cursor"].as_str().expect("a next page").to_string();
    for other in [
        "/posts?status=published".to_string(),
        "/posts?tag=rust".to_string(),
        format!("/posts?author_id={}", user.id),
        format!("/users/{}/posts", user.id),
        "/users".to_string(),
    ] {
        let path = format!("{other}{}limit=1&cursor={cursor}", if other.contains('?') { "&" } else { "?" });
        let err = refused(app.req(Method::GET, &path, None), StatusCode::BAD_REQUEST, "INVALID_REQUEST", &path).await;
        assert_eq!(details(&err), pairs(&[("cursor", "mismatch")]), "{path}");
    }
    let r = app.get(&format!("/posts?limit=1&cursor={cursor}"), None).await;
    assert_eq!(r.status(), StatusCode::OK);
}

// ---------------------------------------------------------------------------------------------
// Credentials
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_alg_none_token_is_refused() {
    let app = spawn_app().await;
    let user = app.member("ada").await;
    let payload = b64(&claims(&user.id));
    for header in [
        json!({"alg": "none", "typ": "JWT"}),
        json!({"alg": "None", "typ": "JWT"}),
        json!({"alg": "HS256", "typ": "JWT"}),
    ] {
        for token in [format!("{}.{payload}.", b64(&header)), format!("{}.{payload}", b64(&header))] {
            for path in ["/users/me", "/users", "/posts"] {
                let rb = app.req(Method::GET, path, Some(&token));
                refused(rb, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", &format!("{header} on {path}")).await;
            }
        }
    }
}

#[tokio::test]
async fn a_token_signed_with_another_secret_is_refused() {
    let app = spawn_app().await;
    let user = app.member("ada").await;
    let honest = hs256(&claims(&user.id), "test-secret-test-secret-test-secret-0123");
    let r = app.get("/users/me", Some(&honest)).await;
    assert_eq!(r.status(), StatusCode::OK, "control: a well-made token with the server's secret works");

    let forged = hs256(&claims(&user.id), "another-secret-another-secret-another-0");
    for path in ["/users/me", "/users", "/posts"] {
        let rb = app.req(Method::GET, path, Some(&forged));
        refused(rb, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", path).await;
    }
    let rb = app.req(Method::POST, "/posts", Some(&forged)).json(&json!({"title": "forged"}));
    refused(rb, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", "write with a forged token").await;
    assert_eq!(post_count(&app, &user.token).await, 0);
}

#[tokio::test]
async fn a_token_with_a_flipped_signature_or_edited_claims_is_refused() {
    let app = spawn_app().await;
    let user = app.member("ada").await;
    let (head_and_payload, signature) = user.token.rsplit_once('.').unwrap();
    let mut sig: Vec<char> = signature.chars().collect();
    sig[10] = if sig[10] == 'x' { 'y' } else { 'x' };
    let flipped = format!("{head_and_payload}.{}", sig.into_iter().collect::<String>());
    let (head, _) = head_and_payload.split_once('.').unwrap();
    let promoted = format!("{head}.{}.{signature}", b64(&claims(&user.id)));
    let wrong_issuer = {
        let mut c = claims(&user.id);
        c["iss"] = json!("someone-else");
        hs256(&c, "test-secret-test-secret-test-secret-0123")
    };
    for (what, token) in [
        ("flipped signature", flipped),
        ("edited claims", promoted),
        ("wrong issuer", wrong_issuer),
        ("no signature", head_and_payload.to_string()),
        ("extra segment", format!("{}.AAAA", user.token)),
    ] {
        let rb = app.req(Method::GET, "/users/me", Some(&token));
        refused(rb, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", what).await;
    }
    assert_eq!(app.get("/users/me", Some(&user.token)).await.status(), StatusCode::OK, "the real token works");
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let app = spawn_app_with(Store::Sqlite, |s| s.access_token_ttl_secs = 1).await.unwrap();
    let user = app.member("ada").await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    for path in ["/users/me", "/posts"] {
        let rb = app.req(Method::GET, path, Some(&user.token));
        let err = refused(rb, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", path).await;
        assert!(err["error"]["message"].as_str().unwrap().contains("expired"), "{err}");
    }
}

#[tokio::test]
async fn garbage_credentials_are_refused_never_treated_as_anonymous() {
    let app = spawn_app().await;
    let user = app.member("ada").await;
    let long = format!("Bearer {}", "a".repeat(10_000));
    let both = format!("Bearer {}", user.token);
    let authorizations = [
        "Basic dXNlcjpwYXNzd29yZA==",
        "Digest username=\"x\"",
        "Token abc",
        "Bearer",
        "Bearer ",
        "Bearer    ",
        "Bearer not-a-jwt",
        "Bearer a.b.c",
        "Bearer a.b.c.d.e",
        user.token.as_str(),
        long.as_str(),
    ];
    for value in authorizations {
        let rb = app.client.get(app.api("/posts")).header("authorization", value);
        refused(rb, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", &format!("authorization {value:.30}")).await;
    }
    for key in [
        "",
        "not-a-key",
        "ppk_",
        "ppk_made-up-but-well-shaped-0000000000000000000000",
        &format!("ppk_{}", "a".repeat(500)),
    ] {
        let rb = app.client.get(app.api("/posts")).header("x-api-key", key);
        refused(rb, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", &format!("x-api-key {key:.30}")).await;
    }
    let rb = app.client.get(app.api("/posts")).header("authorization", both).header("x-api-key", "ppk_x");
    refused(rb, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", "a token and a key at once").await;
}

#[tokio::test]
async fn non_utf8_header_bytes_are_refused_cleanly() {
    let app = spawn_app().await;
    let user = app.member("ada").await;
    let bytes = |b: &[u8]| HeaderValue::from_bytes(b).unwrap();
    let rb = app.client.get(app.api("/posts")).header("authorization", bytes(b"Bearer \xff\xfe\xfd"));
    refused(rb, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", "non-UTF-8 authorization").await;
    let rb = app.client.get(app.api("/posts")).header("x-api-key", bytes(b"ppk_\xff\xfe"));
    refused(rb, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", "non-UTF-8 x-api-key").await;
    let rb = app
        .req(Method::POST, "/posts", Some(&user.token))
        .header("idempotency-key", bytes(b"key-\xff"))
        .json(&json!({"title": "x"}));
    refused(rb, StatusCode::BAD_REQUEST, "INVALID_REQUEST", "non-UTF-8 idempotency-key").await;
    let rb =
        app.req(Method::PATCH, "/posts/x", Some(&user.token)).header("if-match", bytes(b"\"v\xff\"")).json(&json!({}));
    let r = rb.send().await.unwrap();
    assert!(matches!(r.status(), StatusCode::NOT_FOUND | StatusCode::PRECONDITION_FAILED), "{}", r.status());
    let r = app.client.get(app.api("/posts")).header("x-request-id", bytes(b"id-\xff")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let id = r.headers()["x-request-id"].to_str().expect("a replaced, printable request id");
    assert!(!id.is_empty() && !id.starts_with("id-"), "{id}");
    assert_eq!(post_count(&app, &user.token).await, 0);
}

#[tokio::test]
async fn a_malformed_idempotency_key_is_an_invalid_request() {
    let app = spawn_app().await;
    let user = app.member("ada").await;
    for key in ["", "has space", &"k".repeat(256)] {
        let rb = app
            .req(Method::POST, "/posts", Some(&user.token))
            .header("idempotency-key", key)
            .json(&json!({"title": "x"}));
        let err = refused(rb, StatusCode::BAD_REQUEST, "INVALID_REQUEST", &format!("idempotency-key {key:.20}")).await;
        assert_eq!(details(&err), pairs(&[("idempotency_key", "invalid_format")]));
    }
    assert_eq!(post_count(&app, &user.token).await, 0);
}

// ---------------------------------------------------------------------------------------------
// Paths, routes, methods
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn absurd_path_ids_are_not_found_or_invalid_never_a_500() {
    let app = spawn_app().await;
    let admin = app.with_role("admin", polyport::domain::user::Role::Admin).await;
    let long = "a".repeat(10_000);
    for id in [long.as_str(), "%FF%FE", "%00", "..%2F..%2Fetc%2Fpasswd", "'%20OR%201=1--", "%F0%9F%92%A9", "%20"] {
        for (method, path) in [
            (Method::GET, format!("/posts/{id}")),
            (Method::PATCH, format!("/posts/{id}")),
            (Method::DELETE, format!("/posts/{id}")),
            (Method::POST, format!("/posts/{id}/publish")),
            (Method::POST, format!("/posts/{id}/unpublish")),
            (Method::GET, format!("/users/{id}")),
            (Method::PATCH, format!("/users/{id}")),
            (Method::DELETE, format!("/users/{id}")),
            (Method::DELETE, format!("/api-keys/{id}")),
        ] {
            absurd_id_is_refused(&app, &admin.token, method, &path).await;
        }
    }
    // `/users/{id}/posts` runs the id through the `author_id` filter rules first (see below).
    for id in ["%FF%FE", "%00", "%F0%9F%92%A9"] {
        absurd_id_is_refused(&app, &admin.token, Method::GET, &format!("/users/{id}/posts")).await;
    }
}

#[tokio::test]
async fn a_long_user_id_in_a_post_list_path_is_not_found() {
    let app = spawn_app().await;
    let admin = app.with_role("admin", polyport::domain::user::Role::Admin).await;
    let path = format!("/users/{}/posts", "a".repeat(10_000));
    let rb = app.req(Method::GET, &path, Some(&admin.token));
    refused(rb, StatusCode::NOT_FOUND, "NOT_FOUND", "GET /users/{long}/posts, like GET /users/{long}").await;
}

async fn absurd_id_is_refused(app: &TestApp, token: &str, method: Method, path: &str) {
    let what = format!("{method} {}…{}", &path[..path.len().min(30)], &path[path.len().saturating_sub(20)..]);
    let r = app.req(method, path, Some(token)).json(&json!({})).send().await.unwrap();
    let (status, code) = match r.status() {
        StatusCode::NOT_FOUND => (StatusCode::NOT_FOUND, "NOT_FOUND"),
        StatusCode::BAD_REQUEST => (StatusCode::BAD_REQUEST, "INVALID_REQUEST"),
        other => panic!("{what}: {other} {}", r.text().await.unwrap()),
    };
    check(r, status, code, &what).await;
}

#[tokio::test]
async fn unknown_routes_are_not_found_in_our_envelope() {
    let app = spawn_app().await;
    for path in
        ["/api/v1/nope", "/api/v1/posts/x/y/z", "/api/v2/posts", "/nope", "/api/v1/users/me/secrets", "/api/v1/"]
    {
        for method in [Method::GET, Method::POST, Method::DELETE] {
            let rb = app.client.request(method.clone(), app.url(path));
            refused(rb, StatusCode::NOT_FOUND, "NOT_FOUND", &format!("{method} {path}")).await;
        }
    }
}

#[tokio::test]
async fn a_wrong_method_is_405_in_our_envelope() {
    let app = spawn_app().await;
    for (method, path) in [
        (Method::PUT, "/api/v1/posts"),
        (Method::DELETE, "/api/v1/posts"),
        (Method::PUT, "/api/v1/posts/x"),
        (Method::GET, "/api/v1/posts/x/publish"),
        (Method::PATCH, "/api/v1/users"),
        (Method::GET, "/api/v1/auth/login"),
        (Method::POST, "/api/v1/api-keys/x"),
        (Method::POST, "/healthz"),
    ] {
        let rb = app.client.request(method.clone(), app.url(path));
        refused(rb, StatusCode::METHOD_NOT_ALLOWED, "INVALID_REQUEST", &format!("{method} {path}")).await;
    }
}

#[tokio::test]
async fn a_wrong_method_names_the_allowed_methods() {
    let app = spawn_app().await;
    let r = app.client.put(app.url("/api/v1/posts")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    let allow = r.headers().get("allow").expect("an Allow header").to_str().unwrap().to_string();
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
}

// ---------------------------------------------------------------------------------------------
// Request ids
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn every_error_carries_its_request_id_in_the_header_and_the_body() {
    let app = spawn_app().await;
    let user = app.member("ada").await;
    let requests = [
        (app.client.get(app.url("/nope")), StatusCode::NOT_FOUND, "NOT_FOUND"),
        (app.client.put(app.api("/posts")), StatusCode::METHOD_NOT_ALLOWED, "INVALID_REQUEST"),
        (raw_json(&app, Method::POST, "/posts", Some(&user.token), "{"), StatusCode::BAD_REQUEST, "INVALID_REQUEST"),
        (app.req(Method::GET, "/users/me", Some("nope")), StatusCode::UNAUTHORIZED, "UNAUTHENTICATED"),
        (app.req(Method::GET, "/users", None).query(&[("limit", "x")]), StatusCode::BAD_REQUEST, "INVALID_REQUEST"),
        (
            app.req(Method::POST, "/posts", Some(&user.token)).json(&json!({"title": ""})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_FAILED",
        ),
        (
            app.req(Method::POST, "/api-keys", Some(&user.token))
                .json(&json!({"name": "k", "scopes": ["posts:everything"]})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_FAILED",
        ),
        (
            app.req(Method::DELETE, &format!("/users/{}", user.id), Some(&user.token)),
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
        ),
        (app.req(Method::GET, "/posts/missing", None), StatusCode::NOT_FOUND, "NOT_FOUND"),
        (
            raw_json(&app, Method::POST, "/users", None, vec![b' '; BODY_LIMIT + 1]),
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
        ),
    ];
    let mut seen = std::collections::HashSet::new();
    for (rb, status, code) in requests {
        let body = refused(rb, status, code, code).await;
        assert!(seen.insert(body["error"]["request_id"].as_str().unwrap().to_string()), "request ids are unique");
    }
    let r = app.get("/posts", None).await;
    assert!(r.headers().get("x-request-id").is_some_and(|v| !v.is_empty()), "successes carry one too");
}

#[tokio::test]
async fn a_well_formed_client_request_id_is_echoed_and_a_malformed_one_replaced() {
    let app = spawn_app().await;
    for good in ["abc-123", "req_01J.trace:42", &"x".repeat(128)] {
        let r = app.client.get(app.api("/posts")).header("x-request-id", good).send().await.unwrap();
        assert_eq!(r.headers()["x-request-id"], good, "success keeps {good}");
        let rb = app.client.get(app.api("/posts/missing")).header("x-request-id", good);
        let body = refused(rb, StatusCode::NOT_FOUND, "NOT_FOUND", good).await;
        assert_eq!(body["error"]["request_id"], good);
    }
    for bad in ["", "has spaces", "semi;colon", "quote\"d", "slash/ed", "<script>", &"x".repeat(129), &"y".repeat(300)]
    {
        let rb = app.client.get(app.api("/posts/missing")).header("x-request-id", bad);
        let body = refused(rb, StatusCode::NOT_FOUND, "NOT_FOUND", &format!("request id {bad:.20}")).await;
        let id = body["error"]["request_id"].as_str().unwrap();
        assert_ne!(id, bad, "a malformed id is replaced");
        assert!(
            !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
        );
    }
}

// ---------------------------------------------------------------------------------------------
// NUL characters reach the store as text (PostgreSQL refuses them in TEXT)
// ---------------------------------------------------------------------------------------------

mod nul_characters_are_refused_or_stored_never_a_500 {
    use crate::helpers::{Store, spawn_app_with};

    #[tokio::test]
    async fn on_sqlite() {
        super::nul_characters_are_refused_or_stored_never_a_500(spawn_app_with(Store::Sqlite, |_| {}).await.unwrap())
            .await;
    }

    #[tokio::test]
    async fn on_postgres() {
        let Some(app) = spawn_app_with(Store::Postgres, |_| {}).await else {
            eprintln!("TEST_DATABASE_URL not set: PostgreSQL case skipped");
            return;
        };
        super::nul_characters_are_refused_or_stored_never_a_500(app).await;
    }
}

async fn nul_characters_are_refused_or_stored_never_a_500(app: TestApp) {
    let user = app.member("ada").await;
    let post = app.create_post(&user, "fine", &[]).await;
    let post_path = format!("/posts/{}", post["id"].as_str().unwrap());
    let mut failures = Vec::new();
    for (method, path, body) in [
        (Method::GET, "/posts/%00".to_string(), None),
        (Method::DELETE, "/posts/a%00b".to_string(), None),
        (Method::GET, "/users/a%00b".to_string(), None),
        (Method::GET, "/users/a%00b/posts".to_string(), None),
        (Method::DELETE, "/api-keys/a%00b".to_string(), None),
        (Method::GET, "/posts?author_id=%00".to_string(), None),
        (Method::POST, "/auth/login".to_string(), Some(json!({"email": "a\u{0}@example.com", "password": PASSWORD}))),
        (Method::POST, "/auth/refresh".to_string(), Some(json!({"refresh_token": "a\u{0}b"}))),
        (Method::POST, "/posts".to_string(), Some(json!({"title": "nul", "body": "before\u{0}after"}))),
        (Method::PATCH, post_path.clone(), Some(json!({"body": "before\u{0}after"}))),
        (Method::POST, "/api-keys".to_string(), Some(json!({"name": "nul", "scopes": ["posts:read\u{0}"]}))),
        (
            Method::POST,
            "/users".to_string(),
            Some(json!({"email": "n@example.com", "name": "n", "password": "pass\u{0}word-long-enough"})),
        ),
    ] {
        let mut rb = app.req(method.clone(), &path, Some(&user.token));
        if let Some(b) = &body {
            rb = rb.json(b);
        }
        let status = rb.send().await.unwrap().status();
        if status.is_server_error() {
            failures.push(format!("{method} {path} {body:?}: {status}"));
        }
    }
    assert!(failures.is_empty(), "never a 500:\n{}", failures.join("\n"));
}
