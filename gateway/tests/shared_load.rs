//! Two gateways sharing the load: one MQTT shared subscription (`$share/...`), one Kafka consumer
//! group and one Pulsar Key_Shared subscription. Everything is written, nothing lost, and each
//! gateway wrote a share.

mod common;

use common::{assert_exactly, create_kafka_topics, expected, wait_log, wait_mqtt_connected, Gateway, Run, Sources};
use smartcity_testbench::bench_var;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_gateways_split_every_source_and_lose_nothing() {
    let run = Arc::new(Run::new("gw-share").await);
    let sources = Sources { mqtt: true, kafka: true, pulsar: true, share: true, ..Default::default() };
    let influx = bench_var("BENCH_INFLUX_URL");
    create_kafka_topics(&run).await;
    let a = Gateway::start(&run.gateway_config("a", &sources, &influx, 1 << 30), "a");
    let b = Gateway::start(&run.gateway_config("b", &sources, &influx, 1 << 30), "b");
    wait_mqtt_connected(&a).await;
    wait_mqtt_connected(&b).await;
    // The Kafka group settles on two members (round robin: three of the six topics each), and the
    // Pulsar subscription has both consumers.
    wait_log(&a, "3 partition(s) assigned", Duration::from_secs(60)).await;
    wait_log(&b, "3 partition(s) assigned", Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    let (from, to) = ("2026-04-01T00:00:00Z", "2026-04-01T00:16:35Z"); // 200 ticks
    let feeds = [("sm", run.mqtt_sink()), ("sk", run.kafka_sink()), ("sp", run.pulsar_sink())];
    let mut tasks = Vec::new();
    for (prefix, sink) in feeds {
        let r = run.clone();
        tasks.push(tokio::spawn(async move { r.simulate(prefix, 30, from, to, &sink).await }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 6_000);
    }
    let mut want = expected(&run, "sm", 30, 200);
    want.extend(expected(&run, "sk", 30, 200));
    want.extend(expected(&run, "sp", 30, 200));
    let got = run.wait_written(want.len(), Duration::from_secs(180)).await;
    assert_exactly(&want, &got);
    for source in ["mqtt", "kafka", "pulsar"] {
        let series = format!("smartcity_gateway_messages_received_total{{source=\"{source}\"}}");
        let (na, nb) = (a.metric(&series).await, b.metric(&series).await);
        assert!(na > 0.0 && nb > 0.0, "{source}: each gateway took a share ({na} and {nb})");
        assert!(na + nb >= 6_000.0, "{source}: {na} + {nb}");
    }
    let (wa, wb) = (
        a.metric("smartcity_gateway_points_written_total").await,
        b.metric("smartcity_gateway_points_written_total").await,
    );
    assert!(wa > 0.0 && wb > 0.0 && wa + wb >= 18_000.0, "each wrote a share: {wa} and {wb}");
    let (mut a, mut b) = (a, b);
    a.stop();
    b.stop();
}
