//! Idempotency-Key on POST: replay, reuse with another body, concurrency, scoping.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error};
use crate::on_every_store;

on_every_store!(
    a_retried_create_is_replayed_not_repeated,
    a_key_reused_with_another_body_is_refused,
    concurrent_duplicates_create_exactly_one_post
);

async fn create(app: &TestApp, token: &str, key: &str, body: Value) -> reqwest::Response {
    app.req(Method::POST, "/posts", Some(token)).header("idempotency-key", key).json(&body).send().await.unwrap()
}

async fn a_retried_create_is_replayed_not_repeated(app: TestApp) {
    let ada = app.member("ada").await;
    let first = create(&app, &ada.token, "key-1", json!({"title": "Once"})).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let location = first.headers()["location"].clone();
    let first_body: Value = first.json().await.unwrap();

    let second = create(&app, &ada.token, "key-1", json!({"title": "Once"})).await;
    assert_eq!(second.status(), StatusCode::CREATED);
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    assert_eq!(second.headers()["location"], location);
    assert_eq!(second.json::<Value>().await.unwrap(), first_body);
    let posts = app.event_types().await.iter().filter(|t| *t == "post.created").count();
    assert_eq!(posts, 1, "the replay created nothing");

    let bob = app.member("bob").await;
    let other_scope = create(&app, &bob.token, "key-1", json!({"title": "Once"})).await;
    assert!(other_scope.headers().get("idempotent-replayed").is_none(), "keys are scoped per caller");
}

async fn a_key_reused_with_another_body_is_refused(app: TestApp) {
    let ada = app.member("ada").await;
    assert_eq!(create(&app, &ada.token, "key-2", json!({"title": "A"})).await.status(), StatusCode::CREATED);
    let r = create(&app, &ada.token, "key-2", json!({"title": "B"})).await;
    assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "IDEMPOTENCY_KEY_REUSED").await;
}

async fn concurrent_duplicates_create_exactly_one_post(app: TestApp) {
    let ada = app.member("ada").await;
    let body = json!({"title": "Race", "body": "x".repeat(50_000)});
    let attempts = (0..8).map(|_| create(&app, &ada.token, "key-race", body.clone()));
    let responses = futures::future::join_all(attempts).await;
    let mut statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    statuses.sort();
    assert!(statuses.iter().all(|s| *s == 201 || *s == 409), "{statuses:?}");
    for r in responses.into_iter().filter(|r| r.status() == StatusCode::CONFLICT) {
        assert_error(r, StatusCode::CONFLICT, "IDEMPOTENCY_IN_PROGRESS").await;
    }
    let created = app.event_types().await.iter().filter(|t| *t == "post.created").count();
    assert_eq!(created, 1);
}

#[tokio::test]
async fn a_malformed_key_is_refused() {
    let app = crate::helpers::spawn_app().await;
    let ada = app.member("ada").await;
    let r = create(&app, &ada.token, &"k".repeat(300), json!({"title": "A"})).await;
    assert_error(r, StatusCode::BAD_REQUEST, "INVALID_REQUEST").await;
}

#[tokio::test]
async fn a_failed_validation_is_replayed_too() {
    let app = crate::helpers::spawn_app().await;
    let ada = app.member("ada").await;
    let r = create(&app, &ada.token, "key-3", json!({"title": ""})).await;
    assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    let r = create(&app, &ada.token, "key-3", json!({"title": ""})).await;
    assert_eq!(r.headers()["idempotent-replayed"], "true");
    assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
}
