//! The database gone: every kind of caller is answered `503` with `Retry-After`, within
//! seconds, never a `500` or a hang (issue 8 §5; `.ci/drills` restarts a real PostgreSQL
//! under load, see docs/DRILLS.md).

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestApp, STUDYSPACE};
use crate::on_every_backend;

/// Status, `Retry-After` and the JSON body (or `Null` for a page).
async fn answer(response: reqwest::Response) -> (StatusCode, Option<String>, Value) {
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let text = response.text().await.unwrap();
    (
        status,
        retry_after,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

async fn without_the_database_every_caller_gets_503_with_retry_after(app: TestApp) {
    let token = app.management_token("platform-demo").await;
    let authorize = app.authorization(STUDYSPACE.0, "openid rooster").url();
    // Given a running server whose database cannot be reached any more,
    app.state.store.close().await;
    let http = app.backchannel();
    let limit = Duration::from_secs(5);

    // when a management client asks for a token, it is told to come back, not that it failed;
    let started = Instant::now();
    let response = http
        .post(app.url("/token"))
        .basic_auth("beheer-12ab-demo", Some("beheer-12ab-demo-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let (status, retry_after, body) = answer(response).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");
    assert_eq!(retry_after.as_deref(), Some("2"));
    assert!(started.elapsed() < limit, "took {:?}", started.elapsed());

    // the admin API answers the same way,
    let started = Instant::now();
    let response = http
        .get(app.url("/api/admin/schools/12AB/grants"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let (status, retry_after, body) = answer(response).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");
    assert_eq!(retry_after.as_deref(), Some("2"));
    assert!(started.elapsed() < limit, "took {:?}", started.elapsed());

    // a person starting a login sees a page saying to try again shortly,
    let started = Instant::now();
    let response = http.get(&authorize).send().await.unwrap();
    let status = response.status();
    let retry_after = response.headers().get("retry-after").cloned();
    let page = response.text().await.unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{page}");
    assert!(retry_after.is_some());
    assert!(page.contains("Even niet beschikbaar"), "{page}");
    assert!(started.elapsed() < limit, "took {:?}", started.elapsed());

    // and the load balancer is told the instance is not ready.
    let response = http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
}

on_every_backend!(without_the_database_every_caller_gets_503_with_retry_after);
