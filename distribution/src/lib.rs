//! The distribution service: consumes the Pulsar `smartcity-*` topics and republishes every reading
//! to the city's MQTT brokers, NGSI-LD context brokers and SensorThings servers, acknowledging each
//! Pulsar message only once every target took it. Mostly wiring of the connectors:
//! `connectors::pulsar::PulsarSource` in, `connectors::fanout::FanOut` of `connectors::sinks` out.
//!
//! - [`config`]: `config/distribution.toml`, overrides, validation.
//! - [`run`]: the loop (decode, dead letters, fan-out, ack or nack), `check`, metrics.

pub mod cli;
pub mod config;
pub mod run;
mod status;

pub use config::DistributionConfig;
pub use run::{check, check_table, run, CheckRow, DistError, Summary};
