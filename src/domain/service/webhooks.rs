//! Webhooks: register (URL and topics checked, the target's addresses checked, the signing
//! secret shown once), list, delete, and the delivery attempts of one webhook.

use std::sync::Arc;

use super::Deps;
use super::secret::{new_id, random_secret};
use crate::domain::audit::{self, AuditRecord, ClientInfo, action};
use crate::domain::error::{DomainError, DomainResult, FieldIssue};
use crate::domain::page::{Page, PageRequest};
use crate::domain::policy::{self, Actor, Scope};
use crate::domain::ports::Refusal;
use crate::domain::webhook::{CreatedWebhook, MAX_PER_USER, NewWebhook, Webhook, WebhookDelivery};

/// Signing secrets look like `whsec_<43 url-safe chars>`.
const SECRET_PREFIX: &str = "whsec_";

#[derive(Clone)]
pub struct WebhookService {
    deps: Arc<Deps>,
}

impl WebhookService {
    pub(super) fn new(deps: Arc<Deps>) -> Self {
        Self { deps }
    }

    /// Registers a webhook for the caller. Sessions may; API keys need `users:write`. The URL
    /// must pass the syntax rules and every address its host resolves to must be allowed.
    #[tracing::instrument(skip_all)]
    pub async fn create(&self, actor: &Actor, input: NewWebhook, client: &ClientInfo) -> DomainResult<CreatedWebhook> {
        let me = actor.require_user()?;
        actor.require_scope(Scope::UsersWrite)?;
        let (target, topics) = input.validate()?;
        match self.deps.targets.check(&target).await {
            Ok(_) => {}
            Err(Refusal::Issue(issue)) => return Err(DomainError::validation(vec![FieldIssue::new("url", issue)])),
            Err(Refusal::Busy) => {
                let mut e = DomainError::rate_limited(1);
                e.message = "the server is busy resolving webhook hosts; retry shortly".into();
                return Err(e);
            }
        }
        let webhook = Webhook {
            id: new_id(),
            owner_id: me.user_id.clone(),
            url: target.url.to_string(),
            topics,
            created_at: self.deps.clock.now(),
        };
        let secret = format!("{SECRET_PREFIX}{}", random_secret());
        let record = AuditRecord::new(
            client,
            actor,
            action::WEBHOOK_CREATED,
            audit::target("webhook", &webhook.id),
            webhook.created_at,
        );
        self.deps.webhooks.insert(&webhook, &secret, MAX_PER_USER, &record).await?;
        tracing::info!(webhook_id = %webhook.id, "webhook registered");
        Ok(CreatedWebhook { webhook, secret })
    }

    /// The caller's webhooks. Sessions may; API keys need `users:read`.
    pub async fn list(&self, actor: &Actor) -> DomainResult<Vec<Webhook>> {
        let me = actor.require_user()?;
        actor.require_scope(Scope::UsersRead)?;
        self.deps.webhooks.list(&me.user_id).await
    }

    /// Deletes a webhook (its owner or an admin); NOT_FOUND for anyone else.
    pub async fn delete(&self, actor: &Actor, id: &str, client: &ClientInfo) -> DomainResult<()> {
        actor.require_user()?;
        actor.require_scope(Scope::UsersWrite)?;
        self.visible(actor, id).await?;
        let record = AuditRecord::new(
            client,
            actor,
            action::WEBHOOK_DELETED,
            audit::target("webhook", id),
            self.deps.clock.now(),
        );
        if !self.deps.webhooks.delete(id, &record).await? {
            return Err(DomainError::not_found("webhook"));
        }
        Ok(())
    }

    /// A webhook's delivery attempts, newest first (its owner or an admin).
    pub async fn deliveries(&self, actor: &Actor, id: &str, page: &PageRequest) -> DomainResult<Page<WebhookDelivery>> {
        actor.require_user()?;
        actor.require_scope(Scope::UsersRead)?;
        self.visible(actor, id).await?;
        let rows = self.deps.webhooks.deliveries(id, page).await?;
        Ok(Page::from_overfetch(rows, page.limit, |d| d.id.clone()))
    }

    async fn visible(&self, actor: &Actor, id: &str) -> DomainResult<Webhook> {
        match self.deps.webhooks.get(id).await? {
            Some(hook) if policy::can_manage_webhook(actor, &hook.owner_id) => Ok(hook),
            _ => Err(DomainError::not_found("webhook")),
        }
    }
}
