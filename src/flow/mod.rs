//! The browser's way through an authorization request, from `/authorize` to a code. It
//! gathers what the next step depends on, lets the pure `domain::policy::next_step` decide,
//! and maps the step to a page (`web`) or to an answer for the client (`oauth::authorize`).
//! This is where the protocol and the pages meet: `oauth` renders nothing and `web` knows no
//! protocol, so neither imports the other (kanidm keeps the same split between
//! `idm::oauth2` and `https::views::oauth2`).

pub mod authorize;
pub mod consent;
pub mod logout;

use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use chrono::Duration;

use crate::domain::policy::authorization::{AccountFacts, StudentFacts};
use crate::domain::policy::live::active_school;
use crate::domain::policy::{next_step, AuthorizationFacts, Refusal, Step, Subject};
use crate::domain::scope::ScopeSet;
use crate::oauth::authorize::{issue_code, ErrorRedirect, IssueError};
use crate::oauth::live_policy::client_facts;
use crate::storage::accounts::Account;
use crate::storage::clients::Client;
use crate::storage::grants::{Consent, Grant, Recorded};
use crate::storage::sessions::{AuthorizationRequest, BrowserSession};
use crate::web::error::PageError;
use crate::web::refusal;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/authorize",
            get(authorize::authorize).post(authorize::authorize_post),
        )
        .route("/logout", get(logout::logout).post(logout::logout_post))
        .route(
            "/consent",
            get(consent::view_consent_get).post(consent::view_consent_post),
        )
}

/// A student the consent could be about, with the facts found for them.
pub struct Candidate {
    pub account: Account,
    /// Their active grant to this client, if any.
    pub grant: Option<Grant>,
    pub facts: StudentFacts,
}

/// The next step, with the rows it was decided from (the pages show them).
pub struct Decided {
    pub step: Step,
    pub client: Client,
    /// The account logged in on this browser, if any.
    pub account: Option<Account>,
    /// For a student: themself.
    pub own: Option<Candidate>,
    /// For a parent: their children, in the order the facts listed them.
    pub children: Vec<Candidate>,
}

async fn candidate(
    state: &AppState,
    account: Account,
    client_id: &str,
) -> Result<Candidate, PageError> {
    let now = state.now();
    let enrollments = state.store.enrollments_of(&account.id).await?;
    let school = active_school(&enrollments, now);
    let link_open = match school {
        Some(brin) => state.store.link_is_open(brin, client_id).await?,
        None => false,
    };
    let grant = state
        .store
        .active_grant(&account.id, client_id, now)
        .await?;
    let facts = StudentFacts {
        birth_date: account.birth_date(),
        enrolled: school.is_some(),
        link_open,
        grant_scopes: grant.as_ref().map(Grant::scopes),
    };
    Ok(Candidate {
        account,
        grant,
        facts,
    })
}

/// Gather the facts for this request and browser session and decide the next step. With
/// `allow_skip`, an existing grant that covers the request skips the consent page (unless
/// `prompt=consent`); the consent form itself passes `false`. Read from the database, not
/// the policy cache: a person's own flow sees every change at once.
pub async fn decide(
    state: &AppState,
    request: &AuthorizationRequest,
    browser: &BrowserSession,
    allow_skip: bool,
) -> Result<Decided, PageError> {
    let Some(client) = state.store.get_client(&request.client_id).await? else {
        return Err(PageError::bad_request((
            "Deze app is bij ons niet bekend.",
            "This app is not known here.",
        ))
        .in_english(request.english()));
    };
    let account = match browser.account_id.as_deref() {
        Some(id) => state.store.get_account(id).await?,
        None => None,
    };
    let (mut own, mut children) = (None, Vec::new());
    if let Some(account) = &account {
        match account.role() {
            Some(crate::domain::account::Role::Student) => {
                own = Some(candidate(state, account.clone(), &client.client_id).await?);
            }
            Some(crate::domain::account::Role::Parent) => {
                for child in state.store.children_of(&account.id).await? {
                    children.push(candidate(state, child, &client.client_id).await?);
                }
            }
            _ => {}
        }
    }
    let child_facts: Vec<StudentFacts> = children.iter().map(|c| c.facts).collect();
    let facts = AuthorizationFacts {
        account: account.as_ref().map(|a| AccountFacts {
            role: a.role(),
            school: &a.school_brin,
        }),
        force_login: request.force_login == 1,
        school_hint: request.school_hint.as_deref(),
        client: client_facts(&client),
        requested: ScopeSet::parse_lossy(&request.scopes),
        may_skip_consent: allow_skip && request.force_consent == 0,
        own: own.as_ref().map(|c| c.facts),
        children: &child_facts,
    };
    let step = next_step(&facts, state.now());
    Ok(Decided {
        step,
        client,
        account,
        own,
        children,
    })
}

/// Show a refusal to the person, with the way back that tells the client why.
pub async fn refuse(
    state: &AppState,
    request: &AuthorizationRequest,
    partner_name: &str,
    why: Refusal,
) -> Result<Response, PageError> {
    state.store.take_authorization_request(&request.id).await?;
    let back = ErrorRedirect::of(&state.config.issuer, request);
    refusal::page(why, partner_name, &back.refusal_url(why), request.english())
}

/// Issue the code, or say the request was answered already.
pub async fn issue(
    state: &AppState,
    request: &AuthorizationRequest,
    browser: &BrowserSession,
    (student_id, grant, scopes): (&str, &Grant, &ScopeSet),
    actor: Option<String>,
) -> Result<Response, PageError> {
    match issue_code(state, request, browser, student_id, grant, scopes, actor).await {
        Ok(response) => Ok(response),
        Err(IssueError::AlreadyAnswered) => Err(PageError::request_expired(request.english())),
        Err(IssueError::Db(e)) => Err(e.into()),
    }
}

/// Turn a step that needs no page of its own into a response.
pub async fn respond(
    state: &AppState,
    request: &AuthorizationRequest,
    browser: &BrowserSession,
    decided: Decided,
) -> Result<Response, PageError> {
    let requested = ScopeSet::parse_lossy(&request.scopes);
    match decided.step {
        Step::Login => Ok(Redirect::to(&format!("/login?request={}", request.id)).into_response()),
        Step::Consent { .. } => {
            Ok(Redirect::to(&format!("/consent?request={}", request.id)).into_response())
        }
        Step::Refuse(why) => refuse(state, request, &decided.client.display_name, why).await,
        Step::Issue(subject) => {
            let (candidate, actor) = match subject {
                Subject::Myself => (decided.own.as_ref(), None),
                Subject::Child(i) => (
                    decided.children.get(i),
                    decided.account.as_ref().map(|a| a.id.clone()),
                ),
            };
            let Some((candidate, grant)) = candidate.and_then(|c| c.grant.as_ref().map(|g| (c, g)))
            else {
                return Err(PageError::internal(
                    "a covering grant was decided but not found",
                ));
            };
            // A grant that covers the request: the code carries what was asked, never more
            // than the grant holds.
            let scopes = requested.intersection(&grant.scopes());
            issue(
                state,
                request,
                browser,
                (&candidate.account.id, grant, &scopes),
                actor,
            )
            .await
        }
        Step::IssueFirstParty => {
            let Some(account) = decided.account else {
                return Err(PageError::internal("a first-party code without an account"));
            };
            let now = state.now();
            let recorded = state
                .store
                .record_consent(
                    Consent {
                        student_id: &account.id,
                        client_id: &request.client_id,
                        scopes: &requested,
                        given_by: &account.id,
                        given_by_role: "self",
                        expires_at: now + Duration::days(state.config.grant_ttl_days),
                    },
                    now,
                )
                .await?;
            // A first-party grant is always the person's own ("self"), so nothing stands in
            // its way; the other outcome is answered like any refusal.
            let Recorded::Grant(grant, changed) = recorded else {
                return Err(PageError::internal(
                    "a first-party grant was not the person's own",
                ));
            };
            if changed {
                state.cache.changed(&state.store).await;
            }
            issue(
                state,
                request,
                browser,
                (&account.id, &grant, &requested),
                None,
            )
            .await
        }
    }
}
