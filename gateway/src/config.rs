//! The gateway's configuration: `config/gateway.toml` (embedded as defaults) or a user file,
//! command-line overrides, and validation naming the file and field of any problem.

use serde::Deserialize;
use smartcity_connectors::config_file::{self, ConfigError};
use smartcity_connectors::mqtt::MqttConfig;
use std::net::SocketAddr;
use std::path::Path;

/// The shipped configuration, which is also the default.
pub const DEFAULT_TOML: &str = include_str!("../../config/gateway.toml");

/// MQTT client id when the file does not set one.
pub const DEFAULT_CLIENT_ID: &str = "smartcity-gateway";

/// Every section and field may be omitted: the defaults below are those of the shipped file
/// (a test checks that an empty file and `config/gateway.toml` give the same configuration).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    #[serde(default = "default_mqtt")]
    pub mqtt: MqttConfig,
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(default)]
    pub state: StateConfig,
}

fn default_mqtt() -> MqttConfig {
    MqttConfig::new("127.0.0.1", 1883, DEFAULT_CLIENT_ID)
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub listen: SocketAddr,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig { listen: SocketAddr::from(([127, 0, 0, 1], 8080)) }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StateConfig {
    pub history_per_sensor: usize,
    pub dead_letters_kept: usize,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig { history_per_sensor: 120, dead_letters_kept: 200 }
    }
}

impl GatewayConfig {
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let mut cfg: Self = config_file::load(path, DEFAULT_TOML)?;
        if cfg.mqtt.client_id.is_empty() {
            cfg.mqtt.client_id = DEFAULT_CLIENT_ID.into();
        }
        Ok(cfg)
    }

    pub fn validate(&self, path: Option<&Path>) -> Result<(), ConfigError> {
        if !self.mqtt.enabled {
            config_file::check(path, "mqtt", vec![("enabled", "no source is enabled: enable `mqtt`".into())])?;
        }
        config_file::check(path, "mqtt", self.mqtt.problems())?;
        let mut state = Vec::new();
        if !(1..=10_000).contains(&self.state.history_per_sensor) {
            state.push(("history_per_sensor", format!("must be 1-10000 (got {})", self.state.history_per_sensor)));
        }
        if self.state.dead_letters_kept > 100_000 {
            state.push(("dead_letters_kept", format!("at most 100000 (got {})", self.state.dead_letters_kept)));
        }
        config_file::check(path, "state", state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_file_parses_and_is_valid() {
        let c = GatewayConfig::load(None).unwrap();
        c.validate(None).unwrap();
        assert_eq!(c.http.listen.port(), 8080);
        assert_eq!(c.mqtt.client_id, "smartcity-gateway");
    }

    #[test]
    fn every_field_may_be_omitted() {
        let path = std::env::temp_dir().join(format!("gw-empty-{}.toml", std::process::id()));
        std::fs::write(&path, "").unwrap();
        assert_eq!(GatewayConfig::load(Some(&path)).unwrap(), GatewayConfig::load(None).unwrap());
    }

    #[test]
    fn invalid_values_name_file_and_field() {
        let path = std::env::temp_dir().join(format!("gw-{}.toml", std::process::id()));
        std::fs::write(&path, DEFAULT_TOML.replace("history_per_sensor = 120", "history_per_sensor = 0")).unwrap();
        let err = GatewayConfig::load(Some(&path)).unwrap().validate(Some(&path)).unwrap_err().to_string();
        assert!(err.contains(&path.display().to_string()) && err.contains("`state.history_per_sensor`"), "{err}");
        std::fs::write(&path, DEFAULT_TOML.replace("[http]", "[htp]")).unwrap();
        let err = GatewayConfig::load(Some(&path)).unwrap_err().to_string();
        assert!(err.contains("htp"), "{err}");
    }
}
