//! Span export: with an OTLP endpoint, a request's span reaches the collector over OTLP/HTTP
//! (protobuf) as a child of the client's `traceparent`, with the client's trace id and the span
//! id the server answered in `traceresponse`; shutdown flushes what is buffered. The collector is
//! a small receiver in this test, decoding with the OpenTelemetry protobuf types.
//!
//! The exporter is part of the global tracing subscriber, installed once per process: nextest
//! runs every test in its own process.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use polyport::config::LogFormat;
use prost::Message;
use reqwest::StatusCode;

use crate::audit::traceparent;
use crate::helpers::spawn_app;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One exported span: trace id, span id, parent span id, name.
type Exported = (String, String, String, String);

/// A collector on loopback: its base URL and what it received (content type, body).
async fn collector() -> (String, tokio::sync::mpsc::UnboundedReceiver<(Option<String>, Vec<u8>)>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<(Option<String>, Vec<u8>)>();
    let collector = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let tx = tx.clone();
            async move {
                let kind = headers.get("content-type").and_then(|v| v.to_str().ok()).map(str::to_string);
                let _ = tx.send((kind, body.to_vec()));
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, collector).await });
    (endpoint, rx)
}

/// Every span in what the collector received.
fn exported(rx: &mut tokio::sync::mpsc::UnboundedReceiver<(Option<String>, Vec<u8>)>) -> Vec<Exported> {
    let mut exported: Vec<Exported> = Vec::new();
    while let Ok((kind, body)) = rx.try_recv() {
        assert_eq!(kind.as_deref(), Some("application/x-protobuf"));
        let request = ExportTraceServiceRequest::decode(body.as_slice()).expect("an OTLP protobuf request");
        for resource in request.resource_spans {
            for scope in resource.scope_spans {
                for s in scope.spans {
                    exported.push((hex(&s.trace_id), hex(&s.span_id), hex(&s.parent_span_id), s.name));
                }
            }
        }
    }
    exported
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_traced_request_is_exported_over_otlp_as_a_child_of_the_clients_span() {
    let (endpoint, mut rx) = collector().await;
    let telemetry = polyport::telemetry::init(LogFormat::Pretty, "error", Some(&endpoint));
    assert!(telemetry.exporting(), "the exporter is installed (this test needs a process of its own)");
    let app = spawn_app().await;
    let (tp, trace_id) = traceparent(0x61);
    let r = app.client.get(app.api("/posts")).header("traceparent", &tp).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let answered = r.headers()["traceresponse"].to_str().unwrap().to_string();
    let parts: Vec<&str> = answered.split('-').collect();
    assert_eq!(parts[1], trace_id, "{answered}");
    let our_span = parts[2].to_string();

    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    telemetry.shutdown().await;

    let exported = exported(&mut rx);
    let request = exported
        .iter()
        .find(|(trace, _, _, name)| *trace == trace_id && name == "request")
        .unwrap_or_else(|| panic!("the request's span was exported: {exported:?}"));
    assert_eq!(request.2, "00f067aa0ba902b7", "its parent is the client's span");
    assert_eq!(request.1, our_span, "its id is the one traceresponse named");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_exports_to_otel_exporter_otlp_endpoint_and_flushes_on_sigterm() {
    use crate::process::{SECRET, binary, sigterm, start, temp_dir};
    let (endpoint, mut rx) = collector().await;
    let dir = temp_dir();
    let mut cmd = binary(&dir);
    cmd.env("POLYPORT_JWT_SECRET", SECRET).env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint);
    let (child, base, _lines) = start(cmd);
    let (tp, trace_id) = traceparent(0x62);
    let r = reqwest::Client::new().get(format!("{base}/api/v1/posts")).header("traceparent", &tp).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Well inside the batch delay (5 s): only the shutdown's flush can have sent it.
    sigterm(&child);
    let mut child = child;
    let status = tokio::task::spawn_blocking(move || child.wait()).await.unwrap().unwrap();
    assert!(status.success());
    let exported = exported(&mut rx);
    assert!(
        exported
            .iter()
            .any(|(trace, _, parent, name)| *trace == trace_id && parent == "00f067aa0ba902b7" && name == "request"),
        "the request's span was flushed at shutdown: {exported:?}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
