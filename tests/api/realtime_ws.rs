//! WebSocket over real sockets: subscriptions and live events, authentication by header and by
//! frame, authorization at delivery, request frames with REST's validation, idempotency and rate
//! limits, protocol errors and limits, origins, slow consumers, resume, expiry, revocation and
//! shutdown.

use std::time::{Duration, Instant};

use polyport::domain::post::PostStatus;
use polyport::domain::user::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Error as WsError;

use crate::helpers::{Store, TestApp, spawn_app_with};
use crate::on_every_store;
use crate::realtime_support::{
    WAIT, Ws, assert_ws_matches_log, event_ids, last_id, log, post_event_ids_after, str_of, within, ws, ws_bearer,
    ws_try,
};

on_every_store!(
    subscribed_clients_receive_documented_event_frames_matching_rest_and_the_log,
    another_member_never_receives_a_drafts_events_on_any_topic_while_author_and_editor_do,
    request_frames_run_post_operations_with_the_same_validation_as_rest,
    a_repeated_idempotency_key_replays_the_first_response_without_a_second_event,
    a_reconnected_client_resumes_with_after_with_no_gap_and_no_duplicate,
);

async fn app_with(tweak: impl FnOnce(&mut polyport::Settings)) -> TestApp {
    spawn_app_with(Store::Sqlite, tweak).await.unwrap()
}

async fn ok_json(r: reqwest::Response, what: &str) -> Value {
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert!(status.is_success(), "{what}: {status} {body}");
    body
}

fn id_of(v: &Value) -> &str {
    str_of(v, "id")
}

/// Asserts `frame` is an error reply to `id` with `code`; returns its details.
fn assert_error_frame(frame: &Value, id: Option<&str>, code: &str) -> Value {
    assert_eq!(frame["type"], "error", "{frame}");
    assert_eq!(frame["code"], code, "{frame}");
    assert!(frame["message"].as_str().is_some_and(|m| !m.is_empty()), "{frame}");
    match id {
        Some(id) => assert_eq!(frame["id"], id, "{frame}"),
        None => assert!(frame["id"].is_null(), "no id: {frame}"),
    }
    assert!(frame["details"].is_array(), "{frame}");
    frame["details"].clone()
}

/// The REST error body of a refused request.
async fn rest_error(r: reqwest::Response) -> Value {
    assert!(r.status().is_client_error(), "{}", r.status());
    let body: Value = r.json().await.unwrap();
    body["error"].clone()
}

/// Reads events from `ws` until every subscription in `subs` has received `last` (or later).
async fn events_until(ws: &mut Ws, subs: &[&str], last: i64) -> Vec<Value> {
    let mut got = Vec::new();
    within(WAIT, "every subscription to catch up", async {
        let mut done = std::collections::HashSet::new();
        while done.len() < subs.len() {
            let f = ws.event().await;
            if f["event_id"].as_i64().unwrap() >= last {
                done.insert(f["subscription"].as_str().unwrap().to_string());
            }
            got.push(f);
        }
    })
    .await;
    got
}

fn ids_for(frames: &[Value], sub: &str) -> Vec<i64> {
    event_ids(&frames.iter().filter(|f| f["subscription"] == sub).cloned().collect::<Vec<_>>())
}

async fn subscribed_clients_receive_documented_event_frames_matching_rest_and_the_log(app: TestApp) {
    let ada = app.member("ada").await;
    let mut client = ws_bearer(&app, &ada.token).await;
    assert!(client.subscribe("s1", &["posts"], None).await.is_empty(), "nothing from before the subscription");
    let opened_at = last_id(&app).await;

    let created = app.create_post(&ada, "Live", &["ws"]).await;
    let path = format!("/posts/{}", id_of(&created));
    let updated = ok_json(app.patch(&path, Some(&ada.token), json!({"title": "Live!"})).await, "patch").await;
    let published = ok_json(app.post(&format!("{path}/publish"), Some(&ada.token), json!({})).await, "publish").await;

    let mut ids = Vec::new();
    for (expected_type, rest) in
        [("post.created", &created), ("post.updated", &updated), ("post.published", &published)]
    {
        let frame = client.event().await;
        let mut keys: Vec<&str> = frame.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["data", "event_id", "event_type", "occurred_at", "subscription", "topic", "type"]);
        assert_eq!(frame["event_type"], expected_type);
        assert_eq!(frame["topic"], format!("posts/{}", id_of(&created)));
        assert_eq!(&frame["data"], rest, "data is what REST returned");
        ids.push(assert_ws_matches_log(&app, &frame, "s1").await);
    }
    assert_eq!(ids, post_event_ids_after(&app, opened_at).await);

    client.send_json(json!({"type": "unsubscribe", "id": "s1"})).await;
    let (reply, _) = client.recv_reply().await;
    assert_eq!(reply, json!({"type": "response", "id": "s1", "data": {"unsubscribed": true}}));
    app.create_post(&ada, "unheard", &[]).await;
    let quiet = tokio::time::timeout(Duration::from_millis(500), client.recv()).await;
    assert!(quiet.is_err(), "no event after unsubscribing: {quiet:?}");
    client.assert_alive().await;
}

#[tokio::test]
async fn credentials_by_upgrade_header_or_by_first_frame_identify_the_user() {
    let app = app_with(|_| {}).await;
    let ada = app.member("ada").await;

    let mut by_header = ws_bearer(&app, &ada.token).await;
    by_header.subscribe("s", &["posts"], None).await;

    let mut by_frame = ws(&app).await;
    by_frame.send_json(json!({"type": "auth", "token": ada.token, "id": "a1"})).await;
    let reply = by_frame.recv().await;
    assert_eq!(reply["type"], "response", "{reply}");
    assert_eq!(reply["id"], "a1");
    assert_eq!(reply["data"]["user_id"], ada.id.as_str());
    let expires_at = chrono::DateTime::parse_from_rfc3339(str_of(&reply["data"], "expires_at")).expect("RFC 3339");
    assert!(expires_at > chrono::Utc::now(), "{reply}");
    by_frame.subscribe("s", &["posts"], None).await;

    let mut by_key = {
        let r = app.post("/api-keys", Some(&ada.token), json!({"name": "ws", "scopes": ["posts:read"]})).await;
        let key = ok_json(r, "create key").await;
        ws_try(&app, &[("x-api-key", str_of(&key, "key"))], None).await.expect("upgrade with an API key")
    };
    by_key.subscribe("s", &["posts"], None).await;

    let draft = app.create_post(&ada, "ada's draft", &[]).await;
    for client in [&mut by_header, &mut by_frame, &mut by_key] {
        let frame = client.event().await;
        assert_eq!(frame["data"], draft, "the draft reaches ada however she authenticated");
    }
}

#[tokio::test]
async fn signing_in_after_subscribing_widens_the_feed_with_no_gap_and_no_duplicate() {
    let app = app_with(|_| {}).await;
    let ada = app.member("ada").await;
    let mut client = ws(&app).await;
    client.subscribe("s", &["posts"], None).await;
    let public = app.published_post(&ada, "public").await;
    let seen = client.event().await;
    assert_eq!(seen["event_type"], "post.published", "anonymous: the draft's creation was not delivered");
    assert_eq!(seen["data"]["id"], public["id"]);
    // Written while still anonymous, delivered once signed in: the feed reopens from the last
    // event it yielded, so nothing in between is lost or repeated.
    let hidden = app.create_post(&ada, "written before signing in", &[]).await;
    let reply = client.request_with(json!({"type": "auth", "id": "a1", "token": ada.token})).await;
    assert_eq!(reply["data"]["user_id"], ada.id.as_str(), "{reply}");
    let draft = app.create_post(&ada, "draft after signing in", &[]).await;
    let mut ids = Vec::new();
    while ids.len() < 2 {
        let frame = client.event().await;
        ids.push(frame["data"]["id"].clone());
    }
    assert_eq!(ids, vec![hidden["id"].clone(), draft["id"].clone()], "ada's drafts, once each, in order");
    let quiet = tokio::time::timeout(Duration::from_millis(300), client.recv()).await;
    assert!(quiet.is_err(), "no duplicate: {quiet:?}");
}

#[tokio::test]
async fn anonymous_clients_receive_published_posts_and_public_profiles_only() {
    let app = app_with(|_| {}).await;
    let ada = app.member("ada").await;
    let mut anon = ws(&app).await;
    anon.subscribe("p", &["posts"], None).await;
    anon.subscribe("u", &[&format!("users/{}", ada.id)], None).await;

    let draft = app.create_post(&ada, "draft", &[]).await;
    let path = format!("/posts/{}", id_of(&draft));
    ok_json(app.patch(&path, Some(&ada.token), json!({"title": "draft 2"})).await, "patch").await;
    let published = ok_json(app.post(&format!("{path}/publish"), Some(&ada.token), json!({})).await, "publish").await;
    let renamed =
        ok_json(app.patch(&format!("/users/{}", ada.id), Some(&ada.token), json!({"name": "Ada L"})).await, "rename")
            .await;

    let first = anon.event().await;
    assert_eq!((first["subscription"].as_str(), first["event_type"].as_str()), (Some("p"), Some("post.published")));
    assert_eq!(first["data"], published);
    assert_ws_matches_log(&app, &first, "p").await;
    let second = anon.event().await;
    assert_eq!(second["event_type"], "user.updated");
    assert_eq!(second["data"], json!({"id": ada.id, "name": renamed["name"]}), "public profile only");
    assert_ws_matches_log(&app, &second, "u").await;
}

async fn another_member_never_receives_a_drafts_events_on_any_topic_while_author_and_editor_do(app: TestApp) {
    let ada = app.member("ada").await;
    let bob = app.member("bob").await;
    let eve = app.with_role("eve", Role::Editor).await;
    let before = last_id(&app).await;

    let draft = app.create_post(&ada, "draft", &[]).await;
    let post_id = id_of(&draft).to_string();
    let path = format!("/posts/{post_id}");
    ok_json(app.patch(&path, Some(&ada.token), json!({"title": "draft, edited"})).await, "patch").await;

    let topics =
        [("all", "posts".to_string()), ("one", path[1..].to_string()), ("hers", format!("users/{}/posts", ada.id))];
    let subs: Vec<&str> = topics.iter().map(|(s, _)| *s).collect();
    let mut clients = vec![
        ("ada", ws_bearer(&app, &ada.token).await),
        ("eve (editor)", ws_bearer(&app, &eve.token).await),
        ("bob", ws_bearer(&app, &bob.token).await),
        ("anonymous", ws(&app).await),
    ];
    let mut early: Vec<Vec<Value>> = Vec::new();
    for (_, client) in &mut clients {
        let mut got = Vec::new();
        for (sub, topic) in &topics {
            got.extend(client.subscribe(sub, &[topic.as_str()], Some(before)).await);
        }
        early.push(got);
    }

    ok_json(app.patch(&path, Some(&ada.token), json!({"body": "live edit"})).await, "patch").await;
    ok_json(app.post(&format!("{path}/publish"), Some(&ada.token), json!({})).await, "publish").await;
    ok_json(app.post(&format!("{path}/unpublish"), Some(&eve.token), json!({})).await, "editor unpublishes").await;
    ok_json(app.patch(&path, Some(&ada.token), json!({"title": "back to draft"})).await, "patch").await;
    ok_json(app.post(&format!("{path}/publish"), Some(&ada.token), json!({})).await, "publish").await;

    let all = post_event_ids_after(&app, before).await;
    assert_eq!(all.len(), 7);
    let stored = log(&app).await;
    let published: Vec<i64> = stored
        .iter()
        .filter(|e| all.contains(&e.id) && e.event_type.as_str() == "post.published")
        .map(|e| e.id)
        .collect();
    let last = *all.last().unwrap();
    for ((who, client), early) in clients.iter_mut().zip(early) {
        let mut frames = early;
        frames.extend(events_until(client, &subs, last).await);
        let expected = if matches!(*who, "ada" | "eve (editor)") { &all } else { &published };
        for sub in &subs {
            assert_eq!(&ids_for(&frames, sub), expected, "{who} on {sub}");
        }
        for f in &frames {
            assert_ws_matches_log(&app, f, str_of(f, "subscription")).await;
            if !matches!(*who, "ada" | "eve (editor)") {
                assert_eq!(f["data"]["status"], "published", "{who} sees no draft: {f}");
            }
        }
        client.assert_alive().await;
    }
    assert_eq!(rest_status(&app, &bob.token, &post_id).await, StatusCode::OK, "bob may read it now it is public");
}

async fn rest_status(app: &TestApp, token: &str, id: &str) -> StatusCode {
    app.get(&format!("/posts/{id}"), Some(token)).await.status()
}

async fn request_frames_run_post_operations_with_the_same_validation_as_rest(app: TestApp) {
    let ada = app.member("ada").await;
    let bob = app.member("bob").await;
    let mut client = ws_bearer(&app, &ada.token).await;
    let before = last_id(&app).await;

    let bad = json!({"title": "   ", "body": "b", "tags": ["ok", "Bad", "", "a b"]});
    let reply = client.request("r1", "createPost", bad.clone()).await;
    let details = assert_error_frame(&reply, Some("r1"), "VALIDATION_FAILED");
    let rest = rest_error(app.post("/posts", Some(&ada.token), bad).await).await;
    assert_eq!(rest["code"], "VALIDATION_FAILED");
    assert_eq!(details, rest["details"], "the same details as REST");
    assert_eq!(last_id(&app).await, before, "nothing was written");

    let reply = client.request("r2", "createPost", json!({"title": "Hello", "body": "b", "tags": ["ws"]})).await;
    assert_eq!(reply["type"], "response", "{reply}");
    assert_eq!(reply["id"], "r2");
    assert!(reply.get("replayed").is_none(), "{reply}");
    let created = reply["data"].clone();
    let post_id = id_of(&created).to_string();
    let stored = app.core.deps.posts.get(&post_id).await.unwrap().expect("stored");
    assert_eq!((stored.title.as_str(), stored.author_id.as_str()), ("Hello", ada.id.as_str()));
    assert_eq!((stored.status, stored.tags.clone(), stored.version), (PostStatus::Draft, vec!["ws".to_string()], 1));
    assert_eq!(created, ok_json(app.get(&format!("/posts/{post_id}"), Some(&ada.token)).await, "get").await);

    let bad_update = json!({"title": "t".repeat(201), "tags": ["UPPER"]});
    let mut params = bad_update.clone();
    params["id"] = json!(post_id);
    let reply = client.request("r3", "updatePost", params).await;
    let details = assert_error_frame(&reply, Some("r3"), "VALIDATION_FAILED");
    let rest = rest_error(app.patch(&format!("/posts/{post_id}"), Some(&ada.token), bad_update).await).await;
    assert_eq!(details, rest["details"]);

    let reply = client.request("r4", "updatePost", json!({"id": post_id, "title": "Hello again"})).await;
    assert_eq!(reply["type"], "response", "{reply}");
    assert_eq!((reply["data"]["title"].as_str(), reply["data"]["version"].as_i64()), (Some("Hello again"), Some(2)));
    let stored = app.core.deps.posts.get(&post_id).await.unwrap().unwrap();
    assert_eq!((stored.title.as_str(), stored.version), ("Hello again", 2));

    let mut bobs = ws_bearer(&app, &bob.token).await;
    let reply = bobs.request("b1", "updatePost", json!({"id": post_id, "title": "mine now"})).await;
    let rest = rest_error(app.patch(&format!("/posts/{post_id}"), Some(&bob.token), json!({"title": "x"})).await).await;
    assert_error_frame(&reply, Some("b1"), rest["code"].as_str().unwrap());
    assert_eq!(rest["code"], "NOT_FOUND", "someone else's draft does not exist for bob");

    let reply = client.request("r5", "publishPost", json!({"id": post_id})).await;
    assert_eq!(reply["type"], "response", "{reply}");
    assert_eq!(reply["data"]["status"], "published");
    assert!(reply["data"]["published_at"].is_string());
    let stored = app.core.deps.posts.get(&post_id).await.unwrap().unwrap();
    assert_eq!(stored.status, PostStatus::Published);
    assert_eq!(reply["data"], ok_json(app.get(&format!("/posts/{post_id}"), None).await, "get").await);

    let reply = bobs.request("b2", "deletePost", json!({"id": post_id})).await;
    let rest = rest_error(app.delete(&format!("/posts/{post_id}"), Some(&bob.token)).await).await;
    assert_eq!(rest["code"], "FORBIDDEN");
    assert_error_frame(&reply, Some("b2"), "FORBIDDEN");

    let reply = client.request("r6", "deletePost", json!({"id": post_id})).await;
    assert_eq!(reply["type"], "response", "{reply}");
    assert!(app.core.deps.posts.get(&post_id).await.unwrap().is_none(), "deleted");
    let reply = client.request("r7", "deletePost", json!({"id": post_id})).await;
    assert_error_frame(&reply, Some("r7"), "NOT_FOUND");

    let types: Vec<&str> =
        log(&app).await.iter().filter(|e| e.id > before).map(|e| e.event_type.as_str()).collect::<Vec<_>>();
    assert_eq!(types, ["post.created", "post.updated", "post.published", "post.deleted"]);
}

async fn a_repeated_idempotency_key_replays_the_first_response_without_a_second_event(app: TestApp) {
    let ada = app.member("ada").await;
    let mut client = ws_bearer(&app, &ada.token).await;
    let params = json!({"title": "Once", "body": "", "tags": []});
    let frame = |id: &str, params: &Value| json!({"type": "request", "id": id, "op": "createPost", "params": params, "idempotency_key": "ws-key-1"});
    let first = client.request_with(frame("r1", &params)).await;
    assert_eq!(first["type"], "response", "{first}");
    assert!(first.get("replayed").is_none() || first["replayed"] == false, "{first}");
    let second = client.request_with(frame("r2", &params)).await;
    assert_eq!(second["type"], "response", "{second}");
    assert_eq!(second["id"], "r2");
    assert_eq!(second["replayed"], true, "{second}");
    assert_eq!(second["data"], first["data"], "the first response, replayed");
    let created = app.event_types().await.iter().filter(|t| *t == "post.created").count();
    assert_eq!(created, 1, "the replay created nothing");

    let other = client.request_with(frame("r3", &json!({"title": "Other"}))).await;
    assert_error_frame(&other, Some("r3"), "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(app.event_types().await.iter().filter(|t| *t == "post.created").count(), 1);
}

#[tokio::test]
async fn request_frames_spend_the_callers_rate_limit_budget() {
    let app = app_with(|s| s.rate_limit_per_minute = 5).await;
    let ada = app.member("ada").await;
    let mut client = ws_bearer(&app, &ada.token).await;
    let mut outcomes = Vec::new();
    for i in 0..8 {
        let id = format!("r{i}");
        let reply = client.request(&id, "createPost", json!({"title": format!("post {i}")})).await;
        let limited = reply["type"] == "error";
        if limited {
            assert_error_frame(&reply, Some(&id), "RATE_LIMITED");
        } else {
            assert_eq!(reply["type"], "response", "{reply}");
        }
        outcomes.push(limited);
    }
    let served = outcomes.iter().filter(|l| !**l).count();
    assert!((1..=5).contains(&served), "{outcomes:?}");
    assert!(outcomes.ends_with(&[true, true, true]), "once limited, stays limited: {outcomes:?}");
    let posts = app.event_types().await.iter().filter(|t| *t == "post.created").count();
    assert_eq!(posts, served);
    client.assert_alive().await;
    let r = app.get("/posts", Some(&ada.token)).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "one budget across protocols");
}

#[tokio::test]
async fn a_malformed_frame_is_answered_with_invalid_request_and_the_connection_stays_usable() {
    let app = app_with(|_| {}).await;
    let mut client = ws(&app).await;
    client.assert_alive().await;
    for bad in
        ["not json", "[1,2]", r#"{"type":"nope","id":"x"}"#, r#"{"type":"subscribe","id":"s1","topics":"posts"}"#]
    {
        client.send_text(bad.to_string()).await;
        let (reply, _) = client.recv_reply().await;
        assert_eq!(reply["type"], "error", "{bad}: {reply}");
        assert_eq!(reply["code"], "INVALID_REQUEST", "{bad}: {reply}");
        assert!(reply["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    client.subscribe("s1", &["posts"], None).await;
    client.assert_alive().await;
}

#[tokio::test]
async fn a_message_over_the_size_limit_closes_the_connection_with_1009() {
    let app = app_with(|s| s.ws_max_message_bytes = 1024).await;
    let mut client = ws(&app).await;
    client.send_json(json!({"type": "ping", "pad": "x".repeat(900)})).await;
    client.recv().await; // under the limit: served
    client.send_json(json!({"type": "ping", "pad": "x".repeat(2048)})).await;
    let closed = client.closed_within(WAIT).await;
    assert_eq!(closed.code, Some(1009), "{closed:?}");
}

#[tokio::test]
async fn a_silent_connection_without_credentials_is_closed_with_4401_after_5_seconds() {
    let app = app_with(|_| {}).await;
    let started = Instant::now();
    let mut silent = ws(&app).await;
    let mut talking = ws(&app).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    talking.assert_alive().await;

    let closed = silent.closed_within(Duration::from_secs(9)).await;
    assert_eq!(closed.code, Some(4401), "{closed:?}");
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(4500), "not before 5 s: {elapsed:?}");
    talking.assert_alive().await;
    talking.subscribe("s", &["posts"], None).await;
}

#[tokio::test]
async fn a_foreign_origin_is_refused_at_upgrade_while_same_and_allowed_origins_connect() {
    let app = app_with(|s| s.cors_origins = vec!["https://app.example".into()]).await;
    match ws_try(&app, &[("origin", "https://evil.example")], None).await {
        Err(WsError::Http(response)) => assert_eq!(response.status(), StatusCode::FORBIDDEN.as_u16()),
        Err(e) => panic!("a 403 expected, got {e}"),
        Ok(_) => panic!("a foreign origin was upgraded"),
    }
    let same = format!("http://{}", app.addr);
    for origin in [same.as_str(), "https://app.example"] {
        let mut client =
            ws_try(&app, &[("origin", origin)], None).await.unwrap_or_else(|e| panic!("{origin} refused: {e}"));
        client.assert_alive().await;
    }
    ws(&app).await.assert_alive().await;
}

#[tokio::test]
async fn subscriptions_beyond_the_per_connection_cap_are_refused() {
    let app = app_with(|s| s.ws_max_subscriptions = 2).await;
    let mut client = ws(&app).await;
    client.subscribe("s1", &["posts"], None).await;
    client.subscribe("s2", &["posts"], None).await;
    client.send_json(json!({"type": "subscribe", "id": "s3", "topics": ["posts"]})).await;
    let (reply, _) = client.recv_reply().await;
    assert_error_frame(&reply, Some("s3"), "RATE_LIMITED");
    client.send_json(json!({"type": "unsubscribe", "id": "s1"})).await;
    let (reply, _) = client.recv_reply().await;
    assert_eq!(reply["data"]["unsubscribed"], true, "{reply}");
    client.subscribe("s3", &["posts"], None).await;
}

async fn a_reconnected_client_resumes_with_after_with_no_gap_and_no_duplicate(app: TestApp) {
    let ada = app.member("ada").await;
    let mut client = ws_bearer(&app, &ada.token).await;
    client.subscribe("s1", &["posts"], None).await;
    app.published_post(&ada, "one").await;
    app.create_post(&ada, "two", &[]).await;
    let seen = [client.event().await, client.event().await];
    let resume_from = seen[1]["event_id"].as_i64().unwrap();
    drop(client); // gone mid-stream: the third event was sent but never read

    let third = app.published_post(&ada, "three").await;
    ok_json(app.patch(&format!("/posts/{}", id_of(&third)), Some(&ada.token), json!({"tags": ["x"]})).await, "patch")
        .await;
    let missed = post_event_ids_after(&app, resume_from).await;
    assert_eq!(missed.len(), 4);

    let mut again = ws_bearer(&app, &ada.token).await;
    let mut frames = again.subscribe("s2", &["posts"], Some(resume_from)).await;
    while frames.len() < missed.len() {
        frames.push(again.event().await);
    }
    assert_eq!(event_ids(&frames), missed, "exactly the missed events, in order");
    for f in &frames {
        assert_ws_matches_log(&app, f, "s2").await;
    }
    let live = app.create_post(&ada, "live", &[]).await;
    let next = again.event().await;
    assert_eq!(next["event_id"].as_i64(), Some(last_id(&app).await), "the live tail follows with no duplicate");
    assert_eq!(next["data"], live);
}

/// What a slow consumer saw: the server, the ids written while it did not read, and its close.
struct Lagged {
    app: TestApp,
    token: String,
    all: Vec<i64>,
    closed: crate::realtime_support::Closed,
}

const BIG_POSTS: usize = 80;

/// Two clients on one server; one stops reading while ~8 MB of events are written. The server's
/// send buffer is fixed at 64 KiB and the client's receive buffer at 4 KiB, so the kernel holds
/// well under 1 MB between them and the send queue of 8 frames must fill; the slow client reads
/// only once the server counted it as lagging, so the outcome never depends on timing. The normal client
/// must receive every event in order meanwhile; then the slow one reads until it is closed.
async fn slow_consumer() -> Lagged {
    slow_consumer_pausing(Duration::ZERO).await
}

/// `polyport_ws_lagged_clients_total` from `/metrics`.
async fn lagged_clients(app: &TestApp) -> u64 {
    let text = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let line = text.lines().find(|l| l.starts_with("polyport_ws_lagged_clients_total ")).expect("the lag counter");
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

/// The same, the slow client reading only `pause` after the server counted it as lagging.
async fn slow_consumer_pausing(pause: Duration) -> Lagged {
    let app = app_with(|s| {
        s.ws_send_queue = 8;
        s.tcp_send_buffer_bytes = Some(64 * 1024);
    })
    .await;
    let ada = app.member("ada").await;
    let mut slow = ws_try(&app, &[("authorization", &format!("Bearer {}", ada.token))], Some(4096)).await.unwrap();
    slow.subscribe("slow", &["posts"], None).await;
    let mut normal = ws_bearer(&app, &ada.token).await;
    normal.subscribe("normal", &["posts"], None).await;
    let start = last_id(&app).await;

    let body = "x".repeat(100_000);
    let normal_reader = tokio::spawn(async move {
        let mut ids = Vec::new();
        while ids.len() < BIG_POSTS {
            let f = within(Duration::from_secs(30), "the normal client's next event", normal.event()).await;
            ids.push(f["event_id"].as_i64().unwrap());
        }
        (normal, ids)
    });
    for i in 0..BIG_POSTS {
        let r = app.post("/posts", Some(&ada.token), json!({"title": format!("big {i}"), "body": body})).await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let all = post_event_ids_after(&app, start).await;
    assert_eq!(all.len(), BIG_POSTS);
    let (mut normal, normal_ids) =
        within(Duration::from_secs(60), "the normal client to receive everything", normal_reader).await.unwrap();
    assert_eq!(normal_ids, all, "the normal client received every event in order");
    normal.assert_alive().await;

    // The slow client still has not read. Wait for the server to give up on it (a full queue
    // that does not drain for the lag grace), then read after `pause`.
    within(Duration::from_secs(20), "the server to count the slow client as lagging", async {
        while lagged_clients(&app).await < 1 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    tokio::time::sleep(pause).await;
    let closed = slow.closed_within(Duration::from_secs(30)).await;
    if pause < Duration::from_secs(5) {
        assert_eq!(closed.code, Some(1013), "closed as lagging: {:?} {}", closed.code, closed.reason);
        assert!(closed.reason.starts_with("lagged; resume after "), "close reason: {}", closed.reason);
    } else {
        // Stalled past the server's close flush: a close frame cannot be delivered; dropped.
        assert!(matches!(closed.code, None | Some(1013)), "{:?} {}", closed.code, closed.reason);
    }
    let got = event_ids(&closed.frames);
    assert!(got.len() < BIG_POSTS, "the slow client got a prefix: {} events", got.len());
    // Dropped after the close flush, the connection may be reset: the kernel then discards
    // what the client had not read yet, so only a client still reading in time gets a prefix.
    assert!(pause >= Duration::from_secs(5) || !got.is_empty(), "a prefix before the close");
    assert_eq!(got, all[..got.len()], "what the slow client got has no gap");
    Lagged { app, token: ada.token, all, closed }
}

#[tokio::test]
async fn a_slow_consumer_is_closed_with_1013_and_told_it_lagged_without_delaying_others() {
    let Lagged { closed, .. } = slow_consumer().await;
    if let Some(error) = closed.frames.iter().find(|f| f["type"] == "error") {
        assert_eq!(closed.frames.last(), Some(error), "the error frame is the last before the close");
        let details = assert_error_frame(error, None, "UNAVAILABLE");
        assert_eq!(details[0]["field"], "subscription:slow", "{details}");
        assert!(str_of(&details[0], "issue").starts_with("lagged_after:"), "{details}");
    }
}

#[tokio::test]
async fn a_lagged_client_resumes_from_its_last_event_with_no_gap_and_no_duplicate() {
    let Lagged { app, token, all, closed } = slow_consumer().await;
    // Resume from the last event received, as a client would: reconnecting again (from its own
    // last event) should the replay itself be cut off, each time with no gap and no duplicate.
    let mut received = event_ids(&closed.frames);
    let mut reconnects = 0;
    let mut resumed = loop {
        let from = *received.last().unwrap();
        let mut client = ws_bearer(&app, &token).await;
        client.send_json(json!({"type": "subscribe", "id": "again", "topics": ["posts"], "after": from})).await;
        let mut frames = Vec::new();
        while received.len() + frames.len() < BIG_POSTS {
            match within(Duration::from_secs(30), "the replay", client.next_frame()).await {
                Ok(f) if f["type"] == "event" => frames.push(f),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        received.extend(event_ids(&frames));
        if received.len() == BIG_POSTS {
            break client;
        }
        reconnects += 1;
        assert!(reconnects < 10, "the replay makes no progress: {} of {BIG_POSTS} after {reconnects}", received.len());
    };
    assert_eq!(received, all, "everything, once, in order (reconnects during the replay: {reconnects})");
    let live = app.post("/posts", Some(&token), json!({"title": "after the lag"})).await;
    assert_eq!(live.status(), StatusCode::CREATED);
    assert_eq!(resumed.event().await["event_id"].as_i64(), Some(last_id(&app).await));
}

#[tokio::test]
async fn a_lagged_clients_resume_point_is_the_last_event_it_actually_received() {
    let Lagged { closed, .. } = slow_consumer().await;
    let last_got = *event_ids(&closed.frames).last().unwrap();
    let error = closed.frames.iter().find(|f| f["type"] == "error");
    assert!(
        closed.reason == format!("lagged; resume after {last_got}"),
        "the close reason must name the last event the client received ({last_got}), else resuming from it \
         skips the events still queued when it lagged: {:?}; error frame: {error:?}",
        closed.reason,
    );
    if let Some(error) = error {
        let details = assert_error_frame(error, None, "UNAVAILABLE");
        assert_eq!(details, json!([{"field": "subscription:slow", "issue": format!("lagged_after:{last_got}")}]));
    }
}

#[tokio::test]
async fn an_expired_token_gets_an_unauthenticated_error_then_close_4401() {
    let app = app_with(|s| {
        s.access_token_ttl_secs = 2;
        s.stream_revalidate_secs = 1;
    })
    .await;
    let ada = app.member("ada").await;
    let mut client = ws_bearer(&app, &ada.token).await;
    client.subscribe("s", &["posts"], None).await;
    let closed = client.closed_within(Duration::from_secs(6)).await;
    assert_eq!(closed.code, Some(4401), "{closed:?}");
    let error = closed.frames.last().unwrap_or_else(|| panic!("an error frame before the close: {closed:?}"));
    assert_error_frame(error, None, "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_fresh_auth_frame_keeps_the_connection_open_past_the_first_tokens_expiry() {
    let app = app_with(|s| {
        s.access_token_ttl_secs = 5;
        s.stream_revalidate_secs = 1;
    })
    .await;
    let ada = app.member("ada").await;
    let mut client = ws(&app).await;
    let expiry = |reply: &Value| {
        assert_eq!(reply["type"], "response", "{reply}");
        assert_eq!(reply["data"]["user_id"], ada.id.as_str(), "{reply}");
        chrono::DateTime::parse_from_rfc3339(str_of(&reply["data"], "expires_at")).unwrap().to_utc()
    };
    let first = expiry(&client.request_with(json!({"type": "auth", "id": "a1", "token": ada.token})).await);
    client.subscribe("s", &["posts"], None).await;
    sleep_until(first - chrono::Duration::milliseconds(1500)).await;

    let fresh = app.login_as(ada.id.clone(), ada.email.clone()).await;
    let second = expiry(&client.request_with(json!({"type": "auth", "id": "a2", "token": fresh.token})).await);
    assert!(second > first, "{second} > {first}");
    sleep_until(first + chrono::Duration::milliseconds(2000)).await;
    assert!(chrono::Utc::now() < second, "the test outran the second token");
    client.assert_alive().await;
    let draft = app.create_post(&fresh, "still here", &[]).await;
    assert_eq!(client.event().await["data"], draft);

    let closed = client.closed_within(Duration::from_secs(8)).await;
    assert_eq!(closed.code, Some(4401), "the second token's expiry still ends it: {closed:?}");
    assert!(chrono::Utc::now() >= second, "not before the second token expired");
}

async fn sleep_until(at: chrono::DateTime<chrono::Utc>) {
    if let Ok(d) = (at - chrono::Utc::now()).to_std() {
        tokio::time::sleep(d).await;
    }
}

#[tokio::test]
async fn revoking_the_api_key_closes_its_connection_with_4401() {
    let app = app_with(|s| s.stream_revalidate_secs = 1).await;
    let ada = app.member("ada").await;
    let key = ok_json(
        app.post("/api-keys", Some(&ada.token), json!({"name": "ws", "scopes": ["posts:read"]})).await,
        "create key",
    )
    .await;
    let mut client = ws_try(&app, &[("x-api-key", str_of(&key, "key"))], None).await.expect("upgrade");
    client.subscribe("s", &["posts"], None).await;
    let draft = app.create_post(&ada, "seen with the key", &[]).await;
    assert_eq!(client.event().await["data"], draft);

    let r = app.delete(&format!("/api-keys/{}", id_of(&key)), Some(&ada.token)).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let revoked_at = Instant::now();
    let closed = client.closed_within(Duration::from_secs(4)).await;
    assert_eq!(closed.code, Some(4401), "{closed:?}");
    let error = closed.frames.last().unwrap_or_else(|| panic!("an error frame before the close: {closed:?}"));
    assert_error_frame(error, None, "UNAUTHENTICATED");
    assert!(revoked_at.elapsed() < Duration::from_secs(3), "within the revalidation interval");
}

#[tokio::test]
async fn shutdown_closes_connections_with_1001_and_the_server_stops() {
    let mut app = app_with(|_| {}).await;
    let ada = app.member("ada").await;
    let mut client = ws_bearer(&app, &ada.token).await;
    client.subscribe("s", &["posts"], None).await;
    let mut anon = ws(&app).await;
    anon.assert_alive().await;
    app.shutdown.trigger();
    for c in [&mut client, &mut anon] {
        let closed = c.closed_within(Duration::from_secs(5)).await;
        assert_eq!(closed.code, Some(1001), "{closed:?}");
    }
    let server = app.server.take().unwrap();
    let result = within(WAIT, "the server task to finish", server).await;
    assert!(matches!(result, Ok(Ok(()))), "{result:?}");
}

/// Writes `posts` posts with `body_len`-char bodies, then replays them all on one connection
/// that reads as fast as it can; fails if the server cuts the replay off.
async fn replay_backlog(tweak: impl FnOnce(&mut polyport::Settings), posts: usize, body_len: usize) {
    let app = app_with(tweak).await;
    let ada = app.member("ada").await;
    let start = last_id(&app).await;
    let body = "x".repeat(body_len);
    for chunk in (0..posts).collect::<Vec<_>>().chunks(10) {
        let writes =
            chunk.iter().map(|i| app.post("/posts", Some(&ada.token), json!({"title": format!("p{i}"), "body": body})));
        for r in futures::future::join_all(writes).await {
            assert_eq!(r.status(), StatusCode::CREATED);
        }
    }
    let all = post_event_ids_after(&app, start).await;
    assert_eq!(all.len(), posts);
    let mut client = ws_bearer(&app, &ada.token).await;
    client.send_json(json!({"type": "subscribe", "id": "s", "topics": ["posts"], "after": start})).await;
    let mut frames = Vec::new();
    while frames.len() < all.len() {
        let f = within(WAIT, "the next replayed frame", client.next_frame()).await.unwrap_or_else(|c| {
            panic!(
                "closed during the replay after {} of {} events although the client reads as fast as it can: {c:?}",
                frames.len(),
                all.len()
            )
        });
        match f["type"].as_str() {
            Some("event") => frames.push(f),
            Some("response") => assert_eq!(f["id"], "s"),
            _ => panic!("the replay was interrupted after {} of {} events: {f}", frames.len(), all.len()),
        }
    }
    assert_eq!(event_ids(&frames), all);
}

#[tokio::test]
async fn a_client_replaying_a_large_backlog_while_reading_is_not_cut_off_as_lagging() {
    replay_backlog(|s| s.ws_send_queue = 8, 40, 100_000).await;
}

#[tokio::test]
async fn a_client_replaying_a_backlog_larger_than_the_default_send_queue_receives_all_of_it() {
    replay_backlog(|_| {}, 600, 10).await;
}

#[tokio::test]
async fn a_client_stalled_longer_than_the_close_flush_is_still_disconnected() {
    let Lagged { closed, .. } = slow_consumer_pausing(Duration::from_secs(8)).await;
    assert!(closed.frames.iter().all(|f| f["type"] == "event" || f["type"] == "error"), "{:?}", closed.frames);
}
