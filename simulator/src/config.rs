//! The simulator's configuration: `config/simulator.toml` (embedded as defaults), a user file,
//! then command-line overrides, then validation that names the file and field of any problem.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use smartcity_connectors::config_file::{self, ConfigError};
use smartcity_connectors::influxdb::InfluxConfig;
use smartcity_connectors::kafka::KafkaConfig;
use smartcity_connectors::kafka_rest::KafkaRestConfig;
use smartcity_connectors::mqtt::{EmbeddedBrokerConfig, MqttConfig};
use smartcity_connectors::ngsi_ld::NgsiLdConfig;
use smartcity_connectors::pulsar::PulsarConfig;
pub use smartcity_connectors::runtime::StatusConfig;
use smartcity_connectors::sensorthings::SensorThingsConfig;
use smartcity_connectors::sinks::SinkConfig;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The shipped configuration, which is also the default.
pub const DEFAULT_TOML: &str = include_str!("../../config/simulator.toml");

/// MQTT client id when the file does not set one.
pub const DEFAULT_CLIENT_ID: &str = "smartcity-simulator";

/// Every section and field may be omitted: the defaults below are those of the shipped file
/// (a test checks that an empty file and `config/simulator.toml` give the same configuration).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulatorConfig {
    #[serde(default)]
    pub simulation: SimulationConfig,
    /// MQTT brokers: `[[mqtt]]` tables, or one `[mqtt]` table.
    #[serde(default = "default_mqtt", deserialize_with = "config_file::one_or_many")]
    pub mqtt: Vec<MqttConfig>,
    /// Kafka clusters (native protocol), `[[kafka]]`.
    #[serde(default)]
    pub kafka: Vec<KafkaConfig>,
    /// Kafka REST proxies (Confluent v2 API, as Redpanda's HTTP proxy), `[[kafka_rest]]`.
    #[serde(default)]
    pub kafka_rest: Vec<KafkaRestConfig>,
    /// Pulsar clusters, `[[pulsar]]`.
    #[serde(default)]
    pub pulsar: Vec<PulsarConfig>,
    /// InfluxDB v2 servers, `[[influxdb]]`.
    #[serde(default)]
    pub influxdb: Vec<InfluxConfig>,
    /// NGSI-LD context brokers (Orion-LD, Stellio), `[[ngsi_ld]]`: one entity per sensor.
    #[serde(default)]
    pub ngsi_ld: Vec<NgsiLdConfig>,
    /// OGC SensorThings API servers (FROST-Server), `[[sensorthings]]`: Things, Datastreams, Observations.
    #[serde(default)]
    pub sensorthings: Vec<SensorThingsConfig>,
    #[serde(default)]
    pub embedded_broker: EmbeddedBrokerConfig,
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub status: StatusConfig,
}

fn default_mqtt() -> Vec<MqttConfig> {
    vec![MqttConfig::new("127.0.0.1", 1883, DEFAULT_CLIENT_ID)]
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimulationConfig {
    pub seed: u64,
    /// Generated sensors; 0 means the catalogue.
    pub sensors: usize,
    /// Catalogue file; empty means the built-in ten.
    pub catalogue: String,
    pub interval_seconds: f64,
    pub speed: f64,
    /// RFC 3339 start of a backfill; empty: now.
    pub from: String,
    /// RFC 3339 end of the run; empty: never.
    pub to: String,
    /// At the end of the run, how long the sinks may take to deliver what they still hold.
    pub drain_seconds: u64,
}

impl Default for SimulationConfig {
    fn default() -> Self {
        SimulationConfig {
            seed: 42,
            sensors: 0,
            catalogue: String::new(),
            interval_seconds: 5.0,
            speed: 1.0,
            from: String::new(),
            to: String::new(),
            drain_seconds: 10,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    pub listen: SocketAddr,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig { listen: SocketAddr::from(([127, 0, 0, 1], 8001)) }
    }
}

impl SimulatorConfig {
    /// Reads `path` (or the embedded defaults).
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let mut cfg: Self = config_file::load(path, DEFAULT_TOML)?;
        smartcity_connectors::sinks::name_mqtt_entries(&mut cfg.mqtt, DEFAULT_CLIENT_ID);
        Ok(cfg)
    }

    /// Checks every value; `path` is only used to name the origin in messages.
    pub fn validate(&self, path: Option<&Path>) -> Result<(), ConfigError> {
        let s = &self.simulation;
        let mut sim = Vec::new();
        if !(s.interval_seconds.is_finite() && s.interval_seconds >= 0.001) {
            sim.push(("interval_seconds", format!("must be at least 0.001 (got {})", s.interval_seconds)));
        }
        if !(s.speed.is_finite() && s.speed > 0.0 && s.speed <= 1e6) {
            sim.push(("speed", format!("must be > 0 and <= 1000000 (got {})", s.speed)));
        }
        if s.drain_seconds > 86_400 {
            sim.push(("drain_seconds", format!("at most 86400 (got {})", s.drain_seconds)));
        }
        if s.sensors > 10_000_000 {
            sim.push(("sensors", format!("at most 10000000 (got {})", s.sensors)));
        }
        if s.sensors > 0 && !s.catalogue.is_empty() {
            sim.push(("sensors", "set either `sensors` (generated) or `catalogue` (file), not both".into()));
        }
        for (field, value) in [("from", &s.from), ("to", &s.to)] {
            if let Err(e) = parse_time(value) {
                sim.push((field, e));
            }
        }
        if let (Ok(Some(from)), Ok(Some(to))) = (parse_time(&s.from), parse_time(&s.to)) {
            if to <= from {
                sim.push(("to", format!("must be after `from` ({from})")));
            }
        }
        config_file::check(path, "simulation", sim)?;
        let enabled = smartcity_connectors::sinks::validate(path, &self.all_sinks())?;
        if self.embedded_broker.enabled && self.embedded_broker.max_payload_bytes < 1024 {
            config_file::check(path, "embedded_broker", vec![("max_payload_bytes", "must be at least 1024".into())])?;
        }
        if enabled == 0 {
            let why = "no sink is enabled: enable an `[[mqtt]]`, `[[kafka]]`, `[[kafka_rest]]`, `[[pulsar]]`, `[[influxdb]]`, `[[ngsi_ld]]` or `[[sensorthings]]`";
            config_file::check(path, "", vec![("enabled", why.into())])?;
        }
        Ok(())
    }

    /// Every configured sink, enabled or not, in config order by protocol.
    pub fn all_sinks(&self) -> Vec<SinkConfig<'_>> {
        let mut all: Vec<SinkConfig<'_>> = self.mqtt.iter().map(SinkConfig::Mqtt).collect();
        all.extend(self.kafka.iter().map(SinkConfig::Kafka));
        all.extend(self.kafka_rest.iter().map(SinkConfig::KafkaRest));
        all.extend(self.pulsar.iter().map(SinkConfig::Pulsar));
        all.extend(self.influxdb.iter().map(SinkConfig::Influx));
        all.extend(self.ngsi_ld.iter().map(SinkConfig::NgsiLd));
        all.extend(self.sensorthings.iter().map(SinkConfig::SensorThings));
        all
    }

    /// The sinks readings go to.
    pub fn sinks(&self) -> Vec<SinkConfig<'_>> {
        self.all_sinks().into_iter().filter(SinkConfig::enabled).collect()
    }

    pub fn from(&self) -> Option<DateTime<Utc>> {
        parse_time(&self.simulation.from).ok().flatten()
    }

    pub fn to(&self) -> Option<DateTime<Utc>> {
        parse_time(&self.simulation.to).ok().flatten()
    }

    pub fn catalogue_path(&self) -> Option<PathBuf> {
        (!self.simulation.catalogue.is_empty()).then(|| PathBuf::from(&self.simulation.catalogue))
    }
}

/// Empty → None; otherwise an RFC 3339 instant.
pub fn parse_time(s: &str) -> Result<Option<DateTime<Utc>>, String> {
    if s.trim().is_empty() {
        return Ok(None);
    }
    DateTime::parse_from_rfc3339(s.trim())
        .map(|t| Some(t.with_timezone(&Utc)))
        .map_err(|e| format!("`{s}` is not an RFC 3339 time such as 2026-11-20T00:00:00Z ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_file_parses_and_is_valid() {
        let c = SimulatorConfig::load(None).unwrap();
        c.validate(None).unwrap();
        assert_eq!(c.metrics.listen.port(), 8001);
        assert_eq!(c.mqtt[0].topic_prefix, "city/sensors");
        assert_eq!(c.mqtt[0].name, "mqtt");
        assert_eq!(c.sinks().len(), 1);
        assert!(c.embedded_broker.enabled);
    }

    #[test]
    fn every_field_may_be_omitted() {
        let path = std::env::temp_dir().join(format!("sim-empty-{}.toml", std::process::id()));
        std::fs::write(&path, "# nothing: all defaults\n[mqtt]\nport = 1883\n").unwrap();
        assert_eq!(SimulatorConfig::load(Some(&path)).unwrap(), SimulatorConfig::load(None).unwrap());
    }

    fn with(replace: &str, by: &str) -> String {
        assert!(DEFAULT_TOML.contains(replace), "{replace}");
        let dir = std::env::temp_dir().join(format!("simcfg-{}-{}", std::process::id(), by.len()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.toml");
        std::fs::write(&path, DEFAULT_TOML.replace(replace, by)).unwrap();
        let c = SimulatorConfig::load(Some(&path));
        let err = match c {
            Err(e) => e.to_string(),
            Ok(c) => c.validate(Some(&path)).expect_err("must be invalid").to_string(),
        };
        assert!(err.contains("bad.toml"), "names the file: {err}");
        err
    }

    #[test]
    fn errors_name_the_file_and_the_field() {
        assert!(with("speed = 1.0", "speed = 0.0").contains("`simulation.speed`"));
        assert!(with("qos = 1", "qos = 7").contains("`mqtt[0].qos`"));
        assert!(with("speed = 1.0", "sped = 1.0").contains("unknown field `sped`"));
        assert!(with("from = \"\"", "from = \"yesterday\"").contains("`simulation.from`"));
        assert!(with("port = 1883", "port = \"x\"").contains("port"));
        assert!(with("listen = \"127.0.0.1:8001\"", "listen = \"nowhere\"").contains("listen"));
    }

    fn load_text(text: &str) -> Result<SimulatorConfig, String> {
        let dir = std::env::temp_dir().join(format!("simcfg-text-{}-{}", std::process::id(), text.len()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sinks.toml");
        std::fs::write(&path, text).unwrap();
        let cfg = SimulatorConfig::load(Some(&path)).map_err(|e| e.to_string())?;
        cfg.validate(Some(&path)).map_err(|e| e.to_string())?;
        Ok(cfg)
    }

    #[test]
    fn several_brokers_get_their_own_names_and_client_ids() {
        let c = load_text(
            "[[mqtt]]\nport = 1884\n[[mqtt]]\nname = \"tls\"\nport = 8884\n[mqtt.queue]\noverflow = \"drop\"\n",
        )
        .unwrap();
        assert_eq!(c.mqtt.len(), 2);
        assert_eq!((c.mqtt[0].name.as_str(), c.mqtt[0].client_id.as_str()), ("mqtt", "smartcity-simulator"));
        assert_eq!((c.mqtt[1].name.as_str(), c.mqtt[1].client_id.as_str()), ("tls", "smartcity-simulator-tls"));
        assert_eq!(c.mqtt[1].queue.overflow, smartcity_connectors::fanout::Overflow::Drop);
        // The single-table form of earlier versions still works.
        assert_eq!(load_text("[mqtt]\nport = 1884\n").unwrap().mqtt[0].port, 1884);
    }

    #[test]
    fn every_protocol_is_configurable_and_names_are_unique() {
        let c = load_text("[[kafka]]\n[[kafka_rest]]\n[[pulsar]]\n[[influxdb]]\n[[mqtt]]\nenabled = false\n").unwrap();
        let names: Vec<_> = c.sinks().iter().map(|s| s.name().to_string()).collect();
        assert_eq!(names, ["kafka", "kafka-rest", "pulsar", "influxdb"]);
        let err = load_text("[[pulsar]]\n[[pulsar]]\n").unwrap_err();
        assert!(err.contains("`pulsar[1].name`"), "{err}");
        let err = load_text("[[mqtt]]\nenabled = false\n").unwrap_err();
        assert!(err.contains("no sink is enabled"), "{err}");
    }

    #[test]
    fn bad_sink_settings_name_the_file_the_field_and_the_reason() {
        let err = load_text("[[kafka]]\nbootstrap = \"x\"\n").unwrap_err();
        assert!(err.contains("sinks.toml") && err.contains("unknown field `bootstrap`"), "{err}");
        let err = load_text("[[mqtt]]\n[mqtt.tls]\nca_file = \"/nonexistent/ca.pem\"\n").unwrap_err();
        assert!(err.contains("`mqtt[0].tls`") && err.contains("/nonexistent/ca.pem"), "{err}");
        let err = load_text("[[pulsar]]\nurl = \"pulsar//nowhere\"\n").unwrap_err();
        assert!(err.contains("`pulsar[0].url`"), "{err}");
        let err = load_text("[[kafka]]\ntopic_template = \"\"\n").unwrap_err();
        assert!(err.contains("`kafka[0].topic_template`"), "{err}");
        let err = load_text("[[influxdb]]\nurl = \"not a url\"\n").unwrap_err();
        assert!(err.contains("`influxdb[0].url`"), "{err}");
    }
}
