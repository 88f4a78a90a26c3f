//! What the device formats (`senml`, `ttn`, `chirpstack`, `mapping`) share: their settings, their
//! errors, how the kind is chosen, and how a reading is completed (derived attributes, position,
//! commune, checks); the names and units are in [`super::attributes`]. See
//! docs/device-formats.md for the rules in prose.
//!
//! A device's payload names its measurements its own way (`temperature`, `TempC_SHT`, `pm2_5`,
//! `soundAvg`); [`attribute`] maps a documented set of such names onto the model's attributes.
//! A reading carries the attributes of its kind the device measured (a partial reading: a weather
//! station with temperature and humidity only), and needs at least one; some are derived, never
//! invented: parking occupancy from the spot numbers, the air-quality level from the index, a
//! single spot from `occupied`. A measurement the model has no attribute for (`co2`, `battery`,
//! lux), or an attribute of another kind than the reading's, is ignored or refused, as
//! [`Options::unknown`] says.

pub use super::attributes::{
    attribute, attribute_of_unit, convert, model_unit, senml_unit, vendor_unit, Attribute, Quantity, Unit, ATTRIBUTES,
};
use crate::kind::SensorKind;
use crate::place::Commune;
use crate::reading::{AirQualityLevel, Reading, ReadingError, Values};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use SensorKind::{AirQuality as A, Light as L, Noise as N, Parking as P, Traffic as T, Weather as W};

/// Per-source (or per-device) settings of a device format.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// The kind of every reading; when absent, chosen from the attributes present (see
    /// [`choose_kind`]).
    #[serde(default)]
    pub kind: Option<SensorKind>,
    /// Fixed position used when the payload carries none (both or neither).
    #[serde(default)]
    pub lat: Option<f64>,
    #[serde(default)]
    pub lon: Option<f64>,
    /// What to do with a measurement the kind has no attribute for.
    #[serde(default)]
    pub unknown: Unknown,
    /// How to read the raw bytes of an uplink that has no decoded payload (TTN, ChirpStack).
    #[serde(default)]
    pub raw_payload: RawPayload,
    /// Per device, by sensor id: its kind and a fixed position, which win over the payload's
    /// (an operator who enters where a sensor is mounted knows better than a gateway's position).
    #[serde(default)]
    pub devices: BTreeMap<String, Placement>,
}

/// The kind and position of one device, set in the configuration.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Placement {
    #[serde(default)]
    pub kind: Option<SensorKind>,
    #[serde(default)]
    pub lat: Option<f64>,
    #[serde(default)]
    pub lon: Option<f64>,
}

/// What to do with a measurement that is not an attribute of the reading's kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Unknown {
    /// Left out (devices also send battery levels, counters of their own...).
    #[default]
    Ignore,
    /// The whole payload is refused, naming the measurement.
    Refuse,
}

/// How to read an uplink's raw bytes (TTN `frm_payload`, ChirpStack `data`) when the network
/// server gives no decoded payload.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RawPayload {
    /// Not at all: the uplink is refused (reason `field`), as most devices' bytes are their
    /// vendor's own encoding.
    #[default]
    Refuse,
    /// Cayenne LPP ([`super::lpp`]), a documented encoding generic devices use.
    CayenneLpp,
}

impl Options {
    /// Problems a user can fix in the configuration, as (field, message).
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        let places = std::iter::once((None, self.lat, self.lon))
            .chain(self.devices.iter().map(|(id, d)| (Some(id), d.lat, d.lon)));
        for (device, lat, lon) in places {
            let at = device.map_or(String::new(), |d| format!("device `{d}`: "));
            match (lat, lon) {
                (Some(lat), Some(lon)) if nearest_commune(lat, lon).is_none() => p.push((
                    "lat",
                    format!("{at}{lat}, {lon} is more than {MAX_KM} km from every commune of Martinique"),
                )),
                (Some(_), None) | (None, Some(_)) => {
                    p.push(("lat", format!("{at}give both `lat` and `lon`, or neither")))
                }
                _ => {}
            }
        }
        p
    }
}

/// Why a device payload is not a reading. `reason()` is the short label of metrics and dead letters.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DeviceError {
    #[error("not a {format} payload: {message}")]
    Syntax { format: &'static str, message: String },
    #[error("`{0}` is missing or not of the expected type")]
    Field(String),
    #[error("bad time: {0}")]
    Time(String),
    #[error("`{name}`: unit `{unit}` {problem}")]
    Unit { name: String, unit: String, problem: &'static str },
    #[error("cannot tell the kind of sensor `{sensor}`: {message}; set `kind` for this source")]
    Kind { sensor: String, message: String },
    #[error("{kind} sensor `{sensor}` has none of the kind's attributes ({attributes}): nothing to read")]
    Missing { kind: SensorKind, sensor: String, attributes: String },
    #[error("{kind} sensor `{sensor}`: {message}")]
    Values { kind: SensorKind, sensor: String, message: String },
    #[error("`{0}` is not an attribute of the reading's kind (`unknown = \"refuse\"`)")]
    Unknown(String),
    #[error("sensor `{sensor}`: {message}")]
    Location { sensor: String, message: String },
    #[error("invalid reading: {0}")]
    Invalid(#[from] ReadingError),
}

impl DeviceError {
    /// One of [`REASONS`].
    pub fn reason(&self) -> &'static str {
        match self {
            DeviceError::Syntax { .. } => "syntax",
            DeviceError::Field(_) => "field",
            DeviceError::Time(_) => "time",
            DeviceError::Unit { .. } => "unit",
            DeviceError::Kind { .. } => "kind",
            DeviceError::Missing { .. } | DeviceError::Values { .. } => "values",
            DeviceError::Unknown(_) => "unknown",
            DeviceError::Location { .. } => "location",
            DeviceError::Invalid(_) => "invalid",
        }
    }
}

/// Every [`DeviceError::reason`].
pub const REASONS: [&str; 9] = ["syntax", "field", "time", "unit", "kind", "values", "unknown", "location", "invalid"];

/// A measurement ready for the model.
#[derive(Debug, Clone, PartialEq)]
pub enum Measure {
    Number(f64),
    Text(String),
    Flag(bool),
}

/// The measurements of one sensor at one instant, by the model's attribute names, and the
/// measurements no attribute takes (kept to apply [`Options::unknown`] once the kind is known).
#[derive(Debug, Default)]
pub struct Observation {
    pub attributes: BTreeMap<&'static str, Measure>,
    pub unknown: Vec<String>,
}

impl Observation {
    /// Adds one measurement named `key` by the device, with the unit it came in.
    pub fn add(
        &mut self,
        key: &str,
        value: &Value,
        unit_text: Option<&str>,
        unit: Option<Unit>,
    ) -> Result<(), DeviceError> {
        let Some(a) = attribute(key) else {
            self.unknown.push(key.to_string());
            return Ok(());
        };
        let measure = match (a.quantity, value) {
            (Quantity::Text, Value::String(s)) => Measure::Text(s.clone()),
            (Quantity::Flag, Value::Bool(b)) => Measure::Flag(*b),
            (Quantity::Flag, Value::Number(n)) if n.as_f64() == Some(0.0) || n.as_f64() == Some(1.0) => {
                Measure::Flag(n.as_f64() == Some(1.0))
            }
            (Quantity::Text | Quantity::Flag, _) => return Err(DeviceError::Field(key.to_string())),
            (_, Value::Number(n)) => {
                let v = n.as_f64().ok_or_else(|| DeviceError::Field(key.to_string()))?;
                let v = convert(a, key, v, unit, unit_text.unwrap_or(""))?;
                // A flow converted from 1/s is a rate: whole vehicles per hour are close enough.
                let v = if a.quantity == Quantity::Flow { v.round() } else { v };
                Measure::Number(v)
            }
            _ => return Err(DeviceError::Field(key.to_string())),
        };
        self.attributes.insert(a.name, measure);
        Ok(())
    }
}

/// Where a reading comes from, once decoded.
pub struct Origin {
    pub sensor_id: String,
    pub observed_at: DateTime<Utc>,
    pub seq: u64,
    /// Position in the payload, if any.
    pub position: Option<(f64, f64)>,
}

/// The farthest a sensor may stand from the nearest commune centre, km (the island is about 70 km
/// long; farther means a wrong or foreign position, not a Martinique sensor).
pub const MAX_KM: f64 = 40.0;

/// The commune whose centre is nearest, within [`MAX_KM`].
pub fn nearest_commune(lat: f64, lon: f64) -> Option<Commune> {
    let km = |c: Commune| {
        let (clat, clon) = c.centre();
        // An equirectangular approximation is exact enough at this scale.
        let x = (lon - clon).to_radians() * ((lat + clat) / 2.0).to_radians().cos();
        let y = (lat - clat).to_radians();
        (x * x + y * y).sqrt() * 6371.0
    };
    let best = Commune::ALL.into_iter().min_by(|a, b| km(*a).total_cmp(&km(*b)))?;
    (km(best) <= MAX_KM).then_some(best)
}

/// Turns a device id into a valid sensor id: characters outside `A-Z a-z 0-9 - _ .` become `-`,
/// trailing separators go (`urn:dev:ow:10e2073a01080063:` → `urn-dev-ow-10e2073a01080063`).
pub fn sensor_id(raw: &str) -> String {
    raw.trim_end_matches([':', '/', '-', '.', '_', ' '])
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '-' })
        .collect()
}

/// The reading of `obs`, with the kind from `options` or from the attributes present.
pub fn build(origin: Origin, mut obs: Observation, options: &Options) -> Result<Reading, DeviceError> {
    let sensor = origin.sensor_id.clone();
    let placed = options.devices.get(&sensor);
    let kind = match placed.and_then(|p| p.kind).or(options.kind) {
        Some(k) => k,
        None => choose_kind(&sensor, &obs)?,
    };
    // Attributes of another kind count as unknown measurements of this one.
    let foreign: Vec<&'static str> =
        obs.attributes.keys().copied().filter(|n| !attribute_named(n).kinds.contains(&kind)).collect();
    for name in foreign {
        obs.attributes.remove(name);
        obs.unknown.push(name.to_string());
    }
    if options.unknown == Unknown::Refuse {
        if let Some(first) = obs.unknown.first() {
            return Err(DeviceError::Unknown(first.clone()));
        }
    }
    derive(kind, &mut obs.attributes);
    // A partial reading is fine; an empty one says nothing.
    if !kind.attributes().iter().any(|n| obs.attributes.contains_key(n)) {
        let attributes = kind.attributes().iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ");
        return Err(DeviceError::Missing { kind, sensor, attributes });
    }
    let fixed = placed.and_then(|p| p.lat.zip(p.lon));
    let (lat, lon) = match (fixed.or(origin.position), options.lat.zip(options.lon)) {
        (Some(p), _) | (None, Some(p)) => p,
        (None, None) => {
            let message = "no position in the payload and no `lat`/`lon` in the configuration".into();
            return Err(DeviceError::Location { sensor, message });
        }
    };
    let commune = nearest_commune(lat, lon).ok_or_else(|| DeviceError::Location {
        sensor: sensor.clone(),
        message: format!("{lat}, {lon} is more than {MAX_KM} km from every commune of Martinique"),
    })?;
    let reading = Reading {
        sensor_id: origin.sensor_id,
        commune,
        lat,
        lon,
        observed_at: origin.observed_at,
        seq: origin.seq,
        values: values(kind, &sensor, obs.attributes)?,
    };
    reading.validate()?;
    Ok(reading)
}

fn attribute_named(name: &str) -> &'static Attribute {
    // Observation keys are always names from ATTRIBUTES.
    ATTRIBUTES.iter().find(|a| a.name == name).unwrap_or(&ATTRIBUTES[0])
}

/// The kind with the most attributes present; on a tie, the one of which they are the larger
/// share (two of noise's three beat two of weather's six: a sound-level meter that also reads the
/// temperature is a noise sensor); still tied, or no attribute at all, is an error naming the
/// candidates, and `kind` in the configuration settles it.
pub fn choose_kind(sensor: &str, obs: &Observation) -> Result<SensorKind, DeviceError> {
    let count = |k: SensorKind| obs.attributes.keys().filter(|n| attribute_named(n).kinds.contains(&k)).count();
    // Compared as count × the other's size, so that no float rounding decides.
    let mut ranked: Vec<(usize, usize, SensorKind)> =
        SensorKind::ALL.into_iter().map(|k| (count(k), k.attributes().len(), k)).collect();
    ranked.sort_by(|(n, of_n, _), (m, of_m, _)| m.cmp(n).then((m * of_n).cmp(&(n * of_m))));
    let err = |message: String| DeviceError::Kind { sensor: sensor.to_string(), message };
    match ranked.as_slice() {
        [(0, _, _), ..] => Err(err(format!(
            "no measurement is an attribute of a kind (got {})",
            if obs.unknown.is_empty() { "none".into() } else { obs.unknown.join(", ") }
        ))),
        [(n, of_n, a), (m, of_m, b), ..] if n == m && n * of_m == m * of_n => {
            Err(err(format!("it fits {a} and {b} equally ({n} attributes of {of_n} each)")))
        }
        [(_, _, k), ..] => Ok(*k),
        [] => Err(err("no kinds".into())),
    }
}

/// Attributes that follow from others: they are computed, never invented.
fn derive(kind: SensorKind, attrs: &mut BTreeMap<&'static str, Measure>) {
    match kind {
        P => {
            if let Some(Measure::Flag(occupied)) = attrs.remove("occupied") {
                attrs.entry("totalSpotNumber").or_insert(Measure::Number(1.0));
                attrs.entry("availableSpotNumber").or_insert(Measure::Number(if occupied { 0.0 } else { 1.0 }));
            }
            if let (Some(Measure::Number(free)), Some(Measure::Number(total))) =
                (attrs.get("availableSpotNumber"), attrs.get("totalSpotNumber"))
            {
                if *total > 0.0 && !attrs.contains_key("occupancy") {
                    let occupancy = 1.0 - free / total;
                    attrs.insert("occupancy", Measure::Number(occupancy));
                }
            }
        }
        A => {
            if let Some(Measure::Number(aqi)) = attrs.get("airQualityIndex") {
                if !attrs.contains_key("airQualityLevel") && (0.0..=500.0).contains(aqi) {
                    let level = AirQualityLevel::from_index(aqi.round() as u32);
                    let text = serde_json::to_value(level).ok().and_then(|v| v.as_str().map(String::from));
                    attrs.insert("airQualityLevel", Measure::Text(text.unwrap_or_default()));
                }
            }
        }
        _ => {}
    }
}

/// The typed values, through the model's own serde definitions (which name a wrong field).
fn values(kind: SensorKind, sensor: &str, attrs: BTreeMap<&'static str, Measure>) -> Result<Values, DeviceError> {
    let mut map = Map::new();
    for (name, m) in attrs {
        let v = match m {
            // Whole numbers as integers, so that counts deserialize into the integer fields.
            Measure::Number(x) if x.fract() == 0.0 && (0.0..9.0e15).contains(&x) => Value::from(x as u64),
            Measure::Number(x) => serde_json::Number::from_f64(x).map(Value::Number).unwrap_or(Value::Null),
            Measure::Text(s) => Value::String(s),
            Measure::Flag(b) => Value::Bool(b),
        };
        map.insert(name.to_string(), v);
    }
    let v = Value::Object(map);
    let bad = |e: serde_json::Error| DeviceError::Values { kind, sensor: sensor.to_string(), message: e.to_string() };
    Ok(match kind {
        T => Values::Traffic(serde_json::from_value(v).map_err(bad)?),
        A => Values::AirQuality(serde_json::from_value(v).map_err(bad)?),
        P => Values::Parking(serde_json::from_value(v).map_err(bad)?),
        N => Values::Noise(serde_json::from_value(v).map_err(bad)?),
        W => Values::Weather(serde_json::from_value(v).map_err(bad)?),
        L => Values::Light(serde_json::from_value(v).map_err(bad)?),
    })
}

/// A number from a JSON value that is either a bare number or `{"value": n, "unit": "..."}` (the
/// nested form some vendors' formatters use), with the unit text if given.
pub fn vendor_value(v: &Value) -> (&Value, Option<&str>) {
    match v {
        Value::Object(o) if o.contains_key("value") => (&o["value"], o.get("unit").and_then(Value::as_str)),
        other => (other, None),
    }
}

/// Adds every key of a vendor's decoded object to `obs` (TTN `decoded_payload`, ChirpStack `object`).
pub fn add_object(obs: &mut Observation, object: &Map<String, Value>) -> Result<(), DeviceError> {
    for (key, raw) in object {
        let (value, unit_text) = vendor_value(raw);
        let unit = match unit_text {
            Some(u) => match vendor_unit(u) {
                Some(unit) => Some(unit),
                // An unknown unit on a measurement we do not use does not matter.
                None if attribute(key).is_none() => None,
                None => {
                    return Err(DeviceError::Unit { name: key.clone(), unit: u.to_string(), problem: "is not known" })
                }
            },
            None => None,
        };
        if attribute(key).is_some() || !value.is_object() {
            obs.add(key, value, unit_text, unit)?;
        } else {
            obs.unknown.push(key.clone());
        }
    }
    Ok(())
}

/// The bytes of the base64 string `key` of `object` (a raw LoRaWAN payload), named `path` when it
/// is missing or not base64.
pub fn base64_field(object: &Value, key: &str, path: &str) -> Result<Vec<u8>, DeviceError> {
    use base64::Engine;
    let text = object.get(key).and_then(Value::as_str).ok_or_else(|| DeviceError::Field(path.to_string()))?;
    base64::engine::general_purpose::STANDARD.decode(text).map_err(|_| DeviceError::Field(path.to_string()))
}

/// An RFC 3339 time, refused before 2000 (a zero time such as TTN's `0001-01-01T00:00:00Z` for
/// simulated uplinks is no observation time, and InfluxDB cannot store it).
pub fn parse_time(field: &str, s: &str) -> Result<DateTime<Utc>, DeviceError> {
    let t = DateTime::parse_from_rfc3339(s)
        .map_err(|_| DeviceError::Time(format!("`{field}` = `{s}` is not RFC 3339")))?
        .with_timezone(&Utc);
    if t.timestamp() < 946_684_800 {
        return Err(DeviceError::Time(format!("`{field}` = `{s}` is before 2000")));
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_must_be_whole_and_flows_are_rounded() {
        let mut obs = Observation::default();
        obs.add("intensity", &Value::from(0.3333), Some("1/s"), Some(Unit::PerSecond)).unwrap();
        assert_eq!(obs.attributes["intensity"], Measure::Number(1200.0));
        for v in [2.5, -1.0, 1e12] {
            let mut obs = Observation::default();
            obs.add("availableSpotNumber", &Value::from(v), None, None).unwrap();
            obs.add("totalSpotNumber", &Value::from(10), None, None).unwrap();
            let origin =
                Origin { sensor_id: "pk".into(), observed_at: Utc::now(), seq: 0, position: Some((14.6, -61.0)) };
            let e = build(origin, obs, &Options::default()).unwrap_err();
            assert_eq!(e.reason(), "values", "{e}");
            assert!(e.to_string().starts_with("parking sensor `pk`: "), "{e}");
        }
    }

    #[test]
    fn communes_are_the_nearest_on_the_island_only() {
        assert_eq!(nearest_commune(14.62, -61.06), Some(Commune::FortDeFrance));
        assert_eq!(nearest_commune(14.44, -60.88), Some(Commune::SainteAnne));
        assert_eq!(nearest_commune(37.97, 23.72), None, "Athens is not in Martinique");
    }

    #[test]
    fn devices_set_in_the_configuration_win() {
        let mut obs = Observation::default();
        obs.add("laeq", &Value::from(60.0), None, None).unwrap();
        obs.add("lamax", &Value::from(70.0), None, None).unwrap();
        obs.add("las", &Value::from(58.0), None, None).unwrap();
        let placed = Placement { kind: Some(SensorKind::Noise), lat: Some(14.74), lon: Some(-60.96) };
        let options = Options { devices: [("nz-9".to_string(), placed)].into(), ..Options::default() };
        let origin =
            Origin { sensor_id: "nz-9".into(), observed_at: Utc::now(), seq: 1, position: Some((14.6, -61.0)) };
        let r = build(origin, obs, &options).unwrap();
        assert_eq!((r.commune, r.lat), (Commune::LaTrinite, 14.74));
        let bad = Options { lat: Some(14.6), ..options };
        assert_eq!(bad.problems().len(), 1);
    }

    #[test]
    fn the_kind_is_the_most_attributes_then_the_larger_share() {
        let obs = |names: &[&str]| {
            let mut obs = Observation::default();
            for n in names {
                let v = match *n {
                    "congested" => Value::Bool(true),
                    "status" => Value::from("ok"),
                    _ => Value::from(0.5),
                };
                obs.add(n, &v, None, None).unwrap();
            }
            obs
        };
        let kind = |names: &[&str]| choose_kind("s", &obs(names));
        assert_eq!(kind(&["temperature", "humidity", "pressure", "pm10", "pm25"]), Ok(SensorKind::Weather));
        assert_eq!(kind(&["soundAvg", "soundPeak", "temperature", "humidity"]), Ok(SensorKind::Noise));
        assert_eq!(kind(&["occupancy"]), Ok(SensorKind::Parking), "1 of 3 beats 1 of 4");
        let e = kind(&["congested", "status"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot tell the kind of sensor `s`: it fits traffic and light equally (1 attributes of 4 each); set \
             `kind` for this source"
        );
    }

    #[test]
    fn sensor_ids_are_made_valid() {
        assert_eq!(sensor_id("urn:dev:ow:10e2073a01080063:"), "urn-dev-ow-10e2073a01080063");
        assert_eq!(sensor_id("Device name"), "Device-name");
    }
}
