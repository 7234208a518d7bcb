//! The consoles' own rows: platform operators, second factors (TOTP secrets and recovery
//! codes) and console sessions. A console user is named by a subject string,
//! `account:<id>` for a school supervisor or `operator:<id>` for a platform operator.

use chrono::{DateTime, Utc};

use super::{new_id, ts, DbResult, Store};

#[derive(Clone, sqlx::FromRow)]
pub struct Operator {
    pub id: String,
    pub username: String,
    pub password_hash: Option<String>,
}

impl std::fmt::Debug for Operator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Operator")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, sqlx::FromRow)]
pub struct SecondFactor {
    pub secret: String,
    pub enrolled_at: Option<i64>,
    pub last_step: i64,
}

#[derive(Clone, sqlx::FromRow)]
pub struct ConsoleSession {
    pub id: String,
    pub csrf_token: String,
    pub subject: String,
    pub stage: String,
    pub expires_at: i64,
}

impl std::fmt::Debug for ConsoleSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleSession")
            .field("id", &self.id)
            .field("stage", &self.stage)
            .finish_non_exhaustive()
    }
}

pub const STAGE_SECOND_FACTOR: &str = "second_factor";
pub const STAGE_COMPLETE: &str = "complete";

impl Store {
    /// A new operator without a password, to be activated with the code whose hash is given.
    pub async fn insert_operator(
        &self,
        username: &str,
        activation_hash: &str,
        activation_expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> DbResult<String> {
        let id = new_id();
        sqlx::query(
            "INSERT INTO operators (id, username, activation_hash, activation_expires_at, \
             created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&id)
        .bind(username)
        .bind(activation_hash)
        .bind(ts(activation_expires_at))
        .bind(ts(now))
        .execute(self.pool())
        .await?;
        Ok(id)
    }

    /// An operator with a known password (the demo's).
    pub async fn insert_active_operator(
        &self,
        username: &str,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> DbResult<String> {
        let id = new_id();
        sqlx::query(
            "INSERT INTO operators (id, username, password_hash, created_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(&id)
        .bind(username)
        .bind(password_hash)
        .bind(ts(now))
        .execute(self.pool())
        .await?;
        Ok(id)
    }

    pub async fn find_operator(&self, username: &str) -> DbResult<Option<Operator>> {
        sqlx::query_as("SELECT id, username, password_hash FROM operators WHERE username = $1")
            .bind(username)
            .fetch_optional(self.pool())
            .await
    }

    pub async fn get_operator(&self, id: &str) -> DbResult<Option<Operator>> {
        sqlx::query_as("SELECT id, username, password_hash FROM operators WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await
    }

    /// Use an activation code (by hash) once: set the password and forget the code.
    pub async fn activate_operator(
        &self,
        username: &str,
        activation_hash: &str,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> DbResult<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as(
            "UPDATE operators SET password_hash = $1, activation_hash = NULL, \
             activation_expires_at = NULL \
             WHERE username = $2 AND activation_hash = $3 AND activation_expires_at > $4 \
             RETURNING id",
        )
        .bind(password_hash)
        .bind(username)
        .bind(activation_hash)
        .bind(ts(now))
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|(id,)| id))
    }

    pub async fn second_factor(&self, subject: &str) -> DbResult<Option<SecondFactor>> {
        sqlx::query_as(
            "SELECT secret, enrolled_at, last_step FROM second_factors WHERE subject = $1",
        )
        .bind(subject)
        .fetch_optional(self.pool())
        .await
    }

    /// A secret waiting for its first code; replaces an earlier pending one, never an
    /// enrolled one.
    pub async fn begin_enrolment(
        &self,
        subject: &str,
        secret: &str,
        now: DateTime<Utc>,
    ) -> DbResult<()> {
        sqlx::query("DELETE FROM second_factors WHERE subject = $1 AND enrolled_at IS NULL")
            .bind(subject)
            .execute(self.pool())
            .await?;
        sqlx::query(
            "INSERT INTO second_factors (subject, secret, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (subject) DO NOTHING",
        )
        .bind(subject)
        .bind(secret)
        .bind(ts(now))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// An enrolled secret straight away (the demo's fixed one).
    pub async fn enrol_fixed(
        &self,
        subject: &str,
        secret: &str,
        now: DateTime<Utc>,
    ) -> DbResult<()> {
        sqlx::query(
            "INSERT INTO second_factors (subject, secret, enrolled_at, created_at) \
             VALUES ($1, $2, $3, $3)",
        )
        .bind(subject)
        .bind(secret)
        .bind(ts(now))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Accept time step `step` if it is newer than every step accepted before (atomic: two
    /// parallel submissions of one code cannot both win). Completes a pending enrolment.
    pub async fn accept_step(
        &self,
        subject: &str,
        step: i64,
        now: DateTime<Utc>,
    ) -> DbResult<bool> {
        let done = sqlx::query(
            "UPDATE second_factors SET last_step = $1, enrolled_at = COALESCE(enrolled_at, $2) \
             WHERE subject = $3 AND last_step < $1",
        )
        .bind(step)
        .bind(ts(now))
        .bind(subject)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(done == 1)
    }

    /// Replace the recovery codes (hashes) of `subject`.
    pub async fn replace_recovery_codes(&self, subject: &str, hashes: &[String]) -> DbResult<()> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM recovery_codes WHERE subject = $1")
            .bind(subject)
            .execute(&mut *tx)
            .await?;
        for hash in hashes {
            sqlx::query("INSERT INTO recovery_codes (subject, code_hash) VALUES ($1, $2)")
                .bind(subject)
                .bind(hash)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    }

    /// Use a recovery code once; true when it was valid and unused.
    pub async fn use_recovery_code(
        &self,
        subject: &str,
        hash: &str,
        now: DateTime<Utc>,
    ) -> DbResult<bool> {
        let done = sqlx::query(
            "UPDATE recovery_codes SET used_at = $1 \
             WHERE subject = $2 AND code_hash = $3 AND used_at IS NULL",
        )
        .bind(ts(now))
        .bind(subject)
        .bind(hash)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(done == 1)
    }

    pub async fn unused_recovery_codes(&self, subject: &str) -> DbResult<i64> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM recovery_codes WHERE subject = $1 AND used_at IS NULL",
        )
        .bind(subject)
        .fetch_one(self.pool())
        .await?;
        Ok(n)
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn create_console_session(
        &self,
        id: &str,
        secret_hash: &str,
        csrf_token: &str,
        subject: &str,
        stage: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> DbResult<()> {
        sqlx::query(
            "INSERT INTO console_sessions (id, secret_hash, csrf_token, subject, stage, \
             created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id)
        .bind(secret_hash)
        .bind(csrf_token)
        .bind(subject)
        .bind(stage)
        .bind(ts(now))
        .bind(ts(expires_at))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn find_console_session(
        &self,
        secret_hash: &str,
        now: DateTime<Utc>,
    ) -> DbResult<Option<ConsoleSession>> {
        sqlx::query_as(
            "SELECT id, csrf_token, subject, stage, expires_at FROM console_sessions \
             WHERE secret_hash = $1 AND expires_at > $2",
        )
        .bind(secret_hash)
        .bind(ts(now))
        .fetch_optional(self.pool())
        .await
    }

    pub async fn delete_console_session(&self, id: &str) -> DbResult<()> {
        sqlx::query("DELETE FROM console_sessions WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

impl Store {
    /// Keep an uploaded roster zip until the supervisor confirms it.
    pub async fn store_roster_upload(
        &self,
        school_brin: &str,
        uploaded_by: &str,
        archive: &[u8],
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> DbResult<String> {
        let id = new_id();
        sqlx::query(
            "INSERT INTO roster_uploads (id, school_brin, uploaded_by, archive, created_at, \
             expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&id)
        .bind(school_brin)
        .bind(uploaded_by)
        .bind(archive.to_vec())
        .bind(ts(now))
        .bind(ts(expires_at))
        .execute(self.pool())
        .await?;
        Ok(id)
    }

    /// Take an upload (once): the archive, if it is this school's and not expired.
    pub async fn take_roster_upload(
        &self,
        school_brin: &str,
        id: &str,
        now: DateTime<Utc>,
    ) -> DbResult<Option<Vec<u8>>> {
        let row: Option<(Vec<u8>,)> = sqlx::query_as(
            "SELECT archive FROM roster_uploads WHERE id = $1 AND school_brin = $2 \
             AND expires_at > $3",
        )
        .bind(id)
        .bind(school_brin)
        .bind(ts(now))
        .fetch_optional(self.pool())
        .await?;
        sqlx::query("DELETE FROM roster_uploads WHERE id = $1 AND school_brin = $2")
            .bind(id)
            .bind(school_brin)
            .execute(self.pool())
            .await?;
        Ok(row.map(|(archive,)| archive))
    }
}
