//! What a user sees when the configuration is wrong, and `--check-config` when it is right.

use std::process::Command;

fn simulator(args: &[&str]) -> (bool, i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_simulator")).args(args).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), out.status.code().unwrap_or(-1), text)
}

#[test]
fn check_config_accepts_the_shipped_file_without_network() {
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/simulator.toml");
    let (ok, _, text) = simulator(&["--config", shipped, "--check-config"]);
    assert!(ok, "{text}");
    assert!(text.contains("configuration OK: 10 sensors"), "{text}");
    let (ok, _, text) = simulator(&["--sensors", "100000", "--check-config"]);
    assert!(ok && text.contains("100000 sensors"), "{text}");
}

#[test]
fn invalid_file_or_value_names_the_file_and_field_and_fails() {
    let dir = std::env::temp_dir().join(format!("sim-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("broken.toml");
    let shipped = include_str!("../../config/simulator.toml");
    std::fs::write(&path, shipped.replace("interval_seconds = 5.0", "interval_seconds = -1.0")).unwrap();
    let (ok, code, text) = simulator(&["--config", path.to_str().unwrap(), "--check-config"]);
    assert!(!ok && code != 0);
    assert!(text.contains("broken.toml") && text.contains("`simulation.interval_seconds`"), "{text}");

    std::fs::write(&path, shipped.replace("[metrics]", "[metrix]")).unwrap();
    let (ok, _, text) = simulator(&["--config", path.to_str().unwrap(), "--check-config"]);
    assert!(!ok && text.contains("broken.toml") && text.contains("metrix"), "{text}");

    let (ok, _, text) = simulator(&["--config", "/nonexistent/sim.toml", "--check-config"]);
    assert!(!ok && text.contains("/nonexistent/sim.toml"), "{text}");

    let (ok, _, text) = simulator(&["--speed", "0", "--check-config"]);
    assert!(!ok && text.contains("`simulation.speed`"), "{text}");

    let (ok, _, text) =
        simulator(&["--from", "2026-11-21T00:00:00Z", "--to", "2026-11-20T00:00:00Z", "--check-config"]);
    assert!(!ok && text.contains("`simulation.to`"), "{text}");

    let catalogue = dir.join("cat.toml");
    std::fs::write(&catalogue, "[[sensor]]\nid = 'a'\nkind = 'traffic'\ncommune = 'Paris'\n").unwrap();
    let (ok, _, text) = simulator(&["--catalogue", catalogue.to_str().unwrap(), "--check-config"]);
    assert!(!ok && text.contains("cat.toml") && text.contains("Paris"), "{text}");
}

/// Bad sink settings are refused by `--check-config` (no network) with the file, the field and the
/// reason, and exit code 2.
#[test]
fn bad_sink_settings_are_refused_with_file_field_and_reason() {
    let dir = std::env::temp_dir().join(format!("sim-cli-sinks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sinks.toml");
    let cases = [
        ("[[kafka]]\nbootstrap = \"127.0.0.1:9092\"\n", "unknown field `bootstrap`"),
        ("[[mqtt]]\n[mqtt.tls]\nca_file = \"/nonexistent/ca.pem\"\n", "`mqtt[0].tls`"),
        ("[[kafka]]\nsecurity_protocol = \"sasl_ssl\"\nusername = \"u\"\n[kafka.tls]\nca_file = \"/nonexistent/kafka-ca.pem\"\n", "/nonexistent/kafka-ca.pem"),
        ("[[pulsar]]\nurl = \"pulsar//127.0.0.1:6650\"\n", "`pulsar[0].url`"),
        ("[[kafka_rest]]\nurl = \"http://[::1\"\n", "`kafka_rest[0].url`"),
        ("[[influxdb]]\nurl = \"not a url\"\n", "`influxdb[0].url`"),
        ("[[kafka]]\ntopic_template = \"\"\n", "`kafka[0].topic_template`"),
        ("[[pulsar]]\ntopic_template = \" \"\n", "`pulsar[0].topic_template`"),
        ("[[mqtt]]\nname = \"a\"\n[[mqtt]]\nname = \"a\"\nport = 1884\n", "`mqtt[1].name`"),
        ("[[mqtt]]\n[mqtt.queue]\noverflow = \"sometimes\"\n", "sometimes"),
    ];
    for (toml, expected) in cases {
        std::fs::write(&path, toml).unwrap();
        let (ok, code, text) = simulator(&["--config", path.to_str().unwrap(), "--check-config"]);
        assert!(!ok && code == 2, "exit code 2 for:\n{toml}\n{text}");
        assert!(text.contains("sinks.toml") && text.contains(expected), "names {expected}:\n{toml}\n{text}");
    }
}

/// `--strict` refuses to start when a sink fails its check, naming it; `simulator check` shows the
/// same row and exits 1.
#[test]
fn strict_refuses_to_start_with_a_failing_sink() {
    let path = std::env::temp_dir().join(format!("sim-strict-{}.toml", std::process::id()));
    // Port 9 (discard) on loopback: nothing listens there.
    std::fs::write(
        &path,
        "[embedded_broker]\nenabled = false\n[[mqtt]]\nenabled = false\n[[kafka_rest]]\nurl = \"http://127.0.0.1:9\"\n",
    )
    .unwrap();
    let (ok, code, text) =
        simulator(&["--config", path.to_str().unwrap(), "--strict", "--metrics-listen", "127.0.0.1:0"]);
    assert!(!ok && code == 2, "{text}");
    assert!(text.contains("--strict") && text.contains("FAIL") && text.contains("kafka-rest"), "{text}");
    let (ok, code, text) = simulator(&["--config", path.to_str().unwrap(), "check"]);
    assert!(!ok && code == 1 && text.contains("FAIL") && text.contains("connect"), "{text}");
}
