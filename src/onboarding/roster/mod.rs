//! Importing the school's people from its SIS as OneRoster 1.1/1.2 CSV (the files Apple School
//! Manager, ManageBac and Naviance read): students, parents and who belongs to whom.
//!
//! Reading and validating the files is pure ([`parse`]: bytes in, a [`parse::Roster`] or a
//! list of errors with file, line and column out); applying it diffs the roster against the
//! school's current people and writes only what differs, in one audited transaction
//! ([`apply`]). Identity is the SIS's `sourcedId` within the school, so a renamed username
//! keeps its grants; importing the same file twice changes nothing the second time.

pub mod apply;
pub mod cli;
pub mod parse;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;
use utoipa::ToSchema;

use super::{Actor, OnboardingError};
use crate::App;

/// Where the OneRoster files come from.
pub enum RosterSource {
    /// A folder holding `manifest.csv`, `orgs.csv`, `users.csv` and `demographics.csv`.
    Folder(PathBuf),
    /// A zip archive of those files (the admin API's request body).
    Zip(Vec<u8>),
    /// Files in memory, by name (the demo ships its CSVs with `include_bytes!`).
    Files(Vec<(String, Vec<u8>)>),
}

/// How far an import has come, for a progress bar.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub phase: Phase,
    pub done: u64,
    pub total: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Reading and checking `users.csv` (done/total in bytes).
    Reading,
    /// Writing the changes (done/total in rows).
    Writing,
}

pub type ProgressFn = Arc<dyn Fn(Progress) + Send + Sync>;

#[derive(Default, Clone)]
pub struct ImportOptions {
    /// Compute the full summary and every error, write nothing.
    pub dry_run: bool,
    pub progress: Option<ProgressFn>,
}

impl ImportOptions {
    pub(crate) fn report(&self, phase: Phase, done: u64, total: u64) {
        if let Some(progress) = &self.progress {
            progress(Progress { phase, done, total });
        }
    }
}

/// One problem in the files: where it is and what is wrong. `line` is the 1-based line of the
/// CSV file (the header is line 1); `column` the header name of the field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RosterError {
    #[schema(example = "users.csv")]
    pub file: String,
    #[schema(example = 12)]
    pub line: Option<u64>,
    #[schema(example = "birthDate")]
    pub column: Option<String>,
    #[schema(example = "not a date (YYYY-MM-DD): 2010-13-01")]
    pub message: String,
}

impl RosterError {
    pub fn new(
        file: &str,
        line: Option<u64>,
        column: Option<&str>,
        message: impl Into<String>,
    ) -> RosterError {
        RosterError {
            file: file.to_string(),
            line,
            column: column.map(str::to_string),
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct StudentCounts {
    pub added: u64,
    /// Existing students whose username, name, birth date or login switch changed, or who were
    /// enrolled again.
    pub updated: u64,
    pub unchanged: u64,
    /// Enrolled students who leave the school with this import.
    pub leaving: u64,
    /// Students who had left and are enrolled again (also counted in `updated`); their old
    /// grants are revoked.
    pub reenrolled: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct ParentCounts {
    pub added: u64,
    pub updated: u64,
    pub unchanged: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct GuardianshipCounts {
    pub added: u64,
    pub removed: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct SkippedCounts {
    /// Rows of other roles (teachers, administrators, ...), which Poortwachter does not hold.
    pub rows: u64,
    pub by_role: BTreeMap<String, u64>,
}

/// What an import did (or, in a dry run or with errors, would have done).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct ImportReport {
    #[schema(example = "56EF")]
    pub school: String,
    /// `bulk` (the files are the school's whole list) or `delta` (only changes), from
    /// `manifest.csv`'s `file.users`.
    #[schema(example = "bulk")]
    pub mode: String,
    pub dry_run: bool,
    /// True when the changes were committed (false for a dry run, for errors, and when
    /// nothing needed to change).
    pub applied: bool,
    pub students: StudentCounts,
    pub parents: ParentCounts,
    pub guardianships: GuardianshipCounts,
    pub skipped: SkippedCounts,
    /// Empty on success. Any error means nothing was changed.
    pub errors: Vec<RosterError>,
}

impl ImportReport {
    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// True when applying the roster changes something.
    pub fn changes_anything(&self) -> bool {
        let s = &self.students;
        let p = &self.parents;
        let g = &self.guardianships;
        s.added + s.updated + s.leaving + p.added + p.updated + g.added + g.removed > 0
    }

    fn failed(brin: &str, dry_run: bool, errors: Vec<RosterError>) -> ImportReport {
        ImportReport {
            school: brin.to_string(),
            dry_run,
            errors,
            ..ImportReport::default()
        }
    }
}

/// Import a OneRoster roster for school `brin`. Broken files are no `Err`: they answer a
/// report with `errors` filled and nothing changed. `Err` is for the caller's rights, an
/// unknown school and internal failures.
pub async fn import_roster(
    app: &App,
    actor: &Actor,
    brin: &str,
    source: RosterSource,
    options: ImportOptions,
) -> Result<ImportReport, OnboardingError> {
    actor.require_school(brin)?;
    if app.store.get_school(brin).await?.is_none() {
        return Err(OnboardingError::NotFound(format!("unknown school {brin}")));
    }
    // Unpacking and checking a few hundred thousand rows is CPU work: off the async runtime.
    let school = brin.to_string();
    let progress = options.clone();
    let parsed = tokio::task::spawn_blocking(move || {
        let files = parse::read_source(source)?;
        parse::parse_roster(&files, &school, &progress)
    })
    .await
    .map_err(|e| OnboardingError::Internal(anyhow::anyhow!("roster parser stopped: {e}")))?;
    let roster = match parsed {
        Ok(roster) => roster,
        Err(errors) => return Ok(ImportReport::failed(brin, options.dry_run, errors)),
    };
    apply::apply(app, actor, brin, &roster, &options).await
}
