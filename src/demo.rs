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
    let partners = [
        (
            "studyspace-demo",
            "Studyspace (demo)",
            "openid offline_access naam rooster huiswerk cijfers",
            "studyspace-demo-secret",
            accredited.clone(),
        ),
        (
            "huiswerkhulp-demo",
            "Huiswerkhulp (demo)",
            "openid naam rooster huiswerk",
            "huiswerkhulp-demo-secret",
            accredited.clone(),
        ),
        (
            "ongeaccrediteerd-demo",
            "Ongeaccrediteerd (demo)",
            "openid naam rooster huiswerk",
            "ongeaccrediteerd-demo-secret",
            Accreditation {
                status: AccreditationStatus::Pending,
                valid_from: None,
                valid_until: None,
            },
        ),
    ];
    for (client_id, display_name, scopes, secret, accreditation) in partners {
        let secret_hash = hash_password(secret.to_string()).await?;
        store
            .insert_client(
                NewClient {
                    client_id,
                    display_name,
                    kind: "partner",
                    redirect_uris: &DEMO_REDIRECTS,
                    allowed_scopes: scopes,
                    secret_hash: Some(&secret_hash),
                    auth_methods: "client_secret_basic client_secret_post",
                    accreditation,
                },
                now,
            )
            .await?;
    }
    // The platform's own clients: the school app (first party, public, PKCE), the school-data
    // API (a resource server that introspects), and two management clients for the admin API.
    let platform = Accreditation {
        status: AccreditationStatus::Accredited,
        valid_from: None,
        valid_until: None,
    };
    let own_clients: [(&str, &str, &str, &[&str], &str, Option<&str>, &str); 4] = [
        (
            "schoolapp-demo",
            "Schoolapp (demo)",
            "first_party",
            &["http://127.0.0.1:9100/callback"],
            "openid offline_access naam rooster huiswerk cijfers",
            None,
            "none",
        ),
        (
            "schooldata-api-demo",
            "Schooldata-API (demo)",
            "resource_server",
            &[],
            "",
            Some("schooldata-api-demo-secret"),
            "client_secret_basic client_secret_post",
        ),
        (
            "beheer-12ab-demo",
            "Beheer Lyceum De Vecht (demo)",
            "management",
            &[],
            "beheer:12AB",
            Some("beheer-12ab-demo-secret"),
            "client_secret_basic client_secret_post",
        ),
        (
            "platform-demo",
            "Platformbeheer (demo)",
            "management",
            &[],
            "platform",
            Some("platform-demo-secret"),
            "client_secret_basic client_secret_post",
        ),
    ];
    for (client_id, display_name, kind, redirect_uris, scopes, secret, auth_methods) in own_clients
    {
        let secret_hash = match secret {
            Some(secret) => Some(hash_password(secret.to_string()).await?),
            None => None,
        };
        store
            .insert_client(
                NewClient {
                    client_id,
                    display_name,
                    kind,
                    redirect_uris,
                    allowed_scopes: scopes,
                    secret_hash: secret_hash.as_deref(),
                    auth_methods,
                    accreditation: platform.clone(),
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
