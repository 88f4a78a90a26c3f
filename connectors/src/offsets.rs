//! Which Kafka offsets may be committed when messages are acknowledged out of order.
//!
//! Kafka keeps one committed offset per partition: "everything before this is done". Our messages
//! are acknowledged when their write is done, which is not always in offset order (a malformed
//! message is set aside at once while the valid one before it still waits for InfluxDB). So the
//! commit point of a partition is the lowest offset still pending, never just the latest acked:
//! committing past a pending message would lose it on a crash.

use std::collections::{BTreeMap, BTreeSet};

/// Pending offsets of every partition a consumer is reading.
#[derive(Debug, Default)]
pub struct OffsetTracker {
    partitions: BTreeMap<(String, i32), Partition>,
}

#[derive(Debug, Default)]
struct Partition {
    pending: BTreeSet<i64>,
    /// One past the highest offset handed on.
    next: i64,
    /// The commit point last returned by [`OffsetTracker::ready`].
    committed: Option<i64>,
}

impl Partition {
    fn commit_point(&self) -> i64 {
        self.pending.first().copied().unwrap_or(self.next)
    }
}

impl OffsetTracker {
    /// A message at `offset` was handed on and is not acknowledged yet.
    pub fn received(&mut self, topic: &str, partition: i32, offset: i64) {
        let p = self.partitions.entry((topic.to_string(), partition)).or_default();
        p.pending.insert(offset);
        p.next = p.next.max(offset.saturating_add(1));
    }

    /// The message at `offset` is done.
    pub fn acked(&mut self, topic: &str, partition: i32, offset: i64) {
        if let Some(p) = self.partitions.get_mut(&(topic.to_string(), partition)) {
            p.pending.remove(&offset);
        }
    }

    /// The offsets to commit now (Kafka's convention: the next offset to read), for the partitions
    /// whose commit point moved since the last call. Marks them as committed.
    pub fn ready(&mut self) -> Vec<(String, i32, i64)> {
        let mut out = Vec::new();
        for ((topic, partition), p) in &mut self.partitions {
            let point = p.commit_point();
            if p.next > 0 && p.committed != Some(point) {
                p.committed = Some(point);
                out.push((topic.clone(), *partition, point));
            }
        }
        out
    }

    /// Messages handed on and not acknowledged yet.
    pub fn pending(&self) -> usize {
        self.partitions.values().map(|p| p.pending.len()).sum()
    }

    /// Forgets every partition (after a rebalance or a new consumer instance: their messages are
    /// read again from the committed offsets, and late acks of the old ones are ignored).
    pub fn clear(&mut self) {
        self.partitions.clear();
    }

    /// Forgets one partition (revoked by a rebalance).
    pub fn forget(&mut self, topic: &str, partition: i32) {
        self.partitions.remove(&(topic.to_string(), partition));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_point_waits_for_the_lowest_pending_offset() {
        let mut t = OffsetTracker::default();
        for o in 10..14 {
            t.received("a", 0, o);
        }
        t.acked("a", 0, 11);
        t.acked("a", 0, 13);
        assert_eq!(t.ready(), vec![("a".into(), 0, 10)], "10 is still pending");
        assert_eq!(t.ready(), vec![], "nothing moved");
        t.acked("a", 0, 10);
        assert_eq!(t.ready(), vec![("a".into(), 0, 12)]);
        t.acked("a", 0, 12);
        assert_eq!(t.ready(), vec![("a".into(), 0, 14)], "all done: the next offset to read");
        assert_eq!(t.pending(), 0);
    }

    #[test]
    fn partitions_are_independent_and_late_acks_after_forget_are_ignored() {
        let mut t = OffsetTracker::default();
        t.received("a", 0, 5);
        t.received("a", 1, 7);
        t.acked("a", 1, 7);
        assert_eq!(t.ready(), vec![("a".into(), 0, 5), ("a".into(), 1, 8)]);
        t.forget("a", 0);
        t.acked("a", 0, 5);
        assert_eq!(t.ready(), vec![]);
        assert_eq!(t.pending(), 0);
    }
}
