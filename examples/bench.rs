//! Introspection load benchmark (BENCHMARKS.md). Run it through `bench/run.sh`, which builds
//! the release binary and installs `wrk` and the `oidc-provider` reference first.
//!
//! It seeds a realistic database (students, partners, grants, schools with closures) through
//! the library, starts the real `poortwachter` release binary on it, drives `POST /introspect`
//! with `wrk` at a fixed number of connections, repeats that while real browser logins
//! (argon2id) run, and measures the npm `oidc-provider` the same way for a ratio.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use clap::Parser;
use poortwachter::clock::{Clock, SystemClock};
use poortwachter::crypto::tokens::{hash_token, random_token, sha256_b64url};
use poortwachter::storage::Store;

#[derive(Parser, Debug)]
struct Args {
    /// `sqlite` (embedded default) or `postgres` (with Redis).
    #[arg(long, default_value = "sqlite")]
    backend: String,
    #[arg(long, default_value_t = 100_000)]
    students: usize,
    #[arg(long, default_value_t = 10_000)]
    grants: usize,
    #[arg(long, default_value_t = 50)]
    partners: usize,
    #[arg(long, default_value_t = 5)]
    schools: usize,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 20)]
    duration: u64,
    #[arg(long, default_value_t = 64)]
    connections: u32,
    #[arg(long, default_value_t = 2)]
    threads: u32,
    /// Concurrent browser-login workers during the second measurement.
    #[arg(long, default_value_t = 4)]
    login_workers: usize,
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    postgres_admin_url: String,
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    /// Also measure oidc-provider (bench/oidc-provider, after `npm ci`).
    #[arg(long)]
    compare_oidc_provider: bool,
    /// Pin the server to CPU 0 and wrk to CPU 1 (`taskset`): the server then has one core of
    /// its own, and its throughput no longer depends on how the scheduler shares the cores
    /// with the load generator (the main source of run-to-run noise on a small machine).
    #[arg(long)]
    pin: bool,
    /// Seconds of load before the measurements, to fill the caches.
    #[arg(long, default_value_t = 5)]
    warmup: u64,
    /// Policy changes per second written during an extra measurement (0: none). Several
    /// kinds, straight into the database as another program would (school links, accounts,
    /// enrollments, grants, closures), each touching a fact the load reads while leaving every
    /// answer the same, so "not active" must stay 0.
    /// A comma-separated list (`--churn 10,100`) measures each rate in turn.
    #[arg(long, value_delimiter = ',')]
    churn: Vec<u32>,
    /// Also measure the token endpoint: refresh-token rotation (`grant_type=refresh_token`,
    /// every token single use, each answer carrying the next; an ID token signed per answer),
    /// with `bench/refresh.lua`, and oidc-provider's with `--compare-oidc-provider`.
    #[arg(long)]
    token_endpoint: bool,
    /// Where to write the markdown results.
    #[arg(long, default_value = "target/bench/results.md")]
    out: PathBuf,
}

struct Measurement {
    label: String,
    requests_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    not_active: u64,
    extra: String,
    /// CPU time (user + system) the server process used per answered request, in µs.
    server_cpu_us: f64,
}

/// Set once from `--pin`.
static PIN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// CPU time (user + system) used so far by process `pid`, in µs, from `/proc/<pid>/stat`.
fn cpu_micros(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return f64::NAN;
    };
    // After the command name in parentheses: state, ppid, … utime (14th field), stime (15th).
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return f64::NAN;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    let per_sec = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks(11) + ticks(12)) / per_sec * 1e6
}

/// Run `measure` and attach the server's CPU time per answered request to its result.
fn with_server_cpu(
    pid: u32,
    seconds: u64,
    measure: impl FnOnce() -> anyhow::Result<Measurement>,
) -> anyhow::Result<Measurement> {
    let before = cpu_micros(pid);
    let mut m = measure()?;
    let used = cpu_micros(pid) - before;
    m.server_cpu_us = used / (m.requests_per_sec * seconds as f64);
    Ok(m)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    PIN.store(args.pin, std::sync::atomic::Ordering::Relaxed);
    let work = tempfile::tempdir()?;
    let binary = PathBuf::from("target/release/poortwachter");
    anyhow::ensure!(
        binary.exists(),
        "build the release binary first: cargo build --release"
    );

    let (database_url, redis_url) = match args.backend.as_str() {
        "sqlite" => (
            format!("sqlite://{}", work.path().join("bench.db").display()),
            None,
        ),
        "postgres" => (
            create_postgres_database(&args.postgres_admin_url).await?,
            Some(args.redis_url.clone()),
        ),
        other => anyhow::bail!("unknown backend {other}"),
    };
    let now = SystemClock.now();
    let mut config = poortwachter::config::Config {
        database_url: database_url.clone(),
        database_max_connections: 5,
        ..Default::default()
    };
    config.normalise();
    let app = poortwachter::prepare_state(config, std::sync::Arc::new(SystemClock)).await?;
    poortwachter::demo::load_if_empty(&app).await?;
    let store = app.store.clone();
    let started = Instant::now();
    let tokens = seed(&store, &args, now).await?;
    let refresh_pools = if args.token_endpoint {
        Some(seed_refresh_tokens(&store, &args, now).await?)
    } else {
        None
    };
    let seeding = started.elapsed();
    // Fresh statistics, so the measurement does not coincide with autovacuum's first pass
    // over the bulk-loaded tables.
    let analyze = if args.backend == "postgres" {
        "VACUUM ANALYZE"
    } else {
        "ANALYZE"
    };
    sqlx::query(analyze).execute(store.pool()).await?;
    store.close().await;
    let tokens_file = work.path().join("tokens.txt");
    std::fs::write(&tokens_file, tokens.join("\n") + "\n")?;
    eprintln!(
        "seeded {} students, {} grants in {:.1?}",
        args.students,
        tokens.len(),
        seeding
    );

    let port = free_port()?;
    let mut server = start_server(
        &binary,
        port,
        &database_url,
        redis_url.as_deref(),
        work.path(),
    )?;
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&format!("{base}/readyz")).await?;
    let auth = STANDARD.encode("schooldata-api-demo:schooldata-api-demo-secret");
    let introspect = format!("{base}/introspect");

    let mut results = Vec::new();
    run_wrk(&args, &introspect, &auth, &tokens_file, args.warmup)?; // caches, connections
    let pid = server.id();
    let mut plain = with_server_cpu(pid, args.duration, || {
        run_wrk(&args, &introspect, &auth, &tokens_file, args.duration)
    })?;
    plain.label = format!("Poortwachter, {}", backend_label(&args.backend));
    results.push(plain);

    for &rate in args.churn.iter().filter(|&&rate| rate > 0) {
        let writer = Store::connect(&database_url, 2).await?;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let written = Arc::new(AtomicU64::new(0));
        let churn = tokio::spawn(write_churn(
            writer,
            rate,
            args.students,
            args.grants,
            (args.schools, args.partners),
            (Arc::clone(&stop), Arc::clone(&written)),
        ));
        let (introspect, auth, tokens_file) =
            (introspect.clone(), auth.clone(), tokens_file.clone());
        let (args_c, seconds) = ((args.connections, args.threads), args.duration);
        let mut churned = tokio::task::spawn_blocking(move || {
            with_server_cpu(pid, seconds, || {
                run_wrk_with(args_c, &introspect, &auth, &tokens_file, seconds)
            })
        })
        .await??;
        stop.store(true, Ordering::Relaxed);
        churn.await??;
        churned.label = format!(
            "Poortwachter, {}, while {rate} policy changes/s are written",
            backend_label(&args.backend)
        );
        churned.extra = format!(
            "{:.0} changes/s written (asked: {})",
            written.load(Ordering::Relaxed) as f64 / args.duration as f64,
            rate
        );
        results.push(churned);
    }

    if args.login_workers > 0 {
        let logins = Arc::new(AtomicU64::new(0));
        let failed_logins = Arc::new(AtomicU64::new(0));
        let deadline = Instant::now() + Duration::from_secs(args.duration + 2);
        let workers: Vec<_> = (0..args.login_workers)
            .map(|_| {
                tokio::spawn(login_worker(
                    base.clone(),
                    deadline,
                    Arc::clone(&logins),
                    Arc::clone(&failed_logins),
                ))
            })
            .collect();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut busy = tokio::task::spawn_blocking({
            let (introspect, auth, tokens_file) =
                (introspect.clone(), auth.clone(), tokens_file.clone());
            let args_duration = args.duration;
            let args_c = (args.connections, args.threads);
            move || {
                with_server_cpu(pid, args_duration, || {
                    run_wrk_with(args_c, &introspect, &auth, &tokens_file, args_duration)
                })
            }
        })
        .await??;
        for worker in workers {
            let _ = worker.await;
        }
        busy.label = format!(
            "Poortwachter, {}, while logins run",
            backend_label(&args.backend)
        );
        busy.extra = format!(
            "{:.1} logins/s by {} workers ({} failed)",
            logins.load(Ordering::Relaxed) as f64 / (args.duration + 2) as f64,
            args.login_workers,
            failed_logins.load(Ordering::Relaxed)
        );
        results.push(busy);
    }

    if let Some((warm_pool, measured_pool)) = &refresh_pools {
        let url = format!("{base}/token");
        let auth = STANDARD.encode(format!(
            "{REFRESH_PARTNER}:{}",
            poortwachter::demo::DEMO_PASSWORD
        ));
        let (warm_file, measured_file) =
            (work.path().join("rt-warm.txt"), work.path().join("rt.txt"));
        std::fs::write(&warm_file, warm_pool.join("\n") + "\n")?;
        std::fs::write(&measured_file, measured_pool.join("\n") + "\n")?;
        let shape = (args.connections, args.threads);
        run_wrk_script("bench/refresh.lua", shape, &url, &auth, &warm_file, 5)?;
        let mut refreshed = with_server_cpu(pid, args.duration, || {
            run_wrk_script(
                "bench/refresh.lua",
                shape,
                &url,
                &auth,
                &measured_file,
                args.duration,
            )
        })?;
        refreshed.label = format!(
            "Poortwachter, {}: token endpoint, refresh-token rotation",
            backend_label(&args.backend)
        );
        refreshed.extra = "not active = answers without a new refresh token".into();
        results.push(refreshed);
    }
    server.kill()?;
    let _ = server.wait();

    if args.compare_oidc_provider {
        let port = free_port()?;
        let op_tokens = work.path().join("op-tokens.txt");
        // Its in-memory store keeps at most 1,000 entries (an LRU): more tokens would evict
        // each other and turn the comparison into a measurement of `active: false`.
        let mut node = start_oidc_provider(port, tokens.len().min(1000), &op_tokens, None)?;
        let auth = STANDARD.encode("resource-server:resource-server-secret");
        let url = format!("http://127.0.0.1:{port}/token/introspection");
        run_wrk(&args, &url, &auth, &op_tokens, 5)?;
        let mut reference = run_wrk(&args, &url, &auth, &op_tokens, args.duration)?;
        reference.label = "oidc-provider 9 (Node.js, in-memory store)".into();
        results.push(reference);
        node.kill()?;
        let _ = node.wait();

        if let Some((warm_pool, measured_pool)) = &refresh_pools {
            let port = free_port()?;
            let minted = work.path().join("op-rt.txt");
            let count = warm_pool.len() + measured_pool.len();
            let mut node = start_oidc_provider(port, count, &minted, Some("refresh"))?;
            let all: Vec<String> = std::fs::read_to_string(&minted)?
                .lines()
                .map(str::to_string)
                .collect();
            let (warm, measured) = all.split_at(warm_pool.len().min(all.len()));
            let (warm_file, measured_file) = (
                work.path().join("op-rt-warm.txt"),
                work.path().join("op-rt-measured.txt"),
            );
            std::fs::write(&warm_file, warm.join("\n") + "\n")?;
            std::fs::write(&measured_file, measured.join("\n") + "\n")?;
            let auth = STANDARD.encode("partner:partner-secret");
            let url = format!("http://127.0.0.1:{port}/token");
            let shape = (args.connections, args.threads);
            run_wrk_script("bench/refresh.lua", shape, &url, &auth, &warm_file, 5)?;
            let mut reference = run_wrk_script(
                "bench/refresh.lua",
                shape,
                &url,
                &auth,
                &measured_file,
                args.duration,
            )?;
            reference.label =
                "oidc-provider 9: token endpoint, refresh-token rotation (in-memory store)".into();
            results.push(reference);
            node.kill()?;
            let _ = node.wait();
        }
    }

    let report = render(&args, &results, seeding);
    println!("{report}");
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.out, report)?;
    // The server's log beside the results (`results.md` → `results.server.log`).
    let _ = std::fs::copy(
        work.path().join("server.log"),
        args.out.with_extension("server.log"),
    );

    Ok(())
}

fn backend_label(backend: &str) -> &'static str {
    if backend == "postgres" {
        "PostgreSQL + Redis"
    } else {
        "SQLite (embedded default)"
    }
}

fn render(args: &Args, results: &[Measurement], seeding: Duration) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "Data: {} students, {} grants (30% given by a parent), {} partners, {} schools with closures. \
         Load: wrk, {} threads, {} connections, {} s per run, random token per request. Seeding took {:.1?}.\n\n",
        args.students, args.grants, args.partners, args.schools, args.threads, args.connections, args.duration, seeding
    ));
    out.push_str(
        "| server | requests/s | p50 | p99 | not active | server CPU / request | notes |\n\
         |---|---:|---:|---:|---:|---:|---|\n",
    );
    for m in results {
        let cpu = if m.server_cpu_us.is_finite() {
            format!("{:.1} µs", m.server_cpu_us)
        } else {
            "–".into()
        };
        out.push_str(&format!(
            "| {} | {:.0} | {:.2} ms | {:.2} ms | {} | {} | {} |\n",
            m.label, m.requests_per_sec, m.p50_ms, m.p99_ms, m.not_active, cpu, m.extra
        ));
    }
    if let (Some(ours), Some(reference)) = (
        results.first(),
        results
            .iter()
            .find(|m| m.label.starts_with("oidc-provider")),
    ) {
        out.push_str(&format!(
            "\nRatio (Poortwachter / oidc-provider): {:.1}×\n",
            ours.requests_per_sec / reference.requests_per_sec
        ));
    }
    out
}

async fn create_postgres_database(admin_url: &str) -> anyhow::Result<String> {
    use sqlx::Connection;
    let name = format!("pw_bench_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(admin_url).await?;
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut conn)
        .await?;
    let mut url = url::Url::parse(admin_url)?;
    url.set_path(&format!("/{name}"));
    Ok(url.to_string())
}

/// Insert `rows` into `table` in batches (bench-only bulk loading; the server itself goes
/// through `storage/`).
async fn bulk_insert(
    store: &Store,
    table: &str,
    columns: &[&str],
    rows: Vec<Vec<Value>>,
) -> anyhow::Result<()> {
    let per_batch = 400 / columns.len().max(1) * 10;
    let mut tx = store.pool().begin().await?;
    for chunk in rows.chunks(per_batch.max(1)) {
        let mut sql = format!("INSERT INTO {table} ({}) VALUES ", columns.join(", "));
        let mut n = 0;
        for (i, _) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            for c in 0..columns.len() {
                if c > 0 {
                    sql.push_str(", ");
                }
                n += 1;
                sql.push_str(&format!("${n}"));
            }
            sql.push(')');
        }
        let mut query = sqlx::query(&sql);
        for row in chunk {
            for value in row {
                query = match value {
                    Value::Text(s) => query.bind(s.clone()),
                    Value::Int(i) => query.bind(*i),
                    Value::Null => query.bind(Option::<String>::None),
                    Value::NullInt => query.bind(Option::<i64>::None),
                };
            }
        }
        query.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

enum Value {
    Text(String),
    Int(i64),
    /// NULL in a text column.
    Null,
    /// NULL in a BIGINT column (PostgreSQL checks the type of a bound NULL).
    NullInt,
}

fn t(s: impl Into<String>) -> Value {
    Value::Text(s.into())
}

async fn seed(store: &Store, args: &Args, now: DateTime<Utc>) -> anyhow::Result<Vec<String>> {
    let now_ts = now.timestamp();
    let (password_hash,): (String,) = sqlx::query_as("SELECT password_hash FROM accounts LIMIT 1")
        .fetch_one(store.pool())
        .await?;
    let schools: Vec<String> = (0..args.schools).map(|i| format!("B{i:03}X")).collect();
    bulk_insert(
        store,
        "schools",
        &["brin", "name"],
        schools
            .iter()
            .map(|b| vec![t(b.clone()), t(format!("Benchschool {b}"))])
            .collect(),
    )
    .await?;

    let partners: Vec<String> = (0..args.partners)
        .map(|i| format!("bench-partner-{i:02}"))
        .collect();
    let partner_rows = partners
        .iter()
        .map(|p| {
            vec![
                t(p.clone()),
                t(format!("Bench partner {p}")),
                t("partner"),
                t("http://127.0.0.1:9000/callback"),
                t("openid offline_access naam rooster huiswerk cijfers"),
                t(password_hash.clone()),
                t("client_secret_basic"),
                t("accredited"),
                Value::Int(now_ts - 86_400),
                Value::Int(now_ts + 365 * 86_400),
                Value::Int(now_ts),
            ]
        })
        .collect();
    bulk_insert(
        store,
        "clients",
        &[
            "client_id",
            "display_name",
            "kind",
            "redirect_uris",
            "allowed_scopes",
            "secret_hash",
            "auth_methods",
            "accreditation_status",
            "accredited_from",
            "accredited_until",
            "created_at",
        ],
        partner_rows,
    )
    .await?;
    let mut links = Vec::new();
    for school in &schools {
        for partner in &partners {
            links.push(vec![
                t(school.clone()),
                t(partner.clone()),
                Value::Int(1),
                t("bench"),
                Value::Int(now_ts),
            ]);
        }
    }
    bulk_insert(
        store,
        "school_links",
        &[
            "school_brin",
            "client_id",
            "is_open",
            "reason",
            "changed_at",
        ],
        links,
    )
    .await?;

    let student_id = |i: usize| format!("bench-student-{i}");
    let school_of = |i: usize| schools[i % schools.len()].clone();
    let mut accounts = Vec::new();
    let mut enrollments = Vec::new();
    for i in 0..args.students {
        accounts.push(vec![
            t(student_id(i)),
            t(school_of(i)),
            t(format!("{i:06}")),
            t("student"),
            t(password_hash.clone()),
            t("Leerling"),
            Value::Null,
            t(format!("Nummer{i}")),
            t("2009-06-01"),
            Value::Int(now_ts),
        ]);
        enrollments.push(vec![
            t(student_id(i)),
            t(school_of(i)),
            Value::Int(now_ts - 86_400 * 90),
            Value::NullInt,
        ]);
    }
    let account_columns = [
        "id",
        "school_brin",
        "username",
        "role",
        "password_hash",
        "given_name",
        "tussenvoegsel",
        "family_name",
        "birth_date",
        "created_at",
    ];
    bulk_insert(store, "accounts", &account_columns, accounts).await?;
    bulk_insert(
        store,
        "enrollments",
        &["student_id", "school_brin", "starts_at", "ends_at"],
        enrollments,
    )
    .await?;

    // Grants spread over students and partners; every third one given by a parent.
    let spread = (args.students / args.grants.max(1)).max(1);
    let mut parents = Vec::new();
    let mut guardianships = Vec::new();
    let mut grants = Vec::new();
    let mut access = Vec::new();
    let mut tokens = Vec::new();
    for g in 0..args.grants {
        let student = (g * spread) % args.students;
        let partner = &partners[g % partners.len()];
        let grant_id = format!("bench-grant-{g}");
        let by_parent = g % 3 == 0;
        let given_by = if by_parent {
            let parent = format!("bench-parent-{g}");
            parents.push(vec![
                t(parent.clone()),
                t(school_of(student)),
                t(format!("ouder{g}")),
                t("parent"),
                t(password_hash.clone()),
                t("Ouder"),
                Value::Null,
                t(format!("Nummer{g}")),
                Value::Null,
                Value::Int(now_ts),
            ]);
            guardianships.push(vec![
                t(parent.clone()),
                t(student_id(student)),
                Value::Int(now_ts),
            ]);
            parent
        } else {
            student_id(student)
        };
        grants.push(vec![
            t(grant_id.clone()),
            t(student_id(student)),
            t(partner.clone()),
            t("openid offline_access naam rooster huiswerk cijfers"),
            t(given_by.clone()),
            t(if by_parent { "parent" } else { "student" }),
            Value::Int(now_ts),
            Value::Int(now_ts + 365 * 86_400),
            Value::NullInt,
        ]);
        let token = random_token();
        access.push(vec![
            t(hash_token(&token)),
            t(format!("bench-family-{g}")),
            t(partner.clone()),
            t(grant_id),
            t(student_id(student)),
            if by_parent { t(given_by) } else { Value::Null },
            t("openid naam rooster huiswerk cijfers"),
            Value::Int(now_ts),
            Value::Int(now_ts + 4 * 3600),
            Value::NullInt,
        ]);
        tokens.push(token);
    }
    bulk_insert(store, "accounts", &account_columns, parents).await?;
    bulk_insert(
        store,
        "guardianships",
        &["parent_id", "student_id", "created_at"],
        guardianships,
    )
    .await?;
    bulk_insert(
        store,
        "grants",
        &[
            "id",
            "student_id",
            "client_id",
            "scopes",
            "given_by",
            "given_by_role",
            "granted_at",
            "expires_at",
            "revoked_at",
        ],
        grants,
    )
    .await?;
    bulk_insert(
        store,
        "access_tokens",
        &[
            "token_hash",
            "family_id",
            "client_id",
            "grant_id",
            "student_id",
            "actor_id",
            "scopes",
            "issued_at",
            "expires_at",
            "revoked_at",
        ],
        access,
    )
    .await?;

    // Closures: grades closed for partners now at every other school, and future test weeks.
    let mut closures = Vec::new();
    for (i, school) in schools.iter().enumerate() {
        if i % 2 == 0 {
            closures.push(vec![
                t(format!("bench-closure-{i}-now")),
                t(school.clone()),
                t("cijfers"),
                t("partners"),
                Value::Int(now_ts - 3600),
                Value::Int(now_ts + 7 * 86_400),
                t("toetsweek"),
                t("bench"),
                Value::Int(now_ts),
            ]);
        }
        closures.push(vec![
            t(format!("bench-closure-{i}-later")),
            t(school.clone()),
            t("cijfers"),
            t("parents students"),
            Value::Int(now_ts + 30 * 86_400),
            Value::Int(now_ts + 37 * 86_400),
            t("toetsweek"),
            t("bench"),
            Value::Int(now_ts),
        ]);
    }
    bulk_insert(
        store,
        "scope_closures",
        &[
            "id",
            "school_brin",
            "scope",
            "audiences",
            "starts_at",
            "ends_at",
            "reason",
            "created_by",
            "created_at",
        ],
        closures,
    )
    .await?;
    Ok(tokens)
}

/// The partner whose refresh tokens the token-endpoint run rotates (grants `g` with
/// `g % partners == 0` are its).
const REFRESH_PARTNER: &str = "bench-partner-00";

/// Chains of refresh tokens per pool: well above the connections per wrk thread, so no
/// thread's queue runs dry.
const REFRESH_CHAINS: usize = 512;

/// Two pools of refresh tokens (warm-up, measurement) of [`REFRESH_PARTNER`], each token its
/// own family, spread over that partner's grants, with `openid offline_access rooster
/// huiswerk` (so every answer carries an ID token, as oidc-provider's does).
async fn seed_refresh_tokens(
    store: &Store,
    args: &Args,
    now: DateTime<Utc>,
) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let now_ts = now.timestamp();
    let spread = (args.students / args.grants.max(1)).max(1);
    let grants: Vec<usize> = (0..args.grants).step_by(args.partners.max(1)).collect();
    anyhow::ensure!(!grants.is_empty(), "no grants to refresh");
    let mut rows = Vec::new();
    let mut tokens = Vec::new();
    for chain in 0..2 * REFRESH_CHAINS {
        let g = grants[chain % grants.len()];
        let student = (g * spread) % args.students;
        let token = random_token();
        rows.push(vec![
            t(hash_token(&token)),
            t(format!("bench-refresh-family-{chain}")),
            t(REFRESH_PARTNER),
            t(format!("bench-grant-{g}")),
            t(format!("bench-student-{student}")),
            if g.is_multiple_of(3) {
                t(format!("bench-parent-{g}"))
            } else {
                Value::Null
            },
            t("openid offline_access rooster huiswerk"),
            t(format!("bench-session-{chain}")),
            Value::Int(now_ts),
            Value::Int(now_ts),
            Value::Int(now_ts + 30 * 86_400),
            Value::NullInt,
            Value::NullInt,
        ]);
        tokens.push(token);
    }
    bulk_insert(
        store,
        "refresh_tokens",
        &[
            "token_hash",
            "family_id",
            "client_id",
            "grant_id",
            "student_id",
            "actor_id",
            "scopes",
            "session_id",
            "auth_time",
            "issued_at",
            "expires_at",
            "used_at",
            "revoked_at",
        ],
        rows,
    )
    .await?;
    let measured = tokens.split_off(REFRESH_CHAINS);
    Ok((tokens, measured))
}

/// Write `per_second` policy changes a second until `stop`, round robin over five kinds, each
/// a real change to a row the load's answers depend on but leaving every answer the same: a
/// link's reason (it stays open), a student's given name, an enrollment's start (still
/// started), a grant's `granted_at`, and a closure a year ahead (added, then removed).
async fn write_churn(
    store: Store,
    per_second: u32,
    students: usize,
    grants: usize,
    (schools, partners): (usize, usize),
    (stop, written): (Arc<std::sync::atomic::AtomicBool>, Arc<AtomicU64>),
) -> anyhow::Result<()> {
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(per_second)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let spread = (students / grants.max(1)).max(1);
    let mut n: usize = 0;
    let mut closures: Vec<String> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        ticks.tick().await;
        n += 1;
        // Spread over what the load reads: grant g belongs to student g × spread.
        let g = (n * 7_919) % grants.max(1);
        let student = format!("bench-student-{}", (g * spread) % students.max(1));
        let school = format!("B{:03}X", n % schools.max(1));
        let year_ahead = SystemClock.now().timestamp() + 365 * 86_400;
        let query = match n % 5 {
            0 => sqlx::query(
                "UPDATE school_links SET reason = $3 WHERE school_brin = $1 AND client_id = $2",
            )
            .bind(school)
            .bind(format!("bench-partner-{:02}", n % partners.max(1)))
            .bind(format!("churn {n}")),
            1 => sqlx::query("UPDATE accounts SET given_name = $2 WHERE id = $1")
                .bind(student)
                .bind(if n.is_multiple_of(2) {
                    "Leerling"
                } else {
                    "Leerling."
                }),
            2 => sqlx::query(
                "UPDATE enrollments SET starts_at = starts_at - 1 WHERE student_id = $1",
            )
            .bind(student),
            3 => sqlx::query("UPDATE grants SET granted_at = granted_at + 1 WHERE id = $1")
                .bind(format!("bench-grant-{g}")),
            _ => match closures.pop() {
                Some(id) => sqlx::query("DELETE FROM scope_closures WHERE id = $1").bind(id),
                None => {
                    let id = poortwachter::storage::new_id();
                    closures.push(id.clone());
                    sqlx::query(
                        "INSERT INTO scope_closures (id, school_brin, scope, audiences, \
                         starts_at, ends_at, reason, created_by, created_at) \
                         VALUES ($1, $2, 'cijfers', 'parents', $3, $4, 'churn', 'bench', $3)",
                    )
                    .bind(id)
                    .bind(school)
                    .bind(year_ahead)
                    .bind(year_ahead + 86_400)
                }
            },
        };
        query.execute(store.pool()).await?;
        written.fetch_add(1, Ordering::Relaxed);
    }
    for id in closures {
        sqlx::query("DELETE FROM scope_closures WHERE id = $1")
            .bind(id)
            .execute(store.pool())
            .await?;
    }
    store.close().await;
    Ok(())
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn start_server(
    binary: &Path,
    port: u16,
    database_url: &str,
    redis: Option<&str>,
    dir: &Path,
) -> anyhow::Result<Child> {
    let log = std::fs::File::create(dir.join("server.log"))?;
    // `taskset` execs the server in place, so the child's pid is the server's.
    let mut command = if PIN.load(std::sync::atomic::Ordering::Relaxed) {
        let mut pinned = Command::new("taskset");
        pinned.args(["-c", "0"]).arg(binary);
        pinned
    } else {
        Command::new(binary)
    };
    command
        .arg("serve")
        .env("DATABASE_URL", database_url)
        .env("POORTWACHTER_BIND", format!("127.0.0.1:{port}"))
        .env("POORTWACHTER_ISSUER", format!("http://127.0.0.1:{port}"))
        // All load comes from 127.0.0.1: the per-address request rate (meant for one abusive
        // address among many, `serve.rs::rate_limit`) would answer nearly every request 429
        // after the first 6,000 of a minute, and the figures would measure refusals.
        .env("POORTWACHTER_RATE_LIMIT_PER_MINUTE", "100000000")
        // Warnings, and how long filling the policy cache at start took.
        .env("RUST_LOG", "warn,poortwachter::cache=info")
        .env_remove("REDIS_URL")
        .stdout(Stdio::null())
        .stderr(log);
    if let Some(redis) = redis {
        command.env("REDIS_URL", redis);
    }
    Ok(command.spawn()?)
}

fn start_oidc_provider(
    port: u16,
    count: usize,
    tokens_file: &Path,
    mode: Option<&str>,
) -> anyhow::Result<Child> {
    let mut child = Command::new("node")
        .current_dir("bench/oidc-provider")
        .arg("server.mjs")
        .arg(port.to_string())
        .arg(count.to_string())
        .arg(tokens_file)
        .args(mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout from node"))?;
    let mut lines = BufReader::new(stdout).lines();
    while let Some(line) = lines.next().transpose()? {
        if line.trim() == "ready" {
            return Ok(child);
        }
    }
    anyhow::bail!("oidc-provider did not start (run npm ci in bench/oidc-provider)")
}

/// Until `/readyz` says ready: the database answers and the policy cache is filled (at most
/// `cache_warm_secs`, 30 s by default, after start).
async fn wait_ready(url: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    for _ in 0..600 {
        if let Ok(response) = client.get(url).send().await {
            if response.status().is_success() {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("server did not become ready at {url}")
}

fn run_wrk(
    args: &Args,
    url: &str,
    auth: &str,
    tokens: &Path,
    seconds: u64,
) -> anyhow::Result<Measurement> {
    run_wrk_with((args.connections, args.threads), url, auth, tokens, seconds)
}

fn run_wrk_with(
    shape: (u32, u32),
    url: &str,
    auth: &str,
    tokens: &Path,
    seconds: u64,
) -> anyhow::Result<Measurement> {
    run_wrk_script("bench/introspect.lua", shape, url, auth, tokens, seconds)
}

fn run_wrk_script(
    script: &str,
    (connections, threads): (u32, u32),
    url: &str,
    auth: &str,
    tokens: &Path,
    seconds: u64,
) -> anyhow::Result<Measurement> {
    let mut wrk = if PIN.load(std::sync::atomic::Ordering::Relaxed) {
        let mut pinned = Command::new("taskset");
        pinned.args(["-c", "1", "wrk"]);
        pinned
    } else {
        Command::new("wrk")
    };
    let output = wrk
        .arg(format!("-t{threads}"))
        .arg(format!("-c{connections}"))
        .arg(format!("-d{seconds}s"))
        .arg("--latency")
        .arg("-s")
        .arg(script)
        .arg(url)
        .env("WRK_THREADS", threads.to_string())
        .env("TOKENS_FILE", tokens)
        .env("BASIC_AUTH", auth)
        .output()?;
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    std::io::stderr().write_all(&output.stderr)?;
    let field = |prefix: &str| -> Option<String> {
        text.lines()
            .map(str::trim)
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
    };
    let requests_per_sec = field("Requests/sec:")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let p50_ms = field("50%").map(|v| millis(&v)).unwrap_or(f64::NAN);
    let p99_ms = field("99%").map(|v| millis(&v)).unwrap_or(f64::NAN);
    let not_active = field("not_active:")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Ok(Measurement {
        label: String::new(),
        requests_per_sec,
        p50_ms,
        p99_ms,
        not_active,
        extra: String::new(),
        server_cpu_us: f64::NAN,
    })
}

/// wrk prints latencies as `812.00us`, `1.23ms` or `1.02s`.
fn millis(value: &str) -> f64 {
    let (number, factor) = if let Some(v) = value.strip_suffix("us") {
        (v, 0.001)
    } else if let Some(v) = value.strip_suffix("ms") {
        (v, 1.0)
    } else if let Some(v) = value.strip_suffix('s') {
        (v, 1000.0)
    } else {
        (value, 1.0)
    };
    number
        .parse::<f64>()
        .map(|n| n * factor)
        .unwrap_or(f64::NAN)
}

/// A person logging in through the browser flow, again and again (argon2id each time).
async fn login_worker(
    base: String,
    deadline: Instant,
    done: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
) {
    let challenge = sha256_b64url(random_token().as_bytes());
    while Instant::now() < deadline {
        let ok = one_login(&base, &challenge).await.unwrap_or(false);
        if ok {
            done.fetch_add(1, Ordering::Relaxed);
        } else {
            failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

async fn one_login(base: &str, challenge: &str) -> anyhow::Result<bool> {
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let authorize = format!(
        "{base}/authorize?response_type=code&client_id=studyspace-demo&redirect_uri=http%3A%2F%2F127.0.0.1%3A9000%2Fcallback\
         &scope=openid%20rooster&state=s&code_challenge={challenge}&code_challenge_method=S256"
    );
    let first = browser.get(&authorize).send().await?;
    let login_path = first
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let page = browser
        .get(format!("{base}{login_path}"))
        .send()
        .await?
        .text()
        .await?;
    let value = |name: &str| {
        let marker = format!("name=\"{name}\" value=\"");
        page.split(&marker)
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_default()
            .to_string()
    };
    let response = browser
        .post(format!("{base}/login"))
        .form(&[
            ("csrf", value("csrf").as_str()),
            ("request", value("request").as_str()),
            ("school", "12AB"),
            ("username", "100002"),
            ("password", poortwachter::demo::DEMO_PASSWORD),
        ])
        .send()
        .await?;
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    Ok(location.starts_with("/consent"))
}
