//! A corpus of malformed payloads (testbench/src/malformed.rs: not JSON, wrong types, NaN and
//! Infinity, missing fields, unknown kind and version, 10 MB, invalid UTF-8, ids with line-protocol
//! and topic characters) sent on MQTT, Kafka and Pulsar while valid readings flow: each ends in the
//! dead-letter file with its reason, the valid traffic is written unchanged, and InfluxDB holds no
//! trace of the bad ones. Each dead letter is also copied, the same JSON object, to an MQTT topic
//! (`{prefix}/{reason}`) and a Kafka topic (keyed by reason), as `[dead_letters.mqtt]` and
//! `[dead_letters.kafka]` ask.

mod common;

use common::{assert_exactly, expected, wait_mqtt_connected, Gateway, Run, Sources};
use rdkafka::producer::{FutureProducer, FutureRecord};
use smartcity_gateway::dead_letter::DeadLetterLine;
use smartcity_model::{dynamics::Simulation, Catalogue};
use smartcity_testbench::bench_var;
use smartcity_testbench::malformed::{corpus, Case};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Kafka (1 MB) and Pulsar (5 MB) refuse a 10 MB message themselves: over those, the gateway's own
/// limit is shown with a 100 KB payload instead.
fn for_brokers(cases: &[Case]) -> Vec<Case> {
    let mut out: Vec<Case> = cases
        .iter()
        // The Kafka and Pulsar topics name the kind, not the sensor: a reading of another sensor of
        // the same kind is valid there.
        .filter(|c| c.payload.len() < 900_000 && c.name != "id-not-the-topic")
        .cloned()
        .collect();
    out.push(Case {
        name: "over-max-message-bytes",
        payload: vec![b' '; 100_000],
        reason: "size",
        sensor_id_hint: None,
    });
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_bad_payload_is_set_aside_with_its_reason_and_valid_traffic_flows() {
    let run = Arc::new(Run::new("gw-bad").await);
    let sources = Sources { mqtt: true, kafka: true, pulsar: true, ..Default::default() };
    let config = run.gateway_config("a", &sources, &bench_var("BENCH_INFLUX_URL"), 1 << 30);
    let (copy_prefix, copy_topic) =
        (format!("{}/dead-letters", run.names.run), format!("{}-dead-letters", run.names.run));
    let copies_toml = format!(
        "\n[dead_letters.mqtt]\nhost = \"{}\"\nport = {}\ntopic_prefix = \"{copy_prefix}\"\n\n[dead_letters.kafka]\nbootstrap_servers = \"{}\"\ntopic_template = \"{copy_topic}\"\n",
        bench_var("BENCH_MQTT_HOST"),
        bench_var("BENCH_MQTT_PORT"),
        bench_var("BENCH_KAFKA_BOOTSTRAP"),
    );
    std::fs::write(&config, std::fs::read_to_string(&config).unwrap() + &copies_toml).unwrap();
    let mqtt_copies = subscribe_copies(&run, &copy_prefix).await;
    let gw = Gateway::start(&config, "a");
    wait_mqtt_connected(&gw).await;
    tokio::time::sleep(Duration::from_secs(5)).await; // Kafka group and Pulsar subscription settle

    // Valid traffic on the three paths meanwhile.
    let (from, to) = ("2026-05-01T00:00:00Z", "2026-05-01T00:08:15Z"); // 100 ticks
    let mut feeds = Vec::new();
    for (prefix, sink) in [("vm", run.mqtt_sink()), ("vk", run.kafka_sink()), ("vp", run.pulsar_sink())] {
        let r = run.clone();
        feeds.push(tokio::spawn(async move { r.simulate(prefix, 10, from, to, &sink).await }));
    }

    let valid = Simulation::new(3).reading(&Catalogue::default_ten().sensors()[0], chrono::Utc::now(), 1);
    let cases = corpus(&valid);
    assert!(cases.len() >= 25);
    let kind = valid.kind();

    // MQTT: every case on the valid reading's topic.
    let mut options = rumqttc::MqttOptions::new(
        format!("{}-bad", run.names.run),
        bench_var("BENCH_MQTT_HOST"),
        bench_var("BENCH_MQTT_PORT").parse().unwrap(),
    );
    options.set_max_packet_size(32 << 20, 32 << 20);
    let (client, mut events) = rumqttc::AsyncClient::new(options, 100);
    let pump = tokio::spawn(async move {
        let mut acked = 0;
        while acked < 1000 {
            match events.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))) => acked += 1,
                Ok(_) => {}
                Err(e) => panic!("MQTT publisher: {e}"),
            }
        }
    });
    let topic = format!("{}/{}/{}", run.mqtt_prefix(), kind.as_str(), valid.sensor_id);
    for c in &cases {
        client.publish(topic.clone(), rumqttc::QoS::AtLeastOnce, false, c.payload.clone()).await.unwrap();
    }

    // Kafka: on the valid reading's kind topic.
    let broker_cases = for_brokers(&cases);
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bench_var("BENCH_KAFKA_BOOTSTRAP"))
        .set("message.max.bytes", "1000000")
        .create()
        .unwrap();
    let kafka_topic = run.kafka_template().replace("{kind}", kind.as_str());
    for c in &broker_cases {
        let record = FutureRecord::<str, [u8]>::to(&kafka_topic).payload(&c.payload).key(&valid.sensor_id);
        producer.send(record, Duration::from_secs(10)).await.map_err(|(e, _)| e).unwrap();
    }

    // Pulsar: on the valid reading's kind topic.
    let pulsar: pulsar::Pulsar<_> =
        pulsar::Pulsar::builder(bench_var("BENCH_PULSAR_URL"), pulsar::TokioExecutor).build().await.unwrap();
    let pulsar_topic = run.names.pulsar_template().replace("{kind}", kind.pulsar_suffix());
    let mut producer = pulsar.producer().with_topic(&pulsar_topic).build().await.unwrap();
    for c in &broker_cases {
        let message = pulsar::producer::Message { payload: c.payload.clone(), ..Default::default() };
        producer.send_non_blocking(message).await.unwrap().await.unwrap();
    }

    for f in feeds {
        assert_eq!(f.await.unwrap(), 1_000);
    }
    let want_dead = cases.len() + 2 * broker_cases.len();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut dead = run.dead_letters("a");
    while dead.len() < want_dead && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        dead = run.dead_letters("a");
    }
    assert_eq!(dead.len(), want_dead, "one dead letter per bad payload per source");
    for (source, sent) in [("mqtt", &cases), ("kafka", &broker_cases), ("pulsar", &broker_cases)] {
        let mut by_payload: BTreeMap<Vec<u8>, Vec<&str>> = BTreeMap::new();
        for d in dead.iter().filter(|d| d.source == source) {
            by_payload.entry(d.payload()).or_default().push(&d.reason);
        }
        for c in sent.iter() {
            let kept = &c.payload[..c.payload.len().min(smartcity_gateway::dead_letter::KEPT_PAYLOAD)];
            let reasons = by_payload.get(kept).unwrap_or_else(|| panic!("{source}: no dead letter for `{}`", c.name));
            assert!(reasons.contains(&c.reason), "{source}: `{}` set aside as {reasons:?}, not {}", c.name, c.reason);
            let series =
                format!("smartcity_gateway_messages_rejected_total{{reason=\"{}\",source=\"{source}\"}}", c.reason);
            assert!(gw.metric(&series).await >= 1.0, "{series}");
        }
    }
    check_copies(&dead, "mqtt", &mqtt_copies.wait(dead.len()).await);
    check_copies(&dead, "kafka", &kafka_copies(&copy_topic, dead.len()).await);
    for target in ["mqtt", "kafka"] {
        let series = format!("smartcity_gateway_dead_letter_copies_total{{outcome=\"published\",target=\"{target}\"}}");
        assert_eq!(gw.metric(&series).await, want_dead as f64, "{series}");
    }

    let mut want = expected(&run, "vm", 10, 100);
    want.extend(expected(&run, "vk", 10, 100));
    want.extend(expected(&run, "vp", 10, 100));
    let got = run.wait_written(want.len(), Duration::from_secs(60)).await;
    // Exactly the valid readings: not one point from a bad payload.
    assert_exactly(&want, &got);
    drop(client);
    pump.abort();
    let mut gw = gw;
    gw.stop();
}

/// A copy as received: (MQTT topic or Kafka key, payload).
type Received = (String, Vec<u8>);

/// Copies received on MQTT.
struct MqttCopies {
    received: Arc<std::sync::Mutex<Vec<Received>>>,
}

impl MqttCopies {
    async fn wait(&self, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.received.lock().unwrap().len() < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        self.received.lock().unwrap().clone()
    }
}

/// Subscribes to `{prefix}/#` before the gateway starts, and keeps what arrives.
async fn subscribe_copies(run: &Run, prefix: &str) -> MqttCopies {
    let mut options = rumqttc::MqttOptions::new(
        format!("{}-copies", run.names.run),
        bench_var("BENCH_MQTT_HOST"),
        bench_var("BENCH_MQTT_PORT").parse().unwrap(),
    );
    options.set_max_packet_size(4 << 20, 4 << 20);
    let (client, mut events) = rumqttc::AsyncClient::new(options, 100);
    client.subscribe(format!("{prefix}/#"), rumqttc::QoS::AtLeastOnce).await.unwrap();
    let received = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (kept, subscribed) = (received.clone(), Arc::new(tokio::sync::Notify::new()));
    let ready = subscribed.clone();
    tokio::spawn(async move {
        let _client = client; // the subscription lives as long as this task
        loop {
            match events.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))) => ready.notify_one(),
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                    kept.lock().unwrap().push((p.topic.clone(), p.payload.to_vec()))
                }
                Ok(_) => {}
                Err(e) => panic!("dead-letter subscriber: {e}"),
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(10), subscribed.notified()).await.expect("subscribed to the copies");
    MqttCopies { received }
}

/// Reads `n` copies from the Kafka topic: (key, payload).
async fn kafka_copies(topic: &str, n: usize) -> Vec<Received> {
    use rdkafka::consumer::{Consumer, StreamConsumer};
    use rdkafka::Message;
    let consumer: StreamConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bench_var("BENCH_KAFKA_BOOTSTRAP"))
        .set("group.id", format!("{topic}-reader"))
        .set("auto.offset.reset", "earliest")
        .set("fetch.message.max.bytes", "2000000")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while got.len() < n && Instant::now() < deadline {
        if let Ok(Ok(m)) = tokio::time::timeout(Duration::from_secs(1), consumer.recv()).await {
            let key = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
            got.push((key, m.payload().unwrap_or_default().to_vec()));
        }
    }
    got
}

/// Every dead letter of the file has exactly one copy, the same object, under its reason (the topic
/// suffix or the key); a copy too large for its broker keeps the start of the payload (`truncated`).
fn check_copies(file: &[DeadLetterLine], target: &str, copies: &[Received]) {
    assert_eq!(copies.len(), file.len(), "{target}: one copy per dead letter");
    let mut left: Vec<&DeadLetterLine> = file.iter().collect();
    for (label, json) in copies {
        let copy: DeadLetterLine = serde_json::from_slice(json).unwrap_or_else(|e| panic!("{target}: copy: {e}"));
        assert!(label == &copy.reason || label.ends_with(&format!("/{}", copy.reason)), "{target}: {label}");
        let found = left.iter().position(|l| {
            *l == &copy
                || (identity(l) == identity(&copy)
                    && copy.truncated
                    && !copy.payload().is_empty()
                    && l.payload().starts_with(&copy.payload()))
        });
        let i = found.unwrap_or_else(|| panic!("{target}: a copy not in the file: {} {}", copy.source, copy.reason));
        left.remove(i);
    }
}

fn identity(l: &DeadLetterLine) -> (&str, &str, &str, &str, usize) {
    (&l.source, &l.topic, &l.reason, &l.time, l.bytes)
}
