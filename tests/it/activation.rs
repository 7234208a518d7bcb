//! Activation codes: the school's letters for people without a password, and the `/activate`
//! page that spends them. One-time, expiring, throttled, stored as hashes; a new letter ends
//! the old password and sessions; activation from a partner's request continues it.

use poortwachter::clock::Clock;
use reqwest::StatusCode;
use scraper::{Html, Selector};
use serde_json::{json, Value};
use sqlx::Row;

use crate::helpers::{captured_logs, Browser, Outcome, Page, TestApp, PASSWORD, STUDYSPACE};
use crate::on_every_backend;

const NEW_PASSWORD: &str = "paard-batterij-nietje";
const ALPHABET: &str = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Issue codes as the school (`beheer-12ab-demo`) and return the answer.
async fn issue(app: &TestApp, body: Value) -> (StatusCode, Value) {
    let token = app.management_token("beheer-12ab-demo").await;
    app.admin(
        "POST",
        "/api/admin/schools/12AB/activation-codes",
        &token,
        Some(body),
    )
    .await
}

/// The code issued to `username`, after a successful issue.
async fn code_for(app: &TestApp, username: &str) -> String {
    let (status, body) = issue(app, json!({ "usernames": [username] })).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body[0]["username"], username);
    body[0]["code"].as_str().unwrap().to_string()
}

/// The activation page as reached from the letter (no partner request).
async fn activation_page(browser: &Browser) -> Page {
    let page = browser.open("/activate").await.page();
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(page.html.contains("name=\"code\""), "{}", page.html);
    page
}

/// Fill in and submit the activation form of `page`.
async fn activate(
    browser: &Browser,
    page: &Page,
    username: &str,
    code: &str,
    password: &str,
    confirm: &str,
) -> Outcome {
    let csrf = page.input("csrf").unwrap();
    let request = page.input("request").unwrap();
    browser
        .post(
            "/activate",
            &[
                ("csrf", csrf.as_str()),
                ("request", request.as_str()),
                ("school", "12AB"),
                ("username", username),
                ("code", code),
                ("password", password),
                ("password_confirm", confirm),
            ],
        )
        .await
}

/// The error texts on a page, in order.
fn alerts(page: &Page) -> Vec<String> {
    let doc = Html::parse_document(&page.html);
    let selector = Selector::parse("[role=alert]").unwrap();
    doc.select(&selector)
        .map(|e| e.text().collect::<String>().trim().to_string())
        .collect()
}

/// The error text right after the form field `id`.
fn field_error(page: &Page, id: &str) -> Option<String> {
    let doc = Html::parse_document(&page.html);
    let selector = Selector::parse(&format!("#{id}-error")).unwrap();
    doc.select(&selector)
        .next()
        .map(|e| e.text().collect::<String>().trim().to_string())
}

/// Log in on the "Mijn apps" login page; true when it worked.
async fn logs_in(app: &TestApp, username: &str, password: &str) -> bool {
    let browser = app.browser();
    let page = browser.open("/login").await.page();
    match browser.login(&page, "12AB", username, password).await {
        Outcome::Page(page) if page.html.contains("Mijn apps") => true,
        Outcome::Page(page) => {
            assert!(
                page.html
                    .contains("De combinatie van school, gebruikersnaam en wachtwoord klopt niet."),
                "{}",
                page.html
            );
            false
        }
        Outcome::Left(location) => panic!("left for {location}"),
    }
}

fn looks_like_a_code(code: &str) {
    let groups: Vec<&str> = code.split('-').collect();
    assert_eq!(groups.len(), 4, "{code}");
    for group in groups {
        assert_eq!(group.len(), 4, "{code}");
        assert!(group.chars().all(|c| ALPHABET.contains(c)), "{code}");
    }
}

/// Given the school, when it asks for letters by username or for all its parents or
/// students, then each person gets a well-formed code valid for 30 days, shown once (no-store)
/// and stored only as a hash, with the issue audited without the codes.
async fn codes_are_issued_by_username_and_by_role(app: TestApp) {
    let token = app.management_token("beheer-12ab-demo").await;
    let response = app
        .backchannel()
        .post(app.url("/api/admin/schools/12AB/activation-codes"))
        .bearer_auth(&token)
        .json(&json!({ "usernames": ["100002", "p.devries", "100002"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    let issued = body.as_array().unwrap();
    assert_eq!(
        issued.len(),
        2,
        "a repeated username gets one letter: {body}"
    );
    let expires = app.clock.now() + chrono::Duration::days(30);
    let mut codes = Vec::new();
    for entry in issued {
        let code = entry["code"].as_str().unwrap();
        looks_like_a_code(code);
        let at =
            chrono::DateTime::parse_from_rfc3339(entry["expires_at"].as_str().unwrap()).unwrap();
        assert_eq!(at, expires);
        codes.push(code.to_string());
    }
    assert_ne!(codes[0], codes[1]);

    let (status, parents) = issue(&app, json!({ "role": "parent" })).await;
    assert_eq!(status, StatusCode::CREATED);
    let names: Vec<&str> = parents
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["p.devries"]);
    codes.push(parents[0]["code"].as_str().unwrap().to_string());
    // Lotte (100003) has left the school: she gets no letter with "all students".
    let (status, _) = app
        .admin(
            "POST",
            "/api/admin/schools/12AB/students/100003/leave",
            &token,
            Some(json!({ "reason": "diploma" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, students) = issue(&app, json!({ "role": "student" })).await;
    assert_eq!(status, StatusCode::CREATED);
    let names: Vec<&str> = students
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["username"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["100001", "100002", "100004"],
        "only this school's current students; the supervisor gets none"
    );
    for entry in students.as_array().unwrap() {
        codes.push(entry["code"].as_str().unwrap().to_string());
    }

    // One row per person, holding a hash that is neither the code nor contains it.
    let rows = sqlx::query("SELECT code_hash FROM activation_codes")
        .fetch_all(app.state.store.pool())
        .await
        .unwrap();
    assert_eq!(rows.len(), 4);
    let hashes: Vec<String> = rows.iter().map(|r| r.get::<String, _>(0)).collect();
    for code in &codes {
        let plain = code.replace('-', "");
        for hash in &hashes {
            assert!(!hash.contains(&plain) && !hash.contains(code.as_str()));
            assert!(!hash.to_uppercase().contains(&plain));
        }
    }
    // Everybody who got a letter has no password now: the demo password no longer works.
    assert!(!logs_in(&app, "100002", PASSWORD).await);

    // Audited: who got letters, not the codes; and no code reaches the log.
    let (_, audit) = app
        .admin("GET", "/api/admin/schools/12AB/audit", &token, None)
        .await;
    let text = audit.to_string();
    assert!(text.contains("activation.issue"), "{text}");
    assert!(text.contains("p.devries"), "{text}");
    let logs = captured_logs();
    for code in &codes {
        assert!(!text.contains(code.as_str()));
        assert!(!logs.contains(code.as_str()), "a code reached the log");
    }
}

/// Given a person with a letter, when the school asks for codes including usernames it does
/// not have, then the answer is 404 naming all of them, nothing is issued, and the earlier
/// letter still works. Bad requests are 400 naming the field; another school's is 403.
async fn unknown_usernames_are_named_and_nothing_is_issued(app: TestApp) {
    let earlier = code_for(&app, "100002").await;
    let (status, body) = issue(
        &app,
        json!({ "usernames": ["100002", "nobody", "100001", "ghost"] }),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("nobody") && message.contains("ghost"),
        "{message}"
    );
    assert!(!message.contains("100001"), "{message}");
    // Nothing issued: 100001 keeps the demo password, 100002's earlier letter works.
    assert!(logs_in(&app, "100001", PASSWORD).await);
    let browser = app.browser();
    let page = activation_page(&browser).await;
    let account = activate(
        &browser,
        &page,
        "100002",
        &earlier,
        NEW_PASSWORD,
        NEW_PASSWORD,
    )
    .await
    .page();
    assert!(account.html.contains("Mijn apps"), "{}", account.html);

    for (body, field) in [
        (json!({}), "usernames"),
        (json!({ "usernames": ["100001"], "role": "parent" }), "role"),
        (json!({ "role": "supervisor" }), "role"),
        (json!({ "role": "teacher" }), "role"),
        (json!({ "usernames": ["beheer"] }), "supervisors"),
        (json!({ "usernames": [] }), "usernames"),
        (json!({ "usernames": "100001" }), "usernames"),
        (json!({ "usernames": ["100001"], "expires": 3 }), "expires"),
    ] {
        let (status, answer) = issue(&app, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {answer}");
        assert_eq!(answer["error"], "invalid_request");
        assert!(
            answer["message"].as_str().unwrap().contains(field),
            "{body} → {answer}"
        );
    }
    assert!(
        logs_in(&app, "100001", PASSWORD).await,
        "still nothing issued"
    );

    let token = app.management_token("beheer-12ab-demo").await;
    let (status, _) = app
        .admin(
            "POST",
            "/api/admin/schools/34CD/activation-codes",
            &token,
            Some(json!({ "usernames": ["200001"] })),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .admin(
            "POST",
            "/api/admin/schools/12AB/activation-codes",
            "not-a-token",
            Some(json!({ "usernames": ["100001"] })),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// Given a letter, when someone types wrong codes, then every answer is the same generic one
/// (also for a username that does not exist), and after ten the right code is refused too,
/// until the window is over.
async fn wrong_codes_are_generic_and_throttled(app: TestApp) {
    let code = code_for(&app, "100002").await;
    let browser = app.browser();
    let page = activation_page(&browser).await;
    let generic = "De combinatie van school, gebruikersnaam en activeringscode klopt niet.";
    for username in ["100002", "999999"] {
        for attempt in 0..10 {
            let wrong = format!("AAAA-BBBB-CCCC-{attempt:04}");
            let answer = activate(
                &browser,
                &page,
                username,
                &wrong,
                NEW_PASSWORD,
                NEW_PASSWORD,
            )
            .await
            .page();
            assert_eq!(alerts(&answer), [generic], "{username} {attempt}");
        }
        // Blocked now, with the same message for an account that exists and one that does not.
        let answer = activate(&browser, &page, username, &code, NEW_PASSWORD, NEW_PASSWORD)
            .await
            .page();
        assert_eq!(
            alerts(&answer),
            ["Er is te vaak een verkeerde code geprobeerd. Probeer het over een kwartier opnieuw, of vraag de school om hulp."],
            "{username}"
        );
    }
    assert!(
        !logs_in(&app, "100002", NEW_PASSWORD).await,
        "not activated"
    );
    // Logins are counted apart: the person's password login is not blocked by this.
    let login = browser.open("/login").await.page();
    let answer = browser
        .login(&login, "12AB", "100002", "wrong")
        .await
        .page();
    assert!(answer.html.contains("klopt niet"), "{}", answer.html);

    app.clock.advance(chrono::Duration::minutes(16));
    let answer = activate(
        &browser,
        &page,
        "100002",
        &code.to_lowercase().replace('-', " "),
        NEW_PASSWORD,
        NEW_PASSWORD,
    )
    .await
    .page();
    assert!(
        answer.html.contains("Mijn apps"),
        "after the window, the code typed in lowercase with spaces works: {}",
        answer.html
    );
}

/// Given two letters, when one is used within 30 days and the other after, then the first
/// works and the second is refused as expired (and the account stays without a password).
async fn expired_codes_are_refused(app: TestApp) {
    let (status, body) = issue(&app, json!({ "usernames": ["100001", "100002"] })).await;
    assert_eq!(status, StatusCode::CREATED);
    let code_1 = body[0]["code"].as_str().unwrap().to_string();
    let code_2 = body[1]["code"].as_str().unwrap().to_string();

    app.clock.advance(chrono::Duration::days(29));
    let browser = app.browser();
    let page = activation_page(&browser).await;
    let answer = activate(
        &browser,
        &page,
        "100001",
        &code_1,
        NEW_PASSWORD,
        NEW_PASSWORD,
    )
    .await
    .page();
    assert!(answer.html.contains("Mijn apps"), "{}", answer.html);

    app.clock.advance(chrono::Duration::days(1));
    let browser = app.browser();
    let page = activation_page(&browser).await;
    let answer = activate(
        &browser,
        &page,
        "100002",
        &code_2,
        NEW_PASSWORD,
        NEW_PASSWORD,
    )
    .await
    .page();
    assert_eq!(
        alerts(&answer),
        ["Deze activeringscode is verlopen. Vraag de school om een nieuwe brief."]
    );
    assert!(!logs_in(&app, "100002", NEW_PASSWORD).await);
    assert!(logs_in(&app, "100001", NEW_PASSWORD).await);
}

/// Given a letter that was used, when it is used again, then it is refused, and the password
/// chosen the first time stays.
async fn a_code_works_once(app: TestApp) {
    let code = code_for(&app, "p.devries").await;
    let browser = app.browser();
    let page = activation_page(&browser).await;
    let answer = activate(
        &browser,
        &page,
        "p.devries",
        &code,
        NEW_PASSWORD,
        NEW_PASSWORD,
    )
    .await
    .page();
    assert!(answer.html.contains("Mijn apps"), "{}", answer.html);

    let other = app.browser();
    let page = activation_page(&other).await;
    let again = "een-ander-wachtwoord-42";
    let answer = activate(&other, &page, "p.devries", &code, again, again)
        .await
        .page();
    assert_eq!(
        alerts(&answer),
        ["Deze activeringscode is al gebruikt. Log in met je wachtwoord, of vraag de school om een nieuwe code."]
    );
    assert!(logs_in(&app, "p.devries", NEW_PASSWORD).await);
    assert!(!logs_in(&app, "p.devries", again).await);
    assert!(!logs_in(&app, "p.devries", PASSWORD).await);

    // The activation is audited, as the person, without the code.
    let token = app.management_token("beheer-12ab-demo").await;
    let (_, audit) = app
        .admin("GET", "/api/admin/schools/12AB/audit", &token, None)
        .await;
    let text = audit.to_string();
    assert!(text.contains("account.activate"), "{text}");
    assert!(!text.contains(&code));
}

/// Given a letter, when the new password is too short, common or not repeated the same, then
/// the page says so at the field, and the code is not spent.
async fn weak_passwords_are_refused_at_the_field(app: TestApp) {
    let code = code_for(&app, "100003").await;
    let browser = app.browser();
    let page = activation_page(&browser).await;
    for (password, confirm, field, text) in [
        (
            "kort",
            "kort",
            "password",
            "Het wachtwoord moet minstens 10 tekens hebben.",
        ),
        (
            "Qwertyuiop",
            "Qwertyuiop",
            "password",
            "Dit wachtwoord wordt veel gebruikt en is makkelijk te raden. Kies een ander wachtwoord.",
        ),
        (
            "wachtwoord123",
            "wachtwoord123",
            "password",
            "Dit wachtwoord wordt veel gebruikt en is makkelijk te raden. Kies een ander wachtwoord.",
        ),
        (
            NEW_PASSWORD,
            "paard-batterij-nietj",
            "password_confirm",
            "De twee wachtwoorden zijn niet gelijk.",
        ),
    ] {
        let answer = activate(&browser, &page, "100003", &code, password, confirm)
            .await
            .page();
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(
            field_error(&answer, field).as_deref(),
            Some(text),
            "{password}"
        );
        // The form keeps what was typed, except secrets.
        assert_eq!(answer.input("username").as_deref(), Some("100003"));
        assert!(!answer.html.contains(&code));
    }
    let answer = activate(&browser, &page, "100003", &code, NEW_PASSWORD, NEW_PASSWORD)
        .await
        .page();
    assert!(answer.html.contains("Mijn apps"), "{}", answer.html);
}

/// Given a student logged in with a partner connected, when the school issues a new letter
/// (the password reset), then the old password and the earlier letter stop working, the
/// browser is logged out, and the partner's consent and tokens stay.
async fn a_new_code_ends_the_old_password_and_sessions(app: TestApp) {
    let tokens = app.sara_tokens("openid offline_access rooster").await;
    let browser = app.browser();
    let page = browser.open("/login").await.page();
    let account = browser
        .login(&page, "12AB", "100002", PASSWORD)
        .await
        .page();
    assert!(account.html.contains("Mijn apps"));

    let first = code_for(&app, "100002").await;
    let second = code_for(&app, "100002").await;

    let after = browser.open("/account").await.page();
    assert!(!after.html.contains("Mijn apps"), "logged out everywhere");
    assert!(after.html.contains("name=\"password\""), "{}", after.html);
    assert!(!logs_in(&app, "100002", PASSWORD).await);

    let page = activation_page(&browser).await;
    let answer = activate(
        &browser,
        &page,
        "100002",
        &first,
        NEW_PASSWORD,
        NEW_PASSWORD,
    )
    .await
    .page();
    assert_eq!(
        alerts(&answer),
        ["De combinatie van school, gebruikersnaam en activeringscode klopt niet."],
        "the earlier letter no longer works"
    );
    let answer = activate(
        &browser,
        &page,
        "100002",
        &second,
        NEW_PASSWORD,
        NEW_PASSWORD,
    )
    .await
    .page();
    assert!(answer.html.contains("Mijn apps"), "{}", answer.html);

    // Consent is not a login: the partner keeps its grant and tokens.
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(app.introspect(access).await["active"], true);
    let (status, body) = app
        .refresh(STUDYSPACE, tokens["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(status, 200, "{body}");
}

/// Given a partner's authorization request and a student without a password, when she follows
/// the link on the login page and activates, then she is logged in and goes on to consent,
/// and the partner gets a code it can exchange.
async fn activation_continues_a_partners_request(app: TestApp) {
    let code = code_for(&app, "100002").await;
    let browser = app.browser();
    let authorization = app.authorization(STUDYSPACE.0, "openid naam rooster");
    let login = browser.open(&authorization.url()).await.page();
    let request = login.input("request").unwrap();
    let link = login.link("activate").unwrap();
    assert!(link.contains(&format!("request={request}")), "{link}");

    assert!(link.ends_with("lang=nl"), "{link}");
    let english = browser
        .open(&link.replace("lang=nl", "lang=en"))
        .await
        .page();
    assert!(
        english.html.contains("Activate your account"),
        "{}",
        english.html
    );
    let page = browser.open(&link).await.page();
    assert!(page.html.contains("Account activeren"), "{}", page.html);
    assert!(page.html.contains("Studyspace (demo)"));
    assert_eq!(page.input("request").as_deref(), Some(request.as_str()));

    let consent = activate(&browser, &page, "100002", &code, NEW_PASSWORD, NEW_PASSWORD)
        .await
        .page();
    assert!(consent.html.contains("decision"), "{}", consent.html);
    let callback = browser.consent(&consent, "approve", None).await.callback();
    assert_eq!(callback.get("state"), authorization.param("state"));
    let (status, body) = app
        .exchange(STUDYSPACE, callback.code(), &authorization.verifier)
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["id_token"].is_string());
}

/// The page carries a CSRF token; a form without it, or with a forged one, is refused and
/// spends nothing.
async fn the_page_refuses_forms_without_its_csrf_token(app: TestApp) {
    let code = code_for(&app, "100004").await;
    let browser = app.browser();
    let page = activation_page(&browser).await;
    assert!(!page.input("csrf").unwrap().is_empty());
    for csrf in [None, Some("forged")] {
        let mut fields = vec![
            ("request", ""),
            ("school", "12AB"),
            ("username", "100004"),
            ("code", code.as_str()),
            ("password", NEW_PASSWORD),
            ("password_confirm", NEW_PASSWORD),
        ];
        if let Some(csrf) = csrf {
            fields.push(("csrf", csrf));
        }
        let answer = browser.post("/activate", &fields).await.page();
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{csrf:?}");
        assert!(answer.html.contains("Formulier niet geaccepteerd"));
    }
    // A browser without a session cannot post either.
    let stranger = app.browser();
    let answer = stranger
        .post(
            "/activate",
            &[
                ("csrf", page.input("csrf").unwrap().as_str()),
                ("code", &code),
            ],
        )
        .await
        .page();
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    let answer = activate(&browser, &page, "100004", &code, NEW_PASSWORD, NEW_PASSWORD)
        .await
        .page();
    assert!(answer.html.contains("Mijn apps"), "the code was not spent");
}

/// An account without a password (imported, not activated) cannot log in, not even with an
/// empty password, and neither can one whose login the SIS disabled; both get the answer a
/// wrong password gets.
async fn accounts_without_a_password_cannot_log_in(app: TestApp) {
    sqlx::query("UPDATE accounts SET password_hash = '' WHERE username = $1")
        .bind("100001")
        .execute(app.state.store.pool())
        .await
        .unwrap();
    sqlx::query("UPDATE accounts SET login_enabled = 0 WHERE username = $1")
        .bind("100003")
        .execute(app.state.store.pool())
        .await
        .unwrap();
    assert!(!logs_in(&app, "100001", "").await);
    assert!(!logs_in(&app, "100001", PASSWORD).await);
    assert!(!logs_in(&app, "100003", PASSWORD).await);
    assert!(logs_in(&app, "100002", PASSWORD).await);
    // And a disabled account gets no letter.
    let (status, body) = issue(&app, json!({ "usernames": ["100003"] })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

/// The console: `poortwachter activation-codes` writes the letters' data as CSV (with the
/// name the letter is addressed to) or JSON, to a file only its owner can read; a refusal
/// writes nothing and exits non-zero.
async fn the_cli_writes_letters_as_csv_or_json(app: TestApp) {
    use poortwachter::domain::account::Role;
    use poortwachter::onboarding::activation::run_cli;
    use std::process::ExitCode;

    let dir = tempfile::tempdir().unwrap();
    let csv_path = dir.path().join("brieven.csv");
    let exit = run_cli(
        &app.state,
        "12AB",
        Some(Role::Parent),
        Vec::new(),
        Some(csv_path.clone()),
        false,
    )
    .await
    .unwrap();
    assert_eq!(exit, ExitCode::SUCCESS);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&csv_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the codes are secrets");
    }
    let mut reader = csv::Reader::from_path(&csv_path).unwrap();
    assert_eq!(
        reader.headers().unwrap(),
        vec![
            "school",
            "username",
            "given_name",
            "family_name",
            "code",
            "expires_at"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(&rows[0][0], "12AB");
    assert_eq!(&rows[0][1], "p.devries");
    assert_eq!(&rows[0][2], "Petra");
    assert_eq!(&rows[0][3], "de Vries");
    looks_like_a_code(&rows[0][4]);
    let expires = chrono::DateTime::parse_from_rfc3339(&rows[0][5]).unwrap();
    assert_eq!(expires, app.clock.now() + chrono::Duration::days(30));
    let code = rows[0][4].to_string();

    let json_path = dir.path().join("brieven.json");
    let exit = run_cli(
        &app.state,
        "12AB",
        None,
        vec!["100001".into(), "100004".into()],
        Some(json_path.clone()),
        true,
    )
    .await
    .unwrap();
    assert_eq!(exit, ExitCode::SUCCESS);
    let letters: Value = serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap();
    assert_eq!(letters.as_array().unwrap().len(), 2);
    assert_eq!(letters[1]["username"], "100004");
    looks_like_a_code(letters[1]["code"].as_str().unwrap());

    // The code from the file is the one that works.
    let browser = app.browser();
    let page = activation_page(&browser).await;
    let answer = activate(
        &browser,
        &page,
        "p.devries",
        &code,
        NEW_PASSWORD,
        NEW_PASSWORD,
    )
    .await
    .page();
    assert!(answer.html.contains("Mijn apps"), "{}", answer.html);

    // Refusals: nothing issued, no file left behind, an exit code that says so.
    let refused = dir.path().join("niets.csv");
    for (role, usernames) in [
        (None, vec!["100002".to_string(), "nobody".to_string()]),
        (None, Vec::new()),
        (Some(Role::Student), vec!["100002".to_string()]),
        (Some(Role::Supervisor), Vec::new()),
    ] {
        let exit = run_cli(
            &app.state,
            "12AB",
            role,
            usernames,
            Some(refused.clone()),
            false,
        )
        .await
        .unwrap();
        assert_ne!(exit, ExitCode::SUCCESS);
        assert!(!refused.exists());
    }
    assert!(
        logs_in(&app, "100002", PASSWORD).await,
        "nothing was issued"
    );
    // A refusal leaves an earlier file as it was.
    let before = std::fs::read(&csv_path).unwrap();
    let exit = run_cli(
        &app.state,
        "12AB",
        None,
        vec!["nobody".into()],
        Some(csv_path.clone()),
        false,
    )
    .await
    .unwrap();
    assert_ne!(exit, ExitCode::SUCCESS);
    assert_eq!(std::fs::read(&csv_path).unwrap(), before);
}

on_every_backend!(
    the_cli_writes_letters_as_csv_or_json,
    codes_are_issued_by_username_and_by_role,
    unknown_usernames_are_named_and_nothing_is_issued,
    wrong_codes_are_generic_and_throttled,
    expired_codes_are_refused,
    a_code_works_once,
    weak_passwords_are_refused_at_the_field,
    a_new_code_ends_the_old_password_and_sessions,
    activation_continues_a_partners_request,
    the_page_refuses_forms_without_its_csrf_token,
    accounts_without_a_password_cannot_log_in,
);
