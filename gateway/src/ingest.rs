//! From received messages to the writer: decode, check against the topic, update the live state,
//! hand on. A message that cannot become a reading is written to the dead-letter store, counted by
//! reason, and acknowledged (redelivering it cannot fix it); the pipeline goes on unslowed.

use crate::dead_letter::{DeadLetterFile, DeadLetterLine};
use crate::decode::{self, TopicRule};
use crate::metrics::GatewayMetrics;
use crate::state::{Accepted, CityState};
use crate::writer::Item;
use chrono::Utc;
use prometheus::IntCounter;
use smartcity_connectors::source::{Ack, Message};
use smartcity_model::SensorKind;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
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
        // Looked up once: a labelled counter's lookup hashes its labels, at every reading otherwise.
        let accepted = SensorKind::ALL.map(|k| self.metrics.accepted.with_label_values(&[k.as_str()]));
        while let Some(message) = input.recv().await {
            for item in self.handle(message, &accepted) {
                if writer.send(item).await.is_err() {
                    return; // the writer is gone: stopping
                }
            }
        }
    }

    /// The readings to write (a SenML pack can hold several), or none when the message was set aside.
    fn handle(&self, mut message: Message, accepted: &[IntCounter; 6]) -> Vec<Item> {
        let rule = self.rules.get(&*message.source);
        let decoded = match rule {
            Some(rule) => decode::decode_all(rule, &message.topic, &message.payload, self.max_message_bytes),
            None => Err(decode::Refusal { reason: "topic", message: format!("unknown source `{}`", message.source) }),
        };
        let readings = match decoded {
            Ok(readings) => readings,
            Err(refusal) => {
                self.set_aside(message, refusal);
                return Vec::new();
            }
        };
        let counts_frames = rule.is_some_and(TopicRule::counts_frames);
        for reading in &readings {
            let accepted = &accepted[reading.kind() as usize];
            match self.state.accept(reading) {
                Accepted::InOrder => accepted.inc(),
                Accepted::AfterGap { missing } => {
                    accepted.inc();
                    // A seq that is no frame counter (SenML: a time) says nothing of losses.
                    if counts_frames {
                        self.metrics.gaps.inc_by(missing);
                    }
                }
                Accepted::Stale => self.metrics.stale.inc(),
            }
        }
        self.metrics.sensors.set(self.state.sensor_count() as i64);
        let (source, mut topic) = (message.source.clone(), std::mem::take(&mut message.topic));
        let n = readings.len();
        let acks = split_ack(message, n);
        // The topic is copied only for the readings of a pack but its last (most messages hold one).
        readings
            .into_iter()
            .zip(acks)
            .enumerate()
            .map(|(i, (reading, ack))| {
                let topic = if i + 1 == n { std::mem::take(&mut topic) } else { topic.clone() };
                Item { reading, source: source.clone(), topic, ack }
            })
            .collect()
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

/// `n` acknowledgements of one message: the message is acknowledged once all `n` are (each
/// reading of a pack is written on its own; a pack half-written is redelivered whole).
fn split_ack(message: Message, n: usize) -> Vec<Ack> {
    match n {
        0 => {
            message.ack(); // nothing to write (decoders do not return empty, but never leave it hanging)
            return Vec::new();
        }
        1 => return vec![message.into_ack()],
        _ => {}
    }
    let whole = Arc::new(Mutex::new(Some(message.into_ack())));
    let left = Arc::new(AtomicUsize::new(n));
    (0..n)
        .map(|_| {
            let (whole, left) = (whole.clone(), left.clone());
            let part = Message::new(
                "".into(),
                String::new(),
                Default::default(),
                Box::new(move || {
                    if left.fetch_sub(1, Ordering::AcqRel) == 1 {
                        if let Some(ack) = whole.lock().unwrap_or_else(|e| e.into_inner()).take() {
                            ack.ack();
                        }
                    }
                }),
            );
            part.into_ack()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_split_message_is_acknowledged_once_all_parts_are() {
        let acked = Arc::new(AtomicUsize::new(0));
        let counter = acked.clone();
        let message = Message::new(
            "s".into(),
            "t".into(),
            Default::default(),
            Box::new(move || {
                counter.fetch_add(1, Ordering::SeqCst);
            }),
        );
        let mut parts = split_ack(message, 3);
        parts.pop().unwrap().ack();
        parts.pop().unwrap().ack();
        assert_eq!(acked.load(Ordering::SeqCst), 0);
        parts.pop().unwrap().ack();
        assert_eq!(acked.load(Ordering::SeqCst), 1);
    }
}
