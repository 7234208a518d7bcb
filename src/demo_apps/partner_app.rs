//! The demo partner app "Studyspace (demo)" (`127.0.0.1:9000`): signs a parent or student in
//! through Poortwachter with the authorization-code flow (RFC 6749 §4.1) with PKCE S256
//! (RFC 7636), `state` and OIDC `nonce`, then shows the name from UserInfo (OIDC Core §5.3)
//! and the timetable, homework and grades it fetches from the school-data API on every page
//! load. Tokens stay server-side, in memory, under the app's own session cookie.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::{Mutex, OnceCell};

use super::{ApiError, Assignment, Grade, Lesson, StudentData};
use crate::clock::Clock;
use crate::crypto::tokens::{random_token, sha256_b64url};

/// The app's own session cookie; Poortwachter's cookies (`pw_*`) share the host in the demo.
pub const SESSION_COOKIE: &str = "studyspace_demo_session";

/// Everything the partner app needs to know. Tests start it on an ephemeral port with a
/// `public_url` to match, and register `{public_url}/callback` as a redirect URI.
#[derive(Clone)]
pub struct PartnerAppConfig {
    /// Poortwachter's issuer; the rest is discovered below it.
    pub issuer: String,
    /// Where browsers reach this app (the redirect URI is `{public_url}/callback`).
    pub public_url: String,
    /// Base URL of the school-data API.
    pub school_api: String,
    pub client_id: String,
    pub client_secret: String,
    /// The scope every login asks for.
    pub scope: String,
    /// "Now", for ID-token expiry and access-token lifetimes (the server's clock in tests).
    pub clock: Arc<dyn Clock>,
}

impl PartnerAppConfig {
    /// The demo partner `studyspace-demo` with its published secret.
    pub fn demo(issuer: &str, public_url: &str, school_api: &str, clock: Arc<dyn Clock>) -> Self {
        Self {
            issuer: issuer.trim_end_matches('/').to_string(),
            public_url: public_url.trim_end_matches('/').to_string(),
            school_api: school_api.trim_end_matches('/').to_string(),
            client_id: "studyspace-demo".into(),
            client_secret: "studyspace-demo-secret".into(),
            scope: "openid offline_access naam rooster huiswerk cijfers".into(),
            clock,
        }
    }

    pub fn redirect_uri(&self) -> String {
        format!("{}/callback", self.public_url)
    }
}

/// The endpoints from `/.well-known/openid-configuration` (OIDC Discovery §3).
#[derive(Debug, Clone, Deserialize)]
struct Metadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    userinfo_endpoint: String,
    jwks_uri: String,
    #[serde(default)]
    authorization_response_iss_parameter_supported: bool,
}

/// A login under way: what the callback must see again.
struct Pending {
    state: String,
    nonce: String,
    verifier: String,
}

struct SignedIn {
    access_token: String,
    refresh_token: Option<String>,
    expires_at: DateTime<Utc>,
    name: Option<String>,
    /// Set once refreshing failed: Poortwachter's word on why access ended.
    ended: Option<String>,
}

#[derive(Default)]
struct Session {
    pending: Option<Pending>,
    signed_in: Option<SignedIn>,
    /// A message for the next page load (a refused login, a failed exchange).
    notice: Option<String>,
}

struct PartnerApp {
    config: PartnerAppConfig,
    http: reqwest::Client,
    metadata: OnceCell<Metadata>,
    /// Bounded: at the cap the least used sessions go (this is a demo, not a product).
    sessions: quick_cache::sync::Cache<String, Arc<Mutex<Session>>>,
}

#[derive(Clone)]
struct AppHandle(Arc<PartnerApp>);

/// The routes: `/`, `/login`, `/callback`, `/logout`, `/style.css`.
pub fn router(config: PartnerAppConfig) -> Router {
    let app = AppHandle(Arc::new(PartnerApp {
        config,
        http: super::http_client(),
        metadata: OnceCell::new(),
        sessions: quick_cache::sync::Cache::new(10_000),
    }));
    Router::new()
        .route("/", get(view_home))
        .route("/login", get(view_login))
        .route("/callback", get(view_callback))
        .route("/logout", post(view_logout))
        .route("/style.css", get(stylesheet))
        .with_state(app)
}

impl PartnerApp {
    fn now(&self) -> DateTime<Utc> {
        self.config.clock.now()
    }

    /// Discovery, once it has worked (a failure is retried on the next request).
    async fn metadata(&self) -> Result<&Metadata, String> {
        self.metadata
            .get_or_try_init(|| async {
                let url = format!("{}/.well-known/openid-configuration", self.config.issuer);
                let metadata: Metadata = self
                    .http
                    .get(&url)
                    .send()
                    .await
                    .and_then(|r| r.error_for_status())
                    .map_err(|e| format!("Poortwachter is niet bereikbaar ({e})."))?
                    .json()
                    .await
                    .map_err(|e| format!("Poortwachter gaf een onleesbare configuratie ({e})."))?;
                // OIDC Discovery §4.3: the document must name the issuer we asked.
                if metadata.issuer != self.config.issuer {
                    return Err(format!(
                        "Poortwachter noemt zich {} in plaats van {}.",
                        metadata.issuer, self.config.issuer
                    ));
                }
                Ok(metadata)
            })
            .await
    }

    fn session(&self, jar: &CookieJar) -> Option<Arc<Mutex<Session>>> {
        jar.get(SESSION_COOKIE)
            .and_then(|c| self.sessions.get(c.value()))
    }

    /// The session of this browser, made (with its cookie) if there is none.
    fn session_or_new(&self, jar: CookieJar) -> (CookieJar, Arc<Mutex<Session>>) {
        if let Some(session) = self.session(&jar) {
            return (jar, session);
        }
        let id = random_token();
        let session = Arc::new(Mutex::new(Session::default()));
        self.sessions.insert(id.clone(), Arc::clone(&session));
        let cookie = Cookie::build((SESSION_COOKIE, id))
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.config.public_url.starts_with("https://"))
            .path("/")
            .build();
        (jar.add(cookie), session)
    }
}

/// Headers of every page of this app: never cached (it shows a child's data), never framed,
/// nothing loaded from elsewhere.
fn page_headers() -> [(HeaderName, HeaderValue); 4] {
    [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            ),
        ),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
    ]
}

// ---------------------------------------------------------------------------------------------
// Pages

/// One section of the home page: a table of data, or a message why there is none.
struct Section {
    id: &'static str,
    title: &'static str,
    columns: Vec<&'static str>,
    rows: Vec<Vec<String>>,
    message: Option<String>,
    /// `data`, `refused`, `ended` or `failed`: the CSS class and what tests look for.
    state: &'static str,
}

#[derive(Template)]
#[template(
    ext = "html",
    source = r#"<!doctype html>
<html lang="nl">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Studyspace (demo)</title>
  <link rel="stylesheet" href="/style.css">
</head>
<body>
<header><p class="brand">Studyspace <span>(demo)</span></p></header>
<main>
  <h1>Huiswerkbegeleiding bij Studyspace</h1>
  <p class="demo">Dit is een voorbeeld van een partner-app. Hij haalt gegevens op bij de school
    via Poortwachter, alleen met toestemming.</p>
  {% if let Some(error) = error %}
  <div id="error" class="notice" role="alert"><h2>Dat lukte niet</h2><p>{{ error }}</p></div>
  {% endif %}
  {% if signed_in %}
  <p>Ingelogd voor: <strong id="naam">{{ name }}</strong></p>
  {% if let Some(ended) = ended %}
  <div id="ended" class="notice" role="alert"><h2>De toegang is beëindigd</h2><p>{{ ended }}</p>
    <p><a id="login" href="/login">Opnieuw inloggen via Poortwachter</a></p></div>
  {% endif %}
  {% for section in sections %}
  <section id="{{ section.id }}" class="{{ section.state }}" aria-labelledby="{{ section.id }}-kop">
    <h2 id="{{ section.id }}-kop">{{ section.title }}</h2>
    {% if let Some(message) = section.message %}<p class="message">{{ message }}</p>{% endif %}
    {% if !section.rows.is_empty() %}
    <table>
      <thead><tr>{% for column in section.columns %}<th scope="col">{{ column }}</th>{% endfor %}</tr></thead>
      <tbody>{% for row in section.rows %}<tr>{% for cell in row %}<td>{{ cell }}</td>{% endfor %}</tr>{% endfor %}</tbody>
    </table>
    {% endif %}
  </section>
  {% endfor %}
  <form method="post" action="/logout"><button type="submit" id="logout">Uitloggen bij Studyspace</button></form>
  {% else %}
  <p>Log in met je schoolaccount. Poortwachter vraagt daarna of Studyspace je rooster, huiswerk
    en cijfers mag zien.</p>
  <p><a id="login" class="button" href="/login">Inloggen via Poortwachter</a></p>
  {% endif %}
</main>
</body>
</html>
"#
)]
struct HomePage {
    signed_in: bool,
    name: String,
    error: Option<String>,
    ended: Option<String>,
    sections: Vec<Section>,
}

fn render(page: &HomePage) -> Response {
    match page.render() {
        Ok(html) => (page_headers(), Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering the demo partner page failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                page_headers(),
                "Er ging iets mis.",
            )
                .into_response()
        }
    }
}

/// `GET /`: signed out, the login button; signed in, the name and the three sections, each
/// fetched from the school-data API now (this is "the partner app's next call").
async fn view_home(State(app): State<AppHandle>, jar: CookieJar) -> Response {
    let app = &app.0;
    let mut page = HomePage {
        signed_in: false,
        name: String::new(),
        error: None,
        ended: None,
        sections: Vec::new(),
    };
    let Some(session) = app.session(&jar) else {
        return render(&page);
    };
    let mut session = session.lock().await;
    page.error = session.notice.take();
    let Some(signed_in) = session.signed_in.as_mut() else {
        return render(&page);
    };
    page.signed_in = true;
    page.name = signed_in
        .name
        .clone()
        .unwrap_or_else(|| "(naam niet gedeeld)".into());
    // Access that ended may come back (a school reopens its link): every load tries again,
    // at the cost of one call and one refused refresh while it stays ended.
    signed_in.ended = None;
    for resource in [Resource::Rooster, Resource::Huiswerk, Resource::Cijfers] {
        let fetched = fetch(app, signed_in, resource).await;
        page.sections.push(section(resource, fetched));
    }
    page.ended = signed_in.ended.clone();
    render(&page)
}

/// `GET /login`: a fresh `state`, `nonce` and PKCE verifier, then off to Poortwachter.
async fn view_login(State(app): State<AppHandle>, jar: CookieJar) -> Response {
    let app = &app.0;
    let (jar, session) = app.session_or_new(jar);
    let metadata = match app.metadata().await {
        Ok(metadata) => metadata,
        Err(message) => {
            session.lock().await.notice = Some(message);
            return (jar, Redirect::to("/")).into_response();
        }
    };
    let pending = Pending {
        state: random_token(),
        nonce: random_token(),
        verifier: random_token(),
    };
    let Ok(mut url) = url::Url::parse(&metadata.authorization_endpoint) else {
        session.lock().await.notice = Some("Poortwachter gaf een onbruikbaar adres.".into());
        return (jar, Redirect::to("/")).into_response();
    };
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &app.config.client_id)
        .append_pair("redirect_uri", &app.config.redirect_uri())
        .append_pair("scope", &app.config.scope)
        .append_pair("state", &pending.state)
        .append_pair("nonce", &pending.nonce)
        // RFC 7636 §4.2: S256 of the verifier; the verifier goes only to the token endpoint.
        .append_pair(
            "code_challenge",
            &sha256_b64url(pending.verifier.as_bytes()),
        )
        .append_pair("code_challenge_method", "S256");
    session.lock().await.pending = Some(pending);
    (jar, Redirect::to(url.as_str())).into_response()
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
    iss: Option<String>,
}

/// `GET /callback`: check `state` and `iss`, exchange the code, verify the ID token, read
/// UserInfo; whatever happens, back to `/` which shows the result.
async fn view_callback(
    State(app): State<AppHandle>,
    jar: CookieJar,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let app = &app.0;
    let (jar, session) = app.session_or_new(jar);
    let mut session = session.lock().await;
    let pending = session.pending.take();
    match complete_login(app, pending, query).await {
        Ok(signed_in) => {
            session.signed_in = Some(signed_in);
            session.notice = None;
            (jar, Redirect::to("/")).into_response()
        }
        // Shown here, not after a redirect: the address bar keeps what Poortwachter sent
        // (the README's curl walkthrough copies a code from it).
        Err(message) => {
            let page = HomePage {
                signed_in: false,
                name: String::new(),
                error: Some(message),
                ended: None,
                sections: Vec::new(),
            };
            (jar, render(&page)).into_response()
        }
    }
}

async fn complete_login(
    app: &PartnerApp,
    pending: Option<Pending>,
    query: CallbackQuery,
) -> Result<SignedIn, String> {
    // RFC 6749 §10.12: only a callback that carries the state we sent belongs to our login.
    let Some(pending) = pending else {
        return Err("Deze inlogpoging is niet (meer) bekend bij Studyspace. Begin opnieuw.".into());
    };
    if query.state.as_deref() != Some(pending.state.as_str()) {
        return Err(
            "Het antwoord van Poortwachter hoort niet bij deze inlogpoging (state klopt niet)."
                .into(),
        );
    }
    let metadata = app.metadata().await?;
    // RFC 9207 §2.4: the response names its issuer; a mix-up attack would name another.
    if query.iss.as_deref() != Some(metadata.issuer.as_str())
        && (query.iss.is_some() || metadata.authorization_response_iss_parameter_supported)
    {
        return Err("Het antwoord komt niet van onze Poortwachter (iss klopt niet).".into());
    }
    if let Some(error) = query.error {
        let explained = match error.as_str() {
            "access_denied" => "Er is geen toestemming gegeven.",
            "login_required" | "interaction_required" => "Inloggen is nodig.",
            "unauthorized_client" => "Studyspace mag op dit moment niet inloggen via Poortwachter.",
            _ => "Poortwachter heeft de aanvraag geweigerd.",
        };
        let description = query.error_description.unwrap_or_default();
        return Err(format!(
            "{explained} (Poortwachter: {error}{}{description})",
            if description.is_empty() { "" } else { ": " }
        ));
    }
    let Some(code) = query.code else {
        return Err("Poortwachter stuurde geen code terug.".into());
    };
    // RFC 6749 §4.1.3 with client_secret_basic (§2.3.1) and the PKCE verifier.
    let response = app
        .http
        .post(&metadata.token_endpoint)
        .basic_auth(
            form_encoded(&app.config.client_id),
            Some(form_encoded(&app.config.client_secret)),
        )
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", app.config.redirect_uri().as_str()),
            ("code_verifier", pending.verifier.as_str()),
        ])
        .send()
        .await
        .map_err(|e| format!("Poortwachter is niet bereikbaar ({e})."))?;
    let tokens = token_response(response).await?;
    let id_token = tokens
        .id_token
        .as_deref()
        .ok_or("Poortwachter stuurde geen ID-token mee.")?;
    verify_id_token(app, metadata, id_token, &pending.nonce).await?;
    let name = userinfo_name(app, metadata, &tokens.access_token).await;
    Ok(SignedIn {
        expires_at: app.now() + Duration::seconds(tokens.expires_in.unwrap_or(60)),
        access_token: tokens.access_token,
        refresh_token: tokens.refresh_token,
        name,
        ended: None,
    })
}

/// `POST /logout`: forget the tokens (Poortwachter's own session is its business).
async fn view_logout(State(app): State<AppHandle>, jar: CookieJar) -> Response {
    if let Some(cookie) = jar.get(SESSION_COOKIE) {
        app.0.sessions.remove(cookie.value());
    }
    let jar = jar.remove(Cookie::build(SESSION_COOKIE).path("/"));
    (jar, Redirect::to("/")).into_response()
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLE,
    )
        .into_response()
}

const STYLE: &str = "\
body{font-family:system-ui,sans-serif;margin:0;background:#f4f1fb;color:#1d1630;line-height:1.5}
header{background:#4b2a91;color:#fff;padding:.75rem 1rem}
.brand{margin:0;font-weight:700;font-size:1.25rem}.brand span{font-weight:400}
main{max-width:52rem;margin:1rem auto;padding:0 1rem 2rem}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin:.2rem 0 .5rem}
.demo{color:#4a4260}
section{background:#fff;border-radius:.5rem;padding:.75rem 1rem;margin:1rem 0;border-left:.3rem solid #4b2a91;overflow-x:auto}
section.refused,section.ended,section.failed{border-left-color:#a33a00}
.notice{background:#fff4ec;border:1px solid #a33a00;border-radius:.5rem;padding:.5rem 1rem;margin:1rem 0}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.25rem .5rem;border-bottom:1px solid #ddd6ee}
a{color:#3d1f7d}a.button,button{display:inline-block;background:#4b2a91;color:#fff;border:0;border-radius:.4rem;padding:.6rem 1rem;font:inherit;text-decoration:none;cursor:pointer}
@media (max-width:30rem){main{padding:0 .5rem 2rem}section{padding:.5rem}table{font-size:.85rem}th,td{padding:.2rem .25rem}}
a.button:focus,button:focus,a:focus{outline:3px solid #f0a500;outline-offset:2px}
";

// ---------------------------------------------------------------------------------------------
// Talking to Poortwachter and the school-data API

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    expires_in: Option<i64>,
    #[serde(default)]
    id_token: Option<String>,
}

#[derive(Deserialize)]
struct OAuthErrorBody {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// RFC 6749 §2.3.1: client_secret_basic sends id and secret form-urlencoded, then Base64.
fn form_encoded(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// A token endpoint answer: the tokens, or Poortwachter's error in words (RFC 6749 §5.2).
async fn token_response(response: reqwest::Response) -> Result<TokenResponse, String> {
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| format!("Poortwachter antwoordde onvolledig ({e})."))?;
    if status.is_success() {
        return serde_json::from_str(&text)
            .map_err(|e| format!("Poortwachter gaf onleesbare tokens ({e})."));
    }
    Err(match serde_json::from_str::<OAuthErrorBody>(&text) {
        Ok(e) => match e.error_description {
            Some(d) => format!("{}: {d}", e.error),
            None => e.error,
        },
        Err(_) => format!("HTTP {status}"),
    })
}

/// OIDC Core §3.1.3.7: signature by a key from the JWKS, issuer, audience, expiry, nonce.
async fn verify_id_token(
    app: &PartnerApp,
    metadata: &Metadata,
    id_token: &str,
    nonce: &str,
) -> Result<(), String> {
    let invalid = |why: &str| format!("Het ID-token van Poortwachter is niet geldig: {why}.");
    let header = josekit::jwt::decode_header(id_token).map_err(|_| invalid("onleesbaar"))?;
    let kid = header
        .claim("kid")
        .and_then(Value::as_str)
        .map(str::to_string);
    if header.claim("alg").and_then(Value::as_str) != Some("RS256") {
        return Err(invalid("onverwacht algoritme"));
    }
    let jwks: josekit::jwk::JwkSet = app
        .http
        .get(&metadata.jwks_uri)
        .send()
        .await
        .map_err(|_| invalid("sleutels niet op te halen"))?
        .text()
        .await
        .ok()
        .and_then(|text| josekit::jwk::JwkSet::from_bytes(text.as_bytes()).ok())
        .ok_or_else(|| invalid("sleutels onleesbaar"))?;
    let key = match kid.as_deref() {
        Some(kid) => jwks.get(kid).into_iter().next(),
        None => jwks.keys().into_iter().next(),
    }
    .ok_or_else(|| invalid("onbekende sleutel"))?;
    let verifier = josekit::jws::RS256
        .verifier_from_jwk(key)
        .map_err(|_| invalid("onbruikbare sleutel"))?;
    let (payload, _) = josekit::jwt::decode_with_verifier(id_token, &verifier)
        .map_err(|_| invalid("handtekening klopt niet"))?;
    if payload.issuer() != Some(metadata.issuer.as_str()) {
        return Err(invalid("verkeerde uitgever"));
    }
    if !payload
        .audience()
        .is_some_and(|aud| aud.iter().any(|a| *a == app.config.client_id))
    {
        return Err(invalid("niet voor Studyspace bedoeld"));
    }
    let now = std::time::UNIX_EPOCH
        + std::time::Duration::from_secs(u64::try_from(app.now().timestamp()).unwrap_or(0));
    // A minute of leeway for clocks that differ a little between machines.
    if payload
        .expires_at()
        .is_none_or(|exp| exp + std::time::Duration::from_secs(60) < now)
    {
        return Err(invalid("verlopen"));
    }
    if payload.claim("nonce").and_then(Value::as_str) != Some(nonce) {
        return Err(invalid("nonce klopt niet"));
    }
    Ok(())
}

/// The name from UserInfo; none when `naam` was not shared (or UserInfo did not answer).
async fn userinfo_name(
    app: &PartnerApp,
    metadata: &Metadata,
    access_token: &str,
) -> Option<String> {
    let response = app
        .http
        .get(&metadata.userinfo_endpoint)
        .bearer_auth(access_token)
        .send()
        .await
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    let claims: Value = response.json().await.ok()?;
    claims["name"].as_str().map(str::to_string)
}

/// RFC 6749 §6: a new access token (and, rotated, a new refresh token) for the old one.
async fn refresh(app: &PartnerApp, signed_in: &mut SignedIn) -> Result<(), String> {
    let Some(refresh_token) = signed_in.refresh_token.clone() else {
        return Err("Studyspace heeft geen verversingstoken (offline_access niet gegeven).".into());
    };
    let metadata = app.metadata().await?;
    let response = app
        .http
        .post(&metadata.token_endpoint)
        .basic_auth(
            form_encoded(&app.config.client_id),
            Some(form_encoded(&app.config.client_secret)),
        )
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.as_str()),
        ])
        .send()
        .await
        .map_err(|e| format!("Poortwachter is niet bereikbaar ({e})."))?;
    let tokens = token_response(response).await?;
    signed_in.access_token = tokens.access_token;
    if tokens.refresh_token.is_some() {
        signed_in.refresh_token = tokens.refresh_token;
    }
    signed_in.expires_at = app.now() + Duration::seconds(tokens.expires_in.unwrap_or(60));
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resource {
    Rooster,
    Huiswerk,
    Cijfers,
}

impl Resource {
    fn path(self) -> &'static str {
        match self {
            Resource::Rooster => "/rooster",
            Resource::Huiswerk => "/huiswerk",
            Resource::Cijfers => "/cijfers",
        }
    }
}

/// What one call to the school-data API came to.
enum Fetched {
    Data(Value),
    /// 403: the scope is not granted, or a closure withholds it (with the school's reason).
    Refused(String),
    /// The tokens stopped working and refreshing did not help.
    Ended,
    Failed(String),
}

enum Call {
    Data(Value),
    Unauthorized,
    Refused(String),
    Failed(String),
}

async fn call(app: &PartnerApp, resource: Resource, access_token: &str) -> Call {
    let response = match app
        .http
        .get(format!("{}{}", app.config.school_api, resource.path()))
        .bearer_auth(access_token)
        .send()
        .await
    {
        Ok(response) => response,
        Err(e) => return Call::Failed(format!("De school is niet bereikbaar ({e}).")),
    };
    match response.status() {
        StatusCode::OK => match response.json().await {
            Ok(data) => Call::Data(data),
            Err(e) => Call::Failed(format!("De school gaf onleesbare gegevens ({e}).")),
        },
        StatusCode::UNAUTHORIZED => Call::Unauthorized,
        StatusCode::FORBIDDEN => {
            let reason = response
                .json::<ApiError>()
                .await
                .ok()
                .and_then(|e| e.reason)
                .unwrap_or_else(|| "geen reden opgegeven".into());
            Call::Refused(reason)
        }
        other => Call::Failed(format!("De school antwoordde met HTTP {other}.")),
    }
}

/// One resource, refreshing the access token when it has expired or stopped working.
async fn fetch(app: &PartnerApp, signed_in: &mut SignedIn, resource: Resource) -> Fetched {
    if signed_in.ended.is_some() {
        return Fetched::Ended;
    }
    if signed_in.expires_at <= app.now() {
        if let Err(why) = refresh(app, signed_in).await {
            signed_in.ended = Some(ended_message(&why));
            return Fetched::Ended;
        }
    }
    let mut refreshed = false;
    loop {
        match call(app, resource, &signed_in.access_token).await {
            Call::Data(data) => return Fetched::Data(data),
            Call::Refused(reason) => return Fetched::Refused(reason),
            Call::Failed(why) => return Fetched::Failed(why),
            Call::Unauthorized if !refreshed => {
                refreshed = true;
                if let Err(why) = refresh(app, signed_in).await {
                    signed_in.ended = Some(ended_message(&why));
                    return Fetched::Ended;
                }
            }
            Call::Unauthorized => {
                signed_in.ended = Some(ended_message(
                    "ook een nieuw toegangstoken wordt door de school geweigerd",
                ));
                return Fetched::Ended;
            }
        }
    }
}

fn ended_message(why: &str) -> String {
    format!(
        "Studyspace kan je gegevens niet meer ophalen. Dat gebeurt als de school de koppeling \
         met Studyspace heeft gesloten, als de toestemming is ingetrokken of als Studyspace is \
         geschorst. Poortwachter zegt: {why}"
    )
}

fn section(resource: Resource, fetched: Fetched) -> Section {
    let (id, title, columns): (_, _, Vec<&'static str>) = match resource {
        Resource::Rooster => (
            "rooster",
            "Rooster",
            vec!["Dag", "Begint", "Vak", "Lokaal", "Docent"],
        ),
        Resource::Huiswerk => ("huiswerk", "Huiswerk", vec!["Vak", "Inleveren", "Opdracht"]),
        Resource::Cijfers => (
            "cijfers",
            "Cijfers",
            vec!["Vak", "Toets", "Cijfer", "Weging"],
        ),
    };
    let mut section = Section {
        id,
        title,
        columns,
        rows: Vec::new(),
        message: None,
        state: "data",
    };
    match fetched {
        Fetched::Data(data) => {
            section.rows = match rows(resource, data) {
                Ok(rows) => rows,
                Err(why) => {
                    section.state = "failed";
                    section.message = Some(why);
                    return section;
                }
            };
            if section.rows.is_empty() {
                section.message = Some("Niets te tonen.".into());
            }
        }
        Fetched::Refused(reason) => {
            section.state = "refused";
            section.message = Some(format!("Niet beschikbaar: {reason}"));
        }
        Fetched::Ended => {
            section.state = "ended";
            section.message = Some("De toegang is beëindigd.".into());
        }
        Fetched::Failed(why) => {
            section.state = "failed";
            section.message = Some(why);
        }
    }
    section
}

fn rows(resource: Resource, data: Value) -> Result<Vec<Vec<String>>, String> {
    let unreadable = |e: serde_json::Error| format!("De school gaf onleesbare gegevens ({e}).");
    Ok(match resource {
        Resource::Rooster => serde_json::from_value::<StudentData<Lesson>>(data)
            .map_err(unreadable)?
            .items
            .into_iter()
            .map(|l| vec![l.day, l.start, l.subject, l.room, l.teacher])
            .collect(),
        Resource::Huiswerk => serde_json::from_value::<StudentData<Assignment>>(data)
            .map_err(unreadable)?
            .items
            .into_iter()
            .map(|a| vec![a.subject, a.due, a.description])
            .collect(),
        Resource::Cijfers => serde_json::from_value::<StudentData<Grade>>(data)
            .map_err(unreadable)?
            .items
            .into_iter()
            .map(|g| vec![g.subject, g.description, g.grade, g.weight.to_string()])
            .collect(),
    })
}
