//! The malformed-payload corpus (`smartcity_testbench::malformed`) through the gateway's decoder:
//! every case is refused, with the reason the corpus gives, for a valid reading of every kind.

use chrono::{TimeZone, Utc};
use smartcity_gateway::decode::{decode, TopicRule, REASONS};
use smartcity_model::codec::json;
use smartcity_model::{dynamics::Simulation, Catalogue, Reading};
use smartcity_testbench::malformed::{corpus, DEFAULT_MAX_MESSAGE_BYTES};
use std::collections::BTreeSet;

const PREFIX: &str = "city/sensors";

/// One valid reading per sensor of the default catalogue (all six kinds).
fn valid_readings() -> Vec<Reading> {
    let cat = Catalogue::default_ten();
    let t = Utc.with_ymd_and_hms(2026, 11, 21, 11, 30, 0).unwrap();
    cat.sensors().iter().enumerate().map(|(i, s)| Simulation::new(7).reading(s, t, 40 + i as u64)).collect()
}

fn rule() -> TopicRule {
    TopicRule::Mqtt { prefix: PREFIX.into() }
}

fn topic(r: &Reading) -> String {
    format!("{PREFIX}/{}/{}", r.kind(), r.sensor_id)
}

#[test]
fn corpus_limit_is_the_gateway_default() {
    let default = smartcity_gateway::config::WriterConfig::default().max_message_bytes;
    assert_eq!(DEFAULT_MAX_MESSAGE_BYTES, default, "the corpus's size cases are built against the default limit");
}

#[test]
fn every_case_is_refused_with_its_reason() {
    let readings = valid_readings();
    let kinds: BTreeSet<_> = readings.iter().map(Reading::kind).collect();
    assert_eq!(kinds.len(), 6);
    let mut wrong = Vec::new();
    for valid in &readings {
        let topic = topic(valid);
        let bytes = json::encode(valid);
        assert_eq!(decode(&rule(), &topic, &bytes, DEFAULT_MAX_MESSAGE_BYTES).as_ref(), Ok(valid), "{topic}");
        for case in corpus(valid) {
            assert!(REASONS.contains(&case.reason), "{}: `{}` is not a reason", case.name, case.reason);
            match decode(&rule(), &topic, &case.payload, DEFAULT_MAX_MESSAGE_BYTES) {
                Err(refusal) if refusal.reason == case.reason => {
                    assert!(!refusal.message.is_empty(), "{}: empty message", case.name)
                }
                Err(refusal) => wrong.push(format!(
                    "{} ({}): expected `{}`, got `{}`: {}",
                    case.name,
                    valid.kind(),
                    case.reason,
                    refusal.reason,
                    refusal.message
                )),
                Ok(r) => wrong.push(format!("{} ({}): accepted as {r:?}", case.name, valid.kind())),
            }
        }
    }
    assert!(wrong.is_empty(), "{} case(s) not refused as expected:\n{}", wrong.len(), wrong.join("\n"));
}

#[test]
fn corpus_is_broad_and_well_named() {
    let valid = &valid_readings()[0];
    let cases = corpus(valid);
    assert!(cases.len() >= 25, "only {} cases", cases.len());
    let names: BTreeSet<_> = cases.iter().map(|c| c.name).collect();
    assert_eq!(names.len(), cases.len(), "duplicate case names");
    for name in &names {
        assert!(
            name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'),
            "`{name}`: names are kebab-case (they label dead letters and test output)"
        );
    }
    // Every reason a payload alone can earn is covered.
    let reasons: BTreeSet<_> = cases.iter().map(|c| c.reason).collect();
    assert_eq!(reasons, REASONS.into_iter().collect(), "reasons covered");
    // Every named requirement of the corpus is there.
    for required in [
        "not-json",
        "empty",
        "truncated-half",
        "json-array",
        "json-string",
        "seq-string",
        "lat-string",
        "values-field-wrong-type",
        "lat-nan-literal",
        "lon-infinity-literal",
        "lat-1e999",
        "missing-id",
        "missing-type",
        "missing-values",
        "missing-observedAt",
        "missing-v",
        "unknown-kind",
        "unknown-version",
        "observedAt-not-rfc3339",
        "value-negative",
        "lat-91",
        "spots-over-total",
        "size-10MiB",
        "invalid-utf8-in-id",
        "id-with-comma",
        "id-with-space",
        "id-with-equals",
        "id-with-quote",
        "id-with-newline",
        "id-with-slash",
        "id-with-hash",
        "id-with-plus",
    ] {
        assert!(names.contains(required), "missing case `{required}`");
    }
    let big = cases.iter().find(|c| c.name == "size-10MiB").unwrap();
    assert_eq!(big.payload.len(), 10 << 20);
    let edge = cases.iter().find(|c| c.name == "size-limit-plus-one").unwrap();
    assert_eq!(edge.payload.len(), DEFAULT_MAX_MESSAGE_BYTES + 1);
}

/// The size cases are refused for their size alone: one byte less and they decode.
#[test]
fn size_limit_is_exact() {
    let valid = &valid_readings()[0];
    let edge = corpus(valid).into_iter().find(|c| c.name == "size-limit-plus-one").unwrap().payload;
    // Drop one padding space (the padding is the only run of spaces).
    let at = edge.windows(2).position(|w| w == b"  ").expect("padding");
    let fits: Vec<u8> = [&edge[..at], &edge[at + 1..]].concat();
    assert_eq!(fits.len(), DEFAULT_MAX_MESSAGE_BYTES);
    assert_eq!(decode(&rule(), &topic(valid), &fits, DEFAULT_MAX_MESSAGE_BYTES).as_ref(), Ok(valid));
}

/// A hint names the id as the payload carries it: a test can find the case's dead letter by it.
#[test]
fn hints_are_in_the_payloads() {
    let valid = &valid_readings()[0];
    let cases = corpus(valid);
    let mut with_hint = 0;
    for case in &cases {
        let Some(hint) = &case.sensor_id_hint else { continue };
        with_hint += 1;
        let quoted = serde_json::to_string(hint).unwrap();
        let escaped = &quoted.as_bytes()[1..quoted.len() - 1];
        assert!(
            escaped.is_empty() || case.payload.windows(escaped.len()).any(|w| w == escaped),
            "{}: hint `{hint}` not in the payload",
            case.name
        );
    }
    assert!(with_hint >= 20, "most cases keep an id ({with_hint})");
    let by_name = |n: &str| cases.iter().find(|c| c.name == n).unwrap().sensor_id_hint.clone();
    assert_eq!(by_name("not-json"), None);
    assert_eq!(by_name("missing-id"), None);
    assert_eq!(by_name("invalid-utf8-in-id"), None);
    assert_eq!(by_name("lat-91").as_deref(), Some(valid.sensor_id.as_str()));
    assert_eq!(by_name("id-with-comma"), Some(format!("{},x", valid.sensor_id)));
}
