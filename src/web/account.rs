//! "Mijn apps": a student or parent sees which partners have consent, for which data, since
//! when and when they last received access, and withdraws it. Withdrawal takes effect on the
//! partner's very next call.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar};
use serde::Deserialize;

use super::error::PageError;
use super::i18n::Texts;
use super::{no_store, session};
use crate::domain::account::{age_on, Role};
use crate::domain::policy::parent_may_change_grant;
use crate::domain::scope::ScopeSet;
use crate::storage::accounts::Account;
use crate::storage::from_ts;
use crate::storage::grants::GrantView;
use crate::AppState;

struct ScopeLine {
    name: &'static str,
    explanation: &'static str,
}

struct GrantLine {
    id: String,
    client_name: String,
    scopes: Vec<ScopeLine>,
    given_line: &'static str,
    since: String,
    until: String,
    last_used: Option<String>,
    may_withdraw: bool,
}

struct PersonLine {
    name: String,
    is_child: bool,
    grants: Vec<GrantLine>,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage<'a> {
    t: &'static Texts,
    csrf: &'a str,
    account_name: String,
    notice: Option<&'static str>,
    people: Vec<PersonLine>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct AccountQuery {
    lang: Option<String>,
    withdrawn: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct AccountForm {
    csrf: Option<String>,
    grant: Option<String>,
}

const LANG_COOKIE: &str = "pw_lang";

fn english(jar: &CookieJar, query: Option<&str>) -> bool {
    match query {
        Some(lang) => lang == "en",
        None => jar.get(LANG_COOKIE).is_some_and(|c| c.value() == "en"),
    }
}

fn day(secs: i64) -> String {
    from_ts(secs).format("%d-%m-%Y").to_string()
}

/// `GET /account`: the page, or the login form when nobody is logged in.
pub async fn view_account_get(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(query): Query<AccountQuery>,
) -> Result<Response, PageError> {
    let english = english(&jar, query.lang.as_deref());
    let jar = match query.lang.as_deref() {
        Some(lang @ ("nl" | "en")) => jar.add(
            Cookie::build((LANG_COOKIE, lang.to_string()))
                .path("/")
                .http_only(true)
                .build(),
        ),
        _ => jar,
    };
    let browser = session::current(&state, &jar).await?;
    let Some((browser, account_id)) = browser.and_then(|b| b.account_id.clone().map(|a| (b, a)))
    else {
        let lang = if english { "en" } else { "nl" };
        return Ok((jar, Redirect::to(&format!("/login?lang={lang}"))).into_response());
    };
    let Some(account) = state.store.get_account(&account_id).await? else {
        return Ok((jar, Redirect::to("/login")).into_response());
    };
    let t = Texts::get(english);
    let now = state.now();
    let mut people = Vec::new();
    match account.role() {
        Some(Role::Student) => {
            let grants = state.store.grants_about(&account.id, now).await?;
            people.push(person(&account, false, grants, english, |_| true));
        }
        Some(Role::Parent) => {
            for child in state.store.children_of(&account.id).await? {
                let grants = state.store.grants_about(&child.id, now).await?;
                // Without a known birth date we cannot establish that the child is under 16.
                let age = child.birth_date().map(|b| age_on(b, now.date_naive()));
                // A parent withdraws what a parent gave while the child is under 16; what the
                // student decided personally stays the student's decision (UAVG art. 5).
                people.push(person(&child, true, grants, english, |g| {
                    age.is_some_and(|age| parent_may_change_grant(&g.given_by_role, age))
                }));
            }
        }
        _ => {}
    }
    let page = AccountPage {
        t,
        csrf: &browser.csrf_token,
        account_name: account.name().full(),
        notice: query.withdrawn.is_some().then_some(t.account_withdrawn),
        people,
    };
    let html = page.render().map_err(PageError::internal)?;
    Ok((jar, no_store(), Html(html)).into_response())
}

fn person(
    who: &Account,
    is_child: bool,
    grants: Vec<GrantView>,
    english: bool,
    may_withdraw: impl Fn(&GrantView) -> bool,
) -> PersonLine {
    let t = Texts::get(english);
    PersonLine {
        name: who.name().full(),
        is_child,
        grants: grants
            .iter()
            .map(|g| GrantLine {
                id: g.id.clone(),
                client_name: g.client_name.clone(),
                scopes: ScopeSet::parse_lossy(&g.scopes)
                    .iter()
                    .map(|s| ScopeLine {
                        name: s.as_str(),
                        explanation: s.explanation(english),
                    })
                    .collect(),
                given_line: if g.given_by_role == "parent" {
                    t.account_given_by_parent
                } else {
                    t.account_given_by_student
                },
                since: day(g.granted_at),
                until: day(g.expires_at),
                last_used: g.last_token_at.map(day),
                may_withdraw: may_withdraw(g),
            })
            .collect(),
    }
}

/// `POST /account/withdraw`
pub async fn view_account_withdraw(
    State(state): State<AppState>,
    jar: CookieJar,
    body: Bytes,
) -> Result<Response, PageError> {
    let english = english(&jar, None);
    let (form, browser): (AccountForm, _) = session::accept_form(&state, &jar, &body).await?;
    let (Some(account_id), Some(grant_id)) = (browser.account_id.as_deref(), form.grant.as_deref())
    else {
        return Err(PageError::session_expired().in_english(english));
    };
    let now = state.now();
    let Some(grant) = state.store.get_grant(grant_id).await? else {
        return Err(not_yours(english));
    };
    // Who may withdraw: the student the grant is about, or a linked parent for a child under
    // 16 when a parent gave the consent; never a parent over the student's own decision.
    let allowed = if grant.student_id == account_id {
        true
    } else if state
        .store
        .is_guardian(account_id, &grant.student_id)
        .await?
    {
        let child = state.store.get_account(&grant.student_id).await?;
        child.and_then(|c| c.birth_date()).is_some_and(|b| {
            parent_may_change_grant(&grant.given_by_role, age_on(b, now.date_naive()))
        })
    } else {
        false
    };
    if !allowed || grant.given_by_role == "self" {
        return Err(not_yours(english));
    }
    if state
        .store
        .withdraw_grant(&grant.id, None, now)
        .await?
        .is_some()
    {
        state.cache.changed(&state.store).await?;
        let target = format!("grant:{}", grant.id);
        state
            .store
            .audit(
                &format!("account:{account_id}"),
                "grant.withdraw",
                &target,
                Some("withdrawn by the user"),
                None,
                now,
            )
            .await?;
        tracing::info!(grant = %grant.id, "consent withdrawn by the user");
    }
    Ok(Redirect::to("/account?withdrawn=1").into_response())
}

fn not_yours(english: bool) -> PageError {
    PageError::new(
        axum::http::StatusCode::FORBIDDEN,
        ("Niet toegestaan", "Not allowed"),
        (
            "Deze toestemming kun je met dit account niet intrekken.",
            "You cannot withdraw this consent with this account.",
        ),
    )
    .in_english(english)
}

/// `POST /account/logout`
pub async fn view_account_logout(
    State(state): State<AppState>,
    jar: CookieJar,
    body: Bytes,
) -> Result<Response, PageError> {
    let form: AccountForm = serde_urlencoded::from_bytes(&body).map_err(|_| {
        PageError::bad_request((
            "Het formulier kon niet worden gelezen.",
            "The form could not be read.",
        ))
    })?;
    if let Some(browser) = session::current(&state, &jar).await? {
        session::check_csrf(&browser, form.csrf.as_deref())?;
        state.store.delete_session(&browser.id).await?;
    }
    let jar = jar.remove(Cookie::build(session::SESSION_COOKIE).path("/").build());
    Ok((jar, Redirect::to("/account")).into_response())
}
