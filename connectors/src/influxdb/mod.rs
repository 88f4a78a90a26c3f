//! InfluxDB v2: a sink writing readings in line protocol through the HTTP write API.
//!
//! Point layout (shared with the gateway): `model/src/codec/line_protocol.rs`, described in
//! docs/line-protocol.md: measurement = kind, tags `commune`, `kind`, `sensor_id`, the values as
//! fields plus `lat`, `lon`, `seq`, timestamp = `observedAt` in milliseconds. A reading written
//! twice lands on the same point, so retries never duplicate data.

pub mod config;
pub mod sink;

pub use config::InfluxConfig;
pub use sink::InfluxSink;
