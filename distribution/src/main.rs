//! `distribution`: will consume the Pulsar `persistent://public/default/smartcity-*` topics and
//! republish every reading to the MQTT brokers, the NGSI-LD context brokers and FROST-Server.
//! Not implemented yet: it says so instead of pretending to run.

use clap::Parser;
use std::process::ExitCode;

/// Consumes the Pulsar smartcity-* topics and republishes to MQTT, NGSI-LD and SensorThings.
///
/// Not implemented in this release: the binary exists so that the layout shows the whole system.
#[derive(Debug, Parser)]
#[command(name = "distribution", version)]
struct Cli {}

fn main() -> ExitCode {
    let _ = Cli::parse();
    eprintln!("error: the distribution service is not implemented yet in this release (Pulsar → MQTT/NGSI-LD/FROST is planned)");
    ExitCode::from(2)
}
