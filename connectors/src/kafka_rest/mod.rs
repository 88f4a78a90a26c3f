//! Kafka through an HTTP REST proxy: the Confluent REST Proxy v2 API (`POST /topics/{topic}` with
//! base64 "binary" records), which Redpanda's HTTP proxy also serves. This is how the original
//! system published.
//!
//! The pure part lives here: the requests a batch becomes (grouped by topic, cut by the limits) and
//! the reading of the proxy's answers. The HTTP calls are in `sink.rs`. The source (a consumer
//! instance on the proxy, `source.rs`, `source_config.rs`) has its pure part in `consume.rs`.

pub mod config;
pub mod consume;
pub mod sink;
pub mod source;
pub mod source_config;

pub use config::KafkaRestConfig;
pub use sink::KafkaRestSink;
pub use source::KafkaRestSource;
pub use source_config::KafkaRestSourceConfig;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde::Deserialize;
use smartcity_model::{codec::json, Reading};
use url::Url;

/// `Content-Type` of a produce request with base64 key and value.
pub const BINARY_V2: &str = "application/vnd.kafka.binary.v2+json";
/// `Accept` of every request: the v2 API's answers.
pub const V2: &str = "application/vnd.kafka.v2+json";

const BODY_START: &str = "{\"records\":[";
const BODY_END: &str = "]}";

/// One produce request: the readings of one topic, by their index in the batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Index of the topic in the list the caller gave.
    pub topic: usize,
    /// Index in the batch of each record of the body, in order.
    pub indices: Vec<usize>,
    /// `{"records":[{"key":..,"value":..},...]}`.
    pub body: Vec<u8>,
}

/// One record of a produce body: the sensor id as key, the JSON wire format as value, both base64.
pub fn record(reading: &Reading) -> String {
    // The base64 alphabet needs no JSON escaping, so the record is written directly.
    format!(
        "{{\"key\":\"{}\",\"value\":\"{}\"}}",
        BASE64.encode(reading.sensor_id.as_bytes()),
        BASE64.encode(json::encode(reading))
    )
}

fn body(records: &[String]) -> Vec<u8> {
    let mut b =
        String::with_capacity(BODY_START.len() + BODY_END.len() + records.iter().map(|r| r.len() + 1).sum::<usize>());
    b.push_str(BODY_START);
    b.push_str(&records.join(","));
    b.push_str(BODY_END);
    b.into_bytes()
}

/// The requests that write `batch`: readings grouped by topic (`topic_of` gives a reading's topic
/// index), each group cut into bodies of at most `max_records` records and `max_bytes` bytes. A
/// single record larger than `max_bytes` goes alone (the proxy then says whether it takes it).
pub fn plan(
    batch: &[Reading],
    topic_of: impl Fn(&Reading) -> usize,
    max_records: usize,
    max_bytes: usize,
) -> Vec<Request> {
    let mut groups: Vec<(usize, Vec<usize>)> = Vec::new();
    for (i, r) in batch.iter().enumerate() {
        let t = topic_of(r);
        match groups.iter_mut().find(|(topic, _)| *topic == t) {
            Some((_, indices)) => indices.push(i),
            None => groups.push((t, vec![i])),
        }
    }
    let empty = BODY_START.len() + BODY_END.len();
    let mut requests = Vec::new();
    for (topic, members) in groups {
        let (mut indices, mut records, mut size) = (Vec::new(), Vec::new(), empty);
        for i in members {
            let Some(reading) = batch.get(i) else { continue };
            let rec = record(reading);
            let grown = size + rec.len() + usize::from(!records.is_empty());
            if !records.is_empty() && (records.len() >= max_records || grown > max_bytes) {
                requests.push(Request { topic, indices: std::mem::take(&mut indices), body: body(&records) });
                records.clear();
                size = empty;
            }
            size += rec.len() + usize::from(!records.is_empty());
            indices.push(i);
            records.push(rec);
        }
        if !records.is_empty() {
            requests.push(Request { topic, indices, body: body(&records) });
        }
    }
    requests
}

/// `{base}/{segments...}`, each segment escaped (a topic name may hold characters a path may not).
pub(crate) fn join(base: &Url, segments: &[&str]) -> Result<Url, String> {
    let mut u = base.clone();
    u.path_segments_mut().map_err(|_| format!("`{base}` cannot take a path"))?.pop_if_empty().extend(segments);
    Ok(u)
}

/// What the proxy did with one record of a request that it answered with 200.
#[derive(Debug, Clone, PartialEq)]
pub enum Written {
    /// Stored in Kafka.
    Taken,
    /// Refused for good (`error_code` 1, "non-retriable Kafka exception"), with the proxy's words.
    Rejected(String),
    /// Not stored, may succeed later (any other `error_code`).
    Retry(String),
}

#[derive(Deserialize)]
struct Offsets {
    offsets: Vec<Offset>,
}

#[derive(Deserialize)]
struct Offset {
    #[serde(default)]
    error_code: Option<i64>,
    #[serde(default)]
    error: Option<String>,
}

/// The fate of each of the `records` records of a request, from the proxy's 200 answer
/// `{"offsets":[{"partition":..,"offset":..,"error_code":..,"error":..},...]}` (one entry per
/// record, in order). `Err` when the answer is not that: the whole request is then sent again.
pub fn written(answer: &[u8], records: usize) -> Result<Vec<Written>, String> {
    let parsed: Offsets = serde_json::from_slice(answer).map_err(|e| {
        format!("unreadable produce answer ({e}): {}", crate::http_client::excerpt(&String::from_utf8_lossy(answer)))
    })?;
    if parsed.offsets.len() != records {
        return Err(format!("the proxy answered {} offsets for {records} records", parsed.offsets.len()));
    }
    Ok(parsed
        .offsets
        .into_iter()
        .map(|o| {
            let words = || {
                format!(
                    "error_code {}: {}",
                    o.error_code.unwrap_or_default(),
                    o.error.as_deref().unwrap_or("(no message)")
                )
            };
            match o.error_code {
                None => Written::Taken,
                // Non-retriable covers authorization failures too: those are about the destination
                // and must never drop a record (docs/failures.md).
                Some(1) if !about_the_destination(o.error.as_deref().unwrap_or("")) => Written::Rejected(words()),
                Some(_) => Written::Retry(words()),
            }
        })
        .collect())
}

/// Whether a non-retriable Kafka error, in the proxy's words, is about the topic or our rights to it
/// (`TopicAuthorizationException`, `UnknownTopicOrPartitionException`, `InvalidTopicException`) rather
/// than about the record itself (`RecordTooLargeException`, `InvalidRecordException`).
fn about_the_destination(error: &str) -> bool {
    let e = error.to_ascii_lowercase();
    [
        "authoriz",
        "not authorized",
        "unknowntopic",
        "unknown topic",
        "invalidtopic",
        "invalid topic",
        "sasl",
        "authentic",
    ]
    .iter()
    .any(|w| e.contains(w))
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    error_code: Option<i64>,
    #[serde(default)]
    message: Option<String>,
}

/// The proxy's own words from an error answer `{"error_code":40401,"message":"..."}`, or an
/// excerpt of whatever else it sent.
pub fn error_words(answer: &[u8]) -> String {
    let text = String::from_utf8_lossy(answer);
    match serde_json::from_slice::<ErrorBody>(answer) {
        Ok(ErrorBody { error_code: Some(code), message }) => {
            format!("error_code {code}: {}", message.as_deref().unwrap_or("(no message)"))
        }
        Ok(ErrorBody { error_code: None, message: Some(m) }) => m,
        _ if text.trim().is_empty() => "(empty answer)".into(),
        _ => crate::http_client::excerpt(&text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use smartcity_model::{Catalogue, ReadingStream, SensorKind};

    fn readings() -> Vec<Reading> {
        let t = chrono::Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).unwrap();
        ReadingStream::new(Catalogue::default_ten(), 7).tick(t)
    }

    #[test]
    fn records_carry_base64_key_and_value() {
        let r = &readings()[0];
        let rec: serde_json::Value = serde_json::from_str(&record(r)).unwrap();
        let key = BASE64.decode(rec["key"].as_str().unwrap()).unwrap();
        let value = BASE64.decode(rec["value"].as_str().unwrap()).unwrap();
        assert_eq!(key, r.sensor_id.as_bytes());
        assert_eq!(json::decode(&value).unwrap().sensor_id, r.sensor_id);
    }

    #[test]
    fn plan_groups_by_topic_and_respects_limits() {
        let batch = readings();
        let topic_of = |r: &Reading| r.kind() as usize;
        let requests = plan(&batch, topic_of, 1, 1 << 20);
        assert_eq!(requests.len(), batch.len(), "one record per request");
        let mut seen: Vec<usize> = requests.iter().flat_map(|r| r.indices.clone()).collect();
        seen.sort();
        assert_eq!(seen, (0..batch.len()).collect::<Vec<_>>(), "every reading exactly once");
        for req in plan(&batch, topic_of, 500, 1 << 20) {
            let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
            let records = body["records"].as_array().unwrap();
            assert_eq!(records.len(), req.indices.len());
            for (rec, &i) in records.iter().zip(&req.indices) {
                assert_eq!(batch[i].kind() as usize, req.topic);
                assert_eq!(BASE64.decode(rec["key"].as_str().unwrap()).unwrap(), batch[i].sensor_id.as_bytes());
            }
        }
        // One topic for all, bodies cut by size: each body within the limit unless it holds one record.
        let one = record(&batch[0]).len();
        let limit = BODY_START.len() + BODY_END.len() + 2 * one + 1;
        for req in plan(&batch, |_| 0, 500, limit) {
            assert!(req.body.len() <= limit || req.indices.len() == 1, "{} > {limit}", req.body.len());
        }
        assert!(plan(&batch, |_| 0, 500, 10).iter().all(|r| r.indices.len() == 1));
        assert!(plan(&[], |_| 0, 500, 10).is_empty());
    }

    #[test]
    fn offsets_map_back_to_the_batch() {
        let batch = readings();
        let requests = plan(&batch, |r| usize::from(r.kind() == SensorKind::Traffic), 500, 1 << 20);
        let traffic = requests.iter().find(|r| r.topic == 1).unwrap();
        assert!(traffic.indices.len() >= 2);
        let mut entries =
            vec![r#"{"partition":0,"offset":5,"error_code":null,"error":null}"#.to_string(); traffic.indices.len()];
        entries[0] = r#"{"partition":null,"offset":null,"error_code":1,"error":"too large"}"#.into();
        entries[1] = r#"{"partition":null,"offset":null,"error_code":50002,"error":"timeout"}"#.into();
        let answer = format!("{{\"offsets\":[{}],\"key_schema_id\":null}}", entries.join(","));
        let fates = written(answer.as_bytes(), traffic.indices.len()).unwrap();
        assert_eq!(fates[0], Written::Rejected("error_code 1: too large".into()));
        assert!(matches!(fates[1], Written::Retry(ref m) if m.contains("50002")));
        assert!(fates[2..].iter().all(|f| *f == Written::Taken));
        // The batch indices behind those answers are traffic readings.
        assert_eq!(batch[traffic.indices[0]].kind(), SensorKind::Traffic);
        assert!(written(answer.as_bytes(), traffic.indices.len() + 1).is_err(), "wrong length");
        assert!(written(b"<html>", 1).is_err());
        // Non-retriable, but about our rights to the topic: retried, never dropped.
        let denied = r#"{"offsets":[{"partition":null,"offset":null,"error_code":1,"error":"Not authorized to access topics: [x]"}]}"#;
        assert!(
            matches!(&written(denied.as_bytes(), 1).unwrap()[0], Written::Retry(m) if m.contains("Not authorized"))
        );
    }

    #[test]
    fn error_bodies_give_the_proxys_words() {
        assert_eq!(
            error_words(br#"{"error_code":40401,"message":"Topic not found."}"#),
            "error_code 40401: Topic not found."
        );
        assert_eq!(error_words(b"  <h1>Bad Gateway</h1> "), "<h1>Bad Gateway</h1>");
        assert_eq!(error_words(b""), "(empty answer)");
        assert_eq!(error_words(br#"{"message":"nope"}"#), "nope");
    }
}
