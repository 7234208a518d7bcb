//! The platform console: partners with their accreditation and open links, suspension that
//! takes effect at the partner's next call, registration with the secret shown once,
//! resource servers, management clients and the platform's audit log.

use crate::helpers::*;

fn shown_secret(page: &Page) -> String {
    scraper::Html::parse_document(&page.html)
        .select(&scraper::Selector::parse("#shown-secret code.secret").unwrap())
        .next()
        .expect("a secret shown once")
        .text()
        .collect()
}

#[tokio::test]
async fn the_operator_suspends_a_partner_and_it_can_no_longer_start_a_login() {
    let app = TestApp::spawn_sqlite().await;
    let tokens = app.sara_tokens("openid rooster").await;
    let access = tokens["access_token"].as_str().unwrap();
    let (browser, home) = app.operator_browser().await;
    assert!(home.html.contains("Studyspace (demo)"), "{}", home.html);
    // Studyspace's link is open at one school (12AB), Huiswerkhulp's nowhere.
    assert!(
        home.html.contains("Koppeling open bij 1 school"),
        "{}",
        home.html
    );
    let csrf = home.input("csrf").unwrap();

    // A suspension needs a reason; without CSRF nothing happens.
    let forged = browser
        .post(
            "/platform/partners/studyspace-demo/suspend",
            &[("reason", "x")],
        )
        .await
        .page();
    assert_eq!(forged.status, 403);
    let no_reason = browser
        .post(
            "/platform/partners/studyspace-demo/suspend",
            &[("csrf", &csrf), ("reason", "")],
        )
        .await
        .page();
    assert_eq!(no_reason.status, 400);
    assert_eq!(app.introspect(access).await["active"], true);

    let done = browser
        .post(
            "/platform/partners/studyspace-demo/suspend",
            &[("csrf", &csrf), ("reason", "datalek in onderzoek")],
        )
        .await
        .page();
    assert!(done.html.contains("Geschorst"), "{}", done.html);
    assert_eq!(app.introspect(access).await["active"], false);
    let authorization = app.authorization(STUDYSPACE.0, "openid naam");
    let page = app.browser().open(&authorization.url()).await.page();
    assert_eq!(page.status, 403, "{}", page.html);
    // The school console no longer offers the suspended partner.
    let (supervisor, school_home) = app.supervisor_browser().await;
    assert!(!school_home.html.contains("Studyspace (demo)"));
    let _ = supervisor;

    // Accredited again, until a date.
    let accredited = browser
        .post(
            "/platform/partners/studyspace-demo/accredit",
            &[
                ("csrf", &csrf),
                ("valid_until", "2031-07-31"),
                ("reason", "onderzoek afgerond"),
            ],
        )
        .await
        .page();
    assert!(
        accredited.html.contains("vastgelegd"),
        "{}",
        accredited.html
    );
    let answer = app.introspect(access).await;
    assert_eq!(answer["active"], true, "{answer}");
    let page = browser.open("/platform").await.page();
    assert!(page.html.contains("31-07-2031"), "{}", page.html);

    let audit = browser.open("/platform/audit?q=accreditation").await.page();
    assert!(audit.html.contains("accreditation.suspended"));
    assert!(audit.html.contains("datalek in onderzoek"));
    assert!(audit.html.contains("operator:operator"));
}

#[tokio::test]
async fn the_operator_registers_a_partner_and_rotates_its_secret() {
    let app = TestApp::spawn_sqlite().await;
    let (browser, home) = app.operator_browser().await;
    let csrf = home.input("csrf").unwrap();
    // Bad input names the field.
    let bad = browser
        .post(
            "/platform/partners",
            &[
                ("csrf", &csrf),
                ("name", "Slim"),
                ("redirect_uris", "http://slim.example/callback"),
                ("scopes", "openid"),
                ("token_endpoint_auth_method", "client_secret_basic"),
            ],
        )
        .await
        .page();
    assert_eq!(bad.status, 400);
    assert!(bad.html.contains("redirect_uris"), "{}", bad.html);

    let page = browser
        .post(
            "/platform/partners",
            &[
                ("csrf", &csrf),
                ("name", "Huiswerkinstituut Slim"),
                (
                    "redirect_uris",
                    "https://slim.example/callback\r\nhttps://slim.example/cb2",
                ),
                ("scopes", "openid"),
                ("scopes", "rooster"),
                ("token_endpoint_auth_method", "client_secret_post"),
                ("contacts", "privacy@slim.example"),
            ],
        )
        .await
        .page();
    assert_eq!(page.status, 200, "{}", page.html);
    let secret = shown_secret(&page);
    assert!(secret.len() >= 32);
    let client = app
        .state
        .store
        .list_clients("partner")
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.display_name == "Huiswerkinstituut Slim")
        .unwrap();
    assert_eq!(client.accreditation_status, "pending");
    assert_eq!(client.redirect_uri_list().len(), 2);
    // Shown once: the next page load does not have it.
    let again = browser.open("/platform").await.page();
    assert!(!again.html.contains(&secret));

    let rotated = browser
        .post(
            &format!("/platform/partners/{}/rotate", client.client_id),
            &[("csrf", &csrf)],
        )
        .await
        .page();
    let new_secret = shown_secret(&rotated);
    assert_ne!(new_secret, secret);

    // Resource server and management client.
    let rs = browser
        .post(
            "/platform/resource-servers",
            &[("csrf", &csrf), ("name", "Roosterdienst")],
        )
        .await
        .page();
    assert!(!shown_secret(&rs).is_empty());
    assert!(rs.html.contains("Roosterdienst"));
    let mc = browser
        .post(
            "/platform/management-clients",
            &[
                ("csrf", &csrf),
                ("name", "Beheer Rivierencollege"),
                ("scope", "beheer:34CD"),
            ],
        )
        .await
        .page();
    assert!(!shown_secret(&mc).is_empty(), "{}", mc.html);

    // A supervisor has no business here.
    let (supervisor, _) = app.supervisor_browser().await;
    assert_eq!(supervisor.open("/platform").await.page().status, 403);
}
