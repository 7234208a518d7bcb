//! Client authentication at the token endpoint (RFC 6749 §2.3.1): `client_secret_basic`,
//! `client_secret_post`, and `none` for registered public clients. Secrets are argon2id hashes;
//! an unknown client costs the same work as a known one.

use axum::http::{header, HeaderMap};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::error::OAuthError;
use super::params::Params;
use crate::crypto::password::verify_password;
use crate::crypto::tokens::{constant_time_eq, sha256_b64url};
use crate::storage::clients::Client;
use crate::AppState;

/// Credentials as presented, before verification.
struct Presented {
    client_id: String,
    secret: Option<String>,
    method: &'static str,
}

fn presented(headers: &HeaderMap, params: &Params) -> Result<Presented, OAuthError> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        });
    if let Some(encoded) = basic {
        // RFC 6749 §2.3: a client MUST NOT use more than one authentication method.
        if params.get("client_secret").is_some() {
            return Err(OAuthError::invalid_request(
                "use one client authentication method",
            ));
        }
        let decoded = STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| OAuthError::invalid_client(true))?;
        let (id, secret) = decoded
            .split_once(':')
            .ok_or_else(|| OAuthError::invalid_client(true))?;
        // RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
        let id = form_decode(id);
        let secret = form_decode(secret);
        if params.get("client_id").is_some_and(|body_id| body_id != id) {
            return Err(OAuthError::invalid_request(
                "client_id does not match the Authorization header",
            ));
        }
        return Ok(Presented {
            client_id: id,
            secret: Some(secret),
            method: "client_secret_basic",
        });
    }
    let Some(client_id) = params.get("client_id") else {
        return Err(OAuthError::invalid_client(false));
    };
    Ok(match params.get("client_secret") {
        Some(secret) => Presented {
            client_id: client_id.to_string(),
            secret: Some(secret.to_string()),
            method: "client_secret_post",
        },
        None => Presented {
            client_id: client_id.to_string(),
            secret: None,
            method: "none",
        },
    })
}

fn form_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Authenticate the calling client, or fail with `invalid_client` (401).
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Client, OAuthError> {
    let presented = presented(headers, params)?;
    let used_basic = presented.method == "client_secret_basic";
    let client = state.store.get_client(&presented.client_id).await?;
    let method_allowed = client
        .as_ref()
        .is_some_and(|c| c.allows_auth_method(presented.method));
    match presented.secret {
        Some(secret) => {
            let hashes = client
                .as_ref()
                .map(|c| c.secret_hashes_at(state.now()))
                .unwrap_or_default();
            // Verify even when the client is unknown or the method is wrong: equal timing.
            let ok = verify_any(&secret, hashes).await.is_some();
            match client {
                Some(client) if ok && method_allowed && client.is_active() => Ok(client),
                _ => Err(OAuthError::invalid_client(used_basic)),
            }
        }
        None => match client {
            Some(client) if method_allowed && client.secret_hash.is_none() => Ok(client),
            _ => Err(OAuthError::invalid_client(false)),
        },
    }
}

/// The hash `secret` verifies against: the current secret, or during a rotation's grace
/// period the previous one. With no hash at all the dummy work still runs (equal timing).
async fn verify_any(secret: &str, hashes: Vec<String>) -> Option<String> {
    if hashes.is_empty() {
        verify_password(secret.to_string(), None).await;
        return None;
    }
    for hash in hashes {
        if verify_password(secret.to_string(), Some(hash.clone())).await {
            return Some(hash);
        }
    }
    None
}

/// How long a verified secret is remembered.
const REMEMBER_VERIFIED_SECRET: std::time::Duration = std::time::Duration::from_secs(300);

/// Authentication for the hot path (introspection): a secret that verified once is
/// remembered as SHA-256(secret) for a few minutes, so the resource server's every call does
/// not pay for argon2. A wrong secret never matches the remembered digest and always pays the
/// full argon2 price; a changed secret hash in the database invalidates the memory.
pub async fn authenticate_cached(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
) -> Result<std::sync::Arc<Client>, OAuthError> {
    let presented = presented(headers, params)?;
    let used_basic = presented.method == "client_secret_basic";
    let Some(secret) = presented.secret else {
        return Err(OAuthError::invalid_client(used_basic));
    };
    let client = super::live_policy::client(state, &presented.client_id).await?;
    let digest = sha256_b64url(secret.as_bytes());
    let key = (presented.client_id.clone(), digest);
    if let Some(client) = &client {
        if let Some((remembered, at)) = state.verified_secrets.get(&key) {
            // The remembered hash must still be one that authenticates now (a rotated
            // secret stops at the end of its grace period).
            if at.elapsed() < REMEMBER_VERIFIED_SECRET
                && client.is_active()
                && client
                    .secret_hashes_at(state.now())
                    .iter()
                    .any(|h| constant_time_eq(&remembered, h))
                && client.allows_auth_method(presented.method)
            {
                return Ok(std::sync::Arc::clone(client));
            }
        }
    }
    let hashes = client
        .as_ref()
        .map(|c| c.secret_hashes_at(state.now()))
        .unwrap_or_default();
    let matched = verify_any(&secret, hashes).await;
    match (client, matched) {
        (Some(client), Some(phc))
            if client.is_active() && client.allows_auth_method(presented.method) =>
        {
            state
                .verified_secrets
                .insert(key, (phc, tokio::time::Instant::now()));
            Ok(client)
        }
        _ => Err(OAuthError::invalid_client(used_basic)),
    }
}
