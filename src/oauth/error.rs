//! Errors for OAuth callers (token, userinfo): JSON bodies per RFC 6749 §5.2 and RFC 6750 §3,
//! never cached, internal causes logged and never shown.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

#[derive(Debug)]
pub struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: Option<String>,
    www_authenticate: Option<String>,
    /// Seconds for `Retry-After` (RFC 9110 §10.2.3) on 429 and 503.
    retry_after: Option<u64>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_description: Option<&'a str>,
}

impl OAuthError {
    fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            error,
            description: Some(description.into()),
            www_authenticate: None,
            retry_after: None,
        }
    }

    /// 429: too many attempts from this client or address (RFC 6585 §4).
    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        Self {
            retry_after: Some(retry_after_secs.max(1)),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                format!(
                    "too many requests; try again in {} seconds",
                    retry_after_secs.max(1)
                ),
            )
        }
    }

    /// 503: the password-hashing queue is full; the request was not tried (RFC 9110 §15.6.4).
    pub fn busy() -> Self {
        Self {
            retry_after: Some(1),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "the server is busy; try again in a second",
            )
        }
    }

    /// 400 with an authorization-request error (RFC 6749 §4.1.2.1 codes), for requests that
    /// are answered as JSON instead of a redirect (pushed requests, RFC 9126 §2.3).
    pub fn bad_authorization_request(error: &'static str, d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, error, d)
    }

    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", d)
    }

    /// RFC 6749 §5.2: 401 with `WWW-Authenticate`. Sent whether or not the client tried HTTP
    /// Basic: RFC 9110 §15.5.2 requires a challenge on every 401 (`_used_basic` is kept for
    /// the callers' readability).
    pub fn invalid_client(_used_basic: bool) -> Self {
        let mut e = Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        );
        e.www_authenticate = Some(r#"Basic realm="poortwachter", charset="UTF-8""#.into());
        e
    }

    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", d)
    }

    pub fn unauthorized_client(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "unauthorized_client", d)
    }

    pub fn unsupported_grant_type(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "unsupported_grant_type", d)
    }

    pub fn invalid_scope(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_scope", d)
    }

    /// RFC 6750 §3.1: a request without any bearer token gets a bare challenge.
    pub fn missing_bearer() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            error: "invalid_request",
            description: Some("bearer token required".into()),
            www_authenticate: Some(r#"Bearer realm="poortwachter""#.into()),
            retry_after: None,
        }
    }

    pub fn invalid_token() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            error: "invalid_token",
            description: Some("the access token is not active".into()),
            www_authenticate: Some(
                r#"Bearer realm="poortwachter", error="invalid_token", error_description="the access token is not active""#.into(),
            ),
            retry_after: None,
        }
    }

    pub fn insufficient_scope(scope: &str) -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            error: "insufficient_scope",
            description: Some(format!("scope {scope} required")),
            www_authenticate: Some(format!(
                r#"Bearer realm="poortwachter", error="insufficient_scope", scope="{scope}""#
            )),
            retry_after: None,
        }
    }

    /// Something broke on our side. The cause goes to the log, the caller sees `server_error`.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error at an OAuth endpoint");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            error: "server_error",
            description: None,
            www_authenticate: None,
            retry_after: None,
        }
    }

    /// The database cannot be reached right now: `503` with `Retry-After`, so the caller
    /// retries instead of treating it as a failure of its request (RFC 6749 §4.1.2.1 names
    /// the code `temporarily_unavailable`).
    pub fn unavailable() -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            error: "temporarily_unavailable",
            description: Some("the service is temporarily unavailable, try again".into()),
            www_authenticate: None,
            retry_after: Some(u64::from(crate::storage::RETRY_AFTER_SECS)),
        }
    }

    pub fn error_code(&self) -> &'static str {
        self.error
    }
}

impl From<sqlx::Error> for OAuthError {
    fn from(e: sqlx::Error) -> Self {
        if crate::storage::is_unavailable(&e) {
            tracing::warn!(error = %e, "database unavailable at an OAuth endpoint");
            OAuthError::unavailable()
        } else {
            OAuthError::internal(e)
        }
    }
}

impl From<anyhow::Error> for OAuthError {
    fn from(e: anyhow::Error) -> Self {
        OAuthError::internal(e)
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(Body {
                error: self.error,
                error_description: self.description.as_deref(),
            }),
        )
            .into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if let Some(challenge) = self
            .www_authenticate
            .and_then(|c| HeaderValue::from_str(&c).ok())
        {
            headers.insert(header::WWW_AUTHENTICATE, challenge);
        }
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
