//! `polyport.v1.EventService/Live`: one bidi session. Commands in (subscribe, unsubscribe,
//! ack); events and replies out. At most `WINDOW` events are unacknowledged at a time: a full
//! window pauses delivery (the bus replays from the log later, so nothing is lost).

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::mpsc;
use tonic::{Status, Streaming};

use super::call::Call;
use super::stream::ended;
use super::{convert, pb};
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::events::StoredEvent;
use crate::platform::caps::Slot;
use crate::platform::feeds::Feeds;

/// Unacknowledged events allowed in flight per session.
pub const WINDOW: usize = 256;

type Tx = mpsc::Sender<Result<pb::LiveResponse, Status>>;

struct Session {
    call: Call,
    /// The subscriptions: the shared session core.
    feeds: Feeds,
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
    let max = call.shared.stream_settings.ws_max_subscriptions;
    let feeds = Feeds::new(call.shared.bus.clone(), max, "subscription");
    let mut session = Session { call, feeds, unacked: VecDeque::new() };
    let mut reading = true;
    // A separate watch so the session can be borrowed mutably inside the loop.
    let watch = session.call.clone();
    let end = ended(&watch, true);
    tokio::pin!(end);
    let every = session.call.shared.stream_settings.revalidate;
    let mut revalidate = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        let room = session.unacked.len() < WINDOW;
        let out = tokio::select! {
            biased;
            status = &mut end => { let _ = tx.send(Err(status)).await; return; }
            () = tx.closed() => return,
            // A new role applies to delivery at once (revocation ends the call through `end`).
            _ = revalidate.tick() => {
                if let Ok(Some(now)) = session.call.shared.admission.revalidate(&session.call.admitted).await {
                    session.call.admitted = now;
                }
                None
            }
            command = commands.message(), if reading => match command {
                Ok(Some(command)) => session.command(command).await,
                Ok(None) => {
                    reading = false;
                    if session.feeds.is_empty() { return; }
                    None
                }
                Err(status) => {
                    let _ = tx.send(Err(super::error::from_codec(status))).await;
                    return;
                }
            },
            (name, event) = session.feeds.next(), if room && !session.feeds.is_empty() => session.event(&name, event),
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
            && let Err(e) = self.call.charge().await
        {
            return Some(refused(&id, &e));
        }
        match c.command {
            Some(Command::Subscribe(s)) => Some(match self.subscribe(s).await {
                Ok(()) => ok(&id),
                Err(e) => refused(&id, &e),
            }),
            Some(Command::Unsubscribe(u)) => Some(match self.feeds.unsubscribe(&u.subscription) {
                Ok(()) => ok(&id),
                Err(e) => refused(&id, &e),
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
        self.feeds.subscribe(self.call.actor(), &s.subscription, &s.topics, s.after_event_id).await
    }

    fn event(&mut self, name: &str, event: DomainResult<Arc<StoredEvent>>) -> Option<pb::LiveResponse> {
        match event {
            Ok(event) => {
                let delivery = self.feeds.delivery(self.call.actor(), name, &event)?;
                self.unacked.push_back(delivery.id);
                let event = pb::LiveEvent { subscription: name.to_string(), event: Some(convert::event(delivery)) };
                Some(pb::LiveResponse { kind: Some(pb::live_response::Kind::Event(event)) })
            }
            Err(e) => Some(refused(name, &e)),
        }
    }
}
