//! The activation page: school, username, the code from the school's letter and a new
//! password. Like the login page: CSRF-protected, throttled per school and username, and one
//! generic error for every wrong combination, so it never reveals whether a username exists.
//! After success the person is logged in and continues the partner's request, if any.

use std::collections::HashSet;
use std::sync::LazyLock;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;

use super::error::PageError;
use super::i18n::Texts;
use super::login::{apply_language, enter, form_purpose, pending_request, PageQuery, Purpose};
use super::{no_store, session, throttle};
use crate::onboarding::activation::{activate, ActivationError};
use crate::storage::accounts::School;
use crate::storage::sessions::BrowserSession;
use crate::AppState;

/// NIST SP 800-63B §3.1.1.2 asks for a minimum length and a check against known passwords
/// rather than composition rules; ten characters is what the school's letter promises.
pub const MIN_PASSWORD_CHARS: usize = 10;

/// The shipped list of common passwords (see the head of the file for source and licence).
static COMMON_PASSWORDS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("common-passwords.txt")
        .lines()
        .filter(|line| !line.starts_with("# ") && !line.is_empty())
        .collect()
});

/// Is this password on the list? Compared lowercased, as the list is.
pub fn is_common_password(password: &str) -> bool {
    COMMON_PASSWORDS.contains(password.to_lowercase().as_str())
}

/// Which field is wrong and why, or `None` when the new password may be used.
fn password_problem(password: &str, confirm: &str) -> Option<Problem> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        Some(Problem::TooShort)
    } else if is_common_password(password) {
        Some(Problem::TooCommon)
    } else if password != confirm {
        Some(Problem::Mismatch)
    } else {
        None
    }
}

/// Why the form is shown again.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Problem {
    WrongCode,
    TooManyAttempts,
    Expired,
    AlreadyUsed,
    TooShort,
    TooCommon,
    Mismatch,
}

#[derive(Template)]
#[template(path = "activate.html")]
struct ActivatePage<'a> {
    t: &'static Texts,
    request_id: &'a str,
    csrf: &'a str,
    partner_name: &'a str,
    schools: &'a [School],
    selected_school: &'a str,
    username: &'a str,
    /// About the combination (code, school, username).
    problem: Option<&'static str>,
    password_problem: Option<&'static str>,
    confirm_problem: Option<&'static str>,
    other_lang_href: String,
    login_href: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ActivateForm {
    request: Option<String>,
    school: Option<String>,
    username: Option<String>,
    code: Option<String>,
    password: Option<String>,
    password_confirm: Option<String>,
}

/// `GET /activate?request=…` (from a partner's login page) or `GET /activate` (from the
/// letter, then on to "Mijn apps").
pub async fn view_activate_get(
    State(state): State<AppState>,
    lang: super::lang::Lang,
    jar: CookieJar,
    Query(query): Query<PageQuery>,
) -> Result<Response, PageError> {
    let Some(request_id) = query.request.as_deref().filter(|r| !r.is_empty()) else {
        let english = lang.english;
        // Remember the language for the POST, as "Mijn apps" does.
        let jar = lang.remember(jar);
        let (jar, browser) = session::current_or_start(&state, jar).await?;
        let page = render(
            &state,
            &Purpose::Account { english },
            &browser,
            "",
            "",
            None,
        )
        .await?;
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
        "",
        "",
        None,
    )
    .await
}

/// `POST /activate`
pub async fn view_activate_post(
    State(state): State<AppState>,
    jar: CookieJar,
    body: Bytes,
) -> Result<Response, PageError> {
    let (form, browser): (ActivateForm, _) = session::accept_form(&state, &jar, &body).await?;
    let purpose = form_purpose(&state, &jar, &browser, form.request.as_deref()).await?;
    let school = form.school.unwrap_or_default();
    let username = form.username.unwrap_or_default().trim().to_string();
    let code = form.code.unwrap_or_default();
    let password = form.password.unwrap_or_default();
    let confirm = form.password_confirm.unwrap_or_default();
    let show = |problem| {
        render(
            &state,
            &purpose,
            &browser,
            &school,
            &username,
            Some(problem),
        )
    };

    // Counted apart from logins (its own key prefix), by what was typed: a username that
    // does not exist is throttled exactly like one that does.
    let throttle_key = format!("activate:{school}");
    if throttle::is_blocked(&state, &throttle_key, &username).await {
        tracing::info!(outcome = "throttled", "activation attempt");
        return show(Problem::TooManyAttempts).await;
    }
    if let Some(problem) = password_problem(&password, &confirm) {
        return show(problem).await;
    }
    let account_id = match activate(&state, &school, &username, &code, password).await {
        Ok(account_id) => account_id,
        Err(ActivationError::WrongCode) => {
            // Neither the username nor the school goes into the log: they are personal data.
            tracing::info!(outcome = "failed", "activation attempt");
            throttle::record_failure(&state, &throttle_key, &username).await;
            return show(Problem::WrongCode).await;
        }
        Err(ActivationError::Expired) => return show(Problem::Expired).await,
        Err(ActivationError::AlreadyUsed) => return show(Problem::AlreadyUsed).await,
        Err(ActivationError::Failed(e)) => return Err(PageError::internal(e)),
    };
    tracing::info!(outcome = "success", account = %account_id, "account activated");
    throttle::record_success(&state, &throttle_key, &username).await;
    enter(&state, jar, &browser, &account_id, purpose).await
}

async fn render(
    state: &AppState,
    purpose: &Purpose,
    browser: &BrowserSession,
    school: &str,
    username: &str,
    problem: Option<Problem>,
) -> Result<Response, PageError> {
    let t = Texts::get(purpose.english());
    let schools = state.store.list_schools().await?;
    let (request_id, partner, school_hint, login_hint) = match purpose {
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
                request.school_hint.as_deref().unwrap_or_default(),
                request.login_hint.as_deref().unwrap_or_default(),
            )
        }
        Purpose::Account { .. } => ("", String::new(), "", ""),
    };
    let (other_lang_href, login_href) = if request_id.is_empty() {
        (
            format!("/activate?lang={}", t.other_lang),
            format!("/login?lang={}", t.lang),
        )
    } else {
        let id = urlencoding(request_id);
        (
            format!("/activate?request={id}&lang={}", t.other_lang),
            format!("/login?request={id}"),
        )
    };
    let text = |p: Problem| match p {
        Problem::WrongCode => t.activate_failed,
        Problem::TooManyAttempts => t.activate_blocked,
        Problem::Expired => t.activate_expired,
        Problem::AlreadyUsed => t.activate_used,
        Problem::TooShort => t.password_too_short,
        Problem::TooCommon => t.password_too_common,
        Problem::Mismatch => t.password_mismatch,
    };
    let page = ActivatePage {
        t,
        request_id,
        csrf: &browser.csrf_token,
        partner_name: &partner,
        schools: &schools,
        selected_school: if school.is_empty() {
            school_hint
        } else {
            school
        },
        username: if username.is_empty() {
            login_hint
        } else {
            username
        },
        problem: problem
            .filter(|p| {
                matches!(
                    p,
                    Problem::WrongCode
                        | Problem::TooManyAttempts
                        | Problem::Expired
                        | Problem::AlreadyUsed
                )
            })
            .map(text),
        password_problem: problem
            .filter(|p| matches!(p, Problem::TooShort | Problem::TooCommon))
            .map(text),
        confirm_problem: problem.filter(|p| *p == Problem::Mismatch).map(text),
        other_lang_href,
        login_href,
    };
    let html = page.render().map_err(PageError::internal)?;
    Ok((no_store(), Html(html)).into_response())
}

/// A request id in a query string (ours are base64url, but the page must not trust that).
fn urlencoding(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_long_and_lowercase_and_skips_its_comments() {
        assert!(COMMON_PASSWORDS.len() > 19_000);
        assert!(is_common_password("Password123"));
        assert!(is_common_password("qwertyuiop"));
        assert!(is_common_password("wachtwoord123"));
        assert!(
            is_common_password("#1stunna"),
            "an entry that starts with #"
        );
        assert!(!is_common_password("# Common passwords that /activate refuses (lowercase, one per line; lines starting with \"# \" are comments)."));
        assert!(!is_common_password("paard-batterij-nietje"));
    }

    #[test]
    fn password_rules() {
        assert!(password_problem("kort", "kort") == Some(Problem::TooShort));
        // Ten characters counted as characters, not bytes.
        assert!(password_problem("ééééééééé", "ééééééééé") == Some(Problem::TooShort));
        assert!(password_problem("1234567890", "1234567890") == Some(Problem::TooCommon));
        assert!(
            password_problem("paard-batterij-nietje", "paard-batterij-nietj")
                == Some(Problem::Mismatch)
        );
        assert!(password_problem("paard-batterij-nietje", "paard-batterij-nietje").is_none());
    }
}
