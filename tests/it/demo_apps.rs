//! The whole loop on one machine: the demo partner app and the school-data API on ports of
//! their own, talking to the real server over HTTP, driven by a cookie-keeping client that
//! follows every redirect like a browser.

use std::sync::Arc;

use poortwachter::clock::Clock;
use poortwachter::demo_apps::{self, PartnerAppConfig, SchoolApiConfig};
use reqwest::StatusCode;
use scraper::{Html, Selector};
use serde_json::{json, Value};

use crate::helpers::{TestApp, PASSWORD, REDIRECT};
use crate::on_every_backend;

/// The demo apps of one test: where they listen.
pub struct DemoApps {
    pub partner: String,
    pub api: String,
}

/// Start the school-data API and the partner app on ephemeral ports against `app`, with the
/// partner app's redirect URI registered through the admin API (as an operator would).
pub async fn start_demo_apps(app: &TestApp) -> DemoApps {
    let api_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = format!("http://{}", api_listener.local_addr().unwrap());
    demo_apps::spawn(
        api_listener,
        demo_apps::school_api::router(SchoolApiConfig::demo(&app.issuer)),
        "demo-school-api",
    )
    .unwrap();
    let partner_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let partner = format!("http://{}", partner_listener.local_addr().unwrap());
    let config = PartnerAppConfig::demo(&app.issuer, &partner, &api, Arc::new(app.clock.clone()));
    let platform = app.management_token("platform-demo").await;
    let (status, body) = app
        .admin(
            "PATCH",
            "/api/admin/partners/studyspace-demo",
            &platform,
            Some(json!({ "redirect_uris": [REDIRECT, config.redirect_uri()] })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    demo_apps::spawn(
        partner_listener,
        demo_apps::partner_app::router(config),
        "demo-partner-app",
    )
    .unwrap();
    DemoApps { partner, api }
}

/// A browser that follows redirects across origins (Poortwachter and the partner app).
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap()
}

async fn get(browser: &reqwest::Client, url: &str) -> (String, String) {
    let response = browser.get(url).send().await.unwrap();
    let at = response.url().to_string();
    let status = response.status();
    let html = response.text().await.unwrap();
    assert_eq!(status, 200, "{at}: {html}");
    (at, html)
}

async fn post(browser: &reqwest::Client, url: &str, form: &[(&str, &str)]) -> (String, String) {
    let response = browser.post(url).form(form).send().await.unwrap();
    let at = response.url().to_string();
    let status = response.status();
    let html = response.text().await.unwrap();
    assert_eq!(status, 200, "{at}: {html}");
    (at, html)
}

fn field(html: &str, name: &str) -> String {
    let doc = Html::parse_document(html);
    let selector = Selector::parse(&format!("input[name=\"{name}\"]")).unwrap();
    doc.select(&selector)
        .next()
        .and_then(|e| e.value().attr("value"))
        .unwrap_or_else(|| panic!("no field {name} in {html}"))
        .to_string()
}

/// The values of the ticked `scope` checkboxes.
fn checked_scopes(html: &str) -> Vec<String> {
    let doc = Html::parse_document(html);
    let selector = Selector::parse("input[name=\"scope\"][checked]").unwrap();
    doc.select(&selector)
        .filter_map(|e| e.value().attr("value").map(str::to_string))
        .collect()
}

/// The text and class of the element with `id`, if there is one.
fn element(html: &str, id: &str) -> Option<(String, String)> {
    let doc = Html::parse_document(html);
    let selector = Selector::parse(&format!("#{id}")).unwrap();
    doc.select(&selector).next().map(|e| {
        (
            e.text().collect::<Vec<_>>().join(" "),
            e.value().attr("class").unwrap_or_default().to_string(),
        )
    })
}

fn section(html: &str, id: &str) -> (String, String) {
    element(html, id).unwrap_or_else(|| panic!("no #{id} in {html}"))
}

/// From the partner's home page through Poortwachter's login and consent (choosing `child`
/// as a parent) and back: the partner's home page as it shows after the login.
async fn sign_in(
    browser: &reqwest::Client,
    apps: &DemoApps,
    username: &str,
    child: Option<&str>,
    decision: &str,
) -> String {
    let (_, home) = get(browser, &format!("{}/", apps.partner)).await;
    assert!(element(&home, "login").is_some(), "{home}");
    let (at, login) = get(browser, &format!("{}/login", apps.partner)).await;
    assert!(login.contains("name=\"password\""), "{at}: {login}");
    let issuer = url::Url::parse(&at).unwrap();
    let issuer = issuer.origin().ascii_serialization();
    let (_, consent) = post(
        browser,
        &format!("{issuer}/login"),
        &[
            ("csrf", &field(&login, "csrf")),
            ("request", &field(&login, "request")),
            ("school", "12AB"),
            ("username", username),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert!(consent.contains("decision"), "{consent}");
    let csrf = field(&consent, "csrf");
    let request = field(&consent, "request");
    let mut form = vec![
        ("csrf", csrf.as_str()),
        ("request", request.as_str()),
        ("decision", decision),
    ];
    if let Some(child) = child {
        form.push(("student", child));
    }
    // Per-scope consent: the checkboxes as the page ticks them (all that is asked).
    let ticked = checked_scopes(&consent);
    assert!(ticked.iter().any(|s| s == "cijfers"), "{consent}");
    for scope in &ticked {
        form.push(("scope", scope));
    }
    let (at, home) = post(browser, &format!("{issuer}/consent"), &form).await;
    assert!(at.starts_with(&apps.partner), "ended at {at}: {home}");
    home
}

async fn home(browser: &reqwest::Client, apps: &DemoApps) -> String {
    get(browser, &format!("{}/", apps.partner)).await.1
}

/// Given the demo school with Studyspace's link open, when a parent signs in at the partner
/// app and consents for Jan, then the partner app shows Jan's name, timetable, homework and
/// grades; after the school closes `cijfers` for partners the next page load shows the
/// school's reason there (and still the timetable); after the parent stops sharing huiswerk
/// in `/account` there is no homework, and after the whole consent is withdrawn the next page
/// load says access has ended.
async fn a_parent_signs_in_at_the_partner_app_and_the_school_and_parent_take_it_back(app: TestApp) {
    let apps = start_demo_apps(&app).await;
    let browser = browser();
    let page = sign_in(&browser, &apps, "p.devries", Some("100001"), "approve").await;
    let (name, _) = section(&page, "naam");
    assert!(name.contains("Jan"), "{page}");
    for id in ["rooster", "huiswerk", "cijfers"] {
        let (text, class) = section(&page, id);
        assert_eq!(class, "data", "{id}: {text}");
    }
    assert!(section(&page, "rooster").0.contains("maandag"), "{page}");
    assert!(element(&page, "error").is_none(), "{page}");

    // Each page load asks the school-data API again.
    let beheer = app.management_token("beheer-12ab-demo").await;
    let now = app.clock.now();
    let reason = "Toetsweek: de cijfers komen na de toetsweek";
    let (status, body) = app
        .admin(
            "POST",
            "/api/admin/schools/12AB/closures",
            &beheer,
            Some(json!({
                "scope": "cijfers", "audiences": ["partners"], "starts_at": now.to_rfc3339(),
                "ends_at": (now + chrono::Duration::days(7)).to_rfc3339(), "reason": reason,
            })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let page = home(&browser, &apps).await;
    let (cijfers, class) = section(&page, "cijfers");
    assert_eq!(class, "refused", "{page}");
    assert!(cijfers.contains(reason), "{cijfers}");
    assert_eq!(section(&page, "rooster").1, "data", "{page}");
    assert_eq!(section(&page, "huiswerk").1, "data", "{page}");

    // The parent stops sharing huiswerk in Poortwachter's /account (same browser, still
    // logged in there): the next page load gets no homework, the timetable still.
    let (_, account) = get(&browser, &app.url("/account")).await;
    let (_, _) = post(
        &browser,
        &app.url("/account/withdraw"),
        &[
            ("csrf", &field(&account, "csrf")),
            ("grant", &field(&account, "grant")),
            ("scope", "huiswerk"),
        ],
    )
    .await;
    let page = home(&browser, &apps).await;
    let (huiswerk, class) = section(&page, "huiswerk");
    assert_eq!(class, "refused", "{page}");
    assert!(huiswerk.contains("ingetrokken"), "{huiswerk}");
    assert_eq!(section(&page, "rooster").1, "data", "{page}");

    // Then withdraws the whole consent: access has ended.
    let (_, account) = get(&browser, &app.url("/account")).await;
    let (_, _) = post(
        &browser,
        &app.url("/account/withdraw"),
        &[
            ("csrf", &field(&account, "csrf")),
            ("grant", &field(&account, "grant")),
        ],
    )
    .await;
    let page = home(&browser, &apps).await;
    let (ended, _) = section(&page, "ended");
    assert!(ended.contains("toestemming is ingetrokken"), "{page}");
    for id in ["rooster", "huiswerk", "cijfers"] {
        assert_eq!(section(&page, id).1, "ended", "{id}: {page}");
    }
}

/// An expired access token is refreshed behind the scenes; a closed link ends access.
async fn the_partner_app_refreshes_and_notices_a_closed_link(app: TestApp) {
    let apps = start_demo_apps(&app).await;
    let browser = browser();
    let page = sign_in(&browser, &apps, "100002", None, "approve").await;
    assert!(section(&page, "naam").0.contains("Sara"), "{page}");
    assert_eq!(section(&page, "rooster").1, "data", "{page}");

    // Past the access token's lifetime (15 minutes): still data, through the refresh token.
    app.clock.advance(chrono::Duration::minutes(20));
    let page = home(&browser, &apps).await;
    assert!(element(&page, "ended").is_none(), "{page}");
    assert_eq!(section(&page, "huiswerk").1, "data", "{page}");

    let beheer = app.management_token("beheer-12ab-demo").await;
    let (status, body) = app
        .admin(
            "PUT",
            "/api/admin/schools/12AB/links/studyspace-demo",
            &beheer,
            Some(json!({ "open": false, "reason": "contract beëindigd" })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let page = home(&browser, &apps).await;
    assert!(section(&page, "ended").0.contains("koppeling"), "{page}");
    assert_eq!(section(&page, "rooster").1, "ended", "{page}");

    // The school opens the link again: the next page load has the data back, no new login.
    let (status, body) = app
        .admin(
            "PUT",
            "/api/admin/schools/12AB/links/studyspace-demo",
            &beheer,
            Some(json!({ "open": true, "reason": "nieuw contract" })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let page = home(&browser, &apps).await;
    assert!(element(&page, "ended").is_none(), "{page}");
    assert_eq!(section(&page, "rooster").1, "data", "{page}");
}

/// A refused consent comes back as `error=access_denied`, which the partner app shows.
async fn the_partner_app_shows_a_refusal_from_poortwachter(app: TestApp) {
    let apps = start_demo_apps(&app).await;
    let browser = browser();
    let page = sign_in(&browser, &apps, "100002", None, "deny").await;
    let (error, _) = section(&page, "error");
    assert!(error.contains("access_denied"), "{page}");
    assert!(error.contains("geen toestemming"), "{page}");
    assert!(element(&page, "login").is_some(), "{page}");
    assert!(element(&page, "rooster").is_none(), "{page}");
}

/// The school-data API on its own: 401 with `invalid_token` for a bogus token and a bare
/// challenge without one (RFC 6750 §3.1), 200 with the student's data for a granted scope,
/// 403 `insufficient_scope` with a reason for a scope not granted or withheld by a closure.
async fn the_school_api_answers_by_the_live_introspection(app: TestApp) {
    let apps = start_demo_apps(&app).await;
    let http = app.backchannel();
    let bogus = http
        .get(format!("{}/rooster", apps.api))
        .bearer_auth("bogus")
        .send()
        .await
        .unwrap();
    assert_eq!(bogus.status(), StatusCode::UNAUTHORIZED);
    let challenge = bogus.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    let bare = http
        .get(format!("{}/rooster", apps.api))
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), StatusCode::UNAUTHORIZED);
    assert!(!bare.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("error="));

    let tokens = app.sara_tokens("openid rooster huiswerk").await;
    let access = tokens["access_token"].as_str().unwrap();
    let call = |path: &'static str| {
        let http = http.clone();
        let url = format!("{}{path}", apps.api);
        let access = access.to_string();
        async move {
            let response = http.get(url).bearer_auth(access).send().await.unwrap();
            let status = response.status();
            let challenge = response
                .headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap().to_string());
            let body: Value = response.json().await.unwrap();
            (status, challenge, body)
        }
    };
    let (status, _, body) = call("/rooster").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["student_number"], "100002");
    assert_eq!(body["school"], "12AB");
    assert!(!body["items"].as_array().unwrap().is_empty());
    let (status, _, again) = call("/rooster").await;
    assert_eq!(status, 200);
    assert_eq!(again, body, "the made-up data is the same on every call");

    let (status, challenge, body) = call("/cijfers").await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "insufficient_scope");
    assert!(
        body["reason"].as_str().unwrap().contains("cijfers"),
        "{body}"
    );
    assert!(challenge.unwrap().contains("insufficient_scope"));

    let beheer = app.management_token("beheer-12ab-demo").await;
    let now = app.clock.now();
    let (status, body) = app
        .admin(
            "POST",
            "/api/admin/schools/12AB/closures",
            &beheer,
            Some(json!({
                "scope": "huiswerk", "audiences": ["partners"], "starts_at": now.to_rfc3339(),
                "ends_at": (now + chrono::Duration::days(1)).to_rfc3339(), "reason": "Studiedag",
            })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, _, body) = call("/huiswerk").await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "insufficient_scope");
    assert_eq!(body["reason"], "Studiedag");
    assert_eq!(call("/rooster").await.0, 200);
}

/// The platform suspends the partner: its next page load says access has ended, and a new
/// login stops at Poortwachter's own page (no login form, no redirect to the partner).
async fn a_suspended_partner_loses_access_and_cannot_start_a_login(app: TestApp) {
    let apps = start_demo_apps(&app).await;
    let browser = browser();
    let page = sign_in(&browser, &apps, "100002", None, "approve").await;
    assert_eq!(section(&page, "cijfers").1, "data", "{page}");
    let platform = app.management_token("platform-demo").await;
    let (status, body) = app
        .admin(
            "PUT",
            "/api/admin/partners/studyspace-demo/accreditation",
            &platform,
            Some(json!({ "status": "suspended", "reason": "audit loopt" })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let page = home(&browser, &apps).await;
    let (ended, _) = section(&page, "ended");
    assert!(ended.contains("geschorst"), "{page}");
    assert!(
        ended.contains("not accredited"),
        "Poortwachter's reason is passed on: {page}"
    );

    let stranger = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let response = stranger
        .get(format!("{}/login", apps.partner))
        .send()
        .await
        .unwrap();
    assert!(
        response.url().as_str().starts_with(&app.issuer),
        "{}",
        response.url()
    );
    let html = response.text().await.unwrap();
    assert!(!html.contains("name=\"password\""), "{html}");
}

on_every_backend!(
    a_suspended_partner_loses_access_and_cannot_start_a_login,
    a_parent_signs_in_at_the_partner_app_and_the_school_and_parent_take_it_back,
    the_partner_app_refreshes_and_notices_a_closed_link,
    the_partner_app_shows_a_refusal_from_poortwachter,
    the_school_api_answers_by_the_live_introspection,
);
