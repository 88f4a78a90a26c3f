//! The one HTTP status policy of every HTTP connector (InfluxDB, Kafka REST proxy, NGSI-LD,
//! SensorThings): what an answer's status says about a write, before a protocol adds what it knows of
//! its own (InfluxDB's 413 split and the 400 that names lines, NGSI-LD's 207).
//!
//! The rule (`docs/failures.md`): a failure is about **the data** only when the server says that this
//! request's content can never be taken (400, 409, 413, 422). Everything else is about **the
//! destination**: credentials or permissions refused (401, 403, 407), a bucket, topic or tenant
//! missing (404, 410), a timeout (408), overload (429, 5xx), and any answer we do not expect (1xx,
//! a redirect not followed, a method or media type refused, a status we do not know). The
//! destination is then down: nothing is rejected, the readings wait where they wait in an outage.
//! An unknown status therefore never drops data: at worst a stream waits, with a log line that says
//! what the server answered.

use crate::sink::{Failure, Reason};
use reqwest::StatusCode;
use std::time::Duration;

/// What a status says of a request, before the protocol's own refinements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// 2xx: taken (a protocol with partial answers, such as 207, reads the body).
    Taken,
    /// This content can never be taken: reject it (dead letter), never retry it unchanged.
    Data,
    /// The destination is down for this reason: retry later, reject nothing.
    Destination(Reason),
}

/// The class of `status`. Pinned for every code by the table test below.
pub fn class(status: StatusCode) -> Class {
    match status.as_u16() {
        200..=299 => Class::Taken,
        400 | 409 | 413 | 422 => Class::Data,
        401 | 403 | 407 => Class::Destination(Reason::Auth),
        404 | 410 => Class::Destination(Reason::Missing),
        408 | 504 => Class::Destination(Reason::Timeout),
        // 429 and 5xx: overloaded or failing. 1xx, 3xx (a redirect not followed), 405, 406, 415
        // (an endpoint or version we do not speak) and any status we do not know: an answer we
        // cannot act on, about the destination, not about this reading.
        _ => Class::Destination(Reason::Server),
    }
}

/// A failure for a non-2xx answer: `what` names the request ("write to bucket x"), `words` are the
/// server's own (an excerpt of its error body); `advice` says what to change, for failures about the
/// destination that an operator fixes (credentials, a missing bucket). `Retry-After` is kept for
/// destination failures only. Returns the class with it.
pub fn failure(
    status: StatusCode,
    retry_after: Option<Duration>,
    what: &str,
    words: &str,
    advice: &Advice,
) -> (Class, Failure) {
    let class = class(status);
    let code = status.as_u16();
    let (reason, hint) = match class {
        Class::Taken | Class::Data => (Reason::Rejected, ""),
        Class::Destination(r @ Reason::Auth) => (r, advice.auth),
        Class::Destination(r @ Reason::Missing) => (r, advice.missing),
        Class::Destination(r) => (r, ""),
    };
    let mut message = format!("{what}: HTTP {code}: {words}");
    if !hint.is_empty() {
        message.push_str(" (");
        message.push_str(hint);
        message.push(')');
    }
    let mut failure = Failure::new(reason, message);
    if matches!(class, Class::Destination(_)) {
        failure.retry_after = retry_after;
    }
    (class, failure)
}

/// As [`failure`], with whether to send the same request again (a destination failure) rather than
/// refuse it (a data failure), for connectors that have no protocol answer of their own in between.
pub fn retry_or_refuse(
    status: StatusCode,
    retry_after: Option<Duration>,
    what: &str,
    words: &str,
    advice: &Advice,
) -> (bool, Failure) {
    let (class, failure) = failure(status, retry_after, what, words, advice);
    (matches!(class, Class::Destination(_)), failure)
}

/// What an operator changes when a destination refuses us: per connector, named after its settings.
#[derive(Debug, Clone, Copy, Default)]
pub struct Advice {
    /// For 401, 403, 407: "check token_file and the token's write permission".
    pub auth: &'static str,
    /// For 404, 410: "check org and bucket".
    pub missing: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every status code from 100 to 599, pinned: the codes about the data are exactly these four.
    #[test]
    fn every_status_has_one_class() {
        for code in 100..=599u16 {
            let status = StatusCode::from_u16(code).expect("a valid code");
            let expected = match code {
                200..=299 => Class::Taken,
                400 | 409 | 413 | 422 => Class::Data,
                401 | 403 | 407 => Class::Destination(Reason::Auth),
                404 | 410 => Class::Destination(Reason::Missing),
                408 | 504 => Class::Destination(Reason::Timeout),
                100..=199 | 300..=399 | 402 | 405 | 406 | 411 | 412 | 414..=421 | 423..=499 | 500..=503 | 505..=599 => {
                    Class::Destination(Reason::Server)
                }
                _ => unreachable!("{code} is covered above"),
            };
            assert_eq!(class(status), expected, "HTTP {code}");
        }
    }

    /// `docs/failures.md` shows the table to operators: every single-status row must say what the
    /// code does.
    #[test]
    fn the_documented_table_is_the_policy() {
        let doc = include_str!("../../docs/failures.md");
        let mut rows = 0;
        for line in doc.lines() {
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            let [status, class_name, reason] = cells[..] else { continue };
            let Ok(code) = status.parse::<u16>() else { continue };
            let expected = match class(StatusCode::from_u16(code).expect("a valid code")) {
                Class::Taken => ("taken", ""),
                Class::Data => ("data", "rejected"),
                Class::Destination(r) => ("destination", r.as_str()),
            };
            assert_eq!((class_name, reason), expected, "docs/failures.md, HTTP {code}");
            rows += 1;
        }
        assert!(rows >= 15, "the table was not found in docs/failures.md ({rows} rows)");
    }

    #[test]
    fn failures_say_what_the_server_said_and_what_to_change() {
        let advice = Advice { auth: "check token_file", missing: "check bucket" };
        let wait = Some(Duration::from_secs(3));
        let (class, f) = failure(StatusCode::UNAUTHORIZED, wait, "write to b", "token is inactive", &advice);
        assert_eq!(class, Class::Destination(Reason::Auth));
        assert_eq!(f.message, "write to b: HTTP 401: token is inactive (check token_file)");
        assert_eq!(f.retry_after, wait);
        let (_, f) = failure(StatusCode::NOT_FOUND, None, "write", "bucket not found", &advice);
        assert_eq!(
            (f.reason, f.message.as_str()),
            (Reason::Missing, "write: HTTP 404: bucket not found (check bucket)")
        );
        let (class, f) = failure(StatusCode::BAD_REQUEST, wait, "write", "unable to parse", &advice);
        assert_eq!((class, f.reason, f.retry_after), (Class::Data, Reason::Rejected, None));
        let (_, f) = failure(StatusCode::SERVICE_UNAVAILABLE, wait, "write", "busy", &Advice::default());
        assert_eq!((f.reason, f.retry_after, f.message.as_str()), (Reason::Server, wait, "write: HTTP 503: busy"));
    }
}
