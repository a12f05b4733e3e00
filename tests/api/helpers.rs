//! Test support: spawn the real server on port 0 over SQLite or PostgreSQL, and typed helpers
//! for the routes tests use most.

use std::path::PathBuf;

use polyport::Settings;
use polyport::domain::service::Core;
use polyport::domain::user::{RegisterUser, Role};
use polyport::platform::shutdown::Shutdown;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use sqlx::Connection;

pub const PASSWORD: &str = "correct horse battery";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub base: String,
    pub addr: std::net::SocketAddr,
    pub client: reqwest::Client,
    pub core: Core,
    pub shutdown: Shutdown,
    pub server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    /// The store this instance runs on (another instance may share it).
    pub database_url: String,
    dir: Option<PathBuf>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.trigger();
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Settings for a test server: port 0, fixed secret, generous limits, quiet logs.
pub fn test_settings() -> Settings {
    let mut s = Settings::from_env();
    s.bind = "127.0.0.1:0".into();
    s.jwt_secret = Some("test-secret-test-secret-test-secret-0123".to_string().into());
    s.rate_limit_per_minute = 100_000;
    s.rate_limit_anon_per_minute = 100_000;
    s.login_max_failures = 1_000;
    s.shutdown_deadline_secs = 5;
    s.log = std::env::var("TEST_LOG").unwrap_or_else(|_| "error".into());
    s
}

/// A server on SQLite with default test settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(Store::Sqlite, |_| {}).await.expect("sqlite is always available")
}

/// A server on `store`; None when PostgreSQL is asked for but `TEST_DATABASE_URL` is unset.
pub async fn spawn_app_with(store: Store, tweak: impl FnOnce(&mut Settings)) -> Option<TestApp> {
    // `POLYPORT_TEST_STORE=postgres` runs every SQLite case on PostgreSQL instead, so the whole
    // suite can run once per store (CI does both).
    let store = match std::env::var("POLYPORT_TEST_STORE").as_deref() {
        Ok("postgres") if store == Store::Sqlite => Store::Postgres,
        _ => store,
    };
    let mut settings = test_settings();
    let mut dir = None;
    settings.database_url = match store {
        Store::Sqlite => {
            let d = std::env::temp_dir().join(format!("polyport-test-{}", uuid::Uuid::now_v7().simple()));
            let url = format!("sqlite://{}/db.sqlite", d.display());
            settings.data_dir = d.clone();
            dir = Some(d);
            url
        }
        Store::Postgres => fresh_postgres_database().await?,
    };
    tweak(&mut settings);
    Some(start(settings, dir).await)
}

/// Another instance on the same PostgreSQL database as `app` (None on SQLite).
pub async fn spawn_sibling(app: &TestApp, tweak: impl FnOnce(&mut Settings)) -> Option<TestApp> {
    if !app.database_url.starts_with("postgres") {
        return None;
    }
    let mut settings = test_settings();
    settings.database_url = app.database_url.clone();
    tweak(&mut settings);
    Some(start(settings, None).await)
}

/// Stops `app` and starts a new server on its store, its data directory and its address, as a
/// restart of the process would (the JWT secret is the test one, as a deployment's would be).
pub async fn restart(mut app: TestApp, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    app.shutdown.trigger();
    if let Some(server) = app.server.take() {
        let _ = server.await;
    }
    let mut settings = test_settings();
    settings.database_url = app.database_url.clone();
    if let Some(dir) = &app.dir {
        settings.data_dir = dir.clone();
    }
    settings.bind = app.addr.to_string();
    tweak(&mut settings);
    let dir = app.dir.take();
    start(settings, dir).await
}

async fn start(settings: Settings, dir: Option<PathBuf>) -> TestApp {
    if std::env::var("TEST_LOG").is_ok() {
        polyport::telemetry::init(polyport::config::LogFormat::Pretty, &settings.log, None);
    }
    let database_url = settings.database_url.clone();
    let app = polyport::Application::build(settings).await.expect("the app builds");
    let addr = app.local_addr();
    let core = app.core().clone();
    let shutdown = app.shutdown_handle();
    let server = tokio::spawn(app.run_until_stopped());
    TestApp {
        base: format!("http://{addr}"),
        addr,
        client: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap(),
        core,
        shutdown,
        server: Some(server),
        database_url,
        dir,
    }
}

/// A new empty database on the server of `TEST_DATABASE_URL`.
pub async fn fresh_postgres_database() -> Option<String> {
    let url = std::env::var("TEST_DATABASE_URL").ok().filter(|u| !u.is_empty())?;
    let name = format!("polyport_t_{}", uuid::Uuid::now_v7().simple());
    let mut conn = sqlx::PgConnection::connect(&url).await.expect("TEST_DATABASE_URL is reachable");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create test database");
    let (server, _) = url.rsplit_once('/').expect("TEST_DATABASE_URL names a database");
    Some(format!("{server}/{name}"))
}

/// Runs a test case on SQLite, and on PostgreSQL when `TEST_DATABASE_URL` is set.
#[macro_export]
macro_rules! on_every_store {
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            #[tokio::test]
            async fn on_sqlite() {
                let app = $crate::helpers::spawn_app_with($crate::helpers::Store::Sqlite, |_| {}).await.unwrap();
                super::$case(app).await;
            }

            #[tokio::test]
            async fn on_postgres() {
                let Some(app) = $crate::helpers::spawn_app_with($crate::helpers::Store::Postgres, |_| {}).await else {
                    eprintln!("TEST_DATABASE_URL not set: PostgreSQL case skipped");
                    return;
                };
                super::$case(app).await;
            }
        }
    )*};
}

/// A user with a live access token.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: String,
    pub email: String,
    pub token: String,
    pub refresh_token: String,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn api(&self, path: &str) -> String {
        format!("{}/api/v1{}", self.base, path)
    }

    /// A request to `/api/v1{path}`, authenticated with `token` when given.
    pub fn req(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let rb = self.client.request(method, self.api(path));
        match token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        self.req(Method::GET, path, token).send().await.expect("request sent")
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Response {
        self.req(Method::POST, path, token).json(&body).send().await.expect("request sent")
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: Value) -> Response {
        self.req(Method::PATCH, path, token).json(&body).send().await.expect("request sent")
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Response {
        self.req(Method::DELETE, path, token).send().await.expect("request sent")
    }

    /// Registers through the API and logs in.
    pub async fn member(&self, name: &str) -> TestUser {
        let email = format!("{name}-{}@example.com", uuid::Uuid::now_v7().simple());
        let r = self.post("/users", None, json!({"email": email, "name": name, "password": PASSWORD})).await;
        assert_eq!(r.status(), StatusCode::CREATED, "register {name}");
        let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
        self.login_as(id, email).await
    }

    /// Creates a user with `role` directly in the core (as `polyport admin create` does), then logs in.
    pub async fn with_role(&self, name: &str, role: Role) -> TestUser {
        let email = format!("{name}-{}@example.com", uuid::Uuid::now_v7().simple());
        let user = self
            .core
            .users
            .create(
                RegisterUser { email: email.clone(), name: name.into(), password: PASSWORD.into() },
                role,
                &Default::default(),
            )
            .await
            .expect("user created");
        self.login_as(user.id, email).await
    }

    pub async fn login_as(&self, id: String, email: String) -> TestUser {
        let r = self.post("/auth/login", None, json!({"email": email, "password": PASSWORD})).await;
        assert_eq!(r.status(), StatusCode::OK, "login {email}");
        let body: Value = r.json().await.unwrap();
        TestUser {
            id,
            email,
            token: body["access_token"].as_str().unwrap().into(),
            refresh_token: body["refresh_token"].as_str().unwrap().into(),
        }
    }

    /// Creates a post as `user`; returns its JSON.
    pub async fn create_post(&self, user: &TestUser, title: &str, tags: &[&str]) -> Value {
        let r = self.post("/posts", Some(&user.token), json!({"title": title, "body": "text", "tags": tags})).await;
        assert_eq!(r.status(), StatusCode::CREATED, "create post {title}");
        r.json().await.unwrap()
    }

    pub async fn published_post(&self, user: &TestUser, title: &str) -> Value {
        let post = self.create_post(user, title, &[]).await;
        let r =
            self.post(&format!("/posts/{}/publish", post["id"].as_str().unwrap()), Some(&user.token), json!({})).await;
        assert_eq!(r.status(), StatusCode::OK);
        r.json().await.unwrap()
    }

    /// Event types in the durable log, in id order.
    pub async fn event_types(&self) -> Vec<String> {
        let events = self.core.deps.events.read_after(0, 10_000).await.unwrap();
        events.iter().map(|e| e.event_type.as_str().to_string()).collect()
    }
}

/// Asserts a response is our error envelope with `status` and `code`; returns the body.
pub async fn assert_error(response: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(response.status(), status, "status");
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = response.json().await.expect("JSON error body");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(body["error"]["details"].is_array());
    assert!(body["error"]["request_id"].as_str().is_some_and(|m| !m.is_empty()));
    body
}
