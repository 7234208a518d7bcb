//! Attempt counters in fixed windows, shared by all instances through Redis when configured
//! and kept in this process otherwise (or while Redis is unreachable). An attempt is counted
//! *before* the work it guards, atomically (Redis `INCR` in one MULTI, or under a mutex), so
//! parallel attempts cannot all slip in under the limit: the race the old login throttle had.
//!
//! Keys are hashed: usernames, client ids and addresses do not sit in Redis in the clear.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::crypto::tokens::sha256_b64url;
use crate::AppState;

/// One kind of limit: `max` attempts per `window`, under the key prefix `name`.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub name: &'static str,
    pub max: i64,
    pub window: Duration,
}

/// The answer to "may this attempt go ahead?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Over the limit: try again after this long (the rest of the window).
    Limited {
        retry_after: Duration,
    },
}

impl Verdict {
    pub fn is_allowed(self) -> bool {
        self == Verdict::Allowed
    }

    /// Seconds for a `Retry-After` header (RFC 9110 §10.2.3); at least one.
    pub fn retry_after_secs(self) -> u64 {
        match self {
            Verdict::Allowed => 0,
            Verdict::Limited { retry_after } => retry_after.as_secs().max(1),
        }
    }
}

/// `(count, window start, window length)`.
type Window = (i64, DateTime<Utc>, Duration);

/// Per-process counts per key.
#[derive(Default)]
pub struct LocalCounts(Mutex<HashMap<String, Window>>);

impl LocalCounts {
    /// Add `delta` (after starting a new window if the old one is over); returns the count
    /// and the time left in the window.
    fn add(&self, key: &str, delta: i64, window: Duration, now: DateTime<Utc>) -> (i64, Duration) {
        let Ok(mut map) = self.0.lock() else {
            // A poisoned lock means a panic elsewhere; refuse rather than allow.
            return (i64::MAX, window);
        };
        // Keep the map small: forget windows that are over.
        if map.len() > 100_000 {
            map.retain(|_, (_, started, len)| !over(*started, *len, now));
        }
        let entry = map.entry(key.to_string()).or_insert((0, now, window));
        if over(entry.1, entry.2, now) {
            *entry = (0, now, window);
        }
        entry.0 = (entry.0 + delta).max(0);
        let elapsed = (now - entry.1).to_std().unwrap_or_default();
        (entry.0, entry.2.saturating_sub(elapsed))
    }

    fn reset(&self, key: &str) {
        if let Ok(mut map) = self.0.lock() {
            map.remove(key);
        }
    }

    /// Drop every window that is over; returns how many (the purge job calls this).
    pub fn forget_expired(&self, now: DateTime<Utc>) -> u64 {
        let Ok(mut map) = self.0.lock() else {
            return 0;
        };
        let before = map.len();
        map.retain(|_, (_, started, len)| !over(*started, *len, now));
        u64::try_from(before - map.len()).unwrap_or(0)
    }
}

fn over(started: DateTime<Utc>, len: Duration, now: DateTime<Utc>) -> bool {
    chrono::Duration::from_std(len).map_or(true, |len| now - started >= len)
}

fn key(limit: &Limit, subject: &str) -> String {
    format!("{}:{}", limit.name, sha256_b64url(subject.as_bytes()))
}

/// Count one attempt for `subject` and say whether it may go ahead.
pub async fn hit(state: &AppState, limit: &Limit, subject: &str) -> Verdict {
    let key = key(limit, subject);
    let shared = match state.cache.redis() {
        Some(redis) => redis.hit_fixed_window(&key, limit.window).await,
        None => None,
    };
    let (count, left) = match shared {
        Some((count, ttl)) => (count, Duration::from_secs(u64::try_from(ttl).unwrap_or(1))),
        None => state.counters.add(&key, 1, limit.window, state.now()),
    };
    if count > limit.max {
        metrics::counter!("poortwachter_rate_limited_total", "limit" => limit.name).increment(1);
        Verdict::Limited { retry_after: left }
    } else {
        Verdict::Allowed
    }
}

/// Would an attempt now be over the limit? (Counts nothing.)
pub async fn is_limited(state: &AppState, limit: &Limit, subject: &str) -> bool {
    let key = key(limit, subject);
    let shared = match state.cache.redis() {
        Some(redis) => redis.peek(&key).await,
        None => None,
    };
    let count = match shared {
        Some(count) => count,
        None => state.counters.add(&key, 0, limit.window, state.now()).0,
    };
    count >= limit.max
}

/// Take back an attempt that turned out to be rightful (a correct password or secret), so
/// that only failures use up the limit.
pub async fn refund(state: &AppState, limit: &Limit, subject: &str) {
    let key = key(limit, subject);
    if let Some(redis) = state.cache.redis() {
        redis.decr(&key).await;
    }
    state.counters.add(&key, -1, limit.window, state.now());
}

/// Start afresh (a successful login, or a supervisor lifting a lock).
pub async fn reset(state: &AppState, limit: &Limit, subject: &str) {
    let key = key(limit, subject);
    if let Some(redis) = state.cache.redis() {
        redis.reset(&key).await;
    }
    state.counters.reset(&key);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_windows_count_refund_and_restart() {
        let counts = LocalCounts::default();
        let t0 = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap();
        let window = Duration::from_secs(60);
        assert_eq!(counts.add("k", 1, window, t0).0, 1);
        assert_eq!(counts.add("k", 1, window, t0).0, 2);
        assert_eq!(counts.add("k", -1, window, t0).0, 1);
        let later = t0 + chrono::Duration::seconds(30);
        assert_eq!(
            counts.add("k", 1, window, later),
            (2, Duration::from_secs(30))
        );
        let next = t0 + chrono::Duration::seconds(60);
        assert_eq!(counts.add("k", 1, window, next).0, 1, "a new window");
        assert_eq!(
            counts.forget_expired(next + chrono::Duration::seconds(61)),
            1
        );
    }
}
