//! Following the policy change log: which cache entries to evict, and when to give up and
//! empty the whole cache instead (the safe fallback).
//!
//! A follower is plain state; [`super::PolicyCache::poll_changes`] feeds it what the store
//! returns and acts on the [`Outcome`]. Kept apart from the cache so the reading rules (gaps,
//! out-of-order commits, overflow) can be tested without a database.

use std::collections::HashMap;

use crate::storage::policy_changes::{ChangeBatch, ChangeRow};
use crate::storage::Backend;

/// Rows read per poll. More than this waiting means a bulk change (a roster import, a
/// platform-wide suspension): emptying the cache is then cheaper than evicting one by one.
pub const MAX_CHANGES_PER_POLL: usize = 5_000;
/// PostgreSQL: rows remembered as seen above the horizon. A transaction left open for a long
/// time holds the horizon back and every later change stays in this set; past this size the
/// follower empties its cache and starts over.
const MAX_SEEN: usize = 50_000;

/// What a poll found.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Evict these (kind, key) entries; possibly none.
    Evict(Vec<(String, String)>),
    /// Empty the whole cache, for this reason (a metrics label).
    FlushAll(&'static str),
}

/// Where this instance is in the log.
#[derive(Debug)]
pub struct Follower {
    backend: Backend,
    /// SQLite: the last `seq` read. PostgreSQL: the transaction horizon of the last read.
    position: Option<u64>,
    /// PostgreSQL: rows at or above the horizon already acted on (`seq` → `txid`).
    seen: HashMap<i64, u64>,
    /// The last read failed: the next successful one starts afresh.
    failed: bool,
}

impl Follower {
    pub fn new(backend: Backend) -> Self {
        Self {
            backend,
            position: None,
            seen: HashMap::new(),
            failed: false,
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Where the next read starts, or `None` before the first (then read the start).
    pub fn position(&self) -> Option<u64> {
        self.position
    }

    /// A read failed (database away): whatever happened meanwhile may be missing.
    pub fn failed(&mut self) {
        self.failed = true;
    }

    pub fn has_failed(&self) -> bool {
        self.failed
    }

    /// The first read, or the first after a failure: start at `start` and empty the cache
    /// (after a failure, rows may have come and gone while nobody read them).
    pub fn restart(&mut self, start: u64) -> Outcome {
        let was_failed = std::mem::replace(&mut self.failed, false);
        let first = self.position.is_none();
        self.position = Some(start);
        self.seen.clear();
        if was_failed {
            Outcome::FlushAll("reconnect")
        } else if first {
            Outcome::FlushAll("start")
        } else {
            Outcome::Evict(Vec::new())
        }
    }

    /// Take in one batch read from [`Follower::position`].
    pub fn apply(&mut self, batch: ChangeBatch, latest: Option<u64>) -> Outcome {
        match self.backend {
            Backend::Sqlite => self.apply_in_order(batch, latest),
            Backend::Postgres => self.apply_by_transaction(batch),
        }
    }

    /// SQLite: rows follow each other without gaps; a gap means rows were lost.
    fn apply_in_order(&mut self, batch: ChangeBatch, latest: Option<u64>) -> Outcome {
        let mut at = self.position.unwrap_or(0);
        if batch.truncated {
            // Skip to the end of the log: the flush covers everything before it.
            self.position = Some(latest.unwrap_or(at).max(last_seq(&batch.rows, at)));
            return Outcome::FlushAll("overflow");
        }
        let mut evict = Vec::with_capacity(batch.rows.len());
        let mut gap = false;
        for row in batch.rows {
            let seq = u64::try_from(row.seq).unwrap_or(0);
            if seq != at + 1 {
                gap = true;
            }
            at = seq;
            evict.push((row.kind, row.key));
        }
        self.position = Some(at);
        if gap {
            Outcome::FlushAll("gap")
        } else {
            Outcome::Evict(evict)
        }
    }

    /// PostgreSQL: every row from transactions at or above the previous horizon is read
    /// again; those not seen before are new (some may carry lower `seq`s than rows seen
    /// earlier: their transactions committed later).
    fn apply_by_transaction(&mut self, batch: ChangeBatch) -> Outcome {
        let horizon = batch.horizon;
        let mut evict = Vec::new();
        for ChangeRow {
            seq,
            kind,
            key,
            txid,
        } in batch.rows
        {
            if self.seen.insert(seq, txid).is_none() {
                evict.push((kind, key));
            }
        }
        // Rows of transactions older than the new horizon will not be read again.
        self.seen.retain(|_, txid| *txid >= horizon);
        self.position = Some(horizon.max(self.position.unwrap_or(0)));
        if batch.truncated || self.seen.len() > MAX_SEEN {
            // The rows beyond the limit are either older than the horizon (committed before
            // this read, so covered by emptying the cache now) or will be read next time.
            self.seen.clear();
            return Outcome::FlushAll("overflow");
        }
        Outcome::Evict(evict)
    }
}

fn last_seq(rows: &[ChangeRow], default: u64) -> u64 {
    rows.last()
        .and_then(|r| u64::try_from(r.seq).ok())
        .unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seq: i64, key: &str, txid: u64) -> ChangeRow {
        ChangeRow {
            seq,
            kind: "grant".into(),
            key: key.into(),
            txid,
        }
    }

    fn batch(rows: Vec<ChangeRow>, horizon: u64) -> ChangeBatch {
        ChangeBatch {
            rows,
            horizon,
            truncated: false,
        }
    }

    fn keys(outcome: Outcome) -> Vec<String> {
        match outcome {
            Outcome::Evict(keys) => keys.into_iter().map(|(_, k)| k).collect(),
            Outcome::FlushAll(why) => panic!("flushed everything ({why})"),
        }
    }

    #[test]
    fn sqlite_rows_in_order_evict_their_keys() {
        let mut f = Follower::new(Backend::Sqlite);
        assert_eq!(f.restart(10), Outcome::FlushAll("start"));
        assert_eq!(
            keys(f.apply(batch(vec![row(11, "a", 0), row(12, "b", 0)], 0), None)),
            ["a", "b"]
        );
        assert_eq!(f.position(), Some(12));
        assert!(keys(f.apply(batch(vec![], 0), None)).is_empty());
        assert_eq!(f.position(), Some(12));
    }

    #[test]
    fn sqlite_gap_flushes_everything_and_moves_on() {
        let mut f = Follower::new(Backend::Sqlite);
        f.restart(10);
        assert_eq!(
            f.apply(batch(vec![row(11, "a", 0), row(14, "b", 0)], 0), None),
            Outcome::FlushAll("gap")
        );
        assert_eq!(f.position(), Some(14));
        assert_eq!(keys(f.apply(batch(vec![row(15, "c", 0)], 0), None)), ["c"]);
    }

    #[test]
    fn overflow_flushes_and_skips_to_the_end() {
        let mut f = Follower::new(Backend::Sqlite);
        f.restart(0);
        let mut b = batch(vec![row(1, "a", 0)], 0);
        b.truncated = true;
        assert_eq!(f.apply(b, Some(9_000)), Outcome::FlushAll("overflow"));
        assert_eq!(f.position(), Some(9_000));
    }

    #[test]
    fn a_failed_read_makes_the_next_start_afresh() {
        let mut f = Follower::new(Backend::Sqlite);
        f.restart(5);
        f.failed();
        assert_eq!(f.restart(7), Outcome::FlushAll("reconnect"));
        assert_eq!(keys(f.apply(batch(vec![row(8, "a", 0)], 0), None)), ["a"]);
    }

    #[test]
    fn postgres_late_commits_with_lower_seq_are_not_missed_nor_repeated() {
        let mut f = Follower::new(Backend::Postgres);
        f.restart(100);
        // Transaction 101 (seq 2) committed first; 100 (seq 1) is still running: horizon 100.
        assert_eq!(
            keys(f.apply(batch(vec![row(2, "b", 101)], 100), None)),
            ["b"]
        );
        // Now 100 has committed; its row comes with a lower seq, and seq 2 is not repeated.
        assert_eq!(
            keys(f.apply(batch(vec![row(1, "a", 100), row(2, "b", 101)], 102), None)),
            ["a"]
        );
        assert_eq!(f.position(), Some(102));
        // Both are behind the horizon now: forgotten, and never read again.
        assert!(f.seen.is_empty());
    }

    #[test]
    fn postgres_gaps_in_seq_are_normal() {
        let mut f = Follower::new(Backend::Postgres);
        f.restart(100);
        assert_eq!(
            keys(f.apply(batch(vec![row(1, "a", 100), row(7, "b", 103)], 104), None)),
            ["a", "b"]
        );
    }
}
