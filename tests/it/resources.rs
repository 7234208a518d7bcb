//! Bounded resources: idle sockets are closed and cannot starve the server, connections are
//! capped, `/authorize` parameters have length limits, anonymous requests do not fill the
//! database, and expired rows are purged.

use std::time::{Duration, Instant};

use futures_util::{stream, StreamExt};
use poortwachter::clock::Clock;
use reqwest::StatusCode;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::helpers::{Browser, Callback, Outcome, TestApp, STUDYSPACE};
use crate::on_every_backend;

/// Raise this process's descriptor limit: to 65,536 where the process may raise its hard
/// limit (root in CI), else to the hard limit it has; returns the limit now in force.
fn raise_fd_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        let wanted: libc::rlim_t = 65_536;
        if limit.rlim_max < wanted {
            let raised = libc::rlimit {
                rlim_cur: wanted,
                rlim_max: wanted,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
        limit.rlim_cur = limit.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
    }
    #[allow(clippy::unnecessary_cast)]
    let hard = limit.rlim_max as u64;
    hard
}

async fn healthz_answers_promptly(app: &TestApp) {
    healthz_answers_promptly_at(&app.backchannel(), &app.url("/healthz")).await;
}

/// How long a load balancer's health probe waits, at the short end (HAProxy's and most
/// cloud balancers' defaults are 2–5 s). Without the connection cap and eviction `/healthz`
/// does not answer at all under the flood, so this bound tells the two apart while leaving
/// room for a loaded CI machine running the debug build.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

async fn healthz_answers_promptly_at(client: &reqwest::Client, url: &str) {
    let response = tokio::time::timeout(PROBE_TIMEOUT, client.get(url).send())
        .await
        .expect("/healthz answers within a health probe's timeout")
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// Wait until the server has closed every one of `sockets` (EOF or reset).
async fn all_closed_by_server(sockets: Vec<TcpStream>, within: Duration) -> usize {
    let count = sockets.len();
    count - still_open_after(sockets, within).await.len()
}

/// The sockets of `sockets` the server has not closed (no EOF, no reset) within `within`.
async fn still_open_after(sockets: Vec<TcpStream>, within: Duration) -> Vec<TcpStream> {
    stream::iter(sockets)
        .map(|mut socket| async move {
            let mut buf = [0u8; 1];
            match tokio::time::timeout(within, socket.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => None,
                _ => Some(socket),
            }
        })
        .buffer_unordered(2048)
        .filter_map(std::future::ready)
        .collect()
        .await
}

/// Of sockets the client still believes open long after the server's header-read timeout,
/// how many the server never had: a request written on them is answered by a reset. In a
/// flood of connects the kernel completes some handshakes on the client side whose last ACK
/// it then drops on the server side (accept queue full, `tcp_abort_on_overflow=0`) and,
/// after its SYN-ACK retries (~63 s), forgets them; such a socket never reached the server
/// and holds no descriptor there. A socket the server accepted and kept idle would instead
/// answer the request, and is not counted.
async fn never_reached_the_server(sockets: Vec<TcpStream>) -> usize {
    use tokio::io::AsyncWriteExt;
    stream::iter(sockets)
        .map(|mut socket| async move {
            let _ = socket
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .await;
            let mut buf = [0u8; 64];
            matches!(
                tokio::time::timeout(Duration::from_secs(5), socket.read(&mut buf)).await,
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset
            )
        })
        .buffer_unordered(256)
        .filter(|reset| std::future::ready(*reset))
        .count()
        .await
}

/// The probe's attack at full size: 20,000 idle sockets. As in production the server is a
/// process of its own, and the sockets are held by two helper processes (this test binary
/// again, running [`hold_idle_sockets`]), so no process needs more descriptors than its own
/// limit (CI caps each process at 20,000, and an unprivileged test cannot raise that).
/// With such a limit the server holds ~19,500 connections and displaces the oldest idle one
/// for each newcomer beyond that; `/healthz` answers within a health probe's timeout throughout, and every
/// idle socket the server accepted is closed by the server in the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_neither_starve_healthz_nor_stay_open() {
    const SOCKETS_PER_HOLDER: usize = 10_000;
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let address = format!("127.0.0.1:{port}");
    let _server = tokio::process::Command::new(env!("CARGO_BIN_EXE_poortwachter"))
        .arg("serve")
        .env("POORTWACHTER_BIND", &address)
        .env("POORTWACHTER_ISSUER", format!("http://{address}"))
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/idle.db?mode=rwc", dir.path().display()),
        )
        .env("POORTWACHTER_HEADER_READ_TIMEOUT_SECS", "20")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the server binary starts");
    let healthz = format!("http://{address}/healthz");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !matches!(client.get(&healthz).send().await, Ok(r) if r.status() == 200) {
        assert!(
            Instant::now() < deadline,
            "the server process did not come up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let mut holders = Vec::new();
    for _ in 0..2 {
        let mut holder = tokio::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "resources::hold_idle_sockets",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("HOLD_ADDRESS", &address)
            .env("HOLD_COUNT", SOCKETS_PER_HOLDER.to_string())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let lines = tokio::io::BufReader::new(holder.stdout.take().unwrap());
        holders.push((holder, tokio::io::AsyncBufReadExt::lines(lines)));
    }
    for (_, lines) in &mut holders {
        let held = next_report(lines, "HELD").await;
        assert_eq!(held, SOCKETS_PER_HOLDER, "every socket connected");
    }
    let mut open = 0;
    for (_, lines) in &mut holders {
        open += next_report(lines, "OPEN").await;
    }
    eprintln!(
        "{} idle sockets opened, {open} held open by the server",
        2 * SOCKETS_PER_HOLDER
    );
    // The server is at its cap (its descriptor limit less a reserve), or the flood did not
    // test what it should.
    assert!(
        open >= 19_000,
        "only {open} sockets open at once: the flood did not reach the cap"
    );
    // Each check on a new connection, as a load balancer's probe makes it (a kept-alive
    // connection from before the flood would hold a place of its own).
    let fresh = || {
        reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap()
    };
    drop(client);
    for _ in 0..3 {
        healthz_answers_promptly_at(&fresh(), &healthz).await;
    }

    // Idle connections are closed by the server (displaced or after the header-read timeout).
    // The few whose handshake the kernel dropped before the server could accept them were
    // never the server's to close; they are counted apart, and must stay rare.
    for (_, lines) in &mut holders {
        let closed = next_report(lines, "CLOSED").await;
        let unseen = next_report(lines, "UNSEEN").await;
        eprintln!("{closed} idle sockets closed by the server, {unseen} never reached it");
        assert_eq!(
            closed + unseen,
            SOCKETS_PER_HOLDER,
            "every idle socket the server accepted was closed by the server"
        );
        assert!(
            unseen <= SOCKETS_PER_HOLDER / 100,
            "{unseen} handshakes lost in the kernel: the flood did not reach the server"
        );
    }
    for (mut holder, _) in holders {
        assert!(holder.wait().await.unwrap().success());
    }
    healthz_answers_promptly_at(&fresh(), &healthz).await;
}

/// Not a test of its own: the socket holder that
/// [`idle_sockets_neither_starve_healthz_nor_stay_open`] starts as a separate process. It
/// opens `HOLD_COUNT` idle connections, reports `HELD n` and how many are still `OPEN n` a
/// moment later, waits until the server has closed them and reports `CLOSED n`. Without
/// `HOLD_ADDRESS` it does nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a helper process for idle_sockets_neither_starve_healthz_nor_stay_open"]
async fn hold_idle_sockets() {
    let Ok(address) = std::env::var("HOLD_ADDRESS") else {
        return;
    };
    let count: usize = std::env::var("HOLD_COUNT").unwrap().parse().unwrap();
    raise_fd_limit();
    // Connect many at a time, as the probe did, so they are all open at once.
    let idle: Vec<TcpStream> = stream::iter(0..count)
        .map(|_| TcpStream::connect(address.as_str()))
        .buffer_unordered(64)
        .map(Result::unwrap)
        .collect()
        .await;
    println!("HELD {}", idle.len());
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Still open: no end-of-stream or reset waiting to be read.
    let open = idle
        .iter()
        .filter(|socket| {
            let mut buf = [0u8; 1];
            matches!(socket.try_read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
        })
        .count();
    println!("OPEN {open}");
    let count = idle.len();
    let left = still_open_after(idle, Duration::from_secs(60)).await;
    println!("CLOSED {}", count - left.len());
    // Past the kernel's SYN-ACK retries, so a handshake the server side dropped is forgotten.
    if !left.is_empty() {
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
    println!("UNSEEN {}", never_reached_the_server(left).await);
}

/// The number in the holder's next `<word> n` line.
async fn next_report(
    lines: &mut tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    word: &str,
) -> usize {
    let wait = tokio::time::timeout(Duration::from_secs(90), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            // libtest prints its own "test … " prefix on the same line as the first report.
            if let Some((_, n)) = line.split_once(&format!("{word} ")) {
                return n.split_whitespace().next().unwrap().parse().unwrap();
            }
        }
        panic!("the socket holder ended without reporting {word}");
    });
    wait.await.expect("the socket holder reports in time")
}

/// A keep-alive connection that goes quiet is closed too (the same timer runs between
/// requests), and so is one that sends half a request head.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_keep_alive_connections_are_closed() {
    use tokio::io::AsyncWriteExt;
    let app = TestApp::spawn_sqlite_with(|c| c.header_read_timeout_secs = 1).await;
    let address = app.issuer.trim_start_matches("http://").to_string();
    let mut kept = TcpStream::connect(&address).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = vec![0u8; 1024];
    let n = kept.read(&mut answer).await.unwrap();
    assert!(String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 200"));
    let mut slow = TcpStream::connect(&address).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost:")
        .await
        .unwrap();
    let started = Instant::now();
    assert_eq!(
        all_closed_by_server(vec![kept, slow], Duration::from_secs(5)).await,
        2
    );
    assert!(started.elapsed() < Duration::from_secs(4));
}

/// At the cap a newcomer displaces the oldest connection that never sent a request, and is
/// served; when every connection is busy with a request, the newcomer is closed at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_cap_the_oldest_idle_connection_makes_room() {
    use tokio::io::AsyncWriteExt;
    let app = TestApp::spawn_sqlite_with(|c| {
        c.max_connections = 16;
        c.header_read_timeout_secs = 5;
    })
    .await;
    let address = app.issuer.trim_start_matches("http://").to_string();
    let mut idle = Vec::new();
    for _ in 0..16 {
        idle.push(TcpStream::connect(&address).await.unwrap());
        // Connections are registered in accept order; keep that order certain.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut newcomer = TcpStream::connect(&address).await.unwrap();
    let started = Instant::now();
    let oldest = idle.remove(0);
    assert_eq!(
        all_closed_by_server(vec![oldest], Duration::from_secs(1)).await,
        1,
        "the oldest idle connection was displaced"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    newcomer
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    newcomer.read_to_end(&mut answer).await.unwrap();
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
    // The other idle ones are closed by the header-read timeout; the server answers after.
    assert_eq!(all_closed_by_server(idle, Duration::from_secs(8)).await, 15);
    healthz_answers_promptly(&app).await;
}

async fn over_long_authorize_parameters_are_invalid_requests(app: TestApp) {
    let browser = app.browser();
    // Beyond a limit, after the client is verified: invalid_request back to the client,
    // naming the parameter, without echoing the over-long state.
    for (name, max) in [
        ("state", 512),
        ("nonce", 512),
        ("login_hint", 256),
        ("code_challenge", 128),
        ("acr_values", 256),
        ("scope", 512),
    ] {
        let authorization = app
            .authorization(STUDYSPACE.0, "openid rooster")
            .set(name, &"a".repeat(max + 1));
        let callback = browser.open(&authorization.url()).await.callback();
        assert_eq!(callback.get("error"), Some("invalid_request"), "{name}");
        assert_eq!(
            callback.get("error_description"),
            Some(format!("{name} is longer than {max} bytes").as_str())
        );
        assert_eq!(callback.get("state"), None);
    }
    // At the limit the request goes ahead (to the login page).
    let at_limit = app
        .authorization(STUDYSPACE.0, "openid rooster")
        .set("state", &"s".repeat(512))
        .set("nonce", &"n".repeat(512));
    let page = browser.open(&at_limit.url()).await.page();
    assert!(page.html.contains("name=\"password\""));

    // Client id and redirect URI are checked before anything: a page, never a redirect.
    for (name, len) in [("client_id", 129), ("redirect_uri", 2049)] {
        let authorization = app
            .authorization(STUDYSPACE.0, "openid rooster")
            .set(name, &"x".repeat(len));
        let page = browser.open(&authorization.url()).await.page();
        assert_eq!(page.status, StatusCode::BAD_REQUEST);
        assert!(page.html.contains(name), "{}", page.html);
    }
    // A query beyond 16 KiB is refused as a whole.
    let huge = app
        .authorization(STUDYSPACE.0, "openid rooster")
        .set("x-padding", &"p".repeat(17 * 1024));
    let page = browser.open(&huge.url()).await.page();
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
}

/// Rows and bytes the browser flow has stored before login.
async fn pending_storage(app: &TestApp) -> (i64, i64) {
    let (requests, request_bytes): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COALESCE(SUM(LENGTH(id) + LENGTH(session_id) + LENGTH(client_id) \
         + LENGTH(redirect_uri) + LENGTH(scopes) + COALESCE(LENGTH(state), 0) \
         + COALESCE(LENGTH(nonce), 0) + LENGTH(code_challenge) + COALESCE(LENGTH(login_hint), 0) \
         + COALESCE(LENGTH(school_hint), 0) + 64), 0) FROM authorization_requests",
    )
    .fetch_one(app.state.store.pool())
    .await
    .unwrap();
    let (sessions, session_bytes): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COALESCE(SUM(LENGTH(id) + LENGTH(cookie_hash) + LENGTH(csrf_token) \
         + 48), 0) FROM browser_sessions",
    )
    .fetch_one(app.state.store.pool())
    .await
    .unwrap();
    (requests + sessions, request_bytes + session_bytes)
}

async fn anonymous_authorize_requests_do_not_fill_the_database(app: TestApp) {
    let (rows_before, bytes_before) = pending_storage(&app).await;
    // 1,000 cookieless requests with huge parameters (the probe used a 60 KB state), and
    // 1,000 more just over the state limit: nothing is stored for either.
    let app = &app;
    let outcomes: Vec<bool> = stream::iter(0..2_000)
        .map(|i| async move {
            let state = if i % 2 == 0 {
                "s".repeat(60 * 1024)
            } else {
                "s".repeat(513)
            };
            // Every fourth also has a login hint that takes the head past 64 KiB.
            let hint = if i % 4 == 0 { 10_000 } else { 200 };
            let url = app
                .authorization(STUDYSPACE.0, "openid rooster")
                .set("state", &state)
                .set("login_hint", &"h".repeat(hint))
                .url();
            // Beyond 64 KiB of request head the server answers 431 and closes, possibly
            // before the client finished writing: that refusal shows as a send error.
            match app.backchannel().get(url).send().await {
                Ok(response) => {
                    response.status().is_client_error() || response.status().is_redirection()
                }
                Err(e) => i % 4 == 0 && !e.is_timeout(),
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    assert!(outcomes.iter().all(|refused| *refused));
    assert_eq!(pending_storage(app).await, (rows_before, bytes_before));

    // 1,000 requests at the limits from one browser: its session is reused and only the
    // newest pending requests are kept.
    let browser: Browser = app.browser();
    for _ in 0..1_000 {
        let url = app
            .authorization(STUDYSPACE.0, "openid rooster")
            .set("state", &"s".repeat(512))
            .set("nonce", &"n".repeat(512))
            .set("login_hint", &"h".repeat(256))
            .url();
        match browser.open(&url).await {
            Outcome::Page(page) => assert_eq!(page.status, 200),
            Outcome::Left(location) => panic!("{:?}", Callback::parse(&location)),
        }
    }
    let (rows, bytes) = pending_storage(app).await;
    assert!(rows - rows_before <= 11, "{rows} rows");
    assert!(
        bytes - bytes_before < 1024 * 1024,
        "grew by {} bytes",
        bytes - bytes_before
    );

    // After expiry the purge deletes them, and says so in /metrics.
    app.clock.advance(chrono::Duration::minutes(31));
    let purged = poortwachter::purge_expired_rows(&app.state).await.unwrap();
    assert!(purged >= 2, "{purged}");
    assert_eq!(
        pending_storage(app).await.0,
        0,
        "purged {purged}, left {:?}",
        pending_storage(app).await
    );
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("poortwachter_purged_rows_total{table=\"authorization_requests\"}"),
        "{metrics}"
    );
}

/// Expired codes and tokens go too, after a grace period; the newest access token of each
/// grant stays so "Mijn apps" still says when the partner last received access.
async fn expired_codes_and_tokens_are_purged(app: TestApp) {
    app.sara_tokens("openid rooster").await;
    app.clock.advance(chrono::Duration::minutes(1));
    app.sara_tokens("openid rooster").await;
    let count = |table: &'static str| {
        let pool = app.state.store.pool().clone();
        async move {
            let (n,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table}"))
                .fetch_one(&pool)
                .await
                .unwrap();
            n
        }
    };
    assert_eq!(count("access_tokens").await, 2);
    assert_eq!(count("authorization_codes").await, 2);
    app.management_token("beheer-12ab-demo").await;
    // Past the 8-hour browser session too.
    app.clock.advance(chrono::Duration::hours(9));
    poortwachter::purge_expired_rows(&app.state).await.unwrap();
    assert_eq!(count("authorization_codes").await, 0);
    assert_eq!(count("access_tokens").await, 1, "the newest stays");
    assert_eq!(count("management_tokens").await, 0);
    assert_eq!(count("refresh_tokens").await, 0, "no offline_access asked");
    assert_eq!(count("browser_sessions").await, 0);
    let now = app.clock.now();
    let sara = app
        .state
        .store
        .find_account_by_login("12AB", "100002")
        .await
        .unwrap()
        .unwrap();
    let views = app.state.store.grants_about(&sara.id, now).await.unwrap();
    assert!(views[0].last_token_at.is_some());
}

/// A purge that finds nothing expired writes nothing: no statement, and nothing in the policy
/// change log for any instance to act on.
async fn a_purge_with_nothing_expired_changes_nothing(app: TestApp) {
    // Something live that the purge looks at: Sara's tokens.
    app.sara_tokens("openid offline_access rooster").await;
    let before = app.state.store.latest_policy_change().await.unwrap();
    let purged = poortwachter::purge_expired_rows(&app.state).await.unwrap();
    assert_eq!(purged, 0);
    assert_eq!(
        app.state.store.latest_policy_change().await.unwrap(),
        before
    );
}

on_every_backend!(
    a_purge_with_nothing_expired_changes_nothing,
    over_long_authorize_parameters_are_invalid_requests,
    anonymous_authorize_requests_do_not_fill_the_database,
    expired_codes_and_tokens_are_purged,
);
