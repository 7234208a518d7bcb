//! Hostile input, generated (proptest): arbitrary authorization parameters, Basic headers,
//! redirect URIs and form bodies against the real server. Never a 5xx, never a hang; garbage
//! gets a 4xx (or, at `/authorize` once client and redirect URI are verified, an error sent
//! back to the client). Case counts are small so CI stays within seconds.

use std::time::Duration;

use proptest::prelude::*;

use crate::helpers::{TestApp, REDIRECT, STUDYSPACE};

const CASES: u32 = 48;

fn runtime_and_app() -> (tokio::runtime::Runtime, TestApp) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let app = runtime.block_on(TestApp::spawn_sqlite());
    (runtime, app)
}

fn status(runtime: &tokio::runtime::Runtime, request: reqwest::RequestBuilder) -> u16 {
    runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(10), request.send())
            .await
            .expect("answered within 10 s")
            .expect("a response")
            .status()
            .as_u16()
    })
}

/// Parameter names the server knows, and a few it does not.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("client_id".to_string()),
        Just("redirect_uri".to_string()),
        Just("response_type".to_string()),
        Just("scope".to_string()),
        Just("state".to_string()),
        Just("nonce".to_string()),
        Just("code_challenge".to_string()),
        Just("code_challenge_method".to_string()),
        Just("prompt".to_string()),
        Just("login_hint".to_string()),
        Just("acr_values".to_string()),
        Just("ui_locales".to_string()),
        "[a-z_]{1,12}",
    ]
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(STUDYSPACE.0.to_string()),
        Just(REDIRECT.to_string()),
        Just("code".to_string()),
        Just("openid rooster".to_string()),
        Just("S256".to_string()),
        ".{0,40}",
        "[\\x00-\\x7f]{0,600}",
    ]
}

#[test]
fn authorize_survives_any_parameters() {
    let (runtime, app) = runtime_and_app();
    let client = app.backchannel();
    proptest!(ProptestConfig::with_cases(CASES), |(params in proptest::collection::vec((name(), value()), 0..10))| {
        let mut url = url::Url::parse(&app.url("/authorize")).unwrap();
        url.query_pairs_mut().extend_pairs(params.iter());
        let code = status(&runtime, client.get(url));
        prop_assert!(code < 500, "{} for {:?}", code, params);
        prop_assert!(code != 200 || params.iter().any(|(n, _)| n == "client_id"));
    });
}

#[test]
fn token_introspect_and_revoke_survive_any_credentials_and_bodies() {
    let (runtime, app) = runtime_and_app();
    let client = app.backchannel();
    proptest!(ProptestConfig::with_cases(CASES), |(
        path in prop_oneof![Just("/token"), Just("/introspect"), Just("/revoke")],
        authorization in prop_oneof![
            Just(None),
            "(Basic|BASIC|basic|Bearer) [A-Za-z0-9+/=:%]{0,60}".prop_map(Some),
            ".{0,60}".prop_map(Some),
        ],
        body in prop_oneof![
            "[a-z_]{1,12}=[^&]{0,40}(&[a-z_]{1,12}=[^&]{0,40}){0,4}",
            proptest::collection::vec(any::<u8>(), 0..200)
                .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        ],
    )| {
        let mut request = client
            .post(app.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.clone());
        if let Some(value) = &authorization {
            if let Ok(value) = reqwest::header::HeaderValue::from_str(value) {
                request = request.header("authorization", value);
            }
        }
        let code = status(&runtime, request);
        prop_assert!((400..500).contains(&code), "{} {} for {:?} / {:?}", path, code, authorization, body);
    });
}
