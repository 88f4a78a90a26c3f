//! `simulator`: see `simulator --help`. All the work is in the library; this is wiring.

use clap::Parser;
use smartcity_connectors::runtime;
use smartcity_simulator::{build_catalogue, cli::Cli, run, SimulatorConfig};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    runtime::init_logging();
    match main_inner(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

async fn main_inner(cli: Cli) -> Result<(), smartcity_simulator::SimError> {
    let mut cfg = SimulatorConfig::load(cli.config.as_deref())?;
    cli.apply(&mut cfg);
    cfg.validate(cli.config.as_deref())?;
    let catalogue = build_catalogue(&cfg)?;
    if cli.check_config {
        println!(
            "configuration OK: {} sensors, seed {}, MQTT {}{}, metrics on {}",
            catalogue.len(),
            cfg.simulation.seed,
            cfg.mqtt.url(),
            if cfg.embedded_broker.enabled { " (embedded broker)" } else { "" },
            cfg.metrics.listen
        );
        return Ok(());
    }
    let shutdown = runtime::shutdown_on_signals();
    run(cfg, catalogue, shutdown).await?;
    Ok(())
}
