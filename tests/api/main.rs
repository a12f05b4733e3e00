//! The one integration test binary: black-box tests against a real server on port 0.

mod helpers;

mod architecture;
mod auth;
mod hygiene;
mod idempotency;
mod pagination;
mod posts;
mod rate_limits;
mod users;
