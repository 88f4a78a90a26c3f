//! Publishes readings to Kafka through librdkafka: every reading is enqueued without waiting, then
//! the sink waits for the delivery report of each. A reading counts as published only when the
//! broker acknowledged it (`acks`); librdkafka retries and reconnects by itself for up to
//! `message_timeout_ms`, after which the reading goes back to the fan-out to be tried again.
//!
//! librdkafka reports client-level errors (broker down, SASL or TLS refused) through callbacks, not
//! through the writes: [`Context`] turns them into log lines naming the sink, error metrics, and the
//! cause `check()` reports.

use super::config::KafkaConfig;
use super::log::{librdkafka_log_level, lock, Limited};
use super::{describe, is_permanent, reason_of, tidy};
use crate::sink::{expand_topic, Failure, Outcome, Reason, Sink, SinkTelemetry};
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;
use smartcity_model::codec::json;
use smartcity_model::{Reading, SensorKind};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const METADATA_TIMEOUT: Duration = Duration::from_secs(10);
const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// The last client-level error librdkafka reported, sorted: the real cause behind timeouts.
type LastError = Arc<Mutex<Option<(Reason, String)>>>;

/// The librdkafka callbacks of one sink.
struct Context {
    telemetry: SinkTelemetry,
    last_error: LastError,
    log: Limited,
}

impl ClientContext for Context {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.log.librdkafka(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let raw = if reason.is_empty() { error.to_string() } else { reason.to_string() };
        // Sorted on librdkafka's own text: once tidied, the broker (`sasl_ssl://...`) sits at the end
        // where `classify` would take it for a TLS problem.
        let code = error.rdkafka_error_code();
        let why = reason_of(code, &raw);
        let mut message = tidy(&raw);
        if why == Reason::Auth {
            // What the operator changes; the readings wait meanwhile (docs/failures.md).
            message.push_str(
                " (the brokers refused our login or a permission: check username, password_file and the ACLs)",
            );
        }
        self.telemetry.error(why);
        self.telemetry.set_down(why);
        self.log.emit(tracing::Level::ERROR, &message);
        let mut last = lock(&self.last_error);
        // "1/1 brokers are down" follows every failed connection: it would hide the cause before it.
        if code != Some(RDKafkaErrorCode::AllBrokersDown) || last.is_none() {
            *last = Some((why, message));
        }
    }
}

/// A producer whose callbacks report to `telemetry` and `last_error`. No network.
fn producer(
    rd: &ClientConfig,
    telemetry: &SinkTelemetry,
    last_error: &LastError,
) -> Result<FutureProducer<Context>, String> {
    let context = Context {
        telemetry: telemetry.clone(),
        last_error: last_error.clone(),
        log: Limited::new(format!("sink `{}`", telemetry.name)),
    };
    rd.create_with_context(context).map_err(|e| format!("sink `{}`: Kafka producer: {e}", telemetry.name))
}

/// A Kafka producer for one cluster.
pub struct KafkaSink {
    producer: FutureProducer<Context>,
    /// Topic of each kind, in the order of `SensorKind::ALL`.
    topics: [String; 6],
    last_error: LastError,
    /// What the producer was made from, to make a new one after a fatal error.
    rd_config: ClientConfig,
    telemetry: SinkTelemetry,
}

impl KafkaSink {
    /// Creates the producer. Nothing here waits on the network: librdkafka connects in its own
    /// threads, and a broker that is down only shows in `send` and `check`.
    pub fn new(cfg: &KafkaConfig, telemetry: SinkTelemetry) -> Result<Self, String> {
        let problems = cfg.problems();
        if !problems.is_empty() {
            let list: Vec<String> = problems.iter().map(|(f, m)| format!("{f}: {m}")).collect();
            return Err(format!("sink `{}`: {}", cfg.name, list.join("; ")));
        }
        let mut rd_config = cfg.client_config()?;
        rd_config.set_log_level(librdkafka_log_level());
        let last_error = LastError::default();
        let producer = producer(&rd_config, &telemetry, &last_error)?;
        let topics = SensorKind::ALL.map(|k| expand_topic(&cfg.topic_template, k.as_str()));
        Ok(KafkaSink { producer, topics, last_error, rd_config, telemetry })
    }

    /// An idempotent producer stops for good after some broker answers (a fatal error: every
    /// write then fails). Replaces it, so that the readings handed back are written by a new one.
    fn recover_from_fatal_error(&mut self) {
        let Some((code, why)) = self.producer.client().fatal_error() else { return };
        let name = &self.telemetry.name;
        tracing::error!("sink `{name}`: fatal producer error ({code}: {why}); starting a new producer");
        match producer(&self.rd_config, &self.telemetry, &self.last_error) {
            Ok(new) => {
                let old = std::mem::replace(&mut self.producer, new);
                // Dropping a producer joins its threads: not on the async runtime's threads.
                tokio::task::spawn_blocking(move || drop(old));
            }
            Err(e) => tracing::error!("{e}"),
        }
    }

    fn topic(&self, kind: SensorKind) -> &str {
        &self.topics[kind as usize]
    }

    /// The failure of a delivery that is to be retried. A timeout says only that librdkafka gave up:
    /// the last client error (refused connection, wrong password) is its cause, and its reason.
    fn retry_failure(&self, e: &KafkaError, topic: &str) -> Failure {
        let (reason, message) = describe(e);
        let timed_out = e.rdkafka_error_code() == Some(RDKafkaErrorCode::MessageTimedOut);
        match lock(&self.last_error).as_ref() {
            Some((why, cause)) if timed_out => {
                Failure::new(*why, format!("topic `{topic}`: {message} (last client error: {cause})"))
            }
            _ => Failure::new(reason, format!("topic `{topic}`: {message}")),
        }
    }
}

/// The delivery of one reading: `None` when the broker acknowledged it.
type Delivered = (usize, Option<KafkaError>);

async fn delivered(i: usize, future: DeliveryFuture) -> Delivered {
    match future.await {
        Ok(Ok(_)) => (i, None),
        Ok(Err((e, _message))) => (i, Some(e)),
        // The producer went away before reporting: the reading's fate is unknown, so send it again.
        Err(_canceled) => (i, Some(KafkaError::Canceled)),
    }
}

impl Sink for KafkaSink {
    async fn send(&mut self, batch: &[Reading]) -> Outcome {
        let mut pending: VecDeque<(usize, DeliveryFuture)> = VecDeque::with_capacity(batch.len());
        let mut results: Vec<Delivered> = Vec::with_capacity(batch.len());
        for (i, reading) in batch.iter().enumerate() {
            let payload = json::encode(reading);
            let topic = self.topic(reading.kind());
            loop {
                let record = FutureRecord::to(topic)
                    .key(reading.sensor_id.as_str())
                    .payload(payload.as_slice())
                    .timestamp(reading.observed_at.timestamp_millis());
                match self.producer.send_result(record) {
                    Ok(future) => {
                        pending.push_back((i, future));
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                        // librdkafka's queue is full: make room by waiting for the oldest delivery.
                        match pending.pop_front() {
                            Some((j, future)) => results.push(delivered(j, future).await),
                            None => tokio::time::sleep(Duration::from_millis(5)).await,
                        }
                    }
                    Err((e, _)) => {
                        results.push((i, Some(e)));
                        break;
                    }
                }
            }
        }
        results.extend(futures::future::join_all(pending.into_iter().map(|(i, f)| delivered(i, f))).await);
        results.sort_unstable_by_key(|(i, _)| *i);

        let mut outcome = Outcome::ok();
        for (i, error) in results {
            let Some(e) = error else { continue };
            let permanent = e.rdkafka_error_code().is_some_and(is_permanent);
            if permanent {
                outcome.rejected.push(i);
            } else {
                outcome.retry.push(i);
            }
            if outcome.failure.is_none() {
                let topic = self.topic(batch[i].kind());
                outcome.failure = Some(if permanent {
                    Failure::new(Reason::Rejected, format!("topic `{topic}`: {e}"))
                } else {
                    self.retry_failure(&e, topic)
                });
            }
        }
        if outcome.failure.is_none() {
            // Everything went through: whatever librdkafka complained about earlier is over.
            *lock(&self.last_error) = None;
        } else {
            self.recover_from_fatal_error();
        }
        outcome
    }

    async fn check(&mut self) -> Result<String, Failure> {
        let producer = self.producer.clone();
        // fetch_metadata blocks the calling thread until the answer or the timeout.
        let metadata = tokio::task::spawn_blocking(move || {
            let m = producer.client().fetch_metadata(None, METADATA_TIMEOUT)?;
            let topics: HashMap<String, Option<String>> = m
                .topics()
                .iter()
                .map(|t| (t.name().to_string(), t.error().map(|e| RDKafkaErrorCode::from(e).to_string())))
                .collect();
            Ok::<_, KafkaError>((m.brokers().len(), topics))
        })
        .await;
        let (brokers, present) = match metadata {
            Ok(Ok(found)) => found,
            Ok(Err(e)) => {
                let (reason, message) = describe(&e);
                // The metadata error is a bare timeout; the callback's last error names the cause.
                return Err(match lock(&self.last_error).clone() {
                    Some((why, cause)) => Failure::new(why, format!("{cause} ({message})")),
                    None => Failure::new(reason, message),
                });
            }
            Err(e) => return Err(Failure::new(Reason::Server, format!("metadata request did not finish: {e}"))),
        };
        *lock(&self.last_error) = None;
        let mut seen = Vec::new();
        let mut report = Vec::new();
        for topic in &self.topics {
            if seen.contains(&topic) {
                continue;
            }
            seen.push(topic);
            report.push(match present.get(topic) {
                Some(None) => format!("{topic} ok"),
                Some(Some(error)) => format!("{topic} error: {error}"),
                None => format!("{topic} absent (created on first write if the broker auto-creates topics)"),
            });
        }
        Ok(format!("{brokers} broker(s); topics: {}", report.join(", ")))
    }

    async fn close(self) {
        let producer = self.producer;
        // flush blocks the calling thread while librdkafka delivers what it still holds.
        let flushed = tokio::task::spawn_blocking(move || producer.flush(FLUSH_TIMEOUT)).await;
        if let Ok(Err(e)) = flushed {
            tracing::warn!("Kafka producer closed with messages undelivered: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_callbacks_are_counted_sorted_and_kept() {
        let metrics = crate::metrics::SinkMetrics::register(&prometheus::Registry::new(), "test");
        let telemetry = SinkTelemetry::new(&metrics, "kafka-sasl");
        let context = Context {
            telemetry: telemetry.clone(),
            last_error: LastError::default(),
            log: Limited::new("sink `kafka-sasl`".into()),
        };
        let reason = "sasl_ssl://127.0.0.1:9093/bootstrap: SASL authentication error: Authentication failed";
        context.error(KafkaError::Global(RDKafkaErrorCode::BrokerTransportFailure), reason);
        context.error(KafkaError::Global(RDKafkaErrorCode::BrokerTransportFailure), reason);
        assert_eq!(telemetry.errors_total(), 2);
        assert!(!telemetry.is_up());
        let (why, message) = lock(&context.last_error).clone().unwrap();
        assert_eq!(why, Reason::Auth);
        assert!(message.starts_with("SASL authentication error"), "{message}");
        context.error(KafkaError::Global(RDKafkaErrorCode::AllBrokersDown), "1/1 brokers are down");
        assert_eq!(lock(&context.last_error).as_ref().map(|(why, _)| *why), Some(Reason::Auth), "cause kept");
    }

    #[tokio::test]
    async fn creating_the_producer_needs_no_broker() {
        let metrics = crate::metrics::SinkMetrics::register(&prometheus::Registry::new(), "test");
        let telemetry = SinkTelemetry::new(&metrics, "kafka-test");
        let cfg = KafkaConfig { bootstrap_servers: "127.0.0.1:1".into(), ..Default::default() };
        let sink = KafkaSink::new(&cfg, telemetry).expect("producer");
        assert_eq!(sink.topic(SensorKind::AirQuality), "air-quality");
        let bad = KafkaConfig { acks: "2".into(), ..Default::default() };
        let t = SinkTelemetry::new(&metrics, "kafka-bad");
        assert!(KafkaSink::new(&bad, t).err().unwrap_or_default().contains("acks"));
    }
}
