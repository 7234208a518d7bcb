//! Several server processes on one database act as one: a change made through any instance
//! is reflected by introspection on every other instance within one second, with Redis, with
//! Redis gone mid-test, and without Redis at all.

use std::time::{Duration, Instant};

use crate::helpers::{
    instances_with_redis, redis_url, reflected_within_a_second, set_link, TcpProxy, TestApp,
};

/// Given two instances on one PostgreSQL with Redis, a change on A shows on B within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_with_redis_act_as_one() {
    let Some((a, b)) = instances_with_redis().await else {
        return;
    };
    let tokens = a.sara_tokens("openid rooster offline_access").await;
    let token = tokens["access_token"].as_str().unwrap();
    for _ in 0..3 {
        assert_eq!(
            b.introspect(token).await["active"],
            true,
            "B knows A's token (and caches it)"
        );
    }
    let beheer = a.management_token("beheer-12ab-demo").await;
    set_link(&a, &beheer, false).await;
    reflected_within_a_second(&b, token, false).await;
    set_link(&a, &beheer, true).await;
    reflected_within_a_second(&b, token, true).await;

    // The other way round: the partner revokes through B, A stops accepting.
    let status = b
        .backchannel()
        .post(b.url("/revoke"))
        .basic_auth("studyspace-demo", Some("studyspace-demo-secret"))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    reflected_within_a_second(&a, token, false).await;
    assert!(b.state.cache.redis().unwrap().ping().await);
}

/// Redis disappears mid-test: answers stay correct (the change log takes over), and the
/// instances reconnect by themselves when Redis returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_going_away_never_leaves_a_stale_allow() {
    let Some(redis) = redis_url() else {
        eprintln!("TEST_REDIS_URL is not set: skipped");
        return;
    };
    let upstream = url::Url::parse(&redis).unwrap();
    let upstream = format!(
        "{}:{}",
        upstream.host_str().unwrap(),
        upstream.port().unwrap_or(6379)
    );
    let proxy = TcpProxy::start(0, &upstream).await;
    let proxied = format!("redis://127.0.0.1:{}", proxy.port);
    let Some(a) = TestApp::spawn_postgres_with_redis(Some(&proxied)).await else {
        crate::helpers::postgres_missing();
        return;
    };
    let namespace = a.state.config.redis_namespace.clone();
    let b = TestApp::spawn_instance(&a.database_url(), Some((&proxied, &namespace))).await;
    let tokens = a.sara_tokens("openid rooster").await;
    let token = tokens["access_token"].as_str().unwrap();
    assert_eq!(b.introspect(token).await["active"], true);
    let beheer = a.management_token("beheer-12ab-demo").await;

    proxy.stop();
    assert!(
        !a.state.cache.redis().unwrap().ping().await,
        "Redis is unreachable now"
    );
    set_link(&a, &beheer, false).await;
    reflected_within_a_second(&b, token, false).await;
    set_link(&a, &beheer, true).await;
    reflected_within_a_second(&b, token, true).await;

    let _back = proxy.restart().await;
    let started = Instant::now();
    while !b.state.cache.redis().unwrap().ping().await {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "instance did not reconnect to Redis"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    set_link(&a, &beheer, false).await;
    reflected_within_a_second(&b, token, false).await;
}

/// Without Redis (the embedded default): two processes on one SQLite file, and a change
/// written straight into the database by another program, are seen within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_changes_from_elsewhere_arrive_within_a_second() {
    let a = TestApp::spawn_sqlite().await;
    let b = TestApp::spawn_instance(&a.database_url(), None).await;
    let tokens = a.sara_tokens("openid rooster").await;
    let token = tokens["access_token"].as_str().unwrap();
    assert_eq!(b.introspect(token).await["active"], true);

    let beheer = a.management_token("beheer-12ab-demo").await;
    set_link(&a, &beheer, false).await;
    reflected_within_a_second(&b, token, false).await;
    set_link(&a, &beheer, true).await;
    reflected_within_a_second(&b, token, true).await;

    // Another program (think: the CLI or a database console) ends Sara's enrollment.
    let other = poortwachter::storage::Store::connect(&a.database_url(), 1)
        .await
        .unwrap();
    sqlx::query("UPDATE enrollments SET ends_at = 0 WHERE student_id = (SELECT id FROM accounts WHERE username = '100002')")
        .execute(other.pool())
        .await
        .unwrap();
    reflected_within_a_second(&a, token, false).await;
    reflected_within_a_second(&b, token, false).await;
}

/// Failed logins are counted in Redis, so throttling holds across instances.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_throttling_is_shared_through_redis() {
    let Some((a, b)) = instances_with_redis().await else {
        return;
    };
    let browser = a.browser();
    let login = a.login_page(&browser, "studyspace-demo", "openid").await;
    for _ in 0..10 {
        let page = browser.login(&login, "12AB", "100002", "fout").await.page();
        assert!(page.html.contains("klopt niet"));
    }
    // On the other instance the right password does not help either, for now.
    let other = b.browser();
    let login = b.login_page(&other, "studyspace-demo", "openid").await;
    let page = other
        .login(&login, "12AB", "100002", crate::helpers::PASSWORD)
        .await
        .page();
    assert!(page.html.contains("te vaak"), "{}", page.html);
}
