//! From an NGSI-LD entity back to a [`Reading`]: the inverse of [`super::ngsi_ld::entity`], for
//! entities a context broker notifies (ours, or written by other producers: IoT agents, other
//! twins). Pure, and never panics, whatever the JSON (a property test feeds it arbitrary input).
//!
//! - The kind comes from `type` (the Smart Data Model), the sensor id from the `id`
//!   `urn:ngsi-ld:<Type>:<sensor id>` (any other id: all of it, made a valid sensor id as the
//!   device formats do: `urn-ngsi-ld-...`).
//! - Values: each attribute of the kind, normalized (`{"type": "Property", "value": ..}`) or
//!   keyValues (the plain value), in the units the codec writes (docs/ngsi-ld.md). An attribute
//!   the entity lacks is absent from the reading (a partial reading, as a device that measures
//!   part of its kind sends; the codec also leaves out a `totalSpotNumber` of 0); an entity with
//!   none of its kind's attributes is refused.
//! - Time: the latest `observedAt` of the attributes, else `dateObserved` (`dateObservedTo` for
//!   noise).
//! - Place: `location` (a GeoJSON Point, [lon, lat]); the commune from `address.addressLocality`,
//!   else the commune whose centre is nearest (within 40 km, as for devices).
//! - Sequence number: an entity carries none, so the reading's `seq` is its observation time in
//!   Unix seconds. It grows with every newer observation of a sensor, so the gateway's stale check
//!   still holds; gaps in it say nothing about loss (docs/ngsi-ld.md says how loss is counted).

use crate::codec::device;
use crate::kind::SensorKind;
use crate::place::Commune;
use crate::reading::{Reading, ReadingError, Values};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// Why an entity cannot become a reading.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EntityError {
    #[error("not an NGSI-LD entity: {0}")]
    Shape(String),
    #[error("entity type `{0}` is none of the six kinds' Smart Data Models")]
    Type(String),
    #[error("attribute `{attribute}`: {why}")]
    Attribute { attribute: String, why: String },
    #[error("no observation time: no attribute has an `observedAt` and there is no `{0}`")]
    Time(&'static str),
    #[error("{0}")]
    Invalid(#[from] ReadingError),
}

impl EntityError {
    /// The short reason of a dead letter (the metric label).
    pub fn reason(&self) -> &'static str {
        match self {
            EntityError::Shape(_) => "syntax",
            EntityError::Type(_) => "kind",
            EntityError::Attribute { .. } => "values",
            EntityError::Time(_) => "time",
            EntityError::Invalid(_) => "invalid",
        }
    }
}

fn attribute_error(attribute: &str, why: impl Into<String>) -> EntityError {
    EntityError::Attribute { attribute: attribute.into(), why: why.into() }
}

/// The kind whose Smart Data Model is `type_name`.
pub fn kind_of_type(type_name: &str) -> Option<SensorKind> {
    // Brokers may answer with the expanded IRI when our context is not the one they compact with.
    let short = type_name.rsplit(['/', '#']).next().unwrap_or(type_name);
    SensorKind::ALL.into_iter().find(|k| k.smart_data_model() == short)
}

/// The reading an entity holds.
pub fn reading(entity: &Value) -> Result<Reading, EntityError> {
    let obj = entity.as_object().ok_or_else(|| EntityError::Shape("not a JSON object".into()))?;
    let id = obj.get("id").and_then(Value::as_str).ok_or_else(|| EntityError::Shape("no `id`".into()))?;
    let type_name = obj.get("type").and_then(Value::as_str).ok_or_else(|| EntityError::Shape("no `type`".into()))?;
    let kind = kind_of_type(type_name).ok_or_else(|| EntityError::Type(type_name.into()))?;
    let sensor_id = sensor_id(id, kind);
    let observed_at = observed_at(obj, kind)?;
    let (lon, lat) = point(obj)?;
    let commune = commune(obj, lat, lon)?;
    let values = values(obj, kind)?;
    let seq = u64::try_from(observed_at.timestamp()).unwrap_or(0);
    let reading = Reading { sensor_id, commune, lat, lon, observed_at, seq, values };
    reading.validate()?;
    Ok(reading)
}

/// `urn:ngsi-ld:<Type>:<sensor id>` gives the sensor id; another id all of it, made a valid sensor id
/// as the device formats do ([`device::sensor_id`]).
fn sensor_id(id: &str, kind: SensorKind) -> String {
    let ours = format!("urn:ngsi-ld:{}:", kind.smart_data_model());
    device::sensor_id(id.strip_prefix(&ours).unwrap_or(id))
}

/// The value of an attribute, normalized or keyValues.
fn value_of<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    let attribute = obj.get(name)?;
    match attribute {
        Value::Object(o) if o.contains_key("type") && (o.contains_key("value") || o.contains_key("object")) => {
            o.get("value").or_else(|| o.get("object"))
        }
        other => Some(other),
    }
}

fn parse_time(name: &str, v: &Value) -> Result<DateTime<Utc>, EntityError> {
    // A JSON-LD typed value {"@type": "DateTime", "@value": ...} is how some producers write dates.
    let text = v.get("@value").unwrap_or(v).as_str().ok_or_else(|| attribute_error(name, "not a date-time string"))?;
    text.parse::<DateTime<Utc>>().map_err(|e| attribute_error(name, format!("`{text}` is not a date-time: {e}")))
}

fn observed_at(obj: &Map<String, Value>, kind: SensorKind) -> Result<DateTime<Utc>, EntityError> {
    let mut latest: Option<DateTime<Utc>> = None;
    for (name, attribute) in obj {
        if let Some(at) = attribute.get("observedAt") {
            let at = parse_time(&format!("{name}.observedAt"), at)?;
            latest = Some(latest.map_or(at, |l| l.max(at)));
        }
    }
    if let Some(at) = latest {
        return Ok(at);
    }
    let field = if kind == SensorKind::Noise { "dateObservedTo" } else { "dateObserved" };
    match value_of(obj, field) {
        Some(v) => parse_time(field, v),
        None => Err(EntityError::Time(field)),
    }
}

fn point(obj: &Map<String, Value>) -> Result<(f64, f64), EntityError> {
    let geo = value_of(obj, "location").ok_or_else(|| attribute_error("location", "missing"))?;
    let coordinates = geo
        .get("coordinates")
        .and_then(Value::as_array)
        .filter(|_| geo.get("type").and_then(Value::as_str) == Some("Point"))
        .ok_or_else(|| attribute_error("location", "not a GeoJSON Point"))?;
    match coordinates.as_slice() {
        [lon, lat, ..] => match (lon.as_f64(), lat.as_f64()) {
            (Some(lon), Some(lat)) => Ok((lon, lat)),
            _ => Err(attribute_error("location", "coordinates are not numbers")),
        },
        _ => Err(attribute_error("location", "a Point needs [longitude, latitude]")),
    }
}

fn commune(obj: &Map<String, Value>, lat: f64, lon: f64) -> Result<Commune, EntityError> {
    let named = value_of(obj, "address").and_then(|a| a.get("addressLocality")).and_then(Value::as_str);
    match named.and_then(Commune::parse).or_else(|| device::nearest_commune(lat, lon)) {
        Some(commune) => Ok(commune),
        None => Err(attribute_error("location", format!("more than {} km from every commune", device::MAX_KM))),
    }
}

/// The kind's values: its attributes present gathered as keyValues, then read by the model's own
/// serde. An attribute the entity lacks is absent from the reading (a partial reading), but an
/// entity with none of its kind's attributes says nothing and is refused.
fn values(obj: &Map<String, Value>, kind: SensorKind) -> Result<Values, EntityError> {
    let mut plain = Map::new();
    for &name in kind.attributes() {
        if let Some(v) = value_of(obj, name) {
            plain.insert(name.into(), v.clone());
        }
    }
    if plain.is_empty() {
        return Err(attribute_error(&kind.attributes().join(", "), "none is present"));
    }
    let plain = Value::Object(plain);
    let bad = |e: serde_json::Error| attribute_error(&e.to_string(), "wrong type or value");
    Ok(match kind {
        SensorKind::Traffic => Values::Traffic(serde_json::from_value(plain).map_err(bad)?),
        SensorKind::AirQuality => Values::AirQuality(serde_json::from_value(plain).map_err(bad)?),
        SensorKind::Parking => Values::Parking(serde_json::from_value(plain).map_err(bad)?),
        SensorKind::Noise => Values::Noise(serde_json::from_value(plain).map_err(bad)?),
        SensorKind::Weather => Values::Weather(serde_json::from_value(plain).map_err(bad)?),
        SensorKind::Light => Values::Light(serde_json::from_value(plain).map_err(bad)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::json::format_time;
    use crate::codec::ngsi_ld::{entity, Form, Options};
    use crate::reading::Weather;
    use crate::{Catalogue, ReadingStream};
    use proptest::prelude::*;

    fn simulated() -> Vec<Reading> {
        let mut stream = ReadingStream::new(Catalogue::default_ten(), 11);
        let mut out = Vec::new();
        for t in ["2026-05-01T08:00:00Z", "2026-05-01T20:00:05Z"] {
            stream.tick_into(t.parse().unwrap(), &mut out);
        }
        out
    }

    #[test]
    fn every_entity_reads_back_as_its_reading_in_both_forms() {
        for form in [Form::Normalized, Form::KeyValues] {
            // keyValues drops `observedAt`: parking and streetlight entities have no other time.
            let timed =
                |r: &Reading| form == Form::Normalized || !matches!(r.kind(), SensorKind::Parking | SensorKind::Light);
            for original in simulated().into_iter().filter(timed) {
                let e = entity(&original, &Options { form, ..Default::default() });
                let back = reading(&e).unwrap_or_else(|err| panic!("{form:?} {}: {err}", original.sensor_id));
                let expected = Reading { seq: original.observed_at.timestamp() as u64, ..original.clone() };
                assert_eq!(back, expected, "{form:?}");
            }
        }
    }

    /// An entity with only some of its kind's attributes (another producer's, or ours of a partial
    /// reading) is a partial reading.
    #[test]
    fn entities_with_some_attributes_are_partial_readings() {
        let original = simulated().into_iter().find(|r| r.kind() == SensorKind::Weather).unwrap();
        let mut e = entity(&original, &Options::default());
        e.as_object_mut().unwrap().remove("temperature");
        let Values::Weather(w) = reading(&e).unwrap().values else { panic!("a weather reading") };
        let Values::Weather(full) = original.values.clone() else { unreachable!() };
        assert_eq!(w, Weather { temperature: None, ..full });
        for form in [Form::Normalized, Form::KeyValues] {
            let partial = Reading {
                values: Values::Weather(Weather { temperature: Some(27.5), ..Default::default() }),
                ..original.clone()
            };
            let back = reading(&entity(&partial, &Options { form, ..Default::default() })).unwrap();
            assert_eq!(back.values, partial.values, "{form:?}");
        }
    }

    #[test]
    fn refusals_name_what_is_wrong() {
        let original = simulated().into_iter().find(|r| r.kind() == SensorKind::Weather).unwrap();
        let good = entity(&original, &Options::default());
        let mut nothing_measured = good.clone();
        for &name in SensorKind::Weather.attributes() {
            nothing_measured.as_object_mut().unwrap().remove(name);
        }
        let err = reading(&nothing_measured).unwrap_err();
        assert_eq!(err.reason(), "values");
        assert_eq!(
            err.to_string(),
            "attribute `temperature, relativeHumidity, atmosphericPressure, windSpeed, windDirection, \
             precipitation`: none is present"
        );
        let mut null = good.clone();
        null["temperature"]["value"] = Value::Null;
        assert_eq!(reading(&null).unwrap_err().reason(), "values", "a null is no value");
        let mut other_type = good.clone();
        other_type["type"] = "Building".into();
        assert_eq!(reading(&other_type).unwrap_err().reason(), "kind");
        let mut too_hot = good.clone();
        too_hot["temperature"]["value"] = 99.0.into();
        assert_eq!(reading(&too_hot).unwrap_err().reason(), "invalid");
        let mut no_time = good.clone();
        for (_, a) in no_time.as_object_mut().unwrap().iter_mut() {
            if let Some(a) = a.as_object_mut() {
                a.remove("observedAt");
            }
        }
        no_time.as_object_mut().unwrap().remove("dateObserved");
        assert_eq!(reading(&no_time).unwrap_err(), EntityError::Time("dateObserved"));
        assert_eq!(reading(&Value::from(3)).unwrap_err().reason(), "syntax");
    }

    #[test]
    fn another_producers_entity_gets_a_valid_sensor_id_and_the_nearest_commune() {
        let e = serde_json::json!({
            "id": "urn:ngsi-ld:WeatherObserved:Martinique:station-42", "type": "WeatherObserved",
            "temperature": 27.5, "relativeHumidity": 0.8, "atmosphericPressure": 1012.0, "windSpeed": 4.0,
            "windDirection": 90.0, "precipitation": 0.0, "dateObserved": "2026-05-01T10:00:00Z",
            "location": {"type": "Point", "coordinates": [-61.07, 14.61]}
        });
        let r = reading(&e).unwrap();
        assert_eq!(r.sensor_id, "Martinique-station-42");
        assert_eq!((r.commune, r.kind()), (Commune::FortDeFrance, SensorKind::Weather));
        assert_eq!(format_time(r.observed_at), "2026-05-01T10:00:00.000Z");
    }

    proptest! {
        #[test]
        fn no_json_panics_the_reader(text in "\\PC{0,300}") {
            if let Ok(v) = serde_json::from_str::<Value>(&text) {
                let _ = reading(&v);
            }
        }

        #[test]
        fn no_mangled_entity_panics_the_reader(drop in 0usize..12, value in any::<f64>(), i in 0usize..20) {
            let mut e = entity(&simulated()[i], &Options::default());
            let names: Vec<String> = e.as_object().unwrap().keys().cloned().collect();
            if let Some(attribute) = names.get(drop).and_then(|name| e[name.as_str()].as_object_mut()) {
                attribute.insert("value".into(), serde_json::json!(value));
            }
            let _ = reading(&e);
        }
    }
}
