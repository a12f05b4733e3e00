//! The one integration test binary: black-box tests against a real server on port 0.

mod helpers;

mod architecture;
mod auth;
mod authorization;
mod bad_input;
mod cluster;
mod failures;
mod graphql;
mod grpc;
mod hostile;
mod hygiene;
mod idempotency;
mod jobs;
mod pagination;
mod parity;
mod posts;
mod process;
mod proxy;
mod rate_limits;
mod readme;
mod realtime_sse;
mod realtime_support;
mod realtime_ws;
mod shared_limits;
mod soap;
mod storage;
mod users;
mod webhooks;
