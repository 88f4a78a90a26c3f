//! End to end in one process: simulator (embedded broker) → gateway → dashboard in a real headless
//! Chromium. Also: a malformed message is set aside and counted, and the pipeline goes on.

use rumqttc::{AsyncClient, MqttOptions, QoS};
use smartcity_gateway::GatewayConfig;
use smartcity_simulator::SimulatorConfig;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Demo {
    http: String,
    mqtt_port: u16,
    stop: CancellationToken,
}

async fn start_demo() -> Demo {
    let (mqtt_port, metrics_port, http_port) = (free_port(), free_port(), free_port());
    let mut sim = SimulatorConfig::load(None).unwrap();
    sim.embedded_broker.listen = format!("127.0.0.1:{mqtt_port}").parse().unwrap();
    sim.mqtt[0].port = mqtt_port;
    sim.metrics.listen = format!("127.0.0.1:{metrics_port}").parse().unwrap();
    sim.status.interval_seconds = 0;
    let mut gw = GatewayConfig::load(None).unwrap();
    gw.mqtt[0].port = mqtt_port;
    gw.set_data_dir(&std::env::temp_dir().join(format!("gw-demo-{mqtt_port}")));
    gw.mqtt[0].client_id = format!("gw-test-{mqtt_port}");
    gw.http.listen = format!("127.0.0.1:{http_port}").parse().unwrap();

    smartcity_connectors::mqtt::EmbeddedBroker::start(&sim.embedded_broker).expect("embedded broker");
    let stop = CancellationToken::new();
    let catalogue = smartcity_simulator::build_catalogue(&sim).unwrap();
    let s = stop.clone();
    tokio::spawn(async move { smartcity_simulator::run(sim, catalogue, s).await.expect("simulator runs") });
    let s = stop.clone();
    tokio::spawn(async move { smartcity_gateway::run(gw, s).await.expect("gateway runs") });
    Demo { http: format!("http://127.0.0.1:{http_port}"), mqtt_port, stop }
}

async fn latest(http: &str) -> Vec<serde_json::Value> {
    match reqwest::get(format!("{http}/api/readings")).await {
        Ok(r) => r.json().await.unwrap_or_default(),
        Err(_) => vec![],
    }
}

async fn wait_for_sensors(http: &str, n: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let readings = latest(http).await;
        if readings.len() >= n {
            return readings;
        }
        assert!(Instant::now() < deadline, "only {} sensors after 20 s", readings.len());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn chromium(args: &[&str]) -> String {
    let profile = std::env::temp_dir().join(format!("chromium-profile-{}", std::process::id()));
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=8000",
            "--window-size=1280,860",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("chromium is installed (make setup)");
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_shows_a_marker_per_sensor_in_headless_chromium() {
    let demo = start_demo().await;
    let readings = wait_for_sensors(&demo.http, 10).await;
    assert_eq!(readings.len(), 10);

    let http = demo.http.clone();
    let dom = tokio::task::spawn_blocking(move || chromium(&["--dump-dom", &format!("{http}/")])).await.unwrap();
    let markers = dom.matches("class=\"marker").count();
    assert_eq!(markers, 10, "one marker per sensor in the rendered page");
    for r in &readings {
        let id = r["id"].as_str().unwrap();
        assert!(dom.contains(&format!("data-sensor-id=\"{id}\"")), "marker for {id}");
    }

    // A link to a sensor opens its history chart.
    let http = demo.http.clone();
    let dom =
        tokio::task::spawn_blocking(move || chromium(&["--dump-dom", &format!("{http}/#noise-fort-de-france-01")]))
            .await
            .unwrap();
    assert!(dom.contains("<polyline class=\"history\""), "history chart drawn for the linked sensor");
    assert!(dom.contains("noise-fort-de-france-01 · LAeq"), "history title names the sensor and value");

    let shot = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/dashboard.png");
    let http = demo.http.clone();
    let arg = format!("--screenshot={}", shot.display());
    tokio::task::spawn_blocking(move || chromium(&[&arg, &format!("{http}/#traffic-fort-de-france-01")]))
        .await
        .unwrap();
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "a real screenshot at {}", shot.display());
    demo.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_messages_are_set_aside_and_counted_and_the_rest_flows() {
    let demo = start_demo().await;
    wait_for_sensors(&demo.http, 10).await;

    let mut opts = MqttOptions::new("bad-publisher", "127.0.0.1", demo.mqtt_port);
    opts.set_keep_alive(Duration::from_secs(5));
    let (client, mut event_loop) = AsyncClient::new(opts, 10);
    tokio::spawn(async move { while event_loop.poll().await.is_ok() {} });
    client.publish("city/sensors/traffic/broken-1", QoS::AtLeastOnce, false, "{not json").await.unwrap();
    // A complete reading, but of a wire version this build does not know.
    let catalogue = smartcity_model::Catalogue::default_ten();
    let future = smartcity_model::dynamics::Simulation::new(1).reading(&catalogue.sensors()[6], chrono::Utc::now(), 0);
    let payload =
        String::from_utf8(smartcity_model::codec::json::encode(&future)).unwrap().replace("\"v\":1", "\"v\":9");
    let topic = format!("city/sensors/noise/{}", future.sensor_id);
    client.publish(topic, QoS::AtLeastOnce, false, payload).await.unwrap();

    let deadline = Instant::now() + Duration::from_secs(10);
    let dead = loop {
        let dead: Vec<serde_json::Value> =
            reqwest::get(format!("{}/api/dead-letters", demo.http)).await.unwrap().json().await.unwrap();
        if dead.len() >= 2 || Instant::now() > deadline {
            break dead;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(dead.len(), 2, "{dead:?}");
    assert_eq!(dead[0]["topic"], "city/sensors/traffic/broken-1");
    assert!(dead[0]["reason"].as_str().unwrap().contains("not a JSON reading"));
    let metrics = reqwest::get(format!("{}/metrics", demo.http)).await.unwrap().text().await.unwrap();
    // At least once: a redelivered message is set aside (and counted) again.
    for reason in ["syntax", "version"] {
        let series = format!(r#"smartcity_gateway_messages_rejected_total{{reason="{reason}",source="mqtt"}} "#);
        let count: f64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix(&series))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{series}missing: {metrics}"));
        assert!(count >= 1.0, "{series}{count}");
    }

    // Still flowing: sequence numbers keep advancing after the bad messages.
    let before: u64 = latest(&demo.http).await.iter().map(|r| r["seq"].as_u64().unwrap()).sum();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let now: u64 = latest(&demo.http).await.iter().map(|r| r["seq"].as_u64().unwrap()).sum();
        if now > before {
            break;
        }
        assert!(Instant::now() < deadline, "no new readings after the malformed ones");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    demo.stop.cancel();
}
