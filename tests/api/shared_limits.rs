//! Limits shared by several instances through Redis (`TEST_REDIS_URL`; skipped without it):
//! one request budget, one failed-login window, one nonce cache and one stream cap per caller
//! for all of them, and what each does while Redis does not answer (its line cut by a proxy the
//! test owns).

use std::net::SocketAddr;
use std::time::Duration;

use polyport::adapters::soap::envelope::Version;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{PASSWORD, Store, TestApp, spawn_app_with, spawn_sibling};
use crate::proxy::Line;
use crate::realtime_support::{Cred, WAIT, sse, sse_request, within};
use crate::soap::{api_key, digest_token, envelope, now, op, send};

fn redis_url() -> Option<String> {
    std::env::var("TEST_REDIS_URL").ok().filter(|u| !u.is_empty())
}

/// Settings for one deployment sharing `url`: its own key prefix, an anonymous budget of
/// `anonymous` a minute and 10 failed logins per window.
fn deployment(url: String, anonymous: u64) -> impl Fn(&mut polyport::Settings) + Clone {
    let prefix = format!("polyport-test-{}:", uuid::Uuid::now_v7().simple());
    move |s: &mut polyport::Settings| {
        s.redis_url = Some(url.clone());
        s.redis_prefix = prefix.clone();
        s.rate_limit_anon_per_minute = anonymous;
        s.login_max_failures = 10;
    }
}

/// Two instances whose callers may each hold two streams, on all instances together.
async fn two_with_stream_cap(url: &str) -> (TestApp, TestApp) {
    let base = deployment(url.to_string(), 1000);
    let tweak = move |s: &mut polyport::Settings| {
        base(s);
        s.streams_per_caller = 2;
    };
    let a = spawn_app_with(Store::Sqlite, tweak.clone()).await.unwrap();
    let b = match spawn_sibling(&a, tweak.clone()).await {
        Some(b) => b,
        None => spawn_app_with(Store::Sqlite, tweak).await.unwrap(),
    };
    (a, b)
}

/// Two instances (each on its own SQLite file, or on one PostgreSQL database with
/// `POLYPORT_TEST_STORE=postgres`) sharing one Redis deployment.
async fn two(url: &str, anonymous: u64) -> (TestApp, TestApp) {
    let tweak = deployment(url.to_string(), anonymous);
    let a = spawn_app_with(Store::Sqlite, tweak.clone()).await.unwrap();
    let b = match spawn_sibling(&a, tweak.clone()).await {
        Some(b) => b,
        None => spawn_app_with(Store::Sqlite, tweak).await.unwrap(),
    };
    (a, b)
}

fn skipped() {
    eprintln!("TEST_REDIS_URL not set: Redis case skipped");
}

async fn metric(app: &TestApp, name: &str) -> f64 {
    let text = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum()
}

#[tokio::test]
async fn two_instances_draw_on_one_anonymous_budget() {
    let Some(url) = redis_url() else { return skipped() };
    let (a, b) = two(&url, 10).await;
    for i in 0..10 {
        let app = if i % 2 == 0 { &a } else { &b };
        let r = app.get("/posts", None).await;
        assert_eq!(r.status(), StatusCode::OK, "request {i}");
        assert_eq!(r.headers()["ratelimit-remaining"], (9 - i).to_string().as_str());
    }
    for app in [&a, &b] {
        let r = app.get("/posts", None).await;
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(r.headers().contains_key("retry-after"));
    }
    assert_eq!(metric(&a, "polyport_redis_fallbacks_total").await, 0.0);
    assert_eq!(metric(&a, "polyport_redis_up").await, 1.0);
}

#[tokio::test]
async fn the_eleventh_bad_login_is_refused_whichever_instance_gets_it() {
    let Some(url) = redis_url() else { return skipped() };
    let (a, b) = two(&url, 1000).await;
    let email = format!("ada-{}@example.com", uuid::Uuid::now_v7().simple());
    for app in [&a, &b] {
        // On separate SQLite files the account exists on both; on PostgreSQL once.
        let r = app.post("/users", None, json!({"email": email, "name": "Ada", "password": PASSWORD})).await;
        assert!(matches!(r.status(), StatusCode::CREATED | StatusCode::CONFLICT));
    }
    for i in 0..10 {
        let app = if i % 2 == 0 { &a } else { &b };
        let r = app.post("/auth/login", None, json!({"email": email, "password": "wrong password!"})).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    for app in [&a, &b] {
        let r = app.post("/auth/login", None, json!({"email": email, "password": PASSWORD})).await;
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "even the right password waits");
    }
}

#[tokio::test]
async fn a_nonce_used_on_one_instance_is_refused_on_another() {
    let Some(url) = redis_url() else { return skipped() };
    let tweak = deployment(url, 1000);
    let Some(a) = spawn_app_with(Store::Postgres, tweak.clone()).await else {
        return eprintln!("TEST_DATABASE_URL not set: the shared API key needs PostgreSQL");
    };
    let b = spawn_sibling(&a, tweak).await.unwrap();
    let ada = a.member("ada").await;
    let (key_id, secret) = api_key(&a, &ada, &["posts:read", "posts:write"]).await;
    let header = digest_token(&key_id, &secret, b"cluster-nonce-0001", &now());
    let body = op("CreatePost", &[("title", "Digest")]);
    let first = send(&a, Version::Soap12, "CreatePost", envelope(Version::Soap12, &header, &body), &[]).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let replay = send(&b, Version::Soap12, "CreatePost", envelope(Version::Soap12, &header, &body), &[]).await;
    replay.assert_fault(Version::Soap12, "Sender", "UNAUTHENTICATED");
    assert!(replay.text("message").unwrap().contains("Nonce"), "{}", replay.body);
}

#[tokio::test]
async fn while_redis_is_cut_off_budgets_and_caps_count_per_instance_digests_are_refused_and_all_heal() {
    let Some(url) = redis_url() else { return skipped() };
    let upstream: SocketAddr = url.trim_start_matches("redis://").trim_end_matches('/').parse().unwrap();
    let line = Line::to(upstream).await;
    let tweak = deployment(format!("redis://{}", line.addr), 20);
    let app = spawn_app_with(Store::Sqlite, tweak).await.unwrap();
    let ada = app.member("ada").await;
    let (key_id, secret) = api_key(&app, &ada, &["posts:read", "posts:write"]).await;
    let remaining =
        |r: &reqwest::Response| -> u64 { r.headers()["ratelimit-remaining"].to_str().unwrap().parse().unwrap() };
    for _ in 0..6 {
        assert_eq!(app.get("/posts", None).await.status(), StatusCode::OK);
    }
    // Registering, signing in and six reads: 8 of the shared 20.
    assert_eq!(remaining(&app.get("/posts", None).await), 11);

    line.cut().await;
    // The first call after the cut waits for Redis at most its timeout; later ones go straight
    // to this instance's own budget, whose window starts full.
    assert_eq!(app.get("/posts", None).await.status(), StatusCode::OK);
    let r = app.get("/posts", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(remaining(&r) >= 17, "counted in memory from a fresh window: {}", remaining(&r));
    let digest = digest_token(&key_id, &secret, b"outage-nonce-0001", &now());
    let body = op("CreatePost", &[("title", "Digest")]);
    let refused = send(&app, Version::Soap12, "CreatePost", envelope(Version::Soap12, &digest, &body), &[]).await;
    refused.assert_fault(Version::Soap12, "Receiver", "UNAVAILABLE");
    // Streams open under this instance's own cap.
    let _stream = sse(&app, "topics=posts", Cred::Anonymous, None).await;
    // Logins still work, throttled per instance.
    let r = app.post("/auth/login", None, json!({"email": ada.email, "password": PASSWORD})).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(metric(&app, "polyport_redis_fallbacks_total").await >= 3.0);
    assert_eq!(metric(&app, "polyport_redis_up").await, 0.0);

    line.restore();
    within(WAIT, "the shared budget to come back", async {
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if remaining(&app.get("/posts", None).await) <= 10 {
                break;
            }
        }
    })
    .await;
    assert_eq!(metric(&app, "polyport_redis_up").await, 1.0);
    let fresh = digest_token(&key_id, &secret, b"healed-nonce-0001", &now());
    let r = send(&app, Version::Soap12, "CreatePost", envelope(Version::Soap12, &fresh, &body), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

#[tokio::test]
async fn a_callers_stream_cap_counts_its_streams_on_every_instance() {
    let Some(url) = redis_url() else { return skipped() };
    let (a, b) = two_with_stream_cap(&url).await;
    let on_a = sse(&a, "topics=posts", Cred::Anonymous, None).await;
    let _on_b = sse(&b, "topics=posts", Cred::Anonymous, None).await;
    for app in [&a, &b] {
        let r = sse_request(app, "topics=posts", Cred::Anonymous, None).await;
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "a third stream anywhere is over the cap");
    }
    drop(on_a);
    within(WAIT, "the closed stream's place to come back", async {
        while sse_request(&b, "topics=posts", Cred::Anonymous, None).await.status() != StatusCode::OK {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}
