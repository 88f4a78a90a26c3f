//! Command-line options of the distribution service.

use crate::config::DistributionConfig;
use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Consumes the Pulsar smartcity-* topics and republishes every reading to MQTT brokers, NGSI-LD
/// context brokers and SensorThings servers, acknowledging a message only once every target took it.
///
/// With no options it reads `persistent://public/default/smartcity-*` on pulsar://127.0.0.1:6650
/// (Key_Shared subscription `smartcity-distribution`) and republishes to the MQTT broker on
/// 127.0.0.1:1883. Metrics: http://127.0.0.1:8002/metrics.
#[derive(Debug, Parser)]
#[command(name = "distribution", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// TOML configuration file (default: the built-in copy of config/distribution.toml).
    #[arg(long, short, global = true, env = "SMARTCITY_DISTRIBUTION_CONFIG")]
    pub config: Option<PathBuf>,
    /// Validate the configuration, print a summary, and exit without touching the network.
    #[arg(long)]
    pub check_config: bool,
    /// Pulsar service URL (pulsar://host:6650).
    #[arg(long, value_name = "URL")]
    pub pulsar_url: Option<String>,
    /// Address of the /metrics endpoint.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
}

/// What to do instead of distributing.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Connect to Pulsar and to every target and print one row each; exit 1 if any fails.
    Check,
}

impl Cli {
    /// Applies the overrides given on the command line to `cfg`.
    pub fn apply(&self, cfg: &mut DistributionConfig) {
        if let Some(v) = &self.pulsar_url {
            cfg.pulsar.url = v.clone();
        }
        if let Some(v) = self.metrics_listen {
            cfg.metrics.listen = v;
        }
    }
}
