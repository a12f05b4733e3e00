//! The operator commands (`polyport users promote|demote|reset-password`) run as the real
//! binary against a store a running server shares, and the command line's own manners: help
//! for every option, global flags after the subcommand, one on/off vocabulary, one-sentence
//! errors, no colour codes when output is not a terminal.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use clap::{CommandFactory, Parser};
use polyport::config::Cli;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, fresh_postgres_database};
use crate::process::{SECRET, binary, sigterm, start, temp_dir};

const NEW_PASSWORD: &str = "a brand new passphrase";

/// A store for one case: a temp SQLite file, or a fresh PostgreSQL database.
struct Store {
    dir: std::path::PathBuf,
    url: String,
}

impl Store {
    async fn sqlite() -> Store {
        let dir = temp_dir();
        let url = format!("sqlite://{}/db.sqlite", dir.display());
        Store { dir, url }
    }

    async fn postgres() -> Option<Store> {
        Some(Store { dir: temp_dir(), url: fresh_postgres_database().await? })
    }

    /// The binary on this store.
    fn polyport(&self) -> Command {
        let mut cmd = binary(&self.dir);
        cmd.env("DATABASE_URL", &self.url).env("POLYPORT_JWT_SECRET", SECRET).env("POLYPORT_LOG", "warn");
        cmd
    }

    /// Runs the binary with `args`, feeding `stdin`.
    fn run(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = self
            .polyport()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }

    /// One column of one row, read from the store itself (not through the server).
    async fn stored(&self, sql: &str, email: &str) -> Vec<Option<String>> {
        if self.url.starts_with("postgres") {
            use sqlx::{Connection, Row};
            let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
            let sql = sql.replace('?', "$1");
            let rows = sqlx::query(&sql).bind(email).fetch_all(&mut conn).await.unwrap();
            rows.iter()
                .map(|r| {
                    r.try_get::<Option<String>, _>(0)
                        .unwrap_or_else(|_| r.get::<Option<i64>, _>(0).map(|v| v.to_string()))
                })
                .collect()
        } else {
            let path = self.url.trim_start_matches("sqlite://").to_string();
            let sql = sql.to_string();
            let email = email.to_string();
            tokio::task::spawn_blocking(move || {
                let conn = rusqlite::Connection::open(path).unwrap();
                let mut stmt = conn.prepare(&sql).unwrap();
                let rows = stmt
                    .query_map([email], |r| {
                        let v: rusqlite::types::Value = r.get(0)?;
                        Ok(match v {
                            rusqlite::types::Value::Null => None,
                            rusqlite::types::Value::Integer(i) => Some(i.to_string()),
                            rusqlite::types::Value::Text(t) => Some(t),
                            other => Some(format!("{other:?}")),
                        })
                    })
                    .unwrap();
                rows.map(Result::unwrap).collect()
            })
            .await
            .unwrap()
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Fails unless the command failed with exactly one line on stderr, a sentence without Rust
/// Debug output or colour codes.
fn assert_one_sentence_failure(out: &Output, contains: &str) {
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "expected a failure; stdout: {}", text(&out.stdout));
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr: {stderr:?}");
    assert!(lines[0].starts_with("polyport: ") && lines[0].contains(contains), "{stderr:?}");
    for debug in ["DomainError", "FieldIssue", "Error {", "Caused by", "\u{1b}["] {
        assert!(!stderr.contains(debug), "no Debug output or colour codes: {stderr:?}");
    }
}

async fn register_and_login(base: &str, email: &str) -> Value {
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{base}/api/v1/users"))
        .json(&json!({"email": email, "name": "Ada", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    login(base, email, PASSWORD).await.1
}

async fn login(base: &str, email: &str, password: &str) -> (StatusCode, Value) {
    let r = reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap_or(Value::Null))
}

/// Polls `GET /api/v1/users/me` until `check` holds (the server learns of the other process's
/// write from the event log: within its poll interval on SQLite, at once on PostgreSQL).
async fn me_until(base: &str, token: &str, check: impl Fn(StatusCode, &Value) -> bool) -> (StatusCode, Value) {
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let r = client.get(format!("{base}/api/v1/users/me")).bearer_auth(token).send().await.unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        if check(status, &body) || tokio::time::Instant::now() > deadline {
            return (status, body);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn promote_and_demote_change_the_stored_role_and_every_call_after(store: Store) {
    let (mut server, base, _) = start(store.polyport());
    let email = "promote.me@example.com";
    let tokens = register_and_login(&base, email).await;
    let token = tokens["access_token"].as_str().unwrap();
    register_and_login(&base, "someone.else@example.com").await;
    // Whether the caller sees another user's email (only admins do).
    let sees_others_email =
        |users: Value| users["data"].as_array().unwrap().iter().any(|u| u["email"] == "someone.else@example.com");
    let role_sql = "SELECT role FROM users WHERE email_normalized = ?";

    let out = store.run(&["users", "promote", email], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).trim_end().ends_with(&format!("<{email}>: member -> admin")), "{}", text(&out.stdout));
    assert_eq!(store.stored(role_sql, email).await, vec![Some("admin".to_string())]);
    // The same access token, the next calls: the role comes from the user record.
    let (status, me) = me_until(&base, token, |_, me| me["role"] == "admin").await;
    assert_eq!((status, me["role"].as_str()), (StatusCode::OK, Some("admin")));
    let users = reqwest::Client::new().get(format!("{base}/api/v1/users")).bearer_auth(token).send().await.unwrap();
    let users: Value = users.json().await.unwrap();
    assert!(sees_others_email(users.clone()), "an admin sees every email: {users}");
    // GraphQL, with the same token, through the same admission step.
    let me = reqwest::Client::new()
        .post(format!("{base}/graphql"))
        .bearer_auth(token)
        .json(&json!({"query": "{ me { role } users(first: 10) { edges { node { email } } } }"}))
        .send()
        .await
        .unwrap();
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["data"]["me"]["role"], "ADMIN", "{me}");
    let emails = me["data"]["users"]["edges"].as_array().unwrap();
    assert!(emails.iter().any(|e| e["node"]["email"] == "someone.else@example.com"), "{me}");

    // Promoting an admin again is refused in one sentence, and nothing changes.
    let again = store.run(&["users", "promote", email], "");
    assert_one_sentence_failure(&again, "is admin already");
    assert_eq!(store.stored(role_sql, email).await, vec![Some("admin".to_string())]);

    let out = store.run(&["users", "demote", email, "--role", "editor"], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(store.stored(role_sql, email).await, vec![Some("editor".to_string())]);
    let (_, me) = me_until(&base, token, |_, me| me["role"] == "editor").await;
    assert_eq!(me["role"], "editor");
    let out = store.run(&["users", "demote", email], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(store.stored(role_sql, email).await, vec![Some("member".to_string())]);
    let (_, me) = me_until(&base, token, |_, me| me["role"] == "member").await;
    assert_eq!(me["role"], "member");
    let users = reqwest::Client::new().get(format!("{base}/api/v1/users")).bearer_auth(token).send().await.unwrap();
    let users: Value = users.json().await.unwrap();
    assert!(!sees_others_email(users.clone()), "a member does not: {users}");

    // An unknown user, named by email or by id: one sentence, exit status 1.
    assert_one_sentence_failure(&store.run(&["users", "promote", "nobody@example.com"], ""), "user not found");
    assert_one_sentence_failure(
        &store.run(&["users", "demote", "01a00000-0000-7000-8000-000000000000"], ""),
        "user not found",
    );
    sigterm(&server);
    server.wait().unwrap();
}

async fn reset_password_replaces_the_password_and_signs_out_every_session(store: Store) {
    let (mut server, base, _) = start(store.polyport());
    let email = "forgetful@example.com";
    let first = register_and_login(&base, email).await;
    let (_, second) = login(&base, email, PASSWORD).await;
    let client = reqwest::Client::new();

    // Too short: refused before anything is written.
    let short = store.run(&["users", "reset-password", email], "short\n");
    assert_one_sentence_failure(&short, "password is too short");
    assert_eq!(login(&base, email, PASSWORD).await.0, StatusCode::OK, "the old password still works");
    let revoked_sql =
        "SELECT revoked_at FROM refresh_tokens WHERE user_id = (SELECT id FROM users WHERE email_normalized = ?)";
    assert!(store.stored(revoked_sql, email).await.iter().all(Option::is_none));

    let out = store.run(&["users", "reset-password", email], &format!("{NEW_PASSWORD}\n"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("password reset for"), "{}", text(&out.stdout));
    assert!(!text(&out.stdout).contains(NEW_PASSWORD) && !text(&out.stderr).contains(NEW_PASSWORD));

    // Stored: every refresh token of the user is revoked (three logins, three families).
    let revoked = store.stored(revoked_sql, email).await;
    assert_eq!(revoked.len(), 3, "{revoked:?}");
    assert!(revoked.iter().all(Option::is_some), "{revoked:?}");

    assert_eq!(login(&base, email, PASSWORD).await.0, StatusCode::UNAUTHORIZED, "the old password fails");
    let (status, fresh) = login(&base, email, NEW_PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "the new password works: {fresh}");
    for old in [&first, &second] {
        let r = client
            .post(format!("{base}/api/v1/auth/refresh"))
            .json(&json!({"refresh_token": old["refresh_token"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "an old refresh token fails");
        let token = old["access_token"].as_str().unwrap();
        let (status, _) = me_until(&base, token, |s, _| s == StatusCode::UNAUTHORIZED).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "an old session's access token fails");
    }
    let (status, me) = me_until(&base, fresh["access_token"].as_str().unwrap(), |s, _| s == StatusCode::OK).await;
    assert_eq!((status, me["email"].as_str()), (StatusCode::OK, Some(email)), "the new session works");
    sigterm(&server);
    server.wait().unwrap();
}

#[tokio::test]
async fn users_promote_and_demote_change_the_stored_role_seen_by_the_running_server_on_sqlite() {
    promote_and_demote_change_the_stored_role_and_every_call_after(Store::sqlite().await).await;
}

#[tokio::test]
async fn users_promote_and_demote_change_the_stored_role_seen_by_the_running_server_on_postgres() {
    let Some(store) = Store::postgres().await else {
        eprintln!("TEST_DATABASE_URL not set: PostgreSQL case skipped");
        return;
    };
    promote_and_demote_change_the_stored_role_and_every_call_after(store).await;
}

#[tokio::test]
async fn users_reset_password_sets_a_new_password_and_old_refresh_tokens_fail_on_sqlite() {
    reset_password_replaces_the_password_and_signs_out_every_session(Store::sqlite().await).await;
}

#[tokio::test]
async fn users_reset_password_sets_a_new_password_and_old_refresh_tokens_fail_on_postgres() {
    let Some(store) = Store::postgres().await else {
        eprintln!("TEST_DATABASE_URL not set: PostgreSQL case skipped");
        return;
    };
    reset_password_replaces_the_password_and_signs_out_every_session(store).await;
}

#[tokio::test]
async fn global_flags_work_after_the_subcommand_errors_are_one_sentence_without_colour_and_users_needs_an_existing_store()
 {
    let store = Store::sqlite().await;
    let elsewhere = temp_dir();
    let url = format!("sqlite://{}/other.sqlite", elsewhere.display());
    // Given after the subcommand, --database-url still names the store: the user is made there.
    let out = store
        .run(&["admin", "create", "--email", "ops@example.com", "--password", PASSWORD, "--database-url", &url], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(elsewhere.join("other.sqlite").exists(), "the flag after the subcommand was used");
    let out = store.run(&["users", "demote", "ops@example.com", "--database-url", &url, "--log", "warn"], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    // This case's default store does not exist yet: `users` refuses it rather than creating an
    // empty database there; made by a server, it is simply without that user.
    assert_one_sentence_failure(&store.run(&["users", "demote", "ops@example.com"], ""), "no database at");
    assert!(!store.dir.join("db.sqlite").exists(), "no database was created");
    let (mut server, _, _) = start(store.polyport());
    sigterm(&server);
    server.wait().unwrap();
    assert_one_sentence_failure(&store.run(&["users", "demote", "ops@example.com"], ""), "user not found");
    // A duplicate admin: the domain's sentence, no Debug dump of its details.
    let dup = store
        .run(&["admin", "create", "--email", "ops@example.com", "--password", PASSWORD, "--database-url", &url], "");
    assert_one_sentence_failure(&dup, "already exists");
    // An empty password on stdin.
    assert_one_sentence_failure(&store.run(&["users", "reset-password", "ops@example.com"], ""), "no password");

    // Help and usage errors have no colour codes when output is not a terminal.
    for args in [&["--help"][..], &["users", "--help"], &["users", "reset-password", "--help"], &["users", "promote"]] {
        let out = store.run(args, "");
        assert!(!text(&out.stdout).contains('\u{1b}') && !text(&out.stderr).contains('\u{1b}'), "{args:?}");
        assert!(!(text(&out.stdout) + &text(&out.stderr)).trim().is_empty(), "{args:?}");
    }
    // Server logs on a pipe: no colour codes either.
    let mut cmd = store.polyport();
    cmd.env("POLYPORT_LOG", "info");
    let (mut server, _, lines) = start(cmd);
    sigterm(&server);
    server.wait().unwrap();
    let logged: Vec<String> = lines.try_iter().collect();
    assert!(!logged.is_empty() && logged.iter().all(|l| !l.contains('\u{1b}')), "{logged:?}");
    let _ = std::fs::remove_dir_all(elsewhere);
}

#[test]
fn every_option_has_help_text_and_every_switch_takes_the_same_on_and_off_words() {
    let cli = Cli::command();
    let mut commands = vec![&cli];
    let mut missing = Vec::new();
    while let Some(command) = commands.pop() {
        commands.extend(command.get_subcommands());
        if command.get_about().is_none() && command.get_name() != "polyport" {
            missing.push(format!("command {}", command.get_name()));
        }
        for arg in command.get_arguments().filter(|a| !matches!(a.get_id().as_str(), "help" | "version")) {
            if arg.get_help().is_none() {
                missing.push(format!("{} {}", command.get_name(), arg.get_id()));
            }
        }
    }
    assert!(missing.is_empty(), "options without help text: {missing:?}");

    for (words, on) in [(["true", "on", "1", "yes"], true), (["false", "off", "0", "no"], false)] {
        for word in words {
            let parsed = Cli::try_parse_from(["polyport", "--graphql-playground", word]).unwrap();
            assert_eq!(parsed.settings.graphql_playground, Some(on), "--graphql-playground {word}");
            let parsed = Cli::try_parse_from(["polyport", "--graphql-introspection", word]).unwrap();
            let want = if on {
                polyport::config::GraphqlIntrospection::On
            } else {
                polyport::config::GraphqlIntrospection::Off
            };
            assert_eq!(parsed.settings.graphql_introspection, Some(want), "--graphql-introspection {word}");
        }
    }
    assert!(Cli::try_parse_from(["polyport", "--graphql-playground", "maybe"]).is_err());
    // Global flags parse after a subcommand too.
    let parsed =
        Cli::try_parse_from(["polyport", "users", "promote", "a@example.com", "--bind", "127.0.0.1:9"]).unwrap();
    assert_eq!(parsed.settings.bind, "127.0.0.1:9");
}
