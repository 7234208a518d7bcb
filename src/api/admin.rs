//! Admin API handlers. Callers are management clients holding a `client_credentials` token
//! with scope `beheer:<BRIN>` (one school) or `platform` (the operator). Every change is
//! audited (who, what, when, why) and takes effect at once through the policy cache.
//!
//! Each handler carries its `#[utoipa::path]`: the OpenAPI description (served at
//! `/api/admin/openapi.json`, checked in as `docs/openapi.json`) is generated from these.

use std::collections::BTreeMap;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use axum_extra::headers::authorization::Bearer;
use axum_extra::headers::{Authorization, HeaderMapExt};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::error::{ApiError, ReadRefusals, WriteRefusals};
use crate::crypto::tokens::hash_token;
use crate::domain::account::Role;

use crate::domain::scope::ScopeSet;
use crate::storage::accounts::Account;
use crate::storage::closures::Closure;
use crate::storage::from_ts;
use crate::AppState;

/// The management client behind the bearer token.
pub struct Manager {
    pub client_id: String,
    scopes: Vec<String>,
}

impl Manager {
    fn is_platform(&self) -> bool {
        self.scopes.iter().any(|s| s == "platform")
    }

    /// `platform`, or `beheer:<BRIN>` for this school; anything else is 403.
    pub fn require_school(&self, brin: &str) -> Result<(), ApiError> {
        let own = format!("beheer:{brin}");
        if self.is_platform() || self.scopes.contains(&own) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "scope beheer:{brin} or platform required"
            )))
        }
    }

    pub fn require_platform(&self) -> Result<(), ApiError> {
        if self.is_platform() {
            Ok(())
        } else {
            Err(ApiError::forbidden("scope platform required"))
        }
    }

    /// The same caller as the onboarding layer's actor (audit rows, scope checks).
    pub fn actor(&self) -> crate::onboarding::Actor {
        crate::onboarding::Actor::management_client(&self.client_id, &self.scopes.join(" "))
    }
}

impl FromRequestParts<AppState> for Manager {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        // `headers` matches the scheme name case-insensitively, as RFC 9110 §11.1 requires
        // ("Bearer", "bearer", "BEARER" are one scheme).
        let bearer = parts
            .headers
            .typed_get::<Authorization<Bearer>>()
            .ok_or_else(ApiError::unauthorized)?;
        let token = bearer.token().trim();
        if token.is_empty() {
            return Err(ApiError::unauthorized());
        }
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

/// The largest JSON body the admin API reads.
pub const MAX_JSON_BODY: usize = 1024 * 1024;

/// A request body meant to be JSON: read (at most [`MAX_JSON_BODY`], else 413) but not yet
/// parsed, so the handler checks the caller's scope first and only then looks at the body;
/// a caller without the scope learns nothing from the body's errors.
pub struct JsonBody {
    is_json: bool,
    bytes: Bytes,
}

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = is_json(request.headers());
        let request =
            request.map(|body| Body::new(http_body_util::Limited::new(body, MAX_JSON_BODY)));
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::content_too_large(MAX_JSON_BODY)
                } else {
                    ApiError::bad_request(format!("could not read the body: {rejection}"))
                }
            })?;
        Ok(JsonBody { is_json, bytes })
    }
}

/// `application/json`, with any parameters (`; charset=utf-8`); RFC 9110 §8.3.1: the type
/// and subtype are case-insensitive.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

impl JsonBody {
    /// Exactly one JSON value of type `T`: 415 when not sent as JSON; 400 naming the field for
    /// a value that does not fit, an unknown field (`deny_unknown_fields`) or trailing data.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        if !self.is_json {
            return Err(ApiError::unsupported_media_type());
        }
        let mut deserializer = serde_json::Deserializer::from_slice(&self.bytes);
        let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
            let path = e.path().to_string();
            if path.is_empty() || path == "." {
                ApiError::bad_request(format!("invalid JSON body: {}", e.inner()))
            } else {
                ApiError::bad_request(format!("invalid JSON body at {path}: {}", e.inner()))
            }
        })?;
        deserializer.end().map_err(|e| {
            ApiError::bad_request(format!(
                "invalid JSON body: data after the JSON value ({e})"
            ))
        })?;
        Ok(value)
    }

    /// Like [`JsonBody::parse`], but an empty body (of any type) means `T::default()`.
    pub fn parse_or_default<T: DeserializeOwned + Default>(&self) -> Result<T, ApiError> {
        if self.bytes.is_empty() {
            Ok(T::default())
        } else {
            self.parse()
        }
    }
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
    state.cache.changed(&state.store).await;
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

fn words(list: &str) -> Vec<String> {
    list.split(' ').map(str::to_string).collect()
}

// The next three enums are documentation only: the handlers take strings and parse them with
// the domain's parsers (`Scope::parse`, ...), to answer with their own messages.

/// A scope that can be closed.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
enum ClosableScope {
    Naam,
    Rooster,
    Huiswerk,
    Cijfers,
}

/// Whom a closure applies to.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
enum AudienceName {
    Parents,
    Students,
    Partners,
}

/// An accreditation status the platform may set.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
enum SettableAccreditation {
    Accredited,
    Suspended,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkBody {
    open: bool,
    /// Why: recorded in the audit log.
    #[schema(value_type = String, required = true, min_length = 1)]
    reason: Option<String>,
}

/// A link (koppeling) between a school and a partner, as it is now.
#[derive(Serialize, ToSchema)]
pub struct LinkView {
    school: String,
    client_id: String,
    open: bool,
    reason: String,
}

/// Open or close the school's link (koppeling) to a partner. Links start closed.
#[utoipa::path(
    put,
    path = "/api/admin/schools/{brin}/links/{client_id}",
    tag = "schools",
    params(
        ("brin" = String, Path, description = "the school's BRIN code", example = "12AB"),
        ("client_id" = String, Path, description = "the partner", example = "huiswerkhulp-demo"),
    ),
    request_body(content = LinkBody, content_type = "application/json",
        example = json!({"open": true, "reason": "overeenkomst getekend"})),
    responses((status = 200, description = "the link as it is now", body = LinkView), WriteRefusals),
    security(("bearer" = ["beheer:<BRIN>"]), ("bearer" = ["platform"])),
)]
pub async fn set_link(
    State(state): State<AppState>,
    manager: Manager,
    Path((brin, client_id)): Path<(String, String)>,
    body: JsonBody,
) -> Result<Json<LinkView>, ApiError> {
    manager.require_school(&brin)?;
    let input: LinkBody = body.parse()?;
    let reason = require_reason(input.reason)?;
    let reason = crate::onboarding::school::set_link(
        &state,
        &manager.actor(),
        &brin,
        &client_id,
        input.open,
        &reason,
    )
    .await?;
    Ok(Json(LinkView {
        school: brin,
        client_id,
        open: input.open,
        reason,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClosureBody {
    #[schema(value_type = ClosableScope)]
    scope: String,
    #[schema(value_type = Vec<AudienceName>, min_items = 1)]
    audiences: Vec<String>,
    starts_at: DateTime<Utc>,
    /// After `starts_at`.
    ends_at: DateTime<Utc>,
    /// Why: recorded in the audit log.
    #[schema(value_type = String, required = true, min_length = 1)]
    reason: Option<String>,
}

/// A closure: a scope closed for some audiences between two moments.
#[derive(Serialize, ToSchema)]
pub struct ClosureView {
    id: String,
    school: String,
    #[schema(value_type = ClosableScope)]
    scope: String,
    #[schema(value_type = Vec<AudienceName>)]
    audiences: Vec<String>,
    /// RFC 3339.
    #[schema(format = DateTime)]
    starts_at: String,
    /// RFC 3339.
    #[schema(format = DateTime)]
    ends_at: String,
    reason: String,
    /// The management client that made it.
    created_by: String,
}

impl ClosureView {
    fn of(c: &Closure) -> ClosureView {
        ClosureView {
            id: c.id.clone(),
            school: c.school_brin.clone(),
            scope: c.scope.clone(),
            audiences: words(&c.audiences),
            starts_at: rfc3339(c.starts_at),
            ends_at: rfc3339(c.ends_at),
            reason: c.reason.clone(),
            created_by: c.created_by.clone(),
        }
    }
}

/// Close a scope for audiences between two moments (e.g. grades during a test week).
#[utoipa::path(
    post,
    path = "/api/admin/schools/{brin}/closures",
    tag = "schools",
    params(("brin" = String, Path, description = "the school's BRIN code", example = "12AB")),
    request_body(content = ClosureBody, content_type = "application/json",
        example = json!({"scope": "cijfers", "audiences": ["parents", "partners"],
            "starts_at": "2026-12-07T00:00:00+01:00", "ends_at": "2026-12-18T18:00:00+01:00",
            "reason": "toetsweek"})),
    responses((status = 201, description = "the closure", body = ClosureView), WriteRefusals),
    security(("bearer" = ["beheer:<BRIN>"]), ("bearer" = ["platform"])),
)]
pub async fn create_closure(
    State(state): State<AppState>,
    manager: Manager,
    Path(brin): Path<String>,
    body: JsonBody,
) -> Result<(StatusCode, Json<ClosureView>), ApiError> {
    manager.require_school(&brin)?;
    let input: ClosureBody = body.parse()?;
    let reason = require_reason(input.reason)?;
    let closure = crate::onboarding::school::create_closure(
        &state,
        &manager.actor(),
        &brin,
        crate::onboarding::school::ClosureRequest {
            scope: &input.scope,
            audiences: &input.audiences,
            starts_at: input.starts_at,
            ends_at: input.ends_at,
            reason: &reason,
        },
    )
    .await?;
    let view = ClosureView::of(&closure);
    Ok((StatusCode::CREATED, Json(view)))
}

#[derive(Serialize, ToSchema)]
pub struct ClosuresView {
    closures: Vec<ClosureView>,
}

/// List the school's closures.
#[utoipa::path(
    get,
    path = "/api/admin/schools/{brin}/closures",
    tag = "schools",
    params(("brin" = String, Path, description = "the school's BRIN code", example = "12AB")),
    responses((status = 200, description = "the school's closures", body = ClosuresView), ReadRefusals),
    security(("bearer" = ["beheer:<BRIN>"]), ("bearer" = ["platform"])),
)]
pub async fn list_closures(
    State(state): State<AppState>,
    manager: Manager,
    Path(brin): Path<String>,
) -> Result<Json<ClosuresView>, ApiError> {
    manager.require_school(&brin)?;
    school_exists(&state, &brin).await?;
    let closures = state.store.closures_of(&brin).await?;
    Ok(Json(ClosuresView {
        closures: closures.iter().map(ClosureView::of).collect(),
    }))
}

/// End a closure now (delete it).
#[utoipa::path(
    delete,
    path = "/api/admin/schools/{brin}/closures/{id}",
    tag = "schools",
    params(
        ("brin" = String, Path, description = "the school's BRIN code", example = "12AB"),
        ("id" = String, Path, description = "the closure's id, from the list of closures"),
    ),
    responses((status = 204, description = "deleted"), ReadRefusals),
    security(("bearer" = ["beheer:<BRIN>"]), ("bearer" = ["platform"])),
)]
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

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    /// Why: recorded in the audit log.
    #[schema(min_length = 1)]
    reason: Option<String>,
}

/// A student who has left the school.
#[derive(Serialize, ToSchema)]
pub struct LeftView {
    school: String,
    student_number: String,
    /// RFC 3339.
    #[schema(format = DateTime)]
    left_at: String,
}

/// The student leaves the school.
///
/// The enrollment ends now and every partner token for the student stops working at once.
/// The body, with the reason, is optional.
#[utoipa::path(
    post,
    path = "/api/admin/schools/{brin}/students/{username}/leave",
    tag = "schools",
    params(
        ("brin" = String, Path, description = "the school's BRIN code", example = "12AB"),
        ("username" = String, Path, description = "the student number", example = "100003"),
    ),
    request_body(content = Option<ReasonBody>, content_type = "application/json",
        description = "optional: an empty body (or `null`) gives no reason",
        example = json!({"reason": "uitgeschreven"})),
    responses((status = 200, description = "left", body = LeftView), WriteRefusals),
    security(("bearer" = ["beheer:<BRIN>"]), ("bearer" = ["platform"])),
)]
pub async fn student_leaves(
    State(state): State<AppState>,
    manager: Manager,
    Path((brin, username)): Path<(String, String)>,
    body: JsonBody,
) -> Result<Json<LeftView>, ApiError> {
    manager.require_school(&brin)?;
    let input: ReasonBody = body
        .parse_or_default::<Option<ReasonBody>>()?
        .unwrap_or_default();
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
    Ok(Json(LeftView {
        school: brin,
        student_number: username,
        left_at: now.to_rfc3339(),
    }))
}

/// One grant (consent) of a student enrolled at the school to a partner.
#[derive(Serialize, ToSchema)]
pub struct GrantView {
    grant_id: String,
    client_id: String,
    student_number: String,
    scopes: Vec<String>,
    /// Who consented: `parent` or `student`.
    given_by: String,
    /// RFC 3339.
    #[schema(format = DateTime)]
    granted_at: String,
    /// RFC 3339.
    #[schema(format = DateTime)]
    expires_at: String,
}

/// The school's active grants: counts per partner and the list.
#[derive(Serialize, ToSchema)]
pub struct GrantsView {
    school: String,
    count: usize,
    /// The number of grants per partner (`client_id`).
    by_partner: BTreeMap<String, u64>,
    grants: Vec<GrantView>,
}

/// Who is connected to which partner with which scopes: counts per partner and the list.
#[utoipa::path(
    get,
    path = "/api/admin/schools/{brin}/grants",
    tag = "schools",
    params(("brin" = String, Path, description = "the school's BRIN code", example = "12AB")),
    responses((status = 200, description = "the school's active grants", body = GrantsView), ReadRefusals),
    security(("bearer" = ["beheer:<BRIN>"]), ("bearer" = ["platform"])),
)]
pub async fn list_grants(
    State(state): State<AppState>,
    manager: Manager,
    Path(brin): Path<String>,
) -> Result<Json<GrantsView>, ApiError> {
    manager.require_school(&brin)?;
    school_exists(&state, &brin).await?;
    let grants = state.store.grants_at_school(&brin, state.now()).await?;
    let mut by_partner = BTreeMap::new();
    for grant in &grants {
        *by_partner.entry(grant.client_id.clone()).or_insert(0) += 1;
    }
    let list = grants
        .iter()
        .map(|g| GrantView {
            grant_id: g.grant_id.clone(),
            client_id: g.client_id.clone(),
            student_number: g.student_number.clone(),
            scopes: words(&g.scopes),
            given_by: g.given_by_role.clone(),
            granted_at: rfc3339(g.granted_at),
            expires_at: rfc3339(g.expires_at),
        })
        .collect();
    Ok(Json(GrantsView {
        school: brin,
        count: grants.len(),
        by_partner,
        grants: list,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawBody {
    /// Omit to withdraw the whole grant.
    #[schema(min_items = 1)]
    scopes: Option<Vec<String>>,
    /// Why: recorded in the audit log.
    #[schema(value_type = String, required = true, min_length = 1)]
    reason: Option<String>,
}

/// A grant after a withdrawal.
#[derive(Serialize, ToSchema)]
pub struct WithdrawnView {
    grant_id: String,
    /// False when the whole grant is withdrawn.
    active: bool,
    /// The scopes that remain (none when withdrawn whole).
    scopes: Vec<String>,
}

/// Withdraw a grant (consent) in whole, or only some of its scopes.
#[utoipa::path(
    post,
    path = "/api/admin/schools/{brin}/grants/{grant_id}/withdraw",
    tag = "schools",
    params(
        ("brin" = String, Path, description = "the school's BRIN code", example = "12AB"),
        ("grant_id" = String, Path, description = "the grant, from the list of grants"),
    ),
    request_body(content = WithdrawBody, content_type = "application/json",
        example = json!({"scopes": ["rooster"], "reason": "ouder trok toestemming voor het rooster in"})),
    responses((status = 200, description = "the grant afterwards", body = WithdrawnView), WriteRefusals),
    security(("bearer" = ["beheer:<BRIN>"]), ("bearer" = ["platform"])),
)]
pub async fn withdraw_grant(
    State(state): State<AppState>,
    manager: Manager,
    Path((brin, grant_id)): Path<(String, String)>,
    body: JsonBody,
) -> Result<Json<WithdrawnView>, ApiError> {
    manager.require_school(&brin)?;
    let input: WithdrawBody = body.parse()?;
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
    Ok(Json(WithdrawnView {
        grant_id,
        active: !withdrawn_whole,
        scopes: if withdrawn_whole {
            Vec::new()
        } else {
            words(&after.scopes)
        },
    }))
}

/// The parent is no longer linked to the child: tokens from the parent's consent stop working.
#[utoipa::path(
    delete,
    path = "/api/admin/schools/{brin}/guardianships/{parent}/{student}",
    tag = "schools",
    params(
        ("brin" = String, Path, description = "the school's BRIN code", example = "12AB"),
        ("parent" = String, Path, description = "the parent's username", example = "p.devries"),
        ("student" = String, Path, description = "the student number", example = "100004"),
    ),
    responses((status = 204, description = "unlinked"), ReadRefusals),
    security(("bearer" = ["beheer:<BRIN>"]), ("bearer" = ["platform"])),
)]
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

/// One row of the audit log.
#[derive(Serialize, ToSchema)]
pub struct AuditEntryView {
    /// RFC 3339.
    #[schema(format = DateTime)]
    at: String,
    /// The management client (`client_id`) or `console`.
    actor: String,
    /// E.g. `link.open`, `closure.create`, `grant.withdraw`.
    action: String,
    /// What it was done to, e.g. `school:12AB/link:huiswerkhulp-demo`.
    target: String,
    #[schema(required = true)]
    reason: Option<String>,
    /// What changed, as recorded.
    #[schema(value_type = Option<Object>, required = true)]
    details: Option<Value>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditView {
    /// Newest first, at most 500.
    entries: Vec<AuditEntryView>,
}

/// The school's audit log: who changed what, when and why (newest first).
#[utoipa::path(
    get,
    path = "/api/admin/schools/{brin}/audit",
    tag = "schools",
    params(("brin" = String, Path, description = "the school's BRIN code", example = "12AB")),
    responses((status = 200, description = "the newest entries", body = AuditView), ReadRefusals),
    security(("bearer" = ["beheer:<BRIN>"]), ("bearer" = ["platform"])),
)]
pub async fn audit_log(
    State(state): State<AppState>,
    manager: Manager,
    Path(brin): Path<String>,
) -> Result<Json<AuditView>, ApiError> {
    manager.require_school(&brin)?;
    school_exists(&state, &brin).await?;
    let entries = state
        .store
        .audit_log(&format!("school:{brin}/"), 500)
        .await?;
    let entries = entries
        .into_iter()
        .map(|e| AuditEntryView {
            at: rfc3339(e.at),
            actor: e.actor,
            action: e.action,
            target: e.target,
            reason: e.reason,
            details: e
                .details
                .as_deref()
                .and_then(|d| serde_json::from_str::<Value>(d).ok()),
        })
        .collect();
    Ok(Json(AuditView { entries }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccreditationBody {
    #[schema(value_type = SettableAccreditation)]
    status: String,
    /// Keeps the current end when left out.
    valid_until: Option<DateTime<Utc>>,
    /// Why: recorded in the audit log.
    reason: Option<String>,
}

/// A partner's accreditation, as it is now.
#[derive(Serialize, ToSchema)]
pub struct AccreditationView {
    client_id: String,
    #[schema(value_type = SettableAccreditation)]
    status: String,
    /// RFC 3339.
    #[schema(format = DateTime, required = true)]
    valid_from: Option<String>,
    /// RFC 3339.
    #[schema(format = DateTime, required = true)]
    valid_until: Option<String>,
}

/// Accredit or suspend a partner (scope platform only).
#[utoipa::path(
    put,
    path = "/api/admin/partners/{client_id}/accreditation",
    tag = "partners",
    params(("client_id" = String, Path, description = "the partner", example = "huiswerkhulp-demo")),
    request_body(content = AccreditationBody, content_type = "application/json",
        example = json!({"status": "accredited", "valid_until": "2030-12-31T23:00:00Z", "reason": "accreditatie verlengd"})),
    responses((status = 200, description = "the accreditation", body = AccreditationView), WriteRefusals),
    security(("bearer" = ["platform"])),
)]
pub async fn set_accreditation(
    State(state): State<AppState>,
    manager: Manager,
    Path(client_id): Path<String>,
    body: JsonBody,
) -> Result<Json<AccreditationView>, ApiError> {
    manager.require_platform()?;
    let input: AccreditationBody = body.parse()?;
    // One implementation with the CLI (`poortwachter partner accredit|suspend`).
    let accreditation = crate::onboarding::registrations::set_accreditation(
        &state,
        &manager.actor(),
        &client_id,
        crate::onboarding::registrations::AccreditationChange {
            status: input.status,
            valid_until: input.valid_until,
            reason: input.reason,
        },
    )
    .await?;
    Ok(Json(AccreditationView {
        client_id,
        status: accreditation.status,
        valid_from: accreditation.valid_from.map(|t| t.to_rfc3339()),
        valid_until: accreditation.valid_until.map(|t| t.to_rfc3339()),
    }))
}
