//! Configuration: built-in defaults, overridden by an optional TOML file, overridden by
//! environment variables (`POORTWACHTER_*`, plus the conventional `DATABASE_URL`).

use std::fmt;
use std::path::Path;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// Everything an operator can set. See the configuration reference in README.md.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Public base URL; the `iss` of every token and the prefix of every endpoint.
    pub issuer: String,
    /// Address to listen on.
    pub bind: String,
    /// `sqlite://file.db` (embedded default) or `postgres://user@host/db`.
    pub database_url: String,
    /// Optional Redis for multi-instance deployments (used by the live-policy cache).
    pub redis_url: Option<String>,
    /// Prefix of Redis keys and channels, to share one Redis between deployments.
    pub redis_namespace: String,
    /// Access-token lifetime in seconds (NL GOV: at most an hour).
    pub access_token_ttl_secs: i64,
    /// Refresh-token idle lifetime in seconds; never beyond the grant's end.
    pub refresh_token_idle_secs: i64,
    /// ID-token lifetime in seconds, capped at 300.
    pub id_token_ttl_secs: i64,
    /// How long a consent (grant) lasts before it must be given again, in days.
    pub grant_ttl_days: i64,
    /// How long a browser login lasts, in seconds.
    pub session_ttl_secs: i64,
    /// Maximum database connections.
    pub database_max_connections: u32,
    /// After a client secret is rotated, the old one keeps working this many seconds.
    pub secret_rotation_grace_secs: i64,
    /// How long an activation code from the school's letter stays valid, in days.
    pub activation_code_ttl_days: i64,
    /// Seconds a client has to send a complete request head; also how long an idle
    /// keep-alive connection stays open.
    pub header_read_timeout_secs: u64,
    /// Seconds a request (body included) may take before it is answered 408.
    pub request_timeout_secs: u64,
    /// Concurrent connections; further ones are closed at once. Always kept below the
    /// process's file-descriptor limit.
    pub max_connections: usize,
    /// Seconds between runs of the job that deletes expired rows; 0 turns it off.
    pub purge_interval_secs: u64,
    /// Take the client address from the last `X-Forwarded-For` entry (set this only behind
    /// a reverse proxy that writes that header, such as `deploy/nginx.conf`).
    pub trust_forwarded_for: bool,
    /// Requests per minute and client address to `/token`, `/revoke` and the admin API
    /// (`/introspect` gets ten times as many: resource servers call it on every request).
    pub rate_limit_per_minute: i64,
    /// A separate listen address (e.g. `0.0.0.0:9100`, not published) where `/metrics` is
    /// served without authentication.
    pub metrics_bind: Option<String>,
    /// A bearer token that opens `/metrics` on the main listener. With neither this nor
    /// `metrics_bind` set, `/metrics` is not served at all.
    pub metrics_token: Option<String>,
    /// "Wie keek mee": school years kept besides the current one (1 August, Dutch time);
    /// the default 1 keeps this school year and the previous one.
    pub access_log_retention_school_years: u32,
    /// Seconds between writes of the reads counted in memory for "Wie keek mee"; 0 writes
    /// them only at shutdown (and when a test flushes). A write costs per grant × scope read
    /// since the last one (BENCHMARKS.md), so a longer interval divides it; the page counts
    /// per hour, and half a minute's lag does not show there.
    pub access_log_flush_secs: u64,
    /// At start, `serve` fills the policy cache with the facts of the live tokens in bulk
    /// (`cache::warm`); `/readyz` says "not ready" while it runs, for at most this many
    /// seconds. 0: no fill at start (the cache fills on first use).
    pub cache_warm_secs: u64,
    /// Every client must push its authorization requests first (RFC 9126 §5,
    /// `require_pushed_authorization_requests`); per partner it can be required on its own.
    pub require_pushed_requests: bool,
    /// 32 random bytes, base64 (`openssl rand -base64 32`): seals the signing keys and server
    /// secrets in the database with AES-256-GCM (`crypto::sealing`). Plain values found at
    /// start are sealed then; without it they stay plain (a warning at start).
    pub secrets_key: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            issuer: "http://127.0.0.1:8080".into(),
            bind: "127.0.0.1:8080".into(),
            database_url: "sqlite://poortwachter.db".into(),
            redis_url: None,
            redis_namespace: "poortwachter".into(),
            access_token_ttl_secs: 15 * 60,
            refresh_token_idle_secs: 30 * 24 * 3600,
            id_token_ttl_secs: 300,
            grant_ttl_days: 365,
            session_ttl_secs: 8 * 3600,
            database_max_connections: 10,
            secret_rotation_grace_secs: 24 * 3600,
            activation_code_ttl_days: 30,
            header_read_timeout_secs: 10,
            request_timeout_secs: 30,
            max_connections: 20_000,
            purge_interval_secs: 60,
            trust_forwarded_for: false,
            rate_limit_per_minute: 600,
            metrics_bind: None,
            metrics_token: None,
            access_log_retention_school_years: 1,
            access_log_flush_secs: 30,
            cache_warm_secs: 30,
            require_pushed_requests: false,
            secrets_key: None,
        }
    }
}

impl Config {
    /// Defaults < `file` (if given) < environment.
    pub fn load(file: Option<&Path>) -> Result<Self, Box<figment::Error>> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        let mut config: Config = figment
            .merge(Env::prefixed("POORTWACHTER_"))
            .merge(Env::raw().only(&["DATABASE_URL", "REDIS_URL"]))
            .extract()
            .map_err(Box::new)?;
        config.normalise();
        Ok(config)
    }

    /// Keep values inside the limits the profiles require, whatever was configured.
    pub fn normalise(&mut self) {
        self.issuer = self.issuer.trim_end_matches('/').to_string();
        // NL GOV OIDC profile: ID tokens live a few minutes at most.
        self.id_token_ttl_secs = self.id_token_ttl_secs.clamp(30, 300);
        self.access_token_ttl_secs = self.access_token_ttl_secs.clamp(30, 3600);
        self.refresh_token_idle_secs = self.refresh_token_idle_secs.max(60);
        self.session_ttl_secs = self.session_ttl_secs.max(60);
        self.grant_ttl_days = self.grant_ttl_days.max(1);
        self.database_max_connections = self.database_max_connections.max(1);
        self.secret_rotation_grace_secs = self.secret_rotation_grace_secs.clamp(0, 30 * 24 * 3600);
        self.activation_code_ttl_days = self.activation_code_ttl_days.max(1);
        self.header_read_timeout_secs = self.header_read_timeout_secs.clamp(1, 300);
        self.request_timeout_secs = self.request_timeout_secs.clamp(1, 600);
        self.max_connections = self.max_connections.max(16);
        self.rate_limit_per_minute = self.rate_limit_per_minute.max(1);
    }

    /// Cookies get `Secure` when the issuer is served over https.
    pub fn secure_cookies(&self) -> bool {
        self.issuer.starts_with("https://")
    }
}

/// Hide credentials in a connection URL (`postgres://user:secret@host` → `postgres://user:***@host`).
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("issuer", &self.issuer)
            .field("bind", &self.bind)
            .field("database_url", &redact_url(&self.database_url))
            .field("redis_url", &self.redis_url.as_deref().map(redact_url))
            .field("access_token_ttl_secs", &self.access_token_ttl_secs)
            .field("refresh_token_idle_secs", &self.refresh_token_idle_secs)
            .field("id_token_ttl_secs", &self.id_token_ttl_secs)
            .field("grant_ttl_days", &self.grant_ttl_days)
            .field("session_ttl_secs", &self.session_ttl_secs)
            .field(
                "secret_rotation_grace_secs",
                &self.secret_rotation_grace_secs,
            )
            .field("activation_code_ttl_days", &self.activation_code_ttl_days)
            .field("header_read_timeout_secs", &self.header_read_timeout_secs)
            .field("request_timeout_secs", &self.request_timeout_secs)
            .field("max_connections", &self.max_connections)
            .field("purge_interval_secs", &self.purge_interval_secs)
            .field("trust_forwarded_for", &self.trust_forwarded_for)
            .field("rate_limit_per_minute", &self.rate_limit_per_minute)
            .field("metrics_bind", &self.metrics_bind)
            .field("metrics_token", &self.metrics_token.as_ref().map(|_| "***"))
            .field(
                "access_log_retention_school_years",
                &self.access_log_retention_school_years,
            )
            .field("access_log_flush_secs", &self.access_log_flush_secs)
            .field("cache_warm_secs", &self.cache_warm_secs)
            .field("require_pushed_requests", &self.require_pushed_requests)
            .field("secrets_key", &self.secrets_key.as_ref().map(|_| "***"))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_overrides_defaults_and_limits_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("poortwachter.toml");
        std::fs::write(
            &file,
            "issuer = \"https://login.example.nl/\"\nid_token_ttl_secs = 3600\naccess_token_ttl_secs = 600\n",
        )
        .unwrap();
        let config = Config::load(Some(&file)).unwrap();
        assert_eq!(
            config.issuer, "https://login.example.nl",
            "trailing slash dropped"
        );
        assert!(config.secure_cookies());
        assert_eq!(
            config.id_token_ttl_secs, 300,
            "ID tokens never live longer than 5 minutes"
        );
        assert_eq!(config.access_token_ttl_secs, 600);
        assert_eq!(
            config.refresh_token_idle_secs,
            30 * 24 * 3600,
            "default kept"
        );
    }

    #[test]
    fn debug_output_hides_database_passwords() {
        let config = Config {
            database_url: "postgres://poortwachter:geheim@db/poortwachter".into(),
            ..Config::default()
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("geheim"), "{shown}");
        assert!(shown.contains("***"));
    }

    #[test]
    fn activation_codes_live_thirty_days_unless_configured() {
        assert_eq!(Config::default().activation_code_ttl_days, 30);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("poortwachter.toml");
        std::fs::write(&file, "activation_code_ttl_days = 14\n").unwrap();
        assert_eq!(
            Config::load(Some(&file)).unwrap().activation_code_ttl_days,
            14
        );
        let mut config = Config {
            activation_code_ttl_days: 0,
            ..Config::default()
        };
        config.normalise();
        assert_eq!(
            config.activation_code_ttl_days, 1,
            "a code is never born expired"
        );
    }
}
