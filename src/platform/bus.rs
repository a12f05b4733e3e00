//! The event bus: delivers the durable event log to live subscribers, in id order, resumable.
//!
//! One tailer per process reads the log after the last id it published and broadcasts what it
//! finds. It is woken by the store right after a commit and also polls on a short interval, so
//! several instances sharing one PostgreSQL log each see every event (the wake-up only cuts
//! latency). A subscription replays the log from its resume point, then follows the broadcast,
//! skipping ids it already delivered, so the seam has no gap and no duplicate. A subscription
//! that falls behind the broadcast goes back to reading the log: it never loses an event.
//! Anonymous subscribers follow a second broadcast that carries only events anonymous callers
//! may see, so a draft being edited never wakes every browser on the site.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, broadcast};

use crate::domain::delivery::is_public;
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::events::StoredEvent;
use crate::domain::policy::Actor;
use crate::domain::ports::EventLog;
use crate::platform::shutdown::Shutdown;

const BATCH: u32 = 500;

pub struct EventBus {
    log: Arc<dyn EventLog>,
    wake: Arc<Notify>,
    poll_every: Duration,
    /// Every event, for subscribers with credentials.
    everyone: broadcast::Sender<Arc<StoredEvent>>,
    /// Only events anonymous callers may see (`delivery::is_public`).
    public: broadcast::Sender<Arc<StoredEvent>>,
    published: AtomicI64,
    published_changed: Notify,
    observers: std::sync::RwLock<Vec<Observer>>,
}

/// Called with every event the tailer reads, before subscribers see it (cache upkeep).
type Observer = Box<dyn Fn(&StoredEvent) + Send + Sync>;

impl EventBus {
    /// `capacity` is how far a live subscriber may fall behind before it re-reads the log.
    pub fn new(log: Arc<dyn EventLog>, wake: Arc<Notify>, poll_every: Duration, capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            log,
            wake,
            poll_every,
            everyone: broadcast::channel(capacity).0,
            public: broadcast::channel(capacity).0,
            published: AtomicI64::new(-1),
            published_changed: Notify::new(),
            observers: Default::default(),
        })
    }

    /// Registers a function that sees every event as it is read from the log.
    pub fn observe(&self, f: impl Fn(&StoredEvent) + Send + Sync + 'static) {
        self.observers.write().unwrap_or_else(|e| e.into_inner()).push(Box::new(f));
    }

    /// Tails the log until shutdown. Starts after the newest event: history is served by replay.
    pub async fn run(self: Arc<Self>, shutdown: Shutdown) {
        let mut last = loop {
            match self.log.last_id().await {
                Ok(id) => break id,
                Err(e) => {
                    tracing::warn!(error = %e, "event bus cannot read the log yet");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        () = shutdown.wait() => return,
                    }
                }
            }
        };
        self.set_published(last);
        loop {
            match self.log.read_after(last, BATCH).await {
                Ok(batch) => {
                    let observers = self.observers.read().unwrap_or_else(|e| e.into_inner());
                    for event in &batch {
                        last = event.id;
                        for observe in observers.iter() {
                            observe(event);
                        }
                        let shared = Arc::new(event.clone());
                        if is_public(event) {
                            let _ = self.public.send(shared.clone());
                        }
                        let _ = self.everyone.send(shared);
                    }
                    drop(observers);
                    self.set_published(last);
                    if batch.len() == BATCH as usize {
                        continue;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "event bus read failed; retrying"),
            }
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(self.poll_every) => {}
                () = shutdown.wait() => return,
            }
        }
    }

    fn set_published(&self, id: i64) {
        self.published.store(id, Ordering::Release);
        self.published_changed.notify_waiters();
    }

    /// The id of the newest event handed to live subscribers (-1 before the tailer started).
    pub fn published(&self) -> i64 {
        self.published.load(Ordering::Acquire)
    }

    /// Waits until the tailer has started.
    async fn ready(&self) -> i64 {
        loop {
            let notified = self.published_changed.notified();
            let id = self.published();
            if id >= 0 {
                return id;
            }
            notified.await;
        }
    }

    /// A subscription for `actor` from just after `after` (replayed from the log), or from now
    /// when None. Anonymous subscribers are only woken by public events; everything they are
    /// handed still goes through delivery-time authorization. Resuming from before the
    /// retention horizon (`after`/`expired`) or beyond the head of the log (`after`/`unknown`)
    /// is refused with INVALID_REQUEST.
    pub async fn subscribe(self: &Arc<Self>, actor: &Actor, after: Option<i64>) -> DomainResult<Subscription> {
        let rx = if *actor == Actor::Anonymous { self.public.subscribe() } else { self.everyone.subscribe() };
        let now = self.ready().await;
        let cursor = match after {
            // Everything committed before this moment is history, even if not yet tailed.
            None => now.max(self.log.last_id().await?),
            Some(after) => {
                if after < 0 {
                    return Err(DomainError::invalid("`after` must be an event id").with_detail("after", "invalid"));
                }
                let purged = self.log.purged_through().await?;
                if after < purged {
                    return Err(expired());
                }
                // A resume point beyond the head of the log was never handed out: the stream
                // would wait for ids that may never exist. (Retention may have emptied the log:
                // the head is then the last id it purged.)
                if after > now && after > purged && after > self.log.last_id().await? {
                    return Err(unknown());
                }
                after
            }
        };
        Ok(Subscription { bus: self.clone(), rx, cursor, backlog: Vec::new().into_iter(), replaying: after.is_some() })
    }
}

/// The resume point is older than the log keeps: the client must reload and subscribe afresh.
pub fn expired() -> DomainError {
    DomainError::invalid("events after this id are no longer kept; reload and subscribe without `after`")
        .with_detail("after", "expired")
}

/// The resume point is beyond the newest event: no stream ever handed it out.
pub fn unknown() -> DomainError {
    DomainError::invalid("no event with this id exists yet; subscribe without `after` or with an id you received")
        .with_detail("after", "unknown")
}

/// One subscriber's ordered feed of every event after its cursor.
pub struct Subscription {
    bus: Arc<EventBus>,
    rx: broadcast::Receiver<Arc<StoredEvent>>,
    cursor: i64,
    backlog: std::vec::IntoIter<StoredEvent>,
    replaying: bool,
}

impl Subscription {
    /// The id of the last event returned (the resume point after a reconnect).
    pub fn cursor(&self) -> i64 {
        self.cursor
    }

    /// The next event, waiting for it if necessary. Errors only when the store fails while
    /// replaying or the bus is gone.
    pub async fn next(&mut self) -> DomainResult<Arc<StoredEvent>> {
        loop {
            if let Some(event) = self.backlog.next() {
                self.cursor = event.id;
                return Ok(Arc::new(event));
            }
            if self.replaying {
                let batch = self.bus.log.read_after(self.cursor, BATCH).await?;
                let caught_up = batch.len() < BATCH as usize;
                if caught_up {
                    self.replaying = false;
                }
                self.backlog = batch.into_iter();
                continue;
            }
            match self.rx.recv().await {
                Ok(event) if event.id <= self.cursor => continue,
                Ok(event) => {
                    self.cursor = event.id;
                    return Ok(event);
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    self.rx = self.rx.resubscribe();
                    self.replaying = true;
                }
                Err(broadcast::error::RecvError::Closed) => {
                    return Err(DomainError::unavailable("the event bus stopped"));
                }
            }
        }
    }
}
