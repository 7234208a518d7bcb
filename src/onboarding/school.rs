//! The school's own decisions: opening or closing the link (koppeling) to a partner, and
//! closing a scope for audiences for a period (closures). One implementation for the admin
//! API and the school console; each change commits with its audit row and is visible to
//! every instance at once (see [`super::commit_audited`]).

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{begin, commit_audited, Actor, Change, OnboardingError};
use crate::domain::policy::Audience;
use crate::domain::scope::Scope;
use crate::storage::closures::{insert_closure_in, Closure, NewClosure};
use crate::App;

/// Reasons go into the audit log and, for closures, to resource servers and people.
pub const MAX_REASON_CHARS: usize = 500;

fn require_reason(reason: &str) -> Result<String, OnboardingError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(OnboardingError::invalid(
            "reason",
            "is required: the audit log records why",
        ));
    }
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(OnboardingError::invalid(
            "reason",
            format!("at most {MAX_REASON_CHARS} characters"),
        ));
    }
    Ok(reason.to_string())
}

async fn require_school(app: &App, actor: &Actor, brin: &str) -> Result<(), OnboardingError> {
    actor.require_school(brin)?;
    match app.store.get_school(brin).await? {
        Some(_) => Ok(()),
        None => Err(OnboardingError::NotFound(format!("unknown school {brin}"))),
    }
}

/// Open or close the link between a school and a partner. Closing takes effect at the
/// partner's next call: introspection, refresh and userinfo read the live policy.
pub async fn set_link(
    app: &App,
    actor: &Actor,
    brin: &str,
    client_id: &str,
    open: bool,
    reason: &str,
) -> Result<String, OnboardingError> {
    let reason = require_reason(reason)?;
    require_school(app, actor, brin).await?;
    match app.store.get_client(client_id).await? {
        Some(client) if client.kind == "partner" => {}
        _ => {
            return Err(OnboardingError::NotFound(format!(
                "unknown partner {client_id}"
            )))
        }
    }
    let mut tx = begin(&app.store).await?;
    crate::storage::clients::set_link_in(&mut tx, brin, client_id, open, Some(&reason), app.now())
        .await?;
    let action = if open { "link.open" } else { "link.close" };
    let change = Change::new(
        action,
        format!("school:{brin}/link:{client_id}"),
        json!({ "open": open }),
    )
    .because(Some(&reason));
    commit_audited(app, tx, actor, &[change]).await?;
    Ok(reason)
}

/// A closure to be made.
pub struct ClosureRequest<'a> {
    pub scope: &'a str,
    pub audiences: &'a [String],
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub reason: &'a str,
}

/// Close a scope for audiences between two moments (e.g. grades during a test week).
pub async fn create_closure(
    app: &App,
    actor: &Actor,
    brin: &str,
    request: ClosureRequest<'_>,
) -> Result<Closure, OnboardingError> {
    let scope = Scope::parse(request.scope)
        .filter(|s| !matches!(s, Scope::OpenId | Scope::OfflineAccess))
        .ok_or_else(|| {
            OnboardingError::invalid("scope", "must be one of naam, rooster, huiswerk, cijfers")
        })?;
    if request.audiences.is_empty() {
        return Err(OnboardingError::invalid(
            "audiences",
            "must name at least one of parents, students, partners",
        ));
    }
    let mut audiences = Vec::new();
    for audience in request.audiences {
        let parsed = Audience::parse(audience).ok_or_else(|| {
            OnboardingError::invalid(
                "audiences",
                format!("unknown audience {audience}: use parents, students or partners"),
            )
        })?;
        if !audiences.contains(&parsed.as_str().to_string()) {
            audiences.push(parsed.as_str().to_string());
        }
    }
    if request.ends_at <= request.starts_at {
        return Err(OnboardingError::invalid(
            "ends_at",
            "must be after starts_at",
        ));
    }
    let reason = require_reason(request.reason)?;
    require_school(app, actor, brin).await?;
    // The closure and its audit row commit together: a fault between two separate writes
    // left a closure in force that the audit log did not show (docs/DRILLS.md).
    let mut tx = begin(&app.store).await?;
    let closure = insert_closure_in(
        &mut tx,
        NewClosure {
            school_brin: brin,
            scope: scope.as_str(),
            audiences: &audiences,
            starts_at: request.starts_at,
            ends_at: request.ends_at,
            reason: &reason,
            created_by: &actor.id,
        },
        app.now(),
    )
    .await?;
    let change = Change::new(
        "closure.create",
        format!("school:{brin}/closure:{}", closure.id),
        closure_details(&closure),
    )
    .because(Some(&reason));
    commit_audited(app, tx, actor, &[change]).await?;
    Ok(closure)
}

/// End a closure now, or cancel one that has not started; it stays listed, as past.
pub async fn end_closure(
    app: &App,
    actor: &Actor,
    brin: &str,
    id: &str,
) -> Result<Closure, OnboardingError> {
    require_school(app, actor, brin).await?;
    let mut tx = begin(&app.store).await?;
    let Some(closure) =
        crate::storage::closures::end_closure_in(&mut tx, brin, id, app.now()).await?
    else {
        return Err(OnboardingError::NotFound(format!(
            "no closure {id} in force or planned at {brin}"
        )));
    };
    let change = Change::new(
        "closure.end",
        format!("school:{brin}/closure:{id}"),
        closure_details(&closure),
    );
    commit_audited(app, tx, actor, &[change]).await?;
    Ok(closure)
}

fn closure_details(closure: &Closure) -> serde_json::Value {
    json!({
        "scope": closure.scope,
        "audiences": closure.audiences.split(' ').collect::<Vec<_>>(),
        "starts_at": crate::storage::from_ts(closure.starts_at).to_rfc3339(),
        "ends_at": crate::storage::from_ts(closure.ends_at).to_rfc3339(),
    })
}
