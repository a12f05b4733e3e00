//! Polyport: one domain core served over many protocols. Module map for the binary and tests.

pub mod adapters;
pub mod config;
pub mod domain;
pub mod platform;
pub mod server;
pub mod startup;
pub mod storage;
pub mod telemetry;

pub use config::Settings;
pub use startup::Application;
