//! `distribution`: see `distribution --help`. All the work is in the library; this is wiring.

use clap::Parser;
use smartcity_connectors::runtime;
use smartcity_distribution::cli::{Cli, Command};
use smartcity_distribution::{check, check_table, run, DistError, DistributionConfig};
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

async fn main_inner(cli: Cli) -> Result<ExitCode, DistError> {
    let mut cfg = DistributionConfig::load(cli.config.as_deref())?;
    cli.apply(&mut cfg);
    cfg.validate(cli.config.as_deref())?;
    if cli.check_config {
        let targets: Vec<String> =
            cfg.targets().iter().map(|t| format!("{} ({} {})", t.name(), t.protocol(), t.address())).collect();
        println!(
            "configuration OK: Pulsar {} (subscription {}), metrics on {}\ntargets: {}",
            cfg.pulsar.address(),
            cfg.pulsar.subscription,
            cfg.metrics.listen,
            targets.join(", ")
        );
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(Command::Check) = cli.command {
        let rows = check(&cfg).await?;
        print!("{}", check_table(&rows));
        let failed = rows.iter().any(|r| r.result.is_err());
        return Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS });
    }
    run(cfg, runtime::shutdown_on_signals()).await.map(|_| ExitCode::SUCCESS).map_err(|e| match e {
        DistError::Source(s) => DistError::Source(format!("Pulsar: {s}")),
        other => other,
    })
}
