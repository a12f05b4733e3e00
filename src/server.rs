//! The one listener: admits connections under per-address and total caps (making room by
//! closing the oldest connection that has not spoken yet), gives each the header read timeout
//! to show which protocol it speaks, serves HTTP/1.1, h2c and gRPC with hyper, and on shutdown
//! keeps serving through the delay, then stops accepting and drains.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tower::ServiceExt;

use crate::adapters::http::HttpApp;
use crate::adapters::request::PeerIp;
use crate::platform::caps::{Caps, Full, Slot};
use crate::platform::metrics::{Metrics, RefusalLabels};
use crate::platform::shutdown::Shutdown;

/// How the listener treats connections.
#[derive(Debug, Clone, Copy)]
pub struct ListenSettings {
    pub header_read_timeout: Duration,
    pub tcp_send_buffer_bytes: Option<u32>,
    pub max_connections: usize,
    pub max_connections_per_address: usize,
    pub shutdown_delay: Duration,
    pub shutdown_deadline: Duration,
}

/// The first bytes of every HTTP/2 connection with prior knowledge (h2c, gRPC).
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Raises the soft limit on open files to the hard limit; returns the limit now in force.
#[cfg(unix)]
pub fn raise_fd_limit() -> Option<u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes one rlimit struct through a valid pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    if limit.rlim_cur < limit.rlim_max {
        // An unlimited hard limit cannot be the soft one for open files; 1 Mi is Linux's default cap.
        let wanted = if limit.rlim_max == libc::RLIM_INFINITY { 1 << 20 } else { limit.rlim_max };
        let raised = libc::rlimit { rlim_cur: wanted.max(limit.rlim_cur), rlim_max: limit.rlim_max };
        // SAFETY: setrlimit reads one rlimit struct through a valid pointer.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit = raised;
        }
    }
    Some(limit.rlim_cur)
}

#[cfg(not(unix))]
pub fn raise_fd_limit() -> Option<u64> {
    None
}

/// The default connection cap: the file descriptor limit less a reserve for the database, the
/// blocking pool and files (an eighth, at least 64).
pub fn default_max_connections(fd_limit: Option<u64>) -> usize {
    let Some(limit) = fd_limit else {
        return 10_000;
    };
    let reserve = (limit / 8).max(64);
    limit.saturating_sub(reserve).clamp(16, 1_000_000) as usize
}

/// Connections that have not shown their protocol yet, oldest first: the first to go when the
/// server is full, since a newcomer is likelier to be a real client than one that never spoke.
#[derive(Default)]
struct Silent {
    next: AtomicU64,
    waiting: Mutex<BTreeMap<u64, oneshot::Sender<()>>>,
}

impl Silent {
    fn enter(&self) -> (u64, oneshot::Receiver<()>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.waiting.lock().unwrap_or_else(|e| e.into_inner()).insert(id, tx);
        (id, rx)
    }

    fn leave(&self, id: u64) {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
    }

    /// Closes the oldest silent connection; false when there is none.
    fn evict_oldest(&self) -> bool {
        loop {
            let oldest = self.waiting.lock().unwrap_or_else(|e| e.into_inner()).pop_first();
            let Some((_, tx)) = oldest else {
                return false;
            };
            if tx.send(()).is_ok() {
                return true;
            }
        }
    }
}

/// Accepts and serves until shutdown, then drains within the deadline. `open_streams` tells
/// how many event streams are still open (they end on their own when stopping starts).
pub async fn serve(
    listener: TcpListener,
    app: HttpApp,
    metrics: Arc<Metrics>,
    shutdown: Shutdown,
    settings: ListenSettings,
    open_streams: impl Fn() -> usize,
) {
    let builder = Arc::new(builder(&settings));
    let graceful = GracefulShutdown::new();
    let caps = Caps::new(settings.max_connections, settings.max_connections_per_address);
    let silent = Arc::new(Silent::default());
    tokio::spawn(stop_after_delay(shutdown.clone(), settings.shutdown_delay));
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = shutdown.wait() => break,
        };
        let Some(slot) = admit(&caps, &silent, &metrics, peer) else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        tune_socket(&stream, settings.tcp_send_buffer_bytes);
        let connection = Connection {
            stream,
            peer,
            slot,
            app: app.clone(),
            builder: builder.clone(),
            silent: silent.clone(),
            metrics: metrics.clone(),
            shutdown: shutdown.clone(),
            header_read_timeout: settings.header_read_timeout,
        };
        let watcher = graceful.watcher();
        tokio::spawn(connection.run(watcher));
    }
    drop(listener);
    tracing::info!(
        deadline_secs = settings.shutdown_deadline.as_secs(),
        "shutting down: no new connections, draining in-flight requests"
    );
    let drained = async {
        graceful.shutdown().await;
        while open_streams() > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    if tokio::time::timeout(settings.shutdown_deadline, drained).await.is_err() {
        tracing::warn!(streams = open_streams(), "shutdown deadline reached with connections still open; closing them");
    }
}

/// Once draining is announced, waits out the delay (readiness is already 503), then stops.
async fn stop_after_delay(shutdown: Shutdown, delay: Duration) {
    shutdown.wait_draining().await;
    if !shutdown.is_triggered() && !delay.is_zero() {
        tracing::info!(delay_secs = delay.as_secs(), "draining announced: serving on while readiness reports 503");
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = shutdown.wait() => {}
        }
    }
    shutdown.trigger();
}

/// A slot for a new connection, or None (counted) when its address or the server is full.
fn admit(caps: &Arc<Caps>, silent: &Silent, metrics: &Metrics, peer: SocketAddr) -> Option<Slot> {
    let key = peer.ip().to_string();
    let refused = |reason: &'static str| {
        metrics.connections_refused.get_or_create(&RefusalLabels { reason }).inc();
        tracing::debug!(peer = %peer, reason, "connection refused");
        None
    };
    match caps.try_acquire(&key) {
        Ok(slot) => Some(slot),
        Err(Full::PerKey) => refused("per_address"),
        Err(Full::Total) if silent.evict_oldest() => {
            metrics.connections_refused.get_or_create(&RefusalLabels { reason: "evicted_silent" }).inc();
            caps.acquire_over_total(&key).ok().or_else(|| refused("per_address"))
        }
        Err(Full::Total) => refused("total"),
    }
}

fn builder(settings: &ListenSettings) -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(settings.header_read_timeout).max_buf_size(64 * 1024);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(256)
        .max_local_error_reset_streams(1024)
        .max_pending_accept_reset_streams(64)
        .max_header_list_size(64 * 1024)
        .keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(10));
    builder
}

struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    slot: Slot,
    app: HttpApp,
    builder: Arc<Builder<TokioExecutor>>,
    silent: Arc<Silent>,
    metrics: Arc<Metrics>,
    shutdown: Shutdown,
    header_read_timeout: Duration,
}

impl Connection {
    /// Reads until the protocol is known (within the header read timeout, unless evicted or
    /// stopped first), then serves the connection until it ends.
    async fn run(mut self, watcher: hyper_util::server::graceful::Watcher) {
        let _slot = self.slot;
        self.metrics.connections_open.inc();
        let (id, evicted) = self.silent.enter();
        let opening = tokio::select! {
            read = tokio::time::timeout(self.header_read_timeout, opening(&mut self.stream)) => read.ok().and_then(Result::ok).flatten(),
            _ = evicted => None,
            () = self.shutdown.wait() => None,
        };
        self.silent.leave(id);
        if let Some(prefix) = opening {
            let peer = self.peer;
            let ip = PeerIp(peer.ip().to_string().into());
            let service = self.app.map_request(move |mut req: axum::extract::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req.extensions_mut().insert(ip.clone());
                req
            });
            let io = TokioIo::new(Prefixed { prefix, read: 0, inner: self.stream });
            let connection = self.builder.serve_connection_with_upgrades(io, TowerToHyperService::new(service));
            if let Err(e) = watcher.watch(connection.into_owned()).await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        }
        self.metrics.connections_open.dec();
    }
}

/// Reads the connection's first bytes until they tell HTTP/2's preface from anything else;
/// None when the peer closes first.
async fn opening(stream: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut seen = Vec::with_capacity(H2_PREFACE.len());
    let mut chunk = [0u8; 24];
    loop {
        let n = stream.read(&mut chunk[..H2_PREFACE.len() - seen.len()]).await?;
        if n == 0 {
            return Ok(None);
        }
        seen.extend_from_slice(&chunk[..n]);
        if seen.len() == H2_PREFACE.len() || seen[..] != H2_PREFACE[..seen.len()] {
            return Ok(Some(seen));
        }
    }
}

/// A stream whose first bytes were already read: they are read again first.
struct Prefixed {
    prefix: Vec<u8>,
    read: usize,
    inner: TcpStream,
}

impl AsyncRead for Prefixed {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if this.read < this.prefix.len() {
            let n = buf.remaining().min(this.prefix.len() - this.read);
            buf.put_slice(&this.prefix[this.read..this.read + n]);
            this.read += n;
            if this.read == this.prefix.len() {
                this.prefix = Vec::new();
                this.read = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Bytes a connection may have written but not yet sent before writes wait: a client that stops
/// reading then backs up into its bounded send queue (and is closed as lagging) instead of
/// parking megabytes in kernel buffers.
const UNSENT_LIMIT: u32 = 128 * 1024;

/// Caps what the kernel holds for a client that stops reading: TCP_NOTSENT_LOWAT always, and
/// SO_SNDBUF when configured (which turns off the kernel's send-buffer autotuning).
#[cfg(target_os = "linux")]
fn tune_socket(stream: &TcpStream, send_buffer: Option<u32>) {
    set_option(stream, libc::IPPROTO_TCP, libc::TCP_NOTSENT_LOWAT, UNSENT_LIMIT, "TCP_NOTSENT_LOWAT");
    if let Some(bytes) = send_buffer {
        set_option(stream, libc::SOL_SOCKET, libc::SO_SNDBUF, bytes, "SO_SNDBUF");
    }
}

#[cfg(target_os = "linux")]
fn set_option(stream: &TcpStream, level: libc::c_int, name: libc::c_int, value: u32, what: &str) {
    use std::os::fd::AsRawFd;
    let value = value.min(libc::c_int::MAX as u32) as libc::c_int;
    // SAFETY: setsockopt reads `size_of::<c_int>()` bytes from a valid pointer on an open socket.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), option = what, "socket option not set");
    }
}

#[cfg(not(target_os = "linux"))]
fn tune_socket(_: &TcpStream, _: Option<u32>) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_connection_cap_leaves_a_reserve_of_descriptors() {
        assert_eq!(default_max_connections(Some(1024)), 896);
        assert_eq!(default_max_connections(Some(256)), 192);
        assert_eq!(default_max_connections(Some(1 << 20)), (1 << 20) - (1 << 17));
    }

    #[test]
    fn the_oldest_silent_connection_is_evicted_first() {
        let silent = Silent::default();
        let (_, mut first) = silent.enter();
        let (second_id, mut second) = silent.enter();
        assert!(silent.evict_oldest());
        assert!(first.try_recv().is_ok());
        silent.leave(second_id);
        assert!(!silent.evict_oldest(), "a connection that spoke is never evicted");
        assert!(second.try_recv().is_err());
    }
}
