//! The whole loop on one machine (`serve --demo`): a demo partner app and a demo school-data
//! API, each on a listener of its own and talking to Poortwachter only over real HTTP, as any
//! outside app would. Not part of the authorization server: nothing here reads its state.

pub mod partner_app;
pub mod school_api;

use std::net::SocketAddr;

use axum::Router;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

pub use partner_app::PartnerAppConfig;
pub use school_api::SchoolApiConfig;

/// Where `serve --demo` puts the partner app (its registered redirect URI is on this port).
pub const PARTNER_APP_BIND: &str = "127.0.0.1:9000";
/// Where `serve --demo` puts the school-data API.
pub const SCHOOL_API_BIND: &str = "127.0.0.1:9200";

/// One lesson of the timetable (`GET /rooster`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Lesson {
    pub day: String,
    pub start: String,
    pub end: String,
    pub subject: String,
    pub teacher: String,
    pub room: String,
}

/// One piece of homework (`GET /huiswerk`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Assignment {
    pub subject: String,
    pub due: String,
    pub description: String,
}

/// One grade (`GET /cijfers`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Grade {
    pub subject: String,
    pub description: String,
    pub grade: String,
    pub weight: u32,
}

/// What the school-data API answers with 200: the student and the data asked for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StudentData<T> {
    pub student_number: String,
    pub school: String,
    pub items: Vec<T>,
}

/// The school-data API's refusal body (RFC 6750 §3.1 error codes, our `reason` in Dutch).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiError {
    pub error: String,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
}

/// Serve `router` on `listener` in the background; returns the address it listens on.
pub fn spawn(
    listener: TcpListener,
    router: Router,
    name: &'static str,
) -> std::io::Result<SocketAddr> {
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, app = name, "a demo app stopped");
        }
    });
    Ok(address)
}

/// Bind `bind` and serve there; a taken port is a warning (the server itself keeps running).
pub async fn spawn_on(bind: &str, router: Router, name: &'static str) -> Option<SocketAddr> {
    match TcpListener::bind(bind).await {
        Ok(listener) => match spawn(listener, router, name) {
            Ok(address) => {
                tracing::info!(%address, app = name, "demo app listening");
                Some(address)
            }
            Err(e) => {
                tracing::warn!(error = %e, app = name, "demo app not started");
                None
            }
        },
        Err(e) => {
            tracing::warn!(error = %e, %bind, app = name, "demo app not started: cannot bind");
            None
        }
    }
}

/// An HTTP client for talking to Poortwachter: no redirects followed (a back channel never
/// needs them), bounded in time so a stuck server cannot hold a page load forever.
pub(crate) fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}
