//! Signing keys and server-wide secrets, generated on first start and kept in the database.

use chrono::{DateTime, Utc};

use super::{ts, DbResult, Store};

impl Store {
    /// The newest signing keys first: `(kid, alg, private key PEM)`.
    pub async fn signing_keys(&self) -> DbResult<Vec<(String, String, String)>> {
        sqlx::query_as("SELECT kid, alg, private_pem FROM signing_keys ORDER BY created_at DESC")
            .fetch_all(self.pool())
            .await
    }

    pub async fn insert_signing_key(
        &self,
        kid: &str,
        alg: &str,
        pem: &str,
        now: DateTime<Utc>,
    ) -> DbResult<()> {
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, private_pem, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (kid) DO NOTHING",
        )
        .bind(kid)
        .bind(alg)
        .bind(pem)
        .bind(ts(now))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Every server secret as stored: `(name, value)`.
    pub async fn server_secrets(&self) -> DbResult<Vec<(String, String)>> {
        sqlx::query_as("SELECT name, value FROM server_secrets ORDER BY name")
            .fetch_all(self.pool())
            .await
    }

    /// Rewrite a stored value in place (sealing a plain one), only if it is still `was`.
    pub async fn reseal_server_secret(&self, name: &str, was: &str, now: &str) -> DbResult<()> {
        sqlx::query("UPDATE server_secrets SET value = $3 WHERE name = $1 AND value = $2")
            .bind(name)
            .bind(was)
            .bind(now)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Rewrite a signing key's stored PEM in place, only if it is still `was`.
    pub async fn reseal_signing_key(&self, kid: &str, was: &str, now: &str) -> DbResult<()> {
        sqlx::query("UPDATE signing_keys SET private_pem = $3 WHERE kid = $1 AND private_pem = $2")
            .bind(kid)
            .bind(was)
            .bind(now)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Get a named secret, creating it with `fresh` if absent. Two instances starting at once
    /// agree on one value: the insert does nothing on conflict and both read back the winner.
    pub async fn server_secret(&self, name: &str, fresh: &str) -> DbResult<String> {
        sqlx::query("INSERT INTO server_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(fresh)
            .execute(self.pool())
            .await?;
        let (value,): (String,) =
            sqlx::query_as("SELECT value FROM server_secrets WHERE name = $1")
                .bind(name)
                .fetch_one(self.pool())
                .await?;
        Ok(value)
    }
}
