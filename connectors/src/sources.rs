//! Every protocol's source behind one enum, as [`crate::sinks`] does for sinks: a binary lists,
//! names and checks any mix of configured sources the same way, without trait objects.
//!
//! Each protocol keeps its own `source.rs` with the same two entry points: `XxxSource::run(out,
//! shutdown)` (messages handed on with their acknowledgement) and `check(cfg)` (connect as the
//! source would, consume nothing).

use crate::kafka::KafkaSourceConfig;
use crate::kafka_rest::KafkaRestSourceConfig;
use crate::mqtt::MqttConfig;
use crate::ngsi_ld::NgsiLdSourceConfig;
use crate::pulsar::PulsarSourceConfig;
use crate::sink::Failure;

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
}
