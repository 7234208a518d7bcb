//! Password and client-secret hashing with argon2id (OWASP parameters), run off the async runtime.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// argon2id, m=19 MiB, t=2, p=1: the OWASP Password Storage Cheat Sheet minimum.
fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hash a password into a PHC string. Blocking: call through [`hash_password`] from async code.
pub fn hash_password_blocking(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(hasher()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// Verify a password against a PHC string; any malformed hash simply fails to verify.
pub fn verify_password_blocking(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

pub async fn hash_password(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || hash_password_blocking(&password))
        .await?
        .map_err(|e| anyhow::anyhow!("password hashing failed: {e}"))
}

/// Verify off the runtime. When `phc` is `None` (unknown user or client) we still spend the
/// same work on a dummy hash so response time does not reveal which accounts exist.
pub async fn verify_password(password: String, phc: Option<String>) -> bool {
    let result = tokio::task::spawn_blocking(move || match phc {
        Some(phc) => verify_password_blocking(&password, &phc),
        None => {
            let _ = verify_password_blocking(&password, dummy_hash());
            false
        }
    })
    .await;
    result.unwrap_or(false)
}

/// A fixed argon2id hash of a random string with the same parameters as real hashes.
fn dummy_hash() -> &'static str {
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$1bS4tLtY2bUG3Q2vUO3tV0uG8d1o6S5Sg2xQe0nTt0E"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let phc = hash_password_blocking("welkom-demo-2026").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify_password_blocking("welkom-demo-2026", &phc));
        assert!(!verify_password_blocking("welkom-demo-2027", &phc));
    }

    #[test]
    fn dummy_hash_parses_and_rejects() {
        assert!(PasswordHash::new(dummy_hash()).is_ok());
        assert!(!verify_password_blocking("anything", dummy_hash()));
    }
}
