//! Partial readings (a device that measures part of its kind) through every codec: each carries
//! the attributes present and nothing else, and reads back as the same reading; a reading with no
//! attribute is refused everywhere.

use super::{json, line_protocol, ngsi_ld, ngsi_ld_read, sensorthings};
use crate::place::Commune;
use crate::reading::{AirQuality, Light, LightStatus, Noise, Parking, Reading, ReadingError, Traffic, Values, Weather};
use crate::SensorKind;
use chrono::{TimeZone, Utc};
use serde_json::{json, Value};

fn reading(values: Values) -> Reading {
    Reading {
        sensor_id: "wx-partial-1".into(),
        commune: Commune::LeLamentin,
        lat: 14.613,
        lon: -60.999,
        observed_at: Utc.with_ymd_and_hms(2026, 11, 20, 11, 30, 0).unwrap(),
        seq: 7,
        values,
    }
}

/// A weather station with temperature and humidity only (the Dragino LHT65 of the device corpus).
fn weather() -> Reading {
    reading(Values::Weather(Weather { temperature: Some(27.5), relative_humidity: Some(0.78), ..Default::default() }))
}

/// One partial reading per kind, each with one or two attributes of a different type.
fn partials() -> Vec<Reading> {
    vec![
        reading(Values::Traffic(Traffic { congested: Some(true), ..Default::default() })),
        reading(Values::AirQuality(AirQuality { pm10: Some(31.5), pm25: Some(12.0), ..Default::default() })),
        reading(Values::Parking(Parking { available_spot_number: Some(0), ..Default::default() })),
        reading(Values::Noise(Noise { laeq: Some(61.2), ..Default::default() })),
        weather(),
        reading(Values::Light(Light { status: Some(LightStatus::Ok), ..Default::default() })),
    ]
}

fn empty(kind: SensorKind) -> Reading {
    reading(match kind {
        SensorKind::Traffic => Values::Traffic(Traffic::default()),
        SensorKind::AirQuality => Values::AirQuality(AirQuality::default()),
        SensorKind::Parking => Values::Parking(Parking::default()),
        SensorKind::Noise => Values::Noise(Noise::default()),
        SensorKind::Weather => Values::Weather(Weather::default()),
        SensorKind::Light => Values::Light(Light::default()),
    })
}

#[test]
fn a_reading_without_any_attribute_is_refused() {
    for kind in SensorKind::ALL {
        let e = empty(kind).validate().unwrap_err();
        assert_eq!(e, ReadingError::NoAttribute(kind));
        assert_eq!(e.to_string(), format!("a {kind} reading needs at least one attribute of its kind, and has none"));
    }
    let wire = String::from_utf8(json::encode(&weather())).unwrap();
    let at = wire.find("\"values\":").unwrap();
    let no_values = format!("{}\"values\":{{}}}}", &wire[..at]);
    let e = json::decode(no_values.as_bytes()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "bad `values` for type `weather`: none of the kind's attributes is there (temperature, relativeHumidity, \
         atmosphericPressure, windSpeed, windDirection, precipitation)"
    );
}

#[test]
fn only_the_values_present_are_checked() {
    let only_available = reading(Values::Parking(Parking { available_spot_number: Some(40), ..Default::default() }));
    only_available.validate().unwrap();
    let more_than_total = reading(Values::Parking(Parking {
        available_spot_number: Some(40),
        total_spot_number: Some(30),
        occupancy: None,
    }));
    assert_eq!(more_than_total.validate().unwrap_err(), ReadingError::SpotsExceedTotal { available: 40, total: 30 });
    let too_hot = reading(Values::Weather(Weather { temperature: Some(80.0), ..Default::default() }));
    assert!(matches!(too_hot.validate(), Err(ReadingError::OutOfRange { field: "temperature", .. })));
}

#[test]
fn json_omits_absent_attributes_and_reads_them_back() {
    for r in partials() {
        let bytes = json::encode(&r);
        let doc: Value = serde_json::from_slice(&bytes).unwrap();
        let names: Vec<&str> = doc["values"].as_object().unwrap().keys().map(String::as_str).collect();
        let mut present = r.values.present();
        present.sort_unstable();
        let mut names = names;
        names.sort_unstable();
        assert_eq!(names, present, "{}", r.kind());
        assert_eq!(json::decode(&bytes).unwrap(), r);
    }
    let text = String::from_utf8(json::encode(&weather())).unwrap();
    assert!(text.ends_with(r#""values":{"temperature":27.5,"relativeHumidity":0.78}}"#), "{text}");
    // Absence is written by leaving the attribute out; a null is a wrong value, not an absent one.
    let null = text.replace("\"temperature\":27.5", "\"temperature\":null");
    let e = json::decode(null.as_bytes()).unwrap_err().to_string();
    assert!(e.starts_with("bad `values` for type `weather`: invalid type: null, expected f64"), "{e}");
}

#[test]
fn line_protocol_writes_the_present_fields_only() {
    let mut line = String::new();
    line_protocol::encode(&weather(), &mut line);
    assert_eq!(
        line,
        "weather,commune=Le\\ Lamentin,kind=weather,sensor_id=wx-partial-1 \
         temperature=27.5,relativeHumidity=0.78,lat=14.613,lon=-60.999,seq=7i 1795174200000\n"
    );
    for r in partials() {
        let mut line = String::new();
        line_protocol::encode(&r, &mut line);
        // The measurement and tags hold an escaped space (`Le\ Lamentin`): the fields are the second-last part.
        let fields = line.trim_end().rsplit(' ').nth(1).unwrap();
        let names: Vec<&str> = fields.split(',').map(|f| f.split('=').next().unwrap()).collect();
        assert_eq!(names[..names.len() - 3], r.values.present()[..], "{line}");
    }
}

#[test]
fn ngsi_ld_sends_the_present_attributes_and_reads_them_back() {
    for form in [ngsi_ld::Form::Normalized, ngsi_ld::Form::KeyValues] {
        let options = ngsi_ld::Options { form, ..Default::default() };
        for r in partials() {
            let e = ngsi_ld::entity(&r, &options);
            let measured: Vec<&str> = r.kind().attributes().iter().copied().filter(|a| e.get(a).is_some()).collect();
            assert_eq!(measured, r.values.present(), "{form:?} {e}");
            // keyValues loses observedAt: parking and streetlight entities then have no time.
            if form == ngsi_ld::Form::Normalized || !matches!(r.kind(), SensorKind::Parking | SensorKind::Light) {
                let back = ngsi_ld_read::reading(&e).unwrap_or_else(|err| panic!("{form:?} {e}: {err}"));
                assert_eq!(back.values, r.values, "{form:?}");
            }
        }
    }
    let e = ngsi_ld::entity(&weather(), &ngsi_ld::Options::default());
    assert_eq!(
        e["temperature"],
        json!({"type": "Property", "value": 27.5, "observedAt": "2026-11-20T11:30:00.000Z", "unitCode": "CEL"})
    );
    assert!(e.get("windSpeed").is_none(), "an absent attribute is left out, never null: {e}");
}

#[test]
fn sensorthings_observes_the_present_attributes_only() {
    for r in partials() {
        let results = sensorthings::results(&r.values);
        let quantities = sensorthings::quantities(r.kind());
        assert_eq!(results.len(), quantities.len());
        let observed: Vec<&str> =
            quantities.iter().zip(&results).filter(|(_, v)| v.is_some()).map(|(q, _)| q.attribute).collect();
        assert_eq!(observed, r.values.present(), "{}", r.kind());
    }
    let results = sensorthings::results(&weather().values);
    assert_eq!(results[..2], [Some(json!(27.5)), Some(json!(0.78))]);
    assert!(results[2..].iter().all(Option::is_none));
}
