//! The traits the core needs from the outside world. Each documents its contract.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::audit::{AuditEntry, AuditFilter, AuditRecord};
use super::credentials::{ApiKey, RefreshToken};
use super::error::DomainResult;
use super::events::{NewEvent, StoredEvent};
use super::page::PageRequest;
use super::post::{Post, PostFilter};
use super::user::User;

/// Users. Every write appends its event and its audit record in the same transaction.
#[async_trait]
pub trait UserRepo: Send + Sync {
    /// MUST return CONFLICT with detail `email`/`taken` when the email (case-insensitive) exists.
    async fn insert(&self, user: &User, event: &NewEvent, audit: &AuditRecord) -> DomainResult<()>;
    /// May answer from a cache that trails writes made on other instances by a bounded delay.
    async fn get(&self, id: &str) -> DomainResult<Option<User>>;
    /// The stored row, never a cached copy: what a write decides on (ownership, version).
    async fn get_current(&self, id: &str) -> DomainResult<Option<User>>;
    /// Looks up by the lowercased email.
    async fn get_by_email(&self, email_normalized: &str) -> DomainResult<Option<User>>;
    /// Writes `user` (whose version is already incremented) if the stored version is
    /// `expected_version`. MUST return a version-mismatch CONFLICT otherwise, NOT_FOUND when the
    /// user is gone, and CONFLICT `email`/`taken` on a duplicate email.
    async fn update(
        &self,
        user: &User,
        expected_version: i64,
        event: &NewEvent,
        audit: &AuditRecord,
    ) -> DomainResult<()>;
    /// Writes `user.password_hash` (with its incremented version and `updated_at`) if the stored
    /// version is `expected_version`, revokes every refresh-token family (login session) of the
    /// user and appends `event` and `audit`, in one transaction. Same errors as `update`.
    async fn update_password(
        &self,
        user: &User,
        expected_version: i64,
        event: &NewEvent,
        audit: &AuditRecord,
    ) -> DomainResult<()>;
    /// Deletes the user, their posts (appending a `post.deleted` event for each), API keys and
    /// refresh tokens, then appends `event`. MUST return NOT_FOUND when the user is gone.
    async fn delete(&self, user: &User, event: &NewEvent, audit: &AuditRecord) -> DomainResult<()>;
    /// Newest first (id descending), `limit + 1` rows after `page.after`.
    async fn list(&self, page: &PageRequest) -> DomainResult<Vec<User>>;
    /// Many users at once, in no particular order (for batched author loading).
    async fn get_many(&self, ids: &[String]) -> DomainResult<Vec<User>>;
}

/// What a post list may see: everything, or published posts plus one user's own drafts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostVisibility {
    All,
    PublishedOr { author_id: Option<String> },
}

/// Posts. Every write appends its event and its audit record in the same transaction.
#[async_trait]
pub trait PostRepo: Send + Sync {
    async fn insert(&self, post: &Post, event: &NewEvent, audit: &AuditRecord) -> DomainResult<()>;
    /// Same contract as `UserRepo::get` (may trail other instances by a bounded delay).
    async fn get(&self, id: &str) -> DomainResult<Option<Post>>;
    /// Same contract as `UserRepo::get_current` (the stored row, for writes).
    async fn get_current(&self, id: &str) -> DomainResult<Option<Post>>;
    /// Same contract as `UserRepo::update` (version check, NOT_FOUND).
    async fn update(
        &self,
        post: &Post,
        expected_version: i64,
        event: &NewEvent,
        audit: &AuditRecord,
    ) -> DomainResult<()>;
    /// MUST return NOT_FOUND when the post is gone.
    async fn delete(&self, post: &Post, event: &NewEvent, audit: &AuditRecord) -> DomainResult<()>;
    /// Newest first (id descending), `limit + 1` rows after `page.after`, filtered.
    async fn list(
        &self,
        filter: &PostFilter,
        visibility: &PostVisibility,
        page: &PageRequest,
    ) -> DomainResult<Vec<Post>>;
    /// `list` for many authors in ONE query: for each id in `authors`, its newest `limit + 1`
    /// posts after `page.after` matching `filter` (whose `author_id` is ignored). Rows of one
    /// author are newest first; authors come in no particular order.
    async fn list_by_authors(
        &self,
        authors: &[String],
        filter: &PostFilter,
        visibility: &PostVisibility,
        page: &PageRequest,
    ) -> DomainResult<Vec<Post>>;
}

/// Refresh tokens and API keys.
#[async_trait]
pub trait CredentialRepo: Send + Sync {
    async fn insert_refresh_token(&self, token: &RefreshToken) -> DomainResult<()>;
    async fn find_refresh_token(&self, token_hash: &str) -> DomainResult<Option<RefreshToken>>;
    /// Atomically marks `old_id` used and inserts `next`. MUST return false (and insert nothing)
    /// when `old_id` was already used or revoked, so a token works exactly once.
    async fn rotate_refresh_token(&self, old_id: &str, next: &RefreshToken, now: DateTime<Utc>) -> DomainResult<bool>;
    /// Revokes every token of the family.
    async fn revoke_family(&self, family_id: &str, now: DateTime<Utc>) -> DomainResult<()>;
    /// True when the family (a login session) was revoked. MUST answer true at once for a
    /// revocation made through this repository; MAY take up to a second to see one made by
    /// another instance.
    async fn is_family_revoked(&self, family_id: &str) -> DomainResult<bool>;
    /// Stores the key and appends `audit` in the same transaction.
    async fn insert_api_key(&self, key: &ApiKey, audit: &AuditRecord) -> DomainResult<()>;
    /// Finds a key by the hash of its secret, revoked or not.
    async fn find_api_key(&self, key_hash: &str) -> DomainResult<Option<ApiKey>>;
    /// Finds a key by its id, revoked or not.
    async fn find_api_key_by_id(&self, key_id: &str) -> DomainResult<Option<ApiKey>>;
    /// The user's keys, newest first, revoked ones included.
    async fn list_api_keys(&self, user_id: &str) -> DomainResult<Vec<ApiKey>>;
    /// Revokes the user's key and appends `audit` in the same transaction. MUST return false
    /// (and append nothing) when no such live key belongs to the user.
    async fn revoke_api_key(
        &self,
        user_id: &str,
        key_id: &str,
        now: DateTime<Utc>,
        audit: &AuditRecord,
    ) -> DomainResult<bool>;
}

/// The audit log. Append-only: there is no way to change or remove an entry but the retention
/// purge (the stores refuse UPDATE and DELETE of entries at the SQL level as well).
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Appends an entry on its own (security events; state changes are appended by the write
    /// that makes them).
    async fn append(&self, record: &AuditRecord) -> DomainResult<()>;
    /// Newest first (id descending), `limit + 1` entries after `page.after` (an entry id),
    /// matching `filter`.
    async fn list(&self, filter: &AuditFilter, page: &PageRequest) -> DomainResult<Vec<AuditEntry>>;
    /// Removes entries older than `before` (retention); how many went.
    async fn purge_before(&self, before: DateTime<Utc>) -> DomainResult<u64>;
}

/// Read side of the durable event log (writes happen with each change).
#[async_trait]
pub trait EventLog: Send + Sync {
    /// Events with id > `after`, ascending, at most `limit`.
    async fn read_after(&self, after: i64, limit: u32) -> DomainResult<Vec<StoredEvent>>;
    /// The highest event id, 0 when empty.
    async fn last_id(&self) -> DomainResult<i64>;
    /// Deletes events older than `before` and raises `purged_through`; returns how many went.
    async fn purge_before(&self, before: DateTime<Utc>) -> DomainResult<u64>;
    /// The highest event id ever removed by retention (0 when none): resuming after an id
    /// below it would skip events.
    async fn purged_through(&self) -> DomainResult<i64>;
}

/// An outcome kept for idempotent replay: protocol-neutral bytes (the platform's encoding of
/// the core's result or error), never a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedOutcome {
    pub body: Vec<u8>,
}

/// What claiming an idempotency key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// The key is ours now; run the request, then `complete` or `release`.
    Claimed,
    /// Same key, same request, finished before: replay this.
    Replay(SavedOutcome),
    /// Same key, different request.
    Mismatch,
    /// Same key, still running elsewhere.
    InProgress,
}

/// Keys scoped by caller; kept at least 24 hours.
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Atomically claims `(scope, key)`. A claim older than `stale_after` without a response is
    /// taken over (its request died). MUST return InProgress for a live claim of the same request.
    async fn claim(
        &self,
        scope: &str,
        key: &str,
        fingerprint: &str,
        now: DateTime<Utc>,
        stale_after: DateTime<Utc>,
    ) -> DomainResult<IdempotencyClaim>;
    async fn complete(&self, scope: &str, key: &str, outcome: &SavedOutcome, now: DateTime<Utc>) -> DomainResult<()>;
    /// Forgets a claim whose request failed in a way worth retrying.
    async fn release(&self, scope: &str, key: &str) -> DomainResult<()>;
    async fn purge_before(&self, before: DateTime<Utc>) -> DomainResult<u64>;
}

/// Liveness of the store, for readiness checks.
#[async_trait]
pub trait Health: Send + Sync {
    async fn ping(&self) -> DomainResult<()>;
}

/// Password hashing (slow and memory-hungry by design; implementations run it off the async
/// threads, a bounded number at a time).
#[async_trait]
pub trait PasswordHasher: Send + Sync {
    /// MUST return RATE_LIMITED (with `retry_after`) when too many hashes already wait.
    async fn hash(&self, password: &str) -> DomainResult<String>;
    /// True when `password` matches `hash`; false for any malformed hash. MUST return
    /// RATE_LIMITED (with `retry_after`) when too many hashes already wait.
    async fn verify(&self, password: &str, hash: &str) -> DomainResult<bool>;
}

/// Issues access tokens for a user within a login session.
pub trait TokenIssuer: Send + Sync {
    /// Returns the signed token and its lifetime in seconds.
    fn issue_access(&self, user: &User, session_id: &str) -> DomainResult<(String, u64)>;
}

/// Throttles failed logins per email and per client address. An attempt is counted as a
/// failure BEFORE the password is checked, so concurrent guesses cannot overtake the budget.
#[async_trait]
pub trait LoginThrottle: Send + Sync {
    /// Atomically checks both budgets and, when both have room, records the attempt as a
    /// failure. Err(seconds to wait) while either key is over its failure budget.
    async fn reserve(&self, email_key: &str, client: Option<&str>) -> Result<(), u64>;
    /// The reserved attempt succeeded: the email's failures are forgotten and the address gets
    /// its reservation back.
    async fn succeeded(&self, email_key: &str, client: Option<&str>);
    /// The reserved attempt was never checked (the server was too busy): both keys get it back.
    async fn release(&self, email_key: &str, client: Option<&str>);
}

/// The time source, replaceable in tests.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

pub struct SystemClock;

impl Clock for SystemClock {
    /// Truncated to microseconds, the precision every store keeps.
    fn now(&self) -> DateTime<Utc> {
        use chrono::SubsecRound;
        Utc::now().trunc_subsecs(6)
    }
}

/// A job to put on the durable queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    /// Which handler runs it (`webhook.fanout`, `webhook.deliver`).
    pub kind: String,
    /// The handler's input (JSON).
    pub payload: String,
    /// Enqueueing a second job with the same key does nothing (idempotent enqueue).
    pub dedupe_key: Option<String>,
    /// The W3C trace id (32 hex) of the request that caused it, when known.
    pub trace_id: Option<String>,
    pub run_at: DateTime<Utc>,
}

/// A job leased to one worker until its lease expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedJob {
    pub id: String,
    pub kind: String,
    pub payload: String,
    pub trace_id: Option<String>,
    /// Counting this one (a claim counts as an attempt, so a job that kills its worker ends).
    pub attempts: i64,
    /// The lease token: every later change of the job must present it.
    pub lease: String,
    pub created_at: DateTime<Utc>,
}

/// How many jobs are in each live state, and the oldest queued one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobCounts {
    pub queued: i64,
    pub running: i64,
    pub dead: i64,
    /// `run_at` of the oldest job that is due and waiting.
    pub oldest_due: Option<DateTime<Utc>>,
}

/// The durable job queue. Every method that changes a claimed job takes its lease token and
/// MUST change nothing (answering false) when the lease was lost (expired and taken over).
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Inserts the jobs, skipping any whose dedupe key exists; how many were inserted.
    async fn enqueue(&self, jobs: &[NewJob]) -> DomainResult<u64>;
    /// Leases up to `limit` due jobs (queued with `run_at <= now`, or running with an expired
    /// lease) to `lease` until `until`, counting an attempt each. Two claimers MUST never get
    /// the same job while its lease runs.
    async fn claim(
        &self,
        lease: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u32,
    ) -> DomainResult<Vec<ClaimedJob>>;
    /// Marks the job succeeded.
    async fn succeed(&self, id: &str, lease: &str, now: DateTime<Utc>) -> DomainResult<bool>;
    /// Puts the job back for another attempt at `run_at`.
    async fn retry(
        &self,
        id: &str,
        lease: &str,
        run_at: DateTime<Utc>,
        error: &str,
        now: DateTime<Utc>,
    ) -> DomainResult<bool>;
    /// Gives up on the job (dead).
    async fn bury(&self, id: &str, lease: &str, error: &str, now: DateTime<Utc>) -> DomainResult<bool>;
    /// Hands a job back untried (shutdown): queued again, due now, the attempt not counted.
    async fn release(&self, id: &str, lease: &str, now: DateTime<Utc>) -> DomainResult<bool>;
    async fn counts(&self, now: DateTime<Utc>) -> DomainResult<JobCounts>;
    /// Deletes succeeded jobs last changed before `before`; how many went.
    async fn purge_succeeded_before(&self, before: DateTime<Utc>) -> DomainResult<u64>;
}

/// Webhooks and their delivery records.
#[async_trait]
pub trait WebhookRepo: Send + Sync {
    /// Stores the webhook with its secret and appends `audit` in the same transaction. MUST
    /// return CONFLICT (`webhooks`/`limit_reached`) when the owner already has `cap` webhooks,
    /// checked atomically with the insert.
    async fn insert(
        &self,
        hook: &super::webhook::Webhook,
        secret: &str,
        cap: usize,
        audit: &super::audit::AuditRecord,
    ) -> DomainResult<()>;
    async fn get(&self, id: &str) -> DomainResult<Option<super::webhook::Webhook>>;
    /// The owner's webhooks, oldest first.
    async fn list(&self, owner_id: &str) -> DomainResult<Vec<super::webhook::Webhook>>;
    /// Deletes the webhook and appends `audit` in the same transaction. MUST return false (and
    /// append nothing) when no such webhook exists.
    async fn delete(&self, id: &str, audit: &super::audit::AuditRecord) -> DomainResult<bool>;
    /// Webhooks listening to any of `topics`.
    async fn listening(&self, topics: &[String]) -> DomainResult<Vec<super::webhook::Webhook>>;
    /// The signing secret (for the delivery job only; never returned to a client).
    async fn secret(&self, id: &str) -> DomainResult<Option<String>>;
    async fn record_delivery(&self, delivery: &super::webhook::WebhookDelivery) -> DomainResult<()>;
    /// Newest first (id descending), `limit + 1` rows after `page.after`.
    async fn deliveries(
        &self,
        webhook_id: &str,
        page: &PageRequest,
    ) -> DomainResult<Vec<super::webhook::WebhookDelivery>>;
}

/// Where a webhook may send: resolves a host and refuses loopback, private, link-local,
/// metadata and other non-public addresses (unless configured to allow them).
#[async_trait]
pub trait TargetGuard: Send + Sync {
    /// The addresses the target may be reached at, all checked; refused with an issue when the
    /// host does not resolve (`unresolvable`) or any address is refused (`address_not_allowed`),
    /// or `Busy` when no lookup could start in time (the target's fault or not: try later).
    async fn check(&self, target: &super::webhook::Target) -> Result<Vec<std::net::SocketAddr>, Refusal>;
}

/// Why `TargetGuard::check` refused a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// What is wrong with the target (a `FieldIssue` of its `url`).
    Issue(&'static str),
    /// Too many lookups already running.
    Busy,
}
