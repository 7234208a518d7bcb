//! Throttling that holds under concurrency: attempts are counted before argon2 runs, the
//! owner's own browser is not locked out by others' failures, the console sees and lifts
//! locks, and floods of wrong client secrets or plain requests get 429 with `Retry-After`.

use std::sync::atomic::Ordering;

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Browser, Outcome, Page, TestApp, PASSWORD, STUDYSPACE};
use crate::on_every_backend;

fn verifications(app: &TestApp) -> u64 {
    app.state.argon2_verifications.load(Ordering::SeqCst)
}

/// A browser on the login page of a fresh authorization (prompt=login, so a browser that is
/// logged in already is asked again).
async fn on_login_page(app: &TestApp, browser: &Browser) -> Page {
    let authorization = app
        .authorization(STUDYSPACE.0, "openid rooster")
        .set("prompt", "login");
    let page = browser.open(&authorization.url()).await.page();
    assert!(page.html.contains("name=\"password\""), "{}", page.html);
    page
}

fn logged_in(outcome: &Outcome) -> bool {
    match outcome {
        Outcome::Left(location) => location.contains("code="),
        Outcome::Page(page) => page.html.contains("decision"),
    }
}

fn html(outcome: &Outcome) -> &str {
    match outcome {
        Outcome::Page(page) => &page.html,
        Outcome::Left(location) => location,
    }
}

async fn parallel_guessing_gets_no_more_tries_than_the_limit(app: TestApp) {
    // Lotte (19) logged in from her own browser before: it carries a device cookie.
    let owner = app.browser();
    let page = on_login_page(&app, &owner).await;
    assert!(logged_in(
        &owner.login(&page, "12AB", "100003", PASSWORD).await
    ));

    // 60 attackers guess in parallel.
    let attackers: Vec<Browser> = (0..60).map(|_| app.browser()).collect();
    let mut pages = Vec::new();
    for attacker in &attackers {
        pages.push(on_login_page(&app, attacker).await);
    }
    let before = verifications(&app);
    let outcomes = join_all(attackers.iter().zip(&pages).enumerate().map(
        |(i, (b, p))| async move { b.login(p, "12AB", "100003", &format!("guess-{i}")).await },
    ))
    .await;
    let verified = verifications(&app) - before;
    assert!(verified <= 10, "{verified} passwords were checked");
    let wrong = outcomes
        .iter()
        .filter(|o| html(o).contains("klopt niet"))
        .count();
    let blocked = outcomes
        .iter()
        .filter(|o| html(o).contains("te vaak"))
        .count();
    assert!(wrong <= 10, "{wrong}");
    assert_eq!(wrong + blocked, 60);

    // The right password from a browser Lotte never used: refused, and not even checked.
    let stranger = app.browser();
    let page = on_login_page(&app, &stranger).await;
    let before = verifications(&app);
    let outcome = stranger.login(&page, "12AB", "100003", PASSWORD).await;
    assert!(html(&outcome).contains("te vaak"), "{}", html(&outcome));
    assert_eq!(verifications(&app), before, "no argon2 past the limit");

    // Lotte's own browser still gets in.
    let page = on_login_page(&app, &owner).await;
    let outcome = owner.login(&page, "12AB", "100003", PASSWORD).await;
    assert!(logged_in(&outcome), "{}", html(&outcome));

    // The school console sees the lock and lifts it; then any browser may try again.
    let beheer = app.management_token("beheer-12ab-demo").await;
    let (status, locks) = app
        .admin("GET", "/api/admin/schools/12AB/locks", &beheer, None)
        .await;
    assert_eq!(status, 200, "{locks}");
    assert_eq!(locks["locks"][0]["username"], "100003", "{locks}");
    let other_school = app.management_token("platform-demo").await;
    let (status, _) = app
        .admin("GET", "/api/admin/schools/12AB/locks", &other_school, None)
        .await;
    assert_eq!(status, 200, "the platform may look too");
    let (status, _) = app
        .admin(
            "DELETE",
            "/api/admin/schools/12AB/locks/100003",
            &beheer,
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = app
        .admin(
            "DELETE",
            "/api/admin/schools/12AB/locks/100003",
            &beheer,
            None,
        )
        .await;
    assert_eq!(status, 404, "no lock any more");
    let (_, locks) = app
        .admin("GET", "/api/admin/schools/12AB/locks", &beheer, None)
        .await;
    assert_eq!(locks["locks"], Value::Array(vec![]));
    let page = on_login_page(&app, &stranger).await;
    assert!(logged_in(
        &stranger.login(&page, "12AB", "100003", PASSWORD).await
    ));
}

/// The same through Redis (shared counters, `INCR` in one MULTI).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_guessing_through_redis() {
    let Ok(redis) = std::env::var("TEST_REDIS_URL") else {
        eprintln!("TEST_REDIS_URL is not set: skipped");
        return;
    };
    let Some(app) = TestApp::spawn_postgres_with_redis(Some(&redis)).await else {
        eprintln!("TEST_DATABASE_URL is not set: skipped");
        return;
    };
    parallel_guessing_gets_no_more_tries_than_the_limit(app).await;
}

/// A flood of wrong client secrets: at most the limit reaches argon2, the rest get 429 with
/// `Retry-After`, and a client that authenticated rightfully keeps being served.
async fn wrong_secret_flood_gets_429s(app: TestApp) {
    let client = ("beheer-12ab-demo", "beheer-12ab-demo-secret");
    let (status, _) = app
        .token(client, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(status, 200);
    let before = verifications(&app);
    let app_ref = &app;
    let flood = join_all((0..100).map(|i| async move {
        let response = app_ref
            .backchannel()
            .post(app_ref.url("/token"))
            .basic_auth(client.0, Some(format!("wrong-{i}")))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
        (response.status(), retry_after)
    }))
    .await;
    let verified = verifications(&app) - before;
    assert!(verified <= 20, "{verified} wrong secrets were checked");
    let limited: Vec<_> = flood
        .iter()
        .filter(|(status, _)| *status == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert!(limited.len() >= 80, "{flood:?}");
    assert!(limited
        .iter()
        .all(|(_, retry)| retry.is_some_and(|s| (1..=60).contains(&s))));
    assert!(flood
        .iter()
        .all(|(s, _)| *s == StatusCode::TOO_MANY_REQUESTS || *s == StatusCode::UNAUTHORIZED));

    // The rightful client is not locked out by the flood.
    let (status, body) = app
        .token(client, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(status, 200, "{body}");

    // Wrong secrets for many client ids from one address hit the per-address limit.
    let flood = join_all((0..80).map(|i| async move {
        app_ref
            .backchannel()
            .post(app_ref.url("/introspect"))
            .basic_auth(format!("client-{i}"), Some("x"))
            .form(&[("token", "t")])
            .send()
            .await
            .unwrap()
            .status()
    }))
    .await;
    assert!(flood.contains(&StatusCode::TOO_MANY_REQUESTS), "{flood:?}");
}

/// `/token`, `/introspect`, `/revoke` and the admin API answer 429 with `Retry-After` beyond
/// the per-address rate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_are_rate_limited_per_address() {
    let app = TestApp::spawn_sqlite_with(|c| c.rate_limit_per_minute = 5).await;
    for path in ["/revoke", "/token", "/api/admin/schools/12AB/audit"] {
        let mut statuses = Vec::new();
        for _ in 0..6 {
            let response = app
                .backchannel()
                .post(app.url(path))
                .form(&[("token", "x")])
                .send()
                .await
                .unwrap();
            statuses.push((
                response.status(),
                response.headers().get("retry-after").cloned(),
            ));
        }
        let (last, retry) = statuses.last().unwrap();
        assert_eq!(*last, StatusCode::TOO_MANY_REQUESTS, "{path}: {statuses:?}");
        let secs: u64 = retry.as_ref().unwrap().to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&secs));
        assert!(statuses[..5]
            .iter()
            .all(|(s, _)| *s != StatusCode::TOO_MANY_REQUESTS));
    }
    // Introspection allows ten times as many.
    for _ in 0..6 {
        let response = app
            .backchannel()
            .post(app.url("/introspect"))
            .form(&[("token", "x")])
            .send()
            .await
            .unwrap();
        assert_ne!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    }
    // The pages are not affected.
    let response = app
        .backchannel()
        .get(app.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

on_every_backend!(
    parallel_guessing_gets_no_more_tries_than_the_limit,
    wrong_secret_flood_gets_429s,
);
