//! The one integration test binary: black-box tests against a real server on port 0.

mod helpers;

mod architecture;
mod audit;
mod auth;
mod authorization;
mod bad_input;
mod cli;
mod cluster;
mod console;
mod failures;
mod graphql;
mod grpc;
mod hostile;
mod hygiene;
mod idempotency;
mod jobs;
mod otlp;
mod pagination;
mod parity;
mod posts;
mod process;
mod proxy;
mod rate_limits;
mod readme;
mod realtime_sse;
mod realtime_sse_tokens;
mod realtime_support;
mod realtime_ws;
mod shared_limits;
mod soap;
mod storage;
mod trace;
mod users;
mod webhooks;
