//! The simulated clock: when each tick happens in simulated time, and when to emit it in real time.
//!
//! Ticks are `interval` apart in simulated time. A tick at or before real "now" (a backfill) is
//! emitted at once; later ticks are emitted when the simulated clock, running `speed` times faster
//! than the wall clock from the moment the backfill caught up, reaches them.

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use std::time::Duration;
use tokio::time::Instant;

pub struct SimClock {
    next_tick: DateTime<Utc>,
    interval: ChronoDuration,
    speed: f64,
    to: Option<DateTime<Utc>>,
    /// (real instant, simulated time) once live; None while backfilling.
    anchor: Option<(Instant, DateTime<Utc>)>,
}

/// What to do for the next tick.
#[derive(Debug, PartialEq)]
pub enum Next {
    /// Emit the tick at this simulated time, after waiting `wait` of real time.
    Tick { at: DateTime<Utc>, wait: Duration },
    /// The simulated clock passed `to`: stop.
    Done,
}

impl SimClock {
    /// `from` None: start now (aligned down to the interval, so ticks fall on round times).
    pub fn new(
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        interval_seconds: f64,
        speed: f64,
        now: DateTime<Utc>,
    ) -> Self {
        let interval = ChronoDuration::microseconds((interval_seconds * 1e6).round().max(1000.0) as i64);
        let start = from.unwrap_or_else(|| {
            let step = interval.num_microseconds().unwrap_or(1).max(1);
            let us = now.timestamp_micros();
            DateTime::from_timestamp_micros(us - us.rem_euclid(step)).unwrap_or(now)
        });
        SimClock { next_tick: start, interval, speed, to, anchor: None }
    }

    /// The next tick, given the real wall-clock time `now_utc` and monotonic `now`.
    pub fn next(&mut self, now_utc: DateTime<Utc>, now: Instant) -> Next {
        let at = self.next_tick;
        if self.to.is_some_and(|to| at > to) {
            return Next::Done;
        }
        self.next_tick = at + self.interval;
        let wait = match self.anchor {
            None if at <= now_utc => Duration::ZERO, // backfill: as fast as possible
            None => {
                // Caught up with real time: from here the simulated clock runs at `speed`.
                self.anchor = Some((now, now_utc));
                self.real_wait(at, now)
            }
            Some(_) => self.real_wait(at, now),
        };
        Next::Tick { at, wait }
    }

    fn real_wait(&self, at: DateTime<Utc>, now: Instant) -> Duration {
        let (real0, sim0) = self.anchor.expect("anchored");
        let sim_ahead = (at - sim0).to_std().unwrap_or_default();
        let due = real0 + sim_ahead.div_f64(self.speed);
        due.saturating_duration_since(now)
    }

    pub fn simulated_now(&self) -> DateTime<Utc> {
        self.next_tick - self.interval
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 21, h, m, s).unwrap()
    }

    #[test]
    fn backfill_is_immediate_then_live_at_speed() {
        let now = t(12, 0, 0);
        let mut c = SimClock::new(Some(t(11, 59, 0)), None, 30.0, 60.0, now);
        let i = Instant::now();
        assert_eq!(c.next(now, i), Next::Tick { at: t(11, 59, 0), wait: Duration::ZERO });
        assert_eq!(c.next(now, i), Next::Tick { at: t(11, 59, 30), wait: Duration::ZERO });
        assert_eq!(c.next(now, i), Next::Tick { at: t(12, 0, 0), wait: Duration::ZERO });
        // Live from here: 30 simulated seconds at speed 60 take half a real second.
        match c.next(now, i) {
            Next::Tick { at, wait } => {
                assert_eq!(at, t(12, 0, 30));
                assert_eq!(wait, Duration::from_millis(500));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn stops_after_to_and_aligns_live_start() {
        let now = t(12, 0, 7);
        let mut c = SimClock::new(None, Some(t(12, 0, 10)), 5.0, 1.0, now);
        let i = Instant::now();
        assert!(matches!(c.next(now, i), Next::Tick { at, .. } if at == t(12, 0, 5)));
        assert!(matches!(c.next(now, i), Next::Tick { at, .. } if at == t(12, 0, 10)));
        assert_eq!(c.next(now, i), Next::Done);
    }
}
