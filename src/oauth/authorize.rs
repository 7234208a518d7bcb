//! The authorization endpoint's protocol (RFC 6749 §4.1.1, OIDC Core §3.1.2): validating a
//! request, answering the client with an error (§4.1.2.1) and issuing a code (§4.1.2). No
//! pages: the browser flow (`crate::flow`) shows the person what this module decides.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use super::params::{Params, AUTHORIZE_CLIENT_LIMITS, AUTHORIZE_LIMITS, MAX_AUTHORIZE_QUERY};
use super::pkce;
use crate::crypto::tokens::{hash_token, random_token};
use crate::domain::policy::Refusal;
use crate::domain::scope::ScopeSet;
use crate::storage::clients::Client;
use crate::storage::grants::Grant;
use crate::storage::sessions::{AuthorizationRequest, BrowserSession};
use crate::storage::tokens::AuthorizationCode;
use crate::storage::ts;
use crate::AppState;

pub use crate::storage::sessions::REQUEST_TTL_SECS;

/// RFC 9700 §4.2.1 / the issue: authorization codes live at most 60 seconds.
pub const CODE_TTL_SECS: i64 = 60;
/// Pending requests kept per browser session: a page reloaded or an app retried keeps
/// working, a loop of anonymous requests on one session does not fill the database.
pub const MAX_PENDING_PER_SESSION: i64 = 10;

/// Why a request cannot even be answered at the client: until the client and its redirect
/// URI are verified we must not redirect anywhere (RFC 6749 §4.1.2.1), or we would be an
/// open redirector handing codes or errors to an attacker. The person is told instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotRedirectable {
    QueryTooLong,
    Repeated(String),
    ParameterTooLong(&'static str, usize),
    NoClientId,
    UnknownClient,
    UnregisteredRedirectUri,
}

/// A protocol error in a request whose client and redirect URI are known.
pub struct ProtocolError {
    pub error: &'static str,
    pub description: String,
    /// The client's redirect URI with the error (RFC 6749 §4.1.2.1, RFC 9207 `iss`).
    pub url: String,
}

impl IntoResponse for ProtocolError {
    fn into_response(self) -> Response {
        redirect_no_store(&self.url)
    }
}

/// How the request arrived: in the browser's URL, or pushed by the client first
/// (RFC 9126), which is the only way when pushing is required.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    Direct,
    Pushed,
}

/// A request that is not going ahead.
pub enum Rejection {
    /// Told to the person (see [`NotRedirectable`]).
    NotRedirectable(NotRedirectable),
    /// A protocol error, sent back to the client (RFC 6749 §4.1.2.1), or, for a pushed
    /// request, answered as JSON (RFC 9126 §2.3).
    Redirect(ProtocolError),
    /// Refused by policy before anyone logs in (scope, accreditation): explained to the
    /// person, with a way back that tells the partner why.
    Refused {
        refusal: Refusal,
        partner_name: String,
        return_url: String,
    },
    /// The database did not answer.
    Db(sqlx::Error),
}

/// `prompt` and `max_age` (OIDC Core §3.1.2.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prompts {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
    /// Seconds since the person last actively authenticated beyond which they must log in
    /// again; `max_age=0` is `prompt=login`.
    pub max_age: Option<i64>,
}

impl Prompts {
    /// Must the person log in again, given when they last did (`None`: not logged in)?
    /// OIDC Core §3.1.2.1: past `max_age` the OP MUST actively re-authenticate.
    pub fn must_log_in_again(&self, auth_time: Option<i64>, now: i64) -> bool {
        let too_old = match (self.max_age, auth_time) {
            (Some(0), Some(_)) => true,
            (Some(max_age), Some(at)) => now - at > max_age,
            // Not logged in: the login comes anyway.
            _ => false,
        };
        self.login || too_old
    }
}

/// A request that passed every protocol check, with its client.
pub struct ValidRequest {
    pub client: Client,
    pub redirect_uri: String,
    pub scopes: ScopeSet,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: String,
    pub prompts: Prompts,
    /// `acr_values=tenant:<BRIN>` naming a school we know (the Magister convention).
    pub school_hint: Option<String>,
    pub login_hint: Option<String>,
}

impl ValidRequest {
    /// Errors from here on go back to the client (RFC 6749 §4.1.2.1, RFC 9207 `iss`).
    pub fn back<'a>(&'a self, issuer: &'a str) -> ErrorRedirect<'a> {
        ErrorRedirect {
            issuer,
            redirect_uri: &self.redirect_uri,
            state: self.state.as_deref(),
        }
    }
}

/// `ui_locales` (OIDC Core §3.1.2.1), in order of preference: the first language we speak
/// wins; `None` when it names neither Dutch nor English.
pub fn prefers_english(query: &str) -> Option<bool> {
    let params = Params::parse(query.as_bytes()).ok()?;
    params
        .get("ui_locales")?
        .split(' ')
        .find_map(|tag| match tag.split('-').next() {
            Some("en") => Some(true),
            Some("nl") => Some(false),
            _ => None,
        })
}

/// Check an authorization request (the raw query string) against RFC 6749 §4.1.1, RFC 7636
/// (PKCE S256 only) and the client's registration.
pub async fn validate(
    state: &AppState,
    raw: &str,
    arrival: Arrival,
) -> Result<ValidRequest, Rejection> {
    use Rejection::NotRedirectable as Page;
    if raw.len() > MAX_AUTHORIZE_QUERY {
        return Err(Page(NotRedirectable::QueryTooLong));
    }
    let params = Params::parse(raw.as_bytes())
        .map_err(|name| Page(NotRedirectable::Repeated(name.to_string())))?;
    if let Some((name, max)) = params.too_long(AUTHORIZE_CLIENT_LIMITS) {
        return Err(Page(NotRedirectable::ParameterTooLong(name, max)));
    }
    let client_id = params
        .get("client_id")
        .ok_or(Page(NotRedirectable::NoClientId))?;
    let client = state
        .store
        .get_client(client_id)
        .await
        .map_err(Rejection::Db)?
        .filter(|c| matches!(c.kind.as_str(), "partner" | "first_party"))
        .ok_or(Page(NotRedirectable::UnknownClient))?;
    let redirect_uri = match params.get("redirect_uri") {
        Some(uri) if client.has_redirect_uri(uri) => uri.to_string(),
        _ => return Err(Page(NotRedirectable::UnregisteredRedirectUri)),
    };
    // From here on errors go back to the client. An over-long `state` is not echoed: we
    // refuse to store or reflect it.
    let too_long = params.too_long(AUTHORIZE_LIMITS);
    let back = ErrorRedirect {
        issuer: &state.config.issuer,
        redirect_uri: &redirect_uri,
        state: params.get("state").filter(|_| too_long.is_none()),
    };
    let fail = |error: &'static str, description: &str| {
        Rejection::Redirect(ProtocolError {
            error,
            description: description.to_string(),
            url: back.url(error, description),
        })
    };
    if let Some((name, max)) = too_long {
        return Err(fail(
            "invalid_request",
            &format!("{name} is longer than {max} bytes"),
        ));
    }
    match params.get("response_type") {
        Some("code") => {}
        Some(_) => {
            return Err(fail(
                "unsupported_response_type",
                "only response_type=code is supported",
            ))
        }
        None => return Err(fail("invalid_request", "response_type is required")),
    }
    if params.get("request").is_some() {
        return Err(fail(
            "request_not_supported",
            "request objects are not supported",
        ));
    }
    if params.get("request_uri").is_some() {
        // A pushed request's `request_uri` was resolved before this (`flow::authorize`);
        // one inside a pushed request is refused (RFC 9126 §2.1).
        return Err(fail("invalid_request", "request_uri cannot be used here"));
    }
    // RFC 9126 §5: when pushing is required, a request in the URL is refused.
    if arrival == Arrival::Direct
        && (state.config.require_pushed_requests || client.require_par == 1)
    {
        return Err(fail(
            "invalid_request",
            "this client must push its authorization request first (RFC 9126)",
        ));
    }
    let Some(code_challenge) = params.get("code_challenge") else {
        return Err(fail(
            "invalid_request",
            "code_challenge is required (PKCE, S256)",
        ));
    };
    // RFC 7636 §4.3: an absent method means "plain", which we refuse like an explicit one.
    if params.get("code_challenge_method") != Some("S256") {
        return Err(fail(
            "invalid_request",
            "code_challenge_method must be S256",
        ));
    }
    if !pkce::is_valid_s256_challenge(code_challenge) {
        return Err(fail(
            "invalid_request",
            "code_challenge is not a valid S256 challenge",
        ));
    }
    let scopes = match ScopeSet::parse(params.get("scope").unwrap_or_default()) {
        Ok(scopes) if !scopes.is_empty() => scopes,
        Ok(_) => return Err(fail("invalid_scope", "scope is required")),
        Err(unknown) => return Err(fail("invalid_scope", &format!("unknown scope: {unknown}"))),
    };
    let words: Vec<&str> = params
        .get("prompt")
        .unwrap_or_default()
        .split(' ')
        .filter(|p| !p.is_empty())
        .collect();
    let max_age = match params.get("max_age") {
        None => None,
        Some(value) => match value.parse::<i64>() {
            Ok(seconds) if seconds >= 0 => Some(seconds),
            _ => {
                return Err(fail(
                    "invalid_request",
                    "max_age must be a non-negative number of seconds",
                ))
            }
        },
    };
    let prompts = Prompts {
        none: words.contains(&"none"),
        login: words.contains(&"login"),
        consent: words.contains(&"consent"),
        max_age,
    };
    if prompts.none && words.len() > 1 {
        return Err(fail(
            "invalid_request",
            "prompt=none cannot be combined with other values",
        ));
    }

    let refused = |refusal: Refusal| Rejection::Refused {
        refusal,
        partner_name: client.display_name.clone(),
        return_url: back.url(refusal.error_code(), refusal.description()),
    };
    if !scopes.is_subset(&client.allowed_scopes()) {
        return Err(refused(Refusal::ScopeNotAllowed));
    }
    if !client.is_admitted_at(state.now()) {
        return Err(refused(Refusal::PartnerNotAccredited));
    }

    // acr_values=tenant:<BRIN> (the Magister convention) pre-selects the school.
    let mut school_hint = None;
    if let Some(acr) = params.get("acr_values") {
        for value in acr.split(' ') {
            if let Some(brin) = value.strip_prefix("tenant:") {
                if state
                    .store
                    .get_school(brin)
                    .await
                    .map_err(Rejection::Db)?
                    .is_some()
                {
                    school_hint = Some(brin.to_string());
                }
            }
        }
    }
    Ok(ValidRequest {
        redirect_uri: redirect_uri.clone(),
        scopes,
        state: params.get("state").map(str::to_string),
        nonce: params.get("nonce").map(str::to_string),
        code_challenge: code_challenge.to_string(),
        prompts,
        school_hint,
        login_hint: params.get("login_hint").map(str::to_string),
        client,
    })
}

/// Why no code was issued.
#[derive(Debug)]
pub enum IssueError {
    /// The request was answered already (a second submit of the same consent form).
    AlreadyAnswered,
    Db(sqlx::Error),
}

impl From<sqlx::Error> for IssueError {
    fn from(e: sqlx::Error) -> Self {
        IssueError::Db(e)
    }
}

/// Issue an authorization code and send the browser back to the client (RFC 6749 §4.1.2),
/// with `iss` (RFC 9207) and the client's `state`. The code carries `scopes`: what the
/// person granted for this request, which may be less than was requested (the token
/// response's `scope` then says so, RFC 6749 §3.3).
pub async fn issue_code(
    state: &AppState,
    request: &AuthorizationRequest,
    browser: &BrowserSession,
    student_id: &str,
    grant: &Grant,
    scopes: &ScopeSet,
    actor: Option<String>,
) -> Result<Response, IssueError> {
    // A request is answered once; a second submit of the same consent form mints nothing.
    if !state.store.take_authorization_request(&request.id).await? {
        return Err(IssueError::AlreadyAnswered);
    }
    let now = state.now();
    let code = random_token();
    state
        .store
        .insert_code(&AuthorizationCode {
            code_hash: hash_token(&code),
            client_id: request.client_id.clone(),
            redirect_uri: request.redirect_uri.clone(),
            code_challenge: request.code_challenge.clone(),
            grant_id: grant.id.clone(),
            student_id: student_id.to_string(),
            actor_id: actor,
            scopes: scopes.to_string(),
            nonce: request.nonce.clone(),
            session_id: browser.id.clone(),
            auth_time: browser.auth_time.unwrap_or(ts(now)),
            issued_at: ts(now),
            expires_at: ts(now) + CODE_TTL_SECS,
            used_at: None,
        })
        .await?;
    let mut params = vec![("code", code.as_str())];
    if let Some(s) = request.state.as_deref() {
        params.push(("state", s));
    }
    params.push(("iss", state.config.issuer.as_str()));
    Ok(redirect_no_store(&with_query(
        &request.redirect_uri,
        &params,
    )))
}

/// The client's redirect URI with error parameters (RFC 6749 §4.1.2.1, RFC 9207).
pub struct ErrorRedirect<'a> {
    pub issuer: &'a str,
    pub redirect_uri: &'a str,
    pub state: Option<&'a str>,
}

impl<'a> ErrorRedirect<'a> {
    /// Back to the client of a stored request.
    pub fn of(issuer: &'a str, request: &'a AuthorizationRequest) -> Self {
        ErrorRedirect {
            issuer,
            redirect_uri: &request.redirect_uri,
            state: request.state.as_deref(),
        }
    }

    pub fn url(&self, error: &str, description: &str) -> String {
        let mut params = vec![("error", error), ("error_description", description)];
        if let Some(s) = self.state {
            params.push(("state", s));
        }
        params.push(("iss", self.issuer));
        with_query(self.redirect_uri, &params)
    }

    pub fn to(&self, error: &str, description: &str) -> Response {
        redirect_no_store(&self.url(error, description))
    }

    /// The way back for a policy refusal.
    pub fn refusal_url(&self, refusal: Refusal) -> String {
        self.url(refusal.error_code(), refusal.description())
    }
}

/// `base` with `params` appended. Registered redirect URIs are absolute URLs (checked at
/// registration); one that somehow does not parse gets the parameters appended as text.
fn with_query(base: &str, params: &[(&str, &str)]) -> String {
    match url::Url::parse(base) {
        Ok(mut url) => {
            url.query_pairs_mut().extend_pairs(params);
            url.to_string()
        }
        Err(_) => {
            let query: String = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(params)
                .finish();
            let separator = if base.contains('?') { '&' } else { '?' };
            format!("{base}{separator}{query}")
        }
    }
}

fn redirect_no_store(location: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, location.to_string()),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
    )
        .into_response()
}
