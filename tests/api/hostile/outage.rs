//! The database goes away in the middle of traffic (its port cut by a proxy the test owns, so
//! the shared PostgreSQL keeps serving other tests): every protocol answers UNAVAILABLE in its
//! own shape within the request timeout, readiness drops, nothing unacknowledged is kept, and
//! the server recovers by itself when the database is back.

use std::time::Duration;

use futures::future::join_all;
use polyport::adapters::grpc::pb;
use polyport::adapters::grpc::pb::post_service_client::PostServiceClient;
use polyport::adapters::soap::envelope::Version;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tonic::Code;

use crate::graphql::code;
use crate::grpc::{assert_rich, authed, channel};
use crate::helpers::{Store, TestApp, TestUser, assert_error, spawn_app_with};
use crate::proxy::Line;
use crate::realtime_support::{Cred, WAIT, sse, within, ws_try};
use crate::soap::call;

/// A server on a fresh PostgreSQL database reached through a `Line`; None without PostgreSQL.
async fn app_behind_a_line() -> Option<(TestApp, Line)> {
    let url = std::env::var("TEST_DATABASE_URL").ok().filter(|u| !u.is_empty())?;
    let authority = url.split('@').nth(1)?.split('/').next()?.to_string();
    let upstream = tokio::net::lookup_host(&authority).await.ok()?.next()?;
    let line = Line::to(upstream).await;
    let via = line.addr;
    let app = spawn_app_with(Store::Postgres, move |s| {
        s.database_url = s.database_url.replacen(&authority, &via.to_string(), 1);
        s.request_timeout_secs = 4;
        s.cache_ttl_secs = 0;
    })
    .await?;
    Some((app, line))
}

/// One create on every protocol, each answered UNAVAILABLE in that protocol's shape.
async fn every_protocol_answers_unavailable(app: &TestApp, user: &TestUser) {
    let r = app.post("/posts", Some(&user.token), json!({"title": "during"})).await;
    let retry = r.headers().get("retry-after").cloned();
    assert_error(r, StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE").await;
    assert!(retry.is_some(), "503 carries Retry-After");

    let (_, body) =
        app.gql(Some(&user.token), "mutation { createPost(input: {title: \"during\"}) { id } }", json!({})).await;
    assert_eq!(code(&body, 0), "UNAVAILABLE", "{body}");

    let mut posts = PostServiceClient::new(channel(app).await);
    let req = pb::CreatePostRequest { title: "during".into(), body: String::new(), tags: vec![] };
    assert_rich(&posts.create_post(authed(req, &user.token)).await.unwrap_err(), Code::Unavailable, "UNAVAILABLE");

    let a = call(app, Version::Soap12, "CreatePost", &[("title", "during")], Some(&user.token)).await;
    a.assert_fault(Version::Soap12, "Receiver", "UNAVAILABLE");

    // The upgrade itself may already need the store (the caller is checked as it is now).
    match ws_try(app, &[("authorization", &format!("Bearer {}", user.token))], None).await {
        Ok(mut client) => {
            let reply = client.request("r1", "createPost", json!({"title": "during"})).await;
            assert_eq!(
                (reply["type"].as_str(), reply["code"].as_str()),
                (Some("error"), Some("UNAVAILABLE")),
                "{reply}"
            );
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
            assert_eq!(r.status(), 503);
            let body: Value = serde_json::from_slice(r.body().as_deref().unwrap_or_default()).unwrap();
            assert_eq!(body["error"]["code"], "UNAVAILABLE");
        }
        Err(e) => panic!("the WebSocket answers UNAVAILABLE, not {e}"),
    }

    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn a_database_outage_is_answered_unavailable_everywhere_and_healed_without_a_restart() {
    let Some((app, line)) = app_behind_a_line().await else {
        eprintln!("TEST_DATABASE_URL not set: PostgreSQL outage case skipped");
        return;
    };
    let ada = app.member("ada").await;
    let mut stream = sse(&app, "topics=posts", Cred::Bearer(&ada.token), None).await;

    // Writes in flight when the line is cut: whatever was acknowledged is stored afterwards.
    let creates = (0..20).map(|i| app.post("/posts", Some(&ada.token), json!({"title": format!("racing {i}")})));
    let (responses, ()) = tokio::join!(join_all(creates), async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        line.cut().await;
    });
    let mut acknowledged = Vec::new();
    for r in responses {
        match r.status() {
            StatusCode::CREATED => {
                acknowledged.push(r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string())
            }
            StatusCode::SERVICE_UNAVAILABLE => {}
            other => panic!("a write during the cut answers 201 or 503, not {other}"),
        }
    }

    let started = std::time::Instant::now();
    within(Duration::from_secs(30), "every protocol refusing", every_protocol_answers_unavailable(&app, &ada)).await;
    assert!(started.elapsed() < Duration::from_secs(30));

    line.restore();
    let back = within(WAIT * 2, "readiness back", async {
        loop {
            let r = app.client.get(app.url("/readyz")).send().await.unwrap();
            if r.status() == StatusCode::OK {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    back.await;
    for id in &acknowledged {
        let r = app.get(&format!("/posts/{id}"), Some(&ada.token)).await;
        assert_eq!(r.status(), StatusCode::OK, "acknowledged post {id} was committed");
    }
    let after = app.create_post(&ada, "after the outage", &[]).await;
    let event = loop {
        let e = stream.event().await;
        if e.envelope["data"]["id"] == after["id"] {
            break e;
        }
    };
    assert_eq!(event.event, "post.created", "the open stream lived through the outage");
    let (_, body) = app.gql(Some(&ada.token), "{ me { id } }", json!({})).await;
    assert_eq!(body["data"]["me"]["id"], ada.id.as_str());
}
