//! WS-Security UsernameToken: PasswordText (email + password, checked like a login) and
//! PasswordDigest (API key id + Base64(SHA-1(nonce + created + secret)), with a ±5 minute
//! window on `Created` and nonce replay protection).
//!
//! For PasswordDigest the shared secret is the lowercase hex SHA-256 of the API key, which is
//! exactly the stored `key_hash`: the stored hash is password-equivalent for digest auth (the
//! known trade-off of digest schemes; API keys are high-entropy random secrets).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Duration, Utc};
use sha1::{Digest, Sha1};

use super::envelope::Element;
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::policy::Principal;
use crate::domain::service::{ClientInfo, Core};
use crate::platform::nonces::{NonceCache, NonceError};

pub const WSSE_NS: &str = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
pub const WSU_NS: &str = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";
const TOKEN_PROFILE: &str = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0";

/// How far `Created` may be from our clock, either way.
pub const WINDOW_SECS: i64 = 300;

/// A UsernameToken as sent.
#[derive(Debug, PartialEq, Eq)]
pub enum UsernameToken {
    Text { username: String, password: String },
    Digest { username: String, digest: String, nonce: String, created: String },
}

fn bad(message: &str) -> DomainError {
    DomainError::unauthenticated(message.to_string())
}

/// Reads the UsernameToken of a `wsse:Security` header block. Missing token: Ok(None).
pub fn username_token(security: &Element) -> DomainResult<Option<UsernameToken>> {
    let Some(token) = security.child(WSSE_NS, "UsernameToken") else {
        check_timestamp(security)?;
        return Ok(None);
    };
    check_timestamp(security)?;
    let text = |name: &str| token.child(WSSE_NS, name).map(|e| e.text.trim().to_string());
    let username =
        text("Username").filter(|u| !u.is_empty()).ok_or_else(|| bad("the UsernameToken has no Username"))?;
    let password = token.child(WSSE_NS, "Password").ok_or_else(|| bad("the UsernameToken has no Password"))?;
    let kind = password.attr(None, "Type").unwrap_or("");
    if kind.is_empty() || kind == format!("{TOKEN_PROFILE}#PasswordText") {
        return Ok(Some(UsernameToken::Text { username, password: password.text.clone() }));
    }
    if kind != format!("{TOKEN_PROFILE}#PasswordDigest") {
        return Err(bad("unsupported UsernameToken password type"));
    }
    let nonce = text("Nonce").ok_or_else(|| bad("a PasswordDigest needs a Nonce"))?;
    let created = token
        .child(WSU_NS, "Created")
        .map(|e| e.text.trim().to_string())
        .ok_or_else(|| bad("a PasswordDigest needs a wsu:Created"))?;
    Ok(Some(UsernameToken::Digest { username, digest: password.text.trim().to_string(), nonce, created }))
}

/// A `wsu:Timestamp` with an `Expires` in the past makes the message stale.
fn check_timestamp(security: &Element) -> DomainResult<()> {
    let expires = security.child(WSU_NS, "Timestamp").and_then(|t| t.child(WSU_NS, "Expires"));
    if let Some(expires) = expires {
        let at = DateTime::parse_from_rfc3339(expires.text.trim()).map_err(|_| bad("invalid wsu:Expires"))?;
        if at.with_timezone(&Utc) < Utc::now() {
            return Err(bad("the message has expired (wsu:Timestamp)"));
        }
    }
    Ok(())
}

/// Base64(SHA-1(nonce bytes + created + password)), as the UsernameToken profile defines it.
pub fn password_digest(nonce: &[u8], created: &str, password: &str) -> String {
    let mut h = Sha1::new();
    h.update(nonce);
    h.update(created.as_bytes());
    h.update(password.as_bytes());
    STANDARD.encode(h.finalize())
}

/// Resolves a UsernameToken to the principal it proves.
pub async fn authenticate(
    core: &Core,
    nonces: &NonceCache,
    token: UsernameToken,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> DomainResult<Principal> {
    match token {
        UsernameToken::Text { username, password } => {
            core.auth.authenticate_password(&username, &password, client).await
        }
        UsernameToken::Digest { username, digest, nonce, created } => {
            let at = DateTime::parse_from_rfc3339(&created).map_err(|_| bad("invalid wsu:Created"))?;
            let skew = (now - at.with_timezone(&Utc)).abs();
            if skew > Duration::seconds(WINDOW_SECS) {
                return Err(bad("wsu:Created is outside the accepted window of 5 minutes"));
            }
            let nonce_bytes = STANDARD.decode(nonce.as_bytes()).map_err(|_| bad("the Nonce is not base64"))?;
            if nonce_bytes.len() < 8 || nonce_bytes.len() > 64 {
                return Err(bad("the Nonce must be 8 to 64 bytes"));
            }
            let invalid = || bad("invalid UsernameToken");
            let (key, principal) = core.auth.api_key_by_id(&username).await?.ok_or_else(invalid)?;
            let expected = password_digest(&nonce_bytes, &created, &key.key_hash);
            if !constant_time_eq(expected.as_bytes(), digest.as_bytes()) {
                return Err(invalid());
            }
            match nonces.check_and_insert(&format!("{}:{nonce}", key.id)).await {
                Ok(()) => Ok(principal),
                Err(NonceError::Replayed) => Err(bad("this Nonce was already used")),
                Err(NonceError::Full) => Err(DomainError::unavailable("too many recent nonces; retry shortly")),
                Err(NonceError::Unavailable) => {
                    Err(DomainError::unavailable("nonces cannot be checked now; retry shortly"))
                }
            }
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_is_base64_sha1_of_nonce_created_and_password() {
        let nonce = STANDARD.decode("LKqI6G/AikKCQrN0zqZFlg==").unwrap();
        let created = "2010-09-16T07:50:45Z";
        assert_eq!(password_digest(&nonce, created, "password"), "PjAtWm3FS82plE1jaFLS2ss55Cg=");
    }
}
