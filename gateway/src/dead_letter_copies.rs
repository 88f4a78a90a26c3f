//! Copies of the dead letters on an MQTT topic (`[dead_letters.mqtt]`: `{topic_prefix}/{reason}`)
//! and a Kafka topic (`[dead_letters.kafka]`, keyed by reason), for operators who watch them with
//! the tools they already run: a subscriber, a consumer, an alert.
//!
//! The file stays the record: a message is acknowledged once its line is in the file, and its copy
//! goes out behind it. Why not acknowledge on the copy: MQTT acknowledges in order and Kafka
//! commits the lowest offset, so a dead-letter broker that is down would stall every source, and
//! one bad message must never slow the pipeline. So each copy target has a queue of
//! [`COPY_QUEUE`] copies; a copy is delivered at least once while the gateway runs (QoS 1 resent
//! after a reconnect; a failed Kafka delivery sent again after a back-off); past the queue it is
//! counted `dropped` and stays only in the file. At shutdown the copies get [`FLUSH`] to go out
//! ([`DeadLetterCopies::finish`]); a copy target that is down cannot hold the gateway's stop.
//! `smartcity_gateway_dead_letter_copies_total{target, outcome}` counts `published`, `dropped`
//! and (Kafka) `retried`.

use crate::config::DeadLetterConfig;
use crate::dead_letter::DeadLetterLine;
use futures::stream::{FuturesUnordered, StreamExt};
use prometheus::IntCounterVec;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rumqttc::{AsyncClient, Event, Outgoing, Packet, QoS};
use smartcity_connectors::kafka::{librdkafka_log_level, KafkaConfig, LogContext};
use smartcity_connectors::mqtt::MqttConfig;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Copies waiting per target while its broker is slow or away.
pub const COPY_QUEUE: usize = 10_000;
/// How long the copies still queued at shutdown get to go out.
pub const FLUSH: Duration = Duration::from_secs(5);
/// Largest Kafka copy: under the brokers' default `message.max.bytes` (1,000,000) with room for the
/// record's own fields. A larger dead letter is copied with its payload cut (`truncated`).
const KAFKA_COPY_BYTES: usize = 900_000;
/// Kafka copies awaiting their delivery report at once.
const KAFKA_IN_FLIGHT: usize = 1_000;

/// One dead letter as published: its reason (topic suffix or key) and its JSON object.
struct Copy {
    reason: String,
    json: Vec<u8>,
}

struct Target {
    name: &'static str,
    /// Largest JSON object this target takes.
    max_bytes: usize,
    queue: mpsc::Sender<Copy>,
    /// Copies are being dropped (one warning per episode, not one per copy).
    dropping: AtomicBool,
}

/// The copy targets of the dead letters; none when neither is configured.
#[derive(Default)]
pub struct DeadLetterCopies {
    targets: Vec<Target>,
    counter: Option<IntCounterVec>,
}

/// The publishing tasks, to let them finish at shutdown.
pub struct CopyTasks {
    tasks: JoinSet<()>,
    /// Cancelled once [`FLUSH`] is over: the tasks stop at once, saying what was left.
    stop: CancellationToken,
}

impl DeadLetterCopies {
    /// Starts one publishing task per configured target into `tasks`. Nothing waits on the network
    /// here: a broker that is down shows in the log and the metrics, not as a failed start.
    pub fn start(cfg: &DeadLetterConfig, counter: &IntCounterVec) -> Result<(Self, CopyTasks), String> {
        let (mut tasks, stop) = (JoinSet::new(), CancellationToken::new());
        let mut targets = Vec::new();
        if let Some(m) = cfg.mqtt.as_ref().filter(|m| m.enabled) {
            let (queue, copies) = mpsc::channel(COPY_QUEUE);
            let options = m.options().map_err(|e| format!("dead_letters.mqtt: {e}"))?;
            let (client, events) = AsyncClient::new(options, 64);
            tasks.spawn(publish_mqtt(m.clone(), client, events, copies, counter.clone(), stop.clone()));
            // The topic and the packet's own fields fit in a kilobyte.
            let max_bytes = m.max_packet_bytes.saturating_sub(1024);
            targets.push(Target { name: "mqtt", max_bytes, queue, dropping: AtomicBool::new(false) });
        }
        if let Some(k) = cfg.kafka.as_ref().filter(|k| k.enabled) {
            let (queue, copies) = mpsc::channel(COPY_QUEUE);
            let mut rd = k.client_config()?;
            rd.set_log_level(librdkafka_log_level());
            let producer = rd
                .create_with_context(LogContext::new(format!("dead-letter copies `{}`", k.name)))
                .map_err(|e| format!("dead_letters.kafka: Kafka producer: {e}"))?;
            tasks.spawn(produce_kafka(k.clone(), producer, copies, counter.clone(), stop.clone()));
            targets.push(Target {
                name: "kafka",
                max_bytes: KAFKA_COPY_BYTES,
                queue,
                dropping: AtomicBool::new(false),
            });
        }
        for t in &targets {
            for outcome in ["published", "dropped", "retried"] {
                counter.with_label_values(&[t.name, outcome]);
            }
        }
        Ok((DeadLetterCopies { targets, counter: Some(counter.clone()) }, CopyTasks { tasks, stop }))
    }

    /// Queues a copy of `line` on every target, without waiting.
    pub fn offer(&self, line: &DeadLetterLine) {
        for t in &self.targets {
            let copy = Copy { reason: line.reason.clone(), json: line.to_json_within(t.max_bytes) };
            if t.queue.try_send(copy).is_ok() {
                if t.dropping.swap(false, Ordering::Relaxed) {
                    tracing::info!("dead letters: the {} copy queue takes copies again", t.name);
                }
                continue;
            }
            if let Some(c) = &self.counter {
                c.with_label_values(&[t.name, "dropped"]).inc();
            }
            if !t.dropping.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "dead letters: the {} copy queue is full; until it drains, copies are dropped (counted; every dead letter stays in the file)",
                    t.name
                );
            }
        }
    }
}

impl CopyTasks {
    /// Once every [`DeadLetterCopies`] is dropped: waits up to [`FLUSH`] for the queued copies to
    /// go out, then stops the tasks.
    pub async fn finish(mut self) {
        let all_done = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(FLUSH, all_done).await.is_err() {
            self.stop.cancel();
            while self.tasks.join_next().await.is_some() {}
        }
    }
}

/// Publishes the copies at the target's QoS; its event loop reconnects (the session resends what
/// was in flight) and counts acknowledgements.
async fn publish_mqtt(
    cfg: MqttConfig,
    client: AsyncClient,
    mut events: rumqttc::EventLoop,
    mut copies: mpsc::Receiver<Copy>,
    counter: IntCounterVec,
    stop: CancellationToken,
) {
    let published = counter.with_label_values(&["mqtt", "published"]);
    let qos = cfg.qos();
    let done = Arc::new(AtomicU64::new(0));
    let pump = {
        let (done, url) = (done.clone(), cfg.url());
        tokio::spawn(async move {
            let mut delay = Duration::from_secs(1);
            let mut down = false;
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        if down {
                            tracing::info!("dead letters: copies to {url} flow again");
                        }
                        (down, delay) = (false, Duration::from_secs(1));
                    }
                    Ok(Event::Incoming(Packet::PubAck(_) | Packet::PubComp(_))) => {
                        published.inc();
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Event::Outgoing(Outgoing::Publish(_))) if qos == QoS::AtMostOnce => {
                        published.inc();
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        if !down {
                            tracing::warn!("dead letters: copies to {url} wait: {e}");
                        }
                        down = true;
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(30));
                    }
                }
            }
        })
    };
    let mut sent = 0u64;
    // `publish` waits while the broker is away (its request queue full): so does this loop.
    while let Some(copy) = tokio::select! { copy = copies.recv() => copy, _ = stop.cancelled() => None } {
        let topic = format!("{}/{}", cfg.topic_prefix, copy.reason);
        tokio::select! {
            published = client.publish(topic, qos, false, copy.json) => if published.is_err() { break },
            _ = stop.cancelled() => break,
        }
        sent += 1;
    }
    tokio::select! {
        _ = async {
            while done.load(Ordering::Relaxed) < sent {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        } => {}
        _ = stop.cancelled() => {}
    }
    let left = sent.saturating_sub(done.load(Ordering::Relaxed)) + copies.len() as u64;
    if left > 0 {
        tracing::warn!("dead letters: stopping with {left} MQTT copies not published (they are in the file)");
    }
    pump.abort();
}

/// Produces the copies, keyed by reason; a failed delivery is sent again after a back-off.
async fn produce_kafka(
    cfg: KafkaConfig,
    producer: FutureProducer<LogContext>,
    mut copies: mpsc::Receiver<Copy>,
    counter: IntCounterVec,
    stop: CancellationToken,
) {
    let topic = cfg.topic_template.clone();
    let (published, retried) =
        (counter.with_label_values(&["kafka", "published"]), counter.with_label_values(&["kafka", "retried"]));
    let send = |copy: Copy, delay: Duration| {
        let (producer, topic) = (producer.clone(), topic.clone());
        async move {
            tokio::time::sleep(delay).await;
            let record = FutureRecord::to(&topic).key(&copy.reason).payload(&copy.json);
            let result = producer.send(record, Timeout::Never).await.map(|_| ()).map_err(|(e, _)| e);
            (copy, result, delay)
        }
    };
    let mut in_flight = FuturesUnordered::new();
    let mut open = true;
    loop {
        tokio::select! {
            copy = copies.recv(), if open && in_flight.len() < KAFKA_IN_FLIGHT => match copy {
                Some(copy) => in_flight.push(send(copy, Duration::ZERO)),
                None => open = false,
            },
            Some((copy, result, delay)) = in_flight.next(), if !in_flight.is_empty() => match result {
                Ok(()) => published.inc(),
                Err(e) => {
                    if delay.is_zero() {
                        tracing::warn!("dead letters: a copy to Kafka topic `{topic}` failed ({e}); sending it again");
                    }
                    retried.inc();
                    let delay = (delay * 2).clamp(Duration::from_secs(1), Duration::from_secs(30));
                    in_flight.push(send(copy, delay));
                }
            },
            _ = stop.cancelled() => break,
        }
        if !open && in_flight.is_empty() {
            break;
        }
    }
    let left = in_flight.len() + copies.len();
    if left > 0 {
        tracing::warn!("dead letters: stopping with {left} Kafka copies not delivered (they are in the file)");
    }
    drop(in_flight);
    // Dropping a producer joins its threads: not on the async runtime's threads.
    tokio::task::spawn_blocking(move || drop(producer));
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use prometheus::Opts;
    use std::time::Instant;

    /// A broker that takes connections and never answers: the copies wait for it, the pipeline
    /// does not, and neither does the stop.
    #[tokio::test]
    async fn a_copy_target_that_never_answers_neither_blocks_nor_holds_the_stop() {
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut mqtt = MqttConfig::new("127.0.0.1", silent.local_addr().unwrap().port(), "copies-test");
        mqtt.topic_prefix = "dl".into();
        let cfg = DeadLetterConfig { mqtt: Some(mqtt), ..Default::default() };
        let counter = IntCounterVec::new(Opts::new("copies", "test"), &["target", "outcome"]).unwrap();
        let (copies, tasks) = DeadLetterCopies::start(&cfg, &counter).unwrap();
        let line = DeadLetterLine::new("mqtt", "city/sensors/x/y", "syntax", "not JSON", b"{", Utc::now());
        let offered = Instant::now();
        for _ in 0..COPY_QUEUE + 500 {
            copies.offer(&line);
        }
        assert!(offered.elapsed() < Duration::from_secs(2), "offering waited {:?}", offered.elapsed());
        let dropped = counter.with_label_values(&["mqtt", "dropped"]).get();
        assert!((400..=500).contains(&dropped), "past the queue, copies are dropped: {dropped}");
        assert_eq!(counter.with_label_values(&["mqtt", "published"]).get(), 0);
        drop(copies);
        let stopping = Instant::now();
        let finished = tokio::time::timeout(FLUSH + Duration::from_secs(5), tasks.finish()).await;
        assert!(finished.is_ok(), "a copy target that never answers held the stop");
        let took = stopping.elapsed();
        assert!(took >= FLUSH && took < FLUSH + Duration::from_secs(2), "the stop took {took:?}");
    }
}
