//! One sink dead during a live run (the Kafka REST proxy's port closed, through a TCP gate, while the
//! real proxy keeps serving the other tests): every other sink receives every reading, the simulated
//! clock keeps pace, the dead sink shows in `/metrics` and in the status line, and with the `block`
//! policy it catches up once the port is open again, with nothing missing.

mod common;

use common::Sim;
use smartcity_connectors::mqtt::MqttConfig;
use smartcity_testbench::bench_var;
use smartcity_testbench::gate::Gate;
use smartcity_testbench::readback::{self, distinct, Influx, MqttCollector, Stamped};
use smartcity_testbench::sim_config::{all_sinks, kafka_reader, Passwords, RunNames};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const REST: &str = "smartcity_simulator_sink_queue_readings{sink=\"kafka-rest\"}";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dead_sink_holds_back_nobody_and_catches_up() {
    let run = RunNames::new("outage");
    let influx = Influx::default();
    influx.create_bucket(&run.bucket()).await;
    let proxy: std::net::SocketAddr =
        bench_var("BENCH_KAFKA_REST_URL").trim_start_matches("http://").trim_end_matches('/').parse().unwrap();
    let gate = Gate::open_to(proxy).await;
    let toml =
        all_sinks(&run, &format!("http://{}", gate.addr), &Passwords::default()) + "\n[status]\ninterval_seconds = 1\n";
    let mut plain =
        MqttConfig::new(&bench_var("BENCH_MQTT_HOST"), bench_var("BENCH_MQTT_PORT").parse().unwrap(), &run.run);
    plain.clean_session = true;
    let mqtt = MqttCollector::start(plain.options().unwrap(), &run.mqtt_prefix("mosquitto")).await;

    // Live at 60x: ten sensors every 5 simulated seconds = 120 readings per real second.
    let mut sim = Sim::start(&run.run, &toml, &["--speed", "60"]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    gate.close().await;
    let (sim0, t0) = (sim.metric("smartcity_simulator_simulated_time_seconds").await, Instant::now());
    tokio::time::sleep(Duration::from_secs(6)).await;

    // During the outage: the clock keeps pace, the dead sink's queue grows and its errors show.
    let (sim1, t1) = (sim.metric("smartcity_simulator_simulated_time_seconds").await, Instant::now());
    let pace = (sim1 - sim0) / (t1 - t0).as_secs_f64();
    assert!((50.0..=70.0).contains(&pace), "simulated clock ran at {pace:.1}x during the outage, not 60x");
    assert!(sim.metric(REST).await > 100.0, "the dead sink's queue grows:\n{}", sim.log_text());
    assert_eq!(sim.metric("smartcity_simulator_sink_up{sink=\"kafka-rest\"}").await, 0.0);
    assert!(sim.metric("smartcity_simulator_publish_errors_total{reason=\"connect\",sink=\"kafka-rest\"}").await > 0.0);
    for other in ["mosquitto", "kafka", "pulsar", "influxdb"] {
        // At most a couple of ticks (10 readings each) in flight at the moment of the scrape.
        let queued = sim.metric(&format!("smartcity_simulator_sink_queue_readings{{sink=\"{other}\"}}")).await;
        assert!(queued <= 30.0, "{other} keeps up while kafka-rest is down: {queued} queued");
    }
    let log = sim.log_text();
    assert!(
        log.lines().any(|l| l.contains("status:") && l.contains("kafka-rest") && l.contains("DOWN")),
        "status line shows the dead sink:\n{log}"
    );
    assert!(
        log.contains("sink `kafka-rest`") && log.contains("connect:"),
        "one clear line names the dead sink:\n{log}"
    );

    // Back: the backlog of the outage drains (block policy: nothing was dropped). A live sink always
    // has a tick or two in flight, so "drained" is a queue back to that size.
    gate.reopen().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while sim.metric(REST).await > 50.0 {
        assert!(Instant::now() < deadline, "the REST sink did not catch up within 30 s:\n{}", sim.log_text());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        sim.metric("smartcity_simulator_readings_dropped_total{reason=\"overflow\",sink=\"kafka-rest\"}").await,
        0.0
    );
    assert!(sim.stop(Duration::from_secs(20)).success(), "clean exit:\n{}", sim.log_text());
    let n = sim.generated() as usize;
    assert!(n > 1000, "only {n} readings generated");
    assert_eq!(n % 10, 0, "whole ticks of ten sensors");

    let ids: BTreeSet<String> =
        smartcity_model::Catalogue::default_ten().sensors().iter().map(|s| s.id.to_string()).collect();
    let ticks = (n / 10) as u64;
    let expected: BTreeSet<(String, u64)> =
        ids.iter().flat_map(|id| (0..ticks).map(move |s| (id.clone(), s))).collect();
    let wait = Duration::from_secs(60);
    let delivered = [
        ("mosquitto", mqtt.wait_for(n, wait).await),
        ("kafka", readback::kafka(kafka_reader(), run.kafka_topics("kafka"), Stamped::ObservedAt, n, wait).await),
        (
            "kafka-sasl",
            readback::kafka(kafka_reader(), run.kafka_topics("kafka-sasl"), Stamped::ObservedAt, n, wait).await,
        ),
        (
            "kafka-rest",
            readback::kafka(kafka_reader(), run.kafka_topics("kafka-rest"), Stamped::ByBroker, n, wait).await,
        ),
        ("pulsar", readback::pulsar(run.pulsar_topics(), n, wait).await),
        ("influxdb", influx.seqs(&run.bucket(), "2020-01-01T00:00:00Z", "2100-01-01T00:00:00Z").await),
    ];
    for (sink, got) in delivered {
        let (set, dups) = distinct(&got);
        let missing: Vec<_> = expected.difference(&set).take(5).collect();
        let extra: Vec<_> = set.difference(&expected).take(5).collect();
        // At least once: a write cut by the outage may have landed before its answer was lost.
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{sink}: {} delivered ({dups} twice), expected {n}; missing (first 5) {missing:?}; extra {extra:?}",
            got.len()
        );
    }
}
