//! Secrets at rest (issue 11 §4): with `secrets_key` configured the signing keys and server
//! secrets are sealed (AES-256-GCM) in the database; a database written before a key was
//! configured is sealed at the next start without changing a key or a pairwise subject; a
//! sealed database does not start without its key, or with another.

use std::sync::Arc;

use poortwachter::clock::ManualClock;
use poortwachter::config::Config;

use crate::helpers::TestApp;
use crate::on_every_backend;

const KEY: &str = "c2VhbGluZy10ZXN0LWtleS0zMi1ieXRlcy1sb25nISE=";
const OTHER_KEY: &str = "b3RoZXItc2VhbGluZy1rZXktMzItYnl0ZXMtbG9uZyE=";

async fn stored(app: &TestApp) -> Vec<String> {
    let pool = app.state.store.pool();
    let mut values: Vec<String> =
        sqlx::query_as::<_, (String,)>("SELECT private_pem FROM signing_keys")
            .fetch_all(pool)
            .await
            .unwrap()
            .into_iter()
            .map(|(v,)| v)
            .collect();
    values.extend(
        sqlx::query_as::<_, (String,)>("SELECT value FROM server_secrets")
            .fetch_all(pool)
            .await
            .unwrap()
            .into_iter()
            .map(|(v,)| v),
    );
    values
}

async fn start(url: &str, key: Option<&str>) -> anyhow::Result<poortwachter::AppState> {
    let mut config = Config {
        database_url: url.to_string(),
        secrets_key: key.map(str::to_string),
        ..Default::default()
    };
    config.normalise();
    poortwachter::prepare_state(
        config,
        Arc::new(ManualClock::new(
            chrono::DateTime::from_timestamp(1_796_000_000, 0).unwrap(),
        )),
    )
    .await
}

async fn secrets_are_sealed_at_rest(plain: TestApp) {
    let url = plain.database_url();
    let before = stored(&plain).await;
    assert!(
        before.iter().all(|v| !v.starts_with("sealed:")),
        "no key: plain"
    );
    let sara = plain.sara_tokens("openid rooster").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let sub = plain.introspect(&sara).await["sub"].clone();

    // With a key, the next start seals what is plain, keeping every value.
    let sealed =
        TestApp::spawn_instance_with(&url, None, false, |c| c.secrets_key = Some(KEY.to_string()))
            .await;
    let after = stored(&sealed).await;
    assert_eq!(after.len(), before.len());
    assert!(
        after.iter().all(|v| v.starts_with("sealed:v1:")),
        "{after:?}"
    );
    assert!(
        !after.iter().any(|v| v.contains("PRIVATE KEY")),
        "no PEM in the clear"
    );
    assert_eq!(
        sealed.state.keys[0].kid, plain.state.keys[0].kid,
        "the same key"
    );
    assert_eq!(sealed.state.pairwise_secret, plain.state.pairwise_secret);
    let answer = sealed.introspect(&sara).await;
    assert_eq!(answer["active"], true);
    assert_eq!(answer["sub"], sub, "pairwise subjects unchanged");

    // Without the key, or with another, a sealed database does not start.
    let missing = start(&url, None).await.err().expect("no key, no start");
    assert!(missing.to_string().contains("secrets_key"), "{missing}");
    let wrong = start(&url, Some(OTHER_KEY))
        .await
        .err()
        .expect("wrong key, no start");
    assert!(wrong.to_string().contains("wrong key"), "{wrong}");
    assert!(start(&url, Some("not-base64!")).await.is_err());
}

/// A database that starts with a key never holds a plain secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_database_with_a_key_is_sealed_from_the_start() {
    let app = TestApp::spawn_sqlite_with(|c| c.secrets_key = Some(KEY.to_string())).await;
    let values = stored(&app).await;
    assert!(values.len() >= 3, "{values:?}");
    assert!(
        values.iter().all(|v| v.starts_with("sealed:v1:")),
        "{values:?}"
    );
    assert_eq!(app.sara_tokens("openid").await["token_type"], "Bearer");
}

on_every_backend!(secrets_are_sealed_at_rest);
