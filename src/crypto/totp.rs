//! Time-based one-time passwords (RFC 6238, over HOTP RFC 4226) for the console's second
//! factor, and the enrolment QR code, drawn on the server as SVG (no script, no image from
//! elsewhere).
//!
//! The parameters are the ones every authenticator app assumes when an `otpauth://` URI
//! leaves them out: HMAC-SHA-1, six digits, 30-second steps (RFC 6238 §4 and §5.2). One step
//! of clock drift either way is accepted (§6), and a step once accepted is never accepted
//! again, so an observed code cannot be replayed within its window (§5.2).

use chrono::{DateTime, Utc};
use rand::RngCore;
use totp_rs::{Algorithm, Secret, TOTP};

/// RFC 6238 §5.2: 30 seconds is the recommended time step.
pub const STEP_SECS: u64 = 30;
const DIGITS: usize = 6;
/// RFC 4226 §4 asks for at least 128 bits of shared secret and recommends 160.
const SECRET_BYTES: usize = 20;

/// A fresh random secret, base32 (RFC 4648) without padding, as authenticator apps show it.
pub fn new_secret() -> String {
    let mut bytes = [0u8; SECRET_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    Secret::Raw(bytes.to_vec()).to_encoded().to_string()
}

fn totp(secret_base32: &str, account: &str) -> Option<TOTP> {
    let bytes = Secret::Encoded(secret_base32.to_string()).to_bytes().ok()?;
    TOTP::new(
        Algorithm::SHA1,
        DIGITS,
        1,
        STEP_SECS,
        bytes,
        Some("Poortwachter".to_string()),
        account.replace(':', " "),
    )
    .ok()
}

/// The time step of `now` (RFC 6238 §4.2: T = (now - T0) / X with T0 = 0).
pub fn step_of(now: DateTime<Utc>) -> i64 {
    now.timestamp().div_euclid(STEP_SECS as i64)
}

/// The six-digit code for `now` (what an authenticator app shows; used by the demo and tests).
pub fn code_at(secret_base32: &str, now: DateTime<Utc>) -> Option<String> {
    let t = u64::try_from(now.timestamp()).ok()?;
    Some(totp(secret_base32, "")?.generate(t))
}

/// The step at which `code` is valid, within one step of `now`, and later than `last_step`
/// (the newest step accepted before). Each candidate is compared in constant time.
pub fn verify(secret_base32: &str, code: &str, now: DateTime<Utc>, last_step: i64) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let totp = totp(secret_base32, "")?;
    let current = step_of(now);
    let mut found = None;
    for step in [current - 1, current, current + 1] {
        let Ok(t) = u64::try_from(step * STEP_SECS as i64) else {
            continue;
        };
        let candidate = totp.generate(t);
        if crate::crypto::tokens::constant_time_eq(&candidate, &code) && step > last_step {
            found = Some(step);
        }
    }
    found
}

/// The `otpauth://totp/…` URI an authenticator app reads from the QR code (the Key Uri Format
/// of Google Authenticator, which every app follows).
pub fn provisioning_uri(secret_base32: &str, account: &str) -> Option<String> {
    Some(totp(secret_base32, account)?.get_url())
}

/// The provisioning URI as an SVG QR code (error correction level M), to be inlined in the page.
pub fn qr_svg(uri: &str) -> Option<String> {
    let code = qrcode::QrCode::with_error_correction_level(uri, qrcode::EcLevel::M).ok()?;
    let svg = code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(220, 220)
        .quiet_zone(true)
        .dark_color(qrcode::render::svg::Color("#000000"))
        .light_color(qrcode::render::svg::Color("#ffffff"))
        .build();
    // Inline in HTML: drop the XML declaration.
    Some(match svg.find("<svg") {
        Some(start) => svg[start..].to_string(),
        None => svg,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// RFC 6238 appendix B: the SHA-1 test secret "12345678901234567890" and its
    /// eight-digit codes; our six digits are their last six.
    #[test]
    fn rfc6238_test_vectors() {
        let secret = Secret::Raw(b"12345678901234567890".to_vec())
            .to_encoded()
            .to_string();
        for (t, eight) in [
            (59, "94287082"),
            (1111111109, "07081804"),
            (1111111111, "14050471"),
            (1234567890, "89005924"),
            (2000000000, "69279037"),
        ] {
            let at = Utc.timestamp_opt(t, 0).unwrap();
            assert_eq!(code_at(&secret, at).unwrap(), &eight[2..], "t = {t}");
        }
    }

    #[test]
    fn a_code_is_accepted_once_and_one_step_either_way() {
        let secret = new_secret();
        let now = Utc.timestamp_opt(1_800_000_000, 0).unwrap();
        let code = code_at(&secret, now).unwrap();
        let step = verify(&secret, &code, now, 0).expect("valid now");
        assert_eq!(step, step_of(now));
        // Replay of the same step.
        assert_eq!(verify(&secret, &code, now, step), None);
        // Drift: the previous step's code is still accepted, two steps back is not.
        let earlier = now - chrono::Duration::seconds(30);
        let previous = code_at(&secret, earlier).unwrap();
        assert!(verify(&secret, &previous, now, 0).is_some());
        let older = code_at(&secret, now - chrono::Duration::seconds(90)).unwrap();
        assert_eq!(verify(&secret, &older, now, 0), None);
        assert_eq!(verify(&secret, "12345", now, 0), None);
        assert_eq!(verify(&secret, "abcdef", now, 0), None);
    }

    #[test]
    fn the_qr_code_is_an_inline_svg() {
        let uri = provisioning_uri(&new_secret(), "12AB beheer").unwrap();
        assert!(
            uri.starts_with("otpauth://totp/Poortwachter:12AB%20beheer?"),
            "{uri}"
        );
        let svg = qr_svg(&uri).unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(!svg.contains("<script"));
    }
}
