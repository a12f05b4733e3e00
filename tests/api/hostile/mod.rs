//! The hostile suite: what a hostile client tried, on every protocol where it applies, each
//! case asserting the exact answer and that the server stays healthy with bounded memory.

mod connections;
mod graphql;
mod http2;
mod login;
mod media;
mod outage;
mod owasp;
mod resume;
mod shutdown;
mod slow;
mod websocket;

use crate::helpers::TestApp;

/// Resident memory of this test process (the server runs in it), in KiB.
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The server still answers a plain request.
pub async fn assert_healthy(app: &TestApp) {
    let r = tokio::time::timeout(std::time::Duration::from_secs(5), app.client.get(app.url("/healthz")).send())
        .await
        .expect("/healthz answers in time")
        .expect("/healthz answers");
    assert_eq!(r.status(), reqwest::StatusCode::OK);
}
