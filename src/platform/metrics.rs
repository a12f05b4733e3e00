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
    pub method: String,
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub protocol: &'static str,
    pub route: String,
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
        Arc::new(Self {
            registry,
            requests,
            latency,
            in_flight,
            errors,
            lagged_clients,
            connections_open,
            connections_refused,
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
