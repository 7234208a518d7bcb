//! Redis as the instances' message bus: the cache entries a change on one instance touched
//! are published, every other instance evicts them on receipt. Redis being down slows
//! propagation to the change-log poll (under a second) but never makes an answer wrong.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use redis::AsyncCommands;
use tokio::sync::Mutex;

const REDIS_TIMEOUT: Duration = Duration::from_millis(250);
const RECONNECT_DELAY: Duration = Duration::from_millis(500);

#[derive(Clone)]
pub struct RedisBus {
    client: redis::Client,
    channel: String,
    publisher: Arc<Mutex<Option<redis::aio::MultiplexedConnection>>>,
}

impl std::fmt::Debug for RedisBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBus")
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

impl RedisBus {
    /// `namespace` separates deployments (and tests) sharing one Redis.
    pub fn new(url: &str, namespace: &str) -> anyhow::Result<Self> {
        Ok(Self {
            client: redis::Client::open(url)?,
            channel: format!("{namespace}:policy-changed"),
            publisher: Arc::new(Mutex::new(None)),
        })
    }

    async fn connection(&self) -> Option<redis::aio::MultiplexedConnection> {
        let mut slot = self.publisher.lock().await;
        if slot.is_none() {
            match tokio::time::timeout(
                REDIS_TIMEOUT,
                self.client.get_multiplexed_async_connection(),
            )
            .await
            {
                Ok(Ok(conn)) => *slot = Some(conn),
                _ => {
                    metrics::gauge!("poortwachter_redis_up").set(0.0);
                    return None;
                }
            }
        }
        slot.clone()
    }

    async fn forget_connection(&self) {
        *self.publisher.lock().await = None;
        metrics::gauge!("poortwachter_redis_up").set(0.0);
    }

    /// Tell the other instances which entries to evict (`[[kind, key], …]` as JSON). Best
    /// effort: a lost message is covered by their reading of the change log.
    pub async fn publish_evictions(&self, keys: &[(String, String)]) {
        let Some(mut conn) = self.connection().await else {
            return;
        };
        let message = serde_json::to_string(keys).unwrap_or_default();
        let sent = tokio::time::timeout(
            REDIS_TIMEOUT,
            conn.publish::<_, _, i64>(&self.channel, message),
        )
        .await;
        if !matches!(sent, Ok(Ok(_))) {
            tracing::debug!("redis publish failed; other instances rely on the change log");
            self.forget_connection().await;
        }
    }

    /// Is Redis answering right now?
    pub async fn ping(&self) -> bool {
        let Some(mut conn) = self.connection().await else {
            return false;
        };
        let pong = tokio::time::timeout(
            REDIS_TIMEOUT,
            redis::cmd("PING").query_async::<String>(&mut conn),
        )
        .await;
        let up = matches!(pong, Ok(Ok(_)));
        if !up {
            self.forget_connection().await;
        }
        up
    }

    /// Count an event under `key` in a window of `window` seconds; returns the count, or
    /// `None` when Redis is unavailable.
    pub async fn incr_window(&self, key: &str, window: Duration) -> Option<i64> {
        let mut conn = self.connection().await?;
        let key = format!("{}:{key}", self.channel);
        let secs = i64::try_from(window.as_secs()).unwrap_or(60);
        let result = tokio::time::timeout(
            REDIS_TIMEOUT,
            redis::pipe()
                .atomic()
                .incr(&key, 1)
                .expire(&key, secs)
                .ignore()
                .query_async::<(i64,)>(&mut conn),
        )
        .await;
        match result {
            Ok(Ok((count,))) => Some(count),
            _ => {
                self.forget_connection().await;
                None
            }
        }
    }

    /// Count one attempt under `key` in a fixed window of `window` that starts with the first
    /// attempt (a stream of attempts does not prolong it); returns the count and the seconds
    /// until the window ends, or `None` when Redis is unavailable. One atomic MULTI, so
    /// parallel attempts each see their own count.
    pub async fn hit_fixed_window(&self, key: &str, window: Duration) -> Option<(i64, i64)> {
        let mut conn = self.connection().await?;
        let key = format!("{}:{key}", self.channel);
        let secs = i64::try_from(window.as_secs()).unwrap_or(60).max(1);
        let result = tokio::time::timeout(
            REDIS_TIMEOUT,
            redis::pipe()
                .atomic()
                .cmd("SET")
                .arg(&key)
                .arg(0)
                .arg("EX")
                .arg(secs)
                .arg("NX")
                .ignore()
                .incr(&key, 1)
                .ttl(&key)
                .query_async::<(i64, i64)>(&mut conn),
        )
        .await;
        match result {
            Ok(Ok((count, ttl))) => Some((count, ttl.max(1))),
            _ => {
                self.forget_connection().await;
                None
            }
        }
    }

    /// Take back one attempt (one that turned out to be rightful).
    pub async fn decr(&self, key: &str) {
        if let Some(mut conn) = self.connection().await {
            let key = format!("{}:{key}", self.channel);
            // Only while the window lives: a DECR on a gone key would create one without expiry.
            let script = redis::Script::new(
                "if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('DECR', KEYS[1]) else return 0 end",
            );
            let _ = tokio::time::timeout(
                REDIS_TIMEOUT,
                script.key(key).invoke_async::<i64>(&mut conn),
            )
            .await;
        }
    }

    /// The current count under `key`, or `None` when Redis is unavailable.
    pub async fn peek(&self, key: &str) -> Option<i64> {
        let mut conn = self.connection().await?;
        let key = format!("{}:{key}", self.channel);
        match tokio::time::timeout(REDIS_TIMEOUT, conn.get::<_, Option<i64>>(key)).await {
            Ok(Ok(count)) => Some(count.unwrap_or(0)),
            _ => {
                self.forget_connection().await;
                None
            }
        }
    }

    pub async fn reset(&self, key: &str) {
        if let Some(mut conn) = self.connection().await {
            let key = format!("{}:{key}", self.channel);
            let _ = tokio::time::timeout(REDIS_TIMEOUT, conn.del::<_, i64>(key)).await;
        }
    }

    /// Subscribe and call `on_message` with the entries of every message, reconnecting
    /// forever. A (re)connection, or a message that cannot be read, comes as `None`: messages
    /// may have been missed, and the receiver empties its cache.
    pub fn spawn_subscriber<F>(
        &self,
        on_message: F,
        ready: Option<tokio::sync::oneshot::Sender<()>>,
    ) where
        F: Fn(Option<Vec<(String, String)>>) + Send + Sync + 'static,
    {
        let client = self.client.clone();
        let channel = self.channel.clone();
        tokio::spawn(async move {
            let mut ready = ready;
            loop {
                let connected =
                    tokio::time::timeout(REDIS_TIMEOUT, client.get_async_pubsub()).await;
                if let Ok(Ok(mut pubsub)) = connected {
                    if pubsub.subscribe(&channel).await.is_ok() {
                        metrics::gauge!("poortwachter_redis_up").set(1.0);
                        on_message(None);
                        if let Some(ready) = ready.take() {
                            let _ = ready.send(());
                        }
                        let mut messages = pubsub.on_message();
                        while let Some(message) = messages.next().await {
                            let keys = message
                                .get_payload::<String>()
                                .ok()
                                .and_then(|text| serde_json::from_str(&text).ok());
                            on_message(keys);
                        }
                        tracing::warn!("redis subscription lost; reconnecting");
                    }
                }
                metrics::gauge!("poortwachter_redis_up").set(0.0);
                tokio::time::sleep(RECONNECT_DELAY).await;
            }
        });
    }
}
