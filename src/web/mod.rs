//! HTML for people: the login and consent pages, the browser session and its CSRF token.

pub mod account;
pub mod activate;
pub mod consent;
pub mod error;
pub mod i18n;
pub mod login;
pub mod session;
pub mod throttle;

use axum::http::{header, HeaderName, HeaderValue};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;

use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/login",
            get(login::view_login_get).post(login::view_login_post),
        )
        .route(
            "/activate",
            get(activate::view_activate_get).post(activate::view_activate_post),
        )
        .route(
            "/consent",
            get(consent::view_consent_get).post(consent::view_consent_post),
        )
        .route("/account", get(account::view_account_get))
        .route("/account/withdraw", post(account::view_account_withdraw))
        .route("/account/logout", post(account::view_account_logout))
        .route("/static/style.css", get(stylesheet))
}

/// Our only stylesheet, compiled into the binary so the server runs from any directory.
async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/style.css"),
    )
}

/// Headers for every page that carries a session or a CSRF token: never cached, never framed
/// (clickjacking on the consent button), and nothing loaded from anywhere but ourselves.
pub fn no_store() -> [(HeaderName, HeaderValue); 4] {
    [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self' http: https:; frame-ancestors 'none'; base-uri 'none'",
            ),
        ),
        (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
    ]
}
