//! Schools (tenants), as registered by the platform operator.

use chrono::{DateTime, Utc};
use sqlx::AnyConnection;

use super::accounts::School;
use super::{ts, DbResult};

pub async fn insert_school_in(
    conn: &mut AnyConnection,
    brin: &str,
    name: &str,
    now: DateTime<Utc>,
) -> DbResult<()> {
    sqlx::query("INSERT INTO schools (brin, name, created_at) VALUES ($1, $2, $3)")
        .bind(brin)
        .bind(name)
        .bind(ts(now))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn get_school_in(conn: &mut AnyConnection, brin: &str) -> DbResult<Option<School>> {
    sqlx::query_as("SELECT brin, name FROM schools WHERE brin = $1")
        .bind(brin)
        .fetch_optional(&mut *conn)
        .await
}

pub async fn rename_school_in(conn: &mut AnyConnection, brin: &str, name: &str) -> DbResult<()> {
    sqlx::query("UPDATE schools SET name = $2 WHERE brin = $1")
        .bind(brin)
        .bind(name)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
