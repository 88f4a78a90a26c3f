//! OGC SensorThings API 1.1 bodies (FROST-Server): the one mapping of sensors and readings onto
//! STA entities for the whole project, described in docs/sensorthings.md.
//!
//! - a **Thing** per sensor (`<prefix><sensor id>`), with one **Location** (a GeoJSON Point,
//!   `[lon, lat]`);
//! - a **Datastream** per measured quantity of that sensor (`<thing name>/<attribute>`), with its UCUM
//!   unit and observation type ([`quantities`]);
//! - a **Sensor** per kind (`<prefix><kind>-sensor`) and an **ObservedProperty** per quantity
//!   (`<prefix><domain>/<attribute>`, defined by the Smart Data Models attribute IRI), both shared by
//!   every Datastream and created once, so a Thing's Datastreams refer to them by `@iot.id`;
//! - an **Observation** per quantity of a reading: `phenomenonTime` = `observedAt`, `result` = the value,
//!   written in bulk through `CreateObservations` ([`create_observations`]).
//!
//! Pure: the caller (connectors/src/sensorthings) looks entities up, creates what is missing and
//! passes the server's ids in; ids are kept as JSON values since a server may use numbers or strings.

use crate::kind::SensorKind;
use crate::reading::{Reading, Values};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// A numeric measurement with a unit (`result` is a number).
pub const OM_MEASUREMENT: &str = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement";
/// A count of things (`result` is an integer).
pub const OM_COUNT_OBSERVATION: &str = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_CountObservation";
/// A yes/no observation (`result` is a boolean).
pub const OM_TRUTH_OBSERVATION: &str = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_TruthObservation";
/// One value of a fixed list (`result` is a string).
pub const OM_CATEGORY_OBSERVATION: &str =
    "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_CategoryObservation";

/// The kind of `result` a Datastream holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObservationType {
    Measurement,
    Count,
    Truth,
    Category,
}

impl ObservationType {
    /// The OGC O&M IRI of the type (the Datastream's `observationType`).
    pub fn iri(self) -> &'static str {
        match self {
            ObservationType::Measurement => OM_MEASUREMENT,
            ObservationType::Count => OM_COUNT_OBSERVATION,
            ObservationType::Truth => OM_TRUTH_OBSERVATION,
            ObservationType::Category => OM_CATEGORY_OBSERVATION,
        }
    }
}

/// A Datastream's `unitOfMeasurement`: `definition` is the UCUM code as `ucum:<code>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unit {
    pub name: &'static str,
    pub symbol: &'static str,
    pub definition: &'static str,
}

/// One measured quantity of a kind: one Datastream per sensor, one ObservedProperty in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity {
    /// The Smart Data Models attribute (and JSON wire) name: `averageVehicleSpeed`, `pm25`, `LAeq`.
    pub attribute: &'static str,
    /// One line for the ObservedProperty and Datastream descriptions.
    pub description: &'static str,
    pub observation_type: ObservationType,
    /// `None` for booleans and categories: STA 1.1 then wants every member of `unitOfMeasurement` null.
    pub unit: Option<Unit>,
}

const fn unit(name: &'static str, symbol: &'static str, definition: &'static str) -> Option<Unit> {
    Some(Unit { name, symbol, definition })
}
const PER_HOUR: Option<Unit> = unit("vehicles per hour", "veh/h", "ucum:/h");
const RATIO: Option<Unit> = unit("ratio", "1", "ucum:1");
const KM_H: Option<Unit> = unit("kilometre per hour", "km/h", "ucum:km/h");
const UG_M3: Option<Unit> = unit("microgram per cubic metre", "µg/m³", "ucum:ug/m3");
const MG_M3: Option<Unit> = unit("milligram per cubic metre", "mg/m³", "ucum:mg/m3");
const AQI: Option<Unit> = unit("air quality index", "AQI", "ucum:{AQI}");
const SPOTS: Option<Unit> = unit("parking spots", "spots", "ucum:{spots}");
const DBA: Option<Unit> = unit("decibel, A-weighted", "dB(A)", "ucum:dB");
const CEL: Option<Unit> = unit("degree Celsius", "°C", "ucum:Cel");
const HPA: Option<Unit> = unit("hectopascal", "hPa", "ucum:hPa");
const M_S: Option<Unit> = unit("metre per second", "m/s", "ucum:m/s");
const DEG: Option<Unit> = unit("degree", "°", "ucum:deg");
const MM: Option<Unit> = unit("millimetre", "mm", "ucum:mm");
const WATT: Option<Unit> = unit("watt", "W", "ucum:W");

const fn q(attribute: &'static str, description: &'static str, t: ObservationType, unit: Option<Unit>) -> Quantity {
    Quantity { attribute, description, observation_type: t, unit }
}
use ObservationType::{Category, Count, Measurement, Truth};

const TRAFFIC: [Quantity; 4] = [
    q("intensity", "vehicle flow", Measurement, PER_HOUR),
    q("occupancy", "fraction of time the detector is occupied", Measurement, RATIO),
    q("averageVehicleSpeed", "average speed of the vehicles", Measurement, KM_H),
    q("congested", "whether the road is congested", Truth, None),
];
const AIR_QUALITY: [Quantity; 8] = [
    q("pm10", "PM10 concentration", Measurement, UG_M3),
    q("pm25", "PM2.5 concentration", Measurement, UG_M3),
    q("no2", "NO2 concentration", Measurement, UG_M3),
    q("o3", "O3 concentration", Measurement, UG_M3),
    q("co", "CO concentration", Measurement, MG_M3),
    q("so2", "SO2 concentration", Measurement, UG_M3),
    q("airQualityIndex", "air quality index, 0-500", Measurement, AQI),
    q("airQualityLevel", "air quality level", Category, None),
];
const PARKING: [Quantity; 3] = [
    q("availableSpotNumber", "free parking spots", Count, SPOTS),
    q("totalSpotNumber", "parking spots in all", Count, SPOTS),
    q("occupancy", "occupied fraction of the spots", Measurement, RATIO),
];
const NOISE: [Quantity; 3] = [
    q("LAeq", "equivalent continuous sound level", Measurement, DBA),
    q("LAmax", "maximum sound level", Measurement, DBA),
    q("LAS", "instantaneous slow-weighted sound level", Measurement, DBA),
];
const WEATHER: [Quantity; 6] = [
    q("temperature", "air temperature", Measurement, CEL),
    q("relativeHumidity", "relative humidity", Measurement, RATIO),
    q("atmosphericPressure", "atmospheric pressure", Measurement, HPA),
    q("windSpeed", "wind speed", Measurement, M_S),
    q("windDirection", "wind direction (where it blows from, clockwise from north)", Measurement, DEG),
    q("precipitation", "precipitation over the period", Measurement, MM),
];
const LIGHT: [Quantity; 4] = [
    q("status", "state of the streetlight", Category, None),
    q("powerState", "power state of the lamp", Category, None),
    q("illuminanceLevel", "commanded light output", Measurement, RATIO),
    q("powerConsumption", "power drawn", Measurement, WATT),
];

/// The measured quantities of `kind`, in the order of [`results`].
pub fn quantities(kind: SensorKind) -> &'static [Quantity] {
    match kind {
        SensorKind::Traffic => &TRAFFIC,
        SensorKind::AirQuality => &AIR_QUALITY,
        SensorKind::Parking => &PARKING,
        SensorKind::Noise => &NOISE,
        SensorKind::Weather => &WEATHER,
        SensorKind::Light => &LIGHT,
    }
}

/// The `result` of each quantity of `values`, in the order of [`quantities`], `None` for an
/// attribute the sensor did not measure (no Observation is made of it); categories are the JSON
/// wire names (`unhealthyForSensitiveGroups`, `bootingUp`). A non-finite number (never made by
/// the simulator) becomes `null`, which STA cannot store as a measurement: callers refuse such a
/// reading.
pub fn results(values: &Values) -> Vec<Option<Value>> {
    match values {
        Values::Traffic(v) => {
            vec![result(v.intensity), result(v.occupancy), result(v.average_vehicle_speed), result(v.congested)]
        }
        Values::AirQuality(v) => vec![
            result(v.pm10),
            result(v.pm25),
            result(v.no2),
            result(v.o3),
            result(v.co),
            result(v.so2),
            result(v.air_quality_index),
            result(v.air_quality_level),
        ],
        Values::Parking(v) => vec![result(v.available_spot_number), result(v.total_spot_number), result(v.occupancy)],
        Values::Noise(v) => vec![result(v.laeq), result(v.lamax), result(v.las)],
        Values::Weather(v) => vec![
            result(v.temperature),
            result(v.relative_humidity),
            result(v.atmospheric_pressure),
            result(v.wind_speed),
            result(v.wind_direction),
            result(v.precipitation),
        ],
        Values::Light(v) => {
            vec![result(v.status), result(v.power_state), result(v.illuminance_level), result(v.power_consumption)]
        }
    }
}

/// The `result` of one attribute, if the sensor measured it.
fn result<T: serde::Serialize>(v: Option<T>) -> Option<Value> {
    v.map(|x| json!(x))
}

/// The Smart Data Models domain of `kind` (`dataModel.<domain>` on GitHub and in attribute IRIs).
pub fn domain(kind: SensorKind) -> &'static str {
    match kind {
        SensorKind::Traffic => "Transportation",
        SensorKind::AirQuality | SensorKind::Noise => "Environment",
        SensorKind::Parking => "Parking",
        SensorKind::Weather => "Weather",
        SensorKind::Light => "Streetlighting",
    }
}

/// The ObservedProperty's `definition`: the attribute's IRI in the Smart Data Models JSON-LD context,
/// `https://smartdatamodels.org/dataModel.Weather/temperature`.
pub fn definition(kind: SensorKind, quantity: &Quantity) -> String {
    format!("https://smartdatamodels.org/dataModel.{}/{}", domain(kind), quantity.attribute)
}

/// Name of the Thing of sensor `sensor_id`.
pub fn thing_name(prefix: &str, sensor_id: &str) -> String {
    format!("{prefix}{sensor_id}")
}

/// Name of the Sensor shared by every sensor of `kind`: `<prefix>traffic-sensor`.
pub fn sensor_name(prefix: &str, kind: SensorKind) -> String {
    format!("{prefix}{}-sensor", kind.as_str())
}

/// Name of the ObservedProperty of `quantity`: `<prefix>Transportation/occupancy`. The domain keeps
/// apart what two models both call `occupancy`, as their IRIs do.
pub fn observed_property_name(prefix: &str, kind: SensorKind, quantity: &Quantity) -> String {
    format!("{prefix}{}/{}", domain(kind), quantity.attribute)
}

/// Name of the Datastream of `quantity` on the Thing `thing_name`: `<thing name>/<attribute>`.
pub fn datastream_name(thing_name: &str, quantity: &Quantity) -> String {
    format!("{thing_name}/{}", quantity.attribute)
}

/// `POST /Sensors` body of the Sensor shared by the sensors of `kind`; its metadata is the Smart
/// Data Model's specification.
pub fn sensor(prefix: &str, kind: SensorKind) -> Value {
    let model = kind.smart_data_model();
    json!({
        "name": sensor_name(prefix, kind),
        "description": format!("simulated {} sensor of the Martinique smart-city twin, Smart Data Model {model}", kind.as_str()),
        "encodingType": "text/html",
        "metadata": format!("https://github.com/smart-data-models/dataModel.{}/blob/master/{model}/doc/spec.md", domain(kind)),
    })
}

/// `POST /ObservedProperties` body of `quantity`.
pub fn observed_property(prefix: &str, kind: SensorKind, quantity: &Quantity) -> Value {
    json!({
        "name": observed_property_name(prefix, kind, quantity),
        "description": format!("{} ({} of {})", quantity.description, quantity.attribute, kind.smart_data_model()),
        "definition": definition(kind, quantity),
    })
}

/// A Datastream body of `quantity` on the Thing `thing_name`, linked to an existing Sensor and
/// ObservedProperty by id; with `thing`, also to an existing Thing (`POST /Datastreams`), without it
/// for a deep insert inside the Thing.
pub fn datastream(
    thing_name: &str,
    quantity: &Quantity,
    sensor: &Value,
    property: &Value,
    thing: Option<&Value>,
) -> Value {
    let unit = match quantity.unit {
        Some(u) => json!({"name": u.name, "symbol": u.symbol, "definition": u.definition}),
        None => json!({"name": null, "symbol": null, "definition": null}),
    };
    let mut body = json!({
        "name": datastream_name(thing_name, quantity),
        "description": format!("{} at {thing_name}", quantity.description),
        "observationType": quantity.observation_type.iri(),
        "unitOfMeasurement": unit,
        "Sensor": {"@iot.id": sensor},
        "ObservedProperty": {"@iot.id": property},
    });
    if let (Some(thing), Some(map)) = (thing, body.as_object_mut()) {
        map.insert("Thing".into(), json!({"@iot.id": thing}));
    }
    body
}

/// `POST /Things` deep-insert body for the sensor of `reading`: the Thing, its Location, and one
/// Datastream per quantity linked to the kind's Sensor `sensor` and to `properties` (the
/// ObservedProperty id of each quantity, in the order of [`quantities`]).
pub fn thing(prefix: &str, reading: &Reading, sensor: &Value, properties: &[Value]) -> Value {
    let kind = reading.kind();
    let name = thing_name(prefix, &reading.sensor_id);
    let commune = reading.commune.name();
    let datastreams: Vec<Value> = quantities(kind)
        .iter()
        .zip(properties)
        .map(|(quantity, property)| datastream(&name, quantity, sensor, property, None))
        .collect();
    json!({
        "name": name,
        "description": format!("{} sensor {} in {commune}, Martinique", kind.as_str(), reading.sensor_id),
        "properties": {
            "sensorId": reading.sensor_id,
            "kind": kind.as_str(),
            "commune": commune,
            "smartDataModel": kind.smart_data_model(),
        },
        "Locations": [{
            "name": name,
            "description": format!("{commune}, Martinique"),
            "encodingType": "application/geo+json",
            "location": {"type": "Point", "coordinates": [reading.lon, reading.lat]},
        }],
        "Datastreams": datastreams,
    })
}

/// An Observation's `phenomenonTime`: UTC with `Z`, milliseconds as in the JSON wire format.
pub fn phenomenon_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// One Observation to create.
#[derive(Debug, Clone, PartialEq)]
pub struct Row<'a> {
    pub datastream: &'a Value,
    pub phenomenon_time: DateTime<Utc>,
    pub result: Value,
}

/// The `POST /CreateObservations` body of `rows`, one DataArray per Datastream (in the order the
/// Datastreams first appear), and the index in `rows` of each row of the server's answer, which lists
/// one self-link or error per Observation in body order.
pub fn create_observations(rows: &[Row]) -> (Value, Vec<usize>) {
    let mut groups: Vec<(&Value, Vec<usize>)> = Vec::new();
    // Ids are JSON numbers or strings: their text tells them apart (1 vs "1").
    let mut group_of: HashMap<String, usize> = HashMap::new();
    for (i, row) in rows.iter().enumerate() {
        let g = *group_of.entry(row.datastream.to_string()).or_insert_with(|| {
            groups.push((row.datastream, Vec::new()));
            groups.len() - 1
        });
        if let Some((_, members)) = groups.get_mut(g) {
            members.push(i);
        }
    }
    let mut order = Vec::with_capacity(rows.len());
    let body = groups
        .into_iter()
        .map(|(datastream, members)| {
            let data: Vec<Value> = members
                .iter()
                .filter_map(|&i| rows.get(i))
                .map(|r| json!([phenomenon_time(r.phenomenon_time), r.result]))
                .collect();
            order.extend(&members);
            let mut array = Map::new();
            array.insert("Datastream".into(), json!({"@iot.id": datastream}));
            array.insert("components".into(), json!(["phenomenonTime", "result"]));
            array.insert("dataArray@iot.count".into(), json!(data.len()));
            array.insert("dataArray".into(), Value::Array(data));
            Value::Object(array)
        })
        .collect();
    (Value::Array(body), order)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::place::Commune;
    use crate::reading::Traffic;
    use crate::{Catalogue, ReadingStream};
    use chrono::TimeZone;

    fn traffic() -> Reading {
        Reading {
            sensor_id: "traffic-le-lamentin-01".into(),
            commune: Commune::LeLamentin,
            lat: 14.611,
            lon: -61.012,
            observed_at: Utc.with_ymd_and_hms(2026, 11, 20, 11, 30, 0).unwrap(),
            seq: 42,
            values: Values::Traffic(Traffic {
                intensity: Some(1520),
                occupancy: Some(0.41),
                average_vehicle_speed: Some(38.2),
                congested: Some(false),
            }),
        }
    }

    #[test]
    fn a_thing_deep_insert_body() {
        let properties = [json!(11), json!(12), json!(13), json!(14)];
        let body = thing("mq-", &traffic(), &json!(3), &properties);
        let expected: Value = serde_json::from_str(
            r#"{
              "name": "mq-traffic-le-lamentin-01",
              "description": "traffic sensor traffic-le-lamentin-01 in Le Lamentin, Martinique",
              "properties": {"sensorId": "traffic-le-lamentin-01", "kind": "traffic", "commune": "Le Lamentin",
                             "smartDataModel": "TrafficFlowObserved"},
              "Locations": [{"name": "mq-traffic-le-lamentin-01", "description": "Le Lamentin, Martinique",
                             "encodingType": "application/geo+json",
                             "location": {"type": "Point", "coordinates": [-61.012, 14.611]}}],
              "Datastreams": [
                {"name": "mq-traffic-le-lamentin-01/intensity", "description": "vehicle flow at mq-traffic-le-lamentin-01",
                 "observationType": "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement",
                 "unitOfMeasurement": {"name": "vehicles per hour", "symbol": "veh/h", "definition": "ucum:/h"},
                 "Sensor": {"@iot.id": 3}, "ObservedProperty": {"@iot.id": 11}},
                {"name": "mq-traffic-le-lamentin-01/occupancy",
                 "description": "fraction of time the detector is occupied at mq-traffic-le-lamentin-01",
                 "observationType": "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement",
                 "unitOfMeasurement": {"name": "ratio", "symbol": "1", "definition": "ucum:1"},
                 "Sensor": {"@iot.id": 3}, "ObservedProperty": {"@iot.id": 12}},
                {"name": "mq-traffic-le-lamentin-01/averageVehicleSpeed",
                 "description": "average speed of the vehicles at mq-traffic-le-lamentin-01",
                 "observationType": "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement",
                 "unitOfMeasurement": {"name": "kilometre per hour", "symbol": "km/h", "definition": "ucum:km/h"},
                 "Sensor": {"@iot.id": 3}, "ObservedProperty": {"@iot.id": 13}},
                {"name": "mq-traffic-le-lamentin-01/congested",
                 "description": "whether the road is congested at mq-traffic-le-lamentin-01",
                 "observationType": "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_TruthObservation",
                 "unitOfMeasurement": {"name": null, "symbol": null, "definition": null},
                 "Sensor": {"@iot.id": 3}, "ObservedProperty": {"@iot.id": 14}}
              ]
            }"#,
        )
        .unwrap();
        assert_eq!(body, expected, "{body:#}");
    }

    #[test]
    fn a_create_observations_body_groups_rows_by_datastream() {
        let r = traffic();
        let later = Reading { observed_at: r.observed_at + chrono::Duration::milliseconds(5250), seq: 43, ..r.clone() };
        let (ds1, ds2) = (json!(7), json!("ds-8"));
        let rows = [
            Row { datastream: &ds1, phenomenon_time: r.observed_at, result: json!(1520) },
            Row { datastream: &ds2, phenomenon_time: r.observed_at, result: json!(false) },
            Row { datastream: &ds1, phenomenon_time: later.observed_at, result: json!(1490) },
        ];
        let (body, order) = create_observations(&rows);
        let expected: Value = serde_json::from_str(
            r#"[
              {"Datastream": {"@iot.id": 7}, "components": ["phenomenonTime", "result"], "dataArray@iot.count": 2,
               "dataArray": [["2026-11-20T11:30:00.000Z", 1520], ["2026-11-20T11:30:05.250Z", 1490]]},
              {"Datastream": {"@iot.id": "ds-8"}, "components": ["phenomenonTime", "result"], "dataArray@iot.count": 1,
               "dataArray": [["2026-11-20T11:30:00.000Z", false]]}
            ]"#,
        )
        .unwrap();
        assert_eq!(body, expected, "{body:#}");
        assert_eq!(order, [0, 2, 1], "answer rows follow the body, not the input");
        assert_eq!(create_observations(&[]).0, json!([]));
    }

    #[test]
    fn every_result_fits_its_observation_type() {
        let mut stream = ReadingStream::new(Catalogue::default_ten(), 1);
        let t = Utc.with_ymd_and_hms(2026, 3, 1, 18, 0, 0).unwrap();
        for reading in stream.tick(t) {
            let qs = quantities(reading.kind());
            let values = results(&reading.values);
            assert_eq!(qs.len(), values.len(), "{}", reading.sensor_id);
            for (q, v) in qs.iter().zip(&values) {
                let v = v.as_ref().expect("the simulator measures every attribute");
                let fits = match q.observation_type {
                    ObservationType::Measurement => v.is_f64() || v.is_u64(),
                    ObservationType::Count => v.is_u64(),
                    ObservationType::Truth => v.is_boolean(),
                    ObservationType::Category => v.is_string(),
                };
                assert!(fits, "{}.{} = {v}", reading.sensor_id, q.attribute);
                assert_eq!(q.unit.is_some(), matches!(q.observation_type, Measurement | Count), "{}", q.attribute);
            }
        }
    }

    #[test]
    fn one_observed_property_per_quantity() {
        let mut names = std::collections::HashSet::new();
        let mut definitions = std::collections::HashSet::new();
        for kind in SensorKind::ALL {
            for q in quantities(kind) {
                assert!(names.insert(observed_property_name("", kind, q)));
                assert!(definitions.insert(definition(kind, q)));
            }
        }
        assert_eq!(names.len(), 28);
        assert!(definitions.contains("https://smartdatamodels.org/dataModel.Weather/temperature"));
        assert!(names.contains("Parking/occupancy") && names.contains("Transportation/occupancy"));
        let op = observed_property("x-", SensorKind::Noise, &NOISE[0]);
        assert_eq!(op["name"], "x-Environment/LAeq");
        assert_eq!(op["definition"], "https://smartdatamodels.org/dataModel.Environment/LAeq");
        let s = sensor("x-", SensorKind::AirQuality);
        assert_eq!(s["name"], "x-air-quality-sensor");
        assert_eq!(s["encodingType"], "text/html");
        let ds = datastream("x-t", &LIGHT[0], &json!(1), &json!(2), Some(&json!(9)));
        assert_eq!(ds["Thing"], json!({"@iot.id": 9}));
        assert_eq!(ds["observationType"], OM_CATEGORY_OBSERVATION);
    }
}

#[cfg(test)]
mod doc_tests {
    use super::*;

    /// In docs/sensorthings.md every ```json block (a wire-format reading) is followed by a ```http
    /// request whose JSON body is exactly what this module makes of it: the Thing with
    /// `name_prefix = "mq-"`, Sensor 5 and ObservedProperties 21, 22, ...; the Observations with
    /// Datastreams 101, 102, ... Every kind is shown.
    #[test]
    fn documented_bodies_are_what_the_codec_makes() {
        let doc = include_str!("../../../docs/sensorthings.md");
        let mut kinds = std::collections::BTreeSet::new();
        for part in doc.split("```json\n").skip(1) {
            let (json, rest) = part.split_once("```").expect("closed json block");
            let request = rest
                .split_once("```http\n")
                .and_then(|(_, t)| t.split_once("```"))
                .map(|(t, _)| t)
                .unwrap_or_else(|| panic!("a ```http block follows {json}"));
            let (head, body) = request.split_once("\n\n").expect("a blank line before the body");
            let shown: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
            let reading = crate::codec::json::decode(json.trim().as_bytes()).unwrap_or_else(|e| panic!("{e}: {json}"));
            let n = quantities(reading.kind()).len();
            let made = if head.starts_with("POST /FROST-Server/v1.1/Things") {
                let properties: Vec<Value> = (0..n).map(|i| json!(21 + i)).collect();
                thing("mq-", &reading, &json!(5), &properties)
            } else {
                assert!(head.starts_with("POST /FROST-Server/v1.1/CreateObservations"), "{head}");
                kinds.insert(reading.kind());
                let ids: Vec<Value> = (0..n).map(|i| json!(101 + i)).collect();
                let rows: Vec<Row> = ids
                    .iter()
                    .zip(results(&reading.values))
                    .filter_map(|(datastream, result)| {
                        Some(Row { datastream, phenomenon_time: reading.observed_at, result: result? })
                    })
                    .collect();
                create_observations(&rows).0
            };
            assert_eq!(shown, made, "docs/sensorthings.md shows another body for {json}");
        }
        assert_eq!(kinds.len(), 6, "Observations of every kind");
    }
}
