//! Reading a OneRoster 1.1/1.2 CSV roster (folder, zip or in-memory files) into a validated,
//! pure [`Roster`], or the list of everything wrong with it as `{file, line, column, message}`.
//!
//! Everything here is bounded: the number of zip entries, the uncompressed size of each file
//! and of all together (read through `take()`, so a zip header that lies about sizes cannot
//! overrun the cap), and the length of a row. Entry names that could point outside the
//! folder are refused, not "sanitised".

use std::collections::{HashMap, HashSet};
use std::io::{Cursor, Read};
use std::path::Path;

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use csv::{ByteRecord, ReaderBuilder, StringRecord};

use super::{ImportOptions, Phase, RosterError, RosterSource, SkippedCounts};

/// All files together, uncompressed.
pub const MAX_TOTAL_BYTES: u64 = 256 * 1024 * 1024;
/// Entries in a zip archive (a OneRoster export has about a dozen files).
pub const MAX_ZIP_ENTRIES: usize = 256;
/// One CSV row, all fields together.
pub const MAX_ROW_BYTES: usize = 64 * 1024;
/// Longest username, sourcedId or name we accept.
const MAX_VALUE_CHARS: usize = 200;
/// Stop collecting errors after this many: the file is clearly broken.
const MAX_ERRORS: usize = 100;

const MANIFEST: &str = "manifest.csv";
const ORGS: &str = "orgs.csv";
const USERS: &str = "users.csv";
const DEMOGRAPHICS: &str = "demographics.csv";
/// OneRoster 1.2 moved `role` and `orgSourcedIds` out of `users.csv` into this file.
const ROLES: &str = "roles.csv";
/// The files we read; every other OneRoster file (classes, enrollments, ...) is ignored.
const KNOWN_FILES: [&str; 5] = [MANIFEST, ORGS, USERS, DEMOGRAPHICS, ROLES];

/// The raw files by (lower-case) name.
pub type Files = HashMap<String, Vec<u8>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The files hold the school's whole list: someone absent has left.
    Bulk,
    /// The files hold changes only: removals are rows with `status=tobedeleted`.
    Delta,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Bulk => "bulk",
            Mode::Delta => "delta",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Student,
    Parent,
}

impl Kind {
    pub fn role(self) -> &'static str {
        match self {
            Kind::Student => "student",
            Kind::Parent => "parent",
        }
    }
}

/// One student or parent as the SIS has them. Email, phone and sms are not kept: the
/// authorization server does not need them (data minimisation, GDPR art. 5(1)(c)).
#[derive(Clone, PartialEq, Eq)]
pub struct Person {
    /// Line in `users.csv`, for errors found against the database.
    pub line: u64,
    pub source_id: String,
    pub kind: Kind,
    pub username: String,
    pub given_name: String,
    /// OneRoster `middleName`: the Dutch tussenvoegsel ("de", "van der").
    pub tussenvoegsel: Option<String>,
    pub family_name: String,
    /// `None`: the files say nothing about birth dates (keep what is stored);
    /// `Some(None)`: the person has no birth date in a bulk demographics file.
    pub birth_date: Option<Option<NaiveDate>>,
    pub login_enabled: bool,
}

// Names and usernames stay out of Debug output (and so out of logs).
impl std::fmt::Debug for Person {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Person")
            .field("line", &self.line)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// A delta row with `status=tobedeleted`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    pub line: u64,
    pub source_id: String,
    pub kind: Kind,
}

/// A parent linked to a student, from either side's `agentSourcedIds`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub parent: String,
    pub student: String,
    /// Where the link was stated (the first time), for an agent the database does not know.
    pub line: u64,
    /// True when the other end is not in the files (delta only): it must be a person of the
    /// school already known by that sourcedId.
    pub unresolved: bool,
}

/// A delta demographics row for someone not in `users.csv`: a stored student's birth date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BirthDateChange {
    pub line: u64,
    pub source_id: String,
    pub birth_date: Option<NaiveDate>,
}

/// A validated roster: pure data, no database.
#[derive(Debug, Clone)]
pub struct Roster {
    pub mode: Mode,
    pub people: Vec<Person>,
    pub removals: Vec<Removal>,
    pub links: Vec<Link>,
    pub birth_date_changes: Vec<BirthDateChange>,
    pub skipped: SkippedCounts,
}

/// Collects errors up to [`MAX_ERRORS`].
struct Errors(Vec<RosterError>);

impl Errors {
    fn push(&mut self, error: RosterError) {
        if self.0.len() < MAX_ERRORS {
            self.0.push(error);
        }
    }

    fn at(&mut self, file: &str, line: u64, column: &str, message: impl Into<String>) {
        self.push(RosterError::new(file, Some(line), Some(column), message));
    }

    fn full(&self) -> bool {
        self.0.len() >= MAX_ERRORS
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn file_error(file: &str, message: impl Into<String>) -> Vec<RosterError> {
    vec![RosterError::new(file, None, None, message)]
}

// ---------------------------------------------------------------------------------------------
// Reading the source.

/// Read the files we need from a folder, a zip or memory, within the size caps.
pub fn read_source(source: RosterSource) -> Result<Files, Vec<RosterError>> {
    match source {
        RosterSource::Folder(dir) => read_folder(&dir),
        RosterSource::Zip(bytes) => read_zip(&bytes, MAX_TOTAL_BYTES),
        RosterSource::Files(list) => {
            let mut files = Files::new();
            let mut total = 0u64;
            for (name, bytes) in list {
                total += bytes.len() as u64;
                if total > MAX_TOTAL_BYTES {
                    return Err(file_error(&name, too_large()));
                }
                let name = base_name(&name).to_ascii_lowercase();
                if KNOWN_FILES.contains(&name.as_str()) {
                    files.insert(name, bytes);
                }
            }
            Ok(files)
        }
    }
}

fn too_large() -> String {
    format!(
        "the files together are larger than {} MiB uncompressed",
        MAX_TOTAL_BYTES / 1024 / 1024
    )
}

fn base_name(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

fn read_folder(dir: &Path) -> Result<Files, Vec<RosterError>> {
    if !dir.is_dir() {
        return Err(file_error(
            &dir.display().to_string(),
            "not a folder with OneRoster CSV files",
        ));
    }
    let mut files = Files::new();
    let mut remaining = MAX_TOTAL_BYTES;
    for name in KNOWN_FILES {
        let path = dir.join(name);
        let file = match std::fs::File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(file_error(name, format!("cannot be read: {e}"))),
        };
        let mut bytes = Vec::new();
        file.take(remaining + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| file_error(name, format!("cannot be read: {e}")))?;
        if bytes.len() as u64 > remaining {
            return Err(file_error(name, too_large()));
        }
        remaining -= bytes.len() as u64;
        files.insert(name.to_string(), bytes);
    }
    Ok(files)
}

/// A zip entry name we accept: relative, no `..`, no backslashes (a Windows path separator
/// some unpackers honour), no drive letters, no control characters.
fn safe_entry_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('/')
        && !name.contains('\\')
        && !name.contains(':')
        && !name.chars().any(char::is_control)
        && name.split('/').all(|part| part != "..")
}

/// Unpack the files we read from a zip, at most `cap` bytes uncompressed in all.
fn read_zip(bytes: &[u8], cap: u64) -> Result<Files, Vec<RosterError>> {
    const ZIP: &str = "upload.zip";
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| file_error(ZIP, format!("not a readable zip archive: {e}")))?;
    if archive.len() > MAX_ZIP_ENTRIES {
        return Err(file_error(
            ZIP,
            format!("more than {MAX_ZIP_ENTRIES} entries"),
        ));
    }
    let mut files = Files::new();
    let mut remaining = cap;
    for index in 0..archive.len() {
        let mut entry = archive
            .by_index(index)
            .map_err(|e| file_error(ZIP, format!("entry {index} cannot be read: {e}")))?;
        let name = entry.name().to_string();
        if !safe_entry_name(&name) || entry.enclosed_name().is_none() {
            return Err(file_error(
                &name,
                "entry path points outside the archive's folder (absolute, .. or \\)",
            ));
        }
        if entry.is_symlink() {
            return Err(file_error(&name, "symbolic links are not accepted"));
        }
        if entry.is_dir() {
            continue;
        }
        let base = base_name(&name).to_ascii_lowercase();
        if !KNOWN_FILES.contains(&base.as_str()) {
            continue;
        }
        if files.contains_key(&base) {
            return Err(file_error(
                &name,
                format!("the archive holds more than one {base}"),
            ));
        }
        // The declared size may lie (a zip bomb declares little): `take` bounds what is
        // really inflated, whatever the header says.
        if entry.size() > remaining {
            return Err(file_error(&name, too_large()));
        }
        let mut content = Vec::new();
        (&mut entry)
            .take(remaining + 1)
            .read_to_end(&mut content)
            .map_err(|e| file_error(&name, format!("cannot be unpacked: {e}")))?;
        if content.len() as u64 > remaining {
            return Err(file_error(&name, too_large()));
        }
        remaining -= content.len() as u64;
        files.insert(base, content);
    }
    Ok(files)
}

// ---------------------------------------------------------------------------------------------
// Reading one CSV table.

/// One data row: its line and its fields by (lower-case) header name.
struct Row<'a> {
    line: u64,
    record: &'a StringRecord,
    columns: &'a HashMap<String, usize>,
}

impl Row<'_> {
    /// The trimmed value, "" when the column is absent.
    fn get(&self, column: &str) -> &str {
        self.columns
            .get(&column.to_ascii_lowercase())
            .and_then(|&i| self.record.get(i))
            .map(str::trim)
            .unwrap_or("")
    }
}

/// Read `file` row by row, checking the header for `required` columns, UTF-8, row length
/// and field counts; `each` sees every good row. Errors go to `errors`.
fn read_table(
    file: &str,
    bytes: &[u8],
    required: &[&str],
    errors: &mut Errors,
    mut progress: impl FnMut(u64),
    mut each: impl FnMut(&Row<'_>, &mut Errors),
) {
    // A UTF-8 byte-order mark (Excel writes one) is not part of the first header name.
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(bytes);
    let header = match reader.byte_headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            errors.push(RosterError::new(file, Some(1), None, csv_message(&e)));
            return;
        }
    };
    if header.as_slice().len() > MAX_ROW_BYTES {
        errors.at(file, 1, "", "header row is too long");
        return;
    }
    let header = match StringRecord::from_byte_record(header) {
        Ok(h) => h,
        Err(_) => {
            errors.push(RosterError::new(
                file,
                Some(1),
                None,
                "header is not valid UTF-8 (save the file as UTF-8)",
            ));
            return;
        }
    };
    let before = errors.0.len();
    let names: Vec<String> = header.iter().map(|h| h.trim().to_string()).collect();
    let mut columns = HashMap::new();
    for (i, name) in names.iter().enumerate() {
        if columns.insert(name.to_ascii_lowercase(), i).is_some() {
            errors.at(file, 1, name, "column appears twice in the header");
        }
    }
    for column in required {
        if !columns.contains_key(&column.to_ascii_lowercase()) {
            errors.at(file, 1, column, "required column is missing");
        }
    }
    if errors.0.len() > before {
        return;
    }
    let column_name = |i: usize| names.get(i).map(String::as_str).unwrap_or("");
    let mut raw = ByteRecord::new();
    let mut count = 0u64;
    loop {
        if errors.full() {
            return;
        }
        match reader.read_byte_record(&mut raw) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                errors.push(RosterError::new(file, Some(line), None, csv_message(&e)));
                continue;
            }
        }
        let line = raw.position().map(|p| p.line()).unwrap_or(0);
        count += 1;
        if count.is_multiple_of(4096) {
            progress(raw.position().map(|p| p.byte()).unwrap_or(0));
        }
        if raw.as_slice().len() > MAX_ROW_BYTES {
            let longest = (0..raw.len())
                .max_by_key(|&i| raw.get(i).map_or(0, <[u8]>::len))
                .unwrap_or(0);
            errors.at(
                file,
                line,
                column_name(longest),
                format!("row is longer than {} KiB", MAX_ROW_BYTES / 1024),
            );
            continue;
        }
        let record = match StringRecord::from_byte_record(raw.clone()) {
            Ok(record) => record,
            Err(e) => {
                let field = e.utf8_error().field();
                errors.at(
                    file,
                    line,
                    column_name(field),
                    "not valid UTF-8 (save the file as UTF-8)",
                );
                continue;
            }
        };
        each(
            &Row {
                line,
                record: &record,
                columns: &columns,
            },
            errors,
        );
    }
    progress(bytes.len() as u64);
}

fn csv_message(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("row has {len} fields, the header has {expected_len}"),
        _ => format!("not readable as CSV: {e}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The roster.

/// Values we accept for people's names, usernames and identifiers.
fn check_value(
    errors: &mut Errors,
    file: &str,
    row: &Row<'_>,
    column: &str,
    required: bool,
) -> Option<String> {
    let value = row.get(column);
    if value.is_empty() {
        if required {
            errors.at(file, row.line, column, "is required");
        }
        return None;
    }
    if value.chars().count() > MAX_VALUE_CHARS {
        errors.at(
            file,
            row.line,
            column,
            format!("is longer than {MAX_VALUE_CHARS} characters"),
        );
        return None;
    }
    if value.chars().any(char::is_control) {
        errors.at(file, row.line, column, "contains control characters");
        return None;
    }
    Some(value.to_string())
}

/// OneRoster `dateLastModified`: ISO 8601 date-time (`2026-08-01T12:00:00.000Z`).
fn valid_datetime(value: &str) -> bool {
    DateTime::parse_from_rfc3339(value).is_ok()
        || NaiveDateTime::parse_from_str(value.trim_end_matches('Z'), "%Y-%m-%dT%H:%M:%S%.f")
            .is_ok()
        || NaiveDate::parse_from_str(value, "%Y-%m-%d").is_ok()
}

fn parse_date(value: &str) -> Option<NaiveDate> {
    // Exactly YYYY-MM-DD: chrono alone would accept "2010-2-1".
    let shape = value.len() == 10
        && value.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if !shape {
        return None;
    }
    NaiveDate::parse_from_str(value, "%Y-%m-%d").ok()
}

fn split_ids(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// The manifest's settings we use.
struct Manifest {
    mode: Mode,
    /// `file.demographics`: `None` when absent.
    demographics: Option<Mode>,
}

fn read_manifest(files: &Files, errors: &mut Errors) -> Option<Manifest> {
    let Some(bytes) = files.get(MANIFEST) else {
        errors.push(RosterError::new(MANIFEST, None, None, "file is missing"));
        return None;
    };
    let mut properties: HashMap<String, (u64, String)> = HashMap::new();
    read_table(
        MANIFEST,
        bytes,
        &["propertyName", "value"],
        errors,
        |_| {},
        |row, errors| {
            let name = row.get("propertyName").to_string();
            if properties
                .insert(
                    name.clone(),
                    (row.line, row.get("value").to_ascii_lowercase()),
                )
                .is_some()
            {
                errors.at(
                    MANIFEST,
                    row.line,
                    "propertyName",
                    format!("{name} appears twice"),
                );
            }
        },
    );
    if !errors.is_empty() {
        return None;
    }
    if let Some((line, version)) = properties.get("oneroster.version") {
        if !version.starts_with("1.") {
            errors.at(
                MANIFEST,
                *line,
                "value",
                format!("oneroster.version {version} is not supported (1.1 and 1.2 are)"),
            );
        }
    }
    let mode_of = |property: &str, errors: &mut Errors| -> Option<Option<Mode>> {
        match properties.get(property) {
            None => Some(None),
            Some((_, v)) if v == "absent" => Some(None),
            Some((_, v)) if v == "bulk" => Some(Some(Mode::Bulk)),
            Some((_, v)) if v == "delta" => Some(Some(Mode::Delta)),
            Some((line, v)) => {
                errors.at(
                    MANIFEST,
                    *line,
                    "value",
                    format!("{property} must be bulk, delta or absent, not {v}"),
                );
                None
            }
        }
    };
    let users = mode_of("file.users", errors)?;
    let demographics = mode_of("file.demographics", errors)?;
    let mode = match (properties.get("file.users"), users) {
        (Some((line, _)), None) => {
            errors.at(
                MANIFEST,
                *line,
                "value",
                "file.users is absent: a roster needs users.csv",
            );
            return None;
        }
        (_, mode) => mode.unwrap_or(Mode::Bulk),
    };
    if !errors.is_empty() {
        return None;
    }
    Some(Manifest { mode, demographics })
}

/// The school's org sourcedIds from `orgs.csv`; every school org must carry this BRIN.
fn read_orgs(files: &Files, brin: &str, errors: &mut Errors) -> (HashSet<String>, HashSet<String>) {
    let mut all = HashSet::new();
    let mut ours = HashSet::new();
    let Some(bytes) = files.get(ORGS) else {
        errors.push(RosterError::new(ORGS, None, None, "file is missing"));
        return (all, ours);
    };
    read_table(
        ORGS,
        bytes,
        &["sourcedId", "name", "type", "identifier"],
        errors,
        |_| {},
        |row, errors| {
            let Some(id) = check_value(errors, ORGS, row, "sourcedId", true) else {
                return;
            };
            if !all.insert(id.clone()) {
                errors.at(
                    ORGS,
                    row.line,
                    "sourcedId",
                    format!("duplicate sourcedId {id}"),
                );
                return;
            }
            if row.get("type").eq_ignore_ascii_case("school") {
                let identifier = row.get("identifier");
                if identifier.eq_ignore_ascii_case(brin) {
                    ours.insert(id);
                } else {
                    errors.at(
                        ORGS,
                        row.line,
                        "identifier",
                        format!("BRIN {identifier:?} is not this school ({brin})"),
                    );
                }
            }
        },
    );
    if errors.is_empty() && ours.is_empty() {
        errors.push(RosterError::new(
            ORGS,
            None,
            Some("identifier"),
            format!("no org of type school with identifier {brin}"),
        ));
    }
    (all, ours)
}

/// Birth dates by sourcedId, with the line they came from.
fn read_demographics(
    files: &Files,
    errors: &mut Errors,
) -> HashMap<String, (u64, Option<NaiveDate>)> {
    let mut dates = HashMap::new();
    let Some(bytes) = files.get(DEMOGRAPHICS) else {
        errors.push(RosterError::new(
            DEMOGRAPHICS,
            None,
            None,
            "file is missing (the manifest announces it)",
        ));
        return dates;
    };
    read_table(
        DEMOGRAPHICS,
        bytes,
        &["sourcedId", "birthDate"],
        errors,
        |_| {},
        |row, errors| {
            let Some(id) = check_value(errors, DEMOGRAPHICS, row, "sourcedId", true) else {
                return;
            };
            let value = row.get("birthDate");
            let date = if value.is_empty() {
                None
            } else {
                match parse_date(value) {
                    Some(date) => Some(date),
                    None => {
                        errors.at(
                            DEMOGRAPHICS,
                            row.line,
                            "birthDate",
                            format!("not a date (YYYY-MM-DD): {value}"),
                        );
                        return;
                    }
                }
            };
            if dates.insert(id.clone(), (row.line, date)).is_some() {
                errors.at(
                    DEMOGRAPHICS,
                    row.line,
                    "sourcedId",
                    format!("duplicate sourcedId {id}"),
                );
            }
        },
    );
    dates
}

/// A user's role and orgs from a OneRoster 1.2 `roles.csv`: the `primary` row's role (or the
/// first row's, when none is marked), and the orgs of all the user's rows.
fn read_roles(
    files: &Files,
    errors: &mut Errors,
) -> Option<HashMap<String, (String, Vec<String>)>> {
    let bytes = files.get(ROLES)?;
    let mut roles: HashMap<String, (String, Vec<String>, bool)> = HashMap::new();
    read_table(
        ROLES,
        bytes,
        &["userSourcedId", "roleType", "role", "orgSourcedId"],
        errors,
        |_| {},
        |row, errors| {
            let Some(user) = check_value(errors, ROLES, row, "userSourcedId", true) else {
                return;
            };
            if row.get("status").eq_ignore_ascii_case("tobedeleted") {
                return;
            }
            let primary = row.get("roleType").eq_ignore_ascii_case("primary");
            let entry = roles
                .entry(user)
                .or_insert_with(|| (row.get("role").to_string(), Vec::new(), primary));
            if primary && !entry.2 {
                entry.0 = row.get("role").to_string();
                entry.2 = true;
            } else if primary && entry.0 != row.get("role") {
                errors.at(
                    ROLES,
                    row.line,
                    "roleType",
                    "a second primary role for this user",
                );
            }
            entry.1.push(row.get("orgSourcedId").to_string());
        },
    );
    Some(
        roles
            .into_iter()
            .map(|(user, (role, orgs, _))| (user, (role, orgs)))
            .collect(),
    )
}

/// What one `users.csv` row is, before links are resolved.
enum UserRow {
    Person {
        person: Person,
        agents: Vec<String>,
    },
    Removal(Removal),
    /// A teacher, administrator, ...: counted, not kept.
    Other,
}

fn classify_role(role: &str) -> Result<Option<Kind>, ()> {
    match role.to_ascii_lowercase().as_str() {
        "student" => Ok(Some(Kind::Student)),
        "parent" | "guardian" | "relative" => Ok(Some(Kind::Parent)),
        // OneRoster 1.1 and 1.2 staff roles.
        "teacher"
        | "administrator"
        | "aide"
        | "proctor"
        | "counselor"
        | "principal"
        | "districtadministrator"
        | "siteadministrator"
        | "systemadministrator" => Ok(None),
        _ => Err(()),
    }
}

/// Parse and validate the roster for school `brin`.
pub fn parse_roster(
    files: &Files,
    brin: &str,
    options: &ImportOptions,
) -> Result<Roster, Vec<RosterError>> {
    let mut errors = Errors(Vec::new());
    let manifest = read_manifest(files, &mut errors);
    let (all_orgs, our_orgs) = read_orgs(files, brin, &mut errors);
    let Some(manifest) = manifest else {
        return Err(errors.0);
    };
    let Some(users) = files.get(USERS) else {
        errors.push(RosterError::new(USERS, None, None, "file is missing"));
        return Err(errors.0);
    };
    if !errors.is_empty() {
        // Without the school's orgs, every user row would be reported as well.
        return Err(errors.0);
    }
    let demographics = manifest
        .demographics
        .map(|mode| (mode, read_demographics(files, &mut errors)));
    let roles = read_roles(files, &mut errors);
    let users_required: &[&str] = if roles.is_some() {
        &["sourcedId", "username", "givenName", "familyName"]
    } else {
        &["sourcedId", "role", "username", "givenName", "familyName"]
    };

    let mode = manifest.mode;
    let total = users.len() as u64;
    let mut rows: Vec<UserRow> = Vec::new();
    // Every sourcedId in the file (all roles), to its row's index and kind.
    let mut by_source: HashMap<String, (usize, Option<Kind>, bool)> = HashMap::new();
    let mut usernames: HashMap<String, u64> = HashMap::new();
    let mut skipped = SkippedCounts::default();
    read_table(
        USERS,
        users,
        users_required,
        &mut errors,
        |done| options.report(Phase::Reading, done, total),
        |row, errors| {
            let line = row.line;
            let Some(source_id) = check_value(errors, USERS, row, "sourcedId", true) else {
                return;
            };
            let from_roles = roles.as_ref().and_then(|r| r.get(&source_id));
            let role = match (row.get("role"), from_roles) {
                ("", Some((role, _))) => role.as_str(),
                (role, _) => role,
            };
            let kind = match classify_role(role) {
                Ok(kind) => kind,
                Err(()) => {
                    errors.at(
                        USERS,
                        line,
                        "role",
                        format!(
                            "unknown role {role:?} (student, parent, guardian, relative, or a staff role)"
                        ),
                    );
                    return;
                }
            };
            let to_be_deleted = match row.get("status").to_ascii_lowercase().as_str() {
                "" | "active" => false,
                "tobedeleted" => true,
                other => {
                    errors.at(
                        USERS,
                        line,
                        "status",
                        format!("must be active or tobedeleted, not {other:?}"),
                    );
                    return;
                }
            };
            let modified = row.get("dateLastModified");
            if !modified.is_empty() && !valid_datetime(modified) {
                errors.at(
                    USERS,
                    line,
                    "dateLastModified",
                    format!("not an ISO 8601 date-time: {modified}"),
                );
            }
            let index = rows.len();
            if by_source
                .insert(source_id.clone(), (index, kind, to_be_deleted))
                .is_some()
            {
                errors.at(
                    USERS,
                    line,
                    "sourcedId",
                    format!("duplicate sourcedId {source_id}"),
                );
                return;
            }
            let Some(kind) = kind else {
                skipped.rows += 1;
                *skipped
                    .by_role
                    .entry(role.to_ascii_lowercase())
                    .or_default() += 1;
                rows.push(UserRow::Other);
                return;
            };
            if to_be_deleted {
                rows.push(UserRow::Removal(Removal {
                    line,
                    source_id,
                    kind,
                }));
                return;
            }
            let username = check_value(errors, USERS, row, "username", true);
            let given_name = check_value(errors, USERS, row, "givenName", true);
            let family_name = check_value(errors, USERS, row, "familyName", true);
            let tussenvoegsel = check_value(errors, USERS, row, "middleName", false);
            let login_enabled = match row.get("enabledUser").to_ascii_lowercase().as_str() {
                "" | "true" => true,
                "false" => false,
                other => {
                    errors.at(
                        USERS,
                        line,
                        "enabledUser",
                        format!("must be true or false, not {other:?}"),
                    );
                    true
                }
            };
            let mut orgs: Vec<&str> = split_ids(row.get("orgSourcedIds")).collect();
            if let Some((_, more)) = from_roles {
                orgs.extend(more.iter().map(String::as_str));
            }
            if row.columns.contains_key("orgsourcedids") || from_roles.is_some() {
                let mut belongs = false;
                for org in orgs {
                    if !all_orgs.contains(org) {
                        errors.at(
                            USERS,
                            line,
                            "orgSourcedIds",
                            format!("org {org} is not in orgs.csv"),
                        );
                    }
                    belongs |= our_orgs.contains(org);
                }
                if !belongs {
                    errors.at(
                        USERS,
                        line,
                        "orgSourcedIds",
                        format!("does not name the school {brin}"),
                    );
                }
            }
            let (Some(username), Some(given_name), Some(family_name)) =
                (username, given_name, family_name)
            else {
                rows.push(UserRow::Other);
                return;
            };
            if let Some(first) = usernames.insert(username.clone(), line) {
                errors.at(
                    USERS,
                    line,
                    "username",
                    format!("username also used on line {first}"),
                );
            }
            let birth_date = match &demographics {
                None => None,
                Some((dmode, dates)) => match (dates.get(&source_id), dmode) {
                    (Some((_, date)), _) => Some(*date),
                    (None, Mode::Bulk) => Some(None),
                    (None, Mode::Delta) => None,
                },
            };
            rows.push(UserRow::Person {
                person: Person {
                    line,
                    source_id,
                    kind,
                    username,
                    given_name,
                    tussenvoegsel,
                    family_name,
                    // Parents' birth dates are not needed for any rule: not kept.
                    birth_date: if kind == Kind::Student {
                        birth_date
                    } else {
                        None
                    },
                    login_enabled,
                },
                agents: split_ids(row.get("agentSourcedIds"))
                    .map(str::to_string)
                    .collect(),
            });
        },
    );

    // Links from either side, each pair once.
    let mut links: Vec<Link> = Vec::new();
    let mut seen: HashSet<(String, String)> = HashSet::new();
    let mut people = Vec::new();
    let mut removals = Vec::new();
    for row in rows {
        match row {
            UserRow::Other => {}
            UserRow::Removal(removal) => {
                // In a bulk file a removed row is simply not part of the school's list.
                if mode == Mode::Delta {
                    removals.push(removal);
                }
            }
            UserRow::Person { person, agents } => {
                for agent in agents {
                    let wanted = match person.kind {
                        Kind::Student => Kind::Parent,
                        Kind::Parent => Kind::Student,
                    };
                    let unresolved = match by_source.get(&agent) {
                        Some((_, Some(kind), deleted)) if *kind == wanted => {
                            if *deleted {
                                // A link to someone being removed is not made.
                                continue;
                            }
                            false
                        }
                        Some((_, kind, _)) => {
                            errors.at(
                                USERS,
                                person.line,
                                "agentSourcedIds",
                                format!(
                                    "agent {agent} is a {}, not a {}",
                                    kind.map_or("staff member", Kind::role),
                                    wanted.role()
                                ),
                            );
                            continue;
                        }
                        None if mode == Mode::Delta => true,
                        None => {
                            errors.at(
                                USERS,
                                person.line,
                                "agentSourcedIds",
                                format!("agent {agent} points to no user in users.csv"),
                            );
                            continue;
                        }
                    };
                    let (parent, student) = match person.kind {
                        Kind::Parent => (person.source_id.clone(), agent),
                        Kind::Student => (agent, person.source_id.clone()),
                    };
                    if seen.insert((parent.clone(), student.clone())) {
                        links.push(Link {
                            parent,
                            student,
                            line: person.line,
                            unresolved,
                        });
                    }
                }
                people.push(person);
            }
        }
    }

    // Demographics rows must belong to someone.
    let mut birth_date_changes = Vec::new();
    if let Some((_, dates)) = &demographics {
        let mut orphans: Vec<_> = dates
            .iter()
            .filter(|(id, _)| !by_source.contains_key(*id))
            .collect();
        orphans.sort_by_key(|(_, (line, _))| *line);
        for (id, (line, date)) in orphans {
            if mode == Mode::Delta {
                birth_date_changes.push(BirthDateChange {
                    line: *line,
                    source_id: id.clone(),
                    birth_date: *date,
                });
            } else {
                errors.at(
                    DEMOGRAPHICS,
                    *line,
                    "sourcedId",
                    format!("{id} points to no user in users.csv"),
                );
            }
        }
    }
    if !errors.is_empty() {
        errors
            .0
            .sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
        return Err(errors.0);
    }
    Ok(Roster {
        mode,
        people,
        removals,
        links,
        birth_date_changes,
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST_BULK: &str = "propertyName,value\nmanifest.version,1.0\noneroster.version,1.1\nfile.orgs,bulk\nfile.users,bulk\nfile.demographics,bulk\n";
    const ORGS_OK: &str = "sourcedId,status,dateLastModified,name,type,identifier,parentSourcedId\norg-1,,,Het Baken,school,56EF,\n";
    const USERS_HEAD: &str = "sourcedId,status,dateLastModified,enabledUser,orgSourcedIds,role,username,userIds,givenName,familyName,middleName,identifier,email,sms,phone,agentSourcedIds\n";

    fn files(users: &str, demographics: &str) -> Files {
        [
            (MANIFEST, MANIFEST_BULK.to_string()),
            (ORGS, ORGS_OK.to_string()),
            (USERS, format!("{USERS_HEAD}{users}")),
            (DEMOGRAPHICS, format!("sourcedId,birthDate\n{demographics}")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.into_bytes()))
        .collect()
    }

    fn parse(files: &Files) -> Result<Roster, Vec<RosterError>> {
        parse_roster(files, "56EF", &ImportOptions::default())
    }

    #[test]
    fn a_good_roster_links_parents_from_either_side() {
        let roster = parse(&files(
            "s1,,,true,org-1,student,300001,,Daan,Berg,van den,,,,,p1\n\
             s2,,,false,org-1,student,300002,,Fleur,Dijk,,,,,,\n\
             p1,,,true,org-1,guardian,m.vandenberg,,Mirjam,Berg,van den,,,,,s2\n\
             t1,,,true,org-1,teacher,docent,,Kees,Boer,,,,,,\n",
            "s1,2012-05-01\ns2,2009-01-31\n",
        ))
        .unwrap();
        assert_eq!(roster.people.len(), 3);
        assert_eq!(roster.links.len(), 2);
        assert_eq!(roster.skipped.rows, 1);
        assert_eq!(roster.people[0].tussenvoegsel.as_deref(), Some("van den"));
        assert!(!roster.people[1].login_enabled);
        assert_eq!(
            roster.people[1].birth_date,
            Some(NaiveDate::from_ymd_opt(2009, 1, 31))
        );
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let errors = parse(&files(
            "s1,,,true,org-1,student,300001,,Daan,Berg,,,,,,p9\n\
             s1,,,true,org-1,student,300002,,Fleur,Dijk,,,,,,\n\
             s3,,,true,org-1,wizard,300003,,Fleur,Dijk,,,,,,\n",
            "s1,2012-13-01\n",
        ))
        .unwrap_err();
        assert!(errors.contains(&RosterError::new(
            DEMOGRAPHICS,
            Some(2),
            Some("birthDate"),
            "not a date (YYYY-MM-DD): 2012-13-01"
        )));
        assert!(errors
            .iter()
            .any(|e| e.line == Some(3) && e.column.as_deref() == Some("sourcedId")));
        assert!(errors
            .iter()
            .any(|e| e.line == Some(4) && e.column.as_deref() == Some("role")));
        assert!(errors
            .iter()
            .any(|e| e.line == Some(2) && e.column.as_deref() == Some("agentSourcedIds")));
    }

    #[test]
    fn bom_header_order_and_unknown_columns_are_fine() {
        let mut f = files("", "");
        f.insert(
            USERS.into(),
            "\u{FEFF}familyName,givenName,username,role,sourcedId,favouriteColour\nBerg,Daan,300001,student,s1,blue\n"
                .as_bytes()
                .to_vec(),
        );
        let roster = parse(&f).unwrap();
        assert_eq!(roster.people[0].username, "300001");
        assert_eq!(roster.people[0].birth_date, Some(None));
    }

    #[test]
    fn non_utf8_and_long_rows_are_refused_with_their_line() {
        let mut f = files("", "");
        let mut users = format!("{USERS_HEAD}s1,,,true,org-1,student,300001,,Da").into_bytes();
        users.extend_from_slice(b"\xff\xfe");
        users.extend_from_slice(b"n,Berg,,,,,,\n");
        users.extend_from_slice(
            format!(
                "s2,,,true,org-1,student,300002,,{},Berg,,,,,,\n",
                "x".repeat(1_000_000)
            )
            .as_bytes(),
        );
        f.insert(USERS.into(), users);
        let errors = parse(&f).unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(errors[0].line, Some(2));
        assert_eq!(errors[0].column.as_deref(), Some("givenName"));
        assert!(errors[0].message.contains("UTF-8"));
        assert_eq!(errors[1].line, Some(3));
        assert_eq!(errors[1].column.as_deref(), Some("givenName"));
    }

    /// OneRoster 1.2: `role` and the org live in `roles.csv`.
    #[test]
    fn a_oneroster_1_2_export_takes_roles_from_roles_csv() {
        let mut f = files("", "s1,2012-05-01\n");
        f.insert(
            USERS.into(),
            "sourcedId,status,dateLastModified,enabledUser,username,userIds,givenName,familyName,middleName,identifier,email,sms,phone,agentSourcedIds,grades,password,userMasterIdentifier,resourceSourcedIds,preferredGivenName,preferredMiddleName,preferredFamilyName,primaryOrgSourcedId,pronouns\n\
             s1,,,true,300001,,Daan,Berg,van den,,,,,p1,,,,,,,,org-1,\n\
             p1,,,true,m.vandenberg,,Mirjam,Berg,van den,,,,,s1,,,,,,,,org-1,\n\
             t1,,,true,docent,,Kees,Boer,,,,,,,,,,,,,,org-1,\n"
                .as_bytes()
                .to_vec(),
        );
        f.insert(
            ROLES.into(),
            "sourcedId,status,dateLastModified,userSourcedId,roleType,role,beginDate,endDate,orgSourcedId,userProfileSourcedId\n\
             r1,,,s1,primary,student,,,org-1,\n\
             r2,,,p1,primary,guardian,,,org-1,\n\
             r3,,,t1,primary,teacher,,,org-1,\n"
                .as_bytes()
                .to_vec(),
        );
        let roster = parse(&f).unwrap();
        assert_eq!(roster.people.len(), 2);
        assert_eq!(roster.people[0].kind, Kind::Student);
        assert_eq!(roster.people[1].kind, Kind::Parent);
        assert_eq!(roster.links.len(), 1);
        assert_eq!(roster.skipped.rows, 1);
    }

    /// A zip whose headers claim a tiny file that really inflates far past the cap.
    #[test]
    fn a_zip_that_lies_about_its_size_stops_at_the_cap() {
        use std::io::Write;
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        writer.start_file("users.csv", options).unwrap();
        writer.write_all(&vec![b' '; 4 * 1024 * 1024]).unwrap();
        let mut bytes = writer.finish().unwrap().into_inner();
        // Local header: uncompressed size at offset 22; central directory entry: at 24.
        let mut patched = 0;
        for i in 0..bytes.len().saturating_sub(30) {
            let offset = match &bytes[i..i + 4] {
                [0x50, 0x4b, 0x03, 0x04] => 22,
                [0x50, 0x4b, 0x01, 0x02] => 24,
                _ => continue,
            };
            bytes[i + offset..i + offset + 4].copy_from_slice(&100u32.to_le_bytes());
            patched += 1;
        }
        assert_eq!(patched, 2);
        let errors = read_zip(&bytes, 1024 * 1024).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].file, "users.csv");
        assert!(
            errors[0].message.contains("larger") || errors[0].message.contains("unpacked"),
            "{errors:?}"
        );
    }

    #[test]
    fn unsafe_zip_names_are_refused() {
        for name in [
            "../users.csv",
            "/etc/users.csv",
            "a\\..\\users.csv",
            "c:users.csv",
        ] {
            assert!(!safe_entry_name(name), "{name}");
        }
        assert!(safe_entry_name("56EF/users.csv"));
    }
}
