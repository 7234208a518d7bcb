//! Activation codes through the admin API: the school asks for letters for some of its people
//! (by username) or for all its students or parents. The answer carries the codes once.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::admin::{JsonBody, Manager};
use super::error::{ApiError, WriteRefusals};
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
    tag = "schools",
    params(("brin" = String, Path, description = "the school's BRIN code", example = "12AB")),
    request_body(content = IssueActivationCodes, example = json!({"usernames": ["100001", "p.devries"]})),
    responses(
        (status = 201, description = "the codes, shown only this once", body = [IssuedCode]),
        WriteRefusals,
    ),
    security(("bearer" = ["beheer:<BRIN>"]), ("bearer" = ["platform"]))
)]
pub async fn issue_activation_codes(
    State(state): State<AppState>,
    manager: Manager,
    Path(brin): Path<String>,
    body: JsonBody,
) -> Result<Response, ApiError> {
    manager.require_school(&brin)?;
    let request: IssueActivationCodes = body.parse()?;
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

fn refusal(e: OnboardingError) -> ApiError {
    match e {
        OnboardingError::Invalid { .. } | OnboardingError::Conflict(_) => {
            ApiError::bad_request(e.to_string())
        }
        OnboardingError::Forbidden(message) => ApiError::forbidden(message),
        OnboardingError::NotFound(message) => ApiError::not_found(message),
        OnboardingError::Database(cause) => ApiError::from(cause),
        OnboardingError::Internal(cause) => ApiError::internal(format!("{cause:#}")),
    }
}
