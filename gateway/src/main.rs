//! `gateway`: see `gateway --help`. All the work is in the library; this is wiring.

use clap::Parser;
use smartcity_connectors::runtime;
use smartcity_gateway::{cli::Cli, GatewayConfig};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    runtime::init_logging();
    let loaded = GatewayConfig::load(cli.config.as_deref()).and_then(|mut cfg| {
        cli.apply(&mut cfg);
        cfg.validate(cli.config.as_deref()).map(|()| cfg)
    });
    let cfg = match loaded {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.check_config {
        println!(
            "configuration OK: MQTT {} ({}/#), dashboard on http://{}/",
            cfg.mqtt.url(),
            cfg.mqtt.topic_prefix,
            cfg.http.listen
        );
        return ExitCode::SUCCESS;
    }
    match smartcity_gateway::run(cfg, runtime::shutdown_on_signals()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
