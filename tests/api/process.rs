//! The `polyport` binary as an operator runs it: admin bootstrap, production guard rails,
//! JSON logs with request ids, SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::PASSWORD;

pub const SECRET: &str = "process-test-secret-process-test-secret-0";

pub fn binary(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_polyport"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", format!("sqlite://{}/db.sqlite", dir.display()))
        .env("POLYPORT_DATA_DIR", dir)
        .env("POLYPORT_BIND", "127.0.0.1:0")
        .stdin(Stdio::null());
    cmd
}

pub fn temp_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("polyport-proc-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Starts the server and returns it with its base URL, read from the line it prints, and
/// every line it prints (those before the address included).
pub fn start(mut cmd: Command) -> (Child, String, std::sync::mpsc::Receiver<String>) {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    let mut before = Vec::new();
    let base = loop {
        let line = rx.recv_timeout(Duration::from_secs(30)).expect("the server prints its address");
        if let Some(rest) = line.strip_prefix("polyport listening on ") {
            break rest.trim().to_string();
        }
        before.push(line);
    };
    // What came before the address stays readable (after what arrived meanwhile).
    for line in before {
        let _ = tx.send(line);
    }
    (child, base, rx)
}

pub fn sigterm(child: &Child) {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn admin_create_bootstraps_an_admin_who_can_list_emails() {
    let dir = temp_dir();
    let out = binary(&dir)
        .env("POLYPORT_JWT_SECRET", SECRET)
        .args(["admin", "create", "--email", "root@example.com", "--password", PASSWORD])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("admin created"));

    let mut cmd = binary(&dir);
    cmd.env("POLYPORT_JWT_SECRET", SECRET);
    let (mut child, base, _) = start(cmd);
    let client = reqwest::Client::new();
    let login: Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": "root@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let users: Value = client
        .get(format!("{base}/api/v1/users"))
        .bearer_auth(login["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(users["data"][0]["role"], "admin");
    assert_eq!(users["data"][0]["email"], "root@example.com");
    sigterm(&child);
    child.wait().unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn production_refuses_to_start_without_a_jwt_secret() {
    let dir = temp_dir();
    let out = binary(&dir).args(["--env", "production"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("POLYPORT_JWT_SECRET is required"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn postgres_refuses_to_start_without_an_explicit_jwt_secret() {
    let dir = temp_dir();
    // Checked before connecting: no database needs to answer.
    let out = binary(&dir).env("DATABASE_URL", "postgres://nobody@127.0.0.1:9/none").output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("POLYPORT_JWT_SECRET is required on PostgreSQL"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn development_generates_and_keeps_a_private_jwt_secret() {
    let dir = temp_dir();
    let (mut child, _, _) = start(binary(&dir));
    sigterm(&child);
    assert!(child.wait().unwrap().success());
    let path = dir.join("jwt-secret");
    let first = std::fs::read_to_string(&path).unwrap();
    assert!(first.len() >= 32);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let (mut child, _, _) = start(binary(&dir));
    sigterm(&child);
    child.wait().unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), first, "the secret survives restarts");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn json_logs_carry_the_request_id_and_trace_id_and_sigterm_exits_zero() {
    let dir = temp_dir();
    let mut cmd = binary(&dir);
    cmd.env("POLYPORT_JWT_SECRET", SECRET).env("POLYPORT_LOG_FORMAT", "json").env("POLYPORT_LOG", "info");
    let (mut child, base, lines) = start(cmd);
    let r = reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/login"))
        .header("x-request-id", "trace-me-42")
        .header("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        .json(&json!({"email": "nobody@example.com", "password": "wrong password!!"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    sigterm(&child);
    assert!(child.wait().unwrap().success(), "SIGTERM ends with exit code 0");
    let logged: Vec<Value> = lines.try_iter().filter_map(|l| serde_json::from_str(&l).ok()).collect();
    let of_request: Vec<&Value> = logged.iter().filter(|l| l.to_string().contains("trace-me-42")).collect();
    assert!(of_request.len() >= 2, "the login service and the request log both logged: {logged:#?}");
    for line in &of_request {
        let outer = &line["spans"][0];
        assert_eq!(outer["name"], "request", "{line}");
        assert_eq!(outer["request_id"], "trace-me-42", "{line}");
        assert_eq!(outer["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736", "the client's trace id: {line}");
        assert!(line["level"].is_string() && line["timestamp"].is_string());
    }
    let _ = std::fs::remove_dir_all(dir);
}
