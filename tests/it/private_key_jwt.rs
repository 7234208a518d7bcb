//! `private_key_jwt` (RFC 7523 §2.2, OIDC Core §9): the demo partner signs client assertions
//! with the key in `examples/private_key_jwt/`; a client built on josekit, as a partner
//! would build one. Every refusal RFC 7523 §3 asks for is tried: replayed `jti`, wrong
//! `aud`, expired or too long-lived, another issuer, another key, no signature.

use josekit::jwk::Jwk;
use josekit::jws::{JwsHeader, ES256};
use josekit::jwt::JwtPayload;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{TestApp, HUISWERKHULP, PASSWORD, STUDYSPACE};
use crate::on_every_backend;

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const PRIVATE_JWK: &str =
    include_str!("../../examples/private_key_jwt/studyspace-demo.private.jwk.json");

/// A client assertion: `edit` may change any claim (or the key) before signing.
fn assertion(app: &TestApp, client: &str, edit: impl FnOnce(&mut Value)) -> String {
    let now = poortwachter::clock::Clock::now(&app.clock).timestamp();
    let mut claims = json!({
        "iss": client,
        "sub": client,
        "aud": app.issuer,
        "iat": now,
        "exp": now + 60,
        "jti": uuid::Uuid::new_v4().to_string(),
    });
    edit(&mut claims);
    sign(&claims, &Jwk::from_bytes(PRIVATE_JWK).unwrap())
}

fn sign(claims: &Value, jwk: &Jwk) -> String {
    let mut header = JwsHeader::new();
    header.set_token_type("JWT");
    if let Some(kid) = jwk.key_id() {
        header.set_key_id(kid);
    }
    let payload = JwtPayload::from_map(claims.as_object().unwrap().clone()).unwrap();
    let signer = ES256.signer_from_jwk(jwk).unwrap();
    josekit::jwt::encode_with_signer(&payload, &header, &signer).unwrap()
}

/// Push an authorization request for `client`, authenticated by `assertion`.
async fn push(app: &TestApp, client: &str, assertion: &str) -> (StatusCode, Value) {
    let authorization = app.authorization(client, "openid rooster");
    let mut form: Vec<(&str, &str)> = authorization
        .params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    form.push(("client_assertion_type", ASSERTION_TYPE));
    form.push(("client_assertion", assertion));
    let response = app
        .backchannel()
        .post(app.url("/par"))
        .form(&form)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn a_signed_assertion_authenticates_the_partner(app: TestApp) {
    // At the token endpoint, for a real code: the whole flow, then the exchange.
    let authorization = app.authorization(STUDYSPACE.0, "openid rooster");
    let browser = app.browser();
    let login = browser.open(&authorization.url()).await.page();
    let consent = browser
        .login(&login, "12AB", "100002", PASSWORD)
        .await
        .page();
    let callback = browser.consent(&consent, "approve", None).await.callback();
    let signed = assertion(&app, STUDYSPACE.0, |c| c["aud"] = json!(app.url("/token")));
    let response = app
        .backchannel()
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", callback.code()),
            ("redirect_uri", authorization.param("redirect_uri").unwrap()),
            ("code_verifier", authorization.verifier.as_str()),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", signed.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.unwrap();
    assert!(tokens["access_token"].is_string());

    // At the pushed-request endpoint, with the issuer as audience (FAPI 2.0).
    let (status, body) = push(&app, STUDYSPACE.0, &assertion(&app, STUDYSPACE.0, |_| {})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let metadata = app.metadata().await;
    let methods = metadata["token_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap();
    assert!(methods.contains(&json!("private_key_jwt")));
    assert_eq!(
        metadata["token_endpoint_auth_signing_alg_values_supported"],
        json!(["RS256", "PS256", "ES256"])
    );
}

async fn bad_assertions_are_refused(app: TestApp) {
    let now = poortwachter::clock::Clock::now(&app.clock).timestamp();
    let replayed = assertion(&app, STUDYSPACE.0, |_| {});
    assert_eq!(
        push(&app, STUDYSPACE.0, &replayed).await.0,
        StatusCode::CREATED
    );
    assert_eq!(
        push(&app, STUDYSPACE.0, &replayed).await.0,
        401,
        "jti replayed"
    );

    let other_key = {
        let mut jwk = ES256.generate_key_pair().unwrap().to_jwk_key_pair();
        jwk.set_key_id("studyspace-demo-2026");
        jwk
    };
    let cases: Vec<(&str, String)> = vec![
        (
            "wrong audience",
            assertion(&app, STUDYSPACE.0, |c| {
                c["aud"] = json!("https://other.example")
            }),
        ),
        (
            "expired",
            assertion(&app, STUDYSPACE.0, |c| c["exp"] = json!(now - 120)),
        ),
        (
            "too long-lived",
            assertion(&app, STUDYSPACE.0, |c| c["exp"] = json!(now + 3600)),
        ),
        (
            "issued in the future",
            assertion(&app, STUDYSPACE.0, |c| c["iat"] = json!(now + 600)),
        ),
        (
            "no expiry",
            assertion(&app, STUDYSPACE.0, |c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
        ),
        (
            "no jti",
            assertion(&app, STUDYSPACE.0, |c| {
                c.as_object_mut().unwrap().remove("jti");
            }),
        ),
        (
            "another issuer",
            assertion(&app, STUDYSPACE.0, |c| c["iss"] = json!(HUISWERKHULP.0)),
        ),
        (
            "another key",
            sign(
                &json!({
                    "iss": STUDYSPACE.0, "sub": STUDYSPACE.0, "aud": app.issuer,
                    "exp": now + 60, "jti": "other-key",
                }),
                &other_key,
            ),
        ),
        ("unsigned", {
            let signed = assertion(&app, STUDYSPACE.0, |_| {});
            let parts: Vec<&str> = signed.split('.').collect();
            format!("eyJhbGciOiJub25lIn0.{}.", parts[1])
        }),
        ("garbage", "not.a.jwt".to_string()),
    ];
    for (what, bad) in cases {
        let (status, body) = push(&app, STUDYSPACE.0, &bad).await;
        assert_eq!(status, 401, "{what}: {body}");
        assert_eq!(body["error"], "invalid_client", "{what}");
    }

    // A partner not registered for private_key_jwt cannot use it, even with a valid key.
    let (status, _) = push(
        &app,
        HUISWERKHULP.0,
        &assertion(&app, HUISWERKHULP.0, |_| {}),
    )
    .await;
    assert_eq!(status, 401);

    // The assertion is the whole authentication: not beside a secret.
    let response = app
        .backchannel()
        .post(app.url("/par"))
        .basic_auth(STUDYSPACE.0, Some(STUDYSPACE.1))
        .form(&[
            ("client_assertion_type", ASSERTION_TYPE),
            (
                "client_assertion",
                assertion(&app, STUDYSPACE.0, |_| {}).as_str(),
            ),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let response = app
        .backchannel()
        .post(app.url("/par"))
        .form(&[
            ("client_assertion_type", "urn:example:other"),
            (
                "client_assertion",
                assertion(&app, STUDYSPACE.0, |_| {}).as_str(),
            ),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

/// Keys published at a `jwks_uri` (here a loopback server; https elsewhere), registered
/// through the admin API, whose checks name the field.
async fn keys_can_be_published_at_a_jwks_uri(app: TestApp) {
    let public: Value = serde_json::from_str(poortwachter::demo::DEMO_PARTNER_JWKS).unwrap();
    let served = public.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let jwks_uri = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let router = axum::Router::new().route(
            "/jwks.json",
            axum::routing::get(move || async move { axum::Json(served) }),
        );
        axum::serve(listener, router).await.unwrap();
    });
    let platform = app.management_token("platform-demo").await;
    let patch = |body: Value| {
        let (app, platform) = (&app, &platform);
        async move {
            app.admin(
                "PATCH",
                &format!("/api/admin/partners/{}", HUISWERKHULP.0),
                platform,
                Some(body),
            )
            .await
        }
    };
    let (status, body) = patch(json!({ "token_endpoint_auth_method": "private_key_jwt" })).await;
    assert_eq!(status, 400, "no keys: {body}");
    let private: Value = serde_json::from_str(PRIVATE_JWK).unwrap();
    let (status, body) = patch(json!({ "jwks": { "keys": [private] } })).await;
    assert_eq!(status, 400, "a private key: {body}");
    assert!(body.to_string().contains("jwks"), "{body}");
    let (status, body) = patch(json!({ "jwks_uri": "http://partner.example/jwks" })).await;
    assert_eq!(status, 400, "plain http elsewhere: {body}");
    assert!(body.to_string().contains("jwks_uri"), "{body}");

    let (status, view) = patch(json!({
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks_uri": jwks_uri,
    }))
    .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["jwks_uri"], jwks_uri);
    let (status, body) = push(
        &app,
        HUISWERKHULP.0,
        &assertion(&app, HUISWERKHULP.0, |_| {}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // New keys replace the old ones at once (the cached client is evicted): the old key no
    // longer works.
    let fresh = ES256.generate_key_pair().unwrap();
    let mut public = fresh.to_jwk_public_key();
    public.set_key_id("huiswerkhulp-2027");
    let (status, view) = patch(json!({ "jwks": { "keys": [public.as_ref()] } })).await;
    assert_eq!(status, 200, "{view}");
    let (status, _) = push(
        &app,
        HUISWERKHULP.0,
        &assertion(&app, HUISWERKHULP.0, |_| {}),
    )
    .await;
    assert_eq!(status, 401, "the replaced key is refused");
    let mut private = fresh.to_jwk_key_pair();
    private.set_key_id("huiswerkhulp-2027");
    let now = poortwachter::clock::Clock::now(&app.clock).timestamp();
    let signed = sign(
        &json!({
            "iss": HUISWERKHULP.0, "sub": HUISWERKHULP.0, "aud": app.issuer,
            "exp": now + 60, "jti": "new-key",
        }),
        &private,
    );
    let (status, body) = push(&app, HUISWERKHULP.0, &signed).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // Its secret no longer works: the method is private_key_jwt alone, and the secret is gone
    // (switching back does not revive it; a new one comes from rotating).
    let (hash,): (Option<String>,) =
        sqlx::query_as("SELECT secret_hash FROM clients WHERE client_id = $1")
            .bind(HUISWERKHULP.0)
            .fetch_one(app.state.store.pool())
            .await
            .unwrap();
    assert_eq!(hash, None);
    let response = app
        .backchannel()
        .post(app.url("/par"))
        .basic_auth(HUISWERKHULP.0, Some(HUISWERKHULP.1))
        .form(&[("response_type", "code")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

on_every_backend!(
    a_signed_assertion_authenticates_the_partner,
    bad_assertions_are_refused,
    keys_can_be_published_at_a_jwks_uri,
);
