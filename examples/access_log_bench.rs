//! What "Wie keek mee" costs (BENCHMARKS.md): the in-memory count on every active
//! introspection, and one flush of the worst case the introspection benchmark produces (every
//! one of 10,000 grants read for three data scopes since the last flush).
//!
//! `cargo build --release --example access_log_bench && ./target/release/examples/access_log_bench`

use std::time::Instant;

use poortwachter::clock::{Clock, SystemClock};
use poortwachter::domain::scope::Scope;
use poortwachter::storage::access_log::ReadRecorder;

const GRANTS: usize = 10_000;
const SCOPES: [Scope; 3] = [Scope::Naam, Scope::Rooster, Scope::Huiswerk];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut config = poortwachter::config::Config {
        database_url: format!("sqlite://{}", dir.path().join("bench.db").display()),
        database_max_connections: 5,
        ..Default::default()
    };
    config.normalise();
    let app = poortwachter::prepare_state(config, std::sync::Arc::new(SystemClock)).await?;
    poortwachter::demo::load_if_empty(&app).await?;
    let store = app.store.clone();
    let (student,): (String,) =
        sqlx::query_as("SELECT id FROM accounts WHERE role = 'student' LIMIT 1")
            .fetch_one(store.pool())
            .await?;
    // Grants only need to exist (the log refers to them); the live policy is not involved.
    let ids: Vec<String> = (0..GRANTS).map(|i| format!("bench-grant-{i}")).collect();
    let mut tx = store.pool().begin().await?;
    for id in &ids {
        sqlx::query(
            "INSERT INTO grants (id, student_id, client_id, scopes, given_by, given_by_role, \
             granted_at, expires_at, revoked_at) \
             VALUES ($1, $2, 'studyspace-demo', 'naam rooster huiswerk', $2, 'student', 0, 0, 0)",
        )
        .bind(id)
        .bind(&student)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;

    let now = SystemClock.now();
    let recorder = ReadRecorder::default();
    let rounds = 100;
    let started = Instant::now();
    for _ in 0..rounds {
        for id in &ids {
            recorder.record(id, SCOPES, now);
        }
    }
    let per_call = started.elapsed() / (rounds * GRANTS) as u32;
    println!("record(), three scopes: {per_call:?} per introspection");
    for flush in [
        "first of the hour (inserts)",
        "next (updates)",
        "next (updates)",
    ] {
        for id in &ids {
            recorder.record(id, SCOPES, now);
        }
        let started = Instant::now();
        let buckets = recorder.flush(&store).await?;
        println!(
            "flush, {flush}: {buckets} buckets in {:?}",
            started.elapsed()
        );
    }
    Ok(())
}
