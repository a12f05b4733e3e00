//! Stopping under load, the way deployments stop processes: SIGTERM with a delay that lets a
//! balancer see readiness drop (zero failed requests), and kill -9 in the middle of writes
//! (every acknowledged write is there after a restart).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::helpers::PASSWORD;
use crate::process::{SECRET, binary, sigterm, start, temp_dir};

fn server(dir: &std::path::Path) -> std::process::Command {
    let mut cmd = binary(dir);
    cmd.env("POLYPORT_JWT_SECRET", SECRET)
        .env("POLYPORT_RATE_LIMIT_ANON_PER_MINUTE", "1000000")
        .env("POLYPORT_RATE_LIMIT_PER_MINUTE", "1000000")
        .env("POLYPORT_LOG", "warn");
    cmd
}

#[tokio::test]
async fn sigterm_under_load_fails_no_request_when_the_balancer_follows_readiness() {
    let dir = temp_dir();
    let mut cmd = server(&dir);
    cmd.env("POLYPORT_SHUTDOWN_DELAY_SECS", "2");
    let (mut child, base, _) = start(cmd);
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed, after_signal) =
        (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let signalled = Arc::new(AtomicBool::new(false));
    let client = reqwest::Client::new();
    let load: Vec<_> = (0..8)
        .map(|_| {
            let (client, base, stop, ok, failed, after_signal, signalled) = (
                client.clone(),
                base.clone(),
                stop.clone(),
                ok.clone(),
                failed.clone(),
                after_signal.clone(),
                signalled.clone(),
            );
            tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    let sent_after_signal = signalled.load(Ordering::SeqCst);
                    match client.get(format!("{base}/api/v1/posts")).send().await {
                        Ok(r) if r.status() == StatusCode::OK => {
                            ok.fetch_add(1, Ordering::SeqCst);
                            if sent_after_signal {
                                after_signal.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        _ => {
                            failed.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
            })
        })
        .collect();
    // The balancer: polls readiness, and stops sending once it is down.
    let balancer = {
        let (client, base, stop) = (client.clone(), base.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let r = client.get(format!("{base}/readyz")).send().await.unwrap();
                if r.status() != StatusCode::OK {
                    let body = r.text().await.unwrap();
                    stop.store(true, Ordering::SeqCst);
                    return body;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(800)).await;
    signalled.store(true, Ordering::SeqCst);
    sigterm(&child);
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Within the delay: new connections are still accepted and served; readiness and gRPC
    // health say the instance is leaving.
    let fresh =
        reqwest::Client::new().get(format!("{base}/api/v1/posts")).send().await.expect("a new connection is served");
    assert_eq!(fresh.status(), StatusCode::OK);
    let ready = reqwest::Client::new().get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let ch = tonic::transport::Endpoint::from_shared(base.clone()).unwrap().connect().await.unwrap();
    let status = HealthClient::new(ch).check(HealthCheckRequest { service: String::new() }).await.unwrap();
    assert_eq!(status.into_inner().status, ServingStatus::NotServing as i32);

    assert_eq!(balancer.await.unwrap(), "draining");
    for task in load {
        task.await.unwrap();
    }
    let exited = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    assert!(exited.success(), "{exited:?}");
    assert_eq!(failed.load(Ordering::SeqCst), 0, "no request failed across the shutdown");
    assert!(after_signal.load(Ordering::SeqCst) > 0, "requests sent after SIGTERM were served");
    assert!(ok.load(Ordering::SeqCst) > 50);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn every_write_acknowledged_before_kill_9_is_there_after_a_restart() {
    let dir = temp_dir();
    let email = format!("k9-{}@example.com", uuid::Uuid::now_v7().simple());
    let mut acknowledged: Vec<String> = Vec::new();
    for round in 0..5 {
        let (mut child, base, _) = start(server(&dir));
        let client = reqwest::Client::new();
        if round == 0 {
            let r = client
                .post(format!("{base}/api/v1/users"))
                .json(&json!({"email": email, "name": "K", "password": PASSWORD}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::CREATED);
        }
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
        for id in &acknowledged {
            let r = client.get(format!("{base}/api/v1/posts/{id}")).bearer_auth(&token).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK, "round {round}: acknowledged post {id} survived kill -9");
        }
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let (client, base, token) = (client.clone(), base.clone(), token.clone());
                tokio::spawn(async move {
                    let mut ids = Vec::new();
                    for i in 0.. {
                        let body = json!({"title": format!("round {round} writer {w} post {i}")});
                        let Ok(r) =
                            client.post(format!("{base}/api/v1/posts")).bearer_auth(&token).json(&body).send().await
                        else {
                            return ids;
                        };
                        if r.status() != StatusCode::CREATED {
                            return ids;
                        }
                        match r.json::<Value>().await {
                            Ok(post) => ids.push(post["id"].as_str().unwrap().to_string()),
                            Err(_) => return ids,
                        }
                    }
                    ids
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(400)).await;
        child.kill().unwrap();
        child.wait().unwrap();
        for w in writers {
            acknowledged.extend(w.await.unwrap());
        }
    }
    assert!(acknowledged.len() > 20, "writes were acknowledged: {}", acknowledged.len());
    let (mut child, base, _) = start(server(&dir));
    let client = reqwest::Client::new();
    let login: Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["access_token"].as_str().unwrap();
    for id in &acknowledged {
        let r = client.get(format!("{base}/api/v1/posts/{id}")).bearer_auth(token).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "acknowledged post {id} survived");
    }
    sigterm(&child);
    child.wait().unwrap();
    let _ = std::fs::remove_dir_all(dir);
}
