//! Domain events: what changed, appended to the durable log in the change's own transaction.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::post::Post;
use super::user::User;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "user.created")]
    UserCreated,
    #[serde(rename = "user.updated")]
    UserUpdated,
    #[serde(rename = "user.deleted")]
    UserDeleted,
    #[serde(rename = "post.created")]
    PostCreated,
    #[serde(rename = "post.updated")]
    PostUpdated,
    #[serde(rename = "post.published")]
    PostPublished,
    #[serde(rename = "post.unpublished")]
    PostUnpublished,
    #[serde(rename = "post.deleted")]
    PostDeleted,
}

impl EventType {
    pub const ALL: [EventType; 8] = [
        Self::UserCreated,
        Self::UserUpdated,
        Self::UserDeleted,
        Self::PostCreated,
        Self::PostUpdated,
        Self::PostPublished,
        Self::PostUnpublished,
        Self::PostDeleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::UserCreated => "user.created",
            Self::UserUpdated => "user.updated",
            Self::UserDeleted => "user.deleted",
            Self::PostCreated => "post.created",
            Self::PostUpdated => "post.updated",
            Self::PostPublished => "post.published",
            Self::PostUnpublished => "post.unpublished",
            Self::PostDeleted => "post.deleted",
        }
    }

    pub fn parse(s: &str) -> Option<EventType> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// The object an event is about, as it was right after the change (before it, for deletes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "snapshot", rename_all = "lowercase")]
pub enum Subject {
    User(User),
    Post(Post),
}

/// An event about to be appended.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub event_type: EventType,
    pub occurred_at: DateTime<Utc>,
    pub subject: Subject,
    /// The trace of the request that caused it (stored with it; not part of the wire envelope).
    pub trace_id: Option<String>,
}

/// An event as stored in the log, with its monotonically increasing id.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub id: i64,
    pub event_type: EventType,
    pub occurred_at: DateTime<Utc>,
    pub subject: Subject,
    /// The trace of the request that caused it, when known.
    pub trace_id: Option<String>,
}

impl NewEvent {
    pub fn user(event_type: EventType, user: &User, at: DateTime<Utc>) -> Self {
        Self { event_type, occurred_at: at, subject: Subject::User(user.clone()), trace_id: None }
    }

    pub fn post(event_type: EventType, post: &Post, at: DateTime<Utc>) -> Self {
        Self { event_type, occurred_at: at, subject: Subject::Post(post.clone()), trace_id: None }
    }

    /// The same event, caused in the trace `trace_id`.
    pub fn traced(mut self, trace_id: Option<&str>) -> Self {
        self.trace_id = trace_id.map(str::to_string);
        self
    }

    /// The primary topic (`posts/{id}` or `users/{id}`).
    pub fn topic(&self) -> String {
        self.subject.topic()
    }
}

impl Subject {
    pub fn id(&self) -> &str {
        match self {
            Subject::User(u) => &u.id,
            Subject::Post(p) => &p.id,
        }
    }

    pub fn topic(&self) -> String {
        match self {
            Subject::User(u) => format!("users/{}", u.id),
            Subject::Post(p) => format!("posts/{}", p.id),
        }
    }

    /// Every topic an event about this subject is published on.
    pub fn topics(&self) -> Vec<String> {
        match self {
            Subject::User(u) => vec![format!("users/{}", u.id)],
            Subject::Post(p) => {
                vec!["posts".into(), format!("posts/{}", p.id), format!("users/{}/posts", p.author_id)]
            }
        }
    }
}
