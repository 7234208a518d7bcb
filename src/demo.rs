//! Demo data for `serve --demo`: two schools, students, a parent, a supervisor and three
//! partners (see README). Loaded only into an empty database. All passwords: `welkom-demo-2026`.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};

use crate::crypto::password::hash_password;
use crate::domain::account::{PersonName, Role};
use crate::domain::partner::{Accreditation, AccreditationStatus};
use crate::storage::accounts::NewAccount;
use crate::storage::clients::NewClient;
use crate::storage::Store;

pub const DEMO_PASSWORD: &str = "welkom-demo-2026";
const DEMO_REDIRECTS: [&str; 2] = [
    "http://127.0.0.1:9000/callback",
    "http://localhost:9000/callback",
];

struct DemoClient {
    id: &'static str,
    name: &'static str,
    kind: &'static str,
    redirect_uris: &'static [&'static str],
    scopes: &'static str,
    secret: Option<&'static str>,
    auth_methods: &'static str,
    accreditation: Accreditation,
}

fn date(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(y, m, d)
}

fn moment(y: i32, m: u32, d: u32, h: u32) -> anyhow::Result<DateTime<Utc>> {
    Utc.with_ymd_and_hms(y, m, d, h, 0, 0)
        .single()
        .ok_or_else(|| anyhow::anyhow!("invalid demo date"))
}

fn name(given: &str, tussenvoegsel: Option<&str>, family: &str) -> PersonName {
    PersonName {
        given_name: given.into(),
        tussenvoegsel: tussenvoegsel.map(str::to_string),
        family_name: family.into(),
    }
}

/// Load the demo data if the database is empty. Returns whether anything was loaded.
pub async fn load_if_empty(store: &Store, now: DateTime<Utc>) -> anyhow::Result<bool> {
    if !store.is_empty().await? {
        return Ok(false);
    }
    // One hash for all demo accounts: they share a published password anyway, and hashing
    // once keeps start-up (and every test) fast.
    let password_hash = hash_password(DEMO_PASSWORD.to_string()).await?;
    let school_year_start = moment(2025, 8, 1, 0)?;

    store.insert_school("12AB", "Lyceum De Vecht").await?;
    store.insert_school("34CD", "Rivierencollege").await?;

    let students = [
        (
            "12AB",
            "100001",
            name("Jan", Some("de"), "Vries"),
            date(2012, 3, 14),
        ),
        (
            "12AB",
            "100002",
            name("Sara", None, "Bakker"),
            date(2010, 2, 1),
        ),
        (
            "12AB",
            "100003",
            name("Lotte", None, "Visser"),
            date(2007, 1, 10),
        ),
        (
            "12AB",
            "100004",
            name("Emma", Some("de"), "Vries"),
            date(2014, 9, 1),
        ),
        (
            "34CD",
            "200001",
            name("Noah", None, "Jansen"),
            date(2011, 6, 20),
        ),
    ];
    let mut student_ids = std::collections::HashMap::new();
    for (brin, username, person, birth_date) in students {
        let id = store
            .insert_account(
                NewAccount {
                    school_brin: brin,
                    username,
                    role: Role::Student,
                    password_hash: &password_hash,
                    name: person,
                    birth_date,
                },
                now,
            )
            .await?;
        store.enroll(&id, brin, school_year_start).await?;
        student_ids.insert(username, id);
    }
    let parent = store
        .insert_account(
            NewAccount {
                school_brin: "12AB",
                username: "p.devries",
                role: Role::Parent,
                password_hash: &password_hash,
                name: name("Petra", Some("de"), "Vries"),
                birth_date: None,
            },
            now,
        )
        .await?;
    for child in ["100001", "100004"] {
        if let Some(child_id) = student_ids.get(child) {
            store.add_guardianship(&parent, child_id, now).await?;
        }
    }
    store
        .insert_account(
            NewAccount {
                school_brin: "12AB",
                username: "beheer",
                role: Role::Supervisor,
                password_hash: &password_hash,
                name: name("Anouk", None, "Smit"),
                birth_date: None,
            },
            now,
        )
        .await?;

    // Accredited until the end of 31 December 2030, Dutch time.
    let accredited = Accreditation {
        status: AccreditationStatus::Accredited,
        valid_from: Some(moment(2025, 1, 1, 0)?),
        valid_until: Some(moment(2030, 12, 31, 23)?),
    };
    let pending = Accreditation {
        status: AccreditationStatus::Pending,
        valid_from: None,
        valid_until: None,
    };
    // The platform's own clients are admitted without an end date.
    let platform = Accreditation {
        status: AccreditationStatus::Accredited,
        valid_from: None,
        valid_until: None,
    };
    let with_secret = "client_secret_basic client_secret_post";
    let clients = [
        DemoClient {
            id: "studyspace-demo",
            name: "Studyspace (demo)",
            kind: "partner",
            redirect_uris: &DEMO_REDIRECTS,
            scopes: "openid offline_access naam rooster huiswerk cijfers",
            secret: Some("studyspace-demo-secret"),
            auth_methods: with_secret,
            accreditation: accredited.clone(),
        },
        DemoClient {
            id: "huiswerkhulp-demo",
            name: "Huiswerkhulp (demo)",
            kind: "partner",
            redirect_uris: &DEMO_REDIRECTS,
            scopes: "openid naam rooster huiswerk",
            secret: Some("huiswerkhulp-demo-secret"),
            auth_methods: with_secret,
            accreditation: accredited,
        },
        DemoClient {
            id: "ongeaccrediteerd-demo",
            name: "Ongeaccrediteerd (demo)",
            kind: "partner",
            redirect_uris: &DEMO_REDIRECTS,
            scopes: "openid naam rooster huiswerk",
            secret: Some("ongeaccrediteerd-demo-secret"),
            auth_methods: with_secret,
            accreditation: pending,
        },
        // The school's own app: first party, public (PKCE, no secret), no consent page.
        DemoClient {
            id: "schoolapp-demo",
            name: "Schoolapp (demo)",
            kind: "first_party",
            redirect_uris: &["http://127.0.0.1:9100/callback"],
            scopes: "openid offline_access naam rooster huiswerk cijfers",
            secret: None,
            auth_methods: "none",
            accreditation: platform.clone(),
        },
        // The school-data API, which introspects tokens.
        DemoClient {
            id: "schooldata-api-demo",
            name: "Schooldata-API (demo)",
            kind: "resource_server",
            redirect_uris: &[],
            scopes: "",
            secret: Some("schooldata-api-demo-secret"),
            auth_methods: with_secret,
            accreditation: platform.clone(),
        },
        // Management clients for the admin API.
        DemoClient {
            id: "beheer-12ab-demo",
            name: "Beheer Lyceum De Vecht (demo)",
            kind: "management",
            redirect_uris: &[],
            scopes: "beheer:12AB",
            secret: Some("beheer-12ab-demo-secret"),
            auth_methods: with_secret,
            accreditation: platform.clone(),
        },
        DemoClient {
            id: "platform-demo",
            name: "Platformbeheer (demo)",
            kind: "management",
            redirect_uris: &[],
            scopes: "platform",
            secret: Some("platform-demo-secret"),
            auth_methods: with_secret,
            accreditation: platform,
        },
    ];
    for client in clients {
        let secret_hash = match client.secret {
            Some(secret) => Some(hash_password(secret.to_string()).await?),
            None => None,
        };
        store
            .insert_client(
                NewClient {
                    client_id: client.id,
                    display_name: client.name,
                    kind: client.kind,
                    redirect_uris: client.redirect_uris,
                    allowed_scopes: client.scopes,
                    secret_hash: secret_hash.as_deref(),
                    auth_methods: client.auth_methods,
                    accreditation: client.accreditation,
                },
                now,
            )
            .await?;
    }

    // Links start closed; the demo school 12AB has opened Studyspace.
    store
        .set_link(
            "12AB",
            "studyspace-demo",
            true,
            Some("demo: koppeling opengezet"),
            now,
        )
        .await?;
    Ok(true)
}
