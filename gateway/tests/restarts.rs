//! Servers restarted under load, keeping their data (`services.sh restart`), as an operator's
//! maintenance would:
//! - Mosquitto (persistence on): the gateway reconnects and re-subscribes, the simulator
//!   re-publishes what the broker never acknowledged, and every reading reaches InfluxDB;
//! - the Kafka REST proxy: simulator → proxy → the gateway's REST source → InfluxDB; the proxy
//!   forgets the gateway's consumer instance, the gateway recreates it, nothing is lost.

mod common;

use common::{assert_exactly, expected, restart_service, wait_metric, wait_mqtt_connected, Gateway, Run, Sources};
use smartcity_testbench::bench_var;
use std::sync::Arc;
use std::time::Duration;

/// A live feed of `sensors` sensors every `interval` seconds for `seconds` seconds of real time;
/// returns its task and the number of ticks it makes.
fn live_feed(
    run: &Arc<Run>,
    prefix: &'static str,
    sensors: usize,
    seconds: i64,
    sink: String,
) -> (tokio::task::JoinHandle<u64>, chrono::DateTime<chrono::Utc>) {
    // Start on a whole second so that the ticks are easy to count.
    let now = chrono::Utc::now();
    let start = now - chrono::Duration::nanoseconds(now.timestamp_subsec_nanos() as i64);
    let (from, to) = (start.to_rfc3339(), (start + chrono::Duration::seconds(seconds)).to_rfc3339());
    let r = run.clone();
    let sink = format!("{sink}\n[simulation]\ninterval_seconds = 0.5\n");
    (tokio::spawn(async move { r.simulate(prefix, sensors, &from, &to, &sink).await }), start)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mosquitto_restart_under_load_loses_nothing() {
    let run = Arc::new(Run::new("gw-mosq").await);
    let sources = Sources { mqtt: true, ..Default::default() };
    let gw = Gateway::start(&run.gateway_config("a", &sources, &bench_var("BENCH_INFLUX_URL"), 1 << 30), "a");
    wait_mqtt_connected(&gw).await;
    let (feed, _) = live_feed(&run, "mr", 50, 40, run.mqtt_sink());
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(gw.metric("smartcity_gateway_points_written_total").await > 0.0, "{}", gw.log_text());
    restart_service("mosquitto").await;
    let n = feed.await.unwrap();
    assert_eq!(n, 50 * 81, "the simulator had every reading acknowledged by the broker");
    let want = expected(&run, "mr", 50, 81);
    let got = run.wait_written(want.len(), Duration::from_secs(120)).await;
    assert_exactly(&want, &got);
    let log = gw.log_text();
    assert!(log.matches("subscribing to").count() >= 2, "re-subscribed after the restart: {log}");
    let mut gw = gw;
    gw.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rest_proxy_path_survives_a_proxy_restart() {
    let run = Arc::new(Run::new("gw-rest").await);
    let sources = Sources { mqtt: false, kafka_rest: true, ..Default::default() };
    let gw = Gateway::start(&run.gateway_config("a", &sources, &bench_var("BENCH_INFLUX_URL"), 1 << 30), "a");
    let (feed, _) = live_feed(&run, "rp", 20, 40, run.kafka_rest_sink());
    let consumed = wait_metric(
        &gw,
        "smartcity_gateway_messages_received_total{source=\"kafka-rest\"}",
        1.0,
        Duration::from_secs(30),
    )
    .await;
    assert!(consumed >= 1.0, "the REST source reads: {}", gw.log_text());
    tokio::time::sleep(Duration::from_secs(5)).await;
    restart_service("kafka-bridge").await;
    let n = feed.await.unwrap();
    assert_eq!(n, 20 * 81);
    let want = expected(&run, "rp", 20, 81);
    let got = run.wait_written(want.len(), Duration::from_secs(120)).await;
    assert_exactly(&want, &got);
    let mut gw = gw;
    gw.stop();
}
