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

/// Every metric the server exports.
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<RouteLabels, Histogram>,
    pub in_flight: Gauge,
    pub errors: Family<CodeLabels, Counter>,
    /// WebSocket clients closed with 1013 for not reading their events.
    pub lagged_clients: Counter,
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
        Arc::new(Self { registry, requests, latency, in_flight, errors, lagged_clients })
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
