//! The school console's roster import and activation letters: upload the SIS's OneRoster
//! zip, read the dry run's summary and errors (file, line, column), confirm; then issue
//! activation codes for chosen people as a CSV download or as printable letters (one a page).

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Multipart, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use chrono::Duration;
use serde::Deserialize;

use super::console::{accept_console_form, Supervisor};
use super::dutch_time;
use super::error::PageError;
use super::no_store;
use super::school::{spreadsheet_safe, Frame};
use crate::domain::account::Role;
use crate::onboarding::activation::{issue_letters, Recipients};
use crate::onboarding::roster::{import_roster, ImportOptions, ImportReport, RosterSource};
use crate::onboarding::{Actor, OnboardingError};
use crate::AppState;

/// How long an upload waits for its confirmation.
const UPLOAD_TTL_MINUTES: i64 = 60;

fn actor(who: &Supervisor) -> Actor {
    Actor::supervisor(&who.console.user.actor_id(), who.school())
}

async fn frame(state: &AppState, who: &Supervisor) -> Result<Frame, PageError> {
    Frame::of(state, who, "import").await
}

struct ErrorLine {
    file: String,
    line: String,
    column: String,
    message: String,
}

#[derive(Template)]
#[template(path = "school_import.html")]
struct ImportPage {
    frame: Frame,
    report: Option<ImportReport>,
    errors: Vec<ErrorLine>,
    upload: Option<String>,
    message: Option<String>,
}

fn render(template: impl Template) -> Result<Response, PageError> {
    let html = template.render().map_err(PageError::internal)?;
    Ok((no_store(), Html(html)).into_response())
}

fn page_error(e: OnboardingError) -> PageError {
    match e {
        OnboardingError::Database(cause) => PageError::from(cause),
        OnboardingError::Internal(cause) => PageError::internal(cause),
        other => {
            let message = format!("Niet gelukt: {other}");
            PageError::bad_request((&message, &message))
        }
    }
}

/// `GET /school/import`
pub async fn view_import(
    State(state): State<AppState>,
    who: Supervisor,
) -> Result<Response, PageError> {
    render(ImportPage {
        frame: frame(&state, &who).await?,
        report: None,
        errors: Vec::new(),
        upload: None,
        message: None,
    })
}

fn report_page(
    frame: Frame,
    report: ImportReport,
    upload: Option<String>,
    message: Option<String>,
) -> Result<Response, PageError> {
    let errors = report
        .errors
        .iter()
        .map(|e| ErrorLine {
            file: e.file.clone(),
            line: e.line.map(|l| l.to_string()).unwrap_or_default(),
            column: e.column.clone().unwrap_or_default(),
            message: e.message.clone(),
        })
        .collect();
    render(ImportPage {
        frame,
        report: Some(report),
        errors,
        upload,
        message,
    })
}

/// `POST /school/import` (multipart: `csrf`, `roster`): the dry run of the uploaded zip. The
/// zip is kept (an hour) for the confirmation.
pub async fn view_upload(
    State(state): State<AppState>,
    who: Supervisor,
    mut multipart: Multipart,
) -> Result<Response, PageError> {
    let unreadable = || {
        PageError::bad_request((
            "Het bestand kon niet worden gelezen. Kies het zip-bestand met de OneRoster-export van je leerlingadministratie.",
            "The file could not be read.",
        ))
    };
    let mut csrf = None;
    let mut archive = None;
    while let Some(field) = multipart.next_field().await.map_err(|_| unreadable())? {
        match field.name() {
            Some("csrf") => csrf = Some(field.text().await.map_err(|_| unreadable())?),
            Some("roster") => archive = Some(field.bytes().await.map_err(|_| unreadable())?),
            _ => {}
        }
    }
    who.console.check_csrf(csrf.as_deref())?;
    let archive = archive.filter(|a| !a.is_empty()).ok_or_else(unreadable)?;
    let report = import_roster(
        &state,
        &actor(&who),
        who.school(),
        RosterSource::Zip(archive.to_vec()),
        ImportOptions {
            dry_run: true,
            progress: None,
        },
    )
    .await
    .map_err(page_error)?;
    let upload = if report.has_errors() {
        None
    } else {
        let now = state.now();
        Some(
            state
                .store
                .store_roster_upload(
                    who.school(),
                    &who.console.user.actor_id(),
                    &archive,
                    now,
                    now + Duration::minutes(UPLOAD_TTL_MINUTES),
                )
                .await?,
        )
    };
    report_page(frame(&state, &who).await?, report, upload, None)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ConfirmForm {
    upload: Option<String>,
}

/// `POST /school/import/confirm`: apply the upload whose dry run was shown.
pub async fn view_confirm(
    State(state): State<AppState>,
    who: Supervisor,
    body: Bytes,
) -> Result<Response, PageError> {
    let form: ConfirmForm = accept_console_form(&who.console, &body)?;
    let archive = match form.upload.as_deref() {
        Some(id) => {
            state
                .store
                .take_roster_upload(who.school(), id, state.now())
                .await?
        }
        None => None,
    };
    let Some(archive) = archive else {
        return Err(PageError::bad_request((
            "Deze upload is verlopen of al verwerkt. Upload het bestand opnieuw.",
            "This upload has expired or was processed already.",
        )));
    };
    let report = import_roster(
        &state,
        &actor(&who),
        who.school(),
        RosterSource::Zip(archive),
        ImportOptions::default(),
    )
    .await
    .map_err(page_error)?;
    let message = if report.applied {
        Some("De import is verwerkt. Maak hieronder activeringscodes voor de nieuwe leerlingen en ouders.".to_string())
    } else {
        None
    };
    report_page(frame(&state, &who).await?, report, None, message)
}

// ---------------------------------------------------------------------------------------
// Activation codes and letters

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CodesForm {
    /// One username per line (or separated by spaces or commas).
    usernames: Option<String>,
    /// `students` or `parents`: everyone with that role instead.
    everyone: Option<String>,
    /// `csv` or `letters`.
    format: Option<String>,
    /// The supervisor ticks that the old codes and passwords stop working.
    confirm: Option<String>,
}

struct LetterLine {
    name: String,
    username: String,
    code: String,
    expires: String,
}

#[derive(Template)]
#[template(path = "school_letters.html")]
struct LettersPage {
    school_name: String,
    portal: String,
    letters: Vec<LetterLine>,
}

/// `POST /school/codes`: new activation codes (old codes and passwords stop working) for the
/// people named, as CSV or as letters to print.
pub async fn view_codes(
    State(state): State<AppState>,
    who: Supervisor,
    body: Bytes,
) -> Result<Response, PageError> {
    let form: CodesForm = accept_console_form(&who.console, &body)?;
    if form.confirm.as_deref() != Some("yes") {
        return Err(PageError::bad_request((
            "Vink aan dat de oude codes en wachtwoorden van deze mensen niet meer werken.",
            "Confirm that the old codes and passwords stop working.",
        )));
    }
    let recipients = match form.everyone.as_deref().filter(|e| !e.is_empty()) {
        Some("students") => Recipients::Role(Role::Student),
        Some("parents") => Recipients::Role(Role::Parent),
        Some(_) => {
            return Err(PageError::bad_request((
                "Kies leerlingen of ouders.",
                "Choose.",
            )))
        }
        None => {
            let usernames: Vec<String> = form
                .usernames
                .unwrap_or_default()
                .split(|c: char| c.is_whitespace() || c == ',' || c == ';')
                .filter(|u| !u.is_empty())
                .take(5000)
                .map(str::to_string)
                .collect();
            Recipients::Usernames(usernames)
        }
    };
    let letters = issue_letters(&state, &actor(&who), who.school(), recipients)
        .await
        .map_err(page_error)?;
    let school_name = state
        .store
        .get_school(who.school())
        .await?
        .map(|s| s.name)
        .unwrap_or_default();
    let portal = format!("{}/activate", state.config.issuer.trim_end_matches('/'));
    match form.format.as_deref() {
        Some("csv") => {
            let mut out = csv::Writer::from_writer(Vec::new());
            out.write_record([
                "username",
                "given_name",
                "family_name",
                "activation_code",
                "expires_at",
                "activate_at",
            ])
            .map_err(PageError::internal)?;
            for l in &letters {
                out.write_record([
                    spreadsheet_safe(&l.issued.username),
                    spreadsheet_safe(&l.given_name),
                    spreadsheet_safe(&l.family_name),
                    l.issued.code.clone(),
                    l.issued.expires_at.to_rfc3339(),
                    portal.clone(),
                ])
                .map_err(PageError::internal)?;
            }
            let bytes = out.into_inner().map_err(PageError::internal)?;
            Ok((
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!(
                            "attachment; filename=\"activeringscodes-{}.csv\"",
                            who.school()
                        ),
                    ),
                    (header::CACHE_CONTROL, "no-store".to_string()),
                ],
                bytes,
            )
                .into_response())
        }
        _ => render(LettersPage {
            school_name,
            portal,
            letters: letters
                .into_iter()
                .map(|l| LetterLine {
                    name: format!("{} {}", l.given_name, l.family_name),
                    username: l.issued.username,
                    code: l.issued.code,
                    expires: dutch_time::format(l.issued.expires_at),
                })
                .collect(),
        }),
    }
}
