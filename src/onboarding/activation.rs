//! Activation codes: the school's letters that let imported people (who have no password) set
//! one, and that double as the school's password reset. Issued through the admin API or the
//! CLI, spent on the `/activate` page.
//!
//! A code is 16 characters of Crockford's base32 (no I, L, O or U, so nothing looks like
//! something else) in four groups of four: 80 random bits. Only a hash is stored.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use serde::Serialize;
use serde_json::json;

use super::{begin, commit_audited, Actor, Change, OnboardingError};
use crate::crypto::password::hash_password;
use crate::crypto::tokens::{constant_time_eq, hash_token};
use crate::domain::account::Role;
use crate::storage::accounts::Account;
use crate::storage::activation as db;
use crate::App;

/// Crockford's base32 alphabet: digits and capitals without I, L, O and U. 32 symbols, so
/// each character carries exactly 5 bits.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// 16 characters × 5 bits = 80 bits.
const CODE_LENGTH: usize = 16;

/// Who gets a letter.
#[derive(Debug, Clone)]
pub enum Recipients {
    /// These people of the school, by username.
    Usernames(Vec<String>),
    /// Every student, or every parent, of the school whose login the SIS has not disabled.
    Role(Role),
}

/// One letter's content as the API returns it. The code is shown here once and never again.
#[derive(Clone, Serialize, utoipa::ToSchema)]
pub struct IssuedCode {
    pub username: String,
    /// Four groups of four characters, e.g. `7KQ2-MX9D-4HRT-BC3W`.
    pub code: String,
    pub expires_at: DateTime<Utc>,
}

// The code is a secret: never in Debug output, and so never in a log.
impl std::fmt::Debug for IssuedCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCode")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A code with the name the letter is addressed to.
pub struct Letter {
    pub issued: IssuedCode,
    pub given_name: String,
    /// The family name as written after the given name ("de Vries"), tussenvoegsel included.
    pub family_name: String,
}

/// A fresh code from the OS CSPRNG. Each byte's low five bits pick a symbol: 256 is a
/// multiple of 32, so every symbol is equally likely.
pub fn new_code() -> String {
    let mut bytes = [0u8; CODE_LENGTH];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let mut code = String::with_capacity(CODE_LENGTH + 3);
    for (i, byte) in bytes.iter().enumerate() {
        if i > 0 && i % 4 == 0 {
            code.push('-');
        }
        code.push(char::from(ALPHABET[usize::from(byte & 31)]));
    }
    code
}

/// The code as typed, in the form that is hashed: capitals, without dashes or spaces, and
/// with Crockford's look-alikes read as what they look like (O as 0, I and L as 1).
pub fn normalise_code(typed: &str) -> String {
    typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        })
        .collect()
}

/// The stored value: SHA-256 over the account id and the normalised code. A fast hash is
/// enough here, unlike for passwords: the code has 80 random bits and lives at most a few
/// weeks, so even with a stolen database trying codes costs ~2^79 hashes per account, and
/// the account id in the input means one guess can never be tried against every account at
/// once. Online guessing is throttled on the page.
fn code_hash(account_id: &str, normalised: &str) -> String {
    hash_token(&format!("activation\0{account_id}\0{normalised}"))
}

/// Issue a new code to each recipient, in one transaction: an earlier code, the password and
/// every browser session of the person end (this is also the school's password reset).
/// Grants and partner tokens stay: they are consent the person gave, not a login, and the
/// person keeps control of them on "Mijn apps". Unknown usernames: 404 naming all of them,
/// and nothing is issued.
pub async fn issue_codes(
    app: &App,
    actor: &Actor,
    brin: &str,
    who: Recipients,
) -> Result<Vec<IssuedCode>, OnboardingError> {
    Ok(issue_letters(app, actor, brin, who)
        .await?
        .into_iter()
        .map(|letter| letter.issued)
        .collect())
}

/// As [`issue_codes`], with the names the letters are addressed to.
pub async fn issue_letters(
    app: &App,
    actor: &Actor,
    brin: &str,
    who: Recipients,
) -> Result<Vec<Letter>, OnboardingError> {
    actor.require_school(brin)?;
    if app.store.get_school(brin).await?.is_none() {
        return Err(OnboardingError::NotFound(format!("unknown school {brin}")));
    }
    let now = app.now();
    let mut tx = begin(&app.store).await?;
    let accounts = match who {
        Recipients::Usernames(usernames) => named_accounts(&mut tx, brin, usernames).await?,
        Recipients::Role(Role::Supervisor) => {
            return Err(OnboardingError::invalid(
                "role",
                "activation codes are for students and parents (student or parent)",
            ));
        }
        Recipients::Role(role) => {
            db::enabled_accounts_with_role(&mut tx, brin, role.as_str(), now).await?
        }
    };
    let expires_at = now + Duration::days(app.config.activation_code_ttl_days);
    let mut letters = Vec::with_capacity(accounts.len());
    for account in accounts {
        let code = new_code();
        let hash = code_hash(&account.id, &normalise_code(&code));
        db::replace_code(&mut tx, &account.id, &hash, now, expires_at).await?;
        db::clear_password(&mut tx, &account.id).await?;
        db::end_sessions_of(&mut tx, &account.id).await?;
        let family_name = match account.tussenvoegsel.as_deref().filter(|t| !t.is_empty()) {
            Some(t) => format!("{t} {}", account.family_name),
            None => account.family_name.clone(),
        };
        letters.push(Letter {
            issued: IssuedCode {
                username: account.username,
                code,
                expires_at,
            },
            given_name: account.given_name,
            family_name,
        });
    }
    // Who got a new letter is in the audit log; the codes never are.
    let changes = if letters.is_empty() {
        Vec::new()
    } else {
        let usernames: Vec<&str> = letters.iter().map(|l| l.issued.username.as_str()).collect();
        vec![Change::new(
            "activation.issue",
            format!("school:{brin}/activation-codes"),
            json!({ "count": letters.len(), "usernames": usernames }),
        )]
    };
    commit_audited(app, tx, actor, &changes).await?;
    Ok(letters)
}

/// The named accounts, or an error naming every username the school does not have (or that
/// cannot get a letter) before anything is issued.
async fn named_accounts(
    tx: &mut super::Tx,
    brin: &str,
    usernames: Vec<String>,
) -> Result<Vec<Account>, OnboardingError> {
    let mut wanted: Vec<String> = Vec::new();
    for username in usernames {
        let username = username.trim().to_string();
        if username.is_empty() {
            return Err(OnboardingError::invalid("usernames", "a username is empty"));
        }
        if !wanted.contains(&username) {
            wanted.push(username);
        }
    }
    if wanted.is_empty() {
        return Err(OnboardingError::invalid(
            "usernames",
            "give at least one username",
        ));
    }
    let mut found = Vec::with_capacity(wanted.len());
    let mut unknown = Vec::new();
    for username in &wanted {
        match db::account_by_username(tx, brin, username).await? {
            Some(account) => found.push(account),
            None => unknown.push(username.as_str()),
        }
    }
    if !unknown.is_empty() {
        return Err(OnboardingError::NotFound(format!(
            "school {brin} has no account with username {}; no codes were issued",
            unknown.join(", ")
        )));
    }
    let supervisors: Vec<&str> = found
        .iter()
        .filter(|a| a.role() == Some(Role::Supervisor))
        .map(|a| a.username.as_str())
        .collect();
    if !supervisors.is_empty() {
        return Err(OnboardingError::invalid(
            "usernames",
            format!(
                "activation codes are for students and parents, not supervisors: {}; no codes were issued",
                supervisors.join(", ")
            ),
        ));
    }
    let disabled: Vec<&str> = found
        .iter()
        .filter(|a| a.login_enabled == 0)
        .map(|a| a.username.as_str())
        .collect();
    if !disabled.is_empty() {
        return Err(OnboardingError::invalid(
            "usernames",
            format!(
                "the school's SIS has disabled login for {}; no codes were issued",
                disabled.join(", ")
            ),
        ));
    }
    Ok(found)
}

/// Why an activation did not go through. Only a correct code learns that it expired or was
/// used; every other failure is one and the same [`ActivationError::WrongCode`].
#[derive(Debug, thiserror::Error)]
pub enum ActivationError {
    /// Unknown school or username, no code, another code, or a disabled login.
    #[error("wrong code")]
    WrongCode,
    #[error("code expired")]
    Expired,
    #[error("code already used")]
    AlreadyUsed,
    #[error(transparent)]
    Failed(#[from] OnboardingError),
}

impl From<sqlx::Error> for ActivationError {
    fn from(e: sqlx::Error) -> Self {
        ActivationError::Failed(OnboardingError::Database(e))
    }
}

/// Spend the code from the letter of `username` at `brin` and set `new_password` (already
/// checked by the caller against the password rules). Returns the account id, to log in.
pub async fn activate(
    app: &App,
    brin: &str,
    username: &str,
    typed_code: &str,
    new_password: String,
) -> Result<String, ActivationError> {
    let now = app.now();
    let mut conn = app.store.pool().acquire().await?;
    let account = if brin.is_empty() || username.is_empty() {
        None
    } else {
        db::account_by_username(&mut conn, brin, username).await?
    };
    // The same work whether or not the account exists: hash, look up, compare.
    let account_id = account.as_ref().map(|a| a.id.as_str()).unwrap_or_default();
    let hash = code_hash(account_id, &normalise_code(typed_code));
    // No account: the look-up with an id no row has, so the answer takes as long.
    let stored = db::code_of(&mut conn, account_id).await?;
    drop(conn);
    let matches = stored
        .as_ref()
        .is_some_and(|s| constant_time_eq(&s.code_hash, &hash));
    let (Some(account), Some(stored), true) = (account, stored, matches) else {
        return Err(ActivationError::WrongCode);
    };
    if account.login_enabled == 0 || account.role() == Some(Role::Supervisor) {
        return Err(ActivationError::WrongCode);
    }
    if stored.used_at.is_some() {
        return Err(ActivationError::AlreadyUsed);
    }
    if stored.expires_at <= crate::storage::ts(now) {
        return Err(ActivationError::Expired);
    }
    // argon2 runs before the transaction, so no connection waits on it.
    let password_hash = hash_password(new_password)
        .await
        .map_err(OnboardingError::Internal)?;
    let mut tx = begin(&app.store).await?;
    // Spent only if it is still the same unused, unexpired code: of two tabs submitting the
    // same letter, or a letter replaced meanwhile, exactly one activation wins or none.
    if !db::use_code(&mut tx, &account.id, &hash, now).await? {
        return Err(ActivationError::AlreadyUsed);
    }
    db::set_password(&mut tx, &account.id, &password_hash).await?;
    // Audited in the same transaction, but without `commit_audited`'s reading of the change
    // log: a password is not a policy fact. (The account row changes, so the log names it
    // and each instance evicts that one account within a second: a start-of-year wave of
    // activations costs one eviction per person, never a flush.)
    crate::storage::admin::insert_audit(
        &mut tx,
        &format!("account:{}", account.id),
        "account.activate",
        &format!("school:{brin}/account:{}", account.username),
        None,
        Some(&json!({ "issued_at": stored.issued_at })),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(account.id)
}

/// `poortwachter activation-codes --school BRIN [--role student|parent] [--username U …]
/// [--out codes.csv] [--json]`: issue the codes as the console and write the letters' data
/// as CSV (`school,username,given_name,family_name,code,expires_at`) or JSON, to `out` or
/// standard output. Refusals are printed and give a non-zero exit code.
pub async fn run_cli(
    app: &App,
    brin: &str,
    role: Option<Role>,
    usernames: Vec<String>,
    out: Option<PathBuf>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let who = match (role, usernames.is_empty()) {
        (Some(role), true) => Recipients::Role(role),
        (None, false) => Recipients::Usernames(usernames),
        (None, true) => {
            eprintln!("poortwachter: give --role student|parent or one or more --username");
            return Ok(ExitCode::from(2));
        }
        (Some(_), false) => {
            eprintln!("poortwachter: give --role or --username, not both");
            return Ok(ExitCode::from(2));
        }
    };
    // Open the output before issuing: once issued, the old passwords are gone, so the codes
    // must not be lost to a path that cannot be written. An existing file is emptied only
    // once the codes are there to replace its content.
    let created = out.as_ref().filter(|path| !path.exists()).cloned();
    let file = match &out {
        Some(path) => Some(open_private_file(path)?),
        None => None,
    };
    let letters = match issue_letters(app, &Actor::console(), brin, who).await {
        Ok(letters) => letters,
        Err(e) => {
            if let Some(path) = created {
                let _ = std::fs::remove_file(path);
            }
            if let OnboardingError::Database(_) | OnboardingError::Internal(_) = e {
                return Err(anyhow::Error::new(e).context("issuing activation codes failed"));
            }
            eprintln!("poortwachter: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let mut sink: Box<dyn Write> = match file {
        Some(file) => {
            file.set_len(0)?;
            Box::new(file)
        }
        None => Box::new(std::io::stdout().lock()),
    };
    if json {
        let issued: Vec<&IssuedCode> = letters.iter().map(|l| &l.issued).collect();
        serde_json::to_writer_pretty(&mut sink, &issued)?;
        writeln!(sink)?;
    } else {
        let mut csv = csv::Writer::from_writer(&mut sink);
        csv.write_record([
            "school",
            "username",
            "given_name",
            "family_name",
            "code",
            "expires_at",
        ])?;
        for letter in &letters {
            csv.write_record([
                brin,
                &letter.issued.username,
                &letter.given_name,
                &letter.family_name,
                &letter.issued.code,
                &letter.issued.expires_at.to_rfc3339(),
            ])?;
        }
        csv.flush()?;
    }
    sink.flush()?;
    eprintln!(
        "{} activation code(s) issued for {brin}; earlier codes, passwords and sessions of these people no longer work",
        letters.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// The codes are secrets until the letters are printed: readable by the owner only.
fn open_private_file(path: &std::path::Path) -> anyhow::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
        .open(path)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_four_groups_of_four_from_the_alphabet() {
        for _ in 0..200 {
            let code = new_code();
            let groups: Vec<&str> = code.split('-').collect();
            assert_eq!(groups.len(), 4, "{code}");
            for group in groups {
                assert_eq!(group.len(), 4, "{code}");
                assert!(group.bytes().all(|b| ALPHABET.contains(&b)), "{code}");
            }
        }
        assert_ne!(new_code(), new_code());
        // 32 symbols are 5 bits each: 16 of them are 80 bits.
        assert_eq!(ALPHABET.len(), 32);
        assert_eq!(5 * CODE_LENGTH, 80);
        for look_alike in [b'I', b'L', b'O', b'U'] {
            assert!(!ALPHABET.contains(&look_alike));
        }
    }

    #[test]
    fn typed_codes_are_normalised() {
        assert_eq!(normalise_code("7kq2-mx9d 4hrt-bc3w"), "7KQ2MX9D4HRTBC3W");
        assert_eq!(normalise_code("oIl0"), "0110");
        assert_eq!(normalise_code(&new_code()).len(), CODE_LENGTH);
    }

    #[test]
    fn the_hash_is_bound_to_the_account() {
        assert_ne!(code_hash("a", "X"), code_hash("b", "X"));
        assert!(!code_hash("a", "7KQ2MX9D4HRTBC3W").contains("7KQ2"));
    }
}
