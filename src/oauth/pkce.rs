//! PKCE (RFC 7636) with S256 only, as RFC 9700 §2.1.1 and the NL GOV profile require.

use crate::crypto::tokens::{constant_time_eq, sha256_b64url};

/// RFC 7636 §4.1/§4.2: 43–128 characters from the unreserved set. An S256 challenge is always
/// exactly 43 base64url characters.
fn is_pkce_string(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

pub fn is_valid_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43 && is_pkce_string(challenge, 43, 43)
}

/// RFC 7636 §4.6: `BASE64URL(SHA256(verifier)) == challenge`.
pub fn verify_s256(verifier: &str, challenge: &str) -> bool {
    is_pkce_string(verifier, 43, 128)
        && constant_time_eq(&sha256_b64url(verifier.as_bytes()), challenge)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b_example() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(is_valid_s256_challenge(challenge));
        assert!(verify_s256(verifier, challenge));
        assert!(!verify_s256(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK",
            challenge
        ));
        assert!(!verify_s256("short", challenge));
    }
}
