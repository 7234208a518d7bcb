//! Token introspection (RFC 7662) for resource servers, answered from the live policy, with
//! an optional signed JWT response (RFC 9701).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;

use super::client_auth::authenticate_cached;
use super::error::OAuthError;
use super::live_policy::{self, evaluate_access_token, Inactive, LiveGrant, Presented, Withheld};
use super::params::Params;
use crate::crypto::pairwise::pairwise_subject;
use crate::crypto::tokens::hash_token;
use crate::domain::scope::ScopeSet;
use crate::storage::access_log::is_data;
use crate::storage::accounts::Account;
use crate::storage::clients::Client;
use crate::AppState;

const JWT_MEDIA_TYPE: &str = "application/token-introspection+jwt";

/// The RFC 7662 §2.2 answer, serialised straight from borrowed facts: the hot path builds
/// no JSON tree and copies no string it can borrow.
#[derive(Serialize, Default)]
struct Introspection<'a> {
    active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<ScopeSet>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
    /// The partner-facing pairwise subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    /// The school (BRIN) whose data this token reaches.
    #[serde(skip_serializing_if = "Option::is_none")]
    school: Option<&'a str>,
    /// The real student, for the resource server only (partners see `sub`).
    #[serde(skip_serializing_if = "Option::is_none")]
    student: Option<StudentClaim<'a>>,
    /// The parent who consented on the student's behalf (RFC 8693 `act`).
    #[serde(skip_serializing_if = "Option::is_none")]
    act: Option<ActClaim<'a>>,
    /// First-party apps: the account that logged in, its role and (parents) children.
    #[serde(skip_serializing_if = "Option::is_none")]
    account: Option<AccountClaim<'a>>,
    /// `parents`, `students` or `partners`: whose eyes this token serves.
    #[serde(skip_serializing_if = "Option::is_none")]
    audience: Option<&'static str>,
    /// Scopes the token holds but a school closure withholds right now.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    withheld_scopes: Vec<&'static str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    withheld: &'a [Withheld],
}

#[derive(Serialize)]
struct StudentClaim<'a> {
    id: &'a str,
    student_number: &'a str,
    school: &'a str,
}

#[derive(Serialize)]
struct ActClaim<'a> {
    /// The parent's account id (resource servers) or pairwise subject (partners).
    sub: std::borrow::Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<Option<&'a str>>,
    role: &'static str,
}

#[derive(Serialize)]
struct AccountClaim<'a> {
    id: &'a str,
    username: &'a str,
    role: &'a str,
    school: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    children: Option<Vec<StudentClaim<'a>>>,
}

/// The token an introspection found, with the policy's verdict and the rows the answer needs.
struct Found {
    live: LiveGrant,
    token_type: &'static str,
    times: (i64, i64),
    actor_id: Option<std::sync::Arc<str>>,
    /// Resource servers: the acting parent's account (for `act.username`).
    actor: Option<std::sync::Arc<Account>>,
    /// Resource servers, a parent in the school's own app: the children.
    children: Option<std::sync::Arc<Vec<Account>>>,
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
    let found = match find(&state, &caller, token, params.get("token_type_hint"), now).await? {
        Ok(found) => {
            metrics::counter!("poortwachter_introspection_total", "decision" => "active")
                .increment(1);
            Some(found)
        }
        Err(reason) => {
            metrics::counter!("poortwachter_introspection_total", "decision" => reason.label())
                .increment(1);
            None
        }
    };
    let answer = match &found {
        Some(found) => describe(&state, &caller, found),
        None => Introspection::default(),
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

async fn find(
    state: &AppState,
    caller: &Client,
    token: &str,
    hint: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Result<Found, Inactive>, OAuthError> {
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
            Ok(mut found) => {
                extras(state, caller, &mut found).await?;
                return Ok(Ok(found));
            }
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
) -> Result<Result<Found, Inactive>, OAuthError> {
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
            active.scopes().iter().filter(|s| is_data(*s)),
            now,
        );
    }
    Ok(Ok(Found {
        token_type: "Bearer",
        times: (active.token.issued_at, active.token.expires_at),
        actor_id: active.token.actor_id.as_deref().map(Into::into),
        live: active.live,
        actor: None,
        children: None,
    }))
}

async fn refresh_answer(
    state: &AppState,
    caller: &Client,
    hash: &str,
    now: DateTime<Utc>,
) -> Result<Result<Found, Inactive>, OAuthError> {
    let Some(refresh) = state.store.get_refresh_token(hash).await? else {
        return Ok(Err(Inactive::UnknownToken));
    };
    if !may_see(caller, &refresh.client_id) {
        return Ok(Err(Inactive::OtherClient));
    }
    let presented = Presented {
        grant_id: &refresh.grant_id,
        client_id: &refresh.client_id,
        scopes: ScopeSet::parse_lossy(&refresh.scopes),
        actor: refresh.actor_id.as_deref(),
        // A rotated-out refresh token is as dead as a revoked one.
        revoked: refresh.revoked_at.is_some() || refresh.used_at.is_some(),
        expires_at: refresh.expires_at,
    };
    let live = match live_policy::check(state, &presented, now).await? {
        Ok(live) => live,
        Err(reason) => return Ok(Err(reason)),
    };
    Ok(Ok(Found {
        token_type: "refresh_token",
        times: (refresh.issued_at, refresh.expires_at),
        actor_id: refresh.actor_id.as_deref().map(Into::into),
        live,
        actor: None,
        children: None,
    }))
}

/// Resource servers see every token; a partner only its own (no cross-partner probing).
fn may_see(caller: &Client, token_client: &str) -> bool {
    caller.kind == "resource_server" || caller.client_id == token_client
}

/// The rows only a resource server's answer names: the acting parent, a parent's children.
async fn extras(state: &AppState, caller: &Client, found: &mut Found) -> Result<(), OAuthError> {
    if caller.kind != "resource_server" {
        return Ok(());
    }
    let subject = &found.live.subject;
    if found.live.is_first_party() {
        if subject.role == "parent" {
            found.children = Some(live_policy::children(state, &subject.id).await?);
        }
    } else if let Some(parent) = &found.actor_id {
        found.actor = live_policy::account(state, parent).await?;
    }
    Ok(())
}

fn describe<'a>(state: &'a AppState, caller: &'a Client, found: &'a Found) -> Introspection<'a> {
    let live = &found.live;
    let client_id = live.client.client_id.as_str();
    let subject = &live.subject;
    let allowed = &live.allowed;
    let (iat, exp) = found.times;
    let mut answer = Introspection {
        active: true,
        scope: Some(allowed.scopes),
        client_id: Some(client_id),
        token_type: Some(found.token_type),
        exp: Some(exp),
        iat: Some(iat),
        iss: Some(&state.config.issuer),
        aud: Some(&caller.client_id),
        sub: Some(pairwise_subject(
            &state.pairwise_secret,
            client_id,
            &subject.id,
        )),
        school: Some(live.school_brin()),
        audience: Some(live.audience().as_str()),
        withheld_scopes: allowed.withheld.iter().map(|w| w.scope).collect(),
        withheld: &allowed.withheld,
        ..Introspection::default()
    };
    // Identities behind the pseudonym are for resource servers only.
    if caller.kind == "resource_server" {
        if live.is_first_party() {
            answer.account = Some(AccountClaim {
                id: &subject.id,
                username: &subject.username,
                role: &subject.role,
                school: &subject.school_brin,
                children: found.children.as_ref().map(|children| {
                    children
                        .iter()
                        .map(|c| StudentClaim {
                            id: &c.id,
                            student_number: &c.username,
                            school: &c.school_brin,
                        })
                        .collect()
                }),
            });
        } else {
            answer.student = Some(StudentClaim {
                id: &subject.id,
                student_number: &subject.username,
                school: live.school_brin(),
            });
            if let Some(parent) = found.actor_id.as_deref() {
                answer.act = Some(ActClaim {
                    sub: parent.into(),
                    username: Some(found.actor.as_deref().map(|p| p.username.as_str())),
                    role: "parent",
                });
            }
        }
    } else if let Some(parent) = found.actor_id.as_deref() {
        answer.act = Some(ActClaim {
            sub: pairwise_subject(&state.pairwise_secret, client_id, parent).into(),
            username: None,
            role: "parent",
        });
    }
    answer
}

/// RFC 9701: the same answer as a signed JWT.
fn jwt_response(
    state: &AppState,
    caller: &Client,
    answer: &Introspection<'_>,
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
