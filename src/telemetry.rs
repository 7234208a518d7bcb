//! Prometheus metrics: requests by endpoint and outcome, latency histograms, introspection
//! decisions by reason, policy-cache hits and misses, Redis connectivity.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Install the process-wide recorder once (tests start many servers in one process).
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new().set_buckets_for_metric(
                Matcher::Full("poortwachter_http_request_duration_seconds".into()),
                &[
                    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                ],
            );
            let recorder = match builder {
                Ok(builder) => builder.build_recorder(),
                Err(_) => PrometheusBuilder::new().build_recorder(),
            };
            let handle = recorder.handle();
            // Fails only if another recorder is installed already; then we render an empty page.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Middleware: count and time every request by route template and status class.
pub async fn track_requests(request: Request, next: Next) -> Response {
    let endpoint = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let started = Instant::now();
    let response = next.run(request).await;
    let outcome = match response.status().as_u16() {
        200..=399 => "success",
        400..=499 => "client_error",
        _ => "server_error",
    };
    metrics::counter!("poortwachter_http_requests_total", "endpoint" => endpoint.clone(), "outcome" => outcome)
        .increment(1);
    metrics::histogram!("poortwachter_http_request_duration_seconds", "endpoint" => endpoint)
        .record(started.elapsed().as_secs_f64());
    response
}

/// `GET /metrics` on the main listener: only with the configured bearer token
/// (`metrics_token`); without one it is not served there at all (404), so the public port
/// never shows it.
pub fn router() -> axum::Router<crate::AppState> {
    axum::Router::new().route("/metrics", axum::routing::get(render_with_token))
}

/// `GET /metrics` for the internal listener (`metrics_bind`).
pub fn internal_router(state: crate::AppState) -> axum::Router {
    axum::Router::new()
        .route("/metrics", axum::routing::get(render))
        .with_state(state)
}

async fn render_with_token(
    axum::extract::State(state): axum::extract::State<crate::AppState>,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    use axum::http::{header, StatusCode};
    use axum::response::IntoResponse;
    let Some(expected) = state.config.metrics_token.as_deref() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let presented = crate::oauth::client_auth::credentials(&headers, "Bearer").unwrap_or_default();
    if !crate::crypto::tokens::constant_time_eq(presented, expected) {
        return (
            StatusCode::UNAUTHORIZED,
            [(
                header::WWW_AUTHENTICATE,
                r#"Bearer realm="poortwachter-metrics""#,
            )],
        )
            .into_response();
    }
    render(axum::extract::State(state)).await.into_response()
}

async fn render(axum::extract::State(state): axum::extract::State<crate::AppState>) -> String {
    if let Some(redis) = state.cache.redis() {
        let up = redis.ping().await;
        metrics::gauge!("poortwachter_redis_up").set(if up { 1.0 } else { 0.0 });
    }
    let cache = &state.cache;
    let (hits, misses) = (
        cache.hits.load(std::sync::atomic::Ordering::Relaxed),
        cache.misses.load(std::sync::atomic::Ordering::Relaxed),
    );
    metrics::counter!("poortwachter_policy_cache_total", "result" => "hit").absolute(hits);
    metrics::counter!("poortwachter_policy_cache_total", "result" => "miss").absolute(misses);
    state.metrics.render()
}
