//! A client's public keys for `private_key_jwt`: registered inline (`jwks`) or published by
//! the client at its `jwks_uri`, fetched over https (http only on the loopback interface,
//! for tests and local development) with a timeout and a size limit, and kept five minutes.
//! A `kid` we do not know makes us fetch again, at most once a minute, so a partner can
//! rotate its keys without telling us.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use josekit::jwk::JwkSet;

use crate::storage::clients::Client;
use crate::AppState;

const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// A key set is a few kilobytes; more is not a key set.
pub const MAX_JWKS_BYTES: usize = 64 * 1024;
const KEEP: Duration = Duration::from_secs(300);

#[derive(Debug)]
pub enum KeyError {
    /// Neither `jwks` nor `jwks_uri` registered.
    NoKeys,
    /// Unparseable, too large, not https, unreachable: logged, the client is refused.
    Unusable(String),
}

type Fetched = (Arc<JwkSet>, Instant);

/// A fetch that failed is not tried again for this long: a partner whose endpoint is down
/// is not hammered by every assertion that names it.
const FAILED_BACKOFF: Duration = Duration::from_secs(60);

fn failed() -> &'static quick_cache::sync::Cache<String, Instant> {
    static CACHE: OnceLock<quick_cache::sync::Cache<String, Instant>> = OnceLock::new();
    CACHE.get_or_init(|| quick_cache::sync::Cache::new(10_000))
}

fn fetched() -> &'static quick_cache::sync::Cache<String, Fetched> {
    static CACHE: OnceLock<quick_cache::sync::Cache<String, Fetched>> = OnceLock::new();
    CACHE.get_or_init(|| quick_cache::sync::Cache::new(10_000))
}

/// The client's key set.
pub async fn keys_of(_state: &AppState, client: &Client) -> Result<Arc<JwkSet>, KeyError> {
    if let Some(jwks) = client.jwks.as_deref().filter(|j| !j.is_empty()) {
        return JwkSet::from_bytes(jwks.as_bytes())
            .map(Arc::new)
            .map_err(|e| KeyError::Unusable(format!("registered jwks: {e}")));
    }
    let Some(uri) = client.jwks_uri.as_deref().filter(|u| !u.is_empty()) else {
        return Err(KeyError::NoKeys);
    };
    if let Some((keys, at)) = fetched().get(uri) {
        if at.elapsed() < KEEP {
            return Ok(keys);
        }
    }
    if failed()
        .get(uri)
        .is_some_and(|at| at.elapsed() < FAILED_BACKOFF)
    {
        return Err(KeyError::Unusable("jwks_uri failed a moment ago".into()));
    }
    let keys = Arc::new(fetch(uri).await.map_err(|e| {
        tracing::warn!(client = %client.client_id, error = %e, "jwks_uri unusable");
        failed().insert(uri.to_string(), Instant::now());
        KeyError::Unusable(e)
    })?);
    fetched().insert(uri.to_string(), (Arc::clone(&keys), Instant::now()));
    Ok(keys)
}

/// Forget a fetched key set that lacked a key (at most once a minute per URI), so the next
/// attempt fetches the client's rotated keys.
pub fn forget_if_stale(client: &Client) {
    if let Some(uri) = client.jwks_uri.as_deref() {
        if fetched()
            .get(uri)
            .is_some_and(|(_, at)| at.elapsed() > Duration::from_secs(60))
        {
            fetched().remove(uri);
        }
    }
}

/// May we fetch keys from `uri`? https, or http on the loopback interface.
pub fn is_allowed_uri(uri: &str) -> bool {
    let Ok(url) = url::Url::parse(uri) else {
        return false;
    };
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => {
            matches!(
                url.host(),
                Some(url::Host::Ipv4(ip)) if ip.is_loopback()
            ) || matches!(url.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
                || url.host_str() == Some("localhost")
        }
        _ => false,
    }
}

async fn fetch(uri: &str) -> Result<JwkSet, String> {
    if !is_allowed_uri(uri) {
        return Err("jwks_uri must be https (http only on the loopback interface)".into());
    }
    let http = reqwest::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    let mut response = http.get(uri).send().await.map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("jwks_uri answered {}", response.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > MAX_JWKS_BYTES {
            return Err(format!("jwks_uri sent more than {MAX_JWKS_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    let keys = JwkSet::from_bytes(&body).map_err(|e| e.to_string())?;
    check_public(&keys)?;
    Ok(keys)
}

/// Only public signing keys (EC or RSA), each with a `kid` when there are several.
pub fn check_public(keys: &JwkSet) -> Result<(), String> {
    let all = keys.keys();
    if all.is_empty() {
        return Err("the key set has no keys".into());
    }
    for key in &all {
        if !matches!(key.key_type(), "EC" | "RSA") {
            return Err(format!("key type {} is not supported", key.key_type()));
        }
        if ["d", "p", "q", "dp", "dq", "qi", "k"]
            .iter()
            .any(|private| key.parameter(private).is_some())
        {
            return Err("the key set contains private key material".into());
        }
        if all.len() > 1 && key.key_id().is_none() {
            return Err("with several keys, each needs a kid".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback() {
        assert!(is_allowed_uri("https://partner.example/jwks"));
        assert!(is_allowed_uri("http://127.0.0.1:9000/jwks"));
        assert!(is_allowed_uri("http://localhost:9000/jwks"));
        assert!(!is_allowed_uri("http://partner.example/jwks"));
        assert!(!is_allowed_uri("ftp://partner.example/jwks"));
        assert!(!is_allowed_uri("not a url"));
    }

    #[test]
    fn private_keys_are_refused() {
        let public =
            include_str!("../../examples/private_key_jwt/studyspace-demo.public.jwks.json");
        assert!(check_public(&JwkSet::from_bytes(public).unwrap()).is_ok());
        let private =
            include_str!("../../examples/private_key_jwt/studyspace-demo.private.jwk.json");
        let set = format!("{{\"keys\":[{private}]}}");
        assert!(check_public(&JwkSet::from_bytes(set).unwrap()).is_err());
    }
}
