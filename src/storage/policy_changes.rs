//! The policy change log (`policy_changes`, written by database triggers in the same
//! transaction as each change): what the followers in `crate::cache::changes` read to evict
//! exactly the cache entries a change touched.
//!
//! The two backends need different reading rules. SQLite has one writer at a time and gives a
//! rolled-back sequence number back, so rows are committed in `seq` order without gaps:
//! "everything after the last `seq` I saw" is complete, and a gap means lost rows. On
//! PostgreSQL sequence numbers have gaps and concurrent transactions commit out of order, so
//! a follower reads by transaction id instead: every row from transactions not older than the
//! oldest one that was still running at its previous read (`pg_snapshot_xmin`); anything
//! older has committed or aborted for good.

use super::{Backend, DbResult, Store};

/// One logged change: which kind of cached fact, and its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRow {
    pub seq: i64,
    pub kind: String,
    pub key: String,
    /// The writing transaction (PostgreSQL only).
    pub txid: u64,
}

/// Changes read in one go, with where the next read starts.
#[derive(Debug)]
pub struct ChangeBatch {
    pub rows: Vec<ChangeRow>,
    /// SQLite: unused (0). PostgreSQL: the oldest transaction still running when the rows
    /// were read; the next read starts there.
    pub horizon: u64,
    /// More rows matched than `limit`.
    pub truncated: bool,
}

/// The horizon, and one change row (all `NULL` when there is none).
type HorizonRow = (
    String,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn parse_xid(text: &str) -> DbResult<u64> {
    text.parse()
        .map_err(|_| sqlx::Error::Protocol(format!("not a transaction id: {text}")))
}

impl Store {
    /// Where a new follower starts: the last `seq` (SQLite) or the current transaction
    /// horizon (PostgreSQL). Nothing before it needs reading: the follower's cache is empty.
    pub async fn policy_change_start(&self) -> DbResult<u64> {
        match self.backend() {
            Backend::Sqlite => Ok(u64::try_from(self.latest_policy_change().await?).unwrap_or(0)),
            Backend::Postgres => {
                let (xmin,): (String,) =
                    sqlx::query_as("SELECT pg_snapshot_xmin(pg_current_snapshot())::text")
                        .fetch_one(self.pool())
                        .await?;
                parse_xid(&xmin)
            }
        }
    }

    /// The highest sequence number logged so far (0 for none): for tests and tools that
    /// check that nothing was logged.
    pub async fn latest_policy_change(&self) -> DbResult<i64> {
        let (seq,): (i64,) = sqlx::query_as("SELECT COALESCE(MAX(seq), 0) FROM policy_changes")
            .fetch_one(self.pool())
            .await?;
        Ok(seq)
    }

    /// SQLite: the rows after `seq`, in order, at most `limit`.
    pub async fn policy_changes_after(&self, seq: u64, limit: usize) -> DbResult<ChangeBatch> {
        let rows: Vec<(i64, String, String)> = sqlx::query_as(
            "SELECT seq, kind, key FROM policy_changes WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(i64::try_from(seq).unwrap_or(i64::MAX))
        .bind(i64::try_from(limit + 1).unwrap_or(i64::MAX))
        .fetch_all(self.pool())
        .await?;
        Ok(batch(
            rows.into_iter().map(|(seq, kind, key)| ChangeRow {
                seq,
                kind,
                key,
                txid: 0,
            }),
            0,
            limit,
        ))
    }

    /// PostgreSQL: the rows of transactions from `horizon` on, and the new horizon, read in
    /// one statement (so from one snapshot: every transaction older than the new horizon is
    /// finished, and its rows are among those read now or before).
    pub async fn policy_changes_from(&self, horizon: u64, limit: usize) -> DbResult<ChangeBatch> {
        let rows: Vec<HorizonRow> = sqlx::query_as(
            "SELECT h.xmin::text, c.seq, c.kind, c.key, c.txid::text \
                 FROM (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin) h \
                 LEFT JOIN (SELECT seq, kind, key, txid FROM policy_changes \
                            WHERE txid >= $1::text::xid8 ORDER BY seq LIMIT $2) c ON true",
        )
        .bind(horizon.to_string())
        .bind(i64::try_from(limit + 1).unwrap_or(i64::MAX))
        .fetch_all(self.pool())
        .await?;
        let new_horizon = match rows.first() {
            Some((xmin, ..)) => parse_xid(xmin)?,
            None => horizon,
        };
        let mut changes = Vec::with_capacity(rows.len());
        for (_, seq, kind, key, txid) in rows {
            if let (Some(seq), Some(kind), Some(key), Some(txid)) = (seq, kind, key, txid) {
                changes.push(ChangeRow {
                    seq,
                    kind,
                    key,
                    txid: parse_xid(&txid)?,
                });
            }
        }
        Ok(batch(changes.into_iter(), new_horizon, limit))
    }
}

fn batch(rows: impl Iterator<Item = ChangeRow>, horizon: u64, limit: usize) -> ChangeBatch {
    let mut rows: Vec<ChangeRow> = rows.collect();
    let truncated = rows.len() > limit;
    rows.truncate(limit);
    ChangeBatch {
        rows,
        horizon,
        truncated,
    }
}
