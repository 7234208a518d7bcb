//! The platform console (`/platform`), for the platform operator: partners (register, show
//! the secret once, rotate it), their accreditation (validity and suspension, with a reason),
//! resource servers and management clients, how many schools opened each partner's link,
//! and the platform's audit log. Every change goes through the same onboarding operations as
//! the admin API and the CLI, audited with the operator as actor.

use std::collections::BTreeMap;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::{NaiveDate, TimeZone};
use chrono_tz::Europe::Amsterdam;
use serde::Deserialize;

use super::console::{accept_console_button, accept_console_form, PlatformOperator};
use super::dutch_time;
use super::error::PageError;
use super::no_store;
use crate::onboarding::registrations::{self, AccreditationChange, Issue, NewPartner};
use crate::onboarding::{Actor, OnboardingError};
use crate::AppState;

pub struct Frame {
    pub operator: String,
    pub csrf: String,
    pub active: &'static str,
}

fn frame(who: &PlatformOperator, active: &'static str) -> Frame {
    Frame {
        operator: who.operator.username.clone(),
        csrf: who.console.session.csrf_token.clone(),
        active,
    }
}

fn actor(who: &PlatformOperator) -> Actor {
    Actor::operator(&who.console.user.actor_id())
}

fn render(template: impl Template) -> Result<Response, PageError> {
    let html = template.render().map_err(PageError::internal)?;
    Ok((no_store(), Html(html)).into_response())
}

/// The operator is technical: the refusal names the field and the rule, as the API does.
fn refused(e: OnboardingError) -> PageError {
    let status = match &e {
        OnboardingError::NotFound(_) => StatusCode::NOT_FOUND,
        OnboardingError::Forbidden(_) => StatusCode::FORBIDDEN,
        OnboardingError::Conflict(_) => StatusCode::CONFLICT,
        OnboardingError::Database(cause) if crate::storage::is_unavailable(cause) => {
            return PageError::unavailable()
        }
        OnboardingError::Database(cause) => return PageError::internal(cause),
        OnboardingError::Internal(cause) => return PageError::internal(cause),
        OnboardingError::Invalid { .. } => StatusCode::BAD_REQUEST,
    };
    let message = format!("Niet gelukt: {e}");
    PageError::new(status, ("Niet gelukt", "Not done"), (&message, &message))
}

struct PartnerLine {
    client_id: String,
    name: String,
    accreditation: &'static str,
    accredited: bool,
    valid_until: Option<String>,
    valid_until_input: String,
    active: bool,
    schools_open: i64,
    scopes: String,
    redirect_uris: Vec<String>,
}

struct Shown {
    what: &'static str,
    client_id: String,
    secret: String,
}

#[derive(Template)]
#[template(path = "platform_partners.html")]
struct PartnersPage {
    frame: Frame,
    partners: Vec<PartnerLine>,
    schools: usize,
    notice: Option<&'static str>,
    shown: Option<Shown>,
}

fn status_nl(status: &str) -> &'static str {
    match status {
        "accredited" => "geaccrediteerd",
        "suspended" => "geschorst",
        "pending" => "in behandeling",
        _ => "onbekend",
    }
}

async fn partners_page(
    state: &AppState,
    who: &PlatformOperator,
    notice: Option<&'static str>,
    shown: Option<Shown>,
) -> Result<Response, PageError> {
    let now = state.now();
    let open: BTreeMap<String, i64> = state
        .store
        .open_links_per_partner()
        .await?
        .into_iter()
        .collect();
    let partners = state
        .store
        .list_clients("partner")
        .await?
        .into_iter()
        .map(|c| {
            let accreditation = c.accreditation();
            PartnerLine {
                client_id: c.client_id.clone(),
                name: c.display_name.clone(),
                accreditation: status_nl(accreditation.status.as_str()),
                accredited: accreditation.is_valid_at(now),
                valid_until: accreditation.valid_until.map(dutch_time::last_day),
                valid_until_input: accreditation
                    .valid_until
                    .map(dutch_time::last_day_input)
                    .unwrap_or_default(),
                active: c.is_active(),
                schools_open: open.get(&c.client_id).copied().unwrap_or(0),
                scopes: c.allowed_scopes.clone(),
                redirect_uris: c.redirect_uri_list(),
            }
        })
        .collect();
    render(PartnersPage {
        frame: frame(who, "partners"),
        partners,
        schools: state.store.list_schools().await?.len(),
        notice,
        shown,
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct NoticeQuery {
    done: Option<String>,
}

/// `GET /platform`
pub async fn view_partners(
    State(state): State<AppState>,
    who: PlatformOperator,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    let notice = match query.done.as_deref() {
        Some("suspended") => Some("Geschorst. De partner krijgt vanaf de volgende oproep geen tokens of gegevens meer en kan geen nieuwe login starten."),
        Some("accredited") => Some("De accreditatie is vastgelegd."),
        _ => None,
    };
    partners_page(&state, &who, notice, None).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SuspendForm {
    reason: Option<String>,
}

/// `POST /platform/partners/{client_id}/suspend`: `reason`, `csrf`.
pub async fn view_suspend(
    State(state): State<AppState>,
    who: PlatformOperator,
    Path(client_id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let form: SuspendForm = accept_console_form(&who.console, &body)?;
    let reason = form.reason.unwrap_or_default();
    if reason.trim().is_empty() {
        return Err(refused(OnboardingError::invalid(
            "reason",
            "is required: the audit log records why",
        )));
    }
    registrations::set_accreditation(
        &state,
        &actor(&who),
        &client_id,
        AccreditationChange {
            status: "suspended".into(),
            valid_until: None,
            reason: Some(reason),
        },
    )
    .await
    .map_err(refused)?;
    Ok(Redirect::to("/platform?done=suspended").into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct AccreditForm {
    /// `jjjj-mm-dd`: accredited up to and including that day (Dutch time).
    valid_until: Option<String>,
    reason: Option<String>,
}

/// `POST /platform/partners/{client_id}/accredit`: `valid_until` (date), `reason`, `csrf`.
pub async fn view_accredit(
    State(state): State<AppState>,
    who: PlatformOperator,
    Path(client_id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let form: AccreditForm = accept_console_form(&who.console, &body)?;
    let valid_until = match form.valid_until.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(day) => {
            let date = NaiveDate::parse_from_str(day, "%Y-%m-%d").map_err(|_| {
                refused(OnboardingError::invalid(
                    "valid_until",
                    "must be a date (jjjj-mm-dd)",
                ))
            })?;
            // Through the end of that day in Dutch time.
            let end = date
                .succ_opt()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .and_then(|d| Amsterdam.from_local_datetime(&d).earliest())
                .map(|d| d.with_timezone(&chrono::Utc));
            Some(end.ok_or_else(|| {
                refused(OnboardingError::invalid(
                    "valid_until",
                    "is not a usable date",
                ))
            })?)
        }
    };
    registrations::set_accreditation(
        &state,
        &actor(&who),
        &client_id,
        AccreditationChange {
            status: "accredited".into(),
            valid_until,
            reason: form.reason.filter(|r| !r.trim().is_empty()),
        },
    )
    .await
    .map_err(refused)?;
    Ok(Redirect::to("/platform?done=accredited").into_response())
}

/// `POST /platform/partners/{client_id}/rotate`: a new secret, shown once; the old one keeps
/// working for a grace period so the partner can switch without downtime.
pub async fn view_rotate(
    State(state): State<AppState>,
    who: PlatformOperator,
    Path(client_id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    accept_console_button(&who.console, &body)?;
    let rotated = registrations::rotate_secret(&state, &actor(&who), &client_id)
        .await
        .map_err(refused)?;
    let notice = Some("Nieuw geheim gemaakt. Het oude blijft nog even geldig, zodat de partner zonder onderbreking kan overstappen.");
    partners_page(
        &state,
        &who,
        notice,
        Some(Shown {
            what: "Nieuw client secret",
            client_id: rotated.client_id,
            secret: rotated.client_secret,
        }),
    )
    .await
}

/// `POST /platform/partners`: register a partner (`name`, `redirect_uris` one per line,
/// `scopes` checkboxes, `token_endpoint_auth_method`, `contacts` one per line). The secret is
/// shown once; the partner starts without accreditation.
pub async fn view_register_partner(
    State(state): State<AppState>,
    who: PlatformOperator,
    body: Bytes,
) -> Result<Response, PageError> {
    accept_console_button(&who.console, &body)?;
    let mut name = String::new();
    let mut redirect_uris = Vec::new();
    let mut scopes = Vec::new();
    let mut method = String::new();
    let mut contacts = Vec::new();
    let lines = |v: &str| -> Vec<String> {
        v.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    };
    for (key, value) in url::form_urlencoded::parse(&body) {
        match &*key {
            "name" => name = value.into_owned(),
            "redirect_uris" => redirect_uris = lines(&value),
            "scopes" => scopes.push(value.into_owned()),
            "token_endpoint_auth_method" => method = value.into_owned(),
            "contacts" => contacts = lines(&value),
            _ => {}
        }
    }
    let credentials = registrations::register_partner(
        &state,
        &actor(&who),
        NewPartner {
            name,
            redirect_uris,
            scopes,
            token_endpoint_auth_method: method,
            contacts,
            jwks: None,
            jwks_uri: None,
        },
        Issue::Generate,
    )
    .await
    .map_err(refused)?;
    partners_page(
        &state,
        &who,
        Some("Partner geregistreerd. Hij krijgt pas tokens als je hem accrediteert en een school de koppeling opent."),
        Some(Shown {
            what: "Client secret van de nieuwe partner",
            client_id: credentials.client_id,
            secret: credentials.client_secret,
        }),
    )
    .await
}

#[derive(Template)]
#[template(path = "platform_clients.html")]
struct ClientsPage {
    frame: Frame,
    resource_servers: Vec<(String, String)>,
    management_clients: Vec<(String, String, String)>,
    shown: Option<Shown>,
}

async fn clients_page(
    state: &AppState,
    who: &PlatformOperator,
    shown: Option<Shown>,
) -> Result<Response, PageError> {
    let resource_servers = state
        .store
        .list_clients("resource_server")
        .await?
        .into_iter()
        .map(|c| (c.client_id, c.display_name))
        .collect();
    let management_clients = state
        .store
        .list_clients("management")
        .await?
        .into_iter()
        .map(|c| (c.client_id, c.display_name, c.allowed_scopes))
        .collect();
    render(ClientsPage {
        frame: frame(who, "clients"),
        resource_servers,
        management_clients,
        shown,
    })
}

/// `GET /platform/clients`: resource servers and management clients.
pub async fn view_clients(
    State(state): State<AppState>,
    who: PlatformOperator,
) -> Result<Response, PageError> {
    clients_page(&state, &who, None).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct NamedForm {
    name: Option<String>,
    scope: Option<String>,
}

/// `POST /platform/resource-servers`: `name`; the secret is shown once.
pub async fn view_register_resource_server(
    State(state): State<AppState>,
    who: PlatformOperator,
    body: Bytes,
) -> Result<Response, PageError> {
    let form: NamedForm = accept_console_form(&who.console, &body)?;
    let credentials = registrations::register_resource_server(
        &state,
        &actor(&who),
        registrations::NewResourceServer {
            name: form.name.unwrap_or_default(),
        },
        Issue::Generate,
    )
    .await
    .map_err(refused)?;
    clients_page(
        &state,
        &who,
        Some(Shown {
            what: "Client secret van de resource server",
            client_id: credentials.client_id,
            secret: credentials.client_secret,
        }),
    )
    .await
}

/// `POST /platform/management-clients`: `name`, `scope` (`beheer:<BRIN>` or `platform`).
pub async fn view_register_management_client(
    State(state): State<AppState>,
    who: PlatformOperator,
    body: Bytes,
) -> Result<Response, PageError> {
    let form: NamedForm = accept_console_form(&who.console, &body)?;
    let credentials = registrations::register_management_client(
        &state,
        &actor(&who),
        registrations::NewManagementClient {
            name: form.name.unwrap_or_default(),
            scope: form.scope.unwrap_or_default(),
        },
        Issue::Generate,
    )
    .await
    .map_err(refused)?;
    clients_page(
        &state,
        &who,
        Some(Shown {
            what: "Client secret van de beheerclient",
            client_id: credentials.client_id,
            secret: credentials.client_secret,
        }),
    )
    .await
}

struct AuditLine {
    at: String,
    actor: String,
    action: String,
    target: String,
    reason: String,
}

#[derive(Template)]
#[template(path = "platform_audit.html")]
struct AuditPage {
    frame: Frame,
    filter: String,
    entries: Vec<AuditLine>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct AuditQuery {
    q: Option<String>,
}

/// `GET /platform/audit?q=…`: every change on the platform, newest first.
pub async fn view_audit(
    State(state): State<AppState>,
    who: PlatformOperator,
    Query(query): Query<AuditQuery>,
) -> Result<Response, PageError> {
    let filter: String = query
        .q
        .unwrap_or_default()
        .trim()
        .chars()
        .take(100)
        .collect();
    let needle = filter.to_lowercase();
    let entries = state
        .store
        .audit_log("", 2000)
        .await?
        .into_iter()
        .filter(|e| super::school::audit_matches(e, &needle))
        .take(300)
        .map(|e| AuditLine {
            at: dutch_time::format_ts(e.at),
            actor: e.actor,
            action: e.action,
            target: e.target,
            reason: e.reason.unwrap_or_default(),
        })
        .collect();
    render(AuditPage {
        frame: frame(&who, "audit"),
        filter,
        entries,
    })
}
