//! The test harness: a real server on port 0 over a fresh database (SQLite always, PostgreSQL
//! when `TEST_DATABASE_URL` is set), a browser that keeps cookies, and HTML helpers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use poortwachter::clock::ManualClock;
use poortwachter::config::Config;
use poortwachter::crypto::tokens::{random_token, sha256_b64url};
use poortwachter::{demo, prepare_state, AppState, Application};
use reqwest::StatusCode;
use scraper::{Html, Selector};
use serde_json::Value;
use sqlx::Connection;

pub const PASSWORD: &str = "welkom-demo-2026";
/// Opens `/metrics` on the test servers' main listener.
pub const METRICS_TOKEN: &str = "test-metrics-token";
pub const REDIRECT: &str = "http://127.0.0.1:9000/callback";
pub const STUDYSPACE: (&str, &str) = ("studyspace-demo", "studyspace-demo-secret");
pub const HUISWERKHULP: (&str, &str) = ("huiswerkhulp-demo", "huiswerkhulp-demo-secret");

/// Run a scenario `async fn name(app: TestApp)` against every configured backend.
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => { $(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::helpers::TestApp::spawn_sqlite().await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                match $crate::helpers::TestApp::spawn_postgres().await {
                    Some(app) => super::$name(app).await,
                    None => $crate::helpers::postgres_missing(),
                }
            }
        }
    )* };
}

/// Like `on_every_backend!`, on an empty database: no demo data, as a new operator finds it.
#[macro_export]
macro_rules! on_every_backend_empty {
    ($($name:ident),* $(,)?) => { $(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::helpers::TestApp::spawn_sqlite_empty().await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                match $crate::helpers::TestApp::spawn_postgres_empty().await {
                    Some(app) => super::$name(app).await,
                    None => $crate::helpers::postgres_missing(),
                }
            }
        }
    )* };
}

/// Without `TEST_DATABASE_URL` the PostgreSQL half is skipped on a developer's machine, and
/// is a failure under `CI=true`: a test that can pass without running is no test.
/// `TEST_REDIS_URL`; under `CI=true` its absence is a failure, not a skip.
pub fn redis_url() -> Option<String> {
    let url = std::env::var("TEST_REDIS_URL").ok();
    if url.is_none() && std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true but TEST_REDIS_URL is not set: the Redis tests cannot be skipped");
    }
    url
}

/// Introspect on `app` until `active` is as expected; fail after one second.
pub async fn reflected_within_a_second(app: &TestApp, token: &str, active: bool) -> Duration {
    let started = Instant::now();
    loop {
        let answer = app.introspect(token).await;
        if answer["active"] == active {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "instance still answers {answer} after one second"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Two instances on one fresh PostgreSQL database sharing Redis, or `None` (and a note) when
/// the environment does not provide both.
pub async fn instances_with_redis() -> Option<(TestApp, TestApp)> {
    let Some(redis) = redis_url() else {
        eprintln!("TEST_REDIS_URL is not set: skipped");
        return None;
    };
    let Some(a) = TestApp::spawn_postgres_with_redis(Some(&redis)).await else {
        postgres_missing();
        return None;
    };
    let namespace = a.state.config.redis_namespace.clone();
    let b = TestApp::spawn_instance(&a.database_url(), Some((&redis, &namespace))).await;
    Some((a, b))
}

/// The demo supervisor opens or closes 12AB's link to Studyspace through the admin API.
pub async fn set_link(app: &TestApp, token: &str, open: bool) {
    let (status, body) = app
        .admin(
            "PUT",
            "/api/admin/schools/12AB/links/studyspace-demo",
            token,
            Some(serde_json::json!({ "open": open, "reason": "test" })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

pub fn postgres_missing() {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true but TEST_DATABASE_URL is not set: the PostgreSQL run cannot be skipped");
    }
    eprintln!("TEST_DATABASE_URL is not set: PostgreSQL run skipped");
}

pub struct TestApp {
    pub issuer: String,
    pub state: AppState,
    pub clock: ManualClock,
    _sqlite_dir: Option<tempfile::TempDir>,
    _postgres: Option<PostgresDb>,
}

/// A throw-away PostgreSQL database, dropped when the test ends.
struct PostgresDb {
    admin_url: String,
    name: String,
}

impl Drop for PostgresDb {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs outside async context: use a short-lived runtime on its own thread.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin_url).await {
                    let _ =
                        sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                            .execute(&mut conn)
                            .await;
                }
            });
        })
        .join();
    }
}

/// A fresh PostgreSQL database: (admin URL, database name, URL of the new database).
async fn fresh_postgres_database() -> Option<(String, String, String)> {
    let admin_url = std::env::var("TEST_DATABASE_URL").ok()?;
    let name = format!("pw_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin_url).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let mut url = url::Url::parse(&admin_url).unwrap();
    url.set_path(&format!("/{name}"));
    Some((admin_url, name, url.to_string()))
}

/// The moment every test starts at: a Monday in November 2026.
pub fn start_of_test() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap()
}

impl TestApp {
    pub async fn spawn_sqlite() -> TestApp {
        Self::spawn_sqlite_with(|_| {}).await
    }

    /// A server on SQLite with some configuration changed (limits, timeouts).
    pub async fn spawn_sqlite_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
        capture_logs();
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        let mut app = Self::spawn_instance_with(&url, None, true, tweak).await;
        app._sqlite_dir = Some(dir);
        app
    }

    pub async fn spawn_postgres() -> Option<TestApp> {
        Self::spawn_postgres_with_redis(None).await
    }

    /// A server over a fresh, empty SQLite database (no demo data).
    pub async fn spawn_sqlite_empty() -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        capture_logs();
        let mut app = Self::spawn_instance_with(&url, None, false, |_| {}).await;
        app._sqlite_dir = Some(dir);
        app
    }

    /// A server over a fresh, empty PostgreSQL database (no demo data).
    pub async fn spawn_postgres_empty() -> Option<TestApp> {
        let (admin_url, name, url) = fresh_postgres_database().await?;
        let mut app = Self::spawn_instance_with(&url, None, false, |_| {}).await;
        app._postgres = Some(PostgresDb { admin_url, name });
        Some(app)
    }

    /// A server on a fresh PostgreSQL database, optionally with Redis (namespaced by the
    /// database name so parallel tests do not hear each other).
    pub async fn spawn_postgres_with_redis(redis_url: Option<&str>) -> Option<TestApp> {
        let admin_url = std::env::var("TEST_DATABASE_URL").ok()?;
        let name = format!("pw_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&admin_url).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        let mut url = url::Url::parse(&admin_url).unwrap();
        url.set_path(&format!("/{name}"));
        let mut app =
            Self::spawn_instance(url.as_str(), redis_url.map(|r| (r, name.as_str()))).await;
        app._postgres = Some(PostgresDb { admin_url, name });
        Some(app)
    }

    /// Another server process on the same database (and, if given, the same Redis).
    pub async fn spawn_instance(database_url: &str, redis: Option<(&str, &str)>) -> TestApp {
        Self::spawn_instance_with(database_url, redis, true, |_| {}).await
    }

    pub async fn spawn_instance_with(
        database_url: &str,
        redis: Option<(&str, &str)>,
        with_demo: bool,
        tweak: impl FnOnce(&mut Config),
    ) -> TestApp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let issuer = format!("http://127.0.0.1:{port}");
        let address = listener.local_addr().unwrap();
        let mut config = Config {
            issuer: issuer.clone(),
            database_url: database_url.to_string(),
            database_max_connections: 5,
            redis_url: redis.map(|(url, _)| url.to_string()),
            redis_namespace: redis
                .map(|(_, ns)| ns.to_string())
                .unwrap_or_else(|| "poortwachter".into()),
            metrics_token: Some(METRICS_TOKEN.into()),
            // Tests flush counted reads themselves, when they choose; a background flush in
            // between would make what they count depend on timing.
            access_log_flush_secs: 0,
            ..Config::default()
        };
        tweak(&mut config);
        config.normalise();
        let clock = ManualClock::new(start_of_test());
        let state = prepare_state(config, Arc::new(clock.clone()))
            .await
            .unwrap();
        if with_demo {
            demo::load_if_empty(&state).await.unwrap();
        }
        let app = Application::build_on(listener, state.clone())
            .await
            .unwrap();
        tokio::spawn(app.run_until_stopped());
        TestApp {
            issuer: format!("http://{address}"),
            state,
            clock,
            _sqlite_dir: None,
            _postgres: None,
        }
    }

    /// `/metrics` as the scraper reads it.
    pub async fn metrics(&self) -> String {
        let response = self
            .backchannel()
            .get(self.url("/metrics"))
            .bearer_auth(METRICS_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.text().await.unwrap()
    }

    /// The port the server listens on (the issuer may name another address).
    pub fn issuer_port(&self) -> u16 {
        url::Url::parse(&self.issuer).unwrap().port().unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.issuer, path)
    }

    /// The database URL this instance uses, for starting a second instance on it.
    pub fn database_url(&self) -> String {
        self.state.config.database_url.clone()
    }

    /// A management token by client_credentials (`beheer-12ab-demo` or `platform-demo`).
    pub async fn management_token(&self, client: &str) -> String {
        let (status, body) = self
            .token(
                (client, &format!("{client}-secret")),
                &[("grant_type", "client_credentials")],
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_string()
    }

    /// The discovery document (OIDC Discovery 1.0 §4).
    pub async fn metadata(&self) -> Value {
        self.backchannel()
            .get(self.url("/.well-known/openid-configuration"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Call the admin API.
    pub async fn admin(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self
            .backchannel()
            .request(method, self.url(path))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Introspect as the demo resource server.
    pub async fn introspect(&self, token: &str) -> Value {
        self.introspect_as(("schooldata-api-demo", "schooldata-api-demo-secret"), token)
            .await
    }

    pub async fn introspect_as(&self, caller: (&str, &str), token: &str) -> Value {
        let response = self
            .backchannel()
            .post(self.url("/introspect"))
            .basic_auth(caller.0, Some(caller.1))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// Sara (16) consents to Studyspace for `scope`; returns the token response.
    pub async fn sara_tokens(&self, scope: &str) -> Value {
        self.tokens_for(STUDYSPACE, scope, "100002", None).await
    }

    /// Log in as `username` at 12AB (choosing `child` as a parent), consent if asked, exchange.
    pub async fn tokens_for(
        &self,
        client: (&str, &str),
        scope: &str,
        username: &str,
        child: Option<&str>,
    ) -> Value {
        let authorization = self.authorization(client.0, scope);
        let callback = self
            .authorize_with_consent(&authorization.url(), "12AB", username, child)
            .await;
        let (status, body) = self
            .exchange(client, callback.code(), &authorization.verifier)
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    pub fn browser(&self) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            issuer: self.issuer.clone(),
        }
    }

    /// A plain HTTP client for the partner's back channel (no cookies, no redirects).
    pub fn backchannel(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    /// An authorization request as a partner would build it, with fresh PKCE, state and nonce.
    pub fn authorization(&self, client_id: &str, scope: &str) -> Authorization {
        let verifier = random_token();
        Authorization {
            base: self.url("/authorize"),
            params: vec![
                ("response_type".into(), "code".into()),
                ("client_id".into(), client_id.into()),
                ("redirect_uri".into(), REDIRECT.into()),
                ("scope".into(), scope.into()),
                ("state".into(), random_token()),
                ("nonce".into(), random_token()),
                ("code_challenge".into(), sha256_b64url(verifier.as_bytes())),
                ("code_challenge_method".into(), "S256".into()),
            ],
            verifier,
        }
    }

    /// Start an authorization for `client` and `scope` in `browser`: the login page it leads to.
    pub async fn login_page(&self, browser: &Browser, client: &str, scope: &str) -> Page {
        let page = browser
            .open(&self.authorization(client, scope).url())
            .await
            .page();
        assert!(
            page.html.contains("name=\"password\""),
            "expected the login page, got {}",
            page.html
        );
        page
    }

    /// `POST /token` with client_secret_basic.
    pub async fn token(&self, client: (&str, &str), form: &[(&str, &str)]) -> (StatusCode, Value) {
        let response = self
            .backchannel()
            .post(self.url("/token"))
            .basic_auth(client.0, Some(client.1))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    /// `grant_type=refresh_token` with client_secret_basic.
    pub async fn refresh(&self, client: (&str, &str), refresh_token: &str) -> (StatusCode, Value) {
        self.token(
            client,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
        )
        .await
    }

    /// Exchange a code for tokens, with the verifier that belongs to it.
    pub async fn exchange(
        &self,
        client: (&str, &str),
        code: &str,
        verifier: &str,
    ) -> (StatusCode, Value) {
        self.token(
            client,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", verifier),
            ],
        )
        .await
    }

    pub async fn userinfo(&self, access_token: &str) -> reqwest::Response {
        self.backchannel()
            .get(self.url("/userinfo"))
            .bearer_auth(access_token)
            .send()
            .await
            .unwrap()
    }

    /// The whole browser part for one person: authorize, log in, consent if asked (choosing
    /// `child` when a parent), and return where the browser was sent back to.
    pub async fn authorize_with_consent(
        &self,
        authorization_url: &str,
        school: &str,
        username: &str,
        child: Option<&str>,
    ) -> Callback {
        let browser = self.browser();
        let login = browser.open(authorization_url).await.page();
        assert!(
            login.html.contains("name=\"password\""),
            "expected the login page, got {}",
            login.html
        );
        match browser.login(&login, school, username, PASSWORD).await {
            // A grant that already covers the request skips the consent page.
            Outcome::Left(location) => Callback::parse(&location),
            Outcome::Page(consent) => {
                assert!(
                    consent.html.contains("decision"),
                    "expected the consent page, got {}",
                    consent.html
                );
                browser.consent(&consent, "approve", child).await.callback()
            }
        }
    }
}

pub struct Authorization {
    base: String,
    pub params: Vec<(String, String)>,
    pub verifier: String,
}

impl Authorization {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn set(mut self, name: &str, value: &str) -> Self {
        self.params.retain(|(k, _)| k != name);
        self.params.push((name.into(), value.into()));
        self
    }

    pub fn without(mut self, name: &str) -> Self {
        self.params.retain(|(k, _)| k != name);
        self
    }

    pub fn url(&self) -> String {
        let mut url = url::Url::parse(&self.base).unwrap();
        url.query_pairs_mut().extend_pairs(self.params.iter());
        url.to_string()
    }
}

/// A browser: keeps cookies, follows redirects only within our server.
pub struct Browser {
    http: reqwest::Client,
    issuer: String,
}

/// Where navigation ended: on one of our pages, or sent away to the partner.
#[derive(Debug)]
pub enum Outcome {
    Page(Page),
    Left(String),
}

impl Outcome {
    pub fn page(self) -> Page {
        match self {
            Outcome::Page(page) => page,
            Outcome::Left(location) => panic!("expected a page, was redirected to {location}"),
        }
    }

    pub fn callback(self) -> Callback {
        match self {
            Outcome::Left(location) => Callback::parse(&location),
            Outcome::Page(page) => panic!(
                "expected a redirect to the partner, got {} {}",
                page.status, page.html
            ),
        }
    }
}

impl Browser {
    fn absolute(&self, url: &str) -> String {
        if url.starts_with('/') {
            format!("{}{}", self.issuer, url)
        } else {
            url.to_string()
        }
    }

    /// Follow our own redirects until a page, or a redirect that leaves the server.
    async fn follow(&self, mut response: reqwest::Response) -> Outcome {
        loop {
            if response.status().is_redirection() {
                let location = response.headers()["location"].to_str().unwrap().to_string();
                let next = self.absolute(&location);
                if !next.starts_with(&self.issuer) {
                    return Outcome::Left(next);
                }
                response = self.http.get(&next).send().await.unwrap();
                continue;
            }
            let status = response.status();
            let html = response.text().await.unwrap();
            return Outcome::Page(Page { status, html });
        }
    }

    pub async fn open(&self, url: &str) -> Outcome {
        let response = self.http.get(self.absolute(url)).send().await.unwrap();
        self.follow(response).await
    }

    pub async fn raw_get(&self, url: &str) -> reqwest::Response {
        self.http.get(self.absolute(url)).send().await.unwrap()
    }

    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Outcome {
        let response = self
            .http
            .post(self.absolute(path))
            .form(fields)
            .send()
            .await
            .unwrap();
        self.follow(response).await
    }

    /// Fill in and submit the login form of `page`.
    pub async fn login(
        &self,
        page: &Page,
        school: &str,
        username: &str,
        password: &str,
    ) -> Outcome {
        let csrf = page.input("csrf").unwrap();
        let request = page.input("request").unwrap();
        self.post(
            "/login",
            &[
                ("csrf", &csrf),
                ("request", &request),
                ("school", school),
                ("username", username),
                ("password", password),
            ],
        )
        .await
    }

    /// Press approve or deny on the consent `page`, for a parent with the chosen child, with
    /// every scope left ticked (as a browser submits the form).
    pub async fn consent(&self, page: &Page, decision: &str, child: Option<&str>) -> Outcome {
        self.consent_unticking(page, decision, child, &[]).await
    }

    /// As [`Browser::consent`], after unticking the scope checkboxes `untick`.
    pub async fn consent_unticking(
        &self,
        page: &Page,
        decision: &str,
        child: Option<&str>,
        untick: &[&str],
    ) -> Outcome {
        let csrf = page.input("csrf").unwrap();
        let request = page.input("request").unwrap();
        let ticked = page.checked("scope");
        let mut fields = vec![
            ("csrf", csrf.as_str()),
            ("request", request.as_str()),
            ("decision", decision),
        ];
        if let Some(child) = child {
            fields.push(("student", child));
        }
        for scope in ticked.iter().filter(|s| !untick.contains(&s.as_str())) {
            fields.push(("scope", scope.as_str()));
        }
        self.post("/consent", &fields).await
    }
}

#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub html: String,
}

impl Page {
    /// The value of the form field `name` (first match).
    pub fn input(&self, name: &str) -> Option<String> {
        let doc = Html::parse_document(&self.html);
        let selector = Selector::parse(&format!("input[name=\"{name}\"]")).unwrap();
        doc.select(&selector)
            .next()
            .and_then(|e| e.value().attr("value").map(str::to_string))
    }

    /// All values of radio buttons `name`, with whether each is enabled.
    pub fn choices(&self, name: &str) -> Vec<(String, bool)> {
        let doc = Html::parse_document(&self.html);
        let selector = Selector::parse(&format!("input[name=\"{name}\"]")).unwrap();
        doc.select(&selector)
            .map(|e| {
                (
                    e.value().attr("value").unwrap_or_default().to_string(),
                    e.value().attr("disabled").is_none(),
                )
            })
            .collect()
    }

    /// The values of the checked checkboxes `name`.
    pub fn checked(&self, name: &str) -> Vec<String> {
        let doc = Html::parse_document(&self.html);
        let selector = Selector::parse(&format!("input[name=\"{name}\"][checked]")).unwrap();
        doc.select(&selector)
            .filter_map(|e| e.value().attr("value").map(str::to_string))
            .collect()
    }

    pub fn link(&self, id: &str) -> Option<String> {
        let doc = Html::parse_document(&self.html);
        let selector = Selector::parse(&format!("a#{id}")).unwrap();
        doc.select(&selector)
            .next()
            .and_then(|e| e.value().attr("href").map(str::to_string))
    }

    pub fn attr(&self, selector: &str, attr: &str) -> Option<String> {
        let doc = Html::parse_document(&self.html);
        let selector = Selector::parse(selector).unwrap();
        doc.select(&selector)
            .next()
            .and_then(|e| e.value().attr(attr).map(str::to_string))
    }
}

/// The partner's redirect URI as the browser reached it.
#[derive(Debug)]
pub struct Callback {
    pub url: String,
    pub params: Vec<(String, String)>,
}

impl Callback {
    pub fn parse(url: &str) -> Callback {
        let parsed = url::Url::parse(url).unwrap();
        Callback {
            url: url.to_string(),
            params: parsed
                .query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn code(&self) -> &str {
        self.get("code")
            .unwrap_or_else(|| panic!("no code in {}", self.url))
    }
}

/// A TCP proxy in front of Redis that a test can cut and restore, to see what instances do
/// when Redis goes away mid-flight.
pub struct TcpProxy {
    pub port: u16,
    upstream: String,
    tasks: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl TcpProxy {
    pub async fn start(port: u16, upstream: &str) -> TcpProxy {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let proxy = TcpProxy {
            port,
            upstream: upstream.to_string(),
            tasks: Arc::new(std::sync::Mutex::new(Vec::new())),
        };
        let upstream = proxy.upstream.clone();
        let tasks = Arc::clone(&proxy.tasks);
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let connection = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tasks.lock().unwrap().push(connection);
            }
        });
        proxy.tasks.lock().unwrap().push(accept);
        proxy
    }

    /// Cut every connection and stop listening: Redis is "down".
    pub fn stop(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    /// Listen again on the same port: Redis is "back".
    pub async fn restart(&self) -> TcpProxy {
        TcpProxy::start(self.port, &self.upstream).await
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Everything the server logs during the test run (one process-wide subscriber), so tests can
/// check that no secret or personal data reaches the log.
static LOGS: std::sync::OnceLock<Arc<std::sync::Mutex<Vec<u8>>>> = std::sync::OnceLock::new();

#[derive(Clone)]
struct LogWriter(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    LOGS.get_or_init(|| {
        let buffer = Arc::new(std::sync::Mutex::new(Vec::new()));
        let writer = LogWriter(Arc::clone(&buffer));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "poortwachter=debug,sqlx=info,tower_http=debug",
            ))
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .try_init();
        buffer
    });
}

pub fn captured_logs() -> String {
    LOGS.get()
        .map(|buffer| String::from_utf8_lossy(&buffer.lock().unwrap()).to_string())
        .unwrap_or_default()
}

/// The published TOTP secrets of the demo's console users (README, src/demo.rs).
pub const SUPERVISOR_TOTP: &str = poortwachter::demo::DEMO_SUPERVISOR_TOTP_SECRET;
pub const OPERATOR_TOTP: &str = poortwachter::demo::DEMO_OPERATOR_TOTP_SECRET;

impl TestApp {
    /// The TOTP code an authenticator app would show now (the test's clock).
    pub fn totp(&self, secret: &str) -> String {
        poortwachter::crypto::totp::code_at(secret, self.state.now()).unwrap()
    }

    /// A browser logged in to a console: password, then the TOTP code. `school` may be empty
    /// (operator, or a supervisor with a unique username).
    pub async fn console_browser(
        &self,
        school: &str,
        username: &str,
        secret: &str,
    ) -> (Browser, Page) {
        let browser = self.browser();
        let login = browser.open("/console/login").await.page();
        let second = browser
            .post(
                "/console/login",
                &[
                    ("csrf", &login.input("csrf").unwrap()),
                    ("school", school),
                    ("username", username),
                    ("password", PASSWORD),
                ],
            )
            .await
            .page();
        assert!(second.html.contains("name=\"code\""), "{}", second.html);
        let home = browser
            .post(
                "/console/totp",
                &[
                    ("csrf", &second.input("csrf").unwrap()),
                    ("code", &self.totp(secret)),
                ],
            )
            .await
            .page();
        assert_eq!(home.status, 200, "{}", home.html);
        (browser, home)
    }

    /// The demo supervisor of 12AB, logged in to `/school`.
    pub async fn supervisor_browser(&self) -> (Browser, Page) {
        self.console_browser("12AB", "beheer", SUPERVISOR_TOTP)
            .await
    }

    /// The demo platform operator, logged in to `/platform`.
    pub async fn operator_browser(&self) -> (Browser, Page) {
        self.console_browser("", "operator", OPERATOR_TOTP).await
    }
}

impl Browser {
    /// Submit a `multipart/form-data` form (a file upload) and follow our redirects.
    pub async fn post_multipart(&self, path: &str, form: reqwest::multipart::Form) -> Outcome {
        let response = self
            .http
            .post(self.absolute(path))
            .multipart(form)
            .send()
            .await
            .unwrap();
        self.follow(response).await
    }
}
