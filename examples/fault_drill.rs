//! Fault drills (docs/DRILLS.md): the real `poortwachter` binary under write load while
//! PostgreSQL restarts, Redis dies, the process gets `SIGTERM` and then `kill -9`; afterwards
//! every write that was acknowledged to a client must be there. Run it through `.ci/drills`,
//! which builds the binaries and gives the drill its own PostgreSQL cluster and Redis.
//!
//! The drill controls the services through shell commands in the environment:
//! `DRILL_PG_STOP`, `DRILL_PG_START`, `DRILL_REDIS_STOP`, `DRILL_REDIS_START`. Server process
//! ids are appended to `<work>/pids`, so the calling script can clean up after a crash.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use poortwachter::clock::{Clock, SystemClock};
use poortwachter::crypto::tokens::{hash_token, random_token, sha256_b64url};
use serde_json::{json, Value};

#[derive(Parser, Debug, Clone)]
struct Args {
    /// The server binary to drill.
    #[arg(long, default_value = "target/debug/poortwachter")]
    binary: PathBuf,
    /// An administrative URL of the drill's own PostgreSQL (a fresh database is created on it
    /// and dropped at the end).
    #[arg(long)]
    postgres_admin_url: String,
    /// The drill's own Redis.
    #[arg(long)]
    redis_url: String,
    /// Logs, the pid file and the report go here.
    #[arg(long)]
    work: PathBuf,
    /// Seconds of load before and after each fault.
    #[arg(long, default_value_t = 3)]
    steady_secs: u64,
    /// Seconds a fault (PostgreSQL or Redis down) lasts.
    #[arg(long, default_value_t = 5)]
    fault_secs: u64,
    /// Writers per kind of write (management tokens, audited admin changes).
    #[arg(long, default_value_t = 2)]
    writers: usize,
    /// Pause between one writer's requests, in milliseconds.
    #[arg(long, default_value_t = 20)]
    pause_ms: u64,
}

/// A failure answered later than this did not fail fast.
const FAST: Duration = Duration::from_secs(4);
/// The client gives up after this: the request hung.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// After PostgreSQL is back, writes must succeed again within this.
const RECOVERY_LIMIT: Duration = Duration::from_secs(15);
/// A change made on one instance must be seen by the other within this (README, live policy).
const FRESHNESS: Duration = Duration::from_secs(1);

const SCHOOL: &str = "12AB";
/// Closures are written at the other demo school, in the far future: they change nobody's
/// answers while the drill reads.
const CLOSURE_SCHOOL: &str = "34CD";
const PARTNER: &str = "studyspace-demo";
const PARTNER_SECRET: &str = "studyspace-demo-secret";
const PARTNER_REDIRECT: &str = "http://127.0.0.1:9000/callback";
const RESOURCE_SERVER: (&str, &str) = ("schooldata-api-demo", "schooldata-api-demo-secret");
const SCHOOL_MANAGER: (&str, &str) = ("beheer-12ab-demo", "beheer-12ab-demo-secret");
const PLATFORM: (&str, &str) = ("platform-demo", "platform-demo-secret");

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("fault drills FAILED (see the table above)");
            std::process::ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("fault drills could not run: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<bool> {
    let args = Args::parse();
    anyhow::ensure!(
        args.binary.exists(),
        "no server binary at {} (cargo build --bin poortwachter)",
        args.binary.display()
    );
    std::fs::create_dir_all(&args.work)?;
    let commands = FaultCommands::from_env()?;
    let (database_url, database_name) = create_database(&args.postgres_admin_url).await?;
    let outcome = drills(&args, &commands, &database_url).await;
    // The database goes whatever happened; PostgreSQL is up again after every drill.
    if let Err(e) = drop_database(&args.postgres_admin_url, &database_name).await {
        eprintln!("could not drop {database_name}: {e:#}");
    }
    outcome
}

async fn drills(args: &Args, commands: &FaultCommands, database_url: &str) -> anyhow::Result<bool> {
    let partner_token = seed(database_url).await?;
    let namespace = format!("drill-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let servers = Servers {
        binary: args.binary.clone(),
        database_url: database_url.to_string(),
        redis_url: args.redis_url.clone(),
        namespace,
        work: args.work.clone(),
    };
    let http = reqwest::Client::builder()
        .timeout(CLIENT_TIMEOUT)
        // A fresh connection per request: a request that gets no answer then means the server
        // dropped it, not that a keep-alive connection was closed between requests.
        .pool_max_idle_per_host(0)
        .build()?;
    let ctx = Ctx {
        http,
        args: args.clone(),
        partner_token,
    };
    let mut reports = Vec::new();

    // 1. PostgreSQL restarted under load.
    {
        let mut a = servers.start("a", free_port()?)?;
        a.wait_ready(&ctx.http).await?;
        let platform = ctx.management_token(&a.base, PLATFORM).await?;
        let drill = Drill::new("PostgreSQL restarted under load");
        let load = Load::start(&ctx, &drill, &a.base, &platform);
        let probe = ReadyProbe::start(&ctx.http, &a.base);
        tokio::time::sleep(ctx.steady()).await;
        commands.run("DRILL_PG_STOP", &commands.pg_stop)?;
        let down_from = Instant::now();
        tokio::time::sleep(ctx.fault()).await;
        let down_until = Instant::now();
        commands.run("DRILL_PG_START", &commands.pg_start)?;
        let back = Instant::now();
        let recovered = wait_recovered(&drill, back).await;
        tokio::time::sleep(ctx.steady()).await;
        load.stop().await;
        let probes = probe.stop().await;
        // Probes wholly inside the outage (one still waiting when PostgreSQL returns may
        // rightly answer 200).
        let during: Vec<u16> = probes
            .iter()
            .filter(|p| p.sent >= down_from && p.answered < down_until)
            .map(|p| p.status)
            .collect();
        let ready_after = a.status(&ctx.http, "/readyz").await == Some(200);
        let mut checks = vec![
            Check::new(
                "requests failed fast (503, within 4 s) while PostgreSQL was down",
                drill.stats().slow == 0 && drill.stats().failed_fast > 0,
                format!(
                    "{} answered 503 or refused, {} slower than {FAST:?}, slowest failure {} ms",
                    drill.stats().failed_fast,
                    drill.stats().slow,
                    drill.stats().slowest_failure_ms
                ),
            ),
            Check::new(
                "/readyz answered 503 while PostgreSQL was down",
                !during.is_empty() && during.iter().all(|s| *s == 503),
                format!(
                    "{} probes while down: {:?}",
                    during.len(),
                    summarise(&during)
                ),
            ),
        ];
        checks.push(match recovered {
            Some(after) => Check::new(
                "writes succeed again without restarting Poortwachter",
                after <= RECOVERY_LIMIT && ready_after,
                format!(
                    "first acknowledged write {} ms after PostgreSQL was back; /readyz {}",
                    after.as_millis(),
                    if ready_after { "200" } else { "not 200" }
                ),
            ),
            None => Check::new(
                "writes succeed again without restarting Poortwachter",
                false,
                "no write was acknowledged after PostgreSQL came back".into(),
            ),
        });
        checks.push(Check::new(
            "the same process served throughout",
            a.is_running(),
            format!("pid {}", a.pid()),
        ));
        reports.push((drill, checks));
        a.terminate_and_wait(Duration::from_secs(15)).await;
    }

    // 2. Redis killed under load, two instances.
    {
        let mut a = servers.start("a", free_port()?)?;
        let mut b = servers.start("b", free_port()?)?;
        a.wait_ready(&ctx.http).await?;
        b.wait_ready(&ctx.http).await?;
        let platform = ctx.management_token(&a.base, PLATFORM).await?;
        let school = ctx.management_token(&a.base, SCHOOL_MANAGER).await?;
        let drill = Drill::new("Redis killed under load (2 instances)");
        let load = Load::start(&ctx, &drill, &a.base, &platform);
        let freshness = Freshness::start(&ctx, &drill, &a.base, &b.base, &school);
        tokio::time::sleep(ctx.steady()).await;
        commands.run("DRILL_REDIS_STOP", &commands.redis_stop)?;
        tokio::time::sleep(ctx.fault()).await;
        commands.run("DRILL_REDIS_START", &commands.redis_start)?;
        tokio::time::sleep(ctx.steady()).await;
        load.stop().await;
        let (judged, wrong) = freshness.stop().await;
        drill.with(|s| s.wrong += wrong);
        let checks = vec![
            Check::new(
                "instance B never answered against a change made on A more than 1 s earlier",
                wrong == 0 && judged >= 10,
                format!("{judged} introspections judged, {wrong} wrong"),
            ),
            Check::new(
                "both instances served throughout",
                a.is_running() && b.is_running(),
                String::new(),
            ),
        ];
        reports.push((drill, checks));
        a.terminate_and_wait(Duration::from_secs(15)).await;
        b.terminate_and_wait(Duration::from_secs(15)).await;
    }

    // 3. SIGTERM under load: drain, then restart.
    {
        let port = free_port()?;
        let mut a = servers.start("a", port)?;
        a.wait_ready(&ctx.http).await?;
        let platform = ctx.management_token(&a.base, PLATFORM).await?;
        let drill = Drill::new("SIGTERM under load");
        let load = Load::start(&ctx, &drill, &a.base, &platform);
        tokio::time::sleep(ctx.steady()).await;
        let in_flight = drill.in_flight.load(Ordering::SeqCst);
        let signalled = Instant::now();
        a.signal(libc::SIGTERM);
        let exit = a.wait_exit(Duration::from_secs(15)).await;
        let drained_in = signalled.elapsed();
        let mut a = servers.start("a", port)?;
        a.wait_ready(&ctx.http).await?;
        tokio::time::sleep(ctx.steady()).await;
        load.stop().await;
        let checks = vec![Check::new(
            "graceful drain: exited 0 after finishing the requests in flight",
            exit == Some(0),
            format!(
                "{in_flight} requests in flight at SIGTERM; exit status {} after {} ms",
                exit.map_or("none (killed)".to_string(), |c| c.to_string()),
                drained_in.as_millis()
            ),
        )];
        reports.push((drill, checks));
        a.terminate_and_wait(Duration::from_secs(15)).await;
    }

    // 4. kill -9 under load, then restart.
    {
        let port = free_port()?;
        let mut a = servers.start("a", port)?;
        a.wait_ready(&ctx.http).await?;
        let platform = ctx.management_token(&a.base, PLATFORM).await?;
        let drill = Drill::new("kill -9 under load");
        drill.expect_cuts();
        let load = Load::start(&ctx, &drill, &a.base, &platform);
        tokio::time::sleep(ctx.steady()).await;
        a.signal(libc::SIGKILL);
        let _ = a.wait_exit(Duration::from_secs(5)).await;
        let mut a = servers.start("a", port)?;
        a.wait_ready(&ctx.http).await?;
        tokio::time::sleep(ctx.steady()).await;
        load.stop().await;
        reports.push((drill, Vec::new()));
        a.terminate_and_wait(Duration::from_secs(15)).await;
    }

    // Afterwards, on a freshly started instance: is every acknowledged write there?
    let mut a = servers.start("verify", free_port()?)?;
    a.wait_ready(&ctx.http).await?;
    let db = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(database_url)
        .await?;
    for (drill, _) in &reports {
        verify(&ctx, &a.base, &db, drill).await?;
    }
    a.terminate_and_wait(Duration::from_secs(15)).await;
    db.close().await;

    let (table, passed) = render(&reports);
    println!("{table}");
    std::fs::write(args.work.join("report.md"), &table)?;
    Ok(passed)
}

/// Shell commands that stop and start the drill's services.
struct FaultCommands {
    pg_stop: String,
    pg_start: String,
    redis_stop: String,
    redis_start: String,
}

impl FaultCommands {
    fn from_env() -> anyhow::Result<Self> {
        let get = |name: &str| {
            std::env::var(name).map_err(|_| anyhow::anyhow!("{name} is not set (run .ci/drills)"))
        };
        Ok(Self {
            pg_stop: get("DRILL_PG_STOP")?,
            pg_start: get("DRILL_PG_START")?,
            redis_stop: get("DRILL_REDIS_STOP")?,
            redis_start: get("DRILL_REDIS_START")?,
        })
    }

    fn run(&self, name: &str, command: &str) -> anyhow::Result<()> {
        let started = Instant::now();
        let status = Command::new("sh")
            .arg("-c")
            .arg(command)
            .stdout(Stdio::null())
            .status()?;
        anyhow::ensure!(status.success(), "{name} failed: {status}");
        eprintln!("  {name} done in {} ms", started.elapsed().as_millis());
        Ok(())
    }
}

struct Ctx {
    http: reqwest::Client,
    args: Args,
    partner_token: String,
}

impl Ctx {
    fn steady(&self) -> Duration {
        Duration::from_secs(self.args.steady_secs)
    }

    fn fault(&self) -> Duration {
        Duration::from_secs(self.args.fault_secs)
    }

    async fn management_token(
        &self,
        base: &str,
        (id, secret): (&str, &str),
    ) -> anyhow::Result<String> {
        let response = self
            .http
            .post(format!("{base}/token"))
            .basic_auth(id, Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await?;
        anyhow::ensure!(
            response.status().is_success(),
            "client_credentials for {id}: {}",
            response.status()
        );
        let body: Value = response.json().await?;
        body["access_token"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow::anyhow!("no access_token for {id}"))
    }
}

// ---------------------------------------------------------------------------------------
// Figures

#[derive(Default, Clone)]
struct Stats {
    sent: u64,
    acknowledged: u64,
    /// Answered 503 or refused the connection: the right answer while a fault lasts.
    failed_fast: u64,
    /// Answered 4xx (a rate limit, say): not acknowledged, and nothing wrong.
    refused: u64,
    /// Answered 5xx other than 503.
    server_errors: u64,
    /// Sent, and the connection closed without an answer.
    no_answer: u64,
    /// No answer within the client's timeout.
    hung: u64,
    /// A failure answered later than [`FAST`].
    slow: u64,
    slowest_failure_ms: u128,
    /// Unanswered writes that were carried out anyway: cut mid-write.
    cut_mid_write: u64,
    /// Answered as not done, and carried out anyway (a commit whose answer was lost).
    refused_but_done: u64,
    /// Carried out only in part: a closure without its audit row.
    half_done: u64,
    /// Acknowledged, and not there afterwards.
    lost: u64,
    /// Reads that answered against the facts (see [`Freshness`]).
    wrong: u64,
    checked: u64,
    /// What was checked: tokens, closures, link switches, partner flows.
    kinds: [u64; 4],
}

/// One acknowledged write, to look for afterwards.
enum Written {
    /// A management access token (client_credentials): it must still work.
    Token(String),
    /// An audited admin change: the closure row and its audit row must be there.
    Closure { id: String, reason: String },
    /// A link switched open or closed: its audit row must be there.
    Link { reason: String },
    /// The partner flow (login, consent, code exchange) for Lotte: the grant and the tokens
    /// must be there (the access token introspects as active, the refresh token is stored).
    Partner { access: String, refresh: String },
}

struct Drill {
    name: &'static str,
    stats: Mutex<Stats>,
    written: Mutex<Vec<Written>>,
    /// Every closure write that was not acknowledged, by its unique reason.
    unacknowledged: Mutex<Vec<(String, Sent)>>,
    /// Times writes were acknowledged.
    acks: Mutex<Vec<Instant>>,
    in_flight: AtomicU64,
    cuts_expected: AtomicBool,
}

impl Drill {
    fn new(name: &'static str) -> Arc<Self> {
        Arc::new(Self {
            name,
            stats: Mutex::new(Stats::default()),
            written: Mutex::new(Vec::new()),
            unacknowledged: Mutex::new(Vec::new()),
            acks: Mutex::new(Vec::new()),
            in_flight: AtomicU64::new(0),
            cuts_expected: AtomicBool::new(false),
        })
    }

    /// `kill -9` cuts requests by design: an unanswered write may or may not have committed.
    fn expect_cuts(&self) {
        self.cuts_expected.store(true, Ordering::SeqCst);
    }

    fn with<T>(&self, f: impl FnOnce(&mut Stats) -> T) -> T {
        let mut guard = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }

    fn stats(&self) -> Stats {
        self.with(|s| s.clone())
    }

    fn remember(&self, written: Written) {
        self.written
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(written);
        self.acks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Instant::now());
    }

    /// Send one write and count its outcome.
    async fn send(&self, request: reqwest::RequestBuilder) -> Sent {
        self.with(|s| s.sent += 1);
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let started = Instant::now();
        let outcome = match step(request).await {
            Ok(response) => match response.json::<Value>().await {
                Ok(body) if started.elapsed() < CLIENT_TIMEOUT => Outcome::Acknowledged(body),
                // The status line arrived but the body did not: not acknowledged.
                _ => Outcome::NoAnswer,
            },
            Err(outcome) => outcome,
        };
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.count(outcome)
    }

    /// Count an outcome (the request was already counted as sent).
    fn count(&self, outcome: Outcome) -> Sent {
        self.with(|s| match &outcome {
            Outcome::Acknowledged(_) => s.acknowledged += 1,
            Outcome::FailedFast(took) | Outcome::Refused(took) | Outcome::ServerError(took) => {
                match outcome {
                    Outcome::FailedFast(_) => s.failed_fast += 1,
                    Outcome::Refused(_) => s.refused += 1,
                    _ => s.server_errors += 1,
                }
                if *took > FAST {
                    s.slow += 1;
                }
                s.slowest_failure_ms = s.slowest_failure_ms.max(took.as_millis());
            }
            Outcome::NoAnswer => s.no_answer += 1,
            Outcome::Hung => s.hung += 1,
        });
        match outcome {
            Outcome::Acknowledged(body) => Sent::Acknowledged(body),
            Outcome::FailedFast(_) | Outcome::Refused(_) | Outcome::ServerError(_) => Sent::Refused,
            Outcome::NoAnswer | Outcome::Hung => Sent::Unanswered,
        }
    }
}

/// One HTTP exchange: the response when it is 2xx or 3xx, else how it failed.
async fn step(request: reqwest::RequestBuilder) -> Result<reqwest::Response, Outcome> {
    let started = Instant::now();
    match request.send().await {
        Ok(response) => {
            let status = response.status();
            let took = started.elapsed();
            if status.is_success() || status.is_redirection() {
                Ok(response)
            } else if status.as_u16() == 503 {
                Err(Outcome::FailedFast(took))
            } else if status.is_server_error() {
                Err(Outcome::ServerError(took))
            } else {
                Err(Outcome::Refused(took))
            }
        }
        Err(e) if e.is_connect() => Err(Outcome::FailedFast(started.elapsed())),
        Err(e) if e.is_timeout() => Err(Outcome::Hung),
        Err(_) => Err(Outcome::NoAnswer),
    }
}

/// What the client learnt about one write.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Sent {
    Acknowledged(Value),
    /// An answer that says it was not done (503, 4xx, 5xx).
    Refused,
    /// No answer at all.
    Unanswered,
}

enum Outcome {
    Acknowledged(Value),
    FailedFast(Duration),
    Refused(Duration),
    ServerError(Duration),
    NoAnswer,
    Hung,
}

/// First write acknowledged at or after `since`, waiting at most [`RECOVERY_LIMIT`] + 5 s.
async fn wait_recovered(drill: &Drill, since: Instant) -> Option<Duration> {
    let deadline = since + RECOVERY_LIMIT + Duration::from_secs(5);
    while Instant::now() < deadline {
        let first = drill
            .acks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|at| **at >= since)
            .copied();
        if let Some(at) = first {
            return Some(at - since);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

// ---------------------------------------------------------------------------------------
// Load

/// Writers of three kinds: management tokens (`client_credentials`), audited admin changes
/// (scope closures, each with a unique reason so an unanswered one can be looked up), and the
/// partner flow (a grant and its tokens).
struct Load {
    stop: Arc<AtomicBool>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

static WRITE_SEQUENCE: AtomicU64 = AtomicU64::new(0);

impl Load {
    fn start(ctx: &Ctx, drill: &Arc<Drill>, base: &str, platform_token: &str) -> Self {
        let stopped = Arc::new(AtomicBool::new(false));
        let pause = Duration::from_millis(ctx.args.pause_ms);
        let mut workers = Vec::new();
        for _ in 0..ctx.args.writers {
            let (http, writer, stop, url) = (
                ctx.http.clone(),
                Arc::clone(drill),
                Arc::clone(&stopped),
                format!("{base}/token"),
            );
            workers.push(tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    let request = http
                        .post(&url)
                        .basic_auth(SCHOOL_MANAGER.0, Some(SCHOOL_MANAGER.1))
                        .form(&[("grant_type", "client_credentials")]);
                    if let Sent::Acknowledged(body) = writer.send(request).await {
                        match body["access_token"].as_str() {
                            Some(token) => writer.remember(Written::Token(token.to_string())),
                            None => writer.with(|s| s.wrong += 1),
                        }
                    }
                    tokio::time::sleep(pause).await;
                }
            }));
            let (http, writer, stop, url, token) = (
                ctx.http.clone(),
                Arc::clone(drill),
                Arc::clone(&stopped),
                format!("{base}/api/admin/schools/{CLOSURE_SCHOOL}/closures"),
                platform_token.to_string(),
            );
            workers.push(tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    let n = WRITE_SEQUENCE.fetch_add(1, Ordering::SeqCst);
                    let reason = format!("drill {} #{n}", uuid::Uuid::new_v4().simple());
                    let request = http.post(&url).bearer_auth(&token).json(&json!({
                        "scope": "cijfers",
                        "audiences": ["students"],
                        "starts_at": "2031-01-06T00:00:00Z",
                        "ends_at": "2031-01-10T00:00:00Z",
                        "reason": reason,
                    }));
                    match writer.send(request).await {
                        Sent::Acknowledged(body) => match body["id"].as_str() {
                            Some(id) => writer.remember(Written::Closure {
                                id: id.to_string(),
                                reason,
                            }),
                            None => writer.with(|s| s.wrong += 1),
                        },
                        other => writer
                            .unacknowledged
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push((reason, other)),
                    }
                    tokio::time::sleep(pause).await;
                }
            }));
        }
        let (writer, stop, base) = (Arc::clone(drill), Arc::clone(&stopped), base.to_string());
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                writer.with(|s| s.sent += 1);
                let outcome = match partner_flow(&base).await {
                    Ok(body) => Outcome::Acknowledged(body),
                    Err(outcome) => outcome,
                };
                if let Sent::Acknowledged(body) = writer.count(outcome) {
                    match (
                        body["access_token"].as_str(),
                        body["refresh_token"].as_str(),
                    ) {
                        (Some(access), Some(refresh)) => writer.remember(Written::Partner {
                            access: access.to_string(),
                            refresh: refresh.to_string(),
                        }),
                        _ => writer.with(|s| s.wrong += 1),
                    }
                }
                tokio::time::sleep(pause * 5).await;
            }
        }));
        Self {
            stop: stopped,
            workers,
        }
    }

    async fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        for worker in self.workers {
            let _ = worker.await;
        }
    }
}

/// Lotte (18, consents herself) connects Studyspace in a fresh browser: authorize, log in,
/// consent when asked, and the partner exchanges the code. The token response, or how the
/// first failing step failed.
async fn partner_flow(base: &str) -> Result<Value, Outcome> {
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(CLIENT_TIMEOUT)
        .pool_max_idle_per_host(0)
        .build()
        .map_err(|_| Outcome::NoAnswer)?;
    let refused = Outcome::Refused(Duration::ZERO);
    let verifier = random_token();
    let challenge = sha256_b64url(verifier.as_bytes());
    let authorize = format!(
        "{base}/authorize?response_type=code&client_id={PARTNER}&redirect_uri={}\
         &scope=openid%20rooster%20offline_access&state=drill&code_challenge={challenge}\
         &code_challenge_method=S256",
        url_encode(PARTNER_REDIRECT)
    );
    let login = match follow(&browser, base, browser.get(&authorize)).await? {
        Page::Html(html) if html.contains("name=\"password\"") => html,
        _ => return Err(refused),
    };
    let fields = [
        ("csrf", input(&login, "csrf")),
        ("request", input(&login, "request")),
        ("school", SCHOOL.to_string()),
        ("username", "100003".to_string()),
        ("password", poortwachter::demo::DEMO_PASSWORD.to_string()),
    ];
    let callback = match follow(
        &browser,
        base,
        browser.post(format!("{base}/login")).form(&fields),
    )
    .await?
    {
        Page::Left(location) => location,
        Page::Html(consent) if consent.contains("decision") => {
            // Every scope left ticked, as a browser submits the consent form.
            let fields = [
                ("csrf", input(&consent, "csrf")),
                ("request", input(&consent, "request")),
                ("decision", "approve".to_string()),
                ("scope", "rooster".to_string()),
                ("scope", "offline_access".to_string()),
            ];
            match follow(
                &browser,
                base,
                browser.post(format!("{base}/consent")).form(&fields),
            )
            .await?
            {
                Page::Left(location) => location,
                Page::Html(_) => return Err(refused),
            }
        }
        Page::Html(_) => return Err(refused),
    };
    let code = url::Url::parse(&callback)
        .ok()
        .and_then(|u| {
            u.query_pairs()
                .find(|(k, _)| k == "code")
                .map(|(_, v)| v.to_string())
        })
        .ok_or(Outcome::Refused(Duration::ZERO))?;
    let started = Instant::now();
    let response = step(
        browser
            .post(format!("{base}/token"))
            .basic_auth(PARTNER, Some(PARTNER_SECRET))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", PARTNER_REDIRECT),
                ("code_verifier", verifier.as_str()),
            ]),
    )
    .await?;
    match response.json::<Value>().await {
        Ok(body) if started.elapsed() < CLIENT_TIMEOUT => Ok(body),
        _ => Err(Outcome::NoAnswer),
    }
}

enum Page {
    Html(String),
    /// Sent away from the server (to the partner's redirect URI).
    Left(String),
}

/// Follow the server's own redirects until a page or a redirect that leaves the server.
async fn follow(
    browser: &reqwest::Client,
    base: &str,
    request: reqwest::RequestBuilder,
) -> Result<Page, Outcome> {
    let mut response = step(request).await?;
    for _ in 0..10 {
        if !response.status().is_redirection() {
            return response
                .text()
                .await
                .map(Page::Html)
                .map_err(|_| Outcome::NoAnswer);
        }
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let next = if location.starts_with('/') {
            format!("{base}{location}")
        } else {
            location
        };
        if !next.starts_with(base) {
            return Ok(Page::Left(next));
        }
        response = step(browser.get(&next)).await?;
    }
    Err(Outcome::Refused(Duration::ZERO))
}

/// The value of the hidden input `name` in `html`.
fn input(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    html.split(&marker)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default()
        .to_string()
}

fn url_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// Polls `/readyz`, remembering when each probe was sent, when it was answered, and what it
/// answered (0: nothing).
struct ReadyProbe {
    stop: Arc<AtomicBool>,
    worker: tokio::task::JoinHandle<Vec<Probe>>,
}

struct Probe {
    sent: Instant,
    answered: Instant,
    status: u16,
}

impl ReadyProbe {
    fn start(http: &reqwest::Client, base: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (http, flag, url) = (http.clone(), Arc::clone(&stop), format!("{base}/readyz"));
        let worker = tokio::spawn(async move {
            let mut seen = Vec::new();
            while !flag.load(Ordering::SeqCst) {
                let sent = Instant::now();
                let status = match http.get(&url).send().await {
                    Ok(response) => response.status().as_u16(),
                    Err(_) => 0,
                };
                seen.push(Probe {
                    sent,
                    answered: Instant::now(),
                    status,
                });
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            seen
        });
        Self { stop, worker }
    }

    async fn stop(self) -> Vec<Probe> {
        self.stop.store(true, Ordering::SeqCst);
        self.worker.await.unwrap_or_default()
    }
}

/// The live-policy check across instances: the school switches its link to the partner open
/// and closed on instance A; instance B introspects the partner's token all the while. An
/// answer is judged when the last switch before it was acknowledged more than [`FRESHNESS`]
/// before the introspection was sent; then `active` must equal the link's state.
struct Freshness {
    stop_toggler: Arc<AtomicBool>,
    stop_checker: Arc<AtomicBool>,
    toggler: tokio::task::JoinHandle<Vec<Switch>>,
    checker: tokio::task::JoinHandle<Vec<Introspected>>,
}

struct Switch {
    sent: Instant,
    /// `None`: not acknowledged (its effect is unknown).
    acknowledged: Option<Instant>,
    open: bool,
}

struct Introspected {
    sent: Instant,
    answered: Instant,
    active: bool,
}

impl Freshness {
    fn start(ctx: &Ctx, drill: &Arc<Drill>, a: &str, b: &str, school_token: &str) -> Self {
        let stop_toggler = Arc::new(AtomicBool::new(false));
        let stop_checker = Arc::new(AtomicBool::new(false));
        let (http, drill, flag, url, token) = (
            ctx.http.clone(),
            Arc::clone(drill),
            Arc::clone(&stop_toggler),
            format!("{a}/api/admin/schools/{SCHOOL}/links/{PARTNER}"),
            school_token.to_string(),
        );
        let toggler = tokio::spawn(async move {
            let mut switches = Vec::new();
            let mut open = true;
            while !flag.load(Ordering::SeqCst) {
                open = !open;
                let reason = format!("drill link {}", uuid::Uuid::new_v4().simple());
                let sent = Instant::now();
                let request = http
                    .put(&url)
                    .bearer_auth(&token)
                    .json(&json!({ "open": open, "reason": reason }));
                let acknowledged = match drill.send(request).await {
                    Sent::Acknowledged(_) => {
                        drill.remember(Written::Link { reason });
                        Some(Instant::now())
                    }
                    _ => None,
                };
                switches.push(Switch {
                    sent,
                    acknowledged,
                    open,
                });
                tokio::time::sleep(Duration::from_millis(1500)).await;
            }
            // Leave the link open, as the demo has it.
            if !open {
                let request = http
                    .put(&url)
                    .bearer_auth(&token)
                    .json(&json!({ "open": true, "reason": "drill: reopened" }));
                let _ = request.send().await;
            }
            switches
        });
        let (http, flag, url, token) = (
            ctx.http.clone(),
            Arc::clone(&stop_checker),
            format!("{b}/introspect"),
            ctx.partner_token.clone(),
        );
        let checker = tokio::spawn(async move {
            let mut seen = Vec::new();
            while !flag.load(Ordering::SeqCst) {
                let sent = Instant::now();
                let response = http
                    .post(&url)
                    .basic_auth(RESOURCE_SERVER.0, Some(RESOURCE_SERVER.1))
                    .form(&[("token", token.as_str())])
                    .send()
                    .await;
                if let Ok(response) = response {
                    if response.status().is_success() {
                        if let Ok(body) = response.json::<Value>().await {
                            seen.push(Introspected {
                                sent,
                                answered: Instant::now(),
                                active: body["active"].as_bool().unwrap_or(false),
                            });
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            seen
        });
        Self {
            stop_toggler,
            stop_checker,
            toggler,
            checker,
        }
    }

    /// `(judged, wrong)`.
    async fn stop(self) -> (u64, u64) {
        // The checker first: the toggler reopens the link as it stops, unrecorded.
        self.stop_checker.store(true, Ordering::SeqCst);
        let seen = self.checker.await.unwrap_or_default();
        self.stop_toggler.store(true, Ordering::SeqCst);
        let switches = self.toggler.await.unwrap_or_default();
        let (mut judged, mut wrong) = (0, 0);
        for answer in &seen {
            // The last switch sent before the answer came back decides what it should say.
            let Some(last) = switches.iter().rev().find(|s| s.sent <= answer.answered) else {
                continue;
            };
            let Some(acknowledged) = last.acknowledged else {
                continue;
            };
            if acknowledged + FRESHNESS > answer.sent {
                continue;
            }
            judged += 1;
            if answer.active != last.open {
                wrong += 1;
            }
        }
        (judged, wrong)
    }
}

// ---------------------------------------------------------------------------------------
// Verification

async fn verify(ctx: &Ctx, base: &str, db: &sqlx::PgPool, drill: &Drill) -> anyhow::Result<()> {
    let closures: HashSet<String> = sqlx::query_scalar("SELECT id FROM scope_closures")
        .fetch_all(db)
        .await?
        .into_iter()
        .collect();
    let closure_reasons: HashSet<String> = sqlx::query_scalar("SELECT reason FROM scope_closures")
        .fetch_all(db)
        .await?
        .into_iter()
        .collect();
    let audited: Vec<(String, String, Option<String>)> =
        sqlx::query_as("SELECT action, target, reason FROM audit_log")
            .fetch_all(db)
            .await?;
    let audited_targets: HashSet<(String, String)> = audited
        .iter()
        .map(|(action, target, _)| (action.clone(), target.clone()))
        .collect();
    let audited_reasons: HashSet<String> =
        audited.iter().filter_map(|(_, _, r)| r.clone()).collect();

    let refresh_tokens: HashSet<String> =
        sqlx::query_scalar("SELECT token_hash FROM refresh_tokens")
            .fetch_all(db)
            .await?
            .into_iter()
            .collect();
    let written = std::mem::take(&mut *drill.written.lock().unwrap_or_else(|e| e.into_inner()));
    let mut lost = 0;
    let mut tokens = Vec::new();
    let mut partner_tokens = Vec::new();
    for write in &written {
        match write {
            Written::Token(token) => tokens.push(token.clone()),
            Written::Closure { id, reason } => {
                let target = format!("school:{CLOSURE_SCHOOL}/closure:{id}");
                let there = closures.contains(id)
                    && audited_targets.contains(&("closure.create".to_string(), target))
                    && audited_reasons.contains(reason);
                if !there {
                    lost += 1;
                }
            }
            Written::Link { reason } => {
                if !audited_reasons.contains(reason) {
                    lost += 1;
                }
            }
            Written::Partner { access, refresh } => {
                if refresh_tokens.contains(&hash_token(refresh)) {
                    partner_tokens.push(access.clone());
                } else {
                    lost += 1;
                }
            }
        }
    }
    // Every acknowledged partner access token introspects as active: its grant and the token
    // are both there.
    for token in &partner_tokens {
        if !introspects_active(&ctx.http, base, token).await {
            lost += 1;
        }
    }
    // Every acknowledged management token must still open the admin API.
    let lost_tokens = Arc::new(AtomicU64::new(0));
    let queue = Arc::new(Mutex::new(tokens));
    let mut checkers = Vec::new();
    for _ in 0..4 {
        let (http, queue, lost_tokens, url) = (
            ctx.http.clone(),
            Arc::clone(&queue),
            Arc::clone(&lost_tokens),
            format!("{base}/api/admin/schools/{SCHOOL}/grants"),
        );
        checkers.push(tokio::spawn(async move {
            loop {
                let next = queue.lock().unwrap_or_else(|e| e.into_inner()).pop();
                let Some(token) = next else { break };
                if !token_works(&http, &url, &token).await {
                    lost_tokens.fetch_add(1, Ordering::SeqCst);
                }
            }
        }));
    }
    for checker in checkers {
        checker.await?;
    }
    lost += lost_tokens.load(Ordering::SeqCst);

    // A write that got no answer must not have been carried out (unless the process was
    // killed); one that was carried out must be whole: a closure in force without its audit
    // row is a half-done write, whatever the client was told.
    let unacknowledged = std::mem::take(
        &mut *drill
            .unacknowledged
            .lock()
            .unwrap_or_else(|e| e.into_inner()),
    );
    let done = |reason: &String| closure_reasons.contains(reason);
    let cut = unacknowledged
        .iter()
        .filter(|(reason, sent)| *sent == Sent::Unanswered && done(reason))
        .count() as u64;
    let refused_but_done = unacknowledged
        .iter()
        .filter(|(reason, sent)| *sent == Sent::Refused && done(reason))
        .count() as u64;
    let half_done = written
        .iter()
        .filter_map(|w| match w {
            Written::Closure { reason, .. } => Some(reason),
            _ => None,
        })
        .chain(unacknowledged.iter().map(|(reason, _)| reason))
        .filter(|reason| done(reason) && !audited_reasons.contains(*reason))
        .count() as u64;
    let mut kinds = [0u64; 4];
    for write in &written {
        kinds[match write {
            Written::Token(_) => 0,
            Written::Closure { .. } => 1,
            Written::Link { .. } => 2,
            Written::Partner { .. } => 3,
        }] += 1;
    }
    drill.with(|s| {
        s.kinds = kinds;
        s.lost += lost;
        s.checked += written.len() as u64;
        s.cut_mid_write += cut;
        s.refused_but_done += refused_but_done;
        s.half_done += half_done;
    });
    Ok(())
}

async fn introspects_active(http: &reqwest::Client, base: &str, token: &str) -> bool {
    for _ in 0..20 {
        let response = http
            .post(format!("{base}/introspect"))
            .basic_auth(RESOURCE_SERVER.0, Some(RESOURCE_SERVER.1))
            .form(&[("token", token)])
            .send()
            .await;
        match response {
            Ok(r) if r.status().is_success() => {
                return r
                    .json::<Value>()
                    .await
                    .is_ok_and(|body| body["active"] == Value::Bool(true));
            }
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
    false
}

/// Does the admin API accept this token? Rate limits (429) are waited out.
async fn token_works(http: &reqwest::Client, url: &str, token: &str) -> bool {
    for _ in 0..20 {
        match http.get(url).bearer_auth(token).send().await {
            Ok(response) if response.status().is_success() => return true,
            Ok(response)
                if response.status().as_u16() == 429 || response.status().as_u16() == 503 =>
            {
                let wait = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(1);
                tokio::time::sleep(Duration::from_secs(wait.min(5))).await;
            }
            Ok(_) => return false,
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    false
}

// ---------------------------------------------------------------------------------------
// Report

struct Check {
    what: &'static str,
    passed: bool,
    detail: String,
}

impl Check {
    fn new(what: &'static str, passed: bool, detail: String) -> Self {
        Self {
            what,
            passed,
            detail,
        }
    }
}

fn render(reports: &[(Arc<Drill>, Vec<Check>)]) -> (String, bool) {
    let mut out = String::from(
        "| drill | sent | acknowledged | failed fast (503 / refused) | refused (4xx) | no answer | \
         5xx other than 503 | hung | cut mid-write | half-done | checked afterwards | lost | answered wrong |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut passed = true;
    let mut notes = String::new();
    let (mut sent, mut acknowledged, mut lost) = (0, 0, 0);
    for (drill, checks) in reports {
        let s = drill.stats();
        let cuts_expected = drill.cuts_expected.load(Ordering::SeqCst);
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            drill.name,
            s.sent,
            s.acknowledged,
            s.failed_fast,
            s.refused,
            s.no_answer,
            s.server_errors,
            s.hung,
            if cuts_expected {
                format!("({} by the kill)", s.cut_mid_write)
            } else {
                s.cut_mid_write.to_string()
            },
            s.half_done,
            s.checked,
            s.lost,
            s.wrong
        ));
        sent += s.sent;
        acknowledged += s.acknowledged;
        lost += s.lost;
        let mut general = vec![
            Check::new(
                "every acknowledged write is there afterwards",
                s.lost == 0 && s.acknowledged > 0 && s.checked == s.acknowledged,
                format!(
                    "{} acknowledged, {} checked ({} management tokens, {} audited closures, \
                     {} link switches, {} partner flows with grant and tokens), {} lost",
                    s.acknowledged,
                    s.checked,
                    s.kinds[0],
                    s.kinds[1],
                    s.kinds[2],
                    s.kinds[3],
                    s.lost
                ),
            ),
            Check::new(
                "no 500, no hang, no wrong answer",
                s.server_errors == 0 && s.hung == 0 && s.wrong == 0,
                String::new(),
            ),
            Check::new(
                "no half-done write (every closure in force has its audit row)",
                s.half_done == 0,
                format!(
                    "{} half-done; {} answered as failed but carried out whole",
                    s.half_done, s.refused_but_done
                ),
            ),
        ];
        if !cuts_expected {
            general.push(Check::new(
                "no request cut mid-write (an unanswered write was not carried out)",
                s.cut_mid_write == 0,
                format!("{} writes got no answer", s.no_answer),
            ));
        }
        notes.push_str(&format!("\n{}:\n", drill.name));
        for check in general.iter().chain(checks.iter()) {
            passed &= check.passed;
            notes.push_str(&format!(
                "- [{}] {}{}\n",
                if check.passed { "pass" } else { "FAIL" },
                check.what,
                if check.detail.is_empty() {
                    String::new()
                } else {
                    format!(": {}", check.detail)
                }
            ));
        }
    }
    out.push_str(&format!(
        "\nIn all: {sent} writes sent, {acknowledged} acknowledged, {lost} acknowledged writes lost.\n"
    ));
    out.push_str(&notes);
    out.push_str(if passed {
        "\nAll fault drills passed.\n"
    } else {
        "\nSome fault drills FAILED.\n"
    });
    (out, passed)
}

fn summarise(statuses: &[u16]) -> Vec<(u16, usize)> {
    let mut counts: Vec<(u16, usize)> = Vec::new();
    for status in statuses {
        match counts.iter_mut().find(|(s, _)| s == status) {
            Some((_, n)) => *n += 1,
            None => counts.push((*status, 1)),
        }
    }
    counts
}

// ---------------------------------------------------------------------------------------
// Services and server processes

async fn create_database(admin_url: &str) -> anyhow::Result<(String, String)> {
    use sqlx::Connection;
    let name = format!("pw_drill_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(admin_url).await?;
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    let mut url = url::Url::parse(admin_url)?;
    url.set_path(&format!("/{name}"));
    Ok((url.to_string(), name))
}

async fn drop_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(admin_url).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(())
}

/// Migrate and load the demo through the library, then give Sara (16, consents herself) a
/// grant and an access token for the partner, for the live-policy check.
async fn seed(database_url: &str) -> anyhow::Result<String> {
    let mut config = poortwachter::config::Config {
        database_url: database_url.to_string(),
        database_max_connections: 2,
        ..Default::default()
    };
    config.normalise();
    let app = poortwachter::prepare_state(config, Arc::new(SystemClock)).await?;
    poortwachter::demo::load_if_empty(&app).await?;
    let now = SystemClock.now().timestamp();
    let pool = app.store.pool();
    let (student,): (String,) =
        sqlx::query_as("SELECT id FROM accounts WHERE school_brin = $1 AND username = $2")
            .bind(SCHOOL)
            .bind("100002")
            .fetch_one(pool)
            .await?;
    let grant = format!("drill-grant-{}", uuid::Uuid::new_v4().simple());
    let scopes = "openid naam rooster";
    sqlx::query(
        "INSERT INTO grants (id, student_id, client_id, scopes, given_by, given_by_role, \
         granted_at, expires_at, revoked_at) VALUES ($1, $2, $3, $4, $5, 'student', $6, $7, NULL)",
    )
    .bind(&grant)
    .bind(&student)
    .bind(PARTNER)
    .bind(scopes)
    .bind(&student)
    .bind(now)
    .bind(now + 86_400)
    .execute(pool)
    .await?;
    let token = random_token();
    sqlx::query(
        "INSERT INTO access_tokens (token_hash, family_id, client_id, grant_id, student_id, \
         actor_id, scopes, issued_at, expires_at, revoked_at) \
         VALUES ($1, $2, $3, $4, $5, NULL, $6, $7, $8, NULL)",
    )
    .bind(hash_token(&token))
    .bind(format!("drill-family-{}", uuid::Uuid::new_v4().simple()))
    .bind(PARTNER)
    .bind(&grant)
    .bind(&student)
    .bind(scopes)
    .bind(now)
    .bind(now + 4 * 3600)
    .execute(pool)
    .await?;
    app.store.close().await;
    Ok(token)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

struct Servers {
    binary: PathBuf,
    database_url: String,
    redis_url: String,
    namespace: String,
    work: PathBuf,
}

impl Servers {
    fn start(&self, name: &str, port: u16) -> anyhow::Result<Server> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.work.join(format!("server-{name}.log")))?;
        let child = Command::new(&self.binary)
            .arg("serve")
            .env("DATABASE_URL", &self.database_url)
            .env("REDIS_URL", &self.redis_url)
            .env("POORTWACHTER_REDIS_NAMESPACE", &self.namespace)
            .env("POORTWACHTER_BIND", format!("127.0.0.1:{port}"))
            .env("POORTWACHTER_ISSUER", format!("http://127.0.0.1:{port}"))
            // Every drill client comes from 127.0.0.1: the per-address request rate (meant
            // for one abusive address among many) would refuse the drill's own load. What the
            // drills measure is durability, not the rate limiter.
            .env("POORTWACHTER_RATE_LIMIT_PER_MINUTE", "100000000")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        record_pid(&self.work, child.id())?;
        Ok(Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
        })
    }
}

fn record_pid(work: &Path, pid: u32) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(work.join("pids"))?;
    writeln!(file, "{pid}")?;
    Ok(())
}

/// A running server process; killed when dropped, so a failed drill leaves nothing behind.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn signal(&self, signal: libc::c_int) {
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: kill(2) on our own child's pid, which we have not reaped yet.
            unsafe {
                libc::kill(pid, signal);
            }
        }
    }

    async fn wait_ready(&mut self, http: &reqwest::Client) -> anyhow::Result<()> {
        for _ in 0..200 {
            if self.status(http, "/readyz").await == Some(200) {
                return Ok(());
            }
            anyhow::ensure!(self.is_running(), "the server at {} exited", self.base);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!("the server at {} did not become ready", self.base)
    }

    async fn status(&self, http: &reqwest::Client, path: &str) -> Option<u16> {
        http.get(format!("{}{path}", self.base))
            .send()
            .await
            .ok()
            .map(|r| r.status().as_u16())
    }

    /// The exit code, or `None` when it did not exit in time (it is killed then) or died of
    /// a signal.
    async fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }

    async fn terminate_and_wait(&mut self, limit: Duration) {
        self.signal(libc::SIGTERM);
        let _ = self.wait_exit(limit).await;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
