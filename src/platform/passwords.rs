//! Argon2id password hashing, run on the blocking pool so it never stalls request threads.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use async_trait::async_trait;

use crate::domain::error::{DomainError, DomainResult};
use crate::domain::ports::PasswordHasher;

/// Argon2id with OWASP's second recommended profile (19 MiB, 2 passes, 1 lane).
#[derive(Clone)]
pub struct Argon2Hasher {
    params: Params,
}

impl Default for Argon2Hasher {
    fn default() -> Self {
        Self { params: Params::new(19 * 1024, 2, 1, None).expect("static argon2 parameters are valid") }
    }
}

impl Argon2Hasher {
    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }
}

#[async_trait]
impl PasswordHasher for Argon2Hasher {
    async fn hash(&self, password: &str) -> DomainResult<String> {
        let (hasher, password) = (self.argon2(), password.to_owned());
        tokio::task::spawn_blocking(move || {
            let salt = SaltString::generate(&mut OsRng);
            hasher.hash_password(password.as_bytes(), &salt).map(|h| h.to_string())
        })
        .await
        .map_err(DomainError::internal)?
        .map_err(|e| DomainError::internal(anyhow::anyhow!("argon2: {e}")))
    }

    async fn verify(&self, password: &str, hash: &str) -> bool {
        let (hasher, password, hash) = (self.argon2(), password.to_owned(), hash.to_owned());
        tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash).is_ok_and(|parsed| hasher.verify_password(password.as_bytes(), &parsed).is_ok())
        })
        .await
        .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_nothing_else() {
        let hasher = Argon2Hasher::default();
        let hash = hasher.hash("correct horse battery").await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(hasher.verify("correct horse battery", &hash).await);
        assert!(!hasher.verify("wrong horse battery", &hash).await);
        assert!(!hasher.verify("anything", "not a phc string").await);
    }
}
