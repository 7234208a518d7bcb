//! Request parameters as a flat map that refuses duplicates: RFC 6749 §3.1 and §3.2 say
//! "request and response parameters MUST NOT be included more than once".

use std::collections::HashMap;

#[derive(Debug, Default)]
pub struct Params(HashMap<String, String>);

/// Is the body a form (`application/x-www-form-urlencoded`, RFC 6749 §3.2)?
pub fn is_form(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

impl Params {
    /// Parse `application/x-www-form-urlencoded` data. `Err` names the repeated parameter.
    pub fn parse(raw: &[u8]) -> Result<Params, String> {
        let mut map = HashMap::new();
        for (key, value) in url::form_urlencoded::parse(raw) {
            if map.insert(key.to_string(), value.to_string()).is_some() {
                return Err(key.to_string());
            }
        }
        Ok(Params(map))
    }

    /// Parse a request body for an OAuth endpoint; a repeated parameter is `invalid_request`.
    pub fn parse_form(raw: &[u8]) -> Result<Params, super::error::OAuthError> {
        Params::parse(raw).map_err(|name| {
            super::error::OAuthError::invalid_request(format!(
                "parameter {name} occurs more than once"
            ))
        })
    }

    /// Form-encoded again, without the parameters named in `leave_out` (in name order, so
    /// the result does not depend on the hash map).
    pub fn encode_without(&self, leave_out: &[&str]) -> String {
        let mut pairs: Vec<(&String, &String)> = self
            .0
            .iter()
            .filter(|(name, _)| !leave_out.contains(&name.as_str()))
            .collect();
        pairs.sort();
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
    }

    /// The first parameter longer than its limit in `limits`, with that limit.
    pub fn too_long(&self, limits: &[(&'static str, usize)]) -> Option<(&'static str, usize)> {
        limits
            .iter()
            .find(|(name, max)| self.0.get(*name).is_some_and(|v| v.len() > *max))
            .copied()
    }

    /// A parameter's value; empty values count as absent (RFC 6749 §3.1).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// The whole `/authorize` query may not be longer than this (bytes, percent-encoded).
pub const MAX_AUTHORIZE_QUERY: usize = 16 * 1024;

/// Limits (bytes, decoded) on the `/authorize` parameters that identify the client: checked
/// before anything is looked up, answered with a page (no redirect to an unverified URI).
pub const AUTHORIZE_CLIENT_LIMITS: &[(&str, usize)] = &[
    // Our client ids are short slugs.
    ("client_id", 128),
    // Registered redirect URIs are compared exactly; none is longer.
    ("redirect_uri", 2048),
];

/// Limits (bytes, decoded) on the other `/authorize` parameters, every one of which is stored
/// with the pending request or decides what is stored. Beyond them: `invalid_request`.
pub const AUTHORIZE_LIMITS: &[(&str, usize)] = &[
    // Opaque to us, echoed back (RFC 6749 §4.1.1); 512 is ample for a CSRF token or a
    // signed client-side state.
    ("state", 512),
    // Echoed into the ID token (OIDC Core §3.1.2.1).
    ("nonce", 512),
    // A username (OIDC Core §3.1.2.1), pre-filled on the login page.
    ("login_hint", 256),
    // An S256 challenge is exactly 43 characters (RFC 7636 §4.2); 128 is the verifier limit.
    ("code_challenge", 128),
    ("code_challenge_method", 16),
    // A few space-separated scope names (RFC 6749 §3.3).
    ("scope", 512),
    // `tenant:<BRIN>` (the Magister convention).
    ("acr_values", 256),
    ("prompt", 64),
    ("ui_locales", 64),
    ("response_type", 32),
    ("response_mode", 32),
    ("max_age", 16),
    ("display", 16),
    ("claims_locales", 64),
    ("id_token_hint", 4096),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_first_parameter_over_its_limit() {
        let long = "s".repeat(513);
        let p = Params::parse(format!("state={long}&nonce=n").as_bytes()).unwrap();
        assert_eq!(p.too_long(AUTHORIZE_LIMITS), Some(("state", 512)));
        let p = Params::parse(format!("state={}", "s".repeat(512)).as_bytes()).unwrap();
        assert_eq!(p.too_long(AUTHORIZE_LIMITS), None);
    }

    #[test]
    fn refuses_duplicates_and_ignores_empty() {
        assert_eq!(Params::parse(b"a=1&a=2").unwrap_err(), "a");
        let p = Params::parse(b"a=1&b=&c=x%20y").unwrap();
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), None);
        assert_eq!(p.get("c"), Some("x y"));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// Outside input never panics the parser, and a limit check names a parameter only
        /// when it really is too long.
        #[test]
        fn any_bytes_parse_or_name_a_duplicate(raw in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            if let Ok(params) = Params::parse(&raw) {
                if let Some((name, max)) = params.too_long(AUTHORIZE_LIMITS) {
                    proptest::prop_assert!(params.get(name).is_some_and(|v| v.len() > max));
                }
            }
        }
    }
}
