//! The wrong-secret flood benchmark of BENCHMARKS.md: a rightful client's `/token` latency
//! (client_credentials) idle, and while 32 connections flood `/token` with wrong secrets for
//! the same client. Starts `poortwachter serve --demo` on a fresh SQLite file.
//!
//!   cargo build --release --bin poortwachter --example token_flood
//!   ./target/release/examples/token_flood [--server target/release/poortwachter] [--requests 400]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CLIENT: (&str, &str) = ("beheer-12ab-demo", "beheer-12ab-demo-secret");

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

async fn rightful_latencies(http: &reqwest::Client, url: &str, n: usize) -> Vec<Duration> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        let response = http
            .post(url)
            .basic_auth(CLIENT.0, Some(CLIENT.1))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .expect("token request");
        assert_eq!(response.status(), 200, "the rightful client is refused");
        let _ = response.bytes().await;
        out.push(started.elapsed());
    }
    out.sort();
    out
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let server = PathBuf::from(arg("--server").unwrap_or("target/release/poortwachter".into()));
    let requests: usize = arg("--requests")
        .and_then(|n| n.parse().ok())
        .unwrap_or(400);
    let dir = tempfile::tempdir().expect("temp dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = Command::new(&server)
        .args(["serve", "--demo"])
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.path().join("bench.db").display()),
        )
        .env("POORTWACHTER_BIND", format!("127.0.0.1:{port}"))
        .env("POORTWACHTER_ISSUER", &base)
        // Flood and rightful client share 127.0.0.1 here; the per-address request rate would
        // otherwise refuse both. What is measured is the client-authentication limit.
        .env("POORTWACHTER_RATE_LIMIT_PER_MINUTE", "100000000")
        .env("RUST_LOG", "warn")
        .env_remove("REDIS_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the server");
    let http = reqwest::Client::new();
    for _ in 0..200 {
        if http.get(format!("{base}/healthz")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let url = format!("{base}/token");
    // Warm up: the first call verifies the secret with argon2, later ones are remembered.
    rightful_latencies(&http, &url, 20).await;
    let idle = rightful_latencies(&http, &url, requests).await;

    let stop = Arc::new(AtomicBool::new(false));
    let (limited, unauthorized, other) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let mut flooders = Vec::new();
    for worker in 0..32 {
        let (stop, limited, unauthorized, other) = (
            Arc::clone(&stop),
            Arc::clone(&limited),
            Arc::clone(&unauthorized),
            Arc::clone(&other),
        );
        let (http, url) = (reqwest::Client::new(), url.clone());
        flooders.push(tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let sent = http
                    .post(&url)
                    .basic_auth(CLIENT.0, Some(format!("wrong-{worker}-{i}")))
                    .form(&[("grant_type", "client_credentials")])
                    .send()
                    .await;
                let counter = match sent.map(|r| r.status().as_u16()) {
                    Ok(429) => &limited,
                    Ok(401) => &unauthorized,
                    _ => &other,
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let flooded = rightful_latencies(&http, &url, requests).await;
    stop.store(true, Ordering::Relaxed);
    for f in flooders {
        let _ = f.await;
    }
    let _ = child.kill();
    let _ = child.wait();

    let (idle_p50, idle_p99) = (percentile(&idle, 0.5), percentile(&idle, 0.99));
    let (flood_p50, flood_p99) = (percentile(&flooded, 0.5), percentile(&flooded, 0.99));
    println!("| rightful client_credentials /token | p50 | p99 |");
    println!("|---|---:|---:|");
    println!("| idle | {idle_p50:.2} ms | {idle_p99:.2} ms |");
    println!(
        "| during a 32-connection wrong-secret flood | {flood_p50:.2} ms | {flood_p99:.2} ms |"
    );
    println!(
        "\nflood answers: {} × 429, {} × 401, {} other; p99 ratio {:.2}×",
        limited.load(Ordering::Relaxed),
        unauthorized.load(Ordering::Relaxed),
        other.load(Ordering::Relaxed),
        flood_p99 / idle_p99
    );
}
