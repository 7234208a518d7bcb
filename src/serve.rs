//! The HTTP/1.1 listener with bounded resources: a header-read timeout that also ends idle
//! keep-alive connections, a cap on concurrent connections below the file-descriptor limit
//! where a new connection at the cap displaces the oldest one that never sent a request, an
//! accept loop that survives running out of descriptors, and a graceful drain on shutdown.
//!
//! `axum::serve` has none of these bounds: connections never time out, so ~20,000 half-open
//! sockets used up the descriptors and `/healthz` stopped answering.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, Semaphore};
use tower::ServiceExt;

/// Descriptors kept free for the database pool, Redis, log files and the listener itself.
const FD_RESERVE: u64 = 512;
/// How long in-flight requests may take to finish once shutdown has begun.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a connection at the cap waits for the room its eviction makes.
const EVICTION_WAIT: Duration = Duration::from_millis(200);
/// Request line plus headers may not exceed this (hyper's minimum is 8 KiB); a longer
/// `/authorize` query is answered 431 before any handler runs.
const MAX_HEADER_BUFFER: usize = 64 * 1024;

/// The bounds the listener enforces (from [`crate::config::Config`]).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Time a client has to send a complete request head. hyper starts this timer whenever
    /// it waits for a head, so it is also the idle keep-alive timeout.
    pub header_read_timeout: Duration,
    /// At this many connections a new one displaces the oldest connection that has not sent
    /// a request yet; if every connection is busy, the new one is closed at once.
    pub max_connections: usize,
}

/// Connections that have not sent a single request yet: what a flood of idle sockets is made
/// of. At the cap the oldest of them is closed to make room, so a flood can delay a real
/// client by at most one eviction instead of locking it out until the header-read timeout
/// (the probe's 20,000 idle sockets stopped `/healthz`). A real client sends its request head
/// immediately after connecting, so it leaves this set within a round trip.
#[derive(Default)]
struct Unproven {
    waiting: Mutex<(u64, BTreeMap<u64, oneshot::Sender<()>>)>,
}

impl Unproven {
    /// Register a new connection; the receiver fires when it is evicted.
    fn register(&self) -> (u64, oneshot::Receiver<()>) {
        let (tx, rx) = oneshot::channel();
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        waiting.0 += 1;
        let id = waiting.0;
        waiting.1.insert(id, tx);
        (id, rx)
    }

    /// The connection sent a request (or ended): it is no longer a candidate for eviction.
    fn remove(&self, id: u64) {
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        waiting.1.remove(&id);
    }

    /// Close the longest-waiting connection that never sent a request; false if there is none.
    fn evict_oldest(&self) -> bool {
        let oldest = {
            let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
            waiting.1.pop_first()
        };
        match oldest {
            Some((_, tx)) => {
                // The connection may have ended meanwhile; its permit is then free anyway.
                let _ = tx.send(());
                true
            }
            None => false,
        }
    }
}

/// Raise the soft file-descriptor limit to the hard one, and return the soft limit in force.
fn raise_fd_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read or write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return None;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    #[allow(clippy::unnecessary_cast)] // rlim_t is u64 on Linux, not on every platform
    Some(limit.rlim_cur as u64)
}

/// The connection cap actually used: the configured one, but always below the descriptor
/// limit, so `accept` never fails with EMFILE while connections are merely idle.
pub fn effective_max_connections(configured: usize) -> usize {
    match raise_fd_limit() {
        Some(fds) => {
            let room = usize::try_from(fds.saturating_sub(FD_RESERVE)).unwrap_or(usize::MAX);
            configured.min(room.max(16))
        }
        None => configured,
    }
}

/// Serve `router` on `listener` until `shutdown` resolves, then drain.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let max_connections = effective_max_connections(limits.max_connections);
    tracing::info!(max_connections, "listening");
    let permits = Arc::new(Semaphore::new(max_connections));
    let unproven = Arc::new(Unproven::default());
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true)
        .max_buf_size(MAX_HEADER_BUFFER);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // EMFILE/ENFILE or a connection reset before accept: keep serving the
                // connections we have, and try again shortly.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let permit = match Arc::clone(&permits).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let room = if unproven.evict_oldest() {
                    metrics::counter!("poortwachter_connections_evicted_total").increment(1);
                    tokio::time::timeout(EVICTION_WAIT, Arc::clone(&permits).acquire_owned())
                        .await
                        .ok()
                        .and_then(Result::ok)
                } else {
                    None
                };
                match room {
                    Some(permit) => permit,
                    None => {
                        // Every connection is busy with a request: close this one now (the
                        // client sees a reset and may retry) rather than hold a descriptor
                        // for a connection we will not serve.
                        metrics::counter!("poortwachter_connections_refused_total").increment(1);
                        drop(tcp);
                        continue;
                    }
                }
            }
        };
        // Small request/response exchanges on keep-alive connections: never wait for Nagle.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        let router = router.clone();
        let (id, evicted) = unproven.register();
        let proven = Arc::new(AtomicBool::new(false));
        let on_request = (Arc::clone(&unproven), Arc::clone(&proven));
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            if !on_request.1.swap(true, Ordering::Relaxed) {
                on_request.0.remove(id);
            }
            // Handlers that limit per client IP read it through axum's `ConnectInfo`.
            request
                .extensions_mut()
                .insert(ConnectInfo::<SocketAddr>(peer));
            let router = router.clone();
            async move {
                let response = router
                    .oneshot(request.map(axum::body::Body::new))
                    .await
                    .unwrap_or_else(|never: Infallible| match never {});
                Ok::<_, Infallible>(response)
            }
        });
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(tcp), service));
        let unproven = Arc::clone(&unproven);
        tokio::spawn(async move {
            tokio::select! {
                ended = connection => {
                    if let Err(e) = ended {
                        // Header-read timeouts and resets end up here: normal for idle clients.
                        tracing::debug!(error = %e, "connection ended");
                    }
                }
                // Dropping the connection closes its socket. (A dropped sender, after the
                // first request, does not match and leaves the connection alone.)
                Ok(()) = evicted => tracing::debug!("idle connection evicted at the cap"),
            }
            unproven.remove(id);
            drop(permit);
        });
    }
    drop(listener);
    // In-flight requests finish, idle connections close; a stuck client cannot hold the
    // shutdown forever.
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the drain timeout");
    }
    Ok(())
}

/// The client's address: the TCP peer, or behind a trusted reverse proxy the last
/// `X-Forwarded-For` entry (the one our proxy added; earlier ones are the client's claims).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub Option<std::net::IpAddr>);

impl ClientIp {
    pub fn of(parts: &axum::http::request::Parts, trust_forwarded_for: bool) -> ClientIp {
        if trust_forwarded_for {
            let forwarded = parts
                .headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|ip| ip.trim().parse().ok())
                .next_back();
            if forwarded.is_some() {
                return ClientIp(forwarded);
            }
        }
        ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(peer)| peer.ip()),
        )
    }

    /// The subject under which limits per address count (one bucket for "unknown").
    pub fn subject(self) -> String {
        self.0.map(|ip| ip.to_string()).unwrap_or_default()
    }
}

impl axum::extract::FromRequestParts<crate::AppState> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &crate::AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientIp::of(parts, state.config.trust_forwarded_for))
    }
}

/// Middleware: per-address request limits on the back-channel endpoints and the admin API,
/// answered `429` with `Retry-After` (RFC 6585 §4), counted through Redis when configured.
pub async fn rate_limit(
    axum::extract::State(state): axum::extract::State<crate::AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let path = request.uri().path();
    let per_minute = state.config.rate_limit_per_minute;
    let limit = match path {
        "/token" => Some(("rate-token", per_minute)),
        "/revoke" => Some(("rate-revoke", per_minute)),
        "/par" => Some(("rate-par", per_minute)),
        "/introspect" => Some(("rate-introspect", per_minute.saturating_mul(10))),
        p if p.starts_with("/api/") => Some(("rate-admin", per_minute)),
        _ => None,
    };
    let Some((name, max)) = limit else {
        return next.run(request).await;
    };
    let (parts, body) = request.into_parts();
    let ip = ClientIp::of(&parts, state.config.trust_forwarded_for);
    let limit = crate::cache::limiter::Limit {
        name,
        max,
        window: Duration::from_secs(60),
    };
    let verdict = crate::cache::limiter::hit(&state, &limit, &ip.subject()).await;
    if verdict.is_allowed() {
        return next
            .run(axum::extract::Request::from_parts(parts, body))
            .await;
    }
    let secs = verdict.retry_after_secs();
    let message = format!("too many requests; try again in {secs} seconds");
    let body = if name == "rate-admin" {
        serde_json::json!({ "error": "too_many_requests", "message": message })
    } else {
        serde_json::json!({ "error": "too_many_requests", "error_description": message })
    };
    (
        axum::http::StatusCode::TOO_MANY_REQUESTS,
        [
            (axum::http::header::RETRY_AFTER, secs.to_string()),
            (axum::http::header::CACHE_CONTROL, "no-store".to_string()),
        ],
        axum::Json(body),
    )
        .into_response()
}
