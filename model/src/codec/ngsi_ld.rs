//! NGSI-LD entities (ETSI GS CIM 009) shaped as FIWARE Smart Data Models: one entity per sensor,
//! its id `urn:ngsi-ld:<Type>:<sensor id>`, rewritten by every reading. Layout, units, content modes
//! and examples: docs/ngsi-ld.md; a test checks that page against this code.
//!
//! ```json
//! {"id":"urn:ngsi-ld:TrafficFlowObserved:traffic-fort-de-france-01","type":"TrafficFlowObserved",
//!  "intensity":{"type":"Property","value":1520,"observedAt":"2026-11-20T11:30:00.000Z"},
//!  "averageVehicleSpeed":{"type":"Property","value":38.2,"observedAt":"2026-11-20T11:30:00.000Z","unitCode":"KMH"},
//!  "dateObserved":{"type":"Property","value":"2026-11-20T11:30:00.000Z"},
//!  "location":{"type":"GeoProperty","value":{"type":"Point","coordinates":[-61.0695,14.6065]}}, ...}
//! ```
//!
//! - Every measured value is a Property with `observedAt` (the reading's time) and, where
//!   UN/CEFACT has a code for its unit, `unitCode`.
//! - The attributes each Smart Data Model requires are always there (`dateObserved`, or
//!   `dateObservedFrom`/`dateObservedTo` for noise, and `location`), so every entity validates
//!   against the official schema once projected to keyValues (tested against shared/sdm); the one
//!   exception is a partial reading's streetlight without `status`.
//! - An attribute a partial reading does not carry is not sent: the broker keeps its last value.
//! - JSON `null` is never written: brokers read it as "delete this attribute". A value that cannot
//!   be written (a NaN, which `Reading::validate` refuses anyway) leaves its attribute out.
//! - Short names expand through config/ngsi-ld-context.jsonld ([`CONTEXT_DOCUMENT`]), never
//!   through the internet.

use crate::codec::json::format_time;
use crate::kind::SensorKind;
use crate::reading::{Reading, Values};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Map, Number, Value};
use std::time::Duration;

/// The project's JSON-LD context: every entity type and attribute short name the codec emits,
/// mapped to its Smart Data Models IRI. The gateway serves it and the compose stack mounts it, so
/// that brokers expand our entities without the internet.
pub const CONTEXT_DOCUMENT: &str = include_str!("../../../config/ngsi-ld-context.jsonld");

/// NGSI-LD representation of an entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Form {
    /// Every attribute a `{"type": "Property"|"GeoProperty", "value": ..}` object with its
    /// `observedAt` and `unitCode`: what brokers are written with.
    Normalized,
    /// Plain values, exactly what a broker returns for `options=keyValues` (and what the Smart Data
    /// Models schemas describe): `observedAt` and `unitCode` are lost.
    KeyValues,
}

/// How [`entity`] shapes an entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options<'a> {
    /// Normalized (for brokers) or keyValues.
    pub form: Form,
    /// `Some(url)`: an "@context" member `[url]` is put in the entity (application/ld+json mode);
    /// `None`: no @context in the body (application/json + Link header mode).
    pub context: Option<&'a str>,
    /// The period an observation covers (noise dateObservedFrom = observedAt - period,
    /// dateObservedTo = observedAt).
    pub period: Duration,
}

impl Default for Options<'_> {
    /// Normalized, no @context in the body (Link header mode), a 5 s period (the simulator's
    /// default interval).
    fn default() -> Self {
        Options { form: Form::Normalized, context: None, period: Duration::from_secs(5) }
    }
}

/// The entity a reading updates: `urn:ngsi-ld:<Smart Data Model type>:<sensor id>`. One entity
/// per sensor, so the broker holds the latest state and a replay rewrites the same entity.
pub fn entity_id(reading: &Reading) -> String {
    format!("urn:ngsi-ld:{}:{}", reading.kind().smart_data_model(), reading.sensor_id)
}

/// Every attribute short name the codec can emit for `kind` (for the context test and the
/// contract server): the top-level members of its entities besides `id`, `type` and `@context`,
/// in the order the codec writes them. Each entity has all of them, except an attribute a partial
/// reading does not carry and a number that cannot be written (NaN, or a `totalSpotNumber` of 0,
/// which the schema forbids).
pub fn attribute_names(kind: SensorKind) -> &'static [&'static str] {
    match kind {
        SensorKind::Traffic => {
            &["intensity", "occupancy", "averageVehicleSpeed", "congested", "dateObserved", "location", "address"]
        }
        SensorKind::AirQuality => &[
            "pm10",
            "pm25",
            "no2",
            "o3",
            "co",
            "so2",
            "airQualityIndex",
            "airQualityLevel",
            "dateObserved",
            "location",
            "address",
        ],
        SensorKind::Parking => &["availableSpotNumber", "totalSpotNumber", "occupancy", "location", "address"],
        SensorKind::Noise => &["LAeq", "LAmax", "LAS", "dateObservedFrom", "dateObservedTo", "location", "address"],
        SensorKind::Weather => &[
            "temperature",
            "relativeHumidity",
            "atmosphericPressure",
            "windSpeed",
            "windDirection",
            "precipitation",
            "dateObserved",
            "location",
            "address",
        ],
        SensorKind::Light => &["status", "powerState", "illuminanceLevel", "powerConsumption", "location", "address"],
    }
}

/// UN/CEFACT common codes (Recommendation 20) of the units we emit. Values without one (counts,
/// indices, vehicles/hour, text, booleans) get no `unitCode` rather than an invented one.
mod unit {
    /// Dimensionless, "one": our ratios are 0-1, never percent (P1).
    pub const RATIO: &str = "C62";
    pub const KM_PER_HOUR: &str = "KMH";
    pub const MICROGRAM_PER_M3: &str = "GQ";
    pub const MILLIGRAM_PER_M3: &str = "GP";
    pub const DECIBEL: &str = "2N";
    pub const CELSIUS: &str = "CEL";
    pub const HECTOPASCAL: &str = "A97";
    pub const METRE_PER_SECOND: &str = "MTS";
    pub const DEGREE: &str = "DD";
    pub const MILLIMETRE: &str = "MMT";
    pub const WATT: &str = "WTT";
}

/// The entity of `reading` in the form `options` asks for. Pure: same reading and options, same
/// entity.
pub fn entity(reading: &Reading, options: &Options) -> Value {
    let kind = reading.kind();
    let observed_at = format_time(reading.observed_at);
    let mut e = Entity { map: Map::new(), form: options.form, observed_at: &observed_at };
    e.map.insert("id".into(), Value::String(entity_id(reading)));
    e.map.insert("type".into(), Value::String(kind.smart_data_model().into()));

    match &reading.values {
        Values::Traffic(v) => {
            // Vehicles per hour (a flow rate, as the wire format carries it). UN/CEFACT has no code
            // for vehicles/hour and a made-up one would mislead more than none: docs/ngsi-ld.md
            // states the unit.
            e.measured("intensity", v.intensity.map(Value::from), None);
            e.number("occupancy", v.occupancy, Some(unit::RATIO));
            e.number("averageVehicleSpeed", v.average_vehicle_speed, Some(unit::KM_PER_HOUR));
            e.measured("congested", v.congested.map(Value::from), None);
        }
        Values::AirQuality(v) => {
            e.number("pm10", v.pm10, Some(unit::MICROGRAM_PER_M3));
            e.number("pm25", v.pm25, Some(unit::MICROGRAM_PER_M3));
            e.number("no2", v.no2, Some(unit::MICROGRAM_PER_M3));
            e.number("o3", v.o3, Some(unit::MICROGRAM_PER_M3));
            e.number("co", v.co, Some(unit::MILLIGRAM_PER_M3));
            e.number("so2", v.so2, Some(unit::MICROGRAM_PER_M3));
            // An integer, as the schema requires; an index has no unit.
            e.measured("airQualityIndex", v.air_quality_index.map(Value::from), None);
            e.measured("airQualityLevel", v.air_quality_level.map(enum_name), None);
        }
        Values::Parking(v) => {
            e.measured("availableSpotNumber", v.available_spot_number.map(Value::from), None);
            // The schema wants totalSpotNumber >= 1: a lot that reports 0 spots (closed, unknown)
            // is sent without it rather than as an invalid entity.
            e.measured("totalSpotNumber", v.total_spot_number.filter(|t| *t >= 1).map(Value::from), None);
            e.number("occupancy", v.occupancy, Some(unit::RATIO));
            // No `status`: the model wants an array of DATEX II states, which would only restate
            // availableSpotNumber, and JSON-LD compaction turns a one-element array back into a
            // plain string, so the entity read back from a broker such as Stellio would break the
            // schema.
        }
        Values::Noise(v) => {
            e.number("LAeq", v.laeq, Some(unit::DECIBEL));
            e.number("LAmax", v.lamax, Some(unit::DECIBEL));
            e.number("LAS", v.las, Some(unit::DECIBEL));
        }
        Values::Weather(v) => {
            e.number("temperature", v.temperature, Some(unit::CELSIUS));
            e.number("relativeHumidity", v.relative_humidity, Some(unit::RATIO));
            e.number("atmosphericPressure", v.atmospheric_pressure, Some(unit::HECTOPASCAL));
            e.number("windSpeed", v.wind_speed, Some(unit::METRE_PER_SECOND));
            e.number("windDirection", v.wind_direction, Some(unit::DEGREE));
            e.number("precipitation", v.precipitation, Some(unit::MILLIMETRE));
        }
        Values::Light(v) => {
            e.measured("status", v.status.map(enum_name), None);
            e.measured("powerState", v.power_state.map(enum_name), None);
            e.number("illuminanceLevel", v.illuminance_level, Some(unit::RATIO));
            e.number("powerConsumption", v.power_consumption, Some(unit::WATT));
        }
    }

    // The time attributes of the models that have them (OffStreetParking and Streetlight have
    // none: `observedAt` carries the time there).
    //
    // Their value is a plain RFC 3339 string, not the JSON-LD typed value
    // {"@type": "DateTime", "@value": ...} of some official normalized examples: the schemas want
    // a `date-time` string once the entity is projected to keyValues, which the typed object is
    // not; both Orion-LD and Stellio store any JSON value in a Property, so the string is accepted;
    // the typed form would only let `q=` compare the attribute as a date, which we do not need since
    // every measured attribute carries `observedAt`, the NGSI-LD DateTime that the temporal API
    // indexes; and the keyValues form stays the same string.
    match kind {
        SensorKind::Noise => {
            // The model has no dateObserved: the period the levels were integrated over instead.
            let from = TimeDelta::from_std(options.period)
                .ok()
                .and_then(|d| reading.observed_at.checked_sub_signed(d))
                // A period too long to represent (centuries) is a configuration error; an empty
                // period is a better answer than a panic in a codec.
                .unwrap_or(reading.observed_at);
            e.time("dateObservedFrom", from);
            e.time("dateObservedTo", reading.observed_at);
        }
        SensorKind::Traffic | SensorKind::AirQuality | SensorKind::Weather => {
            e.time("dateObserved", reading.observed_at);
        }
        SensorKind::Parking | SensorKind::Light => {}
    }

    // GeoJSON order is [longitude, latitude].
    if let (Some(lon), Some(lat)) = (Number::from_f64(reading.lon), Number::from_f64(reading.lat)) {
        let point = Value::Object(Map::from_iter([
            ("type".to_string(), Value::String("Point".into())),
            ("coordinates".to_string(), Value::Array(vec![Value::Number(lon), Value::Number(lat)])),
        ]));
        e.attribute("location", point, "GeoProperty");
    }

    // Martinique is a French region: ISO 3166-1 country FR, as French addresses write it.
    let address = Value::Object(Map::from_iter([
        ("addressLocality".to_string(), Value::String(reading.commune.name().into())),
        ("addressRegion".to_string(), Value::String("Martinique".into())),
        ("addressCountry".to_string(), Value::String("FR".into())),
    ]));
    e.attribute("address", address, "Property");

    if let Some(context) = options.context {
        e.map.insert("@context".into(), Value::Array(vec![Value::String(context.into())]));
    }
    Value::Object(e.map)
}

/// An entity being built, in one form.
struct Entity<'a> {
    map: Map<String, Value>,
    form: Form,
    /// The reading's time, formatted once for every `observedAt`.
    observed_at: &'a str,
}

impl Entity<'_> {
    /// A value observed at the reading's time; nothing when the sensor did not measure it (an
    /// absent attribute is left out, never written as `null`, which would delete it in the broker).
    fn measured(&mut self, name: &str, value: Option<Value>, unit_code: Option<&str>) {
        let Some(value) = value else { return };
        let attribute = match self.form {
            Form::KeyValues => value,
            Form::Normalized => {
                let mut p = Map::new();
                p.insert("type".into(), Value::String("Property".into()));
                p.insert("value".into(), value);
                p.insert("observedAt".into(), Value::String(self.observed_at.into()));
                if let Some(u) = unit_code {
                    p.insert("unitCode".into(), Value::String(u.into()));
                }
                Value::Object(p)
            }
        };
        self.map.insert(name.into(), attribute);
    }

    /// A measured number; left out when it is not finite, as JSON has no NaN and `null` would
    /// delete the attribute in the broker.
    fn number(&mut self, name: &str, value: Option<f64>, unit_code: Option<&str>) {
        self.measured(name, value.and_then(Number::from_f64).map(Value::Number), unit_code);
    }

    /// A date-time attribute: a plain RFC 3339 string (see [`entity`] for why not a typed value).
    fn time(&mut self, name: &str, t: DateTime<Utc>) {
        self.attribute(name, Value::String(format_time(t)), "Property");
    }

    /// An attribute that is not itself a measurement, so without `observedAt`.
    fn attribute(&mut self, name: &str, value: Value, ngsi_type: &str) {
        let attribute = match self.form {
            Form::KeyValues => value,
            Form::Normalized => Value::Object(Map::from_iter([
                ("type".to_string(), Value::String(ngsi_type.into())),
                ("value".to_string(), value),
            ])),
        };
        self.map.insert(name.into(), attribute);
    }
}

/// The serde name of a unit enum (`unhealthyForSensitiveGroups`, `defectiveLamp`, `on`): the same
/// names as the JSON wire format and the Smart Data Models enums.
fn enum_name<T: serde::Serialize>(v: T) -> Value {
    // Serializing a unit variant to a Value cannot fail; a string it is.
    serde_json::to_value(v).expect("unit enum serializes to a string")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::Catalogue;
    use crate::place::Commune;
    use crate::reading::{
        AirQuality, AirQualityLevel, Light, LightStatus, Noise, Parking, PowerState, Traffic, Weather,
    };
    use crate::stream::ReadingStream;
    use chrono::TimeZone;
    use serde_json::json;
    use std::collections::BTreeSet;

    /// The context URL of the ld+json examples: the sink's default (the gateway's route).
    const CONTEXT_URL: &str = "http://127.0.0.1:8080/ngsi-ld/context.jsonld";

    fn reading(id: &str, commune: Commune, lat: f64, lon: f64, t: DateTime<Utc>, values: Values) -> Reading {
        Reading { sensor_id: id.into(), commune, lat, lon, observed_at: t, seq: 1234, values }
    }

    /// One fixed reading per kind (Friday 2026-11-20, 07:30 in Martinique; the streetlight at 19:30):
    /// the pinned entities below and the examples of docs/ngsi-ld.md. Hand-written rather than
    /// simulated so that tuning the simulation never rewrites the documentation.
    fn fixed_readings() -> Vec<Reading> {
        let t = Utc.with_ymd_and_hms(2026, 11, 20, 11, 30, 0).unwrap();
        let dusk = Utc.with_ymd_and_hms(2026, 11, 20, 23, 30, 0).unwrap();
        use Commune::*;
        vec![
            reading(
                "traffic-fort-de-france-01",
                FortDeFrance,
                14.6065,
                -61.0695,
                t,
                Values::Traffic(Traffic {
                    intensity: Some(1520),
                    occupancy: Some(0.41),
                    average_vehicle_speed: Some(38.2),
                    congested: Some(false),
                }),
            ),
            reading(
                "air-quality-fort-de-france-01",
                FortDeFrance,
                14.616,
                -61.056,
                t,
                Values::AirQuality(AirQuality {
                    pm10: Some(48.2),
                    pm25: Some(21.7),
                    no2: Some(31.4),
                    o3: Some(52.0),
                    co: Some(0.42),
                    so2: Some(3.1),
                    air_quality_index: Some(71),
                    air_quality_level: Some(AirQualityLevel::Moderate),
                }),
            ),
            reading(
                "parking-fort-de-france-01",
                FortDeFrance,
                14.6025,
                -61.065,
                t,
                Values::Parking(Parking {
                    available_spot_number: Some(87),
                    total_spot_number: Some(420),
                    occupancy: Some(0.793),
                }),
            ),
            reading(
                "noise-fort-de-france-01",
                FortDeFrance,
                14.61,
                -61.062,
                t,
                Values::Noise(Noise { laeq: Some(68.4), lamax: Some(79.1), las: Some(66.2) }),
            ),
            reading(
                "weather-le-lamentin-01",
                LeLamentin,
                14.596,
                -60.999,
                t,
                Values::Weather(Weather {
                    temperature: Some(26.8),
                    relative_humidity: Some(0.78),
                    atmospheric_pressure: Some(1013.2),
                    wind_speed: Some(5.3),
                    wind_direction: Some(95.0),
                    precipitation: Some(0.0),
                }),
            ),
            reading(
                "light-schoelcher-01",
                Schoelcher,
                14.615,
                -61.09,
                dusk,
                Values::Light(Light {
                    status: Some(LightStatus::Ok),
                    power_state: Some(PowerState::On),
                    illuminance_level: Some(1.0),
                    power_consumption: Some(120.0),
                }),
            ),
        ]
    }

    fn fixed(kind: SensorKind) -> Reading {
        fixed_readings().into_iter().find(|r| r.kind() == kind).expect("one fixed reading per kind")
    }

    fn normalized(r: &Reading) -> Value {
        entity(r, &Options::default())
    }

    fn key_values(r: &Reading) -> Value {
        entity(r, &Options { form: Form::KeyValues, ..Options::default() })
    }

    /// Two simulated days (a Friday and a Saturday) of the default catalogue every 20 minutes:
    /// rush hours, quiet nights, full beach car parks, dusk and dawn.
    fn simulated() -> Vec<Reading> {
        let mut stream = ReadingStream::new(Catalogue::default_ten(), 42);
        let start = Utc.with_ymd_and_hms(2026, 11, 20, 4, 0, 0).unwrap();
        let mut out = Vec::new();
        for i in 0..144 {
            stream.tick_into(start + TimeDelta::minutes(20 * i), &mut out);
        }
        out
    }

    /// Readings at the edges: every enum value and the ends of every range.
    fn edge_readings() -> Vec<Reading> {
        let mut out = Vec::new();
        let base = |k| fixed(k);
        for status in
            [LightStatus::Ok, LightStatus::DefectiveLamp, LightStatus::ColumnIssue, LightStatus::BrokenLantern]
        {
            for power_state in [PowerState::On, PowerState::Off, PowerState::Low, PowerState::BootingUp] {
                let mut r = base(SensorKind::Light);
                r.values = Values::Light(Light {
                    status: Some(status),
                    power_state: Some(power_state),
                    illuminance_level: Some(0.0),
                    power_consumption: Some(0.0),
                });
                out.push(r);
            }
        }
        for aqi in [0, 75, 125, 175, 250, 500] {
            let mut r = base(SensorKind::AirQuality);
            r.values = Values::AirQuality(AirQuality {
                pm10: Some(0.0),
                pm25: Some(0.0),
                no2: Some(0.0),
                o3: Some(0.0),
                co: Some(0.0),
                so2: Some(0.0),
                air_quality_index: Some(aqi),
                air_quality_level: Some(AirQualityLevel::from_index(aqi)),
            });
            out.push(r);
        }
        for (wind_direction, relative_humidity) in [(0.0, 0.0), (360.0, 1.0)] {
            let mut r = base(SensorKind::Weather);
            r.values = Values::Weather(Weather {
                temperature: Some(-20.0),
                relative_humidity: Some(relative_humidity),
                atmospheric_pressure: Some(870.0),
                wind_speed: Some(0.0),
                wind_direction: Some(wind_direction),
                precipitation: Some(500.0),
            });
            out.push(r);
        }
        for (available, total) in [(0, 1), (420, 420), (0, 0)] {
            let mut r = base(SensorKind::Parking);
            r.values = Values::Parking(Parking {
                available_spot_number: Some(available),
                total_spot_number: Some(total),
                occupancy: if total == 0 { Some(0.0) } else { Some(1.0 - available as f64 / total as f64) },
            });
            out.push(r);
        }
        let mut r = base(SensorKind::Traffic);
        r.values = Values::Traffic(Traffic {
            intensity: Some(0),
            occupancy: Some(1.0),
            average_vehicle_speed: Some(0.0),
            congested: Some(true),
        });
        out.push(r);
        out
    }

    /// Every reading the property tests run over.
    fn all_readings() -> Vec<Reading> {
        let mut all = fixed_readings();
        all.extend(edge_readings());
        all.extend(simulated());
        all
    }

    #[test]
    fn traffic_normalized() {
        assert_eq!(
            normalized(&fixed(SensorKind::Traffic)),
            json!({
                "id": "urn:ngsi-ld:TrafficFlowObserved:traffic-fort-de-france-01",
                "type": "TrafficFlowObserved",
                "intensity": {"type": "Property", "value": 1520, "observedAt": "2026-11-20T11:30:00.000Z"},
                "occupancy": {"type": "Property", "value": 0.41, "observedAt": "2026-11-20T11:30:00.000Z", "unitCode": "C62"},
                "averageVehicleSpeed": {"type": "Property", "value": 38.2, "observedAt": "2026-11-20T11:30:00.000Z", "unitCode": "KMH"},
                "congested": {"type": "Property", "value": false, "observedAt": "2026-11-20T11:30:00.000Z"},
                "dateObserved": {"type": "Property", "value": "2026-11-20T11:30:00.000Z"},
                "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [-61.0695, 14.6065]}},
                "address": {"type": "Property", "value": {"addressLocality": "Fort-de-France", "addressRegion": "Martinique", "addressCountry": "FR"}}
            })
        );
    }

    #[test]
    fn air_quality_normalized() {
        let at = "2026-11-20T11:30:00.000Z";
        assert_eq!(
            normalized(&fixed(SensorKind::AirQuality)),
            json!({
                "id": "urn:ngsi-ld:AirQualityObserved:air-quality-fort-de-france-01",
                "type": "AirQualityObserved",
                "pm10": {"type": "Property", "value": 48.2, "observedAt": at, "unitCode": "GQ"},
                "pm25": {"type": "Property", "value": 21.7, "observedAt": at, "unitCode": "GQ"},
                "no2": {"type": "Property", "value": 31.4, "observedAt": at, "unitCode": "GQ"},
                "o3": {"type": "Property", "value": 52.0, "observedAt": at, "unitCode": "GQ"},
                "co": {"type": "Property", "value": 0.42, "observedAt": at, "unitCode": "GP"},
                "so2": {"type": "Property", "value": 3.1, "observedAt": at, "unitCode": "GQ"},
                "airQualityIndex": {"type": "Property", "value": 71, "observedAt": at},
                "airQualityLevel": {"type": "Property", "value": "moderate", "observedAt": at},
                "dateObserved": {"type": "Property", "value": at},
                "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [-61.056, 14.616]}},
                "address": {"type": "Property", "value": {"addressLocality": "Fort-de-France", "addressRegion": "Martinique", "addressCountry": "FR"}}
            })
        );
    }

    #[test]
    fn parking_normalized() {
        let at = "2026-11-20T11:30:00.000Z";
        assert_eq!(
            normalized(&fixed(SensorKind::Parking)),
            json!({
                "id": "urn:ngsi-ld:OffStreetParking:parking-fort-de-france-01",
                "type": "OffStreetParking",
                "availableSpotNumber": {"type": "Property", "value": 87, "observedAt": at},
                "totalSpotNumber": {"type": "Property", "value": 420, "observedAt": at},
                "occupancy": {"type": "Property", "value": 0.793, "observedAt": at, "unitCode": "C62"},
                "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [-61.065, 14.6025]}},
                "address": {"type": "Property", "value": {"addressLocality": "Fort-de-France", "addressRegion": "Martinique", "addressCountry": "FR"}}
            })
        );
    }

    #[test]
    fn noise_normalized() {
        let at = "2026-11-20T11:30:00.000Z";
        assert_eq!(
            normalized(&fixed(SensorKind::Noise)),
            json!({
                "id": "urn:ngsi-ld:NoiseLevelObserved:noise-fort-de-france-01",
                "type": "NoiseLevelObserved",
                "LAeq": {"type": "Property", "value": 68.4, "observedAt": at, "unitCode": "2N"},
                "LAmax": {"type": "Property", "value": 79.1, "observedAt": at, "unitCode": "2N"},
                "LAS": {"type": "Property", "value": 66.2, "observedAt": at, "unitCode": "2N"},
                "dateObservedFrom": {"type": "Property", "value": "2026-11-20T11:29:55.000Z"},
                "dateObservedTo": {"type": "Property", "value": at},
                "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [-61.062, 14.61]}},
                "address": {"type": "Property", "value": {"addressLocality": "Fort-de-France", "addressRegion": "Martinique", "addressCountry": "FR"}}
            })
        );
    }

    #[test]
    fn weather_normalized() {
        let at = "2026-11-20T11:30:00.000Z";
        assert_eq!(
            normalized(&fixed(SensorKind::Weather)),
            json!({
                "id": "urn:ngsi-ld:WeatherObserved:weather-le-lamentin-01",
                "type": "WeatherObserved",
                "temperature": {"type": "Property", "value": 26.8, "observedAt": at, "unitCode": "CEL"},
                "relativeHumidity": {"type": "Property", "value": 0.78, "observedAt": at, "unitCode": "C62"},
                "atmosphericPressure": {"type": "Property", "value": 1013.2, "observedAt": at, "unitCode": "A97"},
                "windSpeed": {"type": "Property", "value": 5.3, "observedAt": at, "unitCode": "MTS"},
                "windDirection": {"type": "Property", "value": 95.0, "observedAt": at, "unitCode": "DD"},
                "precipitation": {"type": "Property", "value": 0.0, "observedAt": at, "unitCode": "MMT"},
                "dateObserved": {"type": "Property", "value": at},
                "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [-60.999, 14.596]}},
                "address": {"type": "Property", "value": {"addressLocality": "Le Lamentin", "addressRegion": "Martinique", "addressCountry": "FR"}}
            })
        );
    }

    #[test]
    fn light_normalized() {
        let at = "2026-11-20T23:30:00.000Z";
        assert_eq!(
            normalized(&fixed(SensorKind::Light)),
            json!({
                "id": "urn:ngsi-ld:Streetlight:light-schoelcher-01",
                "type": "Streetlight",
                "status": {"type": "Property", "value": "ok", "observedAt": at},
                "powerState": {"type": "Property", "value": "on", "observedAt": at},
                "illuminanceLevel": {"type": "Property", "value": 1.0, "observedAt": at, "unitCode": "C62"},
                "powerConsumption": {"type": "Property", "value": 120.0, "observedAt": at, "unitCode": "WTT"},
                "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [-61.09, 14.615]}},
                "address": {"type": "Property", "value": {"addressLocality": "Schoelcher", "addressRegion": "Martinique", "addressCountry": "FR"}}
            })
        );
    }

    #[test]
    fn traffic_key_values() {
        assert_eq!(
            key_values(&fixed(SensorKind::Traffic)),
            json!({
                "id": "urn:ngsi-ld:TrafficFlowObserved:traffic-fort-de-france-01",
                "type": "TrafficFlowObserved",
                "intensity": 1520,
                "occupancy": 0.41,
                "averageVehicleSpeed": 38.2,
                "congested": false,
                "dateObserved": "2026-11-20T11:30:00.000Z",
                "location": {"type": "Point", "coordinates": [-61.0695, 14.6065]},
                "address": {"addressLocality": "Fort-de-France", "addressRegion": "Martinique", "addressCountry": "FR"}
            })
        );
    }

    #[test]
    fn context_member_only_in_ld_json_mode() {
        let r = fixed(SensorKind::Weather);
        assert!(normalized(&r).get("@context").is_none(), "Link header mode: no @context in the body");
        for form in [Form::Normalized, Form::KeyValues] {
            let e = entity(&r, &Options { form, context: Some(CONTEXT_URL), ..Options::default() });
            assert_eq!(e["@context"], json!([CONTEXT_URL]));
        }
    }

    #[test]
    fn entity_ids_are_urns_of_the_model_type() {
        let ids: Vec<String> = fixed_readings().iter().map(entity_id).collect();
        assert_eq!(
            ids,
            [
                "urn:ngsi-ld:TrafficFlowObserved:traffic-fort-de-france-01",
                "urn:ngsi-ld:AirQualityObserved:air-quality-fort-de-france-01",
                "urn:ngsi-ld:OffStreetParking:parking-fort-de-france-01",
                "urn:ngsi-ld:NoiseLevelObserved:noise-fort-de-france-01",
                "urn:ngsi-ld:WeatherObserved:weather-le-lamentin-01",
                "urn:ngsi-ld:Streetlight:light-schoelcher-01",
            ]
        );
        for r in fixed_readings() {
            assert_eq!(normalized(&r)["id"], json!(entity_id(&r)));
        }
    }

    #[test]
    fn noise_period_follows_the_options() {
        let r = fixed(SensorKind::Noise);
        let e = entity(&r, &Options { period: Duration::from_millis(60_500), ..Options::default() });
        assert_eq!(e["dateObservedFrom"]["value"], "2026-11-20T11:28:59.500Z");
        assert_eq!(e["dateObservedTo"]["value"], "2026-11-20T11:30:00.000Z");
        // An absurd period degrades to an empty one instead of panicking.
        let e = entity(&r, &Options { period: Duration::from_secs(u64::MAX), ..Options::default() });
        assert_eq!(e["dateObservedFrom"], e["dateObservedTo"]);
    }

    #[test]
    fn form_reads_from_config_names() {
        assert_eq!(serde_json::from_str::<Form>("\"normalized\"").unwrap(), Form::Normalized);
        assert_eq!(serde_json::from_str::<Form>("\"keyValues\"").unwrap(), Form::KeyValues);
    }

    fn assert_no_null(v: &Value, path: &str) {
        match v {
            Value::Null => panic!("null at {path}"),
            Value::Array(items) => {
                items.iter().enumerate().for_each(|(i, x)| assert_no_null(x, &format!("{path}[{i}]")))
            }
            Value::Object(m) => m.iter().for_each(|(k, x)| assert_no_null(x, &format!("{path}.{k}"))),
            _ => {}
        }
    }

    #[test]
    fn never_a_null() {
        let mut readings = all_readings();
        // Values `Reading::validate` refuses still never become null: their attributes are left out.
        let mut bad = fixed(SensorKind::Weather);
        bad.lat = f64::NAN;
        bad.values = Values::Weather(Weather {
            temperature: Some(f64::NAN),
            relative_humidity: Some(f64::INFINITY),
            atmospheric_pressure: Some(1013.0),
            wind_speed: Some(1.0),
            wind_direction: Some(90.0),
            precipitation: Some(0.0),
        });
        readings.push(bad.clone());
        for r in &readings {
            for form in [Form::Normalized, Form::KeyValues] {
                let e = entity(r, &Options { form, context: Some(CONTEXT_URL), ..Options::default() });
                assert_no_null(&e, &r.sensor_id);
            }
        }
        let e = normalized(&bad);
        for gone in ["temperature", "relativeHumidity", "location"] {
            assert!(e.get(gone).is_none(), "{gone} should be left out: {e}");
        }
        assert_eq!(e["atmosphericPressure"]["value"], 1013.0);
    }

    #[test]
    fn entities_have_exactly_the_listed_attributes() {
        for r in all_readings() {
            let names: BTreeSet<&str> = attribute_names(r.kind()).iter().copied().collect();
            assert_eq!(names.len(), attribute_names(r.kind()).len(), "duplicate name for {}", r.kind());
            for form in [Form::Normalized, Form::KeyValues] {
                let e = entity(&r, &Options { form, ..Options::default() });
                let mut keys: BTreeSet<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
                assert!(keys.remove("id") && keys.remove("type"));
                let zero_total = matches!(&r.values, Values::Parking(p) if p.total_spot_number == Some(0));
                let expected: BTreeSet<&str> =
                    names.iter().copied().filter(|n| !(zero_total && *n == "totalSpotNumber")).collect();
                assert_eq!(keys, expected, "{}", r.sensor_id);
            }
        }
    }

    /// Terms every broker takes from the NGSI-LD core context, which it always applies (and which
    /// is `@protected`: our context must not redefine them).
    const CORE_TERMS: [&str; 13] = [
        "@context",
        "id",
        "type",
        "value",
        "observedAt",
        "unitCode",
        "Property",
        "GeoProperty",
        "Point",
        "coordinates",
        "location",
        "status",
        "description",
    ];

    /// The members of the `address` value.
    const ADDRESS_KEYS: [&str; 3] = ["addressLocality", "addressRegion", "addressCountry"];

    fn context_map() -> Map<String, Value> {
        let doc: Value = serde_json::from_str(CONTEXT_DOCUMENT).expect("config/ngsi-ld-context.jsonld is JSON");
        assert_eq!(doc.as_object().map(Map::len), Some(1), "the document holds only @context");
        match &doc["@context"] {
            Value::Object(m) => m.clone(),
            other => panic!("@context should be one flat object of terms, not {other}"),
        }
    }

    #[test]
    fn context_maps_every_emitted_term() {
        let ctx = context_map();
        let mut used: BTreeSet<&str> = ADDRESS_KEYS.into_iter().collect();
        for kind in SensorKind::ALL {
            used.insert(kind.smart_data_model());
            used.extend(attribute_names(kind).iter().copied().filter(|n| !CORE_TERMS.contains(n)));
        }
        for term in &used {
            let iri = ctx.get(*term).and_then(Value::as_str).unwrap_or_else(|| panic!("no IRI for `{term}`"));
            assert!(iri.starts_with("https://smartdatamodels.org/"), "`{term}` maps to {iri}");
        }
        let defined: BTreeSet<&str> = ctx.keys().map(String::as_str).collect();
        assert_eq!(defined, used, "the context defines exactly the terms the codec emits");
        for core in CORE_TERMS {
            assert!(!ctx.contains_key(core), "`{core}` belongs to the (protected) core context");
        }
        // Types live in their domain's namespace; the one shared short name is documented.
        for kind in SensorKind::ALL {
            let t = kind.smart_data_model();
            assert!(ctx[t].as_str().unwrap().ends_with(&format!("/{t}")));
        }
        assert_eq!(ctx["occupancy"], "https://smartdatamodels.org/dataModel.Transportation/occupancy");
    }

    // ---- Validation against the official Smart Data Models schemas (shared/sdm) ----

    const SDM_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/sdm");

    fn load(file: &str) -> Value {
        let path = std::path::Path::new(SDM_DIR).join(file);
        if !std::path::Path::new(SDM_DIR).join("schemas").is_dir() {
            panic!(
                "the Smart Data Models schemas are not at {SDM_DIR}: the repository needs shared/ beside it \
                 (as CI clones it), with shared/sdm/schemas"
            );
        }
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn schema_id(schema: &Value) -> &str {
        schema["$id"].as_str().expect("schema has an $id")
    }

    /// The shared definitions the model schemas `$ref`, registered under the URLs they are referred
    /// to by (Environment-schema.json under two), so nothing is ever downloaded.
    fn registry() -> jsonschema::Registry<'static> {
        let common = load("schemas/common-schema.json");
        let environment = load("schemas/Environment-schema.json");
        let weather = load("schemas/weather-schema.json");
        let resources = [
            (schema_id(&common).to_string(), common.clone()),
            (schema_id(&environment).to_string(), environment.clone()),
            (
                "https://raw.githubusercontent.com/smart-data-models/dataModel.Environment/master/Environment-schema.json"
                    .to_string(),
                environment.clone(),
            ),
            (schema_id(&weather).to_string(), weather.clone()),
        ];
        jsonschema::Registry::new().extend(resources).and_then(|b| b.prepare()).expect("registry of shared schemas")
    }

    /// A validator of `schema` that resolves `$ref`s only from `registry`: an unknown one fails
    /// the build (and so the test), it is never fetched or skipped.
    fn validator(registry: &jsonschema::Registry<'_>, schema: &Value) -> Result<jsonschema::Validator, String> {
        jsonschema::options()
            .offline()
            .with_registry(registry)
            .should_validate_formats(true)
            .build(schema)
            .map_err(|e| e.to_string())
    }

    fn validators() -> Vec<(SensorKind, jsonschema::Validator)> {
        let registry = registry();
        SensorKind::ALL
            .into_iter()
            .map(|kind| {
                let t = kind.smart_data_model();
                let schema = load(&format!("schemas/{t}.schema.json"));
                let v = validator(&registry, &schema).unwrap_or_else(|e| panic!("{t}.schema.json: {e}"));
                (kind, v)
            })
            .collect()
    }

    /// A normalized entity as keyValues, the way shared/sdm/README.md says: Property and
    /// GeoProperty to their `value`, Relationship to its `object`, no @context.
    fn project(entity: &Value) -> Value {
        let projected = entity
            .as_object()
            .expect("an entity is an object")
            .iter()
            .filter(|(k, _)| *k != "@context")
            .map(|(k, v)| {
                let v = match v.get("type").and_then(Value::as_str) {
                    Some("Property" | "GeoProperty") if k != "type" => v["value"].clone(),
                    Some("Relationship") => v["object"].clone(),
                    _ => v.clone(),
                };
                (k.clone(), v)
            })
            .collect();
        Value::Object(projected)
    }

    fn errors(v: &jsonschema::Validator, instance: &Value) -> Vec<String> {
        v.iter_errors(instance).map(|e| format!("{} at {}", e, e.instance_path())).collect()
    }

    #[test]
    fn entities_validate_against_the_official_schemas() {
        let validators = validators();
        let mut checked = BTreeSet::new();
        for r in all_readings() {
            let (_, v) = validators.iter().find(|(k, _)| *k == r.kind()).unwrap();
            let context = Options { context: Some(CONTEXT_URL), ..Options::default() };
            let kv = key_values(&r);
            for e in [normalized(&r), entity(&r, &context)] {
                let projected = project(&e);
                // The keyValues form is exactly the projection of the normalized one.
                assert_eq!(projected, kv, "{}", r.sensor_id);
                let errs = errors(v, &projected);
                assert!(errs.is_empty(), "{} does not validate: {errs:?}\n{projected:#}", r.sensor_id);
            }
            checked.insert(r.kind());
        }
        assert_eq!(checked.len(), 6);
    }

    #[test]
    fn the_schema_check_catches_broken_entities() {
        let validators = validators();
        let check = |kind: SensorKind, edit: &dyn Fn(&mut Map<String, Value>)| {
            let mut e = key_values(&fixed(kind));
            edit(e.as_object_mut().unwrap());
            let (_, v) = validators.iter().find(|(k, _)| *k == kind).unwrap();
            assert!(!errors(v, &e).is_empty(), "{kind}: should be refused: {e}");
        };
        check(SensorKind::AirQuality, &|e| drop(e.remove("dateObserved")));
        check(SensorKind::AirQuality, &|e| drop(e.insert("dateObserved".into(), json!("2026-11-20T11:30:00"))));
        check(SensorKind::AirQuality, &|e| {
            drop(e.insert("dateObserved".into(), json!({"@type": "DateTime", "@value": "2026-11-20T11:30:00Z"})))
        });
        check(SensorKind::AirQuality, &|e| drop(e.insert("airQualityIndex".into(), json!(71.5))));
        check(SensorKind::Noise, &|e| drop(e.remove("dateObservedFrom")));
        check(SensorKind::Weather, &|e| drop(e.remove("location")));
        check(SensorKind::Parking, &|e| drop(e.insert("totalSpotNumber".into(), json!(0))));
        check(SensorKind::Parking, &|e| drop(e.insert("status".into(), json!("open"))));
        check(SensorKind::Traffic, &|e| drop(e.insert("occupancy".into(), json!(1.5))));
        check(SensorKind::Light, &|e| drop(e.insert("status".into(), json!("broken"))));
        check(SensorKind::Light, &|e| drop(e.remove("status")));
    }

    #[test]
    fn an_unregistered_ref_fails_instead_of_being_fetched() {
        let registry = registry();
        let schema = json!({"$ref": "https://smart-data-models.github.io/data-models/not-registered.json"});
        assert!(validator(&registry, &schema).is_err());
    }

    // ---- docs/ngsi-ld.md ----

    /// Every entity the documentation may show: the fixed readings in each form and content mode.
    fn documented_candidates() -> Vec<(String, Value)> {
        let mut out = Vec::new();
        for r in fixed_readings() {
            for (label, options) in [
                ("normalized", Options::default()),
                ("keyValues", Options { form: Form::KeyValues, ..Options::default() }),
                ("ld+json", Options { context: Some(CONTEXT_URL), ..Options::default() }),
            ] {
                out.push((format!("{} {label}", r.kind()), entity(&r, &options)));
            }
        }
        out
    }

    /// Every ```json block of docs/ngsi-ld.md is exactly an entity the codec produces, and each
    /// kind's normalized entity is shown.
    #[test]
    fn documented_examples_are_what_the_codec_produces() {
        let doc = include_str!("../../../docs/ngsi-ld.md");
        let candidates = documented_candidates();
        let mut shown = BTreeSet::new();
        let blocks: Vec<&str> =
            doc.split("```json\n").skip(1).map(|b| b.split("```").next().expect("closed block")).collect();
        assert!(!blocks.is_empty());
        for block in blocks {
            let v: Value = serde_json::from_str(block).unwrap_or_else(|e| panic!("{e}:\n{block}"));
            let (label, _) = candidates
                .iter()
                .find(|(_, e)| *e == v)
                .unwrap_or_else(|| panic!("docs/ngsi-ld.md shows an entity the codec does not produce:\n{block}"));
            shown.insert(label.clone());
        }
        for kind in SensorKind::ALL {
            assert!(
                shown.contains(&format!("{kind} normalized")),
                "docs/ngsi-ld.md lacks the normalized {kind} entity"
            );
        }
    }

    /// Prints the documented entities, one per line, for docs/ngsi-ld.md:
    /// `cargo test -p smartcity-model --lib print_doc_examples -- --ignored --nocapture`.
    #[test]
    #[ignore = "prints the examples of docs/ngsi-ld.md"]
    fn print_doc_examples() {
        for (label, e) in documented_candidates() {
            println!("{label}\t{e}");
        }
    }
}
