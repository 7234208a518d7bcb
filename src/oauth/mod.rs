//! Protocol endpoints for machines (JSON): discovery, JWKS, token, introspection, revocation,
//! userinfo and health checks, and the authorization endpoint's protocol rules (the browser
//! side of `/authorize` is `crate::flow`).

pub mod authorize;
pub mod client_assertion;
pub mod client_auth;
pub mod client_keys;
pub mod discovery;
pub mod error;
pub mod id_token;
pub mod introspect;
pub mod live_policy;
pub mod par;
pub mod params;
pub mod pkce;
pub mod revoke;
pub mod token;
pub mod userinfo;

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;

use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(discovery::openid_configuration),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(discovery::oauth_metadata),
        )
        .route("/jwks", get(discovery::jwks))
        .route("/token", axum::routing::post(token::token))
        .route("/par", axum::routing::post(par::push))
        .route("/introspect", axum::routing::post(introspect::introspect))
        .route("/revoke", axum::routing::post(revoke::revoke))
        .route(
            "/userinfo",
            get(userinfo::userinfo).post(userinfo::userinfo),
        )
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// Liveness: the process answers.
async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the database answers, and the policy cache is filled (for at most
/// `cache_warm_secs` after start), so a load balancer sends traffic to an instance that
/// answers it from memory.
async fn readyz(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> (StatusCode, &'static str) {
    if state.cache.is_warming() {
        return (StatusCode::SERVICE_UNAVAILABLE, "filling the policy cache");
    }
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ok"),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check: database unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable")
        }
    }
}
