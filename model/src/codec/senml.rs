//! SenML JSON packs (RFC 8428, `application/senml+json`), e.g. from a CoAP or MQTT device.
//!
//! ```json
//! [{"bn":"urn:dev:mac:0024befffe804ff1:","bt":1795253400,"n":"temperature","u":"Cel","v":27.5},
//!  {"n":"humidity","u":"%RH","v":78},{"n":"pressure","u":"hPa","v":1013.2},
//!  {"n":"windSpeed","u":"km/h","v":22},{"n":"windDirection","u":"deg","v":90},
//!  {"n":"precipitation","u":"mm","v":0},{"n":"lat","u":"lat","v":14.616},{"n":"lon","u":"lon","v":-61.059}]
//! ```
//! - Base fields are resolved as §4.5 says: name = `bn` + `n`, time = `bt` + `t` (below 2^28
//!   relative to now, from 2^28 absolute Unix seconds), value = `bv` + `v`, unit `u` else `bu`.
//!   A field ending in `_` refuses the pack (§4.4); other unknown fields are ignored.
//! - sensor id: the base name in effect (`urn:dev:mac:0024befffe804ff1:` →
//!   `urn-dev-mac-0024befffe804ff1`); without one, the name up to its last `:` or `/` when what
//!   follows is a measurement name, else the whole name. The record name after that (`n`) is the
//!   measurement, looked up like TTN's keys; a record without one is named by its unit when the
//!   unit fits one attribute only (`Cel`, `K`, `%RH`, `Pa`, `hPa`).
//! - One reading per sensor and instant: the records of a pack are grouped by (sensor, time).
//! - seq: the observation time in whole seconds. SenML has no frame counter, so the gateway does
//!   no loss accounting for these sources (a gap in seconds says nothing); two readings of one
//!   sensor in the same second share a seq (both are written: InfluxDB keys points by time).
//! - position: records with unit (or name) `lat` and `lon` give the sensor's position for the
//!   whole pack; else the configured `lat`/`lon`.
//! - `%` is the deprecated alias of `/` (a ratio, RFC 8428 §12.1), not a percentage; `%RH` and
//!   `/100` are. Secondary units (`hPa`, `km/h`, `ppm`, `ug/m3`) are read whatever `bver` says.

use super::device::{self, DeviceError, Observation, Options, Origin};
use crate::reading::Reading;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Times from 2^28 on are absolute (RFC 8428 §4.5.3).
const ABSOLUTE: f64 = 268_435_456.0;

/// Decodes a pack into its readings, in (sensor, time) order. `now` resolves relative times.
pub fn decode(bytes: &[u8], options: &Options, now: DateTime<Utc>) -> Result<Vec<Reading>, DeviceError> {
    let syntax = |message: String| DeviceError::Syntax { format: "SenML pack", message };
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| syntax(e.to_string()))?;
    let records = doc.as_array().ok_or_else(|| syntax("a pack is a JSON array of records".into()))?;
    let mut base = Base::default();
    let mut groups: BTreeMap<(String, i64), Observation> = BTreeMap::new();
    let mut positions: BTreeMap<String, (Option<f64>, Option<f64>)> = BTreeMap::new();
    for (i, record) in records.iter().enumerate() {
        let rec = record.as_object().ok_or_else(|| syntax(format!("record {i} is not an object")))?;
        if let Some(k) = rec.keys().find(|k| k.ends_with('_')) {
            return Err(syntax(format!("record {i} has `{k}`, a field this reader must understand")));
        }
        base.update(i, rec)?;
        let field = |f: &str| DeviceError::Field(format!("[{i}].{f}"));
        let n = opt_str(rec, "n").map_err(|_| field("n"))?.unwrap_or("");
        let unit_text = match rec.get("u") {
            Some(u) => Some(u.as_str().ok_or_else(|| field("u"))?.to_string()),
            None => base.unit.clone(),
        };
        let t = base.time + opt_num(rec, "t").map_err(|_| field("t"))?.unwrap_or(0.0);
        let observed_at = resolve_time(t, now).ok_or_else(|| DeviceError::Time(format!("record {i}: time {t}")))?;
        if observed_at.timestamp() < 946_684_800 {
            return Err(DeviceError::Time(format!("record {i}: {observed_at} is before 2000")));
        }
        let value = if let Some(v) = rec.get("v") {
            let v = v.as_f64().ok_or_else(|| field("v"))?;
            serde_json::Number::from_f64(base.value + v).map(Value::Number).ok_or_else(|| field("v"))?
        } else if let Some(vs) = rec.get("vs") {
            Value::String(vs.as_str().ok_or_else(|| field("vs"))?.to_string())
        } else if let Some(vb) = rec.get("vb") {
            Value::Bool(vb.as_bool().ok_or_else(|| field("vb"))?)
        } else if rec.contains_key("vd") || rec.contains_key("s") {
            Value::Null // data and sums: no attribute takes them
        } else if !rec.contains_key("n") && ["bn", "bt", "bu", "bv"].iter().any(|b| rec.contains_key(*b)) {
            continue; // a record of base fields only (seen in the wild, though §4 asks for a value)
        } else {
            return Err(field("v"));
        };
        let (sensor, key) = split_name(&base.name, n);
        if sensor.is_empty() {
            return Err(field("n"));
        }
        let unit_text = unit_text.as_deref();
        let position = positions.entry(sensor.clone()).or_default();
        match (unit_text, key.as_str()) {
            (Some("lat"), _) | (_, "lat" | "latitude") => position.0 = value.as_f64(),
            (Some("lon"), _) | (_, "lon" | "longitude") => position.1 = value.as_f64(),
            _ => {
                let obs = groups.entry((sensor, observed_at.timestamp_millis())).or_default();
                add(obs, &key, &value, unit_text)?;
            }
        }
    }
    let mut readings = Vec::new();
    for ((sensor, ms), obs) in groups {
        if obs.attributes.is_empty() {
            // Only measurements the model has no attribute for (a battery level at its own time).
            match obs.unknown.first() {
                Some(u) if options.unknown == device::Unknown::Refuse => return Err(DeviceError::Unknown(u.clone())),
                _ => continue,
            }
        }
        let observed_at = DateTime::from_timestamp_millis(ms).unwrap_or(now);
        let position = match positions.get(&sensor) {
            Some((Some(lat), Some(lon))) => Some((*lat, *lon)),
            _ => None,
        };
        let seq = u64::try_from(observed_at.timestamp()).unwrap_or(0);
        let origin = Origin { sensor_id: device::sensor_id(&sensor), observed_at, seq, position };
        readings.push(device::build(origin, obs, options)?);
    }
    if readings.is_empty() {
        let message = "no record is a measurement of the model".into();
        return Err(DeviceError::Kind { sensor: "(pack)".into(), message });
    }
    Ok(readings)
}

/// The base fields in effect.
#[derive(Default)]
struct Base {
    name: String,
    time: f64,
    unit: Option<String>,
    value: f64,
}

impl Base {
    fn update(&mut self, i: usize, rec: &Map<String, Value>) -> Result<(), DeviceError> {
        let field = |f: &str| DeviceError::Field(format!("[{i}].{f}"));
        if let Some(bn) = opt_str(rec, "bn").map_err(|_| field("bn"))? {
            self.name = bn.to_string();
        }
        if let Some(bt) = opt_num(rec, "bt").map_err(|_| field("bt"))? {
            self.time = bt;
        }
        if let Some(bu) = opt_str(rec, "bu").map_err(|_| field("bu"))? {
            self.unit = Some(bu.to_string());
        }
        if let Some(bv) = opt_num(rec, "bv").map_err(|_| field("bv"))? {
            self.value = bv;
        }
        Ok(())
    }
}

fn opt_str<'a>(rec: &'a Map<String, Value>, k: &str) -> Result<Option<&'a str>, ()> {
    rec.get(k).map(|v| v.as_str().ok_or(())).transpose()
}

fn opt_num(rec: &Map<String, Value>, k: &str) -> Result<Option<f64>, ()> {
    rec.get(k).map(|v| v.as_f64().ok_or(())).transpose()
}

/// (sensor, measurement) of a record: see the module documentation.
fn split_name(bn: &str, n: &str) -> (String, String) {
    if !bn.is_empty() {
        return (bn.to_string(), n.to_string());
    }
    match n.rfind([':', '/']) {
        Some(at) if device::attribute(&n[at + 1..]).is_some() || matches!(&n[at + 1..], "lat" | "lon") => {
            (n[..at].to_string(), n[at + 1..].to_string())
        }
        _ => (n.to_string(), String::new()),
    }
}

/// One record's measurement into `obs`, named by `key` or else by its unit.
fn add(obs: &mut Observation, key: &str, value: &Value, unit_text: Option<&str>) -> Result<(), DeviceError> {
    let key = match (key, unit_text.and_then(device::attribute_of_unit)) {
        ("", Some(a)) => a.name,
        ("", None) => {
            obs.unknown.push(format!("(a record in `{}`)", unit_text.unwrap_or("no unit")));
            return Ok(());
        }
        (k, _) => k,
    };
    if value.is_null() || device::attribute(key).is_none() {
        obs.unknown.push(key.to_string());
        return Ok(());
    }
    let unit = match unit_text {
        Some(u) => Some(device::senml_unit(u).ok_or_else(|| DeviceError::Unit {
            name: key.to_string(),
            unit: u.to_string(),
            problem: "is not a SenML unit this reader knows",
        })?),
        None => None,
    };
    obs.add(key, value, unit_text, unit)
}

fn resolve_time(t: f64, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if !t.is_finite() {
        return None;
    }
    let ms = (t * 1000.0).round() as i64; // saturates, never panics
    if t >= ABSOLUTE {
        DateTime::from_timestamp_millis(ms)
    } else {
        DateTime::from_timestamp_millis(now.timestamp_millis().checked_add(ms)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reading::Values;
    use crate::SensorKind;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).unwrap()
    }

    fn doc_example() -> String {
        let block = include_str!("senml.rs").split("```json\n").nth(1).unwrap().split("```").next().unwrap();
        block.lines().map(|l| l.trim_start_matches("//!").trim_start()).collect::<Vec<_>>().join("\n")
    }

    fn weather(pack: &str) -> crate::reading::Weather {
        let r = decode(pack.as_bytes(), &Options::default(), now()).unwrap_or_else(|e| panic!("{e}: {pack}"));
        match &r[0].values {
            Values::Weather(w) => w.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_documented_pack_is_a_weather_reading() {
        let r = decode(doc_example().as_bytes(), &Options::default(), now()).unwrap();
        assert_eq!(r.len(), 1);
        let r = &r[0];
        assert_eq!((r.sensor_id.as_str(), r.kind()), ("urn-dev-mac-0024befffe804ff1", SensorKind::Weather));
        assert_eq!((r.seq, r.observed_at.timestamp()), (1_795_253_400, 1_795_253_400));
        assert_eq!(r.commune, crate::Commune::FortDeFrance);
        let Values::Weather(w) = &r.values else { panic!() };
        assert_eq!((w.relative_humidity, w.atmospheric_pressure), (Some(0.78), Some(1013.2)));
        assert!((w.wind_speed.unwrap() - 22.0 / 3.6).abs() < 1e-9);
    }

    /// The documented pack with record `n` given the value `v` in unit `u`.
    fn with(n: &str, u: &str, v: f64) -> String {
        let mut pack: Vec<Value> = serde_json::from_str(&doc_example()).unwrap();
        match pack.iter_mut().find(|r| r.get("n").and_then(Value::as_str) == Some(n)) {
            Some(r) => (r["u"], r["v"]) = (serde_json::json!(u), serde_json::json!(v)),
            None => pack.push(serde_json::json!({"n": n, "u": u, "v": v})),
        }
        serde_json::to_string(&pack).unwrap()
    }

    #[test]
    fn unit_cel() {
        assert_eq!(weather(&with("temperature", "Cel", 25.0)).temperature, Some(25.0));
    }
    #[test]
    fn unit_k() {
        assert!((weather(&with("temperature", "K", 300.15)).temperature.unwrap() - 27.0).abs() < 1e-9);
    }
    #[test]
    fn unit_percent_rh() {
        assert_eq!(weather(&with("humidity", "%RH", 65.0)).relative_humidity, Some(0.65));
    }
    #[test]
    fn unit_ratio_and_its_percent_alias() {
        assert_eq!(weather(&with("humidity", "/", 0.65)).relative_humidity, Some(0.65));
        assert_eq!(weather(&with("humidity", "%", 0.65)).relative_humidity, Some(0.65), "`%` is an alias of `/`");
        assert_eq!(weather(&with("humidity", "/100", 65.0)).relative_humidity, Some(0.65));
    }
    #[test]
    fn unit_pa() {
        assert_eq!(weather(&with("pressure", "Pa", 101_200.0)).atmospheric_pressure, Some(1012.0));
    }
    #[test]
    fn unit_hpa() {
        assert_eq!(weather(&with("pressure", "hPa", 1012.0)).atmospheric_pressure, Some(1012.0));
    }
    #[test]
    fn unit_m_per_s() {
        assert_eq!(weather(&with("windSpeed", "m/s", 6.5)).wind_speed, Some(6.5));
    }
    #[test]
    fn unit_km_per_h() {
        assert_eq!(weather(&with("windSpeed", "km/h", 36.0)).wind_speed, Some(10.0));
    }
    #[test]
    fn unit_deg_and_mm() {
        let w = weather(&with("windDirection", "deg", 270.0));
        assert_eq!((w.wind_direction, w.precipitation), (Some(270.0), Some(0.0)));
    }
    #[test]
    fn unit_db() {
        let pack = r#"[{"bn":"nz-1/","bt":1795253400,"u":"dB"},{"n":"LAeq","v":61},{"n":"LAmax","v":70},{"n":"LAS","v":59},
                       {"n":"lat","u":"lat","v":14.6},{"n":"lon","u":"lon","v":-61.0}]"#;
        let r = &decode(pack.as_bytes(), &Options::default(), now()).unwrap()[0];
        assert_eq!((r.sensor_id.as_str(), r.kind()), ("nz-1", SensorKind::Noise));
    }
    #[test]
    fn unit_ug_m3_and_ppm() {
        let pack = r#"[{"bn":"aq-1:","bt":1795253400,"bu":"ug/m3"},{"n":"pm10","v":22},{"n":"pm2_5","v":9},
            {"n":"no2","u":"ppm","v":0.01},{"n":"o3","v":40},{"n":"co","u":"ppm","v":0.5},{"n":"so2","v":3},
            {"n":"aqi","u":"count","v":42}]"#;
        let opts = Options { lat: Some(14.6), lon: Some(-61.0), ..Options::default() };
        let r = &decode(pack.as_bytes(), &opts, now()).unwrap()[0];
        let Values::AirQuality(a) = &r.values else { panic!() };
        assert!((a.no2.unwrap() - 18.816).abs() < 0.01, "{:?}", a.no2);
        assert!((a.co.unwrap() - 0.5728).abs() < 0.001, "{:?}", a.co);
        assert_eq!((a.pm25, a.air_quality_index), (Some(9.0), Some(42)));
        assert_eq!(a.air_quality_level, Some(crate::reading::AirQualityLevel::Good), "derived from the index");
    }
    #[test]
    fn unit_count_and_ratio_for_parking() {
        let pack = r#"[{"bn":"pk-7:","bt":1795253400},{"n":"availableSpotNumber","u":"count","v":12},
            {"n":"totalSpotNumber","u":"count","v":40}]"#;
        let opts = Options { lat: Some(14.6), lon: Some(-61.0), ..Options::default() };
        let r = &decode(pack.as_bytes(), &opts, now()).unwrap()[0];
        let Values::Parking(p) = &r.values else { panic!() };
        assert_eq!(p.occupancy, Some(0.7));
    }
    #[test]
    fn unit_lx_is_no_attribute() {
        // Lux measure the light falling on a sensor; the model's `illuminanceLevel` is a lamp's
        // commanded output (0-1): not convertible, so a `lx` record is an unknown measurement.
        let pack = with("illuminance", "lx", 300.0);
        assert_eq!(decode(pack.as_bytes(), &Options::default(), now()).unwrap().len(), 1);
        let refuse = Options { unknown: device::Unknown::Refuse, ..Options::default() };
        assert_eq!(decode(pack.as_bytes(), &refuse, now()).unwrap_err().reason(), "unknown");
    }

    #[test]
    fn relative_times_and_several_instants_give_several_readings() {
        let pack = doc_example().replace("\"bt\":1795253400", "\"bt\":-60");
        let mut pack: Vec<Value> = serde_json::from_str(&pack).unwrap();
        let later: Vec<Value> = pack
            .iter()
            .filter(|r| !matches!(r.get("u").and_then(Value::as_str), Some("lat" | "lon")))
            .map(|r| {
                let mut r = r.clone();
                r.as_object_mut().unwrap().remove("bn");
                r.as_object_mut().unwrap().remove("bt");
                r["t"] = serde_json::json!(30);
                r
            })
            .collect();
        pack.extend(later);
        let r = decode(serde_json::to_string(&pack).unwrap().as_bytes(), &Options::default(), now()).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].observed_at, now() - chrono::Duration::seconds(60));
        assert_eq!(r[1].observed_at, now() - chrono::Duration::seconds(30));
        assert_eq!(r[1].seq - r[0].seq, 30, "seq is the time in seconds");
    }

    #[test]
    fn a_name_without_base_name_is_split_at_its_last_separator() {
        assert_eq!(
            split_name("", "urn:dev:ow:10e2073a01080063:temp"),
            ("urn:dev:ow:10e2073a01080063".into(), "temp".into())
        );
        assert_eq!(split_name("", "urn:dev:ow:10e2073a01080063"), ("urn:dev:ow:10e2073a01080063".into(), "".into()));
    }

    #[test]
    fn refusals_name_the_record() {
        let cases = [
            ("{}", "syntax", "JSON array"),
            ("[1]", "syntax", "record 0"),
            (r#"[{"n":"a","v":1,"x_":1}]"#, "syntax", "`x_`"),
            (r#"[{"n":"a"}]"#, "field", "[0].v"),
            (r#"[{"bn":"a","n":"temperature","u":"furlong","v":1}]"#, "unit", "furlong"),
            (r#"[{"bn":"a","n":"temperature","u":"Pa","v":1}]"#, "unit", "does not fit"),
            (r#"[{"bn":"a","bt":1e300,"n":"temperature","v":1}]"#, "time", "record 0"),
            (r#"[{"bn":"a","n":"battery","u":"%EL","v":98}]"#, "kind", "no record"),
        ];
        for (text, reason, says) in cases {
            let e = decode(text.as_bytes(), &Options::default(), now()).unwrap_err();
            assert_eq!(e.reason(), reason, "{text}: {e}");
            assert!(e.to_string().contains(says), "{e} should say {says}");
        }
        // A temperature alone is a partial weather reading; read as noise, it is nothing.
        let alone = r#"[{"bn":"a","n":"temperature","u":"Cel","v":20}]"#;
        let opts = Options { lat: Some(14.6), lon: Some(-61.0), ..Options::default() };
        assert_eq!(decode(alone.as_bytes(), &opts, now()).unwrap()[0].values.present(), ["temperature"]);
        let noise = Options { kind: Some(crate::SensorKind::Noise), ..opts };
        let e = decode(alone.as_bytes(), &noise, now()).unwrap_err();
        assert_eq!(e.reason(), "values", "{e}");
        assert!(e.to_string().contains("`LAeq`, `LAmax`, `LAS`"), "{e}");
    }
}
