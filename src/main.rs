//! The `poortwachter` command: parse the CLI, load configuration, start logging, run.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use poortwachter::clock::SystemClock;
use poortwachter::config::Config;
use poortwachter::storage::Store;
use poortwachter::{demo, prepare_state, Application};
use tracing_subscriber::EnvFilter;

/// Poortwachter: OAuth 2.0 / OpenID Connect login-and-consent portal for Dutch schools.
///
/// Configuration comes from built-in defaults, then the TOML file given with --config, then
/// environment variables (POORTWACHTER_ISSUER, POORTWACHTER_BIND, DATABASE_URL, ...).
#[derive(Parser)]
#[command(version, about, long_about)]
struct Cli {
    /// Optional TOML configuration file.
    #[arg(long, global = true, env = "POORTWACHTER_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (applies pending migrations first).
    Serve {
        /// Load the demo schools, accounts and partners into an empty database.
        #[arg(long)]
        demo: bool,
    },
    /// Apply pending database migrations and exit.
    Migrate,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn")),
        )
        .init();
    match run(Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "poortwachter stopped");
            eprintln!("poortwachter: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Migrate => {
            let store = Store::connect(&config.database_url, 1).await?;
            store.close().await;
            println!("migrations applied");
            Ok(())
        }
        Command::Serve { demo } => {
            tracing::info!(?config, "starting");
            let bind = config.bind.clone();
            let state = prepare_state(config, Arc::new(SystemClock)).await?;
            if demo && demo::load_if_empty(&state.store, state.now()).await? {
                tracing::info!(
                    "demo data loaded (password for every demo account: {})",
                    demo::DEMO_PASSWORD
                );
            }
            let listener = tokio::net::TcpListener::bind(&bind).await?;
            let app = Application::build_on(listener, state).await?;
            tracing::info!(address = %app.local_addr()?, issuer = %app.state().config.issuer, "listening");
            app.run_until_stopped().await?;
            Ok(())
        }
    }
}
