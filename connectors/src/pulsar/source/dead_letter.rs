//! Dead letters: the subscription that keeps them, producing the copy of a message with its
//! properties, and acknowledging the original once the copy has its receipt.

use super::delivery::{Cmd, Letter, Origin};
use super::run_loop::Runner;
use super::{Client, Consumer, PulsarSource};
use ::pulsar::consumer::InitialPosition;
use ::pulsar::proto::MessageIdData;
use ::pulsar::ConsumerOptions;
use std::collections::HashMap;
use tokio::time::timeout;

/// The `reason` label of the `rejected` metric for a dead letter: the word before the first `:` of
/// `reason` when it is `decode`, `invalid` or `target`, else `other`; `redeliveries` when nacks ran out.
pub fn reason_label(reason: &str, nacks_ran_out: bool) -> &'static str {
    if nacks_ran_out {
        return "redeliveries";
    }
    match reason.split(':').next().map(str::trim) {
        Some("decode") => "decode",
        Some("invalid") => "invalid",
        Some("target") => "target",
        _ => "other",
    }
}

/// A message id as text, `ledger:entry:partition[:batch index]` (the form the client's own dead
/// letters use).
pub fn message_id_text(id: &MessageIdData) -> String {
    let base = format!("{}:{}:{}", id.ledger_id, id.entry_id, id.partition.unwrap_or(-1));
    match id.batch_index {
        Some(b) if b >= 0 => format!("{base}:{b}"),
        _ => base,
    }
}

/// The dead-letter copy of a message: the raw payload, the same key and event time, the original's
/// properties plus `reason`, `origin_topic`, `origin_message_id`, and `redeliveries` when nacks led here.
fn dead_letter_message(letter: Letter, reason: &str, redeliveries: Option<u32>) -> ::pulsar::producer::Message {
    let mut properties: HashMap<String, String> = letter.origin.properties.into_iter().collect();
    properties.insert("reason".into(), reason.into());
    properties.insert("origin_topic".into(), letter.origin.topic);
    properties.insert("origin_message_id".into(), message_id_text(&letter.origin.id));
    if let Some(n) = redeliveries {
        properties.insert("redeliveries".into(), n.to_string());
    }
    ::pulsar::producer::Message {
        payload: letter.payload,
        properties,
        partition_key: letter.key,
        partition_key_b64_encoded: letter.origin.key_b64,
        ordering_key: letter.origin.ordering_key,
        event_time: letter.event_time,
        ..Default::default()
    }
}

impl PulsarSource {
    /// Subscribes `dead_letter_subscription` to the dead-letter topic and closes the consumer again:
    /// the durable subscription stays, and keeps every dead letter until someone reads it.
    pub(super) async fn create_dead_letter_subscription(&self, client: &Client) -> Result<(), String> {
        let build = client
            .consumer()
            .with_topic(&self.cfg.dead_letter_topic)
            .with_subscription(&self.cfg.dead_letter_subscription)
            .with_subscription_type(::pulsar::SubType::Shared)
            .with_consumer_name(format!("{}-dlq-setup", self.consumer_name))
            .with_options(ConsumerOptions::default().with_initial_position(InitialPosition::Earliest))
            .build::<Vec<u8>>();
        let mut consumer = match timeout(self.timeout(), build).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => return Err(format!("no answer within {:?}", self.timeout())),
        };
        let _ = timeout(self.timeout(), consumer.close()).await;
        Ok(())
    }
}

impl Runner {
    /// Produces the dead letter; its receipt comes back as [`Cmd::DeadLettered`], so the loop goes on.
    pub(super) async fn send_dead_letter(
        &mut self,
        client: &Client,
        letter: Letter,
        reason: &str,
        redeliveries: Option<u32>,
    ) {
        let label = reason_label(reason, redeliveries.is_some_and(|n| n >= self.src.cfg.max_redeliveries));
        let origin = letter.origin.clone();
        let message = dead_letter_message(letter, reason, redeliveries);
        let tx = self.tx.clone();
        let limit = self.src.timeout();
        self.receipts_due += 1;
        match client.send(self.src.cfg.dead_letter_topic.clone(), message).await {
            Ok(receipt) => {
                tokio::spawn(async move {
                    let result = match timeout(limit, receipt).await {
                        Ok(Ok(_)) => Ok(()),
                        Ok(Err(e)) => Err(e.to_string()),
                        Err(_) => Err(format!("no receipt within {limit:?}")),
                    };
                    let _ = tx.send(Cmd::DeadLettered(origin, label, result));
                });
            }
            Err(e) => {
                let _ = tx.send(Cmd::DeadLettered(origin, label, Err(e.to_string())));
            }
        }
    }

    /// A dead letter's receipt: acknowledge the original, or have it redelivered when there is none.
    pub(super) async fn dead_lettered(
        &mut self,
        origin: Origin,
        label: &'static str,
        result: Result<(), String>,
        consumer: &mut Consumer,
    ) {
        self.receipts_due = self.receipts_due.saturating_sub(1);
        match result {
            Ok(()) => {
                self.src.metrics.rejected.with_label_values(&[self.src.cfg.name.as_str(), label]).inc();
                self.ack(origin, consumer).await;
            }
            Err(e) => {
                tracing::warn!(
                    "pulsar source `{}`: message {} of {} not dead-lettered ({e}); it will be redelivered",
                    self.src.cfg.name,
                    message_id_text(&origin.id),
                    origin.topic
                );
                self.redeliver_later(origin);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::delivery::tests::origin;
    use super::*;

    #[test]
    fn dead_letters_keep_key_time_and_properties_and_say_why() {
        let letter =
            Letter { origin: origin(), payload: b"{oops".to_vec(), key: Some("noise-7".into()), event_time: Some(42) };
        let m = dead_letter_message(letter, "decode: expected value at line 1", Some(3));
        assert_eq!(m.payload, b"{oops");
        assert_eq!(m.partition_key.as_deref(), Some("noise-7"));
        assert_eq!(m.event_time, Some(42));
        let p = |k: &str| m.properties.get(k).map(String::as_str);
        assert_eq!(p("reason"), Some("decode: expected value at line 1"));
        assert_eq!(p("origin_topic"), Some("persistent://public/default/smartcity-noise"));
        assert_eq!(p("origin_message_id"), Some("12:34:-1:2"));
        assert_eq!(p("redeliveries"), Some("3"));
        assert_eq!(p("producer"), Some("sim"));
    }

    #[test]
    fn reason_labels_are_a_small_fixed_set() {
        assert_eq!(reason_label("decode: bad json", false), "decode");
        assert_eq!(reason_label("invalid: speed < 0", false), "invalid");
        assert_eq!(reason_label("target:influx refused", false), "target");
        assert_eq!(reason_label("something else: x", false), "other");
        assert_eq!(reason_label("", false), "other");
        assert_eq!(reason_label("target: down", true), "redeliveries");
        let id =
            MessageIdData { ledger_id: 1, entry_id: 2, partition: None, batch_index: Some(-1), ..Default::default() };
        assert_eq!(message_id_text(&id), "1:2:-1");
    }
}
