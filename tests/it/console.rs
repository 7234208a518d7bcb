//! The consoles' login (password + RFC 6238 TOTP, enrolment, recovery codes) and the school
//! console: the link switch, closures, students and the audit log, through real pages.

use chrono::Duration;

use crate::helpers::*;

async fn password_step(
    _app: &TestApp,
    browser: &Browser,
    school: &str,
    user: &str,
    password: &str,
) -> Page {
    let login = browser.open("/console/login").await.page();
    browser
        .post(
            "/console/login",
            &[
                ("csrf", &login.input("csrf").unwrap()),
                ("school", school),
                ("username", user),
                ("password", password),
            ],
        )
        .await
        .page()
}

#[tokio::test]
async fn supervisor_needs_the_totp_code_and_a_code_works_once() {
    let app = TestApp::spawn_sqlite().await;
    let browser = app.browser();
    // Nothing of the console without logging in.
    let bounced = browser.raw_get("/school").await;
    assert_eq!(bounced.status(), 303);
    assert_eq!(bounced.headers()["location"], "/console/login");

    // A wrong password: the same answer as an unknown user.
    let wrong = password_step(&app, &browser, "12AB", "beheer", "fout-wachtwoord").await;
    let unknown = password_step(&app, &browser, "12AB", "niemand", "fout-wachtwoord").await;
    assert!(wrong.html.contains("kennen we niet"));
    assert!(unknown.html.contains("kennen we niet"));
    // A student is no supervisor, whatever the password.
    let student = password_step(&app, &browser, "12AB", "100002", PASSWORD).await;
    assert!(student.html.contains("kennen we niet"));

    let second = password_step(&app, &browser, "12AB", "beheer", PASSWORD).await;
    assert!(second.html.contains("authenticator"), "{}", second.html);
    // After the password alone, the console stays shut.
    assert_eq!(browser.raw_get("/school").await.status(), 303);
    let csrf = second.input("csrf").unwrap();
    let refused = browser
        .post("/console/totp", &[("csrf", &csrf), ("code", "000000")])
        .await
        .page();
    assert!(refused.html.contains("klopt niet"), "{}", refused.html);
    let code = app.totp(SUPERVISOR_TOTP);
    let home = browser
        .post("/console/totp", &[("csrf", &csrf), ("code", &code)])
        .await
        .page();
    assert_eq!(home.status, 200);
    assert!(home.html.contains("Lyceum De Vecht"), "{}", home.html);

    // The same code again (another browser, same time step): refused (RFC 6238 §5.2).
    let other = app.browser();
    let second = password_step(&app, &other, "12AB", "beheer", PASSWORD).await;
    let replay = other
        .post(
            "/console/totp",
            &[("csrf", &second.input("csrf").unwrap()), ("code", &code)],
        )
        .await
        .page();
    assert!(replay.html.contains("al gebruikt"), "{}", replay.html);
    // The next step's code works.
    app.clock.advance(Duration::seconds(30));
    let next = other
        .post(
            "/console/totp",
            &[
                ("csrf", &second.input("csrf").unwrap()),
                ("code", &app.totp(SUPERVISOR_TOTP)),
            ],
        )
        .await
        .page();
    assert!(next.html.contains("Partners en koppelingen"));

    // Without a school the unique supervisor name works too; the operator cannot enter /school.
    let (operator, platform_home) = app.operator_browser().await;
    let _ = platform_home;
    let page = operator.open("/school").await.page();
    assert_eq!(page.status, 403);
}

#[tokio::test]
async fn wrong_codes_are_throttled() {
    let app = TestApp::spawn_sqlite().await;
    let browser = app.browser();
    let second = password_step(&app, &browser, "12AB", "beheer", PASSWORD).await;
    let csrf = second.input("csrf").unwrap();
    for _ in 0..5 {
        browser
            .post("/console/totp", &[("csrf", &csrf), ("code", "123456")])
            .await;
    }
    // Even the right code is not checked now.
    let page = browser
        .post(
            "/console/totp",
            &[("csrf", &csrf), ("code", &app.totp(SUPERVISOR_TOTP))],
        )
        .await
        .page();
    assert!(
        page.html.contains("Te veel onjuiste codes"),
        "{}",
        page.html
    );
}

#[tokio::test]
async fn a_new_operator_activates_enrols_and_keeps_recovery_codes() {
    let app = TestApp::spawn_sqlite().await;
    let now = app.state.now();
    app.state
        .store
        .insert_operator(
            "ops.nieuw",
            &poortwachter::crypto::tokens::hash_token("ACTI-VATE-CODE-0001"),
            now + Duration::days(7),
            now,
        )
        .await
        .unwrap();
    let browser = app.browser();
    let form = browser.open("/console/activate").await.page();
    let wrong = browser
        .post(
            "/console/activate",
            &[
                ("csrf", &form.input("csrf").unwrap()),
                ("username", "ops.nieuw"),
                ("code", "ACTI-VATE-CODE-9999"),
                ("password", "een-lang-nieuw-wachtwoord"),
                ("password_repeat", "een-lang-nieuw-wachtwoord"),
            ],
        )
        .await
        .page();
    assert!(wrong.html.contains("horen niet bij elkaar"));
    let done = browser
        .post(
            "/console/activate",
            &[
                ("csrf", &form.input("csrf").unwrap()),
                ("username", "ops.nieuw"),
                ("code", "ACTI-VATE-CODE-0001"),
                ("password", "een-lang-nieuw-wachtwoord"),
                ("password_repeat", "een-lang-nieuw-wachtwoord"),
            ],
        )
        .await
        .page();
    assert!(done.html.contains("geactiveerd"), "{}", done.html);

    let enrol = password_step(&app, &browser, "", "ops.nieuw", "een-lang-nieuw-wachtwoord").await;
    assert!(enrol.html.contains("<svg"), "{}", enrol.html);
    assert!(!enrol.html.contains("<script"));
    let secret: String = scraper::Html::parse_document(&enrol.html)
        .select(&scraper::Selector::parse("#totp-secret").unwrap())
        .next()
        .unwrap()
        .text()
        .collect::<String>()
        .replace(' ', "");
    // A reload shows the same secret (a scanned code stays valid).
    let again = browser.open("/console/enroll").await.page();
    assert!(again.html.contains(&secret[..4]));
    let recovery = browser
        .post(
            "/console/enroll",
            &[
                ("csrf", &enrol.input("csrf").unwrap()),
                ("code", &app.totp(&secret)),
            ],
        )
        .await
        .page();
    let codes: Vec<String> = scraper::Html::parse_document(&recovery.html)
        .select(&scraper::Selector::parse("#recovery-codes code").unwrap())
        .map(|e| e.text().collect())
        .collect();
    assert_eq!(codes.len(), 10, "{}", recovery.html);
    assert_eq!(
        app.state
            .store
            .unused_recovery_codes(&format!(
                "operator:{}",
                app.state
                    .store
                    .find_operator("ops.nieuw")
                    .await
                    .unwrap()
                    .unwrap()
                    .id
            ))
            .await
            .unwrap(),
        10
    );
    // Stored as hashes only.
    let stored: Vec<(String,)> = sqlx::query_as("SELECT code_hash FROM recovery_codes")
        .fetch_all(app.state.store.pool())
        .await
        .unwrap();
    assert!(stored
        .iter()
        .all(|(h,)| !codes.iter().any(|c| h.contains(c.as_str()))));

    // A recovery code logs in once.
    for (attempt, expect_ok) in [(0, true), (1, false)] {
        let fresh = app.browser();
        let second =
            password_step(&app, &fresh, "", "ops.nieuw", "een-lang-nieuw-wachtwoord").await;
        let typed = codes[0].to_uppercase();
        let page = fresh
            .post(
                "/console/totp",
                &[("csrf", &second.input("csrf").unwrap()), ("code", &typed)],
            )
            .await
            .page();
        let logged_in = !page.html.contains("klopt niet");
        assert_eq!(logged_in, expect_ok, "attempt {attempt}: {}", page.html);
    }
}

#[tokio::test]
async fn closing_the_link_ends_the_partners_access_at_its_next_call() {
    let app = TestApp::spawn_sqlite().await;
    let tokens = app.sara_tokens("openid rooster").await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(app.introspect(access).await["active"], true);

    let (browser, home) = app.supervisor_browser().await;
    // Accredited partners only, with their state.
    assert!(home.html.contains("Studyspace (demo)"));
    assert!(home.html.contains("Huiswerkhulp (demo)"));
    assert!(!home.html.contains("Ongeaccrediteerd"), "{}", home.html);
    let csrf = home.input("csrf").unwrap();

    // Without the CSRF token nothing changes.
    let forged = browser
        .post(
            "/school/links/studyspace-demo",
            &[("open", "false"), ("reason", "vals")],
        )
        .await
        .page();
    assert_eq!(forged.status, 403);
    assert_eq!(app.introspect(access).await["active"], true);
    // A reason is required.
    let no_reason = browser
        .post(
            "/school/links/studyspace-demo",
            &[("csrf", &csrf), ("open", "false"), ("reason", " ")],
        )
        .await
        .page();
    assert_eq!(no_reason.status, 400);

    let closed = browser
        .post(
            "/school/links/studyspace-demo",
            &[
                ("csrf", &csrf),
                ("open", "false"),
                ("reason", "contract opgezegd"),
            ],
        )
        .await
        .page();
    assert!(closed.html.contains("volgende keer"), "{}", closed.html);
    assert_eq!(app.introspect(access).await["active"], false);

    // The audit log shows who did it and why, on the page and in the CSV.
    let audit = browser.open("/school/audit?q=link").await.page();
    assert!(audit.html.contains("link.close"));
    assert!(audit.html.contains("supervisor:12AB/beheer"));
    let csv = browser.raw_get("/school/audit.csv").await;
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let body = csv.text().await.unwrap();
    assert!(body.starts_with("at,actor,action,target,reason,details"));
    assert!(body.contains("contract opgezegd"));

    // Opening again restores it.
    browser
        .post(
            "/school/links/studyspace-demo",
            &[
                ("csrf", &csrf),
                ("open", "true"),
                ("reason", "nieuw contract"),
            ],
        )
        .await
        .page();
    assert_eq!(app.introspect(access).await["active"], true);
}

#[tokio::test]
async fn a_closure_withholds_grades_from_partners_until_it_is_ended() {
    let app = TestApp::spawn_sqlite().await;
    let tokens = app.sara_tokens("openid cijfers rooster").await;
    let access = tokens["access_token"].as_str().unwrap();
    let (browser, _) = app.supervisor_browser().await;
    let page = browser.open("/school/closures").await.page();
    assert!(page.html.contains("<svg"));
    let csrf = page.input("csrf").unwrap();
    // 23 Nov 2026 09:00 UTC is 10:00 in Amsterdam: from 09:00 Dutch time it is in force.
    let created = browser
        .post(
            "/school/closures",
            &[
                ("csrf", &csrf),
                ("scope", "cijfers"),
                ("audiences", "partners"),
                ("audiences", "parents"),
                ("starts_at", "2026-11-23T09:00"),
                ("ends_at", "2026-11-27T17:00"),
                ("reason", "toetsweek"),
            ],
        )
        .await
        .page();
    assert!(created.html.contains("vastgelegd"), "{}", created.html);
    assert!(created.html.contains("cijfers · partners"));
    assert!(created.html.contains("27-11-2026 17:00"));
    let answer = app.introspect(access).await;
    assert_eq!(answer["active"], true);
    assert_eq!(
        answer["withheld_scopes"],
        serde_json::json!(["cijfers"]),
        "{answer}"
    );
    assert!(answer.to_string().contains("toetsweek"));

    // Bad input: a clear page, nothing stored.
    for fields in [
        vec![
            ("scope", "cijfers"),
            ("starts_at", "2026-11-23T09:00"),
            ("ends_at", "2026-11-27T17:00"),
            ("reason", "x"),
        ],
        vec![
            ("scope", "cijfers"),
            ("audiences", "parents"),
            ("starts_at", "morgen"),
            ("ends_at", "2026-11-27T17:00"),
            ("reason", "x"),
        ],
        vec![
            ("scope", "cijfers"),
            ("audiences", "parents"),
            ("starts_at", "2026-11-27T09:00"),
            ("ends_at", "2026-11-23T17:00"),
            ("reason", "x"),
        ],
    ] {
        let mut with_csrf = vec![("csrf", csrf.as_str())];
        with_csrf.extend(fields);
        let page = browser.post("/school/closures", &with_csrf).await.page();
        assert_eq!(page.status, 400, "{}", page.html);
    }
    assert_eq!(app.state.store.closures_of("12AB").await.unwrap().len(), 1);

    let id = app.state.store.closures_of("12AB").await.unwrap()[0]
        .id
        .clone();
    let ended = browser
        .post(&format!("/school/closures/{id}/end"), &[("csrf", &csrf)])
        .await
        .page();
    assert!(ended.html.contains("beëindigd"), "{}", ended.html);
    let answer = app.introspect(access).await;
    assert!(answer.get("withheld_scopes").is_none(), "{answer}");
    // Ended once; a second time is a clear 404.
    let twice = browser
        .post(&format!("/school/closures/{id}/end"), &[("csrf", &csrf)])
        .await
        .page();
    assert_eq!(twice.status, 404);
}

#[tokio::test]
async fn students_are_found_reset_and_leave() {
    let app = TestApp::spawn_sqlite().await;
    let tokens = app.sara_tokens("openid rooster").await;
    let access = tokens["access_token"].as_str().unwrap();
    let (browser, home) = app.supervisor_browser().await;
    let csrf = home.input("csrf").unwrap();
    let found = browser.open("/school/students?q=bakker").await.page();
    assert!(found.html.contains("Sara Bakker"), "{}", found.html);
    assert!(!found.html.contains("Jan de Vries"));
    let by_number = browser.open("/school/students?q=100001").await.page();
    assert!(by_number.html.contains("Jan de Vries"));
    // LIKE wildcards are literal.
    let wildcard = browser.open("/school/students?q=%25").await.page();
    assert!(!wildcard.html.contains("Sara"));

    let jan = browser.open("/school/students/100001").await.page();
    assert!(jan.html.contains("Petra de Vries"), "{}", jan.html);
    let sara = browser.open("/school/students/100002").await.page();
    assert!(sara.html.contains("Studyspace (demo)"), "{}", sara.html);
    // Another school's student is not found from here.
    let other = browser.open("/school/students/200001").await.page();
    assert_eq!(other.status, 404);

    let code = browser
        .post("/school/students/100002/code", &[("csrf", &csrf)])
        .await
        .page();
    assert!(code.html.contains("activeringscode"), "{}", code.html);

    let left = browser
        .post(
            "/school/students/100002/leave",
            &[("csrf", &csrf), ("reason", "verhuisd")],
        )
        .await
        .page();
    assert!(left.html.contains("Uitgeschreven"), "{}", left.html);
    assert_eq!(app.introspect(access).await["active"], false);
    let audit = browser.open("/school/audit").await.page();
    assert!(audit.html.contains("student.leave"));
}

#[tokio::test]
async fn console_pages_work_on_postgres() {
    let Some(app) = TestApp::spawn_postgres().await else {
        return postgres_missing();
    };
    let (browser, home) = app.supervisor_browser().await;
    let csrf = home.input("csrf").unwrap();
    browser
        .post(
            "/school/links/huiswerkhulp-demo",
            &[("csrf", &csrf), ("open", "true"), ("reason", "proef")],
        )
        .await
        .page();
    assert!(app
        .state
        .store
        .link_is_open("12AB", "huiswerkhulp-demo")
        .await
        .unwrap());
    let found = browser.open("/school/students?q=de%20vries").await.page();
    assert!(found.html.contains("Jan de Vries"), "{}", found.html);
    let audit = browser
        .raw_get("/school/audit.csv")
        .await
        .text()
        .await
        .unwrap();
    assert!(audit.contains("proef"));
}

#[tokio::test]
async fn the_school_sees_and_lifts_a_locked_login() {
    let app = TestApp::spawn_sqlite().await;
    // Ten wrong passwords for Sara from a browser she never used.
    let attacker = app.browser();
    for _ in 0..10 {
        let page = app.login_page(&attacker, STUDYSPACE.0, "openid").await;
        attacker.login(&page, "12AB", "100002", "fout").await;
    }
    let (browser, home) = app.supervisor_browser().await;
    let csrf = home.input("csrf").unwrap();
    let page = browser.open("/school/students").await.page();
    assert!(page.html.contains("Geblokkeerde logins"), "{}", page.html);
    assert!(page.html.contains("<code>100002</code>"));
    let lifted = browser
        .post("/school/locks/100002/lift", &[("csrf", &csrf)])
        .await
        .page();
    assert!(lifted.html.contains("opgeheven"));
    assert!(!lifted.html.contains("<code>100002</code>"));
    // Sara logs in again at once, from any browser.
    let tokens = app.sara_tokens("openid").await;
    assert!(tokens["access_token"].is_string());
}
