//! Server hygiene: body limits, slow clients, CORS, request ids, ops endpoints, docs, shutdown.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{Store, assert_error, spawn_app, spawn_app_with};

#[tokio::test]
async fn an_oversize_body_is_refused_with_413_in_our_envelope() {
    let app = spawn_app_with(Store::Sqlite, |s| s.body_limit_bytes = 64 * 1024).await.unwrap();
    let ada = app.member("ada").await;
    let r = app.post("/posts", Some(&ada.token), json!({"title": "big", "body": "x".repeat(70 * 1024)})).await;
    assert_error(r, StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE").await;
    assert!(app.event_types().await.iter().all(|t| t != "post.created"));
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let app = spawn_app_with(Store::Sqlite, |s| s.header_read_timeout_secs = 1).await.unwrap();
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ").await.unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the server closed the connection within the header timeout");
}

#[tokio::test]
async fn cors_answers_allowed_origins_only() {
    let app = spawn_app_with(Store::Sqlite, |s| s.cors_origins = vec!["https://app.example.com".into()]).await.unwrap();
    let preflight = |origin: &'static str| {
        app.client
            .request(Method::OPTIONS, app.api("/posts"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization,content-type,idempotency-key")
            .send()
    };
    let ok = preflight("https://app.example.com").await.unwrap();
    assert_eq!(ok.headers()["access-control-allow-origin"], "https://app.example.com");
    let evil = preflight("https://evil.example.com").await.unwrap();
    assert!(evil.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn request_ids_are_kept_when_well_formed_and_generated_otherwise() {
    let app = spawn_app().await;
    let r = app.client.get(app.url("/healthz")).header("x-request-id", "abc-123").send().await.unwrap();
    assert_eq!(r.headers()["x-request-id"], "abc-123");
    let r =
        app.req(Method::GET, "/posts/nope", None).header("x-request-id", "bad id with spaces").send().await.unwrap();
    let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_ne!(id, "bad id with spaces");
    let body = assert_error(r, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    assert_eq!(body["error"]["request_id"], id.as_str());
}

#[tokio::test]
async fn health_readiness_and_metrics_are_served() {
    let app = spawn_app().await;
    assert_eq!(app.client.get(app.url("/healthz")).send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(app.client.get(app.url("/readyz")).send().await.unwrap().status(), StatusCode::OK);
    app.get("/posts", None).await;
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("polyport_requests_total{"), "{metrics}");
    assert!(metrics.contains("route=\"/api/v1/posts\""));
    assert!(metrics.contains("protocol=\"rest\""), "{metrics}");
    assert!(metrics.contains("polyport_request_duration_seconds_bucket"));
}

#[tokio::test]
async fn the_openapi_document_describes_every_route_and_the_docs_work_offline() {
    let app = spawn_app().await;
    let spec: Value = app.get("/openapi.json", None).await.json().await.unwrap();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in
        ["/api/v1/auth/login", "/api/v1/users/{id}/posts", "/api/v1/posts/{id}/publish", "/api/v1/api-keys/{id}"]
    {
        assert!(spec["paths"].get(path).is_some(), "{path} missing");
    }
    assert!(spec["components"]["schemas"].get("ErrorBody").is_some());
    // The event stream and its token are documented with the rest.
    let events = &spec["paths"]["/api/v1/events"]["get"];
    assert_eq!(events["operationId"], "subscribeEvents");
    assert!(events["responses"]["200"]["content"].get("text/event-stream").is_some(), "{events}");
    let security: Vec<String> = events["security"].as_array().unwrap().iter().map(|s| s.to_string()).collect();
    assert!(security.contains(&"{\"stream_token\":[]}".to_string()), "{security:?}");
    assert_eq!(spec["components"]["securitySchemes"]["stream_token"]["in"], "query");
    let token = &spec["paths"]["/api/v1/events/token"]["post"];
    assert_eq!(token["operationId"], "createStreamToken");
    assert_eq!(
        token["responses"]["201"]["content"]["application/json"]["schema"]["required"],
        json!(["token", "expires_in"])
    );
    let docs = app.client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(docs.status(), StatusCode::OK);
    let html = docs.text().await.unwrap();
    assert!(html.contains("swagger-ui") && !html.contains("https://"), "assets are served locally");
}

#[tokio::test]
async fn openapi_names_each_operation_canonically_and_states_who_may_call_it_as_the_server_does() {
    let app = spawn_app().await;
    let spec: Value = app.get("/openapi.json", None).await.json().await.unwrap();
    let mut ids = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            ids.push(id.to_string());
            let anonymous = op["security"].as_array().unwrap().iter().any(|s| s.as_object().unwrap().is_empty());
            // The document's word against the server's: call it without credentials (login and
            // refreshToken answer 401 for the credentials in their body, so they are left out).
            let url = app.url(&path.replace("{id}", "01a00000-0000-7000-8000-000000000000"));
            let body = match id {
                "logout" => json!({"refresh_token": "x"}),
                "register" => {
                    json!({"email": format!("{}@example.com", uuid::Uuid::now_v7().simple()), "name": "N", "password": "long enough password"})
                }
                "createApiKey" => json!({"name": "k", "scopes": ["posts:read"]}),
                "createWebhook" => json!({"url": "http://93.184.216.34/hook", "topics": ["posts"]}),
                "updateUser" => json!({"name": "n"}),
                _ => json!({"title": "t"}),
            };
            let r = app.client.request(method.to_uppercase().parse().unwrap(), url).json(&body).send().await.unwrap();
            if !["login", "refreshToken"].contains(&id) {
                assert_eq!(
                    r.status() == StatusCode::UNAUTHORIZED,
                    !anonymous,
                    "{id} ({method} {path}): {}",
                    r.status()
                );
            }
            let statuses: Vec<&String> = op["responses"].as_object().unwrap().keys().collect();
            let guarded = ["updatePost", "deletePost", "publishPost", "unpublishPost", "updateUser", "deleteUser"];
            assert_eq!(guarded.contains(&id), statuses.contains(&&"412".to_string()), "{id}: {statuses:?}");
            assert_eq!(op.get("requestBody").is_some(), statuses.contains(&&"415".to_string()), "{id}");
            let params: Vec<&str> =
                op["parameters"].as_array().map_or(vec![], |ps| ps.iter().filter_map(|p| p["name"].as_str()).collect());
            assert_eq!(params.contains(&"If-Match"), guarded.contains(&id), "{id}: {params:?}");
            assert_eq!(
                params.contains(&"If-None-Match"),
                ["getPost", "getUser", "me"].contains(&id),
                "{id}: {params:?}"
            );
            let keyed = polyport::platform::operations::IDEMPOTENT.contains(&id);
            assert_eq!(params.contains(&"Idempotency-Key"), keyed, "{id}: {params:?}");
        }
    }
    let count = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), count, "operationIds are unique: {ids:?}");
    // Every operation answers some 2xx, every reference resolves, every security requirement
    // names a declared scheme: what generators (openapi-typescript, schemathesis) rely on.
    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    out.push(r);
                }
                map.values().for_each(|v| refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&spec, &mut all);
    for r in all {
        let name = r.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("unexpected $ref {r}"));
        assert!(spec["components"]["schemas"].get(name).is_some(), "{r} does not resolve");
    }
    let schemes = spec["components"]["securitySchemes"].as_object().unwrap();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let statuses = op["responses"].as_object().unwrap();
            assert!(statuses.keys().any(|s| s.starts_with('2')), "{method} {path} has no 2xx answer");
            for requirement in op["security"].as_array().unwrap() {
                for scheme in requirement.as_object().unwrap().keys() {
                    assert!(schemes.contains_key(scheme), "{method} {path}: undeclared scheme {scheme}");
                }
            }
        }
    }
    for id in &ids {
        assert!(
            ["login", "refreshToken", "logout", "register", "me", "getUser", "listUsers", "updateUser", "deleteUser"]
                .contains(&id.as_str())
                || ["getPost", "listPosts", "listUserPosts", "createPost", "updatePost", "publishPost"]
                    .contains(&id.as_str())
                || ["unpublishPost", "deletePost", "createApiKey", "listApiKeys", "revokeApiKey"]
                    .contains(&id.as_str())
                || ["createWebhook", "listWebhooks", "deleteWebhook", "listWebhookDeliveries"].contains(&id.as_str())
                || ["subscribeEvents", "createStreamToken", "listAuditEntries"].contains(&id.as_str()),
            "{id} is not a canonical operation name"
        );
    }
}

#[tokio::test]
async fn shutdown_finishes_the_request_in_flight_then_stops_cleanly() {
    let mut app = spawn_app().await;
    let ada = app.member("ada").await;
    let body = br#"{"title":"written during shutdown"}"#;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST /api/v1/posts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        ada.token,
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body[..10]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    app.shutdown.trigger();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(TcpStream::connect(app.addr).await.is_err(), "no new connections while draining");

    stream.write_all(&body[10..]).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");

    let server = app.server.take().unwrap();
    let result = tokio::time::timeout(Duration::from_secs(10), server).await.expect("stopped within the deadline");
    assert!(result.unwrap().is_ok());
}
