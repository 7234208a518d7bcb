//! The platform operator's registrations: bootstrap on an empty database, schools, partners
//! (pending until accredited, secret rotation, deactivation), resource servers and
//! management clients, through the admin API and the CLI; every refusal names the field.

use std::process::Command;

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{Callback, Outcome, TestApp, PASSWORD, REDIRECT};
use crate::{on_every_backend, on_every_backend_empty};

/// Run the real binary against the test server's database.
fn cli(app: &TestApp, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_poortwachter"))
        .args(args)
        .env("DATABASE_URL", app.database_url())
        .env("POORTWACHTER_ISSUER", &app.issuer)
        .env_remove("REDIS_URL")
        .env_remove("POORTWACHTER_CONFIG")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Sara (16+, 12AB) goes through `client_id`'s flow: the token response, or the status and
/// page of the refusal she sees instead.
async fn sara_with_partner(
    app: &TestApp,
    client_id: &str,
    secret: &str,
    scope: &str,
) -> (u16, Value) {
    let authorization = app.authorization(client_id, scope);
    let browser = app.browser();
    let login = browser.open(&authorization.url()).await.page();
    if !login.html.contains("name=\"password\"") {
        return (login.status.as_u16(), Value::String(login.html));
    }
    let callback = match browser.login(&login, "12AB", "100002", PASSWORD).await {
        Outcome::Left(location) => Callback::parse(&location),
        Outcome::Page(page) if page.html.contains("decision") => {
            browser.consent(&page, "approve", None).await.callback()
        }
        Outcome::Page(page) => return (page.status.as_u16(), Value::String(page.html)),
    };
    let (status, body) = app
        .exchange(
            (client_id, secret),
            callback.code(),
            &authorization.verifier,
        )
        .await;
    (status.as_u16(), body)
}

async fn audit_count(app: &TestApp) -> i64 {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM audit_log")
        .fetch_one(app.state.store.pool())
        .await
        .unwrap();
    n
}

/// Given an empty database, `bootstrap --json` prints a platform client once; a second run
/// refuses without printing any secret; `--force` adds another. The printed client works.
async fn bootstrap_creates_one_platform_client(app: TestApp) {
    let (code, out, err) = cli(&app, &["bootstrap", "--json"]);
    assert_eq!(code, 0, "{err}");
    let first: Value = serde_json::from_str(&out).unwrap();
    let id = first["client_id"].as_str().unwrap().to_string();
    let secret = first["client_secret"].as_str().unwrap().to_string();
    assert!(secret.len() >= 40);

    let (code, out, err) = cli(&app, &["bootstrap", "--json"]);
    assert_ne!(code, 0, "a second bootstrap must refuse");
    assert!(err.contains("--force"), "{err}");
    assert!(!out.contains(&secret) && !err.contains(&secret));

    let (code, out, _) = cli(&app, &["bootstrap", "--force", "--json"]);
    assert_eq!(code, 0);
    let second: Value = serde_json::from_str(&out).unwrap();
    assert_ne!(second["client_id"], first["client_id"]);
    assert_ne!(second["client_secret"], first["client_secret"]);

    // The stored secret is an argon2id hash, never the secret itself.
    let (hash,): (String,) = sqlx::query_as("SELECT secret_hash FROM clients WHERE client_id = $1")
        .bind(&id)
        .fetch_one(app.state.store.pool())
        .await
        .unwrap();
    assert!(hash.starts_with("$argon2id$"));
    assert!(!hash.contains(&secret));

    let (status, token) = app
        .token((&id, &secret), &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(status, 200, "{token}");
    assert_eq!(token["scope"], "platform");
    let (status, schools) = app
        .admin(
            "GET",
            "/api/admin/schools",
            token["access_token"].as_str().unwrap(),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(schools["schools"], json!([]));
}

/// Schools: 201, listed, renamed, duplicates 409, bad BRIN or name a 400 naming the field,
/// a school's own management client may not register schools.
async fn schools_are_registered_by_the_platform(app: TestApp) {
    let platform = app.management_token("platform-demo").await;
    let (status, body) = app
        .admin(
            "POST",
            "/api/admin/schools",
            &platform,
            Some(json!({"brin": "56ef", "name": "Het Baken"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body, json!({"brin": "56EF", "name": "Het Baken"}));

    let (status, body) = app
        .admin(
            "POST",
            "/api/admin/schools",
            &platform,
            Some(json!({"brin": "56EF", "name": "Nog een"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    for (input, field) in [
        (json!({"brin": "5EF6", "name": "X"}), "brin"),
        (json!({"brin": "56EFG", "name": "X"}), "brin"),
        (json!({"brin": "78GH", "name": "   "}), "name"),
        (json!({"brin": "78GH", "name": "x".repeat(201)}), "name"),
        (json!({"brin": "78GH", "name": "X", "extra": 1}), "extra"),
        (json!({"name": "X"}), "brin"),
    ] {
        let (status, body) = app
            .admin("POST", "/api/admin/schools", &platform, Some(input.clone()))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{input}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains(field),
            "{input}: {body}"
        );
    }

    app.clock.advance(Duration::seconds(1));
    let (status, body) = app
        .admin(
            "PATCH",
            "/api/admin/schools/56EF",
            &platform,
            Some(json!({"name": "Het Baken Almere"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "Het Baken Almere");
    let (_, list) = app
        .admin("GET", "/api/admin/schools", &platform, None)
        .await;
    let brins: Vec<&str> = list["schools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["brin"].as_str().unwrap())
        .collect();
    assert!(brins.contains(&"56EF") && brins.contains(&"12AB"), "{list}");
    let (status, _) = app
        .admin(
            "PATCH",
            "/api/admin/schools/99ZZ",
            &platform,
            Some(json!({"name": "X"})),
        )
        .await;
    assert_eq!(status, 404);

    let school = app.management_token("beheer-12ab-demo").await;
    let (status, _) = app
        .admin(
            "POST",
            "/api/admin/schools",
            &school,
            Some(json!({"brin": "78GH", "name": "X"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (_, log) = app
        .admin("GET", "/api/admin/schools/56EF/audit", &platform, None)
        .await;
    let actions: Vec<&str> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["school.rename", "school.register"], "{log}");
}

fn partner_input() -> Value {
    json!({
        "name": "Huiswerkinstituut Slim",
        "redirect_uris": [REDIRECT, "https://slim.example/callback"],
        "scopes": ["openid", "naam", "rooster", "huiswerk"],
        "token_endpoint_auth_method": "client_secret_basic",
        "contacts": ["privacy@slim.example"],
    })
}

/// Every refusal of a partner registration is a 400 naming the field, and writes nothing.
async fn partner_registration_is_validated(app: TestApp) {
    let platform = app.management_token("platform-demo").await;
    let before = audit_count(&app).await;
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "redirect_uris",
            json!(["http://slim.example/callback"]),
            "redirect_uris[0]",
        ),
        (
            "redirect_uris",
            json!(["https://slim.example/cb#x"]),
            "redirect_uris[0]",
        ),
        (
            "redirect_uris",
            json!(["https://*.slim.example/cb"]),
            "redirect_uris[0]",
        ),
        (
            "redirect_uris",
            json!([REDIRECT, "/callback"]),
            "redirect_uris[1]",
        ),
        ("redirect_uris", json!([]), "redirect_uris"),
        ("scopes", json!(["openid", "email"]), "scopes[1]"),
        ("scopes", json!([]), "scopes"),
        (
            "token_endpoint_auth_method",
            json!("none"),
            "token_endpoint_auth_method",
        ),
        ("name", json!(""), "name"),
        ("name", json!("x".repeat(201)), "name"),
        ("contacts", json!(["not an address"]), "contacts[0]"),
        ("client_secret", json!("mine"), "client_secret"),
    ];
    for (key, value, field) in cases {
        let mut input = partner_input();
        input[key] = value;
        let (status, body) = app
            .admin(
                "POST",
                "/api/admin/partners",
                &platform,
                Some(input.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{input}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains(field),
            "{field}: {body}"
        );
    }
    // Loopback over http is fine, in all three spellings.
    let mut input = partner_input();
    input["redirect_uris"] = json!([
        "http://127.0.0.1:9000/cb",
        "http://[::1]:9000/cb",
        "http://localhost:9000/cb"
    ]);
    let (status, body) = app
        .admin("POST", "/api/admin/partners", &platform, Some(input))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        audit_count(&app).await,
        before + 1,
        "only the valid one was written"
    );

    let school = app.management_token("beheer-12ab-demo").await;
    let (status, _) = app
        .admin(
            "POST",
            "/api/admin/partners",
            &school,
            Some(partner_input()),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

/// A new partner is pending: refused at /authorize and /token until the platform accredits
/// it and the school opens its link; then a student's flow works with the shown secret.
async fn a_registered_partner_is_pending_until_accredited(app: TestApp) {
    let platform = app.management_token("platform-demo").await;
    let (status, created) = app
        .admin(
            "POST",
            "/api/admin/partners",
            &platform,
            Some(partner_input()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["client_id"].as_str().unwrap().to_string();
    let secret = created["client_secret"].as_str().unwrap().to_string();
    assert!(id.starts_with("huiswerkinstituut-slim-"), "{id}");

    let (_, shown) = app
        .admin("GET", &format!("/api/admin/partners/{id}"), &platform, None)
        .await;
    assert_eq!(shown["accreditation"], "pending");
    assert_eq!(shown["active"], true);
    assert!(
        shown.get("client_secret").is_none(),
        "a secret is shown only once"
    );
    assert_eq!(shown["contacts"], json!(["privacy@slim.example"]));

    let authorization = app.authorization(&id, "openid naam rooster");
    let page = app.browser().open(&authorization.url()).await.page();
    assert_eq!(
        page.status,
        StatusCode::FORBIDDEN,
        "pending partners are refused"
    );

    let (status, _) = app
        .admin(
            "PUT",
            &format!("/api/admin/partners/{id}/accreditation"),
            &platform,
            Some(json!({"status": "accredited", "reason": "overeenkomst getekend"})),
        )
        .await;
    assert_eq!(status, 200);
    // Accredited, but the school's link starts closed.
    let (status, body) = sara_with_partner(&app, &id, &secret, "openid naam rooster").await;
    assert_eq!(status, 403, "closed link must refuse: {body}");

    let school = app.management_token("beheer-12ab-demo").await;
    let (status, _) = app
        .admin(
            "PUT",
            &format!("/api/admin/schools/12AB/links/{id}"),
            &school,
            Some(json!({"open": true, "reason": "verwerkersovereenkomst"})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, tokens) = sara_with_partner(&app, &id, &secret, "openid naam rooster").await;
    assert_eq!(status, 200, "{tokens}");
    let introspection = app
        .introspect(tokens["access_token"].as_str().unwrap())
        .await;
    assert_eq!(introspection["active"], true, "{introspection}");
    assert_eq!(introspection["client_id"], id.as_str());
}

/// Rotation: both secrets work during the grace period, only the new one after it.
async fn a_rotated_secret_keeps_working_for_the_grace_period(app: TestApp) {
    let platform = app.management_token("platform-demo").await;
    let (status, rotated) = app
        .admin(
            "POST",
            "/api/admin/partners/studyspace-demo/secret",
            &platform,
            None,
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let new_secret = rotated["client_secret"].as_str().unwrap().to_string();
    let old = ("studyspace-demo", "studyspace-demo-secret");
    let new = ("studyspace-demo", new_secret.as_str());
    // The introspection endpoint authenticates through the remembered-secret path: the old
    // secret, remembered there before the rotation, must also stop at the end of the grace.
    let introspect_status = |client: (&'static str, String)| {
        let http = app.backchannel();
        let url = app.url("/introspect");
        async move {
            http.post(url)
                .basic_auth(client.0, Some(client.1))
                .form(&[("token", "nothing")])
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    for client in [old, new] {
        assert_eq!(
            introspect_status((client.0, client.1.to_string())).await,
            200,
            "both secrets work at /introspect during the grace period"
        );
        let (status, body) = app
            .token(
                client,
                &[("grant_type", "refresh_token"), ("refresh_token", "x")],
            )
            .await;
        assert_eq!(
            status, 400,
            "authenticated, then the grant is wrong: {body}"
        );
        assert_eq!(body["error"], "invalid_grant");
    }
    app.clock
        .advance(Duration::hours(24) + Duration::seconds(1));
    assert_eq!(
        introspect_status((old.0, old.1.to_string())).await,
        401,
        "the old secret, remembered or not, stops after the grace period"
    );
    assert_eq!(introspect_status((new.0, new_secret.clone())).await, 200);
    let (status, body) = app
        .token(
            old,
            &[("grant_type", "refresh_token"), ("refresh_token", "x")],
        )
        .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "invalid_client");
    let (status, body) = app
        .token(
            new,
            &[("grant_type", "refresh_token"), ("refresh_token", "x")],
        )
        .await;
    assert_eq!(status, 400, "{body}");
}

/// A partner with grants is deactivated, never deleted: its tokens stop at the next call and
/// it gets no new ones; a partner that never had a grant is deleted.
async fn a_partner_with_grants_is_deactivated_not_deleted(app: TestApp) {
    let tokens = app.sara_tokens("openid offline_access rooster").await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(app.introspect(access).await["active"], true);
    let platform = app.management_token("platform-demo").await;
    let (status, removal) = app
        .admin(
            "DELETE",
            "/api/admin/partners/studyspace-demo",
            &platform,
            None,
        )
        .await;
    assert_eq!(status, 200, "{removal}");
    assert_eq!(removal["outcome"], "deactivated");
    assert_eq!(app.introspect(access).await, json!({"active": false}));
    let (status, _) = app
        .refresh(
            crate::helpers::STUDYSPACE,
            tokens["refresh_token"].as_str().unwrap(),
        )
        .await;
    assert_ne!(status, 200);
    let (_, shown) = app
        .admin(
            "GET",
            "/api/admin/partners/studyspace-demo",
            &platform,
            None,
        )
        .await;
    assert_eq!(shown["active"], false);

    // Reactivated, the grant is still there (deactivation is not withdrawal of consent).
    let (status, _) = app
        .admin(
            "PATCH",
            "/api/admin/partners/studyspace-demo",
            &platform,
            Some(json!({"active": true})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(app.introspect(access).await["active"], true);

    // Huiswerkhulp never had a grant: deleted.
    let (status, removal) = app
        .admin(
            "DELETE",
            "/api/admin/partners/huiswerkhulp-demo",
            &platform,
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(removal["outcome"], "deleted");
    let (status, _) = app
        .admin(
            "GET",
            "/api/admin/partners/huiswerkhulp-demo",
            &platform,
            None,
        )
        .await;
    assert_eq!(status, 404);
}

/// PATCH narrows a registration at once: a removed redirect URI is refused at /authorize.
async fn a_partner_registration_can_be_changed(app: TestApp) {
    let platform = app.management_token("platform-demo").await;
    let (status, body) = app
        .admin(
            "PATCH",
            "/api/admin/partners/studyspace-demo",
            &platform,
            Some(json!({"redirect_uris": ["https://studyspace.example/cb"], "name": "Studyspace"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["redirect_uris"],
        json!(["https://studyspace.example/cb"])
    );
    let page = app
        .browser()
        .open(&app.authorization("studyspace-demo", "openid").url())
        .await
        .page();
    assert_eq!(
        page.status,
        StatusCode::BAD_REQUEST,
        "old redirect URI refused"
    );
    let (status, body) = app
        .admin(
            "PATCH",
            "/api/admin/partners/studyspace-demo",
            &platform,
            Some(json!({"scopes": ["openid", "telefoon"]})),
        )
        .await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("scopes[1]"));
    let (status, _) = app
        .admin(
            "PATCH",
            "/api/admin/partners/nobody",
            &platform,
            Some(json!({"name": "X"})),
        )
        .await;
    assert_eq!(status, 404);
}

/// A registered resource server introspects; a management client for one school manages
/// that school only; an unknown school in its scope is a 400.
async fn resource_servers_and_management_clients(app: TestApp) {
    let platform = app.management_token("platform-demo").await;
    let (status, rs) = app
        .admin(
            "POST",
            "/api/admin/resource-servers",
            &platform,
            Some(json!({"name": "Roosterdienst"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{rs}");
    let tokens = app.sara_tokens("openid rooster").await;
    let answer = app
        .introspect_as(
            (
                rs["client_id"].as_str().unwrap(),
                rs["client_secret"].as_str().unwrap(),
            ),
            tokens["access_token"].as_str().unwrap(),
        )
        .await;
    assert_eq!(answer["active"], true);

    for (scope, field) in [
        ("beheer:99ZZ", "scope"),
        ("beheer:XYZ", "scope"),
        ("root", "scope"),
    ] {
        let (status, body) = app
            .admin(
                "POST",
                "/api/admin/management-clients",
                &platform,
                Some(json!({"name": "X", "scope": scope})),
            )
            .await;
        assert_eq!(status, 400, "{scope}: {body}");
        assert!(body["message"].as_str().unwrap().starts_with(field));
    }
    let (status, mc) = app
        .admin(
            "POST",
            "/api/admin/management-clients",
            &platform,
            Some(json!({"name": "Beheer Rivierencollege", "scope": "beheer:34CD"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, token) = app
        .token(
            (
                mc["client_id"].as_str().unwrap(),
                mc["client_secret"].as_str().unwrap(),
            ),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(status, 200);
    let token = token["access_token"].as_str().unwrap();
    let (status, _) = app
        .admin("GET", "/api/admin/schools/34CD/grants", token, None)
        .await;
    assert_eq!(status, 200);
    let (status, _) = app
        .admin("GET", "/api/admin/schools/12AB/grants", token, None)
        .await;
    assert_eq!(status, 403);
}

/// The console does what the API does, with `--json` for scripts and a message naming the
/// field (and exit code ≠ 0) for mistakes.
async fn the_cli_registers_like_the_api(app: TestApp) {
    let (code, out, err) = cli(
        &app,
        &[
            "school",
            "add",
            "--brin",
            "56EF",
            "--name",
            "Het Baken",
            "--json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["brin"], "56EF");
    let (code, _, err) = cli(&app, &["school", "add", "--brin", "5", "--name", "X"]);
    assert_ne!(code, 0);
    assert!(err.contains("brin"), "{err}");

    let (code, out, err) = cli(
        &app,
        &[
            "partner",
            "add",
            "--name",
            "Bijles Plus",
            "--redirect-uri",
            "https://bijles.example/cb",
            "--scope",
            "openid naam rooster",
            "--json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let partner: Value = serde_json::from_str(&out).unwrap();
    let id = partner["client_id"].as_str().unwrap();
    let (code, _, err) = cli(&app, &["partner", "accredit", id, "--reason", "getekend"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = cli(&app, &["partner", "show", id, "--json"]);
    assert_eq!(code, 0);
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["accreditation"], "accredited");
    assert_eq!(shown["scopes"], json!(["openid", "naam", "rooster"]));

    let (code, _, err) = cli(
        &app,
        &[
            "partner",
            "add",
            "--name",
            "X",
            "--redirect-uri",
            "http://x.example/cb",
            "--scope",
            "openid",
        ],
    );
    assert_ne!(code, 0);
    assert!(err.contains("redirect_uris[0]"), "{err}");

    let (code, out, _) = cli(
        &app,
        &[
            "management-client",
            "add",
            "--name",
            "Beheer Baken",
            "--scope",
            "beheer:56EF",
            "--json",
        ],
    );
    assert_eq!(code, 0);
    assert!(serde_json::from_str::<Value>(&out).unwrap()["client_secret"].is_string());

    // The console's changes are audited as `console`.
    let (actor,): (String,) = sqlx::query_as(
        "SELECT actor FROM audit_log WHERE action = 'partner.register' AND target = $1",
    )
    .bind(format!("partner:{id}"))
    .fetch_one(app.state.store.pool())
    .await
    .unwrap();
    assert_eq!(actor, "console");
}

on_every_backend_empty!(bootstrap_creates_one_platform_client);
on_every_backend!(
    schools_are_registered_by_the_platform,
    partner_registration_is_validated,
    a_registered_partner_is_pending_until_accredited,
    a_rotated_secret_keeps_working_for_the_grace_period,
    a_partner_with_grants_is_deactivated_not_deleted,
    a_partner_registration_can_be_changed,
    resource_servers_and_management_clients,
    the_cli_registers_like_the_api,
);
