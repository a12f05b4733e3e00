//! Webhooks: a user's HTTP endpoint that receives, signed, every event it may read on its
//! topics; their validation (URL shape, topics, the per-user cap) and delivery records.

use chrono::{DateTime, Utc};

use super::delivery::Topic;
use super::error::{DomainResult, Issues};

/// The job that turns one event into one delivery job per webhook (queued with the event).
pub const FANOUT_JOB: &str = "webhook.fanout";
/// The job that delivers one event to one webhook.
pub const DELIVER_JOB: &str = "webhook.deliver";

/// Most webhooks one user may register.
pub const MAX_PER_USER: usize = 10;
/// Longest accepted URL, in bytes.
pub const MAX_URL_LEN: usize = 2048;

/// A registered webhook. The signing secret is stored but never part of this value: it is
/// shown once, at creation, and read back only by the delivery job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: String,
    pub owner_id: String,
    pub url: String,
    pub topics: Vec<String>,
    pub created_at: DateTime<Utc>,
}

/// A new webhook and its signing secret, shown exactly once.
#[derive(Debug, Clone)]
pub struct CreatedWebhook {
    pub webhook: Webhook,
    pub secret: String,
}

/// One delivery attempt as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WebhookDelivery {
    /// This attempt's id (time-ordered).
    pub id: String,
    pub webhook_id: String,
    /// The `Polyport-Delivery-Id` header: the same on every attempt of one event's delivery.
    pub delivery_id: String,
    pub event_id: i64,
    /// 1 for the first attempt.
    pub attempt: i64,
    /// The HTTP status answered, when one was.
    pub status_code: Option<i64>,
    /// A 2xx answer within the time limit.
    pub succeeded: bool,
    /// Why the attempt failed (timeout, refused address, status), when it did.
    pub error: Option<String>,
    pub duration_ms: i64,
    pub attempted_at: DateTime<Utc>,
}

/// What a user asks to register.
#[derive(Debug, Clone, Default)]
pub struct NewWebhook {
    pub url: String,
    pub topics: Vec<String>,
}

/// A URL's parts that matter for delivery, after the syntax rules passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub url: url::Url,
    /// `http` or `https`.
    pub https: bool,
    /// The host as written (a name, or an IP literal without brackets).
    pub host: String,
    pub port: u16,
}

/// The syntax rules of a webhook URL: absolute http(s), a host, no userinfo, no fragment, at
/// most `MAX_URL_LEN` bytes. Numeric hosts are normalized by the parser (`0x7f.1` is
/// `127.0.0.1`), so the address check sees the address that will be dialled.
pub fn parse_target(raw: &str) -> Result<Target, &'static str> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err("required");
    }
    if raw.len() > MAX_URL_LEN {
        return Err("too_long");
    }
    let url = url::Url::parse(raw).map_err(|_| "invalid_url")?;
    let https = match url.scheme() {
        "http" => false,
        "https" => true,
        _ => return Err("scheme_not_allowed"),
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err("userinfo_not_allowed");
    }
    if url.fragment().is_some() {
        return Err("fragment_not_allowed");
    }
    let host = match url.host() {
        Some(url::Host::Domain(d)) => d.to_string(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        None => return Err("host_required"),
    };
    let port = url.port_or_known_default().ok_or("invalid_url")?;
    Ok(Target { url, https, host, port })
}

impl NewWebhook {
    /// Checks the URL's syntax and the topics (every issue at once); the canonical topics and
    /// the parsed target.
    pub fn validate(&self) -> DomainResult<(Target, Vec<String>)> {
        let mut issues = Issues::default();
        let target = issues.check("url", parse_target(&self.url));
        let mut topics: Vec<String> = Vec::new();
        if self.topics.is_empty() {
            issues.add("topics", "required");
        } else if self.topics.len() > super::delivery::MAX_TOPICS {
            issues.add("topics", "too_many");
        }
        for (i, raw) in self.topics.iter().enumerate() {
            let raw = raw.trim();
            if issues.check(&format!("topics[{i}]"), Topic::parse(raw)).is_some() && !topics.iter().any(|t| t == raw) {
                topics.push(raw.to_string());
            }
        }
        issues.finish()?;
        let target = target.ok_or_else(|| super::error::DomainError::internal(anyhow::anyhow!("unchecked url")))?;
        Ok((target, topics))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_need_http_or_https_a_host_and_no_userinfo() {
        assert!(parse_target("https://hooks.example.com/in?x=1").is_ok());
        assert_eq!(parse_target("ftp://example.com/").unwrap_err(), "scheme_not_allowed");
        assert_eq!(parse_target("file:///etc/passwd").unwrap_err(), "scheme_not_allowed");
        assert_eq!(parse_target("http://user:pw@example.com/").unwrap_err(), "userinfo_not_allowed");
        assert_eq!(parse_target("http://example.com/#frag").unwrap_err(), "fragment_not_allowed");
        assert_eq!(parse_target("not a url").unwrap_err(), "invalid_url");
        assert_eq!(parse_target("").unwrap_err(), "required");
    }

    #[test]
    fn numeric_hosts_are_normalized_before_any_check() {
        assert_eq!(parse_target("http://0x7f.1:8080/").unwrap().host, "127.0.0.1");
        assert_eq!(parse_target("http://[::ffff:7f00:1]/").unwrap().host, "::ffff:127.0.0.1");
        assert_eq!(parse_target("http://2130706433/").unwrap().host, "127.0.0.1");
    }

    #[test]
    fn topics_are_checked_like_stream_topics() {
        let err = NewWebhook { url: "http://x.example".into(), topics: vec!["posts".into(), "nope".into()] }
            .validate()
            .unwrap_err();
        assert_eq!(err.details[0].field, "topics[1]");
        let (_, topics) = NewWebhook { url: "http://x.example".into(), topics: vec!["posts".into(), "posts".into()] }
            .validate()
            .unwrap();
        assert_eq!(topics, vec!["posts"]);
    }
}
