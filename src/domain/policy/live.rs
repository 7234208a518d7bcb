//! The live policy as one pure function: is the consent behind a token (or code) still good
//! *now*, and for which scopes? [`evaluate`] decides from the facts gathered about it
//! ([`PolicyFacts`]) and the time; it does no I/O, so every rule is here, in one place, and
//! testable without a server. `oauth::live_policy` gathers the facts from the policy cache;
//! introspection, refresh, the code exchange and userinfo all decide through this function.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};

use super::Age;
use crate::domain::account::Role;
use crate::domain::partner::Accreditation;
use crate::domain::scope::{Scope, ScopeSet};

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Audience {
    Parents,
    Students,
    Partners,
}

impl Audience {
    pub const ALL: [Audience; 3] = [Audience::Parents, Audience::Students, Audience::Partners];

    pub fn as_str(self) -> &'static str {
        match self {
            Audience::Parents => "parents",
            Audience::Students => "students",
            Audience::Partners => "partners",
        }
    }

    pub fn parse(s: &str) -> Option<Audience> {
        Audience::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// Audiences as stored: space-separated names; unknown names are ignored.
    pub fn parse_list(s: &str) -> Vec<Audience> {
        s.split(' ').filter_map(Audience::parse).collect()
    }
}

/// One enrolment of a student at a school, in Unix seconds (`ends_at` exclusive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrollment {
    pub school_brin: Arc<str>,
    pub starts_at: i64,
    pub ends_at: Option<i64>,
}

impl Enrollment {
    pub fn is_active_at(&self, now: i64) -> bool {
        self.starts_at <= now && self.ends_at.is_none_or(|end| end > now)
    }
}

/// The school where the student is enrolled at `now`: of the enrolments running then, the
/// one that started last (a move between schools overlaps for a day or two).
pub fn active_school(enrollments: &[Enrollment], now: DateTime<Utc>) -> Option<&Arc<str>> {
    let now = now.timestamp();
    enrollments
        .iter()
        .filter(|e| e.is_active_at(now))
        .max_by_key(|e| e.starts_at)
        .map(|e| &e.school_brin)
}

/// A school's closure of one scope for some audiences, for a period (`ends_at` exclusive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closure {
    pub scope: Scope,
    pub audiences: Vec<Audience>,
    pub starts_at: i64,
    pub ends_at: i64,
    pub reason: Arc<str>,
}

impl Closure {
    pub fn applies(&self, scope: Scope, audience: Audience, now: i64) -> bool {
        self.scope == scope
            && self.starts_at <= now
            && now < self.ends_at
            && self.audiences.contains(&audience)
    }
}

/// A scope held back by a closure, with the school's reason.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Withheld {
    pub scope: &'static str,
    pub reason: Arc<str>,
    pub until: i64,
}

/// The token, refresh token or authorization code being checked.
#[derive(Debug, Clone, Copy)]
pub struct Credential<'a> {
    /// The client it was issued to.
    pub client_id: &'a str,
    pub scopes: ScopeSet,
    /// The parent whose login obtained it, if any.
    pub actor: Option<&'a str>,
    /// Revoked, or (a refresh token) already rotated out.
    pub revoked: bool,
    pub expires_at: i64,
}

/// The grant (consent) the credential was issued under.
#[derive(Debug, Clone, Copy)]
pub struct GrantFacts<'a> {
    pub client_id: &'a str,
    pub scopes: ScopeSet,
    /// The parent who gave it; `None` for the student's own and first-party ("self") grants.
    pub given_by_parent: Option<&'a str>,
    pub revoked: bool,
    pub expires_at: i64,
}

/// The client (partner, or the school's own first-party app).
#[derive(Debug, Clone)]
pub struct ClientFacts {
    pub first_party: bool,
    /// Deactivated by the operator.
    pub deactivated: bool,
    pub accreditation: Accreditation,
}

impl ClientFacts {
    /// Only an active client inside a valid accreditation receives or keeps tokens.
    pub fn is_admitted_at(&self, now: DateTime<Utc>) -> bool {
        !self.deactivated && self.accreditation.is_valid_at(now)
    }
}

/// The account the grant is about: the student; for a first-party app, whoever logged in.
#[derive(Debug, Clone, Copy)]
pub struct SubjectFacts<'a> {
    pub role: Option<Role>,
    /// The school the account belongs to (a parent's school, for the school's own app).
    pub home_school: &'a str,
    pub birth_date: Option<NaiveDate>,
}

/// Everything a decision about one credential needs, gathered beforehand. Facts that could
/// not be found are `None` (or empty, or `false`), and the rules treat a missing fact as the
/// refusing one: nothing here defaults to allow.
#[derive(Debug, Clone)]
pub struct PolicyFacts<'a> {
    /// `None`: no such token.
    pub credential: Option<Credential<'a>>,
    pub grant: Option<GrantFacts<'a>>,
    pub client: Option<ClientFacts>,
    pub subject: Option<SubjectFacts<'a>>,
    pub enrollments: &'a [Enrollment],
    /// Whether the school of [`school_of`] has opened its link to the client.
    pub link_open: bool,
    /// Each parent involved (the grant's and the credential's), and whether they are still
    /// linked to the subject as a guardian. A parent not listed counts as not linked.
    pub guardians: [Option<(&'a str, bool)>; 2],
    /// The closures of the school of [`school_of`].
    pub closures: &'a [Closure],
}

impl PolicyFacts<'_> {
    fn is_guardian(&self, parent: &str) -> bool {
        self.guardians
            .iter()
            .flatten()
            .any(|(id, linked)| *id == parent && *linked)
    }

    /// The parents whose guardianship the decision depends on (for the gatherer).
    pub fn parents_involved<'b>(
        grant: Option<&GrantFacts<'b>>,
        credential: Option<&Credential<'b>>,
    ) -> [Option<&'b str>; 2] {
        [
            grant.and_then(|g| g.given_by_parent),
            credential.and_then(|c| c.actor),
        ]
    }
}

/// The school whose link and closures apply, and whose eyes the token serves: for a partner
/// and for a student in the school's own app, the school the student is enrolled at now; for
/// a parent in the school's own app, the parent's own school. `None`: no such school (the
/// verdict is then [`Inactive::NotEnrolled`] or [`Inactive::UnknownSubject`]).
pub fn school_of<'a>(
    first_party: bool,
    subject: &SubjectFacts<'a>,
    enrollments: &'a [Enrollment],
    now: DateTime<Utc>,
) -> Option<(School<'a>, Audience)> {
    let enrolled = || active_school(enrollments, now).map(School::Enrolled);
    match (first_party, subject.role) {
        (true, Some(Role::Parent)) => Some((School::Home(subject.home_school), Audience::Parents)),
        (true, Some(Role::Student)) => enrolled().map(|school| (school, Audience::Students)),
        (true, _) => None,
        (false, _) => enrolled().map(|school| (school, Audience::Partners)),
    }
}

/// A school found by [`school_of`]: from an enrolment (shared, so the verdict names it
/// without copying) or the account's own.
#[derive(Debug, Clone, Copy)]
pub enum School<'a> {
    Enrolled(&'a Arc<str>),
    Home(&'a str),
}

impl School<'_> {
    pub fn brin(&self) -> &str {
        match self {
            School::Enrolled(brin) => brin,
            School::Home(brin) => brin,
        }
    }

    fn shared(&self) -> Arc<str> {
        match self {
            School::Enrolled(brin) => Arc::clone(brin),
            School::Home(brin) => Arc::from(*brin),
        }
    }
}

/// What a live credential may do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowed {
    /// What the credential carries within what the grant still covers: the scopes a new
    /// token (code exchange, refresh) is issued with. Closures are not applied here, since
    /// they are temporary.
    pub granted: ScopeSet,
    /// `granted` without the scopes a closure holds back now: what may be read.
    pub scopes: ScopeSet,
    /// The scopes held back, with the school's reasons.
    pub withheld: Vec<Withheld>,
    pub school: Arc<str>,
    pub audience: Audience,
    pub first_party: bool,
}

/// The decision about one credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Active(Allowed),
    Inactive(Inactive),
}

impl Verdict {
    pub fn into_result(self) -> Result<Allowed, Inactive> {
        match self {
            Verdict::Active(allowed) => Ok(allowed),
            Verdict::Inactive(reason) => Err(reason),
        }
    }
}

/// Every rule of the live policy, in the order they are checked:
/// 1. the credential exists, is not revoked (or rotated out) and has not expired;
/// 2. its grant exists, is not withdrawn or expired, and belongs to the same client;
/// 3. the client is active and inside a valid accreditation;
/// 4. the subject exists and, for the school's own app, is a student enrolled now or a
///    parent; for a partner, is enrolled now at a school whose link to the partner is open;
/// 5. (partners) every parent involved is still linked to the child, and a parent's consent
///    stands only while the child is under 18 (an unknown age does not let it stand: `Age`);
/// 6. the scopes are what the credential carries within what the grant covers, and of those
///    a closure of the school for this audience holds back what it covers now.
pub fn evaluate(facts: &PolicyFacts<'_>, now: DateTime<Utc>) -> Verdict {
    match decide(facts, now) {
        Ok(allowed) => Verdict::Active(allowed),
        Err(reason) => Verdict::Inactive(reason),
    }
}

fn decide(facts: &PolicyFacts<'_>, now: DateTime<Utc>) -> Result<Allowed, Inactive> {
    let at = now.timestamp();
    let credential = facts.credential.as_ref().ok_or(Inactive::UnknownToken)?;
    if credential.revoked {
        return Err(Inactive::Revoked);
    }
    if credential.expires_at <= at {
        return Err(Inactive::Expired);
    }
    let grant = facts.grant.as_ref().ok_or(Inactive::GrantWithdrawn)?;
    if grant.revoked || grant.expires_at <= at || grant.client_id != credential.client_id {
        return Err(Inactive::GrantWithdrawn);
    }
    let client = facts
        .client
        .as_ref()
        .ok_or(Inactive::PartnerNotAccredited)?;
    if !client.is_admitted_at(now) {
        return Err(Inactive::PartnerNotAccredited);
    }
    let subject = facts.subject.as_ref().ok_or(Inactive::UnknownSubject)?;
    let Some((school, audience)) = school_of(client.first_party, subject, facts.enrollments, now)
    else {
        return Err(match (client.first_party, subject.role) {
            (true, Some(Role::Student)) | (false, _) => Inactive::NotEnrolled,
            _ => Inactive::UnknownSubject,
        });
    };
    if !client.first_party {
        if !facts.link_open {
            return Err(Inactive::LinkClosed);
        }
        // Every parent involved must still be linked to the child: the one who gave the
        // consent, and the one whose login obtained this credential (they differ when a
        // parent signs in under a grant given by the other parent or by the student).
        let involved = PolicyFacts::parents_involved(Some(grant), Some(credential));
        if involved
            .into_iter()
            .flatten()
            .any(|parent| !facts.is_guardian(parent))
        {
            return Err(Inactive::GuardianshipEnded);
        }
        if grant.given_by_parent.is_some()
            && !Age::of(subject.birth_date, now.date_naive()).parent_consent_stands()
        {
            return Err(Inactive::ChildCameOfAge);
        }
    }
    let granted = credential.scopes.intersection(&grant.scopes);
    let (scopes, withheld) = withhold(granted, facts.closures, audience, at);
    Ok(Allowed {
        granted,
        scopes,
        withheld,
        school: school.shared(),
        audience,
        first_party: client.first_party,
    })
}

/// Apply the school's closures for `audience` at `now` (Unix seconds). Allocates only when
/// something is held back.
fn withhold(
    scopes: ScopeSet,
    closures: &[Closure],
    audience: Audience,
    now: i64,
) -> (ScopeSet, Vec<Withheld>) {
    let mut kept = scopes;
    let mut withheld = Vec::new();
    if closures.is_empty() {
        return (kept, withheld);
    }
    for scope in scopes.iter() {
        if let Some(closure) = closures.iter().find(|c| c.applies(scope, audience, now)) {
            kept.remove(scope);
            withheld.push(Withheld {
                scope: scope.as_str(),
                reason: Arc::clone(&closure.reason),
                until: closure.ends_at,
            });
        }
    }
    (kept, withheld)
}

#[cfg(test)]
mod tests;
