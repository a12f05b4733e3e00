//! Several instances over one PostgreSQL database: writes decide on the stored row, reads and
//! streams on one instance follow writes made on another (woken by LISTEN/NOTIFY, not by the
//! poll), and instances starting together migrate one database once. PostgreSQL only.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::Connection as _;

use crate::helpers::{Store, TestApp, spawn_app_with, spawn_sibling};
use crate::realtime_support::{Cred, WAIT, sse, within};

/// Two instances on one fresh database. Their tailers poll only once a minute and their caches
/// keep entries for ten minutes, so anything seen sooner came through NOTIFY.
async fn pair() -> Option<(TestApp, TestApp)> {
    let quiet = |s: &mut polyport::Settings| {
        s.event_poll_ms = 60_000;
        s.cache_ttl_secs = 600;
    };
    let a = spawn_app_with(Store::Postgres, quiet).await?;
    let b = spawn_sibling(&a, quiet).await?;
    Some((a, b))
}

fn skipped() {
    eprintln!("TEST_DATABASE_URL not set: PostgreSQL case skipped");
}

async fn json_of(r: reqwest::Response, status: StatusCode, what: &str) -> Value {
    let got = r.status();
    let body = r.text().await.unwrap();
    assert_eq!(got, status, "{what}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// Polls `GET path` on `app` until `done` holds; fails after `WAIT`.
async fn until(app: &TestApp, path: &str, token: &str, done: impl Fn(&Value) -> bool) -> Value {
    within(WAIT, "the other instance to see the write", async {
        loop {
            let body = json_of(app.get(path, Some(token)).await, StatusCode::OK, "get").await;
            if done(&body) {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
}

#[tokio::test]
async fn a_write_on_another_instance_compares_versions_with_the_store_not_its_cache() {
    let Some((a, b)) = pair().await else { return skipped() };
    let ada = a.member("ada").await;
    let post = a.create_post(&ada, "first", &[]).await;
    let path = format!("/posts/{}", post["id"].as_str().unwrap());
    // B caches version 1, then the row changes behind every cache's back (no event, no NOTIFY).
    assert_eq!(json_of(b.get(&path, Some(&ada.token)).await, StatusCode::OK, "warm B").await["version"], 1);
    let mut db = sqlx::PgConnection::connect(&a.database_url).await.unwrap();
    sqlx::query("UPDATE posts SET version = 2, title = 'changed' WHERE id = $1")
        .bind(post["id"].as_str().unwrap())
        .execute(&mut db)
        .await
        .unwrap();
    assert_eq!(json_of(b.get(&path, Some(&ada.token)).await, StatusCode::OK, "B's cache").await["version"], 1);

    // Without If-Match a write never fails because of what a cache holds.
    let patched =
        json_of(b.patch(&path, Some(&ada.token), json!({"body": "one"})).await, StatusCode::OK, "patch").await;
    assert_eq!((patched["version"].as_i64(), patched["title"].as_str()), (Some(3), Some("changed")));
    // If-Match compares with the stored version: the current one passes, an old one does not.
    let r = b.req(Method::PATCH, &path, Some(&ada.token)).header("if-match", "\"v3\"").json(&json!({"body": "two"}));
    assert_eq!(json_of(r.send().await.unwrap(), StatusCode::OK, "if-match current").await["version"], 4);
    let r = b.req(Method::PATCH, &path, Some(&ada.token)).header("if-match", "\"v3\"").json(&json!({"body": "x"}));
    assert_eq!(r.send().await.unwrap().status(), StatusCode::PRECONDITION_FAILED);
    let stored: (i64, String) = sqlx::query_as("SELECT version, body FROM posts WHERE id = $1")
        .bind(post["id"].as_str().unwrap())
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(stored, (4, "two".to_string()));
}

#[tokio::test]
async fn a_round_robin_flow_alternating_instances_never_sees_a_spurious_conflict() {
    let Some((a, b)) = pair().await else { return skipped() };
    let ada = a.member("ada").await;
    for round in 0..20 {
        let (one, two) = if round % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let post = one.create_post(&ada, &format!("round {round}"), &[]).await;
        let path = format!("/posts/{}", post["id"].as_str().unwrap());
        json_of(two.get(&path, Some(&ada.token)).await, StatusCode::OK, "get").await;
        let v2 =
            json_of(one.patch(&path, Some(&ada.token), json!({"title": "t2"})).await, StatusCode::OK, "patch").await;
        let publish = two.req(Method::POST, &format!("{path}/publish"), Some(&ada.token));
        let publish = publish.header("if-match", format!("\"v{}\"", v2["version"])).json(&json!({}));
        let v3 = json_of(publish.send().await.unwrap(), StatusCode::OK, "publish").await;
        assert_eq!(v3["status"], "published");
        let v4 =
            json_of(one.patch(&path, Some(&ada.token), json!({"title": "t4"})).await, StatusCode::OK, "patch").await;
        assert_eq!(v4["version"], 4);
        assert_eq!(two.delete(&path, Some(&ada.token)).await.status(), StatusCode::NO_CONTENT, "round {round}");
    }
}

#[tokio::test]
async fn a_read_on_another_instance_follows_a_write_without_waiting_for_the_poll_or_the_ttl() {
    let Some((a, b)) = pair().await else { return skipped() };
    let ada = a.member("ada").await;
    let post = a.create_post(&ada, "before", &[]).await;
    let path = format!("/posts/{}", post["id"].as_str().unwrap());
    let warm = b.get(&path, Some(&ada.token)).await;
    let old_etag = warm.headers()["etag"].to_str().unwrap().to_string();
    json_of(a.patch(&path, Some(&ada.token), json!({"title": "after"})).await, StatusCode::OK, "patch").await;
    let started = Instant::now();
    until(&b, &path, &ada.token, |p| p["title"] == "after").await;
    eprintln!("instance B saw the write after {:?}", started.elapsed());
    // A conditional GET with the old validator is answered in full, never 304.
    let r = b.req(Method::GET, &path, Some(&ada.token)).header("if-none-match", &old_etag).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["etag"], "\"v2\"");

    // A deletion on A is seen on B the same way.
    assert_eq!(a.delete(&path, Some(&ada.token)).await.status(), StatusCode::NO_CONTENT);
    within(WAIT, "B to see the deletion", async {
        while b.get(&path, Some(&ada.token)).await.status() != StatusCode::NOT_FOUND {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn events_written_on_one_instance_reach_streams_on_another_without_polling() {
    let Some((a, b)) = pair().await else { return skipped() };
    let ada = a.member("ada").await;
    let mut on_b = sse(&b, "topics=posts", Cred::Bearer(&ada.token), None).await;
    let mut on_a = sse(&a, "topics=posts", Cred::Bearer(&ada.token), None).await;
    let post = a.create_post(&ada, "crosses", &[]).await;
    let (seen_a, seen_b) = (on_a.event().await, on_b.event().await);
    assert_eq!(seen_b.id, seen_a.id);
    assert_eq!(seen_b.event, "post.created");
    assert_eq!(seen_b.envelope["data"]["id"], post["id"]);
}

#[tokio::test]
async fn instances_starting_together_on_an_empty_database_migrate_it_once() {
    let Some(url) = crate::helpers::fresh_postgres_database().await else { return skipped() };
    let builds = (0..3).map(|_| {
        let mut settings = crate::helpers::test_settings();
        settings.database_url = url.clone();
        polyport::Application::build(settings)
    });
    let apps = futures::future::join_all(builds).await;
    assert!(apps.iter().all(Result::is_ok), "{:?}", apps.iter().filter_map(|a| a.as_ref().err()).collect::<Vec<_>>());
    let mut db = sqlx::PgConnection::connect(&url).await.unwrap();
    let (applied, failed): (i64, i64) =
        sqlx::query_as("SELECT COUNT(*), COUNT(*) FILTER (WHERE NOT success) FROM _sqlx_migrations")
            .fetch_one(&mut db)
            .await
            .unwrap();
    assert_eq!((applied, failed), (std::fs::read_dir("schema/postgres").unwrap().count() as i64, 0));
}
