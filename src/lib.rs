//! Poortwachter: an OAuth 2.0 / OpenID Connect authorization server for Dutch secondary
//! schools. This crate root wires configuration, storage and keys into one [`AppState`] and
//! builds the HTTP application used by both the binary and the integration tests.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod api;
pub mod cache;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod demo;
pub mod demo_apps;
pub mod domain;
pub mod flow;
pub mod oauth;
pub mod onboarding;
pub mod serve;
pub mod storage;
pub mod telemetry;
pub mod web;

use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;

use crate::clock::Clock;
use crate::config::Config;
use crate::crypto::keys::SigningKey;
use crate::storage::Store;

/// Everything a request handler needs. Cloned per request, so it is an `Arc`.
#[derive(Clone)]
pub struct AppState(pub Arc<App>);

pub struct App {
    pub config: Config,
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    /// Signing keys, newest (the one in use) first.
    pub keys: Vec<SigningKey>,
    /// Secret for pairwise subject identifiers (OIDC Core §8.1).
    pub pairwise_secret: Vec<u8>,
    /// Policy facts cached per instance, invalidated across instances (see `cache`).
    pub cache: Arc<cache::PolicyCache>,
    /// `(client_id, SHA-256(secret))` → the argon2 hash it verified against, and when.
    pub verified_secrets:
        quick_cache::sync::Cache<(String, String), (String, tokio::time::Instant)>,
    /// Attempt counters (logins, client secrets, rate limits) when Redis does not count them.
    pub counters: cache::limiter::LocalCounts,
    /// Password and secret verifications this server started (argon2 runs), for tests and
    /// for `/metrics` (`poortwachter_argon2_verifications_total` counts process-wide).
    pub argon2_verifications: std::sync::atomic::AtomicU64,
    /// Signs device cookies (OWASP "device cookies"): a browser that logged in before.
    pub device_key: Vec<u8>,
    /// Renders `/metrics`.
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    /// "Wie keek mee": reads counted in memory, written by [`spawn_read_flush_job`].
    pub reads: storage::access_log::ReadRecorder,
}

impl Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.0
    }
}

impl App {
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// The key that signs new tokens.
    pub fn signing_key(&self) -> Option<&SigningKey> {
        self.keys.first()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.config.issuer, path)
    }
}

/// A named server secret, created at random on first use, sealed at rest with a key.
async fn secret(
    store: &Store,
    sealer: &crypto::sealing::Sealer,
    name: &str,
) -> anyhow::Result<String> {
    let fresh = sealer.seal(&crypto::tokens::random_token(), name)?;
    sealer.open(&store.server_secret(name, &fresh).await?, name)
}

/// The upgrade path to sealed secrets: with a key configured, seal every signing key and
/// server secret still stored plain (each rewritten only if unchanged meanwhile, so two
/// instances starting together agree). Without a key, say that they are plain.
async fn seal_what_is_plain(store: &Store, sealer: &crypto::sealing::Sealer) -> anyhow::Result<()> {
    use crypto::sealing::Sealer;
    let keys = store.signing_keys().await?;
    let secrets = store.server_secrets().await?;
    let plain = keys
        .iter()
        .filter(|(_, _, pem)| !Sealer::is_sealed(pem))
        .count()
        + secrets
            .iter()
            .filter(|(_, v)| !Sealer::is_sealed(v))
            .count();
    if plain == 0 {
        return Ok(());
    }
    if !sealer.has_key() {
        tracing::warn!(
            plain,
            "signing keys and server secrets are stored unencrypted; set POORTWACHTER_SECRETS_KEY to seal them"
        );
        return Ok(());
    }
    for (kid, _, pem) in keys.iter().filter(|(_, _, pem)| !Sealer::is_sealed(pem)) {
        store
            .reseal_signing_key(kid, pem, &sealer.seal(pem, kid)?)
            .await?;
    }
    for (name, value) in secrets.iter().filter(|(_, v)| !Sealer::is_sealed(v)) {
        store
            .reseal_server_secret(name, value, &sealer.seal(value, name)?)
            .await?;
    }
    tracing::info!(
        sealed = plain,
        "sealed the signing keys and server secrets stored plain"
    );
    Ok(())
}

/// Open the database, make sure keys and secrets exist, and build the state.
pub async fn prepare_state(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<AppState> {
    let store = Store::connect(&config.database_url, config.database_max_connections).await?;
    let now = clock.now();
    let sealer = crypto::sealing::Sealer::new(config.secrets_key.as_deref())?;
    seal_what_is_plain(&store, &sealer).await?;
    if store.signing_keys().await?.is_empty() {
        // Instances starting together on an empty database must agree on one key: the first
        // to claim the slot wins, the others adopt its key.
        let (kid, pem) = crypto::keys::generate_rs256()?;
        let fresh = sealer.seal(&format!("{kid}\n{pem}"), "initial_signing_key")?;
        let winner = sealer.open(
            &store.server_secret("initial_signing_key", &fresh).await?,
            "initial_signing_key",
        )?;
        let (kid, pem) = winner
            .split_once('\n')
            .ok_or_else(|| anyhow::anyhow!("stored initial signing key is malformed"))?;
        store
            .insert_signing_key(kid, "RS256", &sealer.seal(pem, kid)?, now)
            .await?;
        tracing::info!(%kid, "generated a new ID-token signing key");
    }
    let keys = store
        .signing_keys()
        .await?
        .iter()
        .map(|(kid, _alg, pem)| SigningKey::from_pem(kid, &sealer.open(pem, kid)?))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let pairwise_secret = secret(&store, &sealer, "pairwise_subject")
        .await?
        .into_bytes();
    let redis = match &config.redis_url {
        Some(url) => Some(cache::redis_bus::RedisBus::new(
            url,
            &config.redis_namespace,
        )?),
        None => None,
    };
    let cache = cache::PolicyCache::new(redis, store.backend());
    // The first read of the change log fixes where this instance starts following it.
    cache.poll_changes(&store).await?;
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    cache.spawn_background(store.clone(), Some(ready_tx));
    if config.redis_url.is_some() {
        // Give the subscriber a moment so the first changes are heard; a dead Redis is fine.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), ready_rx).await;
    }
    let verified_secrets = quick_cache::sync::Cache::new(10_000);
    let device_key = secret(&store, &sealer, "device_cookie").await?.into_bytes();
    Ok(AppState(Arc::new(App {
        config,
        store,
        clock,
        keys,
        pairwise_secret,
        cache,
        verified_secrets,
        counters: Default::default(),
        argon2_verifications: Default::default(),
        device_key,
        metrics: telemetry::install(),
        reads: Default::default(),
    })))
}

/// All routes of the server.
pub fn build_router(state: AppState) -> Router {
    let timeout = std::time::Duration::from_secs(state.config.request_timeout_secs);
    Router::new()
        .merge(oauth::router())
        .merge(web::router())
        .merge(flow::router())
        .merge(api::router())
        .merge(telemetry::router())
        .route_layer(axum::middleware::from_fn(telemetry::track_requests))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            serve::rate_limit,
        ))
        // A slow client cannot hold a handler (or a database connection) open: the whole
        // request, and separately the reading of its body, are bounded.
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(timeout))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            security_headers,
        ))
        .with_state(state)
}

/// On every response: no MIME sniffing, and over https HSTS (RFC 6797; a year, as the
/// issuer is an https-only origin).
async fn security_headers(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::{header, HeaderValue};
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if state.config.secure_cookies() {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    response
}

/// A running server: its address, for tests that bind port 0.
pub struct Application {
    listener: TcpListener,
    router: Router,
    state: AppState,
}

impl Application {
    /// Build on an already bound listener (tests bind port 0 and derive the issuer from it).
    pub async fn build_on(listener: TcpListener, state: AppState) -> anyhow::Result<Self> {
        let router = build_router(state.clone());
        Ok(Self {
            listener,
            router,
            state,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        spawn_purge_job(self.state.clone());
        spawn_read_flush_job(self.state.clone());
        spawn_metrics_upkeep(self.state.clone());
        if let Some(bind) = self.state.config.metrics_bind.clone() {
            // `/metrics` for the scraper on an internal address, unauthenticated there.
            let listener = TcpListener::bind(&bind).await?;
            tracing::info!(%bind, "serving /metrics");
            let router = telemetry::internal_router(self.state.clone());
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, router).await {
                    tracing::error!(error = %e, "the metrics listener stopped");
                }
            });
        }
        let config = &self.state.config;
        let limits = serve::Limits {
            header_read_timeout: std::time::Duration::from_secs(config.header_read_timeout_secs),
            max_connections: config.max_connections,
        };
        let served = serve::serve(self.listener, self.router, limits, shutdown_signal()).await;
        // Reads counted since the last flush are written before the process ends.
        if let Err(e) = self.state.reads.flush(&self.state.store).await {
            tracing::warn!(error = %e, "writing the last counted reads failed");
        }
        served
    }
}

/// Delete expired rows once, counting them in `poortwachter_purged_rows_total{table}`.
pub async fn purge_expired_rows(state: &AppState) -> Result<u64, sqlx::Error> {
    let purged = state.store.purge_expired(state.now()).await?;
    let mut total = 0;
    let forgotten = state.counters.forget_expired(state.now());
    if forgotten > 0 {
        metrics::counter!("poortwachter_purged_rows_total", "table" => "throttle_counters")
            .increment(forgotten);
    }
    for (table, rows) in purged {
        metrics::counter!("poortwachter_purged_rows_total", "table" => table).increment(rows);
        total += rows;
    }
    let keep_from = storage::access_log::retention_start(
        state.now(),
        state.config.access_log_retention_school_years,
    );
    let reads = state.store.purge_access_log(keep_from).await?;
    if reads > 0 {
        metrics::counter!("poortwachter_purged_rows_total", "table" => "access_log")
            .increment(reads);
        total += reads;
    }
    Ok(total)
}

/// Every `access_log_flush_secs`, write the reads counted for "Wie keek mee" (one batched
/// upsert), so introspection itself never waits for the database to record them.
fn spawn_read_flush_job(state: AppState) {
    let every = state.config.access_log_flush_secs;
    if every == 0 {
        return;
    }
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(std::time::Duration::from_secs(every));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(e) = state.reads.flush(&state.store).await {
                tracing::warn!(error = %e, "writing counted reads failed; kept for the next try");
            }
        }
    });
}

/// Every five seconds, let the metrics recorder drain what it holds: histogram samples pile
/// up in memory until someone renders `/metrics` otherwise, and a server nobody scrapes
/// would grow without bound (issue 10 §3).
fn spawn_metrics_upkeep(state: AppState) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(std::time::Duration::from_secs(5));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            state.metrics.run_upkeep();
        }
    });
}

/// Every `purge_interval_secs`, purge (times from the injected clock, so tests move them).
fn spawn_purge_job(state: AppState) {
    let every = state.config.purge_interval_secs;
    if every == 0 {
        return;
    }
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(std::time::Duration::from_secs(every));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match purge_expired_rows(&state).await {
                Ok(0) => {}
                Ok(rows) => tracing::debug!(rows, "purged expired rows"),
                Err(e) => tracing::warn!(error = %e, "purging expired rows failed"),
            }
        }
    });
}

/// Ctrl-C, or `SIGTERM` from an orchestrator: stop accepting and drain.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; stopping on Ctrl-C only");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
