//! `GET /authorize` in the browser: the protocol checks (`oauth::authorize::validate`), then
//! the pending request is stored and the flow moves to login, consent, a refusal or a code.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use chrono::Duration;

use crate::crypto::tokens::{hash_token, random_token};
use crate::domain::policy::Step;
use crate::oauth::authorize::{
    prefers_english, validate, Arrival, NotRedirectable, Rejection, MAX_PENDING_PER_SESSION,
    REQUEST_TTL_SECS,
};
use crate::oauth::par::REQUEST_URI_PREFIX;
use crate::oauth::params::{Params, MAX_AUTHORIZE_QUERY};
use crate::storage::sessions::AuthorizationRequest;
use crate::storage::ts;
use crate::web::error::PageError;
use crate::web::lang::Lang;
use crate::web::{refusal, session};
use crate::AppState;

/// What the person reads when the request cannot go back to the app.
fn not_redirectable(why: &NotRedirectable, english: bool) -> PageError {
    let page = match why {
        NotRedirectable::QueryTooLong => PageError::bad_request((
            "De aanvraag van de app is te lang (invalid_request).",
            "The app's request is too long (invalid_request).",
        )),
        NotRedirectable::Repeated(name) => PageError::bad_request((
            &format!("De parameter '{name}' komt meer dan eens voor."),
            &format!("The parameter '{name}' occurs more than once."),
        )),
        NotRedirectable::ParameterTooLong(name, max) => PageError::bad_request((
            &format!("De parameter '{name}' is langer dan {max} bytes (invalid_request)."),
            &format!("The parameter '{name}' is longer than {max} bytes (invalid_request)."),
        )),
        NotRedirectable::NoClientId => PageError::bad_request((
            "De app heeft zich niet bekendgemaakt (client_id ontbreekt).",
            "The app did not identify itself (client_id is missing).",
        )),
        NotRedirectable::UnknownClient => PageError::bad_request((
            "Deze app is bij ons niet bekend. Er zijn geen gegevens gedeeld.",
            "This app is not known here. No data was shared.",
        )),
        NotRedirectable::UnregisteredRedirectUri => PageError::bad_request((
            "De app gaf een terugkeeradres op dat niet bij haar registratie hoort. Uit veiligheid sturen we je daar niet heen.",
            "The app gave a return address that is not registered for it. For your safety we do not send you there.",
        )),
    };
    page.in_english(english)
}

/// RFC 9126 §4: a request that names a pushed one (`client_id` + `request_uri`) is that
/// pushed request, taken once, and nothing else of the URL counts. `None`: not a pushed
/// request (the URL is the request). A `request_uri` that is unknown, used, expired or
/// another client's is a page: there is no checked redirect URI to send the error to.
async fn pushed(state: &AppState, raw: &str, english: bool) -> Result<Option<String>, PageError> {
    let Ok(params) = Params::parse(raw.as_bytes()) else {
        return Ok(None);
    };
    let Some(uri) = params.get("request_uri") else {
        return Ok(None);
    };
    let unusable = || {
        PageError::bad_request((
            "Deze aanvraag van de app is verlopen of al gebruikt. Ga terug naar de app en probeer het opnieuw.",
            "This request from the app has expired or was already used. Go back to the app and try again.",
        ))
        .in_english(english)
    };
    let (Some(client_id), Some(secret)) = (
        params.get("client_id"),
        uri.strip_prefix(REQUEST_URI_PREFIX),
    ) else {
        return Err(unusable());
    };
    state
        .store
        .take_pushed_request(&hash_token(secret), client_id, state.now())
        .await?
        .map(Some)
        .ok_or_else(unusable)
}

/// `GET /authorize`.
pub async fn authorize(
    State(state): State<AppState>,
    lang: Lang,
    jar: CookieJar,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    answer(state, lang, jar, query.unwrap_or_default()).await
}

/// `POST /authorize`: the same request as a form (OIDC Core §3.1.2.1: the OP MUST support
/// GET and POST). The person's session cookie is `SameSite=Lax`, so a browser does not send
/// it on this cross-site POST; answering here would start a new session over theirs (a
/// forced logout, and `prompt=none` could never succeed). So the form is turned into the
/// same request by GET (303), a top-level navigation that carries the cookie, and from there
/// the rules are those of GET.
pub async fn authorize_post(
    lang: Lang,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let is_form = crate::oauth::params::is_form(&headers);
    let not_readable = || {
        PageError::bad_request((
            "De app stuurde haar aanvraag in een vorm die wij niet lezen (verwacht: een formulier, application/x-www-form-urlencoded).",
            "The app sent its request in a form we do not read (expected: application/x-www-form-urlencoded).",
        ))
        .in_english(lang.english)
    };
    let raw = match (is_form, std::str::from_utf8(&body)) {
        (true, Ok(raw)) => raw,
        _ => return Err(not_readable()),
    };
    if raw.len() > MAX_AUTHORIZE_QUERY {
        return Err(not_redirectable(
            &NotRedirectable::QueryTooLong,
            lang.english,
        ));
    }
    // Normalised (parsed and encoded again), so the Location header holds only a query.
    let params = Params::parse(raw.as_bytes())
        .map_err(|name| not_redirectable(&NotRedirectable::Repeated(name), lang.english))?;
    Ok(Redirect::to(&format!("/authorize?{}", params.encode_without(&[]))).into_response())
}

async fn answer(
    state: AppState,
    lang: Lang,
    jar: CookieJar,
    raw: String,
) -> Result<Response, PageError> {
    // OIDC Core §3.1.2.1: `ui_locales` first; without it, the person's own choice (language
    // link, browser; `web::lang`).
    let english = prefers_english(&raw).unwrap_or(lang.english);
    let (raw, arrival) = match pushed(&state, &raw, english).await? {
        Some(stored) => (stored, Arrival::Pushed),
        None => (raw, Arrival::Direct),
    };
    let english = prefers_english(&raw).unwrap_or(english);
    let valid = match validate(&state, &raw, arrival).await {
        Ok(valid) => valid,
        Err(Rejection::NotRedirectable(why)) => return Err(not_redirectable(&why, english)),
        Err(Rejection::Redirect(error)) => return Ok(error.into_response()),
        Err(Rejection::Refused {
            refusal: why,
            partner_name,
            return_url,
        }) => return refusal::page(why, &partner_name, &return_url, english),
        Err(Rejection::Db(e)) => return Err(e.into()),
    };

    let (jar, browser) = session::current_or_start(&state, jar).await?;
    let now = state.now();
    let request = AuthorizationRequest {
        id: random_token(),
        session_id: browser.id.clone(),
        client_id: valid.client.client_id.clone(),
        redirect_uri: valid.redirect_uri.clone(),
        scopes: valid.scopes.to_string(),
        state: valid.state.clone(),
        nonce: valid.nonce.clone(),
        code_challenge: valid.code_challenge.clone(),
        school_hint: valid.school_hint.clone(),
        login_hint: valid.login_hint.clone(),
        force_login: i64::from(valid.prompts.must_log_in_again(browser.auth_time, ts(now))),
        force_consent: i64::from(valid.prompts.consent),
        locale: if english { "en".into() } else { "nl".into() },
        created_at: ts(now),
    };
    state
        .store
        .insert_authorization_request(
            &request,
            now + Duration::seconds(REQUEST_TTL_SECS),
            MAX_PENDING_PER_SESSION,
        )
        .await?;

    let decided = super::decide(&state, &request, &browser, true).await?;
    if valid.prompts.none {
        // OIDC Core §3.1.2.6: no UI may be shown.
        let back = valid.back(&state.config.issuer);
        return Ok(match &decided.step {
            Step::Issue(_) | Step::IssueFirstParty => (
                jar,
                super::respond(&state, &request, &browser, decided).await?,
            )
                .into_response(),
            Step::Login => back.to("login_required", "the user is not logged in"),
            Step::Consent { .. } => back.to("consent_required", "consent is required"),
            Step::Refuse(why) => back.to(why.error_code(), why.description()),
        });
    }
    let response = match decided.step {
        Step::Login => Redirect::to(&format!("/login?request={}", request.id)).into_response(),
        Step::Consent { .. } => {
            Redirect::to(&format!("/consent?request={}", request.id)).into_response()
        }
        _ => super::respond(&state, &request, &browser, decided).await?,
    };
    Ok((jar, response).into_response())
}
