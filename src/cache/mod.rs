//! The in-process policy cache behind introspection, and its invalidation across instances.
//!
//! Policy *facts* (tokens, grants, clients, accounts, enrollments, links, guardianships,
//! closures) are cached; the *decision* is recomputed on every call from those facts and the
//! injected clock, so expiry, closure windows and birthdays are exact.
//!
//! Freshness: every change to a cached fact is written to the policy change log by database
//! triggers, in the change's own transaction, naming the entry it touches (kind + key; see
//! `storage::policy_changes`). Every instance follows the log ([`changes::Follower`]) every
//! 200 ms and evicts exactly those entries; after a change of its own it reads the log at
//! once ([`PolicyCache::changed`]) and publishes the keys on Redis, so other instances evict
//! them within milliseconds. The cache is only used while the last successful read of the
//! log is younger than 800 ms. So a change made anywhere (another instance, the CLI, a
//! database console) is seen within one second with or without Redis, a lost database or
//! Redis connection makes the cache step aside rather than serve a stale allow, and a change
//! costs every instance one eviction instead of its whole cache. A gap in the log, a bulk
//! change or a reconnect empties the cache (the safe fallback).

pub mod changes;
pub mod limiter;
pub mod redis_bus;
pub mod warm;

use std::collections::VecDeque;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use quick_cache::sync::Cache;
use quick_cache::Equivalent;
use tokio::time::Instant;

use crate::domain::policy::live::Closure;
use crate::storage::accounts::{Account, Enrollment};
use crate::storage::clients::Client;
use crate::storage::grants::Grant;
use crate::storage::tokens::AccessToken;
use crate::storage::{Backend, DbResult, Store};

/// How often each instance reads the policy change log.
pub const CHANGE_POLL_INTERVAL: Duration = Duration::from_millis(200);
/// How long after a successful poll the cache may be trusted.
pub const MAX_STALENESS: Duration = Duration::from_millis(800);

type Entry<V> = (u64, V);

/// How many of the latest evictions the cache remembers, so a bulk fill that overlapped them
/// can apply them again ([`PolicyCache::settle`]).
const RECENT_EVICTIONS: usize = 4096;

/// Where the cache stood before a bulk read from the database (see [`PolicyCache::mark`]).
#[derive(Clone, Copy, Debug)]
pub struct Mark {
    generation: u64,
    evictions: u64,
}

/// A borrowed two-part key (school and client, parent and student): looks up a
/// `(String, String)` entry without allocating. It hashes as the tuple does (field by field,
/// each as a `str`), which is what [`Equivalent`] requires.
#[derive(Hash)]
pub struct Pair<'a>(pub &'a str, pub &'a str);

impl Equivalent<(String, String)> for Pair<'_> {
    fn equivalent(&self, key: &(String, String)) -> bool {
        self.0 == key.0 && self.1 == key.1
    }
}

impl Pair<'_> {
    pub fn owned(&self) -> (String, String) {
        (self.0.to_string(), self.1.to_string())
    }
}

pub struct PolicyCache {
    /// Bumped by emptying the whole cache: entries of older generations are never served.
    generation: AtomicU64,
    /// Bumped before every keyed eviction, so a value loaded while an eviction ran is not
    /// kept (see [`PolicyCache::get_or_load`]).
    evictions: AtomicU64,
    /// Milliseconds since `started` until which cached facts may be used.
    fresh_until_ms: AtomicI64,
    started: Instant,
    follower: tokio::sync::Mutex<changes::Follower>,
    /// The task that reads the log every 200 ms, once started.
    poller: std::sync::Mutex<Option<tokio::task::AbortHandle>>,
    /// The latest evictions with their number (the `evictions` counter before each): a bulk
    /// fill applies those that came after its [`Mark`] once more.
    recent_evictions: std::sync::Mutex<VecDeque<(u64, String, String)>>,
    /// True while [`warm`] fills the cache at start; `/readyz` waits for it (bounded).
    warming: std::sync::atomic::AtomicBool,
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
    /// How often this instance emptied its whole cache.
    pub flushes: AtomicU64,
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
    pub fn new(redis: Option<redis_bus::RedisBus>, backend: Backend) -> Arc<Self> {
        Arc::new(Self {
            generation: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            fresh_until_ms: AtomicI64::new(i64::MIN),
            started: Instant::now(),
            follower: tokio::sync::Mutex::new(changes::Follower::new(backend)),
            poller: std::sync::Mutex::new(None),
            recent_evictions: std::sync::Mutex::new(VecDeque::with_capacity(RECENT_EVICTIONS)),
            warming: std::sync::atomic::AtomicBool::new(false),
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
            flushes: AtomicU64::new(0),
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

    fn flush_for(&self, reason: &'static str) {
        metrics::counter!("poortwachter_policy_cache_flushes_total", "reason" => reason)
            .increment(1);
        self.flushes.fetch_add(1, Ordering::Relaxed);
        self.flush();
    }

    /// Forget one entry, named as the change log names it; `false` for a kind this cache does
    /// not know (the caller then empties everything).
    pub fn evict(&self, kind: &str, key: &str) -> bool {
        {
            // Before the removal: a load that started before this and finishes after it sees
            // the counter moved and drops what it loaded; a bulk fill finds it in the list.
            let mut recent = self
                .recent_evictions
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let number = self.evictions.fetch_add(1, Ordering::SeqCst);
            if recent.len() == RECENT_EVICTIONS {
                recent.pop_front();
            }
            recent.push_back((number, kind.to_string(), key.to_string()));
        }
        let Some(label) = self.remove_entry(kind, key) else {
            return false;
        };
        metrics::counter!("poortwachter_policy_cache_evictions_total", "kind" => label)
            .increment(1);
        true
    }

    /// Remove one entry; the kind's label, or `None` for a kind (or key) this cache does not
    /// know.
    fn remove_entry(&self, kind: &str, key: &str) -> Option<&'static str> {
        let pair = || key.split_once(' ').map(|(a, b)| Pair(a, b));
        Some(match kind {
            "token" => {
                self.tokens.remove(key);
                "token"
            }
            "grant" => {
                self.grants.remove(key);
                "grant"
            }
            "client" => {
                self.clients.remove(key);
                "client"
            }
            "account" => {
                self.accounts.remove(key);
                "account"
            }
            "enrollments" => {
                self.enrollments.remove(key);
                "enrollments"
            }
            "children" => {
                self.children.remove(key);
                "children"
            }
            "closures" => {
                self.closures.remove(key);
                "closures"
            }
            "link" => {
                self.links.remove(&pair()?);
                "link"
            }
            "guardianship" => {
                self.guardianships.remove(&pair()?);
                "guardianship"
            }
            _ => return None,
        })
    }

    /// Where the cache stands before a bulk read: take it, read from the database, [`fill`]
    /// what was read, then [`settle`].
    ///
    /// [`fill`]: PolicyCache::fill
    /// [`settle`]: PolicyCache::settle
    pub fn mark(&self) -> Mark {
        Mark {
            generation: self.generation.load(Ordering::Acquire),
            evictions: self.evictions.load(Ordering::SeqCst),
        }
    }

    /// Store a value read after `mark` (under the generation it saw: a flush since then
    /// makes it unservable).
    pub fn fill<K, V>(&self, cache: &Cache<K, Entry<V>>, key: K, value: V, mark: Mark)
    where
        K: Hash + Eq + Clone,
        V: Clone,
    {
        cache.insert(key, (mark.generation, value));
    }

    /// After the fills of one bulk read: every eviction since `mark` may have come between
    /// the read and a fill, so apply each once more (an entry evicted twice is merely
    /// reloaded later). If more evictions came than the cache remembers, empty it: the safe
    /// fallback. Returns how many evictions were applied again.
    pub fn settle(&self, mark: Mark) -> usize {
        let again: Option<Vec<(String, String)>> = {
            let recent = self
                .recent_evictions
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let now = self.evictions.load(Ordering::SeqCst);
            let remembered_from = recent.front().map_or(now, |(number, _, _)| *number);
            (remembered_from <= mark.evictions).then(|| {
                recent
                    .iter()
                    .filter(|(number, _, _)| *number >= mark.evictions)
                    .map(|(_, kind, key)| (kind.clone(), key.clone()))
                    .collect()
            })
        };
        match again {
            Some(keys) => {
                for (kind, key) in &keys {
                    self.remove_entry(kind, key);
                }
                keys.len()
            }
            None => {
                self.flush_for("fill_overrun");
                0
            }
        }
    }

    /// Is the cache being filled at start?
    pub fn is_warming(&self) -> bool {
        self.warming.load(Ordering::Acquire)
    }

    /// Act on what a read of the log (or a message from another instance) found; returns
    /// the entries evicted.
    fn act_on(&self, outcome: changes::Outcome) -> Vec<(String, String)> {
        match outcome {
            changes::Outcome::Evict(keys) => {
                if keys.iter().any(|(kind, key)| !self.evict(kind, key)) {
                    self.flush_for("unknown_kind");
                }
                keys
            }
            changes::Outcome::FlushAll(reason) => {
                self.flush_for(reason);
                Vec::new()
            }
        }
    }

    /// Cached value for `key`, or load it. The lookup borrows the key (a hit allocates
    /// nothing); `owned` makes the stored key on a miss. The generation is read *before*
    /// loading, so a value loaded across a flush is stored under the old generation and never
    /// served; and a value loaded while a keyed eviction ran is removed again, since it may
    /// predate the change (the eviction may have come between the load and the insert).
    pub async fn get_or_load<K, Q, V, F>(
        &self,
        cache: &Cache<K, Entry<V>>,
        key: &Q,
        owned: impl FnOnce(&Q) -> K,
        load: F,
    ) -> DbResult<V>
    where
        K: Hash + Eq + Clone,
        Q: Hash + Equivalent<K> + ?Sized,
        V: Clone,
        F: Future<Output = DbResult<V>>,
    {
        let generation = self.generation.load(Ordering::Acquire);
        if self.is_fresh() {
            if let Some((cached_generation, value)) = cache.get(key) {
                if cached_generation == generation {
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(value);
                }
            }
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let evictions = self.evictions.load(Ordering::SeqCst);
        let value = load.await?;
        cache.insert(owned(key), (generation, value.clone()));
        if self.evictions.load(Ordering::SeqCst) != evictions {
            cache.remove(key);
        }
        Ok(value)
    }

    /// After a change made here (committed; the triggers logged it): read the log at once,
    /// so this instance never serves the old answer, and tell the other instances which
    /// entries to evict (Redis, milliseconds; their own reading of the log catches up within
    /// a second regardless). A change that changed nothing logged nothing and evicts nothing.
    pub async fn changed(&self, store: &Store) {
        match self.poll_changes(store).await {
            Ok(evicted) => {
                if let Some(redis) = &self.redis {
                    if !evicted.is_empty() {
                        redis.publish_evictions(&evicted).await;
                    }
                }
            }
            // The log cannot be read: the change is committed all the same, and the other
            // instances read it once they can. Here the freshness window may still be open,
            // so empty the cache rather than serve the old answer until it closes.
            Err(_) => self.flush_for("unreadable_log"),
        }
    }

    /// One read of the change log: evict what it names (or empty everything when it cannot
    /// be trusted), and extend the freshness window. Returns the entries evicted.
    pub async fn poll_changes(&self, store: &Store) -> DbResult<Vec<(String, String)>> {
        let polled_at = self.now_ms();
        let mut follower = self.follower.lock().await;
        let read = async {
            let position = match follower.position() {
                Some(position) if !follower.has_failed() => position,
                _ => {
                    let start = store.policy_change_start().await?;
                    return Ok(follower.restart(start));
                }
            };
            let batch = match follower.backend() {
                Backend::Sqlite => {
                    store
                        .policy_changes_after(position, changes::MAX_CHANGES_PER_POLL)
                        .await?
                }
                Backend::Postgres => {
                    store
                        .policy_changes_from(position, changes::MAX_CHANGES_PER_POLL)
                        .await?
                }
            };
            let latest = if batch.truncated && follower.backend() == Backend::Sqlite {
                Some(store.policy_change_start().await?)
            } else {
                None
            };
            Ok::<_, sqlx::Error>(follower.apply(batch, latest))
        };
        match read.await {
            Ok(outcome) => {
                let evicted = self.act_on(outcome);
                let window = i64::try_from(MAX_STALENESS.as_millis()).unwrap_or(800);
                self.fresh_until_ms
                    .store(polled_at + window, Ordering::Release);
                Ok(evicted)
            }
            Err(e) => {
                follower.failed();
                tracing::warn!(error = %e, "reading the policy change log failed; cache bypassed until it succeeds");
                Err(e)
            }
        }
    }

    /// Stop reading the change log every 200 ms (at shutdown, or in a test of what happens
    /// when it stops): within 800 ms the cache is no longer used.
    pub fn stop_following(&self) {
        if let Some(poller) = self.poller.lock().ok().and_then(|mut slot| slot.take()) {
            poller.abort();
        }
    }

    /// Entries another instance evicted (a Redis message): evict them here too, at once.
    pub fn evict_from_message(&self, keys: Option<Vec<(String, String)>>) {
        match keys {
            Some(keys) => {
                self.act_on(changes::Outcome::Evict(keys));
            }
            // A (re)connected subscription may have missed messages, or a message we cannot
            // read: the log catches up within a second, but empty now rather than wait.
            None => self.flush_for("redis"),
        }
    }

    /// Follow the change log (and Redis) until the process ends.
    pub fn spawn_background(
        self: &Arc<Self>,
        store: Store,
        channel_ready: Option<tokio::sync::oneshot::Sender<()>>,
    ) {
        let cache = Arc::downgrade(self);
        let poller = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(CHANGE_POLL_INTERVAL);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let Some(cache) = cache.upgrade() else { break };
                // A failure is logged, and the cache is bypassed until a read succeeds.
                let _ = cache.poll_changes(&store).await;
            }
        });
        if let Ok(mut slot) = self.poller.lock() {
            *slot = Some(poller.abort_handle());
        }
        if let Some(redis) = &self.redis {
            let cache = Arc::downgrade(self);
            redis.spawn_subscriber(
                move |keys| {
                    if let Some(cache) = cache.upgrade() {
                        cache.evict_from_message(keys);
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

    /// The eviction counter; read it with [`PolicyCache::generation`], before loading.
    pub fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::SeqCst)
    }

    /// Cache a token loaded after reading `generation` and `evictions` (the same rules as
    /// [`PolicyCache::get_or_load`]).
    pub fn put_token(
        &self,
        hash: &str,
        token: &Arc<AccessToken>,
        (generation, evictions): (u64, u64),
    ) {
        self.misses.fetch_add(1, Ordering::Relaxed);
        self.tokens
            .insert(hash.to_string(), (generation, Arc::clone(token)));
        if self.evictions.load(Ordering::SeqCst) != evictions {
            self.tokens.remove(hash);
        }
    }

    pub fn redis(&self) -> Option<&redis_bus::RedisBus> {
        self.redis.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value loaded while an eviction of its key ran may predate the change: it is handed
    /// to the caller but not kept. Without the eviction it is kept.
    #[tokio::test]
    async fn a_load_that_an_eviction_overtook_is_not_kept() {
        let cache = PolicyCache::new(None, Backend::Sqlite);
        let raced = cache
            .get_or_load(&cache.grants, "g1", str::to_string, async {
                // The change is committed and evicted while this load is on its way.
                assert!(cache.evict("grant", "g1"));
                Ok(None)
            })
            .await
            .unwrap();
        assert!(raced.is_none());
        assert!(cache.grants.get("g1").is_none(), "not kept");

        cache
            .get_or_load(&cache.grants, "g2", str::to_string, async { Ok(None) })
            .await
            .unwrap();
        assert!(cache.grants.get("g2").is_some(), "kept");
        assert!(cache.evict("grant", "g2"));
        assert!(cache.grants.get("g2").is_none(), "evicted");
        assert!(
            !cache.evict("no-such-kind", "x"),
            "unknown kinds are refused"
        );
        assert!(
            !cache.evict("link", "no-space"),
            "a pair key needs both halves"
        );
    }

    /// More evictions during one bulk fill than the cache remembers: it cannot tell which
    /// entries raced, so it empties itself. Within what it remembers, it applies only those.
    #[tokio::test]
    async fn a_fill_overrun_by_evictions_empties_the_cache() {
        let cache = PolicyCache::new(None, Backend::Sqlite);
        let mark = cache.mark();
        cache.fill(&cache.grants, "g1".to_string(), None, mark);
        cache.fill(&cache.grants, "g2".to_string(), None, mark);
        cache.evict("grant", "g1");
        assert_eq!(cache.settle(mark), 1);
        assert!(cache.grants.get("g1").is_none());
        assert!(
            cache.grants.get("g2").is_some(),
            "untouched by the eviction"
        );

        let mark = cache.mark();
        for n in 0..=RECENT_EVICTIONS {
            cache.evict("grant", &format!("other{n}"));
        }
        let flushes = cache.flushes.load(Ordering::Relaxed);
        assert_eq!(cache.settle(mark), 0);
        assert_eq!(
            cache.flushes.load(Ordering::Relaxed),
            flushes + 1,
            "emptied"
        );
    }

    /// A borrowed pair finds the entry stored under the owned pair, and evicts it.
    #[tokio::test]
    async fn a_borrowed_pair_finds_the_owned_key() {
        let cache = PolicyCache::new(None, Backend::Sqlite);
        cache
            .links
            .insert(("12AB".to_string(), "partner".to_string()), (0, true));
        assert_eq!(cache.links.get(&Pair("12AB", "partner")), Some((0, true)));
        assert_eq!(cache.links.get(&Pair("12A", "Bpartner")), None);
        assert!(cache.evict("link", "12AB partner"));
        assert_eq!(cache.links.get(&Pair("12AB", "partner")), None);
    }
}
