//! A received message as handed on ([`PulsarDelivery`]), and the requests its answer (ack, nack,
//! dead letter, or being dropped) sends to the run loop.

use ::pulsar::proto::MessageIdData;
use tokio::sync::mpsc;

/// Where a message came from: what its ack, nack or dead letter refers to.
#[derive(Debug, Clone)]
pub(super) struct Origin {
    pub(super) topic: String,
    pub(super) id: MessageIdData,
    pub(super) properties: Vec<(String, String)>,
    pub(super) key_b64: Option<bool>,
    pub(super) ordering_key: Option<Vec<u8>>,
    /// Messages in its entry (its producer's batch); 1 when it was sent alone.
    pub(super) batch_size: u32,
}

impl Origin {
    pub(super) fn key(&self) -> MsgKey {
        MsgKey {
            topic: self.topic.clone(),
            ledger: self.id.ledger_id,
            entry: self.id.entry_id,
            partition: self.id.partition.unwrap_or(-1),
            batch: self.id.batch_index.unwrap_or(-1),
        }
    }
}

/// Identity of a message across redeliveries (the ack set and batch size fields may differ).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct MsgKey {
    topic: String,
    ledger: u64,
    entry: u64,
    partition: i32,
    batch: i32,
}

/// A message given back for the dead-letter topic.
pub(super) struct Letter {
    pub(super) origin: Origin,
    pub(super) payload: Vec<u8>,
    pub(super) key: Option<String>,
    pub(super) event_time: Option<u64>,
}

/// What the run loop is asked to do, by deliveries and by its own helper tasks.
pub(super) enum Cmd {
    Ack(Origin),
    Nack(Letter, String),
    DeadLetter(Letter, String),
    /// Dropped without an answer: redeliver, without counting it as a nack.
    Release(Origin),
    /// A nack's delay is over.
    Redeliver(Origin),
    /// The dead-letter topic's receipt (or why there is none), with the metric label.
    DeadLettered(Origin, &'static str, Result<(), String>),
    /// A watchdog probe's answer for session `0`: the topics with undelivered messages.
    Probe(u64, Result<Vec<(String, u64)>, String>),
}

/// The acknowledgement side of a delivery; dropping it unanswered redelivers the message.
pub(super) struct Handle {
    pub(super) origin: Option<Origin>,
    pub(super) tx: mpsc::UnboundedSender<Cmd>,
}

impl Handle {
    fn send(&mut self, cmd: impl FnOnce(Origin) -> Cmd) {
        if let Some(origin) = self.origin.take() {
            // The run loop is gone only at shutdown, when the broker redelivers anyway.
            let _ = self.tx.send(cmd(origin));
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.send(Cmd::Release);
    }
}

/// One received message and the means to acknowledge it. Dropping it without calling one of the
/// methods has it redelivered (without counting as a nack).
pub struct PulsarDelivery {
    /// Topic (for a partitioned topic, the partition's name).
    pub topic: String,
    /// The message's bytes as produced.
    pub payload: Vec<u8>,
    /// The message key (the sensor id for our producers); Base64 when a producer set a binary key.
    pub key: Option<String>,
    /// Event time set by the producer, in Unix milliseconds.
    pub event_time: Option<u64>,
    /// How many times this process negatively acknowledged this message before (0 on first delivery).
    pub redeliveries: u32,
    pub(super) handle: Handle,
}

impl std::fmt::Debug for PulsarDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PulsarDelivery")
            .field("topic", &self.topic)
            .field("key", &self.key)
            .field("bytes", &self.payload.len())
            .field("redeliveries", &self.redeliveries)
            .finish()
    }
}

impl PulsarDelivery {
    /// The message is handled: acknowledge it.
    pub fn ack(mut self) {
        self.handle.send(Cmd::Ack);
    }

    /// The message could not be handled now for a reason that is not its own (a destination down,
    /// refusing our credentials, missing a tenant): redeliver it after `redelivery_delay_ms`, without
    /// counting toward `max_redeliveries`, however long the destination stays down.
    pub fn release(mut self) {
        self.handle.send(Cmd::Release);
    }

    /// The message itself was refused (about the data): redeliver it after `redelivery_delay_ms`, or, when it
    /// was already redelivered `max_redeliveries` times, send it to the dead-letter topic with `reason`.
    pub fn nack(mut self, reason: &str) {
        let (payload, key, event_time) = (std::mem::take(&mut self.payload), self.key.take(), self.event_time);
        self.handle.send(|origin| Cmd::Nack(Letter { origin, payload, key, event_time }, reason.to_string()));
    }

    /// The message can never be handled (malformed, invalid): send it to the dead-letter topic with
    /// `reason` (start it with `decode:`, `invalid:` or `target:` to pick the metric label), then
    /// acknowledge it once the dead letter has its receipt.
    pub fn dead_letter(mut self, reason: &str) {
        let (payload, key, event_time) = (std::mem::take(&mut self.payload), self.key.take(), self.event_time);
        self.handle.send(|origin| Cmd::DeadLetter(Letter { origin, payload, key, event_time }, reason.to_string()));
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A message of the noise topic, with properties (one of them the `reason` a dead letter replaces).
    pub(in super::super) fn origin() -> Origin {
        Origin {
            topic: "persistent://public/default/smartcity-noise".into(),
            id: MessageIdData {
                ledger_id: 12,
                entry_id: 34,
                partition: Some(-1),
                batch_index: Some(2),
                ..Default::default()
            },
            properties: vec![("producer".into(), "sim".into()), ("reason".into(), "old".into())],
            key_b64: None,
            ordering_key: None,
            batch_size: 3,
        }
    }

    #[tokio::test]
    async fn deliveries_send_their_answer_once_and_give_back_when_dropped() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let delivery = |payload: &str| PulsarDelivery {
            topic: "t".into(),
            payload: payload.as_bytes().to_vec(),
            key: Some("k".into()),
            event_time: Some(7),
            redeliveries: 0,
            handle: Handle { origin: Some(origin()), tx: tx.clone() },
        };
        delivery("a").ack();
        assert!(matches!(rx.recv().await, Some(Cmd::Ack(_))));
        delivery("b").dead_letter("decode: x");
        match rx.recv().await {
            Some(Cmd::DeadLetter(letter, reason)) => {
                assert_eq!((letter.payload.as_slice(), reason.as_str()), (b"b".as_slice(), "decode: x"));
                assert_eq!((letter.key.as_deref(), letter.event_time), (Some("k"), Some(7)));
                assert_eq!(letter.origin.id.entry_id, 34);
            }
            _ => panic!("expected a dead letter"),
        }
        delivery("c").nack("target: down");
        assert!(matches!(rx.recv().await, Some(Cmd::Nack(_, r)) if r == "target: down"));
        drop(delivery("d"));
        assert!(matches!(rx.recv().await, Some(Cmd::Release(_))));
        assert!(rx.try_recv().is_err(), "one answer per delivery");
    }
}
