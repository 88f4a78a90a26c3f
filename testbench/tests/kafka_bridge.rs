//! Smoke test of the bench Kafka REST proxy (scripts/services/kafka-bridge.sh: a Confluent-v2-subset
//! stand-in in front of the bench Kafka, see that script for why) with reqwest: produce keyed JSON
//! values in the binary embedded format, read them back through a consumer instance, commit, and delete it.
//!
//! Start it first: `scripts/services/services.sh up kafka-bridge` (brings Kafka up too).

use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use smartcity_testbench::{bench_var, unique};

const BINARY: &str = "application/vnd.kafka.binary.v2+json";
const V2: &str = "application/vnd.kafka.v2+json";
const MESSAGES: usize = 12;

fn client() -> Client {
    Client::builder().timeout(Duration::from_secs(30)).build().expect("reqwest client")
}

async fn json_of(resp: reqwest::Response, what: &str) -> Value {
    let status = resp.status();
    let text = resp.text().await.unwrap_or_else(|e| panic!("{what}: reading body failed: {e}"));
    assert!(status.is_success(), "{what}: HTTP {status}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: body is not JSON ({e}): {text}"))
}

#[tokio::test]
async fn binary_produce_consume_round_trip() {
    let base = bench_var("BENCH_KAFKA_REST_URL");
    let http = client();
    let topic = unique("bench-rest");
    let group = unique("bench-rest-group");

    // Produce: keys and values base64-encoded, values are JSON documents.
    let expected: Vec<(String, Value)> = (0..MESSAGES)
        .map(|i| {
            (format!("sensor-{}", i % 3), json!({"topic": topic, "seq": i, "no2": 10.0 + i as f64, "unit": "µg/m³"}))
        })
        .collect();
    let records: Vec<Value> = expected
        .iter()
        .map(|(k, v)| json!({"key": B64.encode(k), "value": B64.encode(serde_json::to_vec(v).unwrap())}))
        .collect();
    let resp = http
        .post(format!("{base}/topics/{topic}"))
        .header("Content-Type", BINARY)
        .header("Accept", V2)
        .json(&json!({ "records": records }))
        .send()
        .await
        .expect("POST /topics");
    let produced = json_of(resp, "produce").await;
    let offsets = produced["offsets"].as_array().expect("offsets array");
    assert_eq!(offsets.len(), MESSAGES, "one offset per record: {produced}");
    for (i, o) in offsets.iter().enumerate() {
        assert!(o["error_code"].is_null(), "record {i} failed: {o}");
        assert_eq!(o["partition"], 0, "auto-created topic has one partition: {o}");
        assert_eq!(o["offset"], i as u64, "offsets of a fresh topic: {o}");
    }

    // Consumer instance, binary format, from the beginning, no auto commit.
    let resp = http
        .post(format!("{base}/consumers/{group}"))
        .header("Content-Type", V2)
        .json(
            &json!({"name": "c1", "format": "binary", "auto.offset.reset": "earliest", "auto.commit.enable": "false"}),
        )
        .send()
        .await
        .expect("POST /consumers");
    let created = json_of(resp, "create consumer").await;
    assert_eq!(created["instance_id"], "c1");
    let instance = created["base_uri"].as_str().expect("base_uri").to_string();
    assert!(instance.ends_with(&format!("/consumers/{group}/instances/c1")), "base_uri: {instance}");

    let resp = http
        .post(format!("{instance}/subscription"))
        .header("Content-Type", V2)
        .json(&json!({"topics": [topic]}))
        .send()
        .await
        .expect("POST subscription");
    assert_eq!(resp.status(), StatusCode::NO_CONTENT, "subscribe: {:?}", resp.text().await);

    // Poll until every record came back (the first polls may be empty while the group forms).
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut got: Vec<(String, Value, u64)> = Vec::new();
    while got.len() < MESSAGES {
        assert!(Instant::now() < deadline, "only {} of {MESSAGES} records read back within 60 s", got.len());
        let resp = http
            .get(format!("{instance}/records?timeout=2000&max_bytes=1000000"))
            .header("Accept", BINARY)
            .send()
            .await
            .expect("GET records");
        for r in json_of(resp, "records").await.as_array().expect("records array") {
            assert_eq!(r["topic"], topic.as_str());
            let key = String::from_utf8(B64.decode(r["key"].as_str().expect("key")).expect("base64 key")).unwrap();
            let value: Value =
                serde_json::from_slice(&B64.decode(r["value"].as_str().expect("value")).expect("base64 value"))
                    .expect("value is JSON");
            got.push((key, value, r["offset"].as_u64().expect("offset")));
        }
    }
    let offsets_read: Vec<u64> = got.iter().map(|g| g.2).collect();
    assert_eq!(offsets_read, (0..MESSAGES as u64).collect::<Vec<_>>(), "offsets in order, no duplicates");
    let got: Vec<(String, Value)> = got.into_iter().map(|(k, v, _)| (k, v)).collect();
    assert_eq!(got, expected, "round trip through the REST proxy changed the records");

    // Commit what was read (explicit offsets: the next offset to read), then nothing more is pending.
    let resp = http
        .post(format!("{instance}/offsets"))
        .header("Content-Type", V2)
        .json(&json!({"offsets": [{"topic": topic, "partition": 0, "offset": MESSAGES}]}))
        .send()
        .await
        .expect("POST offsets");
    assert_eq!(resp.status(), StatusCode::NO_CONTENT, "commit: {:?}", resp.text().await);
    let resp = http
        .get(format!("{instance}/records?timeout=1000"))
        .header("Accept", BINARY)
        .send()
        .await
        .expect("GET records");
    assert_eq!(json_of(resp, "records after the last").await, json!([]), "no extra records");

    // Delete the instance; it is gone afterwards.
    let resp = http.delete(&instance).header("Content-Type", V2).send().await.expect("DELETE consumer");
    assert_eq!(resp.status(), StatusCode::NO_CONTENT, "delete: {:?}", resp.text().await);
    let resp = http.get(format!("{instance}/records")).header("Accept", BINARY).send().await.expect("GET");
    assert_eq!(resp.status(), StatusCode::NOT_FOUND, "deleted consumer instance still answers");
    let err = json_of_error(resp).await;
    assert_eq!(err["error_code"], 40403, "Confluent-style error body: {err}");
}

async fn json_of_error(resp: reqwest::Response) -> Value {
    let text = resp.text().await.expect("error body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("error body is not JSON ({e}): {text}"))
}
