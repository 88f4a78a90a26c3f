//! Acknowledgement per entry. A producer batch (our sink's default: up to 1,000 readings) is one
//! entry on the broker, handed to us as one message per batch index. The broker acknowledges
//! entries: an ack of one batch index without an ack set (pulsar-rs 6.9 sends none:
//! `ConsumerEngine::ack` builds the `CommandAck` from the id alone) deletes the whole entry, so
//! acknowledging each message as it was written would have acknowledged the rest of its batch
//! before it was written, and a crash then lost it. Here an entry is acknowledged once every one
//! of its messages has been answered with an ack (written, or dead-lettered with a receipt): one
//! frame per batch instead of one per message.
//!
//! A message released or nacked leaves its index open; the broker redelivers the whole entry, and
//! the indexes already acked are acked again (at least once). Entries left open for an hour (their
//! redelivery went to another consumer) are forgotten: the broker redelivers them after a restart.

use ::pulsar::proto::MessageIdData;
use std::collections::HashMap;
use std::time::Duration;
use tokio::time::Instant;

/// Open entries older than this are forgotten.
const ENTRY_MEMORY: Duration = Duration::from_secs(3600);
/// Number of open entries at which old ones are looked for.
const PRUNE_AT: usize = 10_000;

/// (ledger, entry, partition): an entry of one topic.
type EntryId = (u64, u64, i32);

/// The batch indexes of one entry acked so far.
struct Open {
    acked: Vec<bool>,
    left: usize,
    since: Instant,
}

/// Entries with some, not all, of their messages acked, per topic.
#[derive(Default)]
pub(super) struct EntryAcks {
    open: HashMap<String, HashMap<EntryId, Open>>,
    count: usize,
}

impl EntryAcks {
    /// Message `id` of `topic`, one of `batch_size` in its entry, is acked: the id to acknowledge
    /// on the broker when its entry is now complete, else `None`.
    pub(super) fn acked(&mut self, topic: &str, id: &MessageIdData, batch_size: u32) -> Option<MessageIdData> {
        let index = id.batch_index.filter(|i| *i >= 0).map(|i| i as usize);
        let (Some(index), true) = (index, batch_size > 1) else { return Some(id.clone()) };
        let size = (batch_size as usize).max(index + 1);
        let key = (id.ledger_id, id.entry_id, id.partition.unwrap_or(-1));
        if !self.open.contains_key(topic) {
            self.open.insert(topic.to_string(), HashMap::new());
        }
        let entries = self.open.get_mut(topic)?;
        let open = entries.entry(key).or_insert_with(|| {
            self.count += 1;
            Open { acked: vec![false; size], left: size, since: Instant::now() }
        });
        if index < open.acked.len() && !open.acked[index] {
            open.acked[index] = true;
            open.left -= 1;
        }
        if open.left > 0 {
            if self.count >= PRUNE_AT {
                self.prune();
            }
            return None;
        }
        entries.remove(&key);
        if entries.is_empty() {
            self.open.remove(topic);
        }
        self.count -= 1;
        Some(MessageIdData { batch_index: None, batch_size: None, ack_set: Vec::new(), ..id.clone() })
    }

    /// Entries waiting for more acks.
    pub(super) fn open(&self) -> usize {
        self.count
    }

    fn prune(&mut self) {
        let now = Instant::now();
        for entries in self.open.values_mut() {
            entries.retain(|_, open| now.duration_since(open.since) < ENTRY_MEMORY);
        }
        self.open.retain(|_, entries| !entries.is_empty());
        self.count = self.open.values().map(HashMap::len).sum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(entry: u64, index: Option<i32>) -> MessageIdData {
        MessageIdData { ledger_id: 7, entry_id: entry, partition: Some(-1), batch_index: index, ..Default::default() }
    }

    #[test]
    fn an_entry_is_acknowledged_once_every_index_is() {
        let mut acks = EntryAcks::default();
        assert!(acks.acked("t", &id(1, Some(2)), 3).is_none());
        assert!(acks.acked("t", &id(1, Some(0)), 3).is_none());
        assert!(acks.acked("t", &id(1, Some(0)), 3).is_none(), "a duplicate does not count twice");
        assert!(acks.acked("u", &id(1, Some(1)), 3).is_none(), "another topic's entry");
        assert_eq!(acks.open(), 2);
        let whole = acks.acked("t", &id(1, Some(1)), 3).expect("complete");
        assert_eq!((whole.entry_id, whole.batch_index), (1, None));
        assert_eq!(acks.open(), 1);
        // Redelivered after the entry was acknowledged: it starts over, and completes again.
        for i in 0..2 {
            assert!(acks.acked("t", &id(1, Some(i)), 3).is_none());
        }
        assert!(acks.acked("t", &id(1, Some(2)), 3).is_some());
    }

    #[test]
    fn a_message_outside_a_batch_is_acknowledged_at_once() {
        let mut acks = EntryAcks::default();
        assert_eq!(acks.acked("t", &id(4, None), 1), Some(id(4, None)));
        assert_eq!(acks.acked("t", &id(5, Some(-1)), 1), Some(id(5, Some(-1))));
        assert_eq!(acks.acked("t", &id(6, Some(0)), 1), Some(id(6, Some(0))), "a batch of one");
        assert_eq!(acks.open(), 0);
    }
}
