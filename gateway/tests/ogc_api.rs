//! The gateway's OGC API – Features read by GDAL's own client (`ogrinfo` with its OAPIF driver, the
//! code QGIS uses), end to end in one process: simulator (embedded broker) → gateway → `/ogc`.
//! Needs Debian's `gdal-bin` (scripts/setup.sh installs it).

mod demo;

use demo::start_demo;
use std::process::Command;
use std::time::{Duration, Instant};

async fn get(url: &str) -> (u16, String, serde_json::Value) {
    let res = reqwest::get(url).await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = res.status().as_u16();
    let media_type = res.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let body = res.text().await.unwrap();
    let doc = serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {url}: not JSON ({e}): {body}"));
    (status, media_type, doc)
}

/// The sensors' features, once `n` sensors have reported.
async fn wait_for_sensors(http: &str, n: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(res) = reqwest::get(format!("{http}/ogc/collections/sensors/items")).await {
            let doc: serde_json::Value = res.json().await.unwrap_or_default();
            if doc["numberMatched"].as_u64().unwrap_or(0) >= n as u64 {
                return doc["features"].as_array().unwrap().clone();
            }
        }
        assert!(Instant::now() < deadline, "fewer than {n} sensors after 20 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs `ogrinfo` (GDAL's OAPIF client) and returns what it printed; fails loudly without GDAL.
async fn ogrinfo(args: Vec<String>) -> String {
    tokio::task::spawn_blocking(move || {
        let out = Command::new("ogrinfo")
            .args(&args)
            // Loopback never goes through a proxy that the environment may name.
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost")
            .env("GDAL_HTTP_TIMEOUT", "30")
            .output()
            .unwrap_or_else(|e| {
                panic!("ogrinfo (GDAL's OGC API client) cannot run: {e}. Install Debian's gdal-bin (scripts/setup.sh).")
            });
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "ogrinfo {args:?} failed:\n{stdout}\n{stderr}");
        assert!(!stderr.contains("ERROR"), "ogrinfo {args:?} reported errors:\n{stderr}");
        println!("$ ogrinfo {}\n{stdout}", args.join(" "));
        stdout
    })
    .await
    .unwrap()
}

fn feature_count(ogrinfo_summary: &str) -> u64 {
    let line = ogrinfo_summary.lines().find_map(|l| l.strip_prefix("Feature Count: "));
    line.and_then(|n| n.trim().parse().ok()).unwrap_or_else(|| panic!("no Feature Count in:\n{ogrinfo_summary}"))
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|a| a.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gdal_reads_the_sensors_through_ogc_api_features() {
    let demo = start_demo("ogc").await;
    let features = wait_for_sensors(&demo.http, 10).await;
    assert_eq!(features.len(), 10);
    let source = format!("OAPIF:{}/ogc", demo.http);

    // The whole layer, summarised: ten sensors, their properties as typed fields.
    let summary = ogrinfo(args(&["-ro", "-al", "-so", &source])).await;
    assert!(summary.contains("Layer name: sensors"), "{summary}");
    assert!(summary.contains("Geometry: Point"), "{summary}");
    assert_eq!(feature_count(&summary), 10, "{summary}");
    for field in ["kind: String", "commune: String", "observedAt: DateTime", "seq: Integer", "LAeq: Real"] {
        assert!(summary.contains(field), "field `{field}` in:\n{summary}");
    }

    // Every feature, fetched three at a time: GDAL follows our `next` links to the end.
    let all = ogrinfo(args(&["-ro", "-al", "-oo", "PAGE_SIZE=3", &source, "sensors"])).await;
    assert_eq!(all.matches("OGRFeature(sensors):").count(), 10, "{all}");
    // The fields come from our JSON Schema, not only from the first page (three sensors).
    for field in ["LAeq: Real", "congested: Integer(Boolean)", "temperature: Real", "intensity: Integer"] {
        assert!(all.contains(field), "field `{field}` in:\n{all}");
    }
    for f in &features {
        let id = f["id"].as_str().unwrap();
        assert!(all.contains(&format!("id (String) = {id}")), "{id} in:\n{all}");
    }
    assert!(all.contains("kind (String) = air-quality") && all.contains("commune (String) = Fort-de-France"), "{all}");

    // A spatial filter (sent to the server as `bbox`): only the sensors in central Fort-de-France.
    let (x0, y0, x1, y1) = (-61.08, 14.59, -61.04, 14.63);
    let inside = features
        .iter()
        .filter(|f| {
            let c = &f["geometry"]["coordinates"];
            let (x, y) = (c[0].as_f64().unwrap(), c[1].as_f64().unwrap());
            (x0..=x1).contains(&x) && (y0..=y1).contains(&y)
        })
        .count();
    assert!((1..10).contains(&inside), "the box holds some sensors but not all: {inside}");
    let spat = [x0, y0, x1, y1].map(|v| v.to_string());
    let mut list = args(&["-ro", "-al", "-spat"]);
    list.extend(spat.iter().cloned());
    list.extend([source.clone(), "sensors".to_string()]);
    let filtered = ogrinfo(list).await;
    assert_eq!(filtered.matches("OGRFeature(sensors):").count(), inside, "{filtered}");
    let mut list = args(&["-ro", "-al", "-so", "-spat"]);
    list.extend(spat.iter().cloned());
    list.push(source.clone());
    assert_eq!(feature_count(&ogrinfo(list).await), inside as u64, "the count under a spatial filter");

    demo.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ogc_api_documents_pages_and_errors() {
    let demo = start_demo("ogc").await;
    wait_for_sensors(&demo.http, 10).await;
    let ogc = format!("{}/ogc", demo.http);

    let (status, media_type, landing) = get(&ogc).await;
    assert_eq!((status, media_type.as_str()), (200, "application/json"));
    let rels: Vec<&str> = landing["links"].as_array().unwrap().iter().map(|l| l["rel"].as_str().unwrap()).collect();
    assert!(rels.contains(&"conformance") && rels.contains(&"data"), "{landing}");
    let (_, _, conformance) = get(&format!("{ogc}/conformance")).await;
    assert!(conformance["conformsTo"].to_string().contains("ogcapi-features-1/1.0/conf/geojson"));
    let (status, media_type, api) = get(&format!("{ogc}/api")).await;
    assert_eq!((status, media_type.as_str()), (200, "application/vnd.oai.openapi+json;version=3.0"));
    assert_eq!(api["servers"][0]["url"], ogc.as_str());
    let (status, media_type, schema) = get(&format!("{ogc}/collections/sensors/schema")).await;
    assert_eq!((status, media_type.as_str()), (200, "application/schema+json"));
    assert_eq!(schema["properties"]["properties"]["properties"]["pm10"]["type"], "number");
    let (_, _, collections) = get(&format!("{ogc}/collections?f=json")).await;
    assert_eq!(collections["collections"][0]["id"], "sensors");
    let (_, _, collection) = get(&format!("{ogc}/collections/sensors?f=html")).await;
    assert_eq!(collection["extent"]["spatial"]["bbox"][0], serde_json::json!([-61.25, 14.38, -60.80, 14.89]));

    // Paging: absolute links from the Host we used, and every sensor exactly once across the pages.
    let mut url = format!("{ogc}/collections/sensors/items?limit=4");
    let mut ids = Vec::new();
    let mut pages = 0;
    while pages < 10 {
        let (status, media_type, page) = get(&url).await;
        assert_eq!((status, media_type.as_str()), (200, "application/geo+json"));
        assert_eq!(page["type"], "FeatureCollection");
        assert_eq!(page["numberMatched"], 10);
        assert!(page["timeStamp"].is_string());
        let features = page["features"].as_array().unwrap();
        assert_eq!(page["numberReturned"].as_u64(), Some(features.len() as u64));
        ids.extend(features.iter().map(|f| f["id"].as_str().unwrap().to_string()));
        pages += 1;
        let next = page["links"].as_array().unwrap().iter().find(|l| l["rel"] == "next").map(|l| l["href"].clone());
        match next {
            Some(href) => {
                url = href.as_str().unwrap().to_string();
                assert!(url.starts_with(&format!("{ogc}/collections/sensors/items?")), "{url}");
            }
            None => break,
        }
    }
    assert_eq!(pages, 3, "10 sensors at 4 a page");
    let unique: std::collections::BTreeSet<_> = ids.iter().collect();
    assert_eq!((ids.len(), unique.len()), (10, 10), "{ids:?}");

    // One sensor, with its latest values flattened into the properties.
    let (status, media_type, one) = get(&format!("{ogc}/collections/sensors/items/noise-fort-de-france-01")).await;
    assert_eq!((status, media_type.as_str()), (200, "application/geo+json"));
    assert_eq!(one["type"], "Feature");
    assert_eq!(one["properties"]["kind"], "noise");
    assert!(one["properties"]["LAeq"].is_number(), "{one}");

    // Errors: JSON with a code and a description that says what is wrong.
    for (path, status, says) in [
        ("/collections/sensors/items/no-such-sensor", 404, "no sensor `no-such-sensor`"),
        ("/collections/cars/items", 404, "no collection `cars`"),
        ("/collections/sensors/items?bbox=-61,14.5,-60.9", 400, "bbox `-61,14.5,-60.9` has 3 numbers"),
        ("/collections/sensors/items?bbox=-61,15,-60.9,14", 400, "above maxLat"),
        ("/collections/sensors/items?limit=0", 400, "limit `0`"),
        ("/collections/sensors/items?limit=many", 400, "limit `many`"),
        ("/collections/sensors/items?f=xml", 400, "JSON only"),
    ] {
        let (got, media_type, doc) = get(&format!("{ogc}{path}")).await;
        assert_eq!((got, media_type.as_str()), (status, "application/json"), "{path}: {doc}");
        let description = doc["description"].as_str().unwrap_or_default();
        assert!(description.contains(says), "{path}: {doc}");
        assert!(doc["code"].is_string(), "{path}: {doc}");
    }
    demo.stop.cancel();
}
