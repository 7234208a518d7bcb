//! Admin API handlers. Callers are management clients holding a `client_credentials` token
//! with scope `beheer:<BRIN>` (one school) or `platform` (the operator). Every change is
//! audited (who, what, when, why) and takes effect at once through the policy cache.

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use crate::crypto::tokens::hash_token;
use crate::domain::account::Role;
use crate::domain::partner::{Accreditation, AccreditationStatus};
use crate::domain::scope::{Scope, ScopeSet};
use crate::oauth::live_policy::Audience;
use crate::storage::accounts::Account;
use crate::storage::closures::{Closure, NewClosure};
use crate::storage::from_ts;
use crate::AppState;

/// The management client behind the bearer token.
pub struct Manager {
    pub client_id: String,
    scopes: Vec<String>,
}

impl Manager {
    /// The same caller as an onboarding [`crate::onboarding::Actor`].
    pub fn actor(&self) -> crate::onboarding::Actor {
        crate::onboarding::Actor::management_client(&self.client_id, &self.scopes.join(" "))
    }

    fn is_platform(&self) -> bool {
        self.scopes.iter().any(|s| s == "platform")
    }

    /// `platform`, or `beheer:<BRIN>` for this school; anything else is 403.
    fn require_school(&self, brin: &str) -> Result<(), ApiError> {
        let own = format!("beheer:{brin}");
        if self.is_platform() || self.scopes.contains(&own) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "scope beheer:{brin} or platform required"
            )))
        }
    }

    fn require_platform(&self) -> Result<(), ApiError> {
        if self.is_platform() {
            Ok(())
        } else {
            Err(ApiError::forbidden("scope platform required"))
        }
    }
}

impl FromRequestParts<AppState> for Manager {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(ApiError::unauthorized)?;
        let found = state
            .store
            .find_management_token(&hash_token(token), state.now())
            .await?
            .ok_or_else(ApiError::unauthorized)?;
        Ok(Manager {
            client_id: found.client_id,
            scopes: found.scopes.split(' ').map(str::to_string).collect(),
        })
    }
}

/// Parse a JSON body, answering 400 with the field and serde's explanation when it does not fit.
fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        if path.is_empty() || path == "." {
            ApiError::bad_request(format!("invalid JSON body: {}", e.inner()))
        } else {
            ApiError::bad_request(format!("invalid JSON body at {path}: {}", e.inner()))
        }
    })
}

fn require_reason(reason: Option<String>) -> Result<String, ApiError> {
    match reason.map(|r| r.trim().to_string()) {
        Some(r) if !r.is_empty() => Ok(r),
        _ => Err(ApiError::bad_request(
            "reason is required: the audit log records why",
        )),
    }
}

async fn school_exists(state: &AppState, brin: &str) -> Result<(), ApiError> {
    match state.store.get_school(brin).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::not_found(format!("unknown school {brin}"))),
    }
}

/// Audit, then make the change visible everywhere.
async fn record(
    state: &AppState,
    manager: &Manager,
    action: &str,
    target: &str,
    reason: Option<&str>,
    details: Value,
) -> Result<(), ApiError> {
    let now = state.now();
    state.cache.changed(&state.store).await?;
    state
        .store
        .audit(
            &manager.client_id,
            action,
            target,
            reason,
            Some(&details),
            now,
        )
        .await?;
    tracing::info!(actor = %manager.client_id, action, "policy changed through the admin API (details in the audit log)");
    Ok(())
}

fn rfc3339(secs: i64) -> String {
    from_ts(secs).to_rfc3339()
}

#[derive(Deserialize)]
struct LinkBody {
    open: bool,
    reason: Option<String>,
}

/// `PUT /api/admin/schools/{brin}/links/{client_id}`
pub async fn set_link(
    State(state): State<AppState>,
    manager: Manager,
    Path((brin, client_id)): Path<(String, String)>,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    manager.require_school(&brin)?;
    let input: LinkBody = body(&bytes)?;
    let reason = require_reason(input.reason)?;
    school_exists(&state, &brin).await?;
    match state.store.get_client(&client_id).await? {
        Some(client) if client.kind == "partner" => {}
        _ => return Err(ApiError::not_found(format!("unknown partner {client_id}"))),
    }
    state
        .store
        .set_link(&brin, &client_id, input.open, Some(&reason), state.now())
        .await?;
    let target = format!("school:{brin}/link:{client_id}");
    let action = if input.open {
        "link.open"
    } else {
        "link.close"
    };
    record(
        &state,
        &manager,
        action,
        &target,
        Some(&reason),
        json!({ "open": input.open }),
    )
    .await?;
    Ok(Json(
        json!({ "school": brin, "client_id": client_id, "open": input.open, "reason": reason }),
    ))
}

#[derive(Deserialize)]
struct ClosureBody {
    scope: String,
    audiences: Vec<String>,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    reason: Option<String>,
}

fn closure_json(c: &Closure) -> Value {
    json!({
        "id": c.id,
        "school": c.school_brin,
        "scope": c.scope,
        "audiences": c.audiences.split(' ').collect::<Vec<_>>(),
        "starts_at": rfc3339(c.starts_at),
        "ends_at": rfc3339(c.ends_at),
        "reason": c.reason,
        "created_by": c.created_by,
    })
}

/// `POST /api/admin/schools/{brin}/closures`
pub async fn create_closure(
    State(state): State<AppState>,
    manager: Manager,
    Path(brin): Path<String>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    manager.require_school(&brin)?;
    let input: ClosureBody = body(&bytes)?;
    let reason = require_reason(input.reason)?;
    let scope = Scope::parse(&input.scope)
        .filter(|s| !matches!(s, Scope::OpenId | Scope::OfflineAccess))
        .ok_or_else(|| {
            ApiError::bad_request("scope must be one of naam, rooster, huiswerk, cijfers")
        })?;
    if input.audiences.is_empty() {
        return Err(ApiError::bad_request(
            "audiences must name at least one of parents, students, partners",
        ));
    }
    let mut audiences = Vec::new();
    for audience in &input.audiences {
        let parsed = Audience::parse(audience).ok_or_else(|| {
            ApiError::bad_request(format!(
                "unknown audience {audience}: use parents, students or partners"
            ))
        })?;
        if !audiences.contains(&parsed.as_str().to_string()) {
            audiences.push(parsed.as_str().to_string());
        }
    }
    if input.ends_at <= input.starts_at {
        return Err(ApiError::bad_request("ends_at must be after starts_at"));
    }
    school_exists(&state, &brin).await?;
    let closure = state
        .store
        .insert_closure(
            NewClosure {
                school_brin: &brin,
                scope: scope.as_str(),
                audiences: &audiences,
                starts_at: input.starts_at,
                ends_at: input.ends_at,
                reason: &reason,
                created_by: &manager.client_id,
            },
            state.now(),
        )
        .await?;
    let details = closure_json(&closure);
    record(
        &state,
        &manager,
        "closure.create",
        &format!("school:{brin}/closure:{}", closure.id),
        Some(&reason),
        details.clone(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(details)).into_response())
}

/// `GET /api/admin/schools/{brin}/closures`
pub async fn list_closures(
    State(state): State<AppState>,
    manager: Manager,
    Path(brin): Path<String>,
) -> Result<Json<Value>, ApiError> {
    manager.require_school(&brin)?;
    school_exists(&state, &brin).await?;
    let closures = state.store.closures_of(&brin).await?;
    Ok(Json(
        json!({ "closures": closures.iter().map(closure_json).collect::<Vec<_>>() }),
    ))
}

/// `DELETE /api/admin/schools/{brin}/closures/{id}`
pub async fn delete_closure(
    State(state): State<AppState>,
    manager: Manager,
    Path((brin, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    manager.require_school(&brin)?;
    school_exists(&state, &brin).await?;
    if !state.store.delete_closure(&brin, &id).await? {
        return Err(ApiError::not_found(format!("unknown closure {id}")));
    }
    record(
        &state,
        &manager,
        "closure.delete",
        &format!("school:{brin}/closure:{id}"),
        None,
        json!({}),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn account_at_school(
    state: &AppState,
    brin: &str,
    username: &str,
    role: Role,
) -> Result<Account, ApiError> {
    match state.store.find_account_by_login(brin, username).await? {
        Some(account) if account.role() == Some(role) => Ok(account),
        _ => Err(ApiError::not_found(format!(
            "unknown {} {username} at {brin}",
            role.as_str()
        ))),
    }
}

#[derive(Deserialize, Default)]
struct ReasonBody {
    reason: Option<String>,
}

/// `POST /api/admin/schools/{brin}/students/{username}/leave`
pub async fn student_leaves(
    State(state): State<AppState>,
    manager: Manager,
    Path((brin, username)): Path<(String, String)>,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    manager.require_school(&brin)?;
    let input: ReasonBody = if bytes.is_empty() {
        ReasonBody::default()
    } else {
        body(&bytes)?
    };
    school_exists(&state, &brin).await?;
    let student = account_at_school(&state, &brin, &username, Role::Student).await?;
    let now = state.now();
    if !state.store.end_enrollment(&student.id, &brin, now).await? {
        return Err(ApiError::not_found(format!(
            "student {username} is not enrolled at {brin}"
        )));
    }
    record(
        &state,
        &manager,
        "student.leave",
        &format!("school:{brin}/student:{username}"),
        input.reason.as_deref(),
        json!({}),
    )
    .await?;
    Ok(Json(
        json!({ "school": brin, "student_number": username, "left_at": now.to_rfc3339() }),
    ))
}

/// `GET /api/admin/schools/{brin}/grants`
pub async fn list_grants(
    State(state): State<AppState>,
    manager: Manager,
    Path(brin): Path<String>,
) -> Result<Json<Value>, ApiError> {
    manager.require_school(&brin)?;
    school_exists(&state, &brin).await?;
    let grants = state.store.grants_at_school(&brin, state.now()).await?;
    let mut by_partner = serde_json::Map::new();
    for grant in &grants {
        let count = by_partner
            .get(&grant.client_id)
            .and_then(Value::as_u64)
            .unwrap_or(0);
        by_partner.insert(grant.client_id.clone(), json!(count + 1));
    }
    let list: Vec<Value> = grants
        .iter()
        .map(|g| {
            json!({
                "grant_id": g.grant_id,
                "client_id": g.client_id,
                "student_number": g.student_number,
                "scopes": g.scopes.split(' ').collect::<Vec<_>>(),
                "given_by": g.given_by_role,
                "granted_at": rfc3339(g.granted_at),
                "expires_at": rfc3339(g.expires_at),
            })
        })
        .collect();
    Ok(Json(
        json!({ "school": brin, "count": grants.len(), "by_partner": by_partner, "grants": list }),
    ))
}

#[derive(Deserialize)]
struct WithdrawBody {
    scopes: Option<Vec<String>>,
    reason: Option<String>,
}

/// `POST /api/admin/schools/{brin}/grants/{grant_id}/withdraw`: the whole grant, or some scopes.
pub async fn withdraw_grant(
    State(state): State<AppState>,
    manager: Manager,
    Path((brin, grant_id)): Path<(String, String)>,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    manager.require_school(&brin)?;
    let input: WithdrawBody = body(&bytes)?;
    let reason = require_reason(input.reason)?;
    let scopes = match &input.scopes {
        Some(list) if list.is_empty() => {
            return Err(ApiError::bad_request(
                "scopes, when given, must not be empty",
            ))
        }
        Some(list) => Some(
            ScopeSet::parse(&list.join(" "))
                .map_err(|s| ApiError::bad_request(format!("unknown scope {s}")))?,
        ),
        None => None,
    };
    school_exists(&state, &brin).await?;
    let now = state.now();
    let grant = state.store.get_grant(&grant_id).await?;
    let belongs_here = match &grant {
        // Only grants of students enrolled at this school now, and never a first-party
        // ("self") grant, which is no consent to a partner.
        Some(g) if g.given_by_role != "self" => state
            .store
            .active_enrollment(&g.student_id, now)
            .await?
            .is_some_and(|school| school == brin),
        _ => false,
    };
    if !belongs_here {
        return Err(ApiError::not_found(format!(
            "unknown grant {grant_id} at {brin}"
        )));
    }
    let Some(after) = state
        .store
        .withdraw_grant(&grant_id, scopes.as_ref(), now)
        .await?
    else {
        return Err(ApiError::not_found(format!(
            "grant {grant_id} is not active"
        )));
    };
    let withdrawn_whole = after.revoked_at.is_some();
    record(
        &state,
        &manager,
        if withdrawn_whole {
            "grant.withdraw"
        } else {
            "grant.withdraw_scopes"
        },
        &format!("school:{brin}/grant:{grant_id}"),
        Some(&reason),
        json!({ "scopes": input.scopes }),
    )
    .await?;
    Ok(Json(json!({
        "grant_id": grant_id,
        "active": !withdrawn_whole,
        "scopes": if withdrawn_whole { Vec::new() } else { after.scopes.split(' ').map(str::to_string).collect::<Vec<_>>() },
    })))
}

/// `DELETE /api/admin/schools/{brin}/guardianships/{parent}/{student}`
pub async fn remove_guardianship(
    State(state): State<AppState>,
    manager: Manager,
    Path((brin, parent, student)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    manager.require_school(&brin)?;
    school_exists(&state, &brin).await?;
    let parent_account = account_at_school(&state, &brin, &parent, Role::Parent).await?;
    let student_account = account_at_school(&state, &brin, &student, Role::Student).await?;
    if !state
        .store
        .remove_guardianship(&parent_account.id, &student_account.id)
        .await?
    {
        return Err(ApiError::not_found(format!(
            "{parent} is not linked to {student}"
        )));
    }
    record(
        &state,
        &manager,
        "guardianship.remove",
        &format!("school:{brin}/guardianship:{parent}:{student}"),
        None,
        json!({}),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/admin/schools/{brin}/audit`
pub async fn audit_log(
    State(state): State<AppState>,
    manager: Manager,
    Path(brin): Path<String>,
) -> Result<Json<Value>, ApiError> {
    manager.require_school(&brin)?;
    school_exists(&state, &brin).await?;
    let entries = state
        .store
        .audit_log(&format!("school:{brin}/"), 500)
        .await?;
    let entries: Vec<Value> = entries
        .iter()
        .map(|e| {
            json!({
                "at": rfc3339(e.at),
                "actor": e.actor,
                "action": e.action,
                "target": e.target,
                "reason": e.reason,
                "details": e.details.as_deref().and_then(|d| serde_json::from_str::<Value>(d).ok()),
            })
        })
        .collect();
    Ok(Json(json!({ "entries": entries })))
}

#[derive(Deserialize)]
struct AccreditationBody {
    status: String,
    valid_until: Option<DateTime<Utc>>,
    reason: Option<String>,
}

/// `PUT /api/admin/partners/{client_id}/accreditation` (platform only)
pub async fn set_accreditation(
    State(state): State<AppState>,
    manager: Manager,
    Path(client_id): Path<String>,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    manager.require_platform()?;
    let input: AccreditationBody = body(&bytes)?;
    let status = match AccreditationStatus::parse(&input.status) {
        Some(s @ (AccreditationStatus::Accredited | AccreditationStatus::Suspended)) => s,
        _ => {
            return Err(ApiError::bad_request(
                "status must be accredited or suspended",
            ))
        }
    };
    let client = match state.store.get_client(&client_id).await? {
        Some(client) if client.kind == "partner" => client,
        _ => return Err(ApiError::not_found(format!("unknown partner {client_id}"))),
    };
    let now = state.now();
    let current = client.accreditation();
    let accreditation = Accreditation {
        status,
        valid_from: current.valid_from.or(Some(now)),
        valid_until: input.valid_until.or(current.valid_until),
    };
    state
        .store
        .set_accreditation(&client_id, &accreditation)
        .await?;
    record(
        &state,
        &manager,
        &format!("accreditation.{}", status.as_str()),
        &format!("partner:{client_id}"),
        input.reason.as_deref(),
        json!({ "status": status.as_str(), "valid_until": accreditation.valid_until.map(|t| t.to_rfc3339()) }),
    )
    .await?;
    Ok(Json(json!({
        "client_id": client_id,
        "status": status.as_str(),
        "valid_from": accreditation.valid_from.map(|t| t.to_rfc3339()),
        "valid_until": accreditation.valid_until.map(|t| t.to_rfc3339()),
    })))
}
