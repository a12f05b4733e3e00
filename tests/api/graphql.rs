//! GraphQL over real HTTP and WebSocket: schema drift, queries, mutations, errors, limits,
//! idempotency, DataLoader batching, and subscriptions over both WebSocket subprotocols.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use polyport::domain::user::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::helpers::{TestApp, spawn_app, spawn_app_with};

pub const MODERN: &str = "application/graphql-response+json";

impl TestApp {
    /// POSTs a GraphQL request; answers status and body.
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> (StatusCode, Value) {
        self.gql_with(token, json!({"query": query, "variables": variables}), &[]).await
    }

    pub async fn gql_with(&self, token: Option<&str>, body: Value, headers: &[(&str, &str)]) -> (StatusCode, Value) {
        let mut rb = self.client.post(self.url("/graphql")).json(&body);
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        let r = rb.send().await.expect("request sent");
        let status = r.status();
        (status, r.json().await.expect("JSON body"))
    }
}

pub fn code(body: &Value, i: usize) -> &str {
    body["errors"][i]["extensions"]["code"].as_str().unwrap_or_default()
}

const CREATE: &str =
    "mutation($input: CreatePostInput!) { createPost(input: $input) { id title status version author { id name } } }";

#[tokio::test]
async fn the_committed_sdl_matches_the_served_schema() {
    let app = spawn_app().await;
    let served = app.client.get(app.url("/graphql/schema.graphql")).send().await.unwrap().text().await.unwrap();
    assert_eq!(served, polyport::adapters::graphql::sdl());
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/schema.graphql");
    if std::env::var("UPDATE_SCHEMA").is_ok() {
        std::fs::write(&path, &served).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == served,
        "schema/schema.graphql differs from the served schema; regenerate it with \
         `UPDATE_SCHEMA=1 cargo nextest run the_committed_sdl_matches` and review the diff"
    );
}

#[tokio::test]
async fn a_member_creates_a_post_through_the_core_and_reads_it_back() {
    let app = spawn_app().await;
    let alice = app.member("alice").await;
    let (status, body) =
        app.gql(Some(&alice.token), CREATE, json!({"input": {"title": "Hello", "tags": ["rust"]}})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let post = &body["data"]["createPost"];
    assert_eq!(post["status"], "DRAFT");
    assert_eq!(post["author"]["id"], alice.id.as_str());
    let id = post["id"].as_str().unwrap();
    let stored = app.core.deps.posts.get(id).await.unwrap().expect("stored");
    assert_eq!(stored.title, "Hello");
    assert_eq!(app.event_types().await.last().unwrap(), "post.created");

    let (_, body) = app
        .gql(Some(&alice.token), "query($id: ID!) { post(id: $id) { title tags authorId } }", json!({"id": id}))
        .await;
    assert_eq!(body["data"]["post"], json!({"title": "Hello", "tags": ["rust"], "authorId": alice.id}));
}

#[tokio::test]
async fn errors_carry_the_contract_code_request_id_and_details_and_keep_partial_data() {
    let app = spawn_app().await;
    let alice = app.member("alice").await;
    let bob = app.member("bob").await;
    let published = app.published_post(&alice, "Public").await;
    let draft = app.create_post(&alice, "Secret", &[]).await;
    let q = "query($a: ID!, $b: ID!) { a: post(id: $a) { title } b: post(id: $b) { title } }";
    let (status, body) = app.gql(Some(&bob.token), q, json!({"a": published["id"], "b": draft["id"]})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["a"]["title"], "Public", "{body}");
    assert!(body["data"]["b"].is_null(), "someone else's draft is never shown");
    assert_eq!(code(&body, 0), "NOT_FOUND");
    assert_eq!(body["errors"][0]["path"], json!(["b"]));
    assert!(body["errors"][0]["extensions"]["requestId"].as_str().is_some_and(|r| !r.is_empty()));

    let (_, body) = app.gql(Some(&alice.token), CREATE, json!({"input": {"title": " ", "tags": ["Bad"]}})).await;
    assert_eq!(code(&body, 0), "VALIDATION_FAILED");
    let details = &body["errors"][0]["extensions"]["details"];
    assert_eq!(details[0], json!({"field": "title", "issue": "required"}));
    assert_eq!(details[1], json!({"field": "tags[0]", "issue": "invalid_format"}));

    let (_, body) = app.gql(None, CREATE, json!({"input": {"title": "x"}})).await;
    assert_eq!(code(&body, 0), "UNAUTHENTICATED");
    let (_, body) = app
        .gql(Some(&bob.token), "mutation($id: ID!) { publishPost(id: $id) { id } }", json!({"id": published["id"]}))
        .await;
    assert_eq!(code(&body, 0), "FORBIDDEN");
}

#[tokio::test]
async fn bad_credentials_are_refused_with_401_before_execution() {
    let app = spawn_app().await;
    let (status, body) = app.gql(Some("not-a-token"), "{ posts { edges { cursor } } }", json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(code(&body, 0), "UNAUTHENTICATED");
}

#[tokio::test]
async fn login_refresh_logout_and_api_keys_work_as_on_rest() {
    let app = spawn_app().await;
    let alice = app.member("alice").await;
    let login = "mutation($i: LoginInput!) { login(input: $i) { accessToken tokenType expiresIn refreshToken } }";
    let (_, body) =
        app.gql(None, login, json!({"i": {"email": alice.email, "password": crate::helpers::PASSWORD}})).await;
    let pair = &body["data"]["login"];
    assert_eq!(pair["tokenType"], "Bearer");
    let refresh = pair["refreshToken"].as_str().unwrap();
    let (_, body) = app
        .gql(None, "mutation($r: String!) { refreshToken(refreshToken: $r) { refreshToken } }", json!({"r": refresh}))
        .await;
    let rotated = body["data"]["refreshToken"]["refreshToken"].as_str().unwrap().to_string();
    let (_, body) = app
        .gql(None, "mutation($r: String!) { refreshToken(refreshToken: $r) { refreshToken } }", json!({"r": refresh}))
        .await;
    assert_eq!(code(&body, 0), "UNAUTHENTICATED", "a spent refresh token is refused");
    let (_, body) = app.gql(None, "mutation($r: String!) { logout(refreshToken: $r) }", json!({"r": rotated})).await;
    assert_eq!(body["data"]["logout"], true);

    let create =
        "mutation { createApiKey(input: {name: \"ci\", scopes: [\"posts:read\"]}) { key apiKey { id scopes } } }";
    let (_, body) = app.gql(Some(&alice.token), create, json!({})).await;
    let key = body["data"]["createApiKey"]["key"].as_str().unwrap().to_string();
    let key_id = body["data"]["createApiKey"]["apiKey"]["id"].as_str().unwrap().to_string();
    let (_, body) =
        app.gql_with(None, json!({"query": "{ posts { edges { cursor } } }"}), &[("x-api-key", &key)]).await;
    assert!(body["errors"].is_null(), "{body}");
    let (_, body) = app
        .gql_with(None, json!({"query": CREATE, "variables": {"input": {"title": "x"}}}), &[("x-api-key", &key)])
        .await;
    assert_eq!(code(&body, 0), "FORBIDDEN", "the key lacks posts:write");
    let (_, body) =
        app.gql(Some(&alice.token), "mutation($id: ID!) { revokeApiKey(id: $id) }", json!({"id": key_id})).await;
    assert_eq!(body["data"]["revokeApiKey"], key_id.as_str());
}

#[tokio::test]
async fn mutations_are_refused_over_get_and_without_a_json_body() {
    let app = spawn_app().await;
    let alice = app.member("alice").await;
    let r = app
        .client
        .get(app.url("/graphql"))
        .query(&[("query", "mutation { createPost(input: {title: \"x\"}) { id } }")])
        .bearer_auth(&alice.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    let r = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&alice.token)
        .header("content-type", "text/plain")
        .body(json!({"query": "mutation { createPost(input: {title: \"x\"}) { id } }"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let r = app
        .client
        .post(app.url("/graphql"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("query=mutation")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(app.core.deps.events.read_after(0, 100).await.unwrap().len(), 1, "only alice's registration");

    let r =
        app.client.get(app.url("/graphql")).query(&[("query", "{ posts { edges { cursor } } }")]).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "queries are fine over GET");
}

#[tokio::test]
async fn depth_complexity_alias_and_batch_limits_refuse_abusive_requests() {
    let app = spawn_app().await;
    let deep = format!(
        "{}{{ id }}{}",
        "{ posts { edges { node { author { posts { edges { node { author ".repeat(3),
        " } } } } } } } }".repeat(3)
    );
    let (status, body) = app.gql_with(None, json!({"query": deep}), &[("accept", MODERN)]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(code(&body, 0), "INVALID_REQUEST");

    let complex =
        "{ posts(first: 100) { edges { node { author { posts(first: 100) { edges { node { id title } } } } } } } }";
    let (_, body) = app.gql(None, complex, json!({})).await;
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("complex"), "{body}");

    let aliases: String = (0..31).map(|i| format!("a{i}: posts {{ edges {{ cursor }} }} ")).collect();
    let (_, body) = app.gql(None, &format!("{{ {aliases} }}"), json!({})).await;
    assert_eq!(body["errors"][0]["extensions"]["details"][0]["issue"], "too_many_aliases", "{body}");

    let batch: Vec<Value> = (0..11).map(|_| json!({"query": "{ posts { edges { cursor } } }"})).collect();
    let (status, body) = app.gql_with(None, Value::Array(batch), &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["errors"][0]["extensions"]["details"][0]["issue"], "batch_too_large");
    let batch: Vec<Value> = (0..2).map(|_| json!({"query": "{ posts { edges { cursor } } }"})).collect();
    let (status, body) = app.gql_with(None, Value::Array(batch), &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn an_oversized_body_is_refused_with_413() {
    let app = spawn_app_with(crate::helpers::Store::Sqlite, |s| s.body_limit_bytes = 4096).await.unwrap();
    let big = "x".repeat(8192);
    let (status, _) =
        app.gql_with(None, json!({"query": format!("{{ posts {{ edges {{ cursor }} }} }} # {big}")}), &[]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn the_graphql_response_media_type_follows_the_http_status_rules() {
    let app = spawn_app().await;
    let r = app
        .client
        .post(app.url("/graphql"))
        .header("accept", MODERN)
        .json(&json!({"query": "{ nope }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.headers()["content-type"], MODERN);
    let body: Value = r.json().await.unwrap();
    assert_eq!(code(&body, 0), "INVALID_REQUEST");
    let (status, _) = app.gql_with(None, json!({"query": "{ nope }"}), &[("accept", "application/json")]).await;
    assert_eq!(status, StatusCode::OK, "legacy application/json answers 200");
    let (status, body) = app.gql_with(None, json!({"query": "{ me { id } }"}), &[("accept", MODERN)]).await;
    assert_eq!(status, StatusCode::OK, "a field error keeps 200: {body}");
    assert_eq!(code(&body, 0), "UNAUTHENTICATED");
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_mutation_response() {
    let app = spawn_app().await;
    let alice = app.member("alice").await;
    let body = json!({"query": CREATE, "variables": {"input": {"title": "Once"}}});
    let headers = [("idempotency-key", "k-1")];
    let (_, first) = app.gql_with(Some(&alice.token), body.clone(), &headers).await;
    let r = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&alice.token)
        .header("idempotency-key", "k-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["idempotent-replayed"], "true");
    let second: Value = r.json().await.unwrap();
    assert_eq!(first, second);
    let other = json!({"query": CREATE, "variables": {"input": {"title": "Other"}}});
    let (status, body) = app.gql_with(Some(&alice.token), other, &headers).await;
    assert_eq!(status, StatusCode::OK, "the mutation ran and was refused: a field error");
    assert_eq!(code(&body, 0), "IDEMPOTENCY_KEY_REUSED");
    assert!(body["data"]["createPost"].is_null());
    let created = app.event_types().await.iter().filter(|t| *t == "post.created").count();
    assert_eq!(created, 1);
}

#[tokio::test]
async fn connections_page_with_the_same_cursors_as_rest() {
    let app = spawn_app().await;
    let alice = app.member("alice").await;
    for i in 0..5 {
        app.published_post(&alice, &format!("p{i}")).await;
    }
    let rest: Value = app.get("/posts?limit=2", None).await.json().await.unwrap();
    let cursor = rest["next_cursor"].as_str().unwrap();
    let q = "query($after: String) { posts(first: 2, after: $after) { edges { cursor node { title } } pageInfo { hasNextPage endCursor } } }";
    let (_, first) = app.gql(None, q, json!({})).await;
    assert_eq!(first["data"]["posts"]["pageInfo"]["endCursor"], cursor);
    let (_, second) = app.gql(None, q, json!({"after": cursor})).await;
    let rest2: Value = app.get(&format!("/posts?limit=2&cursor={cursor}"), None).await.json().await.unwrap();
    let titles: Vec<&Value> =
        second["data"]["posts"]["edges"].as_array().unwrap().iter().map(|e| &e["node"]["title"]).collect();
    let rest_titles: Vec<&Value> = rest2["data"].as_array().unwrap().iter().map(|p| &p["title"]).collect();
    assert_eq!(titles, rest_titles);
    let (_, bad) = app.gql(None, q, json!({"after": "forged"})).await;
    assert_eq!(code(&bad, 0), "INVALID_REQUEST");
    let filtered = "{ posts(filter: {status: DRAFT}) { edges { cursor } } }";
    let (_, body) = app.gql(None, filtered, json!({})).await;
    assert_eq!(body["data"]["posts"]["edges"], json!([]), "anonymous callers see no drafts");
}

#[tokio::test]
async fn authors_of_a_page_of_posts_resolve_with_one_batched_lookup() {
    let app = spawn_app().await;
    let mut users = Vec::new();
    for i in 0..5 {
        users.push(app.member(&format!("u{i}")).await);
    }
    for i in 0..20 {
        app.published_post(&users[i % 5], &format!("p{i}")).await;
    }
    let before = polyport::adapters::graphql::user_batches();
    let (_, body) =
        app.gql(None, "{ posts(first: 20) { edges { node { title author { id name } } } } }", json!({})).await;
    let edges = body["data"]["posts"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 20);
    assert!(edges.iter().all(|e| e["node"]["author"]["name"].is_string()), "{body}");
    assert_eq!(polyport::adapters::graphql::user_batches() - before, 1, "one get_many for 20 authors");
}

#[tokio::test]
async fn posts_of_a_page_of_users_resolve_with_one_batched_query_and_match_rest() {
    let app = spawn_app().await;
    let admin = app.with_role("root", Role::Admin).await;
    let mut users = Vec::new();
    for i in 0..4 {
        users.push(app.member(&format!("u{i}")).await);
    }
    for (i, user) in users.iter().enumerate() {
        for j in 0..i + 1 {
            app.published_post(user, &format!("u{i} p{j}")).await;
        }
        app.create_post(user, &format!("u{i} draft"), &[]).await;
    }
    let q = "{ users(first: 10) { edges { node { id posts(first: 2) { edges { node { title authorId } } \
             pageInfo { hasNextPage endCursor } } } } } }";
    for (token, who) in [(&admin.token, "admin"), (&users[3].token, "member")] {
        let before = polyport::adapters::graphql::post_batches();
        let (status, body) = app.gql(Some(token), q, json!({})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body["errors"].is_null(), "{body}");
        assert_eq!(polyport::adapters::graphql::post_batches() - before, 1, "{who}: one query for every user's posts");
        let edges = body["data"]["users"]["edges"].as_array().unwrap();
        assert_eq!(edges.len(), 5, "{body}");
        for edge in edges {
            let node = &edge["node"];
            let id = node["id"].as_str().unwrap();
            let rest: Value = app.get(&format!("/users/{id}/posts?limit=2"), Some(token)).await.json().await.unwrap();
            let rest_titles: Vec<&Value> = rest["data"].as_array().unwrap().iter().map(|p| &p["title"]).collect();
            let posts = &node["posts"];
            let titles: Vec<&Value> = posts["edges"].as_array().unwrap().iter().map(|e| &e["node"]["title"]).collect();
            assert_eq!(titles, rest_titles, "{who} sees the same page of {id} as REST");
            assert!(posts["edges"].as_array().unwrap().iter().all(|e| e["node"]["authorId"] == id));
            assert_eq!(posts["pageInfo"]["hasNextPage"], rest["has_more"], "{who}: {id}");
        }
    }
    let (_, body) = app.gql(Some(&admin.token), q, json!({})).await;
    let first = &body["data"]["users"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["node"]["id"] == users[3].id.as_str())
        .unwrap()["node"]["posts"];
    let cursor = first["pageInfo"]["endCursor"].as_str().unwrap();
    let next = "query($id: ID!, $after: String) { user(id: $id) { posts(first: 2, after: $after) { edges { node { title } } } } }";
    let (_, body) = app.gql(Some(&admin.token), next, json!({"id": users[3].id, "after": cursor})).await;
    let titles: Vec<&Value> =
        body["data"]["user"]["posts"]["edges"].as_array().unwrap().iter().map(|e| &e["node"]["title"]).collect();
    assert_eq!(titles, vec!["u3 p2", "u3 p1"], "the batched page's cursor continues the list: {body}");
}

#[tokio::test]
async fn introspection_and_graphiql_follow_the_settings() {
    let app = spawn_app().await;
    let (_, body) = app.gql(None, "{ __schema { queryType { name } } }", json!({})).await;
    assert_eq!(body["data"]["__schema"]["queryType"]["name"], "Query");
    let r = app.client.get(app.url("/graphql")).header("accept", "text/html").send().await.unwrap();
    assert!(r.text().await.unwrap().contains("GraphiQL"));

    let locked = spawn_app_with(crate::helpers::Store::Sqlite, |s| {
        s.graphql_introspection = Some(polyport::config::GraphqlIntrospection::Authenticated);
        s.graphql_playground = Some(false);
    })
    .await
    .unwrap();
    let (_, body) = locked.gql(None, "{ __schema { queryType { name } } }", json!({})).await;
    assert!(body["data"]["__schema"].is_null(), "anonymous callers may not introspect: {body}");
    let alice = locked.with_role("alice", Role::Member).await;
    let (_, body) = locked.gql(Some(&alice.token), "{ __schema { queryType { name } } }", json!({})).await;
    assert_eq!(body["data"]["__schema"]["queryType"]["name"], "Query");
    let r = locked.client.get(locked.url("/graphql")).header("accept", "text/html").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = locked.client.get(locked.url("/graphql/assets/graphiql.min.js")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "no GraphiQL assets when GraphiQL is off");
}

#[tokio::test]
async fn graphiql_loads_every_script_and_style_from_this_server() {
    let app = spawn_app().await;
    let r = app.client.get(app.url("/graphql")).header("accept", "text/html").send().await.unwrap();
    let page = r.text().await.unwrap();
    assert!(!page.contains("://"), "no absolute URL, so no third-party origin: {page}");
    let assets: Vec<&str> = page.split(['"', '\'']).filter(|s| s.starts_with("/graphql/assets/")).collect();
    assert_eq!(assets.len(), 4, "stylesheet, React, ReactDOM, GraphiQL: {assets:?}");
    for path in assets {
        let plain = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(plain.status(), StatusCode::OK, "{path}");
        let kind = plain.headers()["content-type"].to_str().unwrap().to_string();
        assert!(kind.starts_with(if path.ends_with(".css") { "text/css" } else { "text/javascript" }), "{kind}");
        assert!(plain.headers().get("content-encoding").is_none(), "inflated for clients without gzip");
        let text = plain.text().await.unwrap();
        assert!(text.len() > 4000, "{path} is the real bundle ({} bytes)", text.len());
        let gz = app.client.get(app.url(path)).header("accept-encoding", "br, gzip;q=0.8").send().await.unwrap();
        assert_eq!(gz.headers()["content-encoding"], "gzip");
        let bytes = gz.bytes().await.unwrap();
        assert_eq!(&bytes[..2], &[0x1f, 0x8b], "{path} stored compressed");
        assert!(bytes.len() < text.len());
    }
    let r = app.client.get(app.url("/graphql/assets/../Cargo.toml")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = app.client.get(app.url("/graphql/assets/secret.js")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "NOT_FOUND");
}

#[tokio::test]
async fn graphiql_opens_on_example_operations_that_run_and_says_how_to_send_the_token() {
    let app = spawn_app().await;
    let page = app.client.get(app.url("/graphql")).header("accept", "text/html").send().await.unwrap();
    let page = page.text().await.unwrap();
    let (_, rest) = page.split_once("const defaultQuery = `").expect("GraphiQL gets a default query");
    let (document, _) = rest.split_once("`;").unwrap();
    assert!(document.contains(r#"{"Authorization": "Bearer <accessToken>"}"#), "{document}");
    // Every operation in it validates (the whole document is validated with each one) and runs.
    let run = |name: &str, token: Option<String>| {
        let body = json!({"query": document, "operationName": name});
        let (app, name) = (&app, name.to_string());
        async move {
            let (status, body) = app.gql_with(token.as_deref(), body, &[]).await;
            assert_eq!(status, StatusCode::OK, "{name}: {body}");
            assert!(body["errors"].is_null(), "{name}: {body}");
            body
        }
    };
    run("LatestPosts", None).await;
    assert_eq!(run("Register", None).await["data"]["register"]["role"], "MEMBER");
    let login = run("Login", None).await;
    let token = login["data"]["login"]["accessToken"].as_str().unwrap().to_string();
    assert_eq!(run("CreatePost", Some(token)).await["data"]["createPost"]["status"], "DRAFT");
}

#[tokio::test]
async fn a_request_without_a_query_answers_a_short_error_naming_the_field() {
    let app = spawn_app().await;
    // What `curl /graphql` sends (application/json answers, as graphql-over-http allows).
    let r = app.client.get(app.url("/graphql")).send().await.unwrap();
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(code(&body, 0), "INVALID_REQUEST");
    assert_eq!(body["errors"][0]["extensions"]["details"], json!([{"field": "query", "issue": "missing"}]));
    assert!(body["errors"][0]["message"].as_str().unwrap().len() < 100, "{body}");
    let modern = [("accept", "application/graphql-response+json")];
    let (status, body) = app.gql_with(None, json!({"query": "  "}), &modern).await;
    assert_eq!((status, code(&body, 0)), (StatusCode::BAD_REQUEST, "INVALID_REQUEST"));
}

#[tokio::test]
async fn complexity_is_charged_to_the_shared_rate_limit() {
    let app = spawn_app_with(crate::helpers::Store::Sqlite, |s| s.rate_limit_anon_per_minute = 10).await.unwrap();
    let heavy = "{ posts(first: 100) { edges { node { id title body tags } } } }";
    let (status, body) = app.gql_with(None, json!({"query": heavy}), &[("accept", MODERN)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.gql_with(None, json!({"query": heavy}), &[("accept", MODERN)]).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(code(&body, 0), "RATE_LIMITED");
    assert!(body["errors"][0]["extensions"]["retryAfter"].as_u64().is_some());
    let r = app.get("/posts", None).await;
    let remaining: u64 = r.headers()["ratelimit-remaining"].to_str().unwrap().parse().unwrap();
    assert!(remaining <= 2, "REST draws from the budget GraphQL complexity used: {remaining} left");
}

const WAIT: Duration = Duration::from_secs(10);

pub struct Gws(pub WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>);

/// Opens `/graphql/ws` with `protocol` (`graphql-transport-ws` or the legacy `graphql-ws`).
pub async fn gws(app: &TestApp, protocol: &str) -> Gws {
    let mut request = format!("ws://{}/graphql/ws", app.addr).into_client_request().unwrap();
    request.headers_mut().insert("sec-websocket-protocol", HeaderValue::from_str(protocol).unwrap());
    let (stream, response) = tokio_tungstenite::connect_async(request).await.expect("upgrade accepted");
    assert_eq!(response.headers()["sec-websocket-protocol"], protocol);
    Gws(stream)
}

impl Gws {
    pub async fn send(&mut self, v: Value) {
        self.0.send(Message::text(v.to_string())).await.unwrap();
    }

    /// The next JSON message (skipping keep-alives); panics on close or timeout.
    pub async fn recv(&mut self) -> Value {
        loop {
            let m = tokio::time::timeout(WAIT, self.0.next()).await.expect("a message in time");
            match m {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(t.as_str()).unwrap();
                    if v["type"] != "ka" && v["type"] != "ping" {
                        return v;
                    }
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                other => panic!("expected a message, got {other:?}"),
            }
        }
    }

    /// The close code the server ends with.
    pub async fn closed(&mut self) -> u16 {
        loop {
            match tokio::time::timeout(WAIT, self.0.next()).await.expect("closed in time") {
                Some(Ok(Message::Close(Some(frame)))) => return frame.code.into(),
                Some(Ok(_)) => {}
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    }

    pub async fn init(&mut self, payload: Value) {
        self.send(json!({"type": "connection_init", "payload": payload})).await;
        assert_eq!(self.recv().await["type"], "connection_ack");
    }
}

const POST_EVENTS: &str =
    "subscription($after: ID) { events(topics: [\"posts\"], after: $after) { id type topic data } }";

#[tokio::test]
async fn graphql_transport_ws_delivers_live_events_with_delivery_time_authorization() {
    let app = spawn_app().await;
    let alice = app.member("alice").await;
    let mut anon = gws(&app, "graphql-transport-ws").await;
    anon.init(json!({})).await;
    anon.send(json!({"type": "subscribe", "id": "1", "payload": {"query": POST_EVENTS}})).await;
    let mut mine = gws(&app, "graphql-transport-ws").await;
    mine.init(json!({"authorization": format!("Bearer {}", alice.token)})).await;
    let typed = "subscription { postEvents { type post { title status author { name } } } }";
    mine.send(json!({"type": "subscribe", "id": "a", "payload": {"query": typed}})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let post = app.published_post(&alice, "Live").await;
    let m = mine.recv().await;
    assert_eq!(m["type"], "next");
    assert_eq!(m["id"], "a");
    assert_eq!(m["payload"]["data"]["postEvents"]["type"], "post.created", "alice sees her own draft: {m}");
    assert_eq!(m["payload"]["data"]["postEvents"]["post"]["author"]["name"], "alice");
    let m = anon.recv().await;
    assert_eq!(m["payload"]["data"]["events"]["type"], "post.published", "the draft never reached anonymous: {m}");
    assert_eq!(m["payload"]["data"]["events"]["data"]["id"], post["id"]);
    assert_eq!(m["payload"]["data"]["events"]["topic"], format!("posts/{}", post["id"].as_str().unwrap()));

    anon.send(json!({"type": "complete", "id": "1"})).await;
    anon.send(json!({"type": "subscribe", "id": "1", "payload": {"query": POST_EVENTS, "variables": {"after": "0"}}}))
        .await;
    let mut m = anon.recv().await;
    while m["type"] == "complete" {
        m = anon.recv().await;
    }
    assert_eq!(m["payload"]["data"]["events"]["type"], "post.published", "resumes from the log after `after`: {m}");
}

#[tokio::test]
async fn a_subscriber_demoted_while_connected_stops_receiving_others_drafts_at_revalidation() {
    let app = spawn_app_with(crate::helpers::Store::Sqlite, |s| s.stream_revalidate_secs = 1).await.unwrap();
    let (boss, root, alice) =
        (app.with_role("boss", Role::Admin).await, app.with_role("root", Role::Admin).await, app.member("alice").await);
    let mut ws = gws(&app, "graphql-transport-ws").await;
    ws.init(json!({"authorization": format!("Bearer {}", boss.token)})).await;
    ws.send(json!({"type": "subscribe", "id": "all", "payload": {"query": POST_EVENTS}})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let draft = app.create_post(&alice, "draft one", &[]).await;
    let m = ws.recv().await;
    assert_eq!(m["payload"]["data"]["events"]["data"]["id"], draft["id"], "an admin sees others' drafts: {m}");

    let r = app.patch(&format!("/users/{}", boss.id), Some(&root.token), json!({"role": "member"})).await;
    assert_eq!(r.status(), StatusCode::OK);
    // Past the revalidation interval the connection's caller is a member.
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    app.create_post(&alice, "draft two", &[]).await;
    let public = app.published_post(&alice, "public").await;
    loop {
        let m = ws.recv().await;
        let event = &m["payload"]["data"]["events"];
        assert_ne!(event["data"]["title"], "draft two", "a member never sees another's draft: {m}");
        if event["type"] == "post.published" {
            assert_eq!(event["data"]["id"], public["id"]);
            break;
        }
    }
}

#[tokio::test]
async fn a_subscription_larger_than_the_read_buffer_works_and_one_over_the_limit_closes_with_1009() {
    let app = spawn_app_with(crate::helpers::Store::Sqlite, |s| s.ws_max_message_bytes = 32 * 1024).await.unwrap();
    let alice = app.member("alice").await;
    let mut ws = gws(&app, "graphql-transport-ws").await;
    ws.init(json!({})).await;
    let padded = format!("# {}\n{POST_EVENTS}", "x".repeat(20 * 1024));
    ws.send(json!({"type": "subscribe", "id": "big", "payload": {"query": padded}})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    app.published_post(&alice, "Seen").await;
    let m = ws.recv().await;
    assert_eq!(m["id"], "big", "a 20 KiB message is read across many small reads: {m}");
    assert_eq!(m["payload"]["data"]["events"]["type"], "post.published");
    let huge = format!("# {}\n{POST_EVENTS}", "x".repeat(40 * 1024));
    ws.send(json!({"type": "subscribe", "id": "huge", "payload": {"query": huge}})).await;
    assert_eq!(ws.closed().await, 1009);
}

#[tokio::test]
async fn the_legacy_graphql_ws_protocol_delivers_events_too() {
    let app = spawn_app().await;
    let alice = app.member("alice").await;
    let mut ws = gws(&app, "graphql-ws").await;
    ws.init(json!({"authorization": format!("Bearer {}", alice.token)})).await;
    ws.send(json!({"type": "start", "id": "s", "payload": {"query": POST_EVENTS}})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    app.create_post(&alice, "Draft", &[]).await;
    let m = ws.recv().await;
    assert_eq!(m["type"], "data");
    assert_eq!(m["payload"]["data"]["events"]["type"], "post.created");
    ws.send(json!({"type": "stop", "id": "s"})).await;
    assert_eq!(ws.recv().await["type"], "complete");
}

#[tokio::test]
async fn bad_credentials_duplicate_ids_and_bad_messages_close_with_the_protocol_codes() {
    let app = spawn_app().await;
    let mut ws = gws(&app, "graphql-transport-ws").await;
    ws.send(json!({"type": "connection_init", "payload": {"authorization": "Bearer nope"}})).await;
    assert_eq!(ws.closed().await, 4403);

    let mut ws = gws(&app, "graphql-transport-ws").await;
    ws.init(json!({})).await;
    ws.send(json!({"type": "subscribe", "id": "x", "payload": {"query": POST_EVENTS}})).await;
    ws.send(json!({"type": "subscribe", "id": "x", "payload": {"query": POST_EVENTS}})).await;
    assert_eq!(ws.closed().await, 4409);

    let mut ws = gws(&app, "graphql-transport-ws").await;
    ws.init(json!({})).await;
    ws.send(json!({"type": "bogus"})).await;
    assert_eq!(ws.closed().await, 4400);

    let mut ws = gws(&app, "graphql-transport-ws").await;
    ws.send(json!({"type": "subscribe", "id": "x", "payload": {"query": POST_EVENTS}})).await;
    assert_eq!(ws.closed().await, 4401, "subscribing before connection_ack");
}

#[tokio::test]
async fn a_connection_that_never_initialises_is_closed_with_4408() {
    let app = spawn_app().await;
    let mut ws = gws(&app, "graphql-transport-ws").await;
    assert_eq!(ws.closed().await, 4408);
}

#[tokio::test]
async fn a_revoked_session_stops_private_delivery() {
    let app = spawn_app_with(crate::helpers::Store::Sqlite, |s| s.stream_revalidate_secs = 1).await.unwrap();
    let alice = app.member("alice").await;
    let mut ws = gws(&app, "graphql-transport-ws").await;
    ws.init(json!({"authorization": format!("Bearer {}", alice.token)})).await;
    ws.send(json!({"type": "subscribe", "id": "1", "payload": {"query": POST_EVENTS}})).await;
    let r = app.post("/auth/logout", None, json!({"refresh_token": alice.refresh_token})).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(ws.closed().await, 4401);
}

#[tokio::test]
async fn subscription_errors_carry_the_contract_code() {
    let app = spawn_app().await;
    let mut ws = gws(&app, "graphql-transport-ws").await;
    ws.init(json!({})).await;
    let q = "subscription { events(topics: [\"nope\"]) { id } }";
    ws.send(json!({"type": "subscribe", "id": "1", "payload": {"query": q}})).await;
    let m = ws.recv().await;
    assert_eq!(m["type"], "next", "{m}");
    assert_eq!(m["payload"]["errors"][0]["extensions"]["code"], "INVALID_REQUEST");
    assert_eq!(m["payload"]["errors"][0]["extensions"]["details"][0]["field"], "topics[0]");
}

#[test]
fn the_graphql_schema_module_has_no_web_framework_dependency() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/adapters/graphql/schema");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("axum"), "{} must not depend on axum; mount it in graphql/mod.rs", path.display());
    }
}

#[tokio::test]
async fn a_document_that_already_ran_still_refuses_bad_variables_and_deep_nesting_the_same_way() {
    let app = spawn_app_with(crate::helpers::Store::Sqlite, |s| s.graphql_max_depth = 5).await.unwrap();
    let alice = app.member("alice").await;
    let post = app.published_post(&alice, "Public").await;
    let q = "query($id: ID!, $n: Int) { post(id: $id) { title author { posts(first: $n) { edges { cursor } } } } }";
    let first_bad = app.gql(Some(&alice.token), q, json!({"id": 5, "n": "many"})).await;
    for _ in 0..2 {
        let (status, body) = app.gql(Some(&alice.token), q, json!({"id": post["id"], "n": 1})).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["data"]["post"]["title"], "Public", "{body}");
    }
    // The document is now known valid: values are still checked per request.
    let again_bad = app.gql(Some(&alice.token), q, json!({"id": 5, "n": "many"})).await;
    assert_eq!(first_bad.0, again_bad.0);
    assert!(again_bad.1["data"].is_null(), "{}", again_bad.1);
    assert_eq!(code(&again_bad.1, 0), code(&first_bad.1, 0), "{} vs {}", first_bad.1, again_bad.1);
    assert!(!code(&again_bad.1, 0).is_empty());
    // Depth is a property of the document and stays enforced.
    let deep = "query($id: ID!) { post(id: $id) { author { posts { edges { node { author { name } } } } } } }";
    for _ in 0..2 {
        let (_, body) = app.gql(Some(&alice.token), deep, json!({"id": post["id"]})).await;
        assert!(body["data"].is_null() && !body["errors"].as_array().is_none_or(Vec::is_empty), "{body}");
    }
}
