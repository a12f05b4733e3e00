//! The audit trail's records: who (user, API key) did what (action) to which object (target)
//! through which protocol and request, in which trace, from where, and how it ended. State
//! changes are recorded by the write that makes them; security events on their own.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::error::{DomainError, DomainResult};
use super::policy::{Actor, Credential};

/// Where a request came from: its protocol, request id, trace id and client address, as the
/// platform found them (adapters decide none of it).
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub ip: Option<String>,
    /// `rest`, `graphql`, `grpc`, `soap`, `websocket`, `sse`; `internal` outside a request
    /// (tooling, tests), `cli` for the command line.
    pub protocol: String,
    pub request_id: String,
    pub trace_id: Option<String>,
}

/// How an audited action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditOutcome {
    Success,
    /// Refused for bad credentials (a failed login, a reused refresh token).
    Failure,
    /// Refused by a rule (a login throttle lockout).
    Denied,
}

impl AuditOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Denied => "denied",
        }
    }

    pub fn parse(s: &str) -> DomainResult<Self> {
        match s {
            "success" => Ok(Self::Success),
            "failure" => Ok(Self::Failure),
            "denied" => Ok(Self::Denied),
            other => Err(DomainError::internal(anyhow::anyhow!("stored audit outcome {other:?}"))),
        }
    }
}

/// An entry about to be appended. Holds no secret: ids, names of actions and targets only.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    pub at: DateTime<Utc>,
    pub actor_id: Option<String>,
    pub actor_key_id: Option<String>,
    pub protocol: String,
    pub request_id: String,
    pub trace_id: Option<String>,
    pub action: &'static str,
    pub target: Option<String>,
    pub outcome: AuditOutcome,
    pub client_ip: Option<String>,
}

impl AuditRecord {
    /// `action` on `target` by `actor`, from `client`, at `at`, successful.
    pub fn new(
        client: &ClientInfo,
        actor: &Actor,
        action: &'static str,
        target: Option<String>,
        at: DateTime<Utc>,
    ) -> Self {
        let (actor_id, actor_key_id) = match actor.principal() {
            Some(p) => (
                Some(p.user_id.clone()),
                match &p.credential {
                    Credential::ApiKey { key_id, .. } => Some(key_id.clone()),
                    Credential::AccessToken { .. } => None,
                },
            ),
            None => (None, None),
        };
        Self {
            at,
            actor_id,
            actor_key_id,
            protocol: if client.protocol.is_empty() { "internal".into() } else { client.protocol.clone() },
            request_id: client.request_id.clone(),
            trace_id: client.trace_id.clone(),
            action,
            target,
            outcome: AuditOutcome::Success,
            client_ip: client.ip.clone(),
        }
    }

    /// The same record naming `user_id` as its actor (a login acts as the user it signs in).
    pub fn by_user(mut self, user_id: &str) -> Self {
        self.actor_id = Some(user_id.to_string());
        self
    }

    pub fn with_outcome(mut self, outcome: AuditOutcome) -> Self {
        self.outcome = outcome;
        self
    }
}

/// An entry as stored, with its increasing id.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor_id: Option<String>,
    pub actor_key_id: Option<String>,
    pub protocol: String,
    pub request_id: String,
    pub trace_id: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub outcome: AuditOutcome,
    pub client_ip: Option<String>,
}

/// What an audit log read narrows to (all given conditions hold).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditFilter {
    pub actor_id: Option<String>,
    pub action: Option<String>,
    pub target: Option<String>,
    /// Entries at or after this time.
    pub since: Option<DateTime<Utc>>,
}

/// The actions recorded (the `action` of an entry).
pub mod action {
    pub const USER_REGISTERED: &str = "user.registered";
    pub const USER_CREATED: &str = "user.created";
    pub const USER_UPDATED: &str = "user.updated";
    pub const USER_ROLE_CHANGED: &str = "user.role_changed";
    pub const USER_DELETED: &str = "user.deleted";
    pub const USER_PASSWORD_RESET: &str = "user.password_reset";
    pub const POST_CREATED: &str = "post.created";
    pub const POST_UPDATED: &str = "post.updated";
    pub const POST_PUBLISHED: &str = "post.published";
    pub const POST_UNPUBLISHED: &str = "post.unpublished";
    pub const POST_DELETED: &str = "post.deleted";
    pub const API_KEY_CREATED: &str = "api_key.created";
    pub const API_KEY_REVOKED: &str = "api_key.revoked";
    pub const WEBHOOK_CREATED: &str = "webhook.created";
    pub const WEBHOOK_DELETED: &str = "webhook.deleted";
    pub const LOGIN: &str = "auth.login";
    pub const LOGIN_LOCKED_OUT: &str = "auth.login_locked_out";
    pub const REFRESH_REUSED: &str = "auth.refresh_reused";
    pub const SESSION_REVOKED: &str = "auth.session_revoked";
    pub const LOGOUT: &str = "auth.logout";
}

/// Targets name the object: `user:<id>`, `post:<id>`, `api_key:<id>`, `webhook:<id>`,
/// `session:<id>`, `email:<address>` (a login attempt for an address that may not exist).
pub fn target(kind: &str, id: &str) -> Option<String> {
    Some(format!("{kind}:{id}"))
}

/// An audit log filter as a client sent it (every protocol's fields, unparsed).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditQuery {
    pub actor_id: Option<String>,
    pub action: Option<String>,
    pub target: Option<String>,
    /// RFC 3339 (`2026-12-03T07:00:00Z`).
    pub since: Option<String>,
}

impl AuditQuery {
    /// The filter, or VALIDATION_FAILED naming each bad field (`since` not RFC 3339, a value
    /// over 256 characters). Empty values mean no condition.
    pub fn validate(self) -> DomainResult<AuditFilter> {
        let mut issues = super::error::Issues::default();
        let mut text = |field: &str, v: Option<String>| {
            let v = v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
            if v.as_ref().is_some_and(|s| s.chars().count() > 256 || s.contains('\0')) {
                issues.add(field, "invalid");
                return None;
            }
            v
        };
        let actor_id = text("actor_id", self.actor_id);
        let action = text("action", self.action);
        let target = text("target", self.target);
        let since = match self.since.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => match DateTime::parse_from_rfc3339(s) {
                Ok(t) => Some(t.with_timezone(&Utc)),
                Err(_) => {
                    issues.add("since", "invalid_timestamp");
                    None
                }
            },
        };
        issues.finish()?;
        Ok(AuditFilter { actor_id, action, target, since })
    }
}
