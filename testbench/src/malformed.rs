//! A corpus of malformed payloads for the gateway, each with the `reason` it must be refused with
//! (`smartcity_gateway::decode::REASONS`): the unit test `gateway/tests/decode_corpus.rs` runs every
//! case through the gateway's decoder; end-to-end tests can publish them to a running gateway and
//! expect one dead letter per case.
//!
//! Every case is derived from one valid reading (its JSON from `smartcity_model::codec::json::encode`,
//! edited as a `serde_json::Value` or as bytes), so the corpus follows the wire format and every kind
//! can be used. Publish a case on the valid reading's topic (`city/sensors/{kind}/{id}`): apart from
//! the "topic" cases, the payload is refused before the topic is compared with it.

use serde_json::{json, Map, Value};
use smartcity_model::codec::json;
use smartcity_model::dynamics::Simulation;
use smartcity_model::{Catalogue, Reading, SensorKind};

/// The gateway's default `max_message_bytes`, which the "size" cases exceed.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 65_536;

/// One malformed payload.
#[derive(Debug, Clone)]
pub struct Case {
    /// Unique in the corpus, kebab-case (`lat-nan-literal`).
    pub name: &'static str,
    pub payload: Vec<u8>,
    /// The refusal reason the gateway gives: one of `smartcity_gateway::decode::REASONS`.
    pub reason: &'static str,
    /// The `id` string of the document the case was made from (valid or not), when the payload still
    /// contains it as written on the wire (JSON-escaped): what a dead letter's payload can be searched
    /// for. `None` when it does not (not JSON, no `id`, `id` not a string, cut off, or bytes that are
    /// not UTF-8 in its place).
    pub sensor_id_hint: Option<String>,
}

/// Stands for raw bytes (`NaN`, invalid UTF-8) spliced into the serialized document, where JSON
/// serialization cannot put them. Its quotes are replaced too.
const RAW: &str = "@@raw-bytes@@";

/// The payloads the gateway must refuse, built from `valid` (a reading that decodes and matches its
/// topic). At least 28 cases; names are unique.
pub fn corpus(valid: &Reading) -> Vec<Case> {
    let base = Doc::of(valid);
    let good = json::encode(valid);
    let mut out = Vec::new();
    let mut add = |name: &'static str, reason: &'static str, payload: Vec<u8>, id_named: Option<String>| {
        let sensor_id_hint = id_named.filter(|id| contains_id(&payload, id));
        out.push(Case { name, payload, reason, sensor_id_hint });
    };
    let id = || Some(valid.sensor_id.clone());
    let edit = |f: &dyn Fn(&mut Map<String, Value>)| base.edited(f);

    // --- not a JSON object: "syntax"
    add("not-json", "syntax", b"temperature=21.5 humidity=0.71".to_vec(), None);
    add("empty", "syntax", Vec::new(), None);
    add("whitespace-only", "syntax", b" \r\n\t ".to_vec(), None);
    add("truncated-half", "syntax", good[..good.len() / 2].to_vec(), id());
    add("truncated-last-brace", "syntax", good[..good.len() - 1].to_vec(), id());
    add("json-array", "syntax", [b"[", &good[..], b"]"].concat(), id());
    add("json-string", "syntax", serde_json::to_vec(&String::from_utf8_lossy(&good)).expect("string"), id());
    add("json-null", "syntax", b"null".to_vec(), None);
    add("json-number", "syntax", b"42".to_vec(), None);
    add("two-documents", "syntax", [&good[..], b"\n", &good[..]].concat(), id());
    add("utf8-bom-prefix", "syntax", [&[0xEF, 0xBB, 0xBF][..], &good[..]].concat(), id());

    // --- top-level fields of the wrong type, missing or unknown: "syntax"
    add("seq-string", "syntax", edit(&|d| set(d, "seq", json!(valid.seq.to_string()))), id());
    add("seq-negative", "syntax", edit(&|d| set(d, "seq", json!(-1))), id());
    add("seq-fraction", "syntax", edit(&|d| set(d, "seq", json!(1.5))), id());
    add("lat-string", "syntax", edit(&|d| set(d, "lat", json!(valid.lat.to_string()))), id());
    add("lon-null", "syntax", edit(&|d| set(d, "lon", Value::Null)), id());
    add("id-number", "syntax", edit(&|d| set(d, "id", json!(42))), None);
    add("version-string", "syntax", edit(&|d| set(d, "v", json!("1"))), id());
    add("lat-nan-literal", "syntax", edit_raw(&base, |d| set(d, "lat", RAW), b"NaN"), id());
    add("lon-infinity-literal", "syntax", edit_raw(&base, |d| set(d, "lon", RAW), b"-Infinity"), id());
    add("lat-1e999", "syntax", edit_raw(&base, |d| set(d, "lat", RAW), b"1e999"), id());
    let first_float = first_float_field(&base);
    add("value-nan-literal", "syntax", edit_raw(&base, |d| set_value(d, &first_float, RAW), b"NaN"), id());
    add("value-infinity-literal", "syntax", edit_raw(&base, |d| set_value(d, &first_float, RAW), b"Infinity"), id());
    for (name, field) in [
        ("missing-v", "v"),
        ("missing-id", "id"),
        ("missing-type", "type"),
        ("missing-values", "values"),
        ("missing-observedAt", "observedAt"),
        ("missing-seq", "seq"),
    ] {
        let named = if field == "id" { None } else { id() };
        add(name, "syntax", edit(&|d| remove(d, field)), named);
    }
    add("unknown-kind", "syntax", edit(&|d| set(d, "type", json!("radar"))), id());
    add("unknown-commune", "syntax", edit(&|d| set(d, "commune", json!("Paris"))), id());
    add("duplicate-key", "syntax", duplicate_v(&good), id());
    add("observedAt-number", "syntax", edit(&|d| set(d, "observedAt", json!(1_763_724_600))), id());
    add("invalid-utf8-in-id", "syntax", edit_raw(&base, |d| set(d, "id", RAW), b"\"sensor-\xFF\xFE-01\""), None);
    add("invalid-utf8-in-commune", "syntax", edit_raw(&base, |d| set(d, "commune", RAW), b"\"Le Fran\xE7ois\""), id());
    add("lone-surrogate-in-id", "syntax", edit_raw(&base, |d| set(d, "id", RAW), br#""sensor-\ud800-01""#), None);

    // --- wire version
    add("unknown-version", "version", edit(&|d| set(d, "v", json!(99))), id());
    add("version-zero", "version", edit(&|d| set(d, "v", json!(0))), id());

    // --- the `values` object
    add("values-string", "values", edit(&|d| set(d, "values", json!("fast"))), id());
    add("values-empty-array", "values", edit(&|d| set(d, "values", json!([]))), id());
    // serde would read a struct from a positional array: the decoder must not.
    add(
        "values-positional-array",
        "values",
        edit(&|d| set(d, "values", json!([50.0, 0.5, 40.0, 1.0, 2.0, 3.0]))),
        id(),
    );
    // `values` is kept as raw JSON text by the first pass, so what only its second pass (the kind's
    // struct) sees is a "values" refusal: too deep a nesting, a number out of f64's range. NaN and
    // Infinity are not JSON at all: the first pass refuses them ("syntax", above).
    add("values-deep-nesting", "values", edit_raw(&base, |d| set(d, "values", RAW), &nested(500)), id());
    add("value-1e999", "values", edit_raw(&base, |d| set_value(d, &first_float, RAW), b"1e999"), id());
    add("values-empty-object", "values", edit(&|d| set(d, "values", json!({}))), id());
    add("values-field-wrong-type", "values", edit(&|d| set_value(d, &first_float, json!("12.5"))), id());
    add("values-unknown-field", "values", edit(&|d| set_value(d, "speedKmh", json!(12.5))), id());
    // A missing field is a partial reading (a device that measures part of its kind), not an error;
    // a null is no way to write absence.
    add("values-null-field", "values", edit(&|d| set_value(d, &first_float, Value::Null)), id());
    let other = other_kind(valid.kind());
    add("values-of-another-kind", "values", edit(&|d| set(d, "type", json!(other.as_str()))), id());

    // --- observedAt
    add("observedAt-not-rfc3339", "time", edit(&|d| set(d, "observedAt", json!("21/11/2026 11:30"))), id());
    add("observedAt-no-offset", "time", edit(&|d| set(d, "observedAt", json!("2026-11-21T11:30:00"))), id());
    add("observedAt-empty", "time", edit(&|d| set(d, "observedAt", json!(""))), id());
    add("observedAt-feb-30", "time", edit(&|d| set(d, "observedAt", json!("2026-02-30T11:30:00Z"))), id());

    // --- decodes, but not a possible reading: "invalid"
    add("value-negative", "invalid", edit(&|d| set_value(d, &first_float, json!(-1.0e9))), id());
    add("value-huge", "invalid", edit(&|d| set_value(d, &first_float, json!(1.0e300))), id());
    add("lat-91", "invalid", edit(&|d| set(d, "lat", json!(91.0))), id());
    add("lon-minus-181", "invalid", edit(&|d| set(d, "lon", json!(-181.0))), id());
    add("spots-over-total", "invalid", parking_spots_over_total(valid), id());
    add("id-empty", "invalid", edit(&|d| set(d, "id", json!(""))), Some(String::new()));
    let long = "s".repeat(129);
    add("id-129-chars", "invalid", edit(&|d| set(d, "id", json!(long))), Some(long.clone()));
    for (name, ch) in [
        ("id-with-comma", ','),
        ("id-with-space", ' '),
        ("id-with-equals", '='),
        ("id-with-quote", '"'),
        ("id-with-newline", '\n'),
        ("id-with-slash", '/'),
        ("id-with-hash", '#'),
        ("id-with-plus", '+'),
        ("id-with-nul", '\0'),
        ("id-with-non-ascii", 'é'),
    ] {
        let bad = format!("{}{ch}x", valid.sensor_id);
        add(name, "invalid", edit(&|d| set(d, "id", json!(bad))), Some(bad.clone()));
    }

    // --- a well-formed reading that its topic does not name
    let stranger = format!("{}-other", valid.sensor_id);
    add("id-not-the-topic", "topic", edit(&|d| set(d, "id", json!(stranger))), Some(stranger.clone()));
    add("kind-not-the-topic", "topic", json::encode(&reading_of_kind(other, valid)), id());

    // --- over `max_message_bytes`: refused before parsing
    add("size-10MiB", "size", padded(&base, 10 * 1024 * 1024), id());
    add("size-limit-plus-one", "size", padded(&base, DEFAULT_MAX_MESSAGE_BYTES + 1), id());
    out
}

/// `payload` holds `id` as JSON writes it inside a string (escaped).
fn contains_id(payload: &[u8], id: &str) -> bool {
    let quoted = serde_json::to_string(id).expect("a string serializes");
    let escaped = &quoted.as_bytes()[1..quoted.len() - 1];
    escaped.is_empty() || payload.windows(escaped.len()).any(|w| w == escaped)
}

/// A valid reading as an editable JSON object.
struct Doc(Map<String, Value>);

impl Doc {
    fn of(r: &Reading) -> Doc {
        match serde_json::from_slice(&json::encode(r)) {
            Ok(Value::Object(map)) => Doc(map),
            other => panic!("json::encode did not give an object: {other:?}"),
        }
    }

    fn edited(&self, f: &dyn Fn(&mut Map<String, Value>)) -> Vec<u8> {
        let mut map = self.0.clone();
        f(&mut map);
        serde_json::to_vec(&Value::Object(map)).expect("a Value serializes")
    }
}

/// The document edited by `f` (which puts [`RAW`] somewhere), with `"RAW"` replaced by `raw`.
fn edit_raw(doc: &Doc, f: impl Fn(&mut Map<String, Value>), raw: &[u8]) -> Vec<u8> {
    let text = doc.edited(&f);
    let marker = format!("\"{RAW}\"").into_bytes();
    let at = text.windows(marker.len()).position(|w| w == marker).expect("the edit placed the marker");
    [&text[..at], raw, &text[at + marker.len()..]].concat()
}

fn set(doc: &mut Map<String, Value>, key: &str, value: impl Into<Value>) {
    doc.insert(key.to_string(), value.into());
}

fn remove(doc: &mut Map<String, Value>, key: &str) {
    doc.remove(key);
}

fn values(doc: &mut Map<String, Value>) -> &mut Map<String, Value> {
    doc.get_mut("values").and_then(Value::as_object_mut).expect("a reading has a `values` object")
}

fn set_value(doc: &mut Map<String, Value>, key: &str, value: impl Into<Value>) {
    values(doc).insert(key.to_string(), value.into());
}

/// The first `values` field holding a float (every kind has one; the integers, booleans and enums
/// are skipped so that -1e9 is a range error, not a type error).
fn first_float_field(doc: &Doc) -> String {
    let values = doc.0.get("values").and_then(Value::as_object).expect("a reading has a `values` object");
    values.iter().find(|(_, v)| v.is_f64()).map(|(k, _)| k.clone()).expect("every kind has a float value")
}

/// `[[[...]]]`, deeper than serde_json's recursion limit (128).
fn nested(depth: usize) -> Vec<u8> {
    [vec![b'['; depth], vec![b']'; depth]].concat()
}

/// `{"v":1,"v":1,...}`: the same key twice.
fn duplicate_v(good: &[u8]) -> Vec<u8> {
    assert!(good.starts_with(b"{\"v\":1,"), "json::encode writes `v` first");
    [&b"{\"v\":1,"[..], &good[1..]].concat()
}

/// A valid reading grown to exactly `len` bytes by an unknown top-level field (which the decoder
/// would ignore): only its size is wrong.
fn padded(doc: &Doc, len: usize) -> Vec<u8> {
    let empty = doc.edited(&|d| set(d, "padding", ""));
    let fill = len.checked_sub(empty.len()).expect("target size above the reading's own");
    doc.edited(&|d| set(d, "padding", " ".repeat(fill)))
}

/// Another kind than `kind`.
fn other_kind(kind: SensorKind) -> SensorKind {
    if kind == SensorKind::Noise {
        SensorKind::Traffic
    } else {
        SensorKind::Noise
    }
}

/// A reading of `kind` with the id, time and sequence of `like` (values from the simulation).
fn reading_of_kind(kind: SensorKind, like: &Reading) -> Reading {
    let cat = Catalogue::default_ten();
    let sensor = cat.sensors().iter().find(|s| s.kind == kind).expect("the default catalogue has every kind");
    let mut r = Simulation::new(1).reading(sensor, like.observed_at, like.seq);
    r.sensor_id = like.sensor_id.clone();
    r
}

/// A parking reading (`valid` itself, or a simulated one with its id) whose availableSpotNumber
/// exceeds totalSpotNumber.
fn parking_spots_over_total(valid: &Reading) -> Vec<u8> {
    let parking =
        if valid.kind() == SensorKind::Parking { valid.clone() } else { reading_of_kind(SensorKind::Parking, valid) };
    Doc::of(&parking).edited(&|d| {
        let total = values(d)["totalSpotNumber"].as_u64().expect("totalSpotNumber is an integer");
        set_value(d, "availableSpotNumber", total + 1);
    })
}
