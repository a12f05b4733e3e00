//! The shutdown signal: one switch every listener, stream and job watches, in two steps:
//! draining (readiness reports 503, everything else goes on) and stopping (no new connections,
//! streams end, in-flight requests finish).

use tokio::sync::watch;

const RUNNING: u8 = 0;
const DRAINING: u8 = 1;
const STOPPING: u8 = 2;

/// Cloneable handle: `announce` (draining) and `trigger` (stopping), each once.
#[derive(Clone)]
pub struct Shutdown {
    tx: watch::Sender<u8>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self { tx: watch::channel(RUNNING).0 }
    }
}

impl Shutdown {
    /// Stop now: no new connections, streams end, in-flight requests get the deadline.
    pub fn trigger(&self) {
        self.tx.send_replace(STOPPING);
    }

    /// Start draining: readiness answers 503 while the server goes on serving; the server stops
    /// after its shutdown delay.
    pub fn announce(&self) {
        self.tx.send_if_modified(|state| {
            let changed = *state == RUNNING;
            if changed {
                *state = DRAINING;
            }
            changed
        });
    }

    /// True once stopping started.
    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow() >= STOPPING
    }

    /// True once draining (or stopping) started: readiness is down.
    pub fn is_draining(&self) -> bool {
        *self.tx.borrow() >= DRAINING
    }

    /// Resolves when stopping has been triggered (immediately if it already was).
    pub async fn wait(&self) {
        self.waiter().await
    }

    /// Resolves when draining (or stopping) has started.
    pub async fn wait_draining(&self) {
        let mut rx = self.tx.subscribe();
        let _ = rx.wait_for(|v| *v >= DRAINING).await;
    }

    /// Like `wait`, as a future that owns its receiver: a loop that selects on shutdown for
    /// every event pins ONE of these instead of subscribing and unsubscribing each time (a
    /// shared counter and a lock every subscriber would hit on every event).
    pub fn waiter(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.tx.subscribe();
        async move {
            let _ = rx.wait_for(|v| *v >= STOPPING).await;
        }
    }
}

/// SIGINT and SIGTERM handlers, registered when created: a signal that arrives before anyone
/// waits is still seen (tokio only registers a handler when its future is first polled).
pub struct OsSignals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl OsSignals {
    pub fn install() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self { interrupt: signal(SignalKind::interrupt())?, terminate: signal(SignalKind::terminate())? })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// Resolves on SIGINT or SIGTERM.
    pub async fn recv(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.interrupt.recv() => tracing::info!("SIGINT received"),
            _ = self.terminate.recv() => tracing::info!("SIGTERM received"),
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("Ctrl-C received");
        }
    }
}
