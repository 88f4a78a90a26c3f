//! Smoke test of InfluxDB 2.7's HTTP API v2 (reqwest) against the bench's influxd (scripts/services/influxdb.sh):
//! line-protocol writes into org/bucket with the setup token, a Flux query reading them back (CSV), and the
//! two error answers the gateway must handle: a wrong token (401) and a malformed line (400 naming the line).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::{Client, StatusCode};
use smartcity_testbench::{bench_var, unique};

struct Influx {
    http: Client,
    url: String,
    org: String,
    bucket: String,
    token: String,
}

impl Influx {
    fn from_bench() -> Self {
        Influx {
            http: Client::builder().timeout(Duration::from_secs(20)).build().expect("http client"),
            url: bench_var("BENCH_INFLUX_URL"),
            org: bench_var("BENCH_INFLUX_ORG"),
            bucket: bench_var("BENCH_INFLUX_BUCKET"),
            token: bench_var("BENCH_INFLUX_TOKEN"),
        }
    }

    /// POST /api/v2/write with millisecond timestamps; returns the status and the body.
    async fn write(&self, token: &str, lines: &str) -> (StatusCode, String) {
        let resp = self
            .http
            .post(format!("{}/api/v2/write", self.url))
            .query(&[("org", self.org.as_str()), ("bucket", self.bucket.as_str()), ("precision", "ms")])
            .header("Authorization", format!("Token {token}"))
            .header("Content-Type", "text/plain; charset=utf-8")
            .body(lines.to_string())
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {}/api/v2/write: {e}", self.url));
        let status = resp.status();
        (status, resp.text().await.unwrap_or_default())
    }

    /// POST /api/v2/query (Flux), CSV with one header row per table and no annotations.
    async fn query_csv(&self, flux: &str) -> String {
        let resp = self
            .http
            .post(format!("{}/api/v2/query", self.url))
            .query(&[("org", self.org.as_str())])
            .header("Authorization", format!("Token {}", self.token))
            .header("Accept", "application/csv")
            .json(&serde_json::json!({
                "query": flux,
                "type": "flux",
                "dialect": { "header": true, "annotations": [] }
            }))
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {}/api/v2/query: {e}", self.url));
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        assert_eq!(status, StatusCode::OK, "Flux query failed: {body}\nquery: {flux}");
        body
    }
}

/// Parses Flux's CSV (blank-line separated tables, each with its header row) into rows of column -> value.
/// Our values hold no commas or quotes, so plain splitting is exact; a quoted field fails loudly.
fn parse_flux_csv(body: &str) -> Vec<BTreeMap<String, String>> {
    let mut rows = Vec::new();
    let mut header: Option<Vec<String>> = None;
    for line in body.lines().map(|l| l.trim_end_matches('\r')) {
        if line.is_empty() {
            header = None;
            continue;
        }
        assert!(!line.contains('"'), "unexpected quoted CSV field in: {line}");
        let cells: Vec<String> = line.split(',').map(str::to_string).collect();
        match &header {
            None => header = Some(cells),
            Some(h) => {
                assert_eq!(h.len(), cells.len(), "CSV row does not match its header {h:?}: {line}");
                rows.push(h.iter().cloned().zip(cells).collect());
            }
        }
    }
    rows
}

#[tokio::test]
async fn line_protocol_write_then_flux_query() {
    let influx = Influx::from_bench();
    let measurement = unique("smoke").replace('-', "_");
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_millis() as i64;

    // Three sensors, one point each, with a float, an integer and a string field.
    let points: Vec<(String, f64, i64, &str, i64)> = (0..3)
        .map(|i| {
            (format!("sensor-{i}"), 20.25 + i as f64, 40 + i, if i == 1 { "warn" } else { "ok" }, now_ms - 1000 * i)
        })
        .collect();
    let lines: Vec<String> = points
        .iter()
        .map(|(sensor, temp, hum, status, ts)| {
            format!("{measurement},sensor={sensor},city=digitribe temperature={temp},humidity={hum}i,status=\"{status}\" {ts}")
        })
        .collect();
    let (status, body) = influx.write(&influx.token, &lines.join("\n")).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "write refused: {body}");

    let flux = format!(
        r#"from(bucket: "{bucket}")
  |> range(start: -1h, stop: 1h)
  |> filter(fn: (r) => r._measurement == "{measurement}")
  |> map(fn: (r) => ({{ r with ms: int(v: r._time) / 1000000, v: string(v: r._value) }}))
  |> keep(columns: ["sensor", "city", "_field", "ms", "v"])
  |> group()
  |> sort(columns: ["sensor", "_field"])"#,
        bucket = influx.bucket
    );

    // Writes are visible at once in 2.x; poll briefly anyway so a slow machine does not flake.
    let mut rows = Vec::new();
    for _ in 0..20 {
        rows = parse_flux_csv(&influx.query_csv(&flux).await);
        if rows.len() >= 9 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(rows.len(), 9, "expected 3 sensors x 3 fields, got: {rows:#?}");

    let got: BTreeMap<(String, String), (String, String)> = rows
        .iter()
        .map(|r| {
            assert_eq!(r["city"], "digitribe", "tag city lost: {r:?}");
            ((r["sensor"].clone(), r["_field"].clone()), (r["v"].clone(), r["ms"].clone()))
        })
        .collect();
    for (sensor, temp, hum, status, ts) in &points {
        let ts = ts.to_string();
        let field = |f: &str| {
            got.get(&(sensor.clone(), f.to_string())).unwrap_or_else(|| panic!("{sensor}.{f} missing: {got:?}"))
        };
        let (v, ms) = field("temperature");
        assert_eq!(v.parse::<f64>().expect("temperature is a float"), *temp, "{sensor}.temperature");
        assert_eq!(ms, &ts, "{sensor} timestamp");
        let (v, ms) = field("humidity");
        assert_eq!(v, &hum.to_string(), "{sensor}.humidity");
        assert_eq!(ms, &ts, "{sensor} timestamp");
        let (v, _) = field("status");
        assert_eq!(v, status, "{sensor}.status");
    }
}

#[tokio::test]
async fn write_with_wrong_token_is_unauthorized() {
    let influx = Influx::from_bench();
    let measurement = unique("smoke_denied").replace('-', "_");
    let (status, body) = influx.write("not-the-bench-token", &format!("{measurement} value=1")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a wrong token must be refused: {body}");
}

#[tokio::test]
async fn malformed_line_is_rejected_with_its_text() {
    let influx = Influx::from_bench();
    let measurement = unique("smoke_bad").replace('-', "_");
    // A field without a value: the line cannot be parsed.
    let bad = format!("{measurement},sensor=s1 temperature=");
    let (status, body) = influx.write(&influx.token, &bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a malformed line must be refused: {body}");
    let json: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("error body is not JSON ({e}): {body}"));
    assert_eq!(json["code"], "invalid", "error code: {body}");
    let message = json["message"].as_str().unwrap_or_default();
    assert!(message.contains(&bad), "the error message should name the bad line `{bad}`: {message}");
}
