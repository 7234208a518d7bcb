//! `private_key_jwt` client authentication (RFC 7523 §2.2 and §3, OIDC Core §9): the client
//! signs a short-lived JWT with its private key; we verify it with the public keys it
//! registered (`jwks`, or fetched from its `jwks_uri`). No shared secret exists that could
//! leak from our database, which is why the NL GOV OAuth profile asks for it.
//!
//! Checks (RFC 7523 §3): signed with RS256, PS256 or ES256 by a registered key (never
//! `none`, never HMAC); `iss` and `sub` are the client; `aud` names this server (the issuer,
//! or one of the endpoints that authenticate clients); `exp` present, in the future and at
//! most five minutes ahead; `iat` not in the future; `jti` present and never accepted twice
//! (kept in the database every instance shares, until the assertion would have expired).

use josekit::jwk::{Jwk, JwkSet};
use josekit::jws::{JwsVerifier, ES256, PS256, RS256};

use crate::storage::clients::Client;
use crate::AppState;

/// RFC 7523 §2.2.
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The algorithms we accept (FAPI 2.0 Security §5.4 prefers PS256 and ES256).
pub const ALGORITHMS: [&str; 3] = ["RS256", "PS256", "ES256"];
/// An assertion may live this long at most: a stolen one is soon worthless.
const MAX_LIFETIME_SECS: i64 = 300;
/// Clocks differ a little.
const LEEWAY_SECS: i64 = 30;
const MAX_ASSERTION_BYTES: usize = 8 * 1024;

/// Why an assertion was refused; logged (never shown: the caller answers `invalid_client`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Malformed,
    UnknownKey,
    BadSignature,
    WrongIssuer,
    WrongAudience,
    Expired,
    TooLongLived,
    IssuedInTheFuture,
    NoJti,
    Replayed,
    NoKeys,
}

/// The parts of the assertion the client id is read from before verification (to find the
/// client and its keys); verified afterwards like every other claim.
pub fn unverified_client_id(assertion: &str) -> Option<String> {
    let payload = assertion.split('.').nth(1)?;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims["sub"].as_str().map(str::to_string)
}

/// Verify `assertion` for `client` at `now` (Unix seconds); records its `jti`.
pub async fn verify(
    state: &AppState,
    client: &Client,
    assertion: &str,
    now: i64,
) -> Result<(), Refused> {
    if assertion.len() > MAX_ASSERTION_BYTES {
        return Err(Refused::Malformed);
    }
    let header = josekit::jwt::decode_header(assertion).map_err(|_| Refused::Malformed)?;
    let alg = header
        .claim("alg")
        .and_then(|v| v.as_str())
        .filter(|alg| ALGORITHMS.contains(alg))
        .ok_or(Refused::Malformed)?
        .to_string();
    let kid = header.claim("kid").and_then(|v| v.as_str());
    let mut keys = super::client_keys::keys_of(state, client)
        .await
        .map_err(|_| Refused::NoKeys)?;
    if find_key(&keys, kid, &alg).is_none() && client.jwks_uri.is_some() {
        // Perhaps the client rotated its keys: fetch them again (at most once a minute).
        super::client_keys::forget_if_stale(client);
        keys = super::client_keys::keys_of(state, client)
            .await
            .map_err(|_| Refused::NoKeys)?;
    }
    let jwk = find_key(&keys, kid, &alg).ok_or(Refused::UnknownKey)?;
    let verifier = verifier_for(&alg, jwk).ok_or(Refused::UnknownKey)?;
    let (payload, _) = josekit::jwt::decode_with_verifier(assertion, verifier.as_ref())
        .map_err(|_| Refused::BadSignature)?;

    // RFC 7523 §3 items 1 and 2: issuer and subject are the client.
    if payload.issuer() != Some(client.client_id.as_str())
        || payload.subject() != Some(client.client_id.as_str())
    {
        return Err(Refused::WrongIssuer);
    }
    // Item 3: the audience is this server.
    let ours = audiences(state);
    let audience = payload.audience().unwrap_or_default();
    if !audience.iter().any(|a| ours.iter().any(|o| o == a)) {
        return Err(Refused::WrongAudience);
    }
    // Item 4: an expiry, not passed; and not far away.
    // Read as plain integers: a huge value must refuse, not overflow a clock type.
    let seconds = |name: &str| payload.claim(name).and_then(|v| v.as_i64());
    let exp = seconds("exp").ok_or(Refused::Expired)?;
    if exp + LEEWAY_SECS <= now {
        return Err(Refused::Expired);
    }
    if exp > now + MAX_LIFETIME_SECS + LEEWAY_SECS {
        return Err(Refused::TooLongLived);
    }
    // Items 5 and 6: not before `nbf`, not issued in the future.
    if seconds("iat").is_some_and(|iat| iat > now + LEEWAY_SECS)
        || seconds("nbf").is_some_and(|nbf| nbf > now + LEEWAY_SECS)
    {
        return Err(Refused::IssuedInTheFuture);
    }
    // Item 7: a `jti` used only once.
    let jti = payload
        .jwt_id()
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or(Refused::NoJti)?;
    let first = state
        .store
        .record_assertion(&client.client_id, jti, exp + LEEWAY_SECS)
        .await
        .map_err(|_| Refused::Replayed)?;
    if !first {
        return Err(Refused::Replayed);
    }
    Ok(())
}

/// The issuer, and the endpoints where clients authenticate: all name this server.
fn audiences(state: &AppState) -> Vec<String> {
    let mut ours = vec![state.config.issuer.clone()];
    for path in ["/token", "/par", "/introspect", "/revoke"] {
        ours.push(state.url(path));
    }
    ours
}

/// The key the header names; without a `kid`, the only key there is for this algorithm.
fn find_key<'a>(keys: &'a JwkSet, kid: Option<&str>, alg: &str) -> Option<&'a Jwk> {
    let fits =
        |jwk: &&Jwk| jwk.algorithm().is_none_or(|a| a == alg) && jwk.key_use() != Some("enc");
    match kid {
        Some(kid) => keys.get(kid).into_iter().find(fits),
        None => {
            let mut candidates = keys.keys().into_iter().filter(fits);
            let only = candidates.next()?;
            candidates.next().is_none().then_some(only)
        }
    }
}

fn verifier_for(alg: &str, jwk: &Jwk) -> Option<Box<dyn JwsVerifier>> {
    Some(match alg {
        "RS256" => Box::new(RS256.verifier_from_jwk(jwk).ok()?),
        "PS256" => Box::new(PS256.verifier_from_jwk(jwk).ok()?),
        "ES256" => Box::new(ES256.verifier_from_jwk(jwk).ok()?),
        _ => return None,
    })
}
