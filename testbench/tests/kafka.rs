//! Smoke test of the bench Kafka 3.9 broker (scripts/services/kafka.sh) with the project's Kafka client,
//! rdkafka (librdkafka): a keyed JSON round trip on the plain listener, the same over SASL_SSL (TLS verified
//! against the bench CA, SASL/PLAIN), and a wrong SASL password refused with an authentication error.
//!
//! Start the broker first: `scripts/services/services.sh up kafka`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{json, Value};
use smartcity_testbench::{bench_var, unique};

const MESSAGES: usize = 25;
const ROUND_TRIP_TIMEOUT: Duration = Duration::from_secs(60);

/// Connection settings for the plain PLAINTEXT listener.
fn plain_config() -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bench_var("BENCH_KAFKA_BOOTSTRAP"));
    c
}

/// Connection settings for the SASL_SSL listener: TLS verified against the bench CA (hostname check on the
/// 127.0.0.1 IP SAN included, librdkafka's default), SASL/PLAIN with the given password.
fn sasl_ssl_config(password: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bench_var("BENCH_KAFKA_SASL_BOOTSTRAP"))
        .set("security.protocol", "SASL_SSL")
        .set("ssl.ca.location", bench_var("BENCH_KAFKA_TLS_CA"))
        .set("enable.ssl.certificate.verification", "true")
        .set("ssl.endpoint.identification.algorithm", "https")
        .set("sasl.mechanisms", "PLAIN")
        .set("sasl.username", bench_var("BENCH_KAFKA_SASL_USER"))
        .set("sasl.password", password);
    c
}

fn expected_messages(topic: &str) -> Vec<(String, Value)> {
    (0..MESSAGES)
        .map(|i| {
            let key = format!("sensor-{:03}", i % 7);
            let value = json!({
                "topic": topic,
                "sensor_id": key,
                "seq": i,
                "kind": "air_quality",
                "pm25": 3.5 + i as f64 * 0.25,
                "unicode": "µg/m³ ✓",
            });
            (key, value)
        })
        .collect()
}

/// Create a one-partition topic (one partition: the read-back order is the write order), produce
/// MESSAGES keyed JSON records, consume them with a fresh group (auto commit off), commit after reading,
/// and check content, order, count and the committed offset.
async fn round_trip(base: ClientConfig, label: &str) {
    let topic = unique(&format!("bench-kafka-{label}"));
    let group = unique(&format!("bench-group-{label}"));

    let admin: AdminClient<DefaultClientContext> = base.create().expect("admin client");
    let created = tokio::time::timeout(
        Duration::from_secs(30),
        admin.create_topics(
            &[NewTopic::new(&topic, 1, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(20))),
        ),
    )
    .await
    .unwrap_or_else(|_| panic!("[{label}] create_topics timed out"))
    .unwrap_or_else(|e| panic!("[{label}] create_topics failed: {e}"));
    for r in created {
        r.unwrap_or_else(|(t, code)| panic!("[{label}] creating topic {t} failed: {code}"));
    }

    let expected = expected_messages(&topic);
    let producer: FutureProducer = base
        .clone()
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "20000")
        .create()
        .expect("producer");
    for (i, (key, value)) in expected.iter().enumerate() {
        let payload = serde_json::to_vec(value).unwrap();
        let delivery = producer
            .send(FutureRecord::to(&topic).key(key).payload(&payload), Duration::from_secs(10))
            .await
            .unwrap_or_else(|(e, _)| panic!("[{label}] delivery of message {i} failed: {e}"));
        assert_eq!(delivery.partition, 0, "[{label}] one-partition topic");
        assert_eq!(delivery.offset, i as i64, "[{label}] offsets of a fresh topic start at 0");
    }
    producer.flush(Duration::from_secs(10)).expect("flush");

    let consumer: StreamConsumer = base
        .clone()
        .set("group.id", &group)
        .set("client.id", unique("bench-consumer"))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        .create()
        .expect("consumer");
    consumer.subscribe(&[&topic]).expect("subscribe");

    let deadline = Instant::now() + ROUND_TRIP_TIMEOUT;
    let mut got: Vec<(String, Value)> = Vec::new();
    while got.len() < MESSAGES {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = tokio::time::timeout(left, consumer.recv())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "[{label}] only {} of {MESSAGES} messages read back from {topic} within {ROUND_TRIP_TIMEOUT:?}",
                    got.len()
                )
            })
            .unwrap_or_else(|e| panic!("[{label}] consumer error: {e}"));
        assert_eq!(msg.topic(), topic);
        assert!(msg.headers().is_none_or(|h| h.count() == 0), "no headers were sent");
        let key = String::from_utf8(msg.key().expect("message without key").to_vec()).expect("utf-8 key");
        let value: Value = serde_json::from_slice(msg.payload().expect("message without payload"))
            .unwrap_or_else(|e| panic!("[{label}] payload is not JSON: {e}"));
        assert_eq!(msg.offset(), got.len() as i64, "[{label}] offsets in order");
        got.push((key, value));
    }
    // At-least-once style: commit only after everything was read.
    consumer.commit_consumer_state(CommitMode::Sync).expect("commit");

    assert_eq!(got.len(), MESSAGES);
    assert_eq!(got, expected, "[{label}] read-back messages differ from what was produced");

    // Nothing more arrives (exact count), and the group's committed offset is the end of the topic.
    if let Ok(extra) = tokio::time::timeout(Duration::from_secs(2), consumer.recv()).await {
        panic!("[{label}] unexpected extra message: {:?}", extra.map(|m| m.offset()));
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(&topic, 0);
    let committed = consumer.committed_offsets(tpl, Duration::from_secs(10)).expect("committed offsets");
    let offset = committed.find_partition(&topic, 0).expect("partition 0 in committed list").offset();
    assert_eq!(offset, Offset::Offset(MESSAGES as i64), "[{label}] committed offset of group {group}");
    consumer.unsubscribe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_keyed_json_round_trip() {
    round_trip(plain_config(), "plain").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_ssl_keyed_json_round_trip() {
    round_trip(sasl_ssl_config(&bench_var("BENCH_KAFKA_SASL_PASSWORD")), "sasl").await;
}

/// Records the client-level errors librdkafka reports (the error callback).
#[derive(Clone, Default)]
struct ErrorLog(Arc<Mutex<Vec<(KafkaError, String)>>>);

impl ClientContext for ErrorLog {
    fn error(&self, error: KafkaError, reason: &str) {
        self.0.lock().unwrap().push((error, reason.to_string()));
    }
}

impl ErrorLog {
    fn has_auth_error(&self) -> bool {
        self.0.lock().unwrap().iter().any(|(e, reason)| {
            matches!(e, KafkaError::Global(RDKafkaErrorCode::Authentication))
                || reason.contains("Authentication failed")
        })
    }
}

#[test]
fn wrong_sasl_password_is_refused() {
    let errors = ErrorLog::default();
    // FutureProducer polls its queue in a background thread, so the error callback runs on its own.
    let producer: FutureProducer<ErrorLog> = sasl_ssl_config("definitely-not-the-password")
        .set("reconnect.backoff.ms", "200")
        .create_with_context(errors.clone())
        .expect("producer");

    let metadata = producer.client().fetch_metadata(None, Duration::from_secs(8));
    assert!(
        metadata.is_err(),
        "metadata must not be served to a client with a wrong SASL password: {:?}",
        metadata.map(|m| m.brokers().len())
    );

    let deadline = Instant::now() + Duration::from_secs(15);
    while !errors.has_auth_error() {
        assert!(
            Instant::now() < deadline,
            "no SASL authentication error reported within 15 s; errors seen: {:?}",
            errors.0.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
