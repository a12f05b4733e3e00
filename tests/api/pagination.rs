//! Cursor pagination: opaque keyset cursors that walk every row exactly once.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestApp, assert_error};
use crate::on_every_store;

on_every_store!(walking_the_cursor_and_its_link_header_visits_every_post_once_newest_first);

async fn walking_the_cursor_and_its_link_header_visits_every_post_once_newest_first(app: TestApp) {
    let ada = app.member("ada").await;
    let mut created = Vec::new();
    for i in 0..25 {
        created.push(app.create_post(&ada, &format!("p{i}"), &[]).await["id"].as_str().unwrap().to_string());
    }
    created.reverse();
    let mut seen = Vec::new();
    let mut path = "/posts?limit=10".to_string();
    loop {
        let r = app.get(&path, Some(&ada.token)).await;
        assert_eq!(r.status(), StatusCode::OK);
        let link = r.headers().get("link").map(|l| l.to_str().unwrap().to_string());
        let page: Value = r.json().await.unwrap();
        seen.extend(page["data"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap().to_string()));
        if !page["has_more"].as_bool().unwrap() {
            assert_eq!(page["next_cursor"], Value::Null);
            assert!(link.is_none());
            break;
        }
        let cursor = page["next_cursor"].as_str().unwrap();
        let link = link.expect("a Link header with rel=next");
        assert!(link.ends_with("rel=\"next\"") && link.contains(cursor), "{link}");
        // The Link names the next page by its full path: following it walks on.
        let target = link.strip_prefix('<').and_then(|l| l.split_once('>')).map(|(t, _)| t).unwrap();
        assert_eq!(target, format!("/api/v1/posts?limit=10&cursor={cursor}"), "{link}");
        path = target.strip_prefix("/api/v1").unwrap().to_string();
    }
    assert_eq!(seen, created);
}

#[tokio::test]
async fn limits_are_clamped_and_cursors_cannot_be_forged() {
    let app = crate::helpers::spawn_app().await;
    let ada = app.member("ada").await;
    for i in 0..3 {
        app.create_post(&ada, &format!("p{i}"), &[]).await;
    }
    let page: Value = app.get("/posts?limit=100000", Some(&ada.token)).await.json().await.unwrap();
    assert_eq!(page["data"].as_array().unwrap().len(), 3);
    let page: Value = app.get("/posts?limit=0", Some(&ada.token)).await.json().await.unwrap();
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    let cursor = page["next_cursor"].as_str().unwrap().to_string();
    let forged = format!("{}x", cursor);
    assert_error(
        app.get(&format!("/posts?cursor={forged}"), Some(&ada.token)).await,
        StatusCode::BAD_REQUEST,
        "INVALID_REQUEST",
    )
    .await;
    let moved = app.get(&format!("/posts?tag=rust&cursor={cursor}"), Some(&ada.token)).await;
    assert_error(moved, StatusCode::BAD_REQUEST, "INVALID_REQUEST").await;
    assert_error(app.get("/posts?limit=ten", None).await, StatusCode::BAD_REQUEST, "INVALID_REQUEST").await;
}

#[tokio::test]
async fn the_page_size_rule_shown_in_the_api_documents_comes_from_the_domain() {
    use polyport::domain::page::{DEFAULT_LIMIT, MAX_LIMIT};
    let rule = format!("1..={MAX_LIMIT} (default {DEFAULT_LIMIT})");
    let app = crate::helpers::spawn_app().await;
    let spec: serde_json::Value = app.client.get(app.api("/openapi.json")).send().await.unwrap().json().await.unwrap();
    let mut limits = 0;
    for item in spec["paths"].as_object().unwrap().values() {
        for op in item.as_object().unwrap().values() {
            for param in op["parameters"].as_array().into_iter().flatten().filter(|p| p["name"] == "limit") {
                assert!(param["description"].as_str().unwrap().contains(&rule), "{param}");
                limits += 1;
            }
        }
    }
    assert_eq!(
        limits, 5,
        "every list documents its limit (users, posts, a user's posts, a webhook's deliveries, the audit log)"
    );
    let proto = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/proto/polyport/v1/users.proto")).unwrap();
    assert!(proto.contains(&format!("Page size, {rule}")), "users.proto states the same rule");
    for name in ["webhooks", "audit"] {
        let path = format!("{}/proto/polyport/v1/{name}.proto", env!("CARGO_MANIFEST_DIR"));
        let proto = std::fs::read_to_string(path).unwrap();
        assert!(proto.contains(&format!("Page size, {rule}")), "{name}.proto states the same rule");
    }
}
