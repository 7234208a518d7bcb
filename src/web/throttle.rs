//! Login throttling that holds under concurrency and cannot be turned against the owner.
//!
//! - An attempt is counted *before* its password is verified (atomically, see
//!   [`crate::cache::limiter`]); past the limit no argon2 runs at all, so parallel guessing
//!   gets no more tries than sequential guessing.
//! - Limits per account (10 in 15 minutes) and per client address (100 in 15 minutes), keyed
//!   by what was typed whether or not the account exists, so a refusal reveals nothing.
//! - A browser that logged in to the account before carries a signed device cookie (OWASP
//!   "device cookies"): its attempts count in its own lane, so failures from elsewhere do not
//!   lock the owner out.
//! - When an existing account's lane fills up, the lock is recorded (`login_locks`) so the
//!   school console can see and lift it.
//!
//! [`is_blocked`], [`record_failure`] and [`record_success`] keep the older check-then-count
//! interface (used with other key prefixes, e.g. `activate:`); [`attempt`] is its atomic
//! drop-in: count first, then say whether to go ahead.

use std::time::Duration;

use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::cache::limiter::{self, Limit, Verdict};
use crate::crypto::tokens::random_token;
use crate::serve::ClientIp;
use crate::AppState;

pub const MAX_FAILURES: i64 = 10;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);

/// Attempts from browsers without a device cookie for the account, per school and username.
pub const ACCOUNT: Limit = Limit {
    name: "login-failures",
    max: MAX_FAILURES,
    window: WINDOW,
};
/// Attempts from one device cookie.
pub const DEVICE: Limit = Limit {
    name: "login-device",
    max: MAX_FAILURES,
    window: WINDOW,
};
/// Attempts without a device cookie from one client address: high enough for a school behind
/// one NAT address (only failures use it up; a correct password gives its attempt back).
pub const ADDRESS: Limit = Limit {
    name: "login-address",
    max: 100,
    window: WINDOW,
};

pub const DEVICE_COOKIE: &str = "pw_device";
/// How long a device stays known.
const DEVICE_COOKIE_DAYS: i64 = 180;

fn subject(school: &str, username: &str) -> String {
    format!("{school}\0{}", username.to_lowercase())
}

/// Is this login blocked for now? (Counts nothing; see [`attempt`] for the atomic form.)
pub async fn is_blocked(state: &AppState, school: &str, username: &str) -> bool {
    limiter::is_limited(state, &ACCOUNT, &subject(school, username)).await
}

pub async fn record_failure(state: &AppState, school: &str, username: &str) {
    limiter::hit(state, &ACCOUNT, &subject(school, username)).await;
}

pub async fn record_success(state: &AppState, school: &str, username: &str) {
    limiter::reset(state, &ACCOUNT, &subject(school, username)).await;
}

/// Count an attempt first and say whether it may go ahead (`false`: over the limit, do not
/// verify anything). A success afterwards calls [`record_success`]; a failure needs nothing
/// more (it was counted).
pub async fn attempt(state: &AppState, school: &str, username: &str) -> bool {
    limiter::hit(state, &ACCOUNT, &subject(school, username))
        .await
        .is_allowed()
}

/// A counted login attempt that may go ahead to password verification.
pub struct LoginAttempt {
    subject: String,
    /// The device cookie's nonce, when the browser presented a valid one for this account.
    device: Option<String>,
    address: String,
}

impl LoginAttempt {
    pub fn from_known_device(&self) -> bool {
        self.device.is_some()
    }
}

/// Count a login attempt before anything is verified. `None`: blocked, verify nothing.
pub async fn admit(
    state: &AppState,
    jar: &CookieJar,
    ip: ClientIp,
    school: &str,
    username: &str,
) -> Option<LoginAttempt> {
    let subject = subject(school, username);
    let device = jar
        .get(DEVICE_COOKIE)
        .and_then(|c| device_nonce(state, c.value(), &subject));
    let address = ip.subject();
    let verdict = match &device {
        // The owner's browser: only its own failures count against it.
        Some(nonce) => limiter::hit(state, &DEVICE, nonce).await,
        None => match limiter::hit(state, &ADDRESS, &address).await {
            Verdict::Allowed => limiter::hit(state, &ACCOUNT, &subject).await,
            limited => limited,
        },
    };
    verdict.is_allowed().then_some(LoginAttempt {
        subject,
        device,
        address,
    })
}

/// The password was wrong. When that filled an existing account's lane, record the lock for
/// the school console.
pub async fn failed(state: &AppState, attempt: &LoginAttempt, account: Option<(&str, &str)>) {
    if attempt.device.is_some() {
        return;
    }
    if let Some((school, username)) = account {
        if limiter::is_limited(state, &ACCOUNT, &attempt.subject).await {
            let now = state.now();
            let until = now + chrono::Duration::from_std(WINDOW).unwrap_or_default();
            if let Err(e) = state
                .store
                .record_login_lock(school, username, now, until)
                .await
            {
                tracing::warn!(error = %e, "could not record a login lock");
            }
        }
    }
}

/// The password was right: give back the attempts, and remember this browser.
pub async fn succeeded(state: &AppState, attempt: LoginAttempt, jar: CookieJar) -> CookieJar {
    match &attempt.device {
        Some(nonce) => limiter::reset(state, &DEVICE, nonce).await,
        None => {
            limiter::refund(state, &ADDRESS, &attempt.address).await;
            limiter::reset(state, &ACCOUNT, &attempt.subject).await;
        }
    }
    jar.add(device_cookie(state, &attempt.subject))
}

/// Nothing was verified (the argon2 queue was full): give the attempt back.
pub async fn unchecked(state: &AppState, attempt: LoginAttempt) {
    match &attempt.device {
        Some(nonce) => limiter::refund(state, &DEVICE, nonce).await,
        None => {
            limiter::refund(state, &ADDRESS, &attempt.address).await;
            limiter::refund(state, &ACCOUNT, &attempt.subject).await;
        }
    }
}

/// Lift a lock (the school console): the account's lane starts afresh.
pub async fn lift(state: &AppState, school: &str, username: &str) {
    limiter::reset(state, &ACCOUNT, &subject(school, username)).await;
}

/// `v1.<account digest>.<nonce>.<HMAC>`: whose device this is (a digest, not the username),
/// a random nonce that names this device's lane, and the server's signature.
fn device_cookie(state: &AppState, subject: &str) -> Cookie<'static> {
    let payload = format!("v1.{}.{}", account_digest(state, subject), random_token());
    let value = format!("{payload}.{}", sign(state, &payload));
    Cookie::build((DEVICE_COOKIE, value))
        .path("/login")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.config.secure_cookies())
        .max_age(time_days(DEVICE_COOKIE_DAYS))
        .build()
}

fn time_days(days: i64) -> time::Duration {
    time::Duration::days(days)
}

/// The nonce of a valid device cookie for `subject`, or `None`.
fn device_nonce(state: &AppState, value: &str, subject: &str) -> Option<String> {
    let (payload, signature) = value.rsplit_once('.')?;
    let expected = sign(state, payload);
    if !crate::crypto::tokens::constant_time_eq(signature, &expected) {
        return None;
    }
    let mut parts = payload.splitn(3, '.');
    let (Some("v1"), Some(digest), Some(nonce)) = (parts.next(), parts.next(), parts.next()) else {
        return None;
    };
    (digest == account_digest(state, subject)).then(|| nonce.to_string())
}

/// Keyed, so a cookie does not reveal whose it is by guessing student numbers.
fn account_digest(state: &AppState, subject: &str) -> String {
    sign(state, &format!("account\0{subject}"))
}

fn sign(state: &AppState, payload: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&state.device_key) else {
        return String::new();
    };
    mac.update(payload.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}
