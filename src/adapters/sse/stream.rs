//! One SSE response: an opening frame with the resume point, replay then live events,
//! keep-alives, and the endings (token expiry or revocation, bus failure, server shutdown), each
//! ending said on the wire before it closes.
//! Frames are written as bytes: an event anonymous subscribers share is framed once
//! (`PublicView::sse_frame`) and every such subscriber sends the same buffer.

use std::convert::Infallible;
use std::fmt::Write;
use std::pin::Pin;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use futures::stream::{self, StreamExt};
use serde_json::json;
use tokio::time::Instant;

use crate::adapters::Shared;
use crate::domain::delivery::{Topic, deliver, listens};
use crate::domain::policy::Actor;
use crate::platform::authn::{Authenticated, Authenticator};
use crate::platform::bus::Subscription;
use crate::platform::caps::Slot;
use crate::platform::views::PublicViews;

struct Feed {
    subscription: Subscription,
    actor: Actor,
    topics: Vec<Topic>,
    expires: Option<tokio::time::Instant>,
    revalidate: tokio::time::Interval,
    /// Fires when a keep-alive comment may be due: a comment goes out `every` after the last
    /// frame. Events only record when they were sent; the timer is moved when it fires, never
    /// per event.
    keep_alive: Pin<Box<tokio::time::Sleep>>,
    every: Duration,
    last_sent: Instant,
    authn: Authenticator,
    /// Resolves on shutdown; pinned once for the stream's life.
    stopping: Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
    views: std::sync::Arc<PublicViews>,
    done: bool,
    _slot: Slot,
}

/// An SSE frame: optional `retry:`, `id:`, `event:`, a comment, and one `data:` line (JSON
/// never holds a raw newline).
fn frame(
    id: Option<i64>,
    event: Option<&str>,
    data: Option<&str>,
    retry: Option<Duration>,
    comment: Option<&str>,
) -> Bytes {
    let mut out = String::with_capacity(64 + data.map_or(0, str::len));
    if let Some(retry) = retry {
        let _ = writeln!(out, "retry: {}", retry.as_millis());
    }
    if let Some(comment) = comment {
        let _ = writeln!(out, ": {comment}");
    }
    if let Some(id) = id {
        let _ = writeln!(out, "id: {id}");
    }
    if let Some(event) = event {
        let _ = writeln!(out, "event: {event}");
    }
    if let Some(data) = data {
        let _ = writeln!(out, "data: {data}");
    }
    out.push('\n');
    Bytes::from(out)
}

fn error_frame(code: &str, message: &str) -> Bytes {
    frame(None, Some("error"), Some(&json!({"code": code, "message": message}).to_string()), None, None)
}

impl Feed {
    /// The next frame to send, or None when the stream is over.
    async fn next(&mut self) -> Option<Bytes> {
        if self.done {
            return None;
        }
        let expiry = async {
            match self.expires {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(expiry);
        loop {
            tokio::select! {
                biased;
                () = &mut self.stopping => {
                    self.done = true;
                    return Some(frame(None, None, None, Some(Duration::from_secs(5)), Some("server shutting down")));
                }
                () = &mut expiry => {
                    self.done = true;
                    return Some(error_frame("UNAUTHENTICATED", "the token that opened this stream has expired"));
                }
                _ = self.revalidate.tick(), if self.actor != Actor::Anonymous => {
                    // The caller as it is now: revoked ends the stream, a new role applies at once.
                    let current = Authenticated { actor: self.actor.clone(), expires_at: None };
                    match Box::pin(self.authn.revalidate(&current)).await {
                        Ok(Some(now)) => self.actor = now.actor,
                        Ok(None) => {
                            self.done = true;
                            return Some(error_frame("UNAUTHENTICATED", "the credential of this stream was revoked"));
                        }
                        Err(_) => {}
                    }
                }
                () = &mut self.keep_alive => {
                    let due = self.last_sent + self.every;
                    let now = Instant::now();
                    if now >= due {
                        self.last_sent = now;
                        self.keep_alive.as_mut().reset(now + self.every);
                        return Some(Bytes::from_static(b": keep-alive\n\n"));
                    }
                    self.keep_alive.as_mut().reset(due);
                }
                event = self.subscription.next() => match event {
                    Ok(event) => {
                        if self.actor == Actor::Anonymous {
                            if listens(&self.topics, &event)
                                && let Some(v) = self.views.of(&event)
                            {
                                self.last_sent = Instant::now();
                                return Some(v.sse_frame.clone());
                            }
                        } else if let Some(d) = deliver(&self.actor, &self.topics, &event) {
                            let data = serde_json::to_string(&d).unwrap_or_default();
                            self.last_sent = Instant::now();
                            return Some(frame(Some(d.id), Some(d.event_type), Some(&data), None, None));
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "event stream failed");
                        self.done = true;
                        return Some(error_frame(e.code.as_str(), "the event stream failed; reconnect with Last-Event-ID"));
                    }
                },
            }
        }
    }
}

pub(super) fn respond(
    s: &Shared,
    auth: Authenticated,
    topics: Vec<Topic>,
    subscription: Subscription,
    slot: Slot,
) -> Response {
    let expires = auth.expires_at.map(|at| {
        let left = (at - chrono::Utc::now()).to_std().unwrap_or(Duration::ZERO);
        tokio::time::Instant::now() + left
    });
    let mut revalidate = tokio::time::interval(s.stream_settings.revalidate);
    revalidate.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let every = s.stream_settings.sse_keepalive;
    let head = subscription.cursor();
    let feed = Feed {
        subscription,
        actor: auth.actor,
        topics,
        expires,
        revalidate,
        keep_alive: Box::pin(tokio::time::sleep(every)),
        every,
        last_sent: Instant::now(),
        authn: s.admission.authn.clone(),
        stopping: Box::pin(s.shutdown.waiter()),
        views: s.public_views.clone(),
        done: false,
        _slot: slot,
    };
    // The first frame carries the resume point (the head of the log, or the client's own), so
    // a subscriber that has seen no event yet reconnects with Last-Event-ID and loses nothing.
    let hello = frame(Some(head), None, None, Some(Duration::from_secs(3)), Some("connected"));
    let events = stream::unfold(feed, |mut feed| async move { feed.next().await.map(|e| (e, feed)) });
    let body = stream::once(std::future::ready(hello)).chain(events).map(Ok::<_, Infallible>);
    let mut response = Response::new(Body::from_stream(body));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}
