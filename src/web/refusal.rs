//! The page that explains a refusal in plain words, with a way back to the app.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use super::error::PageError;
use super::i18n::Texts;
use super::no_store;
use crate::domain::policy::Refusal;

#[derive(Template)]
#[template(path = "refusal.html")]
struct RefusalPage<'a> {
    t: &'static Texts,
    title: &'a str,
    explanation: &'a str,
    partner_name: &'a str,
    return_url: &'a str,
}

/// Explain `refusal` to the person; `return_url` tells the partner why (RFC 6749 §4.1.2.1).
pub fn page(
    refusal: Refusal,
    partner_name: &str,
    return_url: &str,
    english: bool,
) -> Result<Response, PageError> {
    let page = RefusalPage {
        t: Texts::get(english),
        title: refusal.title(english),
        explanation: refusal.explanation(english),
        partner_name,
        return_url,
    };
    let html = page.render().map_err(PageError::internal)?;
    Ok((StatusCode::FORBIDDEN, no_store(), Html(html)).into_response())
}
