//! The token endpoint's refusals and the revocations that protect against stolen codes and
//! refresh tokens (RFC 6749 §4.1.2, §5.2; RFC 7636 §4.6; RFC 9700 §4.14.2).

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Authorization, TestApp, REDIRECT, STUDYSPACE};
use crate::on_every_backend;

/// Sara (16) consents to Studyspace; returns the authorization and its fresh code.
async fn code_for_sara(app: &TestApp, scope: &str) -> (Authorization, String) {
    let authorization = app.authorization(STUDYSPACE.0, scope);
    let callback = app
        .authorize_with_consent(&authorization.url(), "12AB", "100002", None)
        .await;
    let code = callback.code().to_string();
    (authorization, code)
}

fn assert_error(status: StatusCode, body: &Value, expected_status: u16, error: &str) {
    assert_eq!(status.as_u16(), expected_status, "{body}");
    assert_eq!(body["error"], error, "{body}");
}

async fn wrong_verifier_is_invalid_grant_and_burns_the_code(app: TestApp) {
    let (authorization, code) = code_for_sara(&app, "openid naam").await;
    let other = crate::helpers::TestApp::authorization(&app, STUDYSPACE.0, "openid").verifier;
    let (status, body) = app.exchange(STUDYSPACE, &code, &other).await;
    assert_error(status, &body, 400, "invalid_grant");
    // The code is gone: even the right verifier no longer works.
    let (status, body) = app
        .exchange(STUDYSPACE, &code, &authorization.verifier)
        .await;
    assert_error(status, &body, 400, "invalid_grant");

    let (authorization, code) = code_for_sara(&app, "openid naam").await;
    let (status, body) = app
        .token(
            STUDYSPACE,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
            ],
        )
        .await;
    assert_error(status, &body, 400, "invalid_grant");
    let _ = authorization;
}

async fn redirect_uri_must_match_at_the_token_endpoint(app: TestApp) {
    let (authorization, code) = code_for_sara(&app, "openid").await;
    let (status, body) = app
        .token(
            STUDYSPACE,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", "http://localhost:9000/callback"),
                ("code_verifier", &authorization.verifier),
            ],
        )
        .await;
    assert_error(status, &body, 400, "invalid_grant");
}

async fn code_replay_is_refused_and_revokes_earlier_tokens(app: TestApp) {
    let (authorization, code) = code_for_sara(&app, "openid naam offline_access").await;
    let (status, first) = app
        .exchange(STUDYSPACE, &code, &authorization.verifier)
        .await;
    assert_eq!(status, 200, "{first}");
    let access = first["access_token"].as_str().unwrap();
    assert_eq!(app.userinfo(access).await.status(), 200);

    let (status, body) = app
        .exchange(STUDYSPACE, &code, &authorization.verifier)
        .await;
    assert_error(status, &body, 400, "invalid_grant");
    // RFC 6749 §4.1.2: the tokens issued from the replayed code are revoked.
    let response = app.userinfo(access).await;
    assert_eq!(response.status(), 401);
    assert!(response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));
    let (status, body) = app
        .refresh(STUDYSPACE, first["refresh_token"].as_str().unwrap())
        .await;
    assert_error(status, &body, 400, "invalid_grant");
}

async fn code_expires_after_sixty_seconds(app: TestApp) {
    let (authorization, code) = code_for_sara(&app, "openid").await;
    app.clock.advance(Duration::seconds(61));
    let (status, body) = app
        .exchange(STUDYSPACE, &code, &authorization.verifier)
        .await;
    assert_error(status, &body, 400, "invalid_grant");
}

async fn code_is_bound_to_its_client(app: TestApp) {
    app.state
        .store
        .set_link(
            "12AB",
            "huiswerkhulp-demo",
            true,
            None,
            poortwachter::clock::Clock::now(&app.clock),
        )
        .await
        .unwrap();
    let (authorization, code) = code_for_sara(&app, "openid").await;
    let (status, body) = app
        .exchange(crate::helpers::HUISWERKHULP, &code, &authorization.verifier)
        .await;
    assert_error(status, &body, 400, "invalid_grant");
    // Presenting someone else's code neither burns it nor harms its rightful client.
    let (status, body) = app
        .exchange(STUDYSPACE, &code, &authorization.verifier)
        .await;
    assert_eq!(status, 200, "{body}");
}

async fn reused_refresh_token_is_refused_and_revokes_the_family(app: TestApp) {
    let (authorization, code) = code_for_sara(&app, "openid rooster offline_access").await;
    let (_, first) = app
        .exchange(STUDYSPACE, &code, &authorization.verifier)
        .await;
    let old_refresh = first["refresh_token"].as_str().unwrap().to_string();

    let (status, second) = app.refresh(STUDYSPACE, &old_refresh).await;
    assert_eq!(status, 200, "{second}");
    let new_refresh = second["refresh_token"].as_str().unwrap().to_string();
    let new_access = second["access_token"].as_str().unwrap().to_string();
    assert_ne!(new_refresh, old_refresh);
    assert_eq!(app.userinfo(&new_access).await.status(), 200);

    // The rotated-out token comes back: refused, and everything issued since is revoked.
    let (status, body) = app.refresh(STUDYSPACE, &old_refresh).await;
    assert_error(status, &body, 400, "invalid_grant");
    assert_eq!(app.userinfo(&new_access).await.status(), 401);
    let (status, body) = app.refresh(STUDYSPACE, &new_refresh).await;
    assert_error(status, &body, 400, "invalid_grant");
}

async fn refresh_can_narrow_but_not_widen(app: TestApp) {
    let (authorization, code) = code_for_sara(&app, "openid rooster huiswerk offline_access").await;
    let (_, first) = app
        .exchange(STUDYSPACE, &code, &authorization.verifier)
        .await;
    let refresh = first["refresh_token"].as_str().unwrap();
    // Another partner cannot use it (and trying does not spend it).
    let (status, body) = app.refresh(crate::helpers::HUISWERKHULP, refresh).await;
    assert_error(status, &body, 400, "invalid_grant");
    let (status, body) = app
        .token(
            STUDYSPACE,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh),
                ("scope", "openid cijfers"),
            ],
        )
        .await;
    assert_error(status, &body, 400, "invalid_scope");
    let (status, body) = app
        .token(
            STUDYSPACE,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh),
                ("scope", "rooster"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "rooster");
    assert!(body.get("id_token").is_none());
}

async fn wrong_client_secret_is_invalid_client(app: TestApp) {
    let (authorization, code) = code_for_sara(&app, "openid").await;
    let response = app
        .backchannel()
        .post(app.url("/token"))
        .basic_auth(STUDYSPACE.0, Some("not-the-secret"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", authorization.verifier.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Basic"));
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");

    // Unknown client and a secret in the body behave alike.
    let (status, body) = app
        .token(
            ("nobody", "x"),
            &[("grant_type", "authorization_code"), ("code", "x")],
        )
        .await;
    assert_error(status, &body, 401, "invalid_client");
    let response = app
        .backchannel()
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", STUDYSPACE.0),
            ("client_secret", "wrong"),
            ("refresh_token", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    // The code was never touched by the failed authentications: it still works.
    let (status, body) = app
        .exchange(STUDYSPACE, &code, &authorization.verifier)
        .await;
    assert_eq!(status, 200, "{body}");
}

async fn malformed_token_requests_get_rfc6749_errors(app: TestApp) {
    let (status, body) = app
        .token(STUDYSPACE, &[("grant_type", "password"), ("username", "x")])
        .await;
    assert_error(status, &body, 400, "unsupported_grant_type");
    let (status, body) = app.token(STUDYSPACE, &[("code", "x")]).await;
    assert_error(status, &body, 400, "invalid_request");
    let (status, body) = app
        .token(STUDYSPACE, &[("grant_type", "authorization_code")])
        .await;
    assert_error(status, &body, 400, "invalid_request");
    let (status, body) = app.refresh(STUDYSPACE, "bogus").await;
    assert_error(status, &body, 400, "invalid_grant");
    let response = app
        .backchannel()
        .post(app.url("/token"))
        .basic_auth(STUDYSPACE.0, Some(STUDYSPACE.1))
        .header("content-type", "application/json")
        .body("{\"grant_type\":\"authorization_code\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let response = app
        .backchannel()
        .post(app.url("/token"))
        .basic_auth(STUDYSPACE.0, Some(STUDYSPACE.1))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=refresh_token&grant_type=authorization_code")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let response = app
        .backchannel()
        .post(app.url("/token"))
        .header("authorization", "Basic %%%")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=refresh_token")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

async fn userinfo_requires_a_bearer_token(app: TestApp) {
    let response = app
        .backchannel()
        .get(app.url("/userinfo"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    let response = app.userinfo("not-a-token").await;
    assert_eq!(response.status(), 401);
    assert!(response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("error=\"invalid_token\""));

    // An access token expires after its lifetime (15 minutes by default).
    let (authorization, code) = code_for_sara(&app, "openid naam").await;
    let (_, tokens) = app
        .exchange(STUDYSPACE, &code, &authorization.verifier)
        .await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(app.userinfo(access).await.status(), 200);
    app.clock.advance(Duration::minutes(16));
    assert_eq!(app.userinfo(access).await.status(), 401);
}

/// RFC 6750 §2.2: the access token may come in a form-encoded POST body instead of the
/// header; both at once is `invalid_request` (§2: one method only). And the Dutch surname:
/// `family_name` is "de Vries" as people read it, with the parts apart as extra claims.
async fn userinfo_takes_the_token_from_a_form_body(app: TestApp) {
    let jan = app
        .tokens_for(STUDYSPACE, "openid naam", "p.devries", Some("100001"))
        .await;
    let access = jan["access_token"].as_str().unwrap();
    let response = app
        .backchannel()
        .post(app.url("/userinfo"))
        .form(&[("access_token", access)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let claims: Value = response.json().await.unwrap();
    assert_eq!(claims["given_name"], "Jan");
    assert_eq!(claims["family_name"], "de Vries");
    assert_eq!(claims["geslachtsnaam"], "Vries");
    assert_eq!(claims["tussenvoegsel"], "de");
    assert_eq!(claims["name"], "Jan de Vries");

    let both = app
        .backchannel()
        .post(app.url("/userinfo"))
        .bearer_auth(access)
        .form(&[("access_token", access)])
        .send()
        .await
        .unwrap();
    assert_eq!(both.status(), 400);
    let body: Value = both.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");

    // Not a token in a query string or a GET body (§2.2 is POST and form only).
    let query = app
        .backchannel()
        .get(format!("{}?access_token={access}", app.url("/userinfo")))
        .send()
        .await
        .unwrap();
    assert_eq!(query.status(), 401);
    let wrong = app
        .backchannel()
        .post(app.url("/userinfo"))
        .form(&[("access_token", "not-a-token")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
}

async fn tokens_are_stored_only_as_hashes(app: TestApp) {
    let (authorization, code) = code_for_sara(&app, "openid offline_access").await;
    let (_, tokens) = app
        .exchange(STUDYSPACE, &code, &authorization.verifier)
        .await;
    let pool = app.state.store.pool();
    for (table, column, secret) in [
        ("authorization_codes", "code_hash", code.as_str()),
        (
            "access_tokens",
            "token_hash",
            tokens["access_token"].as_str().unwrap(),
        ),
        (
            "refresh_tokens",
            "token_hash",
            tokens["refresh_token"].as_str().unwrap(),
        ),
    ] {
        let (stored,): (String,) = sqlx::query_as(&format!("SELECT {column} FROM {table} LIMIT 1"))
            .fetch_one(pool)
            .await
            .unwrap();
        assert_ne!(stored, secret);
        assert_eq!(stored, poortwachter::crypto::tokens::hash_token(secret));
    }
}

/// Refresh tokens idle out after 30 days; using one restarts the clock for its successor.
async fn refresh_tokens_idle_out_after_thirty_days(app: TestApp) {
    let (authorization, code) = code_for_sara(&app, "openid rooster offline_access").await;
    let (_, first) = app
        .exchange(STUDYSPACE, &code, &authorization.verifier)
        .await;
    app.clock.advance(Duration::days(29));
    let (status, second) = app
        .refresh(STUDYSPACE, first["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(status, 200, "{second}");
    app.clock.advance(Duration::days(29));
    let (status, third) = app
        .refresh(STUDYSPACE, second["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(status, 200, "still within 30 days of the last use: {third}");
    app.clock.advance(Duration::days(31));
    let (status, body) = app
        .refresh(STUDYSPACE, third["refresh_token"].as_str().unwrap())
        .await;
    assert_error(status, &body, 400, "invalid_grant");
}

on_every_backend!(
    userinfo_takes_the_token_from_a_form_body,
    refresh_tokens_idle_out_after_thirty_days,
    wrong_verifier_is_invalid_grant_and_burns_the_code,
    redirect_uri_must_match_at_the_token_endpoint,
    code_replay_is_refused_and_revokes_earlier_tokens,
    code_expires_after_sixty_seconds,
    code_is_bound_to_its_client,
    reused_refresh_token_is_refused_and_revokes_the_family,
    refresh_can_narrow_but_not_widen,
    wrong_client_secret_is_invalid_client,
    malformed_token_requests_get_rfc6749_errors,
    userinfo_requires_a_bearer_token,
    tokens_are_stored_only_as_hashes,
);
