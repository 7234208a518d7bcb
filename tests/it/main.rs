//! One integration-test binary (fast linking): every test starts the real server on port 0
//! over a fresh database and talks HTTP to it.

mod helpers;

mod access_log;
mod account;
mod activation;
mod admin;
mod authorize;
mod browser;
mod consent_age;
mod consent_scopes;
mod console;
mod demo_apps;
mod edges;
mod flow;
mod headers;
mod hostile;
mod instances;
mod language;
mod logout;
mod onboarding;
mod openapi_check;
mod pages;
mod par;
mod platform;
mod policy;
mod policy_changes;
mod private_key_jwt;
mod registrations;
mod resources;
mod roster;
mod school_roster;
mod sealing;
mod throttling;
mod tokens;
mod unavailable;
