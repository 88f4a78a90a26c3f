//! Property tests of the gateway's decoder (`smartcity_gateway::decode::decode`):
//! (a) arbitrary bytes on arbitrary topics, under arbitrary topic rules, never panic it;
//! (b) valid readings with bytes flipped, inserted or deleted never panic it, and each refusal
//!     carries one of `REASONS`;
//! (c) whatever it accepts (mutated readings, and readings whose numbers and times are written in
//!     every form JSON and RFC 3339 allow) encodes again and decodes to the same `Reading`, at the
//!     wire's precision: `observedAt` is written with milliseconds, while the decoder keeps what it
//!     is given (a `.0004Z` time decodes to 400 µs, and encodes as `.000Z`). So the re-decoded time
//!     is the first one cut to the millisecond. Floats come back bit for bit (serde_json's
//!     `float_roundtrip` feature; `floats_round_trip_exactly` below is the case that needed it).
//!
//! About 2,000 cases in all, a few seconds. For a longer run, every property takes the number of
//! cases from `PROPTEST_CASES`:
//! `PROPTEST_CASES=100000 cargo test --release -p smartcity-gateway --test decode_fuzz`.

use chrono::{SubsecRound, TimeZone, Utc};
use proptest::prelude::*;
use smartcity_gateway::decode::{decode, Refusal, TopicRule, REASONS};
use smartcity_model::codec::json;
use smartcity_model::{dynamics::Simulation, Catalogue, Reading};

const MAX: usize = 65_536;
const PREFIX: &str = "city/sensors";

/// `default` cases, unless `PROPTEST_CASES` asks for another number.
fn cases(default: u32) -> ProptestConfig {
    if std::env::var_os("PROPTEST_CASES").is_some() {
        ProptestConfig::default() // reads PROPTEST_CASES
    } else {
        ProptestConfig::with_cases(default)
    }
}

/// A valid reading of one of the default catalogue's ten sensors (all six kinds).
fn valid_reading() -> impl Strategy<Value = Reading> {
    (0..10usize, 0..400_000_000i64, any::<u64>(), any::<u64>()).prop_map(|(i, minutes, seq, seed)| {
        let cat = Catalogue::default_ten();
        let t = Utc.timestamp_opt(minutes * 60, 0).unwrap();
        Simulation::new(seed).reading(&cat.sensors()[i], t, seq)
    })
}

fn topic_of(r: &Reading) -> String {
    format!("{PREFIX}/{}/{}", r.kind(), r.sensor_id)
}

fn mqtt_rule() -> TopicRule {
    TopicRule::Mqtt { prefix: PREFIX.into() }
}

/// Any rule: MQTT with an odd prefix, Kafka/Pulsar templates with or without `{kind}`.
fn any_rule() -> impl Strategy<Value = TopicRule> {
    prop_oneof![
        Just(mqtt_rule()),
        any::<String>().prop_map(|prefix| TopicRule::Mqtt { prefix }),
        (any::<String>(), any::<String>(), any::<bool>())
            .prop_map(|(a, b, pulsar_names)| TopicRule::Template { template: format!("{a}{{kind}}{b}"), pulsar_names }),
        (any::<String>(), any::<bool>())
            .prop_map(|(template, pulsar_names)| TopicRule::Template { template, pulsar_names }),
    ]
}

/// Topics: anything, things that look like ours, and partitions of Pulsar topics.
fn any_topic() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "city/sensors(/[a-z-]{0,12}){0,3}(/[^/]{0,20})?",
        "(persistent://public/default/smartcity-)?[a-z]{0,12}(-partition-[0-9]{0,3})?",
    ]
}

/// One edit of a payload: (0 flip | 1 insert | 2 delete, position, byte). Bytes are half the time
/// JSON's own (digits, quotes, brackets, escapes), which reach deeper than random ones.
fn edit() -> impl Strategy<Value = (u8, usize, u8)> {
    let byte = prop_oneof![any::<u8>(), proptest::sample::select(b"0123456789.-+eE\"{}[],:\\ nutfl/Z".to_vec())];
    (0..3u8, any::<usize>(), byte)
}

fn mutate(mut bytes: Vec<u8>, edits: &[(u8, usize, u8)]) -> Vec<u8> {
    for &(op, pos, byte) in edits {
        let len = bytes.len();
        match op {
            0 if len > 0 => bytes[pos % len] = byte,
            1 => bytes.insert(pos % (len + 1), byte),
            _ if len > 0 => {
                bytes.remove(pos % len);
            }
            _ => {}
        }
    }
    bytes
}

/// Refusals name a known reason and say something; an accepted reading survives a re-encoding.
fn check(outcome: Result<Reading, Refusal>, rule: &TopicRule, topic: &str) -> Result<(), TestCaseError> {
    match outcome {
        Err(refusal) => {
            prop_assert!(REASONS.contains(&refusal.reason), "unknown reason {:?}", refusal);
            prop_assert!(!refusal.message.is_empty());
        }
        Ok(reading) => {
            let again = json::encode(&reading);
            let back = decode(rule, topic, &again, MAX);
            prop_assert!(back.is_ok(), "{:?} re-encoded as {}", back, String::from_utf8_lossy(&again));
            let back = back.unwrap();
            let expected = Reading { observed_at: reading.observed_at.trunc_subsecs(3), ..reading };
            prop_assert!(
                back == expected && json_value(&back) == json_value(&expected),
                "decoded {:?}\nre-encoded as {}\nre-decoded {:?}",
                expected,
                String::from_utf8_lossy(&again),
                back
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases(600))]

    /// (a) Arbitrary bytes or a valid reading, on arbitrary topics and rules: no panic, ever.
    #[test]
    fn arbitrary_input_never_panics(
        rule in any_rule(),
        topic in any_topic(),
        payload in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..4096),
            valid_reading().prop_map(|r| json::encode(&r)),
        ],
        max in prop_oneof![Just(MAX), 0..512usize],
    ) {
        let outcome = decode(&rule, &topic, &payload, max);
        if let Err(refusal) = &outcome {
            prop_assert!(REASONS.contains(&refusal.reason), "unknown reason {:?}", refusal);
        }
    }
}

proptest! {
    #![proptest_config(cases(800))]

    /// (b) + (c) Valid readings with up to 6 byte edits, on their own topic.
    #[test]
    fn mutated_readings_are_refused_with_a_reason_or_round_trip(
        reading in valid_reading(),
        edits in proptest::collection::vec(edit(), 1..6),
    ) {
        let topic = topic_of(&reading);
        let payload = mutate(json::encode(&reading), &edits);
        check(decode(&mqtt_rule(), &topic, &payload, MAX), &mqtt_rule(), &topic)?;
    }
}

proptest! {
    #![proptest_config(cases(600))]

    /// (c) Valid readings whose coordinates, sequence number and time are written in other valid
    /// forms (any float in range, exponents, offsets, 0-9 fraction digits): once accepted, a
    /// re-encoding decodes to the same reading.
    #[test]
    fn accepted_readings_round_trip(
        reading in valid_reading(),
        lat in -90.0f64..=90.0,
        lon in prop_oneof![-180.0f64..=180.0, Just(-0.0), Just(180.0)],
        exponent in any::<bool>(),
        seq in any::<u64>(),
        time in (0i64..4_102_444_800, 0u32..1_000_000_000, 0usize..10, -1439i32..=1439),
    ) {
        let (secs, nanos, digits, offset_minutes) = time;
        let mut doc: serde_json::Value = serde_json::from_slice(&json::encode(&reading)).unwrap();
        doc["seq"] = seq.into();
        doc["observedAt"] = rfc3339(secs, nanos, digits, offset_minutes).into();
        let mut text = serde_json::to_string(&doc).unwrap();
        // Coordinates written by hand: serde_json would always print the shortest form.
        let (lat_text, lon_text) = if exponent {
            (format!("{lat:e}"), format!("{lon:E}"))
        } else {
            (format!("{lat}"), format!("{lon:.20}"))
        };
        text = text.replace(&format!("\"lat\":{}", doc["lat"]), &format!("\"lat\":{lat_text}"));
        text = text.replace(&format!("\"lon\":{}", doc["lon"]), &format!("\"lon\":{lon_text}"));
        let topic = topic_of(&reading);
        let outcome = decode(&mqtt_rule(), &topic, text.as_bytes(), MAX);
        prop_assert!(outcome.is_ok(), "refused {text}: {:?}", outcome);
        check(outcome, &mqtt_rule(), &topic)?;
    }
}

/// The reading as JSON values (numbers as written by the encoder).
fn json_value(r: &Reading) -> serde_json::Value {
    serde_json::from_slice(&json::encode(r)).expect("the encoder writes JSON")
}

/// The case that showed it: serde_json's default float parsing is best-effort, and read the shortest
/// form of -92.28180323366807 (what the encoder writes) one ulp away, so a reading did not survive
/// encode + decode bit for bit. Its `float_roundtrip` feature (workspace Cargo.toml) makes parsing
/// exact.
#[test]
fn floats_round_trip_exactly() {
    let text = "-92.28180323366807";
    let exact: f64 = text.parse().unwrap();
    let reading =
        Reading { lon: exact, ..Simulation::new(1).reading(&Catalogue::default_ten().sensors()[0], Utc::now(), 1) };
    let bytes = json::encode(&reading);
    assert!(String::from_utf8_lossy(&bytes).contains(text));
    let back = decode(&mqtt_rule(), &topic_of(&reading), &bytes, MAX).unwrap();
    assert_eq!(back.lon.to_bits(), exact.to_bits(), "{text} read as {}", back.lon);
}

/// An RFC 3339 time with `digits` fraction digits and a `±hh:mm` offset (`Z` for 0).
fn rfc3339(secs: i64, nanos: u32, digits: usize, offset_minutes: i32) -> String {
    let local = Utc.timestamp_opt(secs + offset_minutes as i64 * 60, 0).unwrap();
    let mut s = local.format("%Y-%m-%dT%H:%M:%S").to_string();
    if digits > 0 {
        s.push('.');
        s.push_str(&format!("{nanos:09}")[..digits]);
    }
    if offset_minutes == 0 {
        s.push('Z');
    } else {
        let sign = if offset_minutes < 0 { '-' } else { '+' };
        let m = offset_minutes.abs();
        s.push_str(&format!("{sign}{:02}:{:02}", m / 60, m % 60));
    }
    s
}
