//! Apache Pulsar: a producing sink (`sink.rs`, `config.rs`) and a consuming source with acks, dead
//! letters and a watchdog (`source/`, `source_config.rs`); both set up their client, and check its
//! settings, with `client.rs`.
//!
//! Topic layout (from the original system): `persistent://public/default/smartcity-{kind}` with the
//! kind's Pulsar name (`airquality`, no dash); message key = sensor id, so a Key_Shared
//! subscription keeps each sensor's readings in order; event time = `observedAt`.

mod client;
pub mod config;
pub mod sink;
pub mod source;
pub mod source_config;

pub use config::PulsarConfig;
pub use sink::PulsarSink;
pub use source::{PulsarDelivery, PulsarSource};
pub use source_config::PulsarSourceConfig;
