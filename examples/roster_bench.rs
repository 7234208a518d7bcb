//! Roster import benchmark (BENCHMARKS.md): generates a OneRoster 1.1 bulk export of 100,000
//! students and 150,000 parents, imports it through the library into a fresh database, and
//! times the first import (everything new), the same file again (nothing changes, no write),
//! and a next export with 1% renamed and 1% gone.
//!
//! ```sh
//! cargo build --release --example roster_bench
//! ./target/release/examples/roster_bench            # SQLite in a temporary folder
//! ```

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use poortwachter::clock::SystemClock;
use poortwachter::config::Config;
use poortwachter::onboarding::roster::{
    import_roster, parse, ImportOptions, ImportReport, RosterSource,
};
use poortwachter::onboarding::Actor;
use poortwachter::prepare_state;

#[derive(Parser, Debug)]
struct Args {
    #[arg(long, default_value_t = 100_000)]
    students: usize,
    #[arg(long, default_value_t = 150_000)]
    parents: usize,
    /// Database URL; a fresh SQLite file in a temporary folder when absent.
    #[arg(long)]
    database_url: Option<String>,
}

const GIVEN: [&str; 12] = [
    "Daan", "Sem", "Lucas", "Noah", "Levi", "Finn", "Emma", "Julia", "Mila", "Tess", "Sophie",
    "Zoë",
];
const FAMILY: [(&str, &str); 10] = [
    ("", "Jansen"),
    ("de", "Vries"),
    ("van den", "Berg"),
    ("van", "Dijk"),
    ("", "Bakker"),
    ("", "Visser"),
    ("de", "Jong"),
    ("ter", "Horst"),
    ("", "Smit"),
    ("van der", "Meer"),
];

/// Write a bulk export; `renamed` students get a new username, students from `gone_from` on
/// are left out (and their guardianships with them).
fn write_export(dir: &Path, args: &Args, renamed: usize, gone_from: usize) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join("manifest.csv"),
        "propertyName,value\nmanifest.version,1.0\noneroster.version,1.1\nfile.orgs,bulk\n\
         file.users,bulk\nfile.demographics,bulk\n",
    )?;
    std::fs::write(
        dir.join("orgs.csv"),
        "sourcedId,status,dateLastModified,name,type,identifier,parentSourcedId\n\
         org-56ef,,,Het Baken,school,56EF,\n",
    )?;
    let mut users = String::with_capacity((args.students + args.parents) * 120);
    let mut demographics = String::with_capacity(args.students * 24);
    users.push_str(
        "sourcedId,status,dateLastModified,enabledUser,orgSourcedIds,role,username,userIds,\
         givenName,familyName,middleName,identifier,email,sms,phone,agentSourcedIds\n",
    );
    demographics.push_str("sourcedId,birthDate\n");
    let present = |s: usize| s < gone_from;
    for s in 0..args.students {
        if !present(s) {
            continue;
        }
        let (middle, family) = FAMILY[s % FAMILY.len()];
        let username = if s < renamed {
            format!("n{}", 600_000 + s)
        } else {
            format!("{}", 600_000 + s)
        };
        writeln!(
            users,
            "s-{s},active,2026-08-01T08:00:00.000Z,true,org-56ef,student,{username},,{},{family},{middle},,,,,",
            GIVEN[s % GIVEN.len()]
        )?;
        writeln!(
            demographics,
            "s-{s},{}-{:02}-{:02}",
            2008 + s % 7,
            1 + s % 12,
            1 + s % 28
        )?;
    }
    for p in 0..args.parents {
        let (middle, family) = FAMILY[(p * 3) % FAMILY.len()];
        // Every student has one or two parents; some parents have two children.
        let mut children = vec![p % args.students];
        if p < args.parents / 3 {
            children.push((p * 7 + 3) % args.students);
        }
        children.retain(|&c| present(c));
        children.dedup();
        let agents = children
            .iter()
            .map(|c| format!("s-{c}"))
            .collect::<Vec<_>>()
            .join(",");
        writeln!(
            users,
            "p-{p},active,2026-08-01T08:00:00.000Z,true,org-56ef,parent,ouder{p},,{},{family},{middle},,,,,\"{agents}\"",
            GIVEN[(p + 5) % GIVEN.len()]
        )?;
    }
    std::fs::write(dir.join("users.csv"), users)?;
    std::fs::write(dir.join("demographics.csv"), demographics)?;
    Ok(())
}

fn line(label: &str, seconds: f64, report: &ImportReport) -> String {
    let s = &report.students;
    let p = &report.parents;
    let g = &report.guardianships;
    format!(
        "| {label} | {seconds:.1} s | {} / {} / {} / {} | {} / {} / {} | {} / {} |",
        s.added,
        s.updated,
        s.unchanged,
        s.leaving,
        p.added,
        p.updated,
        p.unchanged,
        g.added,
        g.removed
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let work = tempfile::tempdir()?;
    let database_url = args
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", work.path().join("roster.db").display()));
    let mut config = Config {
        database_url,
        database_max_connections: 4,
        ..Config::default()
    };
    config.normalise();
    let state = prepare_state(config, Arc::new(SystemClock)).await?;
    state.store.insert_school("56EF", "Het Baken").await?;

    let first = work.path().join("export-1");
    let next = work.path().join("export-2");
    let started = Instant::now();
    write_export(&first, &args, 0, args.students)?;
    write_export(
        &next,
        &args,
        args.students / 100,
        args.students - args.students / 100,
    )?;
    let size = std::fs::metadata(first.join("users.csv"))?.len();
    eprintln!(
        "generated two exports in {:.1} s (users.csv {:.1} MiB)",
        started.elapsed().as_secs_f64(),
        size as f64 / 1024.0 / 1024.0
    );

    // The pure part alone: unpacking, CSV, validation, links.
    let started = Instant::now();
    let files = parse::read_source(RosterSource::Folder(first.clone()))
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let roster = parse::parse_roster(&files, "56EF", &ImportOptions::default())
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let parse_seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "parsing and checking alone: {parse_seconds:.1} s ({} people, {} links)",
        roster.people.len(),
        roster.links.len()
    );
    drop((files, roster));

    let actor = Actor::console();
    let mut rows = Vec::new();
    for (label, dir) in [
        ("first import (all new)", &first),
        ("same file again (no change, no write)", &first),
        ("next export: 1% renamed, 1% gone", &next),
    ] {
        let started = Instant::now();
        let report = import_roster(
            &state,
            &actor,
            "56EF",
            RosterSource::Folder(dir.clone()),
            ImportOptions::default(),
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        anyhow::ensure!(report.errors.is_empty(), "errors: {:?}", report.errors);
        let seconds = started.elapsed().as_secs_f64();
        eprintln!("{label}: {seconds:.1} s");
        rows.push(line(label, seconds, &report));
    }
    println!(
        "| run | time | students added / updated / unchanged / leaving | parents added / updated / unchanged | guardianships added / removed |"
    );
    println!("|---|---:|---|---|---|");
    for row in rows {
        println!("{row}");
    }
    println!("\nParsing and checking alone (no database): {parse_seconds:.1} s.");
    Ok(())
}
