//! The core services: each operation validates, authorizes, stores and emits its event.

mod audit;
mod auth;
mod posts;
mod secret;
mod users;
mod webhooks;

use std::sync::Arc;

pub use crate::domain::audit::ClientInfo;
pub use audit::AuditService;
pub use auth::AuthService;
pub use posts::PostService;
pub use secret::{hash_secret, new_id, random_secret};
pub use users::{RoleChange, UserService, UserView};
pub use webhooks::WebhookService;

use super::ports::{
    AuditLog, Clock, CredentialRepo, EventLog, Health, IdempotencyStore, LoginThrottle, PasswordHasher, PostRepo,
    TargetGuard, TokenIssuer, UserRepo, WebhookRepo,
};

/// Everything the services need, provided by the composition root.
pub struct Deps {
    pub users: Arc<dyn UserRepo>,
    pub posts: Arc<dyn PostRepo>,
    pub credentials: Arc<dyn CredentialRepo>,
    pub events: Arc<dyn EventLog>,
    /// The audit log (security events are appended through it; state changes by their writes).
    pub audit: Arc<dyn AuditLog>,
    /// Shared by every protocol adapter through the platform's idempotency service.
    pub idempotency: Arc<dyn IdempotencyStore>,
    pub health: Arc<dyn Health>,
    pub hasher: Arc<dyn PasswordHasher>,
    pub tokens: Arc<dyn TokenIssuer>,
    pub throttle: Arc<dyn LoginThrottle>,
    pub clock: Arc<dyn Clock>,
    /// Lifetime of a refresh token family member.
    pub refresh_ttl: chrono::Duration,
    pub webhooks: Arc<dyn WebhookRepo>,
    /// Where webhooks may send (checked at registration and at every delivery).
    pub targets: Arc<dyn TargetGuard>,
}

/// The one core every adapter calls.
#[derive(Clone)]
pub struct Core {
    pub users: UserService,
    pub posts: PostService,
    pub auth: AuthService,
    pub webhooks: WebhookService,
    pub audit: AuditService,
    pub deps: Arc<Deps>,
}

impl Core {
    pub fn new(deps: Deps) -> Self {
        let deps = Arc::new(deps);
        Self {
            users: UserService::new(deps.clone()),
            posts: PostService::new(deps.clone()),
            auth: AuthService::new(deps.clone()),
            webhooks: WebhookService::new(deps.clone()),
            audit: AuditService::new(deps.clone()),
            deps,
        }
    }
}
