//! The composition root, the only module that knows every other: builds the store, core,
//! platform and adapters, binds the listener and serves until shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;

use crate::adapters::{Limits, Shared, SharedInner, StreamSettings, http};
use crate::config::Settings;
use crate::domain::ports::{Clock, SystemClock};
use crate::domain::service::{Core, Deps};
use crate::platform::admission::{Admission, Budgets};
use crate::platform::authn::Authenticator;
use crate::platform::bus::EventBus;
use crate::platform::caps::Caps;
use crate::platform::cursor::CursorCodec;
use crate::platform::housekeeping::Housekeeping;
use crate::platform::idempotency::Idempotency;
use crate::platform::metrics::Metrics;
use crate::platform::operations::Operations;
use crate::platform::passwords::{Argon2Hasher, default_concurrency};
use crate::platform::queue::{Queue, QueueSettings};
use crate::platform::ratelimit::RateLimiter;
use crate::platform::redis::Redis;
use crate::platform::shutdown::{OsSignals, Shutdown};
use crate::platform::throttle::FailedLoginThrottle;
use crate::platform::tokens::JwtKeys;
use crate::server::ListenSettings;
use crate::storage::{PoolSettings, SqlStore};

/// A built server: bound, migrated, not yet serving.
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    app: http::HttpApp,
    store: SqlStore,
    shutdown: Shutdown,
    listen: ListenSettings,
    metrics: Arc<Metrics>,
    housekeeping: Housekeeping,
    core: Core,
    bus: Arc<EventBus>,
    streams: Arc<Caps>,
    /// The PostgreSQL URL to LISTEN on for other instances' events (None on SQLite).
    wakeups: Option<String>,
    /// The durable job queue's workers (webhook deliveries).
    queue: Arc<Queue>,
}

/// Opens the store and builds the core over it (also used by `polyport admin`).
pub async fn build_core(
    settings: &Settings,
    redis: Option<Arc<Redis>>,
) -> anyhow::Result<(SqlStore, Core, Arc<JwtKeys>, secrecy::SecretString)> {
    let pool = PoolSettings {
        max_connections: settings.db_max_connections,
        // A store that cannot be reached answers UNAVAILABLE well inside the request timeout.
        acquire_timeout: Duration::from_secs(5).min(settings.request_timeout() / 2).max(Duration::from_millis(500)),
        cache_ttl: Duration::from_secs(settings.cache_ttl_secs),
        cache_bytes: settings.cache_mb * 1024 * 1024,
    };
    let secret = settings.resolve_jwt_secret()?;
    let store = SqlStore::connect(&settings.database_url, &pool).await?;
    let jwt = Arc::new(JwtKeys::new(&secret, settings.access_token_ttl_secs));
    let shared_store = Arc::new(store.clone());
    let core = Core::new(Deps {
        users: shared_store.clone(),
        posts: shared_store.clone(),
        credentials: shared_store.clone(),
        events: shared_store.clone(),
        audit: shared_store.clone(),
        idempotency: shared_store.clone(),
        health: shared_store.clone(),
        hasher: Arc::new(Argon2Hasher::new(
            settings.password_hash_concurrency.unwrap_or_else(default_concurrency),
            settings.password_hash_queue,
        )),
        tokens: jwt.clone(),
        throttle: Arc::new(FailedLoginThrottle::new(
            settings.login_max_failures,
            Duration::from_secs(settings.login_window_secs),
            redis,
        )),
        clock: Arc::new(SystemClock),
        refresh_ttl: chrono::Duration::days(settings.refresh_token_ttl_days),
        webhooks: shared_store.clone(),
        targets: Arc::new(crate::platform::targets::AddressGuard::new(settings.webhook_allow_private)),
    });
    Ok((store, core, jwt, secret))
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let metrics = Metrics::new();
        let redis = match &settings.redis_url {
            Some(url) => Some(Arc::new(Redis::connect(url, &settings.redis_prefix, &metrics)?)),
            None => None,
        };
        let (store, core, jwt, secret) = build_core(&settings, redis.clone()).await?;
        if redis.is_none() && store.dialect() == crate::storage::Dialect::Postgres {
            tracing::warn!(
                "no POLYPORT_REDIS_URL: request budgets, the login throttle, the WS-Security nonce cache and \
                 stream caps count per instance"
            );
        }
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let store_arc = Arc::new(store.clone());
        let retention = chrono::Duration::hours(settings.idempotency_retention_hours.max(24));
        let idempotency = Idempotency::new(
            store_arc.clone(),
            clock.clone(),
            chrono::Duration::seconds(settings.request_timeout_secs as i64 * 2),
            retention,
        );
        let cursors = CursorCodec::new(secret.expose_secret().as_bytes());
        let shutdown = Shutdown::default();
        let bus = EventBus::new(
            core.deps.events.clone(),
            store.appended_signal(),
            Duration::from_millis(settings.event_poll_ms.max(10)),
            4096,
        );
        let streams = Caps::shared(settings.streams_max, settings.streams_per_caller, redis.clone());
        if let Some(redis) = redis.clone() {
            let stop = shutdown.clone();
            tokio::spawn(async move {
                let mut every = tokio::time::interval(crate::platform::redis::RENEW_EVERY);
                loop {
                    tokio::select! {
                        _ = every.tick() => redis.renew_leases().await,
                        () = stop.wait() => return,
                    }
                }
            });
        }
        let fd_limit = crate::server::raise_fd_limit();
        let listen = ListenSettings {
            header_read_timeout: settings.header_read_timeout(),
            tcp_send_buffer_bytes: settings.tcp_send_buffer_bytes,
            max_connections: settings
                .max_connections
                .unwrap_or_else(|| crate::server::default_max_connections(fd_limit)),
            max_connections_per_address: settings.max_connections_per_address,
            shutdown_delay: settings.shutdown_delay(),
            shutdown_deadline: settings.shutdown_deadline(),
        };
        tracing::info!(
            fd_limit = fd_limit.unwrap_or_default(),
            max_connections = listen.max_connections,
            per_address = listen.max_connections_per_address,
            "open files limit raised to the hard limit; connection caps set"
        );
        let observer = store.clone();
        bus.observe(move |event| observer.observe(event));
        let shared = Shared::new(SharedInner {
            core: core.clone(),
            admission: Admission::new(
                Authenticator { jwt, core: core.clone() },
                Arc::new(RateLimiter::new(Duration::from_secs(60), redis.clone())),
                Budgets {
                    per_principal: settings.rate_limit_per_minute,
                    per_anonymous: settings.rate_limit_anon_per_minute,
                },
                streams.clone(),
            ),
            cursors: cursors.clone(),
            ops: Operations { core: core.clone(), cursors, idempotency: idempotency.clone() },
            limits: Limits { body_bytes: settings.body_limit_bytes, request_timeout: settings.request_timeout() },
            idempotency,
            metrics: metrics.clone(),
            shutdown: shutdown.clone(),
            health: store_arc.clone(),
            cors_origins: settings.cors_origins.clone(),
            bus: bus.clone(),
            public_views: Default::default(),
            stream_settings: StreamSettings {
                sse_keepalive: Duration::from_secs(settings.sse_keepalive_secs.max(1)),
                revalidate: Duration::from_secs(settings.stream_revalidate_secs.max(1)),
                ws_max_subscriptions: settings.ws_max_subscriptions,
                ws_send_queue: settings.ws_send_queue.max(1),
                ws_max_message_bytes: settings.ws_max_message_bytes,
                ws_ping: Duration::from_secs(settings.ws_ping_secs.max(1)),
                stream_token_ttl_secs: settings
                    .stream_token_ttl_secs
                    .unwrap_or_else(|| u64::try_from(settings.refresh_token_ttl_days.max(0)).unwrap_or(0) * 86_400)
                    .max(1),
            },
            graphql: graphql_settings(&settings),
            redis,
        });
        let queue = Arc::new(job_queue(&settings, &store, &core, clock.clone(), metrics.clone())?);
        let housekeeping = Housekeeping {
            idempotency: store_arc.clone(),
            idempotency_retention: retention,
            events: store_arc.clone(),
            event_retention: chrono::Duration::days(settings.event_retention_days),
            audit: store_arc.clone(),
            audit_retention: chrono::Duration::days(settings.audit_retention_days.max(1)),
            clock,
            every: Duration::from_secs(300),
            jobs: store_arc,
            job_retention: chrono::Duration::days(1),
        };
        let store_dialect = store.dialect();
        let listener = TcpListener::bind(&settings.bind).await.with_context(|| format!("binding {}", settings.bind))?;
        let addr = listener.local_addr()?;
        Ok(Self {
            listener,
            addr,
            app: http::HttpApp::new(shared),
            store,
            shutdown,
            listen,
            metrics,
            housekeeping,
            core,
            bus,
            streams,
            wakeups: (store_dialect == crate::storage::Dialect::Postgres).then(|| settings.database_url.clone()),
            queue,
        })
    }

    /// The bound address (the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `announce()` starts a shutdown as SIGTERM does (readiness 503 for the shutdown delay,
    /// then drain); `trigger()` stops at once.
    pub fn shutdown_handle(&self) -> Shutdown {
        self.shutdown.clone()
    }

    pub fn core(&self) -> &Core {
        &self.core
    }

    /// Serves until SIGTERM/SIGINT or the shutdown handle; after a signal, serves on for the
    /// shutdown delay with readiness down, then drains within the deadline.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let Application {
            listener,
            addr,
            app,
            store,
            shutdown,
            listen,
            housekeeping,
            bus,
            streams,
            metrics,
            wakeups,
            queue,
            ..
        } = self;
        let signals = OsSignals::install().context("installing signal handlers")?;
        let signal_shutdown = shutdown.clone();
        tokio::spawn(async move {
            signals.recv().await;
            signal_shutdown.announce();
        });
        tokio::spawn(housekeeping.run(shutdown.clone()));
        tokio::spawn(bus.run(shutdown.clone()));
        let grace = listen.shutdown_deadline;
        let workers = tokio::spawn(queue.run(shutdown.clone()));
        if let Some(url) = wakeups {
            let (wake, stop) = (store.appended_signal(), shutdown.clone());
            tokio::spawn(async move {
                tokio::select! {
                    () = crate::storage::wakeups::listen(url, wake) => {}
                    () = stop.wait() => {}
                }
            });
        }
        print_urls(addr);

        let streams_open = move || streams.open();
        crate::server::serve(listener, app, metrics, shutdown, listen, streams_open).await;
        // The workers stopped claiming when draining began; in-flight jobs finish or hand
        // their leases back within the grace period, before the store closes.
        let _ = tokio::time::timeout(grace + Duration::from_secs(2), workers).await;
        store.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// The job queue with its handlers (webhook fan-out and delivery).
fn job_queue(
    settings: &Settings,
    store: &SqlStore,
    core: &Core,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
) -> anyhow::Result<Queue> {
    use crate::platform::webhooks::{DELIVER, Deliver, FANOUT, Fanout, Webhooks, tls_config};
    let extra_roots = match &settings.webhook_ca_file {
        Some(path) => Some(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?),
        None => None,
    };
    let store_arc = Arc::new(store.clone());
    let webhooks = Arc::new(Webhooks {
        webhooks: core.deps.webhooks.clone(),
        events: core.deps.events.clone(),
        users: core.deps.users.clone(),
        jobs: store_arc.clone(),
        targets: core.deps.targets.clone(),
        clock: clock.clone(),
        tls: tls_config(extra_roots.as_deref()).context("the webhook TLS client")?,
    });
    let queue_settings = QueueSettings {
        concurrency: settings.job_concurrency.max(1),
        lease: Duration::from_secs(settings.job_lease_secs.max(1)),
        max_attempts: settings.job_max_attempts.max(1),
        backoff_base: Duration::from_millis(settings.job_backoff_base_ms),
        backoff_max: Duration::from_secs(settings.job_backoff_max_secs.max(1)),
        poll: Duration::from_millis(settings.job_poll_ms.max(10)),
        grace: settings.shutdown_deadline(),
    };
    Ok(Queue::new(store_arc, clock, queue_settings, metrics, store.jobs_signal())
        .handle(FANOUT, Arc::new(Fanout(webhooks.clone())))
        .handle(DELIVER, Arc::new(Deliver(webhooks))))
}

fn print_urls(addr: SocketAddr) {
    let base = format!("http://{addr}");
    tracing::info!(address = %addr, "polyport listening");
    println!("polyport listening on {base}");
    println!("  console    {base}/         (every protocol from the browser)");
    println!("  REST       {base}/api/v1   (docs {base}/docs, spec {base}/api/v1/openapi.json)");
    println!("  GraphQL    {base}/graphql  (subscriptions ws://{addr}/graphql/ws)");
    println!("  gRPC       {addr} (h2c, reflection on; gRPC-Web over HTTP/1.1 on the same port)");
    println!("  SOAP       {base}/soap     (WSDL {base}/soap?wsdl)");
    println!("  WebSocket  ws://{addr}/ws");
    println!("  SSE        {base}/api/v1/events?topics=posts   (AsyncAPI {base}/api/v1/asyncapi.json)");
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
        max_selections: settings.graphql_max_selections,
        max_spreads: settings.graphql_max_fragment_spreads,
        max_batch: settings.graphql_max_batch,
        introspection,
        playground: settings.graphql_playground.unwrap_or(development),
        suggestions: development,
    }
}
