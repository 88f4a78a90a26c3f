//! The Prometheus of the docker compose stack (deploy/prometheus/), proven with Prometheus' own
//! `promtool` (Debian `prometheus`, installed by the bench):
//!
//! - `config_is_valid`: `promtool check config prometheus.yml` (which also loads alerts.yml), and it
//!   scrapes our three binaries and the brokers at their compose names.
//! - `rules_are_valid`: `promtool check rules alerts.yml`; every alert has a severity, a summary
//!   and a description, and is explained in docs/operations.md.
//! - `rules_unit_tests_pass`: `promtool test rules alerts.test.yml`, where every alert has a case
//!   where it fires and one where it does not.
//! - `alerts_use_registered_metrics`: every `smartcity_*` name in alerts.yml and alerts.test.yml is
//!   one our code registers (string literals of the Rust sources, plus the shared sink and source
//!   families of connectors/src/metrics.rs for the components that register them).
//!
//! No server needed: `cargo test -p smartcity-testbench --test deploy_prometheus`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace holds testbench/").to_path_buf()
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("cannot read {rel}: {e}"))
}

/// Runs promtool from the workspace root; panics with its output unless it succeeds. A missing
/// promtool is a failure, not a skip.
fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool").args(args).current_dir(root()).output().unwrap_or_else(|e| {
        panic!("cannot run promtool ({e}): install Debian `prometheus` (`scripts/services/services.sh up prometheus`)")
    });
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "`promtool {}` failed ({}):\n{text}", args.join(" "), out.status);
    text
}

/// The alert names of alerts.yml, in order.
fn alert_names(rules: &str) -> Vec<String> {
    rules.lines().filter_map(|l| l.trim().strip_prefix("- alert:")).map(|n| n.trim().to_string()).collect()
}

#[test]
fn config_is_valid() {
    let out = promtool(&["check", "config", "deploy/prometheus/prometheus.yml"]);
    assert!(out.contains("1 rule files found"), "the config should load alerts.yml:\n{out}");
    let config = read("deploy/prometheus/prometheus.yml");
    for (target, path) in [
        ("simulator:8001", "/metrics"),
        ("gateway:8080", "/metrics"),
        ("distribution:8002", "/metrics"),
        ("mosquitto-exporter:9234", "/metrics"),
        ("pulsar:8080", "/metrics"),
        ("redpanda:9644", "/public_metrics"),
        ("influxdb:8086", "/metrics"),
    ] {
        // The job's block: from its target back to the `- job_name` before it.
        let at = config.find(&format!("\"{target}\"")).unwrap_or_else(|| panic!("no scrape target {target}"));
        let job = &config[config[..at].rfind("- job_name:").expect("a job before the target")..at];
        assert!(job.contains(&format!("metrics_path: {path}")), "{target} should be scraped at {path}:\n{job}");
    }
}

#[test]
fn rules_are_valid() {
    let out = promtool(&["check", "rules", "deploy/prometheus/alerts.yml"]);
    let rules = read("deploy/prometheus/alerts.yml");
    let names = alert_names(&rules);
    assert!(out.contains(&format!("SUCCESS: {} rules found", names.len())), "{} alerts expected:\n{out}", names.len());
    let unique: BTreeSet<&String> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "alert names repeat: {names:?}");
    let operations = read("docs/operations.md");
    for (i, block) in rules.split("- alert:").skip(1).enumerate() {
        let name = &names[i];
        assert!(
            block.contains("severity: critical") || block.contains("severity: warning"),
            "{name}: no severity label (critical or warning)"
        );
        assert!(block.contains("summary:") && block.contains("description:"), "{name}: summary and description");
        assert!(operations.contains(&format!("`{name}`")), "{name} is not explained in docs/operations.md");
    }
}

#[test]
fn rules_unit_tests_pass() {
    let out = promtool(&["test", "rules", "deploy/prometheus/alerts.test.yml"]);
    assert!(out.contains("SUCCESS"), "{out}");
    // Every alert is tested both ways: a case where it fires (exp_labels) and one where it does not.
    let tests = read("deploy/prometheus/alerts.test.yml");
    let (mut fires, mut silent) = (BTreeSet::new(), BTreeSet::new());
    for case in tests.split("- alertname:").skip(1) {
        let name = case.split_whitespace().next().expect("an alert name").to_string();
        // The case ends where the next test group starts, if it does.
        let case = case.split("\n  - name:").next().unwrap_or(case);
        if case.contains("exp_alerts: []") {
            silent.insert(name);
        } else if case.contains("exp_labels:") {
            fires.insert(name);
        }
    }
    for name in alert_names(&read("deploy/prometheus/alerts.yml")) {
        assert!(fires.contains(&name), "alerts.test.yml: no case where {name} fires");
        assert!(silent.contains(&name), "alerts.test.yml: no case where {name} does not fire");
    }
}

/// The `.rs` files under `dir`, recursively.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every `smartcity_...` token of `text` (`{`/`}` kept, for templates).
fn tokens(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("smartcity_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '{' | '}')))
            .unwrap_or(tail.len());
        found.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    found
}

/// The metric names our binaries register: every `"smartcity_..."` literal of `*/src/**.rs`, and the
/// `smartcity_{component}_...` families of `SinkMetrics` / `SourceMetrics` for each of simulator,
/// gateway and distribution that registers them on its registry (not on a throw-away `Registry::new()`).
fn registered_names() -> BTreeSet<String> {
    let root = root();
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&root).expect("workspace root").flatten() {
        rust_files(&entry.path().join("src"), &mut files);
    }
    assert!(files.len() > 20, "too few Rust sources found under {}/*/src", root.display());
    let shared = read("connectors/src/metrics.rs");
    let section = |name: &str| -> Vec<String> {
        let start = shared.find(&format!("impl {name} {{")).unwrap_or_else(|| panic!("impl {name} in metrics.rs"));
        let body = &shared[start..];
        let body = &body[..body[1..].find("\nimpl ").map_or(body.len(), |e| e + 1)];
        let families: Vec<String> = tokens(body).into_iter().filter(|t| t.contains("{component}")).collect();
        assert!(!families.is_empty(), "no smartcity_{{component}}_ family in impl {name}");
        families
    };
    let mut names = BTreeSet::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for literal in text.split("\"smartcity_").skip(1) {
            let rest = literal.split('"').next().unwrap_or_default();
            if rest.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
                names.insert(format!("smartcity_{rest}"));
            }
        }
        for family in ["SinkMetrics", "SourceMetrics"] {
            let call = format!("{family}::register(");
            for line in text.lines().filter(|l| l.contains(&call) && !l.contains("Registry::new()")) {
                for component in ["simulator", "gateway", "distribution"] {
                    if line.contains(&format!("\"{component}\")")) {
                        names.extend(section(family).iter().map(|t| t.replace("{component}", component)));
                    }
                }
            }
        }
    }
    names
}

#[test]
fn alerts_use_registered_metrics() {
    let registered = registered_names();
    // One of each origin: a literal, a sink family, a source family.
    let samples =
        ["smartcity_gateway_sensors_silent", "smartcity_simulator_sink_up", "smartcity_gateway_source_connected"];
    for must in samples {
        assert!(registered.contains(must), "the scan of the sources missed {must}: {registered:?}");
    }
    for file in ["deploy/prometheus/alerts.yml", "deploy/prometheus/alerts.test.yml"] {
        let text = read(file);
        let code: String = text.lines().filter(|l| !l.trim_start().starts_with('#')).collect::<Vec<_>>().join("\n");
        // `name{label="..."}`: the name ends at the selector.
        let used: BTreeSet<String> =
            tokens(&code).into_iter().map(|t| t.split('{').next().unwrap_or_default().to_string()).collect();
        assert!(!used.is_empty(), "{file} uses no smartcity_ metric");
        for name in used {
            let base = ["_bucket", "_sum", "_count"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(&name);
            assert!(
                registered.contains(&name) || registered.contains(base),
                "{file}: `{name}` is not a metric our code registers; known: {registered:#?}"
            );
        }
    }
}
