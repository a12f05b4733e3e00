//! A small XML writer for responses: envelopes, escaping that always yields well-formed XML,
//! and users and posts written field by field in the order the schema tables declare.

use std::borrow::Cow;

use chrono::{DateTime, SecondsFormat, Utc};

use super::envelope::{Version, is_xml_char};
use super::schema::{self, ComplexType, Field, NS};
use crate::domain::post::Post;
use crate::domain::service::UserView;
use crate::domain::user::User;

/// Escapes text for element content and attribute values. Characters XML 1.0 cannot carry
/// (C0 controls other than tab and newlines) become U+FFFD so the document stays well-formed.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| matches!(c, '<' | '>' | '&' | '"' | '\'' | '\r') || !is_xml_char(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            c if !is_xml_char(c) => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// An XML document under construction. Payload elements use the default namespace `NS`.
#[derive(Default)]
pub struct XmlOut {
    pub buf: String,
}

impl XmlOut {
    pub fn open(&mut self, name: &str) -> &mut Self {
        self.buf.push('<');
        self.buf.push_str(name);
        self.buf.push('>');
        self
    }

    /// Opens an element with raw (already escaped) attributes, e.g. `xmlns="…"`.
    pub fn open_with(&mut self, name: &str, attrs: &str) -> &mut Self {
        self.buf.push('<');
        self.buf.push_str(name);
        self.buf.push(' ');
        self.buf.push_str(attrs);
        self.buf.push('>');
        self
    }

    pub fn close(&mut self, name: &str) -> &mut Self {
        self.buf.push_str("</");
        self.buf.push_str(name);
        self.buf.push('>');
        self
    }

    pub fn leaf(&mut self, name: &str, text: &str) -> &mut Self {
        self.open(name);
        self.buf.push_str(&escape(text));
        self.close(name)
    }
}

/// Writes `<soap:Envelope>[<soap:Header>…</soap:Header>]<soap:Body>…</soap:Body></soap:Envelope>`.
pub fn envelope(version: Version, header: Option<&dyn Fn(&mut XmlOut)>, body: impl FnOnce(&mut XmlOut)) -> Vec<u8> {
    let mut out = XmlOut { buf: String::with_capacity(1024) };
    out.buf.push_str(r#"<?xml version="1.0" encoding="utf-8"?>"#);
    out.open_with("soap:Envelope", &format!(r#"xmlns:soap="{}""#, version.namespace()));
    if let Some(header) = header {
        out.open("soap:Header");
        header(&mut out);
        out.close("soap:Header");
    }
    out.open("soap:Body");
    body(&mut out);
    out.close("soap:Body");
    out.close("soap:Envelope");
    out.buf.into_bytes()
}

/// Writes an operation's response element `<{response} xmlns="urn:polyport:v1">…</…>`.
pub fn response(version: Version, op: &schema::Operation, fields: impl FnOnce(&mut XmlOut)) -> Vec<u8> {
    envelope(version, None, |out| {
        out.open_with(op.response, &format!(r#"xmlns="{NS}""#));
        fields(out);
        out.close(op.response);
    })
}

pub fn timestamp(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// One field value, for writing a complex type in schema order.
pub enum Value<'a> {
    Text(Cow<'a, str>),
    Absent,
    Tags(&'a [String]),
    /// A list type of repeated `item` elements (`TopicList` of `topic`).
    Items(&'a [String], &'static str),
}

fn text<'a>(s: impl Into<Cow<'a, str>>) -> Value<'a> {
    Value::Text(s.into())
}

/// Writes `<name>` holding the fields of `ty`, in its declared order, asking `value` for each.
pub fn record<'a>(out: &mut XmlOut, name: &str, ty: &ComplexType, value: impl Fn(&Field) -> Value<'a>) {
    out.open(name);
    for field in ty.fields {
        match value(field) {
            Value::Text(t) => {
                out.leaf(field.name, &t);
            }
            Value::Absent => debug_assert!(!field.required, "{}.{} is required", ty.name, field.name),
            Value::Tags(tags) => {
                out.open(field.name);
                for tag in tags {
                    out.leaf("tag", tag);
                }
                out.close(field.name);
            }
            Value::Items(items, item) => {
                out.open(field.name);
                for it in items {
                    out.leaf(item, it);
                }
                out.close(field.name);
            }
        }
    }
    out.close(name);
}

pub fn post(out: &mut XmlOut, name: &str, p: &Post) {
    record(out, name, &schema::POST, |f| match f.name {
        "id" => text(&p.id),
        "authorId" => text(&p.author_id),
        "title" => text(&p.title),
        "body" => text(&p.body),
        "status" => text(p.status.as_str()),
        "tags" => Value::Tags(&p.tags),
        "publishedAt" => p.published_at.as_ref().map_or(Value::Absent, |t| text(timestamp(t))),
        "createdAt" => text(timestamp(&p.created_at)),
        "updatedAt" => text(timestamp(&p.updated_at)),
        "version" => text(p.version.to_string()),
        _ => Value::Absent,
    });
}

pub fn user(out: &mut XmlOut, name: &str, u: &User) {
    record(out, name, &schema::USER, |f| match f.name {
        "id" => text(&u.id),
        "name" => text(&u.name),
        "email" => text(&u.email),
        "role" => text(u.role.as_str()),
        "createdAt" => text(timestamp(&u.created_at)),
        "updatedAt" => text(timestamp(&u.updated_at)),
        "version" => text(u.version.to_string()),
        _ => Value::Absent,
    });
}

pub fn user_view(out: &mut XmlOut, name: &str, view: &UserView) {
    match view {
        UserView::Full(u) => user(out, name, u),
        UserView::Public { id, name: display, .. } => record(out, name, &schema::USER, |f| match f.name {
            "id" => text(id.as_str()),
            "name" => text(display.as_str()),
            _ => Value::Absent,
        }),
    }
}

pub fn webhook(out: &mut XmlOut, name: &str, w: &crate::domain::webhook::Webhook) {
    record(out, name, &schema::WEBHOOK, |f| match f.name {
        "id" => text(&w.id),
        "ownerId" => text(&w.owner_id),
        "url" => text(&w.url),
        "topics" => Value::Items(&w.topics, "topic"),
        "createdAt" => text(timestamp(&w.created_at)),
        _ => Value::Absent,
    });
}

pub fn webhook_delivery(out: &mut XmlOut, name: &str, d: &crate::domain::webhook::WebhookDelivery) {
    record(out, name, &schema::WEBHOOK_DELIVERY, |f| match f.name {
        "id" => text(&d.id),
        "webhookId" => text(&d.webhook_id),
        "deliveryId" => text(&d.delivery_id),
        "eventId" => text(d.event_id.to_string()),
        "attempt" => text(d.attempt.to_string()),
        "statusCode" => d.status_code.map_or(Value::Absent, |c| text(c.to_string())),
        "succeeded" => text(if d.succeeded { "true" } else { "false" }),
        "error" => d.error.as_deref().map_or(Value::Absent, text),
        "durationMs" => text(d.duration_ms.to_string()),
        "attemptedAt" => text(timestamp(&d.attempted_at)),
        _ => Value::Absent,
    });
}

pub fn audit_entry(out: &mut XmlOut, name: &str, e: &crate::domain::audit::AuditEntry) {
    let opt = |v: &'_ Option<String>| v.as_deref().map_or(Value::Absent, |s| text(s.to_string()));
    record(out, name, &schema::AUDIT_ENTRY, |f| match f.name {
        "id" => text(e.id.to_string()),
        "at" => text(timestamp(&e.at)),
        "actorId" => opt(&e.actor_id),
        "actorKeyId" => opt(&e.actor_key_id),
        "protocol" => text(e.protocol.as_str()),
        "requestId" => text(e.request_id.as_str()),
        "traceId" => opt(&e.trace_id),
        "action" => text(e.action.as_str()),
        "target" => opt(&e.target),
        "outcome" => text(e.outcome.as_str()),
        "clientIp" => opt(&e.client_ip),
        _ => Value::Absent,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::post::PostStatus;

    #[test]
    fn text_that_xml_cannot_carry_is_escaped_or_replaced() {
        assert_eq!(escape("a<b&c\"d\r\u{1}"), "a&lt;b&amp;c&quot;d&#13;\u{fffd}");
        assert!(matches!(escape("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn a_post_is_written_with_every_schema_field_in_order() {
        let now = Utc::now();
        let p = Post {
            id: "p1".into(),
            author_id: "u1".into(),
            title: "T".into(),
            body: "B".into(),
            status: PostStatus::Published,
            tags: vec!["rust".into()],
            published_at: Some(now),
            created_at: now,
            updated_at: now,
            version: 2,
        };
        let mut out = XmlOut::default();
        post(&mut out, "post", &p);
        let mut at = 0;
        for field in schema::POST.fields {
            let found = out.buf[at..].find(&format!("<{}>", field.name)).unwrap_or_else(|| panic!("{}", field.name));
            at += found;
        }
        assert!(out.buf.contains("<tags><tag>rust</tag></tags>"));
    }
}
