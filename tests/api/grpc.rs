//! gRPC over real sockets with a tonic client on the shared port: unary CRUD and auth, rich
//! errors, limits, idempotency, deadlines, all stream kinds, reflection, health and gRPC-Web.

use std::time::Duration;

use polyport::adapters::grpc::pb;
use polyport::adapters::grpc::pb::auth_service_client::AuthServiceClient;
use polyport::adapters::grpc::pb::event_service_client::EventServiceClient;
use polyport::adapters::grpc::pb::post_service_client::PostServiceClient;
use polyport::adapters::grpc::pb::user_service_client::UserServiceClient;
use polyport::domain::user::Role;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

use crate::helpers::{PASSWORD, Store, TestApp, spawn_app, spawn_app_with};

pub async fn channel(app: &TestApp) -> Channel {
    tonic::transport::Endpoint::from_shared(app.base.clone()).unwrap().connect().await.expect("h2c connect")
}

pub fn authed<T>(message: T, token: &str) -> Request<T> {
    let mut req = Request::new(message);
    req.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    req
}

/// The status carries our code in ErrorInfo (domain polyport) with a request id.
pub fn assert_rich(status: &Status, code: Code, reason: &str) -> tonic_types::ErrorDetails {
    assert_eq!(status.code(), code, "{status:?}");
    let details = status.get_error_details();
    let info = details.error_info().expect("ErrorInfo present");
    assert_eq!(info.reason, reason);
    assert_eq!(info.domain, "polyport");
    assert!(info.metadata.get("request_id").is_some_and(|id| !id.is_empty()), "{info:?}");
    details
}

async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), fut).await.unwrap_or_else(|_| panic!("timed out: {what}"))
}

#[tokio::test]
async fn register_login_and_post_crud_work_over_grpc_on_the_rest_port() {
    let app = spawn_app().await;
    let ch = channel(&app).await;
    let mut users = UserServiceClient::new(ch.clone());
    let mut auth = AuthServiceClient::new(ch.clone());
    let mut posts = PostServiceClient::new(ch.clone());
    let email = format!("g-{}@example.com", uuid::Uuid::now_v7().simple());
    let reg = pb::RegisterRequest { email: email.clone(), name: "Grace".into(), password: PASSWORD.into() };
    let me = users.register(reg).await.unwrap().into_inner();
    assert_eq!(me.email.as_deref(), Some(email.as_str()));
    assert_eq!(me.role.as_deref(), Some("member"));
    let login = auth.login(pb::LoginRequest { email, password: PASSWORD.into() }).await.unwrap();
    assert!(login.metadata().get("x-request-id").is_some());
    assert!(login.metadata().get("ratelimit-remaining").is_some());
    let tokens = login.into_inner();
    assert_eq!(tokens.token_type, "Bearer");
    assert!(tokens.expires_in > 0);
    let token = tokens.access_token;
    assert_eq!(users.get_me(authed(pb::GetMeRequest {}, &token)).await.unwrap().into_inner().id, me.id);

    let req = pb::CreatePostRequest { title: "Hello".into(), body: "text".into(), tags: vec!["a".into(), "b".into()] };
    let post = posts.create_post(authed(req, &token)).await.unwrap().into_inner();
    assert_eq!((post.status.as_str(), post.version, post.author_id.as_str()), ("draft", 1, me.id.as_str()));
    assert!(post.created_at.is_some() && post.published_at.is_none());
    // The same post through REST: one core.
    let rest: serde_json::Value = app.get(&format!("/posts/{}", post.id), Some(&token)).await.json().await.unwrap();
    assert_eq!(rest["title"], "Hello");

    let got = posts.get_post(authed(pb::GetPostRequest { id: post.id.clone() }, &token)).await.unwrap().into_inner();
    assert_eq!(got, post);
    let anonymous = posts.get_post(pb::GetPostRequest { id: post.id.clone() }).await.unwrap_err();
    assert_rich(&anonymous, Code::NotFound, "NOT_FOUND");

    let mask = prost_types::FieldMask { paths: vec!["tags".into(), "title".into()] };
    let update = pb::UpdatePostRequest {
        id: post.id.clone(),
        title: Some("Hello again".into()),
        expected_version: Some(1),
        update_mask: Some(mask),
        ..Default::default()
    };
    let updated = posts.update_post(authed(update, &token)).await.unwrap().into_inner();
    assert_eq!((updated.title.as_str(), updated.tags.len(), updated.version), ("Hello again", 0, 2));

    let publish = pb::PublishPostRequest { id: post.id.clone(), expected_version: None };
    let published = posts.publish_post(authed(publish, &token)).await.unwrap().into_inner();
    assert_eq!(published.status, "published");
    assert!(published.published_at.is_some());
    let anonymous = posts.get_post(pb::GetPostRequest { id: post.id.clone() }).await.unwrap().into_inner();
    assert_eq!(anonymous.id, post.id);

    let unpublish = pb::UnpublishPostRequest { id: post.id.clone(), expected_version: None };
    let refused = posts.unpublish_post(authed(unpublish, &token)).await.unwrap_err();
    assert_rich(&refused, Code::PermissionDenied, "FORBIDDEN");

    let delete = pb::DeletePostRequest { id: post.id.clone(), expected_version: Some(99) };
    let stale = posts.delete_post(authed(delete, &token)).await.unwrap_err();
    let details = assert_rich(&stale, Code::Aborted, "CONFLICT");
    assert_eq!(details.bad_request().unwrap().field_violations[0].field, "version");
    let delete = pb::DeletePostRequest { id: post.id.clone(), expected_version: Some(3) };
    assert!(posts.delete_post(authed(delete, &token)).await.unwrap().into_inner().deleted);
    let gone = posts.get_post(authed(pb::GetPostRequest { id: post.id }, &token)).await.unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("protocol=\"grpc\""), "gRPC calls are counted as gRPC: {metrics}");
}

#[tokio::test]
async fn users_refresh_logout_and_api_keys_work_over_grpc() {
    let app = spawn_app().await;
    let alice = app.member("alice").await;
    let admin = app.with_role("root", Role::Admin).await;
    let ch = channel(&app).await;
    let mut users = UserServiceClient::new(ch.clone());
    let mut auth = AuthServiceClient::new(ch.clone());

    let public = users.get_user(pb::GetUserRequest { id: alice.id.clone() }).await.unwrap().into_inner();
    assert_eq!((public.name.as_str(), public.email, public.role), ("alice", None, None));
    let full = users.get_user(authed(pb::GetUserRequest { id: alice.id.clone() }, &admin.token)).await.unwrap();
    assert_eq!(full.into_inner().email.as_deref(), Some(alice.email.as_str()));

    let page = users.list_users(authed(pb::ListUsersRequest { limit: 1, cursor: String::new() }, &admin.token));
    let page = page.await.unwrap().into_inner();
    assert_eq!(page.data.len(), 1);
    assert!(page.has_more && !page.next_cursor.is_empty());
    let next = pb::ListUsersRequest { limit: 1, cursor: page.next_cursor.clone() };
    let second = users.list_users(authed(next, &admin.token)).await.unwrap().into_inner();
    assert_ne!(second.data[0].id, page.data[0].id);
    let forged = pb::ListUsersRequest { limit: 1, cursor: "nope".into() };
    let bad = users.list_users(forged).await.unwrap_err();
    let details = assert_rich(&bad, Code::InvalidArgument, "INVALID_REQUEST");
    assert_eq!(details.bad_request().unwrap().field_violations[0].field, "cursor");

    let rename = pb::UpdateUserRequest { id: alice.id.clone(), name: Some("Alicia".into()), ..Default::default() };
    assert_eq!(users.update_user(authed(rename, &alice.token)).await.unwrap().into_inner().name, "Alicia");
    let promote = pb::UpdateUserRequest { id: alice.id.clone(), role: Some("admin".into()), ..Default::default() };
    assert_rich(
        &users.update_user(authed(promote, &alice.token)).await.unwrap_err(),
        Code::PermissionDenied,
        "FORBIDDEN",
    );

    let dup = pb::RegisterRequest { email: alice.email.clone(), name: "x".into(), password: PASSWORD.into() };
    assert_rich(&users.register(dup).await.unwrap_err(), Code::AlreadyExists, "CONFLICT");

    let refreshed = auth.refresh_token(pb::RefreshTokenRequest { refresh_token: alice.refresh_token.clone() }).await;
    let refreshed = refreshed.unwrap().into_inner();
    assert_ne!(refreshed.refresh_token, alice.refresh_token);
    let reused = auth.refresh_token(pb::RefreshTokenRequest { refresh_token: alice.refresh_token.clone() }).await;
    assert_rich(&reused.unwrap_err(), Code::Unauthenticated, "UNAUTHENTICATED");

    let create = pb::CreateApiKeyRequest { name: "ci".into(), scopes: vec!["posts:read".into()] };
    let key = auth.create_api_key(authed(create, &admin.token)).await.unwrap().into_inner();
    assert!(key.key.starts_with("ppk_"));
    let listed = auth.list_api_keys(authed(pb::ListApiKeysRequest {}, &admin.token)).await.unwrap().into_inner();
    assert!(listed.data.iter().any(|k| k.id == key.id && k.key.is_empty()));
    let mut with_key = Request::new(pb::GetMeRequest {});
    with_key.metadata_mut().insert("x-api-key", key.key.parse().unwrap());
    assert_rich(&users.get_me(with_key).await.unwrap_err(), Code::PermissionDenied, "FORBIDDEN");
    let mut with_key = Request::new(pb::GetUserRequest { id: alice.id.clone() });
    with_key.metadata_mut().insert("x-api-key", key.key.parse().unwrap());
    assert_rich(&users.get_user(with_key).await.unwrap_err(), Code::PermissionDenied, "FORBIDDEN");
    let revoke = pb::RevokeApiKeyRequest { id: key.id.clone() };
    assert!(auth.revoke_api_key(authed(revoke, &admin.token)).await.unwrap().into_inner().revoked);
    let mut revoked = Request::new(pb::GetUserRequest { id: alice.id.clone() });
    revoked.metadata_mut().insert("x-api-key", key.key.parse().unwrap());
    assert_rich(&users.get_user(revoked).await.unwrap_err(), Code::Unauthenticated, "UNAUTHENTICATED");

    let logout = auth.logout(pb::LogoutRequest { refresh_token: refreshed.refresh_token }).await.unwrap();
    assert!(logout.into_inner().logged_out);
    // Her access token belongs to the session she just ended: refused on the next call.
    let delete = pb::DeleteUserRequest { id: alice.id.clone(), expected_version: None };
    assert_rich(
        &users.delete_user(authed(delete.clone(), &alice.token)).await.unwrap_err(),
        Code::Unauthenticated,
        "UNAUTHENTICATED",
    );
    assert!(users.delete_user(authed(delete, &admin.token)).await.unwrap().into_inner().deleted);
}

#[tokio::test]
async fn validation_errors_and_bad_credentials_carry_rich_details() {
    let app = spawn_app().await;
    let alice = app.member("alice").await;
    let mut posts = PostServiceClient::new(channel(&app).await);
    let bad = pb::CreatePostRequest { title: " ".into(), body: String::new(), tags: vec!["Bad Tag".into()] };
    let status = posts.create_post(authed(bad, &alice.token)).await.unwrap_err();
    let details = assert_rich(&status, Code::InvalidArgument, "VALIDATION_FAILED");
    let fields: Vec<_> = details
        .bad_request()
        .unwrap()
        .field_violations
        .iter()
        .map(|v| (v.field.clone(), v.description.clone()))
        .collect();
    assert_eq!(fields, [("title".to_string(), "required".to_string()), ("tags[0]".into(), "invalid_format".into())]);
    assert_eq!(details.request_info().unwrap().request_id, details.error_info().unwrap().metadata["request_id"]);

    let mut req = Request::new(pb::CreatePostRequest { title: "t".into(), ..Default::default() });
    req.metadata_mut().insert("x-request-id", "client-chosen-1".parse().unwrap());
    let anonymous = posts.create_post(req).await.unwrap_err();
    let details = assert_rich(&anonymous, Code::Unauthenticated, "UNAUTHENTICATED");
    assert_eq!(details.error_info().unwrap().metadata["request_id"], "client-chosen-1");

    let forged = posts.get_post(authed(pb::GetPostRequest { id: "x".into() }, "not-a-jwt")).await.unwrap_err();
    assert_rich(&forged, Code::Unauthenticated, "UNAUTHENTICATED");
    let mut both = authed(pb::GetPostRequest { id: "x".into() }, &alice.token);
    both.metadata_mut().insert("x-api-key", "ppk_x".parse().unwrap());
    assert_rich(&posts.get_post(both).await.unwrap_err(), Code::Unauthenticated, "UNAUTHENTICATED");
    let mask = prost_types::FieldMask { paths: vec!["author_id".into()] };
    let update = pb::UpdatePostRequest { id: "x".into(), update_mask: Some(mask), ..Default::default() };
    let status = posts.update_post(authed(update, &alice.token)).await.unwrap_err();
    assert_rich(&status, Code::InvalidArgument, "INVALID_REQUEST");
}

#[tokio::test]
async fn the_shared_rate_limit_answers_resource_exhausted_with_retry_info() {
    let app = spawn_app_with(Store::Sqlite, |s| s.rate_limit_anon_per_minute = 2).await.unwrap();
    let mut posts = PostServiceClient::new(channel(&app).await);
    for _ in 0..2 {
        let _ = posts.get_post(pb::GetPostRequest { id: "x".into() }).await;
    }
    let status = posts.get_post(pb::GetPostRequest { id: "x".into() }).await.unwrap_err();
    let details = assert_rich(&status, Code::ResourceExhausted, "RATE_LIMITED");
    assert!(details.retry_info().unwrap().retry_delay.is_some_and(|d| d >= Duration::from_secs(1)));
    // REST draws from the same budget.
    assert_eq!(app.get("/posts", None).await.status(), reqwest::StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn idempotency_keys_replay_and_refuse_reuse_with_another_request() {
    let app = spawn_app().await;
    let alice = app.member("alice").await;
    let mut posts = PostServiceClient::new(channel(&app).await);
    let keyed = |title: &str, key: &str| {
        let mut req = authed(pb::CreatePostRequest { title: title.into(), ..Default::default() }, &alice.token);
        req.metadata_mut().insert("idempotency-key", key.parse().unwrap());
        req
    };
    let first = posts.create_post(keyed("once", "k-1")).await.unwrap();
    assert!(first.metadata().get("idempotent-replayed").is_none());
    let again = posts.create_post(keyed("once", "k-1")).await.unwrap();
    assert_eq!(again.metadata().get("idempotent-replayed").unwrap(), "true");
    assert_eq!(again.into_inner().id, first.into_inner().id);
    let other = posts.create_post(keyed("other", "k-1")).await.unwrap_err();
    assert_rich(&other, Code::FailedPrecondition, "IDEMPOTENCY_KEY_REUSED");
    let invalid = posts.create_post(keyed("", "k-2")).await.unwrap_err();
    assert_rich(&invalid, Code::InvalidArgument, "VALIDATION_FAILED");
    let replayed_error = posts.create_post(keyed("", "k-2")).await.unwrap_err();
    assert_rich(&replayed_error, Code::InvalidArgument, "VALIDATION_FAILED");
    let created = app.event_types().await.iter().filter(|t| *t == "post.created").count();
    assert_eq!(created, 1);
}

#[tokio::test]
async fn list_posts_streams_every_visible_post_and_resumes_from_any_cursor() {
    let app = spawn_app().await;
    let alice = app.member("alice").await;
    let bob = app.member("bob").await;
    for i in 0..5 {
        app.published_post(&alice, &format!("p{i}")).await;
    }
    app.create_post(&alice, "alice draft", &[]).await;
    app.create_post(&bob, "bob draft", &[]).await;
    let mut posts = PostServiceClient::new(channel(&app).await);
    let mut stream = posts.list_posts(authed(pb::ListPostsRequest::default(), &bob.token)).await.unwrap().into_inner();
    let mut titles = vec![];
    while let Some(item) = stream.message().await.unwrap() {
        titles.push(item.post.unwrap().title);
    }
    assert_eq!(titles, ["bob draft", "p4", "p3", "p2", "p1", "p0"]);

    let first_two = pb::ListPostsRequest { limit: 2, status: "published".into(), ..Default::default() };
    let mut stream = posts.list_posts(first_two).await.unwrap().into_inner();
    let mut last = None;
    while let Some(item) = stream.message().await.unwrap() {
        last = Some(item);
    }
    let last = last.unwrap();
    assert_eq!(last.post.unwrap().title, "p3");
    let rest_page: serde_json::Value = app.get("/posts?status=published&limit=2", None).await.json().await.unwrap();
    assert_eq!(rest_page["next_cursor"], last.next_cursor.as_str(), "gRPC and REST cursors are the same");
    let resume = pb::ListPostsRequest { cursor: last.next_cursor, status: "published".into(), ..Default::default() };
    let mut stream = posts.list_posts(resume).await.unwrap().into_inner();
    let mut rest = vec![];
    while let Some(item) = stream.message().await.unwrap() {
        rest.push(item.post.unwrap().title);
    }
    assert_eq!(rest, ["p2", "p1", "p0"]);
    let bad = pb::ListPostsRequest { status: "gone".into(), ..Default::default() };
    assert_rich(&posts.list_posts(bad).await.unwrap_err(), Code::InvalidArgument, "VALIDATION_FAILED");
}

#[tokio::test]
async fn subscribe_replays_after_an_event_id_then_goes_live_with_authorization_at_delivery() {
    let app = spawn_app().await;
    let alice = app.member("alice").await;
    let bob = app.member("bob").await;
    let before = app.published_post(&alice, "before").await;
    let mut events = EventServiceClient::new(channel(&app).await);
    let req = pb::SubscribeRequest { topics: vec!["posts".into()], after_event_id: Some(0) };
    let mut stream = events.subscribe(authed(req, &bob.token)).await.unwrap().into_inner();
    let first = within("replay", stream.message()).await.unwrap().unwrap();
    assert_eq!(first.r#type, "post.published", "the draft's creation is not bob's to see");
    assert_eq!(first.topic, format!("posts/{}", before["id"].as_str().unwrap()));
    let data = first.data.unwrap();
    assert!(matches!(data.fields["title"].kind, Some(prost_types::value::Kind::StringValue(ref t)) if t == "before"));
    app.create_post(&alice, "secret draft", &[]).await;
    let live = app.published_post(&bob, "live").await;
    let next = within("live", stream.message()).await.unwrap().unwrap();
    assert_eq!(next.r#type, "post.created", "bob's own draft");
    assert_eq!(next.topic, format!("posts/{}", live["id"].as_str().unwrap()));
    assert!(next.id > first.id);

    let bad = pb::SubscribeRequest { topics: vec!["nope".into()], after_event_id: None };
    let status = events.subscribe(bad).await.unwrap_err();
    let reason = status.get_error_details().error_info().map(|i| i.reason.clone()).unwrap_or_default();
    assert!(["INVALID_REQUEST", "VALIDATION_FAILED"].contains(&reason.as_str()), "{reason}");
    let details = assert_rich(&status, Code::InvalidArgument, &reason);
    assert_eq!(details.bad_request().unwrap().field_violations[0].field, "topics[0]");
}

#[tokio::test]
async fn revocation_ends_a_private_stream_with_unauthenticated_and_shutdown_with_unavailable() {
    let app = spawn_app_with(Store::Sqlite, |s| s.stream_revalidate_secs = 1).await.unwrap();
    let alice = app.member("alice").await;
    let mut events = EventServiceClient::new(channel(&app).await);
    let req = pb::SubscribeRequest { topics: vec!["posts".into()], after_event_id: None };
    let mut private = events.subscribe(authed(req.clone(), &alice.token)).await.unwrap().into_inner();
    let mut public = events.subscribe(req).await.unwrap().into_inner();
    let r = app.post("/auth/logout", None, serde_json::json!({"refresh_token": alice.refresh_token})).await;
    assert!(r.status().is_success());
    let ended = within("revocation", private.message()).await.unwrap_err();
    assert_rich(&ended, Code::Unauthenticated, "UNAUTHENTICATED");
    app.shutdown.trigger();
    let ended = within("shutdown", public.message()).await.unwrap_err();
    assert_eq!(ended.code(), Code::Unavailable);
    assert_eq!(ended.message(), "server shutting down");
}

#[tokio::test]
async fn a_grpc_timeout_is_honored_by_the_server() {
    let app = spawn_app().await;
    let mut events = EventServiceClient::new(channel(&app).await);
    let mut req = Request::new(pb::SubscribeRequest { topics: vec!["posts".into()], after_event_id: None });
    req.metadata_mut().insert("grpc-timeout", "300m".parse().unwrap());
    let started = std::time::Instant::now();
    let mut stream = events.subscribe(req).await.unwrap().into_inner();
    let ended = within("deadline", stream.message()).await.unwrap_err();
    assert_eq!(ended.code(), Code::DeadlineExceeded);
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn import_posts_validates_each_row_and_is_idempotent_per_row() {
    let app = spawn_app().await;
    let alice = app.member("alice").await;
    let mut posts = PostServiceClient::new(channel(&app).await);
    let rows = || {
        let rows = vec![
            pb::ImportPostsRequest { title: "one".into(), idempotency_key: "row-1".into(), ..Default::default() },
            pb::ImportPostsRequest { title: String::new(), tags: vec!["BAD".into()], ..Default::default() },
            pb::ImportPostsRequest { title: "three".into(), idempotency_key: "row-3".into(), ..Default::default() },
        ];
        authed(tokio_stream::iter(rows), &alice.token)
    };
    let summary = posts.import_posts(rows()).await.unwrap().into_inner();
    assert_eq!((summary.received, summary.created, summary.failed), (3, 2, 1));
    let error = summary.results[1].error.as_ref().unwrap();
    assert_eq!(error.code, "VALIDATION_FAILED");
    assert_eq!(error.details.iter().map(|d| d.field.as_str()).collect::<Vec<_>>(), ["title", "tags[0]"]);
    let again = posts.import_posts(rows()).await.unwrap().into_inner();
    assert_eq!(again.results[0].post_id, summary.results[0].post_id);
    assert!(again.results[0].replayed && again.results[2].replayed);
    let created = app.event_types().await.iter().filter(|t| *t == "post.created").count();
    assert_eq!(created, 2);
    let anonymous = posts.import_posts(tokio_stream::iter(vec![pb::ImportPostsRequest::default()])).await;
    assert_rich(&anonymous.unwrap_err(), Code::Unauthenticated, "UNAUTHENTICATED");
}

fn command(id: &str, command: pb::live_request::Command) -> pb::LiveRequest {
    pb::LiveRequest { id: id.into(), command: Some(command) }
}

fn reply(r: pb::LiveResponse) -> pb::LiveReply {
    match r.kind {
        Some(pb::live_response::Kind::Reply(r)) => r,
        other => panic!("expected a reply, got {other:?}"),
    }
}

#[tokio::test]
async fn live_sessions_subscribe_ack_and_unsubscribe_over_one_bidi_stream() {
    use pb::live_request::Command;
    let app = spawn_app().await;
    let alice = app.member("alice").await;
    let mut events = EventServiceClient::new(channel(&app).await);
    let (tx, rx) = mpsc::channel(8);
    let mut out = events.live(authed(ReceiverStream::new(rx), &alice.token)).await.unwrap().into_inner();
    let sub = pb::LiveSubscribe {
        subscription: "mine".into(),
        topics: vec![format!("users/{}/posts", alice.id)],
        after_event_id: None,
    };
    tx.send(command("c1", Command::Subscribe(sub))).await.unwrap();
    let ok = reply(within("subscribe reply", out.message()).await.unwrap().unwrap());
    assert!(ok.ok && ok.id == "c1" && ok.window > 0, "{ok:?}");
    let bad = pb::LiveSubscribe { subscription: "bad".into(), topics: vec!["nope".into()], after_event_id: None };
    tx.send(command("c2", Command::Subscribe(bad))).await.unwrap();
    let refused = reply(within("refusal", out.message()).await.unwrap().unwrap());
    assert!(!refused.ok && ["INVALID_REQUEST", "VALIDATION_FAILED"].contains(&refused.code.as_str()), "{refused:?}");
    assert_eq!(refused.details[0].field, "topics[0]");

    let post = app.create_post(&alice, "draft", &[]).await;
    let event = within("event", out.message()).await.unwrap().unwrap();
    let Some(pb::live_response::Kind::Event(event)) = event.kind else { panic!("expected an event") };
    assert_eq!(event.subscription, "mine");
    let event = event.event.unwrap();
    assert_eq!(
        (event.r#type.as_str(), event.topic.clone()),
        ("post.created", format!("posts/{}", post["id"].as_str().unwrap()))
    );
    tx.send(command("c3", Command::Ack(pb::LiveAck { event_id: event.id }))).await.unwrap();
    assert!(reply(within("ack", out.message()).await.unwrap().unwrap()).ok);
    tx.send(command("c4", Command::Unsubscribe(pb::LiveUnsubscribe { subscription: "mine".into() }))).await.unwrap();
    assert!(reply(within("unsubscribe", out.message()).await.unwrap().unwrap()).ok);
    tx.send(command("c5", Command::Unsubscribe(pb::LiveUnsubscribe { subscription: "mine".into() }))).await.unwrap();
    assert_eq!(reply(within("unknown", out.message()).await.unwrap().unwrap()).code, "NOT_FOUND");
    drop(tx);
    assert!(within("end", out.message()).await.unwrap().is_none(), "half-close without subscriptions ends the session");
}

#[tokio::test]
async fn reflection_v1_and_v1alpha_list_our_services_and_health_reports_serving() {
    use tonic_health::pb::health_client::HealthClient;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient as V1;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest as V1Req;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse as V1Resp;
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient as V1Alpha;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest as AReq;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse as AResp;
    let app = spawn_app().await;
    let ch = channel(&app).await;
    let req = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(V1Req::ListServices(String::new())),
    };
    let mut v1 = V1::new(ch.clone()).server_reflection_info(tokio_stream::iter(vec![req])).await.unwrap().into_inner();
    let Some(V1Resp::ListServicesResponse(list)) = v1.message().await.unwrap().unwrap().message_response else {
        panic!()
    };
    let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    for name in [
        "polyport.v1.AuthService",
        "polyport.v1.UserService",
        "polyport.v1.PostService",
        "polyport.v1.EventService",
        "polyport.v1.WebhookService",
        "polyport.v1.AuditService",
        "grpc.health.v1.Health",
    ] {
        assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
    }
    let req = tonic_reflection::pb::v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(AReq::FileContainingSymbol("polyport.v1.PostService".into())),
    };
    let mut alpha =
        V1Alpha::new(ch.clone()).server_reflection_info(tokio_stream::iter(vec![req])).await.unwrap().into_inner();
    let Some(AResp::FileDescriptorResponse(files)) = alpha.message().await.unwrap().unwrap().message_response else {
        panic!()
    };
    assert!(!files.file_descriptor_proto.is_empty());

    let mut health = HealthClient::new(ch);
    let check = tonic_health::pb::HealthCheckRequest { service: "polyport.v1.PostService".into() };
    let status = health.check(check.clone()).await.unwrap().into_inner().status;
    assert_eq!(status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);
    let mut watch = health.watch(check).await.unwrap().into_inner();
    assert_eq!(watch.message().await.unwrap().unwrap().status, 1);
    app.shutdown.trigger();
    let draining = within("not serving", watch.message()).await.unwrap().unwrap();
    assert_eq!(draining.status, tonic_health::pb::health_check_response::ServingStatus::NotServing as i32);
}

#[tokio::test]
async fn grpc_web_over_http1_answers_with_cors_exposing_grpc_status() {
    let origin = "http://browser.example";
    let app = spawn_app_with(Store::Sqlite, |s| s.cors_origins = vec![origin.to_string()]).await.unwrap();
    let alice = app.member("alice").await;
    let post = app.published_post(&alice, "web").await;
    let message = prost::Message::encode_to_vec(&pb::GetPostRequest { id: post["id"].as_str().unwrap().into() });
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
    frame.extend_from_slice(&message);
    let http1 = reqwest::Client::builder().http1_only().build().unwrap();
    let url = app.url("/polyport.v1.PostService/GetPost");
    let preflight = http1
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type,x-grpc-web,x-user-agent")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success());
    let response = http1
        .post(&url)
        .header("origin", origin)
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .body(frame)
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_11);
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/grpc-web+proto");
    let exposed = response.headers()["access-control-expose-headers"].to_str().unwrap().to_lowercase();
    for name in ["grpc-status", "grpc-message", "grpc-status-details-bin"] {
        assert!(exposed.contains(name), "{exposed}");
    }
    let body = response.bytes().await.unwrap();
    assert_eq!(body[0], 0, "a data frame first");
    let len = u32::from_be_bytes(body[1..5].try_into().unwrap()) as usize;
    let got: pb::Post = prost::Message::decode(&body[5..5 + len]).unwrap();
    assert_eq!(got.title, "web");
    let trailers = String::from_utf8_lossy(&body[5 + len + 5..]);
    assert!(trailers.contains("grpc-status:0"), "{trailers}");
}
