//! Realtime fan-out load client for `bench/realtime.sh`: the same client measures Polyport and the
//! bare axum broadcast baseline (`examples/bare_broadcast.rs`).
//!
//! ```text
//! realtime_bench --mode polyport|bare --base http://127.0.0.1:PORT --pid SERVER_PID \
//!     --conns 1000 --events 200 --rate 20 [--label NAME] [--token BEARER]
//!     [--connect-timeout 90] [--drain-timeout 20] [--settle-ms 2000] [--connect-parallel 128]
//!     [--write-base http://127.0.0.1:OTHER]
//! ```
//!
//! `--write-base` sends the writer's requests to another instance sharing the database (the
//! cross-instance delivery measurement of `bench/cluster.sh`); by default they go to `--base`.
//!
//! 1. Measures the server's resident memory (`VmRSS` of `/proc/PID/status`).
//! 2. Opens `--conns` subscribers, half SSE (raw HTTP/1.1 over a `TcpStream`, chunked decoding
//!    and `data:` lines parsed by hand) and half WebSocket (tokio-tungstenite, small buffers).
//!    Polyport: anonymous `GET /api/v1/events?topics=posts` and `GET /ws` + a `subscribe` frame for
//!    `posts`; bare: `GET /events` and `GET /ws` + the same `subscribe` frame.
//! 3. Once every subscriber is connected and idle for `--settle-ms`, measures RSS again:
//!    (after - before) / connections = KiB per idle connection.
//! 4. One writer publishes `--events` events at `--rate` per second: Polyport `POST
//!    /api/v1/posts` then `POST /api/v1/posts/{id}/publish` as a registered member (anonymous
//!    subscribers see only published posts, so they count `post.published` events); bare `POST
//!    /publish`.
//! 5. Every subscriber records receipt time minus the event's `occurred_at` (same machine, same
//!    clock) and counts what it receives; lost = published x connected - received.
//!
//! Prints a summary and one machine-readable line `BENCH_RESULT key=value ...`. Every phase is
//! bounded in time. Loopback only.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, anyhow, bail};
use futures::{SinkExt as _, StreamExt as _};
use serde::Deserialize;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Polyport,
    Bare,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Sse,
    Ws,
}

struct Opts {
    mode: Mode,
    base: String,
    write_base: String,
    host_port: String,
    pid: u32,
    conns: usize,
    events: usize,
    rate: f64,
    label: String,
    token: Option<String>,
    connect_timeout: Duration,
    drain_timeout: Duration,
    settle: Duration,
    connect_parallel: usize,
}

fn parse_opts() -> anyhow::Result<Opts> {
    let mut map: HashMap<String, String> = HashMap::new();
    let mut args = std::env::args().skip(1);
    while let Some(key) = args.next() {
        let Some(name) = key.strip_prefix("--") else { bail!("unexpected argument {key:?}") };
        let value = args.next().ok_or_else(|| anyhow!("--{name} needs a value"))?;
        map.insert(name.to_owned(), value);
    }
    let get = |k: &str| map.get(k).cloned();
    let num = |k: &str, default: f64| -> anyhow::Result<f64> {
        match map.get(k) {
            Some(v) => v.parse::<f64>().with_context(|| format!("--{k} {v:?}")),
            None => Ok(default),
        }
    };
    let mode = match get("mode").as_deref() {
        Some("polyport") => Mode::Polyport,
        Some("bare") => Mode::Bare,
        other => bail!("--mode polyport|bare required (got {other:?})"),
    };
    let base = get("base").ok_or_else(|| anyhow!("--base required"))?.trim_end_matches('/').to_owned();
    let host_port = base.strip_prefix("http://").ok_or_else(|| anyhow!("--base must be http://HOST:PORT"))?.to_owned();
    let pid = get("pid").ok_or_else(|| anyhow!("--pid required"))?.parse().context("--pid")?;
    Ok(Opts {
        mode,
        label: get("label").unwrap_or_else(|| if mode == Mode::Polyport { "polyport" } else { "bare" }.to_owned()),
        write_base: get("write-base").map_or_else(|| base.clone(), |w| w.trim_end_matches('/').to_owned()),
        base,
        host_port,
        pid,
        conns: num("conns", 1000.0)? as usize,
        events: num("events", 200.0)? as usize,
        rate: num("rate", 20.0)?.max(0.1),
        token: get("token"),
        connect_timeout: Duration::from_secs_f64(num("connect-timeout", 90.0)?),
        drain_timeout: Duration::from_secs_f64(num("drain-timeout", 20.0)?),
        settle: Duration::from_millis(num("settle-ms", 2000.0)? as u64),
        connect_parallel: num("connect-parallel", 128.0)? as usize,
    })
}

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).with_context(|| format!("read /proc/{pid}"))?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).ok_or_else(|| anyhow!("no VmRSS for pid {pid}"))?;
    line.split_whitespace().nth(1).ok_or_else(|| anyhow!("bad VmRSS line"))?.parse().context("VmRSS")
}

fn now_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

fn rfc3339_micros(s: &str) -> Option<u64> {
    chrono::DateTime::parse_from_rfc3339(s).ok().map(|t| t.timestamp_micros().max(0) as u64)
}

/// Shared counters.
struct Shared {
    ready: AtomicUsize,
    failed: AtomicUsize,
    received: AtomicU64,
    last_receipt_us: AtomicU64,
}

#[derive(Default)]
struct ConnStats {
    ready: bool,
    kind: Option<Kind>,
    received: u64,
    dups: u64,
    latencies_us: Vec<u32>,
    error: Option<String>,
}

impl ConnStats {
    fn record(&mut self, shared: &Shared, last_id: &mut u64, id: u64, occurred_at: &str) {
        let now = now_micros();
        if id <= *last_id {
            self.dups += 1;
            return;
        }
        *last_id = id;
        self.received += 1;
        shared.received.fetch_add(1, Ordering::Relaxed);
        shared.last_receipt_us.fetch_max(now, Ordering::Relaxed);
        if let Some(at) = rfc3339_micros(occurred_at) {
            self.latencies_us.push(now.saturating_sub(at).min(u32::MAX as u64) as u32);
        }
    }
}

#[derive(Deserialize)]
struct SseEnvelope<'a> {
    id: u64,
    #[serde(borrow)]
    occurred_at: &'a str,
}

#[derive(Deserialize)]
struct WsFrame<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    #[serde(default)]
    id: Option<serde_json::Value>,
    #[serde(default)]
    event_id: Option<u64>,
    #[serde(default, borrow)]
    event_type: Option<&'a str>,
    #[serde(default, borrow)]
    occurred_at: Option<&'a str>,
    #[serde(default, borrow)]
    code: Option<&'a str>,
}

const EVENT_TYPE: &str = "post.published";

/// Incremental HTTP/1.1 chunked-transfer decoder.
enum Chunk {
    Size,
    Data(usize),
    Crlf,
    Done,
}

struct SseParser {
    chunked: bool,
    raw: Vec<u8>,
    chunk: Chunk,
    body: Vec<u8>,
    event: String,
    data: String,
}

impl SseParser {
    /// Feeds bytes; calls `on_event(event_type, data)` for every complete event.
    fn feed(&mut self, bytes: &[u8], on_event: &mut impl FnMut(&str, &str)) -> anyhow::Result<()> {
        if self.chunked {
            self.raw.extend_from_slice(bytes);
            let mut pos = 0;
            loop {
                match self.chunk {
                    Chunk::Size => {
                        let Some(end) = find(&self.raw[pos..], b"\r\n") else { break };
                        let line = std::str::from_utf8(&self.raw[pos..pos + end]).context("chunk size")?;
                        let hex = line.split(';').next().unwrap_or("").trim();
                        let size = usize::from_str_radix(hex, 16).with_context(|| format!("chunk size {hex:?}"))?;
                        pos += end + 2;
                        self.chunk = if size == 0 { Chunk::Done } else { Chunk::Data(size) };
                    }
                    Chunk::Data(n) => {
                        let take = n.min(self.raw.len() - pos);
                        if take == 0 {
                            break;
                        }
                        self.body.extend_from_slice(&self.raw[pos..pos + take]);
                        pos += take;
                        self.chunk = if take == n { Chunk::Crlf } else { Chunk::Data(n - take) };
                    }
                    Chunk::Crlf => {
                        if self.raw.len() - pos < 2 {
                            break;
                        }
                        pos += 2;
                        self.chunk = Chunk::Size;
                    }
                    Chunk::Done => bail!("stream ended (last chunk)"),
                }
            }
            self.raw.drain(..pos);
        } else {
            self.body.extend_from_slice(bytes);
        }
        let mut start = 0;
        while let Some(nl) = self.body[start..].iter().position(|&b| b == b'\n') {
            let mut line = &self.body[start..start + nl];
            start += nl + 1;
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            let line = std::str::from_utf8(line).context("SSE line is not UTF-8")?;
            if line.is_empty() {
                if !self.data.is_empty() {
                    on_event(&self.event, &self.data);
                }
                self.event.clear();
                self.data.clear();
            } else if let Some(v) = line.strip_prefix("data:") {
                if !self.data.is_empty() {
                    self.data.push('\n');
                }
                self.data.push_str(v.strip_prefix(' ').unwrap_or(v));
            } else if let Some(v) = line.strip_prefix("event:") {
                self.event = v.strip_prefix(' ').unwrap_or(v).to_owned();
            }
            // `id:`, `retry:` and `:` comments need nothing here (the envelope carries the id).
        }
        self.body.drain(..start);
        Ok(())
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

async fn sse_connect(opts: &Opts) -> anyhow::Result<(TcpStream, SseParser, Vec<u8>)> {
    let path = match opts.mode {
        Mode::Polyport => "/api/v1/events?topics=posts",
        Mode::Bare => "/events",
    };
    let mut stream = TcpStream::connect(&opts.host_port).await.context("connect")?;
    stream.set_nodelay(true)?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n",
        opts.host_port
    );
    stream.write_all(req.as_bytes()).await?;
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 2048];
    let end = loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            bail!("connection closed before response headers");
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(end) = find(&head, b"\r\n\r\n") {
            break end;
        }
        if head.len() > 16 * 1024 {
            bail!("response headers too large");
        }
    };
    let text = String::from_utf8_lossy(&head[..end]).to_string();
    let status = text.split_whitespace().nth(1).unwrap_or("");
    if status != "200" {
        let body = String::from_utf8_lossy(&head[end + 4..]);
        bail!("SSE answered {status}: {}", body.chars().take(300).collect::<String>());
    }
    let chunked = text.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let parser = SseParser {
        chunked,
        raw: Vec::new(),
        chunk: Chunk::Size,
        body: Vec::new(),
        event: String::new(),
        data: String::new(),
    };
    Ok((stream, parser, head[end + 4..].to_vec()))
}

async fn run_sse(
    opts: Arc<Opts>,
    shared: Arc<Shared>,
    permits: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
) -> ConnStats {
    let mut stats = ConnStats { kind: Some(Kind::Sse), ..Default::default() };
    let permit = permits.acquire().await;
    let connected = tokio::time::timeout(opts.connect_timeout, sse_connect(&opts)).await;
    drop(permit);
    let (mut stream, mut parser, rest) = match connected {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            shared.failed.fetch_add(1, Ordering::Relaxed);
            stats.error = Some(format!("sse: {e:#}"));
            return stats;
        }
        Err(_) => {
            shared.failed.fetch_add(1, Ordering::Relaxed);
            stats.error = Some("sse: connect timed out".into());
            return stats;
        }
    };
    stats.ready = true;
    shared.ready.fetch_add(1, Ordering::Relaxed);
    let mut last_id = 0u64;
    let mut handle = |stats: &mut ConnStats, event: &str, data: &str| {
        if event == EVENT_TYPE
            && let Ok(env) = serde_json::from_str::<SseEnvelope>(data)
        {
            stats.record(&shared, &mut last_id, env.id, env.occurred_at);
        }
    };
    if let Err(e) = parser.feed(&rest, &mut |ev, data| handle(&mut stats, ev, data)) {
        stats.error = Some(format!("sse: {e:#}"));
        return stats;
    }
    let mut buf = vec![0u8; 4096];
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            r = stream.read(&mut buf) => match r {
                Ok(0) => {
                    stats.error = Some("sse: server closed the stream".into());
                    break;
                }
                Ok(n) => {
                    if let Err(e) = parser.feed(&buf[..n], &mut |ev, data| handle(&mut stats, ev, data)) {
                        stats.error = Some(format!("sse: {e:#}"));
                        break;
                    }
                }
                Err(e) => {
                    stats.error = Some(format!("sse: read: {e}"));
                    break;
                }
            }
        }
    }
    stats
}

type Ws = tokio_tungstenite::WebSocketStream<TcpStream>;

async fn ws_connect(opts: &Opts) -> anyhow::Result<Ws> {
    let stream = TcpStream::connect(&opts.host_port).await.context("connect")?;
    stream.set_nodelay(true)?;
    let config =
        WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0).max_write_buffer_size(64 * 1024);
    let url = format!("ws://{}/ws", opts.host_port);
    let (mut ws, _resp) =
        tokio_tungstenite::client_async_with_config(url, stream, Some(config)).await.context("websocket handshake")?;
    ws.send(Message::Text(r#"{"type":"subscribe","id":"s1","topics":["posts"]}"#.into())).await?;
    loop {
        let msg = ws.next().await.ok_or_else(|| anyhow!("closed before the subscribe response"))??;
        if let Message::Text(text) = msg {
            let frame: WsFrame = serde_json::from_str(text.as_str()).context("frame")?;
            match frame.kind {
                "response" if frame.id.as_ref().and_then(|v| v.as_str()) == Some("s1") => return Ok(ws),
                "error" => bail!("subscribe answered error {}: {}", frame.code.unwrap_or("?"), text.as_str()),
                _ => {}
            }
        } else if let Message::Close(c) = msg {
            bail!("closed before the subscribe response: {c:?}");
        }
    }
}

async fn run_ws(
    opts: Arc<Opts>,
    shared: Arc<Shared>,
    permits: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
) -> ConnStats {
    let mut stats = ConnStats { kind: Some(Kind::Ws), ..Default::default() };
    let permit = permits.acquire().await;
    let connected = tokio::time::timeout(opts.connect_timeout, ws_connect(&opts)).await;
    drop(permit);
    let mut ws = match connected {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => {
            shared.failed.fetch_add(1, Ordering::Relaxed);
            stats.error = Some(format!("ws: {e:#}"));
            return stats;
        }
        Err(_) => {
            shared.failed.fetch_add(1, Ordering::Relaxed);
            stats.error = Some("ws: connect timed out".into());
            return stats;
        }
    };
    stats.ready = true;
    shared.ready.fetch_add(1, Ordering::Relaxed);
    let mut last_id = 0u64;
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(text))) => match serde_json::from_str::<WsFrame>(text.as_str()) {
                    Ok(f) if f.kind == "event" => {
                        if f.event_type == Some(EVENT_TYPE)
                            && let (Some(id), Some(at)) = (f.event_id, f.occurred_at)
                        {
                            stats.record(&shared, &mut last_id, id, at);
                        }
                    }
                    Ok(f) if f.kind == "error" => {
                        stats.error = Some(format!("ws: error frame: {}", text.as_str()));
                    }
                    Ok(_) => {}
                    Err(e) => {
                        stats.error = Some(format!("ws: bad frame {e}: {}", text.as_str()));
                    }
                },
                Some(Ok(Message::Close(c))) => {
                    stats.error = Some(format!("ws: server closed: {c:?}"));
                    break;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    stats.error = Some(format!("ws: {e}"));
                    break;
                }
                None => {
                    stats.error = Some("ws: stream ended".into());
                    break;
                }
            }
        }
    }
    let _ = tokio::time::timeout(Duration::from_millis(200), ws.close(None)).await;
    stats
}

#[derive(Deserialize)]
struct Created {
    id: serde_json::Value,
}

async fn polyport_token(http: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let email = format!("bench-{}@example.com", now_micros());
    let password = "realtime benchmark password";
    let r = http
        .post(format!("{base}/api/v1/users"))
        .json(&serde_json::json!({"email": email, "name": "Realtime bench", "password": password}))
        .send()
        .await?;
    if !r.status().is_success() {
        bail!("register answered {}: {}", r.status(), r.text().await.unwrap_or_default());
    }
    let r = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&serde_json::json!({"email": email, "password": password}))
        .send()
        .await?;
    if !r.status().is_success() {
        bail!("login answered {}: {}", r.status(), r.text().await.unwrap_or_default());
    }
    let v: serde_json::Value = r.json().await?;
    v["access_token"].as_str().map(str::to_owned).ok_or_else(|| anyhow!("login: no access_token in {v}"))
}

/// Publishes one event; returns once the server acknowledged it.
async fn publish_one(http: &reqwest::Client, opts: &Opts, token: &str, n: usize) -> anyhow::Result<()> {
    match opts.mode {
        Mode::Bare => {
            let r = http.post(format!("{}/publish", opts.base)).send().await?;
            if !r.status().is_success() {
                bail!("publish answered {}", r.status());
            }
        }
        Mode::Polyport => {
            let r = http
                .post(format!("{}/api/v1/posts", opts.write_base))
                .bearer_auth(token)
                .json(&serde_json::json!({
                    "title": format!("Benchmark post {n}"),
                    "body": "Published by the realtime benchmark writer.",
                    "tags": ["bench"],
                }))
                .send()
                .await?;
            if !r.status().is_success() {
                bail!("create answered {}: {}", r.status(), r.text().await.unwrap_or_default());
            }
            let created: Created = r.json().await?;
            let id = created.id.as_str().map(str::to_owned).unwrap_or_else(|| created.id.to_string());
            let r =
                http.post(format!("{}/api/v1/posts/{id}/publish", opts.write_base)).bearer_auth(token).send().await?;
            if !r.status().is_success() {
                bail!("publish answered {}: {}", r.status(), r.text().await.unwrap_or_default());
            }
        }
    }
    Ok(())
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[idx.min(sorted.len() - 1)] as f64 / 1000.0
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let opts = Arc::new(parse_opts()?);
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).pool_max_idle_per_host(4).build()?;
    let token = match (opts.mode, &opts.token) {
        (Mode::Polyport, Some(t)) => t.clone(),
        (Mode::Polyport, None) => polyport_token(&http, &opts.write_base).await.context("writer login")?,
        (Mode::Bare, _) => String::new(),
    };
    // Warm the writer's connection and the server's code paths once before measuring memory.
    publish_one(&http, &opts, &token, 0).await.context("warm-up publish")?;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let rss_before = rss_kib(opts.pid)?;
    let shared = Arc::new(Shared {
        ready: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
        received: AtomicU64::new(0),
        last_receipt_us: AtomicU64::new(0),
    });
    let permits = Arc::new(Semaphore::new(opts.connect_parallel.max(1)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let t_connect = Instant::now();
    let mut tasks = Vec::with_capacity(opts.conns);
    for i in 0..opts.conns {
        let (o, s, p, r) = (opts.clone(), shared.clone(), permits.clone(), stop_rx.clone());
        tasks.push(if i % 2 == 0 { tokio::spawn(run_sse(o, s, p, r)) } else { tokio::spawn(run_ws(o, s, p, r)) });
    }
    let connect_deadline = t_connect + opts.connect_timeout + Duration::from_secs(5);
    loop {
        let done = shared.ready.load(Ordering::Relaxed) + shared.failed.load(Ordering::Relaxed);
        if done >= opts.conns || Instant::now() > connect_deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let connect_secs = t_connect.elapsed().as_secs_f64();
    let ready = shared.ready.load(Ordering::Relaxed);
    let failed = shared.failed.load(Ordering::Relaxed);
    eprintln!("[{}] {ready}/{} subscribers connected in {connect_secs:.1}s ({failed} failed)", opts.label, opts.conns);
    tokio::time::sleep(opts.settle).await;
    let rss_after = rss_kib(opts.pid)?;
    let kib_per_conn = if ready > 0 { (rss_after as f64 - rss_before as f64) / ready as f64 } else { f64::NAN };
    eprintln!(
        "[{}] server RSS {rss_before} KiB -> {rss_after} KiB: {kib_per_conn:.1} KiB per idle connection",
        opts.label
    );

    // One writer at a fixed rate.
    let mut published = 0u64;
    let mut publish_errors = 0u64;
    let mut publish_lat = Vec::with_capacity(opts.events);
    let period = Duration::from_secs_f64(1.0 / opts.rate);
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let publish_deadline = Instant::now() + period * opts.events as u32 + Duration::from_secs(60);
    let t_publish = Instant::now();
    let first_publish_us = now_micros();
    for n in 1..=opts.events {
        ticker.tick().await;
        if Instant::now() > publish_deadline {
            eprintln!("[{}] publish phase timed out after {published} events", opts.label);
            break;
        }
        let t = Instant::now();
        match publish_one(&http, &opts, &token, n).await {
            Ok(()) => {
                published += 1;
                publish_lat.push(t.elapsed().as_micros() as u32);
            }
            Err(e) => {
                publish_errors += 1;
                if publish_errors <= 3 {
                    eprintln!("[{}] publish {n} failed: {e:#}", opts.label);
                }
            }
        }
    }
    let publish_secs = t_publish.elapsed().as_secs_f64();
    let expected = published * ready as u64;
    let drain_deadline = Instant::now() + opts.drain_timeout;
    while shared.received.load(Ordering::Relaxed) < expected && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop_tx.send(true);

    let mut latencies: Vec<u32> = Vec::with_capacity(expected as usize);
    let (mut received, mut dups) = (0u64, 0u64);
    let (mut sse_ready, mut ws_ready) = (0usize, 0usize);
    let mut errors: HashMap<String, usize> = HashMap::new();
    let (mut sse_recv, mut ws_recv) = (0u64, 0u64);
    let (mut sse_lat, mut ws_lat): (Vec<u32>, Vec<u32>) = (Vec::new(), Vec::new());
    let join_deadline = Instant::now() + Duration::from_secs(20);
    for task in tasks {
        let left = join_deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
        let Ok(Ok(mut stats)) = tokio::time::timeout(left, task).await else {
            *errors.entry("task did not finish".into()).or_default() += 1;
            continue;
        };
        if stats.ready {
            match stats.kind {
                Some(Kind::Sse) => {
                    sse_ready += 1;
                    sse_recv += stats.received;
                    sse_lat.extend_from_slice(&stats.latencies_us);
                }
                Some(Kind::Ws) => {
                    ws_ready += 1;
                    ws_recv += stats.received;
                    ws_lat.extend_from_slice(&stats.latencies_us);
                }
                None => {}
            }
        }
        received += stats.received;
        dups += stats.dups;
        latencies.append(&mut stats.latencies_us);
        if let Some(e) = stats.error {
            // Group by message prefix so 10,000 identical failures print once.
            let key: String = e.chars().take(160).collect();
            *errors.entry(key).or_default() += 1;
        }
    }
    latencies.sort_unstable();
    sse_lat.sort_unstable();
    ws_lat.sort_unstable();
    publish_lat.sort_unstable();
    println!(
        "[{}] by transport: SSE p50 {:.2} ms p99 {:.2} ms; WebSocket p50 {:.2} ms p99 {:.2} ms",
        opts.label,
        percentile(&sse_lat, 50.0),
        percentile(&sse_lat, 99.0),
        percentile(&ws_lat, 50.0),
        percentile(&ws_lat, 99.0)
    );
    let lost = expected.saturating_sub(received);
    let last_us = shared.last_receipt_us.load(Ordering::Relaxed);
    let deliver_secs = (last_us.saturating_sub(first_publish_us)) as f64 / 1e6;
    let delivered_per_s = if deliver_secs > 0.0 { received as f64 / deliver_secs } else { 0.0 };
    let (p50, p99, max) = (percentile(&latencies, 50.0), percentile(&latencies, 99.0), percentile(&latencies, 100.0));

    println!(
        "[{}] {ready} subscribers ({sse_ready} SSE, {ws_ready} WS); {published} events published in {publish_secs:.1}s \
         ({:.1}/s, writer p50 {:.2} ms); expected {expected} deliveries, received {received} (SSE {sse_recv}, WS {ws_recv}), \
         lost {lost}, duplicates {dups}; latency p50 {p50:.2} ms p99 {p99:.2} ms max {max:.2} ms; {delivered_per_s:.0} events/s delivered",
        opts.label,
        published as f64 / publish_secs.max(1e-9),
        percentile(&publish_lat, 50.0),
    );
    for (e, n) in &errors {
        println!("[{}] {n} connection(s): {e}", opts.label);
    }
    println!(
        "BENCH_RESULT label={} conns={} ready={ready} sse={sse_ready} ws={ws_ready} connect_failed={failed} connect_s={connect_secs:.2} \
         rss_before_kib={rss_before} rss_after_kib={rss_after} kib_per_conn={kib_per_conn:.2} published={published} \
         publish_errors={publish_errors} expected={expected} received={received} lost={lost} dups={dups} \
         p50_ms={p50:.3} p99_ms={p99:.3} max_ms={max:.3} delivered_per_s={delivered_per_s:.0} conn_errors={}",
        opts.label,
        opts.conns,
        errors.values().sum::<usize>(),
    );
    // Do not wait for 10,000 sockets to be torn down politely.
    std::process::exit(0);
}
