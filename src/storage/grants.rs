//! Grants: a student's (or their parent's) consent to one partner for a set of scopes.

use chrono::{DateTime, Utc};

use super::{new_id, ts, DbResult, Store};
use crate::domain::policy::consent_may_replace;
use crate::domain::scope::ScopeSet;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Grant {
    pub id: String,
    pub student_id: String,
    pub client_id: String,
    pub scopes: String,
    pub given_by: String,
    pub given_by_role: String,
    pub granted_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

impl Grant {
    pub fn scopes(&self) -> ScopeSet {
        ScopeSet::parse_lossy(&self.scopes)
    }

    pub fn is_active_at(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at > ts(now)
    }

    /// The parent who acted, when the grant was given by a parent (OIDC `act` / `represents`).
    /// (`self` grants of first-party apps and the student's own grants have no actor.)
    pub fn actor(&self) -> Option<&str> {
        (self.given_by_role == "parent").then_some(self.given_by.as_str())
    }
}

/// A consent given again renews the grant's validity, but a renewal by less than this is not
/// written: an unchanged consent then writes nothing at all.
const RENEWAL_STEP_SECS: i64 = 86_400;

const GRANT_COLUMNS: &str = "id, student_id, client_id, scopes, given_by, given_by_role, \
                             granted_at, expires_at, revoked_at";

/// Who gives consent: the student personally, or a parent acting for the student.
#[derive(Clone, Copy)]
pub struct Consent<'a> {
    pub student_id: &'a str,
    pub client_id: &'a str,
    pub scopes: &'a ScopeSet,
    pub given_by: &'a str,
    pub given_by_role: &'a str,
    pub expires_at: DateTime<Utc>,
}

/// What recording a consent did.
#[derive(Debug)]
pub enum Recorded {
    /// The grant as it is now, and whether anything about it changed.
    Grant(Grant, bool),
    /// The active grant is the student's own decision, which a parent's consent never
    /// replaces (UAVG art. 5: from 16 the student decides). Nothing was written.
    StudentDecided,
}

impl Store {
    pub async fn active_grant(
        &self,
        student_id: &str,
        client_id: &str,
        now: DateTime<Utc>,
    ) -> DbResult<Option<Grant>> {
        sqlx::query_as(&format!(
            "SELECT {GRANT_COLUMNS} FROM grants WHERE student_id = $1 AND client_id = $2 \
             AND revoked_at IS NULL AND expires_at > $3"
        ))
        .bind(student_id)
        .bind(client_id)
        .bind(ts(now))
        .fetch_optional(self.pool())
        .await
    }

    pub async fn get_grant(&self, id: &str) -> DbResult<Option<Grant>> {
        sqlx::query_as(&format!("SELECT {GRANT_COLUMNS} FROM grants WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await
    }

    /// The grants with these ids (at most [`super::MAX_IN_LIST`]), in no particular order.
    pub async fn get_grants(&self, ids: &[&str]) -> DbResult<Vec<Grant>> {
        let sql = format!(
            "SELECT {GRANT_COLUMNS} FROM grants WHERE id IN ({})",
            super::placeholders(1, ids.len())
        );
        let mut query = sqlx::query_as(&sql);
        for id in ids {
            query = query.bind(*id);
        }
        query.fetch_all(self.pool()).await
    }

    /// Record consent. An active grant is extended with the new scopes (consent is cumulative
    /// until withdrawn); an expired one is closed and a new grant starts. A parent's consent
    /// never rewrites a grant the student gave personally.
    pub async fn record_consent(
        &self,
        consent: Consent<'_>,
        now: DateTime<Utc>,
    ) -> DbResult<Recorded> {
        // Optimistic concurrency: a concurrent withdrawal or first consent makes an attempt
        // step back and re-read, so a withdrawn scope is never written back.
        for _ in 0..4 {
            if let Some(done) = self.try_record_consent(consent, now).await? {
                return Ok(done);
            }
        }
        Err(sqlx::Error::Protocol(
            "consent kept conflicting with concurrent changes".into(),
        ))
    }

    async fn try_record_consent(
        &self,
        consent: Consent<'_>,
        now: DateTime<Utc>,
    ) -> DbResult<Option<Recorded>> {
        let mut tx = self.pool().begin().await?;
        // Expired but never revoked grants would block the one-active-grant index.
        sqlx::query(
            "UPDATE grants SET revoked_at = expires_at WHERE student_id = $1 AND client_id = $2 \
             AND revoked_at IS NULL AND expires_at <= $3",
        )
        .bind(consent.student_id)
        .bind(consent.client_id)
        .bind(ts(now))
        .execute(&mut *tx)
        .await?;
        let existing: Option<Grant> = sqlx::query_as(&format!(
            "SELECT {GRANT_COLUMNS} FROM grants WHERE student_id = $1 AND client_id = $2 \
             AND revoked_at IS NULL"
        ))
        .bind(consent.student_id)
        .bind(consent.client_id)
        .fetch_optional(&mut *tx)
        .await?;
        let mut changed = false;
        let id = match existing {
            Some(grant) if !consent_may_replace(&grant.given_by_role, consent.given_by_role) => {
                tx.rollback().await?;
                return Ok(Some(Recorded::StudentDecided));
            }
            Some(grant) => {
                let scopes = grant.scopes().union(consent.scopes);
                changed = scopes != grant.scopes() || grant.given_by != consent.given_by;
                // The same consent again (the school's own app records one at every login):
                // nothing to write, so nothing logged and no cache anywhere disturbed. Only a
                // renewal that moves the expiry by a day or more is worth a write.
                let renews = ts(consent.expires_at) - grant.expires_at >= RENEWAL_STEP_SECS;
                if !changed && grant.given_by_role == consent.given_by_role && !renews {
                    tx.commit().await?;
                    return Ok(Some(Recorded::Grant(grant, false)));
                }
                let updated = sqlx::query(
                    "UPDATE grants SET scopes = $2, given_by = $3, given_by_role = $4, \
                     granted_at = $5, expires_at = $6 \
                     WHERE id = $1 AND scopes = $7 AND given_by_role = $8 AND revoked_at IS NULL",
                )
                .bind(&grant.id)
                .bind(scopes.to_string())
                .bind(consent.given_by)
                .bind(consent.given_by_role)
                .bind(ts(now))
                .bind(ts(consent.expires_at))
                .bind(&grant.scopes)
                .bind(&grant.given_by_role)
                .execute(&mut *tx)
                .await?;
                // Zero rows: a concurrent consent or withdrawal got in between (perhaps the
                // student's own); step back and decide again on what is there now.
                if updated.rows_affected() != 1 {
                    tx.rollback().await?;
                    return Ok(None);
                }
                grant.id
            }
            None => {
                let id = new_id();
                let inserted = sqlx::query(&format!(
                    "INSERT INTO grants ({GRANT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL)"
                ))
                .bind(&id)
                .bind(consent.student_id)
                .bind(consent.client_id)
                .bind(consent.scopes.to_string())
                .bind(consent.given_by)
                .bind(consent.given_by_role)
                .bind(ts(now))
                .bind(ts(consent.expires_at))
                .execute(&mut *tx)
                .await;
                match inserted {
                    Ok(_) => id,
                    // Another first consent won the one-active-grant index: extend that one.
                    Err(e)
                        if e.as_database_error()
                            .is_some_and(|d| d.is_unique_violation()) =>
                    {
                        tx.rollback().await?;
                        return Ok(None);
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        let grant: Grant =
            sqlx::query_as(&format!("SELECT {GRANT_COLUMNS} FROM grants WHERE id = $1"))
                .bind(&id)
                .fetch_one(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(Some(Recorded::Grant(grant, changed)))
    }
}

impl Store {
    /// Withdraw consent: wholly (and the grant's tokens die with it), or for some scopes.
    /// Returns the grant as it is afterwards, or `None` if there was no active grant.
    pub async fn withdraw_grant(
        &self,
        grant_id: &str,
        scopes: Option<&ScopeSet>,
        now: DateTime<Utc>,
    ) -> DbResult<Option<Grant>> {
        for _ in 0..4 {
            if let Some(done) = self.try_withdraw_grant(grant_id, scopes, now).await? {
                return Ok(done);
            }
        }
        Err(sqlx::Error::Protocol(
            "withdrawal kept conflicting with concurrent changes".into(),
        ))
    }

    /// One attempt; `None` when a concurrent change to the grant's scopes got in between.
    async fn try_withdraw_grant(
        &self,
        grant_id: &str,
        scopes: Option<&ScopeSet>,
        now: DateTime<Utc>,
    ) -> DbResult<Option<Option<Grant>>> {
        let Some(grant) = self.get_grant(grant_id).await? else {
            return Ok(Some(None));
        };
        if !grant.is_active_at(now) {
            return Ok(Some(None));
        }
        let remaining = match scopes {
            Some(withdrawn) => grant
                .scopes()
                .iter()
                .filter(|s| !withdrawn.contains(*s))
                .collect::<ScopeSet>(),
            None => ScopeSet::default(),
        };
        let mut tx = self.pool().begin().await?;
        let updated = if remaining.is_empty() {
            sqlx::query("UPDATE grants SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                .bind(grant_id)
                .bind(ts(now))
                .execute(&mut *tx)
                .await?
        } else {
            sqlx::query("UPDATE grants SET scopes = $2 WHERE id = $1 AND scopes = $3 AND revoked_at IS NULL")
                .bind(grant_id)
                .bind(remaining.to_string())
                .bind(&grant.scopes)
                .execute(&mut *tx)
                .await?
        };
        if updated.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(None);
        }
        if remaining.is_empty() {
            for table in ["access_tokens", "refresh_tokens"] {
                sqlx::query(&format!(
                    "UPDATE {table} SET revoked_at = $2 WHERE grant_id = $1 AND revoked_at IS NULL"
                ))
                .bind(grant_id)
                .bind(ts(now))
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(Some(self.get_grant(grant_id).await?))
    }
}

/// A grant as the person sees it on the account page.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct GrantView {
    pub id: String,
    pub client_id: String,
    pub client_name: String,
    pub scopes: String,
    pub given_by: String,
    pub given_by_role: String,
    pub granted_at: i64,
    pub expires_at: i64,
    /// When the partner last received a token under this grant.
    pub last_token_at: Option<i64>,
}

impl Store {
    /// Active grants about one student, for partners (not the school's own app).
    pub async fn grants_about(
        &self,
        student_id: &str,
        now: DateTime<Utc>,
    ) -> DbResult<Vec<GrantView>> {
        sqlx::query_as(
            "SELECT g.id, g.client_id, c.display_name AS client_name, g.scopes, g.given_by, g.given_by_role, \
             g.granted_at, g.expires_at, \
             (SELECT MAX(t.issued_at) FROM access_tokens t WHERE t.grant_id = g.id) AS last_token_at \
             FROM grants g JOIN clients c ON c.client_id = g.client_id \
             WHERE g.student_id = $1 AND g.revoked_at IS NULL AND g.expires_at > $2 AND c.kind = 'partner' \
             ORDER BY c.display_name",
        )
        .bind(student_id)
        .bind(ts(now))
        .fetch_all(self.pool())
        .await
    }
}

impl Store {
    /// A student of 18 confirms a consent a parent gave earlier: from now on it is the
    /// student's own (given by the student, at `now`). `false` when the grant is not an
    /// active parent's grant about this student (anymore).
    pub async fn confirm_grant(
        &self,
        grant_id: &str,
        student_id: &str,
        now: DateTime<Utc>,
    ) -> DbResult<bool> {
        let updated = sqlx::query(
            "UPDATE grants SET given_by = $2, given_by_role = 'student', granted_at = $3 \
             WHERE id = $1 AND student_id = $2 AND given_by_role = 'parent' \
             AND revoked_at IS NULL AND expires_at > $3",
        )
        .bind(grant_id)
        .bind(student_id)
        .bind(ts(now))
        .execute(self.pool())
        .await?;
        Ok(updated.rows_affected() == 1)
    }
}
