//! The live policy: is the consent behind a token still good *now*? Evaluated on every
//! refresh and userinfo call, so a withdrawn grant, a closed link, a suspended partner, a
//! student who left, or a parent no longer linked takes effect at once.

use chrono::{DateTime, Utc};

use crate::domain::account::age_on;
use crate::domain::policy::parent_may_consent_for;
use crate::domain::scope::ScopeSet;
use crate::storage::accounts::Account;
use crate::storage::clients::Client;
use crate::storage::grants::Grant;
use crate::storage::DbResult;
use crate::AppState;

/// Why a token (or the grant behind it) no longer works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inactive {
    GrantWithdrawn,
    PartnerNotAccredited,
    LinkClosed,
    NotEnrolled,
    GuardianshipEnded,
    /// A parent's consent ends when the child turns 18, until the student confirms it.
    ChildCameOfAge,
    UnknownSubject,
}

/// A grant that passed every check, with what the checks looked up.
pub struct LiveGrant {
    pub grant: Grant,
    pub client: Client,
    pub student: Account,
    pub school_brin: String,
}

impl LiveGrant {
    /// The scopes a token may use now: what it was issued with, within what the grant still covers.
    pub fn effective_scopes(&self, token_scopes: &ScopeSet) -> ScopeSet {
        token_scopes.intersection(&self.grant.scopes())
    }
}

pub async fn check_grant(
    state: &AppState,
    grant_id: &str,
    client_id: &str,
    now: DateTime<Utc>,
) -> DbResult<Result<LiveGrant, Inactive>> {
    let Some(grant) = state.store.get_grant(grant_id).await? else {
        return Ok(Err(Inactive::GrantWithdrawn));
    };
    if !grant.is_active_at(now) || grant.client_id != client_id {
        return Ok(Err(Inactive::GrantWithdrawn));
    }
    let Some(client) = state.store.get_client(client_id).await? else {
        return Ok(Err(Inactive::PartnerNotAccredited));
    };
    if !client.accreditation().is_valid_at(now) {
        return Ok(Err(Inactive::PartnerNotAccredited));
    }
    let Some(student) = state.store.get_account(&grant.student_id).await? else {
        return Ok(Err(Inactive::UnknownSubject));
    };
    let Some(school_brin) = state.store.active_enrollment(&student.id, now).await? else {
        return Ok(Err(Inactive::NotEnrolled));
    };
    if !state.store.link_is_open(&school_brin, client_id).await? {
        return Ok(Err(Inactive::LinkClosed));
    }
    if let Some(parent_id) = grant.actor() {
        if !state.store.is_guardian(parent_id, &student.id).await? {
            return Ok(Err(Inactive::GuardianshipEnded));
        }
        let age = student
            .birth_date()
            .map(|b| age_on(b, now.date_naive()))
            .unwrap_or(u32::MAX);
        if !parent_may_consent_for(age) {
            return Ok(Err(Inactive::ChildCameOfAge));
        }
    }
    Ok(Ok(LiveGrant {
        grant,
        client,
        student,
        school_brin,
    }))
}
