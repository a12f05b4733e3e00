//! SSE for an open browser tab: stream tokens that live with their session or API key (so
//! EventSource's reconnects keep working, across restarts) and end with it, and the opening
//! frame's resume point.

use std::time::Duration;

use polyport::domain::user::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Store, TestApp, TestUser, assert_error, restart, spawn_app_with};
use crate::realtime_support::{Cred, Sse, WAIT, enc, last_id, sse_request, str_of, within, ws};

async fn app_with(tweak: impl FnOnce(&mut polyport::Settings)) -> TestApp {
    spawn_app_with(Store::Sqlite, tweak).await.unwrap()
}

/// A stream token minted with `user`'s access token: (token, expires_in).
async fn stream_token(app: &TestApp, user: &TestUser) -> (String, u64) {
    let r = app.post("/events/token", Some(&user.token), json!({})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let minted: Value = r.json().await.unwrap();
    (str_of(&minted, "token").to_string(), minted["expires_in"].as_u64().unwrap())
}

fn with_token(token: &str) -> String {
    format!("topics=posts&access_token={}", enc(token))
}

/// The opening block's `id:` (the stream's resume point).
async fn opening_id(app: &TestApp, query: &str, last_event_id: Option<i64>) -> (Sse, i64) {
    let response = sse_request(app, query, Cred::Anonymous, last_event_id).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut stream = Sse::new(response);
    let first = stream.block_within(WAIT).await.expect("an opening block");
    assert_eq!(first.retry.as_deref(), Some("3000"), "{first:?}");
    assert!(first.comments.iter().any(|c| c == "connected"), "{first:?}");
    assert!(first.data.is_none() && first.event.is_none(), "the opening block is no event: {first:?}");
    let id = first.id.as_deref().unwrap_or_else(|| panic!("the opening block carries an id: {first:?}"));
    (stream, id.parse().unwrap())
}

fn id_of(v: &Value) -> &str {
    str_of(v, "id")
}

#[tokio::test]
async fn a_stream_token_keeps_opening_streams_after_the_access_token_that_minted_it_expired() {
    let app = app_with(|s| s.access_token_ttl_secs = 1).await;
    let ada = app.member("ada").await;
    let (token, expires_in) = stream_token(&app, &ada).await;
    assert_eq!(expires_in, 30 * 86_400, "by default a stream token lives as long as a refresh token");
    let (mut open, _) = opening_id(&app, &with_token(&token), None).await;
    // Older than the access token (1 s) that minted it, as a tab's reconnect after an hour is.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = app.get("/users/me", Some(&ada.token)).await;
    assert_error(r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED").await;

    let fresh = app.login_as(ada.id.clone(), ada.email.clone()).await;
    let draft = app.create_post(&fresh, "still ada's", &[]).await;
    assert_eq!(open.event().await.envelope["data"], draft, "the open stream outlives the access token");
    let (mut reopened, _) = opening_id(&app, &with_token(&token), None).await;
    let second = app.create_post(&fresh, "after a reconnect", &[]).await;
    assert_eq!(reopened.event().await.envelope["data"], second, "the same URL reconnects, still as ada");
}

#[tokio::test]
async fn a_stream_token_past_its_own_lifetime_is_refused() {
    let app = app_with(|s| s.stream_token_ttl_secs = Some(1)).await;
    let ada = app.member("ada").await;
    let (token, expires_in) = stream_token(&app, &ada).await;
    assert_eq!(expires_in, 1);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = sse_request(&app, &with_token(&token), Cred::Anonymous, None).await;
    assert_error(r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED").await;
}

#[tokio::test]
async fn signing_out_refuses_the_stream_token_on_connect_and_ends_its_open_stream() {
    let app = app_with(|s| s.stream_revalidate_secs = 1).await;
    let ada = app.member("ada").await;
    let (token, _) = stream_token(&app, &ada).await;
    let (mut stream, _) = opening_id(&app, &with_token(&token), None).await;
    let draft = app.create_post(&ada, "before logout", &[]).await;
    assert_eq!(stream.event().await.envelope["data"], draft);

    let r = app.post("/auth/logout", None, json!({"refresh_token": ada.refresh_token})).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let blocks = stream.until_end(Duration::from_secs(4)).await;
    let error = blocks.iter().rev().find(|b| b.event.as_deref() == Some("error")).expect("an error before the end");
    let error: Value = serde_json::from_str(error.data.as_deref().unwrap()).unwrap();
    assert_eq!(error["code"], "UNAUTHENTICATED");
    let r = sse_request(&app, &with_token(&token), Cred::Anonymous, None).await;
    assert_error(r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED").await;
}

#[tokio::test]
async fn a_reused_refresh_token_revokes_the_family_and_with_it_the_stream_token() {
    let app = app_with(|_| {}).await;
    let ada = app.member("ada").await;
    let (token, _) = stream_token(&app, &ada).await;
    let first = app.post("/auth/refresh", None, json!({"refresh_token": ada.refresh_token})).await;
    assert_eq!(first.status(), StatusCode::OK);
    let (rotated, _) = opening_id(&app, &with_token(&token), None).await;
    drop(rotated); // a rotation is no revocation: the session lives on
    // The rotated-away token presented again: reuse, the whole family is revoked.
    let reuse = app.post("/auth/refresh", None, json!({"refresh_token": ada.refresh_token})).await;
    assert_eq!(reuse.status(), StatusCode::UNAUTHORIZED);
    let r = sse_request(&app, &with_token(&token), Cred::Anonymous, None).await;
    assert_error(r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED").await;
}

#[tokio::test]
async fn a_deleted_users_stream_token_is_refused() {
    let app = app_with(|_| {}).await;
    let admin = app.with_role("root", Role::Admin).await;
    let ada = app.member("ada").await;
    let (token, _) = stream_token(&app, &ada).await;
    let r = app.delete(&format!("/users/{}", ada.id), Some(&admin.token)).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = sse_request(&app, &with_token(&token), Cred::Anonymous, None).await;
    assert_error(r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED").await;
}

#[tokio::test]
async fn a_demoted_editors_stream_token_reopens_with_the_role_the_records_say_now() {
    let app = app_with(|_| {}).await;
    let admin = app.with_role("root", Role::Admin).await;
    let eve = app.with_role("eve", Role::Editor).await;
    let bob = app.member("bob").await;
    let (token, _) = stream_token(&app, &eve).await;
    let (mut stream, _) = opening_id(&app, &with_token(&token), None).await;
    let draft = app.create_post(&bob, "bob's draft", &[]).await;
    assert_eq!(stream.event().await.envelope["data"], draft, "an editor reads every draft");
    drop(stream);

    let r = app.patch(&format!("/users/{}", eve.id), Some(&admin.token), json!({"role": "member"})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let (mut stream, _) = opening_id(&app, &with_token(&token), None).await;
    app.create_post(&bob, "another draft of bob's", &[]).await;
    let published = app.published_post(&bob, "public now").await;
    let e = stream.event().await;
    assert_eq!(e.envelope["data"]["id"], published["id"], "a member no longer sees bob's drafts: {}", e.envelope);
}

#[tokio::test]
async fn an_api_key_mints_a_stream_token_that_ends_with_the_key() {
    let app = app_with(|s| s.stream_revalidate_secs = 1).await;
    let ada = app.member("ada").await;
    let r = app.post("/api-keys", Some(&ada.token), json!({"name": "tab", "scopes": ["posts:read"]})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let key: Value = r.json().await.unwrap();
    let r = app
        .client
        .post(app.api("/events/token"))
        .header("x-api-key", str_of(&key, "key"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let token = str_of(&r.json::<Value>().await.unwrap(), "token").to_string();
    let (mut stream, _) = opening_id(&app, &with_token(&token), None).await;
    let draft = app.create_post(&ada, "seen through the key", &[]).await;
    assert_eq!(stream.event().await.envelope["data"], draft, "the token acts as the key's owner");

    let r = app.delete(&format!("/api-keys/{}", id_of(&key)), Some(&ada.token)).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let blocks = stream.until_end(Duration::from_secs(4)).await;
    assert!(blocks.iter().any(|b| b.event.as_deref() == Some("error")), "{blocks:?}");
    let r = sse_request(&app, &with_token(&token), Cred::Anonymous, None).await;
    assert_error(r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED").await;
}

#[tokio::test]
async fn a_stream_token_is_no_access_token_anywhere_else() {
    let app = app_with(|_| {}).await;
    let ada = app.member("ada").await;
    let (token, _) = stream_token(&app, &ada).await;
    let r = app.get("/users/me", Some(&token)).await;
    assert_error(r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED").await;
    let r = app.post("/events/token", Some(&token), json!({})).await;
    assert_error(r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED").await;
    let r =
        app.client.post(app.url("/graphql")).bearer_auth(&token).json(&json!({"query": "{ me { id } }"})).send().await;
    let r = r.unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{body}");
    let mut socket = ws(&app).await;
    socket.send_json(json!({"type": "auth", "token": token})).await;
    let closed = socket.closed_within(WAIT).await;
    assert_eq!(closed.code, Some(4401), "{closed:?}");
}

#[tokio::test]
async fn the_opening_frame_carries_the_head_of_the_log_and_resuming_from_it_loses_nothing() {
    let app = app_with(|_| {}).await;
    let ada = app.member("ada").await;
    let (token, _) = stream_token(&app, &ada).await;
    let (_, first_head) = opening_id(&app, &with_token(&token), None).await;
    assert_eq!(first_head, last_id(&app).await, "the head of the log");
    app.create_post(&ada, "before the tab opened", &[]).await;

    let (stream, head) = opening_id(&app, &with_token(&token), None).await;
    assert_eq!(head, last_id(&app).await);
    drop(stream); // the tab lost its connection before any event arrived
    let missed = app.create_post(&ada, "while disconnected", &[]).await;
    let (mut resumed, resumed_at) = opening_id(&app, &with_token(&token), Some(head)).await;
    assert_eq!(resumed_at, head, "a resumed stream opens at the client's own resume point");
    let e = resumed.event().await;
    assert_eq!(e.envelope["data"], missed, "the write made while disconnected is replayed");
    assert_eq!(e.id, last_id(&app).await);
}

#[tokio::test]
async fn the_same_stream_url_and_last_event_id_resume_after_a_server_restart_with_nothing_lost() {
    let app = app_with(|_| {}).await;
    let ada = app.member("ada").await;
    let (token, _) = stream_token(&app, &ada).await;
    let url = with_token(&token);
    let (mut stream, _) = opening_id(&app, &url, None).await;
    app.create_post(&ada, "before the restart", &[]).await;
    let seen = stream.event().await;

    let app = restart(app, |_| {}).await;
    let blocks = within(WAIT, "the stream to end with the old server", stream.until_end(WAIT)).await;
    assert!(blocks.iter().all(|b| b.data.is_none() || b.event.as_deref() == Some("error")), "{blocks:?}");
    let ada = app.login_as(ada.id.clone(), ada.email.clone()).await;
    let first = app.create_post(&ada, "after the restart, before the reconnect", &[]).await;
    let second = app.create_post(&ada, "and another", &[]).await;

    let (mut resumed, _) = opening_id(&app, &url, Some(seen.id)).await;
    let replayed = resumed.events(2).await;
    assert_eq!(replayed[0].envelope["data"], first);
    assert_eq!(replayed[1].envelope["data"], second);
    let live = app.create_post(&ada, "live again", &[]).await;
    assert_eq!(resumed.event().await.envelope["data"], live);
}

#[tokio::test]
async fn no_log_line_holds_a_stream_token_or_the_access_token_that_minted_it() {
    use crate::process::{SECRET, binary, sigterm, start, temp_dir};
    let dir = temp_dir();
    let mut cmd = binary(&dir);
    cmd.env("POLYPORT_JWT_SECRET", SECRET).env("POLYPORT_LOG_FORMAT", "json").env("POLYPORT_LOG", "debug");
    let (mut child, base, lines) = start(cmd);
    let client = reqwest::Client::new();
    let email = format!("logs-{}@example.com", uuid::Uuid::now_v7().simple());
    let password = crate::helpers::PASSWORD;
    let r =
        client.post(format!("{base}/api/v1/users")).json(&json!({"email": email, "name": "L", "password": password}));
    assert_eq!(r.send().await.unwrap().status(), StatusCode::CREATED);
    let r = client.post(format!("{base}/api/v1/auth/login")).json(&json!({"email": email, "password": password}));
    let login: Value = r.send().await.unwrap().json().await.unwrap();
    let access = str_of(&login, "access_token").to_string();
    let r = client.post(format!("{base}/api/v1/events/token")).bearer_auth(&access).send().await.unwrap();
    let token = str_of(&r.json::<Value>().await.unwrap(), "token").to_string();

    let url = format!("{base}/api/v1/events?topics=posts&access_token={}", enc(&token));
    let mut stream = Sse::new(client.get(&url).send().await.unwrap());
    assert!(stream.block_within(WAIT).await.is_some_and(|b| b.id.is_some()));
    // Refusals are logged too: the token where an access token belongs, and a tampered one.
    let r = client.get(format!("{base}/api/v1/users/me")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let tampered = format!("{base}/api/v1/events?topics=posts&access_token={}x", enc(&token));
    assert_eq!(client.get(&tampered).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    drop(stream);

    sigterm(&child);
    assert!(child.wait().unwrap().success());
    let logged: Vec<String> = lines.try_iter().collect();
    assert!(logged.iter().any(|l| l.contains("/api/v1/events")), "the stream requests were logged: {logged:#?}");
    let signature = token.rsplit('.').next().unwrap();
    for line in &logged {
        assert!(!line.contains(signature), "a stream token in the logs: {line}");
        assert!(!line.contains(access.rsplit('.').next().unwrap()), "an access token in the logs: {line}");
    }
    let _ = std::fs::remove_dir_all(dir);
}
