//! The pure part of the REST proxy source: request bodies, the reading of fetched records, and what
//! an error answer means for the consumer instance. The HTTP calls are in `source.rs`.
//!
//! Nothing here panics on what the proxy sends: a record value that is not base64 is handed on as
//! the raw text (the gateway then sets it aside as a dead letter), an answer that cannot be read at
//! all is a [`Trouble::Retry`].

use super::error_words;
use crate::http_status::{self, Advice, Class};
use crate::kafka::commits::Point;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};

/// `error_code` of an unknown consumer instance (the proxy restarted, expired or deleted it).
pub const UNKNOWN_INSTANCE: i64 = 40403;
/// `error_code` of a create request whose instance name is taken.
pub const INSTANCE_EXISTS: i64 = 40902;
/// `error_code` of a fetch by an instance without subscription.
pub const NOT_SUBSCRIBED: i64 = 40903;

/// Why a request to the proxy did not do what it should.
#[derive(Debug, Clone, PartialEq)]
pub enum Trouble {
    /// The proxy does not know our consumer instance (any more), or it lost its subscription:
    /// create both again.
    Gone(String),
    /// The name of the instance to create is taken (`40902`).
    Exists(String),
    /// No usable answer (proxy unreachable, 5xx, an answer that is not what the API says): try
    /// again after a back-off.
    Retry(String),
    /// The proxy can never serve this request as sent (a 400, 409 or 422 other than the ones
    /// above: a body it cannot take): stop and tell the user. Credentials refused, a missing
    /// endpoint (not a v2 REST proxy) and anything unexpected are the proxy's side (`Retry`, with
    /// what to change in the message): the source waits for the operator instead of stopping the
    /// gateway (docs/failures.md).
    Fatal(String),
}

impl std::fmt::Display for Trouble {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Trouble::Gone(m) | Trouble::Exists(m) | Trouble::Retry(m) | Trouble::Fatal(m) => f.write_str(m),
        }
    }
}

#[derive(Deserialize)]
struct ErrorCode {
    #[serde(default)]
    error_code: Option<i64>,
}

/// The `error_code` of an error answer `{"error_code":40403,"message":"..."}`.
pub fn error_code(answer: &[u8]) -> Option<i64> {
    serde_json::from_slice::<ErrorCode>(answer).ok()?.error_code
}

/// What a non-2xx answer to `what` (`GET /consumers/g/instances/i/records`) means.
pub fn trouble(status: u16, answer: &[u8], what: &str) -> Trouble {
    let message = format!("HTTP {status} from {what}: {}", error_words(answer));
    match (status, error_code(answer)) {
        (404, Some(UNKNOWN_INSTANCE)) | (409, Some(NOT_SUBSCRIBED)) => return Trouble::Gone(message),
        (409, Some(INSTANCE_EXISTS)) => return Trouble::Exists(message),
        _ => {}
    }
    let Ok(code) = reqwest::StatusCode::from_u16(status) else { return Trouble::Retry(message) };
    let advice = Advice {
        auth: "the proxy refused our credentials: check user and password_file",
        missing: "is the url a Kafka REST proxy with the v2 API?",
    };
    match http_status::failure(code, None, what, &error_words(answer), &advice) {
        (Class::Data, f) => Trouble::Fatal(f.message),
        (_, f) => Trouble::Retry(f.to_string()),
    }
}

/// The body creating our consumer instance: binary format (base64 keys and values), and offsets
/// committed only by us.
pub fn create_body(instance: &str) -> Value {
    json!({
        "name": instance,
        "format": "binary",
        "auto.offset.reset": "earliest",
        "auto.commit.enable": "false",
    })
}

/// The body subscribing to `topics`.
pub fn subscription_body(topics: &[String]) -> Value {
    json!({ "topics": topics })
}

/// The body committing `points` (the proxy stores them as given: the next offset to read).
pub fn offsets_body(points: &[Point]) -> Value {
    let offsets: Vec<Value> = points
        .iter()
        .map(|(topic, partition, offset)| json!({"topic": topic, "partition": partition, "offset": offset}))
        .collect();
    json!({ "offsets": offsets })
}

/// One record of a fetch answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetched {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// The key, when the record has one.
    pub key: Option<Bytes>,
    /// The value; empty when the record has none.
    pub value: Bytes,
}

#[derive(Deserialize)]
struct RawRecord {
    topic: String,
    partition: i32,
    offset: i64,
    #[serde(default)]
    key: Value,
    #[serde(default)]
    value: Value,
}

/// The bytes of a binary-format field: base64 decoded; a string that is not base64 as its own
/// text, anything else (a proxy in another format) as its JSON text, so that what cannot be read
/// still reaches the dead letters instead of vanishing.
fn bytes_of(v: Value) -> Option<Bytes> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(match BASE64.decode(&s) {
            Ok(b) => Bytes::from(b),
            Err(_) => Bytes::from(s.into_bytes()),
        }),
        other => Some(Bytes::from(other.to_string().into_bytes())),
    }
}

/// The records of a 200 answer to a fetch, `[{"topic","key","value","partition","offset"},...]`.
/// `Err` when it is not that: the records it held cannot be placed (their offsets unknown), so the
/// caller must read them again from the committed offsets.
pub fn records(answer: &[u8]) -> Result<Vec<Fetched>, String> {
    let raw: Vec<RawRecord> = serde_json::from_slice(answer).map_err(|e| {
        format!("unreadable records answer ({e}): {}", crate::http_client::excerpt(&String::from_utf8_lossy(answer)))
    })?;
    Ok(raw
        .into_iter()
        .map(|r| Fetched {
            topic: r.topic,
            partition: r.partition,
            offset: r.offset,
            key: bytes_of(r.key),
            value: bytes_of(r.value).unwrap_or_default(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_decoded_and_bad_base64_is_kept_raw() {
        let answer = br#"[
            {"topic":"noise","key":"c2Vuc29yLTE=","value":"eyJhIjoxfQ==","partition":2,"offset":41},
            {"topic":"noise","key":null,"value":"not base64!","partition":2,"offset":42},
            {"topic":"noise","key":null,"value":null,"partition":0,"offset":7},
            {"topic":"noise","value":{"json":true},"partition":0,"offset":8}
        ]"#;
        let r = records(answer).unwrap();
        assert_eq!(r.len(), 4);
        assert_eq!((r[0].topic.as_str(), r[0].partition, r[0].offset), ("noise", 2, 41));
        assert_eq!(r[0].key.as_deref(), Some(&b"sensor-1"[..]));
        assert_eq!(&r[0].value[..], br#"{"a":1}"#);
        assert_eq!(&r[1].value[..], b"not base64!", "handed on raw, to be dead-lettered");
        assert_eq!((r[2].key.clone(), r[2].value.len()), (None, 0), "no value: empty payload");
        assert_eq!(&r[3].value[..], br#"{"json":true}"#);
        assert_eq!(records(b"[]").unwrap(), vec![]);
    }

    #[test]
    fn unreadable_answers_are_errors_not_panics() {
        assert!(records(b"<html>502</html>").unwrap_err().contains("<html>502</html>"));
        assert!(records(br#"{"records":[]}"#).is_err());
        assert!(records(br#"[{"topic":"t","value":"eA==","partition":0}]"#).is_err(), "no offset: cannot be placed");
        assert!(records(br#"[{"topic":"t","partition":0,"offset":"x"}]"#).is_err());
    }

    #[test]
    fn error_answers_sort_into_recreate_retry_or_stop() {
        let gone = br#"{"error_code":40403,"message":"Consumer instance not found."}"#;
        let what = "GET /consumers/g/instances/i/records";
        assert_eq!(
            trouble(404, gone, what),
            Trouble::Gone(format!("HTTP 404 from {what}: error_code 40403: Consumer instance not found."))
        );
        let unsubscribed = br#"{"error_code":40903,"message":"Consumer is not subscribed to any topics"}"#;
        assert!(matches!(trouble(409, unsubscribed, what), Trouble::Gone(_)));
        assert!(matches!(trouble(500, br#"{"error_code":50002,"message":"Kafka error"}"#, what), Trouble::Retry(_)));
        assert!(matches!(trouble(503, b"<html>", what), Trouble::Retry(_)));
        assert!(matches!(trouble(429, b"", what), Trouble::Retry(_)));
        // The proxy's side: credentials, a missing endpoint, a format it does not speak. The source
        // waits and says what to change; it never stops the gateway for it.
        assert!(
            matches!(trouble(401, b"", what), Trouble::Retry(m) if m.starts_with("auth:") && m.contains("credentials"))
        );
        assert!(matches!(trouble(404, b"Not Found", what), Trouble::Retry(m) if m.contains("REST proxy")));
        assert!(matches!(trouble(406, br#"{"error_code":40601,"message":"format"}"#, what), Trouble::Retry(_)));
        assert!(
            matches!(trouble(422, br#"{"error_code":42201,"message":"bad body"}"#, what), Trouble::Fatal(m) if m.contains("bad body"))
        );
        let exists = br#"{"error_code":40902,"message":"Consumer instance with the specified name already exists."}"#;
        assert!(matches!(trouble(409, exists, "POST /consumers/g"), Trouble::Exists(_)));
        assert_eq!(error_code(exists), Some(INSTANCE_EXISTS));
        assert_eq!(error_code(b"nope"), None);
    }

    #[test]
    fn bodies_follow_the_v2_api() {
        assert_eq!(create_body("gw")["auto.commit.enable"], "false");
        assert_eq!(create_body("gw")["format"], "binary");
        assert_eq!(subscription_body(&["a".into(), "b".into()]), json!({"topics": ["a", "b"]}));
        assert_eq!(
            offsets_body(&[("a".into(), 1, 10)]),
            json!({"offsets": [{"topic": "a", "partition": 1, "offset": 10}]})
        );
    }
}
