//! What the admin API needs besides the other aggregates: management tokens, the audit log,
//! the policy epoch, and the school's overview of grants.

use chrono::{DateTime, Utc};

use sqlx::AnyConnection;

use super::{new_id, ts, DbResult, Store};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ManagementToken {
    pub client_id: String,
    pub scopes: String,
    pub expires_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct AuditEntry {
    pub id: String,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub reason: Option<String>,
    pub details: Option<String>,
}

/// One row of the school's overview: who is connected to which partner with which scopes.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct GrantOverview {
    pub grant_id: String,
    pub client_id: String,
    pub student_number: String,
    pub scopes: String,
    pub given_by_role: String,
    pub granted_at: i64,
    pub expires_at: i64,
}

impl Store {
    pub async fn insert_management_token(
        &self,
        token_hash: &str,
        client_id: &str,
        scopes: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> DbResult<()> {
        sqlx::query(
            "INSERT INTO management_tokens (token_hash, client_id, scopes, issued_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash)
        .bind(client_id)
        .bind(scopes)
        .bind(ts(now))
        .bind(ts(expires_at))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn find_management_token(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> DbResult<Option<ManagementToken>> {
        sqlx::query_as(
            "SELECT client_id, scopes, expires_at FROM management_tokens \
             WHERE token_hash = $1 AND expires_at > $2 AND revoked_at IS NULL",
        )
        .bind(token_hash)
        .bind(ts(now))
        .fetch_optional(self.pool())
        .await
    }

    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        reason: Option<&str>,
        details: Option<&serde_json::Value>,
        now: DateTime<Utc>,
    ) -> DbResult<()> {
        let mut conn = self.pool().acquire().await?;
        insert_audit(&mut conn, actor, action, target, reason, details, now).await
    }
}

/// One audit row, on a connection or inside a transaction (so the row commits with the change).
pub async fn insert_audit(
    conn: &mut AnyConnection,
    actor: &str,
    action: &str,
    target: &str,
    reason: Option<&str>,
    details: Option<&serde_json::Value>,
    now: DateTime<Utc>,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO audit_log (id, at, actor, action, target, reason, details) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(new_id())
    .bind(ts(now))
    .bind(actor)
    .bind(action)
    .bind(target)
    .bind(reason)
    .bind(details.map(|d| d.to_string()))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl Store {
    pub async fn audit_log(&self, target_prefix: &str, limit: i64) -> DbResult<Vec<AuditEntry>> {
        sqlx::query_as(
            "SELECT id, at, actor, action, target, reason, details FROM audit_log \
             WHERE target LIKE $1 ORDER BY at DESC, id LIMIT $2",
        )
        .bind(format!("{target_prefix}%"))
        .bind(limit)
        .fetch_all(self.pool())
        .await
    }

    /// Active grants of students enrolled at the school (now), for the school's overview.
    pub async fn grants_at_school(
        &self,
        school_brin: &str,
        now: DateTime<Utc>,
    ) -> DbResult<Vec<GrantOverview>> {
        sqlx::query_as(
            "SELECT g.id AS grant_id, g.client_id, a.username AS student_number, g.scopes, \
             g.given_by_role, g.granted_at, g.expires_at \
             FROM grants g JOIN accounts a ON a.id = g.student_id \
             JOIN enrollments e ON e.student_id = g.student_id AND e.school_brin = $1 \
             WHERE g.revoked_at IS NULL AND g.expires_at > $2 AND g.given_by_role <> 'self' \
             AND e.starts_at <= $2 AND (e.ends_at IS NULL OR e.ends_at > $2) \
             ORDER BY g.client_id, a.username",
        )
        .bind(school_brin)
        .bind(ts(now))
        .fetch_all(self.pool())
        .await
    }
}
