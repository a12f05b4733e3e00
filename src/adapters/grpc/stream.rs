//! Long-lived server streams: the outbound channel, and the watch that ends a stream with a
//! clear status on shutdown (UNAVAILABLE), deadline (DEADLINE_EXCEEDED), or credential expiry
//! and revocation (UNAUTHENTICATED).

use std::pin::Pin;
use std::time::Duration;

use futures::Stream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::call::Call;
use super::error::status;
use crate::domain::error::DomainError;

/// The response type of every server stream.
pub type Out<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// A bounded outbound queue: a slow reader slows its own producer and nobody else.
pub fn channel<T: Send + 'static>(capacity: usize) -> (mpsc::Sender<Result<T, Status>>, Out<T>) {
    let (tx, rx) = mpsc::channel(capacity);
    (tx, Box::pin(ReceiverStream::new(rx)))
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Resolves with the status that must end `call`'s stream. `private` streams also end when the
/// credential expires or is revoked (checked every `stream_settings.revalidate`).
pub async fn ended(call: &Call, private: bool) -> Status {
    let s = &call.shared;
    let expiry = call
        .auth()
        .expires_at
        .filter(|_| private)
        .map(|at| Instant::now() + (at - chrono::Utc::now()).to_std().unwrap_or(Duration::ZERO));
    let every = s.stream_settings.revalidate;
    let mut revalidate = tokio::time::interval_at(Instant::now() + every, every);
    revalidate.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let anonymous = call.actor().principal().is_none();
    loop {
        tokio::select! {
            biased;
            () = s.shutdown.wait() => {
                return status(&DomainError::unavailable("server shutting down"), &call.request_id);
            }
            () = sleep_until(call.deadline) => return Status::deadline_exceeded("deadline exceeded"),
            () = sleep_until(expiry) => {
                let e = DomainError::unauthenticated("the access token of this stream has expired");
                return status(&e, &call.request_id);
            }
            _ = revalidate.tick(), if private && !anonymous => {
                if !s.admission.authn.still_valid(call.actor()).await.unwrap_or(true) {
                    let e = DomainError::unauthenticated("the credential of this stream was revoked");
                    return status(&e, &call.request_id);
                }
            }
        }
    }
}
