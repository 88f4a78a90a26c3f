//! The published device payloads of `shared/devices/` (README.md and SOURCES.md there), read in
//! place, each decoded with its format and the configuration below: what each becomes (kind,
//! sensor, commune, the values in the model's units) or the exact reason it is refused. The table
//! of docs/device-formats.md ("Real payloads") says the same; a change in a decoder that moves a
//! file from one column to the other fails here.

use serde_json::{Map, Value};
use smartcity_gateway::formats::{Format, FormatConfig};
use smartcity_model::codec::json;
use smartcity_model::{Reading, SensorKind, Values};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The settings a deployment in Martinique would give these devices, as `[formats.<source>]`
/// tables. Most vendor examples are located in Athens (the TTS documentation's envelope) and the
/// RFC 8428 location series in Finland: a device's fixed position, set per device id, wins over
/// the payload's; devices whose payload has no position take the source's. The DL-PM is a
/// particulate sensor whose temperature, humidity and pressure only correct its readings: its kind
/// is set, else it would be read as a weather station (three weather attributes against two).
const CONFIG: &str = r#"
[ttn]
format = "ttn"
lat = 14.613
lon = -60.999
[ttn.devices.dev1]
lat = 14.616
lon = -61.059
[ttn.devices.decentlab-dl-atm41]
lat = 14.743
lon = -61.176
[ttn.devices.decentlab-dl-pm]
kind = "air-quality"
lat = 14.616
lon = -61.059
[ttn.devices.dragino-lht65]
lat = 14.436
lon = -60.882
[ttn.devices.elsys-ers-sound]
lat = 14.616
lon = -61.059
[ttn.devices.milesight-am307]
lat = 14.615
lon = -61.090
[ttn.devices.milesight-em500-lgt]
lat = 14.678
lon = -60.940
[ttn.devices.milesight-vs133]
lat = 14.616
lon = -61.059
[ttn.devices.nwave-nps405]
lat = 14.469
lon = -60.869

[chirpstack]
format = "chirpstack"
lat = 14.613
lon = -60.999

[senml]
format = "senml"
lat = 14.738
lon = -60.963
[senml.devices.urn-dev-ow-10e2073a01080063]
lat = 14.575
lon = -60.975
"#;

/// `shared/devices/` next to the workspace (`/work/shared` for `/work/main`); CI checks the
/// project out beside it.
fn corpus() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/devices");
    assert!(
        dir.join("README.md").is_file(),
        "the device corpus is missing: expected {} (a checkout of the project next to `shared/`)",
        dir.display()
    );
    dir
}

fn formats() -> BTreeMap<String, FormatConfig> {
    toml::from_str(CONFIG).expect("the test's configuration parses")
}

/// What one file becomes, with the configuration of the source its format is named after.
fn decode(file: &str) -> Result<Vec<Reading>, String> {
    let format = file.split('-').next().expect("files are named <format>-...");
    let config = &formats()[format];
    assert!(config.problems().is_empty(), "{:?}", config.problems());
    let payload = std::fs::read(corpus().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let format = match config.format {
        Format::Json | Format::Mapping => unreachable!("the corpus is TTN, ChirpStack and SenML"),
        f => f,
    };
    format.decode(&payload, "", &config.options(), None).map_err(|e| format!("{}: {e}", e.reason()))
}

/// A reading as expected: sensor id, kind, commune, observation time (`None`: the payload has
/// none, so it is the time of decoding), and the wire-format `values` in the model's units.
type Row = (&'static str, &'static str, &'static str, Option<&'static str>, &'static str);

/// Every file of the corpus: its readings, or `reason: message` of its dead letter.
#[rustfmt::skip]
fn expected() -> Vec<(&'static str, Result<&'static [Row], &'static str>)> {
    vec![
        ("chirpstack-up-docs-example.json", Err("field: `object` is missing or not of the expected type")),
        ("chirpstack-up-milesight-am319-raw.json", Err("field: `object` is missing or not of the expected type")),
        ("chirpstack-up-nwave-nps-heartbeat-raw.json", Err("field: `object` is missing or not of the expected type")),
        (
            "senml-rfc8428-multiple.json",
            Err("kind: cannot tell the kind of sensor `(pack)`: no record is a measurement of the model; set `kind` for this source"),
        ),
        (
            "senml-rfc8428-relative-times.json",
            Err("kind: cannot tell the kind of sensor `(pack)`: no record is a measurement of the model; set `kind` for this source"),
        ),
        ("ttn-up-docs-mqtt-example.json", Err("field: `uplink_message.decoded_payload` is missing or not of the expected type")),
        (
            "ttn-up-mclimate-button-starter-kit.json",
            Err("kind: cannot tell the kind of sensor `eui-70b3d52dd600035a`: no measurement is an attribute of a kind (got batteryVoltage, pressEvent, sensorTemperature, singlePressEventCounter, thermistorProperlyConnected); set `kind` for this source"),
        ),
        ("ttn-up-milesight-am307-raw.json", Err("field: `uplink_message.decoded_payload` is missing or not of the expected type")),
        (
            "ttn-up-milesight-em500-lgt.json",
            Err("kind: cannot tell the kind of sensor `milesight-em500-lgt`: no measurement is an attribute of a kind (got battery, light); set `kind` for this source"),
        ),
        (
            "ttn-up-milesight-vs133.json",
            Err("kind: cannot tell the kind of sensor `milesight-vs133`: no measurement is an attribute of a kind (got line_1, line_2); set `kind` for this source"),
        ),
        ("ttn-up-nwave-nps-parking-packetbroker.json", Err("field: `uplink_message.decoded_payload` is missing or not of the expected type")),
        ("senml-rfc8428-absolute-times.json", Ok(&[
            ("urn-dev-ow-10e2073a01080063", "weather", "Ducos", Some("2010-06-08T18:01:16.000Z"), r#"{"temperature":23.5}"#),
            ("urn-dev-ow-10e2073a01080063", "weather", "Ducos", Some("2010-06-08T18:01:31.000Z"), r#"{"temperature":23.6}"#),
        ])),
        ("senml-rfc8428-humidity-series.json", Ok(&[
            ("urn-dev-ow-10e2073a01080063", "weather", "Ducos", Some("2011-10-31T13:24:24.000Z"), r#"{"relativeHumidity":0.212}"#),
            ("urn-dev-ow-10e2073a01080063", "weather", "Ducos", Some("2011-10-31T13:24:34.000Z"), r#"{"relativeHumidity":0.213}"#),
            ("urn-dev-ow-10e2073a01080063", "weather", "Ducos", Some("2011-10-31T13:24:44.000Z"), r#"{"relativeHumidity":0.214}"#),
            ("urn-dev-ow-10e2073a01080063", "weather", "Ducos", Some("2011-10-31T13:24:54.000Z"), r#"{"relativeHumidity":0.214}"#),
            ("urn-dev-ow-10e2073a01080063", "weather", "Ducos", Some("2011-10-31T13:25:04.000Z"), r#"{"relativeHumidity":0.215}"#),
            ("urn-dev-ow-10e2073a01080063", "weather", "Ducos", Some("2011-10-31T13:25:14.000Z"), r#"{"relativeHumidity":0.215}"#),
            ("urn-dev-ow-10e2073a01080063", "weather", "Ducos", Some("2011-10-31T13:25:24.000Z"), r#"{"relativeHumidity":0.215}"#),
            ("urn-dev-ow-10e2073a01080063", "weather", "Ducos", Some("2011-10-31T13:25:34.000Z"), r#"{"relativeHumidity":0.21600000000000003}"#),
            ("urn-dev-ow-10e2073a01080063", "weather", "Ducos", Some("2011-10-31T13:25:44.000Z"), r#"{"relativeHumidity":0.217}"#),
            ("urn-dev-ow-10e2073a01080063", "weather", "Ducos", Some("2011-10-31T13:25:54.000Z"), r#"{"relativeHumidity":0.215}"#),
            ("urn-dev-ow-10e2073a01080063", "weather", "Ducos", Some("2011-10-31T13:25:55.000Z"), r#"{"relativeHumidity":0.215}"#),
            ("urn-dev-ow-10e2073a01080063", "weather", "Ducos", Some("2011-10-31T13:25:56.000Z"), r#"{"relativeHumidity":0.215}"#),
        ])),
        ("senml-rfc8428-location-series.json", Ok(&[
            ("urn-dev-ow-10e2073a01080063", "weather", "Ducos", Some("2011-10-31T13:24:24.000Z"), r#"{"relativeHumidity":0.2}"#),
            ("urn-dev-ow-10e2073a01080063", "weather", "Ducos", Some("2011-10-31T13:25:24.000Z"), r#"{"relativeHumidity":0.203}"#),
            ("urn-dev-ow-10e2073a01080063", "weather", "Ducos", Some("2011-10-31T13:26:24.000Z"), r#"{"relativeHumidity":0.207}"#),
            ("urn-dev-ow-10e2073a01080063", "weather", "Ducos", Some("2011-10-31T13:27:24.000Z"), r#"{"relativeHumidity":0.212}"#),
        ])),
        ("senml-rfc8428-mixed-types.json", Ok(&[
            ("urn-dev-ow-10e2073a01080063", "weather", "Ducos", None, r#"{"temperature":23.1}"#),
        ])),
        ("senml-rfc8428-single.json", Ok(&[
            ("urn-dev-ow-10e2073a01080063", "weather", "Ducos", None, r#"{"temperature":23.1}"#),
        ])),
        ("senml-rfc8428-two-devices.json", Ok(&[
            ("2001-db8--1", "weather", "La Trinité", Some("2011-10-31T16:27:09.000Z"), r#"{"temperature":12.3,"relativeHumidity":0.67}"#),
            ("2001-db8--2", "weather", "La Trinité", Some("2011-10-31T16:27:09.000Z"), r#"{"temperature":25.2,"relativeHumidity":0.3}"#),
        ])),
        ("ttn-up-decentlab-dl-atm41.json", Ok(&[
            ("decentlab-dl-atm41", "weather", "Saint-Pierre", Some("2020-02-12T15:15:45.789Z"), r#"{"temperature":26.4,"relativeHumidity":0.524,"atmosphericPressure":959.5999999999999,"windSpeed":0.09,"windDirection":29.9,"precipitation":0.0}"#),
        ])),
        ("ttn-up-decentlab-dl-pm.json", Ok(&[
            ("decentlab-dl-pm", "air-quality", "Fort-de-France", Some("2020-02-12T15:15:45.789Z"), r#"{"pm10":3.9,"pm25":3.9}"#),
        ])),
        ("ttn-up-docs-example-attributes.json", Ok(&[
            ("dev1", "weather", "Fort-de-France", Some("2020-02-12T15:15:45.789Z"), r#"{"temperature":1.0}"#),
        ])),
        ("ttn-up-docs-example-locations.json", Ok(&[
            ("dev1", "weather", "Fort-de-France", Some("2020-02-12T15:15:45.789Z"), r#"{"temperature":1.0}"#),
        ])),
        ("ttn-up-dragino-lht65.json", Ok(&[
            ("dragino-lht65", "weather", "Sainte-Anne", Some("2020-02-12T15:15:45.789Z"), r#"{"temperature":28.29,"relativeHumidity":0.8859999999999999}"#),
        ])),
        ("ttn-up-elsys-ers-sound.json", Ok(&[
            ("elsys-ers-sound", "noise", "Fort-de-France", Some("2020-02-12T15:15:45.789Z"), r#"{"LAeq":1.0,"LAmax":1.0}"#),
        ])),
        ("ttn-up-milesight-am307.json", Ok(&[
            ("milesight-am307", "weather", "Schoelcher", Some("2020-02-12T15:15:45.789Z"), r#"{"atmosphericPressure":1004.7}"#),
        ])),
        ("ttn-up-nwave-nps405.json", Ok(&[
            ("nwave-nps405", "parking", "Le Marin", Some("2020-02-12T15:15:45.789Z"), r#"{"availableSpotNumber":0,"totalSpotNumber":1,"occupancy":1.0}"#),
        ])),
        ("ttn-up-simulated-parking-minimal.json", Ok(&[
            ("dev1", "parking", "Fort-de-France", Some("2021-02-04T19:19:28.681Z"), r#"{"availableSpotNumber":0,"totalSpotNumber":1,"occupancy":1.0}"#),
        ])),

    ]
}

/// The readings of `file` against `want`; numbers compared to 1e-9 (a conversion such as
/// 21.6 %RH → 0.21600000000000003 is exact enough).
fn check(file: &str, got: &[Reading], want: &[Row]) {
    assert_eq!(got.len(), want.len(), "{file}: {got:?}");
    for (r, (id, kind, commune, at, values)) in got.iter().zip(want) {
        let wire: Value = serde_json::from_slice(&json::encode(r)).unwrap();
        assert_eq!((r.sensor_id.as_str(), r.kind().as_str(), r.commune.name()), (*id, *kind, *commune), "{file}");
        if let Some(at) = at {
            assert_eq!(wire["observedAt"], *at, "{file}");
        }
        let want: Map<String, Value> = serde_json::from_str(values).unwrap();
        let got = wire["values"].as_object().unwrap();
        assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>(), "{file}: attributes");
        for (name, w) in &want {
            let close = match (got[name].as_f64(), w.as_f64()) {
                (Some(a), Some(b)) => (a - b).abs() < 1e-9,
                _ => got[name] == *w,
            };
            assert!(close, "{file}: {name} = {}, expected {w}", got[name]);
        }
    }
}

#[test]
fn every_published_payload_becomes_what_the_table_says() {
    let mut files: Vec<String> = std::fs::read_dir(corpus())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|f| f.ends_with(".json"))
        .collect();
    files.sort();
    let expected = expected();
    let listed: Vec<&str> = expected.iter().map(|(f, _)| *f).collect();
    let mut sorted = listed.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, files, "every file of the corpus is in the table, once");
    let mut readings = 0;
    let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
    for (file, want) in expected {
        match (decode(file), want) {
            (Ok(got), Ok(rows)) => {
                check(file, &got, rows);
                readings += 1;
            }
            (Err(got), Err(message)) => {
                assert_eq!(got, message, "{file}");
                *reasons.entry(message.split(':').next().unwrap()).or_default() += 1;
            }
            (got, want) => panic!("{file}: got {got:?}, expected {want:?}"),
        }
    }
    // Before partial readings, 3 with this configuration (values 11, kind 6, field 6).
    assert_eq!((readings, files.len()), (15, 26), "files that become readings");
    assert_eq!(reasons, BTreeMap::from([("field", 6), ("kind", 5)]));
}

/// Without a fixed position per device, the vendor examples located in Athens are refused: a
/// position more than 40 km from every commune is a wrong or foreign one, never a Martinique sensor.
#[test]
fn a_device_outside_the_island_is_refused_without_a_fixed_position() {
    let mut config = formats().remove("ttn").unwrap();
    config.devices.clear();
    let payload = std::fs::read(corpus().join("ttn-up-dragino-lht65.json")).unwrap();
    let e = Format::Ttn.decode(&payload, "", &config.options(), None).unwrap_err();
    assert_eq!(
        format!("{}: {e}", e.reason()),
        "location: sensor `dragino-lht65`: 37.97155556731436, 23.72678801175413 is more than 40 km from every \
         commune of Martinique"
    );
}

/// The kind rule on two real devices: the DL-PM without its configured kind has more weather
/// attributes (temperature, humidity, pressure) than air-quality ones (PM10, PM2.5); the ERS Sound
/// ties two and two, and noise wins as the larger share of its kind (2 of 3 against 2 of 6).
#[test]
fn the_kind_is_the_one_with_the_most_attributes_present() {
    let mut config = formats().remove("ttn").unwrap();
    for d in config.devices.values_mut() {
        d.kind = None;
    }
    let payload = std::fs::read(corpus().join("ttn-up-decentlab-dl-pm.json")).unwrap();
    let r = &Format::Ttn.decode(&payload, "", &config.options(), None).unwrap()[0];
    assert_eq!(r.kind(), SensorKind::Weather);
    assert_eq!(r.values.present(), ["temperature", "relativeHumidity", "atmosphericPressure"]);
    let Values::Weather(w) = &r.values else { unreachable!() };
    assert_eq!(w.atmospheric_pressure, Some(968.0), "96800 Pa");
    let payload = std::fs::read(corpus().join("ttn-up-elsys-ers-sound.json")).unwrap();
    let r = &Format::Ttn.decode(&payload, "", &config.options(), None).unwrap()[0];
    assert_eq!((r.kind(), r.values.present()), (SensorKind::Noise, vec!["LAeq", "LAmax"]));
}

/// None of the six raw uplinks of the corpus is Cayenne LPP: read as LPP, each is refused at the
/// byte that breaks the encoding (Milesight's channel/type records use their own type codes).
#[test]
fn the_raw_payloads_are_not_cayenne_lpp() {
    let want = [
        ("ttn-up-docs-mqtt-example.json", "byte 5: 0x72 is not a Cayenne LPP type"),
        ("ttn-up-milesight-am307-raw.json", "byte 1: 0x75 is not a Cayenne LPP type"),
        ("ttn-up-nwave-nps-parking-packetbroker.json", "byte 0: a record needs a channel and a type, 1 byte is left"),
        ("chirpstack-up-docs-example.json", "byte 0: a record needs a channel and a type, 1 byte is left"),
        ("chirpstack-up-milesight-am319-raw.json", "byte 1: 0x75 is not a Cayenne LPP type"),
        ("chirpstack-up-nwave-nps-heartbeat-raw.json", "byte 1: 0xd3 is not a Cayenne LPP type"),
    ];
    for (file, says) in want {
        let format = file.split('-').next().unwrap();
        let mut config = formats().remove(format).unwrap();
        config.raw_payload = smartcity_model::codec::device::RawPayload::CayenneLpp;
        let payload = std::fs::read(corpus().join(file)).unwrap();
        let e = config.format.decode(&payload, "", &config.options(), None).unwrap_err();
        assert_eq!(format!("{}: {e}", e.reason()), format!("syntax: not a Cayenne LPP payload: {says}"), "{file}");
    }
}
