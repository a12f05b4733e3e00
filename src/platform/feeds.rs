//! The realtime session core every long-lived connection with named subscriptions uses (`/ws`,
//! gRPC `Live`): subscribe (name rules, the per-session cap, topics, resume from the log),
//! unsubscribe, one merged stream of every feed's events, what each subscriber may see at
//! delivery time, and reopening every feed for a caller who just signed in. Adapters keep
//! only framing and close codes.

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt;
use futures::stream::{AbortHandle, Abortable, BoxStream, SelectAll};

use super::bus::EventBus;
use crate::domain::delivery::{Delivery, Topic, deliver};
use crate::domain::error::{DomainError, DomainResult, FieldIssue};
use crate::domain::events::StoredEvent;
use crate::domain::policy::Actor;

/// Events of one subscription, tagged with its name (shared, not copied, per event).
type Feed = BoxStream<'static, (Arc<str>, DomainResult<Arc<StoredEvent>>)>;

struct Sub {
    topics: Vec<Topic>,
    abort: AbortHandle,
    /// Where it started: the resume point told when nothing was delivered yet.
    started: i64,
    /// The id of the last event its feed yielded (or where it started): where it resumes when
    /// its feed is reopened.
    seen: i64,
}

/// The subscriptions of one session.
pub struct Feeds {
    bus: Arc<EventBus>,
    max: usize,
    /// The client's name for a subscription's name, in details (`id` on /ws, `subscription`
    /// on gRPC).
    name_field: &'static str,
    subs: HashMap<Arc<str>, Sub>,
    streams: SelectAll<Feed>,
}

impl Feeds {
    pub fn new(bus: Arc<EventBus>, max: usize, name_field: &'static str) -> Self {
        Self { bus, max, name_field, subs: HashMap::new(), streams: SelectAll::new() }
    }

    /// Opens subscription `name` to `topics` for `actor`, replaying from just after `after`
    /// (live only when None). Names are 1 to 64 characters and unique in the session; at most
    /// `max` subscriptions.
    pub async fn subscribe(
        &mut self,
        actor: &Actor,
        name: &str,
        topics: &[String],
        after: Option<i64>,
    ) -> DomainResult<()> {
        if name.is_empty() || name.len() > 64 {
            return Err(DomainError::invalid("subscription names are 1 to 64 characters")
                .with_detail(self.name_field, "invalid"));
        }
        if self.subs.contains_key(name) {
            return Err(DomainError::conflict("this subscription name is in use").with_detail(self.name_field, "taken"));
        }
        if self.subs.len() >= self.max {
            let mut e = DomainError::rate_limited(1);
            e.message = format!("at most {} subscriptions per connection", self.max);
            return Err(e);
        }
        let topics = Topic::parse_all(topics)?;
        let name: Arc<str> = name.into();
        let (abort, seen) = self.open(actor, &name, after).await?;
        let started = after.unwrap_or(seen);
        self.subs.insert(name, Sub { topics, abort, started, seen });
        Ok(())
    }

    /// Opens the bus feed of `name`; its abort handle and its starting point.
    async fn open(&mut self, actor: &Actor, name: &Arc<str>, after: Option<i64>) -> DomainResult<(AbortHandle, i64)> {
        let subscription = self.bus.subscribe(actor, after).await?;
        let seen = subscription.cursor();
        let (abort, registration) = AbortHandle::new_pair();
        let label = name.clone();
        let feed = futures::stream::unfold(subscription, |mut s| async move { Some((s.next().await, s)) })
            .map(move |e| (label.clone(), e));
        self.streams.push(Abortable::new(feed, registration).boxed());
        Ok((abort, seen))
    }

    /// Ends subscription `name`; NOT_FOUND when there is none.
    pub fn unsubscribe(&mut self, name: &str) -> DomainResult<()> {
        match self.subs.remove(name) {
            Some(sub) => {
                sub.abort.abort();
                Ok(())
            }
            None => Err(DomainError::not_found("subscription").with_detail(self.name_field, "unknown")),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.subs.is_empty()
    }

    pub fn len(&self) -> usize {
        self.subs.len()
    }

    /// The next event of any subscription. A feed that failed is closed and its error
    /// returned once. Pending forever when there is no subscription.
    pub async fn next(&mut self) -> (Arc<str>, DomainResult<Arc<StoredEvent>>) {
        loop {
            if self.streams.is_empty() {
                std::future::pending::<()>().await;
            }
            let Some((name, event)) = self.streams.next().await else { continue };
            let Some(sub) = self.subs.get_mut(&*name) else { continue };
            match &event {
                Ok(e) => sub.seen = e.id,
                Err(_) => {
                    self.subs.remove(&*name).inspect(|s| s.abort.abort());
                }
            }
            return (name, event);
        }
    }

    /// Whether subscription `name` listens to `event`'s topic.
    pub fn listens(&self, name: &str, event: &StoredEvent) -> bool {
        self.subs.get(name).is_some_and(|s| crate::domain::delivery::listens(&s.topics, event))
    }

    /// What `actor` may see of `event` on subscription `name`, checked now; None when nothing.
    pub fn delivery(&self, actor: &Actor, name: &str, event: &StoredEvent) -> Option<Delivery> {
        deliver(actor, &self.subs.get(name)?.topics, event)
    }

    /// Each subscription and where it started (the resume points of a lag notice before
    /// anything was delivered).
    pub fn starting_points(&self) -> HashMap<String, i64> {
        self.subs.iter().map(|(name, sub)| (name.to_string(), sub.started)).collect()
    }

    /// The session's caller just signed in: feeds opened anonymously follow public events only,
    /// so each is reopened from the last event it yielded, for everything `actor` may see.
    /// Answers the subscriptions that could not be reopened (and are gone), with why.
    pub async fn widen(&mut self, actor: &Actor) -> Vec<(String, DomainError)> {
        let names: Vec<(Arc<str>, i64)> = self.subs.iter().map(|(name, sub)| (name.clone(), sub.seen)).collect();
        let mut failed = Vec::new();
        for (name, seen) in names {
            if let Some(old) = self.subs.get(&name) {
                old.abort.abort();
            }
            match self.open(actor, &name, Some(seen)).await {
                Ok((abort, _)) => {
                    if let Some(sub) = self.subs.get_mut(&name) {
                        sub.abort = abort;
                    }
                }
                Err(e) => {
                    self.subs.remove(&name);
                    failed.push((name.to_string(), e));
                }
            }
        }
        failed
    }

    /// Ends every feed (the connection is closing).
    pub fn close_all(&mut self) {
        for sub in self.subs.values() {
            sub.abort.abort();
        }
    }
}

impl Drop for Feeds {
    fn drop(&mut self) {
        self.close_all();
    }
}

/// The error a lagging client is told: per subscription, the last event actually handed to the
/// socket (`written`), or where it started; and the earliest of those, where to resume.
pub fn lag_notice(started: &HashMap<String, i64>, written: &HashMap<Arc<str>, i64>) -> (DomainError, i64) {
    let sent = |name: &String| written.get(name.as_str()).copied().unwrap_or_else(|| started[name]);
    let mut e = DomainError::unavailable("you fell behind; reconnect and resubscribe with `after`");
    e.details = started
        .keys()
        .map(|name| FieldIssue::new(format!("subscription:{name}"), format!("lagged_after:{}", sent(name))))
        .collect();
    let resume = started.keys().map(sent).min().unwrap_or(0);
    (e, resume)
}
