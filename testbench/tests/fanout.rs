//! The simulator's fan-out against every real server of the bench at once: one backfill of 510
//! readings goes to Mosquitto (plain, and mutual TLS + password), Kafka (PLAINTEXT and SASL_SSL),
//! the Kafka REST proxy, Pulsar and InfluxDB; each is read back with the project's clients and
//! holds exactly the expected (sensor id, seq) pairs: none missing, none extra, none twice.

use smartcity_connectors::mqtt::MqttConfig;
use smartcity_connectors::tls::TlsConfig;
use smartcity_testbench::bench_var;
use smartcity_testbench::readback::{self, distinct, Influx, MqttCollector, Stamped};
use smartcity_testbench::sim_config::{all_sinks, kafka_reader, Passwords, RunNames};
use std::collections::BTreeSet;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// 08:00:00 to 08:04:10 at 5 s: 51 ticks of the ten built-in sensors.
const FROM: &str = "2026-01-10T08:00:00Z";
const TO: &str = "2026-01-10T08:04:10Z";
const N: usize = 510;

fn load(toml: &str, run: &RunNames) -> smartcity_simulator::SimulatorConfig {
    let path = std::env::temp_dir().join(format!("{}.toml", run.run));
    std::fs::write(&path, toml).unwrap();
    let mut cfg = smartcity_simulator::SimulatorConfig::load(Some(&path)).unwrap();
    cfg.metrics.listen = "127.0.0.1:0".parse().unwrap();
    cfg.status.interval_seconds = 0;
    cfg.simulation.from = FROM.into();
    cfg.simulation.to = TO.into();
    cfg.validate(Some(&path)).unwrap();
    cfg
}

fn tls_subscriber(run: &RunNames) -> MqttConfig {
    let mut c = MqttConfig::new(
        &bench_var("BENCH_MQTT_HOST"),
        bench_var("BENCH_MQTTS_PORT").parse().unwrap(),
        &format!("{}-sub-tls", run.run),
    );
    c.username = Some(bench_var("BENCH_MQTT_USER"));
    c.clean_session = true;
    c.password_env = String::new();
    c.password_file =
        Some(smartcity_testbench::sim_config::secret_file(run, "sub-pw", &bench_var("BENCH_MQTT_PASSWORD")).into());
    c.tls = Some(TlsConfig {
        ca_file: bench_var("BENCH_TLS_CA").into(),
        client_cert_file: Some(bench_var("BENCH_TLS_CLIENT_CERT").into()),
        client_key_file: Some(bench_var("BENCH_TLS_CLIENT_KEY").into()),
    });
    c
}

fn plain_subscriber(run: &RunNames) -> MqttConfig {
    let mut c = MqttConfig::new(
        &bench_var("BENCH_MQTT_HOST"),
        bench_var("BENCH_MQTT_PORT").parse().unwrap(),
        &format!("{}-sub", run.run),
    );
    c.clean_session = true;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backfill_reaches_all_seven_sinks_exactly() {
    let run = RunNames::new("fan");
    let influx = Influx::default();
    influx.create_bucket(&run.bucket()).await;
    let cfg = load(&all_sinks(&run, &bench_var("BENCH_KAFKA_REST_URL"), &Passwords::default()), &run);
    assert_eq!(cfg.sinks().len(), 7);

    // MQTT keeps nothing for late subscribers: subscribe first.
    let plain = MqttCollector::start(plain_subscriber(&run).options().unwrap(), &run.mqtt_prefix("mosquitto")).await;
    let tls = MqttCollector::start(tls_subscriber(&run).options().unwrap(), &run.mqtt_prefix("mosquitto-tls")).await;

    let catalogue = smartcity_simulator::build_catalogue(&cfg).unwrap();
    let summary = tokio::time::timeout(
        Duration::from_secs(120),
        smartcity_simulator::run(cfg, catalogue, CancellationToken::new()),
    )
    .await
    .expect("a backfill with `to` stops by itself")
    .expect("the simulator runs");
    assert_eq!(summary.generated, N as u64);
    assert_eq!(summary.published, 7 * N as u64, "every sink acknowledged every reading");
    assert_eq!(summary.unsent, 0);

    // The expected pairs: every built-in sensor, seq 0..=50.
    let ids: BTreeSet<String> =
        smartcity_model::Catalogue::default_ten().sensors().iter().map(|s| s.id.to_string()).collect();
    let expected: BTreeSet<(String, u64)> = ids.iter().flat_map(|id| (0..51).map(move |s| (id.clone(), s))).collect();
    assert_eq!(expected.len(), N);

    let wait = Duration::from_secs(60);
    let delivered = [
        ("mosquitto", plain.wait_for(N, wait).await),
        ("mosquitto-tls", tls.wait_for(N, wait).await),
        ("kafka", readback::kafka(kafka_reader(), run.kafka_topics("kafka"), Stamped::ObservedAt, N, wait).await),
        (
            "kafka-sasl",
            readback::kafka(kafka_reader(), run.kafka_topics("kafka-sasl"), Stamped::ObservedAt, N, wait).await,
        ),
        (
            "kafka-rest",
            readback::kafka(kafka_reader(), run.kafka_topics("kafka-rest"), Stamped::ByBroker, N, wait).await,
        ),
        ("pulsar", readback::pulsar(run.pulsar_topics(), N, wait).await),
        ("influxdb", influx.seqs(&run.bucket(), "2026-01-10T00:00:00Z", "2026-01-11T00:00:00Z").await),
    ];
    for (sink, got) in delivered {
        let (set, dups) = distinct(&got);
        let missing: Vec<_> = expected.difference(&set).take(5).collect();
        let extra: Vec<_> = set.difference(&expected).take(5).collect();
        assert!(
            missing.is_empty() && extra.is_empty() && dups == 0,
            "{sink}: {} delivered, {} distinct, {dups} twice; missing (first 5) {missing:?}; extra {extra:?}",
            got.len(),
            set.len()
        );
    }
}
