//! From an empty database to a live school, as a new operator does it: bootstrap, the
//! platform client registers a school, a partner (accredited; the school opens its link) and a
//! resource server, the school's people come from its SIS export, a parent activates with the
//! letter's code, consents for a child in the partner's flow, and the resource server sees an
//! active token — until the next bulk export no longer has that child.

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{Callback, TestApp};
use crate::on_every_backend_empty;

const NEW_PASSWORD: &str = "zonnebloem-rivier-42";

/// The shipped OneRoster sample for Het Baken (56EF), as a zip; `drop_user` leaves one
/// person out of `users.csv` and `demographics.csv` (by sourcedId), as the SIS does when a student has left.
fn sample_zip(drop_user: Option<&str>) -> Vec<u8> {
    let folder = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/roster/56EF");
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for name in ["manifest.csv", "orgs.csv", "users.csv", "demographics.csv"] {
        let mut text = std::fs::read_to_string(folder.join(name)).unwrap();
        if let (Some(dropped), "users.csv" | "demographics.csv") = (drop_user, name) {
            text = text
                .lines()
                .filter(|line| !line.starts_with(&format!("{dropped},")))
                .map(|line| {
                    // The parent's agentSourcedIds no longer name the dropped student.
                    line.replace(&format!("\"{dropped},"), "\"")
                        .replace(&format!(",{dropped}\""), "\"")
                })
                .collect::<Vec<_>>()
                .join("\n")
                + "\n";
        }
        zip.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(text.as_bytes()).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

async fn import(app: &TestApp, token: &str, zip: Vec<u8>) -> (StatusCode, Value) {
    let response = app
        .backchannel()
        .post(app.url("/api/admin/schools/56EF/roster?dry_run=false"))
        .bearer_auth(token)
        .header("Content-Type", "application/zip")
        .body(zip)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn token_of(app: &TestApp, credentials: &Value) -> String {
    let (status, body) = app
        .token(
            (
                credentials["client_id"].as_str().unwrap(),
                credentials["client_secret"].as_str().unwrap(),
            ),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_string()
}

async fn created(app: &TestApp, token: &str, path: &str, body: Value) -> Value {
    let (status, answer) = app.admin("POST", path, token, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{path}: {answer}");
    answer
}

async fn from_an_empty_database_to_a_live_school(app: TestApp) {
    // 1. Bootstrap at the console: the platform's first management client.
    let output = Command::new(env!("CARGO_BIN_EXE_poortwachter"))
        .args(["bootstrap", "--json"])
        .env("DATABASE_URL", app.database_url())
        .env_remove("REDIS_URL")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let platform_client: Value = serde_json::from_slice(&output.stdout).unwrap();
    let platform = token_of(&app, &platform_client).await;

    // 2. The platform registers the school, a partner, a resource server and the school's
    //    own management client.
    created(
        &app,
        &platform,
        "/api/admin/schools",
        json!({"brin": "56EF", "name": "Het Baken"}),
    )
    .await;
    let partner = created(
        &app,
        &platform,
        "/api/admin/partners",
        json!({
            "name": "Huiswerkinstituut Slim",
            "redirect_uris": ["http://127.0.0.1:9000/callback"],
            "scopes": ["openid", "offline_access", "naam", "rooster", "huiswerk", "cijfers"],
            "token_endpoint_auth_method": "client_secret_post",
            "contacts": ["privacy@slim.example"],
        }),
    )
    .await;
    let partner_id = partner["client_id"].as_str().unwrap().to_string();
    let partner_secret = partner["client_secret"].as_str().unwrap().to_string();
    let (status, body) = app
        .admin(
            "PUT",
            &format!("/api/admin/partners/{partner_id}/accreditation"),
            &platform,
            Some(json!({"status": "accredited", "reason": "overeenkomst getekend"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let resource_server = created(
        &app,
        &platform,
        "/api/admin/resource-servers",
        json!({"name": "Schooldata-API"}),
    )
    .await;
    let school_client = created(
        &app,
        &platform,
        "/api/admin/management-clients",
        json!({"name": "Beheer Het Baken", "scope": "beheer:56EF"}),
    )
    .await;
    let school = token_of(&app, &school_client).await;

    // 3. The school opens its link to the partner and imports its SIS export.
    let (status, body) = app
        .admin(
            "PUT",
            &format!("/api/admin/schools/56EF/links/{partner_id}"),
            &school,
            Some(json!({"open": true, "reason": "verwerkersovereenkomst getekend"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, report) = import(&app, &school, sample_zip(None)).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["students"]["added"], 6, "{report}");
    assert_eq!(report["parents"]["added"], 4, "{report}");

    // 4. A letter for the parent Mirjam van den Berg (guardian of Daan, 13, and Fleur, 16).
    let (status, letters) = app
        .admin(
            "POST",
            "/api/admin/schools/56EF/activation-codes",
            &school,
            Some(json!({"usernames": ["m.vandenberg"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{letters}");
    let code = letters[0]["code"].as_str().unwrap().to_string();

    // 5. She starts at the partner's app, activates her account from the login page, and
    //    consents for Daan.
    let authorization = app
        .authorization(&partner_id, "openid offline_access naam rooster huiswerk")
        .set("acr_values", "tenant:56EF");
    let browser = app.browser();
    let login = browser.open(&authorization.url()).await.page();
    let activate_link = login
        .link("activate")
        .expect("the login page links to /activate");
    let page = browser.open(&activate_link).await.page();
    let consent = browser
        .post(
            "/activate",
            &[
                ("csrf", page.input("csrf").unwrap().as_str()),
                ("request", page.input("request").unwrap().as_str()),
                ("school", "56EF"),
                ("username", "m.vandenberg"),
                ("code", code.as_str()),
                ("password", NEW_PASSWORD),
                ("password_confirm", NEW_PASSWORD),
            ],
        )
        .await
        .page();
    assert!(consent.html.contains("Daan"), "{}", consent.html);
    let callback: Callback = browser
        .consent(&consent, "approve", Some("560001"))
        .await
        .callback();
    let response = app
        .backchannel()
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", callback.code()),
            ("redirect_uri", "http://127.0.0.1:9000/callback"),
            ("code_verifier", authorization.verifier.as_str()),
            ("client_id", partner_id.as_str()),
            ("client_secret", partner_secret.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.unwrap();
    let access_token = tokens["access_token"].as_str().unwrap();

    // 6. The resource server sees an active token about Daan, with his mother as actor.
    let rs = (
        resource_server["client_id"].as_str().unwrap(),
        resource_server["client_secret"].as_str().unwrap(),
    );
    let answer = app.introspect_as(rs, access_token).await;
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["school"], "56EF");
    assert_eq!(answer["student"]["student_number"], "560001", "{answer}");
    assert_eq!(answer["act"]["role"], "parent", "{answer}");

    // 7. The next bulk export no longer has Daan: he has left, and the very same token is
    //    inactive at the next call.
    let (status, report) = import(&app, &school, sample_zip(Some("s-1001"))).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["students"]["leaving"], 1, "{report}");
    assert_eq!(
        app.introspect_as(rs, access_token).await,
        json!({"active": false})
    );
}

on_every_backend_empty!(from_an_empty_database_to_a_live_school);
