//! Login, refresh rotation, logout, and what counts as a credential.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, Store, TestApp, assert_error, spawn_app, spawn_app_with};
use crate::on_every_store;

on_every_store!(
    login_returns_a_bearer_pair_that_authenticates,
    refresh_rotates_and_reuse_revokes_the_family,
    logout_revokes_the_session
);

async fn login_returns_a_bearer_pair_that_authenticates(app: TestApp) {
    let ada = app.member("ada").await;
    let r = app.post("/auth/login", None, json!({"email": ada.email.to_uppercase(), "password": PASSWORD})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert!(body["refresh_token"].as_str().unwrap().len() >= 40);
    let token = body["access_token"].as_str().unwrap();
    let me: Value = app.get("/users/me", Some(token)).await.json().await.unwrap();
    assert_eq!(me["id"], ada.id.as_str());
    assert_eq!(me["email"], ada.email.as_str());
    assert!(me.get("password").is_none() && me.get("password_hash").is_none());
}

async fn refresh_rotates_and_reuse_revokes_the_family(app: TestApp) {
    let ada = app.member("ada").await;
    let first = app.post("/auth/refresh", None, json!({"refresh_token": ada.refresh_token})).await;
    assert_eq!(first.status(), StatusCode::OK);
    let second: Value = first.json().await.unwrap();
    let rotated = second["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(rotated, ada.refresh_token);

    let reuse = app.post("/auth/refresh", None, json!({"refresh_token": ada.refresh_token})).await;
    assert_error(reuse, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED").await;

    let after_theft = app.post("/auth/refresh", None, json!({"refresh_token": rotated})).await;
    assert_error(after_theft, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED").await;
    let family_revoked = app.core.auth.is_session_revoked(&session_of(&second["access_token"])).await.unwrap();
    assert!(family_revoked, "the whole family is revoked in the store");
}

async fn logout_revokes_the_session(app: TestApp) {
    let ada = app.member("ada").await;
    let r = app.post("/auth/logout", None, json!({"refresh_token": ada.refresh_token})).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = app.post("/auth/refresh", None, json!({"refresh_token": ada.refresh_token})).await;
    assert_error(r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED").await;
    let r = app.post("/auth/logout", None, json!({"refresh_token": "never-issued"})).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT, "unknown tokens are accepted silently");
}

/// The `sid` claim of an access token (the session it belongs to).
fn session_of(token: &Value) -> String {
    use base64::Engine;
    let payload = token.as_str().unwrap().split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap();
    serde_json::from_slice::<Value>(&bytes).unwrap()["sid"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn login_does_not_reveal_whether_an_email_exists() {
    let app = spawn_app().await;
    let ada = app.member("ada").await;
    let wrong_password =
        app.post("/auth/login", None, json!({"email": ada.email, "password": "wrong password!!"})).await;
    let unknown_email =
        app.post("/auth/login", None, json!({"email": "nobody@example.com", "password": "wrong password!!"})).await;
    let a = assert_error(wrong_password, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED").await;
    let b = assert_error(unknown_email, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED").await;
    assert_eq!(a["error"]["message"], b["error"]["message"]);
    assert_eq!(a["error"]["details"], b["error"]["details"]);
}

#[tokio::test]
async fn an_unauthenticated_answer_carries_www_authenticate() {
    let app = spawn_app().await;
    let r = app.get("/users/me", None).await;
    assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"polyport\"");
    assert_error(r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED").await;
}

#[tokio::test]
async fn eleven_failed_logins_for_one_email_are_refused_with_retry_after() {
    let app = spawn_app_with(Store::Sqlite, |s| s.login_max_failures = 10).await.unwrap();
    let ada = app.member("ada").await;
    for _ in 0..10 {
        let r = app.post("/auth/login", None, json!({"email": ada.email, "password": "not the password"})).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = app.post("/auth/login", None, json!({"email": ada.email, "password": PASSWORD})).await;
    let retry_after: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after > 800 && retry_after <= 900, "{retry_after}");
    assert_error(r, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED").await;
}

#[tokio::test]
async fn an_api_key_acts_as_its_owner_until_revoked() {
    let app = spawn_app().await;
    let ada = app.member("ada").await;
    let r =
        app.post("/api-keys", Some(&ada.token), json!({"name": "ci", "scopes": ["posts:read", "posts:write"]})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    let key = created["key"].as_str().unwrap();
    assert!(key.starts_with(created["prefix"].as_str().unwrap()));

    let post = app
        .req(reqwest::Method::POST, "/posts", None)
        .header("x-api-key", key)
        .json(&json!({"title": "via key"}))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::CREATED);
    assert_eq!(post.json::<Value>().await.unwrap()["author_id"], ada.id.as_str());

    let listed: Value = app.get("/api-keys", Some(&ada.token)).await.json().await.unwrap();
    assert_eq!(listed["data"][0]["id"], created["id"]);
    assert!(listed["data"][0].get("key").is_none(), "the secret is shown once only");

    let r = app.delete(&format!("/api-keys/{}", created["id"].as_str().unwrap()), Some(&ada.token)).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = app.req(reqwest::Method::GET, "/posts", None).header("x-api-key", key).send().await.unwrap();
    assert_error(r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED").await;
}
