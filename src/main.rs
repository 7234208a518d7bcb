//! The `poortwachter` command: start logging (to stderr, so `--json` output stays clean on
//! stdout), then hand over to the command line in `poortwachter::cli`.

use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // The server logs what it does; a console command says what it did on stdout and keeps
    // its log to warnings, unless RUST_LOG asks for more.
    let serving = std::env::args().any(|a| a == "serve");
    let default_filter = if serving { "info,sqlx=warn" } else { "warn" };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter)),
        )
        .init();
    poortwachter::cli::main().await
}
