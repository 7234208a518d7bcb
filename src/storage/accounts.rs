//! Schools, accounts, guardianship and enrollment.

use chrono::{DateTime, NaiveDate, Utc};

use super::{new_id, ts, DbResult, Store};
use crate::domain::account::{PersonName, Role};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct School {
    pub brin: String,
    pub name: String,
}

#[derive(Clone, sqlx::FromRow)]
pub struct Account {
    pub id: String,
    pub school_brin: String,
    pub username: String,
    pub role: String,
    pub password_hash: String,
    pub given_name: String,
    pub tussenvoegsel: Option<String>,
    pub family_name: String,
    pub birth_date: Option<String>,
    /// 0 when the school's SIS disabled the account (OneRoster `enabledUser=false`).
    pub login_enabled: i64,
}

// Personal data and the password hash stay out of Debug output (and so out of logs).
impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("id", &self.id)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl Account {
    pub fn role(&self) -> Option<Role> {
        Role::parse(&self.role)
    }

    pub fn name(&self) -> PersonName {
        PersonName {
            given_name: self.given_name.clone(),
            tussenvoegsel: self.tussenvoegsel.clone(),
            family_name: self.family_name.clone(),
        }
    }

    pub fn birth_date(&self) -> Option<NaiveDate> {
        self.birth_date
            .as_deref()
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
    }

    /// Whether a password can log this account in at all: not before activation (no
    /// password yet) and not while the school's SIS has disabled the account.
    pub fn may_log_in(&self) -> bool {
        self.login_enabled != 0 && !self.password_hash.is_empty()
    }
}

/// What is needed to register an account.
pub struct NewAccount<'a> {
    pub school_brin: &'a str,
    pub username: &'a str,
    pub role: Role,
    pub password_hash: &'a str,
    pub name: PersonName,
    pub birth_date: Option<NaiveDate>,
}

const ACCOUNT_COLUMNS: &str = "id, school_brin, username, role, password_hash, given_name, \
                               tussenvoegsel, family_name, birth_date, login_enabled";

impl Store {
    pub async fn insert_school(&self, brin: &str, name: &str) -> DbResult<()> {
        sqlx::query("INSERT INTO schools (brin, name) VALUES ($1, $2)")
            .bind(brin)
            .bind(name)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn list_schools(&self) -> DbResult<Vec<School>> {
        sqlx::query_as("SELECT brin, name FROM schools ORDER BY name")
            .fetch_all(self.pool())
            .await
    }

    pub async fn get_school(&self, brin: &str) -> DbResult<Option<School>> {
        sqlx::query_as("SELECT brin, name FROM schools WHERE brin = $1")
            .bind(brin)
            .fetch_optional(self.pool())
            .await
    }

    pub async fn insert_account(
        &self,
        new: NewAccount<'_>,
        now: DateTime<Utc>,
    ) -> DbResult<String> {
        let id = new_id();
        sqlx::query(
            "INSERT INTO accounts (id, school_brin, username, role, password_hash, given_name, \
             tussenvoegsel, family_name, birth_date, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&id)
        .bind(new.school_brin)
        .bind(new.username)
        .bind(new.role.as_str())
        .bind(new.password_hash)
        .bind(&new.name.given_name)
        .bind(new.name.tussenvoegsel.as_deref())
        .bind(&new.name.family_name)
        .bind(new.birth_date.map(|d| d.format("%Y-%m-%d").to_string()))
        .bind(ts(now))
        .execute(self.pool())
        .await?;
        Ok(id)
    }

    pub async fn find_account_by_login(
        &self,
        school_brin: &str,
        username: &str,
    ) -> DbResult<Option<Account>> {
        sqlx::query_as(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE school_brin = $1 AND username = $2"
        ))
        .bind(school_brin)
        .bind(username)
        .fetch_optional(self.pool())
        .await
    }

    /// Supervisors with this username at any school (the console's login without a school).
    pub async fn find_supervisors_named(&self, username: &str) -> DbResult<Vec<Account>> {
        sqlx::query_as(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE role = 'supervisor' AND username = $1 \
             LIMIT 2"
        ))
        .bind(username)
        .fetch_all(self.pool())
        .await
    }

    /// Students and parents of a school whose username or name contains `query` (any case),
    /// for the school console's search; at most `limit`.
    pub async fn search_people(
        &self,
        school_brin: &str,
        query: &str,
        limit: i64,
    ) -> DbResult<Vec<Account>> {
        // LIKE's own wildcards in what was typed are taken literally.
        let escaped = query
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        sqlx::query_as(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE school_brin = $1 \
             AND role IN ('student', 'parent') AND (LOWER(username) LIKE $2 ESCAPE '\\' \
             OR LOWER(given_name || ' ' || COALESCE(tussenvoegsel || ' ', '') || family_name) \
             LIKE $2 ESCAPE '\\') ORDER BY role DESC, family_name, given_name, username LIMIT $3"
        ))
        .bind(school_brin)
        .bind(format!("%{escaped}%"))
        .bind(limit)
        .fetch_all(self.pool())
        .await
    }

    /// The parents linked to a student.
    pub async fn guardians_of(&self, student_id: &str) -> DbResult<Vec<Account>> {
        sqlx::query_as(&format!(
            "SELECT {} FROM accounts a JOIN guardianships g ON g.parent_id = a.id \
             WHERE g.student_id = $1 ORDER BY a.family_name, a.given_name",
            ACCOUNT_COLUMNS
                .split(", ")
                .map(|c| format!("a.{}", c.trim()))
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .bind(student_id)
        .fetch_all(self.pool())
        .await
    }

    pub async fn get_account(&self, id: &str) -> DbResult<Option<Account>> {
        sqlx::query_as(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await
    }

    /// The accounts with these ids, in no particular order (read [`super::MAX_IN_LIST`] at a
    /// time).
    pub async fn get_accounts(&self, ids: &[&str]) -> DbResult<Vec<Account>> {
        let mut accounts = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(super::MAX_IN_LIST) {
            let sql = format!(
                "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id IN ({})",
                super::placeholders(1, chunk.len())
            );
            let mut query = sqlx::query_as(&sql);
            for id in chunk {
                query = query.bind(*id);
            }
            accounts.extend(query.fetch_all(self.pool()).await?);
        }
        Ok(accounts)
    }

    /// Every guardianship of these students (at most [`super::MAX_IN_LIST`]), as
    /// `(parent_id, student_id)`.
    pub async fn guardianships_of(&self, student_ids: &[&str]) -> DbResult<Vec<(String, String)>> {
        let sql = format!(
            "SELECT parent_id, student_id FROM guardianships WHERE student_id IN ({})",
            super::placeholders(1, student_ids.len())
        );
        let mut query = sqlx::query_as(&sql);
        for id in student_ids {
            query = query.bind(*id);
        }
        query.fetch_all(self.pool()).await
    }

    pub async fn add_guardianship(
        &self,
        parent_id: &str,
        student_id: &str,
        now: DateTime<Utc>,
    ) -> DbResult<()> {
        sqlx::query(
            "INSERT INTO guardianships (parent_id, student_id, created_at) VALUES ($1, $2, $3)",
        )
        .bind(parent_id)
        .bind(student_id)
        .bind(ts(now))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The children linked to a parent, in name order.
    pub async fn children_of(&self, parent_id: &str) -> DbResult<Vec<Account>> {
        sqlx::query_as(&format!(
            "SELECT {} FROM accounts a JOIN guardianships g ON g.student_id = a.id \
             WHERE g.parent_id = $1 ORDER BY a.given_name, a.family_name",
            ACCOUNT_COLUMNS
                .split(", ")
                .map(|c| format!("a.{}", c.trim()))
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .bind(parent_id)
        .fetch_all(self.pool())
        .await
    }

    pub async fn is_guardian(&self, parent_id: &str, student_id: &str) -> DbResult<bool> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT 1 FROM guardianships WHERE parent_id = $1 AND student_id = $2")
                .bind(parent_id)
                .bind(student_id)
                .fetch_optional(self.pool())
                .await?;
        Ok(row.is_some())
    }

    pub async fn enroll(
        &self,
        student_id: &str,
        brin: &str,
        starts_at: DateTime<Utc>,
    ) -> DbResult<()> {
        sqlx::query(
            "INSERT INTO enrollments (student_id, school_brin, starts_at, ends_at) \
             VALUES ($1, $2, $3, NULL)",
        )
        .bind(student_id)
        .bind(brin)
        .bind(ts(starts_at))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The school where the student is enrolled at `now`, if any.
    pub async fn active_enrollment(
        &self,
        student_id: &str,
        now: DateTime<Utc>,
    ) -> DbResult<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT school_brin FROM enrollments WHERE student_id = $1 AND starts_at <= $2 \
             AND (ends_at IS NULL OR ends_at > $2) ORDER BY starts_at DESC LIMIT 1",
        )
        .bind(student_id)
        .bind(ts(now))
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|(brin,)| brin))
    }
}

/// One enrollment of a student at a school; `ends_at` is set when the student leaves. The
/// type is the policy's (`domain::policy::live`), so the cache holds it as the rules read it.
pub use crate::domain::policy::live::Enrollment;

impl Store {
    /// Every enrollment of these students (at most [`super::MAX_IN_LIST`]), as
    /// `(student_id, enrollment)`.
    pub async fn enrollments_of_many(
        &self,
        student_ids: &[&str],
    ) -> DbResult<Vec<(String, Enrollment)>> {
        let sql = format!(
            "SELECT student_id, school_brin, starts_at, ends_at FROM enrollments \
             WHERE student_id IN ({})",
            super::placeholders(1, student_ids.len())
        );
        let mut query = sqlx::query_as(&sql);
        for id in student_ids {
            query = query.bind(*id);
        }
        let rows: Vec<(String, String, i64, Option<i64>)> = query.fetch_all(self.pool()).await?;
        Ok(rows
            .into_iter()
            .map(|(student_id, school_brin, starts_at, ends_at)| {
                let enrollment = Enrollment {
                    school_brin: school_brin.into(),
                    starts_at,
                    ends_at,
                };
                (student_id, enrollment)
            })
            .collect())
    }

    pub async fn enrollments_of(&self, student_id: &str) -> DbResult<Vec<Enrollment>> {
        let rows: Vec<(String, i64, Option<i64>)> = sqlx::query_as(
            "SELECT school_brin, starts_at, ends_at FROM enrollments WHERE student_id = $1",
        )
        .bind(student_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(school_brin, starts_at, ends_at)| Enrollment {
                school_brin: school_brin.into(),
                starts_at,
                ends_at,
            })
            .collect())
    }

    /// The student leaves the school now. Returns false when there was no open enrollment.
    pub async fn end_enrollment(
        &self,
        student_id: &str,
        brin: &str,
        now: DateTime<Utc>,
    ) -> DbResult<bool> {
        let done = sqlx::query(
            "UPDATE enrollments SET ends_at = $3 WHERE student_id = $1 AND school_brin = $2 \
             AND (ends_at IS NULL OR ends_at > $3)",
        )
        .bind(student_id)
        .bind(brin)
        .bind(ts(now))
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn remove_guardianship(&self, parent_id: &str, student_id: &str) -> DbResult<bool> {
        let done =
            sqlx::query("DELETE FROM guardianships WHERE parent_id = $1 AND student_id = $2")
                .bind(parent_id)
                .bind(student_id)
                .execute(self.pool())
                .await?;
        Ok(done.rows_affected() > 0)
    }
}

impl Store {
    /// The demo's published password for every student and parent of a demo school.
    pub async fn set_passwords_of_school(
        &self,
        school_brin: &str,
        password_hash: &str,
    ) -> DbResult<()> {
        sqlx::query(
            "UPDATE accounts SET password_hash = $2 WHERE school_brin = $1 \
             AND role IN ('student', 'parent')",
        )
        .bind(school_brin)
        .bind(password_hash)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
