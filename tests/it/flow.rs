//! The full flow with the `openidconnect` crate as relying party: discovery, PKCE, login,
//! consent, code exchange, ID token verified against the JWKS, userinfo, refresh rotation.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthType, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl,
    Nonce, OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};
use poortwachter::clock::Clock;
use serde_json::Value;

use crate::helpers::{TestApp, HUISWERKHULP, REDIRECT, STUDYSPACE};
use crate::on_every_backend;

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The claims of a JWT, read without verification (only after openidconnect verified it).
pub(crate) fn payload(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

async fn relying_party(
    app: &TestApp,
    (id, secret): (&str, &str),
) -> openidconnect::Client<
    openidconnect::EmptyAdditionalClaims,
    openidconnect::core::CoreAuthDisplay,
    openidconnect::core::CoreGenderClaim,
    openidconnect::core::CoreJweContentEncryptionAlgorithm,
    openidconnect::core::CoreJsonWebKey,
    openidconnect::core::CoreAuthPrompt,
    openidconnect::StandardErrorResponse<openidconnect::core::CoreErrorResponseType>,
    openidconnect::core::CoreTokenResponse,
    openidconnect::core::CoreTokenIntrospectionResponse,
    openidconnect::core::CoreRevocableToken,
    openidconnect::core::CoreRevocationErrorResponse,
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
> {
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(app.issuer.clone()).unwrap(), &http())
            .await
            .expect("discovery with the openidconnect crate");
    CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(id.into()),
        Some(ClientSecret::new(secret.into())),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap())
}

/// Given Sara (16) at Lyceum De Vecht, whose school opened the link to Studyspace,
/// when she consents herself, then Studyspace gets verified tokens about her, userinfo works,
/// and refresh tokens rotate.
async fn student_of_sixteen_consents_personally(app: TestApp) {
    let rp = relying_party(&app, STUDYSPACE).await;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf_state, nonce) = rp
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("naam".into()))
        .add_scope(Scope::new("rooster".into()))
        .add_scope(Scope::new("huiswerk".into()))
        .add_scope(Scope::new("offline_access".into()))
        .add_extra_param("acr_values", "tenant:12AB")
        .set_pkce_challenge(challenge)
        .url();

    let callback = app
        .authorize_with_consent(url.as_str(), "12AB", "100002", None)
        .await;
    assert!(callback.url.starts_with(REDIRECT));
    assert_eq!(callback.get("state"), Some(csrf_state.secret().as_str()));
    assert_eq!(
        callback.get("iss"),
        Some(app.issuer.as_str()),
        "RFC 9207 iss parameter"
    );

    let tokens = rp
        .exchange_code(AuthorizationCode::new(callback.code().into()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http())
        .await
        .expect("code exchange");
    assert_eq!(
        tokens.access_token().secret().len(),
        43,
        "256-bit opaque access token"
    );
    let expires_in = tokens.expires_in().unwrap().as_secs();
    assert_eq!(expires_in, 15 * 60);

    let clock = app.clock.clone();
    let id_verifier = rp.id_token_verifier().set_time_fn(move || clock.now());
    let id_token = tokens.id_token().expect("an ID token for scope openid");
    let claims = id_token
        .claims(&id_verifier, &nonce)
        .expect("ID token verifies against the JWKS");
    assert_eq!(claims.issuer().as_str(), app.issuer);
    // acr: the school whose login was used, as `acr_values=tenant:<BRIN>` names it.
    assert_eq!(
        claims.auth_context_ref().map(|acr| acr.as_str()),
        Some("tenant:12AB")
    );
    assert_eq!(
        claims.given_name().unwrap().get(None).unwrap().as_str(),
        "Sara"
    );
    assert_eq!(
        claims.family_name().unwrap().get(None).unwrap().as_str(),
        "Bakker"
    );
    assert_eq!(
        claims.name().unwrap().get(None).unwrap().as_str(),
        "Sara Bakker"
    );
    // at_hash binds the ID token to this access token (OIDC Core §3.1.3.8).
    let expected_hash = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&id_verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(claims.access_token_hash(), Some(&expected_hash));

    let raw = payload(&id_token.to_string());
    assert!(raw["exp"].as_i64().unwrap() - raw["iat"].as_i64().unwrap() <= 300);
    assert!(raw["auth_time"].is_i64());
    assert!(raw["sid"].is_string());
    assert_eq!(raw["aud"], "studyspace-demo");
    assert!(
        raw.get("tussenvoegsel").is_none(),
        "Sara has no tussenvoegsel"
    );
    assert!(raw.get("act").is_none(), "Sara consented herself");
    assert!(
        raw.get("email").is_none() && raw.get("birthdate").is_none(),
        "naam releases the name only"
    );
    let sub = claims.subject().as_str().to_string();
    assert_ne!(sub, "100002", "the partner never sees the student number");

    let userinfo: CoreUserInfoClaims = rp
        .user_info(tokens.access_token().clone(), None)
        .unwrap()
        .request_async(&http())
        .await
        .expect("userinfo");
    assert_eq!(userinfo.subject().as_str(), sub);
    assert_eq!(
        userinfo.given_name().unwrap().get(None).unwrap().as_str(),
        "Sara"
    );

    // Refresh rotates: a new refresh token each time, and the same subject.
    let first_refresh = tokens
        .refresh_token()
        .expect("offline_access gives a refresh token")
        .clone();
    let refreshed = rp
        .exchange_refresh_token(&first_refresh)
        .unwrap()
        .request_async(&http())
        .await
        .expect("refresh");
    let second_refresh = refreshed
        .refresh_token()
        .expect("rotated refresh token")
        .clone();
    assert_ne!(second_refresh.secret(), first_refresh.secret());
    assert_ne!(
        refreshed.access_token().secret(),
        tokens.access_token().secret()
    );
    let refreshed_claims = refreshed
        .id_token()
        .unwrap()
        .claims(
            &rp.id_token_verifier().set_time_fn({
                let clock = app.clock.clone();
                move || clock.now()
            }),
            |_: Option<&Nonce>| Ok(()),
        )
        .unwrap();
    assert_eq!(refreshed_claims.subject().as_str(), sub);
    // The successor works once more; the rotated-out one is refused.
    assert!(rp
        .exchange_refresh_token(&second_refresh)
        .unwrap()
        .request_async(&http())
        .await
        .is_ok());
}

/// Given Petra, guardian of Jan (14) and Emma (12), when she consents for Jan with
/// client_secret_post, then the ID token is about Jan, names Petra as actor, and Jan's
/// identifier differs per partner.
async fn parent_chooses_a_child(app: TestApp) {
    let rp = relying_party(&app, STUDYSPACE)
        .await
        .set_auth_type(AuthType::RequestBody);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _state, nonce) = rp
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("naam".into()))
        .add_scope(Scope::new("rooster".into()))
        .add_scope(Scope::new("huiswerk".into()))
        .set_pkce_challenge(challenge)
        .url();

    let browser = app.browser();
    let login = browser.open(url.as_str()).await.page();
    let consent = browser
        .login(&login, "12AB", "p.devries", crate::helpers::PASSWORD)
        .await
        .page();
    let children = consent.choices("student");
    assert_eq!(
        children,
        vec![("100004".to_string(), true), ("100001".to_string(), true)]
    );
    assert!(consent.html.contains("Emma de Vries") && consent.html.contains("Jan de Vries"));
    assert!(consent.html.contains("Studyspace (demo)"));
    assert!(consent.html.contains("31-12-2030"), "accreditation shown");
    let callback = browser
        .consent(&consent, "approve", Some("100001"))
        .await
        .callback();

    let tokens = rp
        .exchange_code(AuthorizationCode::new(callback.code().into()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http())
        .await
        .expect("code exchange with client_secret_post");
    assert!(
        tokens.refresh_token().is_none(),
        "no offline_access, no refresh token"
    );
    let clock = app.clock.clone();
    let id_verifier = rp.id_token_verifier().set_time_fn(move || clock.now());
    let id_token = tokens.id_token().unwrap();
    let claims = id_token.claims(&id_verifier, &nonce).unwrap();
    assert_eq!(
        claims.given_name().unwrap().get(None).unwrap().as_str(),
        "Jan"
    );
    let raw = payload(&id_token.to_string());
    assert_eq!(raw["tussenvoegsel"], "de");
    assert_eq!(raw["name"], "Jan de Vries");
    let actor = raw["act"]["sub"].as_str().expect("act names the parent");
    assert_ne!(actor, raw["sub"].as_str().unwrap());
    let jan_at_studyspace = raw["sub"].as_str().unwrap().to_string();

    let userinfo: Value = app
        .userinfo(tokens.access_token().secret())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(userinfo["sub"], jan_at_studyspace.as_str());
    assert_eq!(userinfo["act"]["sub"], actor);
    assert_eq!(userinfo["tussenvoegsel"], "de");

    // The same child at another partner gets another, stable identifier.
    app.state
        .store
        .set_link("12AB", "huiswerkhulp-demo", true, None, app.clock.now())
        .await
        .unwrap();
    let mut subs = Vec::new();
    for _ in 0..2 {
        let authorization = app.authorization(HUISWERKHULP.0, "openid naam");
        let browser = app.browser();
        let login = browser.open(&authorization.url()).await.page();
        let consent = browser
            .login(&login, "12AB", "p.devries", crate::helpers::PASSWORD)
            .await
            .page();
        let callback = browser
            .consent(&consent, "approve", Some("100001"))
            .await
            .callback();
        let (status, body) = app
            .exchange(HUISWERKHULP, callback.code(), &authorization.verifier)
            .await;
        assert_eq!(status, 200, "{body}");
        subs.push(
            payload(body["id_token"].as_str().unwrap())["sub"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(subs[0], subs[1], "stable for one partner");
    assert_ne!(
        subs[0], jan_at_studyspace,
        "pairwise: different per partner"
    );
}

on_every_backend!(
    student_of_sixteen_consents_personally,
    parent_chooses_a_child
);
