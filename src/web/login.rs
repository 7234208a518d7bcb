//! The login page: school, username, password. One generic error for every wrong combination,
//! and the same amount of work whether or not the account exists (no user enumeration).

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;

use super::error::PageError;
use super::i18n::Texts;
use super::{no_store_for, session, throttle};
use crate::crypto::password::try_verify_password;
use crate::serve::ClientIp;
use crate::storage::accounts::School;
use crate::storage::sessions::{AuthorizationRequest, BrowserSession};
use crate::AppState;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    t: &'static Texts,
    request_id: &'a str,
    csrf: &'a str,
    partner_name: &'a str,
    schools: &'a [School],
    selected_school: &'a str,
    username: &'a str,
    failed: bool,
    blocked: bool,
}

/// Why the login form is shown again.
#[derive(Clone, Copy, PartialEq, Eq)]
enum LoginFailure {
    WrongCombination,
    TooManyAttempts,
}

#[derive(Deserialize)]
pub struct PageQuery {
    pub request: Option<String>,
    pub lang: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct LoginForm {
    request: Option<String>,
    school: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

/// The pending request, which must belong to this browser session.
pub async fn pending_request(
    state: &AppState,
    browser: &BrowserSession,
    request_id: Option<&str>,
) -> Result<AuthorizationRequest, PageError> {
    let request = match request_id {
        Some(id) => {
            state
                .store
                .get_authorization_request(id, state.now())
                .await?
        }
        None => None,
    };
    match request {
        Some(r) if r.session_id == browser.id => Ok(r),
        Some(r) => Err(PageError::session_expired().in_english(r.english())),
        None => Err(PageError::request_expired(false)),
    }
}

/// `?lang=en|nl` switches the language of this request's pages.
pub async fn apply_language(
    state: &AppState,
    request: &mut AuthorizationRequest,
    lang: Option<&str>,
) -> Result<(), PageError> {
    if let Some(lang @ ("nl" | "en")) = lang {
        if request.locale != lang {
            state.store.set_request_locale(&request.id, lang).await?;
            request.locale = lang.to_string();
        }
    }
    Ok(())
}

/// Why the person is logging in: to answer a partner's authorization request, or to manage
/// their apps on the account page.
pub(super) enum Purpose {
    Authorize(Box<AuthorizationRequest>),
    Account { english: bool },
}

impl Purpose {
    pub(super) fn english(&self) -> bool {
        match self {
            Purpose::Authorize(request) => request.english(),
            Purpose::Account { english } => *english,
        }
    }
}

/// `GET /login?request=…` (or without a request: log in to "Mijn apps").
pub async fn view_login_get(
    State(state): State<AppState>,
    lang: super::lang::Lang,
    jar: CookieJar,
    Query(query): Query<PageQuery>,
) -> Result<Response, PageError> {
    let Some(request_id) = query.request.as_deref() else {
        let (jar, browser) = session::current_or_start(&state, jar).await?;
        if browser.account_id.is_some() {
            return Ok((jar, Redirect::to("/account")).into_response());
        }
        let jar = lang.remember(jar);
        let purpose = Purpose::Account {
            english: lang.english,
        };
        let page = render(&state, &purpose, &browser, None, None, None).await?;
        return Ok((jar, page).into_response());
    };
    let Some(browser) = session::current(&state, &jar).await? else {
        return Err(PageError::session_expired());
    };
    let mut request = pending_request(&state, &browser, Some(request_id)).await?;
    apply_language(&state, &mut request, query.lang.as_deref()).await?;
    render(
        &state,
        &Purpose::Authorize(Box::new(request)),
        &browser,
        None,
        None,
        None,
    )
    .await
}

async fn render(
    state: &AppState,
    purpose: &Purpose,
    browser: &BrowserSession,
    school: Option<&str>,
    username: Option<&str>,
    failure: Option<LoginFailure>,
) -> Result<Response, PageError> {
    let schools = state.store.list_schools().await?;
    let (request_id, partner, school_hint, login_hint, redirect_uri) = match purpose {
        Purpose::Authorize(request) => {
            let partner = state
                .store
                .get_client(&request.client_id)
                .await?
                .map(|c| c.display_name)
                .unwrap_or_default();
            (
                request.id.as_str(),
                partner,
                request.school_hint.as_deref(),
                request.login_hint.as_deref(),
                Some(request.redirect_uri.as_str()),
            )
        }
        Purpose::Account { .. } => ("", String::new(), None, None, None),
    };
    let page = LoginPage {
        t: Texts::get(purpose.english()),
        request_id,
        csrf: &browser.csrf_token,
        partner_name: &partner,
        schools: &schools,
        selected_school: school.or(school_hint).unwrap_or_default(),
        username: username.or(login_hint).unwrap_or_default(),
        failed: failure == Some(LoginFailure::WrongCombination),
        blocked: failure == Some(LoginFailure::TooManyAttempts),
    };
    let html = page.render().map_err(PageError::internal)?;
    Ok((no_store_for(redirect_uri), Html(html)).into_response())
}

/// `POST /login`
pub async fn view_login_post(
    State(state): State<AppState>,
    ip: ClientIp,
    jar: CookieJar,
    body: Bytes,
) -> Result<Response, PageError> {
    let (form, browser): (LoginForm, _) = session::accept_form(&state, &jar, &body).await?;
    let purpose = form_purpose(&state, &jar, &browser, form.request.as_deref()).await?;
    let school = form.school.unwrap_or_default();
    let username = form.username.unwrap_or_default().trim().to_string();
    let password = form.password.unwrap_or_default();

    // Counted before anything is verified: past the limit no argon2 runs at all.
    let Some(attempt) = throttle::admit(&state, &jar, ip, &school, &username).await else {
        tracing::info!(outcome = "throttled", "login attempt");
        let failure = Some(LoginFailure::TooManyAttempts);
        return render(
            &state,
            &purpose,
            &browser,
            Some(&school),
            Some(&username),
            failure,
        )
        .await;
    };
    let account = if school.is_empty() || username.is_empty() {
        None
    } else {
        state
            .store
            .find_account_by_login(&school, &username)
            .await?
    };
    // No password yet (not activated) or login disabled by the SIS: the dummy hash's work
    // and the same answer as a wrong password, so nobody learns which accounts are which.
    let usable_hash = account
        .as_ref()
        .filter(|a| a.may_log_in())
        .map(|a| a.password_hash.clone());
    state
        .argon2_verifications
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let Ok(verified) = try_verify_password(password, usable_hash).await else {
        // The queue was full and nothing was checked: the attempt does not count.
        throttle::unchecked(&state, attempt).await;
        return Err(PageError::busy().in_english(purpose.english()));
    };
    let account = match account {
        Some(account) if verified => account,
        known => {
            // Neither the username nor the school goes into the log: they are personal data.
            tracing::info!(outcome = "failed", "login attempt");
            let lockable = known.as_ref().map(|_| (school.as_str(), username.as_str()));
            throttle::failed(&state, &attempt, lockable).await;
            let failure = Some(LoginFailure::WrongCombination);
            return render(
                &state,
                &purpose,
                &browser,
                Some(&school),
                Some(&username),
                failure,
            )
            .await;
        }
    };
    tracing::info!(outcome = "success", account = %account.id, "login");
    let jar = throttle::succeeded(&state, attempt, jar).await;

    enter(&state, jar, &browser, &account.id, purpose).await
}

/// The purpose a submitted form carries: its pending request (which must belong to this
/// browser), or "Mijn apps" in the language of the `pw_lang` cookie.
pub(super) async fn form_purpose(
    state: &AppState,
    jar: &CookieJar,
    browser: &BrowserSession,
    request_id: Option<&str>,
) -> Result<Purpose, PageError> {
    Ok(match request_id.filter(|r| !r.is_empty()) {
        Some(id) => Purpose::Authorize(Box::new(pending_request(state, browser, Some(id)).await?)),
        None => Purpose::Account {
            english: jar
                .get(super::lang::LANG_COOKIE)
                .is_some_and(|c| c.value() == "en"),
        },
    })
}

/// The person is authenticated (by password, or by an activation code): a new session
/// (session fixation), the old anonymous one dropped, and on to consent for the partner's
/// request or to "Mijn apps".
pub(super) async fn enter(
    state: &AppState,
    jar: CookieJar,
    browser: &BrowserSession,
    account_id: &str,
    purpose: Purpose,
) -> Result<Response, PageError> {
    let (jar, fresh) = session::start(state, jar, Some(account_id)).await?;
    state.store.delete_session(&browser.id).await?;
    let next = match purpose {
        Purpose::Authorize(request) => {
            state
                .store
                .attach_request_to_session(&request.id, &fresh.id)
                .await?;
            format!("/consent?request={}", request.id)
        }
        Purpose::Account { .. } => "/account".to_string(),
    };
    Ok((jar, Redirect::to(&next)).into_response())
}
