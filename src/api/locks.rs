//! Login locks for the school console: which of the school's accounts are locked by failed
//! logins from browsers they have not used before, and lifting such a lock. The owner's own
//! browser (with its device cookie) is never locked by others' failures; these locks are what
//! a supervisor lifts when a student or parent calls from a new device.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::error::{ApiError, ReadRefusals};
use crate::crypto::tokens::hash_token;
use crate::onboarding::Actor;
use crate::storage::from_ts;
use crate::AppState;

/// One locked login.
#[derive(Debug, Serialize, ToSchema)]
pub struct LockView {
    /// The username (for students: the student number).
    pub username: String,
    /// When the lock began (RFC 3339).
    pub locked_at: String,
    /// When it ends by itself (RFC 3339).
    pub until: String,
}

/// The school's current login locks.
#[derive(Debug, Serialize, ToSchema)]
pub struct LocksView {
    pub school: String,
    pub locks: Vec<LockView>,
}

/// The management client behind the bearer token, allowed to manage `brin`.
async fn school_manager(
    state: &AppState,
    headers: &HeaderMap,
    brin: &str,
) -> Result<Actor, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then_some(rest.trim())
        })
        .ok_or_else(ApiError::unauthorized)?;
    let found = state
        .store
        .find_management_token(&hash_token(token), state.now())
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    let actor = Actor::management_client(&found.client_id, &found.scopes);
    if !actor.may_manage_school(brin) {
        return Err(ApiError::forbidden(format!(
            "scope beheer:{brin} or platform required"
        )));
    }
    if state.store.get_school(brin).await?.is_none() {
        return Err(ApiError::not_found(format!("unknown school {brin}")));
    }
    Ok(actor)
}

fn no_store(response: impl IntoResponse) -> Response {
    let mut response = response.into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    response
}

/// `GET /api/admin/schools/{brin}/locks`
#[utoipa::path(
    get,
    path = "/api/admin/schools/{brin}/locks",
    tag = "schools",
    params(("brin" = String, Path, description = "the school's BRIN code", example = "12AB")),
    responses(
        (status = 200, description = "the school's current login locks", body = LocksView),
        ReadRefusals,
    ),
    security(("bearer" = ["beheer:<BRIN>"]), ("bearer" = ["platform"]))
)]
pub async fn list_locks(
    State(state): State<AppState>,
    Path(brin): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    school_manager(&state, &headers, &brin).await?;
    let locks = state
        .store
        .login_locks(&brin, state.now())
        .await?
        .into_iter()
        .map(|lock| LockView {
            username: lock.username,
            locked_at: from_ts(lock.locked_at).to_rfc3339(),
            until: from_ts(lock.expires_at).to_rfc3339(),
        })
        .collect();
    Ok(no_store(Json(LocksView {
        school: brin,
        locks,
    })))
}

/// `DELETE /api/admin/schools/{brin}/locks/{username}`: lift the lock; audited.
#[utoipa::path(
    delete,
    path = "/api/admin/schools/{brin}/locks/{username}",
    tag = "schools",
    params(
        ("brin" = String, Path, description = "the school's BRIN code", example = "12AB"),
        ("username" = String, Path, description = "the locked username", example = "100001"),
    ),
    responses(
        (status = 204, description = "the lock is lifted"),
        ReadRefusals,
    ),
    security(("bearer" = ["beheer:<BRIN>"]), ("bearer" = ["platform"]))
)]
pub async fn lift_lock(
    State(state): State<AppState>,
    Path((brin, username)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let actor = school_manager(&state, &headers, &brin).await?;
    let now = state.now();
    if !state.store.delete_login_lock(&brin, &username, now).await? {
        return Err(ApiError::not_found(format!(
            "no login lock for {username} at {brin}"
        )));
    }
    crate::web::throttle::lift(&state, &brin, &username).await;
    state
        .store
        .audit(
            &actor.id,
            "login.unlock",
            &format!("school:{brin}/account:{username}"),
            Some("login lock lifted"),
            None,
            now,
        )
        .await?;
    Ok(no_store(StatusCode::NO_CONTENT))
}
