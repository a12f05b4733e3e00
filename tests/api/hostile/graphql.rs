//! GraphQL documents built to make the engine do exponential or quadratic work.

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{assert_healthy, rss_kib};
use crate::graphql::{MODERN, code, gws};
use crate::helpers::spawn_app;

/// `fragment F0 on Query { ...F1 ...F1 }` ... : 2^levels spreads once expanded, under 1 KB.
fn fan_out(levels: usize) -> String {
    let mut q = String::from("query{...F0}");
    for i in 0..levels {
        q.push_str(&format!(" fragment F{i} on Query{{...F{n} ...F{n}}}", n = i + 1));
    }
    q.push_str(&format!(" fragment F{levels} on Query{{posts{{edges{{cursor}}}}}}"));
    q
}

fn issue(body: &Value) -> (&str, &str) {
    let d = &body["errors"][0]["extensions"]["details"][0];
    (d["field"].as_str().unwrap_or_default(), d["issue"].as_str().unwrap_or_default())
}

#[tokio::test]
async fn a_fragment_fan_out_is_refused_before_execution_on_http_without_credentials() {
    let app = spawn_app().await;
    let before = rss_kib();
    let query = fan_out(24);
    assert!(fan_out(22).len() < 1024, "the attack fits in one kilobyte");
    let sends = (0..4).map(|_| app.gql_with(None, json!({"query": query}), &[("accept", MODERN)]));
    for (status, body) in join_all(sends).await {
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body.get("data").is_none(), "a request error has no data: {body}");
        assert_eq!(code(&body, 0), "INVALID_REQUEST");
        assert_eq!(issue(&body), ("query", "too_many_fragment_spreads"), "{body}");
        assert!(body["errors"][0]["extensions"]["requestId"].as_str().is_some_and(|r| !r.is_empty()));
    }
    let (status, body) = app.gql_with(None, json!({"query": fan_out(22)}), &[]).await;
    assert_eq!(status, StatusCode::OK, "legacy JSON answers 200 with the error");
    assert_eq!(issue(&body), ("query", "too_many_fragment_spreads"));
    assert_healthy(&app).await;
    let grown = rss_kib().saturating_sub(before);
    assert!(grown < 64 * 1024, "memory grew by {grown} KiB");
}

#[tokio::test]
async fn a_fragment_fan_out_is_refused_over_graphql_websocket_too() {
    let app = spawn_app().await;
    let mut ws = gws(&app, "graphql-transport-ws").await;
    ws.init(json!({})).await;
    ws.send(json!({"type": "subscribe", "id": "1", "payload": {"query": fan_out(30)}})).await;
    let m = ws.recv().await;
    assert_eq!(m["type"], "error", "{m}");
    assert_eq!(m["id"], "1");
    assert_eq!(m["payload"][0]["extensions"]["code"], "INVALID_REQUEST", "{m}");
    assert_eq!(m["payload"][0]["extensions"]["details"][0]["issue"], "too_many_fragment_spreads");
    assert_healthy(&app).await;
}

#[tokio::test]
async fn a_long_chain_of_fragments_and_a_wide_selection_are_refused_by_their_expanded_size() {
    let app = spawn_app().await;
    let mut chain = String::from("{...F0}");
    for i in 0..2_000 {
        chain.push_str(&format!(" fragment F{i} on Query{{...F{}}}", i + 1));
    }
    chain.push_str(" fragment F2000 on Query{me{id}}");
    let (_, body) = app.gql_with(None, json!({"query": chain}), &[]).await;
    assert_eq!(issue(&body), ("query", "too_many_fragment_spreads"), "{body}");

    let huge = format!("{{ me {{ {} }} }}", "id ".repeat(60_000));
    let (_, body) = app.gql_with(None, json!({"query": huge}), &[]).await;
    assert_eq!(issue(&body), ("query", "too_long"), "longer than 128 KiB is refused unparsed");
    let (status, body) = app.gql_with(None, json!({"query": "{ me { "}), &[("accept", MODERN)]).await;
    assert_eq!((status, issue(&body)), (StatusCode::BAD_REQUEST, ("query", "syntax")), "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap().len() < 80, "a short message, no ASCII art: {body}");

    let wide = format!("{{ posts {{ edges {{ node {{ {} }} }} }} }}", "id ".repeat(3_000));
    let (_, body) = app.gql_with(None, json!({"query": wide}), &[]).await;
    assert_eq!(issue(&body), ("query", "too_many_selections"), "{body}");

    // Each fragment is small, but spread 10 x 10 times they hold 10,000 fields.
    let mut fanned = String::from("{...A}");
    fanned.push_str(&format!(" fragment A on Query{{{}}}", "...B ".repeat(10)));
    fanned.push_str(&format!(" fragment B on Query{{{}}}", "...C ".repeat(10)));
    fanned.push_str(&format!(" fragment C on Query{{posts{{edges{{node{{{}}}}}}}}}", "id ".repeat(100)));
    let (_, body) = app.gql_with(None, json!({"query": fanned}), &[]).await;
    assert_eq!(code(&body, 0), "INVALID_REQUEST");
    assert!(body["data"].is_null(), "nothing executed: {body}");
    assert_healthy(&app).await;
}

#[tokio::test]
async fn ordinary_documents_with_fragments_are_still_served() {
    let app = spawn_app().await;
    let q = "query { ...Page } fragment Page on Query { posts(first: 5) { edges { node { ...P } } } } \
             fragment P on Post { id title author { id name } }";
    let (status, body) = app.gql_with(None, json!({"query": q}), &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.get("errors").is_none(), "{body}");
    assert!(body["data"]["posts"]["edges"].is_array());
}
