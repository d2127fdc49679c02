//! The scale-out soak (issue 19): `sites` x `devices` simulated terminals whose agents are impersonated by one load
//! generator speaking the agent protocol, shift-change bursts, into `replicas` central-api replicas on one private
//! PostgreSQL and one private Mosquitto (shared subscription), with faults in the middle of the run; then AllLogs is
//! compared with the distinct punches generated and every attendance row with a full reprocess, and the figures
//! (throughput, latency to AllLogs and to the attendance row, CPU and memory per process) and a plot are written.
//!
//! `bench soak` runs it with long settings, `tests/soak_scale.rs` with short ones. [`factory`] is the other half:
//! one real agent with 200 simulated terminals.
//!
//! PostgreSQL and Mosquitto are the soak's own ([`postgres`], [`broker`]), never the machine's shared ones, because
//! the soak restarts them.

pub mod broker;
pub mod checks;
pub mod day_latency;
pub mod factory;
pub mod faults;
pub mod figures;
pub mod generator;
pub mod plot;
pub mod postgres;
pub mod replicas;
pub mod run;
pub mod usage;
pub mod workload;
pub mod world;

pub use run::{run, Outcome, Settings};
