//! `polyport.v1.EventService/Live`: one bidi session. Commands in (subscribe, unsubscribe,
//! ack); events and replies out. At most `WINDOW` events are unacknowledged at a time: a full
//! window pauses delivery (the bus replays from the log later, so nothing is lost).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use futures::StreamExt;
use futures::stream::{AbortHandle, Abortable, BoxStream, SelectAll};
use tokio::sync::mpsc;
use tonic::{Status, Streaming};

use super::call::Call;
use super::stream::ended;
use super::{convert, pb};
use crate::domain::delivery::{Topic, deliver};
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::events::StoredEvent;
use crate::platform::caps::Slot;

/// Unacknowledged events allowed in flight per session.
pub const WINDOW: usize = 256;

type Feed = BoxStream<'static, (Arc<str>, DomainResult<Arc<StoredEvent>>)>;
type Tx = mpsc::Sender<Result<pb::LiveResponse, Status>>;

struct Session {
    call: Call,
    subs: HashMap<String, (Vec<Topic>, AbortHandle)>,
    feeds: SelectAll<Feed>,
    unacked: VecDeque<i64>,
}

fn ok(id: &str) -> pb::LiveResponse {
    reply(pb::LiveReply { id: id.to_string(), ok: true, window: WINDOW as i32, ..Default::default() })
}

fn refused(id: &str, e: &DomainError) -> pb::LiveResponse {
    reply(pb::LiveReply {
        id: id.to_string(),
        ok: false,
        code: e.code.as_str().to_string(),
        message: e.message.clone(),
        details: e
            .details
            .iter()
            .map(|d| pb::LiveFieldIssue { field: d.field.clone(), issue: d.issue.clone() })
            .collect(),
        window: WINDOW as i32,
    })
}

fn reply(r: pb::LiveReply) -> pb::LiveResponse {
    pb::LiveResponse { kind: Some(pb::live_response::Kind::Reply(r)) }
}

pub async fn run(call: Call, slot: Slot, mut commands: Streaming<pb::LiveRequest>, tx: Tx) {
    let _slot = slot;
    let mut session = Session { call, subs: HashMap::new(), feeds: SelectAll::new(), unacked: VecDeque::new() };
    let mut reading = true;
    // A separate watch so the session can be borrowed mutably inside the loop.
    let watch = session.call.clone();
    let end = ended(&watch, true);
    tokio::pin!(end);
    loop {
        let room = session.unacked.len() < WINDOW;
        let out = tokio::select! {
            biased;
            status = &mut end => { let _ = tx.send(Err(status)).await; return; }
            () = tx.closed() => return,
            command = commands.message(), if reading => match command {
                Ok(Some(command)) => session.command(command).await,
                Ok(None) => {
                    reading = false;
                    if session.subs.is_empty() { return; }
                    None
                }
                Err(status) => {
                    let _ = tx.send(Err(super::error::from_codec(status))).await;
                    return;
                }
            },
            Some((name, event)) = session.feeds.next(), if room && !session.feeds.is_empty() => session.event(&name, event),
        };
        if let Some(message) = out {
            tokio::select! {
                biased;
                status = &mut end => { let _ = tx.send(Err(status)).await; return; }
                sent = tx.send(Ok(message)) => if sent.is_err() { return },
            }
        }
    }
}

impl Session {
    async fn command(&mut self, c: pb::LiveRequest) -> Option<pb::LiveResponse> {
        use pb::live_request::Command;
        let id = c.id;
        // Subscribing and unsubscribing are operations charged to the caller's budget; acks
        // are flow control and free.
        if matches!(c.command, Some(Command::Subscribe(_) | Command::Unsubscribe(_)))
            && let Err(e) = self.call.charge()
        {
            return Some(refused(&id, &e));
        }
        match c.command {
            Some(Command::Subscribe(s)) => Some(match self.subscribe(s).await {
                Ok(()) => ok(&id),
                Err(e) => refused(&id, &e),
            }),
            Some(Command::Unsubscribe(u)) => Some(match self.subs.remove(&u.subscription) {
                Some((_, abort)) => {
                    abort.abort();
                    ok(&id)
                }
                None => refused(&id, &DomainError::not_found("subscription").with_detail("subscription", "unknown")),
            }),
            Some(Command::Ack(a)) => {
                while self.unacked.front().is_some_and(|&e| e <= a.event_id) {
                    self.unacked.pop_front();
                }
                (!id.is_empty()).then(|| ok(&id))
            }
            None => {
                Some(refused(&id, &DomainError::invalid("a command is required").with_detail("command", "required")))
            }
        }
    }

    async fn subscribe(&mut self, s: pb::LiveSubscribe) -> DomainResult<()> {
        let name = s.subscription;
        if name.is_empty() || name.len() > 64 {
            return Err(DomainError::invalid("subscription names are 1 to 64 characters")
                .with_detail("subscription", "invalid"));
        }
        if self.subs.contains_key(&name) {
            return Err(DomainError::conflict("this subscription name is in use").with_detail("subscription", "taken"));
        }
        let max = self.call.shared.stream_settings.ws_max_subscriptions;
        if self.subs.len() >= max {
            let mut e = DomainError::rate_limited(1);
            e.message = format!("at most {max} subscriptions per session");
            return Err(e);
        }
        let topics = Topic::parse_all(&s.topics)?;
        let subscription = self.call.shared.bus.subscribe(self.call.actor(), s.after_event_id).await?;
        let (abort, registration) = AbortHandle::new_pair();
        let label: Arc<str> = name.as_str().into();
        let feed = futures::stream::unfold(subscription, |mut s| async move { Some((s.next().await, s)) })
            .map(move |e| (label.clone(), e));
        self.feeds.push(Abortable::new(feed, registration).boxed());
        self.subs.insert(name, (topics, abort));
        Ok(())
    }

    fn event(&mut self, name: &str, event: DomainResult<Arc<StoredEvent>>) -> Option<pb::LiveResponse> {
        let (topics, _) = self.subs.get(name)?;
        match event {
            Ok(event) => {
                let delivery = deliver(self.call.actor(), topics, &event)?;
                self.unacked.push_back(delivery.id);
                let event = pb::LiveEvent { subscription: name.to_string(), event: Some(convert::event(delivery)) };
                Some(pb::LiveResponse { kind: Some(pb::live_response::Kind::Event(event)) })
            }
            Err(e) => {
                self.subs.remove(name).inspect(|(_, a)| a.abort());
                Some(refused(name, &e))
            }
        }
    }
}
