//! Introspection (RFC 7662) against the live policy: for each fact, a token introspects
//! active, the fact changes through the admin API, and the very next call says inactive (or
//! withholds the scope); and back again where that makes sense.

use chrono::Duration;
use poortwachter::clock::Clock;
use serde_json::{json, Value};

use crate::helpers::{TestApp, HUISWERKHULP, PASSWORD, STUDYSPACE};
use crate::on_every_backend;

const INACTIVE: fn() -> Value = || json!({ "active": false });

fn access(tokens: &Value) -> String {
    tokens["access_token"].as_str().unwrap().to_string()
}

async fn introspection_describes_a_live_token(app: TestApp) {
    let tokens = app
        .sara_tokens("openid naam rooster cijfers offline_access")
        .await;
    let answer = app.introspect(&access(&tokens)).await;
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(
        answer["scope"],
        "openid offline_access naam rooster cijfers"
    );
    assert_eq!(answer["client_id"], "studyspace-demo");
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["aud"], "schooldata-api-demo");
    assert_eq!(answer["school"], "12AB");
    assert_eq!(answer["audience"], "partners");
    assert_eq!(answer["student"]["student_number"], "100002");
    assert!(answer["exp"].as_i64().unwrap() > answer["iat"].as_i64().unwrap());
    assert!(answer.get("act").is_none());
    assert!(answer.get("withheld_scopes").is_none());

    // Refresh tokens introspect too.
    let refresh = app
        .introspect(tokens["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(refresh["active"], true);
    assert_eq!(refresh["token_type"], "refresh_token");

    // Anything else is exactly {"active": false}.
    assert_eq!(app.introspect("not-a-token").await, INACTIVE());
    app.clock.advance(Duration::minutes(16));
    assert_eq!(
        app.introspect(&access(&tokens)).await,
        INACTIVE(),
        "expired"
    );
}

async fn introspection_requires_an_authenticated_caller(app: TestApp) {
    let tokens = app.sara_tokens("openid rooster").await;
    let token = access(&tokens);
    let anonymous = app
        .backchannel()
        .post(app.url("/introspect"))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let wrong = app
        .backchannel()
        .post(app.url("/introspect"))
        .basic_auth("schooldata-api-demo", Some("guess"))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(wrong.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Basic"));

    // A partner sees its own token, pseudonymously; never another partner's.
    let own = app.introspect_as(STUDYSPACE, &token).await;
    assert_eq!(own["active"], true);
    assert!(
        own.get("student").is_none(),
        "the real student is for resource servers only"
    );
    assert_eq!(app.introspect_as(HUISWERKHULP, &token).await, INACTIVE());
}

async fn introspection_as_signed_jwt(app: TestApp) {
    let tokens = app.sara_tokens("openid rooster").await;
    let response = app
        .backchannel()
        .post(app.url("/introspect"))
        .basic_auth("schooldata-api-demo", Some("schooldata-api-demo-secret"))
        .header("accept", "application/token-introspection+jwt")
        .form(&[("token", access(&tokens).as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "application/token-introspection+jwt"
    );
    let jwt = response.text().await.unwrap();
    let jwks: Value = app
        .backchannel()
        .get(app.url("/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwk = josekit::jwk::Jwk::from_map(jwks["keys"][0].as_object().unwrap().clone()).unwrap();
    let verifier = josekit::jws::RS256.verifier_from_jwk(&jwk).unwrap();
    let (payload, header) =
        josekit::jwt::decode_with_verifier(&jwt, &verifier).expect("signature verifies");
    assert_eq!(header.token_type(), Some("token-introspection+jwt"));
    assert_eq!(payload.issuer(), Some(app.issuer.as_str()));
    let inner = payload.claim("token_introspection").unwrap();
    assert_eq!(inner["active"], true);
    assert_eq!(inner["scope"], "openid rooster");
}

async fn revocation_by_the_partner(app: TestApp) {
    let tokens = app.sara_tokens("openid rooster offline_access").await;
    let revoke = |token: String| {
        let app = &app;
        async move {
            app.backchannel()
                .post(app.url("/revoke"))
                .basic_auth(STUDYSPACE.0, Some(STUDYSPACE.1))
                .form(&[("token", token.as_str())])
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(app.introspect(&access(&tokens)).await["active"], true);
    assert_eq!(revoke(access(&tokens)).await, 200);
    assert_eq!(app.introspect(&access(&tokens)).await, INACTIVE());
    // Unknown tokens answer 200 as well (RFC 7009 §2.2).
    assert_eq!(revoke("never-issued".into()).await, 200);
    // Revoking the refresh token ends the access tokens issued under it.
    let (_, refreshed) = app
        .refresh(STUDYSPACE, tokens["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(app.introspect(&access(&refreshed)).await["active"], true);
    assert_eq!(
        revoke(refreshed["refresh_token"].as_str().unwrap().into()).await,
        200
    );
    assert_eq!(app.introspect(&access(&refreshed)).await, INACTIVE());
    // Another partner cannot revoke Studyspace's tokens.
    let other = app.sara_tokens("openid rooster").await;
    let status = app
        .backchannel()
        .post(app.url("/revoke"))
        .basic_auth(HUISWERKHULP.0, Some(HUISWERKHULP.1))
        .form(&[("token", access(&other).as_str())])
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    assert_eq!(app.introspect(&access(&other)).await["active"], true);
}

async fn withdrawn_grant_in_whole_or_in_part(app: TestApp) {
    let beheer = app.management_token("beheer-12ab-demo").await;
    let tokens = app.sara_tokens("openid naam rooster cijfers").await;
    let (_, list) = app
        .admin("GET", "/api/admin/schools/12AB/grants", &beheer, None)
        .await;
    assert_eq!(list["count"], 1);
    assert_eq!(list["by_partner"]["studyspace-demo"], 1);
    let grant_id = list["grants"][0]["grant_id"].as_str().unwrap().to_string();

    let (status, _) = app
        .admin(
            "POST",
            &format!("/api/admin/schools/12AB/grants/{grant_id}/withdraw"),
            &beheer,
            Some(json!({ "scopes": ["cijfers"], "reason": "ouder vroeg om intrekking cijfers" })),
        )
        .await;
    assert_eq!(status, 200);
    let answer = app.introspect(&access(&tokens)).await;
    assert_eq!(answer["active"], true);
    assert_eq!(
        answer["scope"], "openid naam rooster",
        "cijfers dropped out"
    );

    let (status, _) = app
        .admin(
            "POST",
            &format!("/api/admin/schools/12AB/grants/{grant_id}/withdraw"),
            &beheer,
            Some(json!({ "reason": "toestemming ingetrokken" })),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(app.introspect(&access(&tokens)).await, INACTIVE());
}

async fn suspended_or_expired_accreditation(app: TestApp) {
    let platform = app.management_token("platform-demo").await;
    let tokens = app.sara_tokens("openid rooster offline_access").await;
    let path = "/api/admin/partners/studyspace-demo/accreditation";
    let (status, _) = app
        .admin(
            "PUT",
            path,
            &platform,
            Some(json!({ "status": "suspended", "reason": "audit loopt" })),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(app.introspect(&access(&tokens)).await, INACTIVE());
    let (status, body) = app
        .refresh(STUDYSPACE, tokens["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(status, 400, "{body}");

    let (status, _) = app
        .admin("PUT", path, &platform, Some(json!({ "status": "accredited", "valid_until": "2030-12-31T23:00:00Z", "reason": "audit afgerond" })))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        app.introspect(&access(&tokens)).await["active"],
        true,
        "back again"
    );

    let until = (app.clock.now() + Duration::minutes(5)).to_rfc3339();
    app.admin(
        "PUT",
        path,
        &platform,
        Some(json!({ "status": "accredited", "valid_until": until, "reason": "verlenging loopt" })),
    )
    .await;
    assert_eq!(app.introspect(&access(&tokens)).await["active"], true);
    app.clock.advance(Duration::minutes(6));
    assert_eq!(
        app.introspect(&access(&tokens)).await,
        INACTIVE(),
        "past its validity"
    );
}

async fn school_closes_and_reopens_the_link(app: TestApp) {
    let beheer = app.management_token("beheer-12ab-demo").await;
    let tokens = app.sara_tokens("openid rooster").await;
    let path = "/api/admin/schools/12AB/links/studyspace-demo";
    let (status, _) = app
        .admin(
            "PUT",
            path,
            &beheer,
            Some(json!({ "open": false, "reason": "contract herzien" })),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(app.introspect(&access(&tokens)).await, INACTIVE());
    // New authorizations are refused while closed...
    let browser = app.browser();
    let login = app.login_page(&browser, STUDYSPACE.0, "openid").await;
    let page = browser
        .login(&login, "12AB", "100002", PASSWORD)
        .await
        .page();
    assert_eq!(page.status, 403);
    // ...and work again once reopened.
    app.admin(
        "PUT",
        path,
        &beheer,
        Some(json!({ "open": true, "reason": "contract getekend" })),
    )
    .await;
    assert_eq!(app.introspect(&access(&tokens)).await["active"], true);
    let fresh = app.sara_tokens("openid rooster").await;
    assert_eq!(app.introspect(&access(&fresh)).await["active"], true);
}

async fn student_leaves_the_school(app: TestApp) {
    let beheer = app.management_token("beheer-12ab-demo").await;
    let tokens = app.sara_tokens("openid rooster").await;
    let (status, _) = app
        .admin(
            "POST",
            "/api/admin/schools/12AB/students/100002/leave",
            &beheer,
            Some(json!({ "reason": "verhuisd" })),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(app.introspect(&access(&tokens)).await, INACTIVE());
}

async fn parent_no_longer_linked(app: TestApp) {
    let beheer = app.management_token("beheer-12ab-demo").await;
    let tokens = app
        .tokens_for(
            STUDYSPACE,
            "openid naam rooster",
            "p.devries",
            Some("100001"),
        )
        .await;
    let answer = app.introspect(&access(&tokens)).await;
    assert_eq!(answer["active"], true);
    assert_eq!(answer["student"]["student_number"], "100001");
    assert_eq!(answer["act"]["role"], "parent");
    assert_eq!(answer["act"]["username"], "p.devries");
    let (status, _) = app
        .admin(
            "DELETE",
            "/api/admin/schools/12AB/guardianships/p.devries/100001",
            &beheer,
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(app.introspect(&access(&tokens)).await, INACTIVE());
}

async fn parents_consent_ends_at_eighteen_until_the_student_confirms(app: TestApp) {
    // Petra consented for Emma when Emma was young enough for that (under 16).
    let tokens = app
        .tokens_for(
            STUDYSPACE,
            "openid rooster offline_access",
            "p.devries",
            Some("100004"),
        )
        .await;
    // Emma turns 18 tomorrow (in this test): the parent's consent stands until then.
    let emma = app
        .state
        .store
        .find_account_by_login("12AB", "100004")
        .await
        .unwrap()
        .unwrap();
    sqlx::query("UPDATE accounts SET birth_date = '2008-11-24' WHERE id = $1")
        .bind(&emma.id)
        .execute(app.state.store.pool())
        .await
        .unwrap();
    // A roster change reaches the policy as every change does: the cache is told.
    app.state.cache.changed(&app.state.store).await;
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(app.introspect(&refresh).await["active"], true);
    app.clock.advance(Duration::days(1));
    assert_eq!(
        app.introspect(&refresh).await,
        INACTIVE(),
        "the parent no longer speaks for her"
    );

    // Emma confirms herself: the same grant works again, now in her own name.
    let confirmed = app
        .authorization(STUDYSPACE.0, "openid rooster offline_access")
        .set("prompt", "consent");
    let callback = app
        .authorize_with_consent(&confirmed.url(), "12AB", "100004", None)
        .await;
    assert!(callback.get("code").is_some());
    assert_eq!(app.introspect(&refresh).await["active"], true);
    // Tokens from her own sign-in are in her own name: no parent as actor.
    let (status, own) = app
        .exchange(STUDYSPACE, callback.code(), &confirmed.verifier)
        .await;
    assert_eq!(status, 200, "{own}");
    let answer = app.introspect(&access(&own)).await;
    assert_eq!(answer["active"], true);
    assert!(answer.get("act").is_none(), "{answer}");
}

async fn closures_withhold_a_scope_for_an_audience(app: TestApp) {
    let beheer = app.management_token("beheer-12ab-demo").await;
    let partner = app.sara_tokens("openid rooster cijfers").await;
    let now = app.clock.now();
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
    let answer = app.introspect(&access(&partner)).await;
    assert_eq!(answer["active"], true);
    assert_eq!(answer["scope"], "openid rooster");
    assert_eq!(answer["withheld_scopes"], json!(["cijfers"]));
    assert_eq!(answer["withheld"][0]["reason"], "toetsweek");

    let (_, list) = app
        .admin("GET", "/api/admin/schools/12AB/closures", &beheer, None)
        .await;
    assert_eq!(list["closures"].as_array().unwrap().len(), 1);
    let id = closure["id"].as_str().unwrap();
    let (status, _) = app
        .admin(
            "DELETE",
            &format!("/api/admin/schools/12AB/closures/{id}"),
            &beheer,
            None,
        )
        .await;
    assert_eq!(status, 204);
    let answer = app.introspect(&access(&partner)).await;
    assert_eq!(
        answer["scope"], "openid rooster cijfers",
        "closure ended: the scope returns"
    );

    // A closure that starts later applies from its start.
    app.admin(
        "POST",
        "/api/admin/schools/12AB/closures",
        &beheer,
        Some(json!({
            "scope": "cijfers", "audiences": ["partners"],
            "starts_at": (now + Duration::minutes(5)).to_rfc3339(),
            "ends_at": (now + Duration::minutes(10)).to_rfc3339(),
            "reason": "toetsweek",
        })),
    )
    .await;
    assert_eq!(
        app.introspect(&access(&partner)).await["scope"],
        "openid rooster cijfers"
    );
    app.clock.advance(Duration::minutes(6));
    assert_eq!(
        app.introspect(&access(&partner)).await["scope"],
        "openid rooster"
    );
    app.clock.advance(Duration::minutes(5));
    assert_eq!(
        app.introspect(&access(&partner)).await["scope"],
        "openid rooster cijfers"
    );
}

/// The school app (first party, public client): parents' grades closed all period, students'
/// only during the test week.
async fn first_party_audiences_are_parents_and_students(app: TestApp) {
    let schoolapp = ("schoolapp-demo", "");
    let login = |username: &'static str| {
        let app = &app;
        async move {
            let authorization = app
                .authorization(schoolapp.0, "openid naam cijfers rooster")
                .set("redirect_uri", "http://127.0.0.1:9100/callback");
            let browser = app.browser();
            let page = browser.open(&authorization.url()).await.page();
            // No consent page for the school's own app.
            let callback = browser
                .login(&page, "12AB", username, PASSWORD)
                .await
                .callback();
            let response = app
                .backchannel()
                .post(app.url("/token"))
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("client_id", schoolapp.0),
                    ("code", callback.code()),
                    ("redirect_uri", "http://127.0.0.1:9100/callback"),
                    ("code_verifier", authorization.verifier.as_str()),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            let body: Value = response.json().await.unwrap();
            body["access_token"].as_str().unwrap().to_string()
        }
    };
    let parent = login("p.devries").await;
    let student = login("100001").await;
    let answer = app.introspect(&parent).await;
    assert_eq!(answer["audience"], "parents");
    assert_eq!(answer["account"]["role"], "parent");
    assert_eq!(answer["account"]["username"], "p.devries");
    let children: Vec<&str> = answer["account"]["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["student_number"].as_str().unwrap())
        .collect();
    assert_eq!(children, vec!["100004", "100001"]);
    assert_eq!(app.introspect(&student).await["audience"], "students");

    let beheer = app.management_token("beheer-12ab-demo").await;
    let now = app.clock.now();
    app.admin(
        "POST",
        "/api/admin/schools/12AB/closures",
        &beheer,
        Some(json!({
            "scope": "cijfers", "audiences": ["parents"],
            "starts_at": now.to_rfc3339(), "ends_at": (now + Duration::days(90)).to_rfc3339(),
            "reason": "pilot: cijfers dicht voor ouders",
        })),
    )
    .await;
    assert_eq!(
        app.introspect(&parent).await["withheld_scopes"],
        json!(["cijfers"])
    );
    assert!(app
        .introspect(&student)
        .await
        .get("withheld_scopes")
        .is_none());
    app.admin(
        "POST",
        "/api/admin/schools/12AB/closures",
        &beheer,
        Some(json!({
            "scope": "cijfers", "audiences": ["students", "parents"],
            "starts_at": now.to_rfc3339(), "ends_at": (now + Duration::days(5)).to_rfc3339(),
            "reason": "toetsweek",
        })),
    )
    .await;
    assert_eq!(
        app.introspect(&student).await["withheld_scopes"],
        json!(["cijfers"])
    );
}

/// A parent who signs in under a grant the other parent gave holds a token in the signing-in
/// parent's name: unlinking that parent ends that parent's token, not the other's.
async fn unlinking_a_parent_ends_the_tokens_obtained_through_that_parent(app: TestApp) {
    let store = &app.state.store;
    let petra = store
        .find_account_by_login("12AB", "p.devries")
        .await
        .unwrap()
        .unwrap();
    let jan = store
        .find_account_by_login("12AB", "100001")
        .await
        .unwrap()
        .unwrap();
    let emma = store
        .find_account_by_login("12AB", "100004")
        .await
        .unwrap()
        .unwrap();
    let hash = poortwachter::crypto::password::hash_password(PASSWORD.to_string())
        .await
        .unwrap();
    let kees = store
        .insert_account(
            poortwachter::storage::accounts::NewAccount {
                school_brin: "12AB",
                username: "k.devries",
                role: poortwachter::domain::account::Role::Parent,
                password_hash: &hash,
                name: poortwachter::domain::account::PersonName {
                    given_name: "Kees".into(),
                    tussenvoegsel: Some("de".into()),
                    family_name: "Vries".into(),
                },
                birth_date: None,
            },
            app.clock.now(),
        )
        .await
        .unwrap();
    store
        .add_guardianship(&kees, &emma.id, app.clock.now())
        .await
        .unwrap();
    store.remove_guardianship(&petra.id, &jan.id).await.unwrap();
    let own = app
        .tokens_for(STUDYSPACE, "openid rooster", "p.devries", Some("100004"))
        .await;
    // Kees's only child already covered: no consent page, a token with Kees as actor.
    let through_other = app
        .tokens_for(STUDYSPACE, "openid rooster", "k.devries", None)
        .await;
    let answer = app.introspect(&access(&through_other)).await;
    assert_eq!(answer["active"], true);
    assert_eq!(answer["act"]["username"], "k.devries");

    let beheer = app.management_token("beheer-12ab-demo").await;
    let (status, _) = app
        .admin(
            "DELETE",
            "/api/admin/schools/12AB/guardianships/k.devries/100004",
            &beheer,
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(app.introspect(&access(&through_other)).await, INACTIVE());
    assert_eq!(
        app.introspect(&access(&own)).await["active"],
        true,
        "Petra's consent stands"
    );
}

on_every_backend!(
    unlinking_a_parent_ends_the_tokens_obtained_through_that_parent,
    introspection_describes_a_live_token,
    introspection_requires_an_authenticated_caller,
    introspection_as_signed_jwt,
    revocation_by_the_partner,
    withdrawn_grant_in_whole_or_in_part,
    suspended_or_expired_accreditation,
    school_closes_and_reopens_the_link,
    student_leaves_the_school,
    parent_no_longer_linked,
    parents_consent_ends_at_eighteen_until_the_student_confirms,
    closures_withhold_a_scope_for_an_audience,
    first_party_audiences_are_parents_and_students,
);

/// `/metrics` speaks Prometheus and counts introspection decisions by reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_decisions_and_cache() {
    let app = TestApp::spawn_sqlite().await;
    let tokens = app.sara_tokens("openid rooster").await;
    app.introspect(&access(&tokens)).await;
    app.introspect(&access(&tokens)).await;
    app.introspect("unknown").await;
    let text = app.metrics().await;
    for expected in [
        "poortwachter_http_requests_total{endpoint=\"/introspect\",outcome=\"success\"}",
        "poortwachter_introspection_total{decision=\"active\"}",
        "poortwachter_introspection_total{decision=\"unknown_token\"}",
        "poortwachter_policy_cache_total{result=\"hit\"}",
        "poortwachter_http_request_duration_seconds_bucket{endpoint=\"/introspect\"",
    ] {
        assert!(text.contains(expected), "missing {expected} in\n{text}");
    }
}
