//! Protocol-neutral cross-cutting machinery shared by every adapter.

pub mod admission;
pub mod authn;
pub mod bus;
pub mod caps;
pub mod cursor;
pub mod feeds;
pub mod housekeeping;
pub mod idempotency;
pub mod metrics;
pub mod nonces;
pub mod operations;
pub mod passwords;
pub mod queue;
pub mod ratelimit;
pub mod redis;
pub mod request_id;
pub mod shutdown;
pub mod targets;
pub mod throttle;
pub mod tokens;
pub mod trace;
pub mod views;
pub mod webhooks;
