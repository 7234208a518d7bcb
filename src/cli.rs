//! The `poortwachter` command line: the server, migrations, and the operator's registrations
//! at the console. Every registration calls the same `onboarding` functions as the admin API,
//! audited as the actor `console`. `--json` prints machine-readable output for scripts.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};
use serde::Serialize;

use crate::clock::SystemClock;
use crate::config::Config;
use crate::onboarding::registrations::{
    self, AccreditationChange, Issue, NewManagementClient, NewPartner, NewResourceServer,
    NewSchool, PartnerPatch, SchoolPatch,
};
use crate::onboarding::{Actor, OnboardingError};
use crate::storage::Store;
use crate::{demo, demo_apps, prepare_state, AppState, Application};

/// Poortwachter: OAuth 2.0 / OpenID Connect login-and-consent portal for Dutch schools.
///
/// Configuration comes from built-in defaults, then the TOML file given with --config, then
/// environment variables (POORTWACHTER_ISSUER, POORTWACHTER_BIND, DATABASE_URL, ...).
#[derive(Parser)]
#[command(name = "poortwachter", version, about, long_about)]
pub struct Cli {
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
        /// Load the demo schools, accounts and partners into an empty database, and start the
        /// demo partner app (127.0.0.1:9000) and school-data API (127.0.0.1:9200) beside it.
        #[arg(long)]
        demo: bool,
    },
    /// Run only the demo partner app "Studyspace (demo)", talking to Poortwachter over HTTP.
    #[command(name = "demo-partner-app")]
    DemoPartnerApp {
        /// Poortwachter's issuer URL.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        issuer: String,
        /// Address to listen on.
        #[arg(long, default_value = crate::demo_apps::PARTNER_APP_BIND)]
        bind: String,
        /// Where browsers reach the app (its redirect URI is this plus `/callback`, and must
        /// be registered); by default `http://` and the bind address.
        #[arg(long)]
        public_url: Option<String>,
        /// Base URL of the school-data API.
        #[arg(long, default_value = "http://127.0.0.1:9200")]
        school_api: String,
    },
    /// Run only the demo school-data API (`GET /rooster`, `/huiswerk`, `/cijfers`).
    #[command(name = "demo-school-api")]
    DemoSchoolApi {
        /// Poortwachter's issuer URL (tokens are introspected there).
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        issuer: String,
        /// Address to listen on.
        #[arg(long, default_value = crate::demo_apps::SCHOOL_API_BIND)]
        bind: String,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// First start: create a management client with scope `platform` and print its secret
    /// once. Refuses when one exists, unless --force (which adds another).
    Bootstrap {
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        output: Output,
    },
    /// Print the admin API's OpenAPI description (JSON).
    Openapi,
    /// Schools (tenants).
    #[command(subcommand)]
    School(SchoolCommand),
    /// Partners: registration, accreditation, secret rotation, deactivation.
    #[command(subcommand)]
    Partner(PartnerCommand),
    /// Resource servers (the school-data API).
    #[command(subcommand, name = "resource-server")]
    ResourceServer(AddNamed),
    /// Management clients for the admin API.
    #[command(subcommand, name = "management-client")]
    ManagementClient(ManagementClientCommand),
    /// Platform operators (the platform console at /platform).
    #[command(subcommand)]
    Operator(OperatorCommand),
    /// The school's people from its SIS: a OneRoster CSV export.
    #[command(subcommand)]
    Roster(RosterCommand),
    /// Activation codes for the school's letters (also the password reset): a new code ends
    /// the person's earlier code, password and sessions.
    #[command(name = "activation-codes")]
    ActivationCodes {
        #[arg(long)]
        school: String,
        /// Every student or every parent of the school.
        #[arg(long, value_parser = ["student", "parent"])]
        role: Option<String>,
        /// These people (repeat for more).
        #[arg(long = "username")]
        usernames: Vec<String>,
        /// Write the letters' data as CSV to this file (else to standard output).
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        output: Output,
    },
}

#[derive(Subcommand)]
enum OperatorCommand {
    /// A new operator: prints an activation code (valid 7 days) for /console/activate.
    Create {
        #[arg(long)]
        username: String,
        #[command(flatten)]
        output: Output,
    },
}

#[derive(Args, Clone, Copy)]
struct Output {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum SchoolCommand {
    /// Register a school: `school add --brin 56EF --name "Het Baken"`.
    Add {
        #[arg(long)]
        brin: String,
        #[arg(long)]
        name: String,
        #[command(flatten)]
        output: Output,
    },
    /// List the schools.
    List {
        #[command(flatten)]
        output: Output,
    },
    /// Rename a school.
    Rename {
        brin: String,
        #[arg(long)]
        name: String,
        #[command(flatten)]
        output: Output,
    },
}

#[derive(Subcommand)]
enum PartnerCommand {
    /// Register a partner (starts pending: no tokens until accredited).
    Add {
        #[arg(long)]
        name: String,
        /// Exact redirect URI; repeat for more.
        #[arg(long = "redirect-uri", required = true)]
        redirect_uris: Vec<String>,
        /// Scopes, space-separated or repeated: openid offline_access naam rooster huiswerk cijfers.
        #[arg(long = "scope", required = true, value_delimiter = ' ')]
        scopes: Vec<String>,
        #[arg(long = "auth-method", default_value = "client_secret_basic")]
        auth_method: String,
        /// Contact e-mail address; repeat for more.
        #[arg(long = "contact")]
        contacts: Vec<String>,
        #[command(flatten)]
        output: Output,
    },
    /// List the partners.
    List {
        #[command(flatten)]
        output: Output,
    },
    /// Show one partner.
    Show {
        client_id: String,
        #[command(flatten)]
        output: Output,
    },
    /// Change a partner's registration (only the options given).
    Update {
        client_id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long = "redirect-uri")]
        redirect_uris: Option<Vec<String>>,
        #[arg(long = "scope", value_delimiter = ' ')]
        scopes: Option<Vec<String>>,
        #[arg(long = "auth-method")]
        auth_method: Option<String>,
        #[arg(long = "contact")]
        contacts: Option<Vec<String>>,
        /// `true`: authorization requests only pushed to `/par` first (RFC 9126).
        #[arg(long = "require-par")]
        require_par: Option<bool>,
        #[command(flatten)]
        output: Output,
    },
    /// Accredit a partner (optionally until a moment, RFC 3339).
    Accredit {
        client_id: String,
        #[arg(long)]
        until: Option<DateTime<Utc>>,
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        output: Output,
    },
    /// Suspend a partner's accreditation: its tokens stop at the next call.
    Suspend {
        client_id: String,
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        output: Output,
    },
    /// New secret; the old one keeps working for the grace period.
    RotateSecret {
        client_id: String,
        #[command(flatten)]
        output: Output,
    },
    /// Deactivate (no authorization, no tokens; grants are kept).
    Deactivate {
        client_id: String,
        #[command(flatten)]
        output: Output,
    },
    /// Reactivate a deactivated partner.
    Reactivate {
        client_id: String,
        #[command(flatten)]
        output: Output,
    },
    /// Delete a partner that never had grants; one with grants is deactivated instead.
    Remove {
        client_id: String,
        #[command(flatten)]
        output: Output,
    },
}

#[derive(Subcommand)]
enum RosterCommand {
    /// Import a OneRoster 1.1/1.2 CSV export (a folder or a zip): `roster import --school 12AB PATH`.
    Import {
        #[arg(long)]
        school: String,
        /// The folder or zip with manifest.csv, orgs.csv, users.csv and demographics.csv.
        path: PathBuf,
        /// Show what would change, and every error, without changing anything.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        output: Output,
    },
}

#[derive(Subcommand)]
enum AddNamed {
    /// Register one: `resource-server add --name "Schooldata-API"`.
    Add {
        #[arg(long)]
        name: String,
        #[command(flatten)]
        output: Output,
    },
}

#[derive(Subcommand)]
enum ManagementClientCommand {
    /// Register one: `management-client add --name "Beheer Het Baken" --scope beheer:56EF`.
    Add {
        #[arg(long)]
        name: String,
        /// `platform` or `beheer:<BRIN>`.
        #[arg(long)]
        scope: String,
        #[command(flatten)]
        output: Output,
    },
}

/// Parse the command line and run it; the exit code tells scripts whether it worked.
pub async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("poortwachter: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Print a result as JSON or as `key: value` lines.
fn print<T: Serialize>(output: Output, value: &T, heading: &str) -> anyhow::Result<()> {
    if output.json {
        println!("{}", serde_json::to_string_pretty(value)?);
        return Ok(());
    }
    if !heading.is_empty() {
        println!("{heading}");
    }
    match serde_json::to_value(value)? {
        serde_json::Value::Object(map) => {
            let width = map.keys().map(String::len).max().unwrap_or(0);
            for (key, value) in map {
                let shown = match value {
                    serde_json::Value::String(s) => s,
                    serde_json::Value::Null => "-".into(),
                    serde_json::Value::Array(items) => items
                        .iter()
                        .map(|i| i.as_str().map(str::to_string).unwrap_or(i.to_string()))
                        .collect::<Vec<_>>()
                        .join(" "),
                    other => other.to_string(),
                };
                println!("  {key:width$}  {shown}");
            }
        }
        other => println!("{other}"),
    }
    Ok(())
}

/// An onboarding refusal is the operator's to fix: say what and exit non-zero.
fn refused(e: OnboardingError) -> anyhow::Error {
    match e {
        OnboardingError::Database(e) => anyhow::anyhow!("database error: {e}"),
        OnboardingError::Internal(e) => e,
        other => anyhow::anyhow!("{other}"),
    }
}

const SECRET_ONCE: &str =
    "The secret is shown only now (only its hash is stored): keep it in a password manager.";

async fn console_state(config: Config) -> anyhow::Result<AppState> {
    prepare_state(config, Arc::new(SystemClock)).await
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = Config::load(cli.config.as_deref())?;
    let console = Actor::console();
    match cli.command {
        Command::Migrate => {
            let store = Store::connect(&config.database_url, 1).await?;
            store.close().await;
            println!("migrations applied");
        }
        Command::Openapi => {
            print!("{}", crate::api::openapi_json()?);
        }
        Command::Serve { demo } => {
            tracing::info!(?config, "starting");
            let bind = config.bind.clone();
            let state = prepare_state(config, Arc::new(SystemClock)).await?;
            if demo && demo::load_if_empty(&state).await? {
                tracing::info!(
                    "demo data loaded (password for every demo account: {})",
                    demo::DEMO_PASSWORD
                );
            }
            if state.config.cache_warm_secs > 0 {
                crate::cache::warm::spawn(
                    Arc::clone(&state.cache),
                    state.store.clone(),
                    state.clock.now(),
                    std::time::Duration::from_secs(state.config.cache_warm_secs),
                );
            }
            let listener = tokio::net::TcpListener::bind(&bind).await?;
            let app = Application::build_on(listener, state).await?;
            if demo {
                start_demo_apps(&app.state().config.issuer).await;
            }
            tracing::info!(address = %app.local_addr()?, issuer = %app.state().config.issuer, "listening");
            app.run_until_stopped().await?;
        }
        Command::DemoPartnerApp {
            issuer,
            bind,
            public_url,
            school_api,
        } => {
            let public_url = public_url.unwrap_or_else(|| format!("http://{bind}"));
            let config = demo_apps::PartnerAppConfig::demo(
                &issuer,
                &public_url,
                &school_api,
                Arc::new(SystemClock),
            );
            let listener = tokio::net::TcpListener::bind(&bind).await?;
            tracing::info!(%bind, %issuer, redirect_uri = %config.redirect_uri(), "demo partner app listening");
            axum::serve(listener, demo_apps::partner_app::router(config)).await?;
        }
        Command::DemoSchoolApi { issuer, bind } => {
            let listener = tokio::net::TcpListener::bind(&bind).await?;
            tracing::info!(%bind, %issuer, "demo school-data API listening");
            axum::serve(
                listener,
                demo_apps::school_api::router(demo_apps::SchoolApiConfig::demo(&issuer)),
            )
            .await?;
        }
        Command::Operator(OperatorCommand::Create { username, output }) => {
            let state = console_state(config).await?;
            let created =
                crate::onboarding::operators::create_operator(&state, &console, &username)
                    .await
                    .map_err(refused)?;
            print(
                output,
                &created,
                "Operator created. The activation code is shown only now (only its hash is \
                 stored); the operator chooses a password with it and then sets up the \
                 second factor at the first login.",
            )?;
        }
        Command::Bootstrap { force, output } => {
            let state = console_state(config).await?;
            let credentials = registrations::bootstrap(&state, force)
                .await
                .map_err(refused)?;
            print(
                output,
                &credentials,
                &format!("Platform management client created. {SECRET_ONCE}"),
            )?;
        }
        Command::School(command) => {
            let state = console_state(config).await?;
            match command {
                SchoolCommand::Add { brin, name, output } => {
                    let school =
                        registrations::register_school(&state, &console, NewSchool { brin, name })
                            .await
                            .map_err(refused)?;
                    print(output, &school, "School registered.")?;
                }
                SchoolCommand::List { output } => {
                    let schools = registrations::list_schools(&state, &console)
                        .await
                        .map_err(refused)?;
                    if output.json {
                        print(output, &schools, "")?;
                    } else {
                        for school in schools {
                            println!("{}  {}", school.brin, school.name);
                        }
                    }
                }
                SchoolCommand::Rename { brin, name, output } => {
                    let school = registrations::update_school(
                        &state,
                        &console,
                        &brin,
                        SchoolPatch { name: Some(name) },
                    )
                    .await
                    .map_err(refused)?;
                    print(output, &school, "School renamed.")?;
                }
            }
        }
        Command::Partner(command) => {
            let state = console_state(config).await?;
            partner(&state, &console, command).await?;
        }
        Command::ResourceServer(AddNamed::Add { name, output }) => {
            let state = console_state(config).await?;
            let credentials = registrations::register_resource_server(
                &state,
                &console,
                NewResourceServer { name },
                Issue::Generate,
            )
            .await
            .map_err(refused)?;
            print(
                output,
                &credentials,
                &format!("Resource server registered. {SECRET_ONCE}"),
            )?;
        }
        Command::ManagementClient(ManagementClientCommand::Add {
            name,
            scope,
            output,
        }) => {
            let state = console_state(config).await?;
            let credentials = registrations::register_management_client(
                &state,
                &console,
                NewManagementClient { name, scope },
                Issue::Generate,
            )
            .await
            .map_err(refused)?;
            print(
                output,
                &credentials,
                &format!("Management client registered. {SECRET_ONCE}"),
            )?;
        }
        Command::Roster(RosterCommand::Import {
            school,
            path,
            dry_run,
            output,
        }) => {
            let state = console_state(config).await?;
            return crate::onboarding::roster::cli::run_cli(
                &state,
                &school,
                &path,
                dry_run,
                output.json,
            )
            .await;
        }
        Command::ActivationCodes {
            school,
            role,
            usernames,
            out,
            output,
        } => {
            let state = console_state(config).await?;
            let role = role
                .as_deref()
                .and_then(crate::domain::account::Role::parse);
            return crate::onboarding::activation::run_cli(
                &state,
                &school,
                role,
                usernames,
                out,
                output.json,
            )
            .await;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `serve --demo`: the partner app and the school-data API beside the server, on their fixed
/// demo ports. A port already taken is a warning: the server itself is what matters.
async fn start_demo_apps(issuer: &str) {
    let partner = demo_apps::PartnerAppConfig::demo(
        issuer,
        &format!("http://{}", demo_apps::PARTNER_APP_BIND),
        &format!("http://{}", demo_apps::SCHOOL_API_BIND),
        Arc::new(SystemClock),
    );
    demo_apps::spawn_on(
        demo_apps::PARTNER_APP_BIND,
        demo_apps::partner_app::router(partner),
        "demo-partner-app",
    )
    .await;
    demo_apps::spawn_on(
        demo_apps::SCHOOL_API_BIND,
        demo_apps::school_api::router(demo_apps::SchoolApiConfig::demo(issuer)),
        "demo-school-api",
    )
    .await;
}

async fn partner(state: &AppState, console: &Actor, command: PartnerCommand) -> anyhow::Result<()> {
    match command {
        PartnerCommand::Add {
            name,
            redirect_uris,
            scopes,
            auth_method,
            contacts,
            output,
        } => {
            let credentials = registrations::register_partner(
                state,
                console,
                NewPartner {
                    name,
                    redirect_uris,
                    scopes: scopes.into_iter().filter(|s| !s.is_empty()).collect(),
                    token_endpoint_auth_method: auth_method,
                    contacts,
                    jwks: None,
                    jwks_uri: None,
                },
                Issue::Generate,
            )
            .await
            .map_err(refused)?;
            print(
                output,
                &credentials,
                &format!(
                    "Partner registered (pending: accredit it before it can get tokens). {SECRET_ONCE}"
                ),
            )?;
        }
        PartnerCommand::List { output } => {
            let partners = registrations::list_partners(state, console)
                .await
                .map_err(refused)?;
            if output.json {
                print(output, &partners, "")?;
            } else {
                for p in partners {
                    println!(
                        "{}  {}  {}{}",
                        p.client_id,
                        p.name,
                        p.accreditation,
                        if p.active { "" } else { " (deactivated)" }
                    );
                }
            }
        }
        PartnerCommand::Show { client_id, output } => {
            let partner = registrations::get_partner(state, console, &client_id)
                .await
                .map_err(refused)?;
            print(output, &partner, "")?;
        }
        PartnerCommand::Update {
            client_id,
            name,
            redirect_uris,
            scopes,
            auth_method,
            contacts,
            require_par,
            output,
        } => {
            let partner = registrations::update_partner(
                state,
                console,
                &client_id,
                PartnerPatch {
                    name,
                    redirect_uris,
                    scopes: scopes.map(|s| s.into_iter().filter(|s| !s.is_empty()).collect()),
                    token_endpoint_auth_method: auth_method,
                    contacts,
                    active: None,
                    require_pushed_authorization_requests: require_par,
                    jwks: None,
                    jwks_uri: None,
                    post_logout_redirect_uris: None,
                },
            )
            .await
            .map_err(refused)?;
            print(output, &partner, "Partner updated.")?;
        }
        PartnerCommand::Accredit {
            client_id,
            until,
            reason,
            output,
        } => {
            let view = registrations::set_accreditation(
                state,
                console,
                &client_id,
                AccreditationChange {
                    status: "accredited".into(),
                    valid_until: until,
                    reason,
                },
            )
            .await
            .map_err(refused)?;
            print(output, &view, "Partner accredited.")?;
        }
        PartnerCommand::Suspend {
            client_id,
            reason,
            output,
        } => {
            let view = registrations::set_accreditation(
                state,
                console,
                &client_id,
                AccreditationChange {
                    status: "suspended".into(),
                    valid_until: None,
                    reason,
                },
            )
            .await
            .map_err(refused)?;
            print(output, &view, "Accreditation suspended.")?;
        }
        PartnerCommand::RotateSecret { client_id, output } => {
            let rotated = registrations::rotate_secret(state, console, &client_id)
                .await
                .map_err(refused)?;
            print(output, &rotated, &format!("New secret. {SECRET_ONCE}"))?;
        }
        PartnerCommand::Deactivate { client_id, output } => {
            set_active(state, console, &client_id, false, output).await?;
        }
        PartnerCommand::Reactivate { client_id, output } => {
            set_active(state, console, &client_id, true, output).await?;
        }
        PartnerCommand::Remove { client_id, output } => {
            let removal = registrations::remove_partner(state, console, &client_id)
                .await
                .map_err(refused)?;
            print(output, &removal, "")?;
        }
    }
    Ok(())
}

async fn set_active(
    state: &AppState,
    console: &Actor,
    client_id: &str,
    active: bool,
    output: Output,
) -> anyhow::Result<()> {
    let partner = registrations::update_partner(
        state,
        console,
        client_id,
        PartnerPatch {
            active: Some(active),
            ..PartnerPatch::default()
        },
    )
    .await
    .map_err(refused)?;
    let heading = if active {
        "Partner active."
    } else {
        "Partner deactivated: no authorization and no tokens; its grants are kept."
    };
    print(output, &partner, heading)
}
