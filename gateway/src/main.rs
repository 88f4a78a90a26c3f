//! `gateway`: see `gateway --help`. All the work is in the library; this is wiring.

use clap::Parser;
use smartcity_connectors::runtime;
use smartcity_gateway::cli::{Cli, Command};
use smartcity_gateway::{reinject, GatewayConfig};
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
        let store = cfg.influx().map_or_else(
            || format!("line-protocol files in {}", cfg.files.dir.display()),
            |i| format!("InfluxDB {}", i.address()),
        );
        let formats: Vec<String> =
            cfg.formats.iter().map(|(source, f)| format!("{source} reads {}", f.format.as_str())).collect();
        let formats = if formats.is_empty() { String::new() } else { format!(" ({})", formats.join(", ")) };
        println!(
            "configuration OK: sources {}{formats}; store {store}; spool {}; dashboard on http://{}/",
            cfg.source_names().join(", "),
            cfg.spool.dir.display(),
            cfg.http.listen
        );
        return ExitCode::SUCCESS;
    }
    match cli.command {
        Some(Command::Check) => {
            let rows = smartcity_gateway::check::check(&cfg).await;
            print!("{}", smartcity_gateway::check::table(&rows));
            return if rows.iter().any(|r| r.result.is_err()) { ExitCode::from(1) } else { ExitCode::SUCCESS };
        }
        Some(Command::Reinject { reasons, since, until }) => {
            let selection = reinject::Selection { reasons, since, until };
            return match reinject::reinject(&cfg, &reinject::files(&cfg), &selection).await {
                Ok(report) => {
                    println!("{report}");
                    if report.refused.is_empty() {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    }
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(1)
                }
            };
        }
        Some(Command::Decode { format, source, topic, file }) => {
            let payload = match std::fs::read(&file) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("error: cannot read {}: {e}", file.display());
                    return ExitCode::from(2);
                }
            };
            return match smartcity_gateway::sample::describe(
                &cfg,
                format,
                source.as_deref(),
                topic.as_deref(),
                &payload,
            ) {
                Ok(text) => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    println!("{e}");
                    ExitCode::from(1)
                }
            };
        }
        None => {}
    }
    match smartcity_gateway::run(cfg, runtime::shutdown_on_signals()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
