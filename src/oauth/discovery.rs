//! Server metadata (OIDC Discovery 1.0 §3, RFC 8414 §2) and the public keys (RFC 7517).

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::client_assertion::ALGORITHMS;
use super::error::OAuthError;
use crate::domain::scope::Scope;
use crate::AppState;

/// The metadata; `tenants` are the `acr` values, one per school (`tenant:<BRIN>`, the
/// convention Magister's partners already send as `acr_values`).
fn metadata(state: &AppState, tenants: &[String]) -> Value {
    let scopes: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
    json!({
        "issuer": state.config.issuer,
        "authorization_endpoint": state.url("/authorize"),
        "token_endpoint": state.url("/token"),
        "userinfo_endpoint": state.url("/userinfo"),
        "jwks_uri": state.url("/jwks"),
        "introspection_endpoint": state.url("/introspect"),
        "revocation_endpoint": state.url("/revoke"),
        "pushed_authorization_request_endpoint": state.url("/par"),
        "end_session_endpoint": state.url("/logout"),
        "require_pushed_authorization_requests": state.config.require_pushed_requests,
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        "revocation_endpoint_auth_signing_alg_values_supported": ALGORITHMS,
        "introspection_signing_alg_values_supported": ["RS256"],
        "scopes_supported": scopes,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        "token_endpoint_auth_signing_alg_values_supported": ALGORITHMS,
        "code_challenge_methods_supported": ["S256"],
        "acr_values_supported": tenants,
        "claims_supported": ["sub", "iss", "aud", "azp", "exp", "iat", "auth_time", "nonce", "sid", "acr",
                             "at_hash", "name", "given_name", "family_name", "geslachtsnaam",
                             "tussenvoegsel", "act"],
        "prompt_values_supported": ["none", "login", "consent"],
        "ui_locales_supported": ["nl", "en"],
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
    })
}

fn cacheable(body: Value) -> Response {
    let mut response = Json(body).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

/// `GET /.well-known/openid-configuration`
pub async fn openid_configuration(State(state): State<AppState>) -> Result<Response, OAuthError> {
    Ok(cacheable(metadata(&state, &tenants(&state).await?)))
}

/// `tenant:<BRIN>` of every school, the values `acr` takes.
async fn tenants(state: &AppState) -> Result<Vec<String>, OAuthError> {
    Ok(state
        .store
        .list_schools()
        .await?
        .into_iter()
        .map(|school| format!("tenant:{}", school.brin))
        .collect())
}

/// `GET /.well-known/oauth-authorization-server` (RFC 8414): the same document.
pub async fn oauth_metadata(State(state): State<AppState>) -> Result<Response, OAuthError> {
    Ok(cacheable(metadata(&state, &tenants(&state).await?)))
}

/// `GET /jwks`
pub async fn jwks(State(state): State<AppState>) -> Response {
    let keys: Vec<Value> = state
        .keys
        .iter()
        .map(|k| Value::Object(k.public_jwk().clone()))
        .collect();
    cacheable(json!({ "keys": keys }))
}
