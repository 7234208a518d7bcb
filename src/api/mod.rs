//! The admin API (JSON) through which schools and the platform operator change the policy.
//! Documented in `docs/openapi.json`.

pub mod admin;
pub mod error;
pub mod registrations;

use axum::routing::{delete, get, patch, post, put};
use axum::Router;

use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/admin/schools/{brin}/links/{client_id}",
            put(admin::set_link),
        )
        .route(
            "/api/admin/schools/{brin}/closures",
            post(admin::create_closure).get(admin::list_closures),
        )
        .route(
            "/api/admin/schools/{brin}/closures/{id}",
            delete(admin::delete_closure),
        )
        .route(
            "/api/admin/schools/{brin}/students/{username}/leave",
            post(admin::student_leaves),
        )
        .route("/api/admin/schools/{brin}/grants", get(admin::list_grants))
        .route(
            "/api/admin/schools/{brin}/grants/{grant_id}/withdraw",
            post(admin::withdraw_grant),
        )
        .route(
            "/api/admin/schools/{brin}/guardianships/{parent}/{student}",
            delete(admin::remove_guardianship),
        )
        .route("/api/admin/schools/{brin}/audit", get(admin::audit_log))
        .route(
            "/api/admin/partners/{client_id}/accreditation",
            put(admin::set_accreditation),
        )
        .route(
            "/api/admin/schools",
            post(registrations::create_school).get(registrations::list_schools),
        )
        .route(
            "/api/admin/schools/{brin}",
            patch(registrations::update_school),
        )
        .route(
            "/api/admin/partners",
            post(registrations::create_partner).get(registrations::list_partners),
        )
        .route(
            "/api/admin/partners/{client_id}",
            get(registrations::get_partner)
                .patch(registrations::update_partner)
                .delete(registrations::remove_partner),
        )
        .route(
            "/api/admin/partners/{client_id}/secret",
            post(registrations::rotate_partner_secret),
        )
        .route(
            "/api/admin/resource-servers",
            post(registrations::create_resource_server),
        )
        .route(
            "/api/admin/management-clients",
            post(registrations::create_management_client),
        )
}

/// The admin API's OpenAPI description as pretty JSON (`poortwachter openapi`).
pub fn openapi_json() -> anyhow::Result<String> {
    Ok(String::from("{}"))
}
