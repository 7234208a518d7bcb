//! `POST /api/admin/schools/{brin}/roster`: the school's OneRoster export as a zip, imported
//! in one transaction (see [`crate::onboarding::roster`]).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::admin::Manager;
use super::error::{ApiError, ErrorBody, ReadRefusals};
use crate::onboarding::roster::{
    import_roster as import, ImportOptions, ImportReport, RosterSource,
};
use crate::onboarding::OnboardingError;
use crate::AppState;

/// The largest zip the route accepts (the body limit); what it unpacks to is capped apart.
pub const MAX_UPLOAD_BYTES: usize = 64 * 1024 * 1024;

#[derive(Deserialize, utoipa::IntoParams)]
pub struct RosterQuery {
    /// `true`: compute the summary and every error, change nothing.
    #[param(example = "false")]
    dry_run: Option<String>,
}

/// Import the school's people from a OneRoster 1.1/1.2 CSV export (zip of `manifest.csv`,
/// `orgs.csv`, `users.csv`, `demographics.csv`). A bulk file replaces the school's list
/// (students missing from it leave, guardianships missing from it end); a delta file changes
/// only what it names. Any error and nothing changes; importing the same file twice changes
/// nothing the second time.
#[utoipa::path(
    post,
    path = "/api/admin/schools/{brin}/roster",
    tag = "schools",
    params(
        ("brin" = String, Path, description = "The school's BRIN code", example = "56EF"),
        RosterQuery,
    ),
    request_body(content = Vec<u8>, content_type = "application/zip",
        description = "A zip of the OneRoster CSV files",
        example = "(a zip of manifest.csv, orgs.csv, users.csv and demographics.csv)"),
    responses(
        (status = 200, description = "Imported (or dry run): what changed", body = ImportReport),
        (status = 400, description = "The files are broken; nothing changed", body = ImportReport),
        ReadRefusals,
        (status = 413, description = "The zip is larger than 64 MiB", body = ErrorBody),
        (status = 415, description = "The body is not application/zip", body = ErrorBody),
    ),
    security(("bearer" = ["beheer:<BRIN>"]), ("bearer" = ["platform"]))
)]
pub async fn import_roster(
    State(state): State<AppState>,
    manager: Manager,
    Path(brin): Path<String>,
    Query(query): Query<RosterQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Response> {
    let actor = manager.actor();
    actor.require_school(&brin).map_err(error_response)?;
    let dry_run = match query.dry_run.as_deref() {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") => true,
        Some(_) => {
            return Err(ApiError::bad_request("dry_run must be true or false").into_response())
        }
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    if !matches!(
        content_type.as_deref(),
        Some("application/zip" | "application/x-zip-compressed")
    ) {
        return Err((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Json(json!({
                "error": "invalid_request",
                "message": "Content-Type must be application/zip (a zip of the OneRoster CSV files)",
            })),
        )
            .into_response());
    }
    let report = import(
        &state,
        &actor,
        &brin,
        RosterSource::Zip(body.to_vec()),
        ImportOptions {
            dry_run,
            progress: None,
        },
    )
    .await
    .map_err(error_response)?;
    let status = if report.has_errors() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok((status, Json(report)).into_response())
}

fn error_response(e: OnboardingError) -> Response {
    match e {
        OnboardingError::Invalid { field, message } => {
            ApiError::bad_request(format!("{field}: {message}")).into_response()
        }
        OnboardingError::Forbidden(m) => ApiError::forbidden(m).into_response(),
        OnboardingError::NotFound(m) => ApiError::not_found(m).into_response(),
        OnboardingError::Conflict(m) => (
            StatusCode::CONFLICT,
            Json(json!({ "error": "conflict", "message": m })),
        )
            .into_response(),
        other => ApiError::internal(other).into_response(),
    }
}
