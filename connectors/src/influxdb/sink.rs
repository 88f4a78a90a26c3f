//! Writes readings to InfluxDB v2: `POST /api/v2/write` with one line per reading
//! (`line_protocol::encode_batch`, precision ms), gzip-compressed on request.
//!
//! What each answer means for the readings of the batch:
//! - 2xx: written.
//! - Statuses about the destination ([`crate::http_status`]: 401/403 token refused, 404 org or
//!   bucket missing, 408, 429, 5xx, anything unexpected) and no answer: nothing is refused; the
//!   readings are tried again (by the fan-out, or the gateway's spool), after the server's
//!   `Retry-After` when it gave one. A token set inactive for a minute or a bucket recreated costs
//!   a wait, never data.
//! - 413: the batch is split in two and each half written, down to single lines, within the same
//!   `send`; a single line still too large is refused.
//! - 400: InfluxDB refused the whole request and names the lines it could not parse
//!   (`unable to parse '<line>': <why>`): only the readings of those lines are refused; the rest,
//!   which InfluxDB did not store either, go back to the fan-out to be written again. When no line
//!   can be recognised in the answer, the whole batch is refused.
//! - 409, 422 (about the data): refused, since sending the same request again cannot succeed.
//!
//! Nothing is logged here: the fan-out logs each `Failure`, whose message carries the status and
//! the server's own words.
//!
//! Why raw reqwest rather than the `influxdb2` crate: its error type, `RequestError::Http { status,
//! text }`, does not expose the response headers, so `Retry-After` could not be honoured; and
//! splitting a batch on 413 or refusing only the bad line of a 400 needs the raw answer for each
//! request, which its batch-writing API does not give.

use super::config::InfluxConfig;
use crate::http_client;
use crate::http_status::{self, Advice, Class};
use crate::sink::{Failure, Outcome, Reason, Sink, SinkTelemetry};
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE};
use reqwest::{Client, StatusCode, Url};
use smartcity_model::codec::line_protocol;
use smartcity_model::Reading;
use std::io::Write;
use std::ops::Range;
use std::time::Duration;

/// The `Authorization` header for `cfg` (`Token <token>` from `token_env` or `token_file`), marked
/// sensitive so that it never shows in a debug print; `None` without a token. Shared with the
/// gateway's history queries, so the token is read one way everywhere.
pub fn authorization(cfg: &InfluxConfig) -> Result<Option<HeaderValue>, String> {
    let token = crate::secret::read(&cfg.token_env, cfg.token_file.as_deref())?;
    match token.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) => {
            let mut v = HeaderValue::from_str(&format!("Token {t}"))
                .map_err(|_| "the InfluxDB token holds characters not allowed in an HTTP header".to_string())?;
            v.set_sensitive(true);
            Ok(Some(v))
        }
    }
}

/// An InfluxDB v2 bucket to write to. Holds no connection of its own: reqwest's pool connects on
/// the first request and reconnects when needed.
pub struct InfluxSink {
    client: Client,
    /// The configured URL without a trailing `/`, for messages.
    base: String,
    write_url: Url,
    health_url: Url,
    buckets_url: Url,
    org: String,
    bucket: String,
    /// `Token <token>`, marked sensitive so that it never shows in a debug print.
    authorization: Option<HeaderValue>,
    /// Where the token was expected, to say so when there is none.
    token_env: String,
    gzip: bool,
    /// Requests one write is split into, sent at once.
    parallel_requests: usize,
}

impl InfluxSink {
    /// Reads the token and builds the HTTP client; touches no network.
    pub fn new(cfg: &InfluxConfig, telemetry: SinkTelemetry) -> Result<Self, String> {
        // The fan-out stage does all the accounting from each `Outcome`: nothing to report here.
        let _ = telemetry;
        let authorization = authorization(cfg)?;
        let client = http_client::client(cfg.tls.as_ref(), Duration::from_secs(cfg.timeout_seconds))?;
        let base = cfg.url.trim_end_matches('/').to_string();
        let endpoint = |path: &str, query: &[(&str, &str)]| -> Result<Url, String> {
            let mut url = Url::parse(&format!("{base}{path}")).map_err(|e| format!("url `{}`: {e}", cfg.url))?;
            if !query.is_empty() {
                // Percent-encodes the values: an org may well hold a space or `&`.
                url.query_pairs_mut().extend_pairs(query);
            }
            Ok(url)
        };
        Ok(InfluxSink {
            write_url: endpoint(
                "/api/v2/write",
                &[("org", &cfg.org), ("bucket", &cfg.bucket), ("precision", line_protocol::PRECISION)],
            )?,
            health_url: endpoint("/health", &[])?,
            buckets_url: endpoint("/api/v2/buckets", &[("org", &cfg.org), ("name", &cfg.bucket)])?,
            client,
            org: cfg.org.clone(),
            bucket: cfg.bucket.clone(),
            authorization,
            token_env: cfg.token_env.clone(),
            gzip: cfg.gzip,
            parallel_requests: cfg.parallel_requests.max(1),
            base,
        })
    }

    /// One write request for `chunk`, and what its answer means.
    async fn write(&self, chunk: &[Reading]) -> Answer {
        let body = line_protocol::encode_batch(chunk).into_bytes();
        let mut request = self.client.post(self.write_url.clone()).header(CONTENT_TYPE, "text/plain; charset=utf-8");
        if let Some(auth) = &self.authorization {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        request = if self.gzip {
            match gzip(&body) {
                Ok(compressed) => request.header(CONTENT_ENCODING, "gzip").body(compressed),
                // Compressing into memory does not fail in practice; if it ever does, send plain.
                Err(_) => request.body(body),
            }
        } else {
            request.body(body)
        };
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return Answer::Unavailable(http_client::transport_failure(&e)),
        };
        let status = response.status();
        let retry_after = http_client::retry_after(response.headers());
        if status.is_success() {
            return Answer::Written;
        }
        // A body cut short is read as empty: the status alone then decides.
        let body = response.text().await.unwrap_or_default();
        judge(status, retry_after, &body, chunk)
    }

    fn get(&self, url: &Url, authenticated: bool) -> reqwest::RequestBuilder {
        let request = self.client.get(url.clone());
        match &self.authorization {
            Some(auth) if authenticated => request.header(AUTHORIZATION, auth.clone()),
            _ => request,
        }
    }
}

impl InfluxSink {
    /// Writes `chunk` in one request, or in smaller pieces after a 413, following the status
    /// policy; the outcome's indices are `chunk`'s own.
    async fn send_part(&self, chunk: &[Reading]) -> Outcome {
        let mut outcome = Outcome::ok();
        // Ranges of `chunk` still to write, the next one last: a 413 replaces a range by its halves.
        let mut todo: Vec<Range<usize>> = Vec::with_capacity(16);
        todo.push(0..chunk.len());
        while let Some(range) = todo.pop() {
            if range.is_empty() {
                continue;
            }
            let piece = &chunk[range.clone()];
            match self.write(piece).await {
                Answer::Written => {}
                Answer::TooLarge(_) if piece.len() > 1 => {
                    let (first, second) = halves(range);
                    todo.push(second);
                    todo.push(first);
                }
                Answer::TooLarge(failure) => merge(&mut outcome, Outcome::reject_all(1, failure), range.start),
                Answer::Refused(part) => merge(&mut outcome, part, range.start),
                Answer::Unavailable(failure) => {
                    // The server is down or busy: the rest would fail the same way, so everything not
                    // yet written goes back to the fan-out at once instead of waiting out more timeouts.
                    merge(&mut outcome, Outcome::retry_all(piece.len(), failure), range.start);
                    outcome.retry.extend(todo.drain(..).rev().flatten());
                    break;
                }
            }
        }
        outcome
    }
}

/// Parts of a write below this many lines are not worth a request of their own.
const MIN_PART_LINES: usize = 500;

/// `len` readings cut into at most `parallel` contiguous parts of at least [`MIN_PART_LINES`].
fn parts(len: usize, parallel: usize) -> Vec<Range<usize>> {
    let count = parallel.min(len / MIN_PART_LINES).max(1);
    let size = len.div_ceil(count).max(1);
    (0..len).step_by(size).map(|start| start..(start + size).min(len)).collect()
}

impl InfluxSink {
    /// [`Sink::send`] through a shared reference: the gateway keeps several writes in flight on
    /// one sink (the sink holds no per-write state; reqwest's pool gives each its connections).
    pub async fn send_shared(&self, batch: &[Reading]) -> Outcome {
        // The parts go out at once, each on its own connection of reqwest's pool.
        let ranges = parts(batch.len(), self.parallel_requests);
        let outcomes = futures::future::join_all(ranges.iter().map(|r| self.send_part(&batch[r.clone()]))).await;
        let mut outcome = Outcome::ok();
        for (range, part) in ranges.iter().zip(outcomes) {
            merge(&mut outcome, part, range.start);
        }
        outcome
    }
}

impl Sink for InfluxSink {
    async fn send(&mut self, batch: &[Reading]) -> Outcome {
        self.send_shared(batch).await
    }

    async fn check(&mut self) -> Result<String, Failure> {
        let transport = |e: reqwest::Error| http_client::transport_failure(&e);
        let health = self.get(&self.health_url, false).send().await.map_err(transport)?;
        let status = health.status();
        let body = health.text().await.unwrap_or_default();
        if !status.is_success() {
            let message =
                format!("{}/health: HTTP {status}: {}", self.base, http_client::excerpt(&server_message(&body)));
            return Err(Failure::new(Reason::Server, message));
        }
        let version = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("version").and_then(|s| s.as_str()).map(str::to_string))
            .unwrap_or_else(|| "(version unknown)".into());

        let answer = self.get(&self.buckets_url, true).send().await.map_err(transport)?;
        let status = answer.status();
        let body = answer.text().await.unwrap_or_default();
        let not_found = || {
            Failure::new(
                Reason::Missing,
                format!("bucket {} not found in org {} (or the token may not read it)", self.bucket, self.org),
            )
        };
        match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                let message = match self.authorization {
                    None if self.token_env.is_empty() => "no token: set token_file".to_string(),
                    None => format!("no token: set {} or token_file", self.token_env),
                    Some(_) => {
                        format!("token refused: HTTP {status}: {}", http_client::excerpt(&server_message(&body)))
                    }
                };
                Err(Failure::new(Reason::Auth, message))
            }
            StatusCode::NOT_FOUND => Err(not_found()),
            s if s.is_success() => {
                if lists_bucket(&body, &self.bucket) {
                    Ok(format!("InfluxDB {version} at {}: token accepted, bucket {} found", self.base, self.bucket))
                } else {
                    Err(not_found())
                }
            }
            s => {
                let words = http_client::excerpt(&server_message(&body));
                Err(http_status::failure(s, None, "listing buckets", &words, &ADVICE).1)
            }
        }
    }

    async fn close(self) {
        // Every `send` waited for its answer: nothing is buffered here.
    }
}

/// What one write request's answer means for its chunk of readings.
#[derive(Debug, PartialEq)]
enum Answer {
    /// Stored (2xx).
    Written,
    /// 413: write the chunk in smaller pieces.
    TooLarge(Failure),
    /// Some or all of the chunk refused for good (and, after a 400, the rest to send again), as an
    /// outcome over the chunk's own indices.
    Refused(Outcome),
    /// Nothing stored and the server should be tried again later (5xx, 429, 408, no answer).
    Unavailable(Failure),
}

/// What an operator changes when InfluxDB refuses us.
const ADVICE: Advice = Advice {
    auth: "token refused by InfluxDB: check token_file (or the token variable) and the token's write permission \
           on the bucket",
    missing: "check org and bucket: InfluxDB does not create them",
};

/// The meaning of a non-2xx `status` with its `body` for the readings of `chunk`.
fn judge(status: StatusCode, retry_after: Option<Duration>, body: &str, chunk: &[Reading]) -> Answer {
    let words = http_client::excerpt(&server_message(body));
    let said = |what: &str| http_status::failure(status, retry_after, what, &words, &ADVICE);
    match (status.as_u16(), http_status::class(status)) {
        (_, Class::Taken) => Answer::Written,
        (413, _) => Answer::TooLarge(said("a single line is larger than the server accepts").1),
        (400, _) => {
            let bad = bad_lines(body, chunk);
            if bad.is_empty() {
                return Answer::Refused(Outcome::reject_all(chunk.len(), said("batch refused").1));
            }
            let what = format!("{} of {} lines refused, the others to be written again", bad.len(), chunk.len());
            let mut retry = Vec::with_capacity(chunk.len() - bad.len());
            let mut next_bad = bad.iter().peekable();
            for i in 0..chunk.len() {
                if next_bad.next_if_eq(&&i).is_none() {
                    retry.push(i);
                }
            }
            Answer::Refused(Outcome { retry, rejected: bad, failure: Some(said(&what).1) })
        }
        (_, Class::Data) => Answer::Refused(Outcome::reject_all(chunk.len(), said("points refused").1)),
        (_, Class::Destination(_)) => Answer::Unavailable(said("write").1),
    }
}

/// The `message` of an InfluxDB JSON error (`{"code":"invalid","message":"..."}`), else the body.
fn server_message(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_string))
        .unwrap_or_else(|| body.to_string())
}

/// Indices, in order, of the readings of `chunk` whose line a 400 answer names. InfluxDB 2.x
/// (`models.ParsePoints`) writes `unable to parse '<line as sent>': <why>` for each line it could
/// not parse, joined by newlines. Each of our lines is looked for whole, quotes and `': ` included,
/// rather than cutting the message at quotes: a line may itself hold `'` or `': `, and a line that
/// is a prefix of another cannot match it.
fn bad_lines(body: &str, chunk: &[Reading]) -> Vec<usize> {
    const PREFIX: &str = "unable to parse '";
    let message = server_message(body);
    if !message.contains(PREFIX) {
        return Vec::new();
    }
    let mut needle = String::new();
    chunk
        .iter()
        .enumerate()
        .filter_map(|(i, reading)| {
            needle.clear();
            needle.push_str(PREFIX);
            line_protocol::encode(reading, &mut needle);
            needle.pop(); // the line's '\n'
            needle.push_str("': ");
            message.contains(needle.as_str()).then_some(i)
        })
        .collect()
}

/// `range` cut in two, the first half no longer than the second.
fn halves(range: Range<usize>) -> (Range<usize>, Range<usize>) {
    let mid = range.start + range.len() / 2;
    (range.start..mid, mid..range.end)
}

/// Adds `part`, an outcome over a chunk that starts at `offset` in the batch, to `into`. Failures
/// are joined into one message; the reason and `Retry-After` follow the part that asks for retries,
/// since those drive the fan-out's back-off.
fn merge(into: &mut Outcome, part: Outcome, offset: usize) {
    let had_retries = !into.retry.is_empty();
    let part_retries = !part.retry.is_empty();
    into.retry.extend(part.retry.into_iter().map(|i| i + offset));
    into.rejected.extend(part.rejected.into_iter().map(|i| i + offset));
    let Some(new) = part.failure else { return };
    into.failure = Some(match into.failure.take() {
        None => new,
        Some(old) => Failure {
            reason: if part_retries && !had_retries { new.reason } else { old.reason },
            // After a 413 split a batch may gather many failures: the message stays one readable line.
            message: if old.message.len() < 600 {
                format!("{}; {}", old.message, new.message)
            } else if old.message.ends_with('…') {
                old.message
            } else {
                format!("{} …", old.message)
            },
            retry_after: old.retry_after.max(new.retry_after),
        },
    });
}

/// Whether a `GET /api/v2/buckets` answer lists a bucket named `bucket`.
fn lists_bucket(body: &str, bucket: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("buckets")?
                .as_array()
                .map(|list| list.iter().any(|b| b.get("name").and_then(|n| n.as_str()) == Some(bucket)))
        })
        .unwrap_or(false)
}

fn gzip(body: &[u8]) -> std::io::Result<Vec<u8>> {
    // The fast level: line protocol compresses well anyway, and the gateway shares two cores.
    let mut encoder = flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 4), flate2::Compression::fast());
    encoder.write_all(body)?;
    encoder.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_is_cut_into_parallel_parts_of_at_least_500_lines() {
        assert_eq!(parts(10_000, 2), [0..5000, 5000..10_000]);
        assert_eq!(parts(10_001, 2), [0..5001, 5001..10_001]);
        let whole = |len: usize| vec![Range { start: 0, end: len }];
        assert_eq!(parts(999, 2), whole(999), "two parts would be under 500 lines");
        assert_eq!(parts(1000, 2), [0..500, 500..1000]);
        assert_eq!(parts(7, 4), whole(7));
        assert_eq!(parts(1, 1), whole(1));
        assert_eq!(parts(0, 2), Vec::<Range<usize>>::new());
        assert_eq!(parts(12_000, 3), [0..4000, 4000..8000, 8000..12_000]);
    }
    use chrono::{TimeZone, Utc};
    use smartcity_model::reading::{Traffic, Values};
    use smartcity_model::Commune;

    fn reading(id: &str, seq: u64) -> Reading {
        Reading {
            sensor_id: id.into(),
            commune: Commune::LeLamentin,
            lat: 14.613,
            lon: -60.999,
            observed_at: Utc.with_ymd_and_hms(2026, 11, 20, 11, 30, 0).unwrap(),
            seq,
            values: Values::Traffic(Traffic {
                intensity: Some(1520),
                occupancy: Some(0.41),
                average_vehicle_speed: Some(38.2),
                congested: Some(false),
            }),
        }
    }

    fn line(r: &Reading) -> String {
        let mut s = String::new();
        line_protocol::encode(r, &mut s);
        s.pop();
        s
    }

    /// The body InfluxDB 2.7 answers a 400 with, naming `lines`.
    fn parse_error(lines: &[String]) -> String {
        let message: Vec<String> = lines.iter().map(|l| format!("unable to parse '{l}': invalid number")).collect();
        serde_json::json!({"code": "invalid", "message": message.join("\n")}).to_string()
    }

    #[test]
    fn a_400_names_the_bad_lines() {
        let chunk: Vec<Reading> = (0..5).map(|i| reading("tf-1", i)).collect();
        let body = parse_error(&[line(&chunk[3]), line(&chunk[1])]);
        assert_eq!(bad_lines(&body, &chunk), [1, 3]);
        // A line that is a prefix of another (same point, one more timestamp digit) is not named
        // by the other's message: the closing `': ` tells them apart.
        let mut similar = vec![chunk[0].clone(), chunk[0].clone()];
        similar[1].observed_at = Utc.timestamp_millis_opt(chunk[0].observed_at.timestamp_millis() * 10 + 1).unwrap();
        assert!(line(&similar[1]).starts_with(&line(&similar[0])));
        assert_eq!(bad_lines(&parse_error(&[line(&similar[1])]), &similar), [1]);
        // Unknown line, another message, not JSON, empty: nothing recognised.
        assert!(bad_lines(&parse_error(&["cpu x=1".into()]), &chunk).is_empty());
        assert!(bad_lines(r#"{"code":"invalid","message":"invalid precision"}"#, &chunk).is_empty());
        assert!(bad_lines("<html>bad gateway</html>", &chunk).is_empty());
        assert!(bad_lines("", &chunk).is_empty());
        // A proxy answering in plain text with the same words is understood too.
        assert_eq!(bad_lines(&format!("unable to parse '{}': bad timestamp", line(&chunk[0])), &chunk), [0]);
    }

    #[test]
    fn a_400_refuses_only_the_bad_lines() {
        let chunk: Vec<Reading> = (0..4).map(|i| reading("tf-1", i)).collect();
        let body = parse_error(&[line(&chunk[2])]);
        let Answer::Refused(o) = judge(StatusCode::BAD_REQUEST, None, &body, &chunk) else { panic!() };
        assert_eq!((o.retry, o.rejected), (vec![0, 1, 3], vec![2]));
        let f = o.failure.unwrap();
        assert_eq!(f.reason, Reason::Rejected);
        assert!(f.message.contains("HTTP 400: unable to parse 'traffic,commune=Le\\ Lamentin"), "{}", f.message);

        let Answer::Refused(o) = judge(StatusCode::BAD_REQUEST, None, "nonsense", &chunk) else { panic!() };
        assert_eq!((o.retry, o.rejected), (vec![], vec![0, 1, 2, 3]));
    }

    #[test]
    fn statuses() {
        let chunk: Vec<Reading> = (0..2).map(|i| reading("tf-1", i)).collect();
        let body = r#"{"code":"too many requests","message":"slow down"}"#;
        let wait = Some(Duration::from_secs(7));
        let Answer::Unavailable(f) = judge(StatusCode::TOO_MANY_REQUESTS, wait, body, &chunk) else { panic!() };
        assert_eq!((f.reason, f.retry_after), (Reason::Server, wait));
        assert!(f.message.contains("HTTP 429: slow down"), "{}", f.message);
        assert!(
            matches!(judge(StatusCode::SERVICE_UNAVAILABLE, wait, "", &chunk), Answer::Unavailable(f) if f.retry_after == wait)
        );
        assert!(matches!(judge(StatusCode::BAD_GATEWAY, None, "", &chunk), Answer::Unavailable(_)));
        assert!(matches!(judge(StatusCode::PAYLOAD_TOO_LARGE, None, "", &chunk), Answer::TooLarge(_)));
        let refused = |status| match judge(status, None, r#"{"code":"x","message":"why"}"#, &chunk) {
            Answer::Refused(o) => {
                assert_eq!(o.rejected, [0, 1]);
                assert!(o.retry.is_empty());
                o.failure.unwrap()
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(refused(StatusCode::UNPROCESSABLE_ENTITY).reason, Reason::Rejected);
        assert_eq!(refused(StatusCode::CONFLICT).reason, Reason::Rejected);
        // About the destination: nothing refused, whatever the token or the bucket does.
        let waits =
            |status| match judge(status, None, r#"{"code":"unauthorized","message":"token is inactive"}"#, &chunk) {
                Answer::Unavailable(f) => f,
                other => panic!("{status}: {other:?}"),
            };
        let f = waits(StatusCode::UNAUTHORIZED);
        assert_eq!(f.reason, Reason::Auth);
        assert!(
            f.message.contains("HTTP 401: token is inactive (token refused by InfluxDB: check token_file"),
            "{}",
            f.message
        );
        assert_eq!(waits(StatusCode::FORBIDDEN).reason, Reason::Auth);
        let f = waits(StatusCode::NOT_FOUND);
        assert_eq!(f.reason, Reason::Missing);
        assert!(f.message.contains("(check org and bucket"), "{}", f.message);
        assert_eq!(waits(StatusCode::METHOD_NOT_ALLOWED).reason, Reason::Server);
        assert_eq!(waits(StatusCode::REQUEST_TIMEOUT).reason, Reason::Timeout);
    }

    #[test]
    fn outcomes_of_halves_merge_with_batch_indices() {
        assert_eq!(halves(0..5), (0..2, 2..5));
        assert_eq!(halves(4..6), (4..5, 5..6));
        let mut o = Outcome::ok();
        merge(&mut o, Outcome::ok(), 0);
        assert!(o.is_ok() && o.failure.is_none());
        let refused =
            Outcome { retry: vec![0, 2], rejected: vec![1], failure: Some(Failure::new(Reason::Rejected, "400")) };
        merge(&mut o, refused, 10);
        let busy = Failure { retry_after: Some(Duration::from_secs(3)), ..Failure::new(Reason::Server, "503") };
        merge(&mut o, Outcome::reject_all(1, Failure::new(Reason::Rejected, "413")), 13);
        assert_eq!((o.retry.clone(), o.rejected.clone()), (vec![10, 12], vec![11, 13]));
        merge(&mut o, Outcome::retry_all(2, busy), 20);
        assert_eq!((o.retry.clone(), o.rejected.clone()), (vec![10, 12, 20, 21], vec![11, 13]));
        let f = o.failure.unwrap();
        assert_eq!(f.message, "400; 413; 503");
        // The 400 already asked for retries: its reason stays; the server's wait is kept.
        assert_eq!((f.reason, f.retry_after), (Reason::Rejected, Some(Duration::from_secs(3))));

        let mut o = Outcome::reject_all(1, Failure::new(Reason::Auth, "401"));
        merge(&mut o, Outcome::retry_all(1, Failure::new(Reason::Connect, "refused")), 1);
        assert_eq!(o.failure.unwrap().reason, Reason::Connect);
    }

    #[test]
    fn bucket_lists() {
        assert!(lists_bucket(r#"{"buckets":[{"name":"other"},{"name":"iot_data"}]}"#, "iot_data"));
        assert!(!lists_bucket(r#"{"buckets":[]}"#, "iot_data"));
        assert!(!lists_bucket(r#"{"buckets":null}"#, "iot_data"));
        assert!(!lists_bucket("not json", "iot_data"));
    }
}
