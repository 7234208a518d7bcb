//! The admin API: scopes, validation, the audit log, and its OpenAPI description checked
//! against what the server really accepts.

use poortwachter::clock::Clock;
use serde_json::{json, Value};

use crate::helpers::{TestApp, STUDYSPACE};
use crate::on_every_backend;
use crate::openapi_check::{assert_documented, generated_json, send, Answer};

/// What a request body is, for the edge cases below.
const JSON: Option<&str> = Some("application/json");

/// Every operation of the description the server serves (generated from the code) answers
/// only documented statuses with bodies that fit the documented schemas: its success with the
/// documented example, and its refusals — no token (401 with `WWW-Authenticate`), every
/// required field left out, an unknown field, trailing data (400), another content type
/// (415). Every answer carries `Cache-Control: no-store`.
async fn openapi_description_matches_the_server(app: TestApp) {
    let served = send(&app, "GET", "/api/admin/openapi.json", None, None, None).await;
    assert_eq!(served.status, 200);
    let spec = served.body;
    assert_eq!(
        spec,
        serde_json::from_str::<Value>(&generated_json()).unwrap(),
        "the server serves the generated description"
    );
    let platform = app.management_token("platform-demo").await;
    let bearer = format!("Bearer {platform}");
    let auth = Some(bearer.as_str());
    // Things the path parameters refer to. Operations are called in the description's order
    // (paths alphabetically, then get, put, post, delete), each once with its example, so an
    // example must succeed on the demo data as the operations before it left it.
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
    // A login lock for the lock operations' example (100001) to list and lift.
    app.state
        .store
        .record_login_lock("12AB", "100001", now, now + chrono::Duration::minutes(15))
        .await
        .unwrap();

    let mut operations = 0;
    for (template, item) in spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            operations += 1;
            let method = method.to_uppercase();
            // Path parameters: the documented example, or a thing made above. A new operation
            // whose parameter has no example needs one (`example = ...` in its `params`), or
            // a value made here.
            let mut path = template.clone();
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                let name = parameter["name"].as_str().unwrap();
                let value = match name {
                    "id" => closure_id.clone(),
                    "grant_id" => grant_id.clone(),
                    _ => parameter["example"]
                        .as_str()
                        .unwrap_or_else(|| panic!("{template}: give {name} an example"))
                        .to_string(),
                };
                path = path.replace(&format!("{{{name}}}"), &value);
            }
            let what = format!("{method} {path}");
            // The body: the documented example, as JSON, or as it is for another media type
            // (a CSV upload, say), where the JSON edge cases below do not apply.
            let (body_type, example_bytes, example) =
                match operation["requestBody"]["content"].as_object() {
                    None => (None, None, None),
                    Some(contents) => {
                        let (media_type, content) = contents
                            .get_key_value("application/json")
                            .or_else(|| contents.iter().next())
                            .unwrap();
                        let example = content
                            .get("example")
                            .unwrap_or_else(|| panic!("{what}: document an example body"));
                        if media_type == "application/json" {
                            (JSON, Some(to_vec(example)), Some(example.clone()))
                        } else if media_type == "application/zip" {
                            // The shipped OneRoster sample of Het Baken (56EF), registered by
                            // the schools operation's example before this one.
                            let _ = example;
                            (Some("application/zip"), Some(sample_roster_zip()), None)
                        } else {
                            let raw = example.as_str().unwrap().as_bytes().to_vec();
                            (Some(media_type.as_str()), Some(raw), None)
                        }
                    }
                };
            let content = &operation["requestBody"]["content"]["application/json"];
            let check = |answer: &Answer, case: &str| {
                assert_documented(&spec, operation, answer, &format!("{what} {case}"));
                assert_eq!(
                    answer.header("cache-control"),
                    Some("no-store"),
                    "{what} {case}"
                );
            };

            for token in [None, Some("Bearer no-token")] {
                let answer = send(
                    &app,
                    &method,
                    &path,
                    token,
                    body_type,
                    example_bytes.clone(),
                )
                .await;
                assert_eq!(answer.status, 401, "{what} with {token:?}");
                assert!(
                    answer
                        .header("www-authenticate")
                        .is_some_and(|h| h.starts_with("Bearer ")),
                    "{what}: a 401 names the scheme"
                );
                check(&answer, "without a valid token");
            }

            if let Some(example) = &example {
                let schema = resolve(&spec, &content["schema"]);
                for field in schema["required"].as_array().into_iter().flatten() {
                    let field = field.as_str().unwrap();
                    let mut partial = example.clone();
                    partial.as_object_mut().unwrap().remove(field);
                    let answer =
                        send(&app, &method, &path, auth, JSON, Some(to_vec(&partial))).await;
                    assert_eq!(
                        answer.status, 400,
                        "{what} without {field}: {}",
                        answer.text
                    );
                    check(&answer, &format!("without {field}"));
                }
                let mut extended = example.clone();
                extended["surprise"] = json!(1);
                let answer = send(&app, &method, &path, auth, JSON, Some(to_vec(&extended))).await;
                assert_eq!(answer.status, 400, "{what} with an unknown field");
                assert!(
                    answer.body["message"]
                        .as_str()
                        .unwrap()
                        .contains("surprise"),
                    "{what}: the message names the unknown field: {}",
                    answer.text
                );
                check(&answer, "with an unknown field");

                let mut trailing = to_vec(example);
                trailing.extend_from_slice(b" {}");
                let answer = send(&app, &method, &path, auth, JSON, Some(trailing)).await;
                assert_eq!(answer.status, 400, "{what} with trailing data");
                check(&answer, "with trailing data");

                for content_type in [
                    None,
                    Some("text/plain"),
                    Some("application/x-www-form-urlencoded"),
                ] {
                    let answer = send(
                        &app,
                        &method,
                        &path,
                        auth,
                        content_type,
                        example_bytes.clone(),
                    )
                    .await;
                    assert_eq!(answer.status, 415, "{what} as {content_type:?}");
                    assert_eq!(answer.body["error"], "unsupported_media_type");
                    check(&answer, "not as JSON");
                }
            }

            let answer = send(&app, &method, &path, auth, body_type, example_bytes).await;
            assert!(answer.status.is_success(), "{what}: {}", answer.text);
            check(&answer, "with the example");
        }
    }
    assert_eq!(operations, KNOWN_OPERATIONS.len());
}

/// `examples/roster/56EF` as a zip, as a school uploads its SIS export.
fn sample_roster_zip() -> Vec<u8> {
    use std::io::Write;
    let folder = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/roster/56EF");
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for name in ["manifest.csv", "orgs.csv", "users.csv", "demographics.csv"] {
        zip.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(&std::fs::read(folder.join(name)).unwrap())
            .unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// The admin operations, as the generated description lists them. A route can only be added
/// with its documentation (`OpenApiRouter::routes`); this list makes a new one noticed.
const KNOWN_OPERATIONS: &[(&str, &str)] = &[
    ("POST", "/api/admin/management-clients"),
    ("GET", "/api/admin/partners"),
    ("POST", "/api/admin/partners"),
    ("GET", "/api/admin/partners/{client_id}"),
    ("PATCH", "/api/admin/partners/{client_id}"),
    ("DELETE", "/api/admin/partners/{client_id}"),
    ("POST", "/api/admin/partners/{client_id}/secret"),
    ("POST", "/api/admin/resource-servers"),
    ("GET", "/api/admin/schools"),
    ("POST", "/api/admin/schools"),
    ("PATCH", "/api/admin/schools/{brin}"),
    ("PUT", "/api/admin/partners/{client_id}/accreditation"),
    ("POST", "/api/admin/schools/{brin}/activation-codes"),
    ("GET", "/api/admin/schools/{brin}/audit"),
    ("GET", "/api/admin/schools/{brin}/locks"),
    ("DELETE", "/api/admin/schools/{brin}/locks/{username}"),
    ("POST", "/api/admin/schools/{brin}/roster"),
    ("GET", "/api/admin/schools/{brin}/closures"),
    ("POST", "/api/admin/schools/{brin}/closures"),
    ("DELETE", "/api/admin/schools/{brin}/closures/{id}"),
    ("GET", "/api/admin/schools/{brin}/grants"),
    (
        "POST",
        "/api/admin/schools/{brin}/grants/{grant_id}/withdraw",
    ),
    (
        "DELETE",
        "/api/admin/schools/{brin}/guardianships/{parent}/{student}",
    ),
    ("PUT", "/api/admin/schools/{brin}/links/{client_id}"),
    (
        "POST",
        "/api/admin/schools/{brin}/students/{username}/leave",
    ),
];

/// Every documented operation is known, every known one documented, each documents its
/// security and its refusals; what is not documented under `/api/admin/` does not answer.
async fn every_admin_route_is_documented(app: TestApp) {
    let spec: Value = serde_json::from_str(&generated_json()).unwrap();
    let mut documented = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            documented.push((method.to_uppercase(), path.clone()));
            let what = format!("{method} {path}");
            let security = operation["security"].as_array().unwrap();
            assert!(
                security.iter().all(|s| s.get("bearer").is_some()),
                "{what} is secured by the bearer scheme"
            );
            let responses = operation["responses"].as_object().unwrap();
            for code in ["401", "403", "404"] {
                assert!(responses.contains_key(code), "{what} documents {code}");
            }
            if operation.get("requestBody").is_some() {
                for code in ["400", "413", "415"] {
                    assert!(responses.contains_key(code), "{what} documents {code}");
                }
            }
        }
    }
    documented.sort();
    let mut known: Vec<(String, String)> = KNOWN_OPERATIONS
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    known.sort();
    assert_eq!(documented, known);

    let platform = app.management_token("platform-demo").await;
    let bearer = format!("Bearer {platform}");
    for (method, path) in [
        ("DELETE", "/api/admin/schools"),
        ("GET", "/api/admin/schools/12AB"),
        ("GET", "/api/admin/schools/12AB/students/100003"),
        ("PUT", "/api/admin/partners/studyspace-demo"),
        ("GET", "/api/admin/openapi.yaml"),
        ("GET", "/api/admin/schools/12AB/links/studyspace-demo"),
        ("DELETE", "/api/admin/schools/12AB/grants"),
        ("POST", "/api/admin/schools/12AB/audit"),
        ("GET", "/api/admin/partners/studyspace-demo/accreditation"),
    ] {
        let answer = send(&app, method, path, Some(&bearer), None, None).await;
        assert!(
            [404, 405].contains(&answer.status.as_u16()),
            "{method} {path} is not documented, yet answers {}",
            answer.status
        );
    }
}

/// The schema an operation's `$ref` points at.
fn resolve<'a>(spec: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => spec.pointer(&reference[1..]).unwrap(),
        None => schema,
    }
}

fn to_vec(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap()
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

/// The edges of every admin request and answer, one by one: the Bearer scheme in any case
/// (RFC 9110 §11.1), `WWW-Authenticate` on every 401, JSON with parameters, bodies too large
/// (413), trailing data, an optional body left out, the scope checked before the body, and
/// `no-store` on success and on every refusal.
async fn admin_request_and_response_edges(app: TestApp) {
    let beheer = app.management_token("beheer-12ab-demo").await;
    let grants = "/api/admin/schools/12AB/grants";
    let link = "/api/admin/schools/12AB/links/huiswerkhulp-demo";
    let open = Some(to_vec(&json!({ "open": true, "reason": "getekend" })));

    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let answer = send(
            &app,
            "GET",
            grants,
            Some(&format!("{scheme} {beheer}")),
            None,
            None,
        )
        .await;
        assert_eq!(answer.status, 200, "{scheme}: {}", answer.text);
        assert_eq!(answer.header("cache-control"), Some("no-store"));
    }
    for authorization in [
        None,
        Some(format!("Basic {beheer}")),
        Some(format!("Bearer{beheer}")),
        Some("Bearer ".to_string()),
        Some(format!("Bearer {beheer}x")),
    ] {
        let answer = send(&app, "GET", grants, authorization.as_deref(), None, None).await;
        assert_eq!(answer.status, 401, "{authorization:?}");
        assert_eq!(answer.body["error"], "invalid_token");
        assert!(answer
            .header("www-authenticate")
            .is_some_and(|h| h.starts_with("Bearer realm=")));
        assert_eq!(answer.header("cache-control"), Some("no-store"));
    }
    let auth = format!("Bearer {beheer}");
    let auth = Some(auth.as_str());

    for content_type in [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON;charset=UTF-8",
    ] {
        let answer = send(&app, "PUT", link, auth, Some(content_type), open.clone()).await;
        assert_eq!(answer.status, 200, "{content_type}: {}", answer.text);
        assert_eq!(answer.body["open"], true);
    }
    for content_type in [
        None,
        Some("text/json"),
        Some("application/jsonx"),
        Some("multipart/form-data"),
    ] {
        let answer = send(&app, "PUT", link, auth, content_type, open.clone()).await;
        assert_eq!(answer.status, 415, "{content_type:?}");
        assert_eq!(answer.body["error"], "unsupported_media_type");
        assert_eq!(answer.header("cache-control"), Some("no-store"));
    }

    // Trailing data, even a second valid object, is refused; trailing white space is not data.
    for (body, status) in [
        (
            &b"{\"open\": true, \"reason\": \"r\"} {\"open\": false}"[..],
            400,
        ),
        (b"{\"open\": true, \"reason\": \"r\"}x", 400),
        (b"{\"open\": true, \"reason\": \"r\"} \n", 200),
    ] {
        let answer = send(&app, "PUT", link, auth, JSON, Some(body.to_vec())).await;
        assert_eq!(
            answer.status,
            status,
            "{}: {}",
            String::from_utf8_lossy(body),
            answer.text
        );
    }
    let answer = send(
        &app,
        "PUT",
        link,
        auth,
        JSON,
        Some(b"{\"open\":true,\"reason\":\"r\",\"opne\":false}".to_vec()),
    )
    .await;
    assert_eq!(answer.status, 400);
    assert!(
        answer.body["message"]
            .as_str()
            .unwrap()
            .contains("unknown field `opne`"),
        "{}",
        answer.text
    );

    // At most 1 MiB.
    let huge = to_vec(&json!({ "open": true, "reason": "x".repeat(1024 * 1024) }));
    let answer = send(&app, "PUT", link, auth, JSON, Some(huge)).await;
    assert_eq!(answer.status, 413, "{}", answer.text);
    assert_eq!(answer.body["error"], "content_too_large");
    assert_eq!(answer.header("cache-control"), Some("no-store"));

    // The scope is checked before the body: another school's manager learns nothing from it.
    let other = "/api/admin/schools/34CD/links/huiswerkhulp-demo";
    for (content_type, body) in [(Some("text/plain"), b"x".to_vec()), (JSON, b"{".to_vec())] {
        let answer = send(&app, "PUT", other, auth, content_type, Some(body)).await;
        assert_eq!(answer.status, 403, "{}", answer.text);
        assert_eq!(answer.header("cache-control"), Some("no-store"));
    }
    let answer = send(
        &app,
        "GET",
        "/api/admin/schools/99ZZ/grants",
        Some(&format!(
            "Bearer {}",
            app.management_token("platform-demo").await
        )),
        None,
        None,
    )
    .await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.header("cache-control"), Some("no-store"));

    // The reason for leaving is optional: no body, an empty JSON body or `null` will do.
    let leave = |student: &str| format!("/api/admin/schools/12AB/students/{student}/leave");
    let answer = send(
        &app,
        "POST",
        &leave("100003"),
        auth,
        Some("text/plain"),
        Some(b"diploma".to_vec()),
    )
    .await;
    assert_eq!(answer.status, 415, "a body that is there must be JSON");
    for (student, content_type, body) in [
        ("100001", None, None),
        ("100003", JSON, Some(Vec::new())),
        ("100004", JSON, Some(b"null".to_vec())),
    ] {
        let answer = send(&app, "POST", &leave(student), auth, content_type, body).await;
        assert_eq!(answer.status, 200, "{student}: {}", answer.text);
        assert_eq!(answer.body["student_number"], student);
    }
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
    every_admin_route_is_documented,
    admin_request_and_response_edges,
    admin_refuses_wrong_scope_unknown_things_and_bad_bodies,
    management_tokens_come_only_from_management_clients,
    every_change_is_audited,
);
