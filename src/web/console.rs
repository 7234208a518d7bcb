//! The consoles' login: password, then a TOTP second factor (RFC 6238), enrolled at the first
//! login with a QR code drawn on the server and recovery codes shown once. School supervisors
//! reach `/school`, platform operators `/platform`.
//!
//! Console sessions are kept apart from the students' and parents' browser sessions: their own
//! cookie (`SameSite=Strict`: a console is never entered from another site's link with its
//! session), their own table, a short absolute lifetime, and a stage. After the password the
//! session is only good for the second factor; only a correct code makes it a console session,
//! with a new secret (session fixation) and a new CSRF token.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use chrono::Duration;
use serde::Deserialize;

use super::error::PageError;
use super::{no_store, throttle};
use crate::cache::limiter::{self, Limit};
use crate::crypto::password::{hash_password, try_verify_password};
use crate::crypto::tokens::{constant_time_eq, hash_token, random_token};
use crate::crypto::totp;
use crate::domain::account::Role;
use crate::serve::ClientIp;
use crate::storage::accounts::{Account, School};
use crate::storage::console::{ConsoleSession, Operator, STAGE_COMPLETE, STAGE_SECOND_FACTOR};
use crate::AppState;

pub const CONSOLE_COOKIE: &str = "pw_console";
/// The login form's CSRF token before there is a session: a double-submit cookie (OWASP), so
/// an anonymous visit to the login page stores nothing.
const LOGIN_CSRF_COOKIE: &str = "pw_console_csrf";
/// Between the password and the second factor.
const PENDING_TTL_SECS: i64 = 10 * 60;
/// A console session ends after a working day, however active it is.
pub const SESSION_TTL_SECS: i64 = 8 * 3600;
/// Recovery codes handed out at enrolment.
const RECOVERY_CODES: usize = 10;

/// Wrong second-factor codes per console user: six digits allow no more than a handful of
/// guesses per window (RFC 6238 §5.2 asks for throttling).
const SECOND_FACTOR: Limit = Limit {
    name: "console-second-factor",
    max: 5,
    window: std::time::Duration::from_secs(15 * 60),
};

/// Who is at the console.
#[derive(Clone)]
pub enum ConsoleUser {
    Supervisor(Account),
    Operator(Operator),
}

impl ConsoleUser {
    pub fn subject(&self) -> String {
        match self {
            ConsoleUser::Supervisor(account) => format!("account:{}", account.id),
            ConsoleUser::Operator(operator) => format!("operator:{}", operator.id),
        }
    }

    /// The console this user works in.
    fn home(&self) -> &'static str {
        match self {
            ConsoleUser::Supervisor(_) => "/school",
            ConsoleUser::Operator(_) => "/platform",
        }
    }

    /// How the authenticator app labels the secret.
    fn label(&self) -> String {
        match self {
            ConsoleUser::Supervisor(account) => {
                format!("{} {}", account.school_brin, account.username)
            }
            ConsoleUser::Operator(operator) => format!("platform {}", operator.username),
        }
    }

    /// The audit log's actor: who, in the same form as the other actors.
    pub fn actor_id(&self) -> String {
        match self {
            ConsoleUser::Supervisor(account) => {
                format!("supervisor:{}/{}", account.school_brin, account.username)
            }
            ConsoleUser::Operator(operator) => format!("operator:{}", operator.username),
        }
    }
}

/// The console user a subject names, if it still exists and still has its role.
async fn user_of(state: &AppState, subject: &str) -> Result<Option<ConsoleUser>, PageError> {
    if let Some(id) = subject.strip_prefix("account:") {
        let account = state.store.get_account(id).await?;
        return Ok(account
            .filter(|a| a.role() == Some(Role::Supervisor) && a.may_log_in())
            .map(ConsoleUser::Supervisor));
    }
    if let Some(id) = subject.strip_prefix("operator:") {
        let operator = state.store.get_operator(id).await?;
        return Ok(operator.map(ConsoleUser::Operator));
    }
    Ok(None)
}

async fn current_session(
    state: &AppState,
    jar: &CookieJar,
) -> Result<Option<ConsoleSession>, PageError> {
    let Some(cookie) = jar.get(CONSOLE_COOKIE) else {
        return Ok(None);
    };
    Ok(state
        .store
        .find_console_session(&hash_token(cookie.value()), state.now())
        .await?)
}

fn session_cookie(state: &AppState, secret: String) -> Cookie<'static> {
    Cookie::build((CONSOLE_COOKIE, secret))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.config.secure_cookies())
        .build()
}

/// A new console session for `subject` at `stage`; returns the cookie jar that carries it.
async fn start_session(
    state: &AppState,
    jar: CookieJar,
    subject: &str,
    stage: &str,
) -> Result<CookieJar, PageError> {
    let now = state.now();
    let secret = random_token();
    let ttl = if stage == STAGE_COMPLETE {
        SESSION_TTL_SECS
    } else {
        PENDING_TTL_SECS
    };
    state
        .store
        .create_console_session(
            &random_token(),
            &hash_token(&secret),
            &random_token(),
            subject,
            stage,
            now,
            now + Duration::seconds(ttl),
        )
        .await?;
    Ok(jar.add(session_cookie(state, secret)))
}

/// A logged-in console user: the session (for its CSRF token) and who it is.
pub struct Console {
    pub session: ConsoleSession,
    pub user: ConsoleUser,
}

impl Console {
    /// Refuse a form whose CSRF token is missing or wrong (compared in constant time).
    pub fn check_csrf(&self, submitted: Option<&str>) -> Result<(), PageError> {
        match submitted {
            Some(token) if constant_time_eq(token, &self.session.csrf_token) => Ok(()),
            _ => Err(PageError::csrf()),
        }
    }
}

/// Why a console page was refused: not logged in (to the login page) or the wrong console.
pub enum ConsoleRejection {
    Login,
    Page(PageError),
}

impl IntoResponse for ConsoleRejection {
    fn into_response(self) -> Response {
        match self {
            ConsoleRejection::Login => Redirect::to("/console/login").into_response(),
            ConsoleRejection::Page(e) => e.into_response(),
        }
    }
}

impl From<PageError> for ConsoleRejection {
    fn from(e: PageError) -> Self {
        ConsoleRejection::Page(e)
    }
}

impl FromRequestParts<AppState> for Console {
    type Rejection = ConsoleRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let jar = CookieJar::from_headers(&parts.headers);
        let Some(session) = current_session(state, &jar).await? else {
            return Err(ConsoleRejection::Login);
        };
        if session.stage != STAGE_COMPLETE {
            return Err(ConsoleRejection::Login);
        }
        let Some(user) = user_of(state, &session.subject).await? else {
            state.store.delete_console_session(&session.id).await.ok();
            return Err(ConsoleRejection::Login);
        };
        Ok(Console { session, user })
    }
}

/// A school supervisor at the console, limited to their own school.
pub struct Supervisor {
    pub console: Console,
    pub account: Account,
}

impl Supervisor {
    pub fn school(&self) -> &str {
        &self.account.school_brin
    }
}

impl FromRequestParts<AppState> for Supervisor {
    type Rejection = ConsoleRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let console = Console::from_request_parts(parts, state).await?;
        match console.user.clone() {
            ConsoleUser::Supervisor(account) => Ok(Supervisor { console, account }),
            ConsoleUser::Operator(_) => Err(ConsoleRejection::Page(wrong_console())),
        }
    }
}

/// A platform operator at the console.
pub struct PlatformOperator {
    pub console: Console,
    pub operator: Operator,
}

impl FromRequestParts<AppState> for PlatformOperator {
    type Rejection = ConsoleRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let console = Console::from_request_parts(parts, state).await?;
        match console.user.clone() {
            ConsoleUser::Operator(operator) => Ok(PlatformOperator { console, operator }),
            ConsoleUser::Supervisor(_) => Err(ConsoleRejection::Page(wrong_console())),
        }
    }
}

fn wrong_console() -> PageError {
    PageError::new(
        axum::http::StatusCode::FORBIDDEN,
        ("Niet toegestaan", "Not allowed"),
        (
            "Deze pagina hoort bij een andere beheeromgeving dan die van jouw account.",
            "This page belongs to another console than your account's.",
        ),
    )
}

/// Check a form that carries nothing but its CSRF token (a button).
pub fn accept_console_button(console: &Console, body: &[u8]) -> Result<(), PageError> {
    #[derive(Deserialize)]
    struct Button {}
    accept_console_form::<Button>(console, body).map(|_| ())
}

/// Parse a form and check its CSRF token against the console session.
pub fn accept_console_form<T: serde::de::DeserializeOwned>(
    console: &Console,
    body: &[u8],
) -> Result<T, PageError> {
    #[derive(Deserialize)]
    struct Csrf {
        csrf: Option<String>,
    }
    let Csrf { csrf } = serde_urlencoded::from_bytes(body).map_err(|_| unreadable())?;
    console.check_csrf(csrf.as_deref())?;
    serde_urlencoded::from_bytes(body).map_err(|_| unreadable())
}

pub fn unreadable() -> PageError {
    PageError::bad_request((
        "Het formulier kon niet worden gelezen.",
        "The form could not be read.",
    ))
}

// ---------------------------------------------------------------------------------------
// Pages

#[derive(Template)]
#[template(path = "console_login.html")]
struct LoginPage<'a> {
    csrf: &'a str,
    schools: &'a [School],
    school: &'a str,
    username: &'a str,
    message: Option<&'a str>,
    notice: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "console_second_factor.html")]
struct SecondFactorPage<'a> {
    csrf: &'a str,
    message: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "console_enroll.html")]
struct EnrollPage<'a> {
    csrf: &'a str,
    qr_svg: &'a str,
    secret: &'a str,
    message: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "console_recovery.html")]
struct RecoveryPage<'a> {
    codes: &'a [String],
    next: &'a str,
}

#[derive(Template)]
#[template(path = "console_activate.html")]
struct ActivatePage<'a> {
    csrf: &'a str,
    username: &'a str,
    message: Option<&'a str>,
}

fn page(template: impl Template) -> Result<Response, PageError> {
    let html = template.render().map_err(PageError::internal)?;
    Ok((no_store(), Html(html)).into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct LoginQuery {
    activated: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct LoginForm {
    csrf: Option<String>,
    school: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

/// The double-submit token of this browser's login form, or a new one.
fn login_csrf(state: &AppState, jar: CookieJar) -> (CookieJar, String) {
    if let Some(token) = jar.get(LOGIN_CSRF_COOKIE).map(|c| c.value().to_string()) {
        if token.len() >= 32 {
            return (jar, token);
        }
    }
    let token = random_token();
    let cookie = Cookie::build((LOGIN_CSRF_COOKIE, token.clone()))
        .path("/console")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.config.secure_cookies())
        .build();
    (jar.add(cookie), token)
}

/// `GET /console/login`
pub async fn view_login_get(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(query): Query<LoginQuery>,
) -> Result<Response, PageError> {
    if let Some(session) = current_session(&state, &jar).await? {
        if session.stage == STAGE_COMPLETE {
            if let Some(user) = user_of(&state, &session.subject).await? {
                return Ok(Redirect::to(user.home()).into_response());
            }
        }
    }
    let (jar, csrf) = login_csrf(&state, jar);
    let schools = state.store.list_schools().await?;
    let notice = query
        .activated
        .is_some()
        .then_some("Je account is geactiveerd. Log in met je nieuwe wachtwoord.");
    let page = page(LoginPage {
        csrf: &csrf,
        schools: &schools,
        school: "",
        username: "",
        message: None,
        notice,
    })?;
    Ok((jar, page).into_response())
}

const LOGIN_FAILED: &str =
    "Deze combinatie van school, gebruikersnaam en wachtwoord kennen we niet.";
const LOGIN_BLOCKED: &str =
    "Te veel mislukte pogingen. Wacht een kwartier en probeer het dan opnieuw.";

/// Find the console user a login names. An empty school means a platform operator, or a
/// supervisor whose username is unique across schools.
async fn find_login(
    state: &AppState,
    school: &str,
    username: &str,
) -> Result<Option<(ConsoleUser, Option<String>)>, PageError> {
    if username.is_empty() {
        return Ok(None);
    }
    let supervisor = |a: Account| {
        (a.role() == Some(Role::Supervisor) && a.may_log_in()).then(|| {
            let hash = Some(a.password_hash.clone());
            (ConsoleUser::Supervisor(a), hash)
        })
    };
    if !school.is_empty() {
        let account = state.store.find_account_by_login(school, username).await?;
        return Ok(account.and_then(supervisor));
    }
    if let Some(operator) = state.store.find_operator(username).await? {
        let hash = operator.password_hash.clone();
        return Ok(Some((ConsoleUser::Operator(operator), hash)));
    }
    let mut found = state.store.find_supervisors_named(username).await?;
    Ok(match found.len() {
        1 => found.pop().and_then(supervisor),
        _ => None,
    })
}

/// `POST /console/login`: the password; on to the second factor.
pub async fn view_login_post(
    State(state): State<AppState>,
    ip: ClientIp,
    jar: CookieJar,
    body: Bytes,
) -> Result<Response, PageError> {
    let form: LoginForm = serde_urlencoded::from_bytes(&body).map_err(|_| unreadable())?;
    let expected = jar.get(LOGIN_CSRF_COOKIE).map(|c| c.value().to_string());
    match (form.csrf.as_deref(), expected.as_deref()) {
        (Some(sent), Some(expected)) if constant_time_eq(sent, expected) => {}
        _ => return Err(PageError::csrf()),
    }
    let school = form.school.unwrap_or_default();
    let username = form.username.unwrap_or_default().trim().to_string();
    let password = form.password.unwrap_or_default();
    let (jar, csrf) = login_csrf(&state, jar);
    let schools = state.store.list_schools().await?;
    let again = |message: &'static str| {
        page(LoginPage {
            csrf: &csrf,
            schools: &schools,
            school: &school,
            username: &username,
            message: Some(message),
            notice: None,
        })
    };
    // Counted before anything is verified, in lanes of their own (`console` prefix).
    let lane = format!("console:{school}");
    let Some(attempt) = throttle::admit(&state, &jar, ip, &lane, &username).await else {
        tracing::info!(outcome = "throttled", "console login attempt");
        return Ok((jar, again(LOGIN_BLOCKED)?).into_response());
    };
    let found = find_login(&state, &school, &username).await?;
    let hash = found.as_ref().and_then(|(_, hash)| hash.clone());
    let Ok(verified) = try_verify_password(password, hash).await else {
        throttle::unchecked(&state, attempt).await;
        return Err(PageError::busy());
    };
    let user = match found {
        Some((user, _)) if verified => user,
        _ => {
            tracing::info!(outcome = "failed", "console login attempt");
            throttle::failed(&state, &attempt, None).await;
            return Ok((jar, again(LOGIN_FAILED)?).into_response());
        }
    };
    let jar = throttle::succeeded(&state, attempt, jar).await;
    let subject = user.subject();
    tracing::info!(outcome = "password", subject = %subject, "console login");
    let jar = start_session(&state, jar, &subject, STAGE_SECOND_FACTOR).await?;
    let enrolled = state
        .store
        .second_factor(&subject)
        .await?
        .is_some_and(|f| f.enrolled_at.is_some());
    let next = if enrolled {
        "/console/totp"
    } else {
        "/console/enroll"
    };
    Ok((jar, Redirect::to(next)).into_response())
}

/// The session between password and second factor, and whose it is.
async fn pending(
    state: &AppState,
    jar: &CookieJar,
) -> Result<Option<(ConsoleSession, ConsoleUser)>, PageError> {
    let Some(session) = current_session(state, jar).await? else {
        return Ok(None);
    };
    if session.stage != STAGE_SECOND_FACTOR {
        return Ok(None);
    }
    Ok(user_of(state, &session.subject)
        .await?
        .map(|user| (session, user)))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CodeForm {
    csrf: Option<String>,
    code: Option<String>,
}

fn check_pending_csrf(session: &ConsoleSession, submitted: Option<&str>) -> Result<(), PageError> {
    match submitted {
        Some(token) if constant_time_eq(token, &session.csrf_token) => Ok(()),
        _ => Err(PageError::csrf()),
    }
}

/// `GET /console/totp`
pub async fn view_second_factor_get(
    State(state): State<AppState>,
    jar: CookieJar,
) -> Result<Response, PageError> {
    let Some((session, _)) = pending(&state, &jar).await? else {
        return Ok(Redirect::to("/console/login").into_response());
    };
    page(SecondFactorPage {
        csrf: &session.csrf_token,
        message: None,
    })
}

/// Complete the login: the pending session goes, a console session with a new secret and
/// CSRF token comes.
async fn complete(
    state: &AppState,
    jar: CookieJar,
    session: &ConsoleSession,
    user: &ConsoleUser,
) -> Result<CookieJar, PageError> {
    state.store.delete_console_session(&session.id).await?;
    let subject = user.subject();
    limiter::reset(state, &SECOND_FACTOR, &subject).await;
    tracing::info!(outcome = "success", subject = %subject, "console login");
    start_session(state, jar, &subject, STAGE_COMPLETE).await
}

/// `POST /console/totp`: a code from the authenticator app, or a recovery code.
pub async fn view_second_factor_post(
    State(state): State<AppState>,
    jar: CookieJar,
    body: Bytes,
) -> Result<Response, PageError> {
    let form: CodeForm = serde_urlencoded::from_bytes(&body).map_err(|_| unreadable())?;
    let Some((session, user)) = pending(&state, &jar).await? else {
        return Ok(Redirect::to("/console/login").into_response());
    };
    check_pending_csrf(&session, form.csrf.as_deref())?;
    let subject = user.subject();
    let again = |message: &'static str| {
        page(SecondFactorPage {
            csrf: &session.csrf_token,
            message: Some(message),
        })
    };
    if !limiter::hit(&state, &SECOND_FACTOR, &subject)
        .await
        .is_allowed()
    {
        tracing::info!(outcome = "throttled", subject = %subject, "console second factor");
        return again("Te veel onjuiste codes. Wacht een kwartier en probeer het opnieuw.");
    }
    let code = form.code.unwrap_or_default();
    let code = code.trim();
    let now = state.now();
    let accepted = match state.store.second_factor(&subject).await? {
        Some(factor) if factor.enrolled_at.is_some() => {
            match totp::verify(&factor.secret, code, now, factor.last_step) {
                Some(step) => state.store.accept_step(&subject, step, now).await?,
                None => {
                    let normalized = normalize_recovery_code(code);
                    !normalized.is_empty()
                        && state
                            .store
                            .use_recovery_code(&subject, &hash_token(&normalized), now)
                            .await?
                }
            }
        }
        _ => return Ok(Redirect::to("/console/enroll").into_response()),
    };
    if !accepted {
        tracing::info!(outcome = "failed", subject = %subject, "console second factor");
        return again("Deze code klopt niet of is al gebruikt. Neem de code die je app nu toont.");
    }
    let jar = complete(&state, jar, &session, &user).await?;
    Ok((jar, Redirect::to(user.home())).into_response())
}

/// `GET /console/enroll`: the first login sets up the authenticator app.
pub async fn view_enroll_get(
    State(state): State<AppState>,
    jar: CookieJar,
) -> Result<Response, PageError> {
    let Some((session, user)) = pending(&state, &jar).await? else {
        return Ok(Redirect::to("/console/login").into_response());
    };
    let subject = user.subject();
    let factor = state.store.second_factor(&subject).await?;
    let secret = match factor {
        Some(f) if f.enrolled_at.is_some() => {
            return Ok(Redirect::to("/console/totp").into_response())
        }
        // The same pending secret on a reload, so a scanned code stays valid.
        Some(f) => f.secret,
        None => {
            let secret = totp::new_secret();
            state
                .store
                .begin_enrolment(&subject, &secret, state.now())
                .await?;
            secret
        }
    };
    render_enroll(&session, &user, &secret, None)
}

fn render_enroll(
    session: &ConsoleSession,
    user: &ConsoleUser,
    secret: &str,
    message: Option<&str>,
) -> Result<Response, PageError> {
    let uri = totp::provisioning_uri(secret, &user.label())
        .ok_or_else(|| PageError::internal("TOTP secret unusable"))?;
    let svg = totp::qr_svg(&uri).ok_or_else(|| PageError::internal("QR code failed"))?;
    page(EnrollPage {
        csrf: &session.csrf_token,
        qr_svg: &svg,
        secret: &grouped(secret),
        message,
    })
}

/// `ABCD EFGH …`: easier to type from the screen.
fn grouped(secret: &str) -> String {
    secret
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `POST /console/enroll`: the first correct code completes enrolment and the login; the
/// recovery codes are shown this once.
pub async fn view_enroll_post(
    State(state): State<AppState>,
    jar: CookieJar,
    body: Bytes,
) -> Result<Response, PageError> {
    let form: CodeForm = serde_urlencoded::from_bytes(&body).map_err(|_| unreadable())?;
    let Some((session, user)) = pending(&state, &jar).await? else {
        return Ok(Redirect::to("/console/login").into_response());
    };
    check_pending_csrf(&session, form.csrf.as_deref())?;
    let subject = user.subject();
    let Some(factor) = state.store.second_factor(&subject).await? else {
        return Ok(Redirect::to("/console/enroll").into_response());
    };
    if factor.enrolled_at.is_some() {
        return Ok(Redirect::to("/console/totp").into_response());
    }
    if !limiter::hit(&state, &SECOND_FACTOR, &subject)
        .await
        .is_allowed()
    {
        return render_enroll(
            &session,
            &user,
            &factor.secret,
            Some("Te veel onjuiste codes. Wacht een kwartier en probeer het opnieuw."),
        );
    }
    let now = state.now();
    let code = form.code.unwrap_or_default();
    let accepted = match totp::verify(&factor.secret, &code, now, factor.last_step) {
        Some(step) => state.store.accept_step(&subject, step, now).await?,
        None => false,
    };
    if !accepted {
        return render_enroll(
            &session,
            &user,
            &factor.secret,
            Some("Deze code klopt niet. Controleer of de tijd op je telefoon goed staat en neem de code die de app nu toont."),
        );
    }
    let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| new_recovery_code()).collect();
    let hashes: Vec<String> = codes
        .iter()
        .map(|c| hash_token(&normalize_recovery_code(c)))
        .collect();
    state
        .store
        .replace_recovery_codes(&subject, &hashes)
        .await?;
    state
        .store
        .audit(
            &user.actor_id(),
            "second_factor.enrol",
            &subject,
            None,
            None,
            now,
        )
        .await?;
    let jar = complete(&state, jar, &session, &user).await?;
    let html = RecoveryPage {
        codes: &codes,
        next: user.home(),
    }
    .render()
    .map_err(PageError::internal)?;
    Ok((jar, no_store(), Html(html)).into_response())
}

/// Ten characters from an alphabet without look-alikes (no 0/O, 1/I/L), shown as
/// `xxxxx-xxxxx`: about 50 bits, and each code works once.
fn new_recovery_code() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut rng = rand::rngs::OsRng;
    let raw: String = (0..10)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{}-{}", &raw[..5], &raw[5..])
}

/// Typed back however: case, spaces and dashes do not matter.
fn normalize_recovery_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct LogoutForm {
    csrf: Option<String>,
}

/// `POST /console/logout`
pub async fn view_logout(
    State(state): State<AppState>,
    jar: CookieJar,
    body: Bytes,
) -> Result<Response, PageError> {
    let form: LogoutForm = serde_urlencoded::from_bytes(&body).map_err(|_| unreadable())?;
    if let Some(session) = current_session(&state, &jar).await? {
        check_pending_csrf(&session, form.csrf.as_deref())?;
        state.store.delete_console_session(&session.id).await?;
    }
    let jar = jar.remove(Cookie::build(CONSOLE_COOKIE).path("/").build());
    Ok((jar, Redirect::to("/console/login")).into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ActivateForm {
    csrf: Option<String>,
    username: Option<String>,
    code: Option<String>,
    password: Option<String>,
    password_repeat: Option<String>,
}

/// `GET /console/activate`: a new operator sets a password with the activation code that
/// `poortwachter operator create` printed.
pub async fn view_activate_get(
    State(state): State<AppState>,
    jar: CookieJar,
) -> Result<Response, PageError> {
    let (jar, csrf) = login_csrf(&state, jar);
    let page = page(ActivatePage {
        csrf: &csrf,
        username: "",
        message: None,
    })?;
    Ok((jar, page).into_response())
}

/// Operator activation attempts per client address (the code is long, but guessing costs
/// us an argon2 hash per try).
const ACTIVATE: Limit = Limit {
    name: "console-activate",
    max: 20,
    window: std::time::Duration::from_secs(15 * 60),
};

/// `POST /console/activate`
pub async fn view_activate_post(
    State(state): State<AppState>,
    ip: ClientIp,
    jar: CookieJar,
    body: Bytes,
) -> Result<Response, PageError> {
    let form: ActivateForm = serde_urlencoded::from_bytes(&body).map_err(|_| unreadable())?;
    let expected = jar.get(LOGIN_CSRF_COOKIE).map(|c| c.value().to_string());
    match (form.csrf.as_deref(), expected.as_deref()) {
        (Some(sent), Some(expected)) if constant_time_eq(sent, expected) => {}
        _ => return Err(PageError::csrf()),
    }
    let username = form.username.unwrap_or_default().trim().to_string();
    let (jar, csrf) = login_csrf(&state, jar);
    let again = |message: &'static str| {
        page(ActivatePage {
            csrf: &csrf,
            username: &username,
            message: Some(message),
        })
    };
    if !limiter::hit(&state, &ACTIVATE, &ip.subject())
        .await
        .is_allowed()
    {
        return Ok((jar, again(LOGIN_BLOCKED)?).into_response());
    }
    let password = form.password.unwrap_or_default();
    if password.chars().count() < 12 || password.len() > 256 {
        return Ok((
            jar,
            again("Kies een wachtwoord van minstens 12 tekens (en hoogstens 256).")?,
        )
            .into_response());
    }
    if form.password_repeat.as_deref() != Some(password.as_str()) {
        return Ok((jar, again("De twee wachtwoorden zijn niet gelijk.")?).into_response());
    }
    let code = form.code.unwrap_or_default();
    let code = code.trim();
    let hash = hash_password(password).await?;
    let now = state.now();
    let activated = !code.is_empty()
        && state
            .store
            .activate_operator(&username, &hash_token(code), &hash, now)
            .await?
            .is_some();
    if !activated {
        return Ok((
            jar,
            again("Deze gebruikersnaam en activeringscode horen niet bij elkaar, of de code is verlopen.")?,
        )
            .into_response());
    }
    state
        .store
        .audit(
            &format!("operator:{username}"),
            "operator.activate",
            &format!("operator:{username}"),
            None,
            None,
            now,
        )
        .await?;
    Ok((jar, Redirect::to("/console/login?activated=1")).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_are_typed_back_however() {
        let code = new_recovery_code();
        assert_eq!(code.len(), 11);
        assert_eq!(
            normalize_recovery_code(&code.to_uppercase().replace('-', " ")),
            normalize_recovery_code(&code)
        );
        assert_ne!(new_recovery_code(), new_recovery_code());
    }

    #[test]
    fn secrets_are_shown_in_groups_of_four() {
        assert_eq!(grouped("ABCDEFGHIJ"), "ABCD EFGH IJ");
    }
}
