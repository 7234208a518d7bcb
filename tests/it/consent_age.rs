//! Consent belongs to whom the rules say (UAVG art. 5): a parent consents only for a linked
//! child under 16; from 16 the student decides, and a parent neither consents for them nor
//! rewrites or withdraws what the student decided.

use poortwachter::clock::Clock;
use reqwest::StatusCode;

use crate::helpers::{TestApp, PASSWORD, STUDYSPACE};
use crate::on_every_backend;

/// Link Petra (p.devries) to Sara (100002, 16), as a school would for a step-parent.
async fn link_petra_to_sara(app: &TestApp) -> (String, String) {
    let store = &app.state.store;
    let petra = store
        .find_account_by_login("12AB", "p.devries")
        .await
        .unwrap()
        .unwrap();
    let sara = store
        .find_account_by_login("12AB", "100002")
        .await
        .unwrap()
        .unwrap();
    store
        .add_guardianship(&petra.id, &sara.id, app.clock.now())
        .await
        .unwrap();
    (petra.id, sara.id)
}

async fn grant_role(app: &TestApp, student_id: &str) -> String {
    app.state
        .store
        .active_grant(student_id, STUDYSPACE.0, app.clock.now())
        .await
        .unwrap()
        .expect("an active grant")
        .given_by_role
}

async fn a_parent_cannot_consent_for_a_sixteen_year_old(app: TestApp) {
    let (petra, _) = link_petra_to_sara(&app).await;

    // With younger children too, Sara is shown, not selectable, with the reason.
    let browser = app.browser();
    let login = app
        .login_page(&browser, STUDYSPACE.0, "openid rooster")
        .await;
    let consent = browser
        .login(&login, "12AB", "p.devries", PASSWORD)
        .await
        .page();
    assert!(consent.html.contains("Sara Bakker"), "{}", consent.html);
    assert!(consent.html.contains("16 jaar of ouder: beslist zelf"));
    let choices = consent.choices("student");
    assert!(
        choices.contains(&("100002".to_string(), false)),
        "Sara is not selectable: {choices:?}"
    );
    // A forged form naming her is refused, and nothing is recorded for her.
    let refused = browser
        .consent(&consent, "approve", Some("100002"))
        .await
        .page();
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.html);
    let sara = app
        .state
        .store
        .find_account_by_login("12AB", "100002")
        .await
        .unwrap()
        .unwrap();
    assert!(app
        .state
        .store
        .active_grant(&sara.id, STUDYSPACE.0, app.clock.now())
        .await
        .unwrap()
        .is_none());

    // With only Sara linked, the parent is told that the student decides.
    for child in ["100001", "100004"] {
        let id = app
            .state
            .store
            .find_account_by_login("12AB", child)
            .await
            .unwrap()
            .unwrap()
            .id;
        app.state
            .store
            .remove_guardianship(&petra, &id)
            .await
            .unwrap();
    }
    let browser = app.browser();
    let login = app
        .login_page(&browser, STUDYSPACE.0, "openid rooster")
        .await;
    let page = browser
        .login(&login, "12AB", "p.devries", PASSWORD)
        .await
        .page();
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.html);
    assert!(page.html.contains("Je kind beslist zelf"), "{}", page.html);
    assert!(page.html.contains("the+student+is+16+or+older"));
}

async fn a_parent_cannot_override_the_students_own_consent(app: TestApp) {
    let tokens = app.sara_tokens("openid rooster").await;
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let (_, sara) = link_petra_to_sara(&app).await;
    assert_eq!(grant_role(&app, &sara).await, "student");

    // Consenting again with prompt=consent: Sara cannot be chosen, her grant stays hers.
    let again = app
        .authorization(STUDYSPACE.0, "openid rooster cijfers")
        .set("prompt", "consent");
    let browser = app.browser();
    let login = browser.open(&again.url()).await.page();
    let consent = browser
        .login(&login, "12AB", "p.devries", PASSWORD)
        .await
        .page();
    assert!(consent
        .choices("student")
        .contains(&("100002".into(), false)));
    let refused = browser
        .consent(&consent, "approve", Some("100002"))
        .await
        .page();
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(grant_role(&app, &sara).await, "student");

    // "Mijn apps" shows Petra the grant, without a way to withdraw it, and a forged
    // withdrawal is refused.
    let grant_id = app
        .state
        .store
        .active_grant(&sara, STUDYSPACE.0, app.clock.now())
        .await
        .unwrap()
        .unwrap()
        .id;
    let browser = app.browser();
    let login = browser.open("/account").await.page();
    let page = browser
        .login(&login, "12AB", "p.devries", PASSWORD)
        .await
        .page();
    assert!(page.html.contains("Sara Bakker"), "{}", page.html);
    assert!(page.html.contains("Studyspace (demo)"));
    assert!(page.input("grant").is_none(), "no withdraw button");
    let csrf = page.input("csrf").unwrap();
    let refused = browser
        .post(
            "/account/withdraw",
            &[("csrf", csrf.as_str()), ("grant", grant_id.as_str())],
        )
        .await
        .page();
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(app.introspect(&access).await["active"], true);
    assert_eq!(grant_role(&app, &sara).await, "student");
}

/// Even where the age rules would let a parent consent (a birth date corrected to under 16
/// after the student consented personally), the student's own decision is not rewritten.
async fn the_students_own_grant_is_never_rewritten_by_a_parent(app: TestApp) {
    app.sara_tokens("openid rooster").await;
    let (_, sara) = link_petra_to_sara(&app).await;
    sqlx::query("UPDATE accounts SET birth_date = '2012-01-01' WHERE id = $1")
        .bind(&sara)
        .execute(app.state.store.pool())
        .await
        .unwrap();
    let again = app
        .authorization(STUDYSPACE.0, "openid rooster cijfers")
        .set("prompt", "consent");
    let browser = app.browser();
    let login = browser.open(&again.url()).await.page();
    let consent = browser
        .login(&login, "12AB", "p.devries", PASSWORD)
        .await
        .page();
    assert!(consent
        .choices("student")
        .contains(&("100002".into(), true)));
    let page = browser
        .consent(&consent, "approve", Some("100002"))
        .await
        .page();
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.html);
    assert!(page.html.contains("Je kind beslist zelf"));
    let grant = app
        .state
        .store
        .active_grant(&sara, STUDYSPACE.0, app.clock.now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(grant.given_by_role, "student");
    assert_eq!(grant.given_by, sara);
    assert_eq!(
        grant.scopes, "openid rooster",
        "no scope added by the parent"
    );
}

/// A parent keeps seeing and withdrawing what the parent gave while the child is under 16,
/// and loses the withdraw button the day the child turns 16.
async fn a_parent_withdraws_own_consent_only_while_the_child_is_under_sixteen(app: TestApp) {
    app.tokens_for(STUDYSPACE, "openid rooster", "p.devries", Some("100001"))
        .await;
    let jan = app
        .state
        .store
        .find_account_by_login("12AB", "100001")
        .await
        .unwrap()
        .unwrap();
    // Jan turns 16 tomorrow.
    sqlx::query("UPDATE accounts SET birth_date = '2010-11-24' WHERE id = $1")
        .bind(&jan.id)
        .execute(app.state.store.pool())
        .await
        .unwrap();
    let browser = app.browser();
    let login = browser.open("/account").await.page();
    let page = browser
        .login(&login, "12AB", "p.devries", PASSWORD)
        .await
        .page();
    assert!(page.input("grant").is_some(), "{}", page.html);
    let grant = page.input("grant").unwrap();

    app.clock.advance(chrono::Duration::days(1));
    let browser = app.browser();
    let login = browser.open("/account").await.page();
    let page = browser
        .login(&login, "12AB", "p.devries", PASSWORD)
        .await
        .page();
    let csrf = page.input("csrf").unwrap();
    assert!(page.html.contains("Jan de Vries"));
    assert!(page.input("grant").is_none(), "{}", page.html);
    let refused = browser
        .post(
            "/account/withdraw",
            &[("csrf", csrf.as_str()), ("grant", grant.as_str())],
        )
        .await
        .page();
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(grant_role(&app, &jan.id).await, "parent");
}

on_every_backend!(
    a_parent_cannot_consent_for_a_sixteen_year_old,
    a_parent_cannot_override_the_students_own_consent,
    the_students_own_grant_is_never_rewritten_by_a_parent,
    a_parent_withdraws_own_consent_only_while_the_child_is_under_sixteen,
);
