//! PUBACKs in the order the messages arrived, whatever order the consumer finishes them in.
//!
//! MQTT 3.1.1 (§4.6) requires a receiver to send PUBACKs in the order the PUBLISH packets were
//! received, and some brokers enforce it: rumqttd, the demo's embedded broker, redelivered the
//! messages of a subscriber that acknowledged a malformed message (set aside at once) before the
//! valid one ahead of it (still waiting for its write). So each acknowledgement waits here until
//! every message received before it is acknowledged, or dropped unacknowledged (released: its
//! PUBACK is never sent, and the broker redelivers it after the next reconnect).

use std::collections::VecDeque;

/// What became of a received message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Pending,
    Acked,
    Released,
}

/// Messages in arrival order, numbered from 0 by [`AckOrder::track`].
#[derive(Debug)]
pub struct AckOrder<T> {
    entries: VecDeque<(T, State)>,
    /// Number of the front entry.
    front: u64,
}

impl<T> Default for AckOrder<T> {
    fn default() -> Self {
        AckOrder { entries: VecDeque::new(), front: 0 }
    }
}

impl<T> AckOrder<T> {
    /// Registers the next received message; returns its number.
    pub fn track(&mut self, item: T) -> u64 {
        self.entries.push_back((item, State::Pending));
        self.front + self.entries.len() as u64 - 1
    }

    /// Message `n` is done: returns the messages whose PUBACK may go now, in order.
    pub fn ack(&mut self, n: u64) -> Vec<T> {
        self.settle(n, State::Acked)
    }

    /// Message `n` was dropped unacknowledged: later ones need not wait for it.
    pub fn release(&mut self, n: u64) -> Vec<T> {
        self.settle(n, State::Released)
    }

    /// Messages not yet acknowledged or released.
    pub fn pending(&self) -> usize {
        self.entries.iter().filter(|(_, s)| *s == State::Pending).count()
    }

    fn settle(&mut self, n: u64, state: State) -> Vec<T> {
        if let Some(entry) = n.checked_sub(self.front).and_then(|i| self.entries.get_mut(i as usize)) {
            if entry.1 == State::Pending {
                entry.1 = state;
            }
        }
        let mut ready = Vec::new();
        while self.entries.front().is_some_and(|(_, s)| *s != State::Pending) {
            let (item, s) = self.entries.pop_front().expect("front exists");
            self.front += 1;
            if s == State::Acked {
                ready.push(item);
            }
        }
        ready
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_leave_in_arrival_order() {
        let mut order = AckOrder::default();
        let (a, b, c) = (order.track("a"), order.track("b"), order.track("c"));
        assert_eq!(order.ack(b), Vec::<&str>::new(), "b waits for a");
        assert_eq!(order.ack(c), Vec::<&str>::new());
        assert_eq!(order.ack(a), vec!["a", "b", "c"]);
        assert_eq!(order.pending(), 0);
    }

    #[test]
    fn a_released_message_holds_back_nobody_and_is_not_acknowledged() {
        let mut order = AckOrder::default();
        let (a, b) = (order.track(1), order.track(2));
        assert_eq!(order.ack(b), Vec::<i32>::new());
        assert_eq!(order.release(a), vec![2]);
        let c = order.track(3);
        assert_eq!(c, 2, "numbers keep counting");
        assert_eq!(order.ack(c), vec![3]);
        assert_eq!(order.ack(a), Vec::<i32>::new(), "a late answer for a settled message changes nothing");
    }
}
