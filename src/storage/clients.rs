//! OAuth clients (partners and others), their accreditation, and each school's link to them.

use chrono::{DateTime, Utc};

use super::{from_ts, ts, DbResult, Store};
use crate::domain::partner::{Accreditation, AccreditationStatus};
use crate::domain::scope::ScopeSet;

#[derive(Clone, sqlx::FromRow)]
pub struct Client {
    pub client_id: String,
    pub display_name: String,
    pub kind: String,
    pub redirect_uris: String,
    pub allowed_scopes: String,
    pub secret_hash: Option<String>,
    pub auth_methods: String,
    pub accreditation_status: String,
    pub accredited_from: Option<i64>,
    pub accredited_until: Option<i64>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("client_id", &self.client_id)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// RFC 6749 §3.1.2.3 / RFC 9700 §4.1.3: redirect URIs are compared by exact string match.
    pub fn has_redirect_uri(&self, uri: &str) -> bool {
        self.redirect_uris
            .lines()
            .any(|registered| registered == uri)
    }

    pub fn allowed_scopes(&self) -> ScopeSet {
        ScopeSet::parse_lossy(&self.allowed_scopes)
    }

    pub fn allows_auth_method(&self, method: &str) -> bool {
        self.auth_methods.split(' ').any(|m| m == method)
    }

    pub fn accreditation(&self) -> Accreditation {
        Accreditation {
            status: AccreditationStatus::parse(&self.accreditation_status)
                .unwrap_or(AccreditationStatus::Pending),
            valid_from: self.accredited_from.map(from_ts),
            valid_until: self.accredited_until.map(from_ts),
        }
    }
}

pub struct NewClient<'a> {
    pub client_id: &'a str,
    pub display_name: &'a str,
    pub kind: &'a str,
    pub redirect_uris: &'a [&'a str],
    pub allowed_scopes: &'a str,
    pub secret_hash: Option<&'a str>,
    pub auth_methods: &'a str,
    pub accreditation: Accreditation,
}

impl Store {
    pub async fn insert_client(&self, new: NewClient<'_>, now: DateTime<Utc>) -> DbResult<()> {
        sqlx::query(
            "INSERT INTO clients (client_id, display_name, kind, redirect_uris, allowed_scopes, \
             secret_hash, auth_methods, accreditation_status, accredited_from, accredited_until, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(new.client_id)
        .bind(new.display_name)
        .bind(new.kind)
        .bind(new.redirect_uris.join("\n"))
        .bind(new.allowed_scopes)
        .bind(new.secret_hash)
        .bind(new.auth_methods)
        .bind(new.accreditation.status.as_str())
        .bind(new.accreditation.valid_from.map(ts))
        .bind(new.accreditation.valid_until.map(ts))
        .bind(ts(now))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn get_client(&self, client_id: &str) -> DbResult<Option<Client>> {
        sqlx::query_as(
            "SELECT client_id, display_name, kind, redirect_uris, allowed_scopes, secret_hash, \
             auth_methods, accreditation_status, accredited_from, accredited_until \
             FROM clients WHERE client_id = $1",
        )
        .bind(client_id)
        .fetch_optional(self.pool())
        .await
    }

    pub async fn set_accreditation(&self, client_id: &str, acc: &Accreditation) -> DbResult<bool> {
        let done = sqlx::query(
            "UPDATE clients SET accreditation_status = $2, accredited_from = $3, \
             accredited_until = $4 WHERE client_id = $1",
        )
        .bind(client_id)
        .bind(acc.status.as_str())
        .bind(acc.valid_from.map(ts))
        .bind(acc.valid_until.map(ts))
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Links start closed: no row is a closed link.
    pub async fn link_is_open(&self, school_brin: &str, client_id: &str) -> DbResult<bool> {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT is_open FROM school_links WHERE school_brin = $1 AND client_id = $2",
        )
        .bind(school_brin)
        .bind(client_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(matches!(row, Some((1,))))
    }

    pub async fn set_link(
        &self,
        school_brin: &str,
        client_id: &str,
        open: bool,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> DbResult<()> {
        sqlx::query(
            "INSERT INTO school_links (school_brin, client_id, is_open, reason, changed_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (school_brin, client_id) DO UPDATE \
             SET is_open = excluded.is_open, reason = excluded.reason, changed_at = excluded.changed_at",
        )
        .bind(school_brin)
        .bind(client_id)
        .bind(i64::from(open))
        .bind(reason)
        .bind(ts(now))
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
