//! Every protocol's sink behind one enum, so a binary builds, checks and drives any mix of them
//! from its config without trait objects: [`SinkConfig`] borrows one configured sink,
//! [`AnySink`] is the built one.

use crate::config_file::{self, ConfigError};
use crate::fanout::QueueConfig;
use crate::influxdb::{InfluxConfig, InfluxSink};
use crate::kafka::{KafkaConfig, KafkaSink};
use crate::kafka_rest::{KafkaRestConfig, KafkaRestSink};
use crate::mqtt::{MqttConfig, MqttSink};
use crate::ngsi_ld::{NgsiLdConfig, NgsiLdSink};
use crate::pulsar::{PulsarConfig, PulsarSink};
use crate::sensorthings::{SensorThingsConfig, SensorThingsSink};
use crate::sink::{Failure, Outcome, Sink, SinkTelemetry, Started};
use smartcity_model::Reading;
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// One configured sink, whatever its protocol.
#[derive(Debug, Clone, Copy)]
pub enum SinkConfig<'a> {
    Mqtt(&'a MqttConfig),
    Kafka(&'a KafkaConfig),
    KafkaRest(&'a KafkaRestConfig),
    Pulsar(&'a PulsarConfig),
    Influx(&'a InfluxConfig),
    NgsiLd(&'a NgsiLdConfig),
    SensorThings(&'a SensorThingsConfig),
}

impl SinkConfig<'_> {
    /// The config section: `mqtt`, `kafka`, `kafka_rest`, `pulsar`, `influxdb`, `ngsi_ld`, `sensorthings`.
    pub fn protocol(&self) -> &'static str {
        match self {
            SinkConfig::Mqtt(_) => "mqtt",
            SinkConfig::Kafka(_) => "kafka",
            SinkConfig::KafkaRest(_) => "kafka_rest",
            SinkConfig::Pulsar(_) => "pulsar",
            SinkConfig::Influx(_) => "influxdb",
            SinkConfig::NgsiLd(_) => "ngsi_ld",
            SinkConfig::SensorThings(_) => "sensorthings",
        }
    }

    pub fn name(&self) -> &str {
        match self {
            SinkConfig::Mqtt(c) => &c.name,
            SinkConfig::Kafka(c) => &c.name,
            SinkConfig::KafkaRest(c) => &c.name,
            SinkConfig::Pulsar(c) => &c.name,
            SinkConfig::Influx(c) => &c.name,
            SinkConfig::NgsiLd(c) => &c.name,
            SinkConfig::SensorThings(c) => &c.name,
        }
    }

    pub fn enabled(&self) -> bool {
        match self {
            SinkConfig::Mqtt(c) => c.enabled,
            SinkConfig::Kafka(c) => c.enabled,
            SinkConfig::KafkaRest(c) => c.enabled,
            SinkConfig::Pulsar(c) => c.enabled,
            SinkConfig::Influx(c) => c.enabled,
            SinkConfig::NgsiLd(c) => c.enabled,
            SinkConfig::SensorThings(c) => c.enabled,
        }
    }

    /// The server, for logs and `check` (never a credential).
    pub fn address(&self) -> String {
        match self {
            SinkConfig::Mqtt(c) => c.url(),
            SinkConfig::Kafka(c) => c.address(),
            SinkConfig::KafkaRest(c) => c.address(),
            SinkConfig::Pulsar(c) => c.address(),
            SinkConfig::Influx(c) => c.address(),
            SinkConfig::NgsiLd(c) => c.address(),
            SinkConfig::SensorThings(c) => c.address(),
        }
    }

    pub fn queue(&self) -> &QueueConfig {
        match self {
            SinkConfig::Mqtt(c) => &c.queue,
            SinkConfig::Kafka(c) => &c.queue,
            SinkConfig::KafkaRest(c) => &c.queue,
            SinkConfig::Pulsar(c) => &c.queue,
            SinkConfig::Influx(c) => &c.queue,
            SinkConfig::NgsiLd(c) => &c.queue,
            SinkConfig::SensorThings(c) => &c.queue,
        }
    }

    /// Problems a user can fix in the file, as (field, message). No network.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        match self {
            SinkConfig::Mqtt(c) => c.problems(),
            SinkConfig::Kafka(c) => c.problems(),
            SinkConfig::KafkaRest(c) => c.problems(),
            SinkConfig::Pulsar(c) => c.problems(),
            SinkConfig::Influx(c) => c.problems(),
            SinkConfig::NgsiLd(c) => c.problems(),
            SinkConfig::SensorThings(c) => c.problems(),
        }
    }

    /// Builds the sink (no network: it connects on its first write).
    pub fn build(&self, telemetry: SinkTelemetry) -> Result<AnySink, String> {
        Ok(match self {
            SinkConfig::Mqtt(c) => AnySink::Mqtt(MqttSink::new(c, telemetry)?),
            SinkConfig::Kafka(c) => AnySink::Kafka(KafkaSink::new(c, telemetry)?),
            SinkConfig::KafkaRest(c) => AnySink::KafkaRest(KafkaRestSink::new(c, telemetry)?),
            SinkConfig::Pulsar(c) => AnySink::Pulsar(PulsarSink::new(c, telemetry)?),
            SinkConfig::Influx(c) => AnySink::Influx(InfluxSink::new(c, telemetry)?),
            SinkConfig::NgsiLd(c) => AnySink::NgsiLd(NgsiLdSink::new(c, telemetry)?),
            SinkConfig::SensorThings(c) => AnySink::SensorThings(SensorThingsSink::new(c, telemetry)?),
        })
    }
}

/// A built sink of any protocol.
// One value per configured sink, built once and moved into its task: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub enum AnySink {
    Mqtt(MqttSink),
    Kafka(KafkaSink),
    KafkaRest(KafkaRestSink),
    Pulsar(PulsarSink),
    Influx(InfluxSink),
    NgsiLd(NgsiLdSink),
    SensorThings(SensorThingsSink),
}

impl Sink for AnySink {
    async fn send(&mut self, batch: &[Reading]) -> Outcome {
        match self {
            AnySink::Mqtt(s) => s.send(batch).await,
            AnySink::Kafka(s) => s.send(batch).await,
            AnySink::KafkaRest(s) => s.send(batch).await,
            AnySink::Pulsar(s) => s.send(batch).await,
            AnySink::Influx(s) => s.send(batch).await,
            AnySink::NgsiLd(s) => s.send(batch).await,
            AnySink::SensorThings(s) => s.send(batch).await,
        }
    }

    fn writes_in_flight(&self) -> usize {
        match self {
            AnySink::Mqtt(s) => s.writes_in_flight(),
            _ => 1,
        }
    }

    async fn start(&mut self, batch: &[Reading]) -> Started {
        match self {
            AnySink::Mqtt(s) => s.start(batch).await,
            // The others write one batch at a time: the whole write is their `send`.
            _ => Box::pin(std::future::ready(self.send(batch).await)),
        }
    }

    async fn check(&mut self) -> Result<String, Failure> {
        match self {
            AnySink::Mqtt(s) => s.check().await,
            AnySink::Kafka(s) => s.check().await,
            AnySink::KafkaRest(s) => s.check().await,
            AnySink::Pulsar(s) => s.check().await,
            AnySink::Influx(s) => s.check().await,
            AnySink::NgsiLd(s) => s.check().await,
            AnySink::SensorThings(s) => s.check().await,
        }
    }

    async fn close(self) {
        match self {
            AnySink::Mqtt(s) => s.close().await,
            AnySink::Kafka(s) => s.close().await,
            AnySink::KafkaRest(s) => s.close().await,
            AnySink::Pulsar(s) => s.close().await,
            AnySink::Influx(s) => s.close().await,
            AnySink::NgsiLd(s) => s.close().await,
            AnySink::SensorThings(s) => s.close().await,
        }
    }
}

/// Fills what `[[mqtt]]` entries leave empty: names `mqtt`, `mqtt-2`, ...; client ids
/// `{default_client_id}` for the entry named `mqtt` and `{default_client_id}-{name}` for the others
/// (two connections with one client id would take each other's session).
pub fn name_mqtt_entries(mqtt: &mut [MqttConfig], default_client_id: &str) {
    for (i, m) in mqtt.iter_mut().enumerate() {
        if m.name.is_empty() {
            m.name = if i == 0 { "mqtt".into() } else { format!("mqtt-{}", i + 1) };
        }
        if m.client_id.is_empty() {
            m.client_id =
                if m.name == "mqtt" { default_client_id.into() } else { format!("{default_client_id}-{}", m.name) };
        }
    }
}

/// Checks every enabled sink of `sinks` (all configured ones, in file order per protocol, so that
/// messages name `kafka[1]` as the user counts them) and that their names are unique. Returns how
/// many are enabled. No network.
pub fn validate(path: Option<&Path>, sinks: &[SinkConfig<'_>]) -> Result<usize, ConfigError> {
    let mut names = HashSet::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for sink in sinks {
        let i = index.entry(sink.protocol()).or_default();
        let section = format!("{}[{i}]", sink.protocol());
        *i += 1;
        if !sink.enabled() {
            continue;
        }
        config_file::check(path, &section, sink.problems())?;
        if sink.name().trim().is_empty() || !names.insert(sink.name().to_string()) {
            let why = format!("`{}` must be a non-empty name no other sink has", sink.name());
            config_file::check(path, &section, vec![("name", why)])?;
        }
    }
    Ok(names.len())
}
