//! OWASP API Security Top 10 cases not covered by the parity matrix (which runs object-,
//! property- and function-level authorization on every protocol): forged credentials on every
//! protocol (API2), misconfiguration (API8) and an inventory with nothing unlisted (API9).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use polyport::adapters::grpc::pb;
use polyport::adapters::grpc::pb::user_service_client::UserServiceClient;
use polyport::adapters::soap::envelope::Version;
use reqwest::{Method, StatusCode};
use serde_json::json;
use tonic::Code;

use crate::graphql::code;
use crate::grpc::{assert_rich, authed, channel};
use crate::helpers::{assert_error, spawn_app};
use crate::realtime_support::ws_try;
use crate::soap::call;

/// An unsigned token (`alg: none`) claiming to be an admin.
fn forged_admin_token() -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let exp = chrono::Utc::now().timestamp() + 600;
    let claims = json!({"sub": "someone", "role": "admin", "jti": "x", "sid": "y", "typ": "access", "exp": exp, "iat": 0, "iss": "polyport"});
    format!("{header}.{}.", URL_SAFE_NO_PAD.encode(claims.to_string()))
}

#[tokio::test]
async fn a_forged_admin_token_is_unauthenticated_on_every_protocol() {
    let app = spawn_app().await;
    let token = forged_admin_token();
    let r = app.get("/users", Some(&token)).await;
    let www = r.headers().get("www-authenticate").cloned();
    assert_error(r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED").await;
    assert!(www.is_some());
    let (status, body) = app.gql(Some(&token), "{ users { edges { node { email } } } }", json!({})).await;
    assert_eq!((status, code(&body, 0)), (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED"));
    let mut users = UserServiceClient::new(channel(&app).await);
    let status = users.list_users(authed(pb::ListUsersRequest::default(), &token)).await.unwrap_err();
    assert_rich(&status, Code::Unauthenticated, "UNAUTHENTICATED");
    call(&app, Version::Soap11, "ListUsers", &[], Some(&token)).await.assert_fault(
        Version::Soap11,
        "Client",
        "UNAUTHENTICATED",
    );
    let refused = ws_try(&app, &[("authorization", &format!("Bearer {token}"))], None).await;
    assert!(refused.is_err(), "the WebSocket upgrade is refused");
    let r = app.client.get(app.api("/events?topics=posts")).bearer_auth(&token).send().await.unwrap();
    assert_error(r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED").await;
}

#[tokio::test]
async fn cors_grants_no_foreign_origin_and_errors_never_show_internals() {
    let app = spawn_app().await;
    let preflight = app
        .client
        .request(Method::OPTIONS, app.api("/posts"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(preflight.headers().get("access-control-allow-origin").is_none(), "no CORS grant for a foreign origin");
    assert!(preflight.headers().get("access-control-allow-credentials").is_none());
    for path in ["/posts/'%20OR%201=1--", "/users/..%2f..%2fetc%2fpasswd", "/posts?limit=abc", "/posts?cursor=%00"] {
        let r = app.get(path, None).await;
        assert!(r.status().is_client_error(), "{path}: {}", r.status());
        let text = r.text().await.unwrap();
        for leak in ["sqlx", "panicked", "src/", "SELECT", "sqlite", "postgres", "stack"] {
            assert!(!text.contains(leak), "{path} leaks {leak}: {text}");
        }
    }
}

#[tokio::test]
async fn the_inventory_holds_only_documented_routes() {
    let app = spawn_app().await;
    for path in ["/admin", "/debug", "/api/v2/posts", "/api/v1/internal", "/.env", "/actuator/health", "/server-status"]
    {
        let r = app.client.get(app.url(path)).send().await.unwrap();
        assert_error(r, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    }
    let r = app.client.request(Method::TRACE, app.api("/posts")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    let spec: serde_json::Value = app.client.get(app.api("/openapi.json")).send().await.unwrap().json().await.unwrap();
    let documented: Vec<&str> = spec["paths"].as_object().unwrap().keys().map(String::as_str).collect();
    for path in ["/api/v1/posts", "/api/v1/users", "/api/v1/auth/login", "/api/v1/api-keys"] {
        assert!(documented.contains(&path), "{path} is documented");
    }
}
