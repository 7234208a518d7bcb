//! Demo data for `serve --demo`: two schools, students, a parent, a supervisor and three
//! partners (see README). Loaded only into an empty database, through the same onboarding
//! operations an operator uses, so every demo start exercises the path from an empty
//! database to a live school. All passwords: `welkom-demo-2026`.

use chrono::{DateTime, TimeZone, Utc};

use crate::crypto::password::hash_password;
use crate::domain::account::{PersonName, Role};
use crate::domain::partner::{Accreditation, AccreditationStatus};
use crate::onboarding::registrations::{
    self, AccreditationChange, Issue, NewManagementClient, NewPartner, NewResourceServer, NewSchool,
};
use crate::onboarding::roster::{import_roster, ImportOptions, RosterSource};
use crate::onboarding::{Actor, OnboardingError};
use crate::storage::accounts::NewAccount;
use crate::storage::clients::NewClient;
use crate::App;

/// Where the demo partners may send people after logout.
pub const DEMO_POST_LOGOUT: [&str; 2] = ["http://127.0.0.1:9000/", "http://localhost:9000/"];

/// The demo partner that also authenticates with `private_key_jwt`.
pub const PRIVATE_KEY_JWT_PARTNER: &str = "studyspace-demo";
/// Its public keys; the private key is `examples/private_key_jwt/studyspace-demo.private.jwk.json`.
pub const DEMO_PARTNER_JWKS: &str =
    include_str!("../examples/private_key_jwt/studyspace-demo.public.jwks.json");

pub const DEMO_PASSWORD: &str = "welkom-demo-2026";

/// The demo supervisor's TOTP secret (RFC 6238, base32), published in the README so that
/// newcomers and tests can log in to the school console; any authenticator app accepts it.
pub const DEMO_SUPERVISOR_TOTP_SECRET: &str = "POORTWACHTERDEMOBEHEERSCHOOLTOTP";
/// The demo platform operator (`operator`) and its published TOTP secret.
pub const DEMO_OPERATOR: &str = "operator";
pub const DEMO_OPERATOR_TOTP_SECRET: &str = "POORTWACHTERDEMOPLATFORMOPERATOR";

const DEMO_SCHOOLS: [(&str, &str); 2] = [("12AB", "Lyceum De Vecht"), ("34CD", "Rivierencollege")];

const DEMO_REDIRECTS: [&str; 2] = [
    "http://127.0.0.1:9000/callback",
    "http://localhost:9000/callback",
];

/// A demo partner: fixed, published credentials, and whether the platform accredited it.
struct DemoPartner {
    id: &'static str,
    name: &'static str,
    scopes: &'static str,
    accredited: bool,
}

const DEMO_PARTNERS: [DemoPartner; 3] = [
    DemoPartner {
        id: "studyspace-demo",
        name: "Studyspace (demo)",
        scopes: "openid offline_access naam rooster huiswerk cijfers",
        accredited: true,
    },
    DemoPartner {
        id: "huiswerkhulp-demo",
        name: "Huiswerkhulp (demo)",
        scopes: "openid naam rooster huiswerk",
        accredited: true,
    },
    DemoPartner {
        id: "ongeaccrediteerd-demo",
        name: "Ongeaccrediteerd (demo)",
        scopes: "openid naam rooster huiswerk",
        accredited: false,
    },
];

/// The demo schools' SIS exports (OneRoster 1.1 CSV), imported as a school imports its own.
macro_rules! roster_files {
    ($brin:literal) => {
        [
            (
                "manifest.csv",
                include_bytes!(concat!("demo/", $brin, "/manifest.csv")).as_slice(),
            ),
            (
                "orgs.csv",
                include_bytes!(concat!("demo/", $brin, "/orgs.csv")).as_slice(),
            ),
            (
                "users.csv",
                include_bytes!(concat!("demo/", $brin, "/users.csv")).as_slice(),
            ),
            (
                "demographics.csv",
                include_bytes!(concat!("demo/", $brin, "/demographics.csv")).as_slice(),
            ),
        ]
    };
}

/// One school's shipped OneRoster files: (file name, contents).
type RosterFiles = [(&'static str, &'static [u8]); 4];

const DEMO_ROSTERS: [(&str, RosterFiles); 2] = [
    ("12AB", roster_files!("12AB")),
    ("34CD", roster_files!("34CD")),
];

fn moment(y: i32, m: u32, d: u32, h: u32) -> anyhow::Result<DateTime<Utc>> {
    Utc.with_ymd_and_hms(y, m, d, h, 0, 0)
        .single()
        .ok_or_else(|| anyhow::anyhow!("invalid demo date"))
}

fn onboarding_failed(e: OnboardingError) -> anyhow::Error {
    anyhow::anyhow!("loading the demo data failed: {e}")
}

fn fixed(id: &str, secret: &str) -> Issue {
    Issue::Fixed {
        client_id: id.to_string(),
        client_secret: Some(secret.to_string()),
    }
}

/// Load the demo data if the database is empty. Returns whether anything was loaded.
pub async fn load_if_empty(app: &App) -> anyhow::Result<bool> {
    if !app.store.is_empty().await? {
        return Ok(false);
    }
    let operator = Actor::system("demo");
    for (brin, name) in DEMO_SCHOOLS {
        registrations::register_school(
            app,
            &operator,
            NewSchool {
                brin: brin.into(),
                name: name.into(),
            },
        )
        .await
        .map_err(onboarding_failed)?;
    }
    load_people(app).await?;

    for partner in &DEMO_PARTNERS {
        registrations::register_partner(
            app,
            &operator,
            NewPartner {
                name: partner.name.into(),
                redirect_uris: DEMO_REDIRECTS.iter().map(|u| u.to_string()).collect(),
                scopes: partner.scopes.split(' ').map(str::to_string).collect(),
                token_endpoint_auth_method: "client_secret_basic".into(),
                contacts: vec![],
                // Studyspace also signs client assertions (`private_key_jwt`); its private
                // key is in `examples/private_key_jwt/`, for trying it out.
                jwks: (partner.id == PRIVATE_KEY_JWT_PARTNER)
                    .then(|| serde_json::from_str(DEMO_PARTNER_JWKS))
                    .transpose()
                    .map_err(anyhow::Error::from)?,
                jwks_uri: None,
            },
            fixed(partner.id, &format!("{}-secret", partner.id)),
        )
        .await
        .map_err(onboarding_failed)?;
        // The walkthrough in the README uses both methods with the same partner.
        let methods = if partner.id == PRIVATE_KEY_JWT_PARTNER {
            "client_secret_basic client_secret_post private_key_jwt"
        } else {
            "client_secret_basic client_secret_post"
        };
        app.store.set_auth_methods(partner.id, methods).await?;
        // After logging out at the portal (RP-Initiated Logout), back to the partner's home.
        app.store
            .set_post_logout_redirect_uris(partner.id, &DEMO_POST_LOGOUT.map(str::to_string))
            .await?;
        if partner.accredited {
            // Accredited until the end of 31 December 2030, Dutch time.
            registrations::set_accreditation(
                app,
                &operator,
                partner.id,
                AccreditationChange {
                    status: "accredited".into(),
                    valid_until: Some(moment(2030, 12, 31, 23)?),
                    reason: Some("demo: overeenkomst getekend".into()),
                },
            )
            .await
            .map_err(onboarding_failed)?;
        }
    }

    registrations::register_resource_server(
        app,
        &operator,
        NewResourceServer {
            name: "Schooldata-API (demo)".into(),
        },
        fixed("schooldata-api-demo", "schooldata-api-demo-secret"),
    )
    .await
    .map_err(onboarding_failed)?;
    for (id, name, scope) in [
        (
            "beheer-12ab-demo",
            "Beheer Lyceum De Vecht (demo)",
            "beheer:12AB",
        ),
        ("platform-demo", "Platformbeheer (demo)", "platform"),
    ] {
        registrations::register_management_client(
            app,
            &operator,
            NewManagementClient {
                name: name.into(),
                scope: scope.into(),
            },
            fixed(id, &format!("{id}-secret")),
        )
        .await
        .map_err(onboarding_failed)?;
    }

    // The school's own app: first party, public (PKCE, no secret), no consent page. Not a
    // registration partners can ask for, so it is written directly.
    app.store
        .insert_client(
            NewClient {
                client_id: "schoolapp-demo",
                display_name: "Schoolapp (demo)",
                kind: "first_party",
                redirect_uris: &["http://127.0.0.1:9100/callback"],
                allowed_scopes: "openid offline_access naam rooster huiswerk cijfers",
                secret_hash: None,
                auth_methods: "none",
                accreditation: Accreditation {
                    status: AccreditationStatus::Accredited,
                    valid_from: None,
                    valid_until: None,
                },
            },
            app.now(),
        )
        .await?;

    // Links start closed; the demo school 12AB has opened Studyspace.
    app.store
        .set_link(
            "12AB",
            "studyspace-demo",
            true,
            Some("demo: koppeling opengezet"),
            app.now(),
        )
        .await?;
    Ok(true)
}

/// The demo's students and parent through a roster import of its shipped OneRoster files,
/// then the published demo password for all of them; the supervisor (not a SIS role) directly.
async fn load_people(app: &App) -> anyhow::Result<()> {
    let operator = Actor::system("demo");
    for (brin, files) in DEMO_ROSTERS {
        let source = RosterSource::Files(
            files
                .iter()
                .map(|(name, bytes)| (name.to_string(), bytes.to_vec()))
                .collect(),
        );
        let report = import_roster(app, &operator, brin, source, ImportOptions::default())
            .await
            .map_err(onboarding_failed)?;
        anyhow::ensure!(
            report.errors.is_empty(),
            "the demo roster of {brin} is broken: {:?}",
            report.errors
        );
    }
    // One hash for all demo accounts: they share a published password anyway, and hashing
    // once keeps start-up (and every test) fast.
    let password_hash = hash_password(DEMO_PASSWORD.to_string()).await?;
    for (brin, _) in DEMO_SCHOOLS {
        app.store
            .set_passwords_of_school(brin, &password_hash)
            .await?;
    }
    app.store
        .insert_account(
            NewAccount {
                school_brin: "12AB",
                username: "beheer",
                role: Role::Supervisor,
                password_hash: &password_hash,
                name: PersonName {
                    given_name: "Anouk".into(),
                    tussenvoegsel: None,
                    family_name: "Smit".into(),
                },
                birth_date: None,
            },
            app.now(),
        )
        .await?;
    // The consoles' second factor, enrolled with the published secrets.
    let supervisor = app
        .store
        .find_account_by_login("12AB", "beheer")
        .await?
        .ok_or_else(|| anyhow::anyhow!("the demo supervisor was not stored"))?;
    app.store
        .enrol_fixed(
            &format!("account:{}", supervisor.id),
            DEMO_SUPERVISOR_TOTP_SECRET,
            app.now(),
        )
        .await?;
    let operator = app
        .store
        .insert_active_operator(DEMO_OPERATOR, &password_hash, app.now())
        .await?;
    app.store
        .enrol_fixed(
            &format!("operator:{operator}"),
            DEMO_OPERATOR_TOTP_SECRET,
            app.now(),
        )
        .await?;
    Ok(())
}
