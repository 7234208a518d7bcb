//! Activation codes through the admin API: the school asks for letters for some of its people
//! (by username) or for all its students or parents. The answer carries the codes once.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::admin::Manager;
use super::error::ApiError;
use crate::domain::account::Role;
use crate::onboarding::activation::{issue_codes, IssuedCode, Recipients};
use crate::onboarding::OnboardingError;
use crate::AppState;

/// Either `usernames` or `role`, exactly one.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueActivationCodes {
    /// These people of the school.
    #[serde(default)]
    pub usernames: Option<Vec<String>>,
    /// Every student or every parent of the school whose login is enabled.
    #[serde(default)]
    pub role: Option<LetterRole>,
}

/// Who may get a letter: students and parents (supervisors log in differently).
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LetterRole {
    Student,
    Parent,
}

/// Issue activation codes. Each code replaces the person's earlier code and ends their
/// password and browser sessions (this is also the school's password reset); grants stay.
#[utoipa::path(
    post,
    path = "/api/admin/schools/{brin}/activation-codes",
    tag = "activation",
    params(("brin" = String, Path, description = "The school's BRIN code")),
    request_body = IssueActivationCodes,
    responses(
        (status = 201, description = "The codes, shown only this once", body = [IssuedCode]),
        (status = 400, description = "Neither or both of `usernames` and `role`, an unknown field, a supervisor or a disabled login"),
        (status = 401, description = "No valid management token"),
        (status = 403, description = "Scope `beheer:<BRIN>` or `platform` required"),
        (status = 404, description = "Unknown school, or usernames the school does not have (all named; nothing issued)"),
    )
)]
pub async fn issue_activation_codes(
    State(state): State<AppState>,
    manager: Manager,
    Path(brin): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: IssueActivationCodes = parse(&body)?;
    let who = match (request.usernames, request.role) {
        (Some(usernames), None) => Recipients::Usernames(usernames),
        (None, Some(LetterRole::Student)) => Recipients::Role(Role::Student),
        (None, Some(LetterRole::Parent)) => Recipients::Role(Role::Parent),
        (None, None) => {
            return Err(ApiError::bad_request(
                "usernames or role is required (exactly one of them)",
            ))
        }
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "role: give usernames or role, not both",
            ))
        }
    };
    let issued = issue_codes(&state, &manager.actor(), &brin, who)
        .await
        .map_err(refusal)?;
    Ok((
        StatusCode::CREATED,
        // The codes are secrets: no cache anywhere may keep them (RFC 9111 §5.2.2.5).
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Json(issued),
    )
        .into_response())
}

/// The JSON body, or 400 naming the field that does not fit.
fn parse(bytes: &Bytes) -> Result<IssueActivationCodes, ApiError> {
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

fn refusal(e: OnboardingError) -> ApiError {
    match e {
        OnboardingError::Invalid { .. } | OnboardingError::Conflict(_) => {
            ApiError::bad_request(e.to_string())
        }
        OnboardingError::Forbidden(message) => ApiError::forbidden(message),
        OnboardingError::NotFound(message) => ApiError::not_found(message),
        OnboardingError::Database(cause) => ApiError::internal(cause),
        OnboardingError::Internal(cause) => ApiError::internal(format!("{cause:#}")),
    }
}
