//! Reconnection back-off shared by every connector: exponential from 100 ms to 5 s, and a log
//! line on the first failure, whenever the cause changes (a connection reset, then the password
//! refused: the second is what the operator must read), and every 30th failure, rather than one
//! per attempt.

use std::fmt::Display;
use std::time::Duration;

const FIRST: Duration = Duration::from_millis(100);
const MAX: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct Backoff {
    delay: Duration,
    failures: u64,
    /// The cause last logged: the text before the first `:` (a [`crate::sink::Failure`]'s reason).
    cause: String,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { delay: FIRST, failures: 0, cause: String::new() }
    }
}

/// The cause a failure's text names first (`auth` of `auth: token refused`).
fn cause_of(text: &str) -> &str {
    text.split(':').next().unwrap_or(text).trim()
}

impl Backoff {
    /// Connected again: the next failure starts from the shortest delay.
    pub fn reset(&mut self) {
        *self = Backoff::default();
    }

    /// Records a failure talking to `server`, logs it when due, and waits before the next attempt.
    pub async fn failed(&mut self, server: &str, error: impl Display) {
        self.failed_after(server, error, None).await
    }

    /// As [`Backoff::failed`], waiting at least `at_least` (a server's `Retry-After`) when given.
    pub async fn failed_after(&mut self, server: &str, error: impl Display, at_least: Option<Duration>) {
        self.failures += 1;
        let text = error.to_string();
        let new_cause = cause_of(&text) != self.cause;
        if self.failures == 1 || new_cause || self.failures.is_multiple_of(30) {
            self.cause = cause_of(&text).to_string();
            tracing::warn!(
                "{server}: {text} (attempt {}; retrying every {:?} up to {MAX:?})",
                self.failures,
                self.delay
            );
        }
        tokio::time::sleep(at_least.map_or(self.delay, |d| d.clamp(self.delay, Duration::from_secs(300)))).await;
        self.delay = (self.delay * 2).min(MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn doubles_up_to_five_seconds_and_resets() {
        let mut b = Backoff::default();
        let start = tokio::time::Instant::now();
        for _ in 0..8 {
            b.failed("test", "down").await;
        }
        // 0.1 + 0.2 + 0.4 + 0.8 + 1.6 + 3.2 + 5 + 5
        assert_eq!(start.elapsed(), Duration::from_millis(16_300));
        b.reset();
        let t = tokio::time::Instant::now();
        b.failed("test", "down").await;
        assert_eq!(t.elapsed(), FIRST);
    }

    #[test]
    fn a_new_cause_is_told_at_once() {
        assert_eq!(cause_of("auth: HTTP 401: token is inactive"), "auth");
        assert_eq!(cause_of("connect: reset"), "connect");
        assert_eq!(cause_of("no colon"), "no colon");
    }
}
