//! Pushed authorization requests (RFC 9126): what a client pushed, kept by the hash of its
//! `request_uri` for a minute and handed out once, to that client only.

use chrono::{DateTime, Utc};

use super::{ts, DbResult, Store};

/// Unused requests a client may have waiting at once: a bound on what one client can make
/// us store (each at most `MAX_AUTHORIZE_QUERY` bytes; expired ones are purged).
pub const MAX_PENDING_PER_CLIENT: i64 = 10_000;

impl Store {
    /// Keep a pushed request; `false` when the client already has
    /// [`MAX_PENDING_PER_CLIENT`] waiting (nothing stored).
    pub async fn push_request(
        &self,
        uri_hash: &str,
        client_id: &str,
        params: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> DbResult<bool> {
        let stored = sqlx::query(
            "INSERT INTO pushed_requests (uri_hash, client_id, params, expires_at, used_at) \
             SELECT $1, $2, $3, $4, NULL WHERE (SELECT COUNT(*) FROM pushed_requests \
             WHERE client_id = $2 AND used_at IS NULL AND expires_at > $5) < $6",
        )
        .bind(uri_hash)
        .bind(client_id)
        .bind(params)
        .bind(ts(expires_at))
        .bind(ts(now))
        .bind(MAX_PENDING_PER_CLIENT)
        .execute(self.pool())
        .await?;
        Ok(stored.rows_affected() == 1)
    }

    /// The parameters of a pushed request, marked used in the same statement: once, to the
    /// client that pushed it, before it expires. `None` otherwise (whatever the reason: the
    /// answer does not tell a guesser which).
    pub async fn take_pushed_request(
        &self,
        uri_hash: &str,
        client_id: &str,
        now: DateTime<Utc>,
    ) -> DbResult<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as(
            "UPDATE pushed_requests SET used_at = $3 \
             WHERE uri_hash = $1 AND client_id = $2 AND used_at IS NULL AND expires_at > $3 \
             RETURNING params",
        )
        .bind(uri_hash)
        .bind(client_id)
        .bind(ts(now))
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|(params,)| params))
    }
}
