//! Connections that never speak: closed at the header read timeout, capped per address and in
//! total (the oldest silent one makes room), against a server with a low open-files limit.

use std::net::{IpAddr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::process::{SECRET, binary, start, temp_dir};

/// A server process allowed 1,024 open files (soft and hard), 100 connections per address.
fn low_fd_server() -> (std::process::Child, String, std::sync::mpsc::Receiver<String>) {
    let dir = temp_dir();
    let mut cmd = binary(&dir);
    cmd.env("POLYPORT_JWT_SECRET", SECRET)
        .env("POLYPORT_HEADER_READ_TIMEOUT_SECS", "8")
        .env("POLYPORT_MAX_CONNECTIONS_PER_ADDRESS", "100")
        .env("POLYPORT_LOG", "info");
    // SAFETY: setrlimit is async-signal-safe and touches nothing but the child's own limits.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit { rlim_cur: 1024, rlim_max: 1024 };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    start(cmd)
}

async fn connect_from(local: &str, server: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(local.parse::<IpAddr>().unwrap(), 0))?;
    tokio::time::timeout(Duration::from_secs(5), socket.connect(server))
        .await
        .map_err(|_| std::io::Error::other("connect timed out"))?
}

/// `n` connections from `local`, opened 100 at a time; those the kernel refused are left out.
async fn connect_many(local: &str, server: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut open = Vec::new();
    for chunk in 0..n.div_ceil(100) {
        let batch = (0..100.min(n - chunk * 100)).map(|_| connect_from(local, server));
        open.extend(futures::future::join_all(batch).await.into_iter().filter_map(Result::ok));
    }
    open
}

/// True when the server closed the connection within `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut byte = [0u8; 1];
    matches!(tokio::time::timeout(limit, stream.read(&mut byte)).await, Ok(Ok(0) | Err(_)))
}

/// `GET /healthz` from `local`, answered within two seconds.
async fn healthz_from(local: &str, base: &str) -> bool {
    let client = reqwest::Client::builder()
        .local_address(local.parse::<IpAddr>().unwrap())
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    client.get(format!("{base}/healthz")).send().await.is_ok_and(|r| r.status() == reqwest::StatusCode::OK)
}

/// The sum of the metric lines starting with `line_start`, read from 127.0.0.2.
async fn metric(base: &str, line_start: &str) -> f64 {
    let client = reqwest::Client::builder().local_address("127.0.0.2".parse::<IpAddr>().unwrap()).build().unwrap();
    let text = client.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines().filter(|l| l.starts_with(line_start)).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum()
}

#[tokio::test]
async fn two_thousand_silent_connections_never_keep_other_clients_waiting() {
    polyport::server::raise_fd_limit();
    let (mut child, base, logs) = low_fd_server();
    let server: SocketAddr = base.trim_start_matches("http://").parse().unwrap();

    // One address opens 2,000 connections and says nothing: 100 are kept, the rest closed.
    let mut silent = connect_many("127.0.0.1", server, 2_000).await;
    assert!(healthz_from("127.0.0.2", &base).await, "another client is served during the flood");
    assert!(metric(&base, "polyport_connections_refused_total{reason=\"per_address\"}").await >= 1_000.0);

    // Twenty more addresses, 100 silent connections each: past the total cap (1,024 files less
    // a reserve), the oldest silent connections are closed to make room.
    for i in 10..30 {
        silent.extend(connect_many(&format!("127.0.0.{i}"), server, 100).await);
    }
    assert!(healthz_from("127.0.0.3", &base).await, "a newcomer is served when the server is full");
    assert!(metric(&base, "polyport_connections_refused_total{reason=\"evicted_silent\"}").await >= 1.0);
    let open = metric(&base, "polyport_connections_open ").await;
    assert!(open <= 1024.0 - 128.0 + 8.0, "the cap holds: {open} open");

    // Silence and a half-sent HTTP/2 preface both end at the header read timeout.
    let mut quiet = connect_from("127.0.0.4", server).await.unwrap();
    let mut partial = connect_from("127.0.0.5", server).await.unwrap();
    partial.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    assert!(closed_within(&mut quiet, Duration::from_secs(12)).await, "a silent connection is closed");
    assert!(closed_within(&mut partial, Duration::from_secs(12)).await, "a partial preface is closed");
    assert!(healthz_from("127.0.0.1", &base).await, "the flooding address is served again once its silence ended");

    child.kill().unwrap();
    let _ = child.wait();
    let printed: Vec<String> = logs.try_iter().collect();
    assert!(
        printed.iter().any(|l| l.contains("open files limit") && l.contains("1024")),
        "the start-up log tells the file limit: {printed:?}"
    );
}
