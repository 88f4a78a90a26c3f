//! Property tests of the device formats through the gateway's decoder (`decode_all` with a
//! `TopicRule::Device`): whatever arrives, no decoder panics, every refusal carries a known
//! reason, and every accepted reading is valid (ranges, id) and encodes to line protocol.
//! (a) arbitrary bytes; (b) valid samples with bytes flipped, inserted or deleted; (c) valid
//! envelopes around random JSON made of the names, units and values the decoders look for.
//! `PROPTEST_CASES=100000 cargo test --release -p smartcity-gateway --test device_fuzz` for longer.

use proptest::prelude::*;
use serde_json::{json, Value};
use smartcity_gateway::decode::{decode_all, Refusal, TopicRule, DEVICE_REASONS, REASONS};
use smartcity_gateway::formats::Format;
use smartcity_model::codec::device::Options;
use smartcity_model::codec::line_protocol;
use smartcity_model::codec::mapping::Mapping;

const MAX: usize = 65_536;

fn cases(default: u32) -> ProptestConfig {
    if std::env::var_os("PROPTEST_CASES").is_some() {
        ProptestConfig::default()
    } else {
        ProptestConfig::with_cases(default)
    }
}

fn rule(format: Format) -> TopicRule {
    // A fallback position, so that many generated payloads get as far as the reading's checks.
    let options = Options { lat: Some(14.6), lon: Some(-61.0), ..Options::default() };
    let mapping = (format == Format::Mapping).then(|| Box::new(mapping()));
    TopicRule::Device { format, options: Box::new(options), uplinks_only: true, mapping }
}

/// A mapping over the paths `random_documents` fills (noise, with time, seq and kind in the payload).
fn mapping() -> Mapping {
    toml::from_str(
        "sensor_id = \"id\"\ntime = \"ts\"\ntime_format = \"unix\"\nseq = \"n\"\nkind_path = \"kind\"\nlat = \"pos.0\"\nlon = \"pos.1\"\n\
         records = \"data\"\n[fields]\nLAeq = { path = \"a\", unit = \"dB\" }\nLAmax = { path = \"b\" }\nLAS = { path = \"c.value\" }\n",
    )
    .unwrap()
}

const TOPIC: &str = "application/1/device/0102030405060708/event/up"; // ends in `/up` too

fn format() -> impl Strategy<Value = Format> {
    prop_oneof![Just(Format::Senml), Just(Format::Ttn), Just(Format::Chirpstack), Just(Format::Mapping)]
}

/// Decodes, and checks what the decoder promises whichever way it goes.
fn check(format: Format, payload: &[u8]) -> Result<(), TestCaseError> {
    match decode_all(&rule(format), TOPIC, payload, MAX) {
        Ok(readings) => {
            prop_assert!(!readings.is_empty());
            for r in readings {
                prop_assert!(r.validate().is_ok(), "{r:?}");
                let mut line = String::new();
                line_protocol::encode(&r, &mut line);
                prop_assert!(!line.is_empty());
            }
        }
        Err(Refusal { reason, message }) => {
            prop_assert!(REASONS.contains(&reason) || DEVICE_REASONS.contains(&reason), "{reason}: {message}");
            prop_assert!(!message.is_empty());
        }
    }
    Ok(())
}

fn sample(format: Format) -> Value {
    match format {
        Format::Ttn => json!({"end_device_ids": {"device_id": "wx-1"}, "received_at": "2026-11-21T11:30:00Z",
            "uplink_message": {"f_cnt": 3, "decoded_payload": {"temperature": 27.5, "humidity": 78, "pressure": 1013.2,
            "wind_speed": 6.1, "wind_direction": 90, "rain": 0}}}),
        Format::Chirpstack => json!({"time": "2026-11-21T11:30:00Z", "fCnt": 7, "deviceInfo": {"deviceName": "nz-1"},
            "object": {"laeq": 63.2, "lamax": 71.8, "las": 60.4}}),
        Format::Mapping => json!({"data": [{"id": "nz-1", "ts": 1_795_253_400, "n": 1, "kind": "noise",
            "pos": [14.6, -61.0], "a": 60, "b": 70, "c": {"value": 58}}]}),
        _ => json!([{"bn": "urn:dev:mac:1:", "bt": 1_795_253_400, "n": "temperature", "u": "Cel", "v": 27.5},
            {"n": "humidity", "u": "%RH", "v": 78}, {"n": "pressure", "u": "hPa", "v": 1013.2},
            {"n": "windSpeed", "u": "km/h", "v": 22}, {"n": "windDirection", "u": "deg", "v": 90},
            {"n": "precipitation", "u": "mm", "v": 0}]),
    }
}

#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize),
}

fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        match *e {
            Edit::Flip(i, b) if !bytes.is_empty() => {
                let at = i % bytes.len();
                bytes[at] ^= b;
            }
            Edit::Insert(i, b) => bytes.insert(i % (bytes.len() + 1), b),
            Edit::Delete(i) if !bytes.is_empty() => {
                let at = i % bytes.len();
                bytes.remove(at);
            }
            _ => {}
        }
    }
    bytes
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(i, b)| Edit::Flip(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<usize>().prop_map(Edit::Delete),
    ]
}

/// Names, units and values the decoders give meaning to, and some they must survive.
fn key() -> impl Strategy<Value = String> {
    const KNOWN: &[&str] = &[
        "temperature",
        "humidity",
        "pressure",
        "wind_speed",
        "windDirection",
        "rain",
        "pm2_5",
        "pm10",
        "no2",
        "o3",
        "co",
        "so2",
        "aqi",
        "laeq",
        "soundPeak",
        "las",
        "occupied",
        "availableSpotNumber",
        "totalSpotNumber",
        "occupancy",
        "intensity",
        "speed",
        "congested",
        "status",
        "powerState",
        "illuminanceLevel",
        "power",
        "lat",
        "lon",
        "co2",
        "battery",
        "",
    ];
    prop_oneof![prop::sample::select(KNOWN).prop_map(String::from), "[a-zA-Z_:/]{0,12}"]
}

fn unit() -> impl Strategy<Value = Value> {
    const UNITS: &[&str] = &[
        "Cel", "K", "%RH", "%", "/", "/100", "Pa", "hPa", "kPa", "m/s", "km/h", "ug/m3", "ppm", "dB", "lx", "count",
        "1/s", "W", "deg", "mm", "lat", "lon", "°C", "furlong",
    ];
    prop::sample::select(UNITS).prop_map(Value::from)
}

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        (-1e3..1e4f64).prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f).map(Value::Number)),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (0..3u8).prop_map(|i| [json!(true), json!("ok"), json!(null)][i as usize].clone()),
    ]
}

fn measure() -> impl Strategy<Value = Value> {
    prop_oneof![number(), (number(), unit()).prop_map(|(v, u)| json!({"value": v, "unit": u}))]
}

fn senml_record() -> impl Strategy<Value = Value> {
    (key(), prop::option::of(unit()), number(), prop::option::of(number()), prop::option::of("[a-z:]{0,6}")).prop_map(
        |(n, u, v, t, bn)| {
            let mut r = json!({"n": n, "v": v});
            if let Some(u) = u {
                r["u"] = u;
            }
            if let Some(t) = t {
                r["t"] = t;
            }
            if let Some(bn) = bn {
                r["bn"] = json!(bn);
            }
            r
        },
    )
}

proptest! {
    #![proptest_config(cases(300))]

    #[test]
    fn arbitrary_bytes_never_panic(format in format(), bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        check(format, &bytes)?;
    }

    #[test]
    fn mutated_samples_never_panic(format in format(), edits in prop::collection::vec(edit(), 1..6)) {
        let bytes = serde_json::to_vec(&sample(format)).unwrap();
        check(format, &apply(bytes, &edits))?;
    }

    #[test]
    fn vendor_objects_never_panic(
        format in prop_oneof![Just(Format::Ttn), Just(Format::Chirpstack)],
        fields in prop::collection::btree_map(key(), measure(), 0..10),
        f_cnt in number(),
    ) {
        let mut doc = sample(format);
        let object: serde_json::Map<String, Value> = fields.into_iter().collect();
        match format {
            Format::Ttn => {
                doc["uplink_message"]["decoded_payload"] = Value::Object(object);
                doc["uplink_message"]["f_cnt"] = f_cnt;
            }
            _ => {
                doc["object"] = Value::Object(object);
                doc["fCnt"] = f_cnt;
            }
        }
        check(format, &serde_json::to_vec(&doc).unwrap())?;
    }

    #[test]
    fn senml_packs_never_panic(
        records in prop::collection::vec(senml_record(), 0..12),
        bt in prop::option::of(number()),
    ) {
        let mut pack = records;
        if let (Some(first), Some(bt)) = (pack.first_mut(), bt) {
            first["bt"] = bt;
        }
        check(Format::Senml, &serde_json::to_vec(&pack).unwrap())?;
    }
}

proptest! {
    #![proptest_config(cases(300))]

    #[test]
    fn mapped_documents_never_panic(
        fields in prop::collection::vec(prop::collection::btree_map(
            prop_oneof![Just("id".to_string()), Just("ts".to_string()), Just("n".to_string()), Just("kind".to_string()),
                Just("pos".to_string()), Just("a".to_string()), Just("b".to_string()), Just("c".to_string()), key()],
            prop_oneof![measure(), Just(json!("noise")), Just(json!([14.6, -61.0])), Just(json!(1_795_253_400))],
            0..9,
        ), 0..4),
    ) {
        let data: Vec<Value> = fields.into_iter().map(|f| Value::Object(f.into_iter().collect())).collect();
        check(Format::Mapping, &serde_json::to_vec(&json!({"data": data})).unwrap())?;
    }
}

/// The samples themselves decode: the properties above start from valid payloads.
#[test]
fn samples_decode() {
    for format in [Format::Senml, Format::Ttn, Format::Chirpstack, Format::Mapping] {
        let bytes = serde_json::to_vec(&sample(format)).unwrap();
        let r = decode_all(&rule(format), TOPIC, &bytes, MAX).unwrap_or_else(|e| panic!("{format:?}: {e:?}"));
        assert_eq!(r.len(), 1);
    }
}
