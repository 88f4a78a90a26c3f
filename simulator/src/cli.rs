//! Command-line options: a config file plus overrides of its most used fields.

use crate::config::SimulatorConfig;
use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Simulates the sensors of Martinique's smart city and publishes every reading to every configured
/// sink: MQTT brokers, Kafka, Kafka REST proxies, Pulsar, InfluxDB, NGSI-LD brokers, SensorThings.
///
/// With no options it starts an embedded MQTT broker on 127.0.0.1:1883 and publishes the
/// readings of ten sensors to `city/sensors/{kind}/{id}` every 5 seconds; watch them with
/// `mosquitto_sub -h 127.0.0.1 -t 'city/sensors/#' -v`. Metrics: http://127.0.0.1:8001/metrics.
/// The sinks are configured in the file given with --config (see config/simulator.toml).
///
/// Exit status: 0 when every sink delivered every reading; 1 when a sink dropped readings or left
/// some unsent at the end (each named with its count); 2 on a configuration or startup error.
#[derive(Debug, Parser)]
#[command(name = "simulator", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// TOML configuration file (default: the built-in copy of config/simulator.toml).
    #[arg(long, short, global = true, env = "SMARTCITY_SIMULATOR_CONFIG")]
    pub config: Option<PathBuf>,
    /// Refuse to start when any sink fails its check (by default a failing sink keeps retrying
    /// in the background while the others run).
    #[arg(long)]
    pub strict: bool,
    /// Validate the configuration and the catalogue, print a summary, and exit without touching the network.
    #[arg(long)]
    pub check_config: bool,
    /// Seed of every random choice (same seed, same readings).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Generate N sensors spread over the island instead of the catalogue.
    #[arg(long, value_name = "N")]
    pub sensors: Option<usize>,
    /// TOML catalogue of [[sensor]] tables.
    #[arg(long, value_name = "FILE")]
    pub catalogue: Option<PathBuf>,
    /// Simulated seconds between two readings of a sensor.
    #[arg(long, value_name = "SECONDS")]
    pub interval: Option<f64>,
    /// Simulated seconds per real second (60: a simulated minute per second).
    #[arg(long)]
    pub speed: Option<f64>,
    /// Backfill from this UTC time (RFC 3339, e.g. 2026-11-20T00:00:00Z), then go on live.
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// Stop when the simulated clock reaches this UTC time (RFC 3339).
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,
    /// MQTT broker host to publish to.
    #[arg(long, value_name = "HOST")]
    pub mqtt_host: Option<String>,
    /// MQTT broker port.
    #[arg(long, value_name = "PORT")]
    pub mqtt_port: Option<u16>,
    /// MQTT QoS: 0, 1 or 2.
    #[arg(long)]
    pub qos: Option<u8>,
    /// Do not start the embedded broker (publish to --mqtt-host instead).
    #[arg(long)]
    pub no_embedded_broker: bool,
    /// Address of the embedded broker.
    #[arg(long, value_name = "ADDR")]
    pub broker_listen: Option<SocketAddr>,
    /// Address of the /metrics endpoint.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
}

/// What to do instead of simulating.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Connect to every configured sink and print one row each (reachable, TLS, authenticated,
    /// topic or bucket usable); exit 1 if any row fails. Sends no readings.
    Check,
}

impl Cli {
    /// Applies the overrides given on the command line to `cfg`.
    pub fn apply(&self, cfg: &mut SimulatorConfig) {
        let s = &mut cfg.simulation;
        if let Some(v) = self.seed {
            s.seed = v;
        }
        if let Some(v) = self.sensors {
            s.sensors = v;
            s.catalogue.clear();
        }
        if let Some(v) = &self.catalogue {
            s.catalogue = v.display().to_string();
            s.sensors = 0;
        }
        if let Some(v) = self.interval {
            s.interval_seconds = v;
        }
        if let Some(v) = self.speed {
            s.speed = v;
        }
        if let Some(v) = &self.from {
            s.from = v.clone();
        }
        if let Some(v) = &self.to {
            s.to = v.clone();
        }
        // The first MQTT broker is the one the command line talks about.
        if let Some(m) = cfg.mqtt.first_mut() {
            if let Some(v) = &self.mqtt_host {
                m.host = v.clone();
            }
            if let Some(v) = self.mqtt_port {
                m.port = v;
            }
            if let Some(v) = self.qos {
                m.qos = v;
            }
            // The simulator publishes to its own broker unless told otherwise.
            if let (Some(v), None) = (self.broker_listen, self.mqtt_port) {
                m.port = v.port();
            }
        }
        if let Some(v) = self.broker_listen {
            cfg.embedded_broker.listen = v;
        }
        if self.no_embedded_broker {
            cfg.embedded_broker.enabled = false;
        }
        if let Some(v) = self.metrics_listen {
            cfg.metrics.listen = v;
        }
    }
}
