//! Client authentication at the token endpoint (RFC 6749 §2.3.1): `client_secret_basic`,
//! `client_secret_post`, and `none` for registered public clients. Secrets are argon2id hashes;
//! an unknown client costs the same work as a known one.

use axum::http::{header, HeaderMap};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::error::OAuthError;
use super::params::Params;
use crate::cache::limiter::{self, Limit};
use crate::crypto::password::try_verify_password;
use crate::crypto::tokens::{constant_time_eq, sha256_b64url};
use crate::serve::ClientIp;
use crate::storage::clients::Client;
use crate::AppState;

/// Credentials as presented, before verification.
struct Presented {
    client_id: String,
    secret: Option<String>,
    /// A `private_key_jwt` assertion (RFC 7523 §2.2).
    assertion: Option<String>,
    method: &'static str,
}

/// The credentials of an `Authorization` header with scheme `scheme`, matched
/// case-insensitively (RFC 9110 §11.1); `Some("")` for the bare scheme.
pub fn credentials<'a>(headers: &'a HeaderMap, scheme: &str) -> Option<&'a str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (given, rest) = value.split_once(' ').unwrap_or((value, ""));
    given.eq_ignore_ascii_case(scheme).then_some(rest.trim())
}

fn presented(headers: &HeaderMap, params: &Params) -> Result<Presented, OAuthError> {
    let basic = credentials(headers, "Basic");
    if let Some(assertion) = params.get("client_assertion") {
        // RFC 7523 §2.2: the assertion is the whole authentication; no secret beside it.
        if params.get("client_assertion_type") != Some(super::client_assertion::ASSERTION_TYPE) {
            return Err(OAuthError::invalid_request(
                "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ));
        }
        if basic.is_some() || params.get("client_secret").is_some() {
            return Err(OAuthError::invalid_request(
                "use one client authentication method",
            ));
        }
        let client_id = super::client_assertion::unverified_client_id(assertion)
            .ok_or_else(|| OAuthError::invalid_client(false))?;
        if params.get("client_id").is_some_and(|id| id != client_id) {
            return Err(OAuthError::invalid_request(
                "client_id does not match the client assertion",
            ));
        }
        return Ok(Presented {
            client_id,
            secret: None,
            assertion: Some(assertion.to_string()),
            method: "private_key_jwt",
        });
    }
    if let Some(encoded) = basic {
        // RFC 6749 §2.3: a client MUST NOT use more than one authentication method.
        if params.get("client_secret").is_some() {
            return Err(OAuthError::invalid_request(
                "use one client authentication method",
            ));
        }
        let decoded = STANDARD
            .decode(encoded)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| OAuthError::invalid_client(true))?;
        let (id, secret) = decoded
            .split_once(':')
            .ok_or_else(|| OAuthError::invalid_client(true))?;
        // RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
        let id = form_decode(id);
        let secret = form_decode(secret);
        if params.get("client_id").is_some_and(|body_id| body_id != id) {
            return Err(OAuthError::invalid_request(
                "client_id does not match the Authorization header",
            ));
        }
        return Ok(Presented {
            client_id: id,
            secret: Some(secret),
            assertion: None,
            method: "client_secret_basic",
        });
    }
    let Some(client_id) = params.get("client_id") else {
        return Err(OAuthError::invalid_client(false));
    };
    Ok(match params.get("client_secret") {
        Some(secret) => Presented {
            client_id: client_id.to_string(),
            secret: Some(secret.to_string()),
            assertion: None,
            method: "client_secret_post",
        },
        None => Presented {
            client_id: client_id.to_string(),
            secret: None,
            assertion: None,
            method: "none",
        },
    })
}

fn form_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Failed client authentications per `client_id` (what was presented, known or not).
pub const CLIENT_FAILURES: Limit = Limit {
    name: "client-auth",
    max: 20,
    window: std::time::Duration::from_secs(60),
};
/// Failed client authentications per client address.
pub const ADDRESS_FAILURES: Limit = Limit {
    name: "client-auth-address",
    max: 60,
    window: std::time::Duration::from_secs(60),
};

/// How long a verified secret is remembered.
const REMEMBER_VERIFIED_SECRET: std::time::Duration = std::time::Duration::from_secs(300);

/// A presented secret on its way to verification: either one that verified recently (known
/// by its SHA-256), or an attempt that has been counted and may go on to argon2.
enum Admitted {
    Remembered(String),
    Counted,
}

/// Before anything is looked up: a secret that verified in the last few minutes is
/// recognised by its SHA-256 (so a rightful client is neither slowed down nor locked out by a
/// flood of wrong secrets); any other attempt is counted first, per `client_id` and per
/// address, and refused with 429 past the limit, so a flood costs neither argon2 nor a
/// database query.
async fn admit_secret(
    state: &AppState,
    ip: ClientIp,
    client_id: &str,
    secret: &str,
) -> Result<Admitted, OAuthError> {
    let key = (client_id.to_string(), sha256_b64url(secret.as_bytes()));
    if let Some((remembered, at)) = state.verified_secrets.get(&key) {
        if at.elapsed() < REMEMBER_VERIFIED_SECRET {
            return Ok(Admitted::Remembered(remembered));
        }
    }
    count_attempt(state, ip, client_id).await
}

/// How long a refused guess waits before its 429 goes out: a tarpit. Each connection of a
/// wrong-secret flood then gets at most one answer a second, so the flood cannot take the
/// CPU from rightful clients (a sleeping task costs nothing); a client that is merely over
/// its limit loses one second it was told to wait anyway (`Retry-After`).
const TARPIT: std::time::Duration = std::time::Duration::from_secs(1);

async fn too_many(retry_after_secs: u64) -> OAuthError {
    tokio::time::sleep(TARPIT).await;
    OAuthError::too_many_requests(retry_after_secs)
}

/// Count an attempt per `client_id` and per address; 429 past either limit.
async fn count_attempt(
    state: &AppState,
    ip: ClientIp,
    client_id: &str,
) -> Result<Admitted, OAuthError> {
    let verdict = limiter::hit(state, &CLIENT_FAILURES, client_id).await;
    if !verdict.is_allowed() {
        return Err(too_many(verdict.retry_after_secs()).await);
    }
    let verdict = limiter::hit(state, &ADDRESS_FAILURES, &ip.subject()).await;
    if !verdict.is_allowed() {
        limiter::refund(state, &CLIENT_FAILURES, client_id).await;
        return Err(too_many(verdict.retry_after_secs()).await);
    }
    Ok(Admitted::Counted)
}

/// Does `secret` belong to `client`? A remembered secret matches while the client's stored
/// hash is the one it verified against (a rotated secret invalidates the memory); otherwise
/// argon2 decides, on the bounded queue (full: 503). A correct secret gives its counted
/// attempts back and is remembered.
async fn secret_matches(
    state: &AppState,
    ip: ClientIp,
    client_id: &str,
    secret: String,
    admitted: Admitted,
    client: Option<&Client>,
) -> Result<bool, OAuthError> {
    // The current secret, and during a rotation's grace period the previous one.
    let hashes = client
        .map(|c| c.secret_hashes_at(state.now()))
        .unwrap_or_default();
    match admitted {
        Admitted::Remembered(remembered) => {
            if hashes.iter().any(|phc| constant_time_eq(&remembered, phc)) {
                return Ok(true);
            }
            // The secret changed since (or its grace period ended): count this attempt.
            count_attempt(state, ip, client_id).await?;
        }
        Admitted::Counted => {}
    }
    let address = ip.subject();
    let give_back = || async {
        limiter::refund(state, &CLIENT_FAILURES, client_id).await;
        limiter::refund(state, &ADDRESS_FAILURES, &address).await;
    };
    let key = (client_id.to_string(), sha256_b64url(secret.as_bytes()));
    // With no hash at all the dummy hash still costs the same work (equal timing).
    let candidates: Vec<Option<String>> = if hashes.is_empty() {
        vec![None]
    } else {
        hashes.into_iter().map(Some).collect()
    };
    for phc in candidates {
        state
            .argon2_verifications
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let Ok(ok) = try_verify_password(secret.clone(), phc.clone()).await else {
            give_back().await;
            return Err(OAuthError::busy());
        };
        if let (Some(phc), true) = (phc, ok) {
            give_back().await;
            state
                .verified_secrets
                .insert(key, (phc, tokio::time::Instant::now()));
            return Ok(true);
        }
    }
    Ok(false)
}

/// Authenticate the calling client, or fail with `invalid_client` (401), 429 or 503.
pub async fn authenticate(
    state: &AppState,
    ip: ClientIp,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Client, OAuthError> {
    let presented = presented(headers, params)?;
    if let Some(assertion) = &presented.assertion {
        let client = asserted(state, ip, &presented.client_id, assertion).await?;
        return Ok(Client::clone(&client));
    }
    let used_basic = presented.method == "client_secret_basic";
    let admitted = match &presented.secret {
        Some(secret) => Some(admit_secret(state, ip, &presented.client_id, secret).await?),
        None => None,
    };
    // From the policy cache, as introspection does: exact within the freshness promise (a
    // change is evicted here at once, elsewhere within a second), and one database round
    // trip less on every token request.
    let client = super::live_policy::client(state, &presented.client_id)
        .await?
        .map(|client| Client::clone(&client));
    let method_allowed = client
        .as_ref()
        .is_some_and(|c| c.allows_auth_method(presented.method));
    match (presented.secret, admitted) {
        (Some(secret), Some(admitted)) => {
            // Verify even when the client is unknown or the method is wrong: equal timing.
            let ok = secret_matches(
                state,
                ip,
                &presented.client_id,
                secret,
                admitted,
                client.as_ref(),
            )
            .await?;
            match client {
                Some(client) if ok && method_allowed && client.is_active() => Ok(client),
                _ => Err(OAuthError::invalid_client(used_basic)),
            }
        }
        _ => match client {
            Some(client) if method_allowed && client.secret_hash.is_none() => Ok(client),
            _ => Err(OAuthError::invalid_client(false)),
        },
    }
}

/// `private_key_jwt`: the client (from the policy cache) must be registered for it and the
/// assertion must verify. Failures count against the client and the address like wrong
/// secrets; the reason is logged, the answer is `invalid_client`.
async fn asserted(
    state: &AppState,
    ip: ClientIp,
    client_id: &str,
    assertion: &str,
) -> Result<std::sync::Arc<Client>, OAuthError> {
    // Counted before any work (a key fetch, a signature check), given back on success, as
    // for secrets: a flood of forged assertions meets the limit, not our outbound fetches.
    count_attempt(state, ip, client_id).await?;
    let client = super::live_policy::client(state, client_id)
        .await?
        .filter(|c| c.is_active() && c.allows_auth_method("private_key_jwt"));
    let verdict = match &client {
        Some(client) => {
            super::client_assertion::verify(
                state,
                client,
                assertion,
                crate::storage::ts(state.now()),
            )
            .await
        }
        None => Err(super::client_assertion::Refused::NoKeys),
    };
    match (client, verdict) {
        (Some(client), Ok(())) => {
            limiter::refund(state, &CLIENT_FAILURES, client_id).await;
            limiter::refund(state, &ADDRESS_FAILURES, &ip.subject()).await;
            Ok(client)
        }
        (_, Err(reason)) => {
            tracing::info!(client = %client_id, ?reason, "client assertion refused");
            Err(OAuthError::invalid_client(false))
        }
        (None, Ok(())) => Err(OAuthError::invalid_client(false)),
    }
}

/// Authentication for the hot path (introspection): the client comes from the policy cache;
/// a remembered secret costs no argon2 (see [`secret_matches`]).
pub async fn authenticate_cached(
    state: &AppState,
    ip: ClientIp,
    headers: &HeaderMap,
    params: &Params,
) -> Result<std::sync::Arc<Client>, OAuthError> {
    let presented = presented(headers, params)?;
    if let Some(assertion) = &presented.assertion {
        return asserted(state, ip, &presented.client_id, assertion).await;
    }
    let used_basic = presented.method == "client_secret_basic";
    let Some(secret) = presented.secret else {
        return Err(OAuthError::invalid_client(used_basic));
    };
    let admitted = admit_secret(state, ip, &presented.client_id, &secret).await?;
    let client = super::live_policy::client(state, &presented.client_id).await?;
    let ok = secret_matches(
        state,
        ip,
        &presented.client_id,
        secret,
        admitted,
        client.as_deref(),
    )
    .await?;
    match client {
        Some(client) if ok && client.is_active() && client.allows_auth_method(presented.method) => {
            Ok(client)
        }
        _ => Err(OAuthError::invalid_client(used_basic)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_are_case_insensitive() {
        let mut headers = HeaderMap::new();
        for (value, expected) in [
            ("Basic YTpi", Some("YTpi")),
            ("BASIC YTpi", Some("YTpi")),
            ("bAsIc   YTpi ", Some("YTpi")),
            ("Basic", Some("")),
            ("Basic ", Some("")),
            ("Bearer YTpi", None),
            ("Basicx YTpi", None),
        ] {
            headers.insert(header::AUTHORIZATION, value.parse().unwrap());
            assert_eq!(credentials(&headers, "Basic"), expected, "{value}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// Any `Authorization` header and body: credentials or a clean OAuth error, no panic.
        #[test]
        fn any_authorization_header_is_handled(
            header_value in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
            body in "[a-z_=&%0-9A-F:+ ]{0,80}",
        ) {
            let mut headers = HeaderMap::new();
            if let Ok(value) = axum::http::HeaderValue::from_bytes(&header_value) {
                headers.insert(header::AUTHORIZATION, value);
            }
            if let Ok(params) = Params::parse(body.as_bytes()) {
                let _ = presented(&headers, &params);
            }
            let _ = credentials(&headers, "Basic");
        }

        /// Well-formed Basic credentials of any content come back as they went in.
        #[test]
        fn basic_credentials_round_trip(id in "[^:\\x00]{1,40}", secret in ".{0,40}") {
            let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let value = STANDARD.encode(format!("{}:{}", encode(&id), encode(&secret)));
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, format!("Basic {value}").parse().unwrap());
            let presented = presented(&headers, &Params::default()).unwrap();
            proptest::prop_assert_eq!(presented.client_id, id);
            proptest::prop_assert_eq!(presented.secret, Some(secret));
        }
    }
}
