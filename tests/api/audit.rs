//! The audit log: every protocol's writes and every security event recorded with who, how and
//! where; written in the change's own transaction; append-only down to SQL; admins read it on
//! every protocol, filtered and paged; no secret ever in an entry.

use polyport::adapters::grpc::pb;
use polyport::adapters::grpc::pb::audit_service_client::AuditServiceClient;
use polyport::adapters::grpc::pb::post_service_client::PostServiceClient;
use polyport::adapters::soap::envelope::Version;
use polyport::domain::user::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Connection;

use crate::grpc::{authed, channel};
use crate::helpers::{PASSWORD, Store, TestApp, TestUser, assert_error, spawn_app_with};
use crate::on_every_store;
use crate::realtime_support::ws_bearer;
use crate::soap::{envelope, op as soap_op, send};

on_every_store!(
    every_protocol_records_its_writes_with_actor_protocol_request_id_and_trace_id,
    role_changes_deletions_and_api_key_writes_are_recorded_with_the_acting_admin_or_key,
    a_change_whose_audit_entry_cannot_be_written_is_not_made,
    the_store_refuses_to_update_or_delete_an_entry_except_through_the_retention_purge,
    admins_filter_and_page_the_audit_log_on_every_protocol
);

/// A valid `traceparent` whose trace id ends in `n`.
pub fn traceparent(n: u8) -> (String, String) {
    let trace_id = format!("4bf92f3577b34da6a3ce929d0e0e47{n:02x}");
    (format!("00-{trace_id}-00f067aa0ba902b7-01"), trace_id)
}

/// Runs `sql` on the app's database directly (not through the server); the store's refusal
/// as text.
pub async fn raw_exec(app: &TestApp, sql: &str) -> Result<(), String> {
    if let Some(path) = app.database_url.strip_prefix("sqlite://") {
        let conn = rusqlite::Connection::open(path).map_err(|e| e.to_string())?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(|e| e.to_string())?;
        conn.execute_batch(sql).map_err(|e| e.to_string())
    } else {
        let mut conn = sqlx::PgConnection::connect(&app.database_url).await.expect("PostgreSQL reachable");
        sqlx::raw_sql(sql).execute(&mut conn).await.map(|_| ()).map_err(|e| e.to_string())
    }
}

/// One integer from `sql` on the app's database.
pub async fn raw_count(app: &TestApp, sql: &str) -> i64 {
    if let Some(path) = app.database_url.strip_prefix("sqlite://") {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.query_row(sql, [], |r| r.get(0)).unwrap()
    } else {
        let mut conn = sqlx::PgConnection::connect(&app.database_url).await.unwrap();
        sqlx::query_scalar::<_, i64>(sql).fetch_one(&mut conn).await.unwrap()
    }
}

/// Every entry matching `query` (a REST query string), read as `admin` through every page.
pub async fn entries(app: &TestApp, admin: &TestUser, query: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/audit-log?limit=100&{query}&cursor={c}"),
            None => format!("/audit-log?limit=100&{query}"),
        };
        let r = app.get(&path, Some(&admin.token)).await;
        assert_eq!(r.status(), StatusCode::OK, "audit log read");
        let body: Value = r.json().await.unwrap();
        out.extend(body["data"].as_array().unwrap().iter().cloned());
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
}

/// The one entry about `target` with `action`.
async fn only_entry(app: &TestApp, admin: &TestUser, action: &str, target: &str) -> Value {
    let found = entries(app, admin, &format!("action={action}&target={target}")).await;
    assert_eq!(found.len(), 1, "one {action} entry for {target}: {found:?}");
    found.into_iter().next().unwrap()
}

/// The trace id stored with the event of `kind` about `subject`.
pub async fn event_trace(app: &TestApp, kind: &str, subject: &str) -> Option<String> {
    let events = app.core.deps.events.read_after(0, 100_000).await.unwrap();
    let event = events
        .iter()
        .find(|e| e.event_type.as_str() == kind && e.subject.id() == subject)
        .unwrap_or_else(|| panic!("a {kind} event about {subject}"));
    event.trace_id.clone()
}

async fn every_protocol_records_its_writes_with_actor_protocol_request_id_and_trace_id(app: TestApp) {
    let admin = app.with_role("admin", Role::Admin).await;
    let ada = app.member("ada").await;
    let auth = format!("Bearer {}", ada.token);
    let mut made: Vec<(&str, String, Option<&str>, String)> = Vec::new();

    let (tp, trace) = traceparent(1);
    let r = app
        .req(reqwest::Method::POST, "/posts", Some(&ada.token))
        .header("x-request-id", "audit-rest-1")
        .header("traceparent", &tp)
        .json(&json!({"title": "over REST"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    made.push(("rest", id, Some("audit-rest-1"), trace));

    let (tp, trace) = traceparent(2);
    let headers = [("authorization", auth.as_str()), ("x-request-id", "audit-gql-1"), ("traceparent", tp.as_str())];
    let body = json!({"query": "mutation { createPost(input: {title: \"over GraphQL\"}) { id } }"});
    let (status, body) = app.gql_with(None, body, &headers).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    made.push(("graphql", body["data"]["createPost"]["id"].as_str().unwrap().to_string(), Some("audit-gql-1"), trace));

    let (tp, trace) = traceparent(3);
    let mut req = authed(pb::CreatePostRequest { title: "over gRPC".into(), ..Default::default() }, &ada.token);
    req.metadata_mut().insert("x-request-id", "audit-grpc-1".parse().unwrap());
    req.metadata_mut().insert("traceparent", tp.parse().unwrap());
    let post = PostServiceClient::new(channel(&app).await).create_post(req).await.unwrap().into_inner();
    made.push(("grpc", post.id, Some("audit-grpc-1"), trace));

    let (tp, trace) = traceparent(4);
    let headers = [("authorization", auth.as_str()), ("x-request-id", "audit-soap-1"), ("traceparent", tp.as_str())];
    let xml = envelope(Version::Soap12, "", &soap_op("CreatePost", &[("title", "over SOAP")]));
    let answer = send(&app, Version::Soap12, "CreatePost", xml, &headers).await;
    assert!(answer.status.is_success(), "{}", answer.body);
    made.push(("soap", answer.text("id").unwrap(), Some("audit-soap-1"), trace));

    let (tp, trace) = traceparent(5);
    let mut ws = ws_bearer(&app, &ada.token).await;
    let frame =
        json!({"type": "request", "id": "w1", "op": "createPost", "params": {"title": "over /ws"}, "traceparent": tp});
    let reply = ws.request_with(frame).await;
    assert_eq!(reply["type"], "response", "{reply}");
    made.push(("websocket", reply["data"]["id"].as_str().unwrap().to_string(), None, trace));

    for (protocol, post_id, request_id, trace_id) in made {
        let entry = only_entry(&app, &admin, "post.created", &format!("post:{post_id}")).await;
        assert_eq!(entry["protocol"], protocol, "{entry}");
        assert_eq!(entry["actor_id"], ada.id.as_str(), "{entry}");
        assert_eq!(entry["actor_key_id"], Value::Null, "{entry}");
        assert_eq!(entry["outcome"], "success", "{entry}");
        assert_eq!(entry["client_ip"], "127.0.0.1", "{entry}");
        assert_eq!(entry["trace_id"], trace_id.as_str(), "{protocol}: the client's trace id: {entry}");
        match request_id {
            Some(id) => assert_eq!(entry["request_id"], id, "{entry}"),
            None => assert!(entry["request_id"].as_str().is_some_and(|id| !id.is_empty()), "{entry}"),
        }
        let stored = event_trace(&app, "post.created", &post_id).await;
        assert_eq!(stored.as_deref(), Some(trace_id.as_str()), "{protocol}: the event carries the trace id");
    }
}

async fn role_changes_deletions_and_api_key_writes_are_recorded_with_the_acting_admin_or_key(app: TestApp) {
    let admin = app.with_role("admin", Role::Admin).await;
    let ada = app.member("ada").await;
    let bob = app.member("bob").await;

    let registered = only_entry(&app, &admin, "user.registered", &format!("user:{}", ada.id)).await;
    assert_eq!(registered["actor_id"], ada.id.as_str(), "a registration acts as the new user");

    let r = app.patch(&format!("/users/{}", ada.id), Some(&admin.token), json!({"role": "editor"})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let promoted = only_entry(&app, &admin, "user.role_changed", &format!("user:{}", ada.id)).await;
    assert_eq!(promoted["actor_id"], admin.id.as_str());
    let r = app.patch(&format!("/users/{}", ada.id), Some(&ada.token), json!({"name": "Ada L."})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let renamed = only_entry(&app, &admin, "user.updated", &format!("user:{}", ada.id)).await;
    assert_eq!(renamed["actor_id"], ada.id.as_str());

    let r =
        app.post("/api-keys", Some(&ada.token), json!({"name": "ci", "scopes": ["posts:write", "posts:read"]})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let key: Value = r.json().await.unwrap();
    let key_id = key["id"].as_str().unwrap();
    only_entry(&app, &admin, "api_key.created", &format!("api_key:{key_id}")).await;
    let r = app
        .req(reqwest::Method::POST, "/posts", None)
        .header("x-api-key", key["key"].as_str().unwrap())
        .json(&json!({"title": "by key"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let post_id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let by_key = only_entry(&app, &admin, "post.created", &format!("post:{post_id}")).await;
    assert_eq!(by_key["actor_id"], ada.id.as_str(), "a key acts as its owner");
    assert_eq!(by_key["actor_key_id"], key_id, "and names itself");
    assert_eq!(app.delete(&format!("/api-keys/{key_id}"), Some(&ada.token)).await.status(), StatusCode::NO_CONTENT);
    only_entry(&app, &admin, "api_key.revoked", &format!("api_key:{key_id}")).await;
    let again = app.delete(&format!("/api-keys/{key_id}"), Some(&ada.token)).await;
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    only_entry(&app, &admin, "api_key.revoked", &format!("api_key:{key_id}")).await;

    assert_eq!(app.delete(&format!("/users/{}", bob.id), Some(&admin.token)).await.status(), StatusCode::NO_CONTENT);
    let deleted = only_entry(&app, &admin, "user.deleted", &format!("user:{}", bob.id)).await;
    assert_eq!(deleted["actor_id"], admin.id.as_str());
    assert_eq!(deleted["protocol"], "rest");
}

async fn a_change_whose_audit_entry_cannot_be_written_is_not_made(app: TestApp) {
    let admin = app.with_role("admin", Role::Admin).await;
    let ada = app.member("ada").await;
    let sabotage = if app.database_url.starts_with("sqlite") {
        "CREATE TRIGGER sabotage BEFORE INSERT ON audit_log WHEN NEW.action = 'post.created' \
         BEGIN SELECT RAISE(ABORT, 'sabotage'); END;"
    } else {
        "CREATE FUNCTION sabotage() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
         IF NEW.action = 'post.created' THEN RAISE EXCEPTION 'sabotage'; END IF; RETURN NEW; END $$; \
         CREATE TRIGGER sabotage BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION sabotage();"
    };
    raw_exec(&app, sabotage).await.expect("sabotage installed");
    let events_before = app.core.deps.events.last_id().await.unwrap();
    let r = app.post("/posts", Some(&ada.token), json!({"title": "sabotaged", "tags": ["x"]})).await;
    assert_error(r, StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL").await;
    assert_eq!(raw_count(&app, "SELECT COUNT(*) FROM posts WHERE title = 'sabotaged'").await, 0, "no post");
    assert_eq!(raw_count(&app, "SELECT COUNT(*) FROM post_tags").await, 0, "no tags");
    assert_eq!(app.core.deps.events.last_id().await.unwrap(), events_before, "no event");
    assert!(entries(&app, &admin, "action=post.created").await.is_empty(), "no entry");

    let undo = if app.database_url.starts_with("sqlite") {
        "DROP TRIGGER sabotage;"
    } else {
        "DROP TRIGGER sabotage ON audit_log; DROP FUNCTION sabotage();"
    };
    raw_exec(&app, undo).await.expect("sabotage removed");
    let post = app.create_post(&ada, "made", &[]).await;
    let id = post["id"].as_str().unwrap();
    only_entry(&app, &admin, "post.created", &format!("post:{id}")).await;

    // A write refused by the store (a stale If-Match) leaves no entry either.
    let r = app.req(reqwest::Method::PATCH, &format!("/posts/{id}"), Some(&ada.token)).header("if-match", "\"v9\"");
    let r = r.json(&json!({"title": "stale"})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::PRECONDITION_FAILED);
    assert!(entries(&app, &admin, "action=post.updated").await.is_empty());
}

async fn the_store_refuses_to_update_or_delete_an_entry_except_through_the_retention_purge(app: TestApp) {
    let admin = app.with_role("admin", Role::Admin).await;
    app.create_post(&admin, "one", &[]).await;
    let count = raw_count(&app, "SELECT COUNT(*) FROM audit_log").await;
    assert!(count >= 2, "the login and the post are recorded");

    let refused = raw_exec(&app, "UPDATE audit_log SET action = 'nothing.happened'").await.unwrap_err();
    assert!(refused.contains("append-only"), "{refused}");
    let refused = raw_exec(&app, "DELETE FROM audit_log").await.unwrap_err();
    assert!(refused.contains("append-only"), "{refused}");
    if !app.database_url.starts_with("sqlite") {
        let refused = raw_exec(&app, "TRUNCATE audit_log").await.unwrap_err();
        assert!(refused.contains("append-only"), "{refused}");
    }
    // Opening the gate for older entries only lets nothing newer go.
    let refused =
        raw_exec(&app, "BEGIN; INSERT INTO audit_purge_gate (before_at) VALUES (1); DELETE FROM audit_log; COMMIT;")
            .await
            .unwrap_err();
    assert!(refused.contains("append-only"), "{refused}");
    let _ = raw_exec(&app, "ROLLBACK").await;
    assert_eq!(raw_count(&app, "SELECT COUNT(*) FROM audit_log").await, count, "nothing changed");
    assert_eq!(raw_count(&app, "SELECT COUNT(*) FROM audit_log WHERE action = 'nothing.happened'").await, 0);

    let audit = &app.core.deps.audit;
    let past = chrono::Utc::now() - chrono::Duration::days(1);
    assert_eq!(audit.purge_before(past).await.unwrap(), 0, "entries inside retention stay");
    assert_eq!(raw_count(&app, "SELECT COUNT(*) FROM audit_log").await, count);
    let future = chrono::Utc::now() + chrono::Duration::days(1);
    assert_eq!(audit.purge_before(future).await.unwrap(), count as u64, "retention removes what is past it");
    assert_eq!(raw_count(&app, "SELECT COUNT(*) FROM audit_log").await, 0);
    assert_eq!(raw_count(&app, "SELECT COUNT(*) FROM audit_purge_gate").await, 0, "the gate is closed again");
    let refused = raw_exec(&app, "DELETE FROM audit_log").await;
    assert!(refused.is_ok(), "deleting nothing is no change");
    app.create_post(&admin, "two", &[]).await;
    assert!(raw_exec(&app, "DELETE FROM audit_log").await.unwrap_err().contains("append-only"));
}

async fn admins_filter_and_page_the_audit_log_on_every_protocol(app: TestApp) {
    let admin = app.with_role("admin", Role::Admin).await;
    let ada = app.member("ada").await;
    let bob = app.member("bob").await;
    let mut ada_posts = Vec::new();
    for i in 0..5 {
        ada_posts.push(app.create_post(&ada, &format!("ada {i}"), &[]).await["id"].as_str().unwrap().to_string());
    }
    let bob_post = app.create_post(&bob, "bob", &[]).await["id"].as_str().unwrap().to_string();

    // Pages of two, newest first, following next_cursor (and the Link header).
    let mut seen = Vec::new();
    let mut path = "/audit-log?action=post.created&limit=2".to_string();
    loop {
        let r = app.get(&path, Some(&admin.token)).await;
        assert_eq!(r.status(), StatusCode::OK);
        let link = r.headers().get("link").map(|v| v.to_str().unwrap().to_string());
        let body: Value = r.json().await.unwrap();
        let data = body["data"].as_array().unwrap();
        assert!(data.len() <= 2);
        assert!(data.iter().all(|e| e["action"] == "post.created"));
        seen.extend(data.iter().map(|e| e["target"].as_str().unwrap().to_string()));
        match body["next_cursor"].as_str() {
            Some(c) => {
                assert_eq!(body["has_more"], true);
                assert!(link.is_some_and(|l| l.contains("rel=\"next\"")));
                path = format!("/audit-log?action=post.created&limit=2&cursor={c}");
            }
            None => break,
        }
    }
    let mut expected: Vec<String> = ada_posts.iter().chain([&bob_post]).map(|id| format!("post:{id}")).collect();
    expected.reverse();
    assert_eq!(seen, expected, "every entry once, newest first");

    let by_ada = entries(&app, &admin, &format!("actor_id={}&action=post.created", ada.id)).await;
    assert_eq!(by_ada.len(), 5);
    let since = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert!(entries(&app, &admin, &format!("since={since}")).await.is_empty(), "nothing after now");
    let all = entries(&app, &admin, "since=2000-01-01T00:00:00Z").await;
    assert!(all.len() >= 9, "logins, registrations and posts: {}", all.len());

    let r = app.get("/audit-log?since=yesterday", Some(&admin.token)).await;
    let body = assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    assert_eq!(body["error"]["details"][0]["field"], "since");
    let r = app.get("/audit-log?action=post.created&limit=1", Some(&admin.token)).await;
    let cursor = r.json::<Value>().await.unwrap()["next_cursor"].as_str().unwrap().to_string();
    let r = app.get(&format!("/audit-log?action=user.registered&cursor={cursor}"), Some(&admin.token)).await;
    assert_error(r, StatusCode::BAD_REQUEST, "INVALID_REQUEST").await;
    for who in [&ada, &bob] {
        assert_error(app.get("/audit-log", Some(&who.token)).await, StatusCode::FORBIDDEN, "FORBIDDEN").await;
        let probe = format!("/audit-log?since=yesterday&cursor={cursor}");
        assert_error(app.get(&probe, Some(&who.token)).await, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    }
    assert_error(app.get("/audit-log", None).await, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED").await;

    // GraphQL: a Relay connection with the same filter and cursors.
    let q = "query($f: AuditLogFilter, $a: String) { auditLog(first: 3, after: $a, filter: $f) { \
             edges { cursor node { id action target actorId protocol outcome } } pageInfo { hasNextPage endCursor } } }";
    let filter = json!({"actorId": ada.id, "action": "post.created"});
    let (_, first) = app.gql(Some(&admin.token), q, json!({"f": filter})).await;
    let page = &first["data"]["auditLog"];
    assert_eq!(page["edges"].as_array().unwrap().len(), 3, "{first}");
    assert_eq!(page["pageInfo"]["hasNextPage"], true);
    let (_, second) = app.gql(Some(&admin.token), q, json!({"f": filter, "a": page["pageInfo"]["endCursor"]})).await;
    let rest = &second["data"]["auditLog"];
    assert_eq!(rest["edges"].as_array().unwrap().len(), 2, "{second}");
    assert_eq!(rest["pageInfo"]["hasNextPage"], false);
    assert_eq!(rest["edges"][1]["node"]["target"], format!("post:{}", ada_posts[0]));
    let (_, denied) = app.gql(Some(&ada.token), q, json!({})).await;
    assert_eq!(denied["errors"][0]["extensions"]["code"], "FORBIDDEN", "{denied}");

    // gRPC.
    let mut audit = AuditServiceClient::new(channel(&app).await);
    let m = pb::ListAuditEntriesRequest {
        limit: 10,
        action: "post.created".into(),
        actor_id: ada.id.clone(),
        ..Default::default()
    };
    let listed = audit.list_audit_entries(authed(m.clone(), &admin.token)).await.unwrap().into_inner();
    assert_eq!(listed.data.len(), 5);
    assert!(!listed.has_more);
    assert!(listed.data.iter().all(|e| e.action == "post.created" && e.actor_id.as_deref() == Some(ada.id.as_str())));
    assert!(listed.data.windows(2).all(|w| w[0].id.parse::<i64>().unwrap() > w[1].id.parse::<i64>().unwrap()));
    let denied = audit.list_audit_entries(authed(m, &ada.token)).await.unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);

    // SOAP.
    let auth = format!("Bearer {}", admin.token);
    let xml = envelope(
        Version::Soap11,
        "",
        &soap_op("ListAuditEntries", &[("actorId", &ada.id), ("action", "post.created"), ("limit", "10")]),
    );
    let answer = send(&app, Version::Soap11, "ListAuditEntries", xml, &[("authorization", auth.as_str())]).await;
    assert!(answer.status.is_success(), "{}", answer.body);
    assert_eq!(answer.body.matches("<entry>").count(), 5, "{}", answer.body);
    assert_eq!(answer.text("hasMore").as_deref(), Some("false"));
    let auth = format!("Bearer {}", ada.token);
    let xml = envelope(Version::Soap11, "", &soap_op("ListAuditEntries", &[]));
    let answer = send(&app, Version::Soap11, "ListAuditEntries", xml, &[("authorization", auth.as_str())]).await;
    assert_eq!(answer.text("code").as_deref(), Some("FORBIDDEN"), "{}", answer.body);
}

/// Security events on `store`, with a login throttle of two failures.
async fn security_events_are_recorded_and_no_entry_holds_a_secret(store: Store) {
    let Some(app) = spawn_app_with(store, |s| s.login_max_failures = 2).await else {
        eprintln!("TEST_DATABASE_URL not set: PostgreSQL case skipped");
        return;
    };
    let admin = app.with_role("admin", Role::Admin).await;
    let ada = app.member("ada").await;
    let mut secrets = vec![PASSWORD.to_string(), admin.token.clone(), admin.refresh_token.clone()];
    secrets.extend([ada.token.clone(), ada.refresh_token.clone()]);

    let login = only_entry(&app, &admin, "auth.login", &format!("user:{}", ada.id)).await;
    assert_eq!((login["actor_id"].as_str(), login["outcome"].as_str()), (Some(ada.id.as_str()), Some("success")));

    let r = app.post("/api-keys", Some(&ada.token), json!({"name": "k", "scopes": ["posts:read"]})).await;
    let key: Value = r.json().await.unwrap();
    secrets.push(key["key"].as_str().unwrap().to_string());

    // A refresh, then the spent token again: the reuse and the family's revocation.
    let r = app.post("/auth/refresh", None, json!({"refresh_token": ada.refresh_token})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let fresh: Value = r.json().await.unwrap();
    secrets.extend([fresh["access_token"].as_str().unwrap().into(), fresh["refresh_token"].as_str().unwrap().into()]);
    let r = app.post("/auth/refresh", None, json!({"refresh_token": ada.refresh_token})).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let reuse = entries(&app, &admin, "action=auth.refresh_reused").await;
    assert_eq!(reuse.len(), 1, "{reuse:?}");
    assert_eq!((reuse[0]["actor_id"].as_str(), reuse[0]["outcome"].as_str()), (Some(ada.id.as_str()), Some("failure")));
    let revoked = entries(&app, &admin, "action=auth.session_revoked").await;
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0]["target"], reuse[0]["target"], "the reused token's session");

    // A logout of a new session.
    let again = app.login_as(ada.id.clone(), ada.email.clone()).await;
    secrets.extend([again.token.clone(), again.refresh_token.clone()]);
    let r = app.post("/auth/logout", Some(&again.token), json!({"refresh_token": again.refresh_token})).await;
    assert!(r.status().is_success());
    assert_eq!(entries(&app, &admin, "action=auth.logout").await.len(), 1);

    // A wrong password, then a lockout by the throttle (two failures per address).
    let wrong = "not-the-password-at-all";
    secrets.push(wrong.to_string());
    let r = app.post("/auth/login", None, json!({"email": ada.email, "password": wrong})).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let failed: Vec<Value> =
        entries(&app, &admin, "action=auth.login").await.into_iter().filter(|e| e["outcome"] == "failure").collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["target"], format!("user:{}", ada.id));
    assert_eq!(failed[0]["actor_id"], Value::Null, "a failed login names no actor");
    let victim = format!("victim-{}@example.com", uuid::Uuid::now_v7().simple());
    let r = app.post("/auth/login", None, json!({"email": victim, "password": wrong})).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = app.post("/auth/login", None, json!({"email": victim, "password": wrong})).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let locked = entries(&app, &admin, "action=auth.login_locked_out").await;
    assert_eq!(locked.len(), 1, "{locked:?}");
    assert_eq!(locked[0]["outcome"], "denied");
    assert_eq!(locked[0]["target"], format!("email:{victim}"));

    // No secret in any entry, whatever column.
    let all = serde_json::to_string(&entries(&app, &admin, "").await).unwrap();
    for secret in &secrets {
        assert!(!all.contains(secret.as_str()), "an entry holds a secret: {secret}");
    }
    assert!(!all.contains("ppk_") && !all.contains("eyJ") && !all.contains("argon2"), "{all}");
}

#[tokio::test]
async fn security_events_are_recorded_and_no_entry_holds_a_secret_on_sqlite() {
    security_events_are_recorded_and_no_entry_holds_a_secret(Store::Sqlite).await;
}

#[tokio::test]
async fn security_events_are_recorded_and_no_entry_holds_a_secret_on_postgres() {
    security_events_are_recorded_and_no_entry_holds_a_secret(Store::Postgres).await;
}
