//! The distribution service's configuration: `config/distribution.toml` (embedded as defaults) or
//! a user file, command-line overrides, then validation that names the file and field of a problem.

use serde::Deserialize;
use smartcity_connectors::config_file::{self, ConfigError};
use smartcity_connectors::mqtt::MqttConfig;
use smartcity_connectors::ngsi_ld::NgsiLdConfig;
use smartcity_connectors::pulsar::PulsarSourceConfig;
pub use smartcity_connectors::runtime::StatusConfig;
use smartcity_connectors::sensorthings::SensorThingsConfig;
use smartcity_connectors::sinks::SinkConfig;
use std::net::SocketAddr;
use std::path::Path;

/// The shipped configuration, which is also the default.
pub const DEFAULT_TOML: &str = include_str!("../../config/distribution.toml");

/// MQTT client id when the file does not set one.
pub const DEFAULT_CLIENT_ID: &str = "smartcity-distribution";

/// Every section and field may be omitted (a test checks that an empty file equals the shipped one).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistributionConfig {
    /// The Pulsar subscription readings come from.
    #[serde(default = "default_pulsar")]
    pub pulsar: PulsarSourceConfig,
    #[serde(default)]
    pub delivery: DeliveryConfig,
    /// MQTT brokers: `[[mqtt]]` tables, or one `[mqtt]` table.
    #[serde(default = "default_mqtt", deserialize_with = "config_file::one_or_many")]
    pub mqtt: Vec<MqttConfig>,
    /// NGSI-LD context brokers, `[[ngsi_ld]]`.
    #[serde(default)]
    pub ngsi_ld: Vec<NgsiLdConfig>,
    /// SensorThings servers (FROST), `[[sensorthings]]`.
    #[serde(default)]
    pub sensorthings: Vec<SensorThingsConfig>,
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub status: StatusConfig,
}

fn default_pulsar() -> PulsarSourceConfig {
    PulsarSourceConfig { subscription: "smartcity-distribution".into(), ..PulsarSourceConfig::default() }
}

fn default_mqtt() -> Vec<MqttConfig> {
    vec![MqttConfig::new("127.0.0.1", 1883, DEFAULT_CLIENT_ID)]
}

/// `[delivery]`: how long targets may fail before a message goes back to Pulsar.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// Seconds a target may keep failing one reading before its message is negatively acknowledged.
    pub retry_budget_seconds: u64,
    /// Messages received and not yet acknowledged, at most.
    pub max_in_flight: usize,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig { retry_budget_seconds: 30, max_in_flight: 10_000 }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    pub listen: SocketAddr,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig { listen: SocketAddr::from(([127, 0, 0, 1], 8002)) }
    }
}

impl DistributionConfig {
    /// Reads `path` (or the embedded defaults) and fills the names and client ids left empty.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let mut cfg: Self = config_file::load(path, DEFAULT_TOML)?;
        smartcity_connectors::sinks::name_mqtt_entries(&mut cfg.mqtt, DEFAULT_CLIENT_ID);
        Ok(cfg)
    }

    /// Checks every value without touching the network.
    pub fn validate(&self, path: Option<&Path>) -> Result<(), ConfigError> {
        config_file::check(path, "pulsar", self.pulsar.problems())?;
        let d = &self.delivery;
        let mut delivery = Vec::new();
        if d.retry_budget_seconds == 0 || d.retry_budget_seconds > 86_400 {
            delivery
                .push(("retry_budget_seconds", "must be 1-86400: a message must go back to Pulsar some time".into()));
        }
        if d.max_in_flight == 0 || d.max_in_flight > 1_000_000 {
            delivery.push(("max_in_flight", "must be 1-1000000".into()));
        }
        config_file::check(path, "delivery", delivery)?;
        let enabled = smartcity_connectors::sinks::validate(path, &self.all_targets())?;
        if enabled == 0 {
            let why = "no target is enabled: enable an `[[mqtt]]`, `[[ngsi_ld]]` or `[[sensorthings]]`";
            config_file::check(path, "", vec![("enabled", why.into())])?;
        }
        Ok(())
    }

    /// Every configured target, enabled or not.
    pub fn all_targets(&self) -> Vec<SinkConfig<'_>> {
        let mut all: Vec<SinkConfig<'_>> = self.mqtt.iter().map(SinkConfig::Mqtt).collect();
        all.extend(self.ngsi_ld.iter().map(SinkConfig::NgsiLd));
        all.extend(self.sensorthings.iter().map(SinkConfig::SensorThings));
        all
    }

    /// The targets readings are republished to.
    pub fn targets(&self) -> Vec<SinkConfig<'_>> {
        self.all_targets().into_iter().filter(SinkConfig::enabled).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_file_is_valid_and_every_field_may_be_omitted() {
        let shipped = DistributionConfig::load(None).unwrap();
        shipped.validate(None).unwrap();
        assert_eq!(shipped.pulsar.topics.len(), 6);
        assert_eq!(shipped.mqtt[0].client_id, DEFAULT_CLIENT_ID);
        let path = std::env::temp_dir().join(format!("dist-empty-{}.toml", std::process::id()));
        std::fs::write(&path, "# nothing: all defaults\n").unwrap();
        assert_eq!(DistributionConfig::load(Some(&path)).unwrap(), shipped);
    }

    #[test]
    fn errors_name_the_file_and_the_field() {
        let path = std::env::temp_dir().join(format!("dist-bad-{}.toml", std::process::id()));
        for (text, field) in [
            ("[delivery]\nretry_budget_seconds = 0\n", "`delivery.retry_budget_seconds`"),
            ("[pulsar]\nurl = \"http://x\"\n", "`pulsar.url`"),
            ("[[mqtt]]\nenabled = false\n", "no target is enabled"),
            ("[[ngsi_ld]]\nurl = \"nowhere\"\n", "`ngsi_ld[0].url`"),
        ] {
            std::fs::write(&path, text).unwrap();
            let err = match DistributionConfig::load(Some(&path)) {
                Err(e) => e.to_string(),
                Ok(c) => c.validate(Some(&path)).expect_err(text).to_string(),
            };
            assert!(err.contains(field) && err.contains("dist-bad"), "{text}: {err}");
        }
    }
}
