//! The admin API: scopes, validation, the audit log, and its OpenAPI description checked
//! against what the server really accepts.

use poortwachter::clock::Clock;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{TestApp, STUDYSPACE};
use crate::on_every_backend;

const OPENAPI: &str = include_str!("../../docs/openapi.json");

/// Every documented operation answers its documented success status with the documented
/// example body; every documented required field, left out, is a 400; no token is a 401.
async fn openapi_description_matches_the_server(app: TestApp) {
    let spec: Value = serde_json::from_str(OPENAPI).unwrap();
    let platform = app.management_token("platform-demo").await;
    // Things the path parameters refer to.
    let grant_holder = app.sara_tokens("openid rooster huiswerk").await;
    assert!(grant_holder["access_token"].is_string());
    let (_, grants) = app
        .admin("GET", "/api/admin/schools/12AB/grants", &platform, None)
        .await;
    let grant_id = grants["grants"][0]["grant_id"]
        .as_str()
        .unwrap()
        .to_string();
    let now = app.clock.now();
    let (_, closure) = app
        .admin(
            "POST",
            "/api/admin/schools/12AB/closures",
            &platform,
            Some(json!({
                "scope": "cijfers", "audiences": ["partners"], "starts_at": now.to_rfc3339(),
                "ends_at": (now + chrono::Duration::days(1)).to_rfc3339(), "reason": "test",
            })),
        )
        .await;
    let closure_id = closure["id"].as_str().unwrap().to_string();

    let mut operations = 0;
    for (template, item) in spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            operations += 1;
            let mut path = template.clone();
            for parameter in operation["parameters"].as_array().unwrap() {
                let name = parameter["name"].as_str().unwrap();
                let value = match name {
                    "id" => closure_id.clone(),
                    "grant_id" => grant_id.clone(),
                    _ => parameter["example"].as_str().unwrap().to_string(),
                };
                path = path.replace(&format!("{{{name}}}"), &value);
            }
            let content = &operation["requestBody"]["content"]["application/json"];
            let example = content.get("example").cloned();
            let method_upper = method.to_uppercase();

            let (status, _) = app
                .admin(&method_upper, &path, "no-token", example.clone())
                .await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method_upper} {path} without a token"
            );

            if let Some(required) = content["schema"]["required"].as_array() {
                for field in required {
                    let mut partial = example.clone().unwrap();
                    partial
                        .as_object_mut()
                        .unwrap()
                        .remove(field.as_str().unwrap());
                    let (status, body) = app
                        .admin(&method_upper, &path, &platform, Some(partial))
                        .await;
                    assert_eq!(
                        status,
                        StatusCode::BAD_REQUEST,
                        "{method_upper} {path} without {field}: {body}"
                    );
                    assert!(body["message"].is_string());
                }
            }

            let expected: u16 = operation["responses"]
                .as_object()
                .unwrap()
                .keys()
                .find(|code| code.starts_with('2'))
                .unwrap()
                .parse()
                .unwrap();
            let (status, body) = app.admin(&method_upper, &path, &platform, example).await;
            assert_eq!(status.as_u16(), expected, "{method_upper} {path}: {body}");
            for code in operation["responses"].as_object().unwrap().keys() {
                assert!(["200", "201", "204", "400", "401", "403", "404"].contains(&code.as_str()));
            }
        }
    }
    assert_eq!(operations, 10);
}

async fn admin_refuses_wrong_scope_unknown_things_and_bad_bodies(app: TestApp) {
    let beheer = app.management_token("beheer-12ab-demo").await;
    let platform = app.management_token("platform-demo").await;
    let open = json!({ "open": true, "reason": "r" });

    // A school's manager cannot touch another school, nor accreditation.
    let (status, body) = app
        .admin(
            "PUT",
            "/api/admin/schools/34CD/links/studyspace-demo",
            &beheer,
            Some(open.clone()),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = app
        .admin("GET", "/api/admin/schools/34CD/grants", &beheer, None)
        .await;
    assert_eq!(status, 403);
    let (status, _) = app
        .admin(
            "PUT",
            "/api/admin/partners/studyspace-demo/accreditation",
            &beheer,
            Some(json!({ "status": "suspended" })),
        )
        .await;
    assert_eq!(status, 403);

    // Unknown things are 404.
    for (method, path, body) in [
        (
            "PUT",
            "/api/admin/schools/99ZZ/links/studyspace-demo",
            Some(open.clone()),
        ),
        (
            "PUT",
            "/api/admin/schools/12AB/links/onbekend",
            Some(open.clone()),
        ),
        (
            "PUT",
            "/api/admin/schools/12AB/links/schooldata-api-demo",
            Some(open.clone()),
        ),
        (
            "POST",
            "/api/admin/schools/12AB/students/999999/leave",
            None,
        ),
        (
            "POST",
            "/api/admin/schools/12AB/students/p.devries/leave",
            None,
        ),
        ("DELETE", "/api/admin/schools/12AB/closures/onbekend", None),
        (
            "DELETE",
            "/api/admin/schools/12AB/guardianships/p.devries/100002",
            None,
        ),
        (
            "POST",
            "/api/admin/schools/12AB/grants/onbekend/withdraw",
            Some(json!({ "reason": "r" })),
        ),
        (
            "PUT",
            "/api/admin/partners/onbekend/accreditation",
            Some(json!({ "status": "suspended" })),
        ),
    ] {
        let (status, answer) = app.admin(method, path, &platform, body).await;
        assert_eq!(status, 404, "{method} {path}: {answer}");
        assert_eq!(answer["error"], "not_found");
    }

    // Malformed bodies are 400 with a message that says what is wrong.
    let closures = "/api/admin/schools/12AB/closures";
    let valid = json!({ "scope": "cijfers", "audiences": ["parents"], "starts_at": "2026-12-01T00:00:00Z",
                        "ends_at": "2026-12-08T00:00:00Z", "reason": "toetsweek" });
    let with = |key: &str, value: Value| {
        let mut body = valid.clone();
        body[key] = value;
        body
    };
    for (body, hint) in [
        (with("scope", json!("email")), "scope"),
        (with("scope", json!("openid")), "scope"),
        (with("audiences", json!([])), "audiences"),
        (with("audiences", json!(["teachers"])), "teachers"),
        (with("ends_at", json!("2026-11-01T00:00:00Z")), "after"),
        (with("starts_at", json!("next monday")), "starts_at"),
        (with("reason", json!("  ")), "reason"),
    ] {
        let (status, answer) = app.admin("POST", closures, &beheer, Some(body)).await;
        assert_eq!(status, 400, "{answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(hint),
            "{hint}: {answer}"
        );
    }
    let raw = app
        .backchannel()
        .put(app.url("/api/admin/schools/12AB/links/studyspace-demo"))
        .bearer_auth(&beheer)
        .header("content-type", "application/json")
        .body("{\"open\": tru")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    let (status, _) = app
        .admin(
            "PUT",
            "/api/admin/schools/12AB/links/studyspace-demo",
            &beheer,
            Some(json!({ "open": "yes", "reason": "r" })),
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = app
        .admin(
            "PUT",
            "/api/admin/partners/studyspace-demo/accreditation",
            &platform,
            Some(json!({ "status": "pending" })),
        )
        .await;
    assert_eq!(status, 400);
}

async fn management_tokens_come_only_from_management_clients(app: TestApp) {
    let (status, body) = app
        .token(STUDYSPACE, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "unauthorized_client");
    let (status, body) = app
        .token(
            ("beheer-12ab-demo", "beheer-12ab-demo-secret"),
            &[("grant_type", "client_credentials"), ("scope", "platform")],
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_scope");
    let (status, body) = app
        .token(
            ("beheer-12ab-demo", "beheer-12ab-demo-secret"),
            &[
                ("grant_type", "client_credentials"),
                ("scope", "beheer:12AB"),
            ],
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["scope"], "beheer:12AB");
    // A partner's access token is not a management token.
    let partner = app.sara_tokens("openid rooster").await;
    let (status, _) = app
        .admin(
            "GET",
            "/api/admin/schools/12AB/grants",
            partner["access_token"].as_str().unwrap(),
            None,
        )
        .await;
    assert_eq!(status, 401);
    // Management tokens expire like any other.
    let beheer = app.management_token("beheer-12ab-demo").await;
    app.clock.advance(chrono::Duration::minutes(16));
    let (status, _) = app
        .admin("GET", "/api/admin/schools/12AB/grants", &beheer, None)
        .await;
    assert_eq!(status, 401);
}

async fn every_change_is_audited(app: TestApp) {
    let beheer = app.management_token("beheer-12ab-demo").await;
    app.admin(
        "PUT",
        "/api/admin/schools/12AB/links/huiswerkhulp-demo",
        &beheer,
        Some(json!({ "open": true, "reason": "verwerkersovereenkomst getekend" })),
    )
    .await;
    app.admin(
        "POST",
        "/api/admin/schools/12AB/students/100003/leave",
        &beheer,
        Some(json!({ "reason": "diploma" })),
    )
    .await;
    let (status, log) = app
        .admin("GET", "/api/admin/schools/12AB/audit", &beheer, None)
        .await;
    assert_eq!(status, 200);
    // The demo's own registration of the school (by the actor `demo`) is in the log too.
    let entries: Vec<&Value> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"] != "demo")
        .collect();
    assert_eq!(entries.len(), 2, "{log}");
    let link = entries.iter().find(|e| e["action"] == "link.open").unwrap();
    assert_eq!(link["actor"], "beheer-12ab-demo");
    assert_eq!(link["target"], "school:12AB/link:huiswerkhulp-demo");
    assert_eq!(link["reason"], "verwerkersovereenkomst getekend");
    assert!(link["at"].as_str().unwrap().starts_with("2026-11-23"));
    assert!(entries
        .iter()
        .any(|e| e["action"] == "student.leave" && e["reason"] == "diploma"));
}

on_every_backend!(
    openapi_description_matches_the_server,
    admin_refuses_wrong_scope_unknown_things_and_bad_bodies,
    management_tokens_come_only_from_management_clients,
    every_change_is_audited,
);
