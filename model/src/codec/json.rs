//! The versioned JSON wire format shared by MQTT, Kafka and Pulsar (see docs/wire-format.md).
//!
//! ```json
//! {"v":1,"id":"traffic-fort-de-france-01","type":"traffic","commune":"Fort-de-France",
//!  "lat":14.616,"lon":-61.059,"observedAt":"2026-11-21T11:30:00.000Z","seq":42,
//!  "values":{"intensity":1520,"occupancy":0.41,"averageVehicleSpeed":38.2,"congested":false}}
//! ```
//! `v` is bumped on any incompatible change; decoders reject versions they do not know instead of
//! guessing. Unknown top-level fields are ignored (forward compatible), unknown `values` fields are
//! rejected (a typo in a producer must not silently drop a measurement). A sensor that measures
//! part of its kind sends only those `values` (a partial reading); absence is never a `null`, and
//! a `values` object with none of the kind's attributes is refused.

use crate::kind::SensorKind;
use crate::place::Commune;
use crate::reading::{Reading, ReadingError, Values};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The version this crate writes and reads.
pub const WIRE_VERSION: u32 = 1;

/// Why a payload is not a reading. The message is meant for an operator reading a dead letter.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("not a JSON reading: {0}")]
    Syntax(#[source] serde_json::Error),
    #[error("unsupported wire version {0} (this build reads version {WIRE_VERSION})")]
    Version(u32),
    #[error("bad `values` for type `{kind}`: {source}")]
    Values { kind: SensorKind, source: serde_json::Error },
    #[error("bad `observedAt` `{0}`: expected RFC 3339, e.g. 2026-11-21T11:30:00.000Z")]
    Time(String),
    #[error("invalid reading: {0}")]
    Invalid(#[from] ReadingError),
}

#[derive(Serialize)]
struct WireOut<'a> {
    v: u32,
    id: &'a str,
    #[serde(rename = "type")]
    kind: SensorKind,
    commune: Commune,
    lat: f64,
    lon: f64,
    #[serde(rename = "observedAt")]
    observed_at: String,
    seq: u64,
    values: ValuesOut<'a>,
}

struct ValuesOut<'a>(&'a Values);

impl Serialize for ValuesOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Values::Traffic(v) => v.serialize(s),
            Values::AirQuality(v) => v.serialize(s),
            Values::Parking(v) => v.serialize(s),
            Values::Noise(v) => v.serialize(s),
            Values::Weather(v) => v.serialize(s),
            Values::Light(v) => v.serialize(s),
        }
    }
}

#[derive(Deserialize)]
struct WireIn<'a> {
    v: u32,
    id: String,
    #[serde(rename = "type")]
    kind: SensorKind,
    commune: Commune,
    lat: f64,
    lon: f64,
    #[serde(rename = "observedAt")]
    observed_at: &'a str,
    seq: u64,
    #[serde(borrow)]
    values: &'a RawValue,
}

/// UTC with millisecond precision and a `Z`, the form NGSI-LD and SensorThings expect too.
pub fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Encodes a reading as one compact JSON document.
pub fn encode(r: &Reading) -> Vec<u8> {
    let mut out = Vec::with_capacity(320);
    encode_into(r, &mut out);
    out
}

/// Appends the JSON of `r` to `out` (lets hot loops reuse one buffer).
pub fn encode_into(r: &Reading, out: &mut Vec<u8>) {
    let wire = WireOut {
        v: WIRE_VERSION,
        id: &r.sensor_id,
        kind: r.kind(),
        commune: r.commune,
        lat: r.lat,
        lon: r.lon,
        observed_at: format_time(r.observed_at),
        seq: r.seq,
        values: ValuesOut(&r.values),
    };
    // Serializing plain structs of numbers, strings and enums into a Vec cannot fail.
    serde_json::to_writer(out, &wire).expect("reading serializes to JSON");
}

/// Decodes and validates one JSON reading.
pub fn decode(bytes: &[u8]) -> Result<Reading, DecodeError> {
    // serde's derived structs also read a positional array (`[1, "id", ...]`): the wire format is
    // an object, and anything else is refused before serde sees it.
    let not_object =
        |what: &str| <serde_json::Error as serde::de::Error>::custom(format!("{what} must be a JSON object"));
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(DecodeError::Syntax(not_object("a reading")));
    }
    let wire: WireIn = serde_json::from_slice(bytes).map_err(DecodeError::Syntax)?;
    if wire.v != WIRE_VERSION {
        return Err(DecodeError::Version(wire.v));
    }
    let raw = wire.values.get();
    let values_err = |source| DecodeError::Values { kind: wire.kind, source };
    if !raw.trim_start().starts_with('{') {
        return Err(values_err(not_object("`values`")));
    }
    let values = match wire.kind {
        SensorKind::Traffic => Values::Traffic(serde_json::from_str(raw).map_err(values_err)?),
        SensorKind::AirQuality => Values::AirQuality(serde_json::from_str(raw).map_err(values_err)?),
        SensorKind::Parking => Values::Parking(serde_json::from_str(raw).map_err(values_err)?),
        SensorKind::Noise => Values::Noise(serde_json::from_str(raw).map_err(values_err)?),
        SensorKind::Weather => Values::Weather(serde_json::from_str(raw).map_err(values_err)?),
        SensorKind::Light => Values::Light(serde_json::from_str(raw).map_err(values_err)?),
    };
    if values.is_empty() {
        let none = format!("none of the kind's attributes is there ({})", wire.kind.attributes().join(", "));
        return Err(values_err(<serde_json::Error as serde::de::Error>::custom(none)));
    }
    let observed_at = DateTime::parse_from_rfc3339(wire.observed_at)
        .map_err(|_| DecodeError::Time(wire.observed_at.to_string()))?
        .with_timezone(&Utc);
    let reading = Reading {
        sensor_id: wire.id,
        commune: wire.commune,
        lat: wire.lat,
        lon: wire.lon,
        observed_at,
        seq: wire.seq,
        values,
    };
    reading.validate()?;
    Ok(reading)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::Catalogue;
    use crate::dynamics::Simulation;
    use chrono::TimeZone;

    fn sample_readings() -> Vec<Reading> {
        let cat = Catalogue::default_ten();
        let sim = Simulation::new(7);
        let t = Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).unwrap();
        cat.sensors().iter().enumerate().map(|(i, s)| sim.reading(s, t, i as u64)).collect()
    }

    #[test]
    fn every_kind_round_trips() {
        let readings = sample_readings();
        let kinds: std::collections::BTreeSet<_> = readings.iter().map(|r| r.kind()).collect();
        assert_eq!(kinds.len(), 6, "the default catalogue covers all six kinds");
        for r in readings {
            let bytes = encode(&r);
            let back = decode(&bytes).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&bytes)));
            assert_eq!(back.sensor_id, r.sensor_id);
            assert_eq!(back.values, r.values);
            assert_eq!(back.seq, r.seq);
            // Millisecond precision on the wire.
            assert_eq!(back.observed_at.timestamp_millis(), r.observed_at.timestamp_millis());
        }
    }

    #[test]
    fn wire_shape_is_stable() {
        let r = &sample_readings()[0];
        let v: serde_json::Value = serde_json::from_slice(&encode(r)).unwrap();
        assert_eq!(v["v"], 1);
        assert_eq!(v["type"], "traffic");
        assert_eq!(v["commune"], "Fort-de-France");
        assert!(v["observedAt"].as_str().unwrap().ends_with(".000Z"));
        assert!(v["values"]["averageVehicleSpeed"].is_number());
    }

    #[test]
    fn bad_payloads_give_clear_errors() {
        let good = String::from_utf8(encode(&sample_readings()[0])).unwrap();
        let cases = [
            ("not json".to_string(), "not a JSON reading"),
            (good.replace("\"v\":1", "\"v\":9"), "unsupported wire version 9"),
            (good.replace("\"intensity\"", "\"intensty\""), "bad `values` for type `traffic`"),
            (good.replace(".000Z", "!"), "bad `observedAt`"),
            (good.replace("\"lat\":", "\"lat\":9"), "`lat` = 914.6065"),
            (good.replace("\"type\":\"traffic\"", "\"type\":\"radar\""), "unknown variant `radar`"),
        ];
        for (payload, expected) in cases {
            let err = decode(payload.as_bytes()).expect_err(&payload).to_string();
            assert!(err.contains(expected), "`{err}` should contain `{expected}`");
        }
    }

    #[test]
    fn values_of_another_kind_are_rejected() {
        let good = String::from_utf8(encode(&sample_readings()[0])).unwrap();
        let wrong = good.replace("\"type\":\"traffic\"", "\"type\":\"noise\"");
        assert!(matches!(decode(wrong.as_bytes()), Err(DecodeError::Values { .. })));
    }
}

#[cfg(test)]
mod shape_tests {
    use crate::dynamics::Simulation;
    use crate::Catalogue;

    /// serde's derived structs accept a positional array; the wire format is an object only.
    #[test]
    fn arrays_in_place_of_objects_are_refused() {
        let cat = Catalogue::default_ten();
        let noise = cat.sensors().iter().find(|s| s.kind == crate::SensorKind::Noise).expect("a noise sensor");
        let r = Simulation::new(1).reading(noise, chrono::Utc::now(), 0);
        let mut doc: serde_json::Value = serde_json::from_slice(&super::encode(&r)).unwrap();
        let fields: Vec<serde_json::Value> = doc["values"].as_object().unwrap().values().cloned().collect();
        doc["values"] = serde_json::Value::Array(fields);
        let err = super::decode(&serde_json::to_vec(&doc).unwrap()).unwrap_err();
        assert!(matches!(err, super::DecodeError::Values { .. }), "{err}");
        let top: Vec<serde_json::Value> =
            serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&super::encode(&r))
                .unwrap()
                .into_iter()
                .map(|(_, v)| v)
                .collect();
        let err = super::decode(&serde_json::to_vec(&top).unwrap()).unwrap_err();
        assert!(matches!(err, super::DecodeError::Syntax(_)), "{err}");
    }
}

#[cfg(test)]
mod doc_tests {
    /// Every ```json block of docs/wire-format.md decodes, and all six kinds are shown.
    #[test]
    fn documented_examples_decode() {
        let doc = include_str!("../../../docs/wire-format.md");
        let blocks: Vec<&str> =
            doc.split("```json\n").skip(1).map(|b| b.split("```").next().expect("closed block").trim()).collect();
        let kinds: std::collections::BTreeSet<_> =
            blocks.iter().map(|b| super::decode(b.as_bytes()).unwrap_or_else(|e| panic!("{e}: {b}")).kind()).collect();
        assert_eq!(kinds.len(), 6, "one example per kind");
    }
}
