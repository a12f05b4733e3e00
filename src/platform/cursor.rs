//! Opaque, signed keyset cursors: clients cannot forge them or move them to another query.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::domain::error::{DomainError, DomainResult};

type HmacSha256 = Hmac<Sha256>;

/// The cursor context of the user list, the same on every protocol.
pub const USERS_CONTEXT: &str = "users";

/// The cursor context of a filtered audit log read (a cursor only continues the same query).
pub fn audit_context(q: &crate::domain::audit::AuditQuery) -> String {
    let part = |v: &Option<String>| v.as_deref().map(str::trim).unwrap_or_default().to_string();
    format!("audit|{}|{}|{}|{}", part(&q.actor_id), part(&q.action), part(&q.target), part(&q.since))
}

/// The cursor context of a filtered post list: a cursor only continues the same query, and a
/// cursor from one protocol continues the same list on another.
pub fn posts_context(f: &crate::domain::post::PostFilter) -> String {
    format!(
        "posts|{}|{}|{}",
        f.author_id.as_deref().unwrap_or_default(),
        f.status.map_or("", |s| s.as_str()),
        f.tag.as_deref().unwrap_or_default()
    )
}

/// Encodes `(query context, last key)` as `base64(payload).base64(mac)`.
#[derive(Clone)]
pub struct CursorCodec {
    key: Vec<u8>,
}

const MAC_LEN: usize = 16;

impl CursorCodec {
    pub fn new(secret: &[u8]) -> Self {
        let mut mac = HmacSha256::new_from_slice(secret).expect("hmac accepts any key length");
        mac.update(b"polyport cursor v1");
        Self { key: mac.finalize().into_bytes().to_vec() }
    }

    fn mac(&self, payload: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("hmac accepts any key length");
        mac.update(payload);
        mac
    }

    /// `context` names the list and its filters, so a cursor only continues the query it came from.
    pub fn encode(&self, context: &str, after: &str) -> String {
        let payload = format!("{context}\n{after}");
        let tag = self.mac(payload.as_bytes()).finalize().into_bytes();
        format!("{}.{}", URL_SAFE_NO_PAD.encode(payload), URL_SAFE_NO_PAD.encode(&tag[..MAC_LEN]))
    }

    pub fn decode(&self, context: &str, cursor: &str) -> DomainResult<String> {
        let invalid = || DomainError::invalid("invalid cursor").with_detail("cursor", "invalid");
        if cursor.len() > 512 {
            return Err(invalid());
        }
        let (payload, tag) = cursor.split_once('.').ok_or_else(invalid)?;
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| invalid())?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| invalid())?;
        self.mac(&payload).verify_truncated_left(&tag).map_err(|_| invalid())?;
        let text = String::from_utf8(payload).map_err(|_| invalid())?;
        let (ctx, after) = text.split_once('\n').ok_or_else(invalid)?;
        if ctx != context {
            return Err(
                DomainError::invalid("this cursor belongs to a different query").with_detail("cursor", "mismatch")
            );
        }
        Ok(after.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_refuses_tampering_and_other_queries() {
        let codec = CursorCodec::new(b"secret");
        let c = codec.encode("posts?tag=rust", "0190-abc");
        assert_eq!(codec.decode("posts?tag=rust", &c).unwrap(), "0190-abc");
        assert!(codec.decode("posts?tag=go", &c).is_err());
        let forged = format!("{}.{}", URL_SAFE_NO_PAD.encode("posts?tag=rust\nzzz"), c.split_once('.').unwrap().1);
        assert!(codec.decode("posts?tag=rust", &forged).is_err());
        assert!(CursorCodec::new(b"other").decode("posts?tag=rust", &c).is_err());
        assert!(codec.decode("posts?tag=rust", "garbage").is_err());
    }
}
