//! What a Kafka source commits, and when: the [`OffsetTracker`] of the messages handed on, plus
//! what it alone cannot remember. Shared by the native source and the REST proxy source.
//!
//! [`OffsetTracker::ready`] marks a commit point as committed when it returns it; a commit that then
//! fails (a rebalance under way, the proxy busy) would leave that point uncommitted until the next
//! ack moves it, possibly never when traffic stops. So a failed commit is handed back
//! ([`Commits::failed`]) and sent again with the next one. The last point of every partition is
//! also kept, for the final commit at shutdown ([`Commits::all`]).
//!
//! Late acks for forgotten partitions (revoked, or the consumer instance recreated) are ignored by
//! the tracker; their messages are read again from the committed offsets: duplicates, never loss.

use crate::offsets::OffsetTracker;
use std::collections::BTreeMap;

/// One commit: topic, partition, next offset to read.
pub type Point = (String, i32, i64);

/// The offsets of one consumer: pending messages, commit points, commits to send again.
#[derive(Debug, Default)]
pub struct Commits {
    tracker: OffsetTracker,
    /// The last commit point computed per partition.
    points: BTreeMap<(String, i32), i64>,
    /// Commit points whose commit failed, to be sent again.
    unsent: BTreeMap<(String, i32), i64>,
}

impl Commits {
    /// A message at `offset` was handed on.
    pub fn received(&mut self, topic: &str, partition: i32, offset: i64) {
        self.tracker.received(topic, partition, offset);
    }

    /// The message at `offset` is done.
    pub fn acked(&mut self, topic: &str, partition: i32, offset: i64) {
        self.tracker.acked(topic, partition, offset);
    }

    /// Messages handed on and not acknowledged yet.
    pub fn pending(&self) -> usize {
        self.tracker.pending()
    }

    fn moved(&mut self) -> BTreeMap<(String, i32), i64> {
        let mut due = std::mem::take(&mut self.unsent);
        for (topic, partition, offset) in self.tracker.ready() {
            self.points.insert((topic.clone(), partition), offset);
            // A newer point replaces a failed older one.
            due.insert((topic, partition), offset);
        }
        due
    }

    /// What to commit now: the partitions whose commit point moved, and the failed commits.
    pub fn due(&mut self) -> Vec<Point> {
        self.moved().into_iter().map(|((t, p), o)| (t, p, o)).collect()
    }

    /// Every partition's commit point (final commit): a commit of the same offset again is harmless.
    pub fn all(&mut self) -> Vec<Point> {
        self.moved();
        self.points.iter().map(|((t, p), o)| (t.clone(), *p, *o)).collect()
    }

    /// These commits did not go through: send them again with the next ones (unless a later point
    /// of the same partition is already waiting, or the partition was forgotten since).
    pub fn failed(&mut self, points: impl IntoIterator<Item = Point>) {
        for (topic, partition, offset) in points {
            let key = (topic, partition);
            if self.points.contains_key(&key) {
                self.unsent.entry(key).or_insert(offset);
            }
        }
    }

    /// Forgets one partition (revoked): its late acks are ignored, nothing of it is committed.
    pub fn forget(&mut self, topic: &str, partition: i32) {
        self.tracker.forget(topic, partition);
        let key = (topic.to_string(), partition);
        self.points.remove(&key);
        self.unsent.remove(&key);
    }

    /// Forgets everything (a new consumer instance reads again from the committed offsets).
    pub fn clear(&mut self) {
        *self = Commits::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_commits_are_sent_again_unless_superseded_or_forgotten() {
        let mut c = Commits::default();
        for o in 0..4 {
            c.received("t", 0, o);
            c.received("t", 1, o);
        }
        c.acked("t", 0, 0);
        c.acked("t", 1, 0);
        let first = c.due();
        assert_eq!(first, vec![("t".into(), 0, 1), ("t".into(), 1, 1)]);
        assert_eq!(c.due(), vec![], "nothing moved");
        c.failed(first);
        c.acked("t", 1, 1);
        assert_eq!(c.due(), vec![("t".into(), 0, 1), ("t".into(), 1, 2)], "failed one again, newer point wins");
        c.failed(vec![("t".into(), 0, 1)]);
        c.forget("t", 0);
        assert_eq!(c.due(), vec![], "forgotten partitions are not committed");
        assert_eq!(c.all(), vec![("t".into(), 1, 2)]);
        assert_eq!(c.pending(), 2);
        c.clear();
        assert_eq!((c.pending(), c.all()), (0, vec![]));
    }
}
