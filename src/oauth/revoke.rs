//! Token revocation (RFC 7009): a client revokes its own access or refresh token, or a
//! management client its admin-API token. Revoking a refresh token ends every token
//! descending from the same authorization code.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::client_auth::authenticate;
use super::error::OAuthError;
use super::params::Params;
use crate::crypto::tokens::hash_token;
use crate::AppState;

/// `POST /revoke`
pub async fn revoke(
    State(state): State<AppState>,
    ip: crate::serve::ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let params = Params::parse_form(&body)?;
    let client = authenticate(&state, ip, &headers, &params).await?;
    let token = params
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let hash = hash_token(token);
    let now = state.now();
    let mut changed = false;
    // RFC 7009 §2.1: the hint is only an optimisation; look in both places.
    if let Some(access) = state.store.get_access_token(&hash).await? {
        if access.client_id == client.client_id {
            changed |= state.store.revoke_access_token(&hash, now).await?;
        }
    } else if let Some(refresh) = state.store.get_refresh_token(&hash).await? {
        if refresh.client_id == client.client_id {
            changed |= state.store.revoke_family(&refresh.family_id, now).await? > 0;
        }
    } else if state
        .store
        .revoke_management_token(&hash, &client.client_id, now)
        .await?
    {
        // Every token the server issues is revocable; the admin API answers 401 at once
        // (management tokens are looked up in the database on every call, never cached).
        tracing::info!(client = %client.client_id, "management token revoked by its client");
    }
    if changed {
        state.cache.changed(&state.store).await;
        tracing::info!(client = %client.client_id, "token revoked by the client");
    }
    // RFC 7009 §2.2: 200 whether or not the token was known, so nothing can be probed.
    let mut response = StatusCode::OK.into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
