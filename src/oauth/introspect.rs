//! Token introspection (RFC 7662) for resource servers, answered from the live policy, with
//! an optional signed JWT response (RFC 9701).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};

use super::client_auth::authenticate_cached;
use super::error::OAuthError;
use super::live_policy::{self, check_grant, evaluate_access_token, Inactive, LiveGrant, Withheld};
use super::params::Params;
use crate::crypto::pairwise::pairwise_subject;
use crate::crypto::tokens::hash_token;
use crate::domain::scope::ScopeSet;
use crate::storage::access_log::is_data;
use crate::storage::clients::Client;
use crate::storage::ts;
use crate::AppState;

const JWT_MEDIA_TYPE: &str = "application/token-introspection+jwt";

#[derive(Serialize, Default)]
struct Introspection {
    active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<String>,
    /// The partner-facing pairwise subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    /// The school (BRIN) whose data this token reaches.
    #[serde(skip_serializing_if = "Option::is_none")]
    school: Option<String>,
    /// The real student, for the resource server only (partners see `sub`).
    #[serde(skip_serializing_if = "Option::is_none")]
    student: Option<Value>,
    /// The parent who consented on the student's behalf (RFC 8693 `act`).
    #[serde(skip_serializing_if = "Option::is_none")]
    act: Option<Value>,
    /// First-party apps: the account that logged in, its role and (parents) children.
    #[serde(skip_serializing_if = "Option::is_none")]
    account: Option<Value>,
    /// `parents`, `students` or `partners`: whose eyes this token serves.
    #[serde(skip_serializing_if = "Option::is_none")]
    audience: Option<&'static str>,
    /// Scopes the token holds but a school closure withholds right now.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    withheld_scopes: Vec<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    withheld: Vec<Withheld>,
}

/// `POST /introspect`
pub async fn introspect(
    State(state): State<AppState>,
    ip: crate::serve::ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let params = Params::parse_form(&body)?;
    let caller = authenticate_cached(&state, ip, &headers, &params).await?;
    let token = params
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let now = state.now();
    let answer = match answer(&state, &caller, token, params.get("token_type_hint"), now).await? {
        Ok(answer) => {
            metrics::counter!("poortwachter_introspection_total", "decision" => "active")
                .increment(1);
            answer
        }
        Err(reason) => {
            metrics::counter!("poortwachter_introspection_total", "decision" => reason.label())
                .increment(1);
            Introspection::default()
        }
    };
    let wants_jwt = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| {
            accept
                .split(',')
                .any(|a| a.trim().starts_with(JWT_MEDIA_TYPE))
        });
    if wants_jwt {
        return jwt_response(&state, &caller, &answer, now);
    }
    let mut response = Json(answer).into_response();
    no_store(&mut response);
    Ok(response)
}

fn no_store(response: &mut Response) {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

async fn answer(
    state: &AppState,
    caller: &Client,
    token: &str,
    hint: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Result<Introspection, Inactive>, OAuthError> {
    let hash = hash_token(token);
    // RFC 7662 §2.1: the hint only sets the search order.
    let refresh_first = hint == Some("refresh_token");
    for look_for_refresh in [refresh_first, !refresh_first] {
        let found = if look_for_refresh {
            refresh_answer(state, caller, &hash, now).await?
        } else {
            access_answer(state, caller, &hash, now).await?
        };
        match found {
            Err(Inactive::UnknownToken) => continue,
            other => return Ok(other),
        }
    }
    Ok(Err(Inactive::UnknownToken))
}

async fn access_answer(
    state: &AppState,
    caller: &Client,
    hash: &str,
    now: DateTime<Utc>,
) -> Result<Result<Introspection, Inactive>, OAuthError> {
    let active = match evaluate_access_token(state, hash, now).await? {
        Ok(active) => active,
        Err(reason) => return Ok(Err(reason)),
    };
    if !may_see(caller, &active.token.client_id) {
        return Ok(Err(Inactive::OtherClient));
    }
    // "Wie keek mee": a resource server asking about a partner's access token is about to
    // hand that partner the data of the scopes it is told (withheld ones excluded). Counted
    // in memory, written later in batches.
    if caller.kind == "resource_server" && !active.live.is_first_party() {
        state.reads.record(
            &active.live.grant.id,
            active.scopes.iter().filter(|s| is_data(*s)),
            now,
        );
    }
    Ok(Ok(describe(
        state,
        caller,
        &active.live,
        &active.scopes,
        active.withheld,
        (active.token.issued_at, active.token.expires_at),
        active.token.actor_id.as_deref(),
        "Bearer",
    )
    .await?))
}

async fn refresh_answer(
    state: &AppState,
    caller: &Client,
    hash: &str,
    now: DateTime<Utc>,
) -> Result<Result<Introspection, Inactive>, OAuthError> {
    let Some(refresh) = state.store.get_refresh_token(hash).await? else {
        return Ok(Err(Inactive::UnknownToken));
    };
    if refresh.revoked_at.is_some() || refresh.used_at.is_some() {
        return Ok(Err(Inactive::Revoked));
    }
    if refresh.expires_at <= ts(now) {
        return Ok(Err(Inactive::Expired));
    }
    if !may_see(caller, &refresh.client_id) {
        return Ok(Err(Inactive::OtherClient));
    }
    let live = match check_grant(
        state,
        &refresh.grant_id,
        &refresh.client_id,
        refresh.actor_id.as_deref(),
        now,
    )
    .await?
    {
        Ok(live) => live,
        Err(reason) => return Ok(Err(reason)),
    };
    let effective = live.effective_scopes(&ScopeSet::parse_lossy(&refresh.scopes));
    let (scopes, withheld) = live_policy::withhold(state, &live, effective, now).await?;
    Ok(Ok(describe(
        state,
        caller,
        &live,
        &scopes,
        withheld,
        (refresh.issued_at, refresh.expires_at),
        refresh.actor_id.as_deref(),
        "refresh_token",
    )
    .await?))
}

/// Resource servers see every token; a partner only its own (no cross-partner probing).
fn may_see(caller: &Client, token_client: &str) -> bool {
    caller.kind == "resource_server" || caller.client_id == token_client
}

#[allow(clippy::too_many_arguments)]
async fn describe(
    state: &AppState,
    caller: &Client,
    live: &LiveGrant,
    scopes: &ScopeSet,
    withheld: Vec<Withheld>,
    (iat, exp): (i64, i64),
    actor_id: Option<&str>,
    token_type: &'static str,
) -> Result<Introspection, OAuthError> {
    let client_id = live.client.client_id.clone();
    let is_resource_server = caller.kind == "resource_server";
    let subject = &live.subject;
    let mut answer = Introspection {
        active: true,
        scope: Some(scopes.to_string()),
        client_id: Some(client_id.clone()),
        token_type: Some(token_type),
        exp: Some(exp),
        iat: Some(iat),
        iss: Some(state.config.issuer.clone()),
        aud: Some(caller.client_id.clone()),
        sub: Some(pairwise_subject(
            &state.pairwise_secret,
            &client_id,
            &subject.id,
        )),
        school: Some(live.school_brin.clone()),
        audience: Some(live.audience.as_str()),
        withheld_scopes: withheld.iter().map(|w| w.scope).collect(),
        withheld,
        ..Introspection::default()
    };
    // Identities behind the pseudonym are for resource servers only.
    if is_resource_server {
        if live.is_first_party() {
            let mut account = json!({
                "id": subject.id,
                "username": subject.username,
                "role": subject.role,
                "school": subject.school_brin,
            });
            if subject.role == "parent" {
                let children = live_policy::children(state, &subject.id).await?;
                account["children"] = children
                    .iter()
                    .map(|c| json!({ "id": c.id, "student_number": c.username, "school": c.school_brin }))
                    .collect();
            }
            answer.account = Some(account);
        } else {
            answer.student = Some(json!({
                "id": subject.id,
                "student_number": subject.username,
                "school": live.school_brin,
            }));
            if let Some(parent) = actor_id {
                let username = live_policy::account(state, parent)
                    .await?
                    .map(|p| p.username.clone());
                answer.act = Some(json!({ "sub": parent, "username": username, "role": "parent" }));
            }
        }
    } else if let Some(parent) = actor_id {
        answer.act = Some(json!({
            "sub": pairwise_subject(&state.pairwise_secret, &client_id, parent),
            "role": "parent",
        }));
    }
    Ok(answer)
}

/// RFC 9701: the same answer as a signed JWT.
fn jwt_response(
    state: &AppState,
    caller: &Client,
    answer: &Introspection,
    now: DateTime<Utc>,
) -> Result<Response, OAuthError> {
    let key = state
        .signing_key()
        .ok_or_else(|| OAuthError::internal("no signing key loaded"))?;
    let body = serde_json::to_value(answer).map_err(OAuthError::internal)?;
    let mut claims = serde_json::Map::new();
    claims.insert("iss".into(), json!(state.config.issuer));
    claims.insert("aud".into(), json!(caller.client_id));
    claims.insert("iat".into(), json!(now.timestamp()));
    claims.insert("token_introspection".into(), body);
    let jwt = key.sign(claims, "token-introspection+jwt")?;
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, JWT_MEDIA_TYPE)],
        jwt,
    )
        .into_response();
    no_store(&mut response);
    Ok(response)
}
