//! The token endpoint (RFC 6749 §3.2): `authorization_code` with PKCE, and `refresh_token`
//! with rotation. Every response is `Cache-Control: no-store` (RFC 6749 §5.1).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::client_auth::authenticate;
use super::error::OAuthError;
use super::id_token::{self, IdTokenInput};
use super::live_policy::{self, LiveGrant, Presented};
use super::params::Params;
use super::pkce;
use crate::crypto::tokens::{hash_token, random_token};
use crate::domain::scope::{Scope, ScopeSet};
use crate::storage::clients::Client;
use crate::storage::tokens::{AccessToken, RedeemError, RefreshToken};
use crate::storage::ts;
use crate::AppState;

#[derive(Serialize)]
struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
    scope: String,
}

impl IntoResponse for TokenResponse {
    fn into_response(self) -> Response {
        let mut response = Json(self).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        response
    }
}

/// `POST /token`
pub async fn token(
    State(state): State<AppState>,
    ip: crate::serve::ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let is_form = super::params::is_form(&headers);
    if !is_form {
        return Err(OAuthError::invalid_request(
            "use application/x-www-form-urlencoded",
        ));
    }
    let params = Params::parse_form(&body)?;
    let client = authenticate(&state, ip, &headers, &params).await?;
    let response = match params.get("grant_type") {
        Some("authorization_code") => exchange_code(&state, &client, &params).await,
        Some("refresh_token") => refresh(&state, &client, &params).await,
        Some("client_credentials") => return client_credentials(&state, &client, &params).await,
        Some(_) => Err(OAuthError::unsupported_grant_type(
            "supported: authorization_code, refresh_token, client_credentials",
        )),
        None => Err(OAuthError::invalid_request("grant_type is required")),
    };
    if let Err(e) = &response {
        tracing::info!(client = %client.client_id, error = e.error_code(), "token request refused");
    }
    response.map(IntoResponse::into_response)
}

fn client_may_receive_tokens(client: &Client, now: DateTime<Utc>) -> Result<(), OAuthError> {
    if !matches!(client.kind.as_str(), "partner" | "first_party") {
        return Err(OAuthError::unauthorized_client(
            "this client cannot use this grant type",
        ));
    }
    if !client.is_admitted_at(now) {
        return Err(OAuthError::unauthorized_client("client is not accredited"));
    }
    Ok(())
}

/// RFC 6749 §4.1.3 with RFC 7636 §4.5.
async fn exchange_code(
    state: &AppState,
    client: &Client,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    let now = state.now();
    let code = params
        .get("code")
        .ok_or_else(|| OAuthError::invalid_request("code is required"))?;
    let code_hash = hash_token(code);
    let Some(stored) = state.store.get_code(&code_hash).await? else {
        return Err(OAuthError::invalid_grant("unknown authorization code"));
    };
    // Another client can neither use the code nor, by presenting it, burn it or revoke what
    // its rightful client received.
    if stored.client_id != client.client_id {
        return Err(OAuthError::invalid_grant(
            "code was issued to another client",
        ));
    }
    if stored.used_at.is_some() {
        // RFC 6749 §4.1.2: a code used twice revokes what was issued from it.
        let revoked = state.store.revoke_family(&code_hash, now).await?;
        state.cache.changed(&state.store).await;
        tracing::warn!(client = %stored.client_id, revoked, "authorization code replayed; tokens revoked");
        return Err(OAuthError::invalid_grant("authorization code already used"));
    }
    // Any failed attempt burns the code: a stolen code cannot be retried with guesses.
    let code_hash_ref = code_hash.as_str();
    let refuse = |reason: &'static str| async move {
        state.store.burn_code(code_hash_ref, now).await?;
        Err::<TokenResponse, OAuthError>(OAuthError::invalid_grant(reason))
    };
    if stored.expires_at <= ts(now) {
        return refuse("authorization code expired").await;
    }
    if params.get("redirect_uri") != Some(stored.redirect_uri.as_str()) {
        return refuse("redirect_uri does not match the authorization request").await;
    }
    match params.get("code_verifier") {
        Some(verifier) if pkce::verify_s256(verifier, &stored.code_challenge) => {}
        _ => return refuse("PKCE verification failed").await,
    }
    client_may_receive_tokens(client, now)?;
    let presented = Presented {
        grant_id: &stored.grant_id,
        client_id: &client.client_id,
        scopes: ScopeSet::parse_lossy(&stored.scopes),
        actor: stored.actor_id.as_deref(),
        revoked: false,
        expires_at: stored.expires_at,
    };
    let live = match live_policy::check(state, &presented, now).await? {
        Ok(live) => live,
        Err(reason) => {
            tracing::info!(?reason, "code exchange refused by live policy");
            return refuse("the consent behind this code is no longer valid").await;
        }
    };
    let scopes = live.allowed.granted;
    let issued = mint(
        state,
        &live,
        (&scopes, &scopes),
        &stored.code_hash,
        stored.actor_id.as_deref(),
        &stored.session_id,
        stored.auth_time,
        now,
    );
    let id_token = match scopes.contains(Scope::OpenId) {
        true => Some(id_token::issue(
            state,
            IdTokenInput {
                client_id: &client.client_id,
                student: &live.subject,
                actor_id: stored.actor_id.as_deref(),
                scopes: &scopes,
                nonce: stored.nonce.as_deref(),
                auth_time: stored.auth_time,
                session_id: &stored.session_id,
                access_token: &issued.access_token,
                now,
            },
        )?),
        false => None,
    };
    match state
        .store
        .redeem_code(
            &code_hash,
            now,
            &issued.access_row,
            issued.refresh_row.as_ref(),
        )
        .await
    {
        Ok(()) => {}
        Err(RedeemError::AlreadyUsed) => {
            // Lost a race with another exchange of the same code: that is a replay too.
            state.store.revoke_family(&code_hash, now).await?;
            state.cache.changed(&state.store).await;
            return Err(OAuthError::invalid_grant("authorization code already used"));
        }
        Err(RedeemError::Db(e)) => return Err(OAuthError::internal(e)),
        Err(RedeemError::Unavailable) => return Err(OAuthError::unavailable()),
    }
    Ok(issued.into_response(state, id_token, &scopes))
}

/// RFC 6749 §6 with rotation (RFC 9700 §4.14.2).
async fn refresh(
    state: &AppState,
    client: &Client,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    let now = state.now();
    let presented = params
        .get("refresh_token")
        .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
    let old_hash = hash_token(presented);
    let Some(old) = state.store.get_refresh_token(&old_hash).await? else {
        return Err(OAuthError::invalid_grant("unknown refresh token"));
    };
    if old.client_id != client.client_id {
        return Err(OAuthError::invalid_grant(
            "refresh token was issued to another client",
        ));
    }
    if old.used_at.is_some() {
        // A rotated-out token came back: someone holds a copy. End the whole family.
        let revoked = state.store.revoke_family(&old.family_id, now).await?;
        state.cache.changed(&state.store).await;
        tracing::warn!(client = %client.client_id, revoked, "refresh token reused; token family revoked");
        return Err(OAuthError::invalid_grant("refresh token already used"));
    }
    if old.revoked_at.is_some() || old.expires_at <= ts(now) {
        return Err(OAuthError::invalid_grant("refresh token is not active"));
    }
    client_may_receive_tokens(client, now)?;
    let presented = Presented {
        grant_id: &old.grant_id,
        client_id: &client.client_id,
        scopes: ScopeSet::parse_lossy(&old.scopes),
        actor: old.actor_id.as_deref(),
        revoked: false,
        expires_at: old.expires_at,
    };
    let live = match live_policy::check(state, &presented, now).await? {
        Ok(live) => live,
        Err(reason) => {
            tracing::info!(?reason, "refresh refused by live policy");
            return Err(OAuthError::invalid_grant(
                "the consent behind this token is no longer valid",
            ));
        }
    };
    // The grant may have shrunk since (partial withdrawal): the successor carries only what is left.
    let refresh_scopes = live.allowed.granted;
    let scopes = match params.get("scope") {
        // RFC 6749 §6: a refresh may narrow the access token's scope, never widen it; the
        // refresh token itself keeps the scope of the grant.
        Some(requested) => {
            let requested = ScopeSet::parse(requested)
                .map_err(|s| OAuthError::invalid_scope(format!("unknown scope: {s}")))?;
            if !requested.is_subset(&refresh_scopes) {
                return Err(OAuthError::invalid_scope(
                    "a refresh cannot widen the scope",
                ));
            }
            requested
        }
        None => refresh_scopes,
    };
    // The successor is held by the same party: whoever's login started this token family.
    let actor = old.actor_id.clone();
    let issued = mint(
        state,
        &live,
        (&scopes, &refresh_scopes),
        &old.family_id,
        actor.as_deref(),
        &old.session_id,
        old.auth_time,
        now,
    );
    let id_token = match scopes.contains(Scope::OpenId) {
        true => Some(id_token::issue(
            state,
            IdTokenInput {
                client_id: &client.client_id,
                student: &live.subject,
                actor_id: actor.as_deref(),
                scopes: &scopes,
                nonce: None,
                auth_time: old.auth_time,
                session_id: &old.session_id,
                access_token: &issued.access_token,
                now,
            },
        )?),
        false => None,
    };
    let Some(new_refresh) = issued.refresh_row.as_ref() else {
        // offline_access was withdrawn from the grant: no more refreshing.
        return Err(OAuthError::invalid_grant(
            "the grant no longer includes offline_access",
        ));
    };
    match state
        .store
        .rotate_refresh_token(&old_hash, now, &issued.access_row, new_refresh)
        .await
    {
        Ok(()) => {}
        Err(RedeemError::AlreadyUsed) => {
            state.store.revoke_family(&old.family_id, now).await?;
            state.cache.changed(&state.store).await;
            return Err(OAuthError::invalid_grant("refresh token already used"));
        }
        Err(RedeemError::Db(e)) => return Err(OAuthError::internal(e)),
        Err(RedeemError::Unavailable) => return Err(OAuthError::unavailable()),
    }
    Ok(issued.into_response(state, id_token, &scopes))
}

/// Freshly minted secrets and the rows that store their hashes.
struct Issued {
    access_token: String,
    access_row: AccessToken,
    refresh_token: Option<String>,
    refresh_row: Option<RefreshToken>,
}

#[allow(clippy::too_many_arguments)]
fn mint(
    state: &AppState,
    live: &LiveGrant,
    (scopes, refresh_scopes): (&ScopeSet, &ScopeSet),
    family_id: &str,
    actor_id: Option<&str>,
    session_id: &str,
    auth_time: i64,
    now: DateTime<Utc>,
) -> Issued {
    let access_token = random_token();
    let access_row = AccessToken {
        token_hash: hash_token(&access_token),
        family_id: family_id.to_string(),
        client_id: live.client.client_id.clone(),
        grant_id: live.grant.id.clone(),
        student_id: live.subject.id.clone(),
        actor_id: actor_id.map(str::to_string),
        scopes: scopes.to_string(),
        issued_at: ts(now),
        expires_at: ts(now + Duration::seconds(state.config.access_token_ttl_secs)),
        revoked_at: None,
    };
    // Refresh tokens only for offline_access, and never beyond the grant's end.
    let (refresh_token, refresh_row) = if refresh_scopes.contains(Scope::OfflineAccess) {
        let token = random_token();
        let idle_end = ts(now + Duration::seconds(state.config.refresh_token_idle_secs));
        let row = RefreshToken {
            token_hash: hash_token(&token),
            family_id: family_id.to_string(),
            client_id: live.client.client_id.clone(),
            grant_id: live.grant.id.clone(),
            student_id: live.subject.id.clone(),
            actor_id: actor_id.map(str::to_string),
            scopes: refresh_scopes.to_string(),
            session_id: session_id.to_string(),
            auth_time,
            issued_at: ts(now),
            expires_at: idle_end.min(live.grant.expires_at),
            used_at: None,
            revoked_at: None,
        };
        (Some(token), Some(row))
    } else {
        (None, None)
    };
    Issued {
        access_token,
        access_row,
        refresh_token,
        refresh_row,
    }
}

impl Issued {
    fn into_response(
        self,
        state: &AppState,
        id_token: Option<String>,
        scopes: &ScopeSet,
    ) -> TokenResponse {
        TokenResponse {
            access_token: self.access_token,
            token_type: "Bearer",
            expires_in: state.config.access_token_ttl_secs,
            refresh_token: self.refresh_token,
            id_token,
            scope: scopes.to_string(),
        }
    }
}

#[derive(Serialize)]
struct ManagementTokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: i64,
    scope: String,
}

/// RFC 6749 §4.4: management clients obtain tokens for the admin API. Their scopes
/// (`beheer:<BRIN>`, `platform`) limit what they may change.
async fn client_credentials(
    state: &AppState,
    client: &Client,
    params: &Params,
) -> Result<Response, OAuthError> {
    if client.kind != "management" {
        return Err(OAuthError::unauthorized_client(
            "client_credentials is for management clients",
        ));
    }
    let allowed: Vec<&str> = client
        .allowed_scopes
        .split(' ')
        .filter(|s| !s.is_empty())
        .collect();
    let scopes: Vec<&str> = match params.get("scope") {
        Some(requested) => {
            let requested: Vec<&str> = requested.split(' ').filter(|s| !s.is_empty()).collect();
            if let Some(extra) = requested.iter().find(|s| !allowed.contains(s)) {
                return Err(OAuthError::invalid_scope(format!(
                    "scope {extra} is not allowed for this client"
                )));
            }
            requested
        }
        None => allowed,
    };
    let now = state.now();
    let token = random_token();
    let expires_at = now + Duration::seconds(state.config.access_token_ttl_secs);
    let scope = scopes.join(" ");
    state
        .store
        .insert_management_token(
            &hash_token(&token),
            &client.client_id,
            &scope,
            now,
            expires_at,
        )
        .await?;
    let mut response = Json(ManagementTokenResponse {
        access_token: token,
        token_type: "Bearer",
        expires_in: state.config.access_token_ttl_secs,
        scope,
    })
    .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
