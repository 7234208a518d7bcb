//! The pages people see: CSRF on every form, one generic login error, Dutch consent rules,
//! the deny button, English, cookies and headers.

use reqwest::StatusCode;

use crate::helpers::{Callback, Outcome, TestApp, PASSWORD, STUDYSPACE};
use crate::on_every_backend;

async fn login_without_csrf_token_is_refused(app: TestApp) {
    let browser = app.browser();
    let login = app.login_page(&browser, STUDYSPACE.0, "openid").await;
    let request = login.input("request").unwrap();
    for csrf in [None, Some("forged")] {
        let mut fields = vec![
            ("request", request.as_str()),
            ("school", "12AB"),
            ("username", "100002"),
            ("password", PASSWORD),
        ];
        if let Some(csrf) = csrf {
            fields.push(("csrf", csrf));
        }
        let page = browser.post("/login", &fields).await.page();
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{csrf:?}");
        assert!(page.html.contains("Formulier niet geaccepteerd"));
    }
    // Nothing happened: the real form still works and leads to consent.
    let consent = browser
        .login(&login, "12AB", "100002", PASSWORD)
        .await
        .page();
    assert!(consent.html.contains("decision"));
}

async fn consent_without_csrf_token_is_refused(app: TestApp) {
    let browser = app.browser();
    let login = app.login_page(&browser, STUDYSPACE.0, "openid naam").await;
    let consent = browser
        .login(&login, "12AB", "100002", PASSWORD)
        .await
        .page();
    let request = consent.input("request").unwrap();
    let page = browser
        .post(
            "/consent",
            &[("request", request.as_str()), ("decision", "approve")],
        )
        .await
        .page();
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    // The pre-login CSRF token is no longer valid after login (new session).
    let old_csrf = login.input("csrf").unwrap();
    let page = browser
        .post(
            "/consent",
            &[
                ("csrf", old_csrf.as_str()),
                ("request", request.as_str()),
                ("decision", "approve"),
            ],
        )
        .await
        .page();
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let student = app
        .state
        .store
        .find_account_by_login("12AB", "100002")
        .await
        .unwrap()
        .unwrap();
    let grant = app
        .state
        .store
        .active_grant(
            &student.id,
            STUDYSPACE.0,
            poortwachter::clock::Clock::now(&app.clock),
        )
        .await
        .unwrap();
    assert!(grant.is_none(), "no consent was recorded");
}

async fn wrong_login_gives_one_generic_error(app: TestApp) {
    let browser = app.browser();
    let login = app.login_page(&browser, STUDYSPACE.0, "openid").await;
    let mut messages = Vec::new();
    for (school, username, password) in [
        ("12AB", "100002", "wrong-password"),
        ("12AB", "no-such-user", PASSWORD),
        ("34CD", "100002", PASSWORD), // right user, wrong school
        ("99ZZ", "100002", PASSWORD),
        ("", "", ""),
    ] {
        let page = browser
            .login(&login, school, username, password)
            .await
            .page();
        assert_eq!(page.status, StatusCode::OK);
        let doc = scraper::Html::parse_document(&page.html);
        let error = scraper::Selector::parse(".error").unwrap();
        messages.push(
            doc.select(&error)
                .map(|e| e.inner_html())
                .collect::<String>(),
        );
        // The form is shown again with a valid CSRF token, and no password echoed back.
        assert!(page.input("csrf").is_some());
        assert_eq!(page.input("password"), None);
    }
    assert!(messages[0].contains("klopt niet"));
    assert!(messages.iter().all(|m| m == &messages[0]), "{messages:?}");
}

async fn student_under_sixteen_cannot_consent_alone(app: TestApp) {
    let authorization = app.authorization(STUDYSPACE.0, "openid naam");
    let browser = app.browser();
    let login = browser.open(&authorization.url()).await.page();
    let page = browser
        .login(&login, "12AB", "100001", PASSWORD)
        .await
        .page(); // Jan, 14
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page.html.contains("jonger dan 16"), "{}", page.html);
    let back = Callback::parse(&page.link("back-to-app").unwrap());
    assert_eq!(back.get("error"), Some("access_denied"));

    // Once his parent has consented, Jan himself signs in without being asked.
    let parent = app.authorization(STUDYSPACE.0, "openid naam");
    app.authorize_with_consent(&parent.url(), "12AB", "p.devries", Some("100001"))
        .await;
    let again = app.authorization(STUDYSPACE.0, "openid naam");
    let callback = app
        .authorize_with_consent(&again.url(), "12AB", "100001", None)
        .await;
    let (status, body) = app
        .exchange(STUDYSPACE, callback.code(), &again.verifier)
        .await;
    assert_eq!(status, 200, "{body}");
}

async fn parent_may_only_consent_for_own_child_under_eighteen(app: TestApp) {
    let browser = app.browser();
    let login = app.login_page(&browser, STUDYSPACE.0, "openid naam").await;
    let consent = browser
        .login(&login, "12AB", "p.devries", PASSWORD)
        .await
        .page();
    // Lotte (19) is not Petra's child; Sara (16) neither; nothing chosen at all is refused too.
    for child in [Some("100003"), Some("100002"), Some("not-a-child"), None] {
        let page = browser.consent(&consent, "approve", child).await.page();
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{child:?}");
        assert!(page.html.contains("Kies het kind"));
    }
    // A child who turned 18 is shown, but cannot be chosen.
    let emma = app
        .state
        .store
        .find_account_by_login("12AB", "100004")
        .await
        .unwrap()
        .unwrap();
    sqlx::query("UPDATE accounts SET birth_date = '2008-01-01' WHERE id = $1")
        .bind(&emma.id)
        .execute(app.state.store.pool())
        .await
        .unwrap();
    let browser = app.browser();
    let login = app.login_page(&browser, STUDYSPACE.0, "openid naam").await;
    let consent = browser
        .login(&login, "12AB", "p.devries", PASSWORD)
        .await
        .page();
    assert_eq!(
        consent.choices("student"),
        vec![("100004".to_string(), false), ("100001".to_string(), true)]
    );
    assert!(consent.html.contains("18 jaar of ouder"));
    let page = browser
        .consent(&consent, "approve", Some("100004"))
        .await
        .page();
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    let callback = browser
        .consent(&consent, "approve", Some("100001"))
        .await
        .callback();
    assert!(callback.get("code").is_some());
}

async fn deny_sends_access_denied(app: TestApp) {
    let authorization = app.authorization(STUDYSPACE.0, "openid naam");
    let browser = app.browser();
    let login = browser.open(&authorization.url()).await.page();
    let consent = browser
        .login(&login, "12AB", "100002", PASSWORD)
        .await
        .page();
    let callback = browser.consent(&consent, "deny", None).await.callback();
    assert_eq!(callback.get("error"), Some("access_denied"));
    assert_eq!(callback.get("state"), authorization.param("state"));
    assert_eq!(callback.get("iss"), Some(app.issuer.as_str()));
    // The request is answered: pressing approve afterwards mints nothing.
    let page = browser.consent(&consent, "approve", None).await.page();
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
}

async fn supervisor_cannot_consent(app: TestApp) {
    let browser = app.browser();
    let login = app.login_page(&browser, STUDYSPACE.0, "openid").await;
    let page = browser
        .login(&login, "12AB", "beheer", PASSWORD)
        .await
        .page();
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(
        Callback::parse(&page.link("back-to-app").unwrap()).get("error"),
        Some("access_denied")
    );
}

async fn pages_speak_english_on_request(app: TestApp) {
    let authorization = app
        .authorization(STUDYSPACE.0, "openid naam cijfers")
        .set("ui_locales", "en");
    let browser = app.browser();
    let login = browser.open(&authorization.url()).await.page();
    assert!(login.html.contains("Sign in") && login.html.contains("lang=\"en\""));
    let consent = browser
        .login(&login, "12AB", "100002", PASSWORD)
        .await
        .page();
    assert!(consent.html.contains("Give consent"));
    assert!(consent.html.contains("Grades, as the school shows them."));
    // And back to Dutch with the language link.
    let dutch = browser
        .open(&format!(
            "/consent?request={}&lang=nl",
            consent.input("request").unwrap()
        ))
        .await
        .page();
    assert!(dutch.html.contains("Toestemming geven"));
    assert!(dutch.html.contains("De cijfers"));
}

async fn session_cookie_and_headers_are_safe(app: TestApp) {
    let response = app
        .browser()
        .raw_get(&app.authorization(STUDYSPACE.0, "openid").url())
        .await;
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "plain http issuer in tests");
    let browser = app.browser();
    let redirect = browser
        .raw_get(&app.authorization(STUDYSPACE.0, "openid").url())
        .await;
    let login = browser
        .raw_get(redirect.headers()["location"].to_str().unwrap())
        .await;
    let headers = login.headers().clone();
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert!(headers["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));
    let html = login.text().await.unwrap();
    // No third-party scripts, fonts or trackers: every reference is local.
    for reference in ["src=\"http", "href=\"http", "<script", "@import", "fonts."] {
        assert!(!html.contains(reference), "{reference} in {html}");
    }
    let css = app
        .browser()
        .raw_get("/static/style.css")
        .await
        .text()
        .await
        .unwrap();
    assert!(!css.contains("url(") && !css.contains("@import"));
}

async fn expired_session_or_request_is_a_readable_page(app: TestApp) {
    let page = app
        .browser()
        .open("/login?request=does-not-exist")
        .await
        .page();
    assert_eq!(page.status, StatusCode::FORBIDDEN, "no session cookie");
    let browser = app.browser();
    let _ = browser
        .open(&app.authorization(STUDYSPACE.0, "openid").url())
        .await;
    let page = browser.open("/login?request=does-not-exist").await.page();
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.html.contains("verlopen"));
    let page = browser.post("/login", &[("garbage", "\u{0}")]).await.page();
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    // Another browser cannot continue someone else's request.
    let login = app.login_page(&browser, STUDYSPACE.0, "openid").await;
    let stranger = app.browser();
    let _ = stranger
        .open(&app.authorization(STUDYSPACE.0, "openid").url())
        .await;
    match stranger
        .open(&format!(
            "/login?request={}",
            login.input("request").unwrap()
        ))
        .await
    {
        Outcome::Page(page) => assert_eq!(page.status, StatusCode::FORBIDDEN),
        Outcome::Left(location) => panic!("stranger was sent to {location}"),
    }
}

async fn health_endpoints(app: TestApp) {
    let healthz = app.browser().raw_get("/healthz").await;
    assert_eq!(healthz.status(), 200);
    let readyz = app.browser().raw_get("/readyz").await;
    assert_eq!(readyz.status(), 200);
    let metadata: serde_json::Value = app
        .browser()
        .raw_get("/.well-known/oauth-authorization-server")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["issuer"], app.issuer.as_str());
    let tenants = metadata["acr_values_supported"].as_array().unwrap();
    assert!(
        tenants.contains(&serde_json::json!("tenant:12AB")),
        "{tenants:?}"
    );
    assert!(tenants
        .iter()
        .all(|t| t.as_str().unwrap().starts_with("tenant:")));
    assert_eq!(
        metadata["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        metadata["authorization_response_iss_parameter_supported"],
        true
    );
    let jwks: serde_json::Value = app.browser().raw_get("/jwks").await.json().await.unwrap();
    assert!(jwks["keys"][0]["kid"].is_string());
    assert!(
        jwks["keys"][0].get("d").is_none(),
        "no private key material"
    );
}

on_every_backend!(
    login_without_csrf_token_is_refused,
    consent_without_csrf_token_is_refused,
    wrong_login_gives_one_generic_error,
    student_under_sixteen_cannot_consent_alone,
    parent_may_only_consent_for_own_child_under_eighteen,
    deny_sends_access_denied,
    supervisor_cannot_consent,
    pages_speak_english_on_request,
    session_cookie_and_headers_are_safe,
    expired_session_or_request_is_a_readable_page,
    health_endpoints,
);

/// Ten wrong passwords for one school and username close that login for fifteen minutes,
/// whether or not the account exists; other accounts are not affected.
async fn repeated_wrong_passwords_are_throttled(app: TestApp) {
    let browser = app.browser();
    let login = app.login_page(&browser, STUDYSPACE.0, "openid").await;
    for username in ["100002", "bestaat-niet"] {
        for _ in 0..10 {
            let page = browser.login(&login, "12AB", username, "fout").await.page();
            assert!(page.html.contains("klopt niet"));
        }
    }
    let page = browser
        .login(&login, "12AB", "100002", PASSWORD)
        .await
        .page();
    assert!(
        page.html.contains("te vaak"),
        "the right password does not help now"
    );
    let page = browser
        .login(&login, "12AB", "bestaat-niet", PASSWORD)
        .await
        .page();
    assert!(
        page.html.contains("te vaak"),
        "same answer for an unknown account"
    );

    // Someone else logs in as usual.
    let other = app.browser();
    let login_other = app.login_page(&other, STUDYSPACE.0, "openid").await;
    let consent = other
        .login(&login_other, "12AB", "100003", PASSWORD)
        .await
        .page();
    assert!(consent.html.contains("decision"));

    // After the window the account can log in again.
    app.clock.advance(chrono::Duration::minutes(16));
    let login = app.login_page(&browser, STUDYSPACE.0, "openid").await;
    let consent = browser
        .login(&login, "12AB", "100002", PASSWORD)
        .await
        .page();
    assert!(consent.html.contains("decision"), "{}", consent.html);
}

on_every_backend!(repeated_wrong_passwords_are_throttled);

/// The log says what happened, never with passwords, tokens, codes, secrets or names.
async fn logs_hold_no_secrets_or_personal_data(app: TestApp) {
    let browser = app.browser();
    let login = app.login_page(&browser, STUDYSPACE.0, "openid").await;
    let wrong_password = format!("fout-{}", poortwachter::crypto::tokens::random_token());
    browser
        .login(&login, "12AB", "100003", &wrong_password)
        .await
        .page();
    let authorization = app.authorization(STUDYSPACE.0, "openid naam offline_access");
    let callback = app
        .authorize_with_consent(&authorization.url(), "12AB", "100003", None)
        .await;
    let code = callback.code().to_string();
    let (_, tokens) = app
        .exchange(STUDYSPACE, &code, &authorization.verifier)
        .await;
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    app.userinfo(access).await;
    app.introspect(access).await;
    app.exchange(STUDYSPACE, &code, &authorization.verifier)
        .await; // a replay, logged as a warning

    let logs = crate::helpers::captured_logs();
    assert!(logs.contains("login"), "the capture works: {logs}");
    assert!(logs.contains("authorization code replayed"));
    for secret in [
        wrong_password.as_str(),
        PASSWORD,
        access,
        refresh,
        code.as_str(),
        &authorization.verifier,
        "studyspace-demo-secret",
        "schooldata-api-demo-secret",
        "Lotte",
        "Visser",
        "100003",
    ] {
        assert!(!logs.contains(secret), "the log contains {secret}");
    }
}

on_every_backend!(logs_hold_no_secrets_or_personal_data);
