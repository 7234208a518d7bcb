//! One integration-test binary (fast linking): every test starts the real server on port 0
//! over a fresh database and talks HTTP to it.

mod helpers;

mod account;
mod activation;
mod admin;
mod authorize;
mod flow;
mod instances;
mod openapi_check;
mod pages;
mod policy;
mod registrations;
mod tokens;
mod unavailable;
