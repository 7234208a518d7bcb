//! Login throttling: after too many failed attempts for one school and username in a window,
//! further attempts are refused for the rest of the window. Counted in Redis when configured
//! (shared by all instances), else in this process. Keyed by what was typed, whether or not
//! the account exists, so the refusal reveals nothing about accounts.

use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::crypto::tokens::sha256_b64url;
use crate::AppState;

pub const MAX_FAILURES: i64 = 10;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);

/// Per-process counts, used without Redis or while Redis is unreachable.
#[derive(Default)]
pub struct LocalCounts(Mutex<std::collections::HashMap<String, (i64, DateTime<Utc>)>>);

impl LocalCounts {
    fn count(&self, key: &str, add: bool, now: DateTime<Utc>) -> i64 {
        let Ok(mut map) = self.0.lock() else {
            return 0;
        };
        let window =
            chrono::Duration::from_std(WINDOW).unwrap_or_else(|_| chrono::Duration::minutes(15));
        // Keep the map small: forget windows that are over.
        if map.len() > 10_000 {
            map.retain(|_, (_, started)| now - *started < window);
        }
        let entry = map.entry(key.to_string()).or_insert((0, now));
        if now - entry.1 >= window {
            *entry = (0, now);
        }
        if add {
            entry.0 += 1;
        }
        entry.0
    }

    fn reset(&self, key: &str) {
        if let Ok(mut map) = self.0.lock() {
            map.remove(key);
        }
    }
}

/// The key: a hash, so usernames do not sit in Redis in the clear.
fn key(school: &str, username: &str) -> String {
    format!(
        "login-failures:{}",
        sha256_b64url(format!("{school}\0{}", username.to_lowercase()).as_bytes())
    )
}

/// Is this login blocked for now?
pub async fn is_blocked(state: &AppState, school: &str, username: &str) -> bool {
    let key = key(school, username);
    let shared = match state.cache.redis() {
        Some(redis) => redis.peek(&key).await,
        None => None,
    };
    let count = match shared {
        Some(count) => count,
        None => state.login_failures.count(&key, false, state.now()),
    };
    count >= MAX_FAILURES
}

pub async fn record_failure(state: &AppState, school: &str, username: &str) {
    let key = key(school, username);
    let shared = match state.cache.redis() {
        Some(redis) => redis.incr_window(&key, WINDOW).await,
        None => None,
    };
    if shared.is_none() {
        state.login_failures.count(&key, true, state.now());
    }
}

pub async fn record_success(state: &AppState, school: &str, username: &str) {
    let key = key(school, username);
    if let Some(redis) = state.cache.redis() {
        redis.reset(&key).await;
    }
    state.login_failures.reset(&key);
}
