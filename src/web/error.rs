//! Errors for people: a readable page in Dutch (or English), with the right status code.
//! Internal causes are logged, never shown.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use super::i18n::Texts;

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    t: &'static Texts,
    title: &'a str,
    message: &'a str,
}

#[derive(Debug)]
pub struct PageError {
    status: StatusCode,
    english: bool,
    title_nl: &'static str,
    title_en: &'static str,
    message_nl: String,
    message_en: String,
}

impl PageError {
    pub fn new(
        status: StatusCode,
        (title_nl, title_en): (&'static str, &'static str),
        (message_nl, message_en): (&str, &str),
    ) -> Self {
        Self {
            status,
            english: false,
            title_nl,
            title_en,
            message_nl: message_nl.to_string(),
            message_en: message_en.to_string(),
        }
    }

    pub fn in_english(mut self, english: bool) -> Self {
        self.english = english;
        self
    }

    /// A login or consent request that was answered already or has expired.
    pub fn request_expired(english: bool) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            ("Deze aanvraag is verlopen", "This request has expired"),
            (
                "Deze inlog- of toestemmingsaanvraag is al afgehandeld of verlopen. Ga terug naar de app en begin opnieuw.",
                "This sign-in or consent request was already handled or has expired. Go back to the app and start again.",
            ),
        )
        .in_english(english)
    }

    pub fn bad_request(message: (&str, &str)) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            ("Ongeldig verzoek", "Invalid request"),
            message,
        )
    }

    /// The browser session is gone or was never there (cookies blocked, expired, other tab).
    /// The password-hashing queue is full: nothing was checked, try again in a moment.
    pub fn busy() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ("Het is even te druk", "It is too busy right now"),
            (
                "Er wordt nu te veel tegelijk ingelogd. Je wachtwoord is niet gecontroleerd. Probeer het over een paar seconden opnieuw.",
                "Too many people are signing in at once. Your password was not checked. Try again in a few seconds.",
            ),
        )
    }

    pub fn session_expired() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            ("Je sessie is verlopen", "Your session has expired"),
            (
                "Ga terug naar de app en probeer opnieuw in te loggen. Sta cookies toe voor deze site.",
                "Go back to the app and sign in again. Allow cookies for this site.",
            ),
        )
    }

    /// The form did not carry the right CSRF token: refuse without acting.
    pub fn csrf() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            ("Formulier niet geaccepteerd", "Form not accepted"),
            (
                "Dit formulier kwam niet van deze pagina of is verlopen. Er is niets veranderd. Ga terug en probeer het opnieuw.",
                "This form did not come from this page or has expired. Nothing was changed. Go back and try again.",
            ),
        )
    }

    /// The database cannot be reached right now: `503` with `Retry-After`, and a page that
    /// says to try again shortly (nothing was changed).
    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ("Even niet beschikbaar", "Temporarily unavailable"),
            (
                "Het lukt ons nu even niet. Er is niets veranderd. Probeer het over een paar seconden opnieuw.",
                "We cannot handle this right now. Nothing was changed. Please try again in a few seconds.",
            ),
        )
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error on a page");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ("Er ging iets mis", "Something went wrong"),
            (
                "Er ging bij ons iets mis. Probeer het over een paar minuten opnieuw.",
                "Something went wrong on our side. Please try again in a few minutes.",
            ),
        )
    }
}

impl From<sqlx::Error> for PageError {
    fn from(e: sqlx::Error) -> Self {
        if crate::storage::is_unavailable(&e) {
            tracing::warn!(error = %e, "database unavailable on a page");
            PageError::unavailable()
        } else {
            PageError::internal(e)
        }
    }
}

impl From<anyhow::Error> for PageError {
    fn from(e: anyhow::Error) -> Self {
        PageError::internal(e)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let t = Texts::get(self.english);
        let (title, message) = if self.english {
            (self.title_en, self.message_en.as_str())
        } else {
            (self.title_nl, self.message_nl.as_str())
        };
        let page = ErrorPage { t, title, message };
        match page.render() {
            Ok(html) => {
                let mut response = (self.status, super::no_store(), Html(html)).into_response();
                if self.status == StatusCode::SERVICE_UNAVAILABLE {
                    // RFC 9110 §10.2.3: when to try again.
                    response.headers_mut().insert(
                        axum::http::header::RETRY_AFTER,
                        axum::http::HeaderValue::from(crate::storage::RETRY_AFTER_SECS),
                    );
                }
                response
            }
            Err(e) => {
                tracing::error!(error = %e, "error page failed to render");
                (self.status, title.to_string()).into_response()
            }
        }
    }
}
