//! Any other JSON, through a declarative mapping in the configuration (in the spirit of
//! Telegraf's `json_v2` parser, without scripting): where the sensor id, the time, the sequence
//! number, the kind and the position are, and which path holds each attribute in which unit.
//!
//! ```toml
//! sensor_id = "dev.id"              # a path; or sensor_id_topic_segment = 3 (0 = first segment)
//! time = "ts"                       # absent: the time the gateway decodes the message
//! time_format = "unix_ms"           # unix, unix_ms, rfc3339
//! seq = "n"                         # absent: the time in seconds, as for SenML
//! kind_path = "type"                # a kind name in the payload; else the source's `kind`, else chosen
//! lat = "pos.0"                     # absent: the configured position
//! lon = "pos.1"
//! records = "data"                  # optional: an array, each element one reading (paths inside it)
//! [fields]
//! temperature = { path = "t", unit = "K" }
//! relativeHumidity = { path = "rh", unit = "%" }   # no unit: already in the model's unit
//! ```
//! Paths are dot-separated object keys and array indices (`a.b.0.c`); a key with a dot in it cannot
//! be reached. Units are spelled as vendors do (`%` is a percentage here), see
//! docs/device-formats.md.

use super::device::{self, DeviceError, Observation, Options, Origin};
use crate::kind::SensorKind;
use crate::reading::Reading;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// A declarative mapping (`[formats.<source>.mapping]`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    #[serde(default)]
    pub sensor_id: Option<String>,
    #[serde(default)]
    pub sensor_id_topic_segment: Option<usize>,
    #[serde(default)]
    pub time: Option<String>,
    #[serde(default)]
    pub time_format: TimeFormat,
    #[serde(default)]
    pub seq: Option<String>,
    #[serde(default)]
    pub kind_path: Option<String>,
    #[serde(default)]
    pub lat: Option<String>,
    #[serde(default)]
    pub lon: Option<String>,
    #[serde(default)]
    pub records: Option<String>,
    /// By the model's attribute name (`relativeHumidity`, `LAeq`...).
    #[serde(default)]
    pub fields: BTreeMap<String, Field>,
}

/// Where one attribute is, and its unit.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Field {
    pub path: String,
    /// Absent: the value is already in the model's unit.
    #[serde(default)]
    pub unit: Option<String>,
}

/// How the time field is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeFormat {
    /// Unix seconds (a number, fractions allowed, or a string of one).
    Unix,
    /// Unix milliseconds.
    UnixMs,
    /// RFC 3339 (`2026-11-21T11:30:00Z`).
    #[default]
    Rfc3339,
}

impl Mapping {
    /// Problems a user can fix in the configuration, as (field, message).
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        if self.sensor_id.is_some() == self.sensor_id_topic_segment.is_some() {
            p.push(("sensor_id", "give either `sensor_id` (a path) or `sensor_id_topic_segment`".into()));
        }
        if self.lat.is_some() != self.lon.is_some() {
            p.push(("lat", "give both `lat` and `lon` paths, or neither".into()));
        }
        if self.fields.is_empty() {
            p.push(("fields", "map at least one attribute".into()));
        }
        for (name, f) in &self.fields {
            let Some(a) = device::ATTRIBUTES.iter().find(|a| a.name == name) else {
                let names: Vec<&str> = device::ATTRIBUTES.iter().map(|a| a.name).collect();
                p.push(("fields", format!("`{name}` is not an attribute (one of: {})", names.join(", "))));
                continue;
            };
            if let Some(u) = &f.unit {
                let fits = unit(u).is_some_and(|unit| device::convert(a, name, 1.0, Some(unit), u).is_ok());
                if !fits {
                    p.push(("fields", format!("`{name}`: unit `{u}` is unknown or does not fit it")));
                }
            }
        }
        p
    }
}

fn unit(u: &str) -> Option<device::Unit> {
    device::vendor_unit(u).or_else(|| device::senml_unit(u))
}

/// The value at a dot-separated path.
pub fn get<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, key| match v {
        Value::Object(o) => o.get(key),
        Value::Array(a) => a.get(key.parse::<usize>().ok()?),
        _ => None,
    })
}

/// Decodes `bytes` received on `topic` through `mapping`; `now` is the time of readings whose
/// payload has none.
pub fn decode(
    bytes: &[u8],
    topic: &str,
    mapping: &Mapping,
    options: &Options,
    now: DateTime<Utc>,
) -> Result<Vec<Reading>, DeviceError> {
    let doc: Value = serde_json::from_slice(bytes)
        .map_err(|e| DeviceError::Syntax { format: "JSON document", message: e.to_string() })?;
    let elements: Vec<&Value> = match &mapping.records {
        Some(path) => {
            get(&doc, path).and_then(Value::as_array).ok_or_else(|| DeviceError::Field(path.clone()))?.iter().collect()
        }
        None => vec![&doc],
    };
    let mut readings = Vec::with_capacity(elements.len());
    for element in elements {
        readings.push(one(element, topic, mapping, options, now)?);
    }
    if readings.is_empty() {
        return Err(DeviceError::Kind { sensor: "(document)".into(), message: "no record in the array".into() });
    }
    Ok(readings)
}

fn one(v: &Value, topic: &str, m: &Mapping, options: &Options, now: DateTime<Utc>) -> Result<Reading, DeviceError> {
    let field = |path: &str| DeviceError::Field(path.to_string());
    let sensor_id = match (&m.sensor_id, m.sensor_id_topic_segment) {
        (Some(path), _) => match get(v, path) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err(field(path)),
        },
        (None, Some(i)) => {
            topic.split('/').nth(i).ok_or_else(|| field(&format!("topic segment {i} of `{topic}`")))?.to_string()
        }
        (None, None) => return Err(field("sensor_id")),
    };
    let observed_at = match &m.time {
        Some(path) => time(get(v, path).ok_or_else(|| field(path))?, path, m.time_format)?,
        None => now,
    };
    let seq = match &m.seq {
        Some(path) => get(v, path).and_then(Value::as_u64).ok_or_else(|| field(path))?,
        None => u64::try_from(observed_at.timestamp()).unwrap_or(0),
    };
    let position = match (&m.lat, &m.lon) {
        (Some(lat), Some(lon)) => Some((
            get(v, lat).and_then(Value::as_f64).ok_or_else(|| field(lat))?,
            get(v, lon).and_then(Value::as_f64).ok_or_else(|| field(lon))?,
        )),
        _ => None,
    };
    let mut options = options.clone();
    if let Some(path) = &m.kind_path {
        let name = get(v, path).and_then(Value::as_str).ok_or_else(|| field(path))?;
        let kind: SensorKind = name.parse().map_err(|e: crate::kind::UnknownKind| DeviceError::Kind {
            sensor: sensor_id.clone(),
            message: e.to_string(),
        })?;
        options.kind = Some(kind);
    }
    let mut obs = Observation::default();
    for (name, f) in &m.fields {
        // A path missing from this payload: the attribute is missing (the build names it).
        let Some(value) = get(v, &f.path) else { continue };
        let a = device::ATTRIBUTES.iter().find(|a| a.name == name).ok_or_else(|| field(name))?;
        let unit = match &f.unit {
            Some(u) => Some(unit(u).ok_or_else(|| DeviceError::Unit {
                name: name.clone(),
                unit: u.clone(),
                problem: "is not known",
            })?),
            None => device::model_unit(a.quantity),
        };
        obs.add(name, value, f.unit.as_deref(), unit)?;
    }
    let origin = Origin { sensor_id: device::sensor_id(&sensor_id), observed_at, seq, position };
    device::build(origin, obs, &options)
}

fn time(v: &Value, path: &str, format: TimeFormat) -> Result<DateTime<Utc>, DeviceError> {
    let bad = || DeviceError::Time(format!("`{path}` = {v} is not {format:?} time"));
    let number =
        || v.as_f64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok())).filter(|f: &f64| f.is_finite());
    let t = match format {
        TimeFormat::Rfc3339 => return device::parse_time(path, v.as_str().ok_or_else(bad)?),
        TimeFormat::Unix => DateTime::from_timestamp_millis((number().ok_or_else(bad)? * 1000.0).round() as i64),
        TimeFormat::UnixMs => DateTime::from_timestamp_millis(number().ok_or_else(bad)?.round() as i64),
    }
    .ok_or_else(bad)?;
    if t.timestamp() < 946_684_800 {
        return Err(DeviceError::Time(format!("`{path}` = {v} is before 2000")));
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reading::Values;

    fn mapping() -> Mapping {
        let text = include_str!("mapping.rs").split("```toml\n").nth(1).unwrap().split("```").next().unwrap();
        let text: String =
            text.lines().map(|l| l.trim_start_matches("//!").trim_start()).collect::<Vec<_>>().join("\n");
        toml::from_str(&text).unwrap()
    }

    fn weather_fields(m: &mut Mapping) {
        for (name, path) in
            [("atmosphericPressure", "p"), ("windSpeed", "ws"), ("windDirection", "wd"), ("precipitation", "rain")]
        {
            m.fields.insert(name.into(), Field { path: path.into(), unit: None });
        }
    }

    const DOC: &str = r#"{"data":[{"dev":{"id":"wx 7"},"ts":1795253400250,"n":12,"type":"weather","pos":[14.616,-61.059],
        "t":300.15,"rh":78,"p":1012,"ws":4,"wd":90,"rain":0}]}"#;

    #[test]
    fn the_documented_mapping_reads_a_record_array() {
        let mut m = mapping();
        assert!(m.problems().is_empty(), "{:?}", m.problems());
        weather_fields(&mut m);
        let r = decode(DOC.as_bytes(), "t", &m, &Options::default(), Utc::now()).unwrap();
        let r = &r[0];
        assert_eq!((r.sensor_id.as_str(), r.seq, r.observed_at.timestamp_millis()), ("wx-7", 12, 1_795_253_400_250));
        assert_eq!(r.commune, crate::Commune::FortDeFrance);
        let Values::Weather(w) = &r.values else { panic!() };
        assert!((w.temperature.unwrap() - 27.0).abs() < 1e-9);
        assert_eq!((w.relative_humidity, w.atmospheric_pressure), (Some(0.78), Some(1012.0)));
    }

    #[test]
    fn topic_segments_times_and_refusals() {
        let mut m = mapping();
        weather_fields(&mut m);
        (m.sensor_id, m.sensor_id_topic_segment) = (None, Some(2));
        (m.time_format, m.seq) = (TimeFormat::Unix, None);
        let doc = DOC.replace("1795253400250", "\"1795253400\"");
        let r = &decode(doc.as_bytes(), "acme/site/wx-9/data", &m, &Options::default(), Utc::now()).unwrap()[0];
        assert_eq!((r.sensor_id.as_str(), r.seq), ("wx-9", 1_795_253_400));
        let e = decode(doc.as_bytes(), "acme", &m, &Options::default(), Utc::now()).unwrap_err();
        assert_eq!(e.reason(), "field", "{e}");
        let e =
            decode(DOC.replace("weather", "radar").as_bytes(), "a/b/c", &mapping(), &Options::default(), Utc::now())
                .unwrap_err();
        assert_eq!(e.reason(), "kind", "{e}");
        // The documented mapping reads temperature and humidity only: a partial weather reading.
        let r = &decode(DOC.as_bytes(), "a/b/c", &mapping(), &Options::default(), Utc::now()).unwrap()[0];
        assert_eq!(r.values.present(), ["temperature", "relativeHumidity"]);
        let noise = DOC.replace("\"weather\"", "\"noise\"");
        let e = decode(noise.as_bytes(), "a/b/c", &mapping(), &Options::default(), Utc::now()).unwrap_err();
        assert_eq!(e.reason(), "values", "{e}");
    }

    #[test]
    fn problems_name_the_setting() {
        let mut m = mapping();
        m.fields.insert("temprature".into(), Field { path: "x".into(), unit: None });
        m.fields.insert("LAeq".into(), Field { path: "x".into(), unit: Some("hPa".into()) });
        m.sensor_id_topic_segment = Some(1);
        let p = m.problems();
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p.iter().any(|(_, msg)| msg.contains("`temprature` is not an attribute")));
        assert!(p.iter().any(|(_, msg)| msg.contains("`LAeq`: unit `hPa`")));
    }
}
