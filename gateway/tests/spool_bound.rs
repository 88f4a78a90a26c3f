//! The spool at its bound: with InfluxDB unreachable (a TCP gate in front of the bench server) and a
//! small spool, the gateway parks readings until the bound, then stops acknowledging and stops
//! reading: Mosquitto keeps the rest of the messages in our persistent session. Once InfluxDB is back
//! everything arrives; nothing was dropped.

mod common;

use common::{
    assert_exactly, edit_config, expected, influx_gate, wait_metric, wait_mqtt_connected, Gateway, Run, Sources,
};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn at_the_bound_it_stops_acknowledging_and_drops_nothing() {
    let run = Run::new("gw-bound").await;
    let gate = influx_gate().await;
    gate.close().await;
    let sources = Sources { mqtt: true, ..Default::default() };
    // 1 MiB: about 3,000 readings.
    let config = run.gateway_config("a", &sources, &format!("http://{}", gate.addr), 1 << 20);
    // What the gateway holds unacknowledged in memory must be well under the 20,000 readings, or
    // it never has to stop reading: Mosquitto sends a session's whole queued backlog at once (it
    // does not keep to its in-flight window then), and with the default queue of 20,000 every
    // reading fit in the gateway's queues. Here: the MQTT buffer (1,000), the message channel
    // (1,024), this queue (1,000) and the batch held (1,000), on top of the spool's 3,000 or so.
    edit_config(&config, "[writer]\nbatch_size = 2000\n", "[writer]\nbatch_size = 1000\nqueue_capacity = 1000\n");
    let gw = Gateway::start(&config, "a");
    wait_mqtt_connected(&gw).await;

    // 40 sensors x 500 ticks = 20,000 readings, far more than the spool holds.
    let n = run.simulate("bd", 40, "2026-03-01T00:00:00Z", "2026-03-01T00:41:35Z", &run.mqtt_sink()).await;
    assert_eq!(n, 20_000);
    let full = wait_metric(&gw, "smartcity_gateway_spool_full", 1.0, Duration::from_secs(60)).await;
    assert_eq!(full, 1.0, "the spool reached its bound: {}", gw.log_text());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let received = gw.metric("smartcity_gateway_messages_received_total{source=\"mqtt\"}").await;
    let spooled = gw.metric("smartcity_gateway_readings_spooled_total").await;
    let spool_bytes = gw.metric("smartcity_gateway_spool_bytes").await;
    eprintln!("at the bound: {received} received, {spooled} spooled, {spool_bytes} spool bytes");
    assert!(spool_bytes <= (1 << 20) as f64, "the bound holds: {spool_bytes}");
    assert!(spooled < 5_000.0, "only what fits was parked: {spooled}");
    assert!(received < 10_000.0, "the gateway stopped reading; the broker keeps the rest: {received} received");
    assert_eq!(gw.metric("smartcity_gateway_points_written_total").await, 0.0);
    assert!(gw.log_text().contains("spool full"), "the log says why: {}", gw.log_text());

    gate.reopen().await;
    let want = expected(&run, "bd", 40, 500);
    let got = run.wait_written(want.len(), Duration::from_secs(180)).await;
    assert_exactly(&want, &got);
    assert_eq!(gw.metric("smartcity_gateway_spool_full").await, 0.0);
    let mut gw = gw;
    gw.stop();
}
