//! Activation codes (the school's letters) and what issuing one resets: the password and the
//! browser sessions of the person. Each function works on a connection so the caller can run
//! it inside the transaction that also writes the audit row.

use chrono::{DateTime, Utc};
use sqlx::AnyConnection;

use super::accounts::Account;
use super::{ts, DbResult};

/// The live (or spent) code of one account: only its hash is ever stored.
#[derive(Clone, sqlx::FromRow)]
pub struct StoredCode {
    pub code_hash: String,
    pub issued_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

// The hash is not secret in the way the code is, but it has no business in a log either.
impl std::fmt::Debug for StoredCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredCode")
            .field("expires_at", &self.expires_at)
            .field("used_at", &self.used_at)
            .finish_non_exhaustive()
    }
}

const COLUMNS: &str = "id, school_brin, username, role, password_hash, given_name, \
                       tussenvoegsel, family_name, birth_date, login_enabled";

/// The school's account with this username, if any.
pub async fn account_by_username(
    conn: &mut AnyConnection,
    brin: &str,
    username: &str,
) -> DbResult<Option<Account>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM accounts WHERE school_brin = $1 AND username = $2"
    ))
    .bind(brin)
    .bind(username)
    .fetch_optional(&mut *conn)
    .await
}

/// Every account of the school with this role whose login the SIS has not disabled, in
/// username order (the order of the letters). Students who have left (no enrollment at the
/// school that is open at `now`) get no letter; one enrolled from a later date does.
pub async fn enabled_accounts_with_role(
    conn: &mut AnyConnection,
    brin: &str,
    role: &str,
    now: DateTime<Utc>,
) -> DbResult<Vec<Account>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM accounts a WHERE a.school_brin = $1 AND a.role = $2 \
         AND a.login_enabled = 1 AND (a.role <> 'student' OR EXISTS (\
           SELECT 1 FROM enrollments e WHERE e.student_id = a.id AND e.school_brin = $1 \
           AND (e.ends_at IS NULL OR e.ends_at > $3))) \
         ORDER BY a.username"
    ))
    .bind(brin)
    .bind(role)
    .bind(ts(now))
    .fetch_all(&mut *conn)
    .await
}

/// Replace the account's code (at most one per account): an earlier letter stops working.
pub async fn replace_code(
    conn: &mut AnyConnection,
    account_id: &str,
    code_hash: &str,
    issued_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> DbResult<()> {
    sqlx::query("DELETE FROM activation_codes WHERE account_id = $1")
        .bind(account_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO activation_codes (account_id, code_hash, issued_at, expires_at, used_at) \
         VALUES ($1, $2, $3, $4, NULL)",
    )
    .bind(account_id)
    .bind(code_hash)
    .bind(ts(issued_at))
    .bind(ts(expires_at))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// No password until the new letter is used (`''` never verifies, see `Account::may_log_in`).
pub async fn clear_password(conn: &mut AnyConnection, account_id: &str) -> DbResult<()> {
    sqlx::query("UPDATE accounts SET password_hash = '' WHERE id = $1")
        .bind(account_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Log the person out everywhere: every browser session of the account ends.
pub async fn end_sessions_of(conn: &mut AnyConnection, account_id: &str) -> DbResult<u64> {
    let done = sqlx::query("DELETE FROM browser_sessions WHERE account_id = $1")
        .bind(account_id)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected())
}

pub async fn code_of(conn: &mut AnyConnection, account_id: &str) -> DbResult<Option<StoredCode>> {
    sqlx::query_as(
        "SELECT code_hash, issued_at, expires_at, used_at FROM activation_codes \
         WHERE account_id = $1",
    )
    .bind(account_id)
    .fetch_optional(&mut *conn)
    .await
}

/// Spend the code: true only for the one caller that finds it unused, unexpired and
/// unchanged (two tabs submitting the same letter at once: one wins).
pub async fn use_code(
    conn: &mut AnyConnection,
    account_id: &str,
    code_hash: &str,
    now: DateTime<Utc>,
) -> DbResult<bool> {
    let done = sqlx::query(
        "UPDATE activation_codes SET used_at = $3 WHERE account_id = $1 AND code_hash = $2 \
         AND used_at IS NULL AND expires_at > $3",
    )
    .bind(account_id)
    .bind(code_hash)
    .bind(ts(now))
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn set_password(
    conn: &mut AnyConnection,
    account_id: &str,
    password_hash: &str,
) -> DbResult<()> {
    sqlx::query("UPDATE accounts SET password_hash = $2 WHERE id = $1")
        .bind(account_id)
        .bind(password_hash)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
