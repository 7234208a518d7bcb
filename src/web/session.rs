//! The browser session: an HttpOnly cookie holding a random secret, stored server-side only as
//! a hash, with a per-session CSRF token that every form must echo back.

use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use chrono::Duration;

use super::error::PageError;
use crate::crypto::tokens::{constant_time_eq, hash_token, random_token};
use crate::storage::sessions::BrowserSession;
use crate::AppState;

pub const SESSION_COOKIE: &str = "pw_session";
/// An anonymous session (before login) only carries the login form's CSRF token and the
/// pending requests; it lives as long as a request does, so anonymous traffic is purged soon.
/// Logging in always starts a new session with the full lifetime.
pub const ANONYMOUS_TTL_SECS: i64 = crate::storage::sessions::REQUEST_TTL_SECS;

/// The session this browser presents, if it is known and not expired.
pub async fn current(
    state: &AppState,
    jar: &CookieJar,
) -> Result<Option<BrowserSession>, PageError> {
    let Some(cookie) = jar.get(SESSION_COOKIE) else {
        return Ok(None);
    };
    Ok(state
        .store
        .find_session(&hash_token(cookie.value()), state.now())
        .await?)
}

/// A session cookie (no Max-Age): it ends with the browser, and server-side at `expires_at`.
/// Start a new session: anonymous (before login) or for an account that just logged in.
/// A login always gets a new session id and CSRF token, so a session planted before login
/// (session fixation) is worth nothing afterwards.
pub async fn start(
    state: &AppState,
    jar: CookieJar,
    account_id: Option<&str>,
) -> Result<(CookieJar, BrowserSession), PageError> {
    let now = state.now();
    let secret = random_token();
    let id = random_token();
    let csrf = random_token();
    let ttl = match account_id {
        Some(_) => state.config.session_ttl_secs,
        None => state.config.session_ttl_secs.min(ANONYMOUS_TTL_SECS),
    };
    let expires_at = now + Duration::seconds(ttl);
    state
        .store
        .create_session(
            &id,
            &hash_token(&secret),
            &csrf,
            account_id.map(|a| (a, now)),
            now,
            expires_at,
        )
        .await?;
    let cookie = Cookie::build((SESSION_COOKIE, secret))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.config.secure_cookies())
        .build();
    let session = BrowserSession {
        id,
        csrf_token: csrf,
        account_id: account_id.map(str::to_string),
        auth_time: account_id.map(|_| storage_ts(now)),
        expires_at: storage_ts(expires_at),
    };
    Ok((jar.add(cookie), session))
}

/// The session, or a fresh anonymous one when there is none.
pub async fn current_or_start(
    state: &AppState,
    jar: CookieJar,
) -> Result<(CookieJar, BrowserSession), PageError> {
    match current(state, &jar).await? {
        Some(mut session) => {
            // Reused by a new request: an anonymous session must outlive it.
            if session.account_id.is_none() {
                let until = state.now() + Duration::seconds(ANONYMOUS_TTL_SECS);
                if session.expires_at < storage_ts(until) {
                    state.store.extend_session(&session.id, until).await?;
                    session.expires_at = storage_ts(until);
                }
            }
            Ok((jar, session))
        }
        None => start(state, jar, None).await,
    }
}

/// Refuse a form whose CSRF token is missing or wrong (compared in constant time).
pub fn check_csrf(session: &BrowserSession, submitted: Option<&str>) -> Result<(), PageError> {
    match submitted {
        Some(token) if constant_time_eq(token, &session.csrf_token) => Ok(()),
        _ => Err(PageError::csrf()),
    }
}

fn storage_ts(at: chrono::DateTime<chrono::Utc>) -> i64 {
    crate::storage::ts(at)
}

/// A submitted form: parsed, from a known session, with the session's CSRF token in its
/// `csrf` field. Every state-changing form goes through here.
pub async fn accept_form<T: serde::de::DeserializeOwned>(
    state: &AppState,
    jar: &CookieJar,
    body: &[u8],
) -> Result<(T, BrowserSession), PageError> {
    #[derive(serde::Deserialize)]
    struct Csrf {
        csrf: Option<String>,
    }
    let unreadable = || {
        PageError::bad_request((
            "Het formulier kon niet worden gelezen.",
            "The form could not be read.",
        ))
    };
    let form: T = serde_urlencoded::from_bytes(body).map_err(|_| unreadable())?;
    let Csrf { csrf } = serde_urlencoded::from_bytes(body).map_err(|_| unreadable())?;
    let Some(browser) = current(state, jar).await? else {
        return Err(PageError::session_expired());
    };
    check_csrf(&browser, csrf.as_deref())?;
    Ok((form, browser))
}
