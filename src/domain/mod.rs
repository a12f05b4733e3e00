//! The core: entities, rules, policy, events and the ports it needs. No framework crates here.

pub mod audit;
pub mod credentials;
pub mod delivery;
pub mod error;
pub mod events;
pub mod page;
pub mod policy;
pub mod ports;
pub mod post;
pub mod service;
pub mod timestamp;
pub mod user;
pub mod webhook;

pub use error::{DomainError, DomainResult, ErrorCode, FieldIssue};
pub use policy::{Actor, Credential, Principal, Scope};
