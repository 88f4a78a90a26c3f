//! The smart-city simulator: sensors of six kinds at real Martinique places, with realistic daily
//! patterns, publishing every reading over MQTT (an embedded broker by default).
//!
//! - [`config`]: `config/simulator.toml`, command-line overrides and validation.
//! - [`clock`]: simulated time: live, accelerated (`speed`) and backfilled (`from`/`to`).
//! - [`run`]: the loop (generate, publish, metrics, status line, graceful stop).

pub mod cli;
pub mod clock;
pub mod config;
pub mod run;

pub use config::SimulatorConfig;
pub use run::{build_catalogue, check, check_table, run, CheckRow, SimError, Summary};
