//! Reads readings from Kafka as a consumer group member and hands each message on with an
//! acknowledgement; offsets are committed only for acknowledged messages.
//!
//! Guarantee: at least once. librdkafka neither commits nor stores offsets by itself
//! (`enable.auto.commit` and `enable.auto.offset.store` are off): every `commit_interval_ms` the
//! source commits, per partition, the lowest offset still unacknowledged ([`Commits`]), so a crash
//! or a rebalance re-reads what was not written yet (and possibly a little more), never skips it.
//!
//! Rebalances: before partitions are revoked, what is ready is committed synchronously and the
//! partitions are forgotten: late acks of their messages are ignored, and their new owner re-reads
//! from the committed offsets (duplicates, never loss).
//!
//! Back-pressure: a message is taken from librdkafka only once the `out` queue has room for it;
//! while it is full, the consumer is not polled but commits go on. (Waiting longer than librdkafka's
//! `max.poll.interval.ms`, 5 minutes, makes it leave the group; it joins again on the next poll.)
//!
//! Shutdown: reading stops, acks are awaited for up to [`ACK_WAIT`], the commit points are committed
//! synchronously and the consumer leaves its group. Messages never acknowledged are read again by
//! the next member.

use super::commits::{Commits, Point};
use super::log::{librdkafka_log_level, lock, Limited};
use super::source_config::KafkaSourceConfig;
use super::tidy;
use crate::metrics::SourceMetrics;
use crate::source::{Message, SourceError};
use bytes::Bytes;
use prometheus::IntGauge;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Message as _, Offset, TopicPartitionList};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

/// Asks the cluster for its metadata as the source's consumer would (reachable, TLS and SASL
/// accepted) and says which of its topics exist yet. Joins no group, reads nothing.
pub async fn check(cfg: &KafkaSourceConfig) -> Result<String, crate::sink::Failure> {
    let client_config = cfg.client_config().map_err(|e| crate::sink::Failure::new(crate::sink::classify(&e), e))?;
    let (address, wanted) = (cfg.address(), cfg.topics());
    let answer = tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = client_config.create().map_err(|e| super::describe(&e))?;
        let metadata = consumer.fetch_metadata(None, Duration::from_secs(10)).map_err(|e| super::describe(&e))?;
        let present: Vec<&str> = metadata.topics().iter().map(|t| t.name()).collect();
        let found = wanted.iter().filter(|t| present.contains(&t.as_str())).count();
        Ok(format!(
            "connected to {address} ({} brokers), {found} of the {} topics exist (the others are read once created)",
            metadata.brokers().len(),
            wanted.len()
        ))
    })
    .await;
    match answer {
        Ok(Ok(text)) => Ok(text),
        Ok(Err((reason, message))) => Err(crate::sink::Failure::new(reason, format!("{}: {message}", cfg.address()))),
        Err(e) => Err(crate::sink::Failure::new(crate::sink::Reason::Server, e.to_string())),
    }
}

/// How long a stopping source waits for the acknowledgements of the messages it handed on.
pub const ACK_WAIT: Duration = Duration::from_secs(10);

type Shared = Arc<Mutex<Commits>>;

/// `points` as the list librdkafka commits.
fn partition_list(points: &[Point]) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::with_capacity(points.len());
    for (topic, partition, offset) in points {
        // Fails only for an invalid offset, which a commit point never is.
        let _ = tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset));
    }
    tpl
}

/// The commit points in a list librdkafka reported (a failed commit).
fn points_of(tpl: &TopicPartitionList) -> Vec<Point> {
    tpl.elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some((e.topic().to_string(), e.partition(), o)),
            _ => None,
        })
        .collect()
}

/// The consumer lag in librdkafka's statistics: messages between the committed offset and the end
/// of each partition this member reads (partitions without a known lag count as 0).
pub fn total_lag(stats: &Statistics) -> i64 {
    stats
        .topics
        .values()
        .flat_map(|t| t.partitions.iter())
        .filter(|(id, p)| **id >= 0 && p.consumer_lag > 0)
        .map(|(_, p)| p.consumer_lag)
        .sum()
}

/// The librdkafka callbacks of one source.
struct Context {
    commits: Shared,
    connected: IntGauge,
    lag: Option<IntGauge>,
    log: Limited,
}

impl Context {
    /// Commits `points` and reports a failure; the caller holds no lock (librdkafka may call
    /// `commit_callback` meanwhile).
    fn commit(&self, consumer: &impl Consumer<Self>, points: Vec<Point>, mode: CommitMode) {
        if points.is_empty() {
            return;
        }
        if let Err(e) = consumer.commit(&partition_list(&points), mode) {
            self.log.emit(tracing::Level::WARN, &format!("offset commit failed (will retry): {e}"));
            lock(&self.commits).failed(points);
        }
    }
}

impl ClientContext for Context {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.log.librdkafka(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let raw = if reason.is_empty() { error.to_string() } else { reason.to_string() };
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
            self.connected.set(0);
        }
        // A topic the producers have not created yet is normal at startup: it is read once it exists.
        let level = if error.rdkafka_error_code() == Some(RDKafkaErrorCode::UnknownTopicOrPartition)
            || raw.contains("Unknown topic or partition")
        {
            tracing::Level::INFO
        } else {
            tracing::Level::ERROR
        };
        self.log.emit(level, &tidy(&raw));
    }

    fn stats(&self, stats: Statistics) {
        if let Some(gauge) = &self.lag {
            gauge.set(total_lag(&stats));
        }
    }
}

impl ConsumerContext for Context {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(revoked) => {
                // Still the owner: commit what is done, synchronously, before the next owner reads.
                let due = lock(&self.commits).due();
                self.commit(consumer, due, CommitMode::Sync);
                let mut commits = lock(&self.commits);
                for e in revoked.elements() {
                    commits.forget(e.topic(), e.partition());
                }
                drop(commits);
                self.log.emit(tracing::Level::INFO, &format!("{} partition(s) revoked", revoked.count()));
            }
            Rebalance::Assign(assigned) => {
                self.connected.set(1);
                self.log.emit(tracing::Level::INFO, &format!("{} partition(s) assigned", assigned.count()));
            }
            Rebalance::Error(e) => self.log.emit(tracing::Level::ERROR, &format!("rebalance failed: {e}")),
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        match result {
            // Nothing to commit: not a failure.
            Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => {
                self.log.emit(tracing::Level::WARN, &format!("offset commit failed (will retry): {e}"));
                lock(&self.commits).failed(points_of(offsets));
            }
        }
    }
}

/// A message taken from librdkafka, copied out of its buffer.
struct Record {
    topic: String,
    partition: i32,
    offset: i64,
    payload: Bytes,
}

/// A consumer group member over the topics of the six kinds.
pub struct KafkaSource {
    cfg: KafkaSourceConfig,
    rd: ClientConfig,
    metrics: SourceMetrics,
    lag: Option<IntGauge>,
}

impl KafkaSource {
    /// Checks the settings and reads the password; connects later, in [`KafkaSource::run`].
    pub fn new(cfg: KafkaSourceConfig, metrics: SourceMetrics) -> Result<Self, SourceError> {
        let problems = cfg.problems();
        if !problems.is_empty() {
            let list: Vec<String> = problems.iter().map(|(f, m)| format!("{f}: {m}")).collect();
            return Err(SourceError::Settings(format!("kafka source `{}`: {}", cfg.name, list.join("; "))));
        }
        let mut rd =
            cfg.client_config().map_err(|e| SourceError::Settings(format!("kafka source `{}`: {e}", cfg.name)))?;
        rd.set_log_level(librdkafka_log_level());
        Ok(KafkaSource { cfg, rd, metrics, lag: None })
    }

    /// Reports the consumer lag (summed over this member's partitions) to `gauge`, every 5 s.
    pub fn with_lag_gauge(mut self, gauge: IntGauge) -> Self {
        self.lag = Some(gauge);
        self
    }

    /// Runs until `stop` (or until `out` is closed). librdkafka reconnects by itself; the error is
    /// `Client` only when the consumer cannot be created or subscribed at all.
    pub async fn run(self, out: mpsc::Sender<Message>, stop: CancellationToken) -> Result<(), SourceError> {
        let name: Arc<str> = self.cfg.name.as_str().into();
        let who = format!("kafka source `{name}`");
        let commits: Shared = Arc::default();
        let connected = self.metrics.connected.with_label_values(&[&*name]);
        let received = self.metrics.received.with_label_values(&[&*name]);
        let context = Context {
            commits: commits.clone(),
            connected: connected.clone(),
            lag: self.lag.clone(),
            log: Limited::new(who.clone()),
        };
        let consumer: StreamConsumer<Context> = self
            .rd
            .create_with_context(context)
            .map_err(|e| SourceError::Client(format!("{who}: cannot create the consumer: {e}")))?;
        let consumer = Arc::new(consumer);
        let topics = self.cfg.topics();
        let topic_refs: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topic_refs)
            .map_err(|e| SourceError::Client(format!("{who}: cannot subscribe to {}: {e}", topics.join(", "))))?;
        tracing::info!(
            "{who}: group `{}` reading {} from {}",
            self.cfg.group_id,
            topics.join(", "),
            self.cfg.address()
        );

        let mut tick = tokio::time::interval(Duration::from_millis(self.cfg.commit_interval_ms));
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = stop.cancelled() => break,
                _ = tick.tick() => {
                    let due = lock(&commits).due();
                    consumer.context().commit(&*consumer, due, CommitMode::Async);
                }
                next = next(&consumer, &out) => match next {
                    None => break, // the consumer of `out` is gone
                    Some((permit, Ok(r))) => {
                        received.inc();
                        connected.set(1);
                        lock(&commits).received(&r.topic, r.partition, r.offset);
                        let (shared, topic, partition, offset) = (commits.clone(), r.topic.clone(), r.partition, r.offset);
                        let ack = Box::new(move || lock(&shared).acked(&topic, partition, offset));
                        permit.send(Message::new(name.clone(), r.topic, r.payload, ack));
                    }
                    Some((_, Err(e))) => {
                        let level = if e.rdkafka_error_code() == Some(RDKafkaErrorCode::UnknownTopicOrPartition) {
                            tracing::Level::INFO
                        } else {
                            tracing::Level::WARN
                        };
                        consumer.context().log.emit(level, &tidy(&e.to_string()))
                    }
                },
            }
        }

        wait_for_acks(&commits, &who).await;
        let points = lock(&commits).all();
        // A synchronous commit and the group leave (consumer close) block: not on the runtime's threads.
        let closing = tokio::task::spawn_blocking(move || {
            consumer.context().commit(&*consumer, points, CommitMode::Sync);
            drop(consumer);
        });
        if let Err(e) = closing.await {
            tracing::warn!("{who}: closing the consumer failed: {e}");
        }
        connected.set(0);
        tracing::info!("{who}: stopped");
        Ok(())
    }
}

/// The next message, once `out` has room for it; `None` when `out` is closed. Cancel-safe: a
/// message is taken from librdkafka only in the last step, which cannot be interrupted.
async fn next<'a>(
    consumer: &StreamConsumer<Context>,
    out: &'a mpsc::Sender<Message>,
) -> Option<(mpsc::Permit<'a, Message>, KafkaResult<Record>)> {
    let permit = out.reserve().await.ok()?;
    let record = consumer.recv().await.map(|m| Record {
        topic: m.topic().to_string(),
        partition: m.partition(),
        offset: m.offset(),
        payload: Bytes::copy_from_slice(m.payload().unwrap_or_default()),
    });
    Some((permit, record))
}

/// Waits until every message handed on is acknowledged, for at most [`ACK_WAIT`].
pub(crate) async fn wait_for_acks(commits: &Mutex<Commits>, who: &str) {
    let deadline = Instant::now() + ACK_WAIT;
    loop {
        let pending = lock(commits).pending();
        if pending == 0 {
            return;
        }
        if Instant::now() >= deadline {
            tracing::warn!("{who}: {pending} message(s) not acknowledged after {ACK_WAIT:?}: they will be read again");
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_sums_known_partitions_only() {
        use rdkafka::statistics::{Partition, Topic};
        let part = |lag: i64| Partition { consumer_lag: lag, ..Default::default() };
        let mut topic = Topic::default();
        topic.partitions.insert(0, part(7));
        topic.partitions.insert(1, part(-1));
        topic.partitions.insert(-1, part(5));
        let mut stats = Statistics::default();
        stats.topics.insert("t".into(), topic);
        stats.topics.insert("u".into(), Topic { partitions: [(0, part(3))].into(), ..Default::default() });
        assert_eq!(total_lag(&stats), 10, "unknown lag (-1) and the internal partition -1 are left out");
    }

    #[test]
    fn commit_lists_round_trip() {
        let points = vec![("a".to_string(), 0, 5), ("b".to_string(), 2, 9)];
        assert_eq!(points_of(&partition_list(&points)), points);
    }

    #[test]
    fn invalid_settings_are_refused_before_any_network() {
        let metrics = SourceMetrics::register(&crate::metrics::registry("t"), "t");
        let cfg = KafkaSourceConfig { group_id: "".into(), ..Default::default() };
        let e = KafkaSource::new(cfg, metrics).err().expect("refused");
        assert!(matches!(&e, SourceError::Settings(m) if m.starts_with("kafka source `kafka`: group_id")), "{e}");
    }

    #[tokio::test]
    async fn unreachable_broker_is_retried_until_stop() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let cfg = KafkaSourceConfig {
            name: "unreachable".into(),
            bootstrap_servers: format!("127.0.0.1:{port}"),
            ..Default::default()
        };
        let metrics = SourceMetrics::register(&crate::metrics::registry("t"), "t");
        let source = KafkaSource::new(cfg, metrics.clone()).unwrap();
        let (tx, _rx) = mpsc::channel(4);
        let stop = CancellationToken::new();
        let task = tokio::spawn(source.run(tx, stop.clone()));
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(!task.is_finished(), "gave up instead of retrying");
        stop.cancel();
        let result = tokio::time::timeout(Duration::from_secs(15), task).await.expect("stops promptly").unwrap();
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(metrics.connected.with_label_values(&["unreachable"]).get(), 0);
    }
}
