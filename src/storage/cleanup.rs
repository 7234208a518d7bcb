//! Deleting what has expired: browser sessions, pending authorization requests, codes,
//! tokens and management tokens. In small batches, so the purge never holds a long lock or a
//! long transaction next to the requests it shares the database with.

use chrono::{DateTime, Utc};

use super::{ts, DbResult, Store};

/// Rows per `DELETE` statement.
pub const BATCH: i64 = 500;
/// Statements per table per run: a backlog is worked off over several runs instead of in
/// one long burst.
const MAX_BATCHES_PER_RUN: usize = 20;
/// Codes and tokens are kept a while past their expiry, so a late replay is still recognised
/// as one in the log rather than as an unknown value.
pub const TOKEN_RETENTION_SECS: i64 = 3600;

/// One table the purge works on: its key and which of its rows are expired at `$1`.
struct Purge {
    table: &'static str,
    key: &'static str,
    expired: &'static str,
    retention_secs: i64,
}

const PURGES: &[Purge] = &[
    Purge {
        table: "browser_sessions",
        key: "id",
        expired: "expires_at <= $1",
        retention_secs: 0,
    },
    Purge {
        table: "authorization_requests",
        key: "id",
        expired: "expires_at <= $1",
        retention_secs: 0,
    },
    Purge {
        table: "authorization_codes",
        key: "code_hash",
        expired: "expires_at <= $1",
        retention_secs: TOKEN_RETENTION_SECS,
    },
    Purge {
        table: "refresh_tokens",
        key: "token_hash",
        expired: "expires_at <= $1",
        retention_secs: TOKEN_RETENTION_SECS,
    },
    // The newest access token of each grant stays: "Mijn apps" shows when the partner last
    // received access (transparency about where the child's data went).
    Purge {
        table: "access_tokens",
        key: "token_hash",
        expired: "expires_at <= $1 AND issued_at < \
                  (SELECT MAX(n.issued_at) FROM access_tokens n WHERE n.grant_id = access_tokens.grant_id)",
        retention_secs: TOKEN_RETENTION_SECS,
    },
    Purge {
        table: "client_assertions",
        key: "client_id || ' ' || jti",
        expired: "expires_at <= $1",
        retention_secs: 0,
    },
    Purge {
        table: "pushed_requests",
        key: "uri_hash",
        expired: "expires_at <= $1",
        retention_secs: 0,
    },
    Purge {
        table: "roster_uploads",
        key: "id",
        expired: "expires_at <= $1",
        retention_secs: 0,
    },
    Purge {
        table: "console_sessions",
        key: "id",
        expired: "expires_at <= $1",
        retention_secs: 0,
    },
    Purge {
        table: "login_locks",
        key: "school_brin || ' ' || username",
        expired: "expires_at <= $1",
        retention_secs: 0,
    },
    // Followers read the change log within a second; an hour is ample, and one that was
    // away longer starts afresh anyway (a failed read empties its cache).
    Purge {
        table: "policy_changes",
        key: "seq",
        expired: "at <= $1",
        retention_secs: 3600,
    },
    Purge {
        table: "management_tokens",
        key: "token_hash",
        expired: "expires_at <= $1",
        retention_secs: TOKEN_RETENTION_SECS,
    },
];

impl Store {
    /// Delete expired rows; returns how many per table (tables with none are left out).
    pub async fn purge_expired(&self, now: DateTime<Utc>) -> DbResult<Vec<(&'static str, u64)>> {
        let mut purged = Vec::new();
        for purge in PURGES {
            let cutoff = ts(now) - purge.retention_secs;
            // `DELETE … LIMIT` exists on neither backend by default; a keyed sub-select does.
            let sql = format!(
                "DELETE FROM {table} WHERE {key} IN \
                 (SELECT {key} FROM {table} WHERE {expired} LIMIT $2)",
                table = purge.table,
                key = purge.key,
                expired = purge.expired,
            );
            // No statement at all when nothing has expired: a DELETE of zero rows costs a
            // write lock on SQLite for nothing.
            let probe = format!(
                "SELECT 1 FROM {table} WHERE {expired} LIMIT 1",
                table = purge.table,
                expired = purge.expired,
            );
            let any: Option<(i64,)> = sqlx::query_as(&probe)
                .bind(cutoff)
                .fetch_optional(self.pool())
                .await?;
            if any.is_none() {
                continue;
            }
            let mut total = 0;
            for _ in 0..MAX_BATCHES_PER_RUN {
                let done = sqlx::query(&sql)
                    .bind(cutoff)
                    .bind(BATCH)
                    .execute(self.pool())
                    .await?
                    .rows_affected();
                total += done;
                if done < u64::try_from(BATCH).unwrap_or(u64::MAX) {
                    break;
                }
            }
            if total > 0 {
                purged.push((purge.table, total));
            }
        }
        Ok(purged)
    }
}

impl Store {
    /// "Wie keek mee" beyond its retention: delete access-log rows whose hour starts before
    /// `keep_from`, in batches like the other purges. Returns the rows deleted.
    pub async fn purge_access_log(&self, keep_from: DateTime<Utc>) -> DbResult<u64> {
        let cutoff = ts(keep_from);
        let any: Option<(i64,)> =
            sqlx::query_as("SELECT 1 FROM access_log WHERE hour_start < $1 LIMIT 1")
                .bind(cutoff)
                .fetch_optional(self.pool())
                .await?;
        if any.is_none() {
            return Ok(0);
        }
        let mut total = 0;
        for _ in 0..MAX_BATCHES_PER_RUN {
            // A row value keys the composite primary key on both backends.
            let done = sqlx::query(
                "DELETE FROM access_log WHERE (grant_id, scope, hour_start) IN \
                 (SELECT grant_id, scope, hour_start FROM access_log WHERE hour_start < $1 LIMIT $2)",
            )
            .bind(cutoff)
            .bind(BATCH)
            .execute(self.pool())
            .await?
            .rows_affected();
            total += done;
            if done < u64::try_from(BATCH).unwrap_or(u64::MAX) {
                break;
            }
        }
        Ok(total)
    }
}
