//! The demo as a user sees it: start the real `simulator` binary with its built-in configuration
//! (ports moved aside so a running demo does not interfere), watch `city/sensors/#` with the real
//! `mosquitto_sub`, lint `/metrics` with `promtool`, then stop it with SIGTERM.

use std::collections::{BTreeSet, HashSet};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn need(tool: &str) {
    let found = Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output().unwrap().status.success();
    assert!(found, "`{tool}` is not installed: run `make setup` (make test does it for you)");
}

#[tokio::test]
async fn ten_sensors_of_six_kinds_within_15_s_then_clean_exit() {
    need("mosquitto_sub");
    need("promtool");
    let (mqtt, metrics) = (free_port(), free_port());
    let started = Instant::now();
    let mut sim = Command::new(env!("CARGO_BIN_EXE_simulator"))
        .args(["--broker-listen", &format!("127.0.0.1:{mqtt}"), "--metrics-listen", &format!("127.0.0.1:{metrics}")])
        .stderr(Stdio::null())
        .spawn()
        .expect("simulator starts");

    // Retry while the broker comes up; read until 10 sensors of 6 kinds, at most 15 s after start.
    let mut ids = HashSet::new();
    let mut kinds = BTreeSet::new();
    while started.elapsed() < Duration::from_secs(15) && (ids.len() < 10 || kinds.len() < 6) {
        let out = Command::new("mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", &mqtt.to_string(), "-t", "city/sensors/#", "-v", "-W", "6", "-C", "20"])
            .output()
            .expect("mosquitto_sub runs");
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let (topic, payload) = line.split_once(' ').expect("-v prints `topic payload`");
            let reading =
                smartcity_model::codec::json::decode(payload.as_bytes()).unwrap_or_else(|e| panic!("{e}: {payload}"));
            assert_eq!(topic, format!("city/sensors/{}/{}", reading.kind(), reading.sensor_id));
            kinds.insert(reading.kind());
            ids.insert(reading.sensor_id);
        }
    }
    assert!(
        ids.len() >= 10 && kinds.len() == 6,
        "after {:?}: {} sensors, kinds {kinds:?}",
        started.elapsed(),
        ids.len()
    );

    let exposition = reqwest::get(format!("http://127.0.0.1:{metrics}/metrics")).await.unwrap().text().await.unwrap();
    for name in [
        "smartcity_build_info",
        "smartcity_simulator_readings_generated_total",
        "smartcity_simulator_readings_published_total",
        "smartcity_simulator_publish_errors_total",
        "smartcity_simulator_publish_duration_seconds_bucket",
    ] {
        assert!(exposition.contains(name), "{name} missing from /metrics");
    }
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    promtool.stdin.take().unwrap().write_all(exposition.as_bytes()).unwrap();
    let lint = promtool.wait_with_output().unwrap();
    assert!(
        lint.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&lint.stdout),
        String::from_utf8_lossy(&lint.stderr)
    );

    // Graceful shutdown: SIGTERM → flush, disconnect, exit 0.
    let pid = sim.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = sim.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "simulator did not stop within 15 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status after SIGTERM: {status}");
}
