//! The gateway's configuration: `config/gateway.toml` (embedded as defaults) or a user file,
//! command-line overrides, and validation naming the file and field of any problem.

use serde::Deserialize;
use smartcity_connectors::config_file::{self, ConfigError};
use smartcity_connectors::mqtt::MqttConfig;
use std::net::SocketAddr;
use std::path::Path;

/// The shipped configuration, which is also the default.
pub const DEFAULT_TOML: &str = include_str!("../../config/gateway.toml");

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    pub mqtt: MqttConfig,
    pub http: HttpConfig,
    pub state: StateConfig,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    pub listen: SocketAddr,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    pub history_per_sensor: usize,
    pub dead_letters_kept: usize,
}

impl GatewayConfig {
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        config_file::load(path, DEFAULT_TOML)
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
