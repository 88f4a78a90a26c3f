//! Settings of an MQTT client connection (sink or source).

use crate::fanout::QueueConfig;
use crate::tls::{self, TlsConfig};
use rumqttc::{MqttOptions, QoS, TlsConfiguration, Transport};
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Default environment variable that overrides the MQTT password (never put it in a file you commit).
pub const PASSWORD_ENV: &str = "SMARTCITY_MQTT_PASSWORD";

/// An MQTT broker to talk to.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    /// Name of this connection in logs and in the `sink` label of metrics; unique among the sinks.
    /// Empty: `mqtt`.
    #[serde(default)]
    pub name: String,
    /// Use this connection at all.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// Broker host name or IP.
    #[serde(default = "default_host")]
    pub host: String,
    /// Broker port: 1883 plain, usually 8883 with TLS.
    #[serde(default = "default_port")]
    pub port: u16,
    /// Client id. Keep it stable: a persistent session (clean_session = false) is found by it.
    /// Empty: the binary's default (`smartcity-simulator`, `smartcity-gateway`).
    #[serde(default)]
    pub client_id: String,
    /// 0 at most once, 1 at least once (default), 2 exactly once.
    #[serde(default = "default_qos")]
    pub qos: u8,
    /// Topics are `{topic_prefix}/{kind}/{sensor id}`.
    #[serde(default = "default_prefix")]
    pub topic_prefix: String,
    /// Seconds between keep-alive pings.
    #[serde(default = "default_keep_alive")]
    pub keep_alive_seconds: u64,
    /// false (default) keeps the session on the broker across reconnects, so QoS 1 messages queued
    /// while we were away are delivered and our unacknowledged ones are resent.
    #[serde(default)]
    pub clean_session: bool,
    /// Largest packet accepted or sent, bytes (rumqttc's default of 10 KiB is too small for batches).
    #[serde(default = "default_max_packet")]
    pub max_packet_bytes: usize,
    /// QoS 1/2 messages in flight before waiting for acknowledgements.
    #[serde(default = "default_inflight")]
    pub inflight: u16,
    /// User name, if the broker requires one.
    #[serde(default)]
    pub username: Option<String>,
    /// Environment variable holding the password; it overrides `password_file`. Give each broker
    /// its own variable when they have different passwords.
    #[serde(default = "default_password_env")]
    pub password_env: String,
    /// File holding the password (first line).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// TLS; plain TCP when absent.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// The publishing queue, when this connection is a sink (ignored by a subscriber). A key left
    /// out takes the MQTT default ([`default_queue`]), not the generic one.
    #[serde(default = "default_queue", deserialize_with = "queue_with_mqtt_defaults")]
    pub queue: QueueConfig,
    /// Subscribers only: subscribe to `$share/{share_group}/{topic_prefix}/#` (MQTT 5 shared
    /// subscription, which Mosquitto, EMQX and HiveMQ also honour for MQTT 3.1.1 clients), so that
    /// several gateways with the same group split the messages between them. Each gateway still
    /// needs its own stable `client_id`. None (default): every subscriber gets every message.
    #[serde(default)]
    pub share_group: Option<String>,
}

fn default_password_env() -> String {
    PASSWORD_ENV.into()
}

fn default_enabled() -> bool {
    true
}
fn default_host() -> String {
    "127.0.0.1".into()
}
fn default_port() -> u16 {
    1883
}
fn default_qos() -> u8 {
    1
}
fn default_prefix() -> String {
    "city/sensors".into()
}
fn default_keep_alive() -> u64 {
    30
}
fn default_max_packet() -> usize {
    256 * 1024
}
fn default_inflight() -> u16 {
    100
}
/// Writes of up to 10,000 readings. Why, first: a write ends when its last PUBACK is in, and
/// Mosquitto (without `set_tcp_nodelay true`, its default) holds that PUBACK back under Nagle's
/// algorithm until our idle side's delayed ACK fires, 40 ms on Linux; one write at a time, 1,000
/// readings per write capped a QoS 1 backfill at 17,000 readings/s. Since the sink keeps writes in
/// flight (the next one goes out during that wait), 1,000 reaches about the same rate as 10,000
/// (46,000 against 48,000/s in bench/sinks.sh, docs/performance.md); 10,000 stays, a few % ahead.
fn default_queue() -> QueueConfig {
    QueueConfig { batch_size: 10_000, ..QueueConfig::default() }
}
fn queue_with_mqtt_defaults<'de, D: serde::Deserializer<'de>>(d: D) -> Result<QueueConfig, D::Error> {
    QueueConfig::deserialize_over(d, default_queue())
}

impl MqttConfig {
    /// A plain connection to `host:port` with every other setting at its default.
    pub fn new(host: &str, port: u16, client_id: &str) -> Self {
        MqttConfig {
            name: String::new(),
            enabled: true,
            host: host.into(),
            port,
            client_id: client_id.into(),
            qos: default_qos(),
            topic_prefix: default_prefix(),
            keep_alive_seconds: default_keep_alive(),
            clean_session: false,
            max_packet_bytes: default_max_packet(),
            inflight: default_inflight(),
            username: None,
            password_env: default_password_env(),
            password_file: None,
            tls: None,
            queue: default_queue(),
            share_group: None,
        }
    }

    /// Problems a user can fix in the file, as (field, message); empty when valid.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        if self.host.trim().is_empty() {
            p.push(("host", "must not be empty".into()));
        }
        if self.port == 0 {
            p.push(("port", "must be 1-65535".into()));
        }
        if self.client_id.is_empty() || self.client_id.len() > 64 {
            p.push(("client_id", "must be 1-64 characters".into()));
        }
        if self.qos > 2 {
            p.push(("qos", format!("{} is not a QoS: use 0, 1 or 2", self.qos)));
        }
        if self.topic_prefix.is_empty() || self.topic_prefix.contains(['#', '+']) || self.topic_prefix.ends_with('/') {
            p.push(("topic_prefix", "must be a plain topic without wildcards or trailing `/`".into()));
        }
        if let Some(g) = &self.share_group {
            if g.is_empty() || g.contains(['/', '#', '+']) {
                p.push(("share_group", "must be a non-empty name without `/`, `#` or `+`".into()));
            }
        }
        if self.keep_alive_seconds < 5 {
            p.push(("keep_alive_seconds", "must be at least 5".into()));
        }
        if self.inflight == 0 {
            p.push(("inflight", "must be at least 1".into()));
        }
        if self.max_packet_bytes < 1024 {
            p.push(("max_packet_bytes", "must be at least 1024".into()));
        }
        if self.password_file.is_some() && self.username.is_none() {
            p.push(("password_file", "needs `username` too".into()));
        }
        p.extend(crate::secret::file_problem("password_file", self.password_file.as_deref()));
        if let Some(t) = &self.tls {
            if let Err(e) = tls::client_config(t) {
                p.push(("tls", e.to_string()));
            }
        }
        p.extend(self.queue.problems());
        p
    }

    pub fn qos(&self) -> QoS {
        match self.qos {
            0 => QoS::AtMostOnce,
            2 => QoS::ExactlyOnce,
            _ => QoS::AtLeastOnce,
        }
    }

    fn password(&self) -> Result<Option<String>, String> {
        crate::secret::read(&self.password_env, self.password_file.as_deref())
    }

    /// rumqttc options for this config (reads the password and the TLS files).
    pub fn options(&self) -> Result<MqttOptions, String> {
        let mut o = MqttOptions::new(&self.client_id, &self.host, self.port);
        o.set_keep_alive(Duration::from_secs(self.keep_alive_seconds))
            .set_clean_session(self.clean_session)
            .set_max_packet_size(self.max_packet_bytes, self.max_packet_bytes)
            .set_inflight(self.inflight);
        if let Some(user) = &self.username {
            o.set_credentials(user, self.password()?.unwrap_or_default());
        }
        if let Some(t) = &self.tls {
            let cfg = tls::client_config(t).map_err(|e| e.to_string())?;
            o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(Arc::new(cfg))));
        }
        Ok(o)
    }

    /// `mqtt://host:port` or `mqtts://host:port`, for logs (never includes credentials).
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "mqtts" } else { "mqtt" };
        format!("{scheme}://{}:{}", self.host, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> MqttConfig {
        toml::from_str(toml_text).expect("a valid [[mqtt]] table")
    }

    #[test]
    fn the_queue_defaults_to_writes_of_ten_thousand_even_when_partly_given() {
        assert_eq!(parse("").queue.batch_size, 10_000);
        assert_eq!(MqttConfig::new("h", 1883, "c").queue.batch_size, 10_000);
        let partial = parse("[queue]\ncapacity = 5\n");
        assert_eq!((partial.queue.capacity, partial.queue.batch_size), (5, 10_000));
        assert_eq!(parse("[queue]\nbatch_size = 7\n").queue.batch_size, 7);
        assert!(toml::from_str::<MqttConfig>("[queue]\nbatchsize = 7\n").is_err(), "unknown keys are refused");
    }
}
