//! `gateway check` against the real bench (every source, InfluxDB and the dead letters' copy
//! targets: one row each, exit 0; a wrong token: a FAIL row naming the cause, exit 1), and the
//! line-protocol files of the embedded default imported into the real InfluxDB as `influx write` would (same API, same precision).

mod common;

use common::{Run, Sources};
use smartcity_gateway::config::FilesConfig;
use smartcity_gateway::line_files::LineFiles;
use smartcity_model::{dynamics::Simulation, Catalogue, Reading};
use smartcity_testbench::bench_var;
use std::collections::BTreeSet;
use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_prints_one_row_per_server_and_fails_on_a_bad_token() {
    let run = Run::new("gw-check").await;
    let sources = Sources { mqtt: true, kafka: true, kafka_rest: true, pulsar: true, share: false };
    let config = run.gateway_config("a", &sources, &bench_var("BENCH_INFLUX_URL"), 1 << 30);
    let copies = format!(
        "\n[dead_letters.mqtt]\nhost = \"{}\"\nport = {}\n\n[dead_letters.kafka]\nbootstrap_servers = \"{}\"\n",
        bench_var("BENCH_MQTT_HOST"),
        bench_var("BENCH_MQTT_PORT"),
        bench_var("BENCH_KAFKA_BOOTSTRAP"),
    );
    std::fs::write(&config, std::fs::read_to_string(&config).unwrap() + &copies).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .args(["check", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{table}{}", String::from_utf8_lossy(&out.stderr));
    for row in ["mqtt source", "kafka source", "kafka_rest source", "pulsar source", "store", "dead letters"] {
        assert!(table.lines().any(|l| l.starts_with("OK") && l.contains(row)), "no OK row for {row}:\n{table}");
    }
    let copies = table.lines().filter(|l| l.starts_with("OK") && l.contains("dead-letter copies")).count();
    assert_eq!(copies, 2, "an OK row for the MQTT and the Kafka copies:\n{table}");

    let text = std::fs::read_to_string(&config).unwrap();
    let token_line = text.lines().find(|l| l.starts_with("token_file")).unwrap();
    let bad = run.dir.join("bad-token");
    std::fs::write(&bad, "not-the-token").unwrap();
    let bad_config = run.dir.join("bad.toml");
    std::fs::write(&bad_config, text.replace(token_line, &format!("token_file = \"{}\"", bad.display()))).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .args(["check", "--config", bad_config.to_str().unwrap()])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{table}");
    let store = table.lines().find(|l| l.contains("store")).unwrap();
    assert!(store.starts_with("FAIL") && store.contains("auth"), "the store row says why: {store}");
    assert!(!table.contains("not-the-token"), "a secret never shows: {table}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn line_protocol_files_import_into_influxdb() {
    let run = Run::new("gw-files").await;
    let cfg = FilesConfig { dir: run.dir.join("points"), rotate_bytes: 64 << 20, keep_files: 0 };
    let mut files = LineFiles::new(&cfg);
    let catalogue = Catalogue::default_ten();
    let sim = Simulation::new(5);
    let start = chrono::DateTime::parse_from_rfc3339("2026-06-01T00:00:00Z").unwrap().with_timezone(&chrono::Utc);
    let mut want = BTreeSet::new();
    for seq in 0..50u64 {
        let at = start + chrono::Duration::seconds(5 * seq as i64);
        let batch: Vec<Reading> = catalogue.sensors().iter().map(|s| sim.reading(s, at, seq)).collect();
        want.extend(batch.iter().map(|r| (r.sensor_id.clone(), r.seq)));
        assert!(files.send(&batch).is_ok());
    }
    let file = std::fs::read_dir(&cfg.dir).unwrap().next().unwrap().unwrap().path();
    // `influx write --precision ms --file F` posts the file's lines to /api/v2/write.
    let response = reqwest::Client::new()
        .post(format!("{}/api/v2/write", bench_var("BENCH_INFLUX_URL")))
        .query(&[("org", bench_var("BENCH_INFLUX_ORG")), ("bucket", run.names.bucket()), ("precision", "ms".into())])
        .header("Authorization", format!("Token {}", bench_var("BENCH_INFLUX_TOKEN")))
        .body(std::fs::read(&file).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 204, "{}", response.text().await.unwrap_or_default());
    common::assert_exactly(&want, &run.written().await);
}
