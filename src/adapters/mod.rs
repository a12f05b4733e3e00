//! Protocol adapters over the one core. Each imports domain + platform, never storage.

pub mod asyncapi;
pub mod console;
pub mod graphql;
pub mod grpc;
pub mod http;
pub mod http_error;
pub mod request;
pub mod rest;
pub mod soap;
pub mod sse;
pub mod ws;

use std::sync::Arc;

use crate::domain::ports::Health;
use crate::domain::service::Core;
use crate::platform::admission::Admission;
use crate::platform::bus::EventBus;
use crate::platform::cursor::CursorCodec;
use crate::platform::idempotency::Idempotency;
use crate::platform::metrics::Metrics;
use crate::platform::operations::Operations;
use crate::platform::shutdown::Shutdown;

/// Request limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub body_bytes: usize,
    pub request_timeout: std::time::Duration,
}

/// Knobs of the long-lived streams (SSE, WebSocket).
#[derive(Debug, Clone, Copy)]
pub struct StreamSettings {
    pub sse_keepalive: std::time::Duration,
    pub revalidate: std::time::Duration,
    pub ws_max_subscriptions: usize,
    pub ws_send_queue: usize,
    pub ws_max_message_bytes: usize,
    pub ws_ping: std::time::Duration,
    /// Lifetime of a stream token; within it, the token opens streams (and reopens them after
    /// a reconnect or a restart) for as long as its session or API key is not revoked.
    pub stream_token_ttl_secs: u64,
}

/// What every adapter shares: the core and the platform services. Cheap to clone.
#[derive(Clone)]
pub struct Shared(Arc<SharedInner>);

impl Shared {
    pub fn new(inner: SharedInner) -> Self {
        Self(Arc::new(inner))
    }
}

impl std::ops::Deref for Shared {
    type Target = SharedInner;

    fn deref(&self) -> &SharedInner {
        &self.0
    }
}

pub struct SharedInner {
    pub core: Core,
    /// Authentication, budgets and stream slots: the first step of every call.
    pub admission: Admission,
    pub cursors: CursorCodec,
    /// The canonical operations: paging, idempotency and the one core call.
    pub ops: Operations,
    pub limits: Limits,
    pub idempotency: Idempotency,
    pub metrics: Arc<Metrics>,
    pub shutdown: Shutdown,
    pub health: Arc<dyn Health>,
    pub cors_origins: Vec<String>,
    pub bus: Arc<EventBus>,
    pub public_views: Arc<crate::platform::views::PublicViews>,
    pub stream_settings: StreamSettings,
    pub graphql: graphql::GraphqlSettings,
    /// Limits shared with the other instances (None: this instance's memory only).
    pub redis: Option<Arc<crate::platform::redis::Redis>>,
}
