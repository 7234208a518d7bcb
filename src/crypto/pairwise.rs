//! Pairwise subject identifiers (OIDC Core §8.1): each partner sees a different, stable `sub`
//! for the same person, so partners cannot correlate students between them.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// `sub = base64url(HMAC-SHA256(server secret, sector || 0x00 || account id))`.
///
/// The sector is the client id: our partners register one client each, and redirect URIs on
/// shared hosts (localhost in demos) would otherwise merge sectors.
pub fn pairwise_subject(secret: &[u8], sector: &str, account_id: &str) -> String {
    // HMAC accepts keys of any length, so this cannot fail; fall back defensively anyway.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(sector.as_bytes());
    mac.update(&[0]);
    mac.update(account_id.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differs_per_sector_and_is_stable() {
        let a = pairwise_subject(b"k", "studyspace-demo", "student-1");
        let b = pairwise_subject(b"k", "huiswerkhulp-demo", "student-1");
        assert_ne!(a, b);
        assert_eq!(a, pairwise_subject(b"k", "studyspace-demo", "student-1"));
        assert_ne!(
            a,
            pairwise_subject(b"other", "studyspace-demo", "student-1")
        );
    }
}
