//! Access to the test bench started by `make services-up` (scripts/services/services.sh).
//!
//! The bench writes `target/bench/env` (KEY=value lines). Integration tests read it through
//! [`bench_env`]; a missing file or key is a loud failure, never a skip: `make test` starts the
//! bench first, so an absent server is a broken bench, not a reason to pass.

use std::collections::HashMap;
use std::path::PathBuf;

/// Path of the env file: `$SMARTCITY_BENCH_ENV`, or `<workspace>/target/bench/env`.
pub fn env_file_path() -> PathBuf {
    match std::env::var_os("SMARTCITY_BENCH_ENV") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench/env"),
    }
}

/// All KEY=value pairs of the bench env file. Panics with a how-to-fix message when absent.
pub fn bench_env() -> HashMap<String, String> {
    let path = env_file_path();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "test bench env file {} unreadable ({e}): start the real servers with `make services-up`",
            path.display()
        )
    });
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('"').to_string()))
        .collect()
}

/// One key of the bench env. Panics naming the key and the server to start when missing.
pub fn bench_var(key: &str) -> String {
    bench_env().remove(key).unwrap_or_else(|| {
        panic!("{key} missing from {}: is its server up? (`make services-status`)", env_file_path().display())
    })
}

/// A name unique to this test run, for topics, client ids and consumer groups.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{prefix}-{}-{nanos}", std::process::id())
}

pub mod gate;
pub mod malformed;
pub mod ngsi_ld_contract;
pub mod readback;
pub mod sim_config;
