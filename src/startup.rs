//! The composition root, the only module that knows every other: builds the store, core,
//! platform and adapters, binds the listener and serves until shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::adapters::{Limits, Shared, SharedInner, StreamSettings, http};
use crate::config::Settings;
use crate::domain::ports::{Clock, SystemClock};
use crate::domain::service::{Core, Deps};
use crate::platform::authn::Authenticator;
use crate::platform::bus::EventBus;
use crate::platform::cursor::CursorCodec;
use crate::platform::idempotency::Idempotency;
use crate::platform::jobs::Housekeeping;
use crate::platform::metrics::Metrics;
use crate::platform::passwords::Argon2Hasher;
use crate::platform::ratelimit::RateLimiter;
use crate::platform::shutdown::{OsSignals, Shutdown};
use crate::platform::streams::StreamLimits;
use crate::platform::throttle::FailedLoginThrottle;
use crate::platform::tokens::JwtKeys;
use crate::storage::{PoolSettings, SqlStore};

/// A built server: bound, migrated, not yet serving.
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    app: http::HttpApp,
    store: SqlStore,
    shutdown: Shutdown,
    settings: Settings,
    housekeeping: Housekeeping,
    core: Core,
    bus: Arc<EventBus>,
    streams: Arc<StreamLimits>,
}

/// Opens the store and builds the core over it (also used by `polyport admin`).
pub async fn build_core(settings: &Settings) -> anyhow::Result<(SqlStore, Core, Arc<JwtKeys>, secrecy::SecretString)> {
    let pool = PoolSettings {
        max_connections: settings.db_max_connections,
        acquire_timeout: Duration::from_secs(5),
        cache_ttl: Duration::from_secs(settings.cache_ttl_secs),
        cache_bytes: settings.cache_mb * 1024 * 1024,
    };
    let store = SqlStore::connect(&settings.database_url, &pool).await?;
    let secret = settings.resolve_jwt_secret()?;
    let jwt = Arc::new(JwtKeys::new(&secret, settings.access_token_ttl_secs));
    let shared_store = Arc::new(store.clone());
    let core = Core::new(Deps {
        users: shared_store.clone(),
        posts: shared_store.clone(),
        credentials: shared_store.clone(),
        events: shared_store.clone(),
        idempotency: shared_store.clone(),
        health: shared_store.clone(),
        hasher: Arc::new(Argon2Hasher::default()),
        tokens: jwt.clone(),
        throttle: Arc::new(FailedLoginThrottle::new(
            settings.login_max_failures,
            Duration::from_secs(settings.login_window_secs),
        )),
        clock: Arc::new(SystemClock),
        refresh_ttl: chrono::Duration::days(settings.refresh_token_ttl_days),
    });
    Ok((store, core, jwt, secret))
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let (store, core, jwt, secret) = build_core(&settings).await?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let store_arc = Arc::new(store.clone());
        let retention = chrono::Duration::hours(settings.idempotency_retention_hours.max(24));
        let idempotency = Idempotency::new(
            store_arc.clone(),
            clock.clone(),
            chrono::Duration::seconds(settings.request_timeout_secs as i64 * 2),
            retention,
        );
        let shutdown = Shutdown::default();
        let bus = EventBus::new(
            core.deps.events.clone(),
            store.appended_signal(),
            Duration::from_millis(settings.event_poll_ms.max(10)),
            4096,
        );
        let streams = StreamLimits::new(settings.streams_max, settings.streams_per_caller);
        let observer = store.clone();
        bus.observe(move |event| observer.observe(event));
        let shared = Shared::new(SharedInner {
            core: core.clone(),
            authn: Authenticator { jwt, core: core.clone() },
            cursors: CursorCodec::new(secret.expose_secret().as_bytes()),
            limiter: Arc::new(RateLimiter::new(Duration::from_secs(60))),
            limits: Limits {
                per_principal: settings.rate_limit_per_minute,
                per_anonymous: settings.rate_limit_anon_per_minute,
                body_bytes: settings.body_limit_bytes,
                request_timeout: settings.request_timeout(),
            },
            idempotency,
            metrics: Metrics::new(),
            shutdown: shutdown.clone(),
            health: store_arc.clone(),
            cors_origins: settings.cors_origins.clone(),
            bus: bus.clone(),
            public_views: Default::default(),
            streams: streams.clone(),
            stream_settings: StreamSettings {
                sse_keepalive: Duration::from_secs(settings.sse_keepalive_secs.max(1)),
                revalidate: Duration::from_secs(settings.stream_revalidate_secs.max(1)),
                ws_max_subscriptions: settings.ws_max_subscriptions,
                ws_send_queue: settings.ws_send_queue.max(1),
                ws_max_message_bytes: settings.ws_max_message_bytes,
                ws_ping: Duration::from_secs(settings.ws_ping_secs.max(1)),
                stream_token_ttl_secs: 60,
            },
            graphql: graphql_settings(&settings),
        });
        let housekeeping = Housekeeping {
            idempotency: store_arc.clone(),
            idempotency_retention: retention,
            events: store_arc,
            event_retention: chrono::Duration::days(settings.event_retention_days),
            clock,
            every: Duration::from_secs(300),
        };
        let listener = TcpListener::bind(&settings.bind).await.with_context(|| format!("binding {}", settings.bind))?;
        let addr = listener.local_addr()?;
        Ok(Self {
            listener,
            addr,
            app: http::HttpApp::new(shared),
            store,
            shutdown,
            settings,
            housekeeping,
            core,
            bus,
            streams,
        })
    }

    /// The bound address (the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Triggering it stops the server as SIGTERM would.
    pub fn shutdown_handle(&self) -> Shutdown {
        self.shutdown.clone()
    }

    pub fn core(&self) -> &Core {
        &self.core
    }

    /// Serves until SIGTERM/SIGINT or the shutdown handle, then drains within the deadline.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let Application { listener, addr, app, store, shutdown, settings, housekeeping, bus, streams, .. } = self;
        let signals = OsSignals::install().context("installing signal handlers")?;
        let signal_shutdown = shutdown.clone();
        tokio::spawn(async move {
            signals.recv().await;
            signal_shutdown.trigger();
        });
        tokio::spawn(housekeeping.run(shutdown.clone()));
        tokio::spawn(bus.run(shutdown.clone()));
        print_urls(addr);

        let mut builder = Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(settings.header_read_timeout())
            .max_buf_size(64 * 1024);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(256)
            .max_local_error_reset_streams(1024)
            .max_pending_accept_reset_streams(64)
            .max_header_list_size(64 * 1024)
            .keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(10));
        let graceful = GracefulShutdown::new();

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
            let _ = stream.set_nodelay(true);
            tune_socket(&stream, settings.tcp_send_buffer_bytes);
            let service = app.clone().map_request(move |mut req: axum::extract::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            });
            let connection = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service))
                .into_owned();
            let watched = graceful.watch(connection);
            tokio::spawn(async move {
                if let Err(e) = watched.await {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
            });
        }

        drop(listener);
        tracing::info!(
            deadline_secs = settings.shutdown_deadline_secs,
            "shutting down: no new connections, draining in-flight requests"
        );
        let drained = async {
            graceful.shutdown().await;
            while streams.open() > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        if tokio::time::timeout(settings.shutdown_deadline(), drained).await.is_err() {
            tracing::warn!(
                streams = streams.open(),
                "shutdown deadline reached with connections still open; closing them"
            );
        }
        store.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Bytes a connection may have written but not yet sent before writes wait: a client that stops
/// reading then backs up into its bounded send queue (and is closed as lagging) instead of
/// parking megabytes in kernel buffers.
const UNSENT_LIMIT: u32 = 128 * 1024;

/// Caps what the kernel holds for a client that stops reading: TCP_NOTSENT_LOWAT always, and
/// SO_SNDBUF when configured (which turns off the kernel's send-buffer autotuning).
#[cfg(target_os = "linux")]
fn tune_socket(stream: &tokio::net::TcpStream, send_buffer: Option<u32>) {
    set_option(stream, libc::IPPROTO_TCP, libc::TCP_NOTSENT_LOWAT, UNSENT_LIMIT, "TCP_NOTSENT_LOWAT");
    if let Some(bytes) = send_buffer {
        set_option(stream, libc::SOL_SOCKET, libc::SO_SNDBUF, bytes, "SO_SNDBUF");
    }
}

#[cfg(target_os = "linux")]
fn set_option(stream: &tokio::net::TcpStream, level: libc::c_int, name: libc::c_int, value: u32, what: &str) {
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
fn tune_socket(_: &tokio::net::TcpStream, _: Option<u32>) {}

fn print_urls(addr: SocketAddr) {
    let base = format!("http://{addr}");
    tracing::info!(address = %addr, "polyport listening");
    println!("polyport listening on {base}");
    println!("  REST       {base}/api/v1   (docs {base}/docs, spec {base}/api/v1/openapi.json)");
    println!("  GraphQL    {base}/graphql  (subscriptions ws://{addr}/graphql/ws)");
    println!("  gRPC       {addr} (h2c, reflection on; gRPC-Web over HTTP/1.1 on the same port)");
    println!("  SOAP       {base}/soap     (WSDL {base}/soap?wsdl)");
    println!("  WebSocket  ws://{addr}/ws");
    println!("  SSE        {base}/api/v1/events?topics=posts");
    println!("  health     {base}/healthz  {base}/readyz  {base}/metrics");
}

/// The GraphQL knobs; introspection and GraphiQL default to on in development only.
fn graphql_settings(settings: &Settings) -> crate::adapters::graphql::GraphqlSettings {
    use crate::adapters::graphql::Introspection;
    use crate::config::{Environment, GraphqlIntrospection};
    let development = settings.environment == Environment::Development;
    let introspection = match settings.graphql_introspection {
        Some(GraphqlIntrospection::On) => Introspection::On,
        Some(GraphqlIntrospection::Off) => Introspection::Off,
        Some(GraphqlIntrospection::Authenticated) => Introspection::Authenticated,
        None if development => Introspection::On,
        None => Introspection::Off,
    };
    crate::adapters::graphql::GraphqlSettings {
        max_depth: settings.graphql_max_depth,
        max_complexity: settings.graphql_max_complexity,
        max_aliases: settings.graphql_max_aliases,
        max_batch: settings.graphql_max_batch,
        introspection,
        playground: settings.graphql_playground.unwrap_or(development),
        suggestions: development,
    }
}
