//! The Pulsar source (connectors/src/pulsar/source/) against the bench's Pulsar 4.0 standalone:
//! delivery and acks (the subscription's backlog drains to 0), nacks that end in the dead-letter topic
//! with their reason, explicit dead letters, and a broker restart mid-stream
//! (`scripts/services/services.sh restart pulsar`, data kept) that the source survives by itself.
//!
//! Every test uses fresh topics and subscriptions. The restart test takes the write side of a lock
//! the others read, so that no other test of this file talks to the broker while it is down.

use futures::TryStreamExt;
use pulsar::consumer::{ConsumerOptions, InitialPosition};
use pulsar::producer::Message;
use pulsar::{Consumer, Pulsar, SubType, TokioExecutor};
use smartcity_connectors::metrics::SourceMetrics;
use smartcity_connectors::pulsar::{PulsarDelivery, PulsarSource, PulsarSourceConfig};
use smartcity_testbench::{bench_var, unique};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, RwLock};
use tokio::time::{timeout, Instant};
use tokio_util::sync::CancellationToken;

const STEP: Duration = Duration::from_secs(30);
static BROKER: RwLock<()> = RwLock::const_new(());

fn topic(prefix: &str) -> String {
    format!("persistent://public/default/{}", unique(prefix))
}

/// A source on `topics` with a fresh subscription and dead-letter topic, quick redeliveries and a
/// 5 s watchdog.
fn config(topics: Vec<String>) -> PulsarSourceConfig {
    PulsarSourceConfig {
        name: "bench".into(),
        url: bench_var("BENCH_PULSAR_URL"),
        admin_url: bench_var("BENCH_PULSAR_ADMIN_URL"),
        topics,
        subscription: unique("dist"),
        dead_letter_topic: topic("dlq"),
        dead_letter_subscription: unique("dlq-sub"),
        max_redeliveries: 2,
        redelivery_delay_ms: 200,
        watchdog_seconds: 5,
        timeout_seconds: 10,
        ..Default::default()
    }
}

struct Running {
    rx: mpsc::Receiver<PulsarDelivery>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), String>>,
    metrics: SourceMetrics,
    restarts: Arc<AtomicU64>,
}

impl Running {
    async fn next(&mut self, what: &str) -> PulsarDelivery {
        timeout(STEP, self.rx.recv())
            .await
            .unwrap_or_else(|_| panic!("{what}: nothing delivered within {STEP:?}"))
            .expect("the source stopped")
    }

    async fn stop(self) {
        self.shutdown.cancel();
        let result = timeout(STEP, self.task).await.expect("the source did not stop").expect("source task");
        assert_eq!(result, Ok(()));
    }

    fn rejected(&self, reason: &str) -> u64 {
        self.metrics.rejected.with_label_values(&["bench", reason]).get()
    }
}

fn start(cfg: PulsarSourceConfig) -> Running {
    smartcity_connectors::runtime::init_logging();
    let metrics = SourceMetrics::register(&smartcity_connectors::metrics::registry("test"), "test");
    let source = PulsarSource::new(cfg, metrics.clone()).expect("valid config");
    let restarts = source.watchdog_restarts();
    let (tx, rx) = mpsc::channel(16);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(source.run(tx, shutdown.clone()));
    Running { rx, shutdown, task, metrics, restarts }
}

async fn client() -> Pulsar<TokioExecutor> {
    let url = bench_var("BENCH_PULSAR_URL");
    timeout(STEP, Pulsar::builder(url.as_str(), TokioExecutor).build())
        .await
        .unwrap_or_else(|_| panic!("connecting to {url} timed out"))
        .unwrap_or_else(|e| panic!("cannot connect to Pulsar at {url}: {e}"))
}

/// Produces `payloads` to `topic` with key `sensor-{i}` and event time `1000 + i`, waiting for receipts.
async fn produce(pulsar: &Pulsar<TokioExecutor>, topic: &str, payloads: &[String]) {
    let mut producer = timeout(STEP, pulsar.producer().with_topic(topic).build())
        .await
        .expect("creating the producer timed out")
        .unwrap_or_else(|e| panic!("cannot create a producer on {topic}: {e}"));
    for (i, p) in payloads.iter().enumerate() {
        let message = Message {
            payload: p.clone().into_bytes(),
            partition_key: Some(format!("sensor-{i}")),
            event_time: Some(1000 + i as u64),
            ..Default::default()
        };
        timeout(STEP, async { producer.send_non_blocking(message).await?.await })
            .await
            .expect("sending timed out")
            .unwrap_or_else(|e| panic!("send to {topic} failed: {e}"));
    }
    let _ = producer.close().await;
}

/// The admin API's view of `subscription` on `topic`.
async fn subscription_stats(topic: &str, subscription: &str) -> serde_json::Value {
    let admin = bench_var("BENCH_PULSAR_ADMIN_URL");
    let path = topic.replace("://", "/");
    let url = format!("{admin}/admin/v2/{path}/stats");
    let stats: serde_json::Value = reqwest::get(&url)
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    stats["subscriptions"][subscription].clone()
}

/// Waits until the broker has recorded every ack of `subscription` on `topic`.
async fn backlog_drains(topic: &str, subscription: &str) {
    let deadline = Instant::now() + STEP;
    loop {
        let sub = subscription_stats(topic, subscription).await;
        if sub["msgBacklog"].as_u64() == Some(0) {
            return;
        }
        assert!(Instant::now() < deadline, "backlog of {subscription} on {topic} not 0 within {STEP:?}: {sub}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Every message kept by the dead-letter subscription of `cfg`, read until `n` arrived.
async fn dead_letters(cfg: &PulsarSourceConfig, n: usize) -> Vec<pulsar::consumer::Message<Vec<u8>>> {
    let pulsar = client().await;
    let mut consumer: Consumer<Vec<u8>, _> = timeout(
        STEP,
        pulsar
            .consumer()
            .with_topic(&cfg.dead_letter_topic)
            .with_subscription(&cfg.dead_letter_subscription)
            .with_subscription_type(SubType::Shared)
            .with_options(ConsumerOptions::default().with_initial_position(InitialPosition::Earliest))
            .build(),
    )
    .await
    .expect("subscribing to the dead letters timed out")
    .expect("subscribing to the dead letters");
    let mut letters = Vec::new();
    while letters.len() < n {
        let m = timeout(STEP, consumer.try_next())
            .await
            .unwrap_or_else(|_| panic!("only {} of {n} dead letters within {STEP:?}", letters.len()))
            .expect("dead-letter consumer error")
            .expect("dead-letter stream ended");
        consumer.ack(&m).await.expect("ack of a dead letter");
        letters.push(m);
    }
    let _ = consumer.close().await;
    letters
}

fn property(m: &pulsar::consumer::Message<Vec<u8>>, key: &str) -> Option<String> {
    m.metadata().properties.iter().find(|kv| kv.key == key).map(|kv| kv.value.clone())
}

#[tokio::test]
async fn delivers_everything_and_acks_drain_the_backlog() {
    let _shared = BROKER.read().await;
    let t0 = Instant::now();
    let topic = topic("src-ack");
    let cfg = config(vec![topic.clone()]);
    let mut source = start(cfg.clone());
    let sent: Vec<String> = (0..50).map(|i| format!("reading {i}")).collect();
    produce(&client().await, &topic, &sent).await;
    let mut got = BTreeSet::new();
    let mut held = None;
    while got.len() < sent.len() {
        let d = source.next("acked delivery").await;
        assert_eq!(d.topic, topic);
        assert_eq!(d.redeliveries, 0);
        let text = String::from_utf8(d.payload.clone()).expect("utf-8");
        let i: usize = text.trim_start_matches("reading ").parse().expect("index");
        assert_eq!(d.key, Some(format!("sensor-{i}")), "key kept");
        assert_eq!(d.event_time, Some(1000 + i as u64), "event time kept");
        got.insert(text);
        if held.is_none() {
            held = Some(d);
        } else {
            d.ack();
        }
    }
    assert_eq!(got, sent.iter().cloned().collect());
    // A message held unacknowledged (a slow downstream write) over two watchdog periods is not a
    // stuck consumer: the broker counts it as unacknowledged, not as waiting.
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert_eq!(source.restarts.load(Ordering::Relaxed), 0, "watchdog restarted a healthy consumer");
    assert!(source.rx.try_recv().is_err(), "redelivered while held");
    held.expect("one delivery held").ack();
    backlog_drains(&topic, &cfg.subscription).await;
    assert_eq!(source.metrics.received.with_label_values(&["bench"]).get(), 50);
    source.stop().await;
    eprintln!("delivers_everything_and_acks_drain_the_backlog: {:?}", t0.elapsed());
}

#[tokio::test]
async fn nacked_message_comes_back_then_goes_to_the_dead_letter_topic() {
    let _shared = BROKER.read().await;
    let t0 = Instant::now();
    let topic = topic("src-nack");
    let cfg = config(vec![topic.clone()]);
    let mut source = start(cfg.clone());
    produce(&client().await, &topic, &["always fails".to_string()]).await;
    // max_redeliveries = 2: delivered three times, the third nack dead-letters it.
    for expected in 0..=2 {
        let d = source.next("nacked delivery").await;
        assert_eq!((d.payload.as_slice(), d.redeliveries), (b"always fails".as_slice(), expected));
        d.nack("target: influxdb answered 503");
    }
    let letters = dead_letters(&cfg, 1).await;
    let m = &letters[0];
    assert_eq!(m.payload.data, b"always fails");
    assert_eq!(property(m, "reason").as_deref(), Some("target: influxdb answered 503"));
    assert_eq!(property(m, "origin_topic").as_deref(), Some(topic.as_str()));
    assert_eq!(property(m, "redeliveries").as_deref(), Some("2"));
    assert!(property(m, "origin_message_id").is_some_and(|id| id.split(':').count() >= 3));
    assert_eq!(m.key().as_deref(), Some("sensor-0"));
    assert_eq!(m.metadata().event_time, Some(1000));
    backlog_drains(&topic, &cfg.subscription).await;
    assert_eq!(source.rejected("redeliveries"), 1);
    // Dead-lettered and acked: it does not come back.
    assert!(timeout(Duration::from_secs(2), source.rx.recv()).await.is_err(), "delivered after its dead letter");
    source.stop().await;
    eprintln!("nacked_message_comes_back_then_goes_to_the_dead_letter_topic: {:?}", t0.elapsed());
}

#[tokio::test]
async fn malformed_payload_is_dead_lettered_with_its_reason() {
    let _shared = BROKER.read().await;
    let t0 = Instant::now();
    let topic = topic("src-decode");
    let cfg = config(vec![topic.clone()]);
    let mut source = start(cfg.clone());
    produce(&client().await, &topic, &[r#"{"ok": true}"#.to_string(), "{not json".to_string()]).await;
    for _ in 0..2 {
        let d = source.next("decode delivery").await;
        match serde_json::from_slice::<serde_json::Value>(&d.payload) {
            Ok(_) => d.ack(),
            Err(e) => d.dead_letter(&format!("decode: {e}")),
        }
    }
    let letters = dead_letters(&cfg, 1).await;
    let m = &letters[0];
    assert_eq!(m.payload.data, b"{not json");
    let reason = property(m, "reason").expect("reason property");
    assert!(reason.starts_with("decode: "), "{reason}");
    assert_eq!(property(m, "origin_topic").as_deref(), Some(topic.as_str()));
    assert_eq!(property(m, "redeliveries"), None, "never nacked");
    assert_eq!(m.key().as_deref(), Some("sensor-1"));
    assert_eq!(m.metadata().event_time, Some(1001));
    backlog_drains(&topic, &cfg.subscription).await;
    assert_eq!(source.rejected("decode"), 1);
    source.stop().await;
    eprintln!("malformed_payload_is_dead_lettered_with_its_reason: {:?}", t0.elapsed());
}

/// Receives until every payload of `want` arrived (acking each), tolerating duplicates.
async fn receive_all(source: &mut Running, want: &BTreeSet<String>, got: &mut BTreeMap<String, u32>, limit: Duration) {
    let deadline = Instant::now() + limit;
    while !want.iter().all(|w| got.contains_key(w)) {
        let left = deadline.saturating_duration_since(Instant::now());
        let missing: Vec<_> = want.iter().filter(|w| !got.contains_key(*w)).take(5).collect();
        let d = timeout(left, source.rx.recv())
            .await
            .unwrap_or_else(|_| panic!("{} messages missing after {limit:?}, e.g. {missing:?}", missing.len()))
            .expect("the source stopped");
        *got.entry(String::from_utf8_lossy(&d.payload).into_owned()).or_default() += 1;
        d.ack();
    }
}

#[tokio::test]
async fn resumes_by_itself_after_a_broker_restart() {
    let _exclusive = BROKER.write().await;
    let t0 = Instant::now();
    // Two topics: the multi-topic consumer, as with the six default topics.
    // Two sources: one on two topics (the multi-topic consumer, as with the six default topics), one
    // on a single topic (the client's single-topic consumer, which fails differently).
    let multi = Case::new(vec![topic("src-restart-a"), topic("src-restart-b")]);
    let single = Case::new(vec![topic("src-restart-c")]);
    let mut cases = [multi, single];
    let pulsar = client().await;
    for case in &mut cases {
        case.produce(&pulsar, "before").await;
        case.receive(STEP).await;
        // Produced right before the restart: received or not, acked or not, they must arrive.
        case.produce(&pulsar, "just before").await;
    }
    drop(pulsar);

    let t_restart = Instant::now();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let status = tokio::task::spawn_blocking(move || {
        std::process::Command::new("scripts/services/services.sh")
            .args(["restart", "pulsar"])
            .current_dir(root)
            .status()
    })
    .await
    .expect("restart task")
    .expect("running services.sh restart pulsar");
    assert!(status.success(), "services.sh restart pulsar failed: {status}");
    eprintln!("broker restarted in {:?}", t_restart.elapsed());

    let pulsar = client().await;
    for case in &mut cases {
        case.produce(&pulsar, "after").await;
    }
    let t_resume = Instant::now();
    for case in &mut cases {
        case.receive(Duration::from_secs(60)).await;
        let duplicates: u32 = case.got.values().map(|n| n - 1).sum();
        eprintln!(
            "{} topic(s): all {} messages {:?} after the restart ({duplicates} duplicates, {} watchdog restarts)",
            case.cfg.topics.len(),
            case.want.len(),
            t_resume.elapsed(),
            case.source.restarts.load(Ordering::Relaxed)
        );
        for t in &case.cfg.topics {
            backlog_drains(t, &case.cfg.subscription).await;
        }
    }
    for case in cases {
        case.source.stop().await;
    }
    eprintln!("resumes_by_itself_after_a_broker_restart: {:?}", t0.elapsed());
}

/// One source of the restart test, with what was sent to it and what it delivered.
struct Case {
    cfg: PulsarSourceConfig,
    source: Running,
    want: BTreeSet<String>,
    got: BTreeMap<String, u32>,
}

impl Case {
    fn new(topics: Vec<String>) -> Case {
        let cfg = config(topics);
        Case { source: start(cfg.clone()), cfg, want: BTreeSet::new(), got: BTreeMap::new() }
    }

    /// Ten messages to each topic, named after the topic and `phase`.
    async fn produce(&mut self, pulsar: &Pulsar<TokioExecutor>, phase: &str) {
        for t in &self.cfg.topics {
            let batch: Vec<String> = (0..10).map(|i| format!("{t} {phase} {i}")).collect();
            produce(pulsar, t, &batch).await;
            self.want.extend(batch);
        }
    }

    async fn receive(&mut self, limit: Duration) {
        receive_all(&mut self.source, &self.want, &mut self.got, limit).await;
    }
}

#[tokio::test]
async fn pattern_picks_up_topics_created_later() {
    let _shared = BROKER.read().await;
    let t0 = Instant::now();
    let prefix = unique("src-pat");
    let (early, late) =
        (format!("persistent://public/default/{prefix}-early"), format!("persistent://public/default/{prefix}-late"));
    let pulsar = client().await;
    produce(&pulsar, &early, &["early 0".to_string()]).await;
    let cfg = PulsarSourceConfig {
        topic_pattern: Some(format!("persistent://public/default/{prefix}-.*")),
        topics: vec![],
        ..config(vec![])
    };
    let mut source = start(cfg.clone());
    // A topic that exists at subscription time: read from its start.
    let d = source.next("pattern, existing topic").await;
    assert_eq!((d.topic.as_str(), d.payload.as_slice()), (early.as_str(), b"early 0".as_slice()));
    d.ack();
    // A topic created afterwards: found by the next topic refresh (30 s), its messages not missed.
    produce(&pulsar, &late, &["late 0".to_string()]).await;
    let d = timeout(Duration::from_secs(45), source.rx.recv())
        .await
        .expect("the new topic was not picked up within 45 s")
        .expect("the source stopped");
    assert_eq!((d.topic.as_str(), d.payload.as_slice()), (late.as_str(), b"late 0".as_slice()));
    d.ack();
    backlog_drains(&late, &cfg.subscription).await;
    assert_eq!(source.restarts.load(Ordering::Relaxed), 0, "the watchdog took an undiscovered topic for a stuck one");
    source.stop().await;
    eprintln!("pattern_picks_up_topics_created_later: {:?}", t0.elapsed());
}
