//! Command-line options of the gateway.

use crate::config::GatewayConfig;
use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Consumes smart-city readings from MQTT and serves a live map dashboard, a JSON API and metrics.
///
/// With no options it subscribes to `city/sensors/#` on 127.0.0.1:1883 (the simulator's
/// embedded broker) and serves the dashboard on http://127.0.0.1:8080/.
#[derive(Debug, Parser)]
#[command(name = "gateway", version)]
pub struct Cli {
    /// TOML configuration file (default: the built-in copy of config/gateway.toml).
    #[arg(long, short, env = "SMARTCITY_GATEWAY_CONFIG")]
    pub config: Option<PathBuf>,
    /// Validate the configuration, print a summary, and exit without touching the network.
    #[arg(long)]
    pub check_config: bool,
    /// MQTT broker host.
    #[arg(long, value_name = "HOST")]
    pub mqtt_host: Option<String>,
    /// MQTT broker port.
    #[arg(long, value_name = "PORT")]
    pub mqtt_port: Option<u16>,
    /// MQTT client id (keep it stable to keep the broker session).
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
    /// Address of the dashboard, API and /metrics.
    #[arg(long, value_name = "ADDR")]
    pub http_listen: Option<SocketAddr>,
}

impl Cli {
    pub fn apply(&self, cfg: &mut GatewayConfig) {
        if let Some(v) = &self.mqtt_host {
            cfg.mqtt.host = v.clone();
        }
        if let Some(v) = self.mqtt_port {
            cfg.mqtt.port = v;
        }
        if let Some(v) = &self.client_id {
            cfg.mqtt.client_id = v.clone();
        }
        if let Some(v) = self.http_listen {
            cfg.http.listen = v;
        }
    }
}
