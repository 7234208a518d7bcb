//! Pushed Authorization Requests (RFC 9126): the partner pushes the request, the browser
//! carries only `client_id` and `request_uri`; the refusals (reuse, another client, expiry,
//! parameters outside the push when pushing is required, bad pushes) are what the RFC asks.

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{Authorization, Callback, TestApp, HUISWERKHULP, PASSWORD, STUDYSPACE};
use crate::on_every_backend;

/// Push `fields` as `client`; the status and the JSON answer.
async fn push(app: &TestApp, client: (&str, &str), fields: &[(&str, &str)]) -> (StatusCode, Value) {
    let response = app
        .backchannel()
        .post(app.url("/par"))
        .basic_auth(client.0, Some(client.1))
        .form(fields)
        .send()
        .await
        .unwrap();
    let status = response.status();
    assert_eq!(response.headers()["cache-control"], "no-store");
    (status, response.json().await.unwrap())
}

/// The authorization's parameters without `client_id` (the push authenticates the client).
fn fields(authorization: &Authorization) -> Vec<(&str, &str)> {
    authorization
        .params
        .iter()
        .filter(|(k, _)| k != "client_id")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

fn by_reference(app: &TestApp, client_id: &str, request_uri: &str) -> String {
    let mut url = url::Url::parse(&app.url("/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", client_id)
        .append_pair("request_uri", request_uri);
    url.to_string()
}

async fn a_pushed_request_runs_the_whole_flow(app: TestApp) {
    let authorization = app.authorization(STUDYSPACE.0, "openid rooster");
    let (status, pushed) = push(&app, STUDYSPACE, &fields(&authorization)).await;
    assert_eq!(status, StatusCode::CREATED, "{pushed}");
    assert_eq!(pushed["expires_in"], 60);
    let request_uri = pushed["request_uri"].as_str().unwrap();
    assert!(request_uri.starts_with("urn:ietf:params:oauth:request_uri:"));

    // The browser carries only the reference; other parameters in the URL do not count.
    let url = by_reference(&app, STUDYSPACE.0, request_uri) + "&scope=openid%20cijfers";
    let browser = app.browser();
    let login = browser.open(&url).await.page();
    let consent = browser
        .login(&login, "12AB", "100002", PASSWORD)
        .await
        .page();
    assert!(!consent.html.contains("cijfers"), "only what was pushed");
    let callback = browser.consent(&consent, "approve", None).await.callback();
    assert_eq!(callback.get("state"), authorization.param("state"));
    let (status, tokens) = app
        .exchange(STUDYSPACE, callback.code(), &authorization.verifier)
        .await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["scope"], "openid rooster");

    // Single use.
    let again = browser
        .open(&by_reference(&app, STUDYSPACE.0, request_uri))
        .await
        .page();
    assert_eq!(again.status, 400);
    assert!(again.html.contains("verlopen of al gebruikt"));

    // The client's credentials are not kept with the pushed request.
    let mut with_secret = fields(&authorization);
    with_secret.push(("client_id", STUDYSPACE.0));
    with_secret.push(("client_secret", STUDYSPACE.1));
    let response = app
        .backchannel()
        .post(app.url("/par"))
        .form(&with_secret)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let kept: Vec<(String,)> = sqlx::query_as("SELECT params FROM pushed_requests")
        .fetch_all(app.state.store.pool())
        .await
        .unwrap();
    assert!(!kept.is_empty());
    assert!(
        kept.iter()
            .all(|(p,)| !p.contains(STUDYSPACE.1) && !p.contains("client_secret")),
        "{kept:?}"
    );

    let metadata = app.metadata().await;
    assert_eq!(
        metadata["pushed_authorization_request_endpoint"],
        app.url("/par")
    );
    assert_eq!(metadata["require_pushed_authorization_requests"], false);
}

async fn a_request_uri_is_bound_to_its_client_and_expires(app: TestApp) {
    let authorization = app.authorization(STUDYSPACE.0, "openid rooster");
    let (_, pushed) = push(&app, STUDYSPACE, &fields(&authorization)).await;
    let request_uri = pushed["request_uri"].as_str().unwrap();
    let browser = app.browser();
    // Another client cannot use it (and does not burn it).
    let other = browser
        .open(&by_reference(&app, HUISWERKHULP.0, request_uri))
        .await
        .page();
    assert_eq!(other.status, 400);
    // A minute later it is gone.
    app.clock.advance(Duration::seconds(61));
    let late = browser
        .open(&by_reference(&app, STUDYSPACE.0, request_uri))
        .await
        .page();
    assert_eq!(late.status, 400);
    let made_up = browser
        .open(&by_reference(
            &app,
            STUDYSPACE.0,
            "urn:ietf:params:oauth:request_uri:made-up",
        ))
        .await
        .page();
    assert_eq!(made_up.status, 400);
}

async fn bad_pushes_are_refused_as_json(app: TestApp) {
    let authorization = app.authorization(STUDYSPACE.0, "openid rooster");
    let good = fields(&authorization);

    let response = app
        .backchannel()
        .post(app.url("/par"))
        .basic_auth(STUDYSPACE.0, Some("wrong-secret"))
        .form(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    let with = |name: &'static str, value: &'static str| {
        let mut f: Vec<(&str, &str)> = good.iter().filter(|(k, _)| *k != name).copied().collect();
        f.push((name, value));
        f
    };
    for (fields, error) in [
        (with("code_challenge_method", "plain"), "invalid_request"),
        (with("scope", "openid toverspreuken"), "invalid_scope"),
        (
            with("request_uri", "urn:ietf:params:oauth:request_uri:x"),
            "invalid_request",
        ),
        (with("client_id", HUISWERKHULP.0), "invalid_request"),
        (
            with("redirect_uri", "https://evil.example/cb"),
            "invalid_request",
        ),
        (with("response_type", "token"), "unsupported_response_type"),
    ] {
        let (status, body) = push(&app, STUDYSPACE, &fields).await;
        assert_eq!(status, 400, "{fields:?}: {body}");
        assert_eq!(body["error"], error, "{fields:?}: {body}");
    }

    let not_a_form = app
        .backchannel()
        .post(app.url("/par"))
        .basic_auth(STUDYSPACE.0, Some(STUDYSPACE.1))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(not_a_form.status(), 400);
}

/// RFC 9126 §5: with pushing required for the partner, a request in the URL goes back as
/// `invalid_request`; a pushed one still works. The platform sets it in the admin API.
async fn pushing_can_be_required_per_partner(app: TestApp) {
    let platform = app.management_token("platform-demo").await;
    let (status, view) = app
        .admin(
            "PATCH",
            &format!("/api/admin/partners/{}", STUDYSPACE.0),
            &platform,
            Some(json!({ "require_pushed_authorization_requests": true })),
        )
        .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["require_pushed_authorization_requests"], true);

    let authorization = app.authorization(STUDYSPACE.0, "openid rooster");
    let response = app.browser().raw_get(&authorization.url()).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let back = Callback::parse(response.headers()["location"].to_str().unwrap());
    assert_eq!(back.get("error"), Some("invalid_request"));
    assert_eq!(back.get("state"), authorization.param("state"));

    let (status, pushed) = push(&app, STUDYSPACE, &fields(&authorization)).await;
    assert_eq!(status, StatusCode::CREATED, "{pushed}");
    let url = by_reference(&app, STUDYSPACE.0, pushed["request_uri"].as_str().unwrap());
    let login = app.browser().open(&url).await.page();
    assert!(login.html.contains("name=\"password\""));

    // Another partner is not affected.
    let other = app.authorization(HUISWERKHULP.0, "openid rooster");
    let page = app.browser().open(&other.url()).await.page();
    assert!(page.html.contains("name=\"password\""));
}

on_every_backend!(
    a_pushed_request_runs_the_whole_flow,
    a_request_uri_is_bound_to_its_client_and_expires,
    bad_pushes_are_refused_as_json,
    pushing_can_be_required_per_partner,
);
