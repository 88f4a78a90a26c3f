//! Every protocol's source behind one enum, as [`crate::sinks`] does for sinks: a binary lists,
//! names, checks, builds and runs any mix of configured sources the same way, without trait objects.
//!
//! Each protocol keeps its own `source.rs` with the same entry points: `XxxSource::new(cfg,
//! metrics)` (settings checked, nothing connected), `run(out, shutdown)` (messages handed on with
//! their acknowledgement) and `check(cfg)` (connect as the source would, consume nothing).
//! [`SourceConfig::build`] and [`Source::run`] are those entry points for any protocol.

use crate::kafka::{KafkaSource, KafkaSourceConfig};
use crate::kafka_rest::{KafkaRestSource, KafkaRestSourceConfig};
use crate::metrics::SourceMetrics;
use crate::mqtt::{MqttConfig, MqttSource};
use crate::ngsi_ld::NgsiLdSourceConfig;
use crate::pulsar::{PulsarDelivery, PulsarSource, PulsarSourceConfig};
use crate::sink::Failure;
use crate::source::{Message, SourceError};
use prometheus::IntGauge;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// One configured source, whatever its protocol.
#[derive(Debug, Clone, Copy)]
pub enum SourceConfig<'a> {
    Mqtt(&'a MqttConfig),
    Kafka(&'a KafkaSourceConfig),
    KafkaRest(&'a KafkaRestSourceConfig),
    Pulsar(&'a PulsarSourceConfig),
    /// A context broker's subscription: its notifications arrive on the gateway's HTTP server.
    NgsiLd(&'a NgsiLdSourceConfig),
}

impl SourceConfig<'_> {
    /// The config section: `mqtt`, `kafka`, `kafka_rest`, `pulsar`.
    pub fn protocol(&self) -> &'static str {
        match self {
            SourceConfig::Mqtt(_) => "mqtt",
            SourceConfig::Kafka(_) => "kafka",
            SourceConfig::KafkaRest(_) => "kafka_rest",
            SourceConfig::Pulsar(_) => "pulsar",
            SourceConfig::NgsiLd(_) => "ngsi_ld",
        }
    }

    /// `mqtt source`, ...: the role in `check` tables.
    pub fn role(&self) -> &'static str {
        match self {
            SourceConfig::Mqtt(_) => "mqtt source",
            SourceConfig::Kafka(_) => "kafka source",
            SourceConfig::KafkaRest(_) => "kafka_rest source",
            SourceConfig::Pulsar(_) => "pulsar source",
            SourceConfig::NgsiLd(_) => "ngsi_ld source",
        }
    }

    pub fn name(&self) -> &str {
        match self {
            SourceConfig::Mqtt(c) => &c.name,
            SourceConfig::Kafka(c) => &c.name,
            SourceConfig::KafkaRest(c) => &c.name,
            SourceConfig::Pulsar(c) => &c.name,
            SourceConfig::NgsiLd(c) => &c.name,
        }
    }

    /// Pulsar sources have no `enabled` switch: a configured one runs.
    pub fn enabled(&self) -> bool {
        match self {
            SourceConfig::Mqtt(c) => c.enabled,
            SourceConfig::Kafka(c) => c.enabled,
            SourceConfig::KafkaRest(c) => c.enabled,
            SourceConfig::Pulsar(_) => true,
            SourceConfig::NgsiLd(c) => c.enabled,
        }
    }

    /// The server, for logs and `check` (never a credential).
    pub fn address(&self) -> String {
        match self {
            SourceConfig::Mqtt(c) => c.url(),
            SourceConfig::Kafka(c) => c.address(),
            SourceConfig::KafkaRest(c) => c.address(),
            SourceConfig::Pulsar(c) => c.address(),
            SourceConfig::NgsiLd(c) => c.address(),
        }
    }

    /// Connects as the source would (reachable, TLS, credentials, topics) without consuming a
    /// message or taking over a running consumer's session. `Ok` says what was checked.
    pub async fn check(&self) -> Result<String, Failure> {
        match self {
            SourceConfig::Mqtt(c) => crate::mqtt::source::check(c).await,
            SourceConfig::Kafka(c) => crate::kafka::source::check(c).await,
            SourceConfig::KafkaRest(c) => crate::kafka_rest::source::check(c).await,
            SourceConfig::Pulsar(c) => crate::pulsar::check_source(c).await,
            SourceConfig::NgsiLd(c) => {
                let subscriber =
                    crate::ngsi_ld::Subscriber::new(c).map_err(|e| Failure::new(crate::sink::classify(&e), e))?;
                subscriber.check().await
            }
        }
    }
}

impl SourceConfig<'_> {
    /// The source, its settings checked and its secrets read; it connects in [`Source::run`].
    /// `backlog` receives what waits on the server for it: Kafka's consumer lag, Pulsar's
    /// subscription backlog (other protocols have no such figure and ignore it).
    ///
    /// NGSI-LD sources are not built here: their messages are notifications posted to the binary's
    /// HTTP server, which runs them with its receiver (`gateway/src/notifications.rs`).
    pub fn build(&self, metrics: &SourceMetrics, backlog: Option<IntGauge>) -> Result<Source, SourceError> {
        Ok(match self {
            SourceConfig::Mqtt(c) => Source::Mqtt(MqttSource::new((*c).clone(), metrics.clone())),
            SourceConfig::Kafka(c) => {
                let source = KafkaSource::new((*c).clone(), metrics.clone())?;
                Source::Kafka(match backlog {
                    Some(gauge) => source.with_lag_gauge(gauge),
                    None => source,
                })
            }
            SourceConfig::KafkaRest(c) => Source::KafkaRest(KafkaRestSource::new((*c).clone(), metrics.clone())?),
            SourceConfig::Pulsar(c) => {
                let source = PulsarSource::new((*c).clone(), metrics.clone())
                    .map_err(|e| SourceError::Settings(format!("pulsar source `{}`: {e}", c.name)))?;
                Source::Pulsar(PulsarRun { source, cfg: (*c).clone(), backlog })
            }
            SourceConfig::NgsiLd(c) => {
                return Err(SourceError::Settings(format!(
                    "ngsi_ld source `{}` receives notifications on the HTTP server, which runs it",
                    c.name
                )))
            }
        })
    }
}

/// A source ready to run, whatever its protocol.
// Built once per source at start and moved once into its task: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub enum Source {
    Mqtt(MqttSource),
    Kafka(KafkaSource),
    KafkaRest(KafkaRestSource),
    Pulsar(PulsarRun),
}

/// The Pulsar source with what the gateway runs beside it.
pub struct PulsarRun {
    source: PulsarSource,
    cfg: PulsarSourceConfig,
    backlog: Option<IntGauge>,
}

impl Source {
    /// Runs until `stop` (or until `out` is closed), handing every message on with its
    /// acknowledgement. Servers that are away or refuse our credentials are waited out; the error
    /// says why the source cannot run at all.
    pub async fn run(self, out: mpsc::Sender<Message>, stop: CancellationToken) -> Result<(), SourceError> {
        match self {
            Source::Mqtt(s) => s.run(out, stop).await,
            Source::Kafka(s) => s.run(out, stop).await,
            Source::KafkaRest(s) => s.run(out, stop).await,
            Source::Pulsar(p) => p.run(out, stop).await,
        }
    }
}

impl PulsarRun {
    /// The source, handing its deliveries on as messages whose acknowledgement acks them on the
    /// broker (a message dropped unacknowledged is redelivered), and the backlog watcher.
    async fn run(self, out: mpsc::Sender<Message>, stop: CancellationToken) -> Result<(), SourceError> {
        let name: Arc<str> = self.cfg.name.as_str().into();
        let watcher = self.backlog.map(|gauge| {
            let cfg = self.cfg.clone();
            tokio::spawn(crate::pulsar::backlog::watch(cfg, gauge, Duration::from_secs(5)))
        });
        let source = name.clone();
        let into = move |mut delivery: PulsarDelivery| {
            // The acknowledgement needs neither the payload nor the topic: both move on, uncopied.
            let payload = std::mem::take(&mut delivery.payload);
            let topic = std::mem::take(&mut delivery.topic);
            Message::new(source.clone(), topic, payload.into(), Box::new(move || delivery.ack()))
        };
        let result = self.source.run_into(out, into, stop).await;
        if let Some(watcher) = watcher {
            watcher.abort();
        }
        result.map_err(|e| SourceError::Client(format!("pulsar source `{name}`: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_protocol_names_itself() {
        let (m, k, r, p) = (
            MqttConfig::new("127.0.0.1", 1883, "check"),
            KafkaSourceConfig::default(),
            KafkaRestSourceConfig::default(),
            PulsarSourceConfig::default(),
        );
        let n: NgsiLdSourceConfig = toml::from_str("url = \"http://orion:1026\"").unwrap();
        let all = [
            SourceConfig::Mqtt(&m),
            SourceConfig::Kafka(&k),
            SourceConfig::KafkaRest(&r),
            SourceConfig::Pulsar(&p),
            SourceConfig::NgsiLd(&n),
        ];
        let roles: Vec<&str> = all.iter().map(SourceConfig::role).collect();
        assert_eq!(roles, ["mqtt source", "kafka source", "kafka_rest source", "pulsar source", "ngsi_ld source"]);
        for s in all {
            assert!(s.role().starts_with(s.protocol()));
            assert!(!s.address().is_empty());
        }
    }

    #[test]
    fn build_checks_settings_before_any_network() {
        let metrics = SourceMetrics::register(&crate::metrics::registry("t"), "t");
        let mqtt = MqttConfig::new("127.0.0.1", 1, "check");
        assert!(matches!(SourceConfig::Mqtt(&mqtt).build(&metrics, None), Ok(Source::Mqtt(_))));
        let kafka = KafkaSourceConfig { group_id: "".into(), ..Default::default() };
        let refused = SourceConfig::Kafka(&kafka).build(&metrics, None).err().expect("no group id");
        assert!(matches!(&refused, SourceError::Settings(m) if m.contains("group_id")), "{refused}");
        // NGSI-LD sources run in the HTTP server that receives their notifications.
        let n: NgsiLdSourceConfig = toml::from_str("url = \"http://orion:1026\"").unwrap();
        assert!(matches!(SourceConfig::NgsiLd(&n).build(&metrics, None), Err(SourceError::Settings(_))));
    }
}
