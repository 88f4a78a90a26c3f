//! The MQTT sink with several writes in flight, against the bench's Mosquitto through a TCP gate.
//! The gate stalls (the broker gets nothing, so no PUBACK comes back) while the fan-out keeps
//! starting writes, then cuts the connection with those writes outstanding and opens again. Every
//! (sensor, seq) must arrive, and every tracked batch must end as taken, whether the broker kept
//! our session (rumqttc resends what it held) or lost it (clean_session = true: the sink hands
//! back exactly what rumqttc dropped, and the fan-out publishes it again). Nothing lost; duplicates
//! are allowed (at least once).

use smartcity_connectors::fanout::{Done, FanOut};
use smartcity_connectors::metrics::{registry, SinkMetrics};
use smartcity_connectors::mqtt::{MqttConfig, MqttSink};
use smartcity_connectors::sink::{Sink, SinkTelemetry};
use smartcity_model::{Catalogue, Reading, ReadingStream};
use smartcity_testbench::bench_var;
use smartcity_testbench::gate::Gate;
use smartcity_testbench::readback::{distinct, MqttCollector};
use smartcity_testbench::sim_config::RunNames;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// Ticks of the ten built-in sensors: 6,000 readings, in writes of at most 100.
const TICKS: u64 = 600;
/// Ticks published (and acknowledged) before the gate stalls: the connection is up by then.
const BEFORE: u64 = 20;

fn ticks() -> Vec<Arc<[Reading]>> {
    let mut stream = ReadingStream::new(Catalogue::default_ten(), 7);
    let t0: chrono::DateTime<chrono::Utc> = "2026-02-01T00:00:00Z".parse().unwrap();
    (0..TICKS)
        .map(|k| {
            let mut out = Vec::new();
            stream.tick_into(t0 + chrono::Duration::seconds(5 * k as i64), &mut out);
            out.into()
        })
        .collect()
}

async fn broker() -> std::net::SocketAddr {
    let addr = format!("{}:{}", bench_var("BENCH_MQTT_HOST"), bench_var("BENCH_MQTT_PORT"));
    let first = tokio::net::lookup_host(&addr).await.unwrap().next();
    first.expect("the broker's address resolves")
}

async fn cut_with_writes_outstanding(clean_session: bool) {
    let run = RunNames::new(if clean_session { "inflight-clean" } else { "inflight-kept" });
    let prefix = run.mqtt_prefix("sink");
    let broker = broker().await;
    let gate = Gate::open_to(broker).await;

    let mut sub = MqttConfig::new(&broker.ip().to_string(), broker.port(), &format!("{}-sub", run.run));
    sub.clean_session = true;
    let collector = MqttCollector::start(sub.options().unwrap(), &prefix).await;

    let mut cfg = MqttConfig::new("127.0.0.1", gate.addr.port(), &format!("{}-pub", run.run));
    cfg.clean_session = clean_session;
    cfg.topic_prefix = prefix;
    cfg.queue.batch_size = 100;
    let telemetry = SinkTelemetry::new(&SinkMetrics::register(&registry("test"), "test"), "mqtt");
    let sink = MqttSink::new(&cfg, telemetry.clone()).unwrap();
    assert_eq!(sink.writes_in_flight(), 100, "one write per message the MQTT window holds");
    let mut fanout = FanOut::new();
    fanout.add(sink, gate.addr.to_string(), cfg.queue.clone(), telemetry.clone());

    let ticks = ticks();
    let n: usize = ticks.iter().map(|t| t.len()).sum();
    let mut done: Vec<oneshot::Receiver<Done>> = Vec::new();
    for t in &ticks[..BEFORE as usize] {
        done.push(fanout.publish_tracked(t.clone()).await);
    }
    for d in done.drain(..) {
        assert_eq!(tokio::time::timeout(Duration::from_secs(30), d).await.unwrap().unwrap(), Ok(()));
    }
    let before = telemetry.published_total();
    assert_eq!(before, BEFORE * 10);

    // Stalled: writes are handed over and go out, no PUBACK comes back. The fan-out keeps several
    // writes outstanding (the window of 100 messages, plus what rumqttc's channel holds: about
    // eleven writes of 100); none may count as published.
    gate.stall();
    for t in &ticks[BEFORE as usize..] {
        done.push(fanout.publish_tracked(t.clone()).await);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(telemetry.published_total(), before, "nothing counts as published without its PUBACK");
    assert!(done.iter_mut().all(|d| d.try_recv().is_err()), "no tracked batch ends without its PUBACKs");

    // Cut with those writes outstanding, then back.
    gate.close().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    gate.resume();
    gate.reopen().await;

    for (k, d) in done.into_iter().enumerate() {
        let outcome = tokio::time::timeout(Duration::from_secs(60), d).await;
        assert_eq!(outcome.expect("every tracked batch ends").unwrap(), Ok(()), "tick {}", k as u64 + BEFORE);
    }
    assert_eq!(telemetry.published_total(), n as u64, "each reading counted once, when acknowledged");
    assert_eq!(fanout.close(Duration::from_secs(5)).await, 0);

    let got = collector.wait_for(n, Duration::from_secs(30)).await;
    let (set, dups) = distinct(&got);
    let expected: BTreeSet<(String, u64)> =
        ticks.iter().flat_map(|t| t.iter().map(|r| (r.sensor_id.to_string(), r.seq))).collect();
    assert_eq!(expected.len(), n);
    let missing: Vec<_> = expected.difference(&set).take(5).collect();
    assert!(
        missing.is_empty() && set.len() == n,
        "{} of {n} readings arrived ({dups} twice); missing (first 5): {missing:?}",
        set.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_with_writes_in_flight_loses_nothing_when_the_broker_keeps_the_session() {
    cut_with_writes_outstanding(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_with_writes_in_flight_loses_nothing_when_the_broker_loses_the_session() {
    cut_with_writes_outstanding(true).await;
}
