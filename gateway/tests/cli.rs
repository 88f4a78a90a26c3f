//! The gateway binary as an operator meets it: clear config errors, and a clean exit on SIGTERM
//! even while its broker is unreachable.

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn invalid_config_names_file_and_field_and_fails() {
    let path = std::env::temp_dir().join(format!("gateway-cli-{}.toml", std::process::id()));
    let shipped = include_str!("../../config/gateway.toml");
    std::fs::write(&path, shipped.replace("qos = 1", "qos = 3")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .args(["--config", path.to_str().unwrap(), "--check-config"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(path.to_str().unwrap()) && err.contains("`mqtt[0].qos`"), "{err}");

    let ok = Command::new(env!("CARGO_BIN_EXE_gateway")).arg("--check-config").output().unwrap();
    assert!(ok.status.success());
    assert!(String::from_utf8_lossy(&ok.stdout).contains("configuration OK"));
}

#[test]
fn sigterm_stops_it_cleanly_even_without_a_broker() {
    let (dead_broker, http) = (free_port(), free_port());
    let mut gw = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .args(["--mqtt-port", &dead_broker.to_string(), "--http-listen", &format!("127.0.0.1:{http}")])
        .args(["--data-dir", std::env::temp_dir().join(format!("gw-cli-{http}")).to_str().unwrap()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Serving while the broker is down: the dashboard stays up and says so through metrics.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", http)).is_err() {
        assert!(Instant::now() < deadline, "gateway did not start serving");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(Command::new("kill").args(["-TERM", &gw.id().to_string()]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = gw.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "gateway ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status}");
    let mut log = String::new();
    use std::io::Read;
    gw.stderr.take().unwrap().read_to_string(&mut log).unwrap();
    assert!(log.contains("Connection refused") || log.contains("connection refused"), "the failure is logged: {log}");
}

/// `gateway decode` prints what a sample payload becomes, offline, with a source's settings; a
/// `[formats]` entry for a source that does not exist fails `--check-config`, naming it.
#[test]
fn decode_shows_a_sample_and_check_config_checks_formats() {
    let dir = std::env::temp_dir().join(format!("gateway-cli-formats-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("gateway.toml");
    std::fs::write(
        &config,
        "[mqtt]\nname = \"cs\"\n[formats.cs]\nformat = \"chirpstack\"\nkind = \"noise\"\nlat = 14.468\nlon = -60.869\n",
    )
    .unwrap();
    let event = dir.join("event.json");
    // No fCnt (0 is left out), no location in the event: the source's position applies.
    std::fs::write(&event, r#"{"time":"2026-11-21T11:30:00Z","deviceInfo":{"devEui":"0102030405060708"},"object":{"LAeq":60,"LAmax":70,"LAS":58,"battery":90}}"#).unwrap();
    let run = |args: &[&str]| Command::new(env!("CARGO_BIN_EXE_gateway")).args(args).output().unwrap();
    let out = run(&["--config", config.to_str().unwrap(), "decode", "--source", "cs", event.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("\"type\":\"noise\",\"commune\":\"Le Marin\""), "{text}");
    assert!(text.contains("noise,commune=Le\\ Marin,kind=noise,sensor_id=0102030405060708 LAeq=60"), "{text}");

    // Without the source's position the same event is a dead letter, and says why.
    let out = run(&["decode", "--format", "chirpstack", event.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("reason `location`") && text.contains("no position"), "{text}");

    let ok = run(&["--config", config.to_str().unwrap(), "--check-config"]);
    assert!(String::from_utf8_lossy(&ok.stdout).contains("cs reads chirpstack"));
    std::fs::write(&config, "[formats.ttn]\nformat = \"ttn\"\n").unwrap();
    let bad = run(&["--config", config.to_str().unwrap(), "--check-config"]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{err}");
    assert!(err.contains("`formats.ttn.format`") && err.contains("no enabled source is named `ttn`"), "{err}");
}
