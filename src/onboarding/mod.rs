//! Onboarding: the one implementation behind the admin API and the CLI for bringing a school
//! live — registering schools, partners, resource servers and management clients, importing
//! the school's people from its SIS (OneRoster CSV), and issuing activation codes.
//!
//! Every change here is audited in the same transaction as the change itself and then made
//! visible through the policy cache (see [`commit_audited`]), so the audit log can never miss
//! a change that happened, nor record one that did not.

pub mod activation;
pub mod operators;
pub mod registrations;
pub mod roster;
pub mod school;

use serde_json::Value;

use crate::storage::{DbResult, Store};
use crate::App;

/// Who makes a change: a management client (admin API) or the operator at the console (CLI).
#[derive(Debug, Clone)]
pub struct Actor {
    /// The management client's `client_id`, or `console` for the CLI.
    pub id: String,
    scopes: Vec<String>,
}

impl Actor {
    pub fn management_client(client_id: &str, scopes: &str) -> Actor {
        Actor {
            id: client_id.to_string(),
            scopes: scopes
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        }
    }

    /// The operator at the server's console: whoever can run the binary against the
    /// database is the platform.
    pub fn console() -> Actor {
        Actor {
            id: "console".into(),
            scopes: vec!["platform".into()],
        }
    }

    /// A program of the platform itself acting as operator (the demo loader).
    pub fn system(id: &str) -> Actor {
        Actor {
            id: id.to_string(),
            scopes: vec!["platform".into()],
        }
    }

    /// A school supervisor at the school console: that school only.
    pub fn supervisor(id: &str, brin: &str) -> Actor {
        Actor {
            id: id.to_string(),
            scopes: vec![format!("beheer:{brin}")],
        }
    }

    /// A platform operator at the platform console.
    pub fn operator(id: &str) -> Actor {
        Actor {
            id: id.to_string(),
            scopes: vec!["platform".into()],
        }
    }

    pub fn is_platform(&self) -> bool {
        self.scopes.iter().any(|s| s == "platform")
    }

    /// `platform`, or `beheer:<BRIN>` for this school.
    pub fn may_manage_school(&self, brin: &str) -> bool {
        let own = format!("beheer:{brin}");
        self.is_platform() || self.scopes.contains(&own)
    }

    pub fn require_school(&self, brin: &str) -> Result<(), OnboardingError> {
        if self.may_manage_school(brin) {
            Ok(())
        } else {
            Err(OnboardingError::Forbidden(format!(
                "scope beheer:{brin} or platform required"
            )))
        }
    }

    pub fn require_platform(&self) -> Result<(), OnboardingError> {
        if self.is_platform() {
            Ok(())
        } else {
            Err(OnboardingError::Forbidden("scope platform required".into()))
        }
    }
}

/// What can go wrong, in terms the admin API maps to a status and the CLI to a message and
/// an exit code. Internal causes are logged, never shown.
#[derive(Debug, thiserror::Error)]
pub enum OnboardingError {
    /// 400 naming the field.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// 403.
    #[error("{0}")]
    Forbidden(String),
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 409: it exists already, or the change contradicts the current state.
    #[error("{0}")]
    Conflict(String),
    #[error("database error")]
    Database(#[from] sqlx::Error),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl OnboardingError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        OnboardingError::Invalid {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

/// One audit row: what changed, about whom or what, and why.
#[derive(Debug, Clone)]
pub struct Change {
    pub action: String,
    pub target: String,
    pub reason: Option<String>,
    pub details: Value,
}

impl Change {
    pub fn new(action: &str, target: impl Into<String>, details: Value) -> Change {
        Change {
            action: action.to_string(),
            target: target.into(),
            reason: None,
            details,
        }
    }

    pub fn because(mut self, reason: Option<&str>) -> Change {
        self.reason = reason.map(str::to_string);
        self
    }
}

/// A transaction on the store for one change.
pub type Tx = sqlx::Transaction<'static, sqlx::Any>;

pub async fn begin(store: &Store) -> DbResult<Tx> {
    store.pool().begin().await
}

/// Write the audit rows inside `tx`, commit, and then evict what changed from this
/// instance's policy cache and tell the others (Redis; their reading of the change log
/// catches the rest).
/// An empty `changes` list commits without auditing or flushing: nothing changed.
pub async fn commit_audited(
    app: &App,
    mut tx: Tx,
    actor: &Actor,
    changes: &[Change],
) -> Result<(), OnboardingError> {
    if changes.is_empty() {
        tx.commit().await?;
        return Ok(());
    }
    let now = app.now();
    for change in changes {
        crate::storage::admin::insert_audit(
            &mut tx,
            &actor.id,
            &change.action,
            &change.target,
            change.reason.as_deref(),
            Some(&change.details),
            now,
        )
        .await?;
    }
    // The triggers logged what changed, in this transaction.
    tx.commit().await?;
    app.cache.changed(&app.store).await;
    for change in changes {
        tracing::info!(actor = %actor.id, action = %change.action, "change committed (details in the audit log)");
    }
    Ok(())
}
