//! The two Kafka sources of the connectors (native `KafkaSource`, REST proxy `KafkaRestSource`)
//! against the real bench: Kafka on its PLAINTEXT listener and the REST proxy stand-in
//! (scripts/services/kafka-bridge). No skipping: an absent server fails the test.
//!
//! What is proved, for each source: the commit point honours out-of-order acknowledgements. A first
//! source acknowledges a prefix of every partition and then only even offsets; once stopped, a new
//! source in the same group receives exactly the messages from each partition's lowest unacknowledged
//! offset on (Kafka keeps one offset per partition, so acknowledged messages after that point come
//! again too): every unacknowledged message again, none before the commit point. And the REST
//! source, its consumer instance deleted behind its back, creates a new one and loses nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use smartcity_connectors::kafka::{KafkaSource, KafkaSourceConfig};
use smartcity_connectors::kafka_rest::{KafkaRestSource, KafkaRestSourceConfig};
use smartcity_connectors::metrics::{self, SourceMetrics};
use smartcity_connectors::source::Message;
use smartcity_connectors::source::SourceError;
use smartcity_testbench::{bench_var, unique};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const MESSAGES: usize = 500;
const PARTITIONS: i32 = 3;
/// Every partition's offsets below this are acknowledged by the first source, above it only even ones.
const PREFIX: i64 = 40;
const READ_TIMEOUT: Duration = Duration::from_secs(90);

/// Where each produced message went: seq -> (partition, offset).
type Placement = HashMap<usize, (i32, i64)>;
type Started = (mpsc::Receiver<Message>, CancellationToken, JoinHandle<Result<(), SourceError>>);

fn kafka_config() -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bench_var("BENCH_KAFKA_BOOTSTRAP"));
    c
}

async fn create_topic(topic: &str) {
    let admin: AdminClient<DefaultClientContext> = kafka_config().create().expect("admin client");
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(20)));
    let results = admin
        .create_topics(&[NewTopic::new(topic, PARTITIONS, TopicReplication::Fixed(1))], &options)
        .await
        .unwrap_or_else(|e| panic!("create topic {topic} on {}: {e}", bench_var("BENCH_KAFKA_BOOTSTRAP")));
    for r in results {
        r.unwrap_or_else(|(t, e)| panic!("create topic {t}: {e}"));
    }
}

/// Produces `seqs` with keys spread over the partitions; payload `seq-N`.
async fn produce(topic: &str, seqs: std::ops::Range<usize>) -> Placement {
    let producer: FutureProducer = kafka_config().create().expect("producer");
    let sends = seqs.map(|seq| {
        let producer = producer.clone();
        async move {
            let (key, payload) = (format!("sensor-{}", seq % 17), format!("seq-{seq}"));
            let record = FutureRecord::to(topic).key(&key).payload(&payload);
            let delivery = producer.send(record, Duration::from_secs(30)).await;
            let delivered = delivery.unwrap_or_else(|(e, _)| panic!("produce seq {seq} to {topic}: {e}"));
            (seq, (delivered.partition, delivered.offset))
        }
    });
    let placement: Placement = futures::future::join_all(sends).await.into_iter().collect();
    let used: BTreeSet<i32> = placement.values().map(|(p, _)| *p).collect();
    assert_eq!(used.len(), PARTITIONS as usize, "keys should cover every partition: {used:?}");
    placement
}

fn seq_of(m: &Message) -> usize {
    let text = std::str::from_utf8(&m.payload).unwrap_or_else(|_| panic!("payload not UTF-8: {m:?}"));
    text.strip_prefix("seq-").and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("unexpected payload `{text}`"))
}

/// Receives until `done(seen)` holds (or panics after [`READ_TIMEOUT`]); acknowledges a message when
/// `ack(seq)` says so and drops it unacknowledged otherwise. Returns every seq received, in order.
async fn receive(
    rx: &mut mpsc::Receiver<Message>,
    topic: &str,
    ack: impl Fn(usize) -> bool,
    done: impl Fn(&BTreeSet<usize>) -> bool,
) -> Vec<usize> {
    let mut order = Vec::new();
    let mut seen = BTreeSet::new();
    let read = async {
        while !done(&seen) {
            let m = rx.recv().await.expect("the source stopped early");
            assert_eq!(m.topic, topic);
            let seq = seq_of(&m);
            order.push(seq);
            seen.insert(seq);
            if ack(seq) {
                m.ack();
            }
        }
    };
    if tokio::time::timeout(READ_TIMEOUT, read).await.is_err() {
        panic!("only {} distinct messages of {topic} after {READ_TIMEOUT:?}", seen.len());
    }
    order
}

/// Stops a source and checks that it returns `Ok` within the ack wait (10 s) and some margin.
async fn stop(started: Started) {
    let (rx, token, task) = started;
    token.cancel();
    let result = tokio::time::timeout(Duration::from_secs(40), task).await.expect("source stops").expect("no panic");
    result.expect("source ends without error");
    drop(rx);
}

/// Nothing more arrives within `quiet`.
async fn assert_quiet(rx: &mut mpsc::Receiver<Message>, quiet: Duration) {
    if let Ok(Some(m)) = tokio::time::timeout(quiet, rx.recv()).await {
        panic!("unexpected extra message {} ({m:?})", seq_of(&m));
    }
}

/// The first run's acknowledgement rule: a prefix of each partition, then even offsets only.
fn first_run_acks(placement: &Placement, seq: usize) -> bool {
    let (_, offset) = placement[&seq];
    offset < PREFIX || offset % 2 == 0
}

/// What a new member of the group must read: everything from each partition's lowest
/// unacknowledged offset on. Also returns the unacknowledged seqs.
fn expected_after_restart(placement: &Placement) -> (BTreeSet<usize>, BTreeSet<usize>) {
    let mut commit_point: BTreeMap<i32, i64> = BTreeMap::new();
    let unacked: BTreeSet<usize> = placement.keys().copied().filter(|s| !first_run_acks(placement, *s)).collect();
    for s in &unacked {
        let (p, o) = placement[s];
        let point = commit_point.entry(p).or_insert(o);
        *point = (*point).min(o);
    }
    let expected = placement
        .iter()
        .filter(|(_, (p, o))| commit_point.get(p).is_some_and(|point| o >= point))
        .map(|(s, _)| *s)
        .collect();
    (expected, unacked)
}

/// The at-least-once scenario for one source: `start(instance_or_member)` starts a source of the
/// same group on `topic` each time it is called.
async fn commit_point_is_honoured(topic: &str, placement: &Placement, start: impl Fn() -> Started) {
    let all: BTreeSet<usize> = (0..MESSAGES).collect();
    let (expected, unacked) = expected_after_restart(placement);
    assert!(!unacked.is_empty() && expected.len() < MESSAGES, "the scenario must leave a commit point inside");

    let mut first = start();
    let got = receive(&mut first.0, topic, |s| first_run_acks(placement, s), |seen| *seen == all).await;
    assert_eq!(got.len(), MESSAGES, "first run: each message once");
    stop(first).await;

    let mut second = start();
    let got = receive(&mut second.0, topic, |_| true, |seen| seen.len() >= expected.len()).await;
    assert_quiet(&mut second.0, Duration::from_secs(3)).await;
    let set: BTreeSet<usize> = got.iter().copied().collect();
    assert!(unacked.is_subset(&set), "unacknowledged messages not read again: {:?}", unacked.difference(&set));
    assert_eq!(set, expected, "second run must start exactly at each partition's commit point");
    assert_eq!(got.len(), set.len(), "no duplicates within the second run");
    stop(second).await;
}

fn source_metrics() -> SourceMetrics {
    SourceMetrics::register(&metrics::registry("test"), "test")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_source_commits_only_acknowledged_offsets() {
    let topic = unique("src-kafka");
    create_topic(&topic).await;
    let placement = produce(&topic, 0..MESSAGES).await;
    let group = unique("src-kafka-group");
    let registry = metrics::registry("test");
    let lag = metrics::gauge(&registry, "lag", "consumer lag");
    let start = || -> Started {
        let cfg = KafkaSourceConfig {
            name: "kafka-test".into(),
            bootstrap_servers: bench_var("BENCH_KAFKA_BOOTSTRAP"),
            topic_template: topic.clone(),
            group_id: group.clone(),
            commit_interval_ms: 200,
            ..Default::default()
        };
        let source = KafkaSource::new(cfg, source_metrics()).expect("valid source").with_lag_gauge(lag.clone());
        let (tx, rx) = mpsc::channel(64);
        let token = CancellationToken::new();
        (rx, token.clone(), tokio::spawn(source.run(tx, token)))
    };
    commit_point_is_honoured(&topic, &placement, &start).await;

    // Lag, from librdkafka's statistics (every 5 s, while the consumer polls): messages between the
    // committed offsets and the partition ends, summed. New messages held unacknowledged count; once
    // they are acknowledged and committed, none.
    const MORE: usize = 30;
    produce(&topic, MESSAGES..MESSAGES + MORE).await;
    lag.set(-1);
    let mut third = start();
    let mut held = Vec::new();
    let wait_for_lag = |want: i64| {
        let lag = lag.clone();
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            while lag.get() != want {
                assert!(tokio::time::Instant::now() < deadline, "lag {} never became {want}", lag.get());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    while held.len() < MORE {
        let m = tokio::time::timeout(READ_TIMEOUT, third.0.recv()).await.expect("new messages").expect("source runs");
        assert!(seq_of(&m) >= MESSAGES, "only the new messages are left to read");
        held.push(m);
    }
    wait_for_lag(MORE as i64).await;
    held.into_iter().for_each(Message::ack);
    wait_for_lag(0).await;
    stop(third).await;
}

fn rest_source(topic: &str, group: &str, instance: &str) -> KafkaRestSource {
    let cfg = KafkaRestSourceConfig {
        name: "kafka-rest-test".into(),
        url: bench_var("BENCH_KAFKA_REST_URL"),
        topic_template: topic.into(),
        group: group.into(),
        instance: instance.into(),
        commit_interval_ms: 200,
        ..Default::default()
    };
    KafkaRestSource::new(cfg, source_metrics()).expect("valid source")
}

fn spawn(source: KafkaRestSource) -> Started {
    let (tx, rx) = mpsc::channel(64);
    let token = CancellationToken::new();
    (rx, token.clone(), tokio::spawn(source.run(tx, token)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_rest_source_commits_only_acknowledged_offsets() {
    let topic = unique("src-rest");
    create_topic(&topic).await;
    let placement = produce(&topic, 0..MESSAGES).await;
    let group = unique("src-rest-group");
    commit_point_is_honoured(&topic, &placement, || spawn(rest_source(&topic, &group, "gw-test"))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_rest_source_recreates_a_deleted_instance_without_loss() {
    let topic = unique("src-rest-lost");
    create_topic(&topic).await;
    let half = MESSAGES / 2;
    produce(&topic, 0..half).await;
    let (group, instance) = (unique("src-rest-lost-group"), "gw-lost".to_string());
    let mut started = spawn(rest_source(&topic, &group, &instance));
    let mut seen: BTreeSet<usize> =
        receive(&mut started.0, &topic, |_| true, |seen| seen.len() >= half).await.into_iter().collect();

    // The proxy forgets the instance (as after its restart): the source must notice and start over.
    let base = bench_var("BENCH_KAFKA_REST_URL");
    let url = format!("{base}/consumers/{group}/instances/{instance}");
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("http client");
    let deleted = http.delete(&url).send().await.expect("DELETE the instance");
    assert_eq!(deleted.status().as_u16(), 204, "DELETE {url}: {:?}", deleted.text().await);

    produce(&topic, half..MESSAGES).await;
    let all: BTreeSet<usize> = (0..MESSAGES).collect();
    let missing: BTreeSet<usize> = all.difference(&seen).copied().collect();
    let got = receive(&mut started.0, &topic, |_| true, |s| missing.is_subset(s)).await;
    seen.extend(got);
    assert_eq!(seen, all, "every message read, before or after the instance was recreated");

    let subscription = http
        .get(format!("{url}/subscription"))
        .header("Accept", "application/vnd.kafka.v2+json")
        .send()
        .await
        .expect("GET subscription");
    let status = subscription.status();
    let body = subscription.text().await.unwrap_or_default();
    assert!(status.is_success() && body.contains(&topic), "a new instance subscribed to {topic}: {status} {body}");
    stop(started).await;
    let after = http.get(format!("{url}/subscription")).send().await.expect("GET subscription after stop");
    assert_eq!(after.status().as_u16(), 404, "the instance is deleted on stop");
}
