//! Platform operators: people (not tied to a school) who run the platform console. Created
//! by whoever runs the binary against the database (`poortwachter operator create`), with an
//! activation code; the operator then chooses a password at `/console/activate` and enrols
//! the TOTP second factor at the first login.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::registrations::validate_name;
use super::{Actor, OnboardingError};
use crate::crypto::tokens::hash_token;
use crate::App;

/// How long an operator's activation code stays valid.
pub const ACTIVATION_DAYS: i64 = 7;

#[derive(Clone, Serialize)]
pub struct NewOperator {
    pub username: String,
    /// Shown once; only its hash is stored.
    pub activation_code: String,
    pub expires_at: DateTime<Utc>,
    pub activate_at: String,
}

// The code is a secret: never in Debug output, and so never in a log.
impl std::fmt::Debug for NewOperator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewOperator")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

pub async fn create_operator(
    app: &App,
    actor: &Actor,
    username: &str,
) -> Result<NewOperator, OnboardingError> {
    actor.require_platform()?;
    let username = validate_name("username", username)?;
    if username.contains(char::is_whitespace) {
        return Err(OnboardingError::invalid(
            "username",
            "must not contain spaces",
        ));
    }
    if app.store.find_operator(&username).await?.is_some() {
        return Err(OnboardingError::Conflict(format!(
            "operator {username} exists already"
        )));
    }
    let code = super::activation::new_code();
    let now = app.now();
    let expires_at = now + Duration::days(ACTIVATION_DAYS);
    app.store
        .insert_operator(&username, &hash_token(&code), expires_at, now)
        .await?;
    app.store
        .audit(
            &actor.id,
            "operator.create",
            &format!("operator:{username}"),
            None,
            None,
            now,
        )
        .await?;
    Ok(NewOperator {
        activate_at: format!(
            "{}/console/activate",
            app.config.issuer.trim_end_matches('/')
        ),
        username,
        activation_code: code,
        expires_at,
    })
}
