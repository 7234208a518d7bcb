//! Applying a validated [`Roster`] to the school: diff against the people as stored, then write
//! only what differs, in one transaction with one audit row (or, when nothing differs, no
//! write at all: no audit row, nothing in the policy change log, no cache eviction).

use std::collections::{HashMap, HashSet};

use serde_json::json;

use super::parse::{Kind, Mode, Person, Roster};
use super::{ImportOptions, ImportReport, Phase, RosterError};
use crate::onboarding::{begin, commit_audited, Actor, Change, OnboardingError};
use crate::storage::roster::{self as sql, NewPerson, PersonUpdate, StoredPerson};
use crate::storage::{new_id, ts};
use crate::App;

const USERS: &str = "users.csv";
/// Student numbers listed in the audit row (the counts are always complete).
const AUDIT_LIST_MAX: usize = 1000;

/// Where a roster row lands: an existing account (by index into the stored list) or a new one.
#[derive(Clone, Copy)]
enum Target {
    Existing(usize),
    New(usize),
}

pub async fn apply(
    app: &App,
    actor: &Actor,
    brin: &str,
    roster: &Roster,
    options: &ImportOptions,
) -> Result<ImportReport, OnboardingError> {
    let mut report = ImportReport {
        school: brin.to_string(),
        mode: roster.mode.as_str().to_string(),
        dry_run: options.dry_run,
        skipped: roster.skipped.clone(),
        ..ImportReport::default()
    };
    let now = app.now();
    let now_s = ts(now);
    let mut tx = begin(&app.store).await?;
    sql::widen_page_cache(&mut tx, app.store.backend()).await?;
    // Read inside the transaction: the diff and the writes see the same state.
    let stored = sql::people_of_school(&mut tx, brin).await?;
    let enrollments = sql::enrollments_at_school(&mut tx, brin).await?;
    let current_links: HashSet<(String, String)> = sql::guardianships_at_school(&mut tx, brin)
        .await?
        .into_iter()
        .collect();

    let by_source: HashMap<&str, usize> = stored
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.source_id.as_deref().map(|s| (s, i)))
        .collect();
    let by_username: HashMap<&str, usize> = stored
        .iter()
        .enumerate()
        .map(|(i, p)| (p.username.as_str(), i))
        .collect();
    let enrollment_of: HashMap<&str, &sql::StoredEnrollment> = enrollments
        .iter()
        .map(|e| (e.student_id.as_str(), e))
        .collect();
    let active = |id: &str| {
        enrollment_of
            .get(id)
            .is_some_and(|e| e.starts_at <= now_s && e.ends_at.is_none_or(|end| end > now_s))
    };

    let mut errors: Vec<RosterError> = Vec::new();
    let error = |line: u64, column: &str, message: String| {
        RosterError::new(USERS, Some(line), Some(column), message)
    };

    // 1. Match every row to an account: by sourcedId, else adopt an account of the same role
    //    and username that has no sourcedId yet (made by hand, or the demo's).
    let mut targets: Vec<Target> = Vec::with_capacity(roster.people.len());
    let mut new_ids: Vec<String> = Vec::new();
    let mut matched: HashSet<usize> = HashSet::new();
    for person in &roster.people {
        let found = match by_source.get(person.source_id.as_str()) {
            Some(&i) => Some(i),
            None => by_username
                .get(person.username.as_str())
                .copied()
                .filter(|&i| stored[i].source_id.is_none() && stored[i].role == person.kind.role()),
        };
        match found {
            Some(i) if stored[i].role != person.kind.role() => {
                errors.push(error(
                    person.line,
                    "role",
                    format!(
                        "sourcedId {} is a {} at this school, not a {}",
                        person.source_id,
                        stored[i].role,
                        person.kind.role()
                    ),
                ));
                targets.push(Target::New(0));
            }
            Some(i) => {
                matched.insert(i);
                targets.push(Target::Existing(i));
            }
            None => {
                targets.push(Target::New(new_ids.len()));
                new_ids.push(new_id());
            }
        }
    }
    // Usernames must stay unique at the school: a row may not take the username of an account
    // the roster does not hold (a supervisor, or someone else not in the file).
    for (person, target) in roster.people.iter().zip(&targets) {
        if let Some(&holder) = by_username.get(person.username.as_str()) {
            let same = matches!(target, Target::Existing(i) if *i == holder);
            if !same && !matched.contains(&holder) {
                errors.push(error(
                    person.line,
                    "username",
                    format!(
                        "username {} belongs to another account of the school",
                        person.username
                    ),
                ));
            }
        }
    }
    let id_of = |target: Target| -> &str {
        match target {
            Target::Existing(i) => stored[i].id.as_str(),
            Target::New(n) => new_ids.get(n).map(String::as_str).unwrap_or(""),
        }
    };
    let row_of_source: HashMap<&str, usize> = roster
        .people
        .iter()
        .enumerate()
        .map(|(i, p)| (p.source_id.as_str(), i))
        .collect();

    // 2. What changes per person.
    let mut inserts: Vec<NewPerson<'_>> = Vec::new();
    let mut updates: Vec<PersonUpdate<'_>> = Vec::new();
    let mut renamed: Vec<&str> = Vec::new();
    let mut new_enrollments: Vec<&str> = Vec::new();
    let mut reenrolled: Vec<&str> = Vec::new();
    let mut reenrolled_numbers: Vec<&str> = Vec::new();
    for (person, &target) in roster.people.iter().zip(&targets) {
        let is_student = person.kind == Kind::Student;
        match target {
            Target::New(n) => {
                let Some(id) = new_ids.get(n) else { continue };
                inserts.push(NewPerson {
                    id,
                    username: &person.username,
                    role: person.kind.role(),
                    given_name: &person.given_name,
                    tussenvoegsel: person.tussenvoegsel.as_deref(),
                    family_name: &person.family_name,
                    birth_date: person
                        .birth_date
                        .flatten()
                        .map(|d| d.format("%Y-%m-%d").to_string()),
                    source_id: &person.source_id,
                    login_enabled: person.login_enabled,
                });
                if is_student {
                    new_enrollments.push(id);
                    report.students.added += 1;
                } else {
                    report.parents.added += 1;
                }
            }
            Target::Existing(i) => {
                let account = &stored[i];
                let update = changed_fields(account, person);
                let mut changed = update.is_some();
                if let Some(update) = update {
                    if update.username != account.username {
                        renamed.push(&account.id);
                    }
                    updates.push(update);
                }
                if is_student && !active(&account.id) {
                    changed = true;
                    if enrollment_of.contains_key(account.id.as_str()) {
                        reenrolled.push(&account.id);
                    } else {
                        new_enrollments.push(&account.id);
                    }
                    reenrolled_numbers.push(&person.username);
                    report.students.reenrolled += 1;
                }
                match (is_student, changed) {
                    (true, true) => report.students.updated += 1,
                    (true, false) => report.students.unchanged += 1,
                    (false, true) => report.parents.updated += 1,
                    (false, false) => report.parents.unchanged += 1,
                }
            }
        }
    }

    // Birth dates from a delta demographics file for students not in users.csv.
    for change in &roster.birth_date_changes {
        match by_source.get(change.source_id.as_str()) {
            Some(&i) if stored[i].role == "student" => {
                let account = &stored[i];
                let wanted = change.birth_date.map(|d| d.format("%Y-%m-%d").to_string());
                if account.birth_date != wanted {
                    updates.push(PersonUpdate {
                        id: &account.id,
                        username: &account.username,
                        given_name: &account.given_name,
                        tussenvoegsel: account.tussenvoegsel.as_deref(),
                        family_name: &account.family_name,
                        birth_date: wanted,
                        source_id: &change.source_id,
                        login_enabled: account.login_enabled != 0,
                    });
                    report.students.updated += 1;
                }
            }
            _ => errors.push(RosterError::new(
                "demographics.csv",
                Some(change.line),
                Some("sourcedId"),
                format!("{} is not a student of this school", change.source_id),
            )),
        }
    }

    // 3. Who leaves.
    let mut leaving: Vec<&str> = Vec::new();
    let mut leaving_numbers: Vec<&str> = Vec::new();
    let mut removed_parents: HashSet<&str> = HashSet::new();
    let mut removed_students: HashSet<&str> = HashSet::new();
    match roster.mode {
        Mode::Bulk => {
            for (i, account) in stored.iter().enumerate() {
                if account.role == "student" && !matched.contains(&i) && active(&account.id) {
                    leaving.push(&account.id);
                    leaving_numbers.push(&account.username);
                }
            }
        }
        Mode::Delta => {
            for removal in &roster.removals {
                let Some(&i) = by_source.get(removal.source_id.as_str()) else {
                    // Unknown or already gone: nothing to remove (a re-import changes nothing).
                    continue;
                };
                let account = &stored[i];
                if account.role != removal.kind.role() {
                    errors.push(error(
                        removal.line,
                        "role",
                        format!(
                            "sourcedId {} is a {} at this school, not a {}",
                            removal.source_id,
                            account.role,
                            removal.kind.role()
                        ),
                    ));
                    continue;
                }
                match removal.kind {
                    Kind::Student => {
                        removed_students.insert(&account.id);
                        if active(&account.id) {
                            leaving.push(&account.id);
                            leaving_numbers.push(&account.username);
                        }
                    }
                    Kind::Parent => {
                        removed_parents.insert(&account.id);
                    }
                }
            }
        }
    }
    report.students.leaving = leaving.len() as u64;

    // 4. Guardianships.
    let resolve = |source: &str, kind: Kind| -> Option<&str> {
        if let Some(&row) = row_of_source.get(source) {
            return Some(id_of(targets[row]));
        }
        by_source
            .get(source)
            .filter(|&&i| stored[i].role == kind.role())
            .map(|&i| stored[i].id.as_str())
    };
    let mut wanted_links: HashSet<(&str, &str)> = HashSet::new();
    for link in &roster.links {
        match (
            resolve(&link.parent, Kind::Parent),
            resolve(&link.student, Kind::Student),
        ) {
            (Some(parent), Some(student)) => {
                wanted_links.insert((parent, student));
            }
            (parent, _) => {
                let (missing, kind) = if parent.is_none() {
                    (&link.parent, Kind::Parent)
                } else {
                    (&link.student, Kind::Student)
                };
                errors.push(error(
                    link.line,
                    "agentSourcedIds",
                    format!(
                        "agent {missing} is neither in users.csv nor a known {} of this school",
                        kind.role()
                    ),
                ));
            }
        }
    }
    let mut add_links: Vec<(&str, &str)> = wanted_links
        .iter()
        .filter(|(p, s)| !current_links.contains(&(p.to_string(), s.to_string())))
        .copied()
        .collect();
    add_links.sort_unstable();
    let mut remove_links: Vec<(&str, &str)> = current_links
        .iter()
        .map(|(p, s)| (p.as_str(), s.as_str()))
        .filter(|pair| match roster.mode {
            Mode::Bulk => !wanted_links.contains(pair),
            Mode::Delta => removed_parents.contains(pair.0) || removed_students.contains(pair.1),
        })
        .collect();
    remove_links.sort_unstable();
    report.guardianships.added = add_links.len() as u64;
    report.guardianships.removed = remove_links.len() as u64;

    if !errors.is_empty() {
        errors.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
        errors.truncate(100);
        report.errors = errors;
        tx.rollback().await?;
        return Ok(report);
    }
    if options.dry_run || !report.changes_anything() {
        // Nothing written: a dry run, or the school already looks like the file.
        tx.rollback().await?;
        return Ok(report);
    }

    // 5. Write, in an order the constraints accept.
    let total = (renamed.len()
        + updates.len()
        + inserts.len()
        + new_enrollments.len()
        + reenrolled.len()
        + leaving.len()
        + remove_links.len()
        + add_links.len()) as u64;
    let mut done = 0u64;
    let mut step = |n: usize| {
        done += n as u64;
        options.report(Phase::Writing, done, total);
    };
    if !renamed.is_empty() {
        sql::park_usernames(&mut tx, &renamed)
            .await
            .map_err(clash)?;
        step(renamed.len());
    }
    for update in &updates {
        sql::update_person(&mut tx, update).await.map_err(clash)?;
    }
    step(updates.len());
    for chunk in inserts.chunks(10_000) {
        sql::insert_people(&mut tx, brin, chunk, now_s)
            .await
            .map_err(clash)?;
        step(chunk.len());
    }
    if !new_enrollments.is_empty() {
        sql::insert_enrollments(&mut tx, brin, &new_enrollments, now_s)
            .await
            .map_err(clash)?;
        step(new_enrollments.len());
    }
    if !reenrolled.is_empty() {
        sql::reenroll(&mut tx, brin, &reenrolled, now_s)
            .await
            .map_err(clash)?;
        step(reenrolled.len());
    }
    if !leaving.is_empty() {
        sql::end_enrollments(&mut tx, brin, &leaving, now_s)
            .await
            .map_err(clash)?;
        step(leaving.len());
    }
    if !remove_links.is_empty() {
        sql::delete_guardianships(&mut tx, &remove_links)
            .await
            .map_err(clash)?;
        step(remove_links.len());
    }
    for chunk in add_links.chunks(10_000) {
        sql::insert_guardianships(&mut tx, chunk, now_s)
            .await
            .map_err(clash)?;
        step(chunk.len());
    }

    // One audit row for the import; the school's log may name student numbers.
    let mut summary = serde_json::to_value(&report).unwrap_or_default();
    if let Some(map) = summary.as_object_mut() {
        map.remove("errors");
        map.remove("applied");
        map.remove("school");
        map.insert(
            "leaving_students".into(),
            json!(leaving_numbers
                .iter()
                .take(AUDIT_LIST_MAX)
                .collect::<Vec<_>>()),
        );
        map.insert(
            "reenrolled_students".into(),
            json!(reenrolled_numbers
                .iter()
                .take(AUDIT_LIST_MAX)
                .collect::<Vec<_>>()),
        );
    }
    let change = Change::new("roster.import", format!("school:{brin}/roster"), summary);
    commit_audited(app, tx, actor, &[change])
        .await
        .map_err(|e| match e {
            OnboardingError::Database(cause) => clash(cause),
            other => other,
        })?;
    report.applied = true;
    Ok(report)
}

/// Another change to the school's people committed between our read and our write (two
/// imports at once, an admin call): a 409 to retry, not a 500. Unique violations, SQLite's
/// BUSY / BUSY_SNAPSHOT (a read transaction cannot become a writer after another committed),
/// PostgreSQL's serialization failure and deadlock.
fn clash(e: sqlx::Error) -> OnboardingError {
    if let sqlx::Error::Database(db) = &e {
        let concurrent = db.is_unique_violation()
            || matches!(db.code().as_deref(), Some("5" | "517" | "40001" | "40P01"));
        if concurrent {
            return OnboardingError::Conflict(
                "the school's people changed while importing; nothing was changed, import again"
                    .into(),
            );
        }
    }
    OnboardingError::Database(e)
}

/// The update that makes `account` look like `person`, or `None` when it already does.
fn changed_fields<'a>(account: &'a StoredPerson, person: &'a Person) -> Option<PersonUpdate<'a>> {
    let birth_date = match &person.birth_date {
        // The files say nothing about birth dates: keep the stored one.
        None => account.birth_date.clone(),
        Some(date) => date.map(|d| d.format("%Y-%m-%d").to_string()),
    };
    let same = account.username == person.username
        && account.given_name == person.given_name
        && account.tussenvoegsel == person.tussenvoegsel
        && account.family_name == person.family_name
        && account.birth_date == birth_date
        && account.source_id.as_deref() == Some(person.source_id.as_str())
        && (account.login_enabled != 0) == person.login_enabled;
    if same {
        return None;
    }
    Some(PersonUpdate {
        id: &account.id,
        username: &person.username,
        given_name: &person.given_name,
        tussenvoegsel: person.tussenvoegsel.as_deref(),
        family_name: &person.family_name,
        birth_date,
        source_id: &person.source_id,
        login_enabled: person.login_enabled,
    })
}
