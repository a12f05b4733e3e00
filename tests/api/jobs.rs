//! The durable job queue at the store and process level: concurrent claimers never share a
//! leased job (PostgreSQL's SKIP LOCKED, SQLite's one writer), an expired lease is taken over
//! and the old holder can no longer change the job, two instances on one PostgreSQL queue
//! deliver each event once, and queued jobs survive kill -9.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use chrono::Utc;
use polyport::domain::ports::{JobStore, NewJob};
use polyport::storage::{PoolSettings, SqlStore};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, fresh_postgres_database, spawn_app_with, spawn_sibling};
use crate::webhooks::{Receiver, quick_jobs, register};

fn pool() -> PoolSettings {
    PoolSettings {
        max_connections: 8,
        acquire_timeout: Duration::from_secs(5),
        cache_ttl: Duration::from_secs(1),
        cache_bytes: 1 << 20,
    }
}

fn job(i: usize) -> NewJob {
    NewJob {
        kind: "test.noop".into(),
        payload: format!("{{\"n\":{i}}}"),
        dedupe_key: Some(format!("test:{i}")),
        trace_id: None,
        run_at: Utc::now(),
    }
}

/// Eight claimers on two connections to one store take 200 jobs in batches: each job is
/// claimed exactly once while its lease runs.
async fn claimers_never_share_a_leased_job(url: String) {
    let a = SqlStore::connect(&url, &pool()).await.unwrap();
    let b = SqlStore::connect(&url, &pool()).await.unwrap();
    let jobs: Vec<NewJob> = (0..200).map(job).collect();
    assert_eq!(a.enqueue(&jobs).await.unwrap(), 200);
    assert_eq!(a.enqueue(&jobs[..10]).await.unwrap(), 0, "dedupe keys make enqueue idempotent");
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let now = Utc::now();
                let lease = format!("claimer-{i}-{}", uuid::Uuid::now_v7());
                let got = store.claim(&lease, now, now + chrono::Duration::seconds(60), 7).await.unwrap();
                if got.is_empty() {
                    return mine;
                }
                mine.extend(got.into_iter().map(|j| j.id));
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let unique: HashSet<&String> = all.iter().collect();
    assert_eq!(all.len(), 200, "every job claimed once");
    assert_eq!(unique.len(), 200, "no job claimed twice");
    let counts = a.counts(Utc::now()).await.unwrap();
    assert_eq!((counts.queued, counts.running), (0, 200));
}

/// A lease that expires is taken over; the first holder's outcome is then refused.
async fn an_expired_lease_is_taken_over_and_the_old_holder_is_refused(url: String) {
    let store = SqlStore::connect(&url, &pool()).await.unwrap();
    store.enqueue(&[job(1)]).await.unwrap();
    let now = Utc::now();
    let first = store.claim("first", now, now + chrono::Duration::milliseconds(100), 10).await.unwrap();
    assert_eq!(first.len(), 1);
    assert!(store.claim("early", now, now + chrono::Duration::seconds(60), 10).await.unwrap().is_empty());
    let later = now + chrono::Duration::milliseconds(200);
    let second = store.claim("second", later, later + chrono::Duration::seconds(60), 10).await.unwrap();
    assert_eq!((second.len(), second[0].id.as_str(), second[0].attempts), (1, first[0].id.as_str(), 2));
    assert!(!store.succeed(&first[0].id, "first", later).await.unwrap(), "the lost lease changes nothing");
    assert!(store.succeed(&second[0].id, "second", later).await.unwrap());
    let counts = store.counts(later).await.unwrap();
    assert_eq!((counts.queued, counts.running, counts.dead), (0, 0, 0));
    // Released at shutdown: due again at once, the attempt not counted.
    store.enqueue(&[job(2)]).await.unwrap();
    let c = store.claim("third", later, later + chrono::Duration::seconds(60), 10).await.unwrap();
    assert!(store.release(&c[0].id, "third", later).await.unwrap());
    let again = store.claim("fourth", later, later + chrono::Duration::seconds(60), 10).await.unwrap();
    assert_eq!((again[0].id.as_str(), again[0].attempts), (c[0].id.as_str(), 1));
}

fn sqlite_url() -> String {
    let dir = std::env::temp_dir().join(format!("polyport-jobs-{}", uuid::Uuid::now_v7().simple()));
    format!("sqlite://{}/db.sqlite", dir.display())
}

#[tokio::test]
async fn claimers_never_share_a_leased_job_on_sqlite() {
    claimers_never_share_a_leased_job(sqlite_url()).await;
}

#[tokio::test]
async fn claimers_never_share_a_leased_job_on_postgres() {
    let Some(url) = fresh_postgres_database().await else { return };
    claimers_never_share_a_leased_job(url).await;
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_and_the_old_holder_is_refused_on_sqlite() {
    an_expired_lease_is_taken_over_and_the_old_holder_is_refused(sqlite_url()).await;
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_and_the_old_holder_is_refused_on_postgres() {
    let Some(url) = fresh_postgres_database().await else { return };
    an_expired_lease_is_taken_over_and_the_old_holder_is_refused(url).await;
}

#[tokio::test]
async fn two_instances_on_one_postgres_queue_deliver_each_event_once() {
    let Some(app) = spawn_app_with(crate::helpers::Store::Postgres, quick_jobs).await else { return };
    if !app.database_url.starts_with("postgres") {
        return;
    }
    let sibling = spawn_sibling(&app, quick_jobs).await.unwrap();
    let receiver = Receiver::start(0).await;
    let ada = app.member("ada").await;
    register(&app, &ada.token, &receiver.url, &["posts"]).await;
    let mut expected = HashSet::new();
    for i in 0..30 {
        let on = if i % 2 == 0 { &app } else { &sibling };
        let post = on.create_post(&ada, &format!("post {i}"), &[]).await;
        expected.insert(post["id"].as_str().unwrap().to_string());
    }
    let hits = receiver.wait_until("30 deliveries", |h| h.len() >= 30).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let hits_after = receiver.hits();
    assert_eq!(hits_after.len(), 30, "no event delivered twice: {}", hits_after.len());
    let delivered: HashSet<String> =
        hits.iter().map(|h| h.json()["data"]["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(delivered, expected);
}

#[tokio::test]
async fn queued_jobs_survive_kill_9_and_every_one_runs_after_restart() {
    use crate::process::{SECRET, binary, start, temp_dir};
    let receiver = Receiver::start(0).await;
    receiver.failing.store(true, std::sync::atomic::Ordering::SeqCst);
    let dir = temp_dir();
    let command = || {
        let mut cmd = binary(&dir);
        cmd.env("POLYPORT_JWT_SECRET", SECRET)
            .env("POLYPORT_WEBHOOK_ALLOW_PRIVATE", "true")
            .env("POLYPORT_JOB_LEASE_SECS", "2")
            .env("POLYPORT_JOB_BACKOFF_BASE_MS", "200")
            .env("POLYPORT_JOB_BACKOFF_MAX_SECS", "1")
            .env("POLYPORT_JOB_POLL_MS", "100")
            .env("POLYPORT_JOB_MAX_ATTEMPTS", "100");
        cmd
    };
    let (mut child, base, _) = start(command());
    let client = reqwest::Client::new();
    let email = format!("k9-{}@example.com", uuid::Uuid::now_v7().simple());
    let r = client
        .post(format!("{base}/api/v1/users"))
        .json(&json!({"email": email, "name": "K", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let login: Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["access_token"].as_str().unwrap().to_string();
    let r = client
        .post(format!("{base}/api/v1/webhooks"))
        .bearer_auth(&token)
        .json(&json!({"url": receiver.url, "topics": ["posts"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let mut expected = HashSet::new();
    for i in 0..5 {
        let post: Value = client
            .post(format!("{base}/api/v1/posts"))
            .bearer_auth(&token)
            .json(&json!({"title": format!("survivor {i}")}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        expected.insert(post["id"].as_str().unwrap().to_string());
    }
    // Every delivery was tried and refused at least once: all are queued or running now.
    receiver
        .wait_until("a first attempt of each", |h| {
            h.iter().map(|h| h.json()["data"]["id"].as_str().unwrap().to_string()).collect::<HashSet<_>>().len() == 5
        })
        .await;
    child.kill().unwrap(); // SIGKILL: no shutdown, leases held as they were
    child.wait().unwrap();
    receiver.failing.store(false, std::sync::atomic::Ordering::SeqCst);
    let before_restart = receiver.hits().len();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.hits().len(), before_restart, "nothing runs while the server is down");

    let (mut child, _, _) = start(command());
    let started = Instant::now();
    let delivered = |hits: &[crate::webhooks::Hit]| -> HashSet<String> {
        hits.iter().skip(before_restart).map(|h| h.json()["data"]["id"].as_str().unwrap().to_string()).collect()
    };
    let hits = receiver.wait_until("every job after the restart", |h| delivered(h) == expected).await;
    assert_eq!(delivered(&hits), expected, "every queued job ran after the restart");
    assert!(started.elapsed() < Duration::from_secs(15));
    crate::process::sigterm(&child);
    assert!(child.wait().unwrap().success(), "a clean stop after SIGTERM");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn at_shutdown_a_job_in_flight_hands_its_lease_back_and_runs_first_thing_at_the_next_start() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    // The first request hangs (past the shutdown deadline); later ones are answered at once.
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let n = c.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                }
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });

    let mut first = spawn_app_with(crate::helpers::Store::Sqlite, |s| {
        quick_jobs(s);
        s.shutdown_deadline_secs = 1;
    })
    .await
    .unwrap();
    let ada = first.member("ada").await;
    let hook = register(&first, &ada.token, &url, &["posts"]).await["id"].as_str().unwrap().to_string();
    first.create_post(&ada, "in flight at shutdown", &[]).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while calls.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the delivery started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.shutdown.trigger();
    let server = first.server.take().unwrap();
    let stopped = tokio::time::timeout(Duration::from_secs(10), server).await.expect("stopped within the deadline");
    assert!(stopped.unwrap().is_ok());
    let store = SqlStore::connect(&first.database_url, &pool()).await.unwrap();
    let counts = store.counts(Utc::now()).await.unwrap();
    assert_eq!((counts.queued, counts.running), (1, 0), "the lease was handed back, not left to expire");
    store.close().await;

    // The lease is 60 s; handed back, the job runs as soon as the next instance starts.
    let url_db = first.database_url.clone();
    let second = spawn_app_with(crate::helpers::Store::Sqlite, |s| {
        quick_jobs(s);
        s.database_url = url_db;
    })
    .await
    .unwrap();
    let started = Instant::now();
    while calls.load(Ordering::SeqCst) < 2 {
        assert!(started.elapsed() < Duration::from_secs(10), "the released job ran after the restart");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let token = second.login_as(ada.id.clone(), ada.email.clone()).await.token;
    let deadline = Instant::now() + Duration::from_secs(10);
    let attempts = loop {
        let r: Value = second.get(&format!("/webhooks/{hook}/deliveries"), Some(&token)).await.json().await.unwrap();
        if !r["data"].as_array().unwrap().is_empty() {
            break r["data"].as_array().unwrap().clone();
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(attempts.len(), 1);
    assert_eq!((attempts[0]["attempt"].clone(), attempts[0]["succeeded"].clone()), (json!(1), json!(true)));
}
