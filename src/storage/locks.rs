//! Login locks as the school console sees them: which accounts of a school are locked by
//! failed logins from unknown browsers, since when and until when.

use chrono::{DateTime, Utc};

use super::{ts, DbResult, Store};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LoginLock {
    pub username: String,
    pub locked_at: i64,
    pub expires_at: i64,
}

impl Store {
    /// Record (or renew) a lock for an existing account; unknown usernames are not stored.
    pub async fn record_login_lock(
        &self,
        school: &str,
        username: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> DbResult<()> {
        let Some(account) = self.find_account_by_login(school, username).await? else {
            return Ok(());
        };
        sqlx::query(
            "INSERT INTO login_locks (school_brin, username, locked_at, expires_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (school_brin, username) \
             DO UPDATE SET expires_at = excluded.expires_at",
        )
        .bind(&account.school_brin)
        .bind(&account.username)
        .bind(ts(now))
        .bind(ts(until))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn login_locks(&self, school: &str, now: DateTime<Utc>) -> DbResult<Vec<LoginLock>> {
        sqlx::query_as(
            "SELECT username, locked_at, expires_at FROM login_locks \
             WHERE school_brin = $1 AND expires_at > $2 ORDER BY username",
        )
        .bind(school)
        .bind(ts(now))
        .fetch_all(self.pool())
        .await
    }

    /// Remove a lock; `false` when there was none (in force).
    pub async fn delete_login_lock(
        &self,
        school: &str,
        username: &str,
        now: DateTime<Utc>,
    ) -> DbResult<bool> {
        let done = sqlx::query(
            "DELETE FROM login_locks WHERE school_brin = $1 AND username = $2 AND expires_at > $3",
        )
        .bind(school)
        .bind(username)
        .bind(ts(now))
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }
}
