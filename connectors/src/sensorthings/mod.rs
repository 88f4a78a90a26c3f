//! OGC SensorThings API 1.1 (FROST-Server): a sink writing each reading as Observations of the
//! Datastreams of its sensor's Thing, in bulk through `CreateObservations` (FROST's DataArray plugin).
//!
//! The entity bodies are in `model/src/codec/sensorthings.rs`, the mapping in docs/sensorthings.md.
//! The pure part of the protocol lives here: OData string literals, and the reading of the server's
//! answers (collections, the service root, the rows of `CreateObservations`). The HTTP calls and the
//! entity cache are in `sink.rs`.

pub mod config;
pub mod sink;

pub use config::SensorThingsConfig;
pub use sink::SensorThingsSink;

use serde_json::Value;

/// The conformance class a server lists in `serverSettings` when it serves `CreateObservations`.
pub const DATA_ARRAY_CONFORMANCE: &str = "http://www.opengis.net/spec/iot_sensing/1.1/req/data-array/data-array";

/// The entity sets the sink reads or writes.
pub const ENTITY_SETS: [&str; 6] =
    ["Things", "Locations", "Datastreams", "Sensors", "ObservedProperties", "Observations"];

/// An OData string literal: in single quotes, a quote inside doubled (`l'eau` → `'l''eau'`). The
/// caller URL-encodes the whole `$filter` afterwards.
pub fn odata_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `$filter` of the entities named `name`.
pub fn name_filter(name: &str) -> String {
    format!("name eq {}", odata_string(name))
}

/// An entity's `@iot.id` when it is one (a number or a string, as servers choose).
fn id_of(entity: &Value) -> Option<Value> {
    entity.get("@iot.id").filter(|id| id.is_number() || id.is_string()).cloned()
}

/// The members of a collection answer `{"value":[...]}`.
fn members(answer: &[u8]) -> Result<Vec<Value>, String> {
    let parsed: Value =
        serde_json::from_slice(answer).map_err(|e| format!("answer is not JSON ({e}): {}", excerpt(answer)))?;
    match parsed.get("value").and_then(Value::as_array) {
        Some(list) => Ok(list.clone()),
        None => Err(format!("answer without a `value` list: {}", excerpt(answer))),
    }
}

/// The `@iot.id` of each member of a collection answer, in the server's order.
pub fn entity_ids(answer: &[u8]) -> Result<Vec<Value>, String> {
    members(answer)?.iter().map(|m| id_of(m).ok_or_else(|| format!("an entity without @iot.id: {m}"))).collect()
}

/// A Thing found by name: its id and its Datastreams as (name, id).
#[derive(Debug, Clone, PartialEq)]
pub struct FoundThing {
    pub id: Value,
    pub datastreams: Vec<(String, Value)>,
}

/// The first Thing of a `Things?$expand=Datastreams($select=id,name)` answer, if any.
pub fn first_thing(answer: &[u8]) -> Result<Option<FoundThing>, String> {
    let Some(thing) = members(answer)?.into_iter().next() else { return Ok(None) };
    let id = id_of(&thing).ok_or_else(|| format!("a Thing without @iot.id: {thing}"))?;
    let datastreams = thing
        .get("Datastreams")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("Thing {id} without its expanded Datastreams"))?
        .iter()
        .filter_map(|d| Some((d.get("name")?.as_str()?.to_string(), id_of(d)?)))
        .collect();
    Ok(Some(FoundThing { id, datastreams }))
}

/// The `phenomenonTime`s, in milliseconds, of a `Datastreams(id)/Observations?$select=phenomenonTime`
/// answer, and how many members it had (to know when the last page was read). An interval or an
/// unreadable time is skipped: the sink never writes one.
pub fn phenomenon_times(answer: &[u8]) -> Result<(Vec<i64>, usize), String> {
    let list = members(answer)?;
    let times = list
        .iter()
        .filter_map(|o| o.get("phenomenonTime")?.as_str())
        .filter_map(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.timestamp_millis())
        .collect();
    Ok((times, list.len()))
}

/// What the server did with one row of a `CreateObservations` request.
#[derive(Debug, Clone, PartialEq)]
pub enum RowFate {
    /// Stored: the answer gave the Observation's self-link.
    Created,
    /// Not stored: the answer's `error ...` for this row.
    Failed(String),
}

/// The fate of each of the `rows` rows of a `CreateObservations` request, from its 201 answer: a
/// JSON array with, in body order, the self-link of each Observation created or `"error <why>"`
/// (FROST answers 201 even when rows failed). `Err` when the answer is not that list: nothing can
/// then be known of any row.
pub fn row_fates(answer: &[u8], rows: usize) -> Result<Vec<RowFate>, String> {
    let list: Vec<Value> = serde_json::from_slice(answer)
        .map_err(|e| format!("unreadable CreateObservations answer ({e}): {}", excerpt(answer)))?;
    if list.len() != rows {
        return Err(format!("the server answered {} rows for {rows} Observations", list.len()));
    }
    list.into_iter()
        .map(|row| match row.as_str() {
            Some(s) if s.starts_with("error") => Ok(RowFate::Failed(s.to_string())),
            // A self-link, or "" when the request asked for no metadata.
            Some(_) => Ok(RowFate::Created),
            None => Err(format!("a CreateObservations row is not a string: {row}")),
        })
        .collect()
}

/// Indices into the batch, sorted and distinct, of the readings with at least one row not stored:
/// `reading_of_row[p]` is the reading of row `p` and `stored[p]` whether the server stored it. A
/// reading with several quantities is taken only when all its rows are stored.
pub fn incomplete(stored: &[bool], reading_of_row: &[usize]) -> Vec<usize> {
    let mut retry: Vec<usize> =
        stored.iter().zip(reading_of_row).filter(|(stored, _)| !**stored).map(|(_, &i)| i).collect();
    retry.sort_unstable();
    retry.dedup();
    retry
}

/// What the service root says: the entity sets it lists and whether it serves `CreateObservations`.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceRoot {
    pub entity_sets: Vec<String>,
    pub data_array: bool,
}

/// Reads a `GET {root}` answer: `{"value":[{"name":"Things","url":...},...],"serverSettings":{"conformance":[...]}}`.
pub fn service_root(answer: &[u8]) -> Result<ServiceRoot, String> {
    let parsed: Value = serde_json::from_slice(answer)
        .map_err(|e| format!("not a SensorThings service root, the answer is not JSON ({e}): {}", excerpt(answer)))?;
    let entity_sets = parsed
        .get("value")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("not a SensorThings service root (no `value` list): {}", excerpt(answer)))?
        .iter()
        .filter_map(|set| Some(set.get("name")?.as_str()?.to_string()))
        .collect();
    let data_array = parsed
        .get("serverSettings")
        .and_then(|s| s.get("conformance"))
        .and_then(Value::as_array)
        .is_some_and(|list| list.iter().any(|c| c.as_str() == Some(DATA_ARRAY_CONFORMANCE)));
    Ok(ServiceRoot { entity_sets, data_array })
}

/// The server's own words from an error answer (FROST: `{"code":400,"type":"error","message":"..."}`),
/// or an excerpt of whatever else it sent.
pub fn error_words(answer: &[u8]) -> String {
    match serde_json::from_slice::<Value>(answer).ok().and_then(|v| v.get("message")?.as_str().map(str::to_string)) {
        Some(m) => crate::http_client::excerpt(&m),
        None if answer.iter().all(u8::is_ascii_whitespace) => "(empty answer)".into(),
        None => excerpt(answer),
    }
}

fn excerpt(answer: &[u8]) -> String {
    crate::http_client::excerpt(&String::from_utf8_lossy(answer))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn odata_strings_double_their_quotes() {
        assert_eq!(odata_string("traffic-01"), "'traffic-01'");
        assert_eq!(odata_string("l'Hôtel d'eau"), "'l''Hôtel d''eau'");
        assert_eq!(odata_string("''"), "''''''");
        assert_eq!(name_filter("a'b"), "name eq 'a''b'");
        // URL-encoded afterwards, as the sink does it: `'`, space and `+` survive the trip.
        let mut url = url::Url::parse("http://sta/v1.1/Things").unwrap();
        url.query_pairs_mut().append_pair("$filter", &name_filter("x+y z'"));
        assert_eq!(url.query(), Some("%24filter=name+eq+%27x%2By+z%27%27%27"));
    }

    #[test]
    fn create_observations_answers_give_the_readings_to_retry() {
        let answer =
            br#"["http://sta/v1.1/Observations(1)","error No FeatureOfInterest provided, and none can be generated.",
                         "http://sta/v1.1/Observations(2)","error phenomenonTime could not be parsed",""]"#;
        let fates = row_fates(answer, 5).unwrap();
        assert_eq!(fates[0], RowFate::Created);
        assert_eq!(fates[1], RowFate::Failed("error No FeatureOfInterest provided, and none can be generated.".into()));
        assert_eq!(fates[4], RowFate::Created, "no metadata: an empty row is a success");
        // Rows 0-1 are reading 3's, rows 2-3 reading 0's, row 4 reading 1's.
        let stored: Vec<bool> = fates.iter().map(|f| *f == RowFate::Created).collect();
        assert_eq!(incomplete(&stored, &[3, 3, 0, 0, 1]), [0, 3]);
        assert!(incomplete(&stored[..1], &[2]).is_empty());
        assert_eq!(incomplete(&[true, false, false], &[5, 1, 1]), [1]);

        assert!(row_fates(answer, 4).unwrap_err().contains("5 rows for 4"));
        assert!(row_fates(b"[1]", 1).unwrap_err().contains("not a string"));
        assert!(row_fates(b"<html>502</html>", 1).unwrap_err().contains("unreadable"));
        assert!(row_fates(br#"{"value":[]}"#, 0).is_err());
    }

    #[test]
    fn collections_and_things() {
        assert_eq!(entity_ids(br#"{"value":[{"@iot.id":4},{"@iot.id":"x"}]}"#).unwrap(), [json!(4), json!("x")]);
        assert!(entity_ids(br#"{"value":[{"name":"no id"}]}"#).is_err());
        assert!(entity_ids(br#"{"@iot.count":0}"#).is_err());
        assert!(entity_ids(b"").is_err());
        let thing = br#"{"value":[{"@iot.id":9,"Datastreams":[{"@iot.id":1,"name":"t/a"},{"@iot.id":2,"name":"t/b"},{"name":"bad"}]}]}"#;
        let found = first_thing(thing).unwrap().unwrap();
        assert_eq!(found.id, json!(9));
        assert_eq!(found.datastreams, [("t/a".to_string(), json!(1)), ("t/b".to_string(), json!(2))]);
        assert_eq!(first_thing(br#"{"value":[]}"#).unwrap(), None);
        assert!(first_thing(br#"{"value":[{"@iot.id":9}]}"#).is_err(), "Datastreams not expanded");
        let times = br#"{"value":[{"phenomenonTime":"2026-01-10T08:00:05.123Z"},{"phenomenonTime":"2026-01-10T08:00:00Z"},{"phenomenonTime":"2026-01-10T08:00:00Z/2026-01-10T09:00:00Z"}]}"#;
        assert_eq!(phenomenon_times(times).unwrap(), (vec![1768032005123, 1768032000000], 3));
    }

    #[test]
    fn service_roots_and_errors() {
        let root = json!({
            "value": [{"name": "Things", "url": "x"}, {"name": "Observations", "url": "y"}],
            "serverSettings": {"conformance": [DATA_ARRAY_CONFORMANCE]}
        });
        let parsed = service_root(root.to_string().as_bytes()).unwrap();
        assert_eq!((parsed.entity_sets.len(), parsed.data_array), (2, true));
        let v10 = json!({"value": [{"name": "Things", "url": "x"}]});
        assert!(!service_root(v10.to_string().as_bytes()).unwrap().data_array);
        assert!(service_root(b"<html/>").is_err());
        assert_eq!(error_words(br#"{"code":400,"type":"error","message":"No such entity."}"#), "No such entity.");
        assert_eq!(error_words(b" "), "(empty answer)");
        assert_eq!(error_words(b"Bad\n gateway"), "Bad gateway");
    }
}
