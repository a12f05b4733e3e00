//! Cross-instance wake-ups on PostgreSQL: every commit that appends events sends a NOTIFY, and
//! each instance LISTENs and wakes its event-bus tailer. The log stays the source of truth: a
//! lost notification only delays delivery until the tailer's next poll.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::Notify;

/// The channel every instance listens on.
pub(crate) const CHANNEL: &str = "polyport_events";

/// Listens on `CHANNEL` for ever, waking `wake` on each notification. Reconnects after a lost
/// connection (and wakes the tailer then, in case something was missed meanwhile).
pub async fn listen(url: String, wake: Arc<Notify>) {
    let mut backoff = Duration::from_millis(200);
    loop {
        match subscribe(&url).await {
            Ok(mut listener) => {
                tracing::info!(channel = CHANNEL, "listening for event notifications from other instances");
                backoff = Duration::from_millis(200);
                wake.notify_one();
                loop {
                    match listener.try_recv().await {
                        Ok(Some(_)) => wake.notify_one(),
                        // The connection dropped: re-subscribe (the tailer polls meanwhile).
                        Ok(None) => break,
                        Err(e) => {
                            tracing::warn!(error = %e, "event notifications interrupted; the event bus polls meanwhile");
                            break;
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot LISTEN for event notifications; the event bus polls meanwhile")
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn subscribe(url: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}
