//! Domain values to protobuf messages (and JSON to `google.protobuf.Struct` for event data).

use chrono::{DateTime, Utc};
use prost_types::value::Kind;
use serde_json::Value;

use super::pb;
use crate::domain::credentials::{ApiKey, TokenPair};
use crate::domain::delivery::Delivery;
use crate::domain::post::Post;
use crate::domain::service::UserView;
use crate::domain::user::User;

pub fn ts(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: t.timestamp(), nanos: t.timestamp_subsec_nanos() as i32 }
}

pub fn post(p: Post) -> pb::Post {
    pb::Post {
        id: p.id,
        author_id: p.author_id,
        title: p.title,
        body: p.body,
        status: p.status.as_str().to_string(),
        tags: p.tags,
        published_at: p.published_at.map(ts),
        created_at: Some(ts(p.created_at)),
        updated_at: Some(ts(p.updated_at)),
        version: p.version,
    }
}

pub fn user(u: User) -> pb::User {
    pb::User {
        id: u.id,
        email: Some(u.email),
        name: u.name,
        role: Some(u.role.as_str().to_string()),
        created_at: Some(ts(u.created_at)),
        updated_at: Some(ts(u.updated_at)),
        version: Some(u.version),
    }
}

pub fn user_view(v: UserView) -> pb::User {
    match v {
        UserView::Full(u) => user(u),
        UserView::Public { id, name, .. } => pb::User { id, name, ..Default::default() },
    }
}

pub fn api_key(k: ApiKey) -> pb::ApiKey {
    pb::ApiKey {
        id: k.id,
        name: k.name,
        prefix: k.prefix,
        scopes: k.scopes.iter().map(|s| s.as_str().to_string()).collect(),
        created_at: Some(ts(k.created_at)),
        revoked_at: k.revoked_at.map(ts),
        key: String::new(),
    }
}

pub fn login(p: TokenPair) -> pb::LoginResponse {
    pb::LoginResponse {
        access_token: p.access_token,
        token_type: "Bearer".into(),
        expires_in: p.expires_in as i64,
        refresh_token: p.refresh_token,
    }
}

pub fn event(d: Delivery) -> pb::Event {
    let data = match json_value(d.data).kind {
        Some(Kind::StructValue(s)) => Some(s),
        _ => None,
    };
    pb::Event { id: d.id, r#type: d.event_type.to_string(), topic: d.topic, occurred_at: Some(ts(d.occurred_at)), data }
}

fn json_value(v: Value) -> prost_types::Value {
    let kind = match v {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        Value::String(s) => Kind::StringValue(s),
        Value::Array(a) => Kind::ListValue(prost_types::ListValue { values: a.into_iter().map(json_value).collect() }),
        Value::Object(o) => {
            Kind::StructValue(prost_types::Struct { fields: o.into_iter().map(|(k, v)| (k, json_value(v))).collect() })
        }
    };
    prost_types::Value { kind: Some(kind) }
}
