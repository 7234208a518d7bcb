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

/// OIDC Core §3.1.2.1 `max_age`: a login older than `max_age` seconds must be repeated; a
/// recent enough one is not asked again. `max_age` that is not a number goes back as
/// `invalid_request`.
async fn max_age_asks_for_a_fresh_login(app: TestApp) {
    let browser = app.browser();
    let first = app.authorization(STUDYSPACE.0, "openid rooster");
    let login = browser.open(&first.url()).await.page();
    let consent = browser
        .login(&login, "12AB", "100002", PASSWORD)
        .await
        .page();
    browser.consent(&consent, "approve", None).await.callback();
    app.clock.advance(chrono::Duration::seconds(40));

    let recent_enough = app
        .authorization(STUDYSPACE.0, "openid rooster")
        .set("max_age", "60");
    let callback = browser.open(&recent_enough.url()).await.callback();
    assert!(
        callback.get("code").is_some(),
        "a 40 s old login is young enough for 60"
    );

    let too_old = app
        .authorization(STUDYSPACE.0, "openid rooster")
        .set("max_age", "30");
    let page = browser.open(&too_old.url()).await.page();
    assert!(page.html.contains("name=\"password\""), "log in again");
    let callback = browser
        .login(&page, "12AB", "100002", PASSWORD)
        .await
        .callback();
    let (status, tokens) = app
        .exchange(STUDYSPACE, callback.code(), &too_old.verifier)
        .await;
    assert_eq!(status, 200);
    let claims = crate::flow::payload(tokens["id_token"].as_str().unwrap());
    assert_eq!(
        claims["auth_time"],
        app.clock.now().timestamp(),
        "the new login"
    );

    // With prompt=none a login that is too old cannot be repeated: login_required.
    app.clock.advance(chrono::Duration::seconds(40));
    let silent = app
        .authorization(STUDYSPACE.0, "openid rooster")
        .set("max_age", "30")
        .set("prompt", "none");
    let response = browser.raw_get(&silent.url()).await;
    let location = response.headers()["location"].to_str().unwrap();
    assert_eq!(
        Callback::parse(location).get("error"),
        Some("login_required")
    );

    let garbled = app
        .authorization(STUDYSPACE.0, "openid rooster")
        .set("max_age", "soon");
    let back = error_redirect(&app, &garbled.url()).await;
    assert_eq!(back.get("error"), Some("invalid_request"));
}

/// OIDC Core §3.1.2.1: the authorization request may come as a form POST, under the same
/// rules as GET; a body that is not a form is a readable page.
async fn authorize_accepts_a_form_post(app: TestApp) {
    let browser = app.browser();
    let authorization = app.authorization(STUDYSPACE.0, "openid rooster");
    let fields: Vec<(&str, &str)> = authorization
        .params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let login = browser.post("/authorize", &fields).await.page();
    let consent = browser
        .login(&login, "12AB", "100002", PASSWORD)
        .await
        .page();
    let callback = browser.consent(&consent, "approve", None).await.callback();
    assert_eq!(callback.get("state"), authorization.param("state"));
    let (status, _) = app
        .exchange(STUDYSPACE, callback.code(), &authorization.verifier)
        .await;
    assert_eq!(status, 200);

    // The same rules: the form becomes the same request by GET (303, so the browser sends
    // its SameSite=Lax session cookie), and a plain PKCE method is refused back to the client.
    let plain: Vec<(&str, &str)> = fields
        .iter()
        .map(|&(k, v)| {
            if k == "code_challenge_method" {
                (k, "plain")
            } else {
                (k, v)
            }
        })
        .collect();
    let response = app
        .backchannel()
        .post(app.url("/authorize"))
        .form(&plain)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with("/authorize?"), "{location}");
    let back = error_redirect(&app, &app.url(&location)).await;
    assert_eq!(back.get("error"), Some("invalid_request"));

    // A browser that is logged in stays logged in: a second POST comes straight back.
    let again = app.authorization(STUDYSPACE.0, "openid rooster");
    let fields: Vec<(&str, &str)> = again
        .params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let callback = browser.post("/authorize", &fields).await.callback();
    assert!(callback.get("code").is_some(), "the session was kept");

    let not_a_form = app
        .backchannel()
        .post(app.url("/authorize"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(not_a_form.status(), StatusCode::BAD_REQUEST);
    assert!(not_a_form.text().await.unwrap().contains("formulier"));
}

on_every_backend!(
    max_age_asks_for_a_fresh_login,
    authorize_accepts_a_form_post,
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
