//! The consent page: which partner, with which accreditation, wants which data, for whom.
//! A parent chooses the child and, per scope, what to share (all ticked at first; `openid`
//! always stays); approve or deny. The partner gets only what was chosen (RFC 6749 §3.3).

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use chrono::Duration;
use serde::Deserialize;

use super::{decide, issue, refuse, respond, Decided};
use crate::domain::account::Role;
use crate::domain::policy::{ChildIneligible, Refusal, Step, GIVEN_BY_PARENT, GIVEN_BY_STUDENT};
use crate::domain::scope::{Scope, ScopeSet};
use crate::oauth::authorize::ErrorRedirect;
use crate::storage::accounts::Account;
use crate::storage::grants::{Consent, Recorded};
use crate::storage::sessions::{AuthorizationRequest, BrowserSession};
use crate::web::error::PageError;
use crate::web::i18n::Texts;
use crate::web::login::{apply_language, pending_request, PageQuery};
use crate::web::{no_store_for, session};
use crate::AppState;

/// What the consent page offers: the person logged in and, for a parent, each child with
/// whether they may be chosen.
struct Choices<'a> {
    account: &'a Account,
    children: Vec<(&'a Account, Option<ChildIneligible>)>,
}

impl<'a> Choices<'a> {
    /// The choices of a consent step; `None` for any other step.
    fn of(decided: &'a Decided) -> Option<Choices<'a>> {
        let Step::Consent { children } = &decided.step else {
            return None;
        };
        Some(Choices {
            account: decided.account.as_ref()?,
            children: decided
                .children
                .iter()
                .zip(children)
                .map(|(c, why)| (&c.account, *why))
                .collect(),
        })
    }
}

struct ScopeLine {
    name: &'static str,
    explanation: &'static str,
    /// A checkbox the person may untick; `openid` is shown as text (it only confirms the login).
    choosable: bool,
}

struct ChildLine {
    value: String,
    name: String,
    reason: Option<&'static str>,
    preselected: bool,
}

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentPage<'a> {
    t: &'static Texts,
    request_id: &'a str,
    csrf: &'a str,
    account_name: String,
    partner_name: &'a str,
    accredited_until: Option<String>,
    scopes: Vec<ScopeLine>,
    children: Vec<ChildLine>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ConsentForm {
    request: Option<String>,
    decision: Option<String>,
    student: Option<String>,
}

/// `GET /consent?request=…`: show the page, or move on when no consent is needed.
pub async fn view_consent_get(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(query): Query<PageQuery>,
) -> Result<Response, PageError> {
    let Some(browser) = session::current(&state, &jar).await? else {
        return Err(PageError::session_expired());
    };
    let mut request = pending_request(&state, &browser, query.request.as_deref()).await?;
    apply_language(&state, &mut request, query.lang.as_deref()).await?;
    let decided = decide(&state, &request, &browser, true).await?;
    match Choices::of(&decided) {
        Some(choices) => render(&request, &browser, &decided, &choices),
        None => respond(&state, &request, &browser, decided).await,
    }
}

fn render(
    request: &AuthorizationRequest,
    browser: &BrowserSession,
    decided: &Decided,
    choices: &Choices<'_>,
) -> Result<Response, PageError> {
    let english = request.english();
    let t = Texts::get(english);
    let scopes = ScopeSet::parse_lossy(&request.scopes)
        .iter()
        .map(|scope| ScopeLine {
            name: scope.as_str(),
            explanation: scope.explanation(english),
            choosable: scope != Scope::OpenId,
        })
        .collect();
    let eligible = choices.children.iter().filter(|c| c.1.is_none()).count();
    let children = choices
        .children
        .iter()
        .map(|&(child, ineligible)| ChildLine {
            // The student number is what people and partners know, but it is unique per school
            // only: children at two schools with the same number are told apart by their id.
            value: if choices
                .children
                .iter()
                .filter(|o| o.0.username == child.username)
                .count()
                == 1
            {
                child.username.clone()
            } else {
                child.id.clone()
            },
            name: child.name().full(),
            reason: ineligible.map(|reason| match reason {
                ChildIneligible::AgeUnknown => t.child_not_eligible_age_unknown,
                ChildIneligible::Adult => t.child_not_eligible_adult,
                ChildIneligible::DecidesPersonally => t.child_not_eligible_decides,
                ChildIneligible::NotEnrolled => t.child_not_eligible_enrolment,
                ChildIneligible::LinkClosed => t.child_not_eligible_link,
            }),
            preselected: eligible == 1 && ineligible.is_none(),
        })
        .collect();
    let accredited_until = decided
        .client
        .accreditation()
        .valid_until
        .map(|until| until.format("%d-%m-%Y").to_string());
    let page = ConsentPage {
        t,
        request_id: &request.id,
        csrf: &browser.csrf_token,
        account_name: choices.account.name().full(),
        partner_name: &decided.client.display_name,
        accredited_until,
        scopes,
        children,
    };
    let html = page.render().map_err(PageError::internal)?;
    Ok((no_store_for(Some(&request.redirect_uri)), Html(html)).into_response())
}

/// `POST /consent`: record the decision.
pub async fn view_consent_post(
    State(state): State<AppState>,
    jar: CookieJar,
    body: Bytes,
) -> Result<Response, PageError> {
    let (form, browser): (ConsentForm, _) = session::accept_form(&state, &jar, &body).await?;
    let request = pending_request(&state, &browser, form.request.as_deref()).await?;
    let english = request.english();

    match form.decision.as_deref() {
        Some("deny") => {
            state.store.take_authorization_request(&request.id).await?;
            tracing::info!(client = %request.client_id, "consent denied");
            let back = ErrorRedirect::of(&state.config.issuer, &request);
            return Ok(back.to("access_denied", "the user denied the request"));
        }
        Some("approve") => {}
        _ => {
            return Err(PageError::bad_request((
                "Kies 'Toestaan' of 'Weigeren'.",
                "Choose 'Allow' or 'Deny'.",
            ))
            .in_english(english))
        }
    }

    // Re-evaluate everything: the link, the accreditation and the child's age may have changed
    // since the page was shown, and the form's fields are not trusted.
    let decided = decide(&state, &request, &browser, false).await?;
    let Some(choices) = Choices::of(&decided) else {
        return respond(&state, &request, &browser, decided).await;
    };
    let (student, actor) =
        match choices.account.role() {
            Some(Role::Parent) => {
                let wanted = form.student.as_deref().unwrap_or_default();
                let eligible: Vec<&Account> = choices
                    .children
                    .iter()
                    .filter(|c| c.1.is_none())
                    .map(|c| c.0)
                    .collect();
                let by_number: Vec<&Account> = eligible
                    .iter()
                    .copied()
                    .filter(|c| c.username == wanted)
                    .collect();
                let chosen =
                    eligible.iter().copied().find(|c| c.id == wanted).or(
                        match by_number.as_slice() {
                            [only] => Some(*only),
                            _ => None,
                        },
                    );
                let Some(chosen) = chosen else {
                    return Err(PageError::bad_request((
                        "Kies het kind voor wie je toestemming geeft.",
                        "Choose the child you are giving consent for.",
                    ))
                    .in_english(english));
                };
                (chosen, Some(choices.account.id.clone()))
            }
            _ => (choices.account, None),
        };
    let scopes = chosen_scopes(&ScopeSet::parse_lossy(&request.scopes), &body);
    // Nothing left to share (every box unticked, no `openid` asked): that is a refusal.
    if scopes.is_empty() {
        state.store.take_authorization_request(&request.id).await?;
        tracing::info!(client = %request.client_id, "consent given for no scope: denied");
        let back = ErrorRedirect::of(&state.config.issuer, &request);
        return Ok(back.to(
            "access_denied",
            "the user shared none of the requested scopes",
        ));
    }
    let now = state.now();
    let recorded = state
        .store
        .record_consent(
            Consent {
                student_id: &student.id,
                client_id: &request.client_id,
                scopes: &scopes,
                given_by: &choices.account.id,
                given_by_role: if actor.is_some() {
                    GIVEN_BY_PARENT
                } else {
                    GIVEN_BY_STUDENT
                },
                expires_at: now + Duration::days(state.config.grant_ttl_days),
            },
            now,
        )
        .await?;
    // The student's own decision stands (the child may have turned 16 and consented since
    // the page was shown): the parent is told so and nothing is issued.
    let Recorded::Grant(grant, changed) = recorded else {
        return refuse(
            &state,
            &request,
            &decided.client.display_name,
            Refusal::ChildDecides,
        )
        .await;
    };
    if changed {
        state.cache.changed(&state.store).await;
    }
    tracing::info!(client = %request.client_id, grant = %grant.id, "consent given");
    issue(
        &state,
        &request,
        &browser,
        (&student.id, &grant, &scopes),
        actor,
    )
    .await
}

/// The scopes ticked on the form (repeated `scope` fields, which serde_urlencoded cannot
/// collect), within what was requested: a forged value never widens the request. `openid`
/// is not a choice and stays when it was asked for.
fn chosen_scopes(requested: &ScopeSet, body: &[u8]) -> ScopeSet {
    let ticked: ScopeSet = url::form_urlencoded::parse(body)
        .filter(|(key, _)| key == "scope")
        .filter_map(|(_, value)| Scope::parse(&value))
        .chain(std::iter::once(Scope::OpenId))
        .collect();
    requested.intersection(&ticked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ticked_and_requested_scopes_are_chosen() {
        let requested = ScopeSet::parse("openid naam rooster cijfers").unwrap();
        let chosen = chosen_scopes(
            &requested,
            b"csrf=x&scope=naam&scope=huiswerk&scope=rooster",
        );
        assert_eq!(chosen.to_string(), "openid naam rooster");
        let nothing = chosen_scopes(&requested, b"csrf=x&decision=approve");
        assert_eq!(nothing.to_string(), "openid", "openid is not a choice");
        let without_openid = ScopeSet::parse("rooster").unwrap();
        assert!(chosen_scopes(&without_openid, b"scope=openid&scope=cijfers").is_empty());
    }
}
