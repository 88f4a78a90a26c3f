//! A sensor's history read back from InfluxDB for the map's chart ([`crate::history`]): one Flux
//! query (`POST /api/v2/query`), answered as annotated CSV, turned into points shaped like wire
//! readings.
//!
//! The query downsamples on the server: windows of [`Window::every_seconds`] keep at most
//! [`MAX_POINTS`] points whatever the range, so 30 days cost no more to draw than 10 minutes.
//! Numeric values are averaged over each window (a mean draws the trend; a sampled value would
//! alias), while `seq`, `lat`, `lon` and the string and boolean values keep the window's last one
//! (a mean of a sequence number or of `"moderate"` means nothing). A point is stamped with the
//! start of its window, so it never claims a time later than the readings it summarises.

use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION};
use reqwest::{Client, Url};
use serde::Serialize;
use serde_json::{Map, Value};
use smartcity_connectors::http_client;
use smartcity_connectors::influxdb::InfluxConfig;
use std::time::Duration;

/// Most points one history answer holds (per field: every point carries every field).
pub const MAX_POINTS: i64 = 500;

/// Fields whose window value is the last one, not the mean: the sequence number, the position, and
/// the non-numeric values of docs/line-protocol.md (a unit test checks this list against the codec).
pub const LAST_FIELDS: [&str; 7] = ["seq", "lat", "lon", "congested", "airQualityLevel", "status", "powerState"];

/// A time range, `start` included, `stop` excluded (as Flux's `range`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: DateTime<Utc>,
    pub stop: DateTime<Utc>,
}

impl Window {
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.start <= t && t < self.stop
    }

    /// The aggregation window, in whole seconds, that keeps at most [`MAX_POINTS`] points. Windows
    /// are aligned on the epoch, not on `start`, so the range cuts one more (partial) window: hence
    /// the division by `MAX_POINTS - 1`.
    pub fn every_seconds(&self) -> i64 {
        let span_ms = (self.stop - self.start).num_milliseconds().max(1);
        let per_window = (MAX_POINTS - 1) * 1000;
        ((span_ms + per_window - 1) / per_window).max(1)
    }
}

/// One point of a history: a wire reading's shape (docs/wire-format.md) without its `v`, since a
/// downsampled point is not a reading: its numbers are means over a window.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Point {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub commune: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lat: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lon: Option<f64>,
    #[serde(serialize_with = "wire_time")]
    pub observed_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    pub values: Map<String, Value>,
}

fn wire_time<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&smartcity_model::codec::json::format_time(*t))
}

/// `s` as a Flux string literal: quotes, backslashes and the `${` of interpolation escaped.
pub fn flux_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '$' if chars.peek() == Some(&'{') => out.push_str("\\$"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn flux_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `r._field == "a" or r._field == "b"…` (or its negation): comparisons InfluxDB pushes down to
/// storage, unlike `contains()`.
fn field_predicate(fields: &[&str], equal: bool) -> String {
    let (op, join) = if equal { ("==", " or ") } else { ("!=", " and ") };
    fields.iter().map(|f| format!("r._field {op} {}", flux_string(f))).collect::<Vec<_>>().join(join)
}

/// The Flux query of sensor `id`'s points over `window` in `bucket`: fields pivoted into one row
/// per window, means for numbers, last values for the rest.
pub fn query(bucket: &str, id: &str, window: &Window) -> String {
    let every = window.every_seconds();
    format!(
        r#"data = from(bucket: {bucket})
  |> range(start: {start}, stop: {stop})
  |> filter(fn: (r) => r.sensor_id == {id})
means = data
  |> filter(fn: (r) => {numeric})
  |> aggregateWindow(every: {every}s, fn: mean, createEmpty: false, timeSrc: "_start")
lasts = data
  |> filter(fn: (r) => {other})
  |> aggregateWindow(every: {every}s, fn: last, createEmpty: false, timeSrc: "_start")
union(tables: [means, lasts])
  |> keep(columns: ["_time", "_measurement", "_field", "_value", "commune", "kind", "sensor_id"])
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
"#,
        bucket = flux_string(bucket),
        start = flux_time(window.start),
        stop = flux_time(window.stop),
        id = flux_string(id),
        numeric = field_predicate(&LAST_FIELDS, false),
        other = field_predicate(&LAST_FIELDS, true),
    )
}

/// Splits CSV text into records (RFC 4180: a quoted field may hold commas, doubled quotes and line
/// breaks). A blank line is a record of one empty field.
fn records(text: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                c => field.push(c),
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            ',' => record.push(std::mem::take(&mut field)),
            '\r' => {}
            '\n' => {
                record.push(std::mem::take(&mut field));
                out.push(std::mem::take(&mut record));
            }
            c => field.push(c),
        }
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        out.push(record);
    }
    out
}

/// A cell as JSON, typed by its `#datatype` annotation; `None` when empty (a field the window lacks).
fn cell(datatype: &str, text: &str) -> Option<Value> {
    if text.is_empty() {
        return None;
    }
    match datatype {
        "long" => text.parse::<i64>().ok().map(Value::from),
        "unsignedLong" => text.parse::<u64>().ok().map(Value::from),
        // JSON has no NaN or infinity: such a value is left out.
        "double" => text.parse::<f64>().ok().and_then(serde_json::Number::from_f64).map(Value::Number),
        "boolean" => Some(Value::Bool(text == "true")),
        "string" => Some(Value::String(text.to_string())),
        // No annotation: a number if it reads as one.
        _ => Some(
            text.parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map_or_else(|| Value::String(text.into()), Value::Number),
        ),
    }
}

/// Columns of the pivoted rows that are not values of the reading.
const NOT_VALUES: [&str; 13] = [
    "",
    "result",
    "table",
    "_start",
    "_stop",
    "_time",
    "_measurement",
    "_field",
    "_value",
    "commune",
    "kind",
    "sensor_id",
    "seq",
];

/// The points of an annotated CSV answer (`dialect.annotations: ["datatype"]`), sorted by time.
/// Several tables (a sensor that moved commune is two series) are merged; an error table (what
/// InfluxDB sends when a query fails after it began answering) is an `Err` with InfluxDB's words.
pub fn parse_csv(text: &str) -> Result<Vec<Point>, String> {
    let mut datatypes: Vec<String> = Vec::new();
    let mut header: Option<Vec<String>> = None;
    let mut points = Vec::new();
    for record in records(text) {
        if record.iter().all(String::is_empty) {
            // A blank line: the next table has its own annotations and header.
            header = None;
            datatypes.clear();
            continue;
        }
        if record[0].starts_with('#') {
            if record[0] == "#datatype" {
                datatypes = record;
            }
            header = None;
            continue;
        }
        let Some(columns) = &header else {
            header = Some(record);
            continue;
        };
        let at = |name: &str| columns.iter().position(|c| c == name).and_then(|i| record.get(i)).map(String::as_str);
        if columns.iter().any(|c| c == "error") {
            let message = at("error").unwrap_or_default();
            return Err(if message.is_empty() { "an error without a message".into() } else { message.to_string() });
        }
        points.push(point(columns, &datatypes, &record)?);
    }
    points.sort_by_key(|p| p.observed_at);
    Ok(points)
}

fn point(columns: &[String], datatypes: &[String], record: &[String]) -> Result<Point, String> {
    let text = |name: &str| {
        columns.iter().position(|c| c == name).and_then(|i| record.get(i)).map(String::as_str).unwrap_or_default()
    };
    let time = text("_time");
    let observed_at = DateTime::parse_from_rfc3339(time)
        .map_err(|_| format!("a row with `_time` = `{time}`, not an RFC 3339 time"))?
        .with_timezone(&Utc);
    let mut values = Map::new();
    for (i, name) in columns.iter().enumerate() {
        if NOT_VALUES.contains(&name.as_str()) {
            continue;
        }
        let datatype = datatypes.get(i).map(String::as_str).unwrap_or_default();
        if let Some(v) = cell(datatype, record.get(i).map(String::as_str).unwrap_or_default()) {
            values.insert(name.clone(), v);
        }
    }
    let number = |v: Option<Value>| v.and_then(|v| v.as_f64());
    Ok(Point {
        id: text("sensor_id").to_string(),
        kind: text("_measurement").to_string(),
        commune: text("commune").to_string(),
        lat: number(values.remove("lat")),
        lon: number(values.remove("lon")),
        observed_at,
        seq: text("seq").parse().ok(),
        values,
    })
}

/// InfluxDB's own words from an error answer (`{"code", "message"}`), or the start of the body.
fn error_message(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| http_client::excerpt(body))
}

/// The InfluxDB server of `[influxdb]`, for history queries: the writer's token and HTTP client
/// settings (TLS, timeout), its own connection pool.
pub struct InfluxHistory {
    client: Client,
    query_url: Url,
    bucket: String,
    /// `Token …`, sensitive: never printed.
    authorization: Option<HeaderValue>,
    /// `url (org …, bucket …)` for messages; never the token.
    address: String,
}

impl InfluxHistory {
    /// Reads the token and builds the client; touches no network.
    pub fn new(cfg: &InfluxConfig) -> Result<Self, String> {
        let authorization = smartcity_connectors::influxdb::sink::authorization(cfg)?;
        let client = http_client::client(cfg.tls.as_ref(), Duration::from_secs(cfg.timeout_seconds))?;
        let mut query_url = Url::parse(&format!("{}/api/v2/query", cfg.url.trim_end_matches('/')))
            .map_err(|e| format!("url `{}`: {e}", cfg.url))?;
        query_url.query_pairs_mut().append_pair("org", &cfg.org);
        Ok(InfluxHistory { client, query_url, bucket: cfg.bucket.clone(), authorization, address: cfg.address() })
    }

    /// Sensor `id`'s points over `window`. The error is a sentence naming InfluxDB, for the user.
    pub async fn points(&self, id: &str, window: &Window) -> Result<Vec<Point>, String> {
        let body = serde_json::json!({
            "query": query(&self.bucket, id, window),
            "type": "flux",
            "dialect": {"header": true, "delimiter": ",", "annotations": ["datatype"], "dateTimeFormat": "RFC3339"},
        });
        let mut request = self.client.post(self.query_url.clone()).header(ACCEPT, "application/csv").json(&body);
        if let Some(auth) = &self.authorization {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        let address = &self.address;
        let response = request.send().await.map_err(|e| {
            format!("InfluxDB {address} is unreachable: {}", http_client::transport_failure(&e).message)
        })?;
        let status = response.status();
        let text = response.text().await.map_err(|e| {
            format!("InfluxDB {address}: the answer was cut short: {}", http_client::transport_failure(&e).message)
        })?;
        if !status.is_success() {
            return Err(format!("InfluxDB {address} refused the query: HTTP {status}: {}", error_message(&text)));
        }
        parse_csv(&text).map_err(|e| format!("InfluxDB {address} could not run the query: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn windows_keep_at_most_max_points() {
        let start = at("2026-06-01T00:00:00Z");
        for (span, every) in [(600, 2), (3600, 8), (86_400, 174), (30 * 86_400, 5195), (1, 1)] {
            let w = Window { start, stop: start + chrono::Duration::seconds(span) };
            assert_eq!(w.every_seconds(), every, "span {span} s");
            // Epoch-aligned windows a range of `span` meets, at worst (it starts on a window's last ms).
            let (span_ms, every_ms) = (span * 1000, every * 1000);
            assert!((span_ms - 1) / every_ms + 2 <= MAX_POINTS, "span {span} s");
        }
        let w = Window { start, stop: start + chrono::Duration::seconds(10) };
        assert!(w.contains(start) && !w.contains(w.stop), "start included, stop excluded");
    }

    #[test]
    fn flux_strings_are_escaped() {
        assert_eq!(flux_string("iot_data"), r#""iot_data""#);
        assert_eq!(flux_string(r#"a"b\c${d}$e"#), r#""a\"b\\c\${d}$e""#);
        assert_eq!(flux_string("x\ny"), r#""x\ny""#);
    }

    #[test]
    fn the_query_filters_the_sensor_and_downsamples() {
        let w = Window { start: at("2026-06-01T00:00:00Z"), stop: at("2026-06-02T00:00:00Z") };
        let q = query("iot \"data\"", "noise-fort-de-france-01", &w);
        let expected = r#"data = from(bucket: "iot \"data\"")
  |> range(start: 2026-06-01T00:00:00.000Z, stop: 2026-06-02T00:00:00.000Z)
  |> filter(fn: (r) => r.sensor_id == "noise-fort-de-france-01")
means = data
  |> filter(fn: (r) => r._field != "seq" and r._field != "lat" and r._field != "lon" and r._field != "congested" and r._field != "airQualityLevel" and r._field != "status" and r._field != "powerState")
  |> aggregateWindow(every: 174s, fn: mean, createEmpty: false, timeSrc: "_start")
lasts = data
  |> filter(fn: (r) => r._field == "seq" or r._field == "lat" or r._field == "lon" or r._field == "congested" or r._field == "airQualityLevel" or r._field == "status" or r._field == "powerState")
  |> aggregateWindow(every: 174s, fn: last, createEmpty: false, timeSrc: "_start")
union(tables: [means, lasts])
  |> keep(columns: ["_time", "_measurement", "_field", "_value", "commune", "kind", "sensor_id"])
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
"#;
        assert_eq!(q, expected);
    }

    /// Every string or boolean field the codec writes is averaged never: it is in LAST_FIELDS.
    #[test]
    fn last_fields_cover_every_non_numeric_field_of_the_codec() {
        use smartcity_model::{dynamics::Simulation, Catalogue};
        let catalogue = Catalogue::default_ten();
        let mut kinds = std::collections::BTreeSet::new();
        for sensor in catalogue.sensors() {
            let r = Simulation::new(1).reading(sensor, Utc.timestamp_opt(1_800_000_000, 0).unwrap(), 7);
            kinds.insert(r.kind().as_str());
            let mut line = String::new();
            smartcity_model::codec::line_protocol::encode(&r, &mut line);
            let fields = line.split(' ').rev().nth(1).unwrap();
            for field in fields.split(',') {
                let (name, value) = field.split_once('=').unwrap();
                let numeric = value.trim_end_matches('i').parse::<f64>().is_ok();
                assert!(numeric || LAST_FIELDS.contains(&name), "{name}={value} would be averaged");
            }
        }
        assert_eq!(kinds.len(), 6, "every kind checked: {kinds:?}");
    }

    const TWO_TABLES: &str = "#datatype,string,long,dateTime:RFC3339,string,string,string,string,double,double,double,double,double,long\r\n\
,result,table,_time,_measurement,commune,kind,sensor_id,LAS,LAeq,LAmax,lat,lon,seq\r\n\
,_result,0,2026-06-01T00:02:54Z,noise,Fort-de-France,noise,noise-1,65.3,66.4,76,14.61,-61.062,1\r\n\
,_result,0,2026-06-01T00:00:00Z,noise,Fort-de-France,noise,noise-1,64.5,65.25,,14.61,-61.062,0\r\n\
\r\n\
#datatype,string,long,dateTime:RFC3339,string,string,string,string,double,double,double,double,double,long,string\r\n\
,result,table,_time,_measurement,commune,kind,sensor_id,LAS,LAeq,LAmax,lat,lon,seq,note\r\n\
,_result,1,2026-06-01T00:05:48Z,noise,\"Le Lamentin, \"\"bis\"\"\",noise,noise-1,60,61,70.5,14.6,-61,2,\"a\nb\"\r\n\
\r\n";

    #[test]
    fn annotated_csv_with_several_tables() {
        let points = parse_csv(TWO_TABLES).unwrap();
        assert_eq!(points.len(), 3);
        let times: Vec<String> =
            points.iter().map(|p| smartcity_model::codec::json::format_time(p.observed_at)).collect();
        assert_eq!(
            times,
            ["2026-06-01T00:00:00.000Z", "2026-06-01T00:02:54.000Z", "2026-06-01T00:05:48.000Z"],
            "sorted"
        );
        let p = &points[0];
        assert_eq!((p.id.as_str(), p.kind.as_str(), p.commune.as_str()), ("noise-1", "noise", "Fort-de-France"));
        assert_eq!((p.lat, p.lon, p.seq), (Some(14.61), Some(-61.062), Some(0)));
        assert_eq!(
            Value::Object(p.values.clone()),
            serde_json::json!({"LAS": 64.5, "LAeq": 65.25}),
            "empty LAmax left out"
        );
        let last = &points[2];
        assert_eq!(last.commune, "Le Lamentin, \"bis\"", "quoted cell with a comma and quotes");
        assert_eq!(last.values["note"], "a\nb", "a line break inside quotes");
        assert_eq!(last.values["LAS"], serde_json::json!(60.0));
        // The wire reading's shape, without `v`.
        let json = serde_json::to_value(&points[1]).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"id": "noise-1", "type": "noise", "commune": "Fort-de-France", "lat": 14.61,
                "lon": -61.062, "observedAt": "2026-06-01T00:02:54.000Z", "seq": 1,
                "values": {"LAS": 65.3, "LAeq": 66.4, "LAmax": 76.0}})
        );
    }

    #[test]
    fn typed_cells() {
        let csv = "#datatype,string,long,dateTime:RFC3339,string,string,long,boolean,string,unsignedLong\n\
,result,table,_time,_measurement,sensor_id,intensity,congested,airQualityLevel,n\n\
,_result,0,2026-06-01T00:00:00Z,traffic,t-1,2116,true,moderate,7\n";
        let p = &parse_csv(csv).unwrap()[0];
        assert_eq!(
            Value::Object(p.values.clone()),
            serde_json::json!({"intensity": 2116, "congested": true, "airQualityLevel": "moderate", "n": 7})
        );
        assert_eq!((p.lat, p.seq), (None, None));
    }

    #[test]
    fn empty_answers_have_no_points() {
        for empty in ["", "\r\n", "\n\n"] {
            assert_eq!(parse_csv(empty).unwrap(), vec![]);
        }
    }

    #[test]
    fn an_error_table_or_a_bad_row_is_an_error() {
        let csv = "#datatype,string,string\r\n,error,reference\r\n,\"runtime error @5:6-5:40: aggregateWindow: unsupported aggregate column type string\",\r\n\r\n";
        let e = parse_csv(csv).unwrap_err();
        assert!(e.starts_with("runtime error @5:6-5:40: aggregateWindow"), "{e}");
        let bad = "#datatype,string,long,dateTime:RFC3339\n,result,table,_time\n,_result,0,yesterday\n";
        assert!(parse_csv(bad).unwrap_err().contains("`yesterday`"));
    }

    #[test]
    fn error_bodies_give_influxdbs_words() {
        assert_eq!(
            error_message(
                r#"{"code":"not found","message":"failed to initialize execute state: could not find bucket \"x\""}"#
            ),
            "failed to initialize execute state: could not find bucket \"x\""
        );
        assert_eq!(error_message("<html>\n bad   gateway</html>"), "<html> bad gateway</html>");
    }
}
