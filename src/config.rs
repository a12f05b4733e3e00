//! Settings from flags and `POLYPORT_*` environment variables; secrets stay wrapped.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::builder::BoolishValueParser;
use clap::{Args, Parser, Subcommand, ValueEnum};
use secrecy::SecretString;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Environment {
    Development,
    Production,
}

/// Who may introspect the GraphQL schema. `on` and `off` take the same spellings as every other
/// switch (true/false, yes/no, 1/0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphqlIntrospection {
    #[value(aliases = ["true", "yes", "1"])]
    On,
    #[value(aliases = ["false", "no", "0"])]
    Off,
    Authenticated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// Command line of the `polyport` binary.
#[derive(Debug, Parser)]
#[command(
    name = "polyport",
    version,
    about = "One domain core (users and posts) over REST, GraphQL, gRPC, SOAP, WebSocket and SSE"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub settings: Settings,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve,
    /// Administrative tasks.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Change an existing user's role or password (run where the database is reachable).
    #[command(subcommand)]
    Users(UsersCommand),
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an admin user (fails if the email exists; `users promote` raises an existing user).
    Create {
        /// Email address of the new admin.
        #[arg(long, env = "POLYPORT_BOOTSTRAP_ADMIN_EMAIL")]
        email: String,
        /// Password of the new admin (12 to 128 characters).
        #[arg(long, env = "POLYPORT_BOOTSTRAP_ADMIN_PASSWORD", hide_env_values = true)]
        password: String,
        /// Display name of the new admin.
        #[arg(long, default_value = "Administrator")]
        name: String,
    },
}

/// A role named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    Member,
    Editor,
    Admin,
}

impl From<RoleArg> for crate::domain::user::Role {
    fn from(role: RoleArg) -> Self {
        match role {
            RoleArg::Member => Self::Member,
            RoleArg::Editor => Self::Editor,
            RoleArg::Admin => Self::Admin,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Raise a user's role (to admin unless `--role` says otherwise); every protocol sees it at
    /// the user's next call.
    Promote {
        /// The user's email address or id.
        user: String,
        /// The role to give: editor or admin.
        #[arg(long, value_enum, default_value = "admin")]
        role: RoleArg,
    },
    /// Lower a user's role (to member unless `--role` says otherwise); every protocol sees it at
    /// the user's next call.
    Demote {
        /// The user's email address or id.
        user: String,
        /// The role to give: member or editor.
        #[arg(long, value_enum, default_value = "member")]
        role: RoleArg,
    },
    /// Set a new password, read from standard input (a prompt without echo on a terminal), and
    /// sign the user out of every session (refresh tokens and their access tokens); API keys stay.
    ResetPassword {
        /// The user's email address or id.
        user: String,
    },
}

/// Everything the server can be told. `--help` lists each flag with its environment variable.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Address to listen on (HTTP/1.1, h2c and gRPC share it); port 0 picks a free port.
    #[arg(long, global = true, env = "POLYPORT_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,
    /// `sqlite://path` (embedded, default) or `postgres://…`.
    #[arg(long, global = true, env = "DATABASE_URL", default_value = "sqlite://data/polyport.db")]
    pub database_url: String,
    /// `production` refuses to start without a JWT secret and turns off development conveniences.
    #[arg(long = "env", global = true, env = "POLYPORT_ENV", value_enum, default_value = "development")]
    pub environment: Environment,
    /// HMAC secret for access tokens and cursors (>= 32 bytes). Generated under the data
    /// directory in development when absent.
    #[arg(long, global = true, env = "POLYPORT_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<SecretString>,
    /// Where generated files (the development JWT secret) live.
    #[arg(long, global = true, env = "POLYPORT_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// Access token lifetime in seconds.
    #[arg(long, global = true, env = "POLYPORT_ACCESS_TOKEN_TTL_SECS", default_value_t = 900)]
    pub access_token_ttl_secs: u64,
    /// Refresh token lifetime in days.
    #[arg(long, global = true, env = "POLYPORT_REFRESH_TOKEN_TTL_DAYS", default_value_t = 30)]
    pub refresh_token_ttl_days: i64,
    /// Requests per minute for an authenticated principal (user or API key).
    #[arg(long, global = true, env = "POLYPORT_RATE_LIMIT_PER_MINUTE", default_value_t = 600)]
    pub rate_limit_per_minute: u64,
    /// Requests per minute for an anonymous client address.
    #[arg(long, global = true, env = "POLYPORT_RATE_LIMIT_ANON_PER_MINUTE", default_value_t = 120)]
    pub rate_limit_anon_per_minute: u64,
    /// Failed logins allowed per email and per client address within the login window.
    #[arg(long, global = true, env = "POLYPORT_LOGIN_MAX_FAILURES", default_value_t = 10)]
    pub login_max_failures: usize,
    /// The failed-login window in seconds.
    #[arg(long, global = true, env = "POLYPORT_LOGIN_WINDOW_SECS", default_value_t = 900)]
    pub login_window_secs: u64,
    /// Largest accepted request body in bytes.
    #[arg(long, global = true, env = "POLYPORT_BODY_LIMIT_BYTES", default_value_t = 1024 * 1024)]
    pub body_limit_bytes: usize,
    /// Longest a request may run, in seconds.
    #[arg(long, global = true, env = "POLYPORT_REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    pub request_timeout_secs: u64,
    /// Longest a client may take to send request headers, in seconds (slowloris guard).
    #[arg(long, global = true, env = "POLYPORT_HEADER_READ_TIMEOUT_SECS", default_value_t = 10)]
    pub header_read_timeout_secs: u64,
    /// How long in-flight requests get to finish after SIGTERM/SIGINT, in seconds.
    #[arg(long, global = true, env = "POLYPORT_SHUTDOWN_DEADLINE_SECS", default_value_t = 20)]
    pub shutdown_deadline_secs: u64,
    /// Seconds between SIGTERM and the start of draining, during which the server keeps
    /// accepting and serving while `/readyz` answers 503 (time for a load balancer to notice).
    #[arg(long, global = true, env = "POLYPORT_SHUTDOWN_DELAY_SECS", default_value_t = 0)]
    pub shutdown_delay_secs: u64,
    /// Open connections allowed in total (default: the file descriptor limit less a reserve).
    #[arg(long, global = true, env = "POLYPORT_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Open connections allowed from one client address.
    #[arg(long, global = true, env = "POLYPORT_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = 512)]
    pub max_connections_per_address: usize,
    /// Password hashes (Argon2id, 19 MiB each) computed at once (default: two per core).
    #[arg(long, global = true, env = "POLYPORT_PASSWORD_HASH_CONCURRENCY")]
    pub password_hash_concurrency: Option<usize>,
    /// Password checks that may wait for a hashing slot; beyond it logins answer RATE_LIMITED.
    #[arg(long, global = true, env = "POLYPORT_PASSWORD_HASH_QUEUE", default_value_t = 64)]
    pub password_hash_queue: usize,
    /// Origins allowed by CORS, comma separated; empty allows none.
    #[arg(long, global = true, env = "POLYPORT_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// Log format; defaults to pretty in development and json in production.
    #[arg(long, global = true, env = "POLYPORT_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Log filter (tracing `EnvFilter` syntax).
    #[arg(long, global = true, env = "POLYPORT_LOG", default_value = "info")]
    pub log: String,
    /// Database connections in the read pool.
    #[arg(long, global = true, env = "POLYPORT_DB_MAX_CONNECTIONS", default_value_t = 16)]
    pub db_max_connections: u32,
    /// Seconds a cached user or post may be served without news of it (0 disables the cache).
    /// Writes on this instance and events from others update it at once; this bounds the rest.
    #[arg(long, global = true, env = "POLYPORT_CACHE_TTL_SECS", default_value_t = 10)]
    pub cache_ttl_secs: u64,
    /// Memory budget of each of the user and post caches, in MiB.
    #[arg(long, global = true, env = "POLYPORT_CACHE_MB", default_value_t = 64)]
    pub cache_mb: usize,
    /// Open long-lived streams allowed in total (SSE, /ws, /graphql/ws, gRPC Subscribe, Live, ListPosts).
    #[arg(long, global = true, env = "POLYPORT_STREAMS_MAX", default_value_t = 20_000)]
    pub streams_max: usize,
    /// Open long-lived streams allowed per user (its API keys included) or anonymous address.
    #[arg(long, global = true, env = "POLYPORT_STREAMS_PER_CALLER", default_value_t = 32)]
    pub streams_per_caller: usize,
    /// Subscriptions one WebSocket connection may hold.
    #[arg(long, global = true, env = "POLYPORT_WS_MAX_SUBSCRIPTIONS", default_value_t = 16)]
    pub ws_max_subscriptions: usize,
    /// Frames queued for one WebSocket client before it counts as lagging (closed with 1013).
    #[arg(long, global = true, env = "POLYPORT_WS_SEND_QUEUE", default_value_t = 256)]
    pub ws_send_queue: usize,
    /// SO_SNDBUF of accepted connections in bytes (unset: the kernel's autotuning). A small value
    /// bounds the kernel memory a client that stops reading can pin, and makes it lag sooner.
    #[arg(long, global = true, env = "POLYPORT_TCP_SEND_BUFFER_BYTES")]
    pub tcp_send_buffer_bytes: Option<u32>,
    /// Largest WebSocket message accepted from a client, in bytes (larger: close 1009).
    #[arg(long, global = true, env = "POLYPORT_WS_MAX_MESSAGE_BYTES", default_value_t = 64 * 1024)]
    pub ws_max_message_bytes: usize,
    /// Seconds between server pings on WebSocket connections.
    #[arg(long, global = true, env = "POLYPORT_WS_PING_SECS", default_value_t = 30)]
    pub ws_ping_secs: u64,
    /// Seconds between SSE keep-alive comments.
    #[arg(long, global = true, env = "POLYPORT_SSE_KEEPALIVE_SECS", default_value_t = 15)]
    pub sse_keepalive_secs: u64,
    /// Seconds between checks that a stream's credential was not revoked (the bound on how
    /// long a revoked session keeps receiving).
    #[arg(long, global = true, env = "POLYPORT_STREAM_REVALIDATE_SECS", default_value_t = 5)]
    pub stream_revalidate_secs: u64,
    /// Lifetime in seconds of a stream token (`POST /api/v1/events/token`, for EventSource);
    /// unset: the refresh-token lifetime. The token is refused as soon as the session or API key
    /// that minted it is revoked, whatever its lifetime.
    #[arg(long, env = "POLYPORT_STREAM_TOKEN_TTL_SECS")]
    pub stream_token_ttl_secs: Option<u64>,
    /// Redis shared by every instance for request budgets, the failed-login throttle, the
    /// WS-Security nonce cache and per-caller stream caps (e.g. `redis://127.0.0.1:6379`);
    /// unset: each instance alone.
    #[arg(long, global = true, env = "POLYPORT_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Prefix of every key Polyport writes in Redis (instances of one deployment share it).
    #[arg(long, global = true, env = "POLYPORT_REDIS_PREFIX", default_value = "polyport:")]
    pub redis_prefix: String,
    /// Milliseconds between event-log polls (the bound on cross-instance delivery delay; events
    /// written by this instance are delivered at once).
    #[arg(long, global = true, env = "POLYPORT_EVENT_POLL_MS", default_value_t = 250)]
    pub event_poll_ms: u64,
    /// Hours an idempotency key and its response are kept (at least 24).
    #[arg(long, global = true, env = "POLYPORT_IDEMPOTENCY_RETENTION_HOURS", default_value_t = 24)]
    pub idempotency_retention_hours: i64,
    /// Days events stay in the event log.
    #[arg(long, global = true, env = "POLYPORT_EVENT_RETENTION_DAYS", default_value_t = 7)]
    pub event_retention_days: i64,
    /// OTLP/HTTP collector base URL (e.g. `http://127.0.0.1:4318`): when set, spans are exported
    /// to `<url>/v1/traces` as protobuf.
    #[arg(long = "otlp-endpoint", env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// Days audit log entries are kept (the housekeeping purge is the only way one is removed).
    #[arg(long, env = "POLYPORT_AUDIT_RETENTION_DAYS", default_value_t = 365)]
    pub audit_retention_days: i64,
    /// Deepest GraphQL selection accepted (graphql-js's introspection query needs more than 12).
    #[arg(long, global = true, env = "POLYPORT_GRAPHQL_MAX_DEPTH", default_value_t = 16)]
    pub graphql_max_depth: usize,
    /// Highest GraphQL query complexity accepted (lists count `first` times their fields).
    #[arg(long, global = true, env = "POLYPORT_GRAPHQL_MAX_COMPLEXITY", default_value_t = 5000)]
    pub graphql_max_complexity: usize,
    /// Most aliases one GraphQL document may use.
    #[arg(long, global = true, env = "POLYPORT_GRAPHQL_MAX_ALIASES", default_value_t = 30)]
    pub graphql_max_aliases: usize,
    /// Most fields and inline fragments in one GraphQL document once its fragments are expanded.
    #[arg(long, global = true, env = "POLYPORT_GRAPHQL_MAX_SELECTIONS", default_value_t = 2000)]
    pub graphql_max_selections: u64,
    /// Most fragment spreads in one GraphQL document once its fragments are expanded.
    #[arg(long, global = true, env = "POLYPORT_GRAPHQL_MAX_FRAGMENT_SPREADS", default_value_t = 200)]
    pub graphql_max_fragment_spreads: u64,
    /// Most operations in one batched GraphQL request (0 turns batching off).
    #[arg(long, global = true, env = "POLYPORT_GRAPHQL_MAX_BATCH", default_value_t = 10)]
    pub graphql_max_batch: usize,
    /// GraphQL introspection: on, off, or authenticated (default: on in development, off in production).
    #[arg(long, global = true, env = "POLYPORT_GRAPHQL_INTROSPECTION", value_enum)]
    pub graphql_introspection: Option<GraphqlIntrospection>,
    /// Serve GraphiQL at GET /graphql to browsers (default: on in development, off in production).
    #[arg(long, global = true, env = "POLYPORT_GRAPHQL_PLAYGROUND", value_name = "on|off", value_parser = BoolishValueParser::new())]
    pub graphql_playground: Option<bool>,
    /// Background jobs (webhook deliveries) this instance runs at once.
    #[arg(long, env = "POLYPORT_JOB_CONCURRENCY", default_value_t = 8)]
    pub job_concurrency: usize,
    /// Attempts before a job is given up (dead).
    #[arg(long, env = "POLYPORT_JOB_MAX_ATTEMPTS", default_value_t = 8)]
    pub job_max_attempts: u32,
    /// Seconds a worker holds a claimed job; past it (the worker died) another takes the job.
    #[arg(long, env = "POLYPORT_JOB_LEASE_SECS", default_value_t = 60)]
    pub job_lease_secs: u64,
    /// Milliseconds before a failed job's first retry; each later retry waits twice as long
    /// (with jitter), up to the backoff maximum.
    #[arg(long, env = "POLYPORT_JOB_BACKOFF_BASE_MS", default_value_t = 2000)]
    pub job_backoff_base_ms: u64,
    /// Longest wait between two attempts of a job, in seconds.
    #[arg(long, env = "POLYPORT_JOB_BACKOFF_MAX_SECS", default_value_t = 3600)]
    pub job_backoff_max_secs: u64,
    /// Milliseconds between polls for due jobs (jobs queued by this instance start at once).
    #[arg(long, env = "POLYPORT_JOB_POLL_MS", default_value_t = 1000)]
    pub job_poll_ms: u64,
    /// Let webhooks target loopback and private addresses (local development and tests only).
    #[arg(long, env = "POLYPORT_WEBHOOK_ALLOW_PRIVATE", default_value_t = false, action = clap::ArgAction::Set)]
    pub webhook_allow_private: bool,
    /// A PEM file of extra CA certificates trusted for https webhooks (a private CA), beside
    /// the bundled Mozilla roots.
    #[arg(long, env = "POLYPORT_WEBHOOK_CA_FILE")]
    pub webhook_ca_file: Option<PathBuf>,
}

impl Settings {
    /// Defaults as if no flag or variable were given (environment variables still apply).
    pub fn from_env() -> Self {
        Cli::parse_from(["polyport"]).settings
    }

    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_secs(self.header_read_timeout_secs)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    pub fn shutdown_delay(&self) -> Duration {
        Duration::from_secs(self.shutdown_delay_secs)
    }

    pub fn shutdown_deadline(&self) -> Duration {
        Duration::from_secs(self.shutdown_deadline_secs)
    }

    pub fn log_format(&self) -> LogFormat {
        self.log_format.unwrap_or(match self.environment {
            Environment::Development => LogFormat::Pretty,
            Environment::Production => LogFormat::Json,
        })
    }

    /// The JWT secret: given, or in development read from / generated into the data directory.
    pub fn resolve_jwt_secret(&self) -> anyhow::Result<SecretString> {
        use secrecy::ExposeSecret;
        if let Some(secret) = &self.jwt_secret {
            anyhow::ensure!(secret.expose_secret().len() >= 32, "POLYPORT_JWT_SECRET must be at least 32 bytes");
            return Ok(secret.clone());
        }
        anyhow::ensure!(
            self.environment == Environment::Development,
            "POLYPORT_JWT_SECRET is required with --env production"
        );
        // Instances sharing a PostgreSQL database sit behind one balancer: a secret generated
        // per instance would make each reject the others' tokens and cursors.
        anyhow::ensure!(
            !self.database_url.starts_with("postgres"),
            "POLYPORT_JWT_SECRET is required on PostgreSQL: every instance sharing the database must use the same one"
        );
        let path = self.data_dir.join("jwt-secret");
        if let Ok(existing) = std::fs::read_to_string(&path) {
            let existing = existing.trim().to_string();
            if existing.len() >= 32 {
                return Ok(SecretString::from(existing));
            }
        }
        std::fs::create_dir_all(&self.data_dir).with_context(|| format!("creating {}", self.data_dir.display()))?;
        let secret = crate::domain::service::random_secret();
        write_private(&path, &secret)?;
        tracing::warn!(path = %path.display(), "no POLYPORT_JWT_SECRET given: generated one for development");
        Ok(SecretString::from(secret))
    }
}

fn write_private(path: &std::path::Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| format!("writing {}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    Ok(())
}
