//! InfluxDB line protocol: the one layout of readings in InfluxDB for the whole project (the
//! InfluxDB sink and the gateway write exactly these bytes). Described in docs/line-protocol.md.
//!
//! ```text
//! traffic,commune=Le\ Lamentin,kind=traffic,sensor_id=traffic-le-lamentin-01 intensity=1520i,occupancy=0.41,averageVehicleSpeed=38.2,congested=false,lat=14.613,lon=-60.999,seq=42i 1795174200000
//! ```
//!
//! - measurement: the kind (`traffic`, `air-quality`, ...);
//! - tags, sorted by key: `commune` (display name), `kind`, `sensor_id`: what dashboards filter on,
//!   all of bounded cardinality;
//! - fields: the values present under their JSON wire names (an attribute the sensor did not
//!   measure is no field), each with one fixed type forever (a field that changes type is refused
//!   by InfluxDB), then `lat`, `lon` (Grafana's geomap finds them by name)
//!   and `seq` (a field, not a tag: a tag per reading would make one series per reading, and a field
//!   keeps it queryable to audit gaps);
//! - timestamp: `observed_at` in milliseconds ([`PRECISION`]), never the arrival time, so a replay
//!   of the same reading rewrites the same point instead of adding one.

use crate::reading::{AirQualityLevel, LightStatus, PowerState, Reading, Values};
use std::fmt::Write;

/// The timestamp precision of every line: write requests must say `precision=ms`.
pub const PRECISION: &str = "ms";

/// Appends the line of `reading`, ending in `\n`, to `out`. Same reading, same bytes.
pub fn encode(reading: &Reading, out: &mut String) {
    let kind = reading.kind().as_str();
    name(kind, out);
    // Tags in key order: InfluxDB sorts them anyway, and sorted input spares it the work.
    tag("commune", reading.commune.name(), out);
    out.push_str(",kind=");
    name(kind, out);
    tag("sensor_id", &reading.sensor_id, out);
    out.push(' ');
    let mut f = Fields { out, first: true };
    match &reading.values {
        Values::Traffic(v) => {
            f.int("intensity", v.intensity.map(u64::from));
            f.float("occupancy", v.occupancy);
            f.float("averageVehicleSpeed", v.average_vehicle_speed);
            f.boolean("congested", v.congested);
        }
        Values::AirQuality(v) => {
            f.float("pm10", v.pm10);
            f.float("pm25", v.pm25);
            f.float("no2", v.no2);
            f.float("o3", v.o3);
            f.float("co", v.co);
            f.float("so2", v.so2);
            f.int("airQualityIndex", v.air_quality_index.map(u64::from));
            f.string("airQualityLevel", v.air_quality_level.map(air_quality_level));
        }
        Values::Parking(v) => {
            f.int("availableSpotNumber", v.available_spot_number.map(u64::from));
            f.int("totalSpotNumber", v.total_spot_number.map(u64::from));
            f.float("occupancy", v.occupancy);
        }
        Values::Noise(v) => {
            f.float("LAeq", v.laeq);
            f.float("LAmax", v.lamax);
            f.float("LAS", v.las);
        }
        Values::Weather(v) => {
            f.float("temperature", v.temperature);
            f.float("relativeHumidity", v.relative_humidity);
            f.float("atmosphericPressure", v.atmospheric_pressure);
            f.float("windSpeed", v.wind_speed);
            f.float("windDirection", v.wind_direction);
            f.float("precipitation", v.precipitation);
        }
        Values::Light(v) => {
            f.string("status", v.status.map(light_status));
            f.string("powerState", v.power_state.map(power_state));
            f.float("illuminanceLevel", v.illuminance_level);
            f.float("powerConsumption", v.power_consumption);
        }
    }
    f.float("lat", reading.lat);
    f.float("lon", reading.lon);
    f.int("seq", reading.seq);
    // Writing to a String cannot fail.
    let _ = writeln!(out, " {}", reading.observed_at.timestamp_millis());
}

/// The lines of `readings`, in order, each ending in `\n`: the body of one write request.
pub fn encode_batch(readings: &[Reading]) -> String {
    // About 250 bytes a line; one allocation for a typical batch.
    let mut out = String::with_capacity(readings.len() * 256);
    for r in readings {
        encode(r, &mut out);
    }
    out
}

/// `,key=value` with the value escaped (the key is one of ours).
fn tag(key: &'static str, value: &str, out: &mut String) {
    out.push(',');
    name(key, out);
    out.push('=');
    escape(value, &[',', '=', ' '], out);
}

/// One of our own names (a measurement, a tag or field key): none needs escaping, so it is
/// copied as is (escaping them all was about 4 % of the gateway's CPU); debug builds check it.
fn name(name: &'static str, out: &mut String) {
    debug_assert!(needs_no_escape(name, &[',', '=', ' ', '"']), "`{name}` would need escaping");
    out.push_str(name);
}

/// Whether `s` holds none of `special` and no control or non-ASCII character.
fn needs_no_escape(s: &str, special: &[char]) -> bool {
    s.bytes().all(|b| b.is_ascii() && !b.is_ascii_control() && !special.iter().any(|&c| c as u32 == b as u32))
}

/// Writes `s` with a backslash before each of `special`. Control characters (a newline would end
/// the line) become a space, escaped like one. A trailing backslash is dropped: line protocol has
/// no way to write it (it would escape the separator that follows), and our ids never hold one.
fn escape(s: &str, special: &[char], out: &mut String) {
    let s = s.trim_end_matches('\\');
    // Most names need nothing escaped: copied at once (the char-by-char path was ~5 % of the
    // gateway's CPU). Every special character is ASCII, so a byte test finds them.
    if needs_no_escape(s, special) {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        let c = if c.is_control() { ' ' } else { c };
        if special.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
}

/// Appends `key=value` pairs separated by commas; an absent value (an attribute the sensor did not
/// measure) writes no field. A line always has fields: `lat`, `lon` and `seq` are always there.
struct Fields<'a> {
    out: &'a mut String,
    first: bool,
}

impl Fields<'_> {
    fn key(&mut self, key: &'static str) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        name(key, self.out);
        self.out.push('=');
    }

    /// Rust's `{}` gives the shortest text that reads back as the same f64 and never uses an
    /// exponent; without an `i` suffix InfluxDB reads `1` as the float 1.0, so the field keeps its
    /// type. A NaN or infinity (which `Reading::validate` refuses) is written as is: InfluxDB then
    /// refuses that one line and the sink drops only that reading.
    fn float(&mut self, key: &'static str, v: impl Into<Option<f64>>) {
        let Some(v) = v.into() else { return };
        self.key(key);
        let _ = write!(self.out, "{v}");
    }

    /// Signed 64-bit in InfluxDB: `seq` above i64::MAX would be refused, which takes 292 billion
    /// years of readings at one a second.
    fn int(&mut self, key: &'static str, v: impl Into<Option<u64>>) {
        let Some(v) = v.into() else { return };
        self.key(key);
        let _ = write!(self.out, "{v}i");
    }

    fn boolean(&mut self, key: &'static str, v: Option<bool>) {
        let Some(v) = v else { return };
        self.key(key);
        self.out.push_str(if v { "true" } else { "false" });
    }

    fn string(&mut self, key: &'static str, v: Option<&str>) {
        let Some(v) = v else { return };
        self.key(key);
        self.out.push('"');
        for c in v.chars() {
            match c {
                '"' | '\\' => {
                    self.out.push('\\');
                    self.out.push(c);
                }
                c if c.is_control() => self.out.push(' '),
                c => self.out.push(c),
            }
        }
        self.out.push('"');
    }
}

// The serde (camelCase) names, as in the JSON wire format; a test checks they agree with serde.

fn air_quality_level(l: AirQualityLevel) -> &'static str {
    match l {
        AirQualityLevel::Good => "good",
        AirQualityLevel::Moderate => "moderate",
        AirQualityLevel::UnhealthyForSensitiveGroups => "unhealthyForSensitiveGroups",
        AirQualityLevel::Unhealthy => "unhealthy",
        AirQualityLevel::VeryUnhealthy => "veryUnhealthy",
        AirQualityLevel::Hazardous => "hazardous",
    }
}

fn light_status(s: LightStatus) -> &'static str {
    match s {
        LightStatus::Ok => "ok",
        LightStatus::DefectiveLamp => "defectiveLamp",
        LightStatus::ColumnIssue => "columnIssue",
        LightStatus::BrokenLantern => "brokenLantern",
    }
}

fn power_state(p: PowerState) -> &'static str {
    match p {
        PowerState::On => "on",
        PowerState::Off => "off",
        PowerState::Low => "low",
        PowerState::BootingUp => "bootingUp",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::json;
    use crate::place::Commune;
    use crate::reading::{Noise, Traffic};
    use chrono::{TimeZone, Utc};

    fn line(r: &Reading) -> String {
        let mut s = String::new();
        encode(r, &mut s);
        s
    }

    fn traffic(sensor_id: &str, commune: Commune) -> Reading {
        Reading {
            sensor_id: sensor_id.into(),
            commune,
            lat: 14.613,
            lon: -60.999,
            observed_at: Utc.with_ymd_and_hms(2026, 11, 20, 11, 30, 0).unwrap(),
            seq: 42,
            values: Values::Traffic(Traffic {
                intensity: Some(1520),
                occupancy: Some(0.41),
                average_vehicle_speed: Some(38.0),
                congested: Some(false),
            }),
        }
    }

    /// One pinned line per kind, from the JSON examples of docs/wire-format.md.
    #[test]
    fn one_pinned_line_per_kind() {
        let cases = [
            (
                r#"{"v":1,"id":"traffic-fort-de-france-01","type":"traffic","commune":"Fort-de-France","lat":14.6065,"lon":-61.0695,"observedAt":"2026-11-20T11:30:00.000Z","seq":1234,"values":{"intensity":2116,"occupancy":0.674,"averageVehicleSpeed":28.5,"congested":true}}"#,
                "traffic,commune=Fort-de-France,kind=traffic,sensor_id=traffic-fort-de-france-01 intensity=2116i,occupancy=0.674,averageVehicleSpeed=28.5,congested=true,lat=14.6065,lon=-61.0695,seq=1234i 1795174200000\n",
            ),
            (
                r#"{"v":1,"id":"air-quality-fort-de-france-01","type":"air-quality","commune":"Fort-de-France","lat":14.616,"lon":-61.056,"observedAt":"2026-11-20T11:30:00.000Z","seq":1234,"values":{"pm10":21.6,"pm25":9.8,"no2":47.4,"o3":26.1,"co":0.83,"so2":1.4,"airQualityIndex":51,"airQualityLevel":"moderate"}}"#,
                "air-quality,commune=Fort-de-France,kind=air-quality,sensor_id=air-quality-fort-de-france-01 pm10=21.6,pm25=9.8,no2=47.4,o3=26.1,co=0.83,so2=1.4,airQualityIndex=51i,airQualityLevel=\"moderate\",lat=14.616,lon=-61.056,seq=1234i 1795174200000\n",
            ),
            (
                r#"{"v":1,"id":"parking-fort-de-france-01","type":"parking","commune":"Fort-de-France","lat":14.6025,"lon":-61.065,"observedAt":"2026-11-20T11:30:00.000Z","seq":1234,"values":{"availableSpotNumber":286,"totalSpotNumber":400,"occupancy":0.285}}"#,
                "parking,commune=Fort-de-France,kind=parking,sensor_id=parking-fort-de-france-01 availableSpotNumber=286i,totalSpotNumber=400i,occupancy=0.285,lat=14.6025,lon=-61.065,seq=1234i 1795174200000\n",
            ),
            (
                r#"{"v":1,"id":"noise-fort-de-france-01","type":"noise","commune":"Fort-de-France","lat":14.61,"lon":-61.062,"observedAt":"2026-11-20T11:30:00.000Z","seq":1234,"values":{"LAeq":66.4,"LAmax":76.0,"LAS":65.3}}"#,
                "noise,commune=Fort-de-France,kind=noise,sensor_id=noise-fort-de-france-01 LAeq=66.4,LAmax=76,LAS=65.3,lat=14.61,lon=-61.062,seq=1234i 1795174200000\n",
            ),
            (
                r#"{"v":1,"id":"weather-le-lamentin-01","type":"weather","commune":"Le Lamentin","lat":14.596,"lon":-60.999,"observedAt":"2026-11-20T11:30:00.000Z","seq":1234,"values":{"temperature":23.9,"relativeHumidity":0.848,"atmosphericPressure":1016.0,"windSpeed":7.8,"windDirection":117.0,"precipitation":0.0}}"#,
                "weather,commune=Le\\ Lamentin,kind=weather,sensor_id=weather-le-lamentin-01 temperature=23.9,relativeHumidity=0.848,atmosphericPressure=1016,windSpeed=7.8,windDirection=117,precipitation=0,lat=14.596,lon=-60.999,seq=1234i 1795174200000\n",
            ),
            (
                r#"{"v":1,"id":"light-schoelcher-01","type":"light","commune":"Schoelcher","lat":14.615,"lon":-61.09,"observedAt":"2026-11-20T11:30:00.000Z","seq":1234,"values":{"status":"ok","powerState":"off","illuminanceLevel":0.0,"powerConsumption":0.0}}"#,
                "light,commune=Schoelcher,kind=light,sensor_id=light-schoelcher-01 status=\"ok\",powerState=\"off\",illuminanceLevel=0,powerConsumption=0,lat=14.615,lon=-61.09,seq=1234i 1795174200000\n",
            ),
        ];
        for (reading, expected) in cases {
            let r = json::decode(reading.as_bytes()).unwrap();
            assert_eq!(line(&r), expected);
        }
    }

    #[test]
    fn communes_with_spaces_and_accents_are_escaped() {
        let l = line(&traffic("tf-1", Commune::LaTrinite));
        assert!(l.starts_with("traffic,commune=La\\ Trinité,kind=traffic,sensor_id=tf-1 intensity=1520i,"), "{l}");
        for c in Commune::ALL {
            let l = line(&traffic("tf-1", c));
            let expected = format!(",commune={},", c.name().replace(' ', "\\ "));
            assert!(l.contains(&expected), "{l}");
        }
    }

    #[test]
    fn hostile_strings_cannot_break_the_line() {
        let l = line(&traffic("a b,c=d\"e\\f\ng\r\th\\", Commune::Ducos));
        assert_eq!(
            l,
            "traffic,commune=Ducos,kind=traffic,sensor_id=a\\ b\\,c\\=d\"e\\f\\ g\\ \\ h \
             intensity=1520i,occupancy=0.41,averageVehicleSpeed=38,congested=false,lat=14.613,lon=-60.999,seq=42i \
             1795174200000\n"
        );
        assert_eq!(l.matches('\n').count(), 1);

        let mut s = String::new();
        Fields { out: &mut s, first: true }.string("k", Some("say \"hi\"\\\nbye"));
        assert_eq!(s, "k=\"say \\\"hi\\\"\\\\ bye\"");

        let mut s = String::new();
        escape("air quality,x", &[',', ' '], &mut s);
        assert_eq!(s, "air\\ quality\\,x");
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "would need escaping")]
    fn our_own_names_are_checked_to_need_no_escaping() {
        Fields { out: &mut String::new(), first: true }.int("k,= x", Some(1));
    }

    #[test]
    fn floats_stay_floats_and_integers_carry_i() {
        let mut r = traffic("tf-1", Commune::Ducos);
        r.values = Values::Noise(Noise { laeq: Some(1.0), lamax: Some(1e-7), las: Some(123456789.5) });
        let l = line(&r);
        assert!(l.contains(" LAeq=1,LAmax=0.0000001,LAS=123456789.5,"), "{l}");
        assert!(l.contains(",seq=42i "), "{l}");
    }

    #[test]
    fn same_reading_same_bytes() {
        let r = traffic("traffic-ducos-01", Commune::Ducos);
        assert_eq!(line(&r), line(&r.clone()));
        let batch = encode_batch(&[r.clone(), r.clone()]);
        let (a, b) = batch.split_at(batch.len() / 2);
        assert_eq!(a, b);
        assert_eq!(a, line(&r));
        assert_eq!(encode_batch(&[]), "");
    }

    #[test]
    fn enum_names_match_serde() {
        use AirQualityLevel as A;
        for l in [A::Good, A::Moderate, A::UnhealthyForSensitiveGroups, A::Unhealthy, A::VeryUnhealthy, A::Hazardous] {
            assert_eq!(serde_json::to_value(l).unwrap(), air_quality_level(l));
        }
        use LightStatus as S;
        for s in [S::Ok, S::DefectiveLamp, S::ColumnIssue, S::BrokenLantern] {
            assert_eq!(serde_json::to_value(s).unwrap(), light_status(s));
        }
        use PowerState as P;
        for p in [P::On, P::Off, P::Low, P::BootingUp] {
            assert_eq!(serde_json::to_value(p).unwrap(), power_state(p));
        }
    }
}

#[cfg(test)]
mod doc_tests {
    /// In docs/line-protocol.md every ```json block (a wire-format reading) is followed by a ```text
    /// block with exactly the line `encode` writes for it, and all six kinds are shown.
    #[test]
    fn documented_lines_are_what_encode_writes() {
        let doc = include_str!("../../../docs/line-protocol.md");
        let mut kinds = std::collections::BTreeSet::new();
        for part in doc.split("```json\n").skip(1) {
            let (json, rest) = part.split_once("```").expect("closed json block");
            let line = rest
                .split_once("```text\n")
                .and_then(|(_, t)| t.split_once("```"))
                .map(|(t, _)| t)
                .unwrap_or_else(|| panic!("a ```text block follows {json}"));
            let reading = crate::codec::json::decode(json.trim().as_bytes()).unwrap_or_else(|e| panic!("{e}: {json}"));
            let mut encoded = String::new();
            super::encode(&reading, &mut encoded);
            assert_eq!(line, encoded, "docs/line-protocol.md shows another line for {json}");
            kinds.insert(reading.kind());
        }
        assert_eq!(kinds.len(), 6, "one example per kind");
    }
}
