//! JWT access tokens (HS256): issuing and strict verification (no `none`, no leeway, typed).

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::domain::error::{DomainError, DomainResult};
use crate::domain::ports::TokenIssuer;
use crate::domain::user::{Role, User};

pub const ISSUER: &str = "polyport";

/// The kind of a token: only `access` tokens authenticate API calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    Access,
    Stream,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    pub jti: String,
    /// The login session (refresh-token family) this token belongs to.
    pub sid: String,
    pub typ: TokenType,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    /// Stream tokens minted with an API key: the key they act as (`sid` is then empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
}

/// Signs and verifies tokens with one HMAC secret.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    access_ttl_secs: u64,
    /// Tokens whose signature already verified, so a client reusing its token (the common
    /// case) costs a lookup instead of a decode and an HMAC. Expiry is still checked per use.
    verified: std::sync::RwLock<foldhash::HashMap<String, Claims>>,
}

const VERIFIED_CAPACITY: usize = 10_000;

impl JwtKeys {
    pub fn new(secret: &SecretString, access_ttl_secs: u64) -> Self {
        let bytes = secret.expose_secret().as_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(bytes),
            decoding: DecodingKey::from_secret(bytes),
            validation,
            access_ttl_secs,
            verified: Default::default(),
        }
    }

    pub fn sign(&self, user: &User, session_id: &str, typ: TokenType, ttl_secs: u64) -> DomainResult<String> {
        self.sign_claims(&user.id, user.role, session_id, typ, ttl_secs, None)
    }

    pub fn sign_claims(
        &self,
        sub: &str,
        role: Role,
        session_id: &str,
        typ: TokenType,
        ttl_secs: u64,
        kid: Option<&str>,
    ) -> DomainResult<String> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: sub.to_string(),
            role,
            jti: uuid::Uuid::now_v7().to_string(),
            sid: session_id.to_string(),
            typ,
            iat: now,
            exp: now + ttl_secs as i64,
            iss: ISSUER.to_string(),
            kid: kid.map(str::to_string),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(DomainError::internal)
    }

    /// Verifies signature, algorithm, issuer, expiry (no leeway) and the token type.
    pub fn verify(&self, token: &str, expected: TokenType) -> DomainResult<Claims> {
        let known = self.verified.read().unwrap_or_else(|e| e.into_inner()).get(token).cloned();
        let claims = match known {
            Some(claims) => {
                if claims.exp <= chrono::Utc::now().timestamp() {
                    return Err(DomainError::unauthenticated("the access token has expired"));
                }
                claims
            }
            None => {
                let claims = self.decode(token)?;
                let mut verified = self.verified.write().unwrap_or_else(|e| e.into_inner());
                if verified.len() >= VERIFIED_CAPACITY {
                    verified.clear();
                }
                verified.insert(token.to_string(), claims.clone());
                claims
            }
        };
        if claims.typ != expected {
            return Err(DomainError::unauthenticated("wrong token type"));
        }
        Ok(claims)
    }

    fn decode(&self, token: &str) -> DomainResult<Claims> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::ExpiredSignature => DomainError::unauthenticated("the access token has expired"),
                _ => DomainError::unauthenticated("invalid access token"),
            }
        })?;
        Ok(data.claims)
    }
}

impl TokenIssuer for JwtKeys {
    fn issue_access(&self, user: &User, session_id: &str) -> DomainResult<(String, u64)> {
        Ok((self.sign(user, session_id, TokenType::Access, self.access_ttl_secs)?, self.access_ttl_secs))
    }
}
