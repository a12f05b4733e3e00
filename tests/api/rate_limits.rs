//! Rate limits: headers on every response, budgets per principal and per address.

use reqwest::StatusCode;

use crate::helpers::{Store, assert_error, spawn_app_with};

#[tokio::test]
async fn every_api_response_reports_the_budget_and_429_says_when_to_retry() {
    let app = spawn_app_with(Store::Sqlite, |s| s.rate_limit_anon_per_minute = 3).await.unwrap();
    for remaining in (0..3).rev() {
        let r = app.get("/posts", None).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["ratelimit-limit"], "3");
        assert_eq!(r.headers()["x-ratelimit-limit"], "3");
        assert_eq!(r.headers()["ratelimit-remaining"], remaining.to_string().as_str());
        assert!(r.headers().contains_key("ratelimit-reset"));
    }
    let r = app.get("/posts", None).await;
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    assert_error(r, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED").await;
}

#[tokio::test]
async fn an_authenticated_principal_has_its_own_budget() {
    let app = spawn_app_with(Store::Sqlite, |s| {
        s.rate_limit_anon_per_minute = 2;
        s.rate_limit_per_minute = 50;
    })
    .await
    .unwrap();
    let ada = app.with_role("ada", polyport::domain::user::Role::Member).await;
    for _ in 0..3 {
        app.get("/posts", None).await;
    }
    assert_eq!(app.get("/posts", None).await.status(), StatusCode::TOO_MANY_REQUESTS);
    let r = app.get("/posts", Some(&ada.token)).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["ratelimit-limit"], "50");
}

#[tokio::test]
async fn guessing_credentials_spends_the_address_budget() {
    let app = spawn_app_with(Store::Sqlite, |s| s.rate_limit_anon_per_minute = 2).await.unwrap();
    for _ in 0..2 {
        assert_eq!(app.get("/posts", Some("garbage")).await.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(app.get("/posts", Some("garbage")).await.status(), StatusCode::TOO_MANY_REQUESTS);
}
