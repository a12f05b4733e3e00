//! SOAP operations: request element -> canonical operation -> outcome -> response element.
//! Authorization, validation and events live in the core; paging and idempotency in platform.

use super::envelope::Version;
use super::input::Input;
use super::schema::{OpId, Operation};
use super::writer::{self, XmlOut, response};
use crate::adapters::Shared;
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::post::{NewPost, Post, PostFilter, PostPatch};
use crate::domain::service::UserView;
use crate::domain::user::{RegisterUser, UserPatch};
use crate::platform::admission::Admitted;
use crate::platform::operations::{Listed, Operation as CanonicalOp, Outcome, Paging};

/// One call: who asks, in which SOAP version, for which operation, with which input.
pub struct Call<'a> {
    pub shared: &'a Shared,
    pub caller: &'a Admitted,
    pub version: Version,
    pub op: &'static Operation,
    pub input: Input<'a>,
    pub idempotency_key: Option<String>,
}

/// Runs the operation; the response envelope bytes on success, and whether they replay an
/// earlier call's outcome.
pub async fn dispatch(c: Call<'_>) -> DomainResult<(Vec<u8>, bool)> {
    let operation = operation(c.op.id, &c.input)?;
    let (outcome, replayed) = c.shared.ops.run(c.caller, operation, c.idempotency_key.as_deref()).await?;
    let (version, op) = (c.version, c.op);
    let bytes = match outcome {
        Outcome::Tokens(pair) => response(version, op, |out| {
            out.leaf("accessToken", &pair.access_token).leaf("tokenType", "Bearer");
            out.leaf("expiresIn", &pair.expires_in.to_string()).leaf("refreshToken", &pair.refresh_token);
        }),
        Outcome::User(user) => response(version, op, |out| writer::user(out, "user", &user)),
        Outcome::UserView(view) => response(version, op, |out| writer::user_view(out, "user", &view)),
        Outcome::Users(page) => list(version, op, page, |out, u: &UserView| writer::user_view(out, "user", u)),
        Outcome::Post(post) => response(version, op, |out| writer::post(out, "post", &post)),
        Outcome::Posts(page) => list(version, op, page, |out, p: &Post| writer::post(out, "post", p)),
        Outcome::Done => response(version, op, |_| {}),
        Outcome::AuditEntries(page) => list(version, op, page, |out, e| writer::audit_entry(out, "entry", e)),
        Outcome::ApiKey(_) | Outcome::ApiKeys(_) => {
            return Err(DomainError::internal(anyhow::anyhow!("SOAP has no API key operations")));
        }
        Outcome::Webhook(created) => response(version, op, |out| {
            writer::webhook(out, "webhook", &created.webhook);
            out.leaf("secret", &created.secret);
        }),
        Outcome::Webhooks(hooks) => response(version, op, |out| {
            for hook in &hooks {
                writer::webhook(out, "webhook", hook);
            }
        }),
        Outcome::WebhookDeliveries(page) => {
            list(version, op, page, |out, d: &crate::domain::webhook::WebhookDelivery| {
                writer::webhook_delivery(out, "delivery", d)
            })
        }
    };
    Ok((bytes, replayed))
}

/// The canonical operation of a SOAP operation, from its request element.
fn operation(id: OpId, i: &Input<'_>) -> DomainResult<CanonicalOp> {
    let paging = || Paging { limit: i.int("limit"), cursor: i.opt("cursor") };
    Ok(match id {
        OpId::Login => CanonicalOp::Login { email: i.text("email"), password: i.text("password") },
        OpId::Register => CanonicalOp::Register(RegisterUser {
            email: i.text("email"),
            name: i.text("name"),
            password: i.text("password"),
        }),
        OpId::GetUser => CanonicalOp::GetUser { id: i.id("id")? },
        OpId::ListUsers => CanonicalOp::ListUsers(paging()),
        OpId::UpdateUser => CanonicalOp::UpdateUser {
            id: i.id("id")?,
            patch: UserPatch { email: i.opt("email"), name: i.opt("name"), role: i.opt("role") },
            expected_version: i.int("expectedVersion"),
        },
        OpId::DeleteUser => CanonicalOp::DeleteUser { id: i.id("id")?, expected_version: i.int("expectedVersion") },
        OpId::GetPost => CanonicalOp::GetPost { id: i.id("id")? },
        OpId::ListPosts => CanonicalOp::ListPosts {
            filter: PostFilter::parse(i.opt("authorId"), i.opt("status"), i.opt("tag"))?,
            paging: paging(),
        },
        OpId::CreatePost => CanonicalOp::CreatePost(NewPost {
            title: i.text("title"),
            body: i.text("body"),
            tags: i.tags("tags").unwrap_or_default(),
        }),
        OpId::UpdatePost => CanonicalOp::UpdatePost {
            id: i.id("id")?,
            patch: PostPatch { title: i.opt("title"), body: i.opt("body"), tags: i.tags("tags") },
            expected_version: i.int("expectedVersion"),
        },
        OpId::PublishPost => CanonicalOp::PublishPost { id: i.id("id")?, expected_version: i.int("expectedVersion") },
        OpId::UnpublishPost => {
            CanonicalOp::UnpublishPost { id: i.id("id")?, expected_version: i.int("expectedVersion") }
        }
        OpId::DeletePost => CanonicalOp::DeletePost { id: i.id("id")?, expected_version: i.int("expectedVersion") },
        OpId::CreateWebhook => CanonicalOp::CreateWebhook(crate::domain::webhook::NewWebhook {
            url: i.text("url"),
            topics: i.tags("topics").unwrap_or_default(),
        }),
        OpId::ListWebhooks => CanonicalOp::ListWebhooks,
        OpId::DeleteWebhook => CanonicalOp::DeleteWebhook { id: i.id("id")? },
        OpId::ListWebhookDeliveries => CanonicalOp::ListWebhookDeliveries { id: i.id("id")?, paging: paging() },
        OpId::ListAuditEntries => CanonicalOp::ListAuditEntries {
            filter: crate::domain::audit::AuditQuery {
                actor_id: i.opt("actorId"),
                action: i.opt("action"),
                target: i.opt("target"),
                since: i.opt("since"),
            },
            paging: paging(),
        },
    })
}

/// `<item/>* <nextCursor/>? <hasMore/>` with the opaque cursor of the page.
fn list<T>(version: Version, op: &Operation, page: Listed<T>, item: impl Fn(&mut XmlOut, &T)) -> Vec<u8> {
    let next = page.next_cursor;
    response(version, op, |out| {
        for it in &page.items {
            item(out, it);
        }
        if let Some(cursor) = &next {
            out.leaf("nextCursor", cursor);
        }
        out.leaf("hasMore", if next.is_some() { "true" } else { "false" });
    })
}
