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
    assert!(
        after.html.contains(
            "Ingetrokken. Dit geldt vanaf de volgende keer dat Studyspace (demo) gegevens ophaalt."
        ),
        "{}",
        after.html
    );
    assert!(
        after.input("grant").is_none(),
        "no grant left: {}",
        after.html
    );
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
    assert!(
        page.html
            .contains("Toestemming gegeven door Petra de Vries (ouder) op 23-11-2026"),
        "{}",
        page.html
    );
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
    // Nor can a crafted link make Sara's page claim that Jan's consent was withdrawn.
    let crafted = other
        .open(&format!("/account?withdrawn={grant}"))
        .await
        .page();
    assert!(!crafted.html.contains("Ingetrokken"), "{}", crafted.html);

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

async fn student(app: &TestApp, number: &str) -> String {
    app.state
        .store
        .find_account_by_login("12AB", number)
        .await
        .unwrap()
        .unwrap()
        .id
}

async fn set_birth_date(app: &TestApp, student_id: &str, date: &str) {
    sqlx::query("UPDATE accounts SET birth_date = $2 WHERE id = $1")
        .bind(student_id)
        .bind(date)
        .execute(app.state.store.pool())
        .await
        .unwrap();
    app.state.cache.changed(&app.state.store).await;
}

async fn audit_actions(app: &TestApp, grant_id: &str) -> Vec<String> {
    app.state
        .store
        .audit_log(&format!("grant:{grant_id}"), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect()
}

/// Given a parent who consented for Jan (14), when the parent withdraws only `huiswerk`,
/// then the partner's next introspection and refresh lack it and the rest still works; when
/// the last data scope goes, the whole grant goes.
async fn parent_withdraws_a_single_scope_and_the_partner_loses_only_that(app: TestApp) {
    let tokens = app
        .tokens_for(
            STUDYSPACE,
            "openid offline_access rooster huiswerk",
            "p.devries",
            Some("100001"),
        )
        .await;
    let access = tokens["access_token"].as_str().unwrap();
    let (browser, page) = log_in_to_account(&app, "p.devries").await;
    let grant = page.input("grant").unwrap();
    let csrf = page.input("csrf").unwrap();
    assert!(
        page.attr(
            "form[action=\"/account/withdraw\"] input[name=scope][value=huiswerk]",
            "value"
        )
        .is_some(),
        "a per-scope withdraw form: {}",
        page.html
    );
    assert!(
        page.attr("input[name=scope][value=openid]", "value")
            .is_none(),
        "openid goes only with the whole grant"
    );

    // Without the CSRF token nothing happens.
    let refused = browser
        .post(
            "/account/withdraw",
            &[("grant", grant.as_str()), ("scope", "huiswerk")],
        )
        .await
        .page();
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.introspect(access).await["scope"],
        "openid offline_access rooster huiswerk"
    );

    let after = browser
        .post(
            "/account/withdraw",
            &[
                ("csrf", csrf.as_str()),
                ("grant", grant.as_str()),
                ("scope", "huiswerk"),
            ],
        )
        .await
        .page();
    assert!(
        after.html.contains(
            "Ingetrokken. Dit geldt vanaf de volgende keer dat Studyspace (demo) gegevens ophaalt."
        ),
        "{}",
        after.html
    );
    assert!(after
        .attr("input[name=scope][value=huiswerk]", "value")
        .is_none());
    assert!(after
        .attr("input[name=scope][value=rooster]", "value")
        .is_some());
    let answer = app.introspect(access).await;
    assert_eq!(answer["active"], true);
    assert_eq!(answer["scope"], "openid offline_access rooster");
    let (status, refreshed) = app
        .refresh(STUDYSPACE, tokens["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(status, 200, "{refreshed}");
    assert_eq!(refreshed["scope"], "openid offline_access rooster");
    assert_eq!(audit_actions(&app, &grant).await, ["grant.withdraw"]);

    // rooster was the last data scope: nothing is left to share, the grant is withdrawn.
    browser
        .post(
            "/account/withdraw",
            &[
                ("csrf", csrf.as_str()),
                ("grant", grant.as_str()),
                ("scope", "rooster"),
            ],
        )
        .await
        .page();
    let renewed = refreshed["access_token"].as_str().unwrap();
    assert_eq!(app.introspect(renewed).await["active"], false);
    let (status, _) = app
        .refresh(STUDYSPACE, refreshed["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(status, 400);
}

/// A parent never withdraws (part of) what a student of 16 decided personally.
async fn parent_cannot_withdraw_a_scope_of_a_sixteen_year_olds_own_consent(app: TestApp) {
    let jan = student(&app, "100001").await;
    set_birth_date(&app, &jan, "2010-01-01").await;
    let tokens = app
        .tokens_for(STUDYSPACE, "openid rooster huiswerk", "100001", None)
        .await;
    let access = tokens["access_token"].as_str().unwrap();
    let (browser, page) = log_in_to_account(&app, "p.devries").await;
    assert!(
        page.html.contains("Toestemming gegeven door de leerling"),
        "{}",
        page.html
    );
    assert!(
        page.input("grant").is_none(),
        "no withdraw forms: {}",
        page.html
    );
    let grant = app
        .state
        .store
        .active_grant(&jan, STUDYSPACE.0, app.state.now())
        .await
        .unwrap()
        .unwrap();
    let refused = browser
        .post(
            "/account/withdraw",
            &[
                ("csrf", page.input("csrf").unwrap().as_str()),
                ("grant", grant.id.as_str()),
                ("scope", "huiswerk"),
            ],
        )
        .await
        .page();
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.introspect(access).await["scope"],
        "openid rooster huiswerk"
    );
}

/// Given a parent's consent for Jan, when Jan turns 18 the consent stops; Jan sees it marked
/// as given by a parent, confirms it, and from then on it is Jan's own and works again.
async fn an_adult_student_confirms_a_parents_earlier_consent(app: TestApp) {
    let tokens = app
        .tokens_for(STUDYSPACE, "openid rooster", "p.devries", Some("100001"))
        .await;
    let access = tokens["access_token"].as_str().unwrap();
    let jan = student(&app, "100001").await;
    set_birth_date(&app, &jan, "2008-01-01").await;
    assert_eq!(app.introspect(access).await["active"], false, "came of age");

    let (browser, page) = log_in_to_account(&app, "100001").await;
    assert!(
        page.html
            .contains("Toestemming gegeven door Petra de Vries (ouder)"),
        "{}",
        page.html
    );
    assert!(page.html.contains("Nu beslis je zelf"), "{}", page.html);
    assert!(page.html.contains("Bevestigen") && page.html.contains("Beëindigen"));
    let grant = page
        .attr(
            "form[action=\"/account/confirm\"] input[name=grant]",
            "value",
        )
        .expect("a confirm form");
    let csrf = page.input("csrf").unwrap();

    // The parent cannot confirm on the student's behalf, and nobody without the CSRF token.
    let (parent, parent_page) = log_in_to_account(&app, "p.devries").await;
    let refused = parent
        .post(
            "/account/confirm",
            &[
                ("csrf", parent_page.input("csrf").unwrap().as_str()),
                ("grant", grant.as_str()),
            ],
        )
        .await
        .page();
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let refused = browser
        .post("/account/confirm", &[("grant", grant.as_str())])
        .await
        .page();
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(app.introspect(access).await["active"], false);

    let after = browser
        .post(
            "/account/confirm",
            &[("csrf", csrf.as_str()), ("grant", grant.as_str())],
        )
        .await
        .page();
    assert!(
        after
            .html
            .contains("Bevestigd. De toestemming voor Studyspace (demo) is nu van jou."),
        "{}",
        after.html
    );
    assert!(
        after.html.contains("Toestemming gegeven door jou"),
        "{}",
        after.html
    );
    assert!(!after.html.contains("/account/confirm"));
    let stored = app.state.store.get_grant(&grant).await.unwrap().unwrap();
    assert_eq!(stored.given_by_role, "student");
    assert_eq!(stored.given_by, jan);
    assert_eq!(app.introspect(access).await["active"], true, "works again");
    assert_eq!(audit_actions(&app, &grant).await, ["grant.confirm"]);
}

on_every_backend!(
    student_withdraws_consent_and_the_partner_is_cut_off,
    parent_sees_and_withdraws_for_a_child,
    parent_withdraws_a_single_scope_and_the_partner_loses_only_that,
    parent_cannot_withdraw_a_scope_of_a_sixteen_year_olds_own_consent,
    an_adult_student_confirms_a_parents_earlier_consent,
);
