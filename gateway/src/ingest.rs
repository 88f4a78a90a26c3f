//! From received messages to the writer: decode, check against the topic, update the live state,
//! hand on. A message that cannot become a reading is written to the dead-letter store, counted by
//! reason, and acknowledged (redelivering it cannot fix it); the pipeline goes on unslowed.

use crate::dead_letter::{DeadLetterFile, DeadLetterLine};
use crate::decode::{self, TopicRule};
use crate::metrics::GatewayMetrics;
use crate::state::{Accepted, CityState};
use crate::writer::Item;
use chrono::Utc;
use smartcity_connectors::source::Message;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

pub struct Ingest {
    /// How each source's topics name their readings, by source name.
    pub rules: HashMap<String, TopicRule>,
    pub max_message_bytes: usize,
    pub state: Arc<CityState>,
    pub metrics: GatewayMetrics,
    pub dead: Arc<Mutex<DeadLetterFile>>,
}

impl Ingest {
    /// Consumes messages until every source is gone; the writer's input closes when this returns.
    pub async fn run(self, mut input: mpsc::Receiver<Message>, writer: mpsc::Sender<Item>) {
        while let Some(message) = input.recv().await {
            if let Some(item) = self.handle(message) {
                if writer.send(item).await.is_err() {
                    break; // the writer is gone: stopping
                }
            }
        }
    }

    /// The reading to write, or `None` when the message was set aside.
    fn handle(&self, message: Message) -> Option<Item> {
        let rule = self.rules.get(&*message.source);
        let decoded = match rule {
            Some(rule) => decode::decode(rule, &message.topic, &message.payload, self.max_message_bytes),
            None => Err(decode::Refusal { reason: "topic", message: format!("unknown source `{}`", message.source) }),
        };
        match decoded {
            Ok(reading) => {
                let kind = reading.kind();
                match self.state.accept(&reading) {
                    Accepted::InOrder => self.metrics.accepted.with_label_values(&[kind.as_str()]).inc(),
                    Accepted::AfterGap { missing } => {
                        self.metrics.accepted.with_label_values(&[kind.as_str()]).inc();
                        // Without a sequence (NGSI-LD entities: the observation time), a gap is
                        // only time between observations.
                        if rule.is_some_and(TopicRule::has_sequence) {
                            self.metrics.gaps.inc_by(missing);
                        }
                    }
                    Accepted::Stale => self.metrics.stale.inc(),
                }
                self.metrics.sensors.set(self.state.sensor_count() as i64);
                let (source, topic) = (message.source.clone(), message.topic.clone());
                Some(Item { reading, source, topic, ack: message.into_ack() })
            }
            Err(refusal) => {
                self.set_aside(message, refusal);
                None
            }
        }
    }

    fn set_aside(&self, message: Message, refusal: decode::Refusal) {
        let now = Utc::now();
        self.metrics.source.rejected.with_label_values(&[&message.source, refusal.reason]).inc();
        tracing::debug!("dead letter from {} {}: {}", message.source, message.topic, refusal.message);
        self.state.set_aside(&message.topic, refusal.message.clone(), &message.payload, now);
        let line = DeadLetterLine::new(
            &message.source,
            &message.topic,
            refusal.reason,
            &refusal.message,
            &message.payload,
            now,
        );
        match self.dead.lock().unwrap_or_else(|e| e.into_inner()).write(&line) {
            Ok(()) => message.ack(),
            // Not acknowledged: the source redelivers it, and the store may work by then.
            Err(e) => tracing::error!("cannot write a dead letter from {}: {e}", message.source),
        }
    }
}
