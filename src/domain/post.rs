//! Posts: the entity, its status, and the validating inputs that create and change it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::error::{DomainResult, Issues};

pub const MAX_TITLE_CHARS: usize = 200;
pub const MAX_BODY_CHARS: usize = 100_000;
pub const MAX_TAGS: usize = 10;
pub const MAX_TAG_LEN: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PostStatus {
    Draft,
    Published,
}

impl PostStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PostStatus::Draft => "draft",
            PostStatus::Published => "published",
        }
    }

    pub fn parse(s: &str) -> Result<PostStatus, &'static str> {
        match s {
            "draft" => Ok(PostStatus::Draft),
            "published" => Ok(PostStatus::Published),
            _ => Err("must be one of draft, published"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Post {
    pub id: String,
    pub author_id: String,
    pub title: String,
    pub body: String,
    pub status: PostStatus,
    pub tags: Vec<String>,
    #[serde(
        serialize_with = "super::timestamp::serialize_opt",
        deserialize_with = "super::timestamp::deserialize_opt",
        default
    )]
    pub published_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "super::timestamp::serialize", deserialize_with = "super::timestamp::deserialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "super::timestamp::serialize", deserialize_with = "super::timestamp::deserialize")]
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

pub fn parse_title(raw: &str) -> Result<String, &'static str> {
    let s = raw.trim();
    let n = s.chars().count();
    if n == 0 {
        Err("required")
    } else if n > MAX_TITLE_CHARS {
        Err("too_long")
    } else if s.chars().any(char::is_control) {
        Err("invalid_characters")
    } else {
        Ok(s.to_string())
    }
}

pub fn parse_body(raw: &str) -> Result<String, &'static str> {
    if raw.chars().count() > MAX_BODY_CHARS {
        Err("too_long")
    } else if raw.contains('\0') {
        Err("invalid_characters")
    } else {
        Ok(raw.to_string())
    }
}

/// An object id as it may appear in a filter or path: `[A-Za-z0-9-]{1,64}`.
pub fn is_valid_id(raw: &str) -> bool {
    !raw.is_empty() && raw.len() <= 64 && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn parse_tag(raw: &str) -> Result<String, &'static str> {
    let ok = !raw.is_empty()
        && raw.len() <= MAX_TAG_LEN
        && raw.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok { Ok(raw.to_string()) } else { Err("invalid_format") }
}

/// Validates a tag list (a set: duplicates collapse), recording one issue per bad tag under `tags[i]`.
fn parse_tags(raw: &[String], issues: &mut Issues) -> Option<Vec<String>> {
    if raw.len() > MAX_TAGS {
        issues.add("tags", "too_many");
        return None;
    }
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    for (i, tag) in raw.iter().enumerate() {
        if let Some(t) = issues.check(&format!("tags[{i}]"), parse_tag(tag))
            && !out.contains(&t)
        {
            out.push(t);
        }
    }
    Some(out)
}

/// Creation input before validation.
#[derive(Debug, Clone, Default)]
pub struct NewPost {
    pub title: String,
    pub body: String,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct ValidNewPost {
    pub title: String,
    pub body: String,
    pub tags: Vec<String>,
}

impl NewPost {
    pub fn validate(self) -> DomainResult<ValidNewPost> {
        let mut issues = Issues::default();
        let title = issues.check("title", parse_title(&self.title));
        let body = issues.check("body", parse_body(&self.body));
        let tags = parse_tags(&self.tags, &mut issues);
        issues.finish()?;
        Ok(ValidNewPost { title: title.unwrap(), body: body.unwrap(), tags: tags.unwrap() })
    }
}

/// A partial update; absent fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct PostPatch {
    pub title: Option<String>,
    pub body: Option<String>,
    pub tags: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default)]
pub struct ValidPostPatch {
    pub title: Option<String>,
    pub body: Option<String>,
    pub tags: Option<Vec<String>>,
}

impl PostPatch {
    pub fn validate(self) -> DomainResult<ValidPostPatch> {
        let mut issues = Issues::default();
        let title = self.title.and_then(|t| issues.check("title", parse_title(&t)));
        let body = self.body.and_then(|b| issues.check("body", parse_body(&b)));
        let tags = self.tags.and_then(|t| parse_tags(&t, &mut issues));
        issues.finish()?;
        Ok(ValidPostPatch { title, body, tags })
    }
}

impl ValidPostPatch {
    pub fn apply(self, post: &mut Post) {
        if let Some(t) = self.title {
            post.title = t;
        }
        if let Some(b) = self.body {
            post.body = b;
        }
        if let Some(t) = self.tags {
            post.tags = t;
        }
    }
}

/// List filters shared by every protocol.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PostFilter {
    pub author_id: Option<String>,
    pub status: Option<PostStatus>,
    pub tag: Option<String>,
}

impl PostFilter {
    /// Validates raw filter values as they arrive from a query string.
    pub fn parse(author_id: Option<String>, status: Option<String>, tag: Option<String>) -> DomainResult<Self> {
        let mut issues = Issues::default();
        let status = status.and_then(|s| issues.check("status", PostStatus::parse(&s)));
        let tag = tag.and_then(|t| issues.check("tag", parse_tag(&t)));
        let author_id = author_id.filter(|a| {
            let ok = is_valid_id(a);
            if !ok {
                issues.add("author_id", "invalid_format");
            }
            ok
        });
        issues.finish()?;
        Ok(PostFilter { author_id, status, tag })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_field_of_a_new_post_is_reported() {
        let err = NewPost {
            title: "   ".into(),
            body: "x".repeat(MAX_BODY_CHARS + 1),
            tags: vec!["ok".into(), "Bad".into(), "ok".into()],
        }
        .validate()
        .unwrap_err();
        let fields: Vec<_> = err.details.iter().map(|d| (d.field.as_str(), d.issue.as_str())).collect();
        assert_eq!(fields, [("title", "required"), ("body", "too_long"), ("tags[1]", "invalid_format")]);
    }

    #[test]
    fn duplicate_tags_collapse() {
        let valid = NewPost { title: "t".into(), tags: vec!["a".into(), "b".into(), "a".into()], ..Default::default() };
        assert_eq!(valid.validate().unwrap().tags, ["a", "b"]);
    }

    #[test]
    fn eleven_tags_are_too_many() {
        let tags = (0..11).map(|i| format!("t{i}")).collect();
        let err = NewPost { title: "t".into(), tags, ..Default::default() }.validate().unwrap_err();
        assert_eq!(err.details[0].issue, "too_many");
    }
}
