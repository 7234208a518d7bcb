//! The small edges: management tokens are revocable (RFC 7009), `/metrics` is not public,
//! the `Basic` scheme is case-insensitive and every 401 carries `WWW-Authenticate`, and every
//! response has `nosniff` (HSTS on https, CSP `form-action` limited to us and the partner).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use reqwest::StatusCode;

use crate::helpers::{TestApp, METRICS_TOKEN, REDIRECT, STUDYSPACE};
use crate::on_every_backend;

const BEHEER: (&str, &str) = ("beheer-12ab-demo", "beheer-12ab-demo-secret");

async fn revoke(app: &TestApp, client: (&str, &str), token: &str) -> StatusCode {
    app.backchannel()
        .post(app.url("/revoke"))
        .basic_auth(client.0, Some(client.1))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
        .status()
}

async fn a_revoked_management_token_gets_401(app: TestApp) {
    let token = app.management_token(BEHEER.0).await;
    let (status, _) = app
        .admin("GET", "/api/admin/schools/12AB/audit", &token, None)
        .await;
    assert_eq!(status, 200);
    // Another client cannot revoke it (and learns nothing: 200 either way).
    assert_eq!(revoke(&app, STUDYSPACE, &token).await, 200);
    let (status, _) = app
        .admin("GET", "/api/admin/schools/12AB/audit", &token, None)
        .await;
    assert_eq!(status, 200);
    // Its own client can.
    assert_eq!(revoke(&app, BEHEER, &token).await, 200);
    let response = app
        .backchannel()
        .get(app.url("/api/admin/schools/12AB/audit"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(response.headers().contains_key("www-authenticate"));
}

async fn basic_is_case_insensitive_and_every_401_has_a_challenge(app: TestApp) {
    let encoded = STANDARD.encode(format!("{}:{}", BEHEER.0, BEHEER.1));
    for scheme in ["Basic", "BASIC", "basic", "bAsIc"] {
        let response = app
            .backchannel()
            .post(app.url("/token"))
            .header("authorization", format!("{scheme} {encoded}"))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{scheme}");
    }
    for header in [Some("Basic"), Some("Basic "), Some("basic"), None] {
        let mut request = app
            .backchannel()
            .post(app.url("/token"))
            .form(&[("grant_type", "client_credentials")]);
        if let Some(value) = header {
            request = request.header("authorization", value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{header:?}");
        assert!(
            response.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Basic"),
            "{header:?}"
        );
    }
    // The bearer scheme too (userinfo).
    let tokens = app.sara_tokens("openid rooster").await;
    let response = app
        .backchannel()
        .get(app.url("/userinfo"))
        .header(
            "authorization",
            format!("BEARER {}", tokens["access_token"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

async fn security_headers_on_every_response(app: TestApp) {
    let browser = app.browser();
    let login = browser
        .raw_get(&app.authorization(STUDYSPACE.0, "openid").url())
        .await;
    let location = login.headers()["location"].to_str().unwrap().to_string();
    let page = browser.raw_get(&location).await;
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    let origin = REDIRECT.trim_end_matches("/callback");
    assert!(
        csp.contains(&format!("form-action 'self' {origin};")),
        "{csp}"
    );
    assert!(!csp.contains("http: https:"), "{csp}");
    let account = browser.raw_get("/login").await;
    let csp = account.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(csp.contains("form-action 'self';"), "{csp}");

    for response in [
        login,
        page,
        app.backchannel()
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap(),
        app.backchannel()
            .post(app.url("/token"))
            .send()
            .await
            .unwrap(),
        app.backchannel()
            .get(app.url("/nothing-here"))
            .send()
            .await
            .unwrap(),
        app.backchannel()
            .get(app.url("/jwks"))
            .send()
            .await
            .unwrap(),
    ] {
        assert_eq!(
            response.headers()["x-content-type-options"],
            "nosniff",
            "{}",
            response.url()
        );
        assert!(
            !response.headers().contains_key("strict-transport-security"),
            "no HSTS over http"
        );
    }
}

on_every_backend!(
    a_revoked_management_token_gets_401,
    basic_is_case_insensitive_and_every_401_has_a_challenge,
    security_headers_on_every_response,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hsts_when_the_issuer_is_https() {
    let app = TestApp::spawn_sqlite_with(|c| c.issuer = "https://login.example.nl".into()).await;
    let address = app.state.config.issuer.clone();
    assert_eq!(address, "https://login.example.nl");
    // The server listens on plain http in the test (TLS ends in front of it in production).
    let port = app.issuer_port();
    let response = reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
        .await
        .unwrap();
    assert_eq!(
        response.headers()["strict-transport-security"],
        "max-age=31536000"
    );
}

/// `/metrics` needs the bearer token on the main listener, is absent there without one, and
/// is open on the separate internal listener.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_not_public() {
    let app = TestApp::spawn_sqlite().await;
    let response = app
        .backchannel()
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(response.headers().contains_key("www-authenticate"));
    let response = app
        .backchannel()
        .get(app.url("/metrics"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(app.metrics().await.contains("poortwachter_"));

    let internal = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let app = TestApp::spawn_sqlite_with(|c| {
        c.metrics_token = None;
        c.metrics_bind = Some(internal.to_string());
    })
    .await;
    let response = app
        .backchannel()
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404, "not on the main listener");
    let mut text = None;
    for _ in 0..50 {
        if let Ok(response) = reqwest::get(format!("http://{internal}/metrics")).await {
            text = Some((response.status(), response.text().await.unwrap()));
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (status, _) = text.expect("the internal listener answers");
    assert_eq!(status, 200);
    let _ = METRICS_TOKEN;
}
