//! Scope closures: a school closes a scope (e.g. `cijfers`) for audiences during a period.

use chrono::{DateTime, Utc};

use sqlx::AnyConnection;

use super::{new_id, ts, DbResult, Store};

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct Closure {
    pub id: String,
    pub school_brin: String,
    pub scope: String,
    /// Space-separated: `parents`, `students`, `partners`.
    pub audiences: String,
    pub starts_at: i64,
    pub ends_at: i64,
    pub reason: String,
    pub created_by: String,
    pub created_at: i64,
}

impl Closure {
    /// The closure as the policy reads it (parsed once, when the cache loads it); `None` for
    /// a scope this version does not know (it closes nothing it could issue).
    pub fn rule(&self) -> Option<crate::domain::policy::live::Closure> {
        Some(crate::domain::policy::live::Closure {
            scope: crate::domain::scope::Scope::parse(&self.scope)?,
            audiences: crate::domain::policy::Audience::parse_list(&self.audiences),
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            reason: self.reason.as_str().into(),
        })
    }
}

const COLUMNS: &str =
    "id, school_brin, scope, audiences, starts_at, ends_at, reason, created_by, created_at";

pub struct NewClosure<'a> {
    pub school_brin: &'a str,
    pub scope: &'a str,
    pub audiences: &'a [String],
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub reason: &'a str,
    pub created_by: &'a str,
}

impl Store {
    pub async fn insert_closure(&self, c: NewClosure<'_>, now: DateTime<Utc>) -> DbResult<Closure> {
        let mut conn = self.pool().acquire().await?;
        insert_closure_in(&mut conn, c, now).await
    }

    pub async fn closures_of(&self, school_brin: &str) -> DbResult<Vec<Closure>> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM scope_closures WHERE school_brin = $1 ORDER BY starts_at, id"
        ))
        .bind(school_brin)
        .fetch_all(self.pool())
        .await
    }

    pub async fn delete_closure(&self, school_brin: &str, id: &str) -> DbResult<bool> {
        let done = sqlx::query("DELETE FROM scope_closures WHERE school_brin = $1 AND id = $2")
            .bind(school_brin)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }
}

/// Insert a closure on a connection or inside a transaction (so its audit row commits with
/// it: a closure in force without its audit row is what the fault drills look for).
pub async fn insert_closure_in(
    conn: &mut AnyConnection,
    c: NewClosure<'_>,
    now: DateTime<Utc>,
) -> DbResult<Closure> {
    let closure = Closure {
        id: new_id(),
        school_brin: c.school_brin.to_string(),
        scope: c.scope.to_string(),
        audiences: c.audiences.join(" "),
        starts_at: ts(c.starts_at),
        ends_at: ts(c.ends_at),
        reason: c.reason.to_string(),
        created_by: c.created_by.to_string(),
        created_at: ts(now),
    };
    sqlx::query(&format!(
        "INSERT INTO scope_closures ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    ))
    .bind(&closure.id)
    .bind(&closure.school_brin)
    .bind(&closure.scope)
    .bind(&closure.audiences)
    .bind(closure.starts_at)
    .bind(closure.ends_at)
    .bind(&closure.reason)
    .bind(&closure.created_by)
    .bind(closure.created_at)
    .execute(&mut *conn)
    .await?;
    Ok(closure)
}

/// End a closure now (or, when it has not started, cancel it): it moves to the past and
/// stays in the list and the audit log. False when it had ended already.
pub async fn end_closure_in(
    conn: &mut AnyConnection,
    school_brin: &str,
    id: &str,
    now: DateTime<Utc>,
) -> DbResult<Option<Closure>> {
    let now = ts(now);
    let done = sqlx::query(
        "UPDATE scope_closures SET ends_at = $1, \
         starts_at = CASE WHEN starts_at > $1 THEN $1 ELSE starts_at END \
         WHERE school_brin = $2 AND id = $3 AND ends_at > $1",
    )
    .bind(now)
    .bind(school_brin)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(None);
    }
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM scope_closures WHERE school_brin = $1 AND id = $2"
    ))
    .bind(school_brin)
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
}
