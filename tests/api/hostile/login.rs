//! Password guessing and hashing floods: the throttle holds under concurrency and Argon2's
//! memory stays bounded by the hashing slots.

use futures::future::join_all;
use polyport::adapters::grpc::pb;
use polyport::adapters::grpc::pb::auth_service_client::AuthServiceClient;
use polyport::adapters::soap::envelope::Version;
use reqwest::StatusCode;
use serde_json::json;
use tonic::Code;

use super::{assert_healthy, rss_kib};
use crate::grpc::{assert_rich, channel};
use crate::helpers::{PASSWORD, Store, spawn_app_with};
use crate::soap::call;

#[tokio::test]
async fn forty_concurrent_wrong_passwords_for_one_account_verify_only_the_ten_allowed() {
    let app = spawn_app_with(Store::Sqlite, |s| s.login_max_failures = 10).await.unwrap();
    let victim = app.member("victim").await;
    let guesses = (0..40).map(|i| {
        app.post("/auth/login", None, json!({"email": victim.email, "password": format!("wrong password {i}")}))
    });
    let statuses: Vec<StatusCode> = join_all(guesses).await.iter().map(|r| r.status()).collect();
    let verified = statuses.iter().filter(|s| **s == StatusCode::UNAUTHORIZED).count();
    let refused = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!((verified, refused), (10, 30), "{statuses:?}");
    let r = app.post("/auth/login", None, json!({"email": victim.email, "password": PASSWORD})).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "even the right password waits out the window");
    assert!(r.headers().get("retry-after").is_some());
}

#[tokio::test]
async fn a_flood_of_anonymous_logins_is_answered_busy_beyond_the_hashing_queue_on_every_protocol() {
    let app = spawn_app_with(Store::Sqlite, |s| {
        s.password_hash_concurrency = Some(2);
        s.password_hash_queue = 4;
    })
    .await
    .unwrap();
    let before = rss_kib();
    let logins = (0..60).map(|i| {
        app.post(
            "/auth/login",
            None,
            json!({"email": format!("nobody-{i}@example.com"), "password": "some password 123"}),
        )
    });
    let responses = join_all(logins).await;
    let busy: Vec<_> = responses.iter().filter(|r| r.status() == StatusCode::TOO_MANY_REQUESTS).collect();
    let checked = responses.iter().filter(|r| r.status() == StatusCode::UNAUTHORIZED).count();
    assert!(checked >= 6, "the running and queued checks are answered: {checked}");
    assert!(busy.len() >= 30, "the rest is refused at once: {}", busy.len());
    assert!(busy.iter().all(|r| r.headers().get("retry-after").is_some_and(|v| v == "1")));
    assert_eq!(checked + busy.len(), 60);
    // Two hashes at 19 MiB run at a time: the flood cannot hold 60 x 19 MiB.
    let grown = rss_kib().saturating_sub(before);
    assert!(grown < 200 * 1024, "memory grew by {grown} KiB");

    // The same refusal on gRPC and SOAP while the slots are taken.
    let ch = channel(&app).await;
    let grpc_calls = (0..30).map(|i| {
        let mut auth = AuthServiceClient::new(ch.clone());
        async move {
            auth.login(pb::LoginRequest { email: format!("g{i}@example.com"), password: "some password 123".into() })
                .await
        }
    });
    let results = join_all(grpc_calls).await;
    let exhausted = results.iter().filter_map(|r| r.as_ref().err()).find(|s| s.code() == Code::ResourceExhausted);
    let status = exhausted.expect("some gRPC logins are refused as busy");
    assert_rich(status, Code::ResourceExhausted, "RATE_LIMITED");

    let soap_calls = (0..30).map(|i| {
        let email = format!("s{i}@example.com");
        let app = &app;
        async move {
            call(app, Version::Soap11, "Login", &[("email", &email), ("password", "some password 123")], None).await
        }
    });
    let answers = join_all(soap_calls).await;
    let busy = answers.iter().find(|a| a.text("code").as_deref() == Some("RATE_LIMITED"));
    busy.expect("some SOAP logins are refused as busy").assert_fault(Version::Soap11, "Client", "RATE_LIMITED");
    assert_healthy(&app).await;
}
