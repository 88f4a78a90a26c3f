//! Publishes readings as JSON to one Pulsar topic per kind.
//!
//! Guarantee: a `send` hands every reading of the batch to the producer without waiting for each
//! receipt (`send_non_blocking`, batched by the producer), then awaits every receipt: a reading
//! counts as published only on its receipt; the ones without a receipt go back to the fan-out to
//! be sent again (at least once). After a failure the client is rebuilt on the next write, which
//! also covers a broker restart.

use super::client::{self, failure, Client};
use super::config::PulsarConfig;
use crate::sink::{classify, expand_topic, Failure, Outcome, Reason, Sink, SinkTelemetry};
use ::pulsar::producer::{Message, MultiTopicProducer, ProducerOptions};
use ::pulsar::TokioExecutor;
use futures::future::join_all;
use smartcity_model::{codec::json, Reading, SensorKind};
use std::time::Duration;
use tokio::time::timeout;

/// A Pulsar producer over the per-kind topics, connected on first use.
pub struct PulsarSink {
    cfg: PulsarConfig,
    token: Option<String>,
    telemetry: SinkTelemetry,
    connection: Option<(Client, MultiTopicProducer<TokioExecutor>)>,
}

impl PulsarSink {
    /// Reads the token; connects later, on the first write.
    pub fn new(cfg: &PulsarConfig, telemetry: SinkTelemetry) -> Result<Self, String> {
        let token = crate::secret::read(&cfg.token_env, cfg.token_file.as_deref())?;
        Ok(PulsarSink { cfg: cfg.clone(), token, telemetry, connection: None })
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.cfg.timeout_seconds)
    }

    async fn client(&self) -> Result<Client, Failure> {
        client::connect(&self.cfg.url, self.token.as_deref(), self.cfg.tls_ca_file.as_deref(), self.timeout()).await
    }

    async fn producer(&mut self) -> Result<&mut MultiTopicProducer<TokioExecutor>, Failure> {
        if self.connection.is_none() {
            let client = self.client().await?;
            let producer = client
                .producer()
                .with_options(ProducerOptions {
                    batch_size: Some(self.cfg.batch_size).filter(|n| *n > 1),
                    batch_timeout: (self.cfg.batch_size > 1)
                        .then(|| Duration::from_millis(self.cfg.batch_timeout_ms.max(1))),
                    ..Default::default()
                })
                .build_multi_topic();
            self.telemetry.set_up(true);
            tracing::info!("sink `{}`: connected to {}", self.telemetry.name, self.cfg.url);
            self.connection = Some((client, producer));
        }
        match &mut self.connection {
            Some((_, producer)) => Ok(producer),
            None => Err(Failure::new(Reason::Connect, "not connected")),
        }
    }

    fn topic(&self, kind: SensorKind) -> String {
        expand_topic(&self.cfg.topic_template, kind.pulsar_suffix())
    }
}

fn message(r: &Reading) -> Message {
    Message {
        payload: json::encode(r),
        partition_key: Some(r.sensor_id.clone()),
        event_time: u64::try_from(r.observed_at.timestamp_millis()).ok(),
        ..Default::default()
    }
}

impl Sink for PulsarSink {
    async fn send(&mut self, batch: &[Reading]) -> Outcome {
        let limit = self.timeout();
        let topics: Vec<String> = batch.iter().map(|r| self.topic(r.kind())).collect();
        let producer = match self.producer().await {
            Ok(p) => p,
            Err(f) => return Outcome::retry_all(batch.len(), f),
        };
        let mut receipts = Vec::with_capacity(batch.len());
        let mut outcome = Outcome::ok();
        for (i, (reading, topic)) in batch.iter().zip(topics).enumerate() {
            match timeout(limit, producer.send_non_blocking(topic, message(reading))).await {
                Ok(Ok(receipt)) => receipts.push((i, receipt)),
                Ok(Err(e)) => {
                    outcome.failure = Some(failure(&e));
                    outcome.retry.extend(i..batch.len());
                    break;
                }
                Err(_) => {
                    outcome.failure = Some(Failure::new(Reason::Timeout, "producer did not take the message in time"));
                    outcome.retry.extend(i..batch.len());
                    break;
                }
            }
        }
        let indices: Vec<usize> = receipts.iter().map(|(i, _)| *i).collect();
        match timeout(limit, join_all(receipts.into_iter().map(|(_, r)| r))).await {
            Ok(results) => {
                for (i, result) in indices.into_iter().zip(results) {
                    if let Err(e) = result {
                        outcome.failure.get_or_insert_with(|| failure(&e));
                        outcome.retry.push(i);
                    }
                }
            }
            Err(_) => {
                outcome.failure = Some(Failure::new(Reason::Timeout, format!("no receipts within {limit:?}")));
                outcome.retry.extend(indices);
            }
        }
        if !outcome.retry.is_empty() {
            // Rebuild the client on the next write: after a broker restart the old one may be stuck.
            self.connection = None;
            outcome.retry.sort_unstable();
        }
        outcome
    }

    async fn check(&mut self) -> Result<String, Failure> {
        let client = self.client().await?;
        let mut resolved = Vec::new();
        for kind in SensorKind::ALL {
            let topic = self.topic(kind);
            match timeout(self.timeout(), client.lookup_topic(topic.clone())).await {
                Ok(Ok(_)) => resolved.push(topic),
                Ok(Err(e)) => return Err(Failure::new(classify(&e.to_string()), format!("topic {topic}: {e}"))),
                Err(_) => return Err(Failure::new(Reason::Timeout, format!("topic {topic}: no lookup answer"))),
            }
        }
        let auth = if self.token.is_some() { "token accepted" } else { "no authentication" };
        Ok(format!("connected to {} ({auth}); {} topics resolved", self.cfg.url, resolved.len()))
    }

    async fn close(mut self) {
        if let Some((_, mut producer)) = self.connection.take() {
            for topic in producer.topics() {
                let _ = timeout(Duration::from_secs(5), producer.close_producer(topic)).await;
            }
        }
    }
}
