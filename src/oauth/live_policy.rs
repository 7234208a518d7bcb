//! The live policy's facts: gathered for one token (or code) from the policy cache (see
//! `crate::cache`) and decided by the pure `domain::policy::evaluate`, on every
//! introspection, refresh, code exchange and userinfo call. So a withdrawn grant, a closed
//! link, a suspended partner, a student who left, a parent no longer linked, a child who
//! came of age, or a scope closure takes effect on the very next call, and every rule lives
//! in one place. This module only looks things up; it decides nothing.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::cache::Pair;
use crate::domain::policy::live::{
    school_of, ClientFacts, Closure, Credential, GrantFacts, SubjectFacts,
};
use crate::domain::policy::{evaluate, Allowed, PolicyFacts};
use crate::domain::scope::{Scope, ScopeSet};
use crate::storage::accounts::{Account, Enrollment};
use crate::storage::clients::Client;
use crate::storage::grants::Grant;
use crate::storage::tokens::AccessToken;
use crate::storage::DbResult;
use crate::AppState;

pub use crate::domain::policy::{Audience, Inactive, Withheld};

/// A grant that passed every rule, with the rows the rules read and what they allowed.
pub struct LiveGrant {
    pub grant: Arc<Grant>,
    pub client: Arc<Client>,
    /// The student the grant is about; for a first-party app, the account that logged in.
    pub subject: Arc<Account>,
    pub allowed: Allowed,
}

impl LiveGrant {
    pub fn is_first_party(&self) -> bool {
        self.allowed.first_party
    }

    pub fn school_brin(&self) -> &str {
        &self.allowed.school
    }

    pub fn audience(&self) -> Audience {
        self.allowed.audience
    }
}

/// The credential being checked, as the caller found it.
pub struct Presented<'a> {
    pub grant_id: &'a str,
    pub client_id: &'a str,
    pub scopes: ScopeSet,
    pub actor: Option<&'a str>,
    pub revoked: bool,
    pub expires_at: i64,
}

// Cached fact getters. Each is one map lookup on a hit, with a borrowed key.

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
        .get_or_load(&state.cache.grants, id, str::to_string, async {
            Ok(store.get_grant(id).await?.map(Arc::new))
        })
        .await
}

pub async fn client(state: &AppState, id: &str) -> DbResult<Option<Arc<Client>>> {
    let store = &state.store;
    state
        .cache
        .get_or_load(&state.cache.clients, id, str::to_string, async {
            Ok(store.get_client(id).await?.map(Arc::new))
        })
        .await
}

pub async fn account(state: &AppState, id: &str) -> DbResult<Option<Arc<Account>>> {
    let store = &state.store;
    state
        .cache
        .get_or_load(&state.cache.accounts, id, str::to_string, async {
            Ok(store.get_account(id).await?.map(Arc::new))
        })
        .await
}

async fn enrollments(state: &AppState, student_id: &str) -> DbResult<Arc<Vec<Enrollment>>> {
    let store = &state.store;
    state
        .cache
        .get_or_load(
            &state.cache.enrollments,
            student_id,
            str::to_string,
            async { Ok(Arc::new(store.enrollments_of(student_id).await?)) },
        )
        .await
}

async fn link_open(state: &AppState, brin: &str, client_id: &str) -> DbResult<bool> {
    let store = &state.store;
    state
        .cache
        .get_or_load(
            &state.cache.links,
            &Pair(brin, client_id),
            Pair::owned,
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
            &Pair(parent_id, student_id),
            Pair::owned,
            async { store.is_guardian(parent_id, student_id).await },
        )
        .await
}

pub async fn children(state: &AppState, parent_id: &str) -> DbResult<Arc<Vec<Account>>> {
    let store = &state.store;
    state
        .cache
        .get_or_load(&state.cache.children, parent_id, str::to_string, async {
            Ok(Arc::new(store.children_of(parent_id).await?))
        })
        .await
}

async fn closures(state: &AppState, brin: &str) -> DbResult<Arc<Vec<Closure>>> {
    let store = &state.store;
    state
        .cache
        .get_or_load(&state.cache.closures, brin, str::to_string, async {
            let rows = store.closures_of(brin).await?;
            Ok(Arc::new(rows.iter().filter_map(|c| c.rule()).collect()))
        })
        .await
}

pub fn client_facts(client: &Client) -> ClientFacts {
    ClientFacts {
        first_party: client.kind == "first_party",
        deactivated: !client.is_active(),
        accreditation: client.accreditation(),
    }
}

fn subject_facts(account: &Account) -> SubjectFacts<'_> {
    SubjectFacts {
        role: account.role(),
        home_school: &account.school_brin,
        birth_date: account.birth_date(),
    }
}

/// Gather the facts about one credential and let `domain::policy::evaluate` decide, at `now`.
/// Facts that depend on others (the school's link and closures, the parents' guardianship)
/// are looked up for what the earlier facts name; a fact that is missing stays missing and
/// refuses.
pub async fn check(
    state: &AppState,
    presented: &Presented<'_>,
    now: DateTime<Utc>,
) -> DbResult<Result<LiveGrant, Inactive>> {
    let credential = Credential {
        client_id: presented.client_id,
        scopes: presented.scopes,
        actor: presented.actor,
        revoked: presented.revoked,
        expires_at: presented.expires_at,
    };
    let grant_row = grant(state, presented.grant_id).await?;
    let client_row = client(state, presented.client_id).await?;
    let subject_row = match &grant_row {
        Some(g) => account(state, &g.student_id).await?,
        None => None,
    };
    let enrollment_rows = match &subject_row {
        Some(s) => enrollments(state, &s.id).await?,
        None => Arc::default(),
    };
    let grant_facts = grant_row.as_deref().map(|g| GrantFacts {
        client_id: &g.client_id,
        scopes: g.scopes(),
        given_by_parent: g.actor(),
        revoked: g.revoked_at.is_some(),
        expires_at: g.expires_at,
    });
    let client_facts = client_row.as_deref().map(client_facts);
    let subject = subject_row.as_deref().map(subject_facts);

    // The school the rules will look at, and its facts.
    let school = match (&client_facts, &subject) {
        (Some(c), Some(s)) => school_of(c.first_party, s, &enrollment_rows, now),
        _ => None,
    };
    let (link, school_closures) = match school {
        Some((school, _)) => (
            link_open(state, school.brin(), presented.client_id).await?,
            closures(state, school.brin()).await?,
        ),
        None => (false, Arc::default()),
    };
    let mut guardians = [None, None];
    if let Some(subject_row) = &subject_row {
        let involved = PolicyFacts::parents_involved(grant_facts.as_ref(), Some(&credential));
        for (slot, parent) in guardians.iter_mut().zip(involved) {
            if let Some(parent) = parent {
                *slot = Some((parent, guardian(state, parent, &subject_row.id).await?));
            }
        }
    }
    let facts = PolicyFacts {
        credential: Some(credential),
        grant: grant_facts,
        client: client_facts,
        subject,
        enrollments: &enrollment_rows,
        link_open: link,
        guardians,
        closures: &school_closures,
    };
    let allowed = match evaluate(&facts, now).into_result() {
        Ok(allowed) => allowed,
        Err(reason) => return Ok(Err(reason)),
    };
    // Active implies every row was found; the `else` is unreachable but refuses, not panics.
    let (Some(grant), Some(client), Some(subject)) = (grant_row, client_row, subject_row) else {
        return Ok(Err(Inactive::UnknownSubject));
    };
    Ok(Ok(LiveGrant {
        grant,
        client,
        subject,
        allowed,
    }))
}

/// An access token and what it may do right now.
pub struct ActiveToken {
    pub token: Arc<AccessToken>,
    pub live: LiveGrant,
}

impl ActiveToken {
    /// The scopes the token may be used for now (closures applied).
    pub fn scopes(&self) -> ScopeSet {
        self.live.allowed.scopes
    }
}

pub async fn evaluate_access_token(
    state: &AppState,
    token_hash: &str,
    now: DateTime<Utc>,
) -> DbResult<Result<ActiveToken, Inactive>> {
    let Some(token) = token(state, token_hash).await? else {
        return Ok(Err(Inactive::UnknownToken));
    };
    let presented = Presented {
        grant_id: &token.grant_id,
        client_id: &token.client_id,
        scopes: token.scopes(),
        actor: token.actor_id.as_deref(),
        revoked: token.revoked_at.is_some(),
        expires_at: token.expires_at,
    };
    let live = match check(state, &presented, now).await? {
        Ok(live) => live,
        Err(reason) => return Ok(Err(reason)),
    };
    Ok(Ok(ActiveToken { token, live }))
}

/// Scopes a first-party app may always ask for.
pub fn first_party_scopes() -> ScopeSet {
    Scope::ALL.into_iter().collect()
}
