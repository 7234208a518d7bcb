//! Pushed Authorization Requests (RFC 9126): the client sends the authorization request to
//! `POST /par` first, authenticated as at the token endpoint, and the browser then carries
//! only `client_id` and the `request_uri` we answered. So the parameters never travel
//! through the browser (they cannot be read or altered there), they are checked before the
//! person is involved, and a partner can be required to use it (FAPI 2.0 Security §5.3.1.2).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Duration;
use serde_json::json;

use super::authorize::{validate, Arrival, NotRedirectable, Rejection};
use super::client_auth::authenticate;
use super::error::OAuthError;
use super::params::Params;
use crate::crypto::tokens::{hash_token, random_token};
use crate::serve::ClientIp;
use crate::AppState;

/// RFC 9126 §2.2: the `request_uri` is a URN of this form.
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";
/// Short-lived (RFC 9126 §2.2 suggests 5 to 600 s): the browser goes there at once.
pub const PUSHED_TTL_SECS: i64 = 60;

/// `POST /par`
pub async fn push(
    State(state): State<AppState>,
    ip: ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let is_form = super::params::is_form(&headers);
    if !is_form {
        return Err(OAuthError::invalid_request(
            "use application/x-www-form-urlencoded",
        ));
    }
    let params = Params::parse_form(&body)?;
    let client = authenticate(&state, ip, &headers, &params).await?;
    // RFC 9126 §2.1: `client_id`, if sent, is the authenticated client; `request_uri` is
    // not allowed in a pushed request.
    if params
        .get("client_id")
        .is_some_and(|id| id != client.client_id)
    {
        return Err(OAuthError::invalid_request(
            "client_id is not the authenticated client",
        ));
    }
    if params.get("request_uri").is_some() {
        return Err(OAuthError::invalid_request("request_uri cannot be pushed"));
    }
    // The request as the authorization endpoint will read it: with its client always, and
    // never the client's credentials (they are not part of the request, and nothing secret
    // is stored unhashed).
    let request = params.encode_without(&[
        "client_id",
        "client_secret",
        "client_assertion",
        "client_assertion_type",
    ]);
    let id: String = url::form_urlencoded::byte_serialize(client.client_id.as_bytes()).collect();
    let raw = format!("client_id={id}&{request}");
    // The same checks as `GET /authorize`, answered here as JSON (RFC 9126 §2.3).
    match validate(&state, &raw, Arrival::Pushed).await {
        Ok(_) => {}
        Err(Rejection::NotRedirectable(why)) => {
            return Err(OAuthError::invalid_request(not_redirectable(&why)))
        }
        Err(Rejection::Redirect(e)) => {
            return Err(OAuthError::bad_authorization_request(
                e.error,
                e.description,
            ))
        }
        Err(Rejection::Refused { refusal, .. }) => {
            return Err(OAuthError::bad_authorization_request(
                refusal.error_code(),
                refusal.description(),
            ))
        }
        Err(Rejection::Db(e)) => return Err(e.into()),
    }
    let secret = random_token();
    let now = state.now();
    let stored = state
        .store
        .push_request(
            &hash_token(&secret),
            &client.client_id,
            &raw,
            now,
            now + Duration::seconds(PUSHED_TTL_SECS),
        )
        .await?;
    if !stored {
        return Err(OAuthError::too_many_requests(PUSHED_TTL_SECS as u64));
    }
    let mut response = (
        StatusCode::CREATED,
        Json(json!({
            "request_uri": format!("{REQUEST_URI_PREFIX}{secret}"),
            "expires_in": PUSHED_TTL_SECS,
        })),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

fn not_redirectable(why: &NotRedirectable) -> String {
    match why {
        NotRedirectable::QueryTooLong => "the request is too long".into(),
        NotRedirectable::Repeated(name) => format!("parameter {name} occurs more than once"),
        NotRedirectable::ParameterTooLong(name, max) => {
            format!("{name} is longer than {max} bytes")
        }
        NotRedirectable::NoClientId => "client_id is required".into(),
        NotRedirectable::UnknownClient => "unknown client".into(),
        NotRedirectable::UnregisteredRedirectUri => {
            "redirect_uri is missing or not registered for this client".into()
        }
    }
}
