//! The `poortwachter` command: start logging (to stderr, so `--json` output stays clean on
//! stdout), then hand over to the command line in `poortwachter::cli`.

use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn")),
        )
        .init();
    poortwachter::cli::main().await
}
