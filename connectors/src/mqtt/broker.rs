//! An MQTT broker inside the simulator process (rumqttd), so the demo needs nothing installed:
//! any MQTT client can `mosquitto_sub -h 127.0.0.1 -t 'city/sensors/#'`.

use serde::Deserialize;
use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// Settings of the embedded broker.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddedBrokerConfig {
    /// Start the broker (true for the demo; false when a real broker is used).
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// MQTT 3.1.1 listener. Keep it on loopback unless you mean to publish to your network:
    /// the embedded broker has no authentication.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Largest message accepted, bytes.
    #[serde(default = "default_max_payload")]
    pub max_payload_bytes: usize,
}

fn default_enabled() -> bool {
    true
}
fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 1883))
}
fn default_max_payload() -> usize {
    256 * 1024
}

impl Default for EmbeddedBrokerConfig {
    fn default() -> Self {
        EmbeddedBrokerConfig { enabled: true, listen: default_listen(), max_payload_bytes: default_max_payload() }
    }
}

/// A running embedded broker. It lives as long as the process (rumqttd has no stop).
pub struct EmbeddedBroker {
    pub listen: SocketAddr,
}

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("embedded MQTT broker cannot listen on {addr}: {source} (is another broker running? change `embedded_broker.listen` or set `embedded_broker.enabled = false`)")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("embedded MQTT broker on {0} did not accept connections within 5 s")]
    NotReady(SocketAddr),
}

impl EmbeddedBroker {
    /// Starts rumqttd on its own threads and waits until it accepts connections.
    pub fn start(cfg: &EmbeddedBrokerConfig) -> Result<Self, BrokerError> {
        // rumqttd only logs a bind failure from its thread; check first to give the user a clear error.
        TcpListener::bind(cfg.listen).map_err(|source| BrokerError::Bind { addr: cfg.listen, source })?;
        let mut broker = rumqttd::Broker::new(rumqttd_config(cfg));
        std::thread::Builder::new()
            .name("mqtt-broker".into())
            .spawn(move || {
                if let Err(e) = broker.start() {
                    tracing::error!("embedded MQTT broker stopped: {e}");
                }
            })
            .map_err(|source| BrokerError::Bind { addr: cfg.listen, source })?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect_timeout(&cfg.listen, Duration::from_millis(200)).is_err() {
            if Instant::now() > deadline {
                return Err(BrokerError::NotReady(cfg.listen));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        tracing::info!("embedded MQTT broker listening on mqtt://{}", cfg.listen);
        Ok(EmbeddedBroker { listen: cfg.listen })
    }
}

fn rumqttd_config(cfg: &EmbeddedBrokerConfig) -> rumqttd::Config {
    let server = rumqttd::ServerSettings {
        name: "v4".into(),
        listen: cfg.listen,
        tls: None,
        next_connection_delay_ms: 1,
        connections: rumqttd::ConnectionSettings {
            connection_timeout_ms: 60_000,
            max_payload_size: cfg.max_payload_bytes,
            max_inflight_count: 500,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    };
    rumqttd::Config {
        id: 0,
        router: rumqttd::RouterConfig {
            max_connections: 10_010,
            max_outgoing_packet_count: 200,
            max_segment_size: 100 * 1024 * 1024,
            max_segment_count: 10,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: Default::default(),
        },
        v4: Some(HashMap::from([("1".to_string(), server)])),
        v5: None,
        ws: None,
        cluster: None,
        console: None,
        bridge: None,
        prometheus: None,
        metrics: None,
    }
}
