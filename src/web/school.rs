//! The school console (`/school`), for a school's supervisor and limited to that school: the
//! partners and the school's switch per partner, scope closures with their calendar, the
//! students, and the school's audit log. Every change goes through the same onboarding
//! operations as the admin API, audited with the supervisor as actor.

use std::collections::BTreeMap;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::console::{accept_console_button, accept_console_form, Supervisor};
use super::dutch_time;
use super::error::PageError;
use super::no_store;
use crate::domain::account::Role;
use crate::domain::policy::Age;
use crate::domain::scope::{Scope, ScopeSet};
use crate::onboarding::{Actor, OnboardingError};
use crate::AppState;

/// What every school console page shows around its content.
pub struct Frame {
    pub school_name: String,
    pub supervisor: String,
    pub csrf: String,
    pub active: &'static str,
}

impl Frame {
    pub async fn of(
        state: &AppState,
        who: &Supervisor,
        active: &'static str,
    ) -> Result<Frame, PageError> {
        let school_name = state
            .store
            .get_school(who.school())
            .await?
            .map(|s| s.name)
            .unwrap_or_else(|| who.school().to_string());
        Ok(Frame {
            school_name,
            supervisor: who.account.name().full(),
            csrf: who.console.session.csrf_token.clone(),
            active,
        })
    }
}

fn actor(who: &Supervisor) -> Actor {
    Actor::supervisor(&who.console.user.actor_id(), who.school())
}

fn render(template: impl Template) -> Result<Response, PageError> {
    let html = template.render().map_err(PageError::internal)?;
    Ok((no_store(), Html(html)).into_response())
}

/// An onboarding refusal as a readable Dutch page (the field it names, in Dutch words).
fn refused(e: OnboardingError) -> PageError {
    let (status, message) = match e {
        OnboardingError::Database(cause) => return PageError::from(cause),
        OnboardingError::Internal(cause) => return PageError::internal(cause),
        OnboardingError::Invalid { field, .. } => (
            StatusCode::BAD_REQUEST,
            match field.as_str() {
                "reason" => "Schrijf op waarom (hoogstens 500 tekens): dat komt in het logboek.",
                "scope" => "Kies welke gegevens je afsluit: naam, rooster, huiswerk of cijfers.",
                "audiences" => "Kies voor wie je afsluit: ouders, leerlingen en/of partners.",
                "ends_at" => "Het einde moet na het begin liggen.",
                _ => "Een van de velden klopt niet. Controleer het formulier.",
            },
        ),
        OnboardingError::NotFound(_) => (
            StatusCode::NOT_FOUND,
            "Dat bestaat (niet meer) bij deze school.",
        ),
        OnboardingError::Forbidden(_) => {
            (StatusCode::FORBIDDEN, "Dat mag je voor deze school niet.")
        }
        OnboardingError::Conflict(_) => (
            StatusCode::CONFLICT,
            "Dat kan nu niet: het is intussen veranderd.",
        ),
    };
    PageError::new(status, ("Niet gelukt", "Not done"), (message, message))
}

// ---------------------------------------------------------------------------------------
// Partners and the switch

struct PartnerLine {
    client_id: String,
    name: String,
    open: bool,
    reason: Option<String>,
    changed: Option<String>,
    students: usize,
    scopes: Vec<(&'static str, usize)>,
    accredited_until: Option<String>,
}

#[derive(Template)]
#[template(path = "school_partners.html")]
struct PartnersPage {
    frame: Frame,
    partners: Vec<PartnerLine>,
    notice: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct NoticeQuery {
    done: Option<String>,
}

/// `GET /school`: the accredited partners, each with its link state, how many students gave
/// consent and for which data.
pub async fn view_partners(
    State(state): State<AppState>,
    who: Supervisor,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    let now = state.now();
    let links: BTreeMap<String, (bool, Option<String>, i64)> = state
        .store
        .links_of(who.school())
        .await?
        .into_iter()
        .map(|(client, open, reason, at)| (client, (open, reason, at)))
        .collect();
    let grants = state.store.grants_at_school(who.school(), now).await?;
    let mut partners = Vec::new();
    for client in state.store.list_clients("partner").await? {
        // Never the non-accredited: the school decides among partners the platform vouches for.
        let accreditation = client.accreditation();
        if client.active != 1 || !accreditation.is_valid_at(now) {
            continue;
        }
        let theirs: Vec<_> = grants
            .iter()
            .filter(|g| g.client_id == client.client_id)
            .collect();
        let mut per_scope: BTreeMap<&'static str, usize> = BTreeMap::new();
        for g in &theirs {
            for scope in ScopeSet::parse_lossy(&g.scopes).iter() {
                if !matches!(scope, Scope::OpenId | Scope::OfflineAccess) {
                    *per_scope.entry(scope.as_str()).or_default() += 1;
                }
            }
        }
        let link = links.get(&client.client_id);
        partners.push(PartnerLine {
            client_id: client.client_id.clone(),
            name: client.display_name.clone(),
            open: link.is_some_and(|l| l.0),
            reason: link.and_then(|l| l.1.clone()),
            changed: link.map(|l| dutch_time::format_ts(l.2)),
            students: theirs.len(),
            scopes: per_scope.into_iter().collect(),
            accredited_until: accreditation.valid_until.map(dutch_time::last_day),
        });
    }
    let notice = match query.done.as_deref() {
        Some("open") => Some("De koppeling is open. De partner kan gegevens ophalen van leerlingen die toestemming gaven.".to_string()),
        Some("close") => Some("De koppeling is dicht. Dit geldt vanaf de volgende keer dat de partner gegevens ophaalt: die krijgt dan niets meer.".to_string()),
        _ => None,
    };
    render(PartnersPage {
        frame: Frame::of(&state, &who, "partners").await?,
        partners,
        notice,
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct LinkForm {
    open: Option<String>,
    reason: Option<String>,
}

/// `POST /school/links/{client_id}`: `open` (`true`/`false`), `reason`, `csrf`.
pub async fn view_set_link(
    State(state): State<AppState>,
    who: Supervisor,
    Path(client_id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let form: LinkForm = accept_console_form(&who.console, &body)?;
    let open = match form.open.as_deref() {
        Some("true") => true,
        Some("false") => false,
        _ => {
            return Err(PageError::bad_request((
                "Kies of de koppeling open of dicht moet.",
                "Choose whether the link is open or closed.",
            )))
        }
    };
    // Only an accredited partner can be switched (the page never offers the others).
    let now = state.now();
    let accredited = state
        .store
        .get_client(&client_id)
        .await?
        .is_some_and(|c| c.kind == "partner" && c.accreditation().is_valid_at(now));
    if open && !accredited {
        return Err(refused(OnboardingError::NotFound(client_id)));
    }
    crate::onboarding::school::set_link(
        &state,
        &actor(&who),
        who.school(),
        &client_id,
        open,
        form.reason.as_deref().unwrap_or_default(),
    )
    .await
    .map_err(refused)?;
    let done = if open { "open" } else { "close" };
    Ok(Redirect::to(&format!("/school?done={done}")).into_response())
}

// ---------------------------------------------------------------------------------------
// Closures

struct ClosureLine {
    id: String,
    scope: String,
    audiences: String,
    starts: String,
    ends: String,
    reason: String,
}

#[derive(Template)]
#[template(path = "school_closures.html")]
struct ClosuresPage {
    frame: Frame,
    active: Vec<ClosureLine>,
    upcoming: Vec<ClosureLine>,
    past: Vec<ClosureLine>,
    calendar: String,
    notice: Option<&'static str>,
    default_start: String,
    default_end: String,
}

fn audiences_nl(audiences: &str) -> String {
    audiences
        .split(' ')
        .filter(|a| !a.is_empty())
        .map(|a| match a {
            "parents" => "ouders",
            "students" => "leerlingen",
            "partners" => "partners",
            other => other,
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `GET /school/closures`
pub async fn view_closures(
    State(state): State<AppState>,
    who: Supervisor,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    let now = state.now();
    let closures = state.store.closures_of(who.school()).await?;
    let line = |c: &crate::storage::closures::Closure| ClosureLine {
        id: c.id.clone(),
        scope: c.scope.clone(),
        audiences: audiences_nl(&c.audiences),
        starts: dutch_time::format_ts(c.starts_at),
        ends: dutch_time::format_ts(c.ends_at),
        reason: c.reason.clone(),
    };
    let t = now.timestamp();
    let active = closures
        .iter()
        .filter(|c| c.starts_at <= t && t < c.ends_at)
        .map(line)
        .collect();
    let upcoming = closures
        .iter()
        .filter(|c| c.starts_at > t)
        .map(line)
        .collect();
    let mut past: Vec<_> = closures.iter().filter(|c| c.ends_at <= t).collect();
    past.sort_by_key(|c| std::cmp::Reverse(c.ends_at));
    let past = past.into_iter().take(50).map(line).collect();
    let calendar =
        super::calendar::closure_calendar(&closures, dutch_time::school_year_start(now), now);
    let notice = match query.done.as_deref() {
        Some("created") => Some("De afsluiting is vastgelegd. Ze geldt vanaf het begin bij de eerstvolgende keer dat gegevens worden opgehaald."),
        Some("ended") => Some("De afsluiting is beëindigd. De gegevens zijn weer beschikbaar vanaf de volgende keer dat ze worden opgehaald."),
        _ => None,
    };
    render(ClosuresPage {
        frame: Frame::of(&state, &who, "closures").await?,
        active,
        upcoming,
        past,
        calendar,
        notice,
        default_start: dutch_time::to_input(now),
        default_end: dutch_time::to_input(now + chrono::Duration::days(7)),
    })
}

/// `POST /school/closures`: `scope`, one or more `audiences`, `starts_at`, `ends_at`
/// (`datetime-local`, Dutch time), `reason`, `csrf`.
pub async fn view_create_closure(
    State(state): State<AppState>,
    who: Supervisor,
    body: Bytes,
) -> Result<Response, PageError> {
    accept_console_button(&who.console, &body)?;
    // `audiences` repeats (one checkbox each): serde_urlencoded cannot collect repeated keys.
    let mut scope = String::new();
    let mut audiences = Vec::new();
    let mut starts = String::new();
    let mut ends = String::new();
    let mut reason = String::new();
    for (key, value) in url::form_urlencoded::parse(&body) {
        match &*key {
            "scope" => scope = value.into_owned(),
            "audiences" => audiences.push(value.into_owned()),
            "starts_at" => starts = value.into_owned(),
            "ends_at" => ends = value.into_owned(),
            "reason" => reason = value.into_owned(),
            _ => {}
        }
    }
    let bad_moment = |what: &str| {
        PageError::bad_request((
            &format!("Vul bij {what} een datum en tijd in (Nederlandse tijd)."),
            "Fill in a date and time.",
        ))
    };
    let starts_at = dutch_time::parse_input(&starts).ok_or_else(|| bad_moment("begin"))?;
    let ends_at = dutch_time::parse_input(&ends).ok_or_else(|| bad_moment("einde"))?;
    crate::onboarding::school::create_closure(
        &state,
        &actor(&who),
        who.school(),
        crate::onboarding::school::ClosureRequest {
            scope: &scope,
            audiences: &audiences,
            starts_at,
            ends_at,
            reason: &reason,
        },
    )
    .await
    .map_err(refused)?;
    Ok(Redirect::to("/school/closures?done=created").into_response())
}

/// `POST /school/closures/{id}/end`: end a closure early (or cancel a planned one).
pub async fn view_end_closure(
    State(state): State<AppState>,
    who: Supervisor,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    accept_console_button(&who.console, &body)?;
    crate::onboarding::school::end_closure(&state, &actor(&who), who.school(), &id)
        .await
        .map_err(refused)?;
    Ok(Redirect::to("/school/closures?done=ended").into_response())
}

// ---------------------------------------------------------------------------------------
// Students

struct PersonLine {
    username: String,
    name: String,
    role: &'static str,
}

struct LockLine {
    username: String,
    until: String,
}

#[derive(Template)]
#[template(path = "school_students.html")]
struct StudentsPage {
    frame: Frame,
    query: String,
    people: Vec<PersonLine>,
    searched: bool,
    locks: Vec<LockLine>,
    notice: Option<&'static str>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SearchQuery {
    q: Option<String>,
    lifted: Option<String>,
}

fn role_nl(role: Option<Role>) -> &'static str {
    match role {
        Some(Role::Student) => "leerling",
        Some(Role::Parent) => "ouder",
        Some(Role::Supervisor) => "beheerder",
        None => "?",
    }
}

/// `GET /school/students?q=…`: search by name or number.
pub async fn view_students(
    State(state): State<AppState>,
    who: Supervisor,
    Query(query): Query<SearchQuery>,
) -> Result<Response, PageError> {
    let locks = state
        .store
        .login_locks(who.school(), state.now())
        .await?
        .into_iter()
        .map(|l| LockLine {
            username: l.username,
            until: dutch_time::format_ts(l.expires_at),
        })
        .collect();
    let notice = query
        .lifted
        .is_some()
        .then_some("De blokkade is opgeheven: de persoon kan meteen weer inloggen.");
    let q: String = query
        .q
        .unwrap_or_default()
        .trim()
        .chars()
        .take(100)
        .collect();
    let people = if q.is_empty() {
        Vec::new()
    } else {
        state
            .store
            .search_people(who.school(), &q, 100)
            .await?
            .into_iter()
            .map(|a| PersonLine {
                username: a.username.clone(),
                name: a.name().full(),
                role: role_nl(a.role()),
            })
            .collect()
    };
    render(StudentsPage {
        frame: Frame::of(&state, &who, "students").await?,
        searched: !q.is_empty(),
        query: q,
        people,
        locks,
        notice,
    })
}

struct GrantLine {
    partner: String,
    scopes: String,
    given_by: &'static str,
    since: String,
    until: String,
}

struct IssuedLine {
    code: String,
    expires: String,
}

#[derive(Template)]
#[template(path = "school_student.html")]
struct StudentPage {
    frame: Frame,
    username: String,
    name: String,
    role: &'static str,
    age: Option<u32>,
    enrolled: bool,
    guardians: Vec<PersonLine>,
    children: Vec<PersonLine>,
    grants: Vec<GrantLine>,
    issued: Option<IssuedLine>,
    notice: Option<&'static str>,
}

async fn person_at_school(
    state: &AppState,
    who: &Supervisor,
    username: &str,
) -> Result<crate::storage::accounts::Account, PageError> {
    match state
        .store
        .find_account_by_login(who.school(), username)
        .await?
    {
        Some(a) if matches!(a.role(), Some(Role::Student | Role::Parent)) => Ok(a),
        _ => Err(PageError::new(
            StatusCode::NOT_FOUND,
            ("Niet gevonden", "Not found"),
            (
                "Deze persoon staat niet (meer) bij deze school.",
                "This person is not at this school.",
            ),
        )),
    }
}

async fn student_page(
    state: &AppState,
    who: &Supervisor,
    username: &str,
    issued: Option<IssuedLine>,
    notice: Option<&'static str>,
) -> Result<Response, PageError> {
    let person = person_at_school(state, who, username).await?;
    let now = state.now();
    let line = |a: crate::storage::accounts::Account| PersonLine {
        username: a.username.clone(),
        name: a.name().full(),
        role: role_nl(a.role()),
    };
    let (guardians, children) = match person.role() {
        Some(Role::Student) => (
            state
                .store
                .guardians_of(&person.id)
                .await?
                .into_iter()
                .map(line)
                .collect(),
            Vec::new(),
        ),
        _ => (
            Vec::new(),
            state
                .store
                .children_of(&person.id)
                .await?
                .into_iter()
                .map(line)
                .collect(),
        ),
    };
    let grants = if person.role() == Some(Role::Student) {
        state
            .store
            .grants_about(&person.id, now)
            .await?
            .into_iter()
            .filter(|g| g.given_by_role != "self")
            .map(|g| GrantLine {
                partner: g.client_name.clone(),
                scopes: g.scopes.clone(),
                given_by: if g.given_by_role == "parent" {
                    "een ouder"
                } else {
                    "de leerling zelf"
                },
                since: dutch_time::day(g.granted_at),
                until: dutch_time::day(g.expires_at),
            })
            .collect()
    } else {
        Vec::new()
    };
    let enrolled = state
        .store
        .active_enrollment(&person.id, now)
        .await?
        .is_some_and(|school| school == who.school());
    render(StudentPage {
        frame: Frame::of(state, who, "students").await?,
        username: person.username.clone(),
        name: person.name().full(),
        role: role_nl(person.role()),
        age: Age::of(person.birth_date(), now.date_naive()).years(),
        enrolled,
        guardians,
        children,
        grants,
        issued,
        notice,
    })
}

/// `GET /school/students/{username}`
pub async fn view_student(
    State(state): State<AppState>,
    who: Supervisor,
    Path(username): Path<String>,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    let notice = match query.done.as_deref() {
        Some("left") => Some("Uitgeschreven. Partners krijgen vanaf hun volgende oproep geen gegevens meer over deze leerling via deze school."),
        _ => None,
    };
    student_page(&state, &who, &username, None, notice).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ReasonForm {
    reason: Option<String>,
}

/// `POST /school/students/{username}/leave`: the student left the school.
pub async fn view_student_leaves(
    State(state): State<AppState>,
    who: Supervisor,
    Path(username): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let form: ReasonForm = accept_console_form(&who.console, &body)?;
    let student = person_at_school(&state, &who, &username).await?;
    if student.role() != Some(Role::Student) {
        return Err(refused(OnboardingError::NotFound(username)));
    }
    let now = state.now();
    if state
        .store
        .end_enrollment(&student.id, who.school(), now)
        .await?
    {
        state.cache.changed(&state.store).await;
        state
            .store
            .audit(
                &who.console.user.actor_id(),
                "student.leave",
                &format!("school:{}/student:{username}", who.school()),
                form.reason.as_deref().filter(|r| !r.trim().is_empty()),
                None,
                now,
            )
            .await?;
    }
    Ok(Redirect::to(&format!(
        "/school/students/{}?done=left",
        url::form_urlencoded::byte_serialize(username.as_bytes()).collect::<String>()
    ))
    .into_response())
}

/// `POST /school/students/{username}/code`: a new activation code (also the password reset:
/// the old password stops working and the person's sessions end). Shown once, on this page.
pub async fn view_new_code(
    State(state): State<AppState>,
    who: Supervisor,
    Path(username): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    accept_console_button(&who.console, &body)?;
    person_at_school(&state, &who, &username).await?;
    let issued = crate::onboarding::activation::issue_codes(
        &state,
        &actor(&who),
        who.school(),
        crate::onboarding::activation::Recipients::Usernames(vec![username.clone()]),
    )
    .await
    .map_err(refused)?;
    let issued = issued.into_iter().next().map(|c| IssuedLine {
        code: c.code,
        expires: dutch_time::format(c.expires_at),
    });
    student_page(&state, &who, &username, issued, None).await
}

/// `POST /school/locks/{username}/lift`: a login blocked by too many wrong passwords from
/// unknown browsers works again at once.
pub async fn view_lift_lock(
    State(state): State<AppState>,
    who: Supervisor,
    Path(username): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    accept_console_button(&who.console, &body)?;
    let now = state.now();
    if state
        .store
        .delete_login_lock(who.school(), &username, now)
        .await?
    {
        super::throttle::lift(&state, who.school(), &username).await;
        state
            .store
            .audit(
                &who.console.user.actor_id(),
                "login.unlock",
                &format!("school:{}/account:{username}", who.school()),
                None,
                None,
                now,
            )
            .await?;
    }
    Ok(Redirect::to("/school/students?lifted=1").into_response())
}

// ---------------------------------------------------------------------------------------
// Audit log

struct AuditLine {
    at: String,
    actor: String,
    action: String,
    target: String,
    reason: String,
}

#[derive(Template)]
#[template(path = "school_audit.html")]
struct AuditPage {
    frame: Frame,
    filter: String,
    entries: Vec<AuditLine>,
    csv_link: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct AuditQuery {
    /// Matched against actor, action, target and reason (any case).
    q: Option<String>,
}

async fn audit_entries(
    state: &AppState,
    brin: &str,
    filter: &str,
    limit: i64,
) -> Result<Vec<crate::storage::admin::AuditEntry>, PageError> {
    let filter = filter.to_lowercase();
    let entries = state
        .store
        .audit_log(&format!("school:{brin}/"), limit)
        .await?;
    Ok(entries
        .into_iter()
        .filter(|e| audit_matches(e, &filter))
        .collect())
}

/// Does an audit row match a filter (lower case; empty matches all)? Actor, action, target
/// and reason are searched. The school and platform consoles filter alike.
pub fn audit_matches(entry: &crate::storage::admin::AuditEntry, filter: &str) -> bool {
    filter.is_empty()
        || [&entry.actor, &entry.action, &entry.target]
            .iter()
            .any(|f| f.to_lowercase().contains(filter))
        || entry
            .reason
            .as_deref()
            .is_some_and(|r| r.to_lowercase().contains(filter))
}

/// `GET /school/audit?q=…`: newest first.
pub async fn view_audit(
    State(state): State<AppState>,
    who: Supervisor,
    Query(query): Query<AuditQuery>,
) -> Result<Response, PageError> {
    let filter: String = query
        .q
        .unwrap_or_default()
        .trim()
        .chars()
        .take(100)
        .collect();
    let entries = audit_entries(&state, who.school(), &filter, 1000)
        .await?
        .into_iter()
        .take(200)
        .map(|e| AuditLine {
            at: dutch_time::format_ts(e.at),
            actor: e.actor,
            action: e.action,
            target: e.target,
            reason: e.reason.unwrap_or_default(),
        })
        .collect();
    let csv_link = if filter.is_empty() {
        "/school/audit.csv".to_string()
    } else {
        format!(
            "/school/audit.csv?q={}",
            url::form_urlencoded::byte_serialize(filter.as_bytes()).collect::<String>()
        )
    };
    render(AuditPage {
        frame: Frame::of(&state, &who, "audit").await?,
        filter,
        entries,
        csv_link,
    })
}

/// `GET /school/audit.csv?q=…`: the same entries as CSV (RFC 4180), for a spreadsheet.
pub async fn view_audit_csv(
    State(state): State<AppState>,
    who: Supervisor,
    Query(query): Query<AuditQuery>,
) -> Result<Response, PageError> {
    let filter: String = query
        .q
        .unwrap_or_default()
        .trim()
        .chars()
        .take(100)
        .collect();
    let entries = audit_entries(&state, who.school(), &filter, 10_000).await?;
    let mut out = csv::Writer::from_writer(Vec::new());
    let write = |out: &mut csv::Writer<Vec<u8>>, row: [&str; 6]| {
        out.write_record(row.map(spreadsheet_safe))
            .map_err(PageError::internal)
    };
    write(
        &mut out,
        ["at", "actor", "action", "target", "reason", "details"],
    )?;
    for e in &entries {
        let at = crate::storage::from_ts(e.at).to_rfc3339();
        write(
            &mut out,
            [
                &at,
                &e.actor,
                &e.action,
                &e.target,
                e.reason.as_deref().unwrap_or_default(),
                e.details.as_deref().unwrap_or_default(),
            ],
        )?;
    }
    let bytes = out.into_inner().map_err(PageError::internal)?;
    let filename = format!("auditlog-{}.csv", who.school());
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        bytes,
    )
        .into_response())
}

/// A cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR) gets a leading
/// apostrophe (OWASP "CSV injection"): reasons are typed by people.
pub fn spreadsheet_safe(cell: &str) -> String {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}"),
        _ => cell.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_do_not_reach_the_spreadsheet() {
        assert_eq!(spreadsheet_safe("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(spreadsheet_safe("-1"), "'-1");
        assert_eq!(spreadsheet_safe("toetsweek"), "toetsweek");
    }

    #[test]
    fn audiences_in_dutch() {
        assert_eq!(audiences_nl("parents partners"), "ouders, partners");
    }
}
