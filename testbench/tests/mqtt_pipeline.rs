//! The whole MQTT path against the real broker: simulator → Mosquitto over mutual TLS + password
//! (8884) → gateway over plain MQTT (1884). Every reading of a 30-minute backfill must reach the
//! gateway, in sequence, with no gap: counted end to end by sequence number.

use smartcity_connectors::mqtt::MqttConfig;
use smartcity_connectors::tls::TlsConfig;
use smartcity_gateway::GatewayConfig;
use smartcity_simulator::SimulatorConfig;
use smartcity_testbench::{bench_var, unique};
use std::net::TcpListener;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn metric(exposition: &str, series: &str) -> f64 {
    exposition
        .lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("{series} not in /metrics"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulator_over_tls_to_mosquitto_to_gateway_loses_nothing() {
    let host = bench_var("BENCH_MQTT_HOST");
    let prefix = format!("testbench/{}", unique("city"));

    // Gateway on the plain listener, subscribed before anything is published.
    let mut gw = GatewayConfig::load(None).unwrap();
    let mut mqtt = MqttConfig::new(&host, bench_var("BENCH_MQTT_PORT").parse().unwrap(), &unique("gw"));
    mqtt.name = "mqtt".into();
    mqtt.topic_prefix = prefix.clone();
    gw.mqtt = vec![mqtt];
    gw.set_data_dir(&std::env::temp_dir().join(unique("gw-data")));
    let http = format!("http://127.0.0.1:{}", free_port());
    gw.http.listen = http.trim_start_matches("http://").parse().unwrap();
    let stop = CancellationToken::new();
    let gateway = tokio::spawn(smartcity_gateway::run(gw, stop.clone()));
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let connected = match reqwest::get(format!("{http}/metrics")).await {
            Ok(r) => metric(&r.text().await.unwrap(), "smartcity_gateway_source_connected{source=\"mqtt\"}") == 1.0,
            Err(_) => false,
        };
        if connected {
            break;
        }
        assert!(Instant::now() < deadline, "gateway did not connect to Mosquitto");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await; // SUBACK

    // Simulator on the TLS listener, client certificate + password from a file.
    let password_file = std::env::temp_dir().join(unique("pw"));
    std::fs::write(&password_file, bench_var("BENCH_MQTT_PASSWORD")).unwrap();
    let mut sim = SimulatorConfig::load(None).unwrap();
    sim.embedded_broker.enabled = false;
    let mut mqtt = MqttConfig::new(&host, bench_var("BENCH_MQTTS_PORT").parse().unwrap(), &unique("sim"));
    mqtt.name = "mosquitto-tls".into();
    mqtt.topic_prefix = prefix;
    mqtt.username = Some(bench_var("BENCH_MQTT_USER"));
    mqtt.password_file = Some(password_file);
    mqtt.tls = Some(TlsConfig {
        ca_file: bench_var("BENCH_TLS_CA").into(),
        client_cert_file: Some(bench_var("BENCH_TLS_CLIENT_CERT").into()),
        client_key_file: Some(bench_var("BENCH_TLS_CLIENT_KEY").into()),
    });
    sim.mqtt = vec![mqtt];
    sim.metrics.listen = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    sim.status.interval_seconds = 0;
    sim.simulation.interval_seconds = 60.0;
    sim.simulation.from = "2026-11-20T06:00:00Z".into();
    sim.simulation.to = "2026-11-20T06:30:00Z".into();
    sim.validate(None).unwrap();
    let catalogue = smartcity_simulator::build_catalogue(&sim).unwrap();
    let summary = tokio::time::timeout(
        Duration::from_secs(60),
        smartcity_simulator::run(sim, catalogue, CancellationToken::new()),
    )
    .await
    .expect("the backfill finishes")
    .expect("the simulator publishes over mutual TLS");
    assert_eq!((summary.generated, summary.published, summary.unsent), (310, 310, 0));

    // Every reading arrives at the gateway: 31 per sensor, seq 0..=30, no gap, no stale.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = reqwest::get(format!("{http}/metrics")).await.unwrap().text().await.unwrap();
        let accepted: f64 = smartcity_model::SensorKind::ALL
            .iter()
            .map(|k| metric(&text, &format!("smartcity_gateway_readings_accepted_total{{kind=\"{k}\"}}")))
            .sum();
        if accepted >= 310.0 {
            assert_eq!(accepted, 310.0);
            assert_eq!(metric(&text, "smartcity_gateway_sequence_gaps_total"), 0.0);
            assert_eq!(metric(&text, "smartcity_gateway_readings_stale_total"), 0.0);
            break;
        }
        assert!(Instant::now() < deadline, "gateway accepted only {accepted} of 310 readings");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let latest: Vec<serde_json::Value> =
        reqwest::get(format!("{http}/api/readings")).await.unwrap().json().await.unwrap();
    assert_eq!(latest.len(), 10);
    assert!(latest.iter().all(|r| r["seq"] == 30), "last seq of every sensor is 30");

    stop.cancel();
    gateway.await.unwrap().unwrap();
}
