//! "Wie keek mee": what a resource server was told a partner may read (on active
//! introspection) and what the partner read at userinfo, counted per grant × scope × hour,
//! written in batches, shown on "Mijn apps", and deleted after the retention period.

use chrono::{Duration, TimeZone, Utc};
use poortwachter::domain::scope::Scope;
use poortwachter::storage::access_log::{hour_start, ReadBucket};
use serde_json::json;

use crate::helpers::{Browser, Page, TestApp, PASSWORD, STUDYSPACE};
use crate::on_every_backend;

async fn account_page(app: &TestApp, username: &str) -> (Browser, Page) {
    let browser = app.browser();
    let login = browser.open("/account").await.page();
    let page = browser
        .login(&login, "12AB", username, PASSWORD)
        .await
        .page();
    (browser, page)
}

async fn flush(app: &TestApp) {
    app.state.reads.flush(&app.state.store).await.unwrap();
}

async fn student_id(app: &TestApp, number: &str) -> String {
    app.state
        .store
        .find_account_by_login("12AB", number)
        .await
        .unwrap()
        .unwrap()
        .id
}

/// `(scope, reads)` about a student, most recent first.
async fn logged(app: &TestApp, student: &str) -> Vec<(String, i64)> {
    let mut rows: Vec<(String, i64)> = app
        .state
        .store
        .reads_about(student, 100, 0)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.scope, r.reads))
        .collect();
    rows.sort();
    rows
}

/// Given a parent's consent for Jan, when the resource server introspects the partner's
/// token and the partner reads userinfo, then after a flush the parent's page lists the
/// partner, the data in Dutch words and the Dutch time; the partner asking about its own
/// token is no read.
async fn reads_are_listed_for_the_parent_after_a_flush(app: TestApp) {
    let tokens = app
        .tokens_for(
            STUDYSPACE,
            "openid offline_access naam rooster",
            "p.devries",
            Some("100001"),
        )
        .await;
    let access = tokens["access_token"].as_str().unwrap();
    let jan = student_id(&app, "100001").await;
    for _ in 0..3 {
        assert_eq!(app.introspect(access).await["active"], true);
    }
    app.introspect_as(STUDYSPACE, access).await;
    assert_eq!(app.userinfo(access).await.status(), 200);
    flush(&app).await;
    assert_eq!(
        logged(&app, &jan).await,
        [
            ("naam".to_string(), 4),
            ("openid".to_string(), 1),
            ("rooster".to_string(), 3)
        ]
    );
    // A second flush adds to the same hour's rows.
    app.introspect(access).await;
    flush(&app).await;
    assert_eq!(
        logged(&app, &jan).await,
        [
            ("naam".to_string(), 5),
            ("openid".to_string(), 1),
            ("rooster".to_string(), 4)
        ]
    );

    let (_, page) = account_page(&app, "p.devries").await;
    assert!(page.html.contains("Wie keek mee"), "{}", page.html);
    let doc = scraper::Html::parse_document(&page.html);
    let rows: Vec<String> = doc
        .select(&scraper::Selector::parse("table.reads tbody tr").unwrap())
        .map(|tr| {
            tr.select(&scraper::Selector::parse("td").unwrap())
                .map(|td| td.text().collect::<String>())
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .collect();
    // 09:00 UTC on 23 November is 10:00 in Amsterdam (winter time).
    assert!(
        rows.contains(&"23-11-2026 10:00 | Studyspace (demo) | het rooster | 4".to_string()),
        "{rows:?}"
    );
    assert!(rows.contains(&"23-11-2026 10:00 | Studyspace (demo) | de naam | 5".to_string()));
    // Emma has no reads.
    assert!(page.html.contains("Nog geen gegevens opgehaald."));

    // Jan sees the same about himself.
    let (_, page) = account_page(&app, "100001").await;
    assert!(page.html.contains("het rooster"), "{}", page.html);
}

/// A scope withheld by the school's closure is not given to the resource server, so it is
/// not recorded as read.
async fn withheld_scopes_are_not_recorded(app: TestApp) {
    let beheer = app.management_token("beheer-12ab-demo").await;
    let tokens = app.sara_tokens("openid rooster cijfers").await;
    let access = tokens["access_token"].as_str().unwrap();
    let now = app.state.now();
    let (status, closure) = app
        .admin(
            "POST",
            "/api/admin/schools/12AB/closures",
            &beheer,
            Some(json!({
                "scope": "cijfers",
                "audiences": ["partners"],
                "starts_at": (now - Duration::hours(1)).to_rfc3339(),
                "ends_at": (now + Duration::days(7)).to_rfc3339(),
                "reason": "toetsweek",
            })),
        )
        .await;
    assert_eq!(status, 201, "{closure}");
    assert_eq!(app.introspect(access).await["scope"], "openid rooster");
    flush(&app).await;
    let sara = student_id(&app, "100002").await;
    assert_eq!(logged(&app, &sara).await, [("rooster".to_string(), 1)]);
}

/// More reads than fit: the account page links to `/account/reads`, which pages with plain
/// links, most recent first; another parent's child is not visible.
async fn reads_are_paginated_most_recent_first(app: TestApp) {
    app.tokens_for(STUDYSPACE, "openid rooster", "p.devries", Some("100001"))
        .await;
    let jan = student_id(&app, "100001").await;
    let grant = app
        .state
        .store
        .active_grant(&jan, STUDYSPACE.0, app.state.now())
        .await
        .unwrap()
        .unwrap();
    let first = hour_start(app.state.now()) - 40 * 3600;
    let buckets: Vec<ReadBucket> = (0..30)
        .map(|i| ReadBucket {
            grant_id: grant.id.clone(),
            scope: Scope::Rooster,
            hour_start: first + i * 3600,
            reads: i + 1,
            last_read_at: first + i * 3600 + 60,
        })
        .collect();
    app.state.store.add_reads(&buckets).await.unwrap();

    let (browser, page) = account_page(&app, "p.devries").await;
    let all = page
        .attr("a[href^=\"/account/reads\"]", "href")
        .expect("a link to all reads");
    let first_page = browser.open(&all).await.page();
    assert_eq!(first_page.status, 200);
    let counts = |page: &Page| -> Vec<String> {
        let doc = scraper::Html::parse_document(&page.html);
        doc.select(&scraper::Selector::parse("table.reads tbody tr td:last-child").unwrap())
            .map(|td| td.text().collect())
            .collect()
    };
    let on_first = counts(&first_page);
    assert_eq!(on_first.len(), 25);
    assert_eq!(on_first[0], "30", "most recent first");
    let older = first_page
        .attr("a[rel=next]", "href")
        .expect("a link to older reads");
    let second_page = browser.open(&older).await.page();
    assert_eq!(counts(&second_page), ["5", "4", "3", "2", "1"]);
    assert!(second_page.attr("a[rel=prev]", "href").is_some());
    assert!(second_page.attr("a[rel=next]", "href").is_none());

    // Sara is not Petra's child, and Jan's reads are not Sara's to see.
    let sara = student_id(&app, "100002").await;
    let refused = browser
        .open(&format!("/account/reads?student={sara}"))
        .await
        .page();
    assert_eq!(refused.status, 403);
    let (other, _) = account_page(&app, "100002").await;
    let refused = other
        .open(&format!("/account/reads?student={jan}"))
        .await
        .page();
    assert_eq!(refused.status, 403);
    let bad = browser.open(&format!("{all}x")).await.page();
    assert_eq!(bad.status, 400);
}

/// Reads are kept for the current and the previous school year (from 1 August, Dutch time);
/// the purge job deletes older ones, and counts them.
async fn old_reads_are_purged_after_the_retention(app: TestApp) {
    app.sara_tokens("openid rooster").await;
    let sara = student_id(&app, "100002").await;
    let grant = app
        .state
        .store
        .active_grant(&sara, STUDYSPACE.0, app.state.now())
        .await
        .unwrap()
        .unwrap();
    let at = |y, m, d, h| Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap().timestamp();
    let bucket = |hour| ReadBucket {
        grant_id: grant.id.clone(),
        scope: Scope::Rooster,
        hour_start: hour,
        reads: 1,
        last_read_at: hour,
    };
    app.state
        .store
        .add_reads(&[
            // 31 July 2025, 21:00 UTC: 23:00 Dutch time, the previous school year's eve.
            bucket(at(2025, 7, 31, 21)),
            // 31 July 2025, 22:00 UTC: 1 August 00:00 Dutch time, the first hour kept.
            bucket(at(2025, 7, 31, 22)),
            bucket(at(2026, 9, 1, 8)),
        ])
        .await
        .unwrap();
    let purged = poortwachter::purge_expired_rows(&app.state).await.unwrap();
    assert!(purged >= 1);
    assert_eq!(
        logged(&app, &sara).await.len(),
        2,
        "the eve of 1 August 2025 is gone"
    );
    assert!(app
        .metrics()
        .await
        .lines()
        .any(|l| l.starts_with("poortwachter_purged_rows_total{table=\"access_log\"}")));

    // A school year later 2025-2026 is no longer the previous year: only September 2026
    // (school year 2026-2027) is kept.
    app.clock
        .set(Utc.with_ymd_and_hms(2027, 8, 2, 9, 0, 0).unwrap());
    poortwachter::purge_expired_rows(&app.state).await.unwrap();
    assert_eq!(logged(&app, &sara).await.len(), 1);
}

/// A flush larger than one statement writes every bucket once, later flushes add to the
/// same rows, and when a statement fails (here: a bucket of a grant that does not exist
/// yet) what was not written is kept and written by the next flush, nothing counted twice.
async fn large_and_failed_flushes_lose_and_double_nothing(app: TestApp) {
    app.sara_tokens("openid rooster").await;
    let sara = student_id(&app, "100002").await;
    let grant = app
        .state
        .store
        .active_grant(&sara, STUDYSPACE.0, app.state.now())
        .await
        .unwrap()
        .unwrap();
    let now = app.state.now();
    let reads = &app.state.reads;
    // 1,300 hours × two scopes: 2,600 buckets, more than two statements' worth.
    let hours = 1_300;
    for h in 0..hours {
        reads.record(
            &grant.id,
            [Scope::Rooster, Scope::Cijfers],
            now - Duration::hours(h),
        );
    }
    assert_eq!(
        reads.flush(&app.state.store).await.unwrap(),
        2 * hours as usize
    );
    for h in 0..hours {
        reads.record(&grant.id, [Scope::Rooster], now - Duration::hours(h));
    }
    // A grant that is not there yet: its bucket's statement fails on the foreign key.
    let later = "grant-created-after-the-read";
    reads.record(later, [Scope::Naam], now);
    assert!(reads.flush(&app.state.store).await.is_err());
    sqlx::query(
        "INSERT INTO grants (id, student_id, client_id, scopes, given_by, given_by_role, \
         granted_at, expires_at, revoked_at) \
         VALUES ($1, $2, $3, 'naam', $2, 'student', 0, 0, 0)",
    )
    .bind(later)
    .bind(&sara)
    .bind(STUDYSPACE.0)
    .execute(app.state.store.pool())
    .await
    .unwrap();
    reads.flush(&app.state.store).await.unwrap();
    assert!(reads.take().is_empty(), "everything was written");

    let (rows, total): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), CAST(SUM(reads) AS BIGINT) FROM access_log WHERE grant_id = $1",
    )
    .bind(&grant.id)
    .fetch_one(app.state.store.pool())
    .await
    .unwrap();
    assert_eq!(rows, 2 * hours);
    assert_eq!(total, 3 * hours, "rooster twice and cijfers once per hour");
    let (latest,): (i64,) = sqlx::query_as(
        "SELECT reads FROM access_log WHERE grant_id = $1 AND scope = 'rooster' AND hour_start = $2",
    )
    .bind(&grant.id)
    .bind(hour_start(now))
    .fetch_one(app.state.store.pool())
    .await
    .unwrap();
    assert_eq!(latest, 2);
    let (late,): (i64,) = sqlx::query_as("SELECT reads FROM access_log WHERE grant_id = $1")
        .bind(later)
        .fetch_one(app.state.store.pool())
        .await
        .unwrap();
    assert_eq!(late, 1, "kept once, written once");
}

on_every_backend!(
    reads_are_listed_for_the_parent_after_a_flush,
    withheld_scopes_are_not_recorded,
    reads_are_paginated_most_recent_first,
    old_reads_are_purged_after_the_retention,
    large_and_failed_flushes_lose_and_double_nothing,
);
