//! The live policy: is the consent behind a token still good *now*, and for which scopes?
//! Evaluated on every introspection, refresh and userinfo call from cached facts (see
//! `crate::cache`), so a withdrawn grant, a closed link, a suspended partner, a student who
//! left, a parent no longer linked, a child who came of age, or a scope closure takes effect
//! on the very next call.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::domain::account::Role;
use crate::domain::policy::Age;
use crate::domain::scope::{Scope, ScopeSet};
use crate::storage::accounts::{active_school, Account, Enrollment};
use crate::storage::clients::Client;
use crate::storage::closures::Closure;
use crate::storage::grants::Grant;
use crate::storage::tokens::AccessToken;
use crate::storage::DbResult;
use crate::AppState;

/// Why a token (or the grant behind it) no longer works. The label goes to metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inactive {
    UnknownToken,
    Expired,
    Revoked,
    GrantWithdrawn,
    PartnerNotAccredited,
    LinkClosed,
    NotEnrolled,
    GuardianshipEnded,
    /// A parent's consent ends when the child turns 18, until the student confirms it.
    ChildCameOfAge,
    UnknownSubject,
    OtherClient,
}

impl Inactive {
    pub fn label(self) -> &'static str {
        match self {
            Inactive::UnknownToken => "unknown_token",
            Inactive::Expired => "expired",
            Inactive::Revoked => "revoked",
            Inactive::GrantWithdrawn => "grant_withdrawn",
            Inactive::PartnerNotAccredited => "partner_not_accredited",
            Inactive::LinkClosed => "link_closed",
            Inactive::NotEnrolled => "not_enrolled",
            Inactive::GuardianshipEnded => "guardianship_ended",
            Inactive::ChildCameOfAge => "child_came_of_age",
            Inactive::UnknownSubject => "unknown_subject",
            Inactive::OtherClient => "other_client",
        }
    }
}

/// Whose eyes a token serves: closures are set per audience.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Parents,
    Students,
    Partners,
}

impl Audience {
    pub fn as_str(self) -> &'static str {
        match self {
            Audience::Parents => "parents",
            Audience::Students => "students",
            Audience::Partners => "partners",
        }
    }

    pub fn parse(s: &str) -> Option<Audience> {
        match s {
            "parents" => Some(Audience::Parents),
            "students" => Some(Audience::Students),
            "partners" => Some(Audience::Partners),
            _ => None,
        }
    }
}

/// A grant that passed every check, with the facts the checks used.
pub struct LiveGrant {
    pub grant: Arc<Grant>,
    pub client: Arc<Client>,
    /// The student the grant is about; for a first-party app, the account that logged in.
    pub subject: Arc<Account>,
    pub school_brin: String,
    pub audience: Audience,
}

impl LiveGrant {
    /// The scopes a token may use now: what it was issued with, within what the grant still
    /// covers. Closures are applied separately, by [`withhold`], since they are temporary.
    pub fn effective_scopes(&self, token_scopes: &ScopeSet) -> ScopeSet {
        token_scopes.intersection(&self.grant.scopes())
    }

    pub fn is_first_party(&self) -> bool {
        self.client.kind == "first_party"
    }
}

/// A scope held back by a closure, with the school's reason.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Withheld {
    pub scope: &'static str,
    pub reason: String,
    pub until: i64,
}

// Cached fact getters. Each is one map lookup on a hit.

pub async fn token(state: &AppState, hash: &str) -> DbResult<Option<Arc<AccessToken>>> {
    let cache = &state.cache;
    if cache.is_fresh() {
        if let Some(token) = cache.get_cached_token(hash) {
            return Ok(Some(token));
        }
    }
    // Unknown tokens are not cached: one minted a moment ago on another instance must work.
    let read_at = (cache.generation(), cache.evictions());
    match state.store.get_access_token(hash).await? {
        Some(row) => {
            let token = Arc::new(row);
            cache.put_token(hash, &token, read_at);
            Ok(Some(token))
        }
        None => Ok(None),
    }
}

async fn grant(state: &AppState, id: &str) -> DbResult<Option<Arc<Grant>>> {
    let store = &state.store;
    state
        .cache
        .get_or_load(&state.cache.grants, id.to_string(), async {
            Ok(store.get_grant(id).await?.map(Arc::new))
        })
        .await
}

pub async fn client(state: &AppState, id: &str) -> DbResult<Option<Arc<Client>>> {
    let store = &state.store;
    state
        .cache
        .get_or_load(&state.cache.clients, id.to_string(), async {
            Ok(store.get_client(id).await?.map(Arc::new))
        })
        .await
}

pub async fn account(state: &AppState, id: &str) -> DbResult<Option<Arc<Account>>> {
    let store = &state.store;
    state
        .cache
        .get_or_load(&state.cache.accounts, id.to_string(), async {
            Ok(store.get_account(id).await?.map(Arc::new))
        })
        .await
}

async fn enrollments(state: &AppState, student_id: &str) -> DbResult<Arc<Vec<Enrollment>>> {
    let store = &state.store;
    state
        .cache
        .get_or_load(&state.cache.enrollments, student_id.to_string(), async {
            Ok(Arc::new(store.enrollments_of(student_id).await?))
        })
        .await
}

async fn link_open(state: &AppState, brin: &str, client_id: &str) -> DbResult<bool> {
    let store = &state.store;
    state
        .cache
        .get_or_load(
            &state.cache.links,
            (brin.to_string(), client_id.to_string()),
            async { store.link_is_open(brin, client_id).await },
        )
        .await
}

async fn guardian(state: &AppState, parent_id: &str, student_id: &str) -> DbResult<bool> {
    let store = &state.store;
    state
        .cache
        .get_or_load(
            &state.cache.guardianships,
            (parent_id.to_string(), student_id.to_string()),
            async { store.is_guardian(parent_id, student_id).await },
        )
        .await
}

pub async fn children(state: &AppState, parent_id: &str) -> DbResult<Arc<Vec<Account>>> {
    let store = &state.store;
    state
        .cache
        .get_or_load(&state.cache.children, parent_id.to_string(), async {
            Ok(Arc::new(store.children_of(parent_id).await?))
        })
        .await
}

async fn closures(state: &AppState, brin: &str) -> DbResult<Arc<Vec<Closure>>> {
    let store = &state.store;
    state
        .cache
        .get_or_load(&state.cache.closures, brin.to_string(), async {
            Ok(Arc::new(store.closures_of(brin).await?))
        })
        .await
}

/// Evaluate every rule of the live policy for one grant and client, at `now`.
/// `token_actor` is the parent named on the token (or code) being checked, if any.
pub async fn check_grant(
    state: &AppState,
    grant_id: &str,
    client_id: &str,
    token_actor: Option<&str>,
    now: DateTime<Utc>,
) -> DbResult<Result<LiveGrant, Inactive>> {
    let Some(grant) = grant(state, grant_id).await? else {
        return Ok(Err(Inactive::GrantWithdrawn));
    };
    if !grant.is_active_at(now) || grant.client_id != client_id {
        return Ok(Err(Inactive::GrantWithdrawn));
    }
    let Some(client) = client(state, client_id).await? else {
        return Ok(Err(Inactive::PartnerNotAccredited));
    };
    if !client.is_admitted_at(now) {
        return Ok(Err(Inactive::PartnerNotAccredited));
    }
    let Some(subject) = account(state, &grant.student_id).await? else {
        return Ok(Err(Inactive::UnknownSubject));
    };

    if client.kind == "first_party" {
        // The school's own app: the subject is the person who logged in; no link, no consent.
        let role = subject.role();
        let (school_brin, audience) = match role {
            Some(Role::Student) => {
                match active_school(&enrollments(state, &subject.id).await?, now) {
                    Some(brin) => (brin.to_string(), Audience::Students),
                    None => return Ok(Err(Inactive::NotEnrolled)),
                }
            }
            Some(Role::Parent) => (subject.school_brin.clone(), Audience::Parents),
            _ => return Ok(Err(Inactive::UnknownSubject)),
        };
        return Ok(Ok(LiveGrant {
            grant,
            client,
            subject,
            school_brin,
            audience,
        }));
    }

    let Some(school_brin) =
        active_school(&enrollments(state, &subject.id).await?, now).map(str::to_string)
    else {
        return Ok(Err(Inactive::NotEnrolled));
    };
    if !link_open(state, &school_brin, client_id).await? {
        return Ok(Err(Inactive::LinkClosed));
    }
    // Every parent involved must still be linked to the child: the one who gave the consent,
    // and the one whose login obtained this token (they differ when a parent signs in to an
    // app under a grant given by the other parent or by the student).
    for parent_id in [grant.actor(), token_actor].into_iter().flatten() {
        if !guardian(state, parent_id, &subject.id).await? {
            return Ok(Err(Inactive::GuardianshipEnded));
        }
    }
    // A parent's consent ends when the child turns 18, until the student confirms it.
    // (Without a birth date it does not stand either: `Age` assumes nothing.)
    if grant.actor().is_some()
        && !Age::of(subject.birth_date(), now.date_naive()).parent_consent_stands()
    {
        return Ok(Err(Inactive::ChildCameOfAge));
    }
    Ok(Ok(LiveGrant {
        grant,
        client,
        subject,
        school_brin,
        audience: Audience::Partners,
    }))
}

/// Apply the school's scope closures for this token's audience at `now`.
pub async fn withhold(
    state: &AppState,
    live: &LiveGrant,
    scopes: ScopeSet,
    now: DateTime<Utc>,
) -> DbResult<(ScopeSet, Vec<Withheld>)> {
    let closures = closures(state, &live.school_brin).await?;
    if closures.is_empty() {
        return Ok((scopes, Vec::new()));
    }
    let mut kept = Vec::new();
    let mut withheld = Vec::new();
    for scope in scopes.iter() {
        let closure = closures
            .iter()
            .find(|c| c.applies(scope.as_str(), live.audience.as_str(), now));
        match closure {
            Some(c) => withheld.push(Withheld {
                scope: scope.as_str(),
                reason: c.reason.clone(),
                until: c.ends_at,
            }),
            None => kept.push(scope),
        }
    }
    Ok((kept.into_iter().collect(), withheld))
}

/// Token, grant and closures together: what an access token may do right now.
pub struct ActiveToken {
    pub token: Arc<AccessToken>,
    pub live: LiveGrant,
    pub scopes: ScopeSet,
    pub withheld: Vec<Withheld>,
}

pub async fn evaluate_access_token(
    state: &AppState,
    token_hash: &str,
    now: DateTime<Utc>,
) -> DbResult<Result<ActiveToken, Inactive>> {
    let Some(token) = token(state, token_hash).await? else {
        return Ok(Err(Inactive::UnknownToken));
    };
    if token.revoked_at.is_some() {
        return Ok(Err(Inactive::Revoked));
    }
    if !token.is_live_at(now) {
        return Ok(Err(Inactive::Expired));
    }
    let live = match check_grant(
        state,
        &token.grant_id,
        &token.client_id,
        token.actor_id.as_deref(),
        now,
    )
    .await?
    {
        Ok(live) => live,
        Err(reason) => return Ok(Err(reason)),
    };
    let effective = live.effective_scopes(&token.scopes());
    let (scopes, withheld) = withhold(state, &live, effective, now).await?;
    Ok(Ok(ActiveToken {
        token,
        live,
        scopes,
        withheld,
    }))
}

/// Scopes a first-party app may always ask for.
pub fn first_party_scopes() -> ScopeSet {
    Scope::ALL.into_iter().collect()
}
