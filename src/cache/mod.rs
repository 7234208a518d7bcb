//! The in-process policy cache behind introspection, and its invalidation across instances.
//!
//! Policy *facts* (tokens, grants, clients, accounts, enrollments, links, guardianships,
//! closures) are cached; the *decision* is recomputed on every call from those facts and the
//! injected clock, so expiry, closure windows and birthdays are exact.
//!
//! Freshness: every change that can turn an allow into a deny calls [`PolicyCache::changed`],
//! which bumps the `policy_epoch` row, empties this instance's cache at once, and publishes on
//! Redis so other instances empty theirs within milliseconds. Independently, every instance
//! polls `policy_epoch` every 200 ms; the cache is only used while the last successful poll
//! is younger than 800 ms. So a change made anywhere (another instance, the CLI, a database
//! console) is seen within one second with or without Redis, and a lost database or Redis
//! connection makes the cache step aside rather than serve a stale allow.

pub mod limiter;
pub mod redis_bus;

use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use quick_cache::sync::Cache;
use tokio::time::Instant;

use crate::storage::accounts::{Account, Enrollment};
use crate::storage::clients::Client;
use crate::storage::closures::Closure;
use crate::storage::grants::Grant;
use crate::storage::tokens::AccessToken;
use crate::storage::{DbResult, Store};

/// How often each instance reads `policy_epoch`.
pub const EPOCH_POLL_INTERVAL: Duration = Duration::from_millis(200);
/// How long after a successful poll the cache may be trusted.
pub const MAX_STALENESS: Duration = Duration::from_millis(800);

type Entry<V> = (u64, V);

pub struct PolicyCache {
    generation: AtomicU64,
    /// Milliseconds since `started` until which cached facts may be used.
    fresh_until_ms: AtomicI64,
    started: Instant,
    last_epoch: AtomicI64,
    pub tokens: Cache<String, Entry<Arc<AccessToken>>>,
    pub grants: Cache<String, Entry<Option<Arc<Grant>>>>,
    pub clients: Cache<String, Entry<Option<Arc<Client>>>>,
    pub accounts: Cache<String, Entry<Option<Arc<Account>>>>,
    pub enrollments: Cache<String, Entry<Arc<Vec<Enrollment>>>>,
    pub links: Cache<(String, String), Entry<bool>>,
    pub guardianships: Cache<(String, String), Entry<bool>>,
    pub children: Cache<String, Entry<Arc<Vec<Account>>>>,
    pub closures: Cache<String, Entry<Arc<Vec<Closure>>>>,
    redis: Option<redis_bus::RedisBus>,
    /// Plain counters on the hot path; `/metrics` publishes them.
    pub hits: AtomicU64,
    pub misses: AtomicU64,
}

/// Bounded; stale generations are never served and age out as new entries arrive.
fn cache<K, V>(capacity: usize) -> Cache<K, V>
where
    K: Hash + Eq + Clone,
    V: Clone,
{
    Cache::new(capacity)
}

impl PolicyCache {
    pub fn new(redis: Option<redis_bus::RedisBus>) -> Arc<Self> {
        Arc::new(Self {
            generation: AtomicU64::new(0),
            fresh_until_ms: AtomicI64::new(i64::MIN),
            started: Instant::now(),
            last_epoch: AtomicI64::new(i64::MIN),
            tokens: cache(200_000),
            grants: cache(200_000),
            clients: cache(10_000),
            accounts: cache(300_000),
            enrollments: cache(300_000),
            links: cache(100_000),
            guardianships: cache(300_000),
            children: cache(100_000),
            closures: cache(10_000),
            redis,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        })
    }

    fn now_ms(&self) -> i64 {
        i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX)
    }

    /// May cached facts be used right now?
    pub fn is_fresh(&self) -> bool {
        self.now_ms() < self.fresh_until_ms.load(Ordering::Acquire)
    }

    /// Forget everything cached on this instance.
    pub fn flush(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Cached value for `key`, or load it. The generation is read *before* loading, so a
    /// value loaded across a flush is stored under the old generation and never served.
    pub async fn get_or_load<K, V, F>(
        &self,
        cache: &Cache<K, Entry<V>>,
        key: K,
        load: F,
    ) -> DbResult<V>
    where
        K: Hash + Eq + Clone,
        V: Clone,
        F: Future<Output = DbResult<V>>,
    {
        let generation = self.generation.load(Ordering::Acquire);
        if self.is_fresh() {
            if let Some((cached_generation, value)) = cache.get(&key) {
                if cached_generation == generation {
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(value);
                }
            }
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let value = load.await?;
        cache.insert(key, (generation, value.clone()));
        Ok(value)
    }

    /// Record a change that may turn an allow into a deny: visible here at once, elsewhere
    /// through Redis (milliseconds) or the epoch poll (under a second).
    pub async fn changed(&self, store: &Store) -> DbResult<()> {
        let result = store.bump_policy_epoch().await;
        // Flush even if the bump failed: this instance must never serve the old answer.
        self.flush();
        if let Some(redis) = &self.redis {
            redis.publish_invalidation().await;
        }
        result
    }

    /// A change whose epoch bump was committed with it (see `onboarding::commit_audited`):
    /// flush here at once and tell the other instances.
    pub async fn committed_change(&self) {
        self.flush();
        if let Some(redis) = &self.redis {
            redis.publish_invalidation().await;
        }
    }

    /// One poll of `policy_epoch`: flush on change, and extend the freshness window.
    pub async fn poll_epoch(&self, store: &Store) {
        let polled_at = self.now_ms();
        match store.policy_epoch().await {
            Ok(epoch) => {
                let previous = self.last_epoch.swap(epoch, Ordering::AcqRel);
                if previous != epoch {
                    self.flush();
                }
                let window = i64::try_from(MAX_STALENESS.as_millis()).unwrap_or(800);
                self.fresh_until_ms
                    .store(polled_at + window, Ordering::Release);
            }
            Err(e) => {
                tracing::warn!(error = %e, "policy epoch poll failed; cache bypassed until it succeeds");
            }
        }
    }

    /// Run the epoch poller (and the Redis subscriber) until the process ends.
    pub fn spawn_background(
        self: &Arc<Self>,
        store: Store,
        channel_ready: Option<tokio::sync::oneshot::Sender<()>>,
    ) {
        let cache = Arc::clone(self);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(EPOCH_POLL_INTERVAL);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                cache.poll_epoch(&store).await;
            }
        });
        if let Some(redis) = &self.redis {
            let cache = Arc::downgrade(self);
            redis.spawn_subscriber(
                move || {
                    if let Some(cache) = cache.upgrade() {
                        cache.flush();
                    }
                },
                channel_ready,
            );
        }
    }

    /// A cached access token, if fresh and from the current generation.
    pub fn get_cached_token(&self, hash: &str) -> Option<Arc<AccessToken>> {
        let generation = self.generation.load(Ordering::Acquire);
        match self.tokens.get(hash) {
            Some((cached_generation, token)) if cached_generation == generation => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                Some(token)
            }
            _ => None,
        }
    }

    /// The current generation; read it *before* loading from the database and pass it to
    /// [`PolicyCache::put_token`], so a row loaded across a flush is never served.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn put_token(&self, hash: &str, token: &Arc<AccessToken>, generation: u64) {
        self.misses.fetch_add(1, Ordering::Relaxed);
        self.tokens
            .insert(hash.to_string(), (generation, Arc::clone(token)));
    }

    pub fn redis(&self) -> Option<&redis_bus::RedisBus> {
        self.redis.as_ref()
    }
}
