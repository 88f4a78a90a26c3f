//! librdkafka's log lines and error callbacks as our log lines, named after the sink or source they
//! come from, with repeats held back: librdkafka repeats a failing connection's error on every
//! reconnect, which would bury everything else. Shared by the producer and the consumer contexts.

use super::{repeat_key, tidy};
use rdkafka::config::RDKafkaLogLevel;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// One line per distinct message and period.
pub(crate) const REPEAT_EVERY: Duration = Duration::from_secs(30);

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock leaves plain data behind: still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// When each distinct message was last logged, and how many repeats were held back since.
#[derive(Default)]
struct Repeats(HashMap<String, (Instant, u64)>);

impl Repeats {
    /// `Some(held back since the last line)` when `message` is to be logged now.
    fn admit(&mut self, message: &str) -> Option<u64> {
        let now = Instant::now();
        let key = repeat_key(message);
        match self.0.get_mut(key) {
            Some((last, held)) if now.duration_since(*last) < REPEAT_EVERY => {
                *held += 1;
                None
            }
            Some((last, held)) => {
                *last = now;
                Some(std::mem::take(held))
            }
            None => {
                // Messages carry addresses, not data: few distinct ones. The bound is a safety net.
                if self.0.len() >= 256 {
                    self.0.clear();
                }
                self.0.insert(key.to_string(), (now, 0));
                Some(0)
            }
        }
    }
}

/// The log of one client: `who` (``sink `kafka` ``, ``kafka source `kafka` ``) starts every line.
pub(crate) struct Limited {
    who: String,
    repeats: Mutex<Repeats>,
}

impl Limited {
    pub fn new(who: String) -> Self {
        Limited { who, repeats: Mutex::new(Repeats::default()) }
    }

    /// Logs `message` unless it is a recent repeat.
    pub fn emit(&self, level: tracing::Level, message: &str) {
        let Some(held) = lock(&self.repeats).admit(message) else { return };
        let who = &self.who;
        let repeats = if held > 0 {
            format!(" ({held} repeats in the last {}s not logged)", REPEAT_EVERY.as_secs())
        } else {
            String::new()
        };
        match level {
            tracing::Level::ERROR => tracing::error!("{who}: {message}{repeats}"),
            tracing::Level::WARN => tracing::warn!("{who}: {message}{repeats}"),
            tracing::Level::INFO => tracing::info!("{who}: {message}{repeats}"),
            _ => tracing::debug!("{who}: {message}{repeats}"),
        }
    }

    /// A line of librdkafka's own log (`ClientContext::log`).
    pub fn librdkafka(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        let level = match level {
            RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
                tracing::Level::ERROR
            }
            RDKafkaLogLevel::Warning => tracing::Level::WARN,
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => tracing::Level::INFO,
            RDKafkaLogLevel::Debug => {
                // Only there with librdkafka's `debug` property, asked for on purpose: all passed on.
                tracing::debug!("{}: librdkafka {fac}: {log_message}", self.who);
                return;
            }
        };
        // Failures are logged by librdkafka and also reported to error(): the same tidied text,
        // so the repeat filter keeps one of the two.
        self.emit(level, &tidy(log_message));
    }
}

/// The callbacks of a client that only needs its librdkafka lines logged under its name, with
/// repeats held back (the gateway's dead-letter copies): librdkafka's errors otherwise go nowhere.
pub struct LogContext(Limited);

impl LogContext {
    /// `who` starts every line: ``dead-letter copies `dead-letters-kafka` ``.
    pub fn new(who: String) -> Self {
        LogContext(Limited::new(who))
    }
}

impl rdkafka::client::ClientContext for LogContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.0.librdkafka(level, fac, log_message);
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        let raw = if reason.is_empty() { error.to_string() } else { reason.to_string() };
        self.0.emit(tracing::Level::ERROR, &tidy(&raw));
    }
}

/// The lowest level of the lines librdkafka is to send to `log()`: what the tracing subscriber
/// keeps. rdkafka would ask the `log` crate, which this project does not set up, and get errors only.
pub fn librdkafka_log_level() -> RDKafkaLogLevel {
    use tracing::level_filters::LevelFilter;
    match LevelFilter::current() {
        LevelFilter::TRACE | LevelFilter::DEBUG => RDKafkaLogLevel::Debug,
        LevelFilter::INFO => RDKafkaLogLevel::Info,
        LevelFilter::WARN => RDKafkaLogLevel::Warning,
        _ => RDKafkaLogLevel::Error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_held_back_and_counted() {
        let mut r = Repeats::default();
        assert_eq!(r.admit("a (after 3ms in state UP)"), Some(0));
        assert_eq!(r.admit("a (after 9ms in state UP)"), None, "same cause, other timing");
        assert_eq!(r.admit("b"), Some(0));
        let (last, _) = r.0.get_mut("a").unwrap();
        *last = last.checked_sub(REPEAT_EVERY).expect("uptime above 30 s");
        assert_eq!(r.admit("a"), Some(1), "one held back since the last line");
    }
}
