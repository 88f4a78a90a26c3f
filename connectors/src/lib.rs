//! All network I/O of the project. One module per protocol, each with the same shape:
//! `config.rs` (serde config, documented fields, defaults as functions), `sink.rs` (write readings),
//! `source.rs` (read readings with an acknowledgement honoured only after the downstream write).
//!
//! Written once and shared by every protocol: [`tls`] (rustls client configs), [`retry`] (back-off), [`metrics`]
//! (the Prometheus families every sink and source reports), [`runtime`] (logging, signals).

pub mod config_file;
pub mod fanout;
pub mod http;
pub mod http_client;
pub mod http_status;
pub mod influxdb;
pub mod kafka;
pub mod kafka_rest;
pub mod metrics;
pub mod mqtt;
pub mod ngsi_ld;
pub mod offsets;
pub mod pulsar;
pub mod retry;
pub mod runtime;
pub mod secret;
pub mod sensorthings;
pub mod sink;
pub mod sinks;
pub mod source;
pub mod sources;
pub mod spool;
pub mod tls;
