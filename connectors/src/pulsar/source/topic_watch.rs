//! The watchdog's judgement, per topic: which topics have been quiet long enough, under our consumer,
//! for a backlog on the broker to mean that the consumer is stuck.
//!
//! Why per topic and from the moment our consumer holds the topic: a pattern subscription picks up a
//! new topic up to a refresh later, and the broker counts the topic's backlog from the moment the
//! subscription exists, a little before our consumer has received anything from it. A watchdog that
//! measured silence across all topics took such a topic for a stuck one (issue 16: the pattern test
//! failed on a loaded machine) and recreated a healthy consumer, redelivering everything unacknowledged.
//!
//! Pure: every call takes the time, so that the tests can replay any order of events.

use std::collections::HashMap;
use std::time::Duration;
use tokio::time::Instant;

/// A topic's name without the `-partition-N` suffix: the name the admin API answers for, and the
/// one under which the watch keeps a partitioned topic.
pub(super) fn base_topic(topic: &str) -> &str {
    match topic.rsplit_once("-partition-") {
        Some((base, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => base,
        _ => topic,
    }
}

/// Per-topic quiet times for one session (one consumer).
pub(super) struct TopicWatch {
    /// How long a held topic must be quiet before its backlog counts against the consumer.
    period: Duration,
    /// How long a topic the broker has may stay unheld by our consumer before its backlog counts:
    /// the client's topic refresh plus a period, since picking up a new topic takes up to a refresh.
    unheld_grace: Duration,
    /// Topics our consumer holds: since when nothing arrived from each (held since, or last receipt).
    quiet_since: HashMap<String, Instant>,
    /// Topics the broker reported that our consumer does not hold: since when we know of each.
    unheld_since: HashMap<String, Instant>,
}

impl TopicWatch {
    pub(super) fn new(period: Duration, topic_refresh: Duration) -> Self {
        TopicWatch {
            period,
            unheld_grace: topic_refresh + period,
            quiet_since: HashMap::new(),
            unheld_since: HashMap::new(),
        }
    }

    /// The topics our consumer holds now: a new one starts its quiet time now, one no longer held
    /// is forgotten.
    pub(super) fn held<'a>(&mut self, topics: impl IntoIterator<Item = &'a str>, now: Instant) {
        let held: Vec<&str> = topics.into_iter().map(base_topic).collect();
        self.quiet_since.retain(|t, _| held.contains(&t.as_str()));
        for topic in held {
            self.unheld_since.remove(topic);
            self.quiet_since.entry(topic.to_string()).or_insert(now);
        }
    }

    /// A message arrived from `topic`.
    pub(super) fn received(&mut self, topic: &str, now: Instant) {
        let topic = base_topic(topic);
        match self.quiet_since.get_mut(topic) {
            Some(since) => *since = now,
            None => {
                self.unheld_since.remove(topic);
                self.quiet_since.insert(topic.to_string(), now);
            }
        }
    }

    /// Waiting for room downstream is back-pressure, not silence: every topic starts over.
    pub(super) fn busy(&mut self, now: Instant) {
        self.quiet_since.values_mut().for_each(|since| *since = now);
    }

    /// Is any held topic quiet for a period (worth asking the broker about)? A consumer that holds
    /// no topic at all is asked about too: it may have lost every one of them.
    pub(super) fn worth_probing(&self, now: Instant) -> bool {
        self.quiet_since.is_empty()
            || !self.unheld_since.is_empty()
            || self.quiet_since.values().any(|since| now.duration_since(*since) >= self.period)
    }

    /// The topics, among those with `undelivered` messages on the broker, that count against the
    /// consumer: held and quiet for a period, or unheld for longer than a topic refresh allows.
    pub(super) fn stuck(&mut self, undelivered: &[(String, u64)], now: Instant) -> Vec<(String, u64)> {
        let mut stuck = Vec::new();
        for (topic, n) in undelivered {
            let topic_base = base_topic(topic);
            let counts = match self.quiet_since.get(topic_base) {
                Some(since) => now.duration_since(*since) >= self.period,
                None => {
                    let since = *self.unheld_since.entry(topic_base.to_string()).or_insert(now);
                    now.duration_since(since) >= self.unheld_grace
                }
            };
            if counts && *n > 0 {
                stuck.push((topic.clone(), *n));
            }
        }
        stuck
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PERIOD: Duration = Duration::from_secs(5);
    const REFRESH: Duration = Duration::from_secs(30);

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn backlog(topic: &str, n: u64) -> Vec<(String, u64)> {
        vec![(topic.to_string(), n)]
    }

    /// Issue 16's false alarm, replayed: the consumer received from `early` long ago; `late` appears
    /// after the subscription, the broker counts its first message before our consumer delivers it,
    /// and a probe answers in between. Judged across all topics, the consumer was "idle" for 60 s
    /// with a backlog: a restart. Judged per topic, `late` is held for 1 s only: no restart.
    #[test]
    fn a_topic_picked_up_after_the_subscription_is_not_stuck_before_a_period() {
        let t0 = Instant::now();
        let mut watch = TopicWatch::new(PERIOD, REFRESH);
        watch.held(["early"], t0);
        watch.received("early", t0);
        // 60 s later the pattern refresh subscribes to `late`; the broker shows its backlog at once.
        let picked_up = t0 + secs(60);
        watch.held(["early", "late"], picked_up);
        assert!(watch.worth_probing(picked_up + secs(1)), "`early` is quiet: the probe runs");
        assert_eq!(watch.stuck(&backlog("late", 1), picked_up + secs(1)), vec![], "false alarm");
        // The delivery is slower than the window: after a whole period quiet, `late` counts.
        assert_eq!(watch.stuck(&backlog("late", 1), picked_up + PERIOD), backlog("late", 1));
        // Once it delivers, it starts over.
        watch.received("late", picked_up + PERIOD);
        assert_eq!(watch.stuck(&backlog("late", 1), picked_up + PERIOD + secs(1)), vec![]);
    }

    #[test]
    fn a_held_topic_quiet_for_a_period_with_a_backlog_is_stuck() {
        let t0 = Instant::now();
        let mut watch = TopicWatch::new(PERIOD, REFRESH);
        watch.held(["a", "b"], t0);
        assert!(!watch.worth_probing(t0 + secs(4)));
        assert!(watch.worth_probing(t0 + PERIOD));
        // `a` keeps delivering; `b` is silent with a backlog: only `b` counts.
        watch.received("a", t0 + secs(4));
        let both = vec![("a".to_string(), 3), ("b".to_string(), 2)];
        assert_eq!(watch.stuck(&both, t0 + secs(6)), backlog("b", 2));
        // Nothing waiting on the broker: nothing stuck, however quiet.
        assert_eq!(watch.stuck(&backlog("b", 0), t0 + secs(600)), vec![]);
    }

    #[test]
    fn back_pressure_is_not_silence() {
        let t0 = Instant::now();
        let mut watch = TopicWatch::new(PERIOD, REFRESH);
        watch.held(["a"], t0);
        watch.busy(t0 + secs(10));
        assert!(!watch.worth_probing(t0 + secs(12)));
        assert_eq!(watch.stuck(&backlog("a", 5), t0 + secs(12)), vec![]);
    }

    #[test]
    fn a_topic_our_consumer_lost_counts_after_a_refresh_and_a_period() {
        let t0 = Instant::now();
        let mut watch = TopicWatch::new(PERIOD, REFRESH);
        watch.held(["a", "b"], t0);
        watch.held(["a"], t0 + secs(1)); // the client dropped its consumer of `b`
        assert_eq!(watch.stuck(&backlog("b", 4), t0 + secs(2)), vec![], "first heard of");
        assert_eq!(watch.stuck(&backlog("b", 4), t0 + secs(30)), vec![], "a refresh may still pick it up");
        assert_eq!(watch.stuck(&backlog("b", 4), t0 + secs(2) + REFRESH + PERIOD), backlog("b", 4));
        // Picked up again: held from now, not stuck.
        watch.held(["a", "b"], t0 + secs(40));
        assert_eq!(watch.stuck(&backlog("b", 4), t0 + secs(41)), vec![]);
    }

    #[test]
    fn partitions_are_watched_under_their_topic() {
        assert_eq!(base_topic("persistent://t/n/x-partition-3"), "persistent://t/n/x");
        assert_eq!(base_topic("persistent://t/n/x-partition-"), "persistent://t/n/x-partition-");
        assert_eq!(base_topic("persistent://t/n/x-partition-a"), "persistent://t/n/x-partition-a");
        assert_eq!(base_topic("persistent://t/n/x"), "persistent://t/n/x");
        let t0 = Instant::now();
        let mut watch = TopicWatch::new(PERIOD, REFRESH);
        watch.held(["x-partition-0", "x-partition-1"], t0);
        watch.received("x-partition-1", t0 + secs(9));
        assert_eq!(watch.stuck(&backlog("x", 2), t0 + secs(10)), vec![]);
        assert_eq!(watch.stuck(&backlog("x", 2), t0 + secs(14)), backlog("x", 2));
    }
}
