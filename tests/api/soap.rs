//! SOAP over real HTTP: the WSDL and its drift check, every operation in SOAP 1.1 and 1.2,
//! every fault kind, every credential mode, idempotency, rate limits and hostile XML.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use polyport::adapters::soap::envelope::{self, Version};
use polyport::adapters::soap::security::password_digest;
use polyport::domain::post::PostStatus;
use polyport::domain::user::Role;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, Store, TestApp, TestUser, spawn_app, spawn_app_with};

const NS: &str = "urn:polyport:v1";
const S11: &str = "http://schemas.xmlsoap.org/soap/envelope/";
const S12: &str = "http://www.w3.org/2003/05/soap-envelope";
const WSSE: &str = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
const WSU: &str = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";
const PROFILE: &str = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0";

/// A SOAP answer: status, headers and body text.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    /// The text of the first `<name>` element (payload elements are unprefixed).
    pub fn text(&self, name: &str) -> Option<String> {
        let open = format!("<{name}>");
        let start = self.body.find(&open)? + open.len();
        let end = self.body[start..].find(&format!("</{name}>"))? + start;
        Some(self.body[start..end].replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"))
    }

    fn all(&self, name: &str) -> Vec<String> {
        let open = format!("<{name}>");
        self.body
            .match_indices(&open)
            .filter_map(|(i, _)| {
                let rest = &self.body[i + open.len()..];
                rest.find(&format!("</{name}>")).map(|end| rest[..end].to_string())
            })
            .collect()
    }

    /// Asserts a fault of `fault_code` carrying our `code`, with status and content type of its version.
    pub fn assert_fault(&self, version: Version, fault_code: &str, code: &str) {
        let status = match (version, fault_code) {
            (Version::Soap12, "Sender") => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.headers["content-type"], version.content_type());
        match version {
            Version::Soap11 => {
                assert!(self.body.contains(&format!("<faultcode>soap:{fault_code}</faultcode>")), "{}", self.body)
            }
            Version::Soap12 => {
                assert!(self.body.contains(&format!("<soap:Value>soap:{fault_code}</soap:Value>")), "{}", self.body);
            }
        }
        assert_eq!(self.text("code").as_deref(), Some(code), "{}", self.body);
        let request_id = self.text("requestId").expect("the detail carries the request id");
        assert_eq!(self.headers["x-request-id"], request_id.as_str());
        assert!(envelope::parse(self.body.as_bytes()).is_ok(), "the fault is a well-formed envelope");
    }

    pub fn issues(&self) -> Vec<(String, String)> {
        self.all("details")
            .iter()
            .map(|d| {
                let a = Answer { status: self.status, headers: HeaderMap::new(), body: d.clone() };
                (a.text("field").unwrap_or_default(), a.text("issue").unwrap_or_default())
            })
            .collect()
    }
}

pub fn envelope(version: Version, header: &str, body: &str) -> String {
    let ns = match version {
        Version::Soap11 => S11,
        Version::Soap12 => S12,
    };
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{ns}" xmlns:p="{NS}"><s:Header>{header}</s:Header><s:Body>{body}</s:Body></s:Envelope>"#
    )
}

/// `<p:Op><p:field>value</p:field>…</p:Op>`.
pub fn op(name: &str, fields: &[(&str, &str)]) -> String {
    let inner: String = fields.iter().map(|(k, v)| format!("<p:{k}>{v}</p:{k}>")).collect();
    format!("<p:{name}>{inner}</p:{name}>")
}

pub async fn send(
    app: &TestApp,
    version: Version,
    action: &str,
    xml: impl Into<reqwest::Body>,
    extra: &[(&str, &str)],
) -> Answer {
    let mut rb = app.client.post(app.url("/soap"));
    let action = format!("{NS}#{action}");
    rb = match version {
        Version::Soap11 => {
            rb.header("content-type", "text/xml; charset=utf-8").header("soapaction", format!("\"{action}\""))
        }
        Version::Soap12 => {
            rb.header("content-type", format!("application/soap+xml; charset=utf-8; action=\"{action}\""))
        }
    };
    for (k, v) in extra {
        rb = rb.header(*k, *v);
    }
    let r = rb.body(xml).send().await.expect("request sent");
    let status = r.status();
    let headers = r.headers().clone();
    Answer { status, headers, body: r.text().await.unwrap() }
}

pub async fn call(app: &TestApp, version: Version, name: &str, fields: &[(&str, &str)], token: Option<&str>) -> Answer {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let extra: Vec<(&str, &str)> = bearer.iter().map(|b| ("authorization", b.as_str())).collect();
    send(app, version, name, envelope(version, "", &op(name, fields)), &extra).await
}

fn text_token(email: &str, password: &str) -> String {
    format!(
        r#"<wsse:Security xmlns:wsse="{WSSE}" s:mustUnderstand="1"><wsse:UsernameToken><wsse:Username>{email}</wsse:Username><wsse:Password Type="{PROFILE}#PasswordText">{password}</wsse:Password></wsse:UsernameToken></wsse:Security>"#
    )
}

pub fn digest_token(key_id: &str, secret: &str, nonce: &[u8], created: &str) -> String {
    let digest = password_digest(nonce, created, &polyport::domain::service::hash_secret(secret));
    format!(
        r#"<wsse:Security xmlns:wsse="{WSSE}" xmlns:wsu="{WSU}"><wsse:UsernameToken><wsse:Username>{key_id}</wsse:Username><wsse:Password Type="{PROFILE}#PasswordDigest">{digest}</wsse:Password><wsse:Nonce>{}</wsse:Nonce><wsu:Created>{created}</wsu:Created></wsse:UsernameToken></wsse:Security>"#,
        STANDARD.encode(nonce)
    )
}

pub async fn api_key(app: &TestApp, user: &TestUser, scopes: &[&str]) -> (String, String) {
    let r = app.post("/api-keys", Some(&user.token), json!({"name": "soap", "scopes": scopes})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.unwrap();
    (body["id"].as_str().unwrap().to_string(), body["key"].as_str().unwrap().to_string())
}

pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[tokio::test]
async fn the_served_wsdl_names_the_request_host_and_matches_the_committed_file() {
    let app = spawn_app().await;
    let r = app.client.get(app.url("/soap?wsdl")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "text/xml; charset=utf-8");
    let served = r.text().await.unwrap();
    let here = format!("location=\"http://{}/soap\"", app.addr);
    assert_eq!(served.matches(&here).count(), 2, "both ports name the request's host");
    let normalised = served.replace(&here, "location=\"http://localhost:8080/soap\"");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/polyport.wsdl");
    if std::env::var("UPDATE_SCHEMA").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &normalised).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == normalised,
        "schema/polyport.wsdl differs from the served WSDL; regenerate it with \
         `UPDATE_SCHEMA=1 cargo nextest run the_served_wsdl_names_the_request_host` and review the diff"
    );
    let r = app.client.get(app.url("/soap")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "GET without ?wsdl is a Sender fault");
}

#[tokio::test]
async fn every_post_operation_works_in_soap_11_and_soap_12() {
    let app = spawn_app().await;
    let ada = app.member("ada").await;
    let editor = app.with_role("ed", Role::Editor).await;
    let tags = "<p:tag>rust</p:tag><p:tag>soap</p:tag>";
    let created = call(
        &app,
        Version::Soap11,
        "CreatePost",
        &[("title", "Hello &amp; welcome"), ("body", "text"), ("tags", tags)],
        Some(&ada.token),
    )
    .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    assert_eq!(created.headers["content-type"], "text/xml; charset=utf-8");
    assert!(created.body.contains("<CreatePostResponse xmlns=\"urn:polyport:v1\"><post><id>"));
    let id = created.text("id").unwrap();
    assert_eq!(created.text("authorId").unwrap(), ada.id);
    assert_eq!(created.all("tag"), ["rust", "soap"]);
    let stored = app.core.deps.posts.get(&id).await.unwrap().expect("stored");
    assert_eq!((stored.title.as_str(), stored.status), ("Hello & welcome", PostStatus::Draft));

    let got = call(&app, Version::Soap12, "GetPost", &[("id", &id)], Some(&ada.token)).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.headers["content-type"], "application/soap+xml; charset=utf-8");
    assert_eq!(got.text("title").as_deref(), Some("Hello & welcome"));
    let hidden = call(&app, Version::Soap12, "GetPost", &[("id", &id)], None).await;
    hidden.assert_fault(Version::Soap12, "Sender", "NOT_FOUND");

    let updated = call(
        &app,
        Version::Soap12,
        "UpdatePost",
        &[("id", &id), ("title", "Renamed"), ("tags", ""), ("expectedVersion", "1")],
        Some(&ada.token),
    )
    .await;
    assert_eq!(updated.text("version").as_deref(), Some("2"), "{}", updated.body);
    let stored = app.core.deps.posts.get(&id).await.unwrap().unwrap();
    assert_eq!((stored.title.as_str(), stored.tags.len()), ("Renamed", 0));
    let stale = call(
        &app,
        Version::Soap12,
        "UpdatePost",
        &[("id", &id), ("title", "X"), ("expectedVersion", "1")],
        Some(&ada.token),
    )
    .await;
    stale.assert_fault(Version::Soap12, "Sender", "CONFLICT");

    let published = call(&app, Version::Soap11, "PublishPost", &[("id", &id)], Some(&ada.token)).await;
    assert_eq!(published.text("status").as_deref(), Some("published"));
    assert!(published.text("publishedAt").is_some());
    let listed =
        call(&app, Version::Soap11, "ListPosts", &[("authorId", &ada.id), ("status", "published")], None).await;
    assert_eq!(listed.all("title"), ["Renamed"]);
    assert_eq!(listed.text("hasMore").as_deref(), Some("false"));
    assert!(listed.text("nextCursor").is_none());

    let refused = call(&app, Version::Soap12, "UnpublishPost", &[("id", &id)], Some(&ada.token)).await;
    refused.assert_fault(Version::Soap12, "Sender", "FORBIDDEN");
    let unpublished = call(&app, Version::Soap12, "UnpublishPost", &[("id", &id)], Some(&editor.token)).await;
    assert_eq!(unpublished.text("status").as_deref(), Some("draft"));
    assert_eq!(app.core.deps.posts.get(&id).await.unwrap().unwrap().status, PostStatus::Draft);

    let deleted = call(&app, Version::Soap11, "DeletePost", &[("id", &id)], Some(&ada.token)).await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert!(deleted.body.contains("<DeletePostResponse xmlns=\"urn:polyport:v1\"></DeletePostResponse>"));
    assert!(app.core.deps.posts.get(&id).await.unwrap().is_none());
    let types = app.event_types().await;
    for t in ["post.created", "post.updated", "post.published", "post.unpublished", "post.deleted"] {
        assert!(types.iter().any(|x| x == t), "{t} in {types:?}");
    }
}

#[tokio::test]
async fn lists_page_with_the_same_opaque_cursors_as_rest() {
    let app = spawn_app().await;
    let ada = app.member("ada").await;
    for i in 0..3 {
        app.published_post(&ada, &format!("P{i}")).await;
    }
    let first = call(&app, Version::Soap12, "ListPosts", &[("limit", "2")], None).await;
    assert_eq!(first.all("title"), ["P2", "P1"]);
    assert_eq!(first.text("hasMore").as_deref(), Some("true"));
    let cursor = first.text("nextCursor").unwrap();
    let second = call(&app, Version::Soap12, "ListPosts", &[("limit", "2"), ("cursor", &cursor)], None).await;
    assert_eq!(second.all("title"), ["P0"]);
    let rest: Value = app.get(&format!("/posts?limit=2&cursor={cursor}"), None).await.json().await.unwrap();
    assert_eq!(rest["data"][0]["title"], "P0", "a SOAP cursor continues the REST list too");
    let wrong = call(&app, Version::Soap12, "ListPosts", &[("tag", "rust"), ("cursor", &cursor)], None).await;
    wrong.assert_fault(Version::Soap12, "Sender", "INVALID_REQUEST");
    let bad_limit = call(&app, Version::Soap12, "ListPosts", &[("limit", "many")], None).await;
    bad_limit.assert_fault(Version::Soap12, "Sender", "INVALID_REQUEST");
    assert_eq!(bad_limit.issues(), [("limit".to_string(), "invalid_type".to_string())]);
}

#[tokio::test]
async fn every_user_operation_works_over_soap() {
    let app = spawn_app().await;
    let email = format!("grace-{}@example.com", uuid::Uuid::now_v7().simple());
    let registered =
        call(&app, Version::Soap12, "Register", &[("email", &email), ("name", "Grace"), ("password", PASSWORD)], None)
            .await;
    assert_eq!(registered.status, StatusCode::OK, "{}", registered.body);
    let id = registered.text("id").unwrap();
    assert_eq!(registered.text("role").as_deref(), Some("member"));
    assert!(!registered.body.contains("password"));
    let login = call(&app, Version::Soap11, "Login", &[("email", &email), ("password", PASSWORD)], None).await;
    assert_eq!(login.text("tokenType").as_deref(), Some("Bearer"));
    let token = login.text("accessToken").unwrap();
    assert!(login.text("refreshToken").is_some() && login.text("expiresIn").is_some());

    let me = call(&app, Version::Soap11, "GetUser", &[("id", &id)], Some(&token)).await;
    assert_eq!(me.text("email").as_deref(), Some(email.as_str()));
    let public = call(&app, Version::Soap11, "GetUser", &[("id", &id)], None).await;
    assert_eq!(public.text("name").as_deref(), Some("Grace"));
    assert!(public.text("email").is_none(), "others see the public profile only");

    let renamed = call(&app, Version::Soap12, "UpdateUser", &[("id", &id), ("name", "Grace H.")], Some(&token)).await;
    assert_eq!(renamed.text("name").as_deref(), Some("Grace H."));
    assert_eq!(app.core.deps.users.get(&id).await.unwrap().unwrap().name, "Grace H.");
    let promote = call(&app, Version::Soap12, "UpdateUser", &[("id", &id), ("role", "admin")], Some(&token)).await;
    promote.assert_fault(Version::Soap12, "Sender", "FORBIDDEN");
    assert_eq!(promote.issues(), [("role".to_string(), "forbidden".to_string())]);

    let admin = app.with_role("root", Role::Admin).await;
    let page = call(&app, Version::Soap11, "ListUsers", &[("limit", "1")], Some(&admin.token)).await;
    assert_eq!(page.all("user").len(), 1);
    assert!(page.text("email").is_some(), "admins see every field");
    let next = call(
        &app,
        Version::Soap11,
        "ListUsers",
        &[("limit", "1"), ("cursor", &page.text("nextCursor").unwrap())],
        Some(&admin.token),
    )
    .await;
    assert_eq!(next.all("user").len(), 1);
    assert_ne!(next.text("id"), page.text("id"));

    let refused = call(&app, Version::Soap11, "DeleteUser", &[("id", &id)], Some(&token)).await;
    refused.assert_fault(Version::Soap11, "Client", "FORBIDDEN");
    let deleted = call(&app, Version::Soap11, "DeleteUser", &[("id", &id)], Some(&admin.token)).await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
    assert!(app.core.deps.users.get(&id).await.unwrap().is_none());
}

#[tokio::test]
async fn a_foreign_envelope_is_a_version_mismatch_fault_with_the_supported_versions() {
    let app = spawn_app().await;
    let xml = r#"<e:Envelope xmlns:e="http://example.com/not-soap"><e:Body/></e:Envelope>"#;
    let r12 = send(&app, Version::Soap12, "GetPost", xml, &[]).await;
    assert_eq!(r12.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(r12.body.contains("<soap:Value>soap:VersionMismatch</soap:Value>"), "{}", r12.body);
    assert!(r12.body.contains("<soap:Upgrade><soap:SupportedEnvelope qname=\"v0:Envelope\""));
    let r11 = send(&app, Version::Soap11, "GetPost", xml, &[]).await;
    assert!(r11.body.contains("<faultcode>soap:VersionMismatch</faultcode>"), "{}", r11.body);
    assert_eq!(r11.headers["content-type"], "text/xml; charset=utf-8");
}

#[tokio::test]
async fn an_unknown_mandatory_header_is_a_must_understand_fault_and_optional_ones_are_ignored() {
    let app = spawn_app().await;
    let ada = app.member("ada").await;
    let post = app.published_post(&ada, "Visible").await;
    let id = post["id"].as_str().unwrap();
    for (version, flag) in [(Version::Soap11, "1"), (Version::Soap12, "true")] {
        let header = format!(r#"<x:Trace xmlns:x="urn:other" s:mustUnderstand="{flag}">t</x:Trace>"#);
        let r = send(&app, version, "GetPost", envelope(version, &header, &op("GetPost", &[("id", id)])), &[]).await;
        assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
        match version {
            Version::Soap11 => assert!(r.body.contains("<faultcode>soap:MustUnderstand</faultcode>"), "{}", r.body),
            Version::Soap12 => {
                assert!(r.body.contains("<soap:Value>soap:MustUnderstand</soap:Value>"));
                assert!(
                    r.body.contains(r#"<soap:NotUnderstood qname="nu:Trace" xmlns:nu="urn:other"/>"#),
                    "{}",
                    r.body
                );
            }
        }
        let optional = r#"<x:Trace xmlns:x="urn:other">t</x:Trace>"#;
        let r = send(&app, version, "GetPost", envelope(version, optional, &op("GetPost", &[("id", id)])), &[]).await;
        assert_eq!(r.status, StatusCode::OK);
        let elsewhere = format!(
            r#"<x:Trace xmlns:x="urn:other" s:mustUnderstand="{flag}" s:{}="urn:someone-else">t</x:Trace>"#,
            if version == Version::Soap11 { "actor" } else { "role" }
        );
        let r = send(&app, version, "GetPost", envelope(version, &elsewhere, &op("GetPost", &[("id", id)])), &[]).await;
        assert_eq!(r.status, StatusCode::OK, "blocks for other nodes are not ours to understand");
    }
}

#[tokio::test]
async fn sender_faults_carry_our_code_field_details_and_request_id() {
    let app = spawn_app().await;
    let ada = app.member("ada").await;
    let fields = [("title", " "), ("tags", "<p:tag>ok</p:tag><p:tag>Bad!</p:tag>")];
    let x12 = send(
        &app,
        Version::Soap12,
        "CreatePost",
        envelope(Version::Soap12, "", &op("CreatePost", &fields)),
        &[("authorization", &format!("Bearer {}", ada.token)), ("x-request-id", "trace-123")],
    )
    .await;
    x12.assert_fault(Version::Soap12, "Sender", "VALIDATION_FAILED");
    assert_eq!(x12.headers["x-request-id"], "trace-123");
    assert!(
        x12.body.contains("<soap:Subcode xmlns:pp=\"urn:polyport:v1\"><soap:Value>pp:VALIDATION_FAILED</soap:Value>")
    );
    assert_eq!(x12.issues(), [("title".into(), "required".into()), ("tags[1]".into(), "invalid_format".into())]);
    let x11 = call(&app, Version::Soap11, "CreatePost", &fields, Some(&ada.token)).await;
    x11.assert_fault(Version::Soap11, "Client", "VALIDATION_FAILED");

    let unknown =
        call(&app, Version::Soap11, "CreatePost", &[("title", "t"), ("color", "red")], Some(&ada.token)).await;
    unknown.assert_fault(Version::Soap11, "Client", "INVALID_REQUEST");
    assert_eq!(unknown.issues(), [("color".to_string(), "unknown_field".to_string())]);
    let no_op = call(&app, Version::Soap11, "Teleport", &[], None).await;
    no_op.assert_fault(Version::Soap11, "Client", "INVALID_REQUEST");
    let wrong_action =
        send(&app, Version::Soap11, "DeletePost", envelope(Version::Soap11, "", &op("GetPost", &[("id", "x")])), &[])
            .await;
    wrong_action.assert_fault(Version::Soap11, "Client", "INVALID_REQUEST");
    assert_eq!(wrong_action.issues(), [("soapAction".to_string(), "mismatch".to_string())]);
    let json = app
        .client
        .post(app.url("/soap"))
        .header("content-type", "application/json")
        .body(envelope(Version::Soap12, "", &op("GetPost", &[("id", "x")])))
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), StatusCode::BAD_REQUEST, "a SOAP 1.2 envelope in the wrong media type is a Sender fault");
}

#[tokio::test]
async fn a_broken_store_is_a_receiver_fault_with_a_generic_message() {
    let dir = std::env::temp_dir().join(format!("polyport-soap-broken-{}", uuid::Uuid::now_v7().simple()));
    let url = format!("sqlite://{}/db.sqlite", dir.display());
    let app_url = url.clone();
    let app = spawn_app_with(Store::Sqlite, move |s| s.database_url = app_url).await.unwrap();
    rusqlite::Connection::open(dir.join("db.sqlite")).unwrap().execute_batch("DROP TABLE post_tags").unwrap();
    for (version, code) in [(Version::Soap12, "Receiver"), (Version::Soap11, "Server")] {
        let r = call(&app, version, "ListPosts", &[("tag", "rust")], None).await;
        r.assert_fault(version, code, "INTERNAL");
        assert_eq!(r.text("message").as_deref(), Some("internal error"));
        assert!(!r.body.contains("post_tags") && !r.body.to_lowercase().contains("sqlite"), "{}", r.body);
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_password_text_token_authenticates_like_a_login() {
    let app = spawn_app().await;
    let ada = app.member("ada").await;
    let body = op("CreatePost", &[("title", "Via UsernameToken")]);
    for version in [Version::Soap11, Version::Soap12] {
        let r =
            send(&app, version, "CreatePost", envelope(version, &text_token(&ada.email, PASSWORD), &body), &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.text("authorId").unwrap(), ada.id);
    }
    let r = send(
        &app,
        Version::Soap12,
        "CreatePost",
        envelope(Version::Soap12, &text_token(&ada.email, "wrong password!"), &body),
        &[],
    )
    .await;
    r.assert_fault(Version::Soap12, "Sender", "UNAUTHENTICATED");
    let both = send(
        &app,
        Version::Soap12,
        "CreatePost",
        envelope(Version::Soap12, &text_token(&ada.email, PASSWORD), &body),
        &[("authorization", &format!("Bearer {}", ada.token))],
    )
    .await;
    both.assert_fault(Version::Soap12, "Sender", "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_password_digest_token_authenticates_an_api_key_once_within_its_window() {
    let app = spawn_app().await;
    let ada = app.member("ada").await;
    let (key_id, secret) = api_key(&app, &ada, &["posts:read", "posts:write"]).await;
    let body = op("CreatePost", &[("title", "Digest")]);
    let created = now();
    let header = digest_token(&key_id, &secret, b"0123456789abcdef", &created);
    let r = send(&app, Version::Soap12, "CreatePost", envelope(Version::Soap12, &header, &body), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.text("authorId").unwrap(), ada.id);

    let replay = send(&app, Version::Soap12, "CreatePost", envelope(Version::Soap12, &header, &body), &[]).await;
    replay.assert_fault(Version::Soap12, "Sender", "UNAUTHENTICATED");
    assert!(replay.text("message").unwrap().contains("Nonce"), "{}", replay.body);

    let stale = (chrono::Utc::now() - chrono::Duration::minutes(6)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let old = send(
        &app,
        Version::Soap11,
        "CreatePost",
        envelope(Version::Soap11, &digest_token(&key_id, &secret, b"fresh-nonce-0001", &stale), &body),
        &[],
    )
    .await;
    old.assert_fault(Version::Soap11, "Client", "UNAUTHENTICATED");
    assert!(old.text("message").unwrap().contains("Created"));

    let forged = send(
        &app,
        Version::Soap11,
        "CreatePost",
        envelope(Version::Soap11, &digest_token(&key_id, "ppk_wrong", b"fresh-nonce-0002", &now()), &body),
        &[],
    )
    .await;
    forged.assert_fault(Version::Soap11, "Client", "UNAUTHENTICATED");
    let posts = app.event_types().await.iter().filter(|t| *t == "post.created").count();
    assert_eq!(posts, 1, "only the first digest request did anything");
}

#[tokio::test]
async fn http_credentials_work_and_anonymous_callers_are_refused_writes() {
    let app = spawn_app().await;
    let ada = app.member("ada").await;
    let (_, secret) = api_key(&app, &ada, &["posts:read"]).await;
    let body = || envelope(Version::Soap11, "", &op("CreatePost", &[("title", "Keyed")]));
    let narrowed = send(&app, Version::Soap11, "CreatePost", body(), &[("x-api-key", &secret)]).await;
    narrowed.assert_fault(Version::Soap11, "Client", "FORBIDDEN");
    let read = send(
        &app,
        Version::Soap11,
        "ListPosts",
        envelope(Version::Soap11, "", &op("ListPosts", &[])),
        &[("x-api-key", &secret)],
    )
    .await;
    assert_eq!(read.status, StatusCode::OK);
    let bearer =
        send(&app, Version::Soap11, "CreatePost", body(), &[("authorization", &format!("Bearer {}", ada.token))]).await;
    assert_eq!(bearer.text("authorId").unwrap(), ada.id);
    let anonymous = send(&app, Version::Soap11, "CreatePost", body(), &[]).await;
    anonymous.assert_fault(Version::Soap11, "Client", "UNAUTHENTICATED");
    let garbage = send(&app, Version::Soap11, "CreatePost", body(), &[("authorization", "Bearer nope")]).await;
    garbage.assert_fault(Version::Soap11, "Client", "UNAUTHENTICATED");
}

#[tokio::test]
async fn an_idempotency_key_header_replays_the_first_response() {
    let app = spawn_app().await;
    let ada = app.member("ada").await;
    let auth = format!("Bearer {}", ada.token);
    let key = |k: &str| format!("<p:IdempotencyKey>{k}</p:IdempotencyKey>");
    let create = |k: &str, title: &str| envelope(Version::Soap12, &key(k), &op("CreatePost", &[("title", title)]));
    let first = send(&app, Version::Soap12, "CreatePost", create("k-1", "Once"), &[("authorization", &auth)]).await;
    assert_eq!(first.status, StatusCode::OK);
    assert!(first.headers.get("idempotent-replayed").is_none());
    let again = send(&app, Version::Soap12, "CreatePost", create("k-1", "Once"), &[("authorization", &auth)]).await;
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(again.body, first.body);
    let created = app.event_types().await.iter().filter(|t| *t == "post.created").count();
    assert_eq!(created, 1);
    let other = send(&app, Version::Soap12, "CreatePost", create("k-1", "Twice"), &[("authorization", &auth)]).await;
    other.assert_fault(Version::Soap12, "Sender", "IDEMPOTENCY_KEY_REUSED");
    // One key store across protocols: the same key and input on REST replays the same post.
    let rest = app
        .req(reqwest::Method::POST, "/posts", Some(&ada.token))
        .header("idempotency-key", "k-1")
        .json(&json!({"title": "Once"}))
        .send()
        .await
        .unwrap();
    assert_eq!(rest.status(), StatusCode::CREATED);
    assert_eq!(rest.headers()["idempotent-replayed"], "true");
    let post: Value = rest.json().await.unwrap();
    assert_eq!(first.text("id").as_deref(), post["id"].as_str());
}

#[tokio::test]
async fn soap_spends_the_same_rate_limit_budget_as_rest() {
    let app = spawn_app_with(Store::Sqlite, |s| s.rate_limit_anon_per_minute = 3).await.unwrap();
    assert_eq!(app.get("/posts", None).await.status(), StatusCode::OK);
    let r = call(&app, Version::Soap12, "ListPosts", &[], None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["ratelimit-limit"], "3");
    assert_eq!(r.headers["ratelimit-remaining"], "1");
    call(&app, Version::Soap12, "ListPosts", &[], None).await;
    let refused = call(&app, Version::Soap12, "ListPosts", &[], None).await;
    refused.assert_fault(Version::Soap12, "Sender", "RATE_LIMITED");
    let retry: u64 = refused.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    assert!(refused.text("retryAfter").is_some());
    assert_eq!(app.get("/posts", None).await.status(), StatusCode::TOO_MANY_REQUESTS);
}

/// Hostile or broken envelopes: (name, bytes, expected detail issue).
fn hostile() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let ok = |body: &str| envelope(Version::Soap11, "", body).into_bytes();
    let laughs = format!(
        r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">{}]><s:Envelope xmlns:s="{S11}"><s:Body><p:GetPost xmlns:p="{NS}"><p:id>&lol9;</p:id></p:GetPost></s:Body></s:Envelope>"#,
        (1..10).map(|i| format!(r#"<!ENTITY lol{i} "{}">"#, format!("&lol{};", i - 1).repeat(10))).collect::<String>()
    );
    let xxe = format!(
        r#"<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><s:Envelope xmlns:s="{S11}"><s:Body><p:GetPost xmlns:p="{NS}"><p:id>&xxe;</p:id></p:GetPost></s:Body></s:Envelope>"#
    );
    let full = ok(&op("GetPost", &[("id", "x")]));
    let attrs: String = (0..40).map(|i| format!(r#" a{i}="v""#)).collect();
    let mut bad_utf8 = ok(&op("GetPost", &[("id", "x")]));
    let at = bad_utf8.len() - 40;
    bad_utf8[at] = 0xff;
    vec![
        ("billion laughs", laughs.into_bytes(), "dtd_not_allowed"),
        ("XXE", xxe.into_bytes(), "dtd_not_allowed"),
        ("undeclared entity", ok(&op("GetPost", &[("id", "&lol9;")])), "entity_not_allowed"),
        (
            "processing instruction",
            ok(&format!("<?evil x?>{}", op("GetPost", &[("id", "x")]))),
            "processing_instruction_not_allowed",
        ),
        ("truncated", full[..full.len() - "</s:Envelope>".len()].to_vec(), "truncated"),
        ("too deep", ok(&format!("{}{}", "<p:a>".repeat(40), "</p:a>".repeat(40))), "too_deep"),
        ("too many attributes", ok(&format!("<p:GetPost{attrs}><p:id>x</p:id></p:GetPost>")), "too_many_attributes"),
        ("too long name", ok(&format!("<p:{n}>x</p:{n}>", n = "n".repeat(300))), "name_too_long"),
        ("too long text", ok(&op("GetPost", &[("id", &"x".repeat(460 * 1024))])), "text_too_long"),
        ("invalid UTF-8", bad_utf8, "invalid_utf8"),
    ]
}

#[tokio::test]
async fn hostile_xml_is_refused_quickly_with_a_client_fault() {
    let app = spawn_app().await;
    for (name, bytes, issue) in hostile() {
        let started = Instant::now();
        let r = send(&app, Version::Soap11, "GetPost", bytes, &[]).await;
        assert!(started.elapsed() < Duration::from_secs(2), "{name} took {:?}", started.elapsed());
        r.assert_fault(Version::Soap11, "Client", "INVALID_REQUEST");
        assert_eq!(r.issues(), [("envelope".to_string(), issue.to_string())], "{name}");
        assert!(!r.body.contains("root:"), "{name}: nothing from the file system leaks");
    }
    let oversize =
        envelope(Version::Soap12, "", &op("CreatePost", &[("title", "t"), ("body", &"x".repeat(600 * 1024))]));
    let r = send(&app, Version::Soap12, "CreatePost", oversize, &[]).await;
    r.assert_fault(Version::Soap12, "Sender", "PAYLOAD_TOO_LARGE");
}

/// A deterministic xorshift generator: the property test needs no extra crate and is repeatable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, mut bytes: Vec<u8>) -> Vec<u8> {
    const SNIPPETS: [&[u8]; 10] =
        [b"<", b">", b"&", b"&amp;", b"<!DOCTYPE x>", b"<?pi?>", b"]]>", b"<![CDATA[", b"\"", b"\xc3"];
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(bytes.len());
        match rng.below(5) {
            0 => bytes.truncate(at),
            1 => {
                let end = (at + 1 + rng.below(16)).min(bytes.len());
                bytes.drain(at..end);
            }
            2 => {
                let last = bytes.len() - 1;
                bytes[at.min(last)] ^= 1 << rng.below(8);
            }
            3 => {
                let s = SNIPPETS[rng.below(SNIPPETS.len())];
                bytes.splice(at..at, s.iter().copied());
            }
            _ => {
                let end = (at + rng.below(32)).min(bytes.len());
                let copy = bytes[at..end].to_vec();
                bytes.splice(at..at, copy);
            }
        }
        if bytes.is_empty() {
            break;
        }
    }
    bytes
}

#[tokio::test]
async fn mutated_envelopes_always_get_a_well_formed_answer() {
    let app = spawn_app().await;
    let ada = app.member("ada").await;
    let post = app.published_post(&ada, "Seed").await;
    let id = post["id"].as_str().unwrap().to_string();
    let seeds = [
        envelope(Version::Soap11, &text_token(&ada.email, PASSWORD), &op("GetPost", &[("id", &id)])),
        envelope(Version::Soap12, "<p:IdempotencyKey>k</p:IdempotencyKey>", &op("ListPosts", &[("limit", "2")])),
        envelope(Version::Soap12, "", &op("CreatePost", &[("title", "t"), ("tags", "<p:tag>a</p:tag>")])),
    ];
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    for round in 0..240 {
        let seed = &seeds[round % seeds.len()];
        let version = if seed.contains(S12) { Version::Soap12 } else { Version::Soap11 };
        let bytes = mutate(&mut rng, seed.clone().into_bytes());
        let r = send(&app, version, "", bytes.clone(), &[]).await;
        let shown = String::from_utf8_lossy(&bytes).to_string();
        let answer = envelope::parse(r.body.as_bytes()).unwrap_or_else(|e| {
            panic!("round {round}: answer is not an envelope ({e:?}): {}\nrequest: {shown}", r.body)
        });
        let is_fault = answer.body.name == "Fault";
        match r.status {
            StatusCode::OK => assert!(!is_fault && answer.body.name.ends_with("Response"), "{}", r.body),
            StatusCode::BAD_REQUEST | StatusCode::INTERNAL_SERVER_ERROR => {
                assert!(is_fault, "round {round}: {}", r.body);
                assert!(r.text("code").is_some() || r.body.contains("VersionMismatch"), "{}", r.body);
            }
            other => panic!("round {round}: unexpected status {other}: {}\nrequest: {shown}", r.body),
        }
    }
}
