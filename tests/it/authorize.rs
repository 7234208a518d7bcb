//! Refusals at the authorization endpoint: each one either a page with no redirect (when the
//! client or redirect URI cannot be trusted) or an RFC 6749 §4.1.2.1 error back to the client.

use poortwachter::clock::Clock;
use reqwest::StatusCode;

use crate::helpers::{Callback, Outcome, TestApp, PASSWORD, REDIRECT, STUDYSPACE};
use crate::on_every_backend;

/// A redirect straight back to the partner, with error, state and iss.
async fn error_redirect(app: &TestApp, url: &str) -> Callback {
    let response = app.browser().raw_get(url).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response.headers()["location"].to_str().unwrap();
    assert!(location.starts_with(REDIRECT), "{location}");
    Callback::parse(location)
}

async fn missing_or_plain_pkce_is_refused(app: TestApp) {
    let authorization = app
        .authorization(STUDYSPACE.0, "openid naam")
        .without("code_challenge");
    let callback = error_redirect(&app, &authorization.url()).await;
    assert_eq!(callback.get("error"), Some("invalid_request"));
    assert_eq!(callback.get("state"), authorization.param("state"));
    assert_eq!(callback.get("iss"), Some(app.issuer.as_str()));

    let plain = app
        .authorization(STUDYSPACE.0, "openid naam")
        .set("code_challenge_method", "plain");
    let callback = error_redirect(&app, &plain.url()).await;
    assert_eq!(callback.get("error"), Some("invalid_request"));

    // No method at all means "plain" (RFC 7636 §4.3), refused just the same.
    let implicit_plain = app
        .authorization(STUDYSPACE.0, "openid naam")
        .without("code_challenge_method");
    let callback = error_redirect(&app, &implicit_plain.url()).await;
    assert_eq!(callback.get("error"), Some("invalid_request"));
}

async fn redirect_uri_mismatch_shows_a_page_and_never_redirects(app: TestApp) {
    for uri in [
        "http://127.0.0.1:9000/callback/evil",
        "http://127.0.0.1:9000/callback?x=1",
        "http://evil.example/callback",
        "HTTP://127.0.0.1:9000/callback",
    ] {
        let authorization = app
            .authorization(STUDYSPACE.0, "openid naam")
            .set("redirect_uri", uri);
        let response = app.browser().raw_get(&authorization.url()).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{uri}");
        assert!(response.headers().get("location").is_none());
        let html = response.text().await.unwrap();
        assert!(
            html.contains("terugkeeradres"),
            "a Dutch explanation: {html}"
        );
    }
    let missing = app
        .authorization(STUDYSPACE.0, "openid naam")
        .without("redirect_uri");
    let response = app.browser().raw_get(&missing.url()).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get("location").is_none());
}

async fn unknown_client_shows_a_page(app: TestApp) {
    let authorization = app.authorization("onbekend", "openid naam");
    let response = app.browser().raw_get(&authorization.url()).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get("location").is_none());
    assert!(response.text().await.unwrap().contains("niet bekend"));
}

async fn non_accredited_partner_is_explained_and_reported(app: TestApp) {
    let authorization = app.authorization("ongeaccrediteerd-demo", "openid naam");
    let page = app.browser().open(&authorization.url()).await.page();
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page.html.contains("niet toegelaten"));
    let back = Callback::parse(&page.link("back-to-app").unwrap());
    assert_eq!(back.get("error"), Some("unauthorized_client"));
    assert_eq!(back.get("state"), authorization.param("state"));
    assert_eq!(back.get("iss"), Some(app.issuer.as_str()));

    // A suspended partner, or one past its validity, is refused the same way.
    let store = &app.state.store;
    let mut client = store
        .get_client(STUDYSPACE.0)
        .await
        .unwrap()
        .unwrap()
        .accreditation();
    client.status = poortwachter::domain::partner::AccreditationStatus::Suspended;
    store
        .set_accreditation(STUDYSPACE.0, &client)
        .await
        .unwrap();
    let page = app
        .browser()
        .open(&app.authorization(STUDYSPACE.0, "openid").url())
        .await
        .page();
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    client.status = poortwachter::domain::partner::AccreditationStatus::Accredited;
    client.valid_until = Some(app.clock.now() - chrono::Duration::days(1));
    store
        .set_accreditation(STUDYSPACE.0, &client)
        .await
        .unwrap();
    let page = app
        .browser()
        .open(&app.authorization(STUDYSPACE.0, "openid").url())
        .await
        .page();
    let back = Callback::parse(&page.link("back-to-app").unwrap());
    assert_eq!(back.get("error"), Some("unauthorized_client"));
}

async fn scope_outside_the_partners_set_is_invalid_scope(app: TestApp) {
    // Huiswerkhulp may not read grades.
    let authorization = app.authorization("huiswerkhulp-demo", "openid cijfers");
    let page = app.browser().open(&authorization.url()).await.page();
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let back = Callback::parse(&page.link("back-to-app").unwrap());
    assert_eq!(back.get("error"), Some("invalid_scope"));

    // A scope nobody knows goes straight back.
    let unknown = app.authorization(STUDYSPACE.0, "openid email");
    let callback = error_redirect(&app, &unknown.url()).await;
    assert_eq!(callback.get("error"), Some("invalid_scope"));
}

async fn closed_link_is_explained_after_login(app: TestApp) {
    // Noah's school (34CD) has not opened its link to Studyspace: links start closed.
    let authorization = app.authorization(STUDYSPACE.0, "openid naam");
    let browser = app.browser();
    let login = browser.open(&authorization.url()).await.page();
    let page = browser
        .login(&login, "34CD", "200001", PASSWORD)
        .await
        .page();
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page.html.contains("koppeling"));
    let back = Callback::parse(&page.link("back-to-app").unwrap());
    assert_eq!(back.get("error"), Some("access_denied"));

    // Once the school opens the link, the same student gets through to consent... at 15 he
    // needs a parent, which the page says.
    app.state
        .store
        .set_link("34CD", STUDYSPACE.0, true, None, app.clock.now())
        .await
        .unwrap();
    let browser = app.browser();
    let login = app.login_page(&browser, STUDYSPACE.0, "openid naam").await;
    let page = browser
        .login(&login, "34CD", "200001", PASSWORD)
        .await
        .page();
    assert!(page.html.contains("ouder"), "{}", page.html);
    assert_eq!(
        Callback::parse(&page.link("back-to-app").unwrap()).get("error"),
        Some("access_denied")
    );
}

async fn unsupported_response_type_and_duplicates(app: TestApp) {
    let token_flow = app
        .authorization(STUDYSPACE.0, "openid")
        .set("response_type", "token");
    let callback = error_redirect(&app, &token_flow.url()).await;
    assert_eq!(callback.get("error"), Some("unsupported_response_type"));

    let url = format!(
        "{}&scope=openid",
        app.authorization(STUDYSPACE.0, "openid").url()
    );
    let response = app.browser().raw_get(&url).await;
    assert_eq!(
        response.status(),
        StatusCode::BAD_REQUEST,
        "a repeated parameter"
    );
}

async fn prompt_none_without_session_is_login_required(app: TestApp) {
    let authorization = app
        .authorization(STUDYSPACE.0, "openid")
        .set("prompt", "none");
    let callback = error_redirect(&app, &authorization.url()).await;
    assert_eq!(callback.get("error"), Some("login_required"));

    // With a session: a covered request comes straight back with a code, a wider one with
    // consent_required; no page is shown either way.
    let browser = app.browser();
    let login = app
        .login_page(&browser, STUDYSPACE.0, "openid rooster")
        .await;
    let consent = browser
        .login(&login, "12AB", "100002", PASSWORD)
        .await
        .page();
    browser.consent(&consent, "approve", None).await.callback();
    let covered = app
        .authorization(STUDYSPACE.0, "openid")
        .set("prompt", "none");
    assert!(browser
        .open(&covered.url())
        .await
        .callback()
        .get("code")
        .is_some());
    let wider = app
        .authorization(STUDYSPACE.0, "openid cijfers")
        .set("prompt", "none");
    let callback = browser.open(&wider.url()).await.callback();
    assert_eq!(callback.get("error"), Some("consent_required"));
}

async fn existing_grant_skips_consent_unless_prompt_consent(app: TestApp) {
    let browser = app.browser();
    let first = app.authorization(STUDYSPACE.0, "openid naam rooster");
    let login = browser.open(&first.url()).await.page();
    let consent = browser
        .login(&login, "12AB", "100002", PASSWORD)
        .await
        .page();
    browser.consent(&consent, "approve", None).await.callback();

    // Same browser, a covered request: straight back with a code.
    let again = app.authorization(STUDYSPACE.0, "openid rooster");
    let callback = browser.open(&again.url()).await.callback();
    let (status, _) = app
        .exchange(STUDYSPACE, callback.code(), &again.verifier)
        .await;
    assert_eq!(status, 200);

    // prompt=consent asks again; a wider request asks again.
    let forced = app
        .authorization(STUDYSPACE.0, "openid rooster")
        .set("prompt", "consent");
    let page = browser.open(&forced.url()).await.page();
    assert!(page.html.contains("decision"));
    let wider = app.authorization(STUDYSPACE.0, "openid rooster cijfers");
    let page = browser.open(&wider.url()).await.page();
    assert!(page.html.contains("cijfers"));

    // prompt=login shows the login page even with a live session.
    let relogin = app
        .authorization(STUDYSPACE.0, "openid rooster")
        .set("prompt", "login");
    let page = browser.open(&relogin.url()).await.page();
    assert!(page.html.contains("name=\"password\""));
    match browser.login(&page, "12AB", "100002", PASSWORD).await {
        Outcome::Left(location) => assert!(Callback::parse(&location).get("code").is_some()),
        Outcome::Page(page) => panic!("expected a code after the forced login, got {}", page.html),
    }
}

async fn hints_preselect_school_and_username(app: TestApp) {
    let authorization = app
        .authorization(STUDYSPACE.0, "openid")
        .set("acr_values", "tenant:12AB")
        .set("login_hint", "100002");
    let page = app.browser().open(&authorization.url()).await.page();
    assert_eq!(
        page.attr("select[name=school] option[selected]", "value")
            .as_deref(),
        Some("12AB")
    );
    assert_eq!(page.input("username").as_deref(), Some("100002"));
    assert_eq!(
        page.attr("input[name=username]", "autocomplete").as_deref(),
        Some("username")
    );
    assert_eq!(
        page.attr("input[name=password]", "autocomplete").as_deref(),
        Some("current-password")
    );
}

on_every_backend!(
    missing_or_plain_pkce_is_refused,
    redirect_uri_mismatch_shows_a_page_and_never_redirects,
    unknown_client_shows_a_page,
    non_accredited_partner_is_explained_and_reported,
    scope_outside_the_partners_set_is_invalid_scope,
    closed_link_is_explained_after_login,
    unsupported_response_type_and_duplicates,
    prompt_none_without_session_is_login_required,
    existing_grant_skips_consent_unless_prompt_consent,
    hints_preselect_school_and_username,
);
