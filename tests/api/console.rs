//! The console at `/` and the documents it links: the page with its CSP, every asset and link
//! it references served from this origin, the protos, and the AsyncAPI document held to the
//! server (every event type, topic form and `/ws` operation it names exists).

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::spawn_app;
use crate::realtime_support::{ws, ws_bearer};

/// Every `src="…"` and `href="…"` value in an HTML document.
fn references(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["src=\"", "href=\""] {
        let mut rest = html;
        while let Some(at) = rest.find(attr) {
            rest = &rest[at + attr.len()..];
            let end = rest.find('"').expect("a closed attribute");
            out.push(rest[..end].to_string());
        }
    }
    out
}

#[tokio::test]
async fn the_console_is_served_at_the_root_with_a_self_only_csp_and_every_asset_it_references() {
    let app = spawn_app().await;
    let r = app.client.get(app.url("/")).header("accept", "text/html").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_string();
    for directive in
        ["default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"]
    {
        assert!(csp.split(';').any(|d| d.trim() == directive), "{directive} in {csp}");
    }
    assert!(!csp.contains("unsafe-inline") && !csp.contains("http"), "{csp}");
    assert_eq!(r.headers()["referrer-policy"], "no-referrer");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    let html = r.text().await.unwrap();
    assert!(!html.contains("<script>") && !html.contains(" style="), "nothing inline for the CSP to refuse");

    let refs = references(&html);
    assert!(refs.len() >= 10, "{refs:?}");
    for link in &refs {
        assert!(link.starts_with('/') && !link.starts_with("//"), "same-origin only: {link}");
        let r = app.client.get(app.url(link)).send().await.unwrap();
        assert!(r.status().is_success() || r.status().is_redirection(), "{link}: {}", r.status());
    }
    for (asset, kind) in [
        ("/console/console.js", "text/javascript"),
        ("/console/protobuf.js", "text/javascript"),
        ("/console/console.css", "text/css"),
    ] {
        assert!(refs.iter().any(|r| r == asset), "the page loads {asset}");
        let r = app.client.get(app.url(asset)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{asset}");
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with(kind), "{asset}");
        // (The SOAP envelope's namespace is a name, never fetched.)
        let body = r.text().await.unwrap().replace("http://schemas.xmlsoap.org/soap/envelope/", "");
        assert!(!body.contains("http://") && !body.contains("https://"), "{asset} names no other origin");
    }
    for needed in ["/docs", "/graphql", "/soap?wsdl", "/api/v1/asyncapi.json", "/proto/polyport/v1/posts.proto"] {
        assert!(refs.iter().any(|r| r == needed), "the console links {needed}");
    }
}

#[tokio::test]
async fn the_protos_are_served_as_committed_and_unknown_console_files_are_not_found() {
    let app = spawn_app().await;
    for name in ["auth", "users", "posts", "events"] {
        let r = app.client.get(app.url(&format!("/proto/polyport/v1/{name}.proto"))).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let committed = std::fs::read_to_string(format!("proto/polyport/v1/{name}.proto")).unwrap();
        assert_eq!(r.text().await.unwrap(), committed);
    }
    for path in ["/console/../Cargo.toml", "/console/secret.js", "/proto/polyport/v1/../../../Cargo.toml"] {
        let r = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "NOT_FOUND");
    }
}

/// Every `$ref` in `v`.
fn refs(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.insert(r.clone());
            }
            m.values().for_each(|v| refs(v, out));
        }
        Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn the_asyncapi_document_names_exactly_what_the_streams_carry_and_every_reference_resolves() {
    let app = spawn_app().await;
    let r = app.client.get(app.url("/api/v1/asyncapi.json")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/json");
    let doc: Value = r.json().await.unwrap();
    assert_eq!(doc["asyncapi"], "3.0.0");
    assert_eq!(doc["channels"]["events"]["address"], "/api/v1/events");
    assert_eq!(doc["channels"]["ws"]["address"], "/ws");

    let mut all = BTreeSet::new();
    refs(&doc, &mut all);
    for r in &all {
        let pointer = r.strip_prefix('#').unwrap_or_else(|| panic!("local reference: {r}"));
        assert!(doc.pointer(pointer).is_some(), "{r} resolves");
    }

    // The SSE messages are the event types the log holds: every one, each named once.
    let names: BTreeSet<String> = doc["components"]["messages"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|m| m["payload"]["allOf"][1]["properties"]["type"]["const"].as_str().map(str::to_string))
        .collect();
    let types: BTreeSet<String> =
        polyport::domain::events::EventType::ALL.iter().map(|t| t.as_str().to_string()).collect();
    assert_eq!(names, types);

    // Every `/ws` op the document lists runs on the server (none is answered as unknown).
    let ops = doc["components"]["messages"]["wsRequest"]["payload"]["properties"]["op"]["enum"].as_array().unwrap();
    assert!(ops.len() >= 13, "{ops:?}");
    let mut socket = ws(&app).await;
    for (i, op) in ops.iter().enumerate() {
        let reply =
            socket.request_with(json!({"type": "request", "id": format!("r{i}"), "op": op, "params": {}})).await;
        let unknown = reply["details"].as_array().is_some_and(|d| d.iter().any(|d| d["field"] == "op"));
        assert!(!unknown, "{op}: {reply}");
    }
    let reply = socket.request_with(json!({"type": "request", "id": "x", "op": "dropTables", "params": {}})).await;
    assert_eq!(reply["details"][0]["field"], "op", "{reply}");

    // The topic forms it documents are the ones a subscription accepts.
    let ada = app.member("ada").await;
    let mut socket = ws_bearer(&app, &ada.token).await;
    for (i, topic) in ["posts", "posts/p1", "users/u1", "users/u1/posts"].iter().enumerate() {
        let description = doc["channels"]["events"]["description"].as_str().unwrap();
        let form = topic.replace("p1", "{postId}").replace("u1", "{userId}");
        assert!(description.contains(&format!("`{form}`")), "{form} documented");
        let frames = socket.subscribe(&format!("s{i}"), &[topic], None).await;
        assert!(frames.iter().all(|f| f["type"] != "error"), "{topic}: {frames:?}");
    }
}
