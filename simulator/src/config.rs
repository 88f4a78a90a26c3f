//! The simulator's configuration: `config/simulator.toml` (embedded as defaults), a user file,
//! then command-line overrides, then validation that names the file and field of any problem.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use smartcity_connectors::config_file::{self, ConfigError};
use smartcity_connectors::mqtt::{EmbeddedBrokerConfig, MqttConfig};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The shipped configuration, which is also the default.
pub const DEFAULT_TOML: &str = include_str!("../../config/simulator.toml");

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulatorConfig {
    pub simulation: SimulationConfig,
    pub mqtt: MqttConfig,
    #[serde(default)]
    pub embedded_broker: EmbeddedBrokerConfig,
    pub metrics: MetricsConfig,
    pub status: StatusConfig,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
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
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    pub listen: SocketAddr,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusConfig {
    pub interval_seconds: u64,
}

impl SimulatorConfig {
    /// Reads `path` (or the embedded defaults).
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        config_file::load(path, DEFAULT_TOML)
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
        if self.mqtt.enabled {
            config_file::check(path, "mqtt", self.mqtt.problems())?;
        }
        if self.embedded_broker.enabled && self.embedded_broker.max_payload_bytes < 1024 {
            config_file::check(path, "embedded_broker", vec![("max_payload_bytes", "must be at least 1024".into())])?;
        }
        if !self.mqtt.enabled {
            config_file::check(path, "mqtt", vec![("enabled", "no sink is enabled: enable `mqtt`".into())])?;
        }
        Ok(())
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
        assert_eq!(c.mqtt.topic_prefix, "city/sensors");
        assert!(c.embedded_broker.enabled);
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
        assert!(with("qos = 1", "qos = 7").contains("`mqtt.qos`"));
        assert!(with("speed = 1.0", "sped = 1.0").contains("unknown field `sped`"));
        assert!(with("from = \"\"", "from = \"yesterday\"").contains("`simulation.from`"));
        assert!(with("port = 1883", "port = \"x\"").contains("port"));
        assert!(with("listen = \"127.0.0.1:8001\"", "listen = \"nowhere\"").contains("listen"));
    }
}
