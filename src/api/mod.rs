//! The admin API (JSON) through which schools and the platform operator change the policy.
//! Documented in `docs/openapi.json`.

pub mod admin;
pub mod error;
pub mod locks;

use axum::routing::{delete, get, post, put};
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
        .route("/api/admin/schools/{brin}/locks", get(locks::list_locks))
        .route(
            "/api/admin/schools/{brin}/locks/{username}",
            delete(locks::lift_lock),
        )
        .route(
            "/api/admin/partners/{client_id}/accreditation",
            put(admin::set_accreditation),
        )
}
