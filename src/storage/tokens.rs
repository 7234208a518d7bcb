//! Authorization codes, access tokens and refresh tokens, stored only as SHA-256 hashes.
//!
//! All tokens descending from one authorization code share a `family_id` (the code's hash),
//! so a replayed code (RFC 6749 §4.1.2) or a reused refresh token (RFC 9700 §4.14.2) can
//! revoke the whole family in one statement.

use chrono::{DateTime, Utc};

use super::{ts, DbResult, Store};
use crate::domain::scope::ScopeSet;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuthorizationCode {
    pub code_hash: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub grant_id: String,
    pub student_id: String,
    pub actor_id: Option<String>,
    pub scopes: String,
    pub nonce: Option<String>,
    pub session_id: String,
    pub auth_time: i64,
    pub issued_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AccessToken {
    pub token_hash: String,
    pub family_id: String,
    pub client_id: String,
    pub grant_id: String,
    pub student_id: String,
    pub actor_id: Option<String>,
    pub scopes: String,
    pub issued_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

impl AccessToken {
    pub fn scopes(&self) -> ScopeSet {
        ScopeSet::parse_lossy(&self.scopes)
    }

    pub fn is_live_at(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at > ts(now)
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RefreshToken {
    pub token_hash: String,
    pub family_id: String,
    pub client_id: String,
    pub grant_id: String,
    pub student_id: String,
    pub actor_id: Option<String>,
    pub scopes: String,
    pub session_id: String,
    pub auth_time: i64,
    pub issued_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

const CODE_COLUMNS: &str = "code_hash, client_id, redirect_uri, code_challenge, grant_id, \
     student_id, actor_id, scopes, nonce, session_id, auth_time, issued_at, expires_at, used_at";
const ACCESS_COLUMNS: &str = "token_hash, family_id, client_id, grant_id, student_id, actor_id, \
     scopes, issued_at, expires_at, revoked_at";
const REFRESH_COLUMNS: &str = "token_hash, family_id, client_id, grant_id, student_id, actor_id, \
     scopes, session_id, auth_time, issued_at, expires_at, used_at, revoked_at";

/// Why a single-use credential could not be redeemed.
#[derive(Debug, PartialEq, Eq)]
pub enum RedeemError {
    /// It was already used (or used concurrently): the caller treats this as replay.
    AlreadyUsed,
    /// The database cannot be reached right now (see [`super::is_unavailable`]).
    Unavailable,
    Db(String),
}

impl From<sqlx::Error> for RedeemError {
    fn from(e: sqlx::Error) -> Self {
        if super::is_unavailable(&e) {
            RedeemError::Unavailable
        } else {
            RedeemError::Db(e.to_string())
        }
    }
}

impl Store {
    pub async fn insert_code(&self, c: &AuthorizationCode) -> DbResult<()> {
        sqlx::query(&format!(
            "INSERT INTO authorization_codes ({CODE_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, NULL)"
        ))
        .bind(&c.code_hash)
        .bind(&c.client_id)
        .bind(&c.redirect_uri)
        .bind(&c.code_challenge)
        .bind(&c.grant_id)
        .bind(&c.student_id)
        .bind(c.actor_id.as_deref())
        .bind(&c.scopes)
        .bind(c.nonce.as_deref())
        .bind(&c.session_id)
        .bind(c.auth_time)
        .bind(c.issued_at)
        .bind(c.expires_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn get_code(&self, code_hash: &str) -> DbResult<Option<AuthorizationCode>> {
        sqlx::query_as(&format!(
            "SELECT {CODE_COLUMNS} FROM authorization_codes WHERE code_hash = $1"
        ))
        .bind(code_hash)
        .fetch_optional(self.pool())
        .await
    }

    /// Mark a code used without issuing anything (a failed exchange still burns the code).
    pub async fn burn_code(&self, code_hash: &str, now: DateTime<Utc>) -> DbResult<()> {
        sqlx::query(
            "UPDATE authorization_codes SET used_at = $2 WHERE code_hash = $1 AND used_at IS NULL",
        )
        .bind(code_hash)
        .bind(ts(now))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Atomically mark the code used and store the tokens issued for it. If another exchange
    /// got there first, nothing is stored and `AlreadyUsed` is returned.
    pub async fn redeem_code(
        &self,
        code_hash: &str,
        now: DateTime<Utc>,
        access: &AccessToken,
        refresh: Option<&RefreshToken>,
    ) -> Result<(), RedeemError> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool().begin().await?;
        let marked = sqlx::query(
            "UPDATE authorization_codes SET used_at = $2 WHERE code_hash = $1 AND used_at IS NULL",
        )
        .bind(code_hash)
        .bind(ts(now))
        .execute(&mut *tx)
        .await?;
        if marked.rows_affected() != 1 {
            tx.rollback().await?;
            return Err(RedeemError::AlreadyUsed);
        }
        insert_access(&mut tx, access).await?;
        if let Some(refresh) = refresh {
            insert_refresh(&mut tx, refresh).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn get_refresh_token(&self, token_hash: &str) -> DbResult<Option<RefreshToken>> {
        sqlx::query_as(&format!(
            "SELECT {REFRESH_COLUMNS} FROM refresh_tokens WHERE token_hash = $1"
        ))
        .bind(token_hash)
        .fetch_optional(self.pool())
        .await
    }

    /// Refresh-token rotation (RFC 9700 §4.14.2): atomically retire the old refresh token and
    /// store its successor with a new access token.
    pub async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        now: DateTime<Utc>,
        access: &AccessToken,
        refresh: &RefreshToken,
    ) -> Result<(), RedeemError> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool().begin().await?;
        let marked = sqlx::query(
            "UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL \
             AND revoked_at IS NULL",
        )
        .bind(old_hash)
        .bind(ts(now))
        .execute(&mut *tx)
        .await?;
        if marked.rows_affected() != 1 {
            tx.rollback().await?;
            return Err(RedeemError::AlreadyUsed);
        }
        insert_access(&mut tx, access).await?;
        insert_refresh(&mut tx, refresh).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn get_access_token(&self, token_hash: &str) -> DbResult<Option<AccessToken>> {
        sqlx::query_as(&format!(
            "SELECT {ACCESS_COLUMNS} FROM access_tokens WHERE token_hash = $1"
        ))
        .bind(token_hash)
        .fetch_optional(self.pool())
        .await
    }

    /// Live access tokens (unrevoked, unexpired at `now`) in hash order after `after`, at most
    /// `limit`: keyset pages for warming the policy cache at start.
    pub async fn live_access_tokens_after(
        &self,
        after: &str,
        now: DateTime<Utc>,
        limit: usize,
    ) -> DbResult<Vec<AccessToken>> {
        sqlx::query_as(&format!(
            "SELECT {ACCESS_COLUMNS} FROM access_tokens \
             WHERE token_hash > $1 AND expires_at > $2 AND revoked_at IS NULL \
             ORDER BY token_hash LIMIT $3"
        ))
        .bind(after)
        .bind(ts(now))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(self.pool())
        .await
    }

    /// Revoke every access and refresh token descending from one authorization code.
    pub async fn revoke_family(&self, family_id: &str, now: DateTime<Utc>) -> DbResult<u64> {
        let mut tx = self.pool().begin().await?;
        let a = sqlx::query(
            "UPDATE access_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL",
        )
        .bind(family_id)
        .bind(ts(now))
        .execute(&mut *tx)
        .await?;
        let r = sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL",
        )
        .bind(family_id)
        .bind(ts(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(a.rows_affected() + r.rows_affected())
    }
}

async fn insert_access(tx: &mut sqlx::Transaction<'_, sqlx::Any>, t: &AccessToken) -> DbResult<()> {
    sqlx::query(&format!(
        "INSERT INTO access_tokens ({ACCESS_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL)"
    ))
    .bind(&t.token_hash)
    .bind(&t.family_id)
    .bind(&t.client_id)
    .bind(&t.grant_id)
    .bind(&t.student_id)
    .bind(t.actor_id.as_deref())
    .bind(&t.scopes)
    .bind(t.issued_at)
    .bind(t.expires_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn insert_refresh(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    t: &RefreshToken,
) -> DbResult<()> {
    sqlx::query(&format!(
        "INSERT INTO refresh_tokens ({REFRESH_COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL, NULL)"
    ))
    .bind(&t.token_hash)
    .bind(&t.family_id)
    .bind(&t.client_id)
    .bind(&t.grant_id)
    .bind(&t.student_id)
    .bind(t.actor_id.as_deref())
    .bind(&t.scopes)
    .bind(&t.session_id)
    .bind(t.auth_time)
    .bind(t.issued_at)
    .bind(t.expires_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// RFC 7009: revoke a management token of `client_id`. Returns whether it was live.
    pub async fn revoke_management_token(
        &self,
        token_hash: &str,
        client_id: &str,
        now: DateTime<Utc>,
    ) -> DbResult<bool> {
        let done = sqlx::query(
            "UPDATE management_tokens SET revoked_at = $3 \
             WHERE token_hash = $1 AND client_id = $2 AND revoked_at IS NULL",
        )
        .bind(token_hash)
        .bind(client_id)
        .bind(ts(now))
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// RFC 7009: revoke one access token. Returns whether it was live.
    pub async fn revoke_access_token(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> DbResult<bool> {
        let done = sqlx::query(
            "UPDATE access_tokens SET revoked_at = $2 WHERE token_hash = $1 AND revoked_at IS NULL",
        )
        .bind(token_hash)
        .bind(ts(now))
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
