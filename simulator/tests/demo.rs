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

/// The simulator as a child process whose stderr goes to a file, so that a failure can show it.
struct Simulator {
    child: std::process::Child,
    log: std::path::PathBuf,
}

impl Simulator {
    /// Starts the binary on free ports; starts again on other ports if the ones picked were taken
    /// meanwhile (another process may grab a port between our probe and the simulator's bind).
    fn start() -> (Self, u16, u16) {
        for attempt in 0..5 {
            let (mqtt, metrics) = (free_port(), free_port());
            let log = std::env::temp_dir().join(format!("demo-sim-{}-{attempt}.log", std::process::id()));
            let child = Command::new(env!("CARGO_BIN_EXE_simulator"))
                .args([
                    "--broker-listen",
                    &format!("127.0.0.1:{mqtt}"),
                    "--metrics-listen",
                    &format!("127.0.0.1:{metrics}"),
                ])
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .expect("simulator starts");
            let mut sim = Simulator { child, log };
            // Ready once its metrics answer: by then the broker is up and the sinks are built.
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Some(status) = sim.child.try_wait().unwrap() {
                    let log = sim.log_text();
                    assert!(
                        log.contains("cannot listen") || log.contains("cannot serve"),
                        "simulator exited ({status}):\n{log}"
                    );
                    break; // a port was taken: try other ones
                }
                if std::net::TcpStream::connect(("127.0.0.1", metrics)).is_ok() {
                    return (sim, mqtt, metrics);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("the simulator could not start on free ports in 5 attempts");
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn ten_sensors_of_six_kinds_within_15_s_then_clean_exit() {
    need("mosquitto_sub");
    need("promtool");
    let started = Instant::now();
    let (mut sim, mqtt, metrics) = Simulator::start();

    // One subscriber for the whole test, read line by line until 10 sensors of 6 kinds or 15 s.
    let mut sub = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &mqtt.to_string(), "-t", "city/sensors/#", "-v", "-q", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mosquitto_sub runs");
    let stdout = sub.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut ids = HashSet::new();
    let mut kinds = BTreeSet::new();
    let deadline = started + Duration::from_secs(15);
    while ids.len() < 10 || kinds.len() < 6 {
        let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) else { break };
        let (topic, payload) = line.split_once(' ').expect("-v prints `topic payload`");
        let reading =
            smartcity_model::codec::json::decode(payload.as_bytes()).unwrap_or_else(|e| panic!("{e}: {payload}"));
        assert_eq!(topic, format!("city/sensors/{}/{}", reading.kind(), reading.sensor_id));
        kinds.insert(reading.kind());
        ids.insert(reading.sensor_id);
    }
    let _ = sub.kill();
    let sub_err = sub.wait_with_output().map(|o| String::from_utf8_lossy(&o.stderr).into_owned()).unwrap_or_default();
    assert!(
        ids.len() >= 10 && kinds.len() == 6,
        "after {:?}: {} sensors, kinds {kinds:?}\nmosquitto_sub stderr: {sub_err}\nsimulator log:\n{}",
        started.elapsed(),
        ids.len(),
        sim.log_text()
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
    let pid = sim.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = sim.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "simulator did not stop within 15 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status after SIGTERM: {status}\n{}", sim.log_text());
}
