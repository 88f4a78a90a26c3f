//! A sensor's history on the real bench: 30 days of readings (one every 5 minutes, two sensors)
//! backfilled by the simulator over Mosquitto into two gateways, one writing to InfluxDB, one
//! without InfluxDB (line-protocol files). The first answers ranges older than its memory from
//! InfluxDB, downsampled; the second from memory; a third, whose InfluxDB is unreachable, answers 502.
//! The map, in headless Chromium, draws a 30-day range and says it came from InfluxDB.

mod browser;
mod common;

use chrono::{DateTime, Duration, DurationRound, Utc};
use common::{free_port, wait_mqtt_connected, Gateway, Run, Sources};
use serde_json::Value;
use smartcity_gateway::flux::MAX_POINTS;
use smartcity_model::Catalogue;
use smartcity_testbench::bench_var;
use std::time::Instant;

const INTERVAL: i64 = 300;

/// One answer of the history endpoint.
struct History {
    status: u16,
    source: Option<String>,
    window: Option<i64>,
    body: Value,
    took: std::time::Duration,
}

impl History {
    fn points(&self) -> &Vec<Value> {
        self.body.as_array().unwrap_or_else(|| panic!("HTTP {}: {}", self.status, self.body))
    }
    fn times(&self) -> Vec<DateTime<Utc>> {
        self.points().iter().map(|p| time(p["observedAt"].as_str().unwrap())).collect()
    }
    fn seqs(&self) -> Vec<u64> {
        self.points().iter().map(|p| p["seq"].as_u64().unwrap()).collect()
    }
    fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or_else(|| panic!("an error: {}", self.body))
    }
}

async fn history(gw: &Gateway, id: &str, query: &str) -> History {
    let started = Instant::now();
    let r = reqwest::get(format!("http://127.0.0.1:{}/api/sensors/{id}/history{query}", gw.port)).await.unwrap();
    let header = |name: &str| r.headers().get(name).map(|v| v.to_str().unwrap().to_string());
    let (status, source, window) =
        (r.status().as_u16(), header("x-history-source"), header("x-history-window").map(|w| w.parse().unwrap()));
    let body = r.json().await.unwrap();
    History { status, source, window, body, took: started.elapsed() }
}

fn time(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn between(start: DateTime<Utc>, stop: DateTime<Utc>) -> String {
    format!("?start={}&stop={}", rfc3339(start), rfc3339(stop))
}

/// What InfluxDB must answer over [start, stop) for readings every INTERVAL s from `from` to `to`
/// (seq 0 at `from`): for each epoch-aligned window of `every` s holding readings, its start (not
/// before `start`) and the seq of its last reading.
fn expected(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    start: DateTime<Utc>,
    stop: DateTime<Utc>,
    every: i64,
) -> Vec<(DateTime<Utc>, u64)> {
    let mut out: Vec<(DateTime<Utc>, u64)> = Vec::new();
    let mut seq = 0u64;
    let mut t = from;
    while t <= to {
        if start <= t && t < stop {
            let window = (t - Duration::seconds(t.timestamp().rem_euclid(every))).max(start);
            match out.last_mut() {
                Some(last) if last.0 == window => last.1 = seq,
                _ => out.push((window, seq)),
            }
        }
        t += Duration::seconds(INTERVAL);
        seq += 1;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_comes_from_influxdb_over_any_range_and_from_memory_without_it() {
    let run = Run::new("gw-history").await;
    let mqtt = Sources { mqtt: true, ..Sources::default() };
    let influx_url = bench_var("BENCH_INFLUX_URL");
    let gw = Gateway::start(&run.gateway_config("influx", &mqtt, &influx_url, 1 << 30), "influx");
    let files = run.without_influx(&run.gateway_config("memory", &mqtt, &influx_url, 1 << 30), "files");
    let mem = Gateway::start(&files, "files");
    wait_mqtt_connected(&gw).await;
    wait_mqtt_connected(&mem).await;

    // 30 days up to 2 hours ago (the memory of 120 readings holds the last 10 hours of them).
    let to = Utc::now().duration_trunc(Duration::hours(1)).unwrap() - Duration::hours(2);
    let from = to - Duration::days(30) + Duration::hours(2);
    let sink = format!("{}[simulation]\ninterval_seconds = {INTERVAL}\n", run.mqtt_sink());
    let generated = run.simulate("h", 2, &rfc3339(from), &rfc3339(to), &sink).await;
    let ticks = (to - from).num_seconds() / INTERVAL + 1;
    assert_eq!(generated, 2 * ticks as u64);
    let written = run.wait_written(generated as usize, std::time::Duration::from_secs(120)).await;
    assert_eq!(written.len() as u64, generated, "every reading in InfluxDB");
    let catalogue = Catalogue::generated(2, 7).unwrap();
    let sensor = &catalogue.sensors()[0];
    let id = format!("h-{}", sensor.id);
    let last_seq = ticks as u64 - 1;
    for g in [&gw, &mem] {
        let deadline = Instant::now() + std::time::Duration::from_secs(30);
        while history(g, &id, "").await.seqs().last() != Some(&last_seq) {
            assert!(Instant::now() < deadline, "the latest reading in memory: {}", g.log_text());
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }

    // Memory holds the last 120 readings only.
    let live = history(&gw, &id, "").await;
    assert_eq!((live.status, live.source.as_deref(), live.window), (200, Some("memory"), None));
    assert_eq!(live.points().len(), 120);
    let oldest_in_memory = live.times()[0];

    // A day four weeks ago, from InfluxDB: one point per 174-s window, that is per reading (5 min).
    let (start, stop) = (from + Duration::days(1), from + Duration::days(2));
    assert!(stop < oldest_in_memory);
    let day = history(&gw, &id, &between(start, stop)).await;
    assert_eq!((day.status, day.source.as_deref(), day.window), (200, Some("influxdb"), Some(174)), "{}", day.body);
    let want = expected(from, to, start, stop, 174);
    assert_eq!(want.len(), 288);
    assert_eq!(day.times(), want.iter().map(|w| w.0).collect::<Vec<_>>(), "window starts");
    assert_eq!(day.seqs(), want.iter().map(|w| w.1).collect::<Vec<_>>(), "the seq of each window's reading");
    let first = &day.points()[0];
    assert_eq!((first["id"].as_str(), first["type"].as_str()), (Some(id.as_str()), Some(sensor.kind.as_str())));
    assert_eq!(first["commune"].as_str(), Some(sensor.commune.name()));
    // One reading per window: its mean is the reading's own value, as InfluxDB holds it.
    let (field, value) = first["values"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, v)| v.is_f64())
        .map(|(k, v)| (k.clone(), v.as_f64().unwrap()))
        .expect("a numeric value");
    let reading_time = from + Duration::seconds(INTERVAL * want[0].1 as i64);
    let raw = run
        .influx
        .query(&format!(
            "from(bucket: \"{}\") |> range(start: {}, stop: {}) |> filter(fn: (r) => r.sensor_id == \"{id}\" and r._field == \"{field}\")",
            run.names.bucket(),
            rfc3339(reading_time),
            rfc3339(reading_time + Duration::seconds(1)),
        ))
        .await;
    assert_eq!(raw[0]["_value"].parse::<f64>().unwrap(), value, "{field}");

    // 30 days, downsampled on the server to at most MAX_POINTS: means over 5195-s windows.
    let month = history(&gw, &id, &between(from, from + Duration::days(30))).await;
    assert_eq!((month.status, month.source.as_deref(), month.window), (200, Some("influxdb"), Some(5195)));
    let want = expected(from, to, from, from + Duration::days(30), 5195);
    assert!(month.points().len() <= MAX_POINTS as usize && month.points().len() > 490, "{}", month.points().len());
    assert_eq!(month.times(), want.iter().map(|w| w.0).collect::<Vec<_>>());
    assert_eq!(month.seqs(), want.iter().map(|w| w.1).collect::<Vec<_>>(), "seq: the last of each window");
    let relative = history(&gw, &id, "?range=30d").await;
    assert_eq!(relative.source.as_deref(), Some("influxdb"));
    assert!((400..=MAX_POINTS as usize).contains(&relative.points().len()), "{}", relative.points().len());
    let last24 = history(&gw, &id, "?range=24h").await;
    assert_eq!((last24.source.as_deref(), last24.window), (Some("influxdb"), Some(174)));
    assert!((250..=288).contains(&last24.points().len()), "{}", last24.points().len());
    eprintln!(
        "history from InfluxDB: 24 h ({} points) in {:?}, 30 d ({} points) in {:?}, range=30d in {:?}",
        day.points().len(),
        day.took,
        month.points().len(),
        month.took,
        relative.took
    );

    // Bad requests: 400 with what is wrong; a sensor memory never saw: 404.
    let bad = history(&gw, &id, "?range=2h").await;
    assert_eq!(bad.status, 400);
    assert!(bad.error().contains("10m, 1h, 6h, 24h, 7d, 30d"), "{}", bad.error());
    let bad = history(&gw, &id, &format!("?start={}", rfc3339(from))).await;
    assert_eq!(bad.status, 400);
    let bad = history(&gw, &id, &between(stop, start)).await;
    assert!(bad.status == 400 && bad.error().contains("before"), "{}", bad.body);
    let bad = history(&gw, "bad%22id", "?range=1h").await;
    assert!(bad.status == 400 && bad.error().contains("1-128 characters"), "{}", bad.body);
    assert_eq!(history(&gw, "never-seen", "").await.status, 404);

    // Without InfluxDB: ranges come from memory, filtered to the range.
    let mem_live = history(&mem, &id, "").await;
    assert_eq!((mem_live.source.as_deref(), mem_live.points().len()), (Some("memory"), 120));
    let times = mem_live.times();
    let recent = history(&mem, &id, &between(times[70], times[110])).await;
    assert_eq!((recent.status, recent.source.as_deref(), recent.window), (200, Some("memory"), None));
    assert_eq!(recent.times(), times[70..110].to_vec(), "start included, stop excluded");
    assert_eq!(recent.seqs(), mem_live.seqs()[70..110].to_vec());
    let old = history(&mem, &id, &between(start, stop)).await;
    assert_eq!((old.status, old.source.as_deref(), old.points().len()), (200, Some("memory"), 0), "nothing that old");
    assert_eq!(history(&mem, &id, "?range=30d").await.points().len(), 120);
    assert_eq!(history(&mem, &id, "?range=2h").await.status, 400);

    // The map: 30 days drawn, from InfluxDB, with date ticks.
    let url = format!("http://127.0.0.1:{}/?actions=click:{id},range:30d", gw.port);
    let dom = browser::rendered_dom(url).await;
    let note = browser::element_text(&dom, "detail-range");
    assert!(note.starts_with("from InfluxDB: last 30 days, ") && note.contains("averaged over 1.4 h"), "{note}");
    assert!(dom.contains(r#"<button data-range="30d" aria-pressed="true">"#));
    assert!(dom.contains("class=\"history\" data-key="), "lines drawn");

    // InfluxDB unreachable: 502, naming it (the map then falls back to memory, saying so).
    let down_url = format!("http://127.0.0.1:{}", free_port());
    let down = Gateway::start(&run.gateway_config("down", &mqtt, &down_url, 1 << 30), "down");
    let failed = history(&down, &id, "?range=24h").await;
    assert_eq!(failed.status, 502, "{}", failed.body);
    assert!(failed.error().starts_with("InfluxDB ") && failed.error().contains("unreachable"), "{}", failed.error());
    assert!(!failed.error().contains(&bench_var("BENCH_INFLUX_TOKEN")), "never the token");
    drop(down);

    let mut gw = gw;
    gw.stop();
    assert!(!gw.log_text().contains(&bench_var("BENCH_INFLUX_TOKEN")), "never the token in the log");
}
