//! What the protocols share beyond the table: one rate budget (API keys draw on their owner's),
//! one idempotency key store, one validation answer.

use polyport::adapters::grpc::pb;
use polyport::adapters::grpc::pb::post_service_client::PostServiceClient;
use polyport::adapters::soap::envelope::Version;
use polyport::domain::policy::{Actor, Credential, Principal};
use polyport::domain::user::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tonic_types::StatusExt;

use super::clients::{Cred, Proto, call, graphql_request};
use super::{Fixture, Op};
use crate::graphql::gws;
use crate::grpc::{authed, channel};
use crate::helpers::{Store, TestApp, spawn_app_with};
use crate::realtime_support::ws_bearer;
use crate::soap::{envelope, op as soap_op, send};

fn fixture(app: &TestApp, user: &crate::helpers::TestUser) -> Fixture {
    let _ = app;
    Fixture {
        draft: "none".into(),
        published: "none".into(),
        target_user: user.id.clone(),
        owner_email: user.email.clone(),
        webhook: String::new(),
    }
}

async fn one_budget_is_drained_by_operations_on_every_protocol_and_by_api_keys(app: TestApp) {
    let ada = app.member("ada").await;
    let actor = Actor::User(Principal {
        user_id: ada.id.clone(),
        role: Role::Member,
        credential: Credential::AccessToken { jti: "t".into(), session_id: "t".into() },
    });
    let key = app
        .core
        .auth
        .create_api_key(&actor, "k", &["posts:read".to_string()], &Default::default())
        .await
        .unwrap()
        .secret;
    let (bearer, key) = (Cred::Bearer(ada.token.clone()), Cred::Key(key));
    let fx = fixture(&app, &ada);
    // The budget is 12: one unit per REST, GraphQL, gRPC and SOAP call, per WebSocket upgrade
    // with credentials, per `/ws` frame, per GraphQL `connection_init` and per GraphQL operation.
    let mut spent = 0;
    for (proto, cred) in [
        (Proto::Rest, &bearer),
        (Proto::Rest, &key),
        (Proto::GraphqlHttp, &bearer),
        (Proto::Grpc, &bearer),
        (Proto::Grpc, &key),
        (Proto::Soap, &key),
    ] {
        assert_eq!(call(&app, proto, cred, Op::ListPosts, &fx).await, "OK", "{proto:?}");
        spent += 1;
    }
    let mut frames = ws_bearer(&app, &ada.token).await;
    spent += 1;
    assert_eq!(frames.request("r1", "listPosts", json!({})).await["type"], "response");
    spent += 1;
    let mut graphql = gws(&app, "graphql-transport-ws").await;
    graphql.init(json!({"apiKey": match &key { Cred::Key(k) => k.clone(), _ => unreachable!() }})).await;
    spent += 1;
    graphql.send(json!({"type": "subscribe", "id": "1", "payload": graphql_request(Op::ListPosts, &fx)})).await;
    assert!(graphql.recv().await["payload"]["errors"].is_null());
    spent += 1;
    assert_eq!(spent, 10);
    assert_eq!(call(&app, Proto::Rest, &bearer, Op::ListPosts, &fx).await, "OK");
    assert_eq!(call(&app, Proto::GraphqlHttp, &key, Op::ListPosts, &fx).await, "OK");

    // Spent: every protocol now refuses, with or without the key.
    for proto in [Proto::Rest, Proto::GraphqlHttp, Proto::Grpc, Proto::Soap] {
        for cred in [&bearer, &key] {
            assert_eq!(call(&app, proto, cred, Op::ListPosts, &fx).await, "RATE_LIMITED", "{proto:?} {cred:?}");
        }
    }
    let refused = frames.request("r2", "listPosts", json!({})).await;
    assert_eq!(refused["code"], "RATE_LIMITED", "{refused}");
    assert!(refused["request_id"].as_str().is_some_and(|r| !r.is_empty()));
    graphql.send(json!({"type": "subscribe", "id": "2", "payload": graphql_request(Op::ListPosts, &fx)})).await;
    let m = loop {
        let m = graphql.recv().await;
        if m["type"] != "complete" {
            break m;
        }
    };
    let errors = if m["type"] == "error" { m["payload"].clone() } else { m["payload"]["errors"].clone() };
    assert_eq!(errors[0]["extensions"]["code"], "RATE_LIMITED", "{m}");
}

async fn one_idempotency_key_replays_the_same_post_on_every_protocol(app: TestApp) {
    let ada = app.member("ada").await;
    let key = "one-key-everywhere";
    let r = app
        .req(reqwest::Method::POST, "/posts", Some(&ada.token))
        .header("idempotency-key", key)
        .json(&json!({"title": "Once", "body": "", "tags": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();

    let q = json!({"query": "mutation { createPost(input: {title: \"Once\"}) { id } }"});
    let r = app.client.post(app.url("/graphql")).bearer_auth(&ada.token).header("idempotency-key", key).json(&q);
    let r = r.send().await.unwrap();
    assert_eq!(r.headers()["idempotent-replayed"], "true");
    assert_eq!(r.json::<Value>().await.unwrap()["data"]["createPost"]["id"], id.as_str(), "GraphQL");

    let mut req = authed(pb::CreatePostRequest { title: "Once".into(), ..Default::default() }, &ada.token);
    req.metadata_mut().insert("idempotency-key", key.parse().unwrap());
    let r = PostServiceClient::new(channel(&app).await).create_post(req).await.unwrap();
    assert_eq!(r.metadata().get("idempotent-replayed").unwrap(), "true");
    assert_eq!(r.into_inner().id, id, "gRPC");

    let header = format!("<p:IdempotencyKey>{key}</p:IdempotencyKey>");
    let body = envelope(Version::Soap12, &header, &soap_op("CreatePost", &[("title", "Once")]));
    let auth = format!("Bearer {}", ada.token);
    let a = send(&app, Version::Soap12, "CreatePost", body, &[("authorization", &auth)]).await;
    assert_eq!(a.headers["idempotent-replayed"], "true");
    assert_eq!(a.text("id").as_deref(), Some(id.as_str()), "SOAP");

    let mut frames = ws_bearer(&app, &ada.token).await;
    let frame =
        json!({"type": "request", "id": "r", "op": "createPost", "params": {"title": "Once"}, "idempotency_key": key});
    let reply = frames.request_with(frame).await;
    assert_eq!((reply["replayed"].as_bool(), reply["data"]["id"].as_str()), (Some(true), Some(id.as_str())), "/ws");

    let created = app.event_types().await.iter().filter(|t| *t == "post.created").count();
    assert_eq!(created, 1, "one post, however many protocols asked");
    let other = frames
        .request_with(json!({"type": "request", "id": "x", "op": "createPost", "params": {"title": "Other"}, "idempotency_key": key}))
        .await;
    assert_eq!(other["code"], "IDEMPOTENCY_KEY_REUSED");
}

/// The same broken post on every protocol, answered with the same code and fields.
async fn one_validation_failure_is_answered_with_the_same_fields_everywhere(app: TestApp) {
    let ada = app.member("ada").await;
    let want =
        vec![("title".to_string(), "required".to_string()), ("tags[0]".to_string(), "invalid_format".to_string())];
    let pairs = |list: &Value| -> Vec<(String, String)> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|d| (d["field"].as_str().unwrap().to_string(), d["issue"].as_str().unwrap().to_string()))
            .collect()
    };

    let r = app.post("/posts", Some(&ada.token), json!({"title": "", "tags": ["Not A Tag"]})).await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        (body["error"]["code"].as_str(), pairs(&body["error"]["details"])),
        (Some("VALIDATION_FAILED"), want.clone())
    );

    let q = "mutation { createPost(input: {title: \"\", tags: [\"Not A Tag\"]}) { id } }";
    let (_, body) = app.gql(Some(&ada.token), q, json!({})).await;
    let ext = &body["errors"][0]["extensions"];
    assert_eq!((ext["code"].as_str(), pairs(&ext["details"])), (Some("VALIDATION_FAILED"), want.clone()), "GraphQL");

    let mut ws = gws(&app, "graphql-transport-ws").await;
    ws.init(json!({"authorization": format!("Bearer {}", ada.token)})).await;
    ws.send(json!({"type": "subscribe", "id": "1", "payload": {"query": q}})).await;
    let m = ws.recv().await;
    let ext = &m["payload"]["errors"][0]["extensions"];
    assert_eq!((ext["code"].as_str(), pairs(&ext["details"])), (Some("VALIDATION_FAILED"), want.clone()), "GraphQL WS");
    assert!(ext["requestId"].as_str().is_some_and(|r| !r.is_empty()));

    let req = authed(
        pb::CreatePostRequest { title: String::new(), body: String::new(), tags: vec!["Not A Tag".into()] },
        &ada.token,
    );
    let status = PostServiceClient::new(channel(&app).await).create_post(req).await.unwrap_err();
    let details = status.get_error_details();
    assert_eq!(details.error_info().unwrap().reason, "VALIDATION_FAILED");
    let got: Vec<(String, String)> = details
        .bad_request()
        .unwrap()
        .field_violations
        .iter()
        .map(|v| (v.field.clone(), v.description.clone()))
        .collect();
    assert_eq!(got, want, "gRPC");

    let auth = format!("Bearer {}", ada.token);
    let body =
        envelope(Version::Soap12, "", &soap_op("CreatePost", &[("title", ""), ("tags", "<p:tag>Not A Tag</p:tag>")]));
    let a = send(&app, Version::Soap12, "CreatePost", body, &[("authorization", &auth)]).await;
    a.assert_fault(Version::Soap12, "Sender", "VALIDATION_FAILED");
    assert_eq!(a.issues(), want, "SOAP");

    let mut frames = ws_bearer(&app, &ada.token).await;
    let reply = frames.request("r", "createPost", json!({"title": "", "tags": ["Not A Tag"]})).await;
    assert_eq!((reply["code"].as_str(), pairs(&reply["details"])), (Some("VALIDATION_FAILED"), want), "/ws");
}

crate::on_every_store!(
    one_idempotency_key_replays_the_same_post_on_every_protocol,
    one_validation_failure_is_answered_with_the_same_fields_everywhere
);

mod one_budget {
    #[tokio::test]
    async fn on_sqlite() {
        let app = super::spawn_app_with(super::Store::Sqlite, |s| s.rate_limit_per_minute = 12).await.unwrap();
        super::one_budget_is_drained_by_operations_on_every_protocol_and_by_api_keys(app).await;
    }

    #[tokio::test]
    async fn on_postgres() {
        let Some(app) = super::spawn_app_with(super::Store::Postgres, |s| s.rate_limit_per_minute = 12).await else {
            return;
        };
        super::one_budget_is_drained_by_operations_on_every_protocol_and_by_api_keys(app).await;
    }
}
