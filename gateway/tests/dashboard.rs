//! End to end in one process: simulator (embedded broker) → gateway → dashboard in a real headless
//! Chromium. Also: a malformed message is set aside and counted, and the pipeline goes on.

mod browser;
mod demo;

use browser::{chromium, element_text, rendered_dom};
use demo::start_demo;
use rumqttc::{AsyncClient, MqttOptions, QoS};
use std::path::PathBuf;
use std::time::{Duration, Instant};

async fn latest(http: &str) -> Vec<serde_json::Value> {
    match reqwest::get(format!("{http}/api/readings")).await {
        Ok(r) => r.json().await.unwrap_or_default(),
        Err(_) => vec![],
    }
}

async fn wait_for_sensors(http: &str, n: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let readings = latest(http).await;
        if readings.len() >= n {
            return readings;
        }
        assert!(Instant::now() < deadline, "only {} sensors after 20 s", readings.len());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A screenshot of `url` at `target/{name}`, checked to be a real PNG.
async fn screenshot(url: String, name: &str) -> PathBuf {
    let shot = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target").join(name);
    let arg = format!("--screenshot={}", shot.display());
    tokio::task::spawn_blocking(move || chromium(&[&arg, &url])).await.unwrap();
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "a real screenshot at {}", shot.display());
    shot
}

/// A number of the pipeline health strip, `<b id="{id}">…</b>`.
fn health_value(dom: &str, id: &str) -> f64 {
    let open = format!("<b id=\"{id}\">");
    let value = &dom[dom.find(&open).unwrap_or_else(|| panic!("{id} in the health strip")) + open.len()..];
    value[..value.find('<').unwrap()].parse().unwrap_or_else(|e| panic!("{id}: {e}"))
}

/// The `data-sensor-id` of every marker drawn on the map.
fn marker_ids(dom: &str) -> Vec<String> {
    let map = &dom[dom.find("id=\"markers\"").expect("markers group")..];
    let map = &map[..map.find("</g>").expect("end of markers group")];
    map.split("<circle").skip(1).filter_map(|m| attribute(m, "data-sensor-id")).collect()
}

/// The value of `name="…"` in the first tag of `html`.
fn attribute(html: &str, name: &str) -> Option<String> {
    let tag = &html[..html.find('>')?];
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    Some(tag[start..start + tag[start..].find('"')?].to_string())
}

/// The texts of the `<text class="tick-label …">` elements of the detail chart.
fn tick_labels(dom: &str, class: &str) -> Vec<String> {
    let chart = &dom[dom.find("id=\"detail-chart\"").expect("detail chart")..];
    let chart = &chart[..chart.find("</svg>").expect("end of detail chart")];
    chart
        .split(&format!("class=\"tick-label {class}\""))
        .skip(1)
        .filter_map(|t| Some(t[t.find('>')? + 1..t.find("</text>")?].to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_shows_a_marker_per_sensor_in_headless_chromium() {
    let demo = start_demo("demo").await;
    let readings = wait_for_sensors(&demo.http, 10).await;
    assert_eq!(readings.len(), 10);

    // The map: one marker per sensor, filled by state and ringed by kind; the health strip counts the sensors.
    let dom = rendered_dom(format!("{}/", demo.http)).await;
    let mut ids = marker_ids(&dom);
    ids.sort();
    let mut expected: Vec<String> = readings.iter().map(|r| r["id"].as_str().unwrap().to_string()).collect();
    expected.sort();
    assert_eq!(ids, expected, "one marker per sensor in the rendered page");
    assert_eq!(health_value(&dom, "h-sensors"), 10.0, "health strip shows the sensors seen");
    for id in ["h-rate", "h-dead", "h-written", "h-spool"] {
        assert!(dom.contains(&format!("<b id=\"{id}\">")), "health strip has {id}");
    }
    assert!(dom.contains("congested") && dom.contains("unhealthy for sensitive groups"), "state legend");
    let congested = readings.iter().find(|r| r["type"] == "traffic" && r["values"]["congested"] == true);
    if let Some(r) = congested {
        let id = r["id"].as_str().unwrap();
        let marker = &dom[dom.find(&format!("data-sensor-id=\"{id}\"")).unwrap()..];
        assert!(marker.contains("data-state=\"congested\""), "a congested road is drawn as congested");
    }
    let map = screenshot(format!("{}/", demo.http), "dashboard.png").await;

    // A kind filter: its markers and table rows disappear, the others stay.
    let dom = rendered_dom(format!("{}/?actions=toggle:traffic", demo.http)).await;
    let ids = marker_ids(&dom);
    let traffic = expected.iter().filter(|id| id.starts_with("traffic-")).count();
    assert!(traffic > 0);
    assert_eq!(ids.len(), expected.len() - traffic, "traffic markers hidden: {ids:?}");
    assert!(ids.iter().all(|id| !id.starts_with("traffic-")), "{ids:?}");
    assert!(!dom.contains("<tr data-id=\"traffic-"), "traffic rows hidden from the table");
    assert!(dom.contains("<tr data-id=\"noise-"), "other kinds still listed");
    let filtered = screenshot(format!("{}/?actions=toggle:traffic", demo.http), "dashboard-filtered.png").await;

    // A click on a marker opens its detail: the history chart with time and value axes.
    let url = format!("{}/?actions=click:noise-fort-de-france-01", demo.http);
    let dom = rendered_dom(url.clone()).await;
    assert!(dom.contains("<section id=\"detail\">"), "detail opened (no longer hidden)");
    assert!(
        dom.contains("<span id=\"detail-title\">noise-fort-de-france-01 · Fort-de-France"),
        "detail names the sensor"
    );
    for key in ["LAeq", "LAmax", "LAS"] {
        assert!(dom.contains(&format!("class=\"history\" data-key=\"{key}\"")), "a line for {key}");
    }
    let times = tick_labels(&dom, "time-tick");
    assert!(!times.is_empty(), "time axis tick labels");
    for t in &times {
        let hh_mm = t.len() >= 5 && t.as_bytes()[2] == b':' && t.split(':').all(|p| p.len() == 2);
        assert!(hh_mm, "time tick {t:?} is HH:MM (or HH:MM:SS)");
    }
    let values = tick_labels(&dom, "value-tick");
    assert!(values.len() >= 2 && values.iter().all(|v| v.ends_with(" dB(A)")), "value ticks with units: {values:?}");
    let detail = screenshot(url, "dashboard-detail.png").await;

    // The range selector: this gateway has no InfluxDB, so the last hour comes from memory, and says so.
    let dom = rendered_dom(format!("{}/?actions=click:noise-fort-de-france-01,range:1h", demo.http)).await;
    assert!(dom.contains(r#"<button data-range="1h" aria-pressed="true">"#), "1 h selected");
    assert!(dom.contains(r#"<button data-range="" aria-pressed="false">"#), "live no longer selected");
    let note = element_text(&dom, "detail-range");
    assert!(note.starts_with("from memory: ") && note.contains("in the last 1 h"), "{note}");
    for key in ["LAeq", "LAmax", "LAS"] {
        assert!(dom.contains(&format!("class=\"history\" data-key=\"{key}\"")), "a line for {key} over 1 h");
    }

    // A link to a sensor opens its history chart too.
    let dom = rendered_dom(format!("{}/#traffic-fort-de-france-01", demo.http)).await;
    assert!(dom.contains("class=\"history\" data-key=\"intensity\""), "history chart drawn for the linked sensor");
    let units = tick_labels(&dom, "value-tick");
    assert!(units.iter().any(|v| v.ends_with(" veh/h")) && units.iter().any(|v| v.ends_with(" km/h")), "{units:?}");

    eprintln!("screenshots: {} {} {}", map.display(), filtered.display(), detail.display());
    demo.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_messages_are_set_aside_and_counted_and_the_rest_flows() {
    let demo = start_demo("demo").await;
    wait_for_sensors(&demo.http, 10).await;

    let mut opts = MqttOptions::new("bad-publisher", "127.0.0.1", demo.mqtt_port);
    opts.set_keep_alive(Duration::from_secs(5));
    let (client, mut event_loop) = AsyncClient::new(opts, 10);
    tokio::spawn(async move { while event_loop.poll().await.is_ok() {} });
    client.publish("city/sensors/traffic/broken-1", QoS::AtLeastOnce, false, "{not json").await.unwrap();
    // A complete reading, but of a wire version this build does not know.
    let catalogue = smartcity_model::Catalogue::default_ten();
    let future = smartcity_model::dynamics::Simulation::new(1).reading(&catalogue.sensors()[6], chrono::Utc::now(), 0);
    let payload =
        String::from_utf8(smartcity_model::codec::json::encode(&future)).unwrap().replace("\"v\":1", "\"v\":9");
    let topic = format!("city/sensors/noise/{}", future.sensor_id);
    client.publish(topic, QoS::AtLeastOnce, false, payload).await.unwrap();

    let deadline = Instant::now() + Duration::from_secs(10);
    let dead = loop {
        let dead: Vec<serde_json::Value> =
            reqwest::get(format!("{}/api/dead-letters", demo.http)).await.unwrap().json().await.unwrap();
        if dead.len() >= 2 || Instant::now() > deadline {
            break dead;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(dead.len(), 2, "{dead:?}");
    assert_eq!(dead[0]["topic"], "city/sensors/traffic/broken-1");
    assert!(dead[0]["reason"].as_str().unwrap().contains("not a JSON reading"));
    let metrics = reqwest::get(format!("{}/metrics", demo.http)).await.unwrap().text().await.unwrap();
    // At least once: a redelivered message is set aside (and counted) again.
    for reason in ["syntax", "version"] {
        let series = format!(r#"smartcity_gateway_messages_rejected_total{{reason="{reason}",source="mqtt"}} "#);
        let count: f64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix(&series))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{series}missing: {metrics}"));
        assert!(count >= 1.0, "{series}{count}");
    }

    // The dashboard's health strip counts them too (from the same /metrics).
    let dom = rendered_dom(format!("{}/", demo.http)).await;
    let shown = health_value(&dom, "h-dead");
    assert!(shown >= 2.0, "health strip shows {shown} dead letters");

    // Still flowing: sequence numbers keep advancing after the bad messages.
    let before: u64 = latest(&demo.http).await.iter().map(|r| r["seq"].as_u64().unwrap()).sum();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let now: u64 = latest(&demo.http).await.iter().map(|r| r["seq"].as_u64().unwrap()).sum();
        if now > before {
            break;
        }
        assert!(Instant::now() < deadline, "no new readings after the malformed ones");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    demo.stop.cancel();
}

/// Partial readings (a device that measures part of its kind) on the map: the marker's state comes
/// from the attributes present or says "state not measured", the detail draws a line for each value
/// the sensor has, and nothing reads "undefined" or "NaN".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_readings_show_only_what_they_carry() {
    let demo = start_demo("demo").await;
    wait_for_sensors(&demo.http, 10).await;
    let mut opts = MqttOptions::new("partial-publisher", "127.0.0.1", demo.mqtt_port);
    opts.set_keep_alive(Duration::from_secs(5));
    let (client, mut event_loop) = AsyncClient::new(opts, 10);
    tokio::spawn(async move { while event_loop.poll().await.is_ok() {} });
    let now = smartcity_model::codec::json::format_time(chrono::Utc::now());
    let partials = [
        ("weather", "wx-humidity-only", serde_json::json!({"relativeHumidity": 0.81})),
        ("light", "lt-power-only", serde_json::json!({"powerState": "on"})),
    ];
    for (kind, id, values) in partials {
        let reading = serde_json::json!({"v": 1, "id": id, "type": kind, "commune": "Le Lamentin", "lat": 14.613,
            "lon": -60.999, "observedAt": now, "seq": 1, "values": values});
        let payload = serde_json::to_vec(&reading).unwrap();
        client.publish(format!("city/sensors/{kind}/{id}"), QoS::AtLeastOnce, false, payload).await.unwrap();
    }
    wait_for_sensors(&demo.http, 12).await;

    let dom = rendered_dom(format!("{}/?actions=click:wx-humidity-only", demo.http)).await;
    let state = |id: &str| {
        let marker = &dom[dom.find(&format!("data-sensor-id=\"{id}\"")).unwrap_or_else(|| panic!("{id}"))..];
        attribute(&format!("<circle {marker}"), "data-state")
    };
    assert_eq!(state("wx-humidity-only").as_deref(), Some("state not measured"), "no temperature, no guess");
    assert_eq!(state("lt-power-only").as_deref(), Some("on / low / booting"), "no status is no fault");
    assert!(dom.contains("class=\"history\" data-key=\"relativeHumidity\""), "a line for the humidity");
    assert!(!dom.contains("data-key=\"temperature\""), "no line for a temperature it does not measure");
    assert!(dom.contains("relativeHumidity 81 %</span>"), "the detail's key shows the humidity");
    for bad in ["undefined", "NaN"] {
        assert!(!dom.contains(bad), "`{bad}` in the page");
    }
    demo.stop.cancel();
}
