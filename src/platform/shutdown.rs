//! The shutdown signal: one switch every listener, stream and job watches.

use tokio::sync::watch;

/// Cloneable handle: `trigger` once, every `wait` returns.
#[derive(Clone)]
pub struct Shutdown {
    tx: watch::Sender<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self { tx: watch::channel(false).0 }
    }
}

impl Shutdown {
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    /// Resolves when shutdown has been triggered (immediately if it already was).
    pub async fn wait(&self) {
        self.waiter().await
    }

    /// Like `wait`, as a future that owns its receiver: a loop that selects on shutdown for
    /// every event pins ONE of these instead of subscribing and unsubscribing each time (a
    /// shared counter and a lock every subscriber would hit on every event).
    pub fn waiter(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.tx.subscribe();
        async move {
            let _ = rx.wait_for(|v| *v).await;
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
