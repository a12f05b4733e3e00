//! Prometheus metrics: request counts and latencies per protocol, route and status.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub protocol: &'static str,
    pub method: &'static str,
    pub route: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub protocol: &'static str,
    pub route: &'static str,
}

/// A request method as a label: the standard ones by name, any other as `OTHER` (a client
/// choosing methods must not choose how many series there are).
pub fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    const KNOWN: [(Method, &str); 9] = [
        (Method::GET, "GET"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::PATCH, "PATCH"),
        (Method::DELETE, "DELETE"),
        (Method::HEAD, "HEAD"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::CONNECT, "CONNECT"),
        (Method::TRACE, "TRACE"),
    ];
    KNOWN.iter().find(|(m, _)| m == method).map_or("OTHER", |(_, name)| name)
}

/// A route pattern as a label, kept once for the life of the process. Patterns come from the
/// router's own table (or are `unmatched`), so there are as many as it has routes.
pub fn route_label(route: &str) -> &'static str {
    use std::sync::{OnceLock, RwLock};
    static ROUTES: OnceLock<RwLock<foldhash::HashSet<&'static str>>> = OnceLock::new();
    let routes = ROUTES.get_or_init(Default::default);
    if let Some(known) = routes.read().unwrap_or_else(|e| e.into_inner()).get(route) {
        return known;
    }
    let mut routes = routes.write().unwrap_or_else(|e| e.into_inner());
    if let Some(known) = routes.get(route) {
        return known;
    }
    let kept: &'static str = Box::leak(route.to_string().into_boxed_str());
    routes.insert(kept);
    kept
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabels {
    pub code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusalLabels {
    /// `per_address`, `total`, or `evicted_silent` (an older connection that never spoke was
    /// closed to make room).
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LimitLabels {
    /// `rate_budget`, `login_throttle`, `nonce_cache` or `stream_caps`.
    pub limit: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabels {
    /// The job kind (`webhook.fanout`, `webhook.deliver`).
    pub kind: String,
    /// `succeeded`, `failed` (will be retried) or `dead`.
    pub outcome: &'static str,
}

/// Every metric the server exports.
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<RouteLabels, Histogram>,
    pub in_flight: Gauge,
    pub errors: Family<CodeLabels, Counter>,
    /// WebSocket clients closed with 1013 for not reading their events.
    pub lagged_clients: Counter,
    /// TCP connections open now.
    pub connections_open: Gauge,
    /// Connections refused or evicted at the connection caps.
    pub connections_refused: Family<RefusalLabels, Counter>,
    /// Shared-limit calls that fell back because Redis did not answer.
    pub redis_fallbacks: Family<LimitLabels, Counter>,
    /// 1 while Redis answers, 0 during an outage or when no Redis is configured.
    pub redis_up: Gauge,
    /// Job runs finished by this instance, by kind and outcome.
    pub job_runs: Family<JobLabels, Counter>,
    /// Jobs waiting (due or not), running (leased) and dead, in the whole queue.
    pub jobs_queued: Gauge,
    pub jobs_running: Gauge,
    pub jobs_dead: Gauge,
    /// Seconds the oldest due job has waited (0 when none waits).
    pub jobs_oldest_queued_age: Gauge<f64, std::sync::atomic::AtomicU64>,
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("polyport");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 14))
        });
        let in_flight = Gauge::default();
        let errors = Family::<CodeLabels, Counter>::default();
        registry.register("requests", "Requests served", requests.clone());
        registry.register("request_duration_seconds", "Request latency", latency.clone());
        registry.register("requests_in_flight", "Requests being served", in_flight.clone());
        registry.register("errors", "Error responses by error code", errors.clone());
        let lagged_clients = Counter::default();
        registry.register("ws_lagged_clients", "WebSocket clients closed for falling behind", lagged_clients.clone());
        let connections_open = Gauge::default();
        registry.register("connections_open", "TCP connections open", connections_open.clone());
        let connections_refused = Family::<RefusalLabels, Counter>::default();
        registry.register(
            "connections_refused",
            "Connections closed at the connection caps, by reason",
            connections_refused.clone(),
        );
        let redis_fallbacks = Family::<LimitLabels, Counter>::default();
        registry.register(
            "redis_fallbacks",
            "Shared-limit calls answered without Redis (per instance or refused), by limit",
            redis_fallbacks.clone(),
        );
        let redis_up = Gauge::default();
        registry.register("redis_up", "1 while Redis answers, 0 during an outage", redis_up.clone());
        let job_runs = Family::<JobLabels, Counter>::default();
        registry.register("job_runs", "Job runs finished by this instance, by kind and outcome", job_runs.clone());
        let jobs_queued = Gauge::default();
        registry.register("jobs_queued", "Jobs waiting in the queue (all instances)", jobs_queued.clone());
        let jobs_running = Gauge::default();
        registry.register("jobs_running", "Jobs leased to a worker (all instances)", jobs_running.clone());
        let jobs_dead = Gauge::default();
        registry.register("jobs_dead", "Jobs that gave up after their attempts (all instances)", jobs_dead.clone());
        let jobs_oldest_queued_age = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "jobs_oldest_queued_age_seconds",
            "How long the oldest due job has waited",
            jobs_oldest_queued_age.clone(),
        );
        Arc::new(Self {
            registry,
            requests,
            latency,
            in_flight,
            errors,
            lagged_clients,
            connections_open,
            connections_refused,
            redis_fallbacks,
            redis_up,
            job_runs,
            jobs_queued,
            jobs_running,
            jobs_dead,
            jobs_oldest_queued_age,
        })
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
