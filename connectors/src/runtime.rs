//! Process plumbing shared by the binaries: logging, the status line's setting and termination
//! signals.

use serde::Deserialize;
use tokio_util::sync::CancellationToken;

/// `[status]` of the simulator and the distribution service: a one-line summary on the log.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatusConfig {
    /// Seconds between two status lines; 0 turns them off.
    pub interval_seconds: u64,
}

impl Default for StatusConfig {
    fn default() -> Self {
        StatusConfig { interval_seconds: 5 }
    }
}

/// Environment variable selecting the log format: `json` (one JSON object per line, for log
/// shippers) or anything else for human-readable text.
pub const LOG_FORMAT_ENV: &str = "SMARTCITY_LOG_FORMAT";

/// Structured logs on stderr, filtered by `RUST_LOG` (default `info`), as text or JSON lines
/// (`SMARTCITY_LOG_FORMAT=json`). The embedded broker's own logs are off by default (it reports
/// every client hanging up as an error); its bind failures are checked and reported by us.
/// `RUST_LOG=info,rumqttd=debug` shows them. The Pulsar client's reconnection chatter is kept to
/// errors: our sink logs its own connections and failures with the sink's name.
pub fn init_logging() {
    let wanted = log_filter(std::env::var("RUST_LOG").ok().as_deref());
    let filter = tracing_subscriber::EnvFilter::try_new(&wanted)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(log_filter(None)));
    // stderr: stdout is for what a command prints as its result (e.g. `--check-config`).
    // Colour codes only on a terminal: `simulator > log` or a pipe gets plain text.
    use std::io::IsTerminal;
    let ansi = std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = if std::env::var(LOG_FORMAT_ENV).is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// The log filter: `RUST_LOG` (default `info`), with the embedded broker off and the Pulsar client
/// at errors unless it names them. Without this, `RUST_LOG=info` showed the Pulsar client's
/// "Retry #0 -> connecting consumer" warning for every topic at every start: it logs it before
/// its first attempt, successful or not.
fn log_filter(rust_log: Option<&str>) -> String {
    let mut filter = rust_log.map(str::trim).filter(|f| !f.is_empty()).unwrap_or("info").to_string();
    for (target, quiet) in [("rumqttd", "rumqttd=off"), ("pulsar", "pulsar=error")] {
        if !names_target(&filter, target) {
            filter.push(',');
            filter.push_str(quiet);
        }
    }
    filter
}

/// Whether a directive of `filter` is about the crate `target` (`pulsar=debug`, `pulsar::consumer`,
/// `pulsar[span]`), not one that merely holds the word (`smartcity_connectors::pulsar=debug`).
fn names_target(filter: &str, target: &str) -> bool {
    filter.split(',').any(|directive| {
        let name = directive.trim().split(['=', '[']).next().unwrap_or("");
        name == target || name.strip_prefix(target).is_some_and(|rest| rest.starts_with("::"))
    })
}

/// A token cancelled on Ctrl-C or SIGTERM, so every task can finish its work and exit cleanly.
pub fn shutdown_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!("cannot listen for SIGTERM ({e}); Ctrl-C still stops");
                    let _ = ctrl_c.await;
                    t.cancel();
                    return;
                }
            };
            tokio::select! {
                _ = ctrl_c => tracing::info!("Ctrl-C: shutting down"),
                _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            }
        }
        #[cfg(not(unix))]
        {
            let _ = ctrl_c.await;
        }
        t.cancel();
    });
    token
}

#[cfg(test)]
mod tests {
    use super::log_filter;

    #[test]
    fn the_chatty_clients_stay_quiet_unless_rust_log_names_them() {
        assert_eq!(log_filter(None), "info,rumqttd=off,pulsar=error");
        assert_eq!(log_filter(Some(" ")), "info,rumqttd=off,pulsar=error");
        assert_eq!(log_filter(Some("debug")), "debug,rumqttd=off,pulsar=error");
        assert_eq!(log_filter(Some("info,pulsar=debug")), "info,pulsar=debug,rumqttd=off");
        assert_eq!(log_filter(Some("info,rumqttd=debug,pulsar=warn")), "info,rumqttd=debug,pulsar=warn");
        assert_eq!(log_filter(Some("pulsar::consumer=debug")), "pulsar::consumer=debug,rumqttd=off");
        assert_eq!(
            log_filter(Some("smartcity_connectors::pulsar=debug")),
            "smartcity_connectors::pulsar=debug,rumqttd=off,pulsar=error",
            "our own module of that name is not the crate"
        );
    }
}
