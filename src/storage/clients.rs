//! OAuth clients (partners and others), their accreditation, and each school's link to them.

use chrono::{DateTime, Utc};

use sqlx::AnyConnection;

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
    /// Contact addresses of a partner, one per line.
    pub contacts: String,
    /// 0 once deactivated (a partner with grants is never deleted).
    pub active: i64,
    /// The secret before the last rotation, accepted until `previous_secret_expires_at`.
    pub previous_secret_hash: Option<String>,
    pub previous_secret_expires_at: Option<i64>,
    pub created_at: i64,
    /// 1: authorization requests only pushed first (RFC 9126 `require_pushed_authorization_requests`).
    pub require_par: i64,
    /// Public keys for `private_key_jwt` (a JWK set), or where the client publishes them.
    pub jwks: Option<String>,
    pub jwks_uri: Option<String>,
    /// Where the person may be sent after logging out (RP-Initiated Logout), one per line.
    pub post_logout_redirect_uris: String,
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
    /// Exact match, as for redirect URIs (RP-Initiated Logout 1.0 §3).
    pub fn has_post_logout_redirect_uri(&self, uri: &str) -> bool {
        self.post_logout_redirect_uris
            .lines()
            .any(|registered| registered == uri)
    }

    pub fn post_logout_redirect_uri_list(&self) -> Vec<String> {
        self.post_logout_redirect_uris
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    }

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

    pub fn is_active(&self) -> bool {
        self.active != 0
    }

    /// May this client take part in flows now: not deactivated, and accredited within its
    /// validity period (first-party and platform clients are accredited without end date).
    pub fn is_admitted_at(&self, now: DateTime<Utc>) -> bool {
        self.is_active() && self.accreditation().is_valid_at(now)
    }

    /// The secret hashes that authenticate this client at `now`: the current one, and during
    /// the grace period after a rotation the previous one.
    pub fn secret_hashes_at(&self, now: DateTime<Utc>) -> Vec<String> {
        let mut hashes: Vec<String> = self.secret_hash.iter().cloned().collect();
        if let (Some(previous), Some(until)) =
            (&self.previous_secret_hash, self.previous_secret_expires_at)
        {
            if ts(now) < until {
                hashes.push(previous.clone());
            }
        }
        hashes
    }

    pub fn redirect_uri_list(&self) -> Vec<String> {
        self.redirect_uris
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    }

    pub fn contact_list(&self) -> Vec<String> {
        self.contacts
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
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

const CLIENT_COLUMNS: &str = "client_id, display_name, kind, redirect_uris, allowed_scopes, \
     secret_hash, auth_methods, accreditation_status, accredited_from, accredited_until, \
     contacts, active, previous_secret_hash, previous_secret_expires_at, created_at, require_par, \
     jwks, jwks_uri, post_logout_redirect_uris";

/// What a registration or an update writes (contacts one per line, URIs one per line).
pub struct ClientRecord<'a> {
    pub client_id: &'a str,
    pub display_name: &'a str,
    pub kind: &'a str,
    pub redirect_uris: &'a [String],
    pub allowed_scopes: &'a str,
    pub auth_methods: &'a str,
    pub contacts: &'a [String],
}

/// Register a client inside a transaction.
pub async fn insert_client_in(
    conn: &mut AnyConnection,
    record: &ClientRecord<'_>,
    secret_hash: Option<&str>,
    accreditation: &Accreditation,
    now: DateTime<Utc>,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO clients (client_id, display_name, kind, redirect_uris, allowed_scopes, \
         secret_hash, auth_methods, accreditation_status, accredited_from, accredited_until, \
         contacts, active, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 1, $12)",
    )
    .bind(record.client_id)
    .bind(record.display_name)
    .bind(record.kind)
    .bind(record.redirect_uris.join("\n"))
    .bind(record.allowed_scopes)
    .bind(secret_hash)
    .bind(record.auth_methods)
    .bind(accreditation.status.as_str())
    .bind(accreditation.valid_from.map(ts))
    .bind(accreditation.valid_until.map(ts))
    .bind(record.contacts.join("\n"))
    .bind(ts(now))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Change what a registration holds (not the secret, not the accreditation).
pub async fn update_client_in(
    conn: &mut AnyConnection,
    record: &ClientRecord<'_>,
) -> DbResult<bool> {
    let done = sqlx::query(
        "UPDATE clients SET display_name = $2, redirect_uris = $3, allowed_scopes = $4, \
         auth_methods = $5, contacts = $6 WHERE client_id = $1",
    )
    .bind(record.client_id)
    .bind(record.display_name)
    .bind(record.redirect_uris.join("\n"))
    .bind(record.allowed_scopes)
    .bind(record.auth_methods)
    .bind(record.contacts.join("\n"))
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn get_client_in(conn: &mut AnyConnection, client_id: &str) -> DbResult<Option<Client>> {
    sqlx::query_as(&format!(
        "SELECT {CLIENT_COLUMNS} FROM clients WHERE client_id = $1"
    ))
    .bind(client_id)
    .fetch_optional(&mut *conn)
    .await
}

/// The client's `private_key_jwt` keys: a JWK set, or the URI where it publishes one.
pub async fn set_client_keys_in(
    conn: &mut AnyConnection,
    client_id: &str,
    jwks: Option<&str>,
    jwks_uri: Option<&str>,
) -> DbResult<()> {
    sqlx::query("UPDATE clients SET jwks = $2, jwks_uri = $3 WHERE client_id = $1")
        .bind(client_id)
        .bind(jwks)
        .bind(jwks_uri)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

impl Store {
    /// Remember an accepted client assertion's `jti` until `expires_at`; `false` if it was
    /// accepted before (a replay). One row per assertion, in the database every instance
    /// shares, so a replay to another instance is caught too.
    pub async fn record_assertion(
        &self,
        client_id: &str,
        jti: &str,
        expires_at: i64,
    ) -> DbResult<bool> {
        let done = sqlx::query(
            "INSERT INTO client_assertions (client_id, jti, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (client_id, jti) DO NOTHING",
        )
        .bind(client_id)
        .bind(jti)
        .bind(expires_at)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

pub async fn set_post_logout_redirect_uris_in(
    conn: &mut AnyConnection,
    client_id: &str,
    uris: &[String],
) -> DbResult<()> {
    sqlx::query("UPDATE clients SET post_logout_redirect_uris = $2 WHERE client_id = $1")
        .bind(client_id)
        .bind(uris.join("\n"))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Forget a client's secrets (current and previous): for a partner that authenticates with
/// `private_key_jwt` only, a secret left behind would be a dormant credential.
pub async fn clear_secrets_in(conn: &mut AnyConnection, client_id: &str) -> DbResult<()> {
    sqlx::query(
        "UPDATE clients SET secret_hash = NULL, previous_secret_hash = NULL, \
         previous_secret_expires_at = NULL WHERE client_id = $1",
    )
    .bind(client_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn set_require_par_in(
    conn: &mut AnyConnection,
    client_id: &str,
    required: bool,
) -> DbResult<()> {
    sqlx::query("UPDATE clients SET require_par = $2 WHERE client_id = $1")
        .bind(client_id)
        .bind(i64::from(required))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn set_client_active_in(
    conn: &mut AnyConnection,
    client_id: &str,
    active: bool,
) -> DbResult<()> {
    sqlx::query("UPDATE clients SET active = $2 WHERE client_id = $1")
        .bind(client_id)
        .bind(i64::from(active))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A new secret; the old one stays valid until `grace_until`, then never again.
pub async fn rotate_secret_in(
    conn: &mut AnyConnection,
    client_id: &str,
    new_hash: &str,
    grace_until: DateTime<Utc>,
) -> DbResult<()> {
    sqlx::query(
        "UPDATE clients SET previous_secret_hash = secret_hash, \
         previous_secret_expires_at = $3, secret_hash = $2 WHERE client_id = $1",
    )
    .bind(client_id)
    .bind(new_hash)
    .bind(ts(grace_until))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// How many grants (active or not) name this client: a partner with grants is never deleted.
pub async fn count_grants_in(conn: &mut AnyConnection, client_id: &str) -> DbResult<i64> {
    let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM grants WHERE client_id = $1")
        .bind(client_id)
        .fetch_one(&mut *conn)
        .await?;
    Ok(count)
}

/// Delete a client that never had grants, with its school links and management tokens.
pub async fn delete_client_in(conn: &mut AnyConnection, client_id: &str) -> DbResult<()> {
    for statement in [
        "DELETE FROM school_links WHERE client_id = $1",
        "DELETE FROM management_tokens WHERE client_id = $1",
        "DELETE FROM clients WHERE client_id = $1",
    ] {
        sqlx::query(statement)
            .bind(client_id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

pub async fn set_accreditation_in(
    conn: &mut AnyConnection,
    client_id: &str,
    acc: &Accreditation,
) -> DbResult<()> {
    sqlx::query(
        "UPDATE clients SET accreditation_status = $2, accredited_from = $3, \
         accredited_until = $4 WHERE client_id = $1",
    )
    .bind(client_id)
    .bind(acc.status.as_str())
    .bind(acc.valid_from.map(ts))
    .bind(acc.valid_until.map(ts))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl Store {
    /// Every registered client (partners, the school's own apps, resource servers): a few
    /// hundred at national scale.
    pub async fn all_clients(&self) -> DbResult<Vec<Client>> {
        sqlx::query_as(&format!("SELECT {CLIENT_COLUMNS} FROM clients"))
            .fetch_all(self.pool())
            .await
    }

    pub async fn list_clients(&self, kind: &str) -> DbResult<Vec<Client>> {
        sqlx::query_as(&format!(
            "SELECT {CLIENT_COLUMNS} FROM clients WHERE kind = $1 ORDER BY display_name, client_id"
        ))
        .bind(kind)
        .fetch_all(self.pool())
        .await
    }

    /// Where the client may send people after logout (one URI per element, already checked).
    pub async fn set_post_logout_redirect_uris(
        &self,
        client_id: &str,
        uris: &[String],
    ) -> DbResult<()> {
        let mut conn = self.pool().acquire().await?;
        set_post_logout_redirect_uris_in(&mut conn, client_id, uris).await
    }

    /// Which client-authentication methods a client may use (space-separated).
    pub async fn set_auth_methods(&self, client_id: &str, methods: &str) -> DbResult<()> {
        sqlx::query("UPDATE clients SET auth_methods = $2 WHERE client_id = $1")
            .bind(client_id)
            .bind(methods)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Is there a management client with scope `platform` (so `bootstrap` already ran)?
    pub async fn has_platform_client(&self) -> DbResult<bool> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT client_id FROM clients WHERE kind = 'management' AND allowed_scopes = 'platform' \
             AND active = 1 LIMIT 1",
        )
        .fetch_optional(self.pool())
        .await?;
        Ok(row.is_some())
    }

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
        sqlx::query_as(&format!(
            "SELECT {CLIENT_COLUMNS} FROM clients WHERE client_id = $1"
        ))
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
    /// Every school × partner link there is, as `(school_brin, client_id, open)`; a pair
    /// without a row is closed.
    pub async fn all_links(&self) -> DbResult<Vec<(String, String, bool)>> {
        let rows: Vec<(String, String, i64)> =
            sqlx::query_as("SELECT school_brin, client_id, is_open FROM school_links")
                .fetch_all(self.pool())
                .await?;
        Ok(rows
            .into_iter()
            .map(|(brin, client, open)| (brin, client, open == 1))
            .collect())
    }

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
        let mut conn = self.pool().acquire().await?;
        set_link_in(&mut conn, school_brin, client_id, open, reason, now).await
    }
}

/// Open or close a school × partner link on a connection or inside a transaction (so the
/// change and its audit row commit together).
pub async fn set_link_in(
    conn: &mut AnyConnection,
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
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Every link of a school as it is now: `(client_id, open, reason, changed_at)`.
impl Store {
    pub async fn links_of(
        &self,
        school_brin: &str,
    ) -> DbResult<Vec<(String, bool, Option<String>, i64)>> {
        let rows: Vec<(String, i64, Option<String>, i64)> = sqlx::query_as(
            "SELECT client_id, is_open, reason, changed_at FROM school_links WHERE school_brin = $1",
        )
        .bind(school_brin)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(c, open, reason, at)| (c, open == 1, reason, at))
            .collect())
    }

    /// How many schools have opened the link to each partner: `(client_id, schools)`.
    pub async fn open_links_per_partner(&self) -> DbResult<Vec<(String, i64)>> {
        sqlx::query_as(
            "SELECT client_id, COUNT(*) FROM school_links WHERE is_open = 1 GROUP BY client_id",
        )
        .fetch_all(self.pool())
        .await
    }
}
