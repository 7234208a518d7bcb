//! "Mijn apps": a student or parent sees, per child or for oneself, which partners have
//! consent, for which data, given by whom, since when and until when; who read what ("Wie
//! keek mee"); and withdraws a whole grant or single scopes. A student of 18 confirms or ends
//! what a parent gave earlier. Every change takes effect at the partner's next call.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::dutch_time;
use super::error::PageError;
use super::i18n::Texts;
use super::lang::Lang;
use super::{no_store, session};
use crate::domain::account::Role;
use crate::domain::policy::{Age, GIVEN_BY_PARENT};
use crate::domain::scope::{Scope, ScopeSet};
use crate::storage::access_log::{is_data, ReadView};
use crate::storage::accounts::Account;
use crate::storage::from_ts;
use crate::storage::grants::GrantView;
use crate::AppState;

/// Reads shown under each person on `/account`; the rest is on `/account/reads`.
const READS_ON_ACCOUNT_PAGE: i64 = 10;
/// Reads per page of `/account/reads`.
const READS_PER_PAGE: i64 = 25;

struct ScopeLine {
    name: &'static str,
    explanation: &'static str,
    /// Offered as a single "stop sharing" button (everything but `openid`).
    withdrawable: bool,
}

struct GrantLine {
    id: String,
    client_name: String,
    scopes: Vec<ScopeLine>,
    given_line: String,
    since: String,
    until: String,
    last_used: Option<String>,
    may_withdraw: bool,
    /// A parent's consent for a student who is now 18: it works again once confirmed.
    needs_confirmation: bool,
}

struct ReadLine {
    when: String,
    client_name: String,
    what: &'static str,
    reads: i64,
}

struct PersonLine {
    name: String,
    is_child: bool,
    grants: Vec<GrantLine>,
    reads: Vec<ReadLine>,
    /// `/account/reads?…` when there are more reads than this page shows.
    more_reads: Option<String>,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage<'a> {
    t: &'static Texts,
    csrf: &'a str,
    account_name: String,
    notice: Option<String>,
    people: Vec<PersonLine>,
}

#[derive(Template)]
#[template(path = "account_reads.html")]
struct ReadsPage {
    t: &'static Texts,
    person: ReadsOf,
    page: i64,
    newer: Option<String>,
    older: Option<String>,
}

/// Whose reads a page of "Wie keek mee" shows (the table template reads `person.reads`).
struct ReadsOf {
    name: String,
    reads: Vec<ReadLine>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct AccountQuery {
    lang: Option<String>,
    /// The grant just withdrawn (wholly or in part), or confirmed.
    withdrawn: Option<String>,
    confirmed: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ReadsQuery {
    student: Option<String>,
    page: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct AccountForm {
    csrf: Option<String>,
    grant: Option<String>,
    /// With a scope, only that scope is withdrawn.
    scope: Option<String>,
}

fn day(secs: i64) -> String {
    from_ts(secs).format("%d-%m-%Y").to_string()
}

/// What was read, in plain words.
fn read_words(scope: &str, english: bool) -> &'static str {
    match (Scope::parse(scope), english) {
        (Some(Scope::Rooster), false) => "het rooster",
        (Some(Scope::Rooster), true) => "the timetable",
        (Some(Scope::Huiswerk), false) => "het huiswerk",
        (Some(Scope::Huiswerk), true) => "the homework",
        (Some(Scope::Cijfers), false) => "de cijfers",
        (Some(Scope::Cijfers), true) => "the grades",
        (Some(Scope::Naam), false) => "de naam",
        (Some(Scope::Naam), true) => "the name",
        (Some(Scope::OpenId), false) => "de bevestiging dat er via school is ingelogd",
        (Some(Scope::OpenId), true) => "the confirmation of signing in through school",
        (_, false) => "andere gegevens",
        (_, true) => "other data",
    }
}

fn read_lines(reads: &[ReadView], english: bool) -> Vec<ReadLine> {
    reads
        .iter()
        .map(|r| ReadLine {
            when: dutch_time::format_ts(r.last_read_at),
            client_name: r.client_name.clone(),
            what: read_words(&r.scope, english),
            reads: r.reads,
        })
        .collect()
}

/// The person logged in on this browser, or `None` (then the login page is the answer).
async fn signed_in(
    state: &AppState,
    jar: &CookieJar,
) -> Result<Option<(String, Account)>, PageError> {
    let browser = session::current(state, jar).await?;
    let Some((browser, account_id)) = browser.and_then(|b| b.account_id.clone().map(|a| (b, a)))
    else {
        return Ok(None);
    };
    Ok(state
        .store
        .get_account(&account_id)
        .await?
        .map(|account| (browser.csrf_token, account)))
}

/// `GET /account`: the page, or the login form when nobody is logged in.
pub async fn view_account_get(
    State(state): State<AppState>,
    lang: Lang,
    jar: CookieJar,
    Query(query): Query<AccountQuery>,
) -> Result<Response, PageError> {
    let english = lang.english;
    let jar = lang.remember(jar);
    let Some((csrf, account)) = signed_in(&state, &jar).await? else {
        let lang = if english { "en" } else { "nl" };
        return Ok((jar, Redirect::to(&format!("/login?lang={lang}"))).into_response());
    };
    let t = Texts::get(english);
    let now = state.now();
    let mut people = Vec::new();
    match account.role() {
        Some(Role::Student) => {
            // 18 or older: a parent's consent stopped working and waits for confirmation.
            let adult = Age::of(account.birth_date(), now.date_naive()).is_adult();
            people.push(
                person(&state, &account, None, now, english, |g| View {
                    may_withdraw: true,
                    needs_confirmation: adult && g.given_by_role == GIVEN_BY_PARENT,
                })
                .await?,
            );
        }
        Some(Role::Parent) => {
            for child in state.store.children_of(&account.id).await? {
                let age = Age::of(child.birth_date(), now.date_naive());
                // A parent withdraws what a parent gave while the child is under 16; what the
                // student decided personally stays the student's decision (UAVG art. 5).
                let line = person(&state, &child, Some(&account), now, english, |g| View {
                    may_withdraw: age.parent_may_change(&g.given_by_role),
                    needs_confirmation: false,
                })
                .await?;
                people.push(line);
            }
        }
        _ => {}
    }
    // The notice names the partner only for a grant about someone on this page: a crafted
    // link cannot make the page claim a withdrawal about anyone else.
    let mut about = vec![account.id.clone()];
    if account.role() == Some(Role::Parent) {
        about.extend(
            state
                .store
                .children_of(&account.id)
                .await?
                .into_iter()
                .map(|c| c.id),
        );
    }
    let notice = match (
        partner_name(&state, query.withdrawn.as_deref(), &about).await?,
        partner_name(&state, query.confirmed.as_deref(), &about).await?,
    ) {
        (Some(name), _) => Some(format!(
            "{} {name} {}",
            t.account_withdrawn_before, t.account_withdrawn_after
        )),
        (None, Some(name)) => Some(format!(
            "{} {name} {}",
            t.account_confirmed_before, t.account_confirmed_after
        )),
        (None, None) => None,
    };
    let page = AccountPage {
        t,
        csrf: &csrf,
        account_name: account.name().full(),
        notice,
        people,
    };
    let html = page.render().map_err(PageError::internal)?;
    Ok((jar, no_store(), Html(html)).into_response())
}

/// The partner of grant `grant_id`, when the grant is about one of `about`.
async fn partner_name(
    state: &AppState,
    grant_id: Option<&str>,
    about: &[String],
) -> Result<Option<String>, PageError> {
    let Some(grant) = grant_id else {
        return Ok(None);
    };
    let grant = state.store.get_grant(grant).await?;
    let Some(grant) = grant.filter(|g| about.contains(&g.student_id)) else {
        return Ok(None);
    };
    Ok(state
        .store
        .get_client(&grant.client_id)
        .await?
        .map(|c| c.display_name))
}

/// What the viewer may do with one grant.
struct View {
    may_withdraw: bool,
    needs_confirmation: bool,
}

async fn person(
    state: &AppState,
    who: &Account,
    viewer_parent: Option<&Account>,
    now: DateTime<Utc>,
    english: bool,
    view: impl Fn(&GrantView) -> View,
) -> Result<PersonLine, PageError> {
    let t = Texts::get(english);
    let grants = state.store.grants_about(&who.id, now).await?;
    let mut lines = Vec::new();
    for g in &grants {
        let given_by = if g.given_by_role == GIVEN_BY_PARENT {
            let name = match viewer_parent {
                Some(parent) if parent.id == g.given_by => parent.name().full(),
                _ => state
                    .store
                    .get_account(&g.given_by)
                    .await?
                    .map(|p| p.name().full())
                    .unwrap_or_default(),
            };
            format!(
                "{} {name} {}",
                t.account_given_by_named, t.account_parent_suffix
            )
        } else if viewer_parent.is_none() {
            t.account_given_by_you.to_string()
        } else {
            t.account_given_by_student.to_string()
        };
        let View {
            may_withdraw,
            needs_confirmation,
        } = view(g);
        lines.push(GrantLine {
            id: g.id.clone(),
            client_name: g.client_name.clone(),
            scopes: ScopeSet::parse_lossy(&g.scopes)
                .iter()
                .map(|s| ScopeLine {
                    name: s.as_str(),
                    explanation: s.explanation(english),
                    withdrawable: s != Scope::OpenId,
                })
                .collect(),
            given_line: given_by,
            since: day(g.granted_at),
            until: day(g.expires_at),
            last_used: g.last_token_at.map(day),
            may_withdraw,
            needs_confirmation,
        });
    }
    let mut reads = state
        .store
        .reads_about(&who.id, READS_ON_ACCOUNT_PAGE + 1, 0)
        .await?;
    let more_reads = (reads.len() as i64 > READS_ON_ACCOUNT_PAGE)
        .then(|| format!("/account/reads?student={}&page=1", who.id));
    reads.truncate(READS_ON_ACCOUNT_PAGE as usize);
    Ok(PersonLine {
        name: who.name().full(),
        is_child: viewer_parent.is_some(),
        grants: lines,
        reads: read_lines(&reads, english),
        more_reads,
    })
}

/// `GET /account/reads?student=…&page=N`: all of "Wie keek mee" about oneself or a linked
/// child, most recent first, a page at a time (plain links, no script).
pub async fn view_account_reads_get(
    State(state): State<AppState>,
    lang: Lang,
    jar: CookieJar,
    Query(query): Query<ReadsQuery>,
) -> Result<Response, PageError> {
    let english = lang.english;
    let Some((_, account)) = signed_in(&state, &jar).await? else {
        let lang = if english { "en" } else { "nl" };
        return Ok(Redirect::to(&format!("/login?lang={lang}")).into_response());
    };
    let student_id = query.student.unwrap_or_else(|| account.id.clone());
    let allowed =
        student_id == account.id || state.store.is_guardian(&account.id, &student_id).await?;
    let person = match allowed {
        true => state.store.get_account(&student_id).await?,
        false => None,
    };
    let Some(person) = person else {
        return Err(PageError::new(
            axum::http::StatusCode::FORBIDDEN,
            ("Niet toegestaan", "Not allowed"),
            (
                "Met dit account kun je niet zien wie de gegevens van deze leerling heeft opgehaald.",
                "With this account you cannot see who fetched this student's data.",
            ),
        )
        .in_english(english));
    };
    let page = match query.page.as_deref().map(str::parse::<i64>) {
        None => 1,
        Some(Ok(n)) if (1..=100_000).contains(&n) => n,
        Some(_) => {
            return Err(PageError::bad_request((
                "Deze pagina bestaat niet.",
                "This page does not exist.",
            ))
            .in_english(english))
        }
    };
    let mut reads = state
        .store
        .reads_about(&person.id, READS_PER_PAGE + 1, (page - 1) * READS_PER_PAGE)
        .await?;
    let has_older = reads.len() as i64 > READS_PER_PAGE;
    reads.truncate(READS_PER_PAGE as usize);
    let link = |n: i64| format!("/account/reads?student={}&page={n}", person.id);
    let html = ReadsPage {
        t: Texts::get(english),
        person: ReadsOf {
            name: person.name().full(),
            reads: read_lines(&reads, english),
        },
        page,
        newer: (page > 1).then(|| link(page - 1)),
        older: has_older.then(|| link(page + 1)),
    }
    .render()
    .map_err(PageError::internal)?;
    Ok((no_store(), Html(html)).into_response())
}

/// `POST /account/withdraw` with `grant`, and optionally `scope` to withdraw only that one.
pub async fn view_account_withdraw(
    State(state): State<AppState>,
    lang: Lang,
    jar: CookieJar,
    body: Bytes,
) -> Result<Response, PageError> {
    let english = lang.english;
    let (form, browser): (AccountForm, _) = session::accept_form(&state, &jar, &body).await?;
    let (Some(account_id), Some(grant_id)) = (browser.account_id.as_deref(), form.grant.as_deref())
    else {
        return Err(PageError::session_expired().in_english(english));
    };
    let only = match form.scope.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        // `openid` is not data: it goes with the grant as a whole.
        Some(s) => match Scope::parse(s).filter(|s| *s != Scope::OpenId) {
            Some(scope) => Some(scope),
            None => {
                return Err(PageError::bad_request((
                    "Kies wat je niet meer wilt delen.",
                    "Choose what you no longer want to share.",
                ))
                .in_english(english))
            }
        },
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
        Age::of(child.and_then(|c| c.birth_date()), now.date_naive())
            .parent_may_change(&grant.given_by_role)
    } else {
        false
    };
    if !allowed || grant.given_by_role == "self" {
        return Err(not_yours(english));
    }
    // Removing the last data scope leaves nothing to share: the whole grant goes.
    let withdrawn = only.map(|scope| std::iter::once(scope).collect::<ScopeSet>());
    let withdrawn =
        withdrawn.filter(|w| grant.scopes().iter().any(|s| is_data(s) && !w.contains(s)));
    if state
        .store
        .withdraw_grant(&grant.id, withdrawn.as_ref(), now)
        .await?
        .is_some()
    {
        // As every change that can turn an allow into a deny: the live policy cache of every
        // instance forgets the grant, so the next introspection, refresh or userinfo sees it.
        state.cache.changed(&state.store).await;
        let target = format!("grant:{}", grant.id);
        let details = withdrawn
            .as_ref()
            .map(|w| serde_json::json!({ "scopes": w.to_string() }));
        state
            .store
            .audit(
                &format!("account:{account_id}"),
                "grant.withdraw",
                &target,
                Some("withdrawn by the user"),
                details.as_ref(),
                now,
            )
            .await?;
        tracing::info!(grant = %grant.id, partial = withdrawn.is_some(), "consent withdrawn by the user");
    }
    Ok(Redirect::to(&format!("/account?withdrawn={}", urlencode(&grant.id))).into_response())
}

/// `POST /account/confirm` with `grant`: a student of 18 or older makes a consent a parent
/// gave earlier their own (it works again from the partner's next call).
pub async fn view_account_confirm(
    State(state): State<AppState>,
    lang: Lang,
    jar: CookieJar,
    body: Bytes,
) -> Result<Response, PageError> {
    let english = lang.english;
    let (form, browser): (AccountForm, _) = session::accept_form(&state, &jar, &body).await?;
    let (Some(account_id), Some(grant_id)) = (browser.account_id.as_deref(), form.grant.as_deref())
    else {
        return Err(PageError::session_expired().in_english(english));
    };
    let now = state.now();
    let Some(grant) = state.store.get_grant(grant_id).await? else {
        return Err(not_yours(english));
    };
    let student = state.store.get_account(account_id).await?;
    let adult = Age::of(student.and_then(|s| s.birth_date()), now.date_naive()).is_adult();
    if grant.student_id != account_id || grant.given_by_role != GIVEN_BY_PARENT || !adult {
        return Err(not_yours(english));
    }
    if state
        .store
        .confirm_grant(&grant.id, account_id, now)
        .await?
    {
        state.cache.changed(&state.store).await;
        state
            .store
            .audit(
                &format!("account:{account_id}"),
                "grant.confirm",
                &format!("grant:{}", grant.id),
                Some("confirmed by the student at 18"),
                None,
                now,
            )
            .await?;
        tracing::info!(grant = %grant.id, "parent's consent confirmed by the student");
    }
    Ok(Redirect::to(&format!("/account?confirmed={}", urlencode(&grant.id))).into_response())
}

fn urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

fn not_yours(english: bool) -> PageError {
    PageError::new(
        axum::http::StatusCode::FORBIDDEN,
        ("Niet toegestaan", "Not allowed"),
        (
            "Deze toestemming kun je met dit account niet veranderen.",
            "You cannot change this consent with this account.",
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
