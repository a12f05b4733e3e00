//! Registration, profiles and their stored state.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, assert_error};
use crate::on_every_store;

on_every_store!(
    registering_stores_a_member_and_its_event,
    emails_are_unique_whatever_their_case,
    a_profile_edit_bumps_the_version_and_is_logged,
    if_match_with_a_stale_version_is_refused_with_412
);

async fn registering_stores_a_member_and_its_event(app: TestApp) {
    let r =
        app.post("/users", None, json!({"email": "Ada@Example.com", "name": "  Ada  ", "password": PASSWORD})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["name"], "Ada", "names are trimmed");
    assert_eq!(body["role"], "member");
    assert_eq!(body["version"], 1);
    assert_eq!(location, format!("/api/v1/users/{}", body["id"].as_str().unwrap()));
    assert!(body.get("password").is_none());
    let stored = app.core.deps.users.get(body["id"].as_str().unwrap()).await.unwrap().unwrap();
    assert!(stored.password_hash.starts_with("$argon2id$"));
    assert_eq!(app.event_types().await, ["user.created"]);
}

async fn emails_are_unique_whatever_their_case(app: TestApp) {
    let r = app.post("/users", None, json!({"email": "ada@example.com", "name": "Ada", "password": PASSWORD})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = app.post("/users", None, json!({"email": "ADA@example.COM", "name": "Ada 2", "password": PASSWORD})).await;
    let body = assert_error(r, StatusCode::CONFLICT, "CONFLICT").await;
    assert_eq!(body["error"]["details"][0]["field"], "email");
    assert_eq!(app.event_types().await, ["user.created"], "nothing logged for the refused write");
}

async fn a_profile_edit_bumps_the_version_and_is_logged(app: TestApp) {
    let ada = app.member("ada").await;
    let r = app.patch(&format!("/users/{}", ada.id), Some(&ada.token), json!({"name": "Ada L."})).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["etag"], "\"v2\"");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["name"], "Ada L.");
    assert_eq!(body["version"], 2);
    assert_eq!(app.core.deps.users.get(&ada.id).await.unwrap().unwrap().name, "Ada L.");
    assert_eq!(app.event_types().await, ["user.created", "user.updated"]);
}

async fn if_match_with_a_stale_version_is_refused_with_412(app: TestApp) {
    let ada = app.member("ada").await;
    let path = format!("/users/{}", ada.id);
    let r = app
        .req(reqwest::Method::PATCH, &path, Some(&ada.token))
        .header("if-match", "\"v1\"")
        .json(&json!({"name": "One"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .req(reqwest::Method::PATCH, &path, Some(&ada.token))
        .header("if-match", "\"v1\"")
        .json(&json!({"name": "Two"}))
        .send()
        .await
        .unwrap();
    assert_error(r, StatusCode::PRECONDITION_FAILED, "CONFLICT").await;
    assert_eq!(app.core.deps.users.get(&ada.id).await.unwrap().unwrap().name, "One");
}

#[tokio::test]
async fn a_public_profile_has_only_id_and_name_and_its_own_etag() {
    let app = crate::helpers::spawn_app().await;
    let ada = app.member("ada").await;
    let bob = app.member("bob").await;
    let r = app.get(&format!("/users/{}", ada.id), Some(&bob.token)).await;
    assert_eq!(r.headers()["etag"], "\"v1-public\"");
    let body: Value = r.json().await.unwrap();
    let keys: Vec<_> = body.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["id", "name"]);
}
