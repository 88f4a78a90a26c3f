//! FROST-Server (OGC SensorThings API v1.1) on the test bench: `scripts/services/services.sh up frost`.
//!
//! Round trips through the real server and its PostGIS store: a deep insert of a Thing with its
//! Location and one Datastream (inline Sensor and ObservedProperty), read back with `$filter`
//! and `$expand`; an Observation posted to that Datastream and read back; bad bodies give 400.

use serde_json::{json, Value};
use smartcity_testbench::{bench_var, unique};
use std::time::Duration;

const OM_MEASUREMENT: &str = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement";
/// Fort-de-France, GeoJSON order: [longitude, latitude].
const FORT_DE_FRANCE: [f64; 2] = [-61.059, 14.616];

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(20)).build().expect("reqwest client")
}

fn base_url() -> String {
    bench_var("BENCH_FROST_URL").trim_end_matches('/').to_string()
}

/// An OData string literal: single quotes, a quote inside doubled.
fn odata_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// POST a JSON body, expect 201 Created, return the Location header.
async fn create(http: &reqwest::Client, url: &str, body: &Value) -> String {
    let resp = http.post(url).json(body).send().await.unwrap_or_else(|e| panic!("POST {url} failed: {e}"));
    let status = resp.status();
    let location = resp
        .headers()
        .get(reqwest::header::LOCATION)
        .map(|v| v.to_str().expect("Location header is ASCII").to_string());
    let text = resp.text().await.unwrap_or_default();
    assert_eq!(status, reqwest::StatusCode::CREATED, "POST {url}: unexpected status, body: {text}");
    location.unwrap_or_else(|| panic!("POST {url}: 201 without a Location header, body: {text}"))
}

async fn get_json(http: &reqwest::Client, url: &str, query: &[(&str, &str)]) -> Value {
    let resp = http.get(url).query(query).send().await.unwrap_or_else(|e| panic!("GET {url} failed: {e}"));
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    assert_eq!(status, reqwest::StatusCode::OK, "GET {url} {query:?}: unexpected status, body: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("GET {url}: body is not JSON ({e}): {text}"))
}

/// An ISO 8601 UTC instant without trailing zero fractions: FROST writes `12:00:00Z` for `12:00:00.000Z`.
fn instant(v: &Value) -> String {
    let s = v.as_str().unwrap_or_else(|| panic!("not a time string: {v}"));
    let body = s.strip_suffix('Z').unwrap_or_else(|| panic!("not a UTC instant: {s}"));
    match body.split_once('.') {
        Some((secs, frac)) if frac.trim_end_matches('0').is_empty() => format!("{secs}Z"),
        Some((secs, frac)) => format!("{secs}.{}Z", frac.trim_end_matches('0')),
        None => format!("{body}Z"),
    }
}

fn assert_close(actual: &Value, expected: f64, what: &str) {
    let a = actual.as_f64().unwrap_or_else(|| panic!("{what} is not a number: {actual}"));
    assert!((a - expected).abs() < 1e-9, "{what}: expected {expected}, got {a}");
}

#[tokio::test]
async fn service_document_lists_the_sensorthings_collections() {
    let http = client();
    let doc = get_json(&http, &base_url(), &[]).await;
    let names: Vec<&str> = doc["value"]
        .as_array()
        .unwrap_or_else(|| panic!("service document without `value`: {doc}"))
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    for expected in ["Things", "Locations", "Datastreams", "Sensors", "ObservedProperties", "Observations"] {
        assert!(names.contains(&expected), "{expected} missing from the service document: {names:?}");
    }
}

#[tokio::test]
async fn thing_deep_insert_filter_expand_and_observation_round_trip() {
    let http = client();
    let base = base_url();
    // A quote in the name exercises OData's doubled-quote escaping in $filter.
    let name = format!("{} Fort-de-France l'Hôtel de Ville", unique("bench-thing"));

    let thing = json!({
        "name": name,
        "description": "test bench weather station",
        "properties": { "district": "Centre", "bench": true },
        "Locations": [{
            "name": "Hôtel de Ville",
            "description": "Fort-de-France, Martinique",
            "encodingType": "application/geo+json",
            "location": { "type": "Point", "coordinates": FORT_DE_FRANCE }
        }],
        "Datastreams": [{
            "name": "air temperature",
            "description": "air temperature at 2 m",
            "observationType": OM_MEASUREMENT,
            "unitOfMeasurement": { "name": "degree Celsius", "symbol": "°C", "definition": "ucum:Cel" },
            "Sensor": {
                "name": "bench thermometer",
                "description": "a thermometer",
                "encodingType": "application/pdf",
                "metadata": "https://example.org/thermometer.pdf"
            },
            "ObservedProperty": {
                "name": "air temperature",
                "definition": "http://vocabs.lter-europe.net/EnvThes/22035",
                "description": "temperature of the air"
            }
        }]
    });
    let thing_url = create(&http, &format!("{base}/Things"), &thing).await;
    assert!(thing_url.starts_with(&format!("{base}/Things(")), "unexpected Location header: {thing_url}");

    // Read back by name, with the Location and the Datastream expanded.
    let filter = format!("name eq {}", odata_string(&name));
    let found = get_json(
        &http,
        &format!("{base}/Things"),
        &[("$filter", filter.as_str()), ("$expand", "Locations,Datastreams")],
    )
    .await;
    let things = found["value"].as_array().unwrap_or_else(|| panic!("no `value` array: {found}"));
    assert_eq!(things.len(), 1, "exactly one Thing named {name:?} expected: {found}");
    let t = &things[0];
    assert_eq!(t["name"], json!(name));
    assert_eq!(t["description"], json!("test bench weather station"));
    assert_eq!(t["properties"], json!({ "district": "Centre", "bench": true }));
    assert_eq!(t["@iot.selfLink"].as_str(), Some(thing_url.as_str()), "selfLink vs Location header");

    let locations = t["Locations"].as_array().unwrap_or_else(|| panic!("Locations not expanded: {t}"));
    assert_eq!(locations.len(), 1, "one Location expected: {t}");
    let loc = &locations[0];
    assert_eq!(loc["encodingType"], json!("application/geo+json"));
    assert_eq!(loc["name"], json!("Hôtel de Ville"));
    assert_eq!(loc["location"]["type"], json!("Point"));
    assert_close(&loc["location"]["coordinates"][0], FORT_DE_FRANCE[0], "longitude");
    assert_close(&loc["location"]["coordinates"][1], FORT_DE_FRANCE[1], "latitude");

    let streams = t["Datastreams"].as_array().unwrap_or_else(|| panic!("Datastreams not expanded: {t}"));
    assert_eq!(streams.len(), 1, "one Datastream expected: {t}");
    let ds = &streams[0];
    assert_eq!(ds["observationType"], json!(OM_MEASUREMENT));
    assert_eq!(ds["unitOfMeasurement"]["definition"], json!("ucum:Cel"));
    assert_eq!(ds["unitOfMeasurement"]["symbol"], json!("°C"));
    let ds_id = ds["@iot.id"].clone();
    assert!(ds_id.is_number() || ds_id.is_string(), "Datastream without @iot.id: {ds}");

    // The inline Sensor and ObservedProperty were stored and linked.
    let ds_url = ds["@iot.selfLink"].as_str().unwrap_or_else(|| panic!("no selfLink: {ds}")).to_string();
    let sensor = get_json(&http, &format!("{ds_url}/Sensor"), &[]).await;
    assert_eq!(sensor["name"], json!("bench thermometer"));
    let property = get_json(&http, &format!("{ds_url}/ObservedProperty"), &[]).await;
    assert_eq!(property["definition"], json!("http://vocabs.lter-europe.net/EnvThes/22035"));

    // An Observation on that Datastream, read back through its Location header and the Datastream.
    let observation = json!({
        "phenomenonTime": "2026-03-14T12:00:00.250Z",
        "result": 27.25,
        "parameters": { "quality": "good" },
        "Datastream": { "@iot.id": ds_id }
    });
    let obs_url = create(&http, &format!("{base}/Observations"), &observation).await;
    let obs = get_json(&http, &obs_url, &[]).await;
    assert_close(&obs["result"], 27.25, "Observation result");
    assert_eq!(instant(&obs["phenomenonTime"]), "2026-03-14T12:00:00.25Z", "phenomenonTime (ms kept)");
    assert_eq!(obs["parameters"], json!({ "quality": "good" }));
    let listed = get_json(&http, &format!("{ds_url}/Observations"), &[("$select", "result,phenomenonTime")]).await;
    let rows = listed["value"].as_array().unwrap_or_else(|| panic!("no `value` array: {listed}"));
    assert_eq!(rows.len(), 1, "one Observation on the Datastream expected: {listed}");
    assert_close(&rows[0]["result"], 27.25, "listed result");
    assert_eq!(instant(&rows[0]["phenomenonTime"]), "2026-03-14T12:00:00.25Z", "listed phenomenonTime");
    // FROST derived the FeatureOfInterest from the Thing's Location (a PostGIS geometry).
    let foi = get_json(&http, &format!("{obs_url}/FeatureOfInterest"), &[]).await;
    assert_close(&foi["feature"]["coordinates"][0], FORT_DE_FRANCE[0], "feature longitude");
    assert_close(&foi["feature"]["coordinates"][1], FORT_DE_FRANCE[1], "feature latitude");
}

#[tokio::test]
async fn invalid_bodies_are_rejected_with_400() {
    let http = client();
    let base = base_url();
    let cases = [
        ("malformed JSON", "{\"name\": \"x\", ".to_string()),
        (
            "Datastream without unitOfMeasurement, Sensor and ObservedProperty",
            json!({ "name": unique("bad-ds"), "description": "d", "observationType": OM_MEASUREMENT }).to_string(),
        ),
        (
            "Observation linked to no Datastream",
            json!({ "phenomenonTime": "2026-03-14T12:00:00Z", "result": 1 }).to_string(),
        ),
    ];
    for (what, body) in cases {
        let collection = if what.starts_with("Observation") {
            "Observations"
        } else if what.starts_with("Datastream") {
            "Datastreams"
        } else {
            "Things"
        };
        let resp = http
            .post(format!("{base}/{collection}"))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {collection} ({what}) failed: {e}"));
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        assert_eq!(status, reqwest::StatusCode::BAD_REQUEST, "{what}: expected 400, body: {text}");
    }
}
