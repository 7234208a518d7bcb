//! The authorization endpoint (RFC 6749 §4.1.1, OIDC Core §3.1.2) and the decisions that
//! follow it: log in, ask consent, refuse with an explanation, or issue a code.

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use chrono::Duration;

use super::params::{Params, AUTHORIZE_CLIENT_LIMITS, AUTHORIZE_LIMITS, MAX_AUTHORIZE_QUERY};
use super::pkce;
use crate::crypto::tokens::{hash_token, random_token};
use crate::domain::account::Role;
use crate::domain::policy::{Age, Refusal};
use crate::domain::scope::ScopeSet;
use crate::storage::accounts::Account;
use crate::storage::clients::Client;
use crate::storage::grants::{Consent, Grant, Recorded};
use crate::storage::sessions::{AuthorizationRequest, BrowserSession};
use crate::storage::tokens::AuthorizationCode;
use crate::storage::ts;
use crate::web::error::PageError;
use crate::web::i18n::Texts;
use crate::web::{no_store, session};
use crate::AppState;

/// RFC 9700 §4.2.1 / the issue: authorization codes live at most 60 seconds.
pub const CODE_TTL_SECS: i64 = 60;
/// How long a person has to log in and consent.
pub const REQUEST_TTL_SECS: i64 = 30 * 60;
/// Pending requests kept per browser session: a page reloaded or an app retried keeps
/// working, a loop of anonymous requests on one session does not fill the database.
pub const MAX_PENDING_PER_SESSION: i64 = 10;

/// `GET /authorize`.
pub async fn authorize(
    State(state): State<AppState>,
    lang: crate::web::lang::Lang,
    jar: CookieJar,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let raw = query.unwrap_or_default();
    if raw.len() > MAX_AUTHORIZE_QUERY {
        return Err(PageError::bad_request((
            "De aanvraag van de app is te lang (invalid_request).",
            "The app's request is too long (invalid_request).",
        )));
    }
    let params = Params::parse(raw.as_bytes()).map_err(|name| {
        PageError::bad_request((
            &format!("De parameter '{name}' komt meer dan eens voor."),
            &format!("The parameter '{name}' occurs more than once."),
        ))
    })?;
    // OIDC Core §3.1.2.1: `ui_locales` in order of preference; the first we speak wins.
    // Without it, the person's own choice (language link, browser; `web::lang`).
    let english = params
        .get("ui_locales")
        .and_then(|l| {
            l.split(' ').find_map(|tag| match tag.split('-').next() {
                Some("en") => Some(true),
                Some("nl") => Some(false),
                _ => None,
            })
        })
        .unwrap_or(lang.english);

    // Until client and redirect URI are verified we must not redirect anywhere
    // (RFC 6749 §4.1.2.1): an open redirector would hand codes or errors to an attacker.
    if let Some((name, max)) = params.too_long(AUTHORIZE_CLIENT_LIMITS) {
        return Err(PageError::bad_request((
            &format!("De parameter '{name}' is langer dan {max} bytes (invalid_request)."),
            &format!("The parameter '{name}' is longer than {max} bytes (invalid_request)."),
        ))
        .in_english(english));
    }
    let Some(client_id) = params.get("client_id") else {
        return Err(PageError::bad_request((
            "De app heeft zich niet bekendgemaakt (client_id ontbreekt).",
            "The app did not identify itself (client_id is missing).",
        ))
        .in_english(english));
    };
    let client = state.store.get_client(client_id).await?;
    let Some(client) = client.filter(|c| matches!(c.kind.as_str(), "partner" | "first_party"))
    else {
        return Err(PageError::bad_request((
            "Deze app is bij ons niet bekend. Er zijn geen gegevens gedeeld.",
            "This app is not known here. No data was shared.",
        ))
        .in_english(english));
    };
    let redirect_uri = match params.get("redirect_uri") {
        Some(uri) if client.has_redirect_uri(uri) => uri.to_string(),
        _ => {
            return Err(PageError::bad_request((
                "De app gaf een terugkeeradres op dat niet bij haar registratie hoort. Uit veiligheid sturen we je daar niet heen.",
                "The app gave a return address that is not registered for it. For your safety we do not send you there.",
            ))
            .in_english(english));
        }
    };
    // From here on errors go back to the client (RFC 6749 §4.1.2.1). An over-long `state` is
    // not echoed: we refuse to store or reflect it.
    let too_long = params.too_long(AUTHORIZE_LIMITS);
    let back = ErrorRedirect {
        issuer: &state.config.issuer,
        redirect_uri: &redirect_uri,
        state: params.get("state").filter(|_| too_long.is_none()),
    };
    if let Some((name, max)) = too_long {
        return Ok(back.to(
            "invalid_request",
            &format!("{name} is longer than {max} bytes"),
        ));
    }

    match params.get("response_type") {
        Some("code") => {}
        Some(_) => {
            return Ok(back.to(
                "unsupported_response_type",
                "only response_type=code is supported",
            ))
        }
        None => return Ok(back.to("invalid_request", "response_type is required")),
    }
    if params.get("request").is_some() {
        return Ok(back.to("request_not_supported", "request objects are not supported"));
    }
    if params.get("request_uri").is_some() {
        return Ok(back.to("request_uri_not_supported", "request_uri is not supported"));
    }
    let Some(code_challenge) = params.get("code_challenge") else {
        return Ok(back.to("invalid_request", "code_challenge is required (PKCE, S256)"));
    };
    // RFC 7636 §4.3: an absent method means "plain", which we refuse like an explicit one.
    if params.get("code_challenge_method") != Some("S256") {
        return Ok(back.to("invalid_request", "code_challenge_method must be S256"));
    }
    if !pkce::is_valid_s256_challenge(code_challenge) {
        return Ok(back.to(
            "invalid_request",
            "code_challenge is not a valid S256 challenge",
        ));
    }
    let scopes = match ScopeSet::parse(params.get("scope").unwrap_or_default()) {
        Ok(scopes) if !scopes.is_empty() => scopes,
        Ok(_) => return Ok(back.to("invalid_scope", "scope is required")),
        Err(unknown) => return Ok(back.to("invalid_scope", &format!("unknown scope: {unknown}"))),
    };
    let prompts: Vec<&str> = params
        .get("prompt")
        .unwrap_or_default()
        .split(' ')
        .filter(|p| !p.is_empty())
        .collect();
    if prompts.contains(&"none") && prompts.len() > 1 {
        return Ok(back.to(
            "invalid_request",
            "prompt=none cannot be combined with other values",
        ));
    }

    let partner_name = client.display_name.clone();
    if !scopes.is_subset(&client.allowed_scopes()) {
        return refusal_page(&back, Refusal::ScopeNotAllowed, &partner_name, english);
    }
    if !client.is_admitted_at(state.now()) {
        return refusal_page(&back, Refusal::PartnerNotAccredited, &partner_name, english);
    }

    // acr_values=tenant:<BRIN> (the Magister convention) pre-selects the school.
    let mut school_hint = None;
    if let Some(acr) = params.get("acr_values") {
        for value in acr.split(' ') {
            if let Some(brin) = value.strip_prefix("tenant:") {
                if state.store.get_school(brin).await?.is_some() {
                    school_hint = Some(brin.to_string());
                }
            }
        }
    }

    let (jar, browser) = session::current_or_start(&state, jar).await?;
    let now = state.now();
    let request = AuthorizationRequest {
        id: random_token(),
        session_id: browser.id.clone(),
        client_id: client.client_id.clone(),
        redirect_uri: redirect_uri.clone(),
        scopes: scopes.to_string(),
        state: params.get("state").map(str::to_string),
        nonce: params.get("nonce").map(str::to_string),
        code_challenge: code_challenge.to_string(),
        school_hint,
        login_hint: params.get("login_hint").map(str::to_string),
        force_login: i64::from(prompts.contains(&"login")),
        force_consent: i64::from(prompts.contains(&"consent")),
        locale: if english { "en".into() } else { "nl".into() },
        created_at: ts(now),
    };
    state
        .store
        .insert_authorization_request(
            &request,
            now + Duration::seconds(REQUEST_TTL_SECS),
            MAX_PENDING_PER_SESSION,
        )
        .await?;

    let step = decide(&state, &request, &browser, true).await?;
    if prompts.contains(&"none") {
        // OIDC Core §3.1.2.6: no UI may be shown.
        return Ok(match step {
            step @ (Step::Issue { .. } | Step::IssueFirstParty(_)) => {
                (jar, respond(&state, &request, &browser, step).await?).into_response()
            }
            Step::Login => back.to("login_required", "the user is not logged in"),
            Step::Consent(_) => back.to("consent_required", "consent is required"),
            Step::Refuse(refusal) => back.to(refusal.error_code(), refusal.description()),
        });
    }
    let response = match step {
        Step::Login => Redirect::to(&format!("/login?request={}", request.id)).into_response(),
        Step::Consent(_) => {
            Redirect::to(&format!("/consent?request={}", request.id)).into_response()
        }
        other => respond(&state, &request, &browser, other).await?,
    };
    Ok((jar, response).into_response())
}

/// Where the flow goes next for this request and browser session.
pub enum Step {
    Login,
    Refuse(Refusal),
    Consent(ConsentChoices),
    Issue {
        student: Account,
        grant: Grant,
        actor: Option<String>,
    },
    /// The school's own app: no consent page; the token is about the person who logged in.
    IssueFirstParty(Account),
}

/// What the consent page offers: the person logged in and, for a parent, each child.
pub struct ConsentChoices {
    pub account: Account,
    pub client: Client,
    pub children: Vec<ChildChoice>,
}

pub struct ChildChoice {
    pub child: Account,
    pub ineligible: Option<ChildIneligible>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildIneligible {
    /// The school has no birth date: whether a parent may act cannot be established.
    AgeUnknown,
    Adult,
    /// 16 or 17: the student decides personally (UAVG art. 5).
    DecidesPersonally,
    NotEnrolled,
    LinkClosed,
}

/// Decide the next step. With `allow_skip`, an existing grant that covers the request skips
/// the consent page (unless `prompt=consent`); the consent form itself passes `false`.
pub async fn decide(
    state: &AppState,
    request: &AuthorizationRequest,
    browser: &BrowserSession,
    allow_skip: bool,
) -> Result<Step, PageError> {
    let now = state.now();
    let today = now.date_naive();
    let Some(account_id) = browser.account_id.as_deref() else {
        return Ok(Step::Login);
    };
    if request.force_login == 1 {
        return Ok(Step::Login);
    }
    let Some(account) = state.store.get_account(account_id).await? else {
        return Ok(Step::Login);
    };
    if request
        .school_hint
        .as_deref()
        .is_some_and(|brin| brin != account.school_brin)
    {
        return Ok(Step::Login);
    }
    let Some(client) = state.store.get_client(&request.client_id).await? else {
        return Err(PageError::bad_request((
            "Deze app is bij ons niet bekend.",
            "This app is not known here.",
        )));
    };
    // Accreditation is checked again: it may have been suspended while the person logged in.
    if !client.is_admitted_at(now) {
        return Ok(Step::Refuse(Refusal::PartnerNotAccredited));
    }
    let requested = ScopeSet::parse_lossy(&request.scopes);
    let skip = allow_skip && request.force_consent == 0;

    if client.kind == "first_party" {
        return Ok(match account.role() {
            Some(Role::Student)
                if state
                    .store
                    .active_enrollment(&account.id, now)
                    .await?
                    .is_none() =>
            {
                Step::Refuse(Refusal::NotEnrolled)
            }
            Some(Role::Student | Role::Parent) => Step::IssueFirstParty(account),
            _ => Step::Refuse(Refusal::AccountCannotConsent),
        });
    }

    match account.role() {
        Some(Role::Student) => {
            let Some(brin) = state.store.active_enrollment(&account.id, now).await? else {
                return Ok(Step::Refuse(Refusal::NotEnrolled));
            };
            if !state.store.link_is_open(&brin, &client.client_id).await? {
                return Ok(Step::Refuse(Refusal::LinkClosed));
            }
            if skip {
                if let Some(grant) =
                    covering_grant(state, &account.id, &client.client_id, &requested).await?
                {
                    return Ok(Step::Issue {
                        student: account,
                        grant,
                        actor: None,
                    });
                }
            }
            if !Age::of(account.birth_date(), today).may_consent_personally() {
                return Ok(Step::Refuse(Refusal::StudentTooYoung));
            }
            Ok(Step::Consent(ConsentChoices {
                account,
                client,
                children: Vec::new(),
            }))
        }
        Some(Role::Parent) => {
            let mut children = Vec::new();
            for child in state.store.children_of(&account.id).await? {
                let age = Age::of(child.birth_date(), today);
                let ineligible = if age == Age::Unknown {
                    Some(ChildIneligible::AgeUnknown)
                } else if age.is_adult() {
                    Some(ChildIneligible::Adult)
                } else if !age.parent_may_consent() {
                    Some(ChildIneligible::DecidesPersonally)
                } else {
                    match state.store.active_enrollment(&child.id, now).await? {
                        None => Some(ChildIneligible::NotEnrolled),
                        Some(brin)
                            if !state.store.link_is_open(&brin, &client.client_id).await? =>
                        {
                            Some(ChildIneligible::LinkClosed)
                        }
                        Some(_) => None,
                    }
                };
                children.push(ChildChoice { child, ineligible });
            }
            let eligible: Vec<&ChildChoice> =
                children.iter().filter(|c| c.ineligible.is_none()).collect();
            if eligible.is_empty() {
                let any = |why| children.iter().any(|c| c.ineligible == Some(why));
                // A child of 16 or 17 decides personally: say so rather than "no child".
                return Ok(Step::Refuse(if any(ChildIneligible::DecidesPersonally) {
                    Refusal::ChildDecides
                } else if any(ChildIneligible::LinkClosed) {
                    Refusal::LinkClosed
                } else {
                    Refusal::NoEligibleChild
                }));
            }
            // With one child there is nothing to choose; with several the parent must say whom
            // the app is for, so the page is shown.
            if skip && eligible.len() == 1 {
                let child = &eligible[0].child;
                if let Some(grant) =
                    covering_grant(state, &child.id, &client.client_id, &requested).await?
                {
                    let student = child.clone();
                    return Ok(Step::Issue {
                        student,
                        grant,
                        actor: Some(account.id.clone()),
                    });
                }
            }
            Ok(Step::Consent(ConsentChoices {
                account,
                client,
                children,
            }))
        }
        Some(Role::Supervisor) | None => Ok(Step::Refuse(Refusal::AccountCannotConsent)),
    }
}

async fn covering_grant(
    state: &AppState,
    student_id: &str,
    client_id: &str,
    requested: &ScopeSet,
) -> Result<Option<Grant>, PageError> {
    let grant = state
        .store
        .active_grant(student_id, client_id, state.now())
        .await?;
    Ok(grant.filter(|g| requested.is_subset(&g.scopes())))
}

/// Turn a step that needs no page of its own into a response.
pub async fn respond(
    state: &AppState,
    request: &AuthorizationRequest,
    browser: &BrowserSession,
    step: Step,
) -> Result<Response, PageError> {
    let back = ErrorRedirect {
        issuer: &state.config.issuer,
        redirect_uri: &request.redirect_uri,
        state: request.state.as_deref(),
    };
    match step {
        Step::Login => Ok(Redirect::to(&format!("/login?request={}", request.id)).into_response()),
        Step::Consent(_) => {
            Ok(Redirect::to(&format!("/consent?request={}", request.id)).into_response())
        }
        Step::Refuse(refusal) => {
            state.store.take_authorization_request(&request.id).await?;
            let partner = state
                .store
                .get_client(&request.client_id)
                .await?
                .map(|c| c.display_name)
                .unwrap_or_default();
            refusal_page(&back, refusal, &partner, request.english())
        }
        Step::Issue {
            student,
            grant,
            actor,
        } => {
            // A grant that covers the request: the code carries what was asked, never more
            // than the grant holds.
            let scopes = ScopeSet::parse_lossy(&request.scopes).intersection(&grant.scopes());
            issue_code(state, request, browser, &student, &grant, &scopes, actor).await
        }
        Step::IssueFirstParty(account) => {
            let now = state.now();
            let recorded = state
                .store
                .record_consent(
                    Consent {
                        student_id: &account.id,
                        client_id: &request.client_id,
                        scopes: &ScopeSet::parse_lossy(&request.scopes),
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
            let scopes = ScopeSet::parse_lossy(&request.scopes);
            issue_code(state, request, browser, &account, &grant, &scopes, None).await
        }
    }
}

/// Issue an authorization code and send the browser back to the client (RFC 6749 §4.1.2),
/// with `iss` (RFC 9207) and the client's `state`. The code carries `scopes`: what the
/// person granted for this request, which may be less than was requested (the token
/// response's `scope` then says so, RFC 6749 §3.3).
pub async fn issue_code(
    state: &AppState,
    request: &AuthorizationRequest,
    browser: &BrowserSession,
    student: &Account,
    grant: &Grant,
    scopes: &ScopeSet,
    actor: Option<String>,
) -> Result<Response, PageError> {
    // A request is answered once; a second submit of the same consent form mints nothing.
    if !state.store.take_authorization_request(&request.id).await? {
        return Err(request_expired(request.english()));
    }
    let now = state.now();
    let code = random_token();
    state
        .store
        .insert_code(&AuthorizationCode {
            code_hash: hash_token(&code),
            client_id: request.client_id.clone(),
            redirect_uri: request.redirect_uri.clone(),
            code_challenge: request.code_challenge.clone(),
            grant_id: grant.id.clone(),
            student_id: student.id.clone(),
            actor_id: actor,
            scopes: scopes.to_string(),
            nonce: request.nonce.clone(),
            session_id: browser.id.clone(),
            auth_time: browser.auth_time.unwrap_or(ts(now)),
            issued_at: ts(now),
            expires_at: ts(now) + CODE_TTL_SECS,
            used_at: None,
        })
        .await?;
    let mut params = vec![("code", code.as_str())];
    if let Some(s) = request.state.as_deref() {
        params.push(("state", s));
    }
    params.push(("iss", state.config.issuer.as_str()));
    let location = with_query(&request.redirect_uri, &params)?;
    Ok(redirect_no_store(&location))
}

pub fn request_expired(english: bool) -> PageError {
    PageError::new(
        StatusCode::BAD_REQUEST,
        ("Deze aanvraag is verlopen", "This request has expired"),
        (
            "Deze inlog- of toestemmingsaanvraag is al afgehandeld of verlopen. Ga terug naar de app en begin opnieuw.",
            "This sign-in or consent request was already handled or has expired. Go back to the app and start again.",
        ),
    )
    .in_english(english)
}

/// The client's redirect URI with error parameters (RFC 6749 §4.1.2.1, RFC 9207).
pub struct ErrorRedirect<'a> {
    pub issuer: &'a str,
    pub redirect_uri: &'a str,
    pub state: Option<&'a str>,
}

impl ErrorRedirect<'_> {
    pub fn url(&self, error: &str, description: &str) -> String {
        let mut params = vec![("error", error), ("error_description", description)];
        if let Some(s) = self.state {
            params.push(("state", s));
        }
        params.push(("iss", self.issuer));
        with_query(self.redirect_uri, &params).unwrap_or_else(|_| self.redirect_uri.to_string())
    }

    pub fn to(&self, error: &str, description: &str) -> Response {
        redirect_no_store(&self.url(error, description))
    }
}

fn with_query(base: &str, params: &[(&str, &str)]) -> Result<String, PageError> {
    let mut url = url::Url::parse(base)
        .map_err(|e| PageError::internal(format!("registered redirect URI does not parse: {e}")))?;
    url.query_pairs_mut().extend_pairs(params);
    Ok(url.to_string())
}

fn redirect_no_store(location: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, location.to_string()),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
    )
        .into_response()
}

#[derive(Template)]
#[template(path = "refusal.html")]
struct RefusalPage<'a> {
    t: &'static Texts,
    title: &'a str,
    explanation: &'a str,
    partner_name: &'a str,
    return_url: &'a str,
}

/// Explain a refusal to the person, with a way back that tells the partner why.
pub fn refusal_page(
    back: &ErrorRedirect<'_>,
    refusal: Refusal,
    partner: &str,
    english: bool,
) -> Result<Response, PageError> {
    let return_url = back.url(refusal.error_code(), refusal.description());
    let page = RefusalPage {
        t: Texts::get(english),
        title: refusal.title(english),
        explanation: refusal.explanation(english),
        partner_name: partner,
        return_url: &return_url,
    };
    let html = page.render().map_err(PageError::internal)?;
    Ok((StatusCode::FORBIDDEN, no_store(), Html(html)).into_response())
}
