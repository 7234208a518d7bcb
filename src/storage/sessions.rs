//! Browser sessions (the login at the portal) and pending authorization requests.

use chrono::{DateTime, Utc};

use super::{ts, DbResult, Store};

/// How long a person has to log in and consent to an `/authorize` request.
pub const REQUEST_TTL_SECS: i64 = 30 * 60;

#[derive(Clone, sqlx::FromRow)]
pub struct BrowserSession {
    /// Public identifier, used as the `sid` claim; not the cookie value.
    pub id: String,
    pub csrf_token: String,
    pub account_id: Option<String>,
    pub auth_time: Option<i64>,
    pub expires_at: i64,
}

impl std::fmt::Debug for BrowserSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrowserSession")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// An `/authorize` request waiting for login and consent (RFC 6749 §4.1.1 parameters).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuthorizationRequest {
    pub id: String,
    pub session_id: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub scopes: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: String,
    pub school_hint: Option<String>,
    pub login_hint: Option<String>,
    pub force_login: i64,
    pub force_consent: i64,
    pub locale: String,
    pub created_at: i64,
}

impl AuthorizationRequest {
    pub fn english(&self) -> bool {
        self.locale == "en"
    }
}

const REQUEST_COLUMNS: &str = "id, session_id, client_id, redirect_uri, scopes, state, nonce, \
     code_challenge, school_hint, login_hint, force_login, force_consent, locale, created_at";

impl Store {
    pub async fn create_session(
        &self,
        id: &str,
        cookie_hash: &str,
        csrf_token: &str,
        login: Option<(&str, DateTime<Utc>)>,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> DbResult<()> {
        sqlx::query(
            "INSERT INTO browser_sessions (id, cookie_hash, csrf_token, account_id, auth_time, \
             created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id)
        .bind(cookie_hash)
        .bind(csrf_token)
        .bind(login.map(|(account, _)| account))
        .bind(login.map(|(_, at)| ts(at)))
        .bind(ts(now))
        .bind(ts(expires_at))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn find_session(
        &self,
        cookie_hash: &str,
        now: DateTime<Utc>,
    ) -> DbResult<Option<BrowserSession>> {
        sqlx::query_as(
            "SELECT id, csrf_token, account_id, auth_time, expires_at FROM browser_sessions \
             WHERE cookie_hash = $1 AND expires_at > $2",
        )
        .bind(cookie_hash)
        .bind(ts(now))
        .fetch_optional(self.pool())
        .await
    }

    pub async fn delete_session(&self, id: &str) -> DbResult<()> {
        sqlx::query("DELETE FROM browser_sessions WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Store a pending request, keeping at most `keep` (the newest) per browser session.
    pub async fn insert_authorization_request(
        &self,
        r: &AuthorizationRequest,
        expires_at: DateTime<Utc>,
        keep: i64,
    ) -> DbResult<()> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(&format!(
            "INSERT INTO authorization_requests ({REQUEST_COLUMNS}, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
        ))
        .bind(&r.id)
        .bind(&r.session_id)
        .bind(&r.client_id)
        .bind(&r.redirect_uri)
        .bind(&r.scopes)
        .bind(r.state.as_deref())
        .bind(r.nonce.as_deref())
        .bind(&r.code_challenge)
        .bind(r.school_hint.as_deref())
        .bind(r.login_hint.as_deref())
        .bind(r.force_login)
        .bind(r.force_consent)
        .bind(&r.locale)
        .bind(r.created_at)
        .bind(ts(expires_at))
        .execute(&mut *tx)
        .await?;
        // Oldest out first; the new request always stays (times are whole seconds, so
        // several requests may share a `created_at`).
        sqlx::query(
            "DELETE FROM authorization_requests WHERE session_id = $1 AND id <> $2 \
             AND id NOT IN (SELECT id FROM authorization_requests \
             WHERE session_id = $1 AND id <> $2 ORDER BY created_at DESC, id DESC LIMIT $3)",
        )
        .bind(&r.session_id)
        .bind(&r.id)
        .bind((keep - 1).max(0))
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }

    /// Keep a session alive until at least `until` (an anonymous session that a new
    /// authorization request reuses must outlive that request).
    pub async fn extend_session(&self, id: &str, until: DateTime<Utc>) -> DbResult<()> {
        sqlx::query(
            "UPDATE browser_sessions SET expires_at = $2 WHERE id = $1 AND expires_at < $2",
        )
        .bind(id)
        .bind(ts(until))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn get_authorization_request(
        &self,
        id: &str,
        now: DateTime<Utc>,
    ) -> DbResult<Option<AuthorizationRequest>> {
        sqlx::query_as(&format!(
            "SELECT {REQUEST_COLUMNS} FROM authorization_requests WHERE id = $1 AND expires_at > $2"
        ))
        .bind(id)
        .bind(ts(now))
        .fetch_optional(self.pool())
        .await
    }

    /// After login the request moves to the new session, and a forced login is satisfied.
    pub async fn attach_request_to_session(&self, id: &str, session_id: &str) -> DbResult<()> {
        sqlx::query(
            "UPDATE authorization_requests SET session_id = $2, force_login = 0 WHERE id = $1",
        )
        .bind(id)
        .bind(session_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// A request is answered once: consume it so a second submit cannot mint a second code.
    pub async fn take_authorization_request(&self, id: &str) -> DbResult<bool> {
        let done = sqlx::query("DELETE FROM authorization_requests WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }
}

impl Store {
    pub async fn set_request_locale(&self, id: &str, locale: &str) -> DbResult<()> {
        sqlx::query("UPDATE authorization_requests SET locale = $2 WHERE id = $1")
            .bind(id)
            .bind(locale)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
