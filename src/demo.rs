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
use crate::onboarding::{Actor, OnboardingError};
use crate::storage::accounts::NewAccount;
use crate::storage::clients::NewClient;
use crate::App;

pub const DEMO_PASSWORD: &str = "welkom-demo-2026";

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

/// Demo people: (school, username, role, given name, tussenvoegsel, family name, birth date).
type DemoPerson = (
    &'static str,
    &'static str,
    Role,
    &'static str,
    Option<&'static str>,
    &'static str,
    Option<(i32, u32, u32)>,
);

const DEMO_PEOPLE: [DemoPerson; 7] = [
    (
        "12AB",
        "100001",
        Role::Student,
        "Jan",
        Some("de"),
        "Vries",
        Some((2012, 3, 14)),
    ),
    (
        "12AB",
        "100002",
        Role::Student,
        "Sara",
        None,
        "Bakker",
        Some((2010, 2, 1)),
    ),
    (
        "12AB",
        "100003",
        Role::Student,
        "Lotte",
        None,
        "Visser",
        Some((2007, 1, 10)),
    ),
    (
        "12AB",
        "100004",
        Role::Student,
        "Emma",
        Some("de"),
        "Vries",
        Some((2014, 9, 1)),
    ),
    (
        "34CD",
        "200001",
        Role::Student,
        "Noah",
        None,
        "Jansen",
        Some((2011, 6, 20)),
    ),
    (
        "12AB",
        "p.devries",
        Role::Parent,
        "Petra",
        Some("de"),
        "Vries",
        None,
    ),
    (
        "12AB",
        "beheer",
        Role::Supervisor,
        "Anouk",
        None,
        "Smit",
        None,
    ),
];

/// (school, parent, child)
const DEMO_GUARDIANSHIPS: [(&str, &str, &str); 2] = [
    ("12AB", "p.devries", "100001"),
    ("12AB", "p.devries", "100004"),
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
            },
            fixed(partner.id, &format!("{}-secret", partner.id)),
        )
        .await
        .map_err(onboarding_failed)?;
        // The walkthrough in the README uses both methods with the same partner.
        app.store
            .set_auth_methods(partner.id, "client_secret_basic client_secret_post")
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

/// The demo's students, parent and supervisor, enrolled since the start of the school year.
async fn load_people(app: &App) -> anyhow::Result<()> {
    let store = &app.store;
    let now = app.now();
    // One hash for all demo accounts: they share a published password anyway, and hashing
    // once keeps start-up (and every test) fast.
    let password_hash = hash_password(DEMO_PASSWORD.to_string()).await?;
    let school_year_start = moment(2025, 8, 1, 0)?;
    let mut ids = std::collections::HashMap::new();
    for (brin, username, role, given, tussenvoegsel, family, birth) in DEMO_PEOPLE {
        let id = store
            .insert_account(
                NewAccount {
                    school_brin: brin,
                    username,
                    role,
                    password_hash: &password_hash,
                    name: PersonName {
                        given_name: given.into(),
                        tussenvoegsel: tussenvoegsel.map(str::to_string),
                        family_name: family.into(),
                    },
                    birth_date: birth
                        .and_then(|(y, m, d)| chrono::NaiveDate::from_ymd_opt(y, m, d)),
                },
                now,
            )
            .await?;
        if role == Role::Student {
            store.enroll(&id, brin, school_year_start).await?;
        }
        ids.insert((brin, username), id);
    }
    for (brin, parent, child) in DEMO_GUARDIANSHIPS {
        if let (Some(parent), Some(child)) = (ids.get(&(brin, parent)), ids.get(&(brin, child))) {
            store.add_guardianship(parent, child, now).await?;
        }
    }
    Ok(())
}
