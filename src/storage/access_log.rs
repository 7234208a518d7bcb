//! "Wie keek mee": which partner read which data about a student, and when. Reads are
//! counted in memory per grant × scope × hour ([`ReadRecorder`], a few map operations under
//! a mutex on the introspection path) and written in a few batched upserts per flush, so
//! recording never adds a database round trip to introspection.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use super::{ts, Backend, DbResult, Store};
use crate::domain::scope::Scope;
use crate::web::dutch_time::school_year_start;

/// Seconds per bucket: reads are kept per hour, which is all the page shows.
pub const BUCKET_SECS: i64 = 3600;
/// Buckets per statement (and transaction) of a flush: large enough that the per-statement
/// cost vanishes, small enough that SQLite's write lock is held only a few milliseconds.
const ROWS_PER_STATEMENT: usize = 1_000;

/// The scopes that are data about the student (what a resource server hands out), as
/// opposed to `openid` and `offline_access`, which only shape the tokens.
pub fn is_data(scope: Scope) -> bool {
    matches!(
        scope,
        Scope::Naam | Scope::Rooster | Scope::Huiswerk | Scope::Cijfers
    )
}

/// The start of the hour `now` falls in, in Unix seconds.
pub fn hour_start(now: DateTime<Utc>) -> i64 {
    let secs = ts(now);
    secs - secs.rem_euclid(BUCKET_SECS)
}

/// The first moment "Wie keek mee" still keeps at `now`: 1 August (the start of the Dutch
/// school year), 00:00 Dutch time, of the current school year minus `school_years`.
pub fn retention_start(now: DateTime<Utc>, school_years: u32) -> DateTime<Utc> {
    let mut start = school_year_start(now);
    for _ in 0..school_years.min(100) {
        start = school_year_start(start - chrono::Duration::days(1));
    }
    start
}

/// One grant × scope × hour with how often it was read and when last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadBucket {
    pub grant_id: String,
    pub scope: Scope,
    pub hour_start: i64,
    pub reads: i64,
    pub last_read_at: i64,
}

type Pending = HashMap<String, HashMap<(Scope, i64), (i64, i64)>>;

/// Reads not yet written. Owned by the application state; a background task flushes it.
#[derive(Default)]
pub struct ReadRecorder {
    // Keyed by grant first, so a repeated read of the same grant allocates nothing. No
    // `.await` is ever held across this lock.
    pending: Mutex<Pending>,
}

impl ReadRecorder {
    /// Count one read of `scopes` under `grant_id` at `now`.
    pub fn record(
        &self,
        grant_id: &str,
        scopes: impl IntoIterator<Item = Scope>,
        now: DateTime<Utc>,
    ) {
        let hour = hour_start(now);
        let at = ts(now);
        let mut pending = self.lock();
        if !pending.contains_key(grant_id) {
            pending.insert(grant_id.to_string(), HashMap::new());
        }
        if let Some(per_grant) = pending.get_mut(grant_id) {
            for scope in scopes {
                let entry = per_grant.entry((scope, hour)).or_insert((0, at));
                entry.0 += 1;
                entry.1 = entry.1.max(at);
            }
        }
    }

    /// Everything recorded so far, leaving the recorder empty.
    pub fn take(&self) -> Vec<ReadBucket> {
        let pending = std::mem::take(&mut *self.lock());
        pending
            .into_iter()
            .flat_map(|(grant_id, buckets)| {
                buckets
                    .into_iter()
                    .map(
                        move |((scope, hour_start), (reads, last_read_at))| ReadBucket {
                            grant_id: grant_id.clone(),
                            scope,
                            hour_start,
                            reads,
                            last_read_at,
                        },
                    )
            })
            .collect()
    }

    /// Return buckets a failed flush could not write, so the next flush tries again.
    fn put_back(&self, buckets: Vec<ReadBucket>) {
        let mut pending = self.lock();
        for b in buckets {
            let entry = pending
                .entry(b.grant_id)
                .or_default()
                .entry((b.scope, b.hour_start))
                .or_insert((0, b.last_read_at));
            entry.0 += b.reads;
            entry.1 = entry.1.max(b.last_read_at);
        }
    }

    /// Write what was recorded, in statements of [`ROWS_PER_STATEMENT`] buckets, each its
    /// own short transaction (so logins and consents never wait long behind a flush for
    /// SQLite's single writer); returns the number of buckets written. What a failed
    /// statement and the ones after it could not write is kept for the next flush, and
    /// nothing written is counted twice.
    pub async fn flush(&self, store: &Store) -> DbResult<usize> {
        let buckets = self.take();
        let mut written = 0;
        for (i, chunk) in buckets.chunks(ROWS_PER_STATEMENT).enumerate() {
            if let Err(e) = store.add_reads(chunk).await {
                self.put_back(buckets.into_iter().skip(i * ROWS_PER_STATEMENT).collect());
                return Err(e);
            }
            written += chunk.len();
            // Let the requests waiting for this core run between statements.
            tokio::task::yield_now().await;
        }
        Ok(written)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        // A panic elsewhere while holding the lock leaves plain counters behind: keep them.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One line of "Wie keek mee".
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReadView {
    pub client_name: String,
    pub scope: String,
    pub hour_start: i64,
    pub reads: i64,
    pub last_read_at: i64,
}

impl Store {
    /// Add counted reads to the log, in one statement. The buckets travel as one JSON
    /// parameter that the database unpacks itself (`json_each` on SQLite,
    /// `json_to_recordset` on PostgreSQL): binding five parameters a row costs more than the
    /// upsert (sqlx-sqlite binds `$N` by name, with a linear scan), and the `Any` driver
    /// cannot bind arrays for `UNNEST`. Buckets are unique per key, as the upsert needs.
    pub async fn add_reads(&self, buckets: &[ReadBucket]) -> DbResult<()> {
        if buckets.is_empty() {
            return Ok(());
        }
        let rows = serde_json::Value::Array(
            buckets
                .iter()
                .map(|b| {
                    serde_json::json!([
                        b.grant_id,
                        b.scope.as_str(),
                        b.hour_start,
                        b.reads,
                        b.last_read_at
                    ])
                })
                .collect(),
        )
        .to_string();
        let source = match self.backend() {
            // `WHERE true`: SQLite's upsert after a SELECT needs it to parse `ON CONFLICT`.
            Backend::Sqlite => {
                "SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), \
                 json_extract(value, '$[2]'), json_extract(value, '$[3]'), \
                 json_extract(value, '$[4]') FROM json_each($1) WHERE true"
            }
            Backend::Postgres => {
                "SELECT r->>0, r->>1, (r->>2)::bigint, (r->>3)::bigint, (r->>4)::bigint \
                 FROM json_array_elements($1::json) AS r"
            }
        };
        // `excluded` is the row that was proposed (both backends); the later read wins.
        let sql = format!(
            "INSERT INTO access_log (grant_id, scope, hour_start, reads, last_read_at) \
             {source} \
             ON CONFLICT (grant_id, scope, hour_start) DO UPDATE SET \
             reads = access_log.reads + excluded.reads, \
             last_read_at = CASE WHEN excluded.last_read_at > access_log.last_read_at \
             THEN excluded.last_read_at ELSE access_log.last_read_at END"
        );
        sqlx::query(&sql).bind(rows).execute(self.pool()).await?;
        Ok(())
    }

    /// Reads about one student by partners, most recent first: `limit` lines from `offset`.
    pub async fn reads_about(
        &self,
        student_id: &str,
        limit: i64,
        offset: i64,
    ) -> DbResult<Vec<ReadView>> {
        sqlx::query_as(
            "SELECT c.display_name AS client_name, l.scope, l.hour_start, l.reads, l.last_read_at \
             FROM access_log l JOIN grants g ON g.id = l.grant_id \
             JOIN clients c ON c.client_id = g.client_id \
             WHERE g.student_id = $1 AND c.kind = 'partner' \
             ORDER BY l.last_read_at DESC, c.display_name, l.scope LIMIT $2 OFFSET $3",
        )
        .bind(student_id)
        .bind(limit)
        .bind(offset)
        .fetch_all(self.pool())
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn retention_starts_on_the_first_of_august_of_the_previous_school_year() {
        let december = Utc.with_ymd_and_hms(2026, 12, 3, 8, 0, 0).unwrap();
        // 1 August 2025, 00:00 in Amsterdam (summer time, UTC+2).
        assert_eq!(
            retention_start(december, 1),
            Utc.with_ymd_and_hms(2025, 7, 31, 22, 0, 0).unwrap()
        );
        let july = Utc.with_ymd_and_hms(2026, 7, 31, 12, 0, 0).unwrap();
        assert_eq!(
            retention_start(july, 1),
            Utc.with_ymd_and_hms(2024, 7, 31, 22, 0, 0).unwrap()
        );
        assert_eq!(
            retention_start(december, 0),
            Utc.with_ymd_and_hms(2026, 7, 31, 22, 0, 0).unwrap()
        );
    }

    #[test]
    fn reads_are_counted_per_grant_scope_and_hour() {
        let recorder = ReadRecorder::default();
        let nine = Utc.with_ymd_and_hms(2026, 11, 23, 9, 10, 0).unwrap();
        recorder.record("g1", [Scope::Rooster, Scope::Cijfers], nine);
        recorder.record("g1", [Scope::Rooster], nine + chrono::Duration::minutes(20));
        recorder.record("g1", [Scope::Rooster], nine + chrono::Duration::hours(1));
        let mut buckets = recorder.take();
        buckets.sort_by_key(|b| (b.scope, b.hour_start));
        let hour = hour_start(nine);
        assert_eq!(
            buckets
                .iter()
                .map(|b| (
                    b.scope,
                    b.hour_start - hour,
                    b.reads,
                    b.last_read_at - ts(nine)
                ))
                .collect::<Vec<_>>(),
            vec![
                (Scope::Rooster, 0, 2, 1200),
                (Scope::Rooster, 3600, 1, 3600),
                (Scope::Cijfers, 0, 1, 0),
            ]
        );
        assert!(recorder.take().is_empty(), "taken once");
    }
}
