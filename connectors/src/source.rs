//! The shape every source has, whatever its protocol: it hands on each received message as a
//! [`Message`], and acknowledges it to its server only when the consumer calls [`Message::ack`],
//! i.e. once the consumer has written it downstream (or set it aside for good).
//!
//! A message dropped without `ack` is never acknowledged: the server redelivers it (after a
//! reconnect for MQTT, after a restart or rebalance for Kafka, at once for Pulsar). Delivery is
//! therefore at least once; sources differ only in how an acknowledgement reaches their server,
//! which each one puts in the [`Acker`] it attaches.

use bytes::Bytes;
use std::sync::Arc;

/// Why a source stopped, or could not start. A server that is away, slow or refusing our
/// credentials is none of these: sources wait those out (see `docs/failures.md`). Each message
/// names the source and says what to change.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SourceError {
    /// The settings cannot work: a field out of range, a TLS or password file that cannot be read,
    /// options the client library refuses.
    #[error("{0}")]
    Settings(String),
    /// The client library could not create the consumer or subscribe at all.
    #[error("{0}")]
    Client(String),
    /// The server refuses the very requests its protocol defines (the Kafka REST v2 API answering
    /// 400, 409 or 422 to them): an API mismatch that waiting cannot fix.
    #[error("{0}")]
    Refused(String),
}

/// One received message and the means to acknowledge it.
pub struct Message {
    /// The source's name (its `name` in the config; the `source` label of metrics).
    pub source: Arc<str>,
    /// Where it came from: the MQTT topic, the Kafka or Pulsar topic.
    pub topic: String,
    pub payload: Bytes,
    ack: Option<Acker>,
}

/// What acknowledges one message to its server. Called at most once, from any task; it must not
/// block (sources hand the work to their own task when their client needs an `await`).
pub type Acker = Box<dyn FnOnce() + Send>;

impl Message {
    pub fn new(source: Arc<str>, topic: String, payload: Bytes, ack: Acker) -> Self {
        Message { source, topic, payload, ack: Some(ack) }
    }

    /// The message is handled (written downstream, or set aside as a dead letter): acknowledge it.
    pub fn ack(mut self) {
        if let Some(ack) = self.ack.take() {
            ack();
        }
    }

    /// Splits off the acknowledgement, to be called once the message's content is written.
    pub fn into_ack(mut self) -> Ack {
        Ack(self.ack.take())
    }
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message")
            .field("source", &self.source)
            .field("topic", &self.topic)
            .field("bytes", &self.payload.len())
            .finish()
    }
}

/// The acknowledgement of a message whose content went on without it. Dropping it without
/// [`Ack::ack`] leaves the message unacknowledged (redelivered later).
pub struct Ack(Option<Acker>);

impl Ack {
    pub fn ack(mut self) {
        if let Some(ack) = self.0.take() {
            ack();
        }
    }

    /// An acknowledgement that does nothing (tests, replays from the spool).
    pub fn none() -> Self {
        Ack(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn acks_once_and_dropping_does_not_ack() {
        let count = Arc::new(AtomicUsize::new(0));
        let make = || {
            let c = count.clone();
            Message::new(
                "t".into(),
                "topic".into(),
                Bytes::from_static(b"x"),
                Box::new(move || {
                    c.fetch_add(1, Ordering::SeqCst);
                }),
            )
        };
        make().ack();
        assert_eq!(count.load(Ordering::SeqCst), 1);
        drop(make());
        let ack = make().into_ack();
        assert_eq!(count.load(Ordering::SeqCst), 1, "dropped or split off: not acknowledged yet");
        ack.ack();
        assert_eq!(count.load(Ordering::SeqCst), 2);
    }
}
