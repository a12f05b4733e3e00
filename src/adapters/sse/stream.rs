//! One SSE response: replay then live events, keep-alives, and the endings (token expiry or
//! revocation, bus failure, server shutdown), each ending said on the wire before it closes.

use std::convert::Infallible;
use std::time::Duration;

use axum::http::HeaderValue;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream::{self, Stream, StreamExt};
use serde_json::json;

use crate::adapters::Shared;
use crate::domain::delivery::{Topic, deliver, listens};
use crate::domain::policy::Actor;
use crate::platform::authn::{Authenticated, Authenticator};
use crate::platform::bus::Subscription;
use crate::platform::shutdown::Shutdown;
use crate::platform::streams::StreamSlot;
use crate::platform::views::PublicViews;

struct Feed {
    subscription: Subscription,
    actor: Actor,
    topics: Vec<Topic>,
    expires: Option<tokio::time::Instant>,
    revalidate: tokio::time::Interval,
    authn: Authenticator,
    shutdown: Shutdown,
    views: std::sync::Arc<PublicViews>,
    done: bool,
    _slot: StreamSlot,
}

fn error_event(code: &str, message: &str) -> Event {
    Event::default().event("error").data(json!({"code": code, "message": message}).to_string())
}

impl Feed {
    /// The next frame to send, or None when the stream is over.
    async fn next(&mut self) -> Option<Event> {
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
                () = self.shutdown.wait() => {
                    self.done = true;
                    return Some(Event::default().retry(Duration::from_secs(5)).comment("server shutting down"));
                }
                () = &mut expiry => {
                    self.done = true;
                    return Some(error_event("UNAUTHENTICATED", "the token that opened this stream has expired"));
                }
                _ = self.revalidate.tick() => {
                    if !Box::pin(self.authn.still_valid(&self.actor)).await.unwrap_or(true) {
                        self.done = true;
                        return Some(error_event("UNAUTHENTICATED", "the credential of this stream was revoked"));
                    }
                }
                event = self.subscription.next() => match event {
                    Ok(event) => {
                        if self.actor == Actor::Anonymous {
                            if listens(&self.topics, &event)
                                && let Some(v) = self.views.of(&event)
                            {
                                return Some(Event::default().id(v.delivery.id.to_string()).event(v.delivery.event_type).data(&v.envelope));
                            }
                        } else if let Some(d) = deliver(&self.actor, &self.topics, &event) {
                            let data = serde_json::to_string(&d).unwrap_or_default();
                            return Some(Event::default().id(d.id.to_string()).event(d.event_type).data(data));
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "event stream failed");
                        self.done = true;
                        return Some(error_event(e.code.as_str(), "the event stream failed; reconnect with Last-Event-ID"));
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
    slot: StreamSlot,
) -> Response {
    let expires = auth.expires_at.map(|at| {
        let left = (at - chrono::Utc::now()).to_std().unwrap_or(Duration::ZERO);
        tokio::time::Instant::now() + left
    });
    let mut revalidate = tokio::time::interval(s.stream_settings.revalidate);
    revalidate.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let feed = Feed {
        subscription,
        actor: auth.actor,
        topics,
        expires,
        revalidate,
        authn: s.authn.clone(),
        shutdown: s.shutdown.clone(),
        views: s.public_views.clone(),
        done: false,
        _slot: slot,
    };
    let hello = stream::once(async {
        Ok::<_, Infallible>(Event::default().retry(Duration::from_secs(3)).comment("connected"))
    });
    let events = stream::unfold(feed, |mut feed| async move { feed.next().await.map(|e| (Ok(e), feed)) });
    let body: std::pin::Pin<Box<dyn Stream<Item = Result<Event, Infallible>> + Send>> = Box::pin(hello.chain(events));
    let mut response = Sse::new(body)
        .keep_alive(KeepAlive::new().interval(s.stream_settings.sse_keepalive).text("keep-alive"))
        .into_response();
    response.headers_mut().insert("x-accel-buffering", HeaderValue::from_static("no"));
    response.headers_mut().insert("cache-control", HeaderValue::from_static("no-cache"));
    response
}
