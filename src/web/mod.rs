//! HTML for people: the login, account, school and console pages, the browser session and
//! its CSRF token, and the pages the authorization flow (`crate::flow`) shows.

pub mod account;
pub mod activate;
pub mod calendar;
pub mod console;
pub mod dutch_time;
pub mod error;
pub mod i18n;
pub mod lang;
pub mod login;
pub mod platform;
pub mod refusal;
pub mod school;
pub mod school_roster;
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
        .route("/account", get(account::view_account_get))
        .route("/account/withdraw", post(account::view_account_withdraw))
        .route("/account/confirm", post(account::view_account_confirm))
        .route("/account/reads", get(account::view_account_reads_get))
        .route("/account/logout", post(account::view_account_logout))
        .route(
            "/console/login",
            get(console::view_login_get).post(console::view_login_post),
        )
        .route(
            "/console/totp",
            get(console::view_second_factor_get).post(console::view_second_factor_post),
        )
        .route(
            "/console/enroll",
            get(console::view_enroll_get).post(console::view_enroll_post),
        )
        .route(
            "/console/activate",
            get(console::view_activate_get).post(console::view_activate_post),
        )
        .route("/console/logout", post(console::view_logout))
        .route("/school", get(school::view_partners))
        .route("/school/links/{client_id}", post(school::view_set_link))
        .route(
            "/school/closures",
            get(school::view_closures).post(school::view_create_closure),
        )
        .route("/school/closures/{id}/end", post(school::view_end_closure))
        .route("/school/students", get(school::view_students))
        .route("/school/students/{username}", get(school::view_student))
        .route(
            "/school/students/{username}/leave",
            post(school::view_student_leaves),
        )
        .route(
            "/school/students/{username}/code",
            post(school::view_new_code),
        )
        .route(
            "/school/import",
            get(school_roster::view_import)
                .post(school_roster::view_upload)
                .layer(axum::extract::DefaultBodyLimit::max(
                    crate::api::roster::MAX_UPLOAD_BYTES,
                )),
        )
        .route("/school/import/confirm", post(school_roster::view_confirm))
        .route("/school/codes", post(school_roster::view_codes))
        .route(
            "/school/locks/{username}/lift",
            post(school::view_lift_lock),
        )
        .route("/school/audit", get(school::view_audit))
        .route("/school/audit.csv", get(school::view_audit_csv))
        .route("/platform", get(platform::view_partners))
        .route("/platform/partners", post(platform::view_register_partner))
        .route(
            "/platform/partners/{client_id}/suspend",
            post(platform::view_suspend),
        )
        .route(
            "/platform/partners/{client_id}/accredit",
            post(platform::view_accredit),
        )
        .route(
            "/platform/partners/{client_id}/rotate",
            post(platform::view_rotate),
        )
        .route("/platform/clients", get(platform::view_clients))
        .route(
            "/platform/resource-servers",
            post(platform::view_register_resource_server),
        )
        .route(
            "/platform/management-clients",
            post(platform::view_register_management_client),
        )
        .route("/platform/audit", get(platform::view_audit))
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
/// Forms post only to us (CSP `form-action 'self'`).
pub fn no_store() -> [(HeaderName, HeaderValue); 4] {
    no_store_for(None)
}

/// As [`no_store`], for a page whose form ends in a redirect to the partner: CSP
/// `form-action` also allows the origin of that (registered, verified) redirect URI, since
/// browsers apply `form-action` to the redirects that follow a submission too.
pub fn no_store_for(redirect_uri: Option<&str>) -> [(HeaderName, HeaderValue); 4] {
    let target = redirect_uri.and_then(form_target);
    let csp = format!(
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'{}; frame-ancestors 'none'; base-uri 'none'",
        target.map(|t| format!(" {t}")).unwrap_or_default()
    );
    [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_str(&csp).unwrap_or_else(|_| {
                HeaderValue::from_static(
                    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
                )
            }),
        ),
        (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
    ]
}

/// The CSP source for a redirect URI: its origin (`https://app.example`), or for a native
/// app's private-use scheme (RFC 8252 §7.1) the scheme (`nl.example.app:`).
fn form_target(redirect_uri: &str) -> Option<String> {
    let url = url::Url::parse(redirect_uri).ok()?;
    let source = match url.origin() {
        url::Origin::Tuple(..) => url.origin().ascii_serialization(),
        url::Origin::Opaque(_) => format!("{}:", url.scheme()),
    };
    // A CSP source list is split on spaces and ended by ';' or ','.
    (!source.contains([' ', ';', ',', '\'', '"'])).then_some(source)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_targets_are_origins_or_schemes() {
        assert_eq!(
            form_target("http://127.0.0.1:9000/callback?x=1").as_deref(),
            Some("http://127.0.0.1:9000")
        );
        assert_eq!(
            form_target("nl.example.app:/oauth").as_deref(),
            Some("nl.example.app:")
        );
        assert_eq!(form_target("not a url"), None);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// Whatever a redirect URI looks like, the CSP it produces stays one valid header
        /// whose form-action names nothing but us and (at most) one more source.
        #[test]
        fn any_redirect_uri_gives_a_well_formed_csp(uri in ".{0,120}") {
            let headers = no_store_for(Some(&uri));
            let csp = headers[2].1.to_str().unwrap().to_string();
            let form_action = csp
                .split(';')
                .map(str::trim)
                .find(|d| d.starts_with("form-action"))
                .unwrap()
                .to_string();
            proptest::prop_assert!(form_action.split(' ').count() <= 3, "{}", form_action);
            proptest::prop_assert_eq!(csp.split(';').count(), 6);
        }
    }
}
