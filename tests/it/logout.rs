//! RP-Initiated Logout 1.0: `/logout` ends the portal session. With an `id_token_hint` of
//! this very session it ends at once; without one the person confirms with the session's
//! CSRF token; only registered `post_logout_redirect_uri`s are followed, with `state`.

use crate::helpers::{Browser, TestApp, PASSWORD, STUDYSPACE};
use crate::on_every_backend;

const AFTER: &str = "http://127.0.0.1:9000/";

/// Sara logs in through the partner's flow; the browser and her ID token.
async fn logged_in(app: &TestApp) -> (Browser, String) {
    let browser = app.browser();
    let authorization = app.authorization(STUDYSPACE.0, "openid rooster");
    let login = browser.open(&authorization.url()).await.page();
    let consent = browser
        .login(&login, "12AB", "100002", PASSWORD)
        .await
        .page();
    let callback = browser.consent(&consent, "approve", None).await.callback();
    let (status, tokens) = app
        .exchange(STUDYSPACE, callback.code(), &authorization.verifier)
        .await;
    assert_eq!(status, 200);
    (browser, tokens["id_token"].as_str().unwrap().to_string())
}

/// Is the browser still logged in? A covered request then comes straight back with a code.
async fn still_logged_in(app: &TestApp, browser: &Browser) -> bool {
    let again = app.authorization(STUDYSPACE.0, "openid rooster");
    matches!(
        browser.open(&again.url()).await,
        crate::helpers::Outcome::Left(_)
    )
}

fn logout_url(app: &TestApp, params: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(&app.url("/logout")).unwrap();
    url.query_pairs_mut().extend_pairs(params);
    url.to_string()
}

async fn a_hint_for_this_session_logs_out_at_once(app: TestApp) {
    let (browser, id_token) = logged_in(&app).await;
    assert!(still_logged_in(&app, &browser).await);
    let url = logout_url(
        &app,
        &[
            ("id_token_hint", &id_token),
            ("post_logout_redirect_uri", AFTER),
            ("state", "tot-ziens"),
        ],
    );
    match browser.open(&url).await {
        crate::helpers::Outcome::Left(location) => {
            assert_eq!(location, format!("{AFTER}?state=tot-ziens"))
        }
        crate::helpers::Outcome::Page(page) => panic!("expected a redirect: {}", page.html),
    }
    assert!(!still_logged_in(&app, &browser).await, "the session ended");

    let metadata = app.metadata().await;
    assert_eq!(metadata["end_session_endpoint"], app.url("/logout"));
}

async fn without_a_hint_the_person_confirms(app: TestApp) {
    let (browser, _) = logged_in(&app).await;
    let url = logout_url(
        &app,
        &[
            ("client_id", STUDYSPACE.0),
            ("post_logout_redirect_uri", AFTER),
            ("state", "s1"),
        ],
    );
    let page = browser.open(&url).await.page();
    assert_eq!(page.status, 200);
    assert!(page.html.contains("Uitloggen?"), "{}", page.html);
    assert!(still_logged_in(&app, &browser).await, "nothing ended yet");

    // A form without the session's CSRF token (another site posting) ends nothing.
    let forged = browser
        .post(
            "/logout",
            &[
                ("client_id", STUDYSPACE.0),
                ("post_logout_redirect_uri", AFTER),
            ],
        )
        .await
        .page();
    assert_eq!(forged.status, 403);
    assert!(still_logged_in(&app, &browser).await);

    let page = browser.open(&url).await.page();
    let csrf = page.input("csrf").unwrap();
    let fields = [
        ("csrf", csrf.as_str()),
        ("client_id", STUDYSPACE.0),
        ("post_logout_redirect_uri", AFTER),
        ("state", "s1"),
    ];
    match browser.post("/logout", &fields).await {
        crate::helpers::Outcome::Left(location) => {
            assert_eq!(location, format!("{AFTER}?state=s1"))
        }
        crate::helpers::Outcome::Page(page) => panic!("expected a redirect: {}", page.html),
    }
    assert!(!still_logged_in(&app, &browser).await);

    // Without a post_logout_redirect_uri: a page saying so.
    let page = browser.open(&logout_url(&app, &[])).await.page();
    assert!(page.html.contains("Je bent uitgelogd"), "{}", page.html);
}

async fn only_registered_addresses_and_our_own_hints(app: TestApp) {
    let (browser, id_token) = logged_in(&app).await;
    let elsewhere = logout_url(
        &app,
        &[
            ("id_token_hint", &id_token),
            ("post_logout_redirect_uri", "https://evil.example/"),
        ],
    );
    let page = browser.open(&elsewhere).await.page();
    assert_eq!(page.status, 400);
    let forged_hint = logout_url(
        &app,
        &[
            ("id_token_hint", "eyJhbGciOiJub25lIn0.eyJzaWQiOiJ4In0."),
            ("post_logout_redirect_uri", AFTER),
        ],
    );
    let page = browser.open(&forged_hint).await.page();
    assert_eq!(page.status, 400);
    // An address with no client to hold it to is not followed either.
    let page = browser
        .open(&logout_url(&app, &[("post_logout_redirect_uri", AFTER)]))
        .await
        .page();
    assert_eq!(page.status, 400);
    assert!(
        still_logged_in(&app, &browser).await,
        "none of these ended anything"
    );
}

on_every_backend!(
    a_hint_for_this_session_logs_out_at_once,
    without_a_hint_the_person_confirms,
    only_registered_addresses_and_our_own_hints,
);
