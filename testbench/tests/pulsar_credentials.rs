//! Pulsar refusing our credentials for a while (issue 17's rule: a failure about the destination
//! costs a wait, never a reading), against the bench's Pulsar with token authentication and
//! authorization on (scripts/services/pulsar.sh). Each test has a namespace of its own on which it
//! grants and revokes the permissions of the role `smartcity-test`, whose token the bench made
//! (`BENCH_PULSAR_TEST_TOKEN_FILE`); the test itself talks to the broker as the superuser.
//!
//! Permissions are checked when a producer or consumer is created: a revocation reaches clients
//! already connected when the topic is unloaded (as an operator's `topics unload`, a broker restart or
//! a bundle move does), and they are then refused at their reconnection.

use futures::TryStreamExt;
use pulsar::consumer::{ConsumerOptions, InitialPosition};
use pulsar::{Consumer, Pulsar, SubType, TokioExecutor};
use smartcity_connectors::fanout::{FanOut, QueueConfig};
use smartcity_connectors::metrics::{registry, SinkMetrics, SourceMetrics};
use smartcity_connectors::pulsar::{PulsarConfig, PulsarDelivery, PulsarSink, PulsarSource, PulsarSourceConfig};
use smartcity_connectors::sink::SinkTelemetry;
use smartcity_model::{codec::json, Catalogue, Reading, ReadingStream, SensorKind};
use smartcity_testbench::{bench_var, unique};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{timeout, Instant};
use tokio_util::sync::CancellationToken;

const ROLE: &str = "smartcity-test";
const STEP: Duration = Duration::from_secs(30);
/// How long the permissions stay revoked: several of the clients' reconnection attempts.
const REFUSED_FOR: Duration = Duration::from_secs(12);

/// The bench's admin API, as the superuser.
struct Admin {
    http: reqwest::Client,
    base: String,
    namespace: String,
}

impl Admin {
    /// A fresh namespace under `public`, where the test role may do nothing yet.
    async fn new(prefix: &str) -> Admin {
        let admin = Admin {
            http: reqwest::Client::builder().timeout(STEP).build().unwrap(),
            base: format!("{}/admin/v2", bench_var("BENCH_PULSAR_ADMIN_URL")),
            namespace: format!("public/{}", unique(prefix)),
        };
        let created = admin.http.put(format!("{}/namespaces/{}", admin.base, admin.namespace)).send().await.unwrap();
        assert_eq!(created.status(), 204, "creating {}: {:?}", admin.namespace, created.text().await);
        admin
    }

    fn topic(&self, name: &str) -> String {
        format!("persistent://{}/{name}", self.namespace)
    }

    async fn grant(&self) {
        let url = format!("{}/namespaces/{}/permissions/{ROLE}", self.base, self.namespace);
        let granted = self.http.post(url).json(&["produce", "consume"]).send().await.unwrap();
        assert_eq!(granted.status(), 204, "granting: {:?}", granted.text().await);
    }

    async fn revoke(&self) {
        let url = format!("{}/namespaces/{}/permissions/{ROLE}", self.base, self.namespace);
        let revoked = self.http.delete(url).send().await.unwrap();
        assert_eq!(revoked.status(), 204, "revoking: {:?}", revoked.text().await);
    }

    /// Closes every client's producers and consumers on `topic`: they reconnect, and are checked
    /// again. A topic not loaded yet answers 404 or 412, which is fine: nobody is on it.
    async fn unload(&self, topic: &str) {
        let path = topic.trim_start_matches("persistent://");
        let unloaded = self.http.put(format!("{}/persistent/{path}/unload", self.base)).send().await.unwrap();
        assert!(matches!(unloaded.status().as_u16(), 204 | 404 | 412), "unloading {topic}: {}", unloaded.status());
    }

    async fn backlog(&self, topic: &str, subscription: &str) -> Option<u64> {
        let path = topic.trim_start_matches("persistent://");
        let stats: serde_json::Value =
            self.http.get(format!("{}/persistent/{path}/stats", self.base)).send().await.ok()?.json().await.ok()?;
        stats["subscriptions"][subscription]["msgBacklog"].as_u64()
    }
}

fn token_file() -> PathBuf {
    let file = PathBuf::from(bench_var("BENCH_PULSAR_TEST_TOKEN_FILE"));
    assert!(file.is_file(), "the bench's test token {} is missing", file.display());
    file
}

/// Three ticks of the built-in ten sensors.
fn readings(from_minute: u32) -> Vec<Reading> {
    let mut stream = ReadingStream::new(Catalogue::default_ten(), 11);
    let mut out = Vec::new();
    for minute in 0..from_minute + 3 {
        let mut tick = Vec::new();
        stream.tick_into(format!("2026-03-02T08:{minute:02}:00Z").parse().unwrap(), &mut tick);
        if minute >= from_minute {
            out.extend(tick);
        }
    }
    out
}

/// Every (sensor, seq) on the six topics of `template`, read from the start by the superuser until
/// `expected` distinct ones arrived.
async fn read_back(template: &str, expected: usize) -> BTreeSet<(String, u64)> {
    let url = bench_var("BENCH_PULSAR_URL");
    let pulsar: Pulsar<_> = Pulsar::builder(url.as_str(), TokioExecutor).build().await.expect("superuser client");
    let topics: Vec<String> = SensorKind::ALL.iter().map(|k| template.replace("{kind}", k.pulsar_suffix())).collect();
    let mut consumer: Consumer<Vec<u8>, _> = pulsar
        .consumer()
        .with_topics(&topics)
        .with_subscription(unique("read-back"))
        .with_subscription_type(SubType::Exclusive)
        .with_options(ConsumerOptions::default().with_initial_position(InitialPosition::Earliest))
        .build()
        .await
        .expect("superuser consumer");
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + STEP;
    while seen.len() < expected {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Ok(Some(message))) = timeout(left, consumer.try_next()).await else {
            panic!("{} of {expected} readings on the topics", seen.len());
        };
        let reading = json::decode(&message.payload.data).expect("our own wire format");
        seen.insert((reading.sensor_id, reading.seq));
    }
    seen
}

#[tokio::test]
async fn a_producer_refused_for_a_while_loses_nothing() {
    let admin = Admin::new("creds-sink").await;
    admin.grant().await;
    let template = admin.topic("readings-{kind}");
    let cfg = PulsarConfig {
        url: bench_var("BENCH_PULSAR_URL"),
        topic_template: template.clone(),
        token_env: String::new(),
        token_file: Some(token_file()),
        timeout_seconds: 5,
        ..PulsarConfig::default()
    };
    let metrics = SinkMetrics::register(&registry("test"), "test");
    let telemetry = SinkTelemetry::new(&metrics, "pulsar");
    let sink = PulsarSink::new(&cfg, telemetry.clone()).expect("settings");
    let mut fanout = FanOut::new();
    fanout.add(sink, "pulsar".into(), QueueConfig::default(), telemetry.clone());

    let (before, during) = (readings(0), readings(3));
    fanout.publish(before.clone().into()).await;
    let deadline = Instant::now() + STEP;
    while telemetry.published_total() < before.len() as u64 {
        assert!(Instant::now() < deadline, "the first readings were published with the permission");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The operator revokes the role's permissions; the producers find out at their reconnection.
    admin.revoke().await;
    for kind in SensorKind::ALL {
        admin.unload(&template.replace("{kind}", kind.pulsar_suffix())).await;
    }
    fanout.publish(during.clone().into()).await;
    let refused_since = Instant::now();
    while telemetry.errors_total() < 2 {
        assert!(refused_since.elapsed() < STEP, "the broker refused the producer at least twice");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!telemetry.is_up(), "down while refused");
    let down: Vec<(&str, i64)> = ["auth", "connect", "timeout"]
        .iter()
        .map(|r| (*r, metrics.down.with_label_values(&["pulsar", r]).get()))
        .collect();
    assert_eq!(down[0], ("auth", 1), "down for its credentials: {down:?}");
    assert_eq!(telemetry.dropped_total(), 0, "nothing dropped while refused");
    tokio::time::sleep(REFUSED_FOR.saturating_sub(refused_since.elapsed())).await;

    admin.grant().await;
    assert_eq!(fanout.close(Duration::from_secs(60)).await, 0, "nothing left unsent once granted again");
    let total = before.len() + during.len();
    assert_eq!((telemetry.published_total(), telemetry.dropped_total()), (total as u64, 0));
    let seen = read_back(&template, total).await;
    let expected: BTreeSet<(String, u64)> =
        before.iter().chain(&during).map(|r| (r.sensor_id.clone(), r.seq)).collect();
    assert_eq!(seen, expected, "every reading on the broker, each once counted");
}

#[tokio::test]
async fn a_consumer_refused_for_a_while_loses_nothing() {
    let admin = Admin::new("creds-source").await;
    let topic = admin.topic("readings");
    let batch = readings(0);
    // The superuser fills the topic; the source's role may not read it yet.
    let url = bench_var("BENCH_PULSAR_URL");
    let pulsar: Pulsar<_> = Pulsar::builder(url.as_str(), TokioExecutor).build().await.expect("superuser client");
    let mut producer = pulsar.producer().with_topic(&topic).build().await.expect("superuser producer");
    let cfg = PulsarSourceConfig {
        name: "refused".into(),
        url,
        admin_url: bench_var("BENCH_PULSAR_ADMIN_URL"),
        token_env: String::new(),
        token_file: Some(token_file()),
        topics: vec![topic.clone()],
        subscription: unique("creds"),
        dead_letter_topic: admin.topic("dlq"),
        dead_letter_subscription: unique("dlq-sub"),
        watchdog_seconds: 5,
        timeout_seconds: 5,
        ..Default::default()
    };
    for reading in &batch {
        producer.send_non_blocking(json::encode(reading)).await.expect("send").await.expect("receipt");
    }

    let metrics = SourceMetrics::register(&registry("test"), "test");
    let source = PulsarSource::new(cfg.clone(), metrics.clone()).expect("settings");
    let (tx, mut rx) = mpsc::channel::<PulsarDelivery>(64);
    let stop = CancellationToken::new();
    let task = tokio::spawn(source.run(tx, stop.clone()));
    match timeout(REFUSED_FOR, rx.recv()).await {
        Err(_) => {}
        Ok(delivery) => panic!("a message reached a consumer whose role may not read: {:?}", delivery.map(|d| d.topic)),
    }
    assert!(!task.is_finished(), "the source waits for its permissions, it does not stop");
    assert_eq!(metrics.connected.with_label_values(&["refused"]).get(), 0, "not connected while refused");

    admin.grant().await;
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.len() < batch.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some(mut delivery)) = timeout(left, rx.recv()).await else {
            panic!("{} of {} readings delivered once granted", seen.len(), batch.len());
        };
        let reading = json::decode(&std::mem::take(&mut delivery.payload)).expect("our wire format");
        seen.insert((reading.sensor_id, reading.seq));
        delivery.ack();
    }
    assert_eq!(seen.len(), batch.len(), "every reading delivered");
    let deadline = Instant::now() + STEP;
    while admin.backlog(&topic, &cfg.subscription).await != Some(0) {
        assert!(Instant::now() < deadline, "the acknowledgements reach the broker: backlog 0");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.cancel();
    let ended = timeout(STEP, task).await.expect("the source stops").expect("no panic");
    assert!(ended.is_ok(), "{ended:?}");
}
