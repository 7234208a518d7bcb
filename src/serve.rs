//! The HTTP/1.1 listener with bounded resources: a header-read timeout that also ends idle
//! keep-alive connections, a cap on concurrent connections below the file-descriptor limit,
//! an accept loop that survives running out of descriptors, and a graceful drain on shutdown.
//!
//! `axum::serve` has none of these bounds: connections never time out, so ~20,000 half-open
//! sockets used up the descriptors and `/healthz` stopped answering.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// Descriptors kept free for the database pool, Redis, log files and the listener itself.
const FD_RESERVE: u64 = 512;
/// How long in-flight requests may take to finish once shutdown has begun.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Request line plus headers may not exceed this (hyper's minimum is 8 KiB); a longer
/// `/authorize` query is answered 431 before any handler runs.
const MAX_HEADER_BUFFER: usize = 64 * 1024;

/// The bounds the listener enforces (from [`crate::config::Config`]).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Time a client has to send a complete request head. hyper starts this timer whenever
    /// it waits for a head, so it is also the idle keep-alive timeout.
    pub header_read_timeout: Duration,
    /// Connections beyond this are closed at once instead of queueing with an open socket.
    pub max_connections: usize,
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
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            // At the cap: close now (the client sees a reset and may retry) rather than keep
            // a descriptor open for a connection we will not serve.
            metrics::counter!("poortwachter_connections_refused_total").increment(1);
            drop(tcp);
            continue;
        };
        // Small request/response exchanges on keep-alive connections: never wait for Nagle.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
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
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                // Header-read timeouts and resets end up here: normal for idle clients.
                tracing::debug!(error = %e, "connection ended");
            }
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
