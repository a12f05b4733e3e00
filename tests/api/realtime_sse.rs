//! Server-Sent Events over real sockets: live delivery, framing, authorization at delivery,
//! resume without gap or duplicate, stream tokens, caps, and streams ended by expiry,
//! revocation and shutdown.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Store, TestApp, assert_error, spawn_app_with};
use crate::on_every_store;
use crate::realtime_support::{
    Cred, SseBlock, WAIT, assert_sse_matches_log, enc, last_id, opened, post_event_ids_after, sse, sse_request, str_of,
    within,
};

on_every_store!(
    an_author_receives_the_events_of_their_posts_live_as_rest_returned_them,
    an_anonymous_stream_receives_published_posts_and_public_profiles_only,
    a_dropped_stream_resumes_from_last_event_id_with_no_gap_and_no_duplicate,
    a_dropped_stream_resumes_from_after_with_no_gap_and_no_duplicate,
);

async fn app_with(tweak: impl FnOnce(&mut polyport::Settings)) -> TestApp {
    spawn_app_with(Store::Sqlite, tweak).await.unwrap()
}

fn id_of(post: &Value) -> &str {
    str_of(post, "id")
}

async fn ok_json(r: reqwest::Response, what: &str) -> Value {
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert!(status.is_success(), "{what}: {status} {body}");
    body
}

/// The `event: error` block that ended a stream, from the blocks read until its end.
fn final_error(blocks: &[SseBlock]) -> Value {
    let pos = blocks.iter().rposition(|b| b.event.as_deref() == Some("error")).unwrap_or_else(|| {
        panic!("an `event: error` before the end: {blocks:?}");
    });
    assert!(
        blocks[pos + 1..].iter().all(|b| b.data.is_none()),
        "nothing is delivered after the error: {:?}",
        &blocks[pos + 1..]
    );
    serde_json::from_str(blocks[pos].data.as_deref().expect("error data")).expect("error data is JSON")
}

async fn an_author_receives_the_events_of_their_posts_live_as_rest_returned_them(app: TestApp) {
    let ada = app.member("ada").await;
    let response = sse_request(&app, "topics=posts", Cred::Bearer(&ada.token), None).await;
    let mut stream = opened(response).await;
    let opened_at = last_id(&app).await;

    let created = app.create_post(&ada, "Live", &["rust"]).await;
    let path = format!("/posts/{}", id_of(&created));
    let updated = ok_json(app.patch(&path, Some(&ada.token), json!({"title": "Live, edited"})).await, "patch").await;
    let published = ok_json(app.post(&format!("{path}/publish"), Some(&ada.token), json!({})).await, "publish").await;

    let events = stream.events(3).await;
    let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
    assert_eq!(ids, post_event_ids_after(&app, opened_at).await, "exactly the events after the stream opened");
    let types: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(types, ["post.created", "post.updated", "post.published"]);
    for (event, rest) in events.iter().zip([&created, &updated, &published]) {
        assert_sse_matches_log(&app, event).await;
        assert_eq!(&event.envelope["data"], rest, "data is what REST returned for {}", event.event);
        assert_eq!(event.envelope["topic"], format!("posts/{}", id_of(&created)));
        let keys: Vec<&String> = event.envelope.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 5, "envelope is {{id, type, topic, occurred_at, data}}: {keys:?}");
    }
}

async fn an_anonymous_stream_receives_published_posts_and_public_profiles_only(app: TestApp) {
    let ada = app.member("ada").await;
    let bob = app.member("bob").await;
    let mut stream = sse(&app, &format!("topics=posts,users/{}", ada.id), Cred::Anonymous, None).await;
    let opened_at = last_id(&app).await;

    let draft = app.create_post(&ada, "secret draft", &[]).await;
    let path = format!("/posts/{}", id_of(&draft));
    ok_json(app.patch(&path, Some(&ada.token), json!({"body": "still secret"})).await, "patch").await;
    let published = ok_json(app.post(&format!("{path}/publish"), Some(&ada.token), json!({})).await, "publish").await;
    app.create_post(&ada, "another draft", &[]).await;
    let bobs = app.published_post(&bob, "bob's").await;
    let ada_after =
        ok_json(app.patch(&format!("/users/{}", ada.id), Some(&ada.token), json!({"name": "Ada L"})).await, "rename")
            .await;

    let events = stream.events(3).await;
    let got: Vec<(&str, &str)> = events.iter().map(|e| (e.event.as_str(), str_of(&e.envelope["data"], "id"))).collect();
    assert_eq!(
        got,
        [("post.published", id_of(&draft)), ("post.published", id_of(&bobs)), ("user.updated", ada.id.as_str())],
        "drafts never reach an anonymous stream"
    );
    for e in &events {
        assert!(e.id > opened_at);
        assert_sse_matches_log(&app, e).await;
    }
    assert_eq!(events[0].envelope["data"], published);
    assert_eq!(events[1].envelope["data"], bobs);
    assert_eq!(
        events[2].envelope["data"],
        json!({"id": ada.id, "name": ada_after["name"]}),
        "a public profile only: no email, no role"
    );
    stream.no_event_for(Duration::from_millis(300)).await;
}

async fn a_dropped_stream_resumes_from_last_event_id_with_no_gap_and_no_duplicate(app: TestApp) {
    resume_after_drop(app, true).await;
}

async fn a_dropped_stream_resumes_from_after_with_no_gap_and_no_duplicate(app: TestApp) {
    resume_after_drop(app, false).await;
}

async fn resume_after_drop(app: TestApp, header: bool) {
    let ada = app.member("ada").await;
    let mut stream = sse(&app, "topics=posts", Cred::Bearer(&ada.token), None).await;
    let first = app.create_post(&ada, "one", &[]).await;
    let path = format!("/posts/{}", id_of(&first));
    ok_json(app.patch(&path, Some(&ada.token), json!({"title": "one, edited"})).await, "patch").await;
    ok_json(app.post(&format!("{path}/publish"), Some(&ada.token), json!({})).await, "publish").await;
    let seen = stream.events(2).await;
    let resume_from = seen[1].id;
    drop(stream); // killed mid-stream: the third event was sent but never read

    let second = app.create_post(&ada, "two", &[]).await;
    ok_json(app.patch(&format!("/posts/{}", id_of(&second)), Some(&ada.token), json!({"tags": ["x"]})).await, "patch")
        .await;
    app.published_post(&ada, "three").await;
    let missed = post_event_ids_after(&app, resume_from).await;
    assert_eq!(missed.len(), 5);

    let mut resumed = if header {
        sse(&app, "topics=posts", Cred::Bearer(&ada.token), Some(resume_from)).await
    } else {
        sse(&app, &format!("topics=posts&after={resume_from}"), Cred::Bearer(&ada.token), None).await
    };
    let replayed = resumed.events(missed.len()).await;
    assert_eq!(replayed.iter().map(|e| e.id).collect::<Vec<_>>(), missed, "exactly the missed events, in order");
    for e in &replayed {
        assert_sse_matches_log(&app, e).await;
    }
    let live = app.create_post(&ada, "live again", &[]).await;
    let next = resumed.event().await;
    assert_eq!(next.id, last_id(&app).await, "the live tail follows the replay with no duplicate");
    assert_eq!(next.envelope["data"], live);
}

#[tokio::test]
async fn a_stream_without_a_resume_point_never_replays_a_write_committed_before_it_opened() {
    let app = app_with(|_| {}).await;
    let ada = app.member("ada").await;
    for round in 0..10 {
        let before = app.create_post(&ada, &format!("committed before {round}"), &[]).await;
        let mut stream = sse(&app, "topics=posts", Cred::Bearer(&ada.token), None).await;
        let after = app.create_post(&ada, &format!("committed after {round}"), &[]).await;
        let first = stream.event().await;
        assert_eq!(
            first.envelope["data"]["id"], after["id"],
            "round {round}: the first event is the write after opening, not {} (committed before)",
            before["id"]
        );
    }
}

#[tokio::test]
async fn a_stream_token_opens_a_stream_from_the_query_and_an_access_token_there_is_refused() {
    let app = app_with(|_| {}).await;
    let ada = app.member("ada").await;

    let r = app.post("/events/token", None, json!({})).await;
    assert_error(r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED").await;
    let r = app.post("/events/token", Some(&ada.token), json!({})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let minted: Value = r.json().await.unwrap();
    assert_eq!(minted["expires_in"], 30 * 86_400, "{minted}");
    let token = str_of(&minted, "token").to_string();
    assert_ne!(token, ada.token);

    let mut stream = sse(&app, &format!("topics=posts&access_token={}", enc(&token)), Cred::Anonymous, None).await;
    let draft = app.create_post(&ada, "only ada may see this", &[]).await;
    let e = stream.event().await;
    assert_eq!(e.envelope["data"], draft, "the stream token acts as ada: her draft reaches her");

    let r = sse_request(&app, &format!("topics=posts&access_token={}", enc(&ada.token)), Cred::Anonymous, None).await;
    assert_error(r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED").await;
    let r = sse_request(&app, "topics=posts&access_token=garbage", Cred::Anonymous, None).await;
    assert_error(r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED").await;
    let r = sse_request(&app, "topics=posts", Cred::Bearer("garbage"), None).await;
    assert_error(r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED").await;
    let r = sse_request(&app, "topics=posts", Cred::Bearer(&token), None).await;
    assert_error(r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED").await;
}

#[tokio::test]
async fn unknown_or_missing_topics_are_refused_with_400_invalid_request_before_the_stream() {
    let app = app_with(|_| {}).await;
    for (query, field) in [
        ("topics=nope", "topics[0]"),
        ("topics=posts,users/x/y", "topics[1]"),
        ("topics=posts&topics=comments", "topics[1]"),
        ("topics=posts/a%20b", "topics[0]"),
        ("", "topics"),
        ("topics=", "topics"),
    ] {
        let r = sse_request(&app, query, Cred::Anonymous, None).await;
        let body = assert_error(r, StatusCode::BAD_REQUEST, "INVALID_REQUEST").await;
        let fields: Vec<&str> =
            body["error"]["details"].as_array().unwrap().iter().map(|d| d["field"].as_str().unwrap()).collect();
        assert!(fields.iter().any(|f| f.starts_with(field)), "{query}: {body}");
    }
}

#[tokio::test]
async fn a_resume_point_that_is_not_an_event_id_is_refused_with_400_before_the_stream() {
    let app = app_with(|_| {}).await;
    for query in ["topics=posts&after=abc", "topics=posts&after=-1", "topics=posts&after=1.5"] {
        let r = sse_request(&app, query, Cred::Anonymous, None).await;
        let body = assert_error(r, StatusCode::BAD_REQUEST, "INVALID_REQUEST").await;
        assert_eq!(body["error"]["details"][0]["field"], "after", "{query}: {body}");
    }
    let r = sse_request(&app, "topics=posts", Cred::Anonymous, Some(-5)).await;
    assert_error(r, StatusCode::BAD_REQUEST, "INVALID_REQUEST").await;
}

#[tokio::test]
async fn resuming_from_before_the_retention_horizon_is_refused_as_after_expired() {
    let app = app_with(|_| {}).await;
    let ada = app.member("ada").await;
    app.published_post(&ada, "old news").await;
    let newest = last_id(&app).await;
    let purged =
        app.core.deps.events.purge_before(chrono::Utc::now() + chrono::Duration::seconds(1)).await.expect("purge");
    assert!(purged >= 3, "the old events went ({purged})");
    assert_eq!(app.core.deps.events.purged_through().await.unwrap(), newest);

    let expired = json!([{"field": "after", "issue": "expired"}]);
    let r = sse_request(&app, "topics=posts&after=1", Cred::Bearer(&ada.token), None).await;
    let body = assert_error(r, StatusCode::BAD_REQUEST, "INVALID_REQUEST").await;
    assert_eq!(body["error"]["details"], expired);
    let r = sse_request(&app, "topics=posts", Cred::Bearer(&ada.token), Some(newest - 1)).await;
    let body = assert_error(r, StatusCode::BAD_REQUEST, "INVALID_REQUEST").await;
    assert_eq!(body["error"]["details"], expired, "Last-Event-ID is held to the same horizon");

    let mut stream = sse(&app, &format!("topics=posts&after={newest}"), Cred::Bearer(&ada.token), None).await;
    app.create_post(&ada, "fresh", &[]).await;
    assert_eq!(stream.event().await.id, last_id(&app).await, "resuming at the horizon is fine");
}

#[tokio::test]
async fn an_idle_stream_receives_keep_alive_comments() {
    let app = app_with(|s| s.sse_keepalive_secs = 1).await;
    let mut stream = sse(&app, "topics=posts", Cred::Anonymous, None).await;
    let started = Instant::now();
    let block = stream.block_within(Duration::from_secs(4)).await.expect("the stream is open");
    assert_eq!(block.comments, ["keep-alive"], "{block:?}");
    assert!(block.data.is_none() && block.id.is_none());
    let again = stream.block_within(Duration::from_secs(4)).await.expect("the stream is open");
    assert_eq!(again.comments, ["keep-alive"], "{again:?}");
    assert!(started.elapsed() < Duration::from_secs(4), "about one per second");
}

#[tokio::test]
async fn a_callers_streams_are_capped_and_a_closed_stream_frees_its_slot() {
    let app = app_with(|s| {
        s.streams_per_caller = 2;
        s.sse_keepalive_secs = 1;
    })
    .await;
    let ada = app.member("ada").await;
    let bob = app.member("bob").await;
    let first = sse(&app, "topics=posts", Cred::Bearer(&ada.token), None).await;
    let _second = sse(&app, "topics=posts", Cred::Bearer(&ada.token), None).await;
    let r = sse_request(&app, "topics=posts", Cred::Bearer(&ada.token), None).await;
    assert_error(r, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED").await;
    let _bobs = sse(&app, "topics=posts", Cred::Bearer(&bob.token), None).await;

    drop(first);
    within(Duration::from_secs(6), "the dropped stream's slot to be freed", async {
        loop {
            let r = sse_request(&app, "topics=posts", Cred::Bearer(&ada.token), None).await;
            if r.status() == StatusCode::OK {
                return opened(r).await;
            }
            assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn an_expired_access_token_ends_the_stream_with_an_unauthenticated_error() {
    let app = app_with(|s| {
        s.access_token_ttl_secs = 2;
        s.stream_revalidate_secs = 1;
    })
    .await;
    let ada = app.member("ada").await;
    let mut stream = sse(&app, "topics=posts", Cred::Bearer(&ada.token), None).await;
    let blocks = stream.until_end(Duration::from_secs(6)).await;
    let error = final_error(&blocks);
    assert_eq!(error["code"], "UNAUTHENTICATED", "{error}");
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    let r = sse_request(&app, "topics=posts", Cred::Bearer(&ada.token), None).await;
    assert_error(r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED").await;
}

#[tokio::test]
async fn logging_out_ends_the_stream_within_the_revalidation_interval() {
    let app = app_with(|s| s.stream_revalidate_secs = 1).await;
    let ada = app.member("ada").await;
    let mut stream = sse(&app, "topics=posts", Cred::Bearer(&ada.token), None).await;
    let draft = app.create_post(&ada, "before logout", &[]).await;
    assert_eq!(stream.event().await.envelope["data"], draft, "the stream is live");

    let r = app.post("/auth/logout", None, json!({"refresh_token": ada.refresh_token})).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let blocks = stream.until_end(Duration::from_secs(4)).await;
    assert_eq!(final_error(&blocks)["code"], "UNAUTHENTICATED");
}

#[tokio::test]
async fn revoking_the_api_key_ends_its_stream_within_the_revalidation_interval() {
    let app = app_with(|s| s.stream_revalidate_secs = 1).await;
    let ada = app.member("ada").await;
    let r = app.post("/api-keys", Some(&ada.token), json!({"name": "sse", "scopes": ["posts:read"]})).await;
    let key = ok_json(r, "create key").await;
    let mut stream = sse(&app, "topics=posts", Cred::ApiKey(str_of(&key, "key")), None).await;
    let draft = app.create_post(&ada, "seen with the key", &[]).await;
    assert_eq!(stream.event().await.envelope["data"], draft, "the key acts as ada");

    let r = app.delete(&format!("/api-keys/{}", id_of(&key)), Some(&ada.token)).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let blocks = stream.until_end(Duration::from_secs(4)).await;
    assert_eq!(final_error(&blocks)["code"], "UNAUTHENTICATED");
    let r = sse_request(&app, "topics=posts", Cred::ApiKey(str_of(&key, "key")), None).await;
    assert_error(r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED").await;
}

#[tokio::test]
async fn shutdown_ends_the_stream_after_a_retry_hint_and_the_server_stops() {
    let mut app = app_with(|_| {}).await;
    let ada = app.member("ada").await;
    let mut stream = sse(&app, "topics=posts", Cred::Bearer(&ada.token), None).await;
    app.shutdown.trigger();
    let blocks = stream.until_end(Duration::from_secs(5)).await;
    let last = blocks.last().unwrap_or_else(|| panic!("a retry hint before the end"));
    assert_eq!(last.retry.as_deref(), Some("5000"), "{blocks:?}");
    let server = app.server.take().unwrap();
    let result = within(WAIT, "the server task to finish", server).await;
    assert!(matches!(result, Ok(Ok(()))), "{result:?}");
}
