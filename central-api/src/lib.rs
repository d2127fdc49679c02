//! The central service: authenticates agents, deduplicates their punches into AllLogs over HTTPS and MQTT, and keeps
//! their status. `main.rs` parses the command line; everything else lives in these modules.

pub mod access;
pub mod alerts;
pub mod app;
pub mod attendance;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod cli;
pub mod config;
pub mod fleet;
pub mod http;
pub mod ingest;
pub mod jobs;
pub mod logging;
pub mod metrics;
pub mod mqtt;
pub mod reports;
pub mod store;
pub mod web;
