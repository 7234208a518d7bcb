//! `poortwachter roster import --school <BRIN> PATH [--dry-run] [--json]`: the console side of
//! the import, with a progress bar on large files and a summary people can read.

use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};

use super::{import_roster, ImportOptions, ImportReport, Phase, RosterSource};
use crate::onboarding::{Actor, OnboardingError};
use crate::App;

/// Files below this size import too quickly for a progress bar to help.
const PROGRESS_FROM_BYTES: u64 = 1024 * 1024;

/// Run the import from the console: exit code 0 when it worked (or the dry run found nothing
/// wrong), 1 when the files have errors (nothing was changed). Other failures (unknown
/// school, database) are `Err`.
pub async fn run_cli(
    app: &App,
    brin: &str,
    path: &Path,
    dry_run: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let (source, size) = if path.is_dir() {
        let size = ["users.csv"]
            .iter()
            .filter_map(|f| std::fs::metadata(path.join(f)).ok())
            .map(|m| m.len())
            .sum();
        (RosterSource::Folder(path.to_path_buf()), size)
    } else {
        let file = std::fs::File::open(path)
            .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
        let mut bytes = Vec::new();
        // The zip itself is bounded too; what it unpacks to is bounded by the parser.
        file.take(super::parse::MAX_TOTAL_BYTES + 1)
            .read_to_end(&mut bytes)?;
        anyhow::ensure!(
            bytes.len() as u64 <= super::parse::MAX_TOTAL_BYTES,
            "{} is larger than {} MiB",
            path.display(),
            super::parse::MAX_TOTAL_BYTES / 1024 / 1024
        );
        let size = bytes.len() as u64 * 4;
        (RosterSource::Zip(bytes), size)
    };

    let bar = (!json && size >= PROGRESS_FROM_BYTES).then(|| {
        let bar = ProgressBar::new(size);
        bar.set_style(
            ProgressStyle::with_template("{msg:10} [{bar:40}] {percent:>3}% {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar
    });
    let progress = bar.clone().map(|bar| {
        Arc::new(move |p: super::Progress| {
            match p.phase {
                Phase::Reading => bar.set_message("lezen"),
                Phase::Writing => bar.set_message("schrijven"),
            }
            bar.set_length(p.total.max(1));
            bar.set_position(p.done.min(p.total));
        }) as super::ProgressFn
    });
    let report = import_roster(
        app,
        &Actor::console(),
        brin,
        source,
        ImportOptions { dry_run, progress },
    )
    .await
    .map_err(|e| match e {
        // The operator at the console may see the cause; the admin API's callers do not.
        OnboardingError::Database(cause) => anyhow::Error::new(cause).context("database error"),
        OnboardingError::Internal(cause) => cause.context("internal error"),
        other => anyhow::anyhow!("{other}"),
    })?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }

    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        write!(out, "{}", human_summary(&report))?;
    }
    Ok(if report.has_errors() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The summary as the operator reads it.
pub fn human_summary(report: &ImportReport) -> String {
    let mut text = String::new();
    if report.has_errors() {
        text.push_str(&format!(
            "Roster for {} NOT imported: {} error(s), nothing was changed.\n",
            report.school,
            report.errors.len()
        ));
        for e in &report.errors {
            let mut place = e.file.clone();
            if let Some(line) = e.line {
                place.push_str(&format!(":{line}"));
            }
            if let Some(column) = &e.column {
                place.push_str(&format!(" [{column}]"));
            }
            text.push_str(&format!("  {place}: {}\n", e.message));
        }
        return text;
    }
    let verb = if report.dry_run {
        "Dry run (nothing written)"
    } else if report.applied {
        "Imported"
    } else {
        "Nothing to change"
    };
    let s = &report.students;
    let p = &report.parents;
    let g = &report.guardianships;
    text.push_str(&format!(
        "{verb}: roster for {} ({} file)\n",
        report.school, report.mode
    ));
    text.push_str(&format!(
        "  students:      {} added, {} updated ({} enrolled again), {} unchanged, {} leaving\n",
        s.added, s.updated, s.reenrolled, s.unchanged, s.leaving
    ));
    text.push_str(&format!(
        "  parents:       {} added, {} updated, {} unchanged\n",
        p.added, p.updated, p.unchanged
    ));
    text.push_str(&format!(
        "  guardianships: {} added, {} removed\n",
        g.added, g.removed
    ));
    let roles = report
        .skipped
        .by_role
        .iter()
        .map(|(role, n)| format!("{n} {role}"))
        .collect::<Vec<_>>()
        .join(", ");
    text.push_str(&format!(
        "  skipped rows:  {}{}\n",
        report.skipped.rows,
        if roles.is_empty() {
            String::new()
        } else {
            format!(" ({roles})")
        }
    ));
    text
}
