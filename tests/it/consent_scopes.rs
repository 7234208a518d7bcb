//! Choice per scope at consent: the person unticks what they do not want to share, and the
//! partner gets only what was chosen; the token response's `scope` says so (RFC 6749 §3.3).

use reqwest::StatusCode;

use crate::helpers::{Browser, Callback, Outcome, Page, TestApp, PASSWORD, STUDYSPACE};
use crate::on_every_backend;

const ALL: &str = "openid offline_access naam rooster huiswerk cijfers";

/// Start an authorization for `scope` and log in as `username`: the consent page.
async fn consent_page(app: &TestApp, scope: &str, username: &str) -> (Browser, String, Page) {
    let authorization = app.authorization(STUDYSPACE.0, scope);
    let browser = app.browser();
    let login = browser.open(&authorization.url()).await.page();
    let page = browser
        .login(&login, "12AB", username, PASSWORD)
        .await
        .page();
    assert!(page.html.contains("decision"), "{}", page.html);
    (browser, authorization.verifier, page)
}

async fn exchange(app: &TestApp, callback: &Callback, verifier: &str) -> serde_json::Value {
    let (status, body) = app.exchange(STUDYSPACE, callback.code(), verifier).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Given a parent of a 14-year-old, when the parent unticks `cijfers`, then the token, the
/// introspection and the grant lack it and everything else is there.
async fn a_parent_unticks_grades_and_the_partner_never_gets_them(app: TestApp) {
    let (browser, verifier, page) = consent_page(&app, ALL, "p.devries").await;
    // Every requested scope but openid is a checkbox, all ticked; openid is shown as text.
    let mut ticked = page.checked("scope");
    ticked.sort();
    assert_eq!(
        ticked,
        ["cijfers", "huiswerk", "naam", "offline_access", "rooster"]
    );
    assert!(page
        .attr("input[name=scope][value=openid]", "value")
        .is_none());
    assert!(page
        .attr("input[name=scope][value=cijfers]", "checked")
        .is_some());
    let callback = browser
        .consent_unticking(&page, "approve", Some("100001"), &["cijfers"])
        .await
        .callback();
    let tokens = exchange(&app, &callback, &verifier).await;
    assert_eq!(
        tokens["scope"],
        "openid offline_access naam rooster huiswerk"
    );
    let access = tokens["access_token"].as_str().unwrap();
    let answer = app.introspect(access).await;
    assert_eq!(answer["active"], true);
    assert_eq!(
        answer["scope"],
        "openid offline_access naam rooster huiswerk"
    );
    let (status, refreshed) = app
        .refresh(STUDYSPACE, tokens["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(status, 200, "{refreshed}");
    assert_eq!(
        refreshed["scope"],
        "openid offline_access naam rooster huiswerk"
    );
}

/// After a partial consent the same request shows the consent page again (the grant does
/// not cover it), and a request within what was granted skips it.
async fn after_a_partial_consent_the_page_asks_again_for_the_rest(app: TestApp) {
    let (browser, verifier, page) = consent_page(&app, ALL, "100002").await;
    let callback = browser
        .consent_unticking(&page, "approve", None, &["cijfers"])
        .await
        .callback();
    assert_eq!(
        exchange(&app, &callback, &verifier).await["scope"],
        "openid offline_access naam rooster huiswerk"
    );
    let (browser, verifier, page) = consent_page(&app, ALL, "100002").await;
    let callback = browser.consent(&page, "approve", None).await.callback();
    assert_eq!(exchange(&app, &callback, &verifier).await["scope"], ALL);

    let authorization = app.authorization(STUDYSPACE.0, "openid rooster");
    let browser = app.browser();
    let login = browser.open(&authorization.url()).await.page();
    let callback = match browser.login(&login, "12AB", "100002", PASSWORD).await {
        Outcome::Left(location) => Callback::parse(&location),
        Outcome::Page(page) => panic!("expected no consent page: {}", page.html),
    };
    assert_eq!(
        exchange(&app, &callback, &authorization.verifier).await["scope"],
        "openid rooster",
        "the code carries what was asked, not the whole grant"
    );
}

/// Unticking everything but openid: a login confirmation only, no refresh token, no data.
async fn unticking_everything_but_openid_gives_only_openid(app: TestApp) {
    let (browser, verifier, page) = consent_page(&app, ALL, "100002").await;
    let callback = browser
        .consent_unticking(
            &page,
            "approve",
            None,
            &["offline_access", "naam", "rooster", "huiswerk", "cijfers"],
        )
        .await
        .callback();
    let tokens = exchange(&app, &callback, &verifier).await;
    assert_eq!(tokens["scope"], "openid");
    assert!(tokens.get("refresh_token").is_none(), "{tokens}");
    assert!(tokens["id_token"].is_string());
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(app.introspect(access).await["scope"], "openid");
    let userinfo: serde_json::Value = app.userinfo(access).await.json().await.unwrap();
    assert!(userinfo["sub"].is_string());
    assert!(userinfo.get("name").is_none(), "no naam: {userinfo}");

    // Without openid requested, unticking everything shares nothing: access_denied.
    let (browser, _, page) = consent_page(&app, "rooster huiswerk", "100003").await;
    let callback = browser
        .consent_unticking(&page, "approve", None, &["rooster", "huiswerk"])
        .await
        .callback();
    assert_eq!(callback.get("error"), Some("access_denied"));
}

/// A `scope` value that was not requested is ignored: the form never widens the request.
async fn a_forged_scope_that_was_not_requested_is_ignored(app: TestApp) {
    let (browser, verifier, page) = consent_page(&app, "openid rooster", "100002").await;
    let csrf = page.input("csrf").unwrap();
    let request = page.input("request").unwrap();
    let callback = browser
        .post(
            "/consent",
            &[
                ("csrf", csrf.as_str()),
                ("request", request.as_str()),
                ("decision", "approve"),
                ("scope", "rooster"),
                ("scope", "cijfers"),
                ("scope", "offline_access"),
                ("scope", "onbekend"),
            ],
        )
        .await
        .callback();
    let tokens = exchange(&app, &callback, &verifier).await;
    assert_eq!(tokens["scope"], "openid rooster");
    let sara = app
        .state
        .store
        .find_account_by_login("12AB", "100002")
        .await
        .unwrap()
        .unwrap();
    let grant = app
        .state
        .store
        .active_grant(&sara.id, STUDYSPACE.0, app.state.now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(grant.scopes, "openid rooster", "nothing unrequested stored");
    // And the consent page still needs its CSRF token.
    let (browser, _, page) = consent_page(&app, "openid rooster", "100003").await;
    let refused = browser
        .post(
            "/consent",
            &[
                ("request", page.input("request").unwrap().as_str()),
                ("decision", "approve"),
                ("scope", "rooster"),
            ],
        )
        .await
        .page();
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
}

on_every_backend!(
    a_parent_unticks_grades_and_the_partner_never_gets_them,
    after_a_partial_consent_the_page_asks_again_for_the_rest,
    unticking_everything_but_openid_gives_only_openid,
    a_forged_scope_that_was_not_requested_is_ignored,
);
