//! `simulator`: see `simulator --help`. All the work is in the library; this is wiring.

use clap::Parser;
use smartcity_connectors::mqtt::EmbeddedBroker;
use smartcity_connectors::runtime;
use smartcity_simulator::cli::{Cli, Command};
use smartcity_simulator::{build_catalogue, check, check_table, run, SimError, SimulatorConfig};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    runtime::init_logging();
    match main_inner(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

async fn main_inner(cli: Cli) -> Result<ExitCode, SimError> {
    let mut cfg = SimulatorConfig::load(cli.config.as_deref())?;
    cli.apply(&mut cfg);
    cfg.validate(cli.config.as_deref())?;
    let catalogue = build_catalogue(&cfg)?;
    if cli.check_config {
        let sinks: Vec<String> =
            cfg.sinks().iter().map(|s| format!("{} ({} {})", s.name(), s.protocol(), s.address())).collect();
        println!(
            "configuration OK: {} sensors, seed {}, metrics on {}{}\nsinks: {}",
            catalogue.len(),
            cfg.simulation.seed,
            cfg.metrics.listen,
            if cfg.embedded_broker.enabled { ", embedded MQTT broker" } else { "" },
            sinks.join(", ")
        );
        return Ok(ExitCode::SUCCESS);
    }
    // Started before the checks, so that a sink pointing at it checks like any broker.
    let _broker = if cfg.embedded_broker.enabled { Some(EmbeddedBroker::start(&cfg.embedded_broker)?) } else { None };
    if let Some(Command::Check) = cli.command {
        let rows = check(&cfg).await?;
        print!("{}", check_table(&rows));
        let failed = rows.iter().filter(|r| r.result.is_err()).count();
        return Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) });
    }
    let shutdown = runtime::shutdown_on_signals();
    if cli.strict {
        let failed: Vec<_> = check(&cfg).await?.into_iter().filter(|r| r.result.is_err()).collect();
        if !failed.is_empty() {
            return Err(SimError::Strict(failed.len(), check_table(&failed)));
        }
    }
    let summary = run(cfg, catalogue, shutdown).await?;
    if let Some(losses) = summary.losses() {
        // Never a success after dropping data: a script or CI running a bounded run must see it.
        eprintln!("error: readings not delivered: {losses} (see the sinks' log lines above for why)");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
