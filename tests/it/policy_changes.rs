//! The policy change log (issue 10 §1): a change made through one instance evicts exactly the
//! cache entries it touched on another, within a second, with and without Redis; what cannot
//! be trusted (a gap in the log) empties the cache; a change committed late is not missed;
//! an instance that stops reading the log stops answering from its cache after 800 ms; and
//! a consent given again unchanged writes, logs and evicts nothing.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use poortwachter::domain::scope::ScopeSet;
use poortwachter::storage::grants::{Consent, Recorded};

use crate::helpers::{
    instances_with_redis, reflected_within_a_second, set_link, TestApp, PASSWORD, STUDYSPACE,
};
use crate::on_every_backend;

fn misses(app: &TestApp) -> u64 {
    app.state.cache.misses.load(Ordering::SeqCst)
}

fn flushes(app: &TestApp) -> u64 {
    app.state.cache.flushes.load(Ordering::SeqCst)
}

/// Sara's (16, her own consent) and Jan's (a parent's consent) access tokens.
async fn two_tokens(app: &TestApp) -> (String, String) {
    let sara = app.sara_tokens("openid rooster").await;
    let jan = app
        .tokens_for(STUDYSPACE, "openid rooster", "p.devries", Some("100001"))
        .await;
    (
        sara["access_token"].as_str().unwrap().to_string(),
        jan["access_token"].as_str().unwrap().to_string(),
    )
}

/// Read the change log by hand, so what was logged so far has been acted on (the background
/// reader may not have come round to it yet).
async fn caught_up(app: &TestApp) {
    app.state
        .cache
        .poll_changes(&app.state.store)
        .await
        .unwrap();
}

/// Wait until `app` has stopped evicting what the test's set-up changed (Redis messages arrive
/// asynchronously), then read the log by hand.
async fn settled(app: &TestApp) {
    loop {
        let evictions = app.state.cache.evictions();
        tokio::time::sleep(Duration::from_millis(250)).await;
        if app.state.cache.evictions() == evictions {
            break;
        }
    }
    caught_up(app).await;
}

/// Introspect until the answer comes from the cache alone (no miss).
async fn warm(app: &TestApp, token: &str) {
    caught_up(app).await;
    for _ in 0..3 {
        assert_eq!(app.introspect(token).await["active"], true);
    }
    let before = misses(app);
    assert_eq!(app.introspect(token).await["active"], true);
    assert_eq!(misses(app), before, "the answer comes from the cache");
}

/// Studyspace revokes `token` (RFC 7009) through `app`.
async fn revoke_as_partner(app: &TestApp, token: &str) {
    let status = app
        .backchannel()
        .post(app.url("/revoke"))
        .basic_auth(STUDYSPACE.0, Some(STUDYSPACE.1))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
}

/// The partner revokes Sara's access token through A; B stops accepting it within a second,
/// without a flush, and still answers Jan's token from its cache alone.
async fn only_what_changed_is_evicted(a: TestApp, b: TestApp) {
    let (sara, jan) = two_tokens(&a).await;
    settled(&b).await;
    warm(&b, &sara).await;
    warm(&b, &jan).await;
    let flushes_before = flushes(&b);
    let evictions_before = b.state.cache.evictions();

    revoke_as_partner(&a, &sara).await;
    reflected_within_a_second(&b, &sara, false).await;

    let before = misses(&b);
    assert_eq!(b.introspect(&jan).await["active"], true);
    assert_eq!(misses(&b), before, "Jan's entries were not touched");
    assert_eq!(flushes(&b), flushes_before, "nothing was flushed");
    assert!(b.state.cache.evictions() > evictions_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_evicts_only_what_it_touched_sqlite() {
    let a = TestApp::spawn_sqlite().await;
    let b = TestApp::spawn_instance(&a.database_url(), None).await;
    only_what_changed_is_evicted(a, b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_evicts_only_what_it_touched_postgres() {
    let Some(a) = TestApp::spawn_postgres_with_redis(None).await else {
        crate::helpers::postgres_missing();
        return;
    };
    let b = TestApp::spawn_instance(&a.database_url(), None).await;
    only_what_changed_is_evicted(a, b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_evicts_only_what_it_touched_postgres_with_redis() {
    let Some((a, b)) = instances_with_redis().await else {
        return;
    };
    only_what_changed_is_evicted(a, b).await;
}

/// The Redis fast path on its own: B does not read the log by itself (only by hand, to keep
/// its cache usable), so only the message from A can evict Sara's token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_carries_the_keys_to_evict() {
    let Some((a, b)) = instances_with_redis().await else {
        return;
    };
    b.state.cache.stop_following();
    only_what_changed_is_evicted_with_redis(a, b).await;
}

async fn only_what_changed_is_evicted_with_redis(a: TestApp, b: TestApp) {
    let (sara, jan) = two_tokens(&a).await;
    let read_the_log = || async { b.state.cache.poll_changes(&b.state.store).await.unwrap() };
    settled(&b).await;
    warm(&b, &sara).await;
    warm(&b, &jan).await;
    let flushes_before = flushes(&b);
    read_the_log().await;
    revoke_as_partner(&a, &sara).await;
    // Within the freshness window B answers from its cache: only the message can have
    // evicted Sara's token.
    let started = Instant::now();
    loop {
        assert!(
            b.state.cache.is_fresh(),
            "the Redis message did not arrive within the freshness window"
        );
        if b.introspect(&sara).await["active"] == false {
            break;
        }
        assert!(started.elapsed() < Duration::from_millis(700));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The log names Sara's token too; reading it evicts nothing else.
    read_the_log().await;
    let before = misses(&b);
    assert_eq!(b.introspect(&jan).await["active"], true);
    assert_eq!(misses(&b), before, "Jan's entries were not touched");
    assert_eq!(flushes(&b), flushes_before, "nothing was flushed");
}

/// SQLite commits log rows in order without gaps; a gap means rows were lost (deleted by hand,
/// or purged while nobody read them), and the instance empties its cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_in_the_change_log_empties_the_cache() {
    let app = TestApp::spawn_sqlite().await;
    let (_, jan) = two_tokens(&app).await;
    warm(&app, &jan).await;
    let flushes_before = flushes(&app);
    let latest = app.state.store.latest_policy_change().await.unwrap();
    sqlx::query("INSERT INTO policy_changes (seq, kind, key) VALUES ($1, 'grant', 'lost')")
        .bind(latest + 5)
        .execute(app.state.store.pool())
        .await
        .unwrap();
    let started = Instant::now();
    while flushes(&app) == flushes_before {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "the gap did not empty the cache within a second"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = misses(&app);
    assert_eq!(app.introspect(&jan).await["active"], true);
    assert!(misses(&app) > before, "Jan's facts are loaded again");
}

/// PostgreSQL: a transaction that logged its change first (lower `seq`) but commits after a
/// later one is still seen; a follower that trusted `seq` alone would have read past it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_committed_late_is_not_missed() {
    let Some(a) = TestApp::spawn_postgres_with_redis(None).await else {
        crate::helpers::postgres_missing();
        return;
    };
    let b = TestApp::spawn_instance(&a.database_url(), None).await;
    let (sara, _) = two_tokens(&a).await;
    warm(&b, &sara).await;
    let other = poortwachter::storage::Store::connect(&a.database_url(), 2)
        .await
        .unwrap();
    let mut slow = other.pool().begin().await.unwrap();
    sqlx::query(
        "UPDATE school_links SET is_open = 0 \
         WHERE school_brin = '12AB' AND client_id = 'studyspace-demo'",
    )
    .execute(&mut *slow)
    .await
    .unwrap();
    // A later, quick change commits first, and B reads past it.
    sqlx::query(
        "UPDATE clients SET display_name = display_name || '.' WHERE client_id = 'huiswerkhulp-demo'",
    )
    .execute(other.pool())
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        b.introspect(&sara).await["active"],
        true,
        "not committed yet"
    );
    slow.commit().await.unwrap();
    reflected_within_a_second(&b, &sara, false).await;
}

/// The 800 ms rule: an instance that no longer reads the change log stops answering from its
/// cache, and answers from the database instead (here: a change it was never told about).
async fn without_reading_the_log_the_cache_is_not_used(app: TestApp) {
    let other = TestApp::spawn_instance(&app.database_url(), None).await;
    let (sara, _) = two_tokens(&app).await;
    warm(&other, &sara).await;
    other.state.cache.stop_following();
    let beheer = app.management_token("beheer-12ab-demo").await;
    set_link(&app, &beheer, false).await;
    tokio::time::sleep(Duration::from_millis(850)).await;
    assert!(!other.state.cache.is_fresh());
    let before = misses(&other);
    assert_eq!(other.introspect(&sara).await["active"], false);
    assert!(misses(&other) > before, "answered from the database");
}

/// A consent given again, unchanged, writes nothing: no row, nothing in the change log, no
/// eviction and no flush anywhere. Both directly and through the consent page
/// (`prompt=consent`).
async fn an_unchanged_consent_changes_nothing(app: TestApp) {
    app.sara_tokens("openid rooster").await;
    let sara = app
        .state
        .store
        .find_account_by_login("12AB", "100002")
        .await
        .unwrap()
        .unwrap();
    let now = app.state.now();
    let grant = app
        .state
        .store
        .active_grant(&sara.id, STUDYSPACE.0, now)
        .await
        .unwrap()
        .unwrap();
    caught_up(&app).await;
    let latest = app.state.store.latest_policy_change().await.unwrap();
    let (flushes_before, evictions_before) = (flushes(&app), app.state.cache.evictions());

    let scopes = ScopeSet::parse_lossy("openid rooster");
    let recorded = app
        .state
        .store
        .record_consent(
            Consent {
                student_id: &sara.id,
                client_id: STUDYSPACE.0,
                scopes: &scopes,
                given_by: &sara.id,
                given_by_role: "student",
                expires_at: now + chrono::Duration::days(app.state.config.grant_ttl_days),
            },
            now,
        )
        .await
        .unwrap();
    let Recorded::Grant(again, changed) = recorded else {
        panic!("Sara's own grant");
    };
    assert!(!changed);
    assert_eq!(again.granted_at, grant.granted_at, "not rewritten");

    // The same through the consent page, as a partner asking again with prompt=consent.
    let browser = app.browser();
    let forced = app
        .authorization(STUDYSPACE.0, "openid rooster")
        .set("prompt", "consent");
    let login = browser.open(&forced.url()).await.page();
    let consent = browser
        .login(&login, "12AB", "100002", PASSWORD)
        .await
        .page();
    browser.consent(&consent, "approve", None).await.callback();
    app.state.cache.changed(&app.state.store).await;

    let logged: Vec<(String, String)> =
        sqlx::query_as("SELECT kind, key FROM policy_changes WHERE seq > $1 ORDER BY seq")
            .bind(latest)
            .fetch_all(app.state.store.pool())
            .await
            .unwrap();
    assert_eq!(logged, vec![], "nothing in the change log");
    assert_eq!(flushes(&app), flushes_before);
    assert_eq!(app.state.cache.evictions(), evictions_before);
    let now_grant = app.state.store.get_grant(&grant.id).await.unwrap().unwrap();
    assert_eq!(now_grant.granted_at, grant.granted_at);
    assert_eq!(now_grant.expires_at, grant.expires_at);
}

/// Filling the cache at start (`cache::warm`): a fresh instance then answers every live
/// token from memory alone, fills nothing for a revoked token, and still sees a change made
/// after the fill within a second.
async fn a_filled_cache_answers_from_memory(app: TestApp) {
    let (sara, jan) = two_tokens(&app).await;
    let gone = app.sara_tokens("openid huiswerk").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    revoke_as_partner(&app, &gone).await;

    let b = TestApp::spawn_instance(&app.database_url(), None).await;
    caught_up(&b).await;
    let warmed =
        poortwachter::cache::warm::warm(&b.state.cache, &b.state.store, b.state.now(), 1000)
            .await
            .unwrap();
    assert_eq!(
        warmed.tokens, 2,
        "Sara's and Jan's live tokens, not the revoked one"
    );
    assert_eq!(warmed.grants, 2);
    assert!(warmed.links >= 1);

    let before = misses(&b);
    assert_eq!(b.introspect(&sara).await["active"], true);
    assert_eq!(b.introspect(&jan).await["active"], true);
    assert_eq!(
        misses(&b),
        before,
        "both answered from the filled cache alone"
    );
    assert_eq!(b.introspect(&gone).await["active"], false);

    revoke_as_partner(&app, &sara).await;
    reflected_within_a_second(&b, &sara, false).await;
    assert_eq!(b.introspect(&jan).await["active"], true);
}

/// At start the fill runs in the background and `/readyz` waits for it: not ready the moment
/// it starts, ready once the cache holds the live tokens.
async fn readiness_waits_for_the_fill(app: TestApp) {
    let (sara, _jan) = two_tokens(&app).await;
    let b = TestApp::spawn_instance(&app.database_url(), None).await;
    caught_up(&b).await;
    poortwachter::cache::warm::spawn(
        std::sync::Arc::clone(&b.state.cache),
        b.state.store.clone(),
        b.state.now(),
        Duration::from_secs(30),
    );
    assert!(b.state.cache.is_warming(), "not ready while filling");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = b
            .backchannel()
            .get(b.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status();
        if status == 200 {
            break;
        }
        assert_eq!(status, 503);
        assert!(Instant::now() < deadline, "the fill never ended");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!b.state.cache.is_warming());
    let before = misses(&b);
    assert_eq!(b.introspect(&sara).await["active"], true);
    assert_eq!(misses(&b), before, "filled before ready");
}

/// A page of the fill that raced a change does not keep the old fact: every eviction since
/// the page's mark is applied once more.
async fn a_fill_that_raced_a_change_keeps_nothing_old(app: TestApp) {
    let (sara, _jan) = two_tokens(&app).await;
    let cache = &app.state.cache;
    caught_up(&app).await;
    let hash = poortwachter::crypto::tokens::hash_token(&sara);
    let row = app
        .state
        .store
        .get_access_token(&hash)
        .await
        .unwrap()
        .unwrap();
    let mark = cache.mark();
    // The change arrives (and is evicted) between the page's read and its fill.
    assert!(cache.evict("token", &hash));
    cache.fill(&cache.tokens, hash.clone(), std::sync::Arc::new(row), mark);
    assert!(cache.get_cached_token(&hash).is_some(), "filled");
    assert_eq!(cache.settle(mark), 1, "the eviction is applied again");
    assert!(cache.get_cached_token(&hash).is_none(), "not kept");
}

on_every_backend!(
    without_reading_the_log_the_cache_is_not_used,
    an_unchanged_consent_changes_nothing,
    a_filled_cache_answers_from_memory,
    a_fill_that_raced_a_change_keeps_nothing_old,
    readiness_waits_for_the_fill,
);
