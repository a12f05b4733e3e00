//! The tracing subscriber: JSON or pretty logs, filtered by `POLYPORT_LOG`; request spans that
//! carry the request id and trace id; and, when an OTLP endpoint is configured, the export of
//! Polyport's spans over OTLP/HTTP (protobuf), each request's span the child of the client's
//! `traceparent`.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::{EnvFilter, LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry};

use crate::config::LogFormat;
use crate::platform::trace::TraceContext;

/// True once spans are exported: request spans then take their ids from the exporter's span.
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// What `init` installed; `shutdown` flushes the spans not yet exported.
#[derive(Default)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// True when spans are being exported.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Exports what is buffered and stops the exporter (call before the runtime ends).
    pub async fn shutdown(self) {
        if let Some(provider) = self.provider {
            EXPORTING.store(false, Ordering::Relaxed);
            let done = tokio::task::spawn_blocking(move || {
                let _ = provider.force_flush();
                provider.shutdown()
            })
            .await;
            if let Ok(Err(e)) = done {
                eprintln!("flushing the span exporter failed: {e}");
            }
        }
    }
}

/// Installs the global subscriber once, logging to stdout; later calls (tests) are ignored. With
/// `otlp_endpoint` (`OTEL_EXPORTER_OTLP_ENDPOINT`, e.g. `http://127.0.0.1:4318`) Polyport's spans
/// are exported to `<endpoint>/v1/traces`; must then be called inside a Tokio runtime.
pub fn init(format: LogFormat, filter: &str, otlp_endpoint: Option<&str>) -> Telemetry {
    install(format, filter, otlp_endpoint, Output::Stdout)
}

/// As `init` without export, but logs go to stderr: operator commands keep stdout for their one
/// result line.
pub fn init_stderr(format: LogFormat, filter: &str) -> Telemetry {
    install(format, filter, None, Output::Stderr)
}

#[derive(Clone, Copy)]
enum Output {
    Stdout,
    Stderr,
}

fn install(format: LogFormat, filter: &str, otlp_endpoint: Option<&str>, output: Output) -> Telemetry {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour only for a person at a terminal (and never with NO_COLOR set).
    let terminal = match output {
        Output::Stdout => std::io::stdout().is_terminal(),
        Output::Stderr => std::io::stderr().is_terminal(),
    };
    let ansi = terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let writer = move || -> Box<dyn std::io::Write> {
        match output {
            Output::Stdout => Box::new(std::io::stdout()),
            Output::Stderr => Box::new(std::io::stderr()),
        }
    };
    let fmt = tracing_subscriber::fmt::layer().with_target(false).with_ansi(ansi).with_writer(writer);
    let logs: Box<dyn Layer<Registry> + Send + Sync> = match format {
        LogFormat::Json => {
            fmt.json().flatten_event(true).with_current_span(false).with_span_list(true).with_filter(filter).boxed()
        }
        LogFormat::Pretty => fmt.compact().with_filter(filter).boxed(),
    };
    let provider = match otlp_endpoint.map(str::trim).filter(|e| !e.is_empty()) {
        Some(endpoint) => match exporter(endpoint) {
            Ok(provider) => Some(provider),
            Err(e) => {
                eprintln!("the OTLP exporter for {endpoint} could not be built, spans are not exported: {e}");
                None
            }
        },
        None => None,
    };
    let spans = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("polyport"))
            .with_filter(Targets::new().with_target("polyport", LevelFilter::INFO))
    });
    let installed = tracing_subscriber::registry().with(logs).with(spans).try_init().is_ok();
    if installed && provider.is_some() {
        EXPORTING.store(true, Ordering::Relaxed);
        return Telemetry { provider };
    }
    Telemetry::default()
}

/// A tracer provider exporting in batches over OTLP/HTTP protobuf, from Tokio tasks.
fn exporter(endpoint: &str) -> anyhow::Result<SdkTracerProvider> {
    use opentelemetry_otlp::{Protocol, WithExportConfig};
    let base = endpoint.trim_end_matches('/');
    let url = if base.ends_with("/v1/traces") { base.to_string() } else { format!("{base}/v1/traces") };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url)
        .build()?;
    let batch = opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor::builder(
        exporter,
        opentelemetry_sdk::runtime::Tokio,
    )
    .build();
    let resource = opentelemetry_sdk::Resource::builder().with_service_name("polyport").build();
    Ok(SdkTracerProvider::builder().with_span_processor(batch).with_resource(resource).build())
}

/// The span of one request (or WebSocket frame) and its trace context: `parent` (the client's
/// span) continued in a new span of ours, or a new trace. Every log line inside the span
/// carries the request id and the trace id; an exported span has the client's trace id and
/// our span id is the exported one. `route` may be left for the router to record once matched.
pub fn request_span(
    request_id: &str,
    parent: Option<&TraceContext>,
    method: &str,
    route: Option<&str>,
) -> (tracing::Span, TraceContext) {
    let route = route.map(tracing::field::display);
    if !EXPORTING.load(Ordering::Relaxed) {
        let trace = parent.map_or_else(TraceContext::root, TraceContext::child);
        let span = tracing::info_span!("request", request_id = %request_id, trace_id = %trace.trace_id, method = %method, route = route);
        return (span, trace);
    }
    let span = tracing::info_span!("request", request_id = %request_id, trace_id = tracing::field::Empty, method = %method, route = route);
    if let Some(context) = parent.and_then(remote) {
        let _ = span.set_parent(context);
    }
    let ours = span.context().span().span_context().clone();
    let trace = if ours.is_valid() {
        TraceContext {
            trace_id: ours.trace_id().to_string(),
            span_id: ours.span_id().to_string(),
            flags: ours.trace_flags().to_u8(),
            tracestate: parent.and_then(|p| p.tracestate.clone()),
        }
    } else {
        parent.map_or_else(TraceContext::root, TraceContext::child)
    };
    span.record("trace_id", tracing::field::display(&trace.trace_id));
    (span, trace)
}

/// The client's span as an OpenTelemetry remote parent.
fn remote(parent: &TraceContext) -> Option<opentelemetry::Context> {
    let state = parent.tracestate.as_deref().and_then(|s| s.parse::<TraceState>().ok()).unwrap_or_default();
    let context = SpanContext::new(
        TraceId::from_hex(&parent.trace_id).ok()?,
        SpanId::from_hex(&parent.span_id).ok()?,
        TraceFlags::new(parent.flags),
        true,
        state,
    );
    Some(opentelemetry::Context::new().with_remote_span_context(context))
}
