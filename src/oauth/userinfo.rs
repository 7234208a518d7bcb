//! The UserInfo endpoint (OIDC Core §5.3): the same scope-bound claims as the ID token, for a
//! bearer access token (RFC 6750 §2.1 header, or §2.2 form body) that is live under the
//! current policy.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::error::OAuthError;
use super::id_token::subject_claims;
use super::live_policy::evaluate_access_token;
use super::params::Params;
use crate::crypto::tokens::hash_token;
use crate::domain::scope::Scope;
use crate::AppState;

/// `GET|POST /userinfo`
pub async fn userinfo(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    // RFC 6750 §2.1 with RFC 9110 §11.1: the scheme is case-insensitive.
    let in_header = super::client_auth::credentials(&headers, "Bearer").filter(|t| !t.is_empty());
    // RFC 6750 §2.2: `access_token` in a form-encoded POST body (pyoidc's default).
    let is_form = super::params::is_form(&headers);
    let form = match (method == Method::POST && is_form, body.is_empty()) {
        (true, false) => Some(Params::parse_form(&body)?),
        _ => None,
    };
    let in_body = form
        .as_ref()
        .and_then(|f| f.get("access_token"))
        .filter(|t| !t.is_empty());
    let token = match (in_header, in_body) {
        (Some(token), None) | (None, Some(token)) => token,
        // RFC 6750 §2: a client MUST NOT use more than one method.
        (Some(_), Some(_)) => {
            return Err(OAuthError::invalid_request(
                "send the access token once: in the Authorization header or in the body",
            ))
        }
        (None, None) => return Err(OAuthError::missing_bearer()),
    };
    let now = state.now();
    let active = match evaluate_access_token(&state, &hash_token(token), now).await? {
        Ok(active) => active,
        Err(reason) => {
            tracing::debug!(reason = reason.label(), "userinfo refused by live policy");
            return Err(OAuthError::invalid_token());
        }
    };
    let scopes = active.scopes();
    if !scopes.contains(Scope::OpenId) {
        return Err(OAuthError::insufficient_scope("openid"));
    }
    // "Wie keek mee": the partner read the login confirmation (`sub`) and, with `naam`, the
    // name. The school's own app is not a partner and is not listed.
    if !active.live.is_first_party() {
        let read = [Scope::OpenId, Scope::Naam];
        state.reads.record(
            &active.live.grant.id,
            read.into_iter().filter(|s| scopes.contains(*s)),
            now,
        );
    }
    let claims = subject_claims(
        &state,
        &active.token.client_id,
        &active.live.subject,
        active.token.actor_id.as_deref(),
        &scopes,
    );
    let mut response = Json(claims).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
