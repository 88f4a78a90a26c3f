//! Command-line options of the gateway.

use crate::config::GatewayConfig;
use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Consumes smart-city readings from MQTT, Kafka, a Kafka REST proxy and Pulsar, writes them to
/// InfluxDB with nothing lost, and serves a live map dashboard, a JSON API and metrics.
///
/// With no options it subscribes to `city/sensors/#` on 127.0.0.1:1883 (the simulator's embedded
/// broker), writes line-protocol files under data/gateway/points/, and serves the dashboard on
/// http://127.0.0.1:8080/. Sources and InfluxDB are configured in the file given with --config
/// (see config/gateway.toml).
#[derive(Debug, Parser)]
#[command(name = "gateway", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// TOML configuration file (default: the built-in copy of config/gateway.toml).
    #[arg(long, short, global = true, env = "SMARTCITY_GATEWAY_CONFIG")]
    pub config: Option<PathBuf>,
    /// Validate the configuration, print a summary, and exit without touching the network.
    #[arg(long)]
    pub check_config: bool,
    /// Host of the (first) MQTT broker.
    #[arg(long, value_name = "HOST")]
    pub mqtt_host: Option<String>,
    /// Port of the (first) MQTT broker.
    #[arg(long, value_name = "PORT")]
    pub mqtt_port: Option<u16>,
    /// MQTT client id of the (first) broker (keep it stable to keep the broker session).
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
    /// Folder of every file the gateway writes: points/ (without InfluxDB), spool/ and
    /// dead-letters.jsonl (default: the paths of the config file, under data/gateway/).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address of the dashboard, API and /metrics.
    #[arg(long, value_name = "ADDR")]
    pub http_listen: Option<SocketAddr>,
}

/// What to do instead of ingesting.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Connect to every configured source and to the store and print one row each (reachable,
    /// TLS, authenticated, topics or bucket usable); exit 1 if any row fails. Consumes nothing.
    Check,
    /// Write dead letters to the store again once their cause is fixed (a bucket's retention, a
    /// field type conflict, a producer's topic): each is decoded again as the gateway would now.
    /// Safe to run twice (the same points); the dead-letter file is only read. Exit 1 if some are
    /// still refused or the store stays down.
    Reinject {
        /// Only dead letters with this reason (repeat for several; e.g. `rejected`, `topic`).
        #[arg(long = "reason", value_name = "REASON")]
        reasons: Vec<String>,
        /// Only dead letters set aside at or after this time (RFC 3339).
        #[arg(long, value_name = "TIME", value_parser = crate::reinject::parse_time)]
        since: Option<chrono::DateTime<chrono::Utc>>,
        /// Only dead letters set aside before this time (RFC 3339).
        #[arg(long, value_name = "TIME", value_parser = crate::reinject::parse_time)]
        until: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// Print what one sample payload becomes, offline: its reading(s) in the wire format and in
    /// InfluxDB line protocol, or the dead letter's reason and message (exit 1). The format and
    /// its settings are those of `--source` in the configuration, or `--format` with defaults.
    Decode {
        /// The payload format (default: the source's, else `json`).
        #[arg(long, value_enum)]
        format: Option<crate::formats::Format>,
        /// Take the format and its settings (kind, positions...) from `[formats.<SOURCE>]`.
        #[arg(long, value_name = "SOURCE")]
        source: Option<String>,
        /// The topic the payload came on (TTN and ChirpStack read uplink topics only).
        #[arg(long, value_name = "TOPIC")]
        topic: Option<String>,
        /// A file holding one payload.
        file: PathBuf,
    },
}

impl Cli {
    pub fn apply(&self, cfg: &mut GatewayConfig) {
        if let Some(m) = cfg.mqtt.first_mut() {
            if let Some(v) = &self.mqtt_host {
                m.host = v.clone();
            }
            if let Some(v) = self.mqtt_port {
                m.port = v;
            }
            if let Some(v) = &self.client_id {
                m.client_id = v.clone();
            }
        }
        if let Some(dir) = &self.data_dir {
            cfg.set_data_dir(dir);
        }
        if let Some(v) = self.http_listen {
            cfg.http.listen = v;
        }
    }
}
