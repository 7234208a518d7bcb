//! RP-Initiated Logout 1.0: a partner sends the person to `/logout` (the
//! `end_session_endpoint`) to end their session here too. With a valid `id_token_hint` for
//! the browser's own session the session ends at once; otherwise the person confirms (a form
//! with the session's CSRF token), so no other site can log anyone out. Afterwards the person
//! goes to the partner's registered `post_logout_redirect_uri` with its `state`, or sees that
//! they are logged out.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar};

use crate::oauth::authorize::prefers_english;
use crate::oauth::params::Params;
use crate::storage::clients::Client;
use crate::web::error::PageError;
use crate::web::i18n::Texts;
use crate::web::lang::Lang;
use crate::web::{no_store_for, session};
use crate::AppState;

/// Parameter lengths we accept (an ID token is a few KB).
const MAX_HINT_BYTES: usize = 16 * 1024;
const MAX_PARAM_BYTES: usize = 2048;

#[derive(Template)]
#[template(path = "logout.html")]
struct LogoutPage<'a> {
    t: &'static Texts,
    title: &'a str,
    message: &'a str,
    partner_name: Option<&'a str>,
    confirm: bool,
    csrf: &'a str,
    client_id: Option<&'a str>,
    post_logout_redirect_uri: Option<&'a str>,
    state: Option<&'a str>,
    english: bool,
    button: &'a str,
}

/// What the logout request says, checked.
struct Understood {
    client: Option<Client>,
    /// The session the `id_token_hint` was issued in.
    hinted_session: Option<String>,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
    english: bool,
}

impl Understood {
    /// Where the person goes afterwards: the registered URI with `state`.
    fn back(&self) -> Option<String> {
        let uri = self.post_logout_redirect_uri.as_deref()?;
        let mut url = url::Url::parse(uri).ok()?;
        if let Some(state) = &self.state {
            url.query_pairs_mut().append_pair("state", state);
        }
        Some(url.to_string())
    }
}

fn bad(english: bool, nl: &str, en: &str) -> PageError {
    PageError::bad_request((nl, en)).in_english(english)
}

async fn understand(state: &AppState, raw: &str, lang: &Lang) -> Result<Understood, PageError> {
    let english = prefers_english(raw).unwrap_or(lang.english);
    let params = Params::parse(raw.as_bytes()).map_err(|name| {
        bad(
            english,
            &format!("De parameter '{name}' komt meer dan eens voor."),
            &format!("The parameter '{name}' occurs more than once."),
        )
    })?;
    if params
        .get("id_token_hint")
        .is_some_and(|h| h.len() > MAX_HINT_BYTES)
        || ["client_id", "post_logout_redirect_uri", "state"]
            .iter()
            .any(|name| params.get(name).is_some_and(|v| v.len() > MAX_PARAM_BYTES))
    {
        return Err(bad(
            english,
            "Het verzoek om uit te loggen is te lang.",
            "The logout request is too long.",
        ));
    }
    // RP-Initiated Logout §2: the hint is an ID token we issued (it may have expired).
    let (hinted_client, hinted_session) = match params.get("id_token_hint") {
        Some(hint) => {
            // Our ID tokens only (`typ: JWT`), not our signed introspection answers.
            let payload = state
                .keys
                .iter()
                .find_map(|key| key.verify(hint, "JWT"))
                .filter(|p| p.issuer() == Some(state.config.issuer.as_str()))
                .ok_or_else(|| {
                    bad(
                        english,
                        "De app stuurde een ongeldig bewijs van je inlog mee. Je bent niet uitgelogd.",
                        "The app sent an invalid proof of your login. You were not logged out.",
                    )
                })?;
            let client = payload
                .audience()
                .and_then(|a| a.first().map(|s| s.to_string()));
            let session = payload
                .claim("sid")
                .and_then(|v| v.as_str())
                .map(str::to_string);
            (client, session)
        }
        None => (None, None),
    };
    let client_id = match (hinted_client, params.get("client_id")) {
        (Some(hinted), Some(given)) if hinted != given => {
            return Err(bad(
                english,
                "De app die je wil laten uitloggen klopt niet met je inlog.",
                "The app asking to log you out does not match your login.",
            ))
        }
        (Some(hinted), _) => Some(hinted),
        (None, given) => given.map(str::to_string),
    };
    let client = match &client_id {
        Some(id) => state.store.get_client(id).await?,
        None => None,
    };
    let post_logout_redirect_uri = match params.get("post_logout_redirect_uri") {
        Some(uri) if client.as_ref().is_some_and(|c| c.has_post_logout_redirect_uri(uri)) => {
            Some(uri.to_string())
        }
        // §3: only registered URIs, exactly; otherwise no redirect at all.
        Some(_) => {
            return Err(bad(
                english,
                "De app gaf een adres op om je na het uitloggen heen te sturen dat niet bij haar registratie hoort.",
                "The app gave an address to send you to after logging out that is not registered for it.",
            ))
        }
        None => None,
    };
    Ok(Understood {
        client,
        hinted_session,
        post_logout_redirect_uri,
        state: params.get("state").map(str::to_string),
        english,
    })
}

/// The page; its form may lead to `redirect_uri` afterwards, which the page's CSP
/// (`form-action`) must allow, or the browser stops the redirect after the POST.
fn render(page: &LogoutPage<'_>, redirect_uri: Option<&str>) -> Result<Response, PageError> {
    let html = page.render().map_err(PageError::internal)?;
    Ok((StatusCode::OK, no_store_for(redirect_uri), Html(html)).into_response())
}

/// After the session ended (or when there was none): back to the partner, or a page.
fn done(jar: CookieJar, request: &Understood) -> Result<Response, PageError> {
    let jar = jar.remove(Cookie::build(session::SESSION_COOKIE).path("/").build());
    if let Some(back) = request.back() {
        let mut response = Redirect::to(&back).into_response();
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return Ok((jar, response).into_response());
    }
    let english = request.english;
    let page = LogoutPage {
        t: Texts::get(english),
        title: if english { "Logged out" } else { "Uitgelogd" },
        message: if english {
            "You are logged out. You can close this window."
        } else {
            "Je bent uitgelogd. Je kunt dit venster sluiten."
        },
        partner_name: None,
        confirm: false,
        csrf: "",
        client_id: None,
        post_logout_redirect_uri: None,
        state: None,
        english,
        button: "",
    };
    Ok((jar, render(&page, None)?).into_response())
}

/// `GET /logout`
pub async fn logout(
    State(state): State<AppState>,
    lang: Lang,
    jar: CookieJar,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let request = understand(&state, &query.unwrap_or_default(), &lang).await?;
    let Some(browser) = session::current(&state, &jar).await? else {
        return done(jar, &request);
    };
    if browser.account_id.is_none() || request.hinted_session.as_deref() == Some(&browser.id) {
        // Nobody logged in, or the partner proved it is this session: end it at once.
        state.store.delete_session(&browser.id).await?;
        return done(jar, &request);
    }
    // §2: without proof that this is the session the partner knows, the person decides.
    let english = request.english;
    let page = LogoutPage {
        t: Texts::get(english),
        title: if english { "Log out?" } else { "Uitloggen?" },
        message: if english {
            "An app asks to log you out of the school portal. Do you want to log out?"
        } else {
            "Een app vraagt je uit te loggen bij het schoolportaal. Wil je uitloggen?"
        },
        partner_name: request.client.as_ref().map(|c| c.display_name.as_str()),
        confirm: true,
        csrf: &browser.csrf_token,
        client_id: request.client.as_ref().map(|c| c.client_id.as_str()),
        post_logout_redirect_uri: request.post_logout_redirect_uri.as_deref(),
        state: request.state.as_deref(),
        english,
        button: if english { "Log out" } else { "Uitloggen" },
    };
    let after = request.post_logout_redirect_uri.as_deref();
    Ok((jar, render(&page, after)?).into_response())
}

/// `POST /logout`: the confirmation (or a partner posting the same parameters, which then
/// needs the confirmation too: without this session's CSRF token nothing ends).
pub async fn logout_post(
    State(state): State<AppState>,
    lang: Lang,
    jar: CookieJar,
    body: Bytes,
) -> Result<Response, PageError> {
    let raw = std::str::from_utf8(&body).map_err(|_| {
        bad(
            lang.english,
            "Het formulier kon niet worden gelezen.",
            "The form could not be read.",
        )
    })?;
    let request = understand(&state, raw, &lang).await?;
    let csrf = Params::parse(raw.as_bytes())
        .ok()
        .and_then(|p| p.get("csrf").map(str::to_string));
    let Some(browser) = session::current(&state, &jar).await? else {
        return done(jar, &request);
    };
    if csrf.is_none() && request.hinted_session.as_deref() == Some(&browser.id) {
        state.store.delete_session(&browser.id).await?;
        return done(jar, &request);
    }
    session::check_csrf(&browser, csrf.as_deref())?;
    state.store.delete_session(&browser.id).await?;
    done(jar, &request)
}
