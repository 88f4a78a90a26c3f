//! Apache Pulsar: a producing sink (`sink.rs`, `config.rs`) and a consuming source with acks, dead
//! letters and a watchdog (`source/`, `source_config.rs`); both set up their client, and check its
//! settings, with `client.rs`.
//!
//! Topic layout (from the original system): `persistent://public/default/smartcity-{kind}` with the
//! kind's Pulsar name (`airquality`, no dash); message key = sensor id, so a Key_Shared
//! subscription keeps each sensor's readings in order; event time = `observedAt`.

pub mod backlog;
mod client;
pub mod config;
pub mod sink;
pub mod source;
pub mod source_config;

pub use config::PulsarConfig;
pub use sink::PulsarSink;
pub use source::{PulsarDelivery, PulsarSource};
pub use source_config::PulsarSourceConfig;

/// Connects to the cluster of a source's subscription and resolves the topics, as the Pulsar sink's
/// `check` does; consumes nothing.
pub async fn check_source(source: &PulsarSourceConfig) -> Result<String, crate::sink::Failure> {
    use crate::sink::{Failure, Reason, Sink, SinkTelemetry};
    let cfg = PulsarConfig {
        url: source.url.clone(),
        token_env: source.token_env.clone(),
        token_file: source.token_file.clone(),
        tls_ca_file: source.tls_ca_file.clone(),
        ..Default::default()
    };
    let metrics = crate::metrics::SinkMetrics::register(&crate::metrics::registry("check"), "check");
    let mut probe =
        PulsarSink::new(&cfg, SinkTelemetry::new(&metrics, &source.name)).map_err(|e| Failure::new(Reason::Auth, e))?;
    let result = probe.check().await;
    probe.close().await;
    result
}
