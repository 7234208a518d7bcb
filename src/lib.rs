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
pub mod domain;
pub mod oauth;
pub mod onboarding;
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
    /// Failed logins per school and username, when Redis does not count them.
    pub login_failures: web::throttle::LocalCounts,
    /// Renders `/metrics`.
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
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

/// Open the database, make sure keys and secrets exist, and build the state.
pub async fn prepare_state(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<AppState> {
    let store = Store::connect(&config.database_url, config.database_max_connections).await?;
    let now = clock.now();
    if store.signing_keys().await?.is_empty() {
        // Instances starting together on an empty database must agree on one key: the first
        // to claim the slot wins, the others adopt its key.
        let (kid, pem) = crypto::keys::generate_rs256()?;
        let winner = store
            .server_secret("initial_signing_key", &format!("{kid}\n{pem}"))
            .await?;
        let (kid, pem) = winner
            .split_once('\n')
            .ok_or_else(|| anyhow::anyhow!("stored initial signing key is malformed"))?;
        store.insert_signing_key(kid, "RS256", pem, now).await?;
        tracing::info!(%kid, "generated a new ID-token signing key");
    }
    let keys = store
        .signing_keys()
        .await?
        .iter()
        .map(|(kid, _alg, pem)| SigningKey::from_pem(kid, pem))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let pairwise_secret = store
        .server_secret("pairwise_subject", &crypto::tokens::random_token())
        .await?
        .into_bytes();
    let redis = match &config.redis_url {
        Some(url) => Some(cache::redis_bus::RedisBus::new(
            url,
            &config.redis_namespace,
        )?),
        None => None,
    };
    let cache = cache::PolicyCache::new(redis);
    cache.poll_epoch(&store).await;
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    cache.spawn_background(store.clone(), Some(ready_tx));
    if config.redis_url.is_some() {
        // Give the subscriber a moment so the first changes are heard; a dead Redis is fine.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), ready_rx).await;
    }
    let verified_secrets = quick_cache::sync::Cache::new(10_000);
    Ok(AppState(Arc::new(App {
        config,
        store,
        clock,
        keys,
        pairwise_secret,
        cache,
        verified_secrets,
        login_failures: Default::default(),
        metrics: telemetry::install(),
    })))
}

/// All routes of the server.
pub fn build_router(state: AppState) -> Router {
    Router::new()
        .merge(oauth::router())
        .merge(web::router())
        .merge(api::router())
        .merge(telemetry::router())
        .route_layer(axum::middleware::from_fn(telemetry::track_requests))
        .with_state(state)
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
        use axum::serve::ListenerExt;
        // Small request/response exchanges on keep-alive connections: never wait for Nagle.
        let listener = self.listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "could not set TCP_NODELAY");
            }
        });
        axum::serve(listener, self.router)
            .with_graceful_shutdown(shutdown_signal())
            .await
    }
}

/// Ctrl-C or `SIGTERM` (what `docker stop`, systemd and Kubernetes send): stop accepting,
/// let the requests in flight finish, then return (docs/DRILLS.md, the SIGTERM drill).
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
