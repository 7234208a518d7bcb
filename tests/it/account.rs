//! "Mijn apps": people see which partners have consent and withdraw it themselves; the
//! partner's next call fails.

use reqwest::StatusCode;

use crate::helpers::{TestApp, PASSWORD, STUDYSPACE};
use crate::on_every_backend;

/// Log in on the account page (no partner involved) and return the browser and the page.
async fn log_in_to_account(
    app: &TestApp,
    username: &str,
) -> (crate::helpers::Browser, crate::helpers::Page) {
    let browser = app.browser();
    let login = browser.open("/account").await.page();
    assert!(login.html.contains("name=\"password\""), "{}", login.html);
    assert_eq!(login.input("request").as_deref(), Some(""));
    let page = browser
        .login(&login, "12AB", username, PASSWORD)
        .await
        .page();
    (browser, page)
}

async fn student_withdraws_consent_and_the_partner_is_cut_off(app: TestApp) {
    let tokens = app.sara_tokens("openid naam rooster offline_access").await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(app.introspect(access).await["active"], true);

    let (browser, page) = log_in_to_account(&app, "100002").await;
    assert!(page.html.contains("Mijn apps"));
    assert!(page.html.contains("Studyspace (demo)"));
    assert!(
        page.html.contains("Het rooster"),
        "scopes explained: {}",
        page.html
    );
    assert!(page.html.contains("laatst toegang gekregen 23-11-2026"));
    let grant = page.input("grant").expect("a withdraw button");
    let csrf = page.input("csrf").unwrap();

    // Without the CSRF token nothing happens.
    let refused = browser
        .post("/account/withdraw", &[("grant", grant.as_str())])
        .await
        .page();
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(app.introspect(access).await["active"], true);

    let after = browser
        .post(
            "/account/withdraw",
            &[("csrf", csrf.as_str()), ("grant", grant.as_str())],
        )
        .await
        .page();
    assert!(after.html.contains("ingetrokken"), "{}", after.html);
    assert!(!after.html.contains("Studyspace (demo)"));
    assert_eq!(app.introspect(access).await["active"], false);
    let (status, body) = app
        .refresh(STUDYSPACE, tokens["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(status, 400, "{body}");
}

async fn parent_sees_and_withdraws_for_a_child(app: TestApp) {
    let tokens = app
        .tokens_for(STUDYSPACE, "openid rooster", "p.devries", Some("100001"))
        .await;
    let access = tokens["access_token"].as_str().unwrap();
    let (browser, page) = log_in_to_account(&app, "p.devries").await;
    assert!(page.html.contains("Jan de Vries") && page.html.contains("Emma de Vries"));
    assert!(page.html.contains("Toestemming gegeven door een ouder"));
    let grant = page.input("grant").unwrap();
    let csrf = page.input("csrf").unwrap();

    // Someone else (Sara) cannot withdraw Jan's consent.
    let (other, other_page) = log_in_to_account(&app, "100002").await;
    let refused = other
        .post(
            "/account/withdraw",
            &[
                ("csrf", other_page.input("csrf").unwrap().as_str()),
                ("grant", grant.as_str()),
            ],
        )
        .await
        .page();
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(app.introspect(access).await["active"], true);

    browser
        .post(
            "/account/withdraw",
            &[("csrf", csrf.as_str()), ("grant", grant.as_str())],
        )
        .await
        .page();
    assert_eq!(app.introspect(access).await["active"], false);

    // Signing out needs the CSRF token (a forged form changes nothing), and ends the session.
    let page = browser.open("/account").await.page();
    let forged = browser
        .post("/account/logout", &[("csrf", "forged")])
        .await
        .page();
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(
        browser
            .open("/account")
            .await
            .page()
            .html
            .contains("Mijn apps"),
        "still signed in"
    );
    let csrf = page.input("csrf").unwrap();
    let page = browser
        .post("/account/logout", &[("csrf", csrf.as_str())])
        .await
        .page();
    assert!(page.html.contains("name=\"password\""));
}

on_every_backend!(
    student_withdraws_consent_and_the_partner_is_cut_off,
    parent_sees_and_withdraws_for_a_child
);
