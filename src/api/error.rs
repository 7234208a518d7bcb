//! Errors of the admin API: `{"error": code, "message": text}` with the right status, and
//! the documented sets of refusals that `#[utoipa::path]` lists for each operation.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::{IntoResponses, ToSchema};

use crate::onboarding::OnboardingError;

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

/// The body of every error answer of the admin API.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"error": "invalid_request", "message": "invalid JSON body at open: invalid type: string \"yes\", expected a boolean"}))]
pub struct ErrorBody {
    /// A stable code: `invalid_request`, `invalid_token`, `insufficient_scope`, `not_found`,
    /// `conflict`, `unsupported_media_type`, `content_too_large` or `server_error`.
    pub error: String,
    /// What is wrong, for a person; names the field when a field is wrong.
    pub message: String,
}

impl ApiError {
    pub fn unauthorized() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: "invalid_token",
            message: "a valid management access token is required (client_credentials)".into(),
        }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            code: "insufficient_scope",
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_request",
            message: message.into(),
        }
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::CONFLICT,
            code: "conflict",
            message: message.into(),
        }
    }

    /// RFC 9110 §15.5.16: the body is not in a format this operation accepts.
    pub fn unsupported_media_type() -> Self {
        Self {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code: "unsupported_media_type",
            message: "the body must be JSON: send Content-Type: application/json".into(),
        }
    }

    /// RFC 9110 §15.5.14.
    pub fn content_too_large(limit: usize) -> Self {
        Self {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "content_too_large",
            message: format!("the body is larger than {limit} bytes"),
        }
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error in the admin API");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "server_error",
            message: "internal error".into(),
        }
    }

    /// The database cannot be reached right now: `503`, answered with `Retry-After`.
    pub fn unavailable() -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "temporarily_unavailable",
            message: "the service is temporarily unavailable, try again".into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        if crate::storage::is_unavailable(&e) {
            tracing::warn!(error = %e, "database unavailable in the admin API");
            ApiError::unavailable()
        } else {
            ApiError::internal(e)
        }
    }
}

impl From<OnboardingError> for ApiError {
    fn from(e: OnboardingError) -> Self {
        match e {
            OnboardingError::Invalid { .. } => ApiError::bad_request(e.to_string()),
            OnboardingError::Forbidden(m) => ApiError::forbidden(m),
            OnboardingError::NotFound(m) => ApiError::not_found(m),
            OnboardingError::Conflict(m) => ApiError::conflict(m),
            OnboardingError::Database(cause) => ApiError::from(cause),
            OnboardingError::Internal(cause) => ApiError::internal(cause),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code.to_string(),
            message: self.message,
        };
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 6750 §3: every 401 names the scheme and why.
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(
                    r#"Bearer realm="poortwachter-admin", error="invalid_token""#,
                ),
            );
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            // RFC 9110 §10.2.3: when to try again.
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(crate::storage::RETRY_AFTER_SECS),
            );
        }
        response
    }
}

/// The refusals of an operation without a body: list it in `responses(...)` of
/// `#[utoipa::path]` next to the success response.
#[derive(IntoResponses)]
pub enum ReadRefusals {
    /// No or invalid management token (with `WWW-Authenticate`).
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// The token's scope does not cover this school (`beheer:<BRIN>`) or needs `platform`.
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// The school, or a thing named in the path, does not exist.
    #[response(status = 404)]
    NotFound(ErrorBody),
}

/// The refusals of an operation that takes a JSON body.
#[derive(IntoResponses)]
pub enum WriteRefusals {
    /// Malformed body (bad JSON, trailing data, an unknown or missing field, a bad value),
    /// with a message naming the field.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// No or invalid management token (with `WWW-Authenticate`).
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// The token's scope does not cover this school (`beheer:<BRIN>`) or needs `platform`.
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// The school, or a thing named in the path, does not exist.
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// The body is larger than 1 MiB.
    #[response(status = 413)]
    ContentTooLarge(ErrorBody),
    /// The body is not sent as `Content-Type: application/json`.
    #[response(status = 415)]
    UnsupportedMediaType(ErrorBody),
}
