//! The language of a page, chosen once per request by an extractor instead of a flag handed
//! through every call: the language link (`?lang=nl|en`), else the `pw_lang` cookie that link
//! set, else the browser's `Accept-Language` (RFC 9110 §12.5.4), else Dutch. Pages that
//! answer a partner's request use the request's own locale (`ui_locales`, OIDC Core §3.1.2.1),
//! which `/authorize` took from this same choice when the partner sent none.

use std::convert::Infallible;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum_extra::extract::cookie::{Cookie, CookieJar};

use super::i18n::Texts;

pub const LANG_COOKIE: &str = "pw_lang";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lang {
    pub english: bool,
    /// Chosen by the language link on this request: remember it in the cookie.
    chosen: bool,
}

impl Lang {
    pub const DUTCH: Lang = Lang {
        english: false,
        chosen: false,
    };

    pub fn texts(self) -> &'static Texts {
        Texts::get(self.english)
    }

    pub fn code(self) -> &'static str {
        if self.english {
            "en"
        } else {
            "nl"
        }
    }

    /// The jar with the cookie that keeps a language chosen by the link for later requests
    /// (form posts carry no `?lang=`).
    pub fn remember(self, jar: CookieJar) -> CookieJar {
        if !self.chosen {
            return jar;
        }
        jar.add(
            Cookie::build((LANG_COOKIE, self.code()))
                .path("/")
                .http_only(true)
                .build(),
        )
    }

    /// The choice from a request's parts (what the extractor does).
    pub fn of(query: Option<&str>, headers: &HeaderMap) -> Lang {
        let from_link = query.and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "lang")
                .and_then(|(_, v)| match &*v {
                    "en" => Some(true),
                    "nl" => Some(false),
                    _ => None,
                })
        });
        if let Some(english) = from_link {
            return Lang {
                english,
                chosen: true,
            };
        }
        let jar = CookieJar::from_headers(headers);
        if let Some(cookie) = jar.get(LANG_COOKIE) {
            return Lang {
                english: cookie.value() == "en",
                chosen: false,
            };
        }
        let accepted = headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .and_then(prefers_english);
        Lang {
            english: accepted.unwrap_or(false),
            chosen: false,
        }
    }
}

/// Of Dutch and English, which does `Accept-Language` prefer? `None` when it names neither.
/// The highest `q` wins; on a tie the one listed first (RFC 9110 §12.4.2, §12.5.4).
pub fn prefers_english(header: &str) -> Option<bool> {
    let mut best: Option<(f32, bool)> = None;
    for item in header.split(',').take(32) {
        let mut parts = item.split(';');
        let tag = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let primary = tag.split('-').next().unwrap_or_default();
        let english = match primary {
            "en" => true,
            "nl" => false,
            _ => continue,
        };
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .filter_map(|q| q.trim().parse::<f32>().ok())
            .next()
            .unwrap_or(1.0);
        if q <= 0.0 {
            continue;
        }
        if best.is_none_or(|(b, _)| q > b) {
            best = Some((q, english));
        }
    }
    best.map(|(_, english)| english)
}

impl<S: Send + Sync> FromRequestParts<S> for Lang {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Lang::of(parts.uri.query(), &parts.headers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn accept_language_picks_the_preferred_of_ours() {
        assert_eq!(prefers_english("en-GB,en;q=0.9,nl;q=0.8"), Some(true));
        assert_eq!(prefers_english("nl-NL,nl;q=0.9,en-US;q=0.8"), Some(false));
        assert_eq!(prefers_english("de-DE, en;q=0.5, nl;q=0.7"), Some(false));
        assert_eq!(prefers_english("fr, de"), None);
        assert_eq!(prefers_english("en;q=0, nl;q=0.1"), Some(false));
        assert_eq!(prefers_english(""), None);
    }

    #[test]
    fn the_link_beats_the_cookie_beats_the_browser() {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_static("en"));
        assert!(Lang::of(None, &headers).english);
        headers.insert(header::COOKIE, HeaderValue::from_static("pw_lang=nl"));
        assert!(!Lang::of(None, &headers).english);
        let link = Lang::of(Some("lang=en&x=1"), &headers);
        assert!(link.english);
        assert!(link.chosen);
        assert!(!Lang::of(Some("lang=xx"), &HeaderMap::new()).english);
    }
}
