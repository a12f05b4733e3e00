//! Trace context: a client's W3C `traceparent` continues on every protocol (HTTP headers, gRPC
//! metadata, `/ws` request frames), reaches the event the request caused and the audit entry,
//! and comes back in `traceresponse`; an invalid one starts a new trace.

use futures::StreamExt;
use polyport::adapters::grpc::pb;
use polyport::adapters::grpc::pb::post_service_client::PostServiceClient;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::audit::{event_trace, traceparent};
use crate::grpc::{authed, channel};
use crate::helpers::TestApp;
use crate::on_every_store;
use crate::realtime_support::ws_try;

on_every_store!(
    a_rest_traceparent_reaches_the_response_the_event_and_the_audit_entry,
    grpc_metadata_carries_the_trace_into_the_stored_event,
    a_ws_frame_traceparent_wins_and_frames_without_one_continue_the_upgrade_trace,
    a_graphql_subscription_connection_continues_the_trace_of_its_upgrade
);

/// `(trace id, span id)` of a `traceresponse` header.
fn trace_response(r: &reqwest::Response) -> (String, String) {
    let value = r.headers().get("traceresponse").expect("a traceresponse header").to_str().unwrap().to_string();
    let parts: Vec<&str> = value.split('-').collect();
    assert_eq!(parts.len(), 4, "{value}");
    assert_eq!((parts[0], parts[1].len(), parts[2].len()), ("00", 32, 16), "{value}");
    (parts[1].to_string(), parts[2].to_string())
}

async fn a_rest_traceparent_reaches_the_response_the_event_and_the_audit_entry(app: TestApp) {
    let admin = app.with_role("admin", polyport::domain::user::Role::Admin).await;
    let (tp, trace_id) = traceparent(0x21);
    let r = app
        .req(reqwest::Method::POST, "/posts", Some(&admin.token))
        .header("traceparent", &tp)
        .header("tracestate", "vendor=opaque")
        .json(&json!({"title": "traced"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let (answered_trace, span) = trace_response(&r);
    assert_eq!(answered_trace, trace_id, "the client's trace continues");
    assert_ne!(span, "00f067aa0ba902b7", "in a span of the server's own");
    let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    assert_eq!(event_trace(&app, "post.created", &id).await.as_deref(), Some(trace_id.as_str()));
    let entries = crate::audit::entries(&app, &admin, &format!("target=post:{id}")).await;
    assert_eq!(entries[0]["trace_id"], trace_id.as_str());

    // None given, or an invalid one: a new trace, a different one each time.
    let mut started = Vec::new();
    for header in [None, Some("00-00000000000000000000000000000000-00f067aa0ba902b7-01"), Some("garbage")] {
        let mut rb = app.req(reqwest::Method::POST, "/posts", Some(&admin.token));
        if let Some(h) = header {
            rb = rb.header("traceparent", h);
        }
        let r = rb.json(&json!({"title": "untraced"})).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let (trace, _) = trace_response(&r);
        assert!(trace.bytes().all(|b| b.is_ascii_hexdigit()) && trace != "0".repeat(32), "{trace}");
        assert_ne!(trace, trace_id);
        let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
        assert_eq!(event_trace(&app, "post.created", &id).await.as_deref(), Some(trace.as_str()));
        started.push(trace);
    }
    started.sort();
    started.dedup();
    assert_eq!(started.len(), 3, "each request starts its own trace");

    // GraphQL, SOAP and SSE read the same headers.
    let (tp, trace_id) = traceparent(0x22);
    let auth = format!("Bearer {}", admin.token);
    let body = json!({"query": "mutation { createPost(input: {title: \"g\"}) { id } }"});
    let r = app.client.post(app.url("/graphql")).header("authorization", &auth).header("traceparent", &tp);
    let r = r.json(&body).send().await.unwrap();
    assert_eq!(trace_response(&r).0, trace_id);
    let id = r.json::<Value>().await.unwrap()["data"]["createPost"]["id"].as_str().unwrap().to_string();
    assert_eq!(event_trace(&app, "post.created", &id).await.as_deref(), Some(trace_id.as_str()));

    let (tp, trace_id) = traceparent(0x23);
    let r = app.client.get(app.url("/soap?wsdl")).header("traceparent", &tp).send().await.unwrap();
    assert_eq!(trace_response(&r).0, trace_id);
    let (tp, trace_id) = traceparent(0x24);
    let r = app
        .client
        .get(app.api("/events?topics=posts"))
        .header("authorization", &auth)
        .header("traceparent", &tp)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(trace_response(&r).0, trace_id, "the SSE stream's response names the trace");
}

async fn grpc_metadata_carries_the_trace_into_the_stored_event(app: TestApp) {
    let ada = app.member("ada").await;
    let (tp, trace_id) = traceparent(0x31);
    let mut req = authed(pb::CreatePostRequest { title: "over gRPC".into(), ..Default::default() }, &ada.token);
    req.metadata_mut().insert("traceparent", tp.parse().unwrap());
    let response = PostServiceClient::new(channel(&app).await).create_post(req).await.unwrap();
    let answered = response.metadata().get("traceresponse").expect("traceresponse metadata").to_str().unwrap();
    assert!(answered.contains(&trace_id), "{answered}");
    let id = response.into_inner().id;
    assert_eq!(event_trace(&app, "post.created", &id).await.as_deref(), Some(trace_id.as_str()));
}

async fn a_ws_frame_traceparent_wins_and_frames_without_one_continue_the_upgrade_trace(app: TestApp) {
    let ada = app.member("ada").await;
    let (upgrade_tp, upgrade_trace) = traceparent(0x41);
    let auth = format!("Bearer {}", ada.token);
    let mut ws = ws_try(&app, &[("authorization", auth.as_str()), ("traceparent", upgrade_tp.as_str())], None)
        .await
        .expect("upgrade accepted");
    let (frame_tp, frame_trace) = traceparent(0x42);
    let own =
        json!({"type": "request", "id": "a", "op": "createPost", "params": {"title": "a"}, "traceparent": frame_tp});
    let own = ws.request_with(own).await;
    let inherited = ws.request("b", "createPost", json!({"title": "b"})).await;
    let invalid =
        json!({"type": "request", "id": "c", "op": "createPost", "params": {"title": "c"}, "traceparent": "nope"});
    let invalid = ws.request_with(invalid).await;
    let id = |v: &Value| v["data"]["id"].as_str().unwrap_or_else(|| panic!("{v}")).to_string();
    assert_eq!(event_trace(&app, "post.created", &id(&own)).await.as_deref(), Some(frame_trace.as_str()));
    assert_eq!(event_trace(&app, "post.created", &id(&inherited)).await.as_deref(), Some(upgrade_trace.as_str()));
    let started = event_trace(&app, "post.created", &id(&invalid)).await.expect("a trace");
    assert_ne!(started, frame_trace, "an invalid traceparent starts a new trace");
    assert_ne!(started, upgrade_trace);
}

async fn a_graphql_subscription_connection_continues_the_trace_of_its_upgrade(app: TestApp) {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::http::HeaderValue;
    let ada = app.member("ada").await;
    let (tp, trace_id) = traceparent(0x51);
    let mut request = format!("ws://{}/graphql/ws", app.addr).into_client_request().unwrap();
    request.headers_mut().insert("sec-websocket-protocol", HeaderValue::from_static("graphql-transport-ws"));
    request.headers_mut().insert("traceparent", HeaderValue::from_str(&tp).unwrap());
    let (mut stream, _) = tokio_tungstenite::connect_async(request).await.expect("upgrade accepted");
    let send = |v: Value| Message::text(v.to_string());
    use futures::SinkExt;
    let init = json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {}", ada.token)}});
    stream.send(send(init)).await.unwrap();
    let query = json!({"query": "mutation { createPost(input: {title: \"over graphql-ws\"}) { id } }"});
    let mut sent = false;
    let id = loop {
        let Some(Ok(Message::Text(t))) = stream.next().await else { continue };
        let v: Value = serde_json::from_str(t.as_str()).unwrap();
        match v["type"].as_str() {
            Some("connection_ack") if !sent => {
                stream.send(send(json!({"type": "subscribe", "id": "1", "payload": query}))).await.unwrap();
                sent = true;
            }
            Some("next") => break v["payload"]["data"]["createPost"]["id"].as_str().unwrap().to_string(),
            Some("error") => panic!("{v}"),
            _ => {}
        }
    };
    assert_eq!(event_trace(&app, "post.created", &id).await.as_deref(), Some(trace_id.as_str()));
}
