//! SQL for the OneRoster import: the school's people as they are, and batched writes of
//! what differs, all on the import's one transaction.
//!
//! Callers write only rows that change. That is not just speed: every row written is logged
//! in the policy change log (by triggers) and evicted from every instance's policy cache, so
//! an import that changes nothing must issue no write at all.

use sqlx::{AnyConnection, Row};

use super::DbResult;

/// Bound parameters per statement. Multi-row statements save round trips, but not without
/// limit: SQLite allows at most 32,766 parameters (PostgreSQL 65,535), and sqlx-sqlite looks
/// every `$N` up by name, which SQLite answers by a linear scan (`sqlite3VListNumToName`),
/// so binding costs grow with the square of the count. About 400 per statement is the sweet
/// spot measured with `examples/roster_bench.rs`.
const PARAMETERS: usize = 400;
/// Identifiers per `IN (...)` list.
const IN_LIST: usize = PARAMETERS;

/// Rows per multi-row INSERT of `columns` columns.
fn rows_per_insert(columns: usize) -> usize {
    (PARAMETERS / columns).max(1)
}

/// A person of the school as stored.
#[derive(Clone, sqlx::FromRow)]
pub struct StoredPerson {
    pub id: String,
    pub username: String,
    pub role: String,
    pub given_name: String,
    pub tussenvoegsel: Option<String>,
    pub family_name: String,
    pub birth_date: Option<String>,
    pub source_id: Option<String>,
    pub login_enabled: i64,
}

// Names stay out of Debug output (and so out of logs).
impl std::fmt::Debug for StoredPerson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredPerson")
            .field("id", &self.id)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// A student's enrollment at the school.
#[derive(Debug, Clone)]
pub struct StoredEnrollment {
    pub student_id: String,
    pub starts_at: i64,
    pub ends_at: Option<i64>,
}

/// SQLite's page cache is 2 MiB by default: an import that reads and writes a few hundred
/// thousand rows would re-read the same pages from the OS over and over. 64 MiB for this
/// connection (it stays with the pooled connection; the memory is only taken when used).
pub async fn widen_page_cache(conn: &mut AnyConnection, backend: super::Backend) -> DbResult<()> {
    if backend == super::Backend::Sqlite {
        sqlx::query("PRAGMA cache_size = -65536")
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Every account of the school (all roles: the import must see supervisors' usernames too).
pub async fn people_of_school(conn: &mut AnyConnection, brin: &str) -> DbResult<Vec<StoredPerson>> {
    sqlx::query_as(
        "SELECT id, username, role, given_name, tussenvoegsel, family_name, birth_date, \
         source_id, login_enabled FROM accounts WHERE school_brin = $1",
    )
    .bind(brin)
    .fetch_all(&mut *conn)
    .await
}

pub async fn enrollments_at_school(
    conn: &mut AnyConnection,
    brin: &str,
) -> DbResult<Vec<StoredEnrollment>> {
    let rows = sqlx::query(
        "SELECT student_id, starts_at, ends_at FROM enrollments WHERE school_brin = $1",
    )
    .bind(brin)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(StoredEnrollment {
                student_id: row.try_get(0)?,
                starts_at: row.try_get(1)?,
                ends_at: row.try_get(2)?,
            })
        })
        .collect()
}

/// Guardianships whose parent belongs to the school, as `(parent_id, student_id)`.
pub async fn guardianships_at_school(
    conn: &mut AnyConnection,
    brin: &str,
) -> DbResult<Vec<(String, String)>> {
    sqlx::query_as(
        "SELECT g.parent_id, g.student_id FROM guardianships g \
         JOIN accounts p ON p.id = g.parent_id WHERE p.school_brin = $1",
    )
    .bind(brin)
    .fetch_all(&mut *conn)
    .await
}

/// A new imported account. No password yet (`password_hash = ''`) until the person
/// activates it; no email, phone or sms (data minimisation).
pub struct NewPerson<'a> {
    pub id: &'a str,
    pub username: &'a str,
    pub role: &'a str,
    pub given_name: &'a str,
    pub tussenvoegsel: Option<&'a str>,
    pub family_name: &'a str,
    pub birth_date: Option<String>,
    pub source_id: &'a str,
    pub login_enabled: bool,
}

/// `($1, $2, ...), ($k+1, ...)` for `rows` rows of `columns` placeholders starting after
/// `offset` parameters.
fn placeholders(rows: usize, columns: usize, offset: usize) -> String {
    let mut sql = String::with_capacity(rows * columns * 6);
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..columns {
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&(offset + r * columns + c + 1).to_string());
        }
        sql.push(')');
    }
    sql
}

pub async fn insert_people(
    conn: &mut AnyConnection,
    brin: &str,
    people: &[NewPerson<'_>],
    now: i64,
) -> DbResult<()> {
    for chunk in people.chunks(rows_per_insert(12)) {
        let sql = format!(
            "INSERT INTO accounts (id, school_brin, username, role, password_hash, given_name, \
             tussenvoegsel, family_name, birth_date, created_at, source_id, login_enabled) VALUES {}",
            placeholders(chunk.len(), 12, 0)
        );
        let mut query = sqlx::query(&sql);
        for p in chunk {
            query = query
                .bind(p.id)
                .bind(brin)
                .bind(p.username)
                .bind(p.role)
                .bind("")
                .bind(p.given_name)
                .bind(p.tussenvoegsel)
                .bind(p.family_name)
                .bind(p.birth_date.as_deref())
                .bind(now)
                .bind(p.source_id)
                .bind(i64::from(p.login_enabled));
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// The new state of an existing account.
pub struct PersonUpdate<'a> {
    pub id: &'a str,
    pub username: &'a str,
    pub given_name: &'a str,
    pub tussenvoegsel: Option<&'a str>,
    pub family_name: &'a str,
    pub birth_date: Option<String>,
    pub source_id: &'a str,
    pub login_enabled: bool,
}

pub async fn update_person(conn: &mut AnyConnection, update: &PersonUpdate<'_>) -> DbResult<()> {
    sqlx::query(
        "UPDATE accounts SET username = $2, given_name = $3, tussenvoegsel = $4, \
         family_name = $5, birth_date = $6, source_id = $7, login_enabled = $8 WHERE id = $1",
    )
    .bind(update.id)
    .bind(update.username)
    .bind(update.given_name)
    .bind(update.tussenvoegsel)
    .bind(update.family_name)
    .bind(update.birth_date.as_deref())
    .bind(update.source_id)
    .bind(i64::from(update.login_enabled))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Move renamed accounts' usernames out of the way first, so that two accounts swapping
/// usernames never meet the `UNIQUE (school_brin, username)` constraint half-way.
pub async fn park_usernames(conn: &mut AnyConnection, ids: &[&str]) -> DbResult<()> {
    for chunk in ids.chunks(IN_LIST) {
        let sql = format!(
            "UPDATE accounts SET username = '~roster~' || id WHERE id IN {}",
            placeholders(1, chunk.len(), 0)
        );
        let mut query = sqlx::query(&sql);
        for id in chunk {
            query = query.bind(*id);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

pub async fn insert_enrollments(
    conn: &mut AnyConnection,
    brin: &str,
    student_ids: &[&str],
    now: i64,
) -> DbResult<()> {
    for chunk in student_ids.chunks(rows_per_insert(3)) {
        let sql = format!(
            "INSERT INTO enrollments (student_id, school_brin, starts_at) VALUES {}",
            placeholders(chunk.len(), 3, 0)
        );
        let mut query = sqlx::query(&sql);
        for id in chunk {
            query = query.bind(*id).bind(brin).bind(now);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Enroll again students who had left: the enrollment starts now. Their earlier grants are
/// revoked in the same step, so the consent given before they left does not come back.
pub async fn reenroll(
    conn: &mut AnyConnection,
    brin: &str,
    student_ids: &[&str],
    now: i64,
) -> DbResult<()> {
    for chunk in student_ids.chunks(IN_LIST) {
        let list = placeholders(1, chunk.len(), 2);
        let sql = format!(
            "UPDATE enrollments SET starts_at = $1, ends_at = NULL \
             WHERE school_brin = $2 AND student_id IN {list}"
        );
        let mut query = sqlx::query(&sql).bind(now).bind(brin);
        for id in chunk {
            query = query.bind(*id);
        }
        query.execute(&mut *conn).await?;
    }
    revoke_grants_of(conn, student_ids, now).await
}

/// Students who have (or had) active grants, among `student_ids`.
pub async fn revoke_grants_of(
    conn: &mut AnyConnection,
    student_ids: &[&str],
    now: i64,
) -> DbResult<()> {
    for chunk in student_ids.chunks(IN_LIST) {
        let list = placeholders(1, chunk.len(), 1);
        let sql = format!(
            "UPDATE grants SET revoked_at = $1 WHERE revoked_at IS NULL AND student_id IN {list}"
        );
        let mut query = sqlx::query(&sql).bind(now);
        for id in chunk {
            query = query.bind(*id);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// The students leave the school now: the same as the admin API's leave endpoint.
pub async fn end_enrollments(
    conn: &mut AnyConnection,
    brin: &str,
    student_ids: &[&str],
    now: i64,
) -> DbResult<()> {
    for chunk in student_ids.chunks(IN_LIST) {
        let list = placeholders(1, chunk.len(), 2);
        let sql = format!(
            "UPDATE enrollments SET ends_at = $1 WHERE school_brin = $2 \
             AND (ends_at IS NULL OR ends_at > $1) AND student_id IN {list}"
        );
        let mut query = sqlx::query(&sql).bind(now).bind(brin);
        for id in chunk {
            query = query.bind(*id);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

pub async fn insert_guardianships(
    conn: &mut AnyConnection,
    pairs: &[(&str, &str)],
    now: i64,
) -> DbResult<()> {
    for chunk in pairs.chunks(rows_per_insert(3)) {
        let sql = format!(
            "INSERT INTO guardianships (parent_id, student_id, created_at) VALUES {}",
            placeholders(chunk.len(), 3, 0)
        );
        let mut query = sqlx::query(&sql);
        for (parent, student) in chunk {
            query = query.bind(*parent).bind(*student).bind(now);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

pub async fn delete_guardianships(
    conn: &mut AnyConnection,
    pairs: &[(&str, &str)],
) -> DbResult<()> {
    for chunk in pairs.chunks(IN_LIST / 2) {
        let condition = (0..chunk.len())
            .map(|i| {
                format!(
                    "(parent_id = ${} AND student_id = ${})",
                    2 * i + 1,
                    2 * i + 2
                )
            })
            .collect::<Vec<_>>()
            .join(" OR ");
        let sql = format!("DELETE FROM guardianships WHERE {condition}");
        let mut query = sqlx::query(&sql);
        for (parent, student) in chunk {
            query = query.bind(*parent).bind(*student);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_number_rows_after_the_offset() {
        assert_eq!(super::placeholders(2, 2, 1), "($2, $3), ($4, $5)");
        assert_eq!(super::placeholders(1, 3, 0), "($1, $2, $3)");
    }
}
