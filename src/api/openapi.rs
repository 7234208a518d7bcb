//! The root of the admin API's OpenAPI description: title, version, security scheme and tags.
//! The operations themselves come from the `#[utoipa::path]` of each handler, collected by
//! the router in `api/mod.rs`, so the description cannot drift from the routes.

use utoipa::openapi::security::{ClientCredentials, Flow, OAuth2, Scopes, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::error::ErrorBody;

/// The name of the security scheme that handlers list in `security(...)`.
pub const BEARER: &str = "bearer";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Poortwachter admin API",
        version = "1.0.0",
        description = "Change the live policy from outside. Authenticate with an access token \
            obtained by client_credentials at /token as a management client, sent as \
            `Authorization: Bearer <token>`. Scope beheer:<BRIN> manages one school; platform \
            manages all schools and partner accreditation. Every change is audited and takes \
            effect on the very next introspection. Bodies are JSON (`Content-Type: \
            application/json`, at most 1 MiB, unknown fields refused); every answer carries \
            `Cache-Control: no-store`.",
        license(name = "EUPL-1.2", identifier = "EUPL-1.2"),
    ),
    modifiers(&ManagementToken),
    components(schemas(ErrorBody)),
    tags(
        (name = "schools", description = "One school's links, closures, students, grants and audit log (scope beheer:<BRIN> or platform)"),
        (name = "partners", description = "Partners (scope platform)"),
    )
)]
pub struct AdminApi;

/// The `bearer` scheme: a token from the client_credentials grant (RFC 6749 §4.4) at
/// `/token`, used as a bearer token (RFC 6750 §2.1).
struct ManagementToken;

impl Modify for ManagementToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let scopes = Scopes::from_iter([
            (
                "platform",
                "the platform operator: every school and partner accreditation",
            ),
            (
                "beheer:<BRIN>",
                "one school (replace <BRIN> by the school's BRIN, e.g. beheer:12AB)",
            ),
        ]);
        let scheme = OAuth2::with_description(
            [Flow::ClientCredentials(ClientCredentials::new(
                "/token", scopes,
            ))],
            "A management client's access token from the client_credentials grant at /token, \
             sent as `Authorization: Bearer <token>`.",
        );
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(BEARER, SecurityScheme::OAuth2(scheme));
    }
}
