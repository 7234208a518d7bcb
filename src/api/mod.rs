//! The admin API (JSON) through which schools and the platform operator change the policy.
//!
//! Its OpenAPI description is generated from the code: every route is registered through
//! [`OpenApiRouter::routes`] with `routes!(handler)`, which takes the path, the method and the
//! documentation from the handler's `#[utoipa::path(...)]`, so a route cannot exist without
//! its documentation. To add an operation:
//!
//! 1. write the handler in its own module (`api/roster.rs`, …) with `#[utoipa::path(method,
//!    path = "/api/admin/…", tag = "…", params(…), request_body(…), responses((status = 200,
//!    body = SomeView), WriteRefusals), security(("bearer" = ["beheer:<BRIN>"]), ("bearer" =
//!    ["platform"])))]`; request/response types derive `ToSchema` (requests also
//!    `#[serde(deny_unknown_fields)]`); a JSON body comes in as [`admin::JsonBody`] and is
//!    parsed after the scope check;
//! 2. add one line below: `.routes(routes!(module::handler))`;
//! 3. regenerate `docs/openapi.json` (see [`openapi`]) and add the path to the known set in
//!    `tests/it/admin.rs`.
//!
//! The description is served at `GET /api/admin/openapi.json` and checked in as
//! `docs/openapi.json`.

pub mod activation;
pub mod admin;
pub mod error;
pub mod locks;
pub mod openapi;
pub mod registrations;
pub mod roster;

use axum::http::{header, HeaderValue};
use axum::routing::get;
use axum::{Json, Router};
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

/// Where the generated description is served.
pub const OPENAPI_PATH: &str = "/api/admin/openapi.json";

/// The admin API's routes and their description, built together.
pub fn documented_router() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(openapi::AdminApi::openapi())
        .routes(routes!(admin::set_link))
        .routes(routes!(admin::create_closure))
        .routes(routes!(admin::list_closures))
        .routes(routes!(admin::delete_closure))
        .routes(routes!(admin::student_leaves))
        .routes(routes!(admin::list_grants))
        .routes(routes!(admin::withdraw_grant))
        .routes(routes!(admin::remove_guardianship))
        .routes(routes!(admin::audit_log))
        .routes(routes!(admin::set_accreditation))
        .routes(routes!(activation::issue_activation_codes))
        .routes(routes!(locks::list_locks))
        .routes(routes!(locks::lift_lock))
        // A school's SIS export can be large: its own body limit (the JSON routes read at
        // most 1 MiB through `admin::JsonBody`).
        .merge(
            OpenApiRouter::new()
                .routes(routes!(roster::import_roster))
                .layer(axum::extract::DefaultBodyLimit::max(
                    roster::MAX_UPLOAD_BYTES,
                )),
        )
        .routes(routes!(registrations::create_school))
        .routes(routes!(registrations::list_schools))
        .routes(routes!(registrations::update_school))
        .routes(routes!(registrations::create_partner))
        .routes(routes!(registrations::list_partners))
        .routes(routes!(registrations::get_partner))
        .routes(routes!(registrations::update_partner))
        .routes(routes!(registrations::remove_partner))
        .routes(routes!(registrations::rotate_partner_secret))
        .routes(routes!(registrations::create_resource_server))
        .routes(routes!(registrations::create_management_client))
        // Every answer of the admin API, success or error, may name students (the grants
        // list holds student numbers): no cache may keep it (RFC 9111 §5.2.2.5).
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .split_for_parts()
}

/// The admin API's OpenAPI description, as generated from the handlers (for the CLI and
/// `docs/openapi.json`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    documented_router().1
}

/// The admin API, with its description served (unauthenticated) at [`OPENAPI_PATH`].
pub fn router() -> Router<AppState> {
    let (router, description) = documented_router();
    let description = Json(description);
    router.route(
        OPENAPI_PATH,
        get(move || {
            let description = description.clone();
            async move { description }
        }),
    )
}

/// The admin API's OpenAPI description as pretty JSON with a final newline, as checked in at
/// `docs/openapi.json` (`poortwachter openapi > docs/openapi.json`).
pub fn openapi_json() -> anyhow::Result<String> {
    Ok(openapi().to_pretty_json()? + "\n")
}
