//! The one admission step every adapter calls with what it read from the wire (credentials,
//! the peer address, the cost of what it is about to run): the caller as the records say now,
//! the shared budget charged BEFORE any refusal (bad credentials are charged to the address),
//! and stream slots, all keyed the same way on every protocol.

use std::sync::Arc;

use super::authn::{Authenticated, Authenticator};
use super::caps::{Caps, Slot};
use super::ratelimit::{Decision, RateLimiter};
use super::tokens::TokenType;
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::policy::Actor;

/// Credentials as the adapter found them; at most one may be present.
#[derive(Debug, Clone, Copy, Default)]
pub struct Presented<'a> {
    /// The raw `Authorization` value (`Bearer …`).
    pub authorization: Option<&'a str>,
    /// The raw `x-api-key` value.
    pub api_key: Option<&'a str>,
    /// A stream token (`?access_token=` on SSE).
    pub stream_token: Option<&'a str>,
}

impl Presented<'_> {
    pub fn any(&self) -> bool {
        self.authorization.is_some() || self.api_key.is_some() || self.stream_token.is_some()
    }
}

/// An admitted caller: who it is, where it called from and the budget it draws on.
#[derive(Debug, Clone)]
pub struct Admitted {
    pub auth: Authenticated,
    pub peer: String,
    /// `user:<id>` for users and their API keys, `ip:<address>` for anonymous callers.
    pub budget: String,
}

impl Admitted {
    pub fn actor(&self) -> &Actor {
        &self.auth.actor
    }

    /// Where idempotency keys live: the principal's owner, or an anonymous caller's address.
    pub fn idempotency_scope(&self) -> String {
        match self.auth.actor.user_id() {
            Some(id) => format!("user:{id}"),
            None => format!("anon:{}", self.peer),
        }
    }
}

/// The outcome of admission and the budget after it (adapters show it as rate-limit headers,
/// refusals included).
#[derive(Debug)]
pub struct Verdict {
    pub admitted: Result<Admitted, DomainError>,
    pub decision: Decision,
}

/// Budgets per minute.
#[derive(Debug, Clone, Copy)]
pub struct Budgets {
    pub per_principal: u64,
    pub per_anonymous: u64,
}

pub struct Admission {
    pub authn: Authenticator,
    limiter: Arc<RateLimiter>,
    budgets: Budgets,
    streams: Arc<Caps>,
}

/// The budget a caller draws from: its user (API keys included), or its address.
pub fn budget_key(actor: &Actor, peer: &str) -> String {
    match actor.user_id() {
        Some(id) => format!("user:{id}"),
        None => format!("ip:{peer}"),
    }
}

impl Admission {
    pub fn new(authn: Authenticator, limiter: Arc<RateLimiter>, budgets: Budgets, streams: Arc<Caps>) -> Self {
        Self { authn, limiter, budgets, streams }
    }

    /// Authenticates, then charges `cost` units: the one entry of every call on every protocol.
    pub async fn admit(&self, presented: Presented<'_>, peer: &str, cost: u64) -> Verdict {
        let auth = self.authenticate(presented).await;
        self.admit_with(auth, peer, cost).await
    }

    /// The caller the credentials name, as the records say now.
    pub async fn authenticate(&self, presented: Presented<'_>) -> DomainResult<Authenticated> {
        match presented.stream_token {
            Some(_) if presented.authorization.is_some() || presented.api_key.is_some() => {
                Err(DomainError::invalid("send credentials in a header or as access_token, not both"))
            }
            Some(token) => self.authn.token(token, TokenType::Stream).await,
            None => self.authn.authenticate(presented.authorization, presented.api_key).await,
        }
    }

    /// Charges `cost` to whoever `auth` names (the address when it failed), then admits or
    /// refuses: RATE_LIMITED over budget, else the authentication error, if any.
    pub async fn admit_with(&self, auth: DomainResult<Authenticated>, peer: &str, cost: u64) -> Verdict {
        let actor = auth.as_ref().map_or(&Actor::Anonymous, |a| &a.actor);
        let budget = budget_key(actor, peer);
        let decision = self.spend(&budget, actor.principal().is_some(), cost).await;
        let admitted = if decision.allowed {
            auth.map(|auth| Admitted { auth, peer: peer.to_string(), budget })
        } else {
            Err(DomainError::rate_limited(decision.reset_secs))
        };
        Verdict { admitted, decision }
    }

    /// Charges one more operation of an admitted caller (a GraphQL root field, a frame on a
    /// WebSocket, a message of a client stream).
    pub async fn charge(&self, admitted: &Admitted, cost: u64) -> DomainResult<Decision> {
        let decision = self.spend(&admitted.budget, admitted.auth.actor.principal().is_some(), cost).await;
        if decision.allowed { Ok(decision) } else { Err(DomainError::rate_limited(decision.reset_secs)) }
    }

    async fn spend(&self, budget: &str, principal: bool, cost: u64) -> Decision {
        let limit = if principal { self.budgets.per_principal } else { self.budgets.per_anonymous };
        self.limiter.charge(budget, limit, cost).await
    }

    /// A stream slot under the caller's own cap (its budget key) and the total.
    pub async fn stream_slot(&self, admitted: &Admitted) -> DomainResult<Slot> {
        self.streams.acquire_stream(&admitted.budget).await
    }

    /// The caller of a long-lived connection as it is now (its role may have changed): None
    /// once its credential was revoked or its user deleted.
    pub async fn revalidate(&self, admitted: &Admitted) -> DomainResult<Option<Admitted>> {
        Ok(self.authn.revalidate(&admitted.auth).await?.map(|auth| Admitted { auth, ..admitted.clone() }))
    }

    /// The same connection signed in (a WebSocket `auth` frame): a new budget and stream slot.
    pub fn signed_in(&self, admitted: &Admitted, auth: Authenticated) -> Admitted {
        let budget = budget_key(&auth.actor, &admitted.peer);
        Admitted { auth, peer: admitted.peer.clone(), budget }
    }
}
