//! The post lifecycle through REST and what it leaves in the store and the event log.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, spawn_app};
use crate::on_every_store;

on_every_store!(
    a_post_goes_from_draft_to_published_and_back_with_one_event_each,
    deleting_a_post_removes_it_and_logs_it,
    filters_by_author_status_and_tag
);

async fn a_post_goes_from_draft_to_published_and_back_with_one_event_each(app: TestApp) {
    let ada = app.member("ada").await;
    let editor = app.with_role("ed", polyport::domain::user::Role::Editor).await;
    let post = app.create_post(&ada, "Hello", &["rust", "web"]).await;
    let id = post["id"].as_str().unwrap();
    assert_eq!(post["status"], "draft");
    assert_eq!(post["published_at"], Value::Null);
    // Every read answers the post as it is now, the same JSON its last write answered.
    let path = format!("/posts/{id}");
    let read = || async { app.get(&path, Some(&ada.token)).await.json::<Value>().await.unwrap() };
    assert_eq!(read().await, post);
    assert_eq!(read().await, post);

    let published: Value =
        app.post(&format!("/posts/{id}/publish"), Some(&ada.token), json!({})).await.json().await.unwrap();
    assert_eq!(read().await, published);
    assert_eq!(published["status"], "published");
    assert!(published["published_at"].is_string());
    assert_eq!(published["version"], 2);

    let again = app.post(&format!("/posts/{id}/publish"), Some(&ada.token), json!({})).await;
    assert_eq!(again.json::<Value>().await.unwrap()["version"], 2, "publishing twice changes nothing");

    let r =
        app.patch(&format!("/posts/{id}"), Some(&ada.token), json!({"title": "Hello again", "tags": ["rust"]})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let updated = r.json::<Value>().await.unwrap();
    assert_eq!((updated["title"].as_str(), updated["version"].as_i64()), (Some("Hello again"), Some(3)));
    assert_eq!(read().await, updated);
    let r = app.post(&format!("/posts/{id}/unpublish"), Some(&editor.token), json!({})).await;
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "draft");

    let stored = app.core.deps.posts.get(id).await.unwrap().unwrap();
    assert_eq!(stored.title, "Hello again");
    assert_eq!(stored.tags, ["rust"]);
    assert_eq!(stored.version, 4);
    let events = app.event_types().await;
    assert_eq!(events[events.len() - 4..], ["post.created", "post.published", "post.updated", "post.unpublished"]);
}

async fn deleting_a_post_removes_it_and_logs_it(app: TestApp) {
    let ada = app.member("ada").await;
    let post = app.create_post(&ada, "Bye", &["x"]).await;
    let id = post["id"].as_str().unwrap();
    assert_eq!(app.delete(&format!("/posts/{id}"), Some(&ada.token)).await.status(), StatusCode::NO_CONTENT);
    assert!(app.core.deps.posts.get(id).await.unwrap().is_none());
    assert_error(app.get(&format!("/posts/{id}"), Some(&ada.token)).await, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    assert_eq!(app.event_types().await.last().unwrap(), "post.deleted");
}

async fn filters_by_author_status_and_tag(app: TestApp) {
    let ada = app.member("ada").await;
    let bob = app.member("bob").await;
    let a1 = app.create_post(&ada, "a1", &["rust"]).await;
    let _a2 = app.published_post(&ada, "a2").await;
    let b1 = app.published_post(&bob, "b1").await;
    app.post(&format!("/posts/{}/publish", a1["id"].as_str().unwrap()), Some(&ada.token), json!({})).await;
    let titles = |v: Value| {
        v["data"].as_array().unwrap().iter().map(|p| p["title"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };

    let all: Value = app.get("/posts", None).await.json().await.unwrap();
    assert_eq!(titles(all), ["b1", "a2", "a1"], "newest first");
    let by_bob: Value = app.get(&format!("/posts?author_id={}", bob.id), None).await.json().await.unwrap();
    assert_eq!(titles(by_bob), ["b1"]);
    let tagged: Value = app.get("/posts?tag=rust", None).await.json().await.unwrap();
    assert_eq!(titles(tagged), ["a1"]);
    let drafts: Value = app.get("/posts?status=draft", Some(&ada.token)).await.json().await.unwrap();
    assert_eq!(titles(drafts), Vec::<String>::new());
    let of_user: Value = app.get(&format!("/users/{}/posts", bob.id), None).await.json().await.unwrap();
    assert_eq!(titles(of_user)[0], b1["title"].as_str().unwrap());
    let bad = app.get("/posts?status=archived", None).await;
    assert_error(bad, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
}

#[tokio::test]
async fn etags_answer_304_and_guard_writes_with_412() {
    let app = spawn_app().await;
    let ada = app.member("ada").await;
    let post = app.create_post(&ada, "Cached", &[]).await;
    let path = format!("/posts/{}", post["id"].as_str().unwrap());
    let r = app.get(&path, Some(&ada.token)).await;
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(etag, "\"v1\"");
    let r = app.req(Method::GET, &path, Some(&ada.token)).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(r.headers()["etag"], etag.as_str());

    let r = app
        .req(Method::PATCH, &path, Some(&ada.token))
        .header("if-match", &etag)
        .json(&json!({"body": "new"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["etag"], "\"v2\"");
    let r = app.req(Method::DELETE, &path, Some(&ada.token)).header("if-match", &etag).send().await.unwrap();
    assert_error(r, StatusCode::PRECONDITION_FAILED, "CONFLICT").await;
    assert!(
        app.core.deps.posts.get(post["id"].as_str().unwrap()).await.unwrap().is_some(),
        "the refused delete kept the post"
    );
    let r = app.req(Method::GET, &path, Some(&ada.token)).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "a stale ETag gets the new representation");
}
