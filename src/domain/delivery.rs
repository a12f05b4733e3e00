//! Realtime delivery rules: topics, and what one subscriber may see of one stored event.
//!
//! Checked per event at delivery time with the same policy the services use, so a subscriber
//! receives exactly what the REST API would show it at that moment.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use super::error::{DomainResult, Issues};
use super::events::{EventType, StoredEvent, Subject};
use super::policy::{self, Actor, Scope};

/// Most topics one subscription may name.
pub const MAX_TOPICS: usize = 20;

/// What a subscription listens to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Topic {
    /// Every post the subscriber may read.
    Posts,
    Post(String),
    User(String),
    UserPosts(String),
}

fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

impl Topic {
    /// Every form a topic takes, with what it carries (documents such as the AsyncAPI one are
    /// written from this list; a test holds it to `parse`).
    pub const FORMS: [(&'static str, &'static str); 4] = [
        ("posts", "every post the subscriber may read"),
        ("posts/{postId}", "one post"),
        ("users/{userId}", "one user (a public profile unless the subscriber may read the user's private fields)"),
        ("users/{userId}/posts", "the posts of one user that the subscriber may read"),
    ];

    pub fn parse(raw: &str) -> Result<Topic, &'static str> {
        let parts: Vec<&str> = raw.split('/').collect();
        let topic = match parts.as_slice() {
            ["posts"] => Topic::Posts,
            ["posts", id] if valid_id(id) => Topic::Post(id.to_string()),
            ["users", id] if valid_id(id) => Topic::User(id.to_string()),
            ["users", id, "posts"] if valid_id(id) => Topic::UserPosts(id.to_string()),
            _ => return Err("unknown_topic"),
        };
        Ok(topic)
    }

    /// Parses a list, reporting every bad entry under `topics[i]`.
    pub fn parse_all(raw: &[String]) -> DomainResult<Vec<Topic>> {
        let mut issues = Issues::default();
        if raw.is_empty() {
            issues.add("topics", "required");
        } else if raw.len() > MAX_TOPICS {
            issues.add("topics", "too_many");
        }
        let mut topics = Vec::new();
        for (i, t) in raw.iter().enumerate() {
            if let Some(topic) = issues.check(&format!("topics[{i}]"), Topic::parse(t.trim()))
                && !topics.contains(&topic)
            {
                topics.push(topic);
            }
        }
        issues.finish().map_err(|mut e| {
            e.code = crate::domain::error::ErrorCode::InvalidRequest;
            e.message = "unknown or malformed topics".into();
            e
        })?;
        Ok(topics)
    }

    pub fn matches(&self, subject: &Subject) -> bool {
        match (self, subject) {
            (Topic::Posts, Subject::Post(_)) => true,
            (Topic::Post(id), Subject::Post(p)) => *id == p.id,
            (Topic::UserPosts(id), Subject::Post(p)) => *id == p.author_id,
            (Topic::User(id), Subject::User(u)) => *id == u.id,
            _ => false,
        }
    }
}

/// One event as one subscriber sees it: `{id, type, topic, occurred_at, data}`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Delivery {
    pub id: i64,
    #[serde(rename = "type")]
    pub event_type: &'static str,
    pub topic: String,
    pub occurred_at: DateTime<Utc>,
    pub data: Value,
}

/// The subscriber's view of `event` if it listens to a matching topic and may read the object.
pub fn deliver(actor: &Actor, topics: &[Topic], event: &StoredEvent) -> Option<Delivery> {
    if !listens(topics, event) {
        return None;
    }
    view(actor, event)
}

/// True when one of `topics` covers the event's subject.
pub fn listens(topics: &[Topic], event: &StoredEvent) -> bool {
    topics.iter().any(|t| t.matches(&event.subject))
}

/// What `actor` may see of `event`, whatever it listens to.
/// Whether anonymous callers may see `event` at all: exactly when `view(&Actor::Anonymous, ..)`
/// is Some, without building the payload.
pub fn is_public(event: &StoredEvent) -> bool {
    match &event.subject {
        Subject::Post(post) => policy::can_read_post(&Actor::Anonymous, post),
        Subject::User(_) => true,
    }
}

pub fn view(actor: &Actor, event: &StoredEvent) -> Option<Delivery> {
    let data = match &event.subject {
        Subject::Post(post) => {
            if !actor.has_scope_or_anonymous(Scope::PostsRead) || !policy::can_read_post(actor, post) {
                return None;
            }
            serde_json::to_value(post).ok()?
        }
        Subject::User(user) => {
            if !actor.has_scope_or_anonymous(Scope::UsersRead) {
                return None;
            }
            if policy::can_read_private_user(actor, user) {
                serde_json::to_value(user).ok()?
            } else {
                json!({"id": user.id, "name": user.name})
            }
        }
    };
    Some(Delivery {
        id: event.id,
        event_type: event.event_type.as_str(),
        topic: event.subject.topic(),
        occurred_at: event.occurred_at,
        data,
    })
}

impl EventType {
    /// True for the events that end an object's life.
    pub fn is_deletion(self) -> bool {
        matches!(self, EventType::UserDeleted | EventType::PostDeleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_topic_form_parses_to_its_own_kind() {
        let parsed: Vec<Topic> = Topic::FORMS
            .iter()
            .map(|(form, _)| Topic::parse(&form.replace("{postId}", "p1").replace("{userId}", "u1")).unwrap())
            .collect();
        let expected =
            [Topic::Posts, Topic::Post("p1".into()), Topic::User("u1".into()), Topic::UserPosts("u1".into())];
        assert_eq!(parsed, expected);
    }
    use crate::domain::policy::{Credential, Principal};
    use crate::domain::post::{Post, PostStatus};
    use crate::domain::user::Role;

    fn member(id: &str) -> Actor {
        Actor::User(Principal {
            user_id: id.into(),
            role: Role::Member,
            credential: Credential::AccessToken { jti: "j".into(), session_id: "s".into() },
        })
    }

    fn event(status: PostStatus) -> StoredEvent {
        let now = Utc::now();
        StoredEvent {
            id: 7,
            event_type: EventType::PostUpdated,
            occurred_at: now,
            subject: Subject::Post(Post {
                id: "p1".into(),
                author_id: "alice".into(),
                title: "t".into(),
                body: String::new(),
                status,
                tags: vec![],
                published_at: None,
                created_at: now,
                updated_at: now,
                version: 2,
            }),
            trace_id: None,
        }
    }

    #[test]
    fn a_draft_event_reaches_its_author_on_every_topic_and_nobody_else() {
        let draft = event(PostStatus::Draft);
        for topic in ["posts", "posts/p1", "users/alice/posts"] {
            let topics = [Topic::parse(topic).unwrap()];
            assert!(deliver(&member("alice"), &topics, &draft).is_some(), "{topic}");
            assert!(deliver(&member("bob"), &topics, &draft).is_none(), "{topic}");
            assert!(deliver(&Actor::Anonymous, &topics, &draft).is_none(), "{topic}");
        }
        assert!(deliver(&Actor::Anonymous, &[Topic::Posts], &event(PostStatus::Published)).is_some());
    }

    #[test]
    fn is_public_agrees_with_the_anonymous_view() {
        for status in [PostStatus::Draft, PostStatus::Published] {
            let e = event(status);
            assert_eq!(is_public(&e), view(&Actor::Anonymous, &e).is_some(), "{status:?}");
        }
        let now = Utc::now();
        let user = crate::domain::user::User {
            id: "u".into(),
            email: "u@example.com".into(),
            name: "U".into(),
            role: Role::Member,
            password_hash: String::new(),
            created_at: now,
            updated_at: now,
            version: 1,
        };
        let e = StoredEvent { subject: Subject::User(user), ..event(PostStatus::Draft) };
        assert_eq!(is_public(&e), view(&Actor::Anonymous, &e).is_some());
    }

    #[test]
    fn topics_are_validated_all_at_once() {
        let err = Topic::parse_all(&["posts".into(), "nope".into(), "users/x/y".into()]).unwrap_err();
        assert_eq!(err.details.len(), 2);
        assert_eq!(err.details[0].field, "topics[1]");
    }
}
