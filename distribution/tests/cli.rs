//! What an operator sees from the `distribution` binary without any server: `--check-config`,
//! configuration errors (exit 2), and `distribution check` naming every unreachable server (exit 1).

use std::process::Command;

fn distribution(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_distribution")).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn file(name: &str, text: &str) -> String {
    let path = std::env::temp_dir().join(format!("dist-cli-{}-{name}", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn check_config_accepts_the_shipped_file_and_names_bad_fields() {
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/distribution.toml");
    let (code, out, err) = distribution(&["--config", shipped, "--check-config"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("configuration OK") && out.contains("smartcity-distribution") && out.contains("mqtt"),
        "{out}"
    );

    for (text, expected) in [
        ("[pulsar]\nsubscription_type = \"sometimes\"\n", "sometimes"),
        ("[pulsar]\ntopic_pattern = \"persistent://public/default/(\"\n", "`pulsar.topic_pattern`"),
        ("[delivery]\nretry_budget_seconds = 0\n", "`delivery.retry_budget_seconds`"),
        ("[[sensorthings]]\nurl = \"ftp://frost\"\n", "`sensorthings[0].url`"),
        ("[[mqtt]]\nport = 1883\nbogus = 1\n", "unknown field `bogus`"),
    ] {
        let path = file("bad.toml", text);
        let (code, _, err) = distribution(&["--config", &path, "--check-config"]);
        assert_eq!(code, 2, "{text}: {err}");
        assert!(err.contains("bad.toml") && err.contains(expected), "{text}: {err}");
    }
}

#[test]
fn check_names_every_server_it_cannot_reach_and_exits_1() {
    // Port 9 (discard) on loopback: nothing listens there.
    let path = file(
        "down.toml",
        "[pulsar]\nurl = \"pulsar://127.0.0.1:9\"\ntimeout_seconds = 3\n[[mqtt]]\nport = 9\n[[ngsi_ld]]\nurl = \"http://127.0.0.1:9\"\n",
    );
    let (code, out, err) = distribution(&["--config", &path, "check"]);
    assert_eq!(code, 1, "{out}{err}");
    let rows: Vec<&str> = out.lines().collect();
    assert_eq!(rows.len(), 3, "one row per server:\n{out}");
    for (name, protocol) in [("pulsar", "pulsar"), ("mqtt", "mqtt"), ("ngsi-ld", "ngsi_ld")] {
        let row =
            rows.iter().find(|r| r.split_whitespace().nth(1) == Some(name)).unwrap_or_else(|| panic!("{name}:\n{out}"));
        assert!(row.starts_with("FAIL") && row.contains(protocol), "{row}");
    }
}

/// The metrics exposition lints clean with `promtool check metrics`, and names every family the
/// README and docs/configuration.md promise (while Pulsar is unreachable: nothing needs to flow).
#[test]
fn metrics_pass_promtool() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_distribution"))
        .args(["--pulsar-url", "pulsar://127.0.0.1:9", "--metrics-listen", &format!("127.0.0.1:{port}")])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut exposition = String::new();
    for _ in 0..100 {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
            s.read_to_string(&mut exposition).unwrap();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    let body = exposition.split("\r\n\r\n").nth(1).unwrap_or_default().to_string();
    for family in [
        "smartcity_distribution_messages_received_total",
        "smartcity_distribution_messages_delivered_total",
        "smartcity_distribution_messages_redelivered_total",
        "smartcity_distribution_messages_rejected_total",
        "smartcity_distribution_messages_in_flight",
        "smartcity_distribution_consumer_backlog",
        "smartcity_distribution_consumer_restarts_total",
        "smartcity_distribution_readings_published_total",
        "smartcity_distribution_publish_errors_total",
        "smartcity_distribution_sink_queue_readings",
        "smartcity_distribution_publish_duration_seconds_bucket",
    ] {
        assert!(body.contains(family), "{family} missing from:\n{body}");
    }
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool is installed by `make setup`");
    use std::io::Write;
    promtool.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let lint = promtool.wait_with_output().unwrap();
    assert!(
        lint.status.success(),
        "{}{}",
        String::from_utf8_lossy(&lint.stdout),
        String::from_utf8_lossy(&lint.stderr)
    );
}
