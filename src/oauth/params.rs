//! Request parameters as a flat map that refuses duplicates: RFC 6749 §3.1 and §3.2 say
//! "request and response parameters MUST NOT be included more than once".

use std::collections::HashMap;

#[derive(Debug, Default)]
pub struct Params(HashMap<String, String>);

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

    /// A parameter's value; empty values count as absent (RFC 6749 §3.1).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_duplicates_and_ignores_empty() {
        assert_eq!(Params::parse(b"a=1&a=2").unwrap_err(), "a");
        let p = Params::parse(b"a=1&b=&c=x%20y").unwrap();
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), None);
        assert_eq!(p.get("c"), Some("x y"));
    }
}
