//! Secrets at rest: the ID-token signing keys and the server secrets (the pairwise-subject
//! key, the device-cookie key) are sealed with AES-256-GCM under a key from configuration
//! (`secrets_key`, 32 bytes, base64), so a copy of the database alone signs nothing and links
//! no pairwise identifier back to a student. Each value is bound to its row (the row's name
//! is the associated data), so sealed values cannot be swapped between rows.
//!
//! Stored form: `sealed:v1:` + base64(12-byte nonce ‖ ciphertext ‖ tag). A value without the
//! prefix is plain (written before a key was configured): it is read as it is and sealed
//! at the next start with a key (the upgrade path).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::RngCore;

const PREFIX: &str = "sealed:v1:";

/// Seals and opens stored secrets; without a key it passes plain values through.
pub struct Sealer {
    cipher: Option<Aes256Gcm>,
}

impl Sealer {
    /// From the configured key (base64 of 32 bytes), or none.
    pub fn new(key: Option<&str>) -> anyhow::Result<Sealer> {
        let cipher = match key.map(str::trim).filter(|k| !k.is_empty()) {
            None => None,
            Some(encoded) => {
                let bytes = STANDARD.decode(encoded).map_err(|_| {
                    anyhow::anyhow!(
                        "secrets_key must be base64 (32 random bytes: openssl rand -base64 32)"
                    )
                })?;
                anyhow::ensure!(
                    bytes.len() == 32,
                    "secrets_key must be 32 bytes (openssl rand -base64 32), not {}",
                    bytes.len()
                );
                Some(Aes256Gcm::new_from_slice(&bytes).map_err(|e| anyhow::anyhow!("{e}"))?)
            }
        };
        Ok(Sealer { cipher })
    }

    pub fn has_key(&self) -> bool {
        self.cipher.is_some()
    }

    pub fn is_sealed(stored: &str) -> bool {
        stored.starts_with(PREFIX)
    }

    /// The stored form of `plain` for row `name`: sealed with a key, plain without.
    pub fn seal(&self, plain: &str, name: &str) -> anyhow::Result<String> {
        let Some(cipher) = &self.cipher else {
            return Ok(plain.to_string());
        };
        let mut nonce = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut nonce);
        let sealed = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain.as_bytes(),
                    aad: name.as_bytes(),
                },
            )
            .map_err(|_| anyhow::anyhow!("sealing {name} failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(format!("{PREFIX}{}", STANDARD.encode(out)))
    }

    /// The plain value of row `name` as stored.
    pub fn open(&self, stored: &str, name: &str) -> anyhow::Result<String> {
        let Some(encoded) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_string());
        };
        let Some(cipher) = &self.cipher else {
            anyhow::bail!(
                "the database holds sealed secrets ({name}); configure secrets_key (POORTWACHTER_SECRETS_KEY) to start"
            );
        };
        let bytes = STANDARD
            .decode(encoded)
            .map_err(|_| anyhow::anyhow!("sealed {name} is not base64"))?;
        anyhow::ensure!(bytes.len() > 12, "sealed {name} is too short");
        let (nonce, sealed) = bytes.split_at(12);
        let plain = cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: name.as_bytes(),
                },
            )
            .map_err(|_| {
                anyhow::anyhow!("{name} does not open with the configured secrets_key (wrong key?)")
            })?;
        Ok(String::from_utf8(plain)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

    #[test]
    fn sealed_values_open_only_with_the_key_and_for_their_row() {
        let sealer = Sealer::new(Some(KEY)).unwrap();
        let sealed = sealer.seal("geheim", "pairwise_subject").unwrap();
        assert!(Sealer::is_sealed(&sealed));
        assert!(!sealed.contains("geheim"));
        assert_eq!(sealer.open(&sealed, "pairwise_subject").unwrap(), "geheim");
        assert!(
            sealer.open(&sealed, "device_cookie").is_err(),
            "bound to its row"
        );
        let other = Sealer::new(Some("MTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTE=")).unwrap();
        assert!(
            other.open(&sealed, "pairwise_subject").is_err(),
            "another key"
        );
        assert!(Sealer::new(None)
            .unwrap()
            .open(&sealed, "pairwise_subject")
            .is_err());
        // Plain values pass through (the upgrade path), with or without a key.
        assert_eq!(sealer.open("plain", "x").unwrap(), "plain");
        assert_eq!(
            Sealer::new(None).unwrap().seal("plain", "x").unwrap(),
            "plain"
        );
        assert!(Sealer::new(Some("too-short")).is_err());
    }
}
