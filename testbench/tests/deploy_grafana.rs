//! The Grafana provisioning of `deploy/grafana/`, proven without a Grafana server (none can be
//! installed on this machine; the compose stack runs the real one):
//!
//! - `dashboards_load_as_grafana_would`: the datasources and dashboard provider files, and every
//!   dashboard JSON as Grafana reads it: stable unique uids, schema version, every panel's and
//!   target's datasource uid provisioned with the right type, known panel types, a sane grid,
//!   template variables well formed (and used by the queries as Grafana expects), the geomap panel
//!   centred on Martinique and fed by `lat`/`lon` fields.
//! - `every_flux_query_returns_the_columns_its_panel_uses`: a simulated day (the built-in ten sensors
//!   every 5 minutes: 2,880 readings) is backfilled by the simulator's own InfluxDB sink into a fresh
//!   bucket of the bench's InfluxDB; then every Flux query of every dashboard (panels and template
//!   variables), its variables substituted as Grafana does, runs there and returns rows with the
//!   columns its panel reads; a second pass with two communes selected checks the filters.
//! - `every_promql_query_returns_series_from_our_binaries`: the simulator, the gateway and the
//!   distribution service run in this process; the bench's Prometheus scrapes their `/metrics` (and
//!   the bench InfluxDB's own) through its test target, where this test serves them concatenated.
//!   Every PromQL query of the pipeline and brokers dashboards returns series, except those on the
//!   exporters of brokers that are not running here (`EXPORTER_ONLY`, listed and explained below).
//!
//! Run with `scripts/services/services.sh up influxdb prometheus` then
//! `cargo test -p smartcity-testbench --test deploy_grafana`.

use serde_json::Value;
use smartcity_testbench::readback::Influx;
use smartcity_testbench::{bench_var, unique};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The dashboards and their stable uids (links and bookmarks use them).
const UIDS: [&str; 6] = [
    "smartcity-overview",
    "smartcity-map",
    "smartcity-air",
    "smartcity-traffic-noise",
    "smartcity-pipeline",
    "smartcity-brokers",
];

/// Panel types this provisioning may use (all are core Grafana panels).
const PANEL_TYPES: [&str; 10] =
    ["timeseries", "stat", "geomap", "table", "bargauge", "gauge", "text", "row", "barchart", "heatmap"];

/// The local day backfilled for the Flux queries: midnight to midnight in Martinique (UTC-4). A
/// Monday (commuter peaks) in the middle of a Saharan dust plume of the simulation's seed (42), so
/// that the air quality dashboard has a day over the PM10 limit to show. `to` is the last tick (the
/// simulator's `to` is inclusive).
const DAY_FROM: &str = "2026-07-13T04:00:00Z";
const DAY_LAST_TICK: &str = "2026-07-14T03:55:00Z";
const DAY_STOP: &str = "2026-07-14T04:00:00Z";
/// What Grafana would pass as `v.windowPeriod` for a day on a wide panel (about 150 points).
const WINDOW_PERIOD: &str = "10m";

/// PromQL queries that read metrics only a broker's exporter exposes, and that broker or exporter
/// does not run here: (dashboard uid, panel title, refId). Each must still exist in its dashboard
/// and read nothing but `broker_`, `pulsar_` or `redpanda_` metrics; every other query must return
/// series. (The InfluxDB panels are not listed: the bench's InfluxDB is scraped through our target.)
const EXPORTER_ONLY: &[(&str, &str, &str)] = &[
    // Mosquitto through sapcc/mosquitto-exporter (a Go binary that subscribes to `$SYS/#`): not in
    // the bench, which runs Mosquitto alone.
    ("smartcity-brokers", "Clients connected", "A"),
    ("smartcity-brokers", "PUBLISH messages per second", "A"),
    ("smartcity-brokers", "PUBLISH messages per second", "B"),
    ("smartcity-brokers", "PUBLISH messages per second", "C"),
    ("smartcity-brokers", "Bytes per second", "A"),
    ("smartcity-brokers", "Bytes per second", "B"),
    // Pulsar's broker metrics (`pulsar:8080/metrics`): this test starts no Pulsar (its JVM is the
    // heaviest server of the bench); the gateway and distribution read an unreachable one instead.
    ("smartcity-brokers", "Messages per second per topic", "A"),
    ("smartcity-brokers", "Messages per second per topic", "B"),
    ("smartcity-brokers", "Subscription backlog", "A"),
    ("smartcity-brokers", "Dead-letter topic backlog", "A"),
    ("smartcity-brokers", "Producers / consumers", "A"),
    ("smartcity-brokers", "Producers / consumers", "B"),
    ("smartcity-brokers", "Storage size", "A"),
    // Redpanda's public metrics (`redpanda:9644/public_metrics`): the bench runs Apache Kafka (JMX,
    // other names) and a REST proxy stand-in, not Redpanda (no registry here ships it).
    ("smartcity-brokers", "Records per second per topic", "A"),
    ("smartcity-brokers", "Records per second per topic", "B"),
    ("smartcity-brokers", "Consumer group lag", "A"),
    ("smartcity-brokers", "HTTP proxy (REST) requests", "A"),
    ("smartcity-brokers", "HTTP proxy (REST) requests", "B"),
    ("smartcity-brokers", "Under-replicated replicas", "A"),
    ("smartcity-brokers", "Disk free", "A"),
    ("smartcity-brokers", "Kafka API bytes per second", "A"),
];

// ------------------------------------------------------------------------------------------------
// Reading the provisioning as Grafana does

fn grafana_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/grafana")
}

struct Board {
    file: String,
    json: Value,
}

impl Board {
    fn uid(&self) -> &str {
        self.json["uid"].as_str().unwrap_or_else(|| panic!("{}: no uid", self.file))
    }

    /// Every panel, the panels of collapsed rows included.
    fn panels(&self) -> Vec<&Value> {
        let mut out = Vec::new();
        for p in self.json["panels"].as_array().unwrap_or_else(|| panic!("{}: no panels array", self.file)) {
            out.push(p);
            if let Some(nested) = p["panels"].as_array() {
                out.extend(nested);
            }
        }
        out
    }

    fn variables(&self) -> Vec<&Value> {
        self.json["templating"]["list"].as_array().map(|l| l.iter().collect()).unwrap_or_default()
    }

    fn is_influx(&self) -> bool {
        self.panels().iter().flat_map(|p| targets(p)).any(|t| t.get("query").is_some())
    }
}

/// The dashboards the file provider would load: every `*.json` of `deploy/grafana/dashboards`.
fn boards() -> Vec<Board> {
    let dir = grafana_dir().join("dashboards");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            let json: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file} is not valid JSON: {e}"));
            assert!(json.is_object(), "{file}: a dashboard is a JSON object");
            Board { file, json }
        })
        .collect()
}

fn board<'a>(boards: &'a [Board], uid: &str) -> &'a Board {
    boards.iter().find(|b| b.uid() == uid).unwrap_or_else(|| panic!("no dashboard with uid {uid}"))
}

fn yaml(path: &Path) -> yaml_rust2::Yaml {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut docs = yaml_rust2::YamlLoader::load_from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()));
    assert_eq!(docs.len(), 1, "{}: one YAML document", path.display());
    docs.remove(0)
}

/// The provisioned datasources: uid → type.
fn datasources() -> BTreeMap<String, String> {
    let path = grafana_dir().join("provisioning/datasources/datasources.yml");
    let doc = yaml(&path);
    assert_eq!(doc["apiVersion"].as_i64(), Some(1), "datasources apiVersion");
    let list = doc["datasources"].as_vec().expect("a `datasources` list");
    let mut out = BTreeMap::new();
    for ds in list {
        let uid = ds["uid"].as_str().expect("every datasource has a uid").to_string();
        let kind = ds["type"].as_str().expect("every datasource has a type").to_string();
        assert!(ds["name"].as_str().is_some_and(|n| !n.is_empty()), "datasource {uid}: a name");
        assert_eq!(ds["access"].as_str(), Some("proxy"), "datasource {uid}: server-side access");
        assert!(out.insert(uid.clone(), kind).is_none(), "datasource uid {uid} defined twice");
    }
    out
}

fn targets(panel: &Value) -> Vec<&Value> {
    panel["targets"].as_array().map(|t| t.iter().collect()).unwrap_or_default()
}

fn title(panel: &Value) -> &str {
    panel["title"].as_str().unwrap_or("")
}

/// The datasource uid a target queries: its own, else its panel's.
fn target_uid<'a>(panel: &'a Value, target: &'a Value) -> Option<&'a str> {
    target["datasource"]["uid"].as_str().or_else(|| panel["datasource"]["uid"].as_str())
}

/// The text of a template variable's query (a string for Flux, `{query: ...}` for Prometheus).
fn variable_query(var: &Value) -> &str {
    var["query"].as_str().or_else(|| var["query"]["query"].as_str()).unwrap_or("")
}

/// Grafana variable references in `text`: `$name`, `${name}`, `${name:format}` → (name, format).
fn variable_refs(text: &str) -> Vec<(String, Option<String>)> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        rest = &rest[i + 1..];
        if let Some(inner) = rest.strip_prefix('{') {
            let end = inner.find('}').unwrap_or_else(|| panic!("unclosed ${{ in {text}"));
            let body = &inner[..end];
            let (name, format) = match body.split_once(':') {
                Some((n, f)) => (n, Some(f.to_string())),
                None => (body, None),
            };
            out.push((name.to_string(), format));
            rest = &inner[end + 1..];
        } else {
            let name: String = rest.chars().take_while(|&c| is_name(c)).collect();
            if !name.is_empty() {
                rest = &rest[name.len()..];
                out.push((name, None));
            }
        }
    }
    out
}

/// Field names a panel reads by name: override matchers, the bar chart's x field, the geomap
/// layers' location and style fields.
fn named_fields(panel: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for o in panel["fieldConfig"]["overrides"].as_array().into_iter().flatten() {
        if o["matcher"]["id"] == "byName" {
            out.insert(o["matcher"]["options"].as_str().expect("byName matcher names a field").to_string());
        }
    }
    if let Some(x) = panel["options"]["xField"].as_str() {
        out.insert(x.to_string());
    }
    for layer in panel["options"]["layers"].as_array().into_iter().flatten() {
        for key in ["latitude", "longitude"] {
            if let Some(f) = layer["location"][key].as_str() {
                out.insert(f.to_string());
            }
        }
        for key in ["color", "size", "text"] {
            if let Some(f) = layer["config"]["style"][key]["field"].as_str().filter(|f| !f.is_empty()) {
                out.insert(f.to_string());
            }
        }
    }
    out
}

// ------------------------------------------------------------------------------------------------
// (a) The files as Grafana loads them

#[test]
fn dashboards_load_as_grafana_would() {
    let sources = datasources();
    let influx_ds =
        sources.iter().find(|(_, t)| *t == "influxdb").map(|(u, _)| u.clone()).expect("an InfluxDB datasource");
    assert_eq!(influx_ds, "influxdb");
    assert_eq!(sources.get("prometheus").map(String::as_str), Some("prometheus"), "the Prometheus datasource");

    // InfluxDB in Flux mode, the org and bucket of the stack, the token from the environment only.
    let doc = yaml(&grafana_dir().join("provisioning/datasources/datasources.yml"));
    let list = doc["datasources"].as_vec().unwrap();
    let influx = list.iter().find(|d| d["uid"].as_str() == Some("influxdb")).unwrap();
    assert_eq!(influx["url"].as_str(), Some("http://influxdb:8086"));
    assert_eq!(influx["jsonData"]["version"].as_str(), Some("Flux"));
    assert_eq!(influx["jsonData"]["organization"].as_str(), Some("digitribe"));
    assert_eq!(influx["jsonData"]["defaultBucket"].as_str(), Some("iot_data"));
    let token = influx["secureJsonData"]["token"].as_str().expect("secureJsonData.token");
    assert!(token == "$INFLUXDB_TOKEN" || token == "${INFLUXDB_TOKEN}", "token from $INFLUXDB_TOKEN, not {token:?}");
    let prometheus = list.iter().find(|d| d["uid"].as_str() == Some("prometheus")).unwrap();
    assert_eq!(prometheus["url"].as_str(), Some("http://prometheus:9090"));

    // The file provider reads the folder the compose stack mounts the dashboards into.
    let providers = yaml(&grafana_dir().join("provisioning/dashboards/dashboards.yml"));
    assert_eq!(providers["apiVersion"].as_i64(), Some(1), "dashboard providers apiVersion");
    let providers = providers["providers"].as_vec().expect("a `providers` list");
    assert_eq!(providers.len(), 1);
    assert_eq!(providers[0]["type"].as_str(), Some("file"));
    assert_eq!(providers[0]["options"]["path"].as_str(), Some("/var/lib/grafana/dashboards"));

    let boards = boards();
    let uids: BTreeSet<&str> = boards.iter().map(Board::uid).collect();
    assert_eq!(uids.len(), boards.len(), "dashboard uids are unique");
    assert_eq!(uids, UIDS.into_iter().collect(), "exactly the six stable uids");
    let titles: BTreeSet<&str> = boards.iter().map(|b| b.json["title"].as_str().unwrap_or("")).collect();
    assert_eq!(titles.len(), boards.len(), "titles are unique (Grafana refuses two in one folder)");

    for b in &boards {
        let uid = b.uid();
        let json = &b.json;
        assert!(uid.len() <= 40 && uid.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'), "{uid}: a valid uid");
        assert!(json["title"].as_str().is_some_and(|t| !t.is_empty()), "{uid}: a title");
        assert_eq!(json["schemaVersion"], 39, "{uid}: schemaVersion");
        assert_eq!(json["timezone"], "America/Martinique", "{uid}: Martinique time");
        assert!(json.get("id").is_none_or(Value::is_null), "{uid}: no database id in a provisioned file");
        assert!(json["time"]["from"].is_string() && json["time"]["to"].is_string(), "{uid}: a default time range");

        // Template variables: unique names, a provisioned datasource, a query, sane All handling,
        // and only references to variables defined before them (Grafana resolves them in order).
        let mut defined: Vec<String> = Vec::new();
        for var in b.variables() {
            let name = var["name"].as_str().expect("variable name");
            assert!(!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{uid}: {name}");
            assert!(!defined.iter().any(|d| d == name), "{uid}: variable {name} defined twice");
            assert_eq!(var["type"], "query", "{uid}/{name}: a query variable");
            let ds = var["datasource"]["uid"].as_str().unwrap_or_else(|| panic!("{uid}/{name}: no datasource"));
            let ds_type = sources.get(ds).unwrap_or_else(|| panic!("{uid}/{name}: datasource {ds} not provisioned"));
            assert_eq!(var["datasource"]["type"].as_str(), Some(ds_type.as_str()), "{uid}/{name}: datasource type");
            let query = variable_query(var);
            assert!(!query.trim().is_empty(), "{uid}/{name}: an empty query");
            if ds_type == "influxdb" {
                assert!(query.contains("schema.tagValues("), "{uid}/{name}: tag values from schema.tagValues");
                assert!(query.contains("v.timeRangeStart"), "{uid}/{name}: follows the time picker");
            } else {
                assert!(query.starts_with("label_values("), "{uid}/{name}: label_values(...)");
            }
            assert!(matches!(var["refresh"].as_i64(), Some(1 | 2)), "{uid}/{name}: refreshed on load or time change");
            if var["includeAll"] == true {
                assert!(var["allValue"].is_string(), "{uid}/{name}: All needs an allValue for regex filters");
            }
            assert!(var["current"].is_object(), "{uid}/{name}: a current value");
            for (r, _) in variable_refs(query) {
                assert!(defined.contains(&r), "{uid}/{name} refers to ${r}, not defined before it");
            }
            defined.push(name.to_string());
        }
        if b.is_influx() {
            for needed in ["commune", "sensor"] {
                assert!(defined.iter().any(|d| d == needed), "{uid}: a `{needed}` variable");
            }
        }
        if uid == "smartcity-overview" || uid == "smartcity-map" {
            assert_eq!(defined, ["commune", "kind", "sensor"], "{uid}: commune, kind, sensor");
        }

        let mut ids = BTreeSet::new();
        for panel in b.panels() {
            let t = title(panel);
            let ptype = panel["type"].as_str().unwrap_or_else(|| panic!("{uid}/{t}: no type"));
            assert!(PANEL_TYPES.contains(&ptype), "{uid}/{t}: unknown panel type {ptype}");
            let id = panel["id"].as_i64().unwrap_or_else(|| panic!("{uid}/{t}: no id"));
            assert!(ids.insert(id), "{uid}: panel id {id} used twice");
            let g = &panel["gridPos"];
            let (x, w, h) = (g["x"].as_i64(), g["w"].as_i64(), g["h"].as_i64());
            assert!(
                matches!((x, w, h, g["y"].as_i64()), (Some(x), Some(w), Some(h), Some(y)) if x >= 0 && w > 0 && x + w <= 24 && h > 0 && y >= 0),
                "{uid}/{t}: gridPos {g}"
            );
            if ptype == "row" || ptype == "text" {
                assert!(targets(panel).is_empty(), "{uid}/{t}: a {ptype} has no queries");
                continue;
            }
            assert!(!t.is_empty(), "{uid}: a {ptype} panel without a title");
            let ts = targets(panel);
            assert!(!ts.is_empty(), "{uid}/{t}: no queries");
            let mut refs = BTreeSet::new();
            for target in ts {
                let r = target["refId"].as_str().unwrap_or_else(|| panic!("{uid}/{t}: a target without refId"));
                assert!(refs.insert(r), "{uid}/{t}: refId {r} twice");
                let ds = target_uid(panel, target).unwrap_or_else(|| panic!("{uid}/{t}/{r}: no datasource uid"));
                let ds_type =
                    sources.get(ds).unwrap_or_else(|| panic!("{uid}/{t}/{r}: datasource uid {ds} not provisioned"));
                for dref in [&target["datasource"], &panel["datasource"]] {
                    if let Some(ty) = dref["type"].as_str() {
                        assert_eq!(ty, ds_type, "{uid}/{t}/{r}: datasource type of {ds}");
                    }
                }
                let text = match ds_type.as_str() {
                    "influxdb" => target["query"].as_str(),
                    "prometheus" => target["expr"].as_str(),
                    other => panic!("{uid}/{t}: unexpected datasource type {other}"),
                }
                .unwrap_or_else(|| panic!("{uid}/{t}/{r}: no query text for {ds_type}"));
                assert!(!text.trim().is_empty(), "{uid}/{t}/{r}: empty query");
                for (name, format) in variable_refs(text) {
                    if ds_type == "influxdb" {
                        // Multi-value variables inside a Flux regex literal must be formatted as one.
                        assert!(defined.contains(&name), "{uid}/{t}/{r}: ${name} is not a variable of the dashboard");
                        assert_eq!(format.as_deref(), Some("regex"), "{uid}/{t}/{r}: use ${{{name}:regex}} in Flux");
                        assert!(text.contains(&format!("/^${{{name}:regex}}$/")), "{uid}/{t}/{r}: anchored regex");
                    } else {
                        assert!(
                            defined.contains(&name)
                                || ["__rate_interval", "__range", "__interval"].contains(&name.as_str()),
                            "{uid}/{t}/{r}: ${name} is neither a variable nor a Grafana built-in"
                        );
                    }
                }
                if ds_type == "influxdb" {
                    assert!(text.contains("from(bucket: \"iot_data\")"), "{uid}/{t}/{r}: reads the iot_data bucket");
                    assert!(
                        text.contains("range(start: v.timeRangeStart, stop: v.timeRangeStop)"),
                        "{uid}/{t}/{r}: follows the dashboard's time range"
                    );
                }
            }
            if ptype == "geomap" {
                check_geomap(uid, panel);
            }
        }
        assert!(!ids.is_empty(), "{uid}: no panels");
    }
    let geomaps: Vec<&str> = boards
        .iter()
        .flat_map(|b| b.panels().into_iter().filter(|p| p["type"] == "geomap").map(move |_| b.uid()))
        .collect();
    assert_eq!(geomaps, ["smartcity-map"], "one geomap, on the map dashboard");
}

/// A view on Martinique and marker layers located by the `lat`/`lon` fields of a pivoted query.
fn check_geomap(uid: &str, panel: &Value) {
    let view = &panel["options"]["view"];
    let (lat, lon, zoom) = (view["lat"].as_f64(), view["lon"].as_f64(), view["zoom"].as_f64());
    assert!(
        matches!((lat, lon, zoom), (Some(la), Some(lo), Some(z)) if (la - 14.64).abs() < 0.05 && (lo + 61.02).abs() < 0.05 && (9.0..=11.0).contains(&z)),
        "{uid}: the map opens on Martinique (lat 14.64, lon -61.02, zoom ~10): {view}"
    );
    let layers = panel["options"]["layers"].as_array().expect("geomap layers");
    assert!(!layers.is_empty(), "{uid}: geomap without layers");
    for layer in layers {
        assert_eq!(layer["type"], "markers", "{uid}: a markers layer");
        let loc = &layer["location"];
        assert!(
            loc["mode"] == "auto" || (loc["mode"] == "coords" && loc["latitude"] == "lat" && loc["longitude"] == "lon"),
            "{uid}: markers placed by the lat/lon fields: {loc}"
        );
        let refid = layer["filterData"]["options"].as_str().unwrap_or("A");
        let target = targets(panel).into_iter().find(|t| t["refId"] == refid).expect("the layer's query");
        let q = target["query"].as_str().expect("a Flux query feeds the geomap");
        assert!(q.contains("pivot(rowKey: [\"_time\"], columnKey: [\"_field\"]"), "{uid}: fields pivoted into columns");
        assert!(!q.contains("r._field == \"") || q.contains("\"lat\""), "{uid}: lat/lon not filtered out");
    }
}

// ------------------------------------------------------------------------------------------------
// Grafana's interpolation

/// A variable's selection: All (its allValue) or some values.
#[derive(Clone)]
enum Sel {
    All,
    Values(Vec<String>),
}

/// Grafana's `escapeRegex` (the `regex` format): regex metacharacters and `/` get a backslash.
fn escape_regex(value: &str) -> String {
    let mut out = String::new();
    for c in value.chars() {
        if "\\^$*+?.()|[]{}/".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The text Grafana puts for `${name:regex}` (Flux) or `$name` (PromQL, in `=~"..."`).
fn format_regex(var: &Value, sel: &Sel) -> String {
    match sel {
        Sel::All => var["allValue"].as_str().expect("allValue").to_string(),
        Sel::Values(v) if v.len() == 1 => escape_regex(&v[0]),
        Sel::Values(v) => format!("({})", v.iter().map(|s| escape_regex(s)).collect::<Vec<_>>().join("|")),
    }
}

struct Scope<'a> {
    board: &'a Board,
    sel: HashMap<String, Sel>,
    bucket: String,
}

impl Scope<'_> {
    fn selection(&self, name: &str) -> (&Value, Sel) {
        let var = self
            .board
            .variables()
            .into_iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("{}: no variable {name}", self.board.uid()));
        (var, self.sel.get(name).cloned().unwrap_or(Sel::All))
    }

    /// A Flux query as the InfluxDB datasource sends it: the time range and window period, the
    /// variables, and the bench bucket for `iot_data`.
    fn flux(&self, query: &str) -> String {
        assert!(query.contains("\"iot_data\""), "no iot_data bucket to substitute in {query}");
        let mut q = query
            .replace("v.timeRangeStart", DAY_FROM)
            .replace("v.timeRangeStop", DAY_STOP)
            .replace("v.windowPeriod", WINDOW_PERIOD)
            .replace("\"iot_data\"", &format!("\"{}\"", self.bucket));
        for (name, format) in variable_refs(query) {
            assert_eq!(format.as_deref(), Some("regex"), "Flux uses ${{{name}:regex}}");
            let (var, sel) = self.selection(&name);
            q = q.replace(&format!("${{{name}:regex}}"), &format_regex(var, &sel));
        }
        assert!(!q.contains("${") && !q.contains("v.timeRange") && !q.contains("v.windowPeriod"), "left over: {q}");
        q
    }

    /// A PromQL query as the Prometheus datasource sends it (instant query at the end of the range).
    fn promql(&self, expr: &str) -> String {
        let mut q = expr.to_string();
        for (name, format) in variable_refs(expr) {
            let value = match name.as_str() {
                // Windows shorter than the scrapes this run waits for (`FRESH_SCRAPES`), so that no
                // sample of an earlier run of the test is in them.
                "__rate_interval" | "__range" => "10s".to_string(),
                "__interval" => "5s".to_string(),
                _ => {
                    let (var, sel) = self.selection(&name);
                    format_regex(var, &sel).replace('\\', "\\\\")
                }
            };
            let pattern = match format {
                Some(f) => format!("${{{name}:{f}}}"),
                None if q.contains(&format!("${{{name}}}")) => format!("${{{name}}}"),
                None => format!("${name}"),
            };
            q = q.replace(&pattern, &value);
        }
        assert!(!q.contains('$'), "left over: {q}");
        q
    }
}

// ------------------------------------------------------------------------------------------------
// (b) Flux against the bench's InfluxDB

/// Backfills the local day into `bucket` with the simulator and its InfluxDB sink; returns the
/// number of readings.
async fn backfill_day(bucket: &str) -> u64 {
    let dir = std::env::temp_dir().join(unique("grafana-day"));
    std::fs::create_dir_all(&dir).unwrap();
    let token = dir.join("influx-token");
    std::fs::write(&token, bench_var("BENCH_INFLUX_TOKEN")).unwrap();
    let toml = format!(
        "[simulation]\ninterval_seconds = 300\nfrom = \"{DAY_FROM}\"\nto = \"{DAY_LAST_TICK}\"\n\n\
         [embedded_broker]\nenabled = false\n\n[[mqtt]]\nenabled = false\n\n\
         [[influxdb]]\nurl = \"{}\"\norg = \"{}\"\nbucket = \"{bucket}\"\ntoken_env = \"\"\ntoken_file = \"{}\"\n\n\
         [metrics]\nlisten = \"127.0.0.1:0\"\n\n[status]\ninterval_seconds = 0\n",
        bench_var("BENCH_INFLUX_URL"),
        bench_var("BENCH_INFLUX_ORG"),
        token.display()
    );
    let path = dir.join("simulator.toml");
    std::fs::write(&path, toml).unwrap();
    let cfg = smartcity_simulator::SimulatorConfig::load(Some(&path)).unwrap();
    cfg.validate(Some(&path)).unwrap();
    let catalogue = smartcity_simulator::build_catalogue(&cfg).unwrap();
    assert_eq!(catalogue.len(), 10, "the built-in ten sensors");
    let summary = smartcity_simulator::run(cfg, catalogue, CancellationToken::new()).await.unwrap();
    assert_eq!(summary.published, summary.generated, "every reading of the day written to InfluxDB");
    summary.generated
}

/// Runs `flux`; fails on an error table (InfluxDB reports errors met while streaming that way).
async fn run_flux(influx: &Influx, flux: &str) -> Vec<HashMap<String, String>> {
    let rows = influx.query(flux).await;
    if let Some(row) = rows.iter().find(|r| r.contains_key("error")) {
        panic!("Flux error {:?}\n{flux}", row.get("error"));
    }
    rows
}

fn columns(rows: &[HashMap<String, String>]) -> BTreeSet<String> {
    rows.iter().flat_map(|r| r.keys().cloned()).filter(|c| !["", "result", "table"].contains(&c.as_str())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_flux_query_returns_the_columns_its_panel_uses() {
    let influx = Influx::default();
    let bucket = unique("grafana");
    influx.create_bucket(&bucket).await;
    let readings = backfill_day(&bucket).await;
    assert_eq!(readings, 2_880, "288 ticks of ten sensors");
    let stored: BTreeSet<_> = influx.seqs(&bucket, DAY_FROM, DAY_STOP).await.into_iter().collect();
    assert_eq!(stored.len(), 2_880, "every reading of the day is a point of the bucket");

    let catalogue = smartcity_model::Catalogue::default_ten();
    let boards = boards();
    let mut report = Vec::new();
    for b in boards.iter().filter(|b| b.is_influx()) {
        let uid = b.uid();
        let all = Scope { board: b, sel: HashMap::new(), bucket: bucket.clone() };

        // Variables: each lists the tag values of the day.
        for var in b.variables() {
            let name = var["name"].as_str().unwrap();
            let rows = run_flux(&influx, &all.flux(variable_query(var))).await;
            let values: BTreeSet<&str> = rows.iter().filter_map(|r| r.get("_value").map(String::as_str)).collect();
            assert!(!values.is_empty(), "{uid}: variable {name} lists nothing");
            report.push(format!("{uid} · variable {name}: {} values", values.len()));
        }

        for panel in b.panels() {
            let t = title(panel);
            let ptype = panel["type"].as_str().unwrap();
            let named = named_fields(panel);
            let mut union = BTreeSet::new();
            for target in targets(panel) {
                let Some(query) = target["query"].as_str() else { continue };
                let r = target["refId"].as_str().unwrap();
                let rows = run_flux(&influx, &all.flux(query)).await;
                assert!(!rows.is_empty(), "{uid} / {t} / {r}: no rows after a simulated day\n{}", all.flux(query));
                let cols = columns(&rows);
                assert!(
                    cols.contains("_value") || named.iter().any(|n| cols.contains(n)),
                    "{uid} / {t} / {r}: neither _value nor a field the panel names ({named:?}) in {cols:?}"
                );
                if ptype == "timeseries" || ptype == "heatmap" {
                    assert!(cols.contains("_time"), "{uid} / {t} / {r}: a time series without _time: {cols:?}");
                }
                if ptype == "geomap" {
                    for row in &rows {
                        let lat: f64 = row["lat"].parse().unwrap_or_else(|_| panic!("{uid}: lat of {row:?}"));
                        let lon: f64 = row["lon"].parse().unwrap_or_else(|_| panic!("{uid}: lon of {row:?}"));
                        assert!(
                            (14.3..14.95).contains(&lat) && (-61.3..-60.75).contains(&lon),
                            "{uid}: {row:?} off the island"
                        );
                    }
                    let sensors: BTreeSet<&str> = rows.iter().map(|r| r["sensor_id"].as_str()).collect();
                    assert_eq!(sensors.len(), 10, "{uid}: one marker per sensor");
                }
                report.push(format!("{uid} · {t} · {r}: {} rows, columns {cols:?}", rows.len()));
                union.extend(cols);
            }
            if t.starts_with("Days over 50") {
                // The day is one of a dust plume: both air quality sensors count it.
                let rows = run_flux(&influx, &all.flux(targets(panel)[0]["query"].as_str().unwrap())).await;
                let days: Vec<&str> = rows.iter().map(|r| r["_value"].as_str()).collect();
                assert_eq!(days, ["1", "1"], "{uid} / {t}: the dust day over 50 µg/m³ at both sensors");
            }
            let missing: Vec<&String> = named.iter().filter(|n| !union.contains(*n)).collect();
            assert!(missing.is_empty(), "{uid} / {t}: the panel names fields its queries do not return: {missing:?}");
        }

        // A selection in place of All: two communes (one with a space, as Grafana escapes it), and
        // traffic only where the dashboard has a kind. Rows outside it would mean a filter is off.
        let communes = ["Fort-de-France", "Le Lamentin"];
        let mut sel = HashMap::from([("commune".to_string(), Sel::Values(communes.map(String::from).to_vec()))]);
        let has_kind = b.variables().iter().any(|v| v["name"] == "kind");
        if has_kind {
            sel.insert("kind".into(), Sel::Values(vec!["traffic".into()]));
        }
        let allowed: BTreeSet<&str> = catalogue
            .sensors()
            .iter()
            .filter(|s| communes.contains(&s.commune.name()) && (!has_kind || s.kind.as_str() == "traffic"))
            .map(|s| &*s.id)
            .collect();
        let some = Scope { board: b, sel, bucket: bucket.clone() };
        let sensor_var = b.variables().into_iter().find(|v| v["name"] == "sensor").unwrap();
        let rows = run_flux(&influx, &some.flux(variable_query(sensor_var))).await;
        let listed: BTreeSet<&str> = rows.iter().map(|r| r["_value"].as_str()).collect();
        assert!(
            !listed.is_empty() && listed.is_subset(&allowed),
            "{uid}: sensor variable lists {listed:?}, not within {allowed:?}"
        );
        let mut with_rows = 0;
        for panel in b.panels() {
            for target in targets(panel) {
                let Some(query) = target["query"].as_str() else { continue };
                let rows = run_flux(&influx, &some.flux(query)).await;
                with_rows += usize::from(!rows.is_empty());
                for row in &rows {
                    if let Some(c) = row.get("commune") {
                        assert!(communes.contains(&c.as_str()), "{uid} / {}: commune {c} selected out", title(panel));
                    }
                    if let Some(s) = row.get("sensor_id") {
                        assert!(allowed.contains(s.as_str()), "{uid} / {}: sensor {s} selected out", title(panel));
                    }
                }
            }
        }
        assert!(with_rows > 0, "{uid}: nothing at all for {communes:?}");
        report.push(format!("{uid} · with commune = {communes:?}: {with_rows} queries return rows"));
    }
    eprintln!("Flux queries on a simulated day ({readings} readings, bucket {bucket}):\n  {}", report.join("\n  "));
}

// ------------------------------------------------------------------------------------------------
// (c) PromQL against the bench's Prometheus scraping our binaries

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The exposition texts of several endpoints merged into one: the samples of a family that more
/// than one endpoint has (`smartcity_build_info`) are put together under one HELP/TYPE.
fn merge_expositions(texts: &[String]) -> String {
    let mut order: Vec<String> = Vec::new();
    let mut families: HashMap<String, (Vec<String>, Vec<String>)> = HashMap::new();
    for text in texts {
        let mut current: Option<String> = None;
        for line in text.lines() {
            let meta = line.strip_prefix("# HELP ").or_else(|| line.strip_prefix("# TYPE "));
            if let Some(rest) = meta {
                let name = rest.split_whitespace().next().unwrap_or_default().to_string();
                let entry = families.entry(name.clone()).or_insert_with(|| {
                    order.push(name.clone());
                    Default::default()
                });
                let kind = &line[..6];
                if !entry.0.iter().any(|m| m.starts_with(kind)) {
                    entry.0.push(line.to_string());
                }
                current = Some(name);
            } else if !line.starts_with('#') && !line.trim().is_empty() {
                let sample_name: String = line.chars().take_while(|&c| c != '{' && c != ' ').collect();
                let name = match &current {
                    Some(c) if sample_name.starts_with(c.as_str()) => c.clone(),
                    _ => sample_name,
                };
                let entry = families.entry(name.clone()).or_insert_with(|| {
                    order.push(name.clone());
                    Default::default()
                });
                if !entry.1.iter().any(|s| s == line) {
                    entry.1.push(line.to_string());
                }
            }
        }
    }
    let mut out = String::new();
    for name in order {
        let (mut meta, samples) = families.remove(&name).unwrap();
        meta.sort(); // HELP before TYPE
        for line in meta.iter().chain(samples.iter()) {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Scrapes of this run to wait for before the queries: more than their windows (10 s at one scrape a
/// second), so that every rate and increase is computed on samples of this run only.
const FRESH_SCRAPES: u32 = 12;

/// Serves on `listener`, at every path, the merged `/metrics` of `urls`, fetched at each scrape, and
/// `probe` (a series naming this run). A failed fetch answers 502 (Prometheus then marks the target
/// down) and is kept in `failure`.
fn serve_merged(
    listener: tokio::net::TcpListener,
    urls: Vec<String>,
    probe: String,
    failure: Arc<Mutex<Option<String>>>,
) {
    let http = reqwest::Client::builder().timeout(Duration::from_millis(800)).build().unwrap();
    let handler = move || {
        let (http, urls, failure, probe) = (http.clone(), urls.clone(), failure.clone(), probe.clone());
        async move {
            let mut texts = vec![probe];
            for url in &urls {
                match http.get(url).send().await.and_then(|r| r.error_for_status()) {
                    Ok(r) => texts.push(r.text().await.unwrap_or_default()),
                    Err(e) => {
                        *failure.lock().unwrap() = Some(format!("{url}: {e}"));
                        return (axum::http::StatusCode::BAD_GATEWAY, [("content-type", "text/plain")], e.to_string());
                    }
                }
            }
            let ct = "text/plain; version=0.0.4; charset=utf-8";
            (axum::http::StatusCode::OK, [("content-type", ct)], merge_expositions(&texts))
        }
    };
    let app = axum::Router::new().fallback(handler);
    tokio::spawn(async move { axum::serve(listener, app).await.expect("metrics endpoint") });
}

/// The simulator (embedded broker), the gateway and the distribution service of this process.
struct Binaries {
    metrics: Vec<String>,
    stop: CancellationToken,
    tasks: Vec<(&'static str, tokio::task::JoinHandle<Result<(), String>>)>,
}

/// Starts the three binaries' libraries, as the demo does, with their listeners on free ports. The
/// gateway reads the embedded broker and writes to `bucket` of the bench's InfluxDB; it also has a
/// Kafka and a Pulsar source, and the distribution service a Pulsar subscription, all pointed at a
/// port where nothing listens: they keep retrying (as they do while a broker is down), so their
/// lag and backlog series exist, at 0 and -1 (unknown).
async fn start_binaries(bucket: &str) -> Binaries {
    let run = unique("grafana-prom");
    let dir = std::env::temp_dir().join(&run);
    std::fs::create_dir_all(&dir).unwrap();
    let (mqtt_port, sim_port, gw_port, dist_port, nowhere) =
        (free_port(), free_port(), free_port(), free_port(), free_port());
    let stop = CancellationToken::new();

    let mut sim = smartcity_simulator::SimulatorConfig::load(None).unwrap();
    sim.embedded_broker.listen = format!("127.0.0.1:{mqtt_port}").parse().unwrap();
    sim.mqtt[0].port = mqtt_port;
    sim.mqtt[0].client_id = format!("{run}-sim");
    sim.metrics.listen = format!("127.0.0.1:{sim_port}").parse().unwrap();
    sim.status.interval_seconds = 0;
    sim.simulation.interval_seconds = 1.0; // ten readings a second: rates show within seconds
    smartcity_connectors::mqtt::EmbeddedBroker::start(&sim.embedded_broker).expect("embedded broker");

    let token = dir.join("influx-token");
    std::fs::write(&token, bench_var("BENCH_INFLUX_TOKEN")).unwrap();
    let topics = |prefix: &str| -> String {
        smartcity_model::SensorKind::ALL
            .iter()
            .map(|k| format!("\"persistent://public/default/{prefix}-{}\"", k.pulsar_suffix()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let gateway_toml = format!(
        r#"[[mqtt]]
name = "mqtt"
host = "127.0.0.1"
port = {mqtt_port}
client_id = "{run}-gw"
topic_prefix = "city/sensors"

[[kafka]]
name = "kafka"
bootstrap_servers = "127.0.0.1:{nowhere}"
topic_template = "{run}-{{kind}}"
group_id = "{run}"

[[pulsar]]
name = "pulsar"
url = "pulsar://127.0.0.1:{nowhere}"
topics = [{gw_topics}]
subscription = "{run}"
admin_url = "http://127.0.0.1:{nowhere}"
dead_letter_topic = "persistent://public/default/{run}-dlq"

[influxdb]
url = "{influx}"
org = "{org}"
bucket = "{bucket}"
token_env = ""
token_file = "{token}"

[spool]
dir = "{spool}"

[dead_letters]
file = "{dead}"

[http]
listen = "127.0.0.1:{gw_port}"
"#,
        gw_topics = topics(&run),
        influx = bench_var("BENCH_INFLUX_URL"),
        org = bench_var("BENCH_INFLUX_ORG"),
        token = token.display(),
        spool = dir.join("spool").display(),
        dead = dir.join("dead-letters.jsonl").display(),
    );
    let gw_path = dir.join("gateway.toml");
    std::fs::write(&gw_path, gateway_toml).unwrap();
    let gw = smartcity_gateway::GatewayConfig::load(Some(&gw_path)).unwrap();
    gw.validate(Some(&gw_path)).unwrap();

    let dist_toml = format!(
        r#"[pulsar]
url = "pulsar://127.0.0.1:{nowhere}"
topics = [{dist_topics}]
subscription = "{run}-distribution"
dead_letter_topic = "persistent://public/default/{run}-distribution-dlq"
admin_url = "http://127.0.0.1:{nowhere}"

[[mqtt]]
name = "mqtt"
host = "127.0.0.1"
port = {mqtt_port}
client_id = "{run}-dist"
topic_prefix = "test/{run}/distribution"

[metrics]
listen = "127.0.0.1:{dist_port}"

[status]
interval_seconds = 0
"#,
        dist_topics = topics(&format!("{run}-d")),
    );
    let dist_path = dir.join("distribution.toml");
    std::fs::write(&dist_path, dist_toml).unwrap();
    let dist = smartcity_distribution::DistributionConfig::load(Some(&dist_path)).unwrap();
    dist.validate(Some(&dist_path)).unwrap();

    let catalogue = smartcity_simulator::build_catalogue(&sim).unwrap();
    let s = stop.clone();
    let simulator = tokio::spawn(async move {
        smartcity_simulator::run(sim, catalogue, s).await.map(|_| ()).map_err(|e| e.to_string())
    });
    let s = stop.clone();
    let gateway = tokio::spawn(async move { smartcity_gateway::run(gw, s).await });
    let s = stop.clone();
    let distribution =
        tokio::spawn(async move { smartcity_distribution::run(dist, s).await.map(|_| ()).map_err(|e| e.to_string()) });
    let b = Binaries {
        metrics: vec![
            format!("http://127.0.0.1:{sim_port}/metrics"),
            format!("http://127.0.0.1:{gw_port}/metrics"),
            format!("http://127.0.0.1:{dist_port}/metrics"),
        ],
        stop,
        tasks: vec![("simulator", simulator), ("gateway", gateway), ("distribution", distribution)],
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    for url in &b.metrics {
        while reqwest::get(url).await.and_then(|r| r.error_for_status()).is_err() {
            b.check_running();
            assert!(Instant::now() < deadline, "{url} not served within 30 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    b
}

impl Binaries {
    /// Panics if one of the binaries stopped (they run until `stop`).
    fn check_running(&self) {
        for (name, task) in &self.tasks {
            assert!(!task.is_finished(), "the {name} stopped early (see its log above)");
        }
    }
}

/// An instant query; the result's (labels, value) pairs.
async fn prom_query(http: &reqwest::Client, base: &str, promql: &str) -> Vec<(Value, f64)> {
    let resp = http
        .get(format!("{base}/api/v1/query"))
        .query(&[("query", promql)])
        .send()
        .await
        .unwrap_or_else(|e| panic!("Prometheus at {base} unreachable: {e}"));
    let status = resp.status();
    let json: Value = resp.json().await.unwrap_or_else(|e| panic!("{promql}: not JSON: {e}"));
    assert!(status.is_success() && json["status"] == "success", "{promql}: HTTP {status}: {json}");
    match json["data"]["resultType"].as_str() {
        Some("vector") => json["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let v = r["value"][1].as_str().unwrap_or_else(|| panic!("{promql}: sample {r}"));
                (r["metric"].clone(), v.parse().unwrap_or_else(|e| panic!("{promql}: value {v}: {e}")))
            })
            .collect(),
        Some("scalar") => vec![(Value::Null, json["data"]["result"][1].as_str().unwrap().parse().unwrap())],
        other => panic!("{promql}: unexpected result type {other:?}"),
    }
}

/// The metric (and label) names of a PromQL expression: its identifiers with an underscore, but the
/// language's own (functions, `group_right`...) and Grafana's `$__...`. Quoted strings hold none (`"public/default"`).
fn metric_names(expr: &str) -> BTreeSet<String> {
    const PROMQL: [&str; 5] = ["histogram_quantile", "group_left", "group_right", "label_replace", "label_join"];
    let mut out = BTreeSet::new();
    let mut in_string = false;
    let mut word = String::new();
    for c in expr.chars().chain([' ']) {
        if c == '"' {
            in_string = !in_string;
        }
        if !in_string && (c.is_ascii_alphanumeric() || c == '_' || c == ':' || c == '$') {
            word.push(c);
            continue;
        }
        if word.contains('_') && !word.starts_with('$') && !PROMQL.contains(&word.as_str()) {
            out.insert(word.clone());
        }
        word.clear();
    }
    out
}

/// Every PromQL target of the pipeline and brokers dashboards: (uid, panel title, refId, expr).
fn promql_targets(boards: &[Board]) -> Vec<(&str, &str, &str, &str)> {
    let mut out = Vec::new();
    for uid in ["smartcity-pipeline", "smartcity-brokers"] {
        let b = board(boards, uid);
        for panel in b.panels() {
            for target in targets(panel) {
                if let Some(expr) = target["expr"].as_str() {
                    out.push((b.uid(), title(panel), target["refId"].as_str().unwrap(), expr));
                }
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_promql_query_returns_series_from_our_binaries() {
    let base = bench_var("BENCH_PROMETHEUS_URL");
    let target = bench_var("BENCH_PROMETHEUS_TEST_TARGET");
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    prom_query(&http, &base, "up").await; // fails loudly when Prometheus is down
    let listener = tokio::net::TcpListener::bind(&target).await.unwrap_or_else(|e| {
        panic!("cannot listen on the scrape target {target} ({e}): is a gateway or another test using it?")
    });
    let influx = Influx::default();
    let bucket = unique("grafana-prom");
    influx.create_bucket(&bucket).await;
    let binaries = start_binaries(&bucket).await;
    let mut urls = binaries.metrics.clone();
    urls.push(format!("{}/metrics", bench_var("BENCH_INFLUX_URL"))); // InfluxDB's own metrics
    let failure = Arc::new(Mutex::new(None));
    let run = unique("run");
    let probe = format!(
        "# HELP testbench_grafana_run The test run serving this target.\n# TYPE testbench_grafana_run gauge\n\
         testbench_grafana_run{{run=\"{run}\"}} 1\n"
    );
    serve_merged(listener, urls, probe, failure.clone());

    // Prometheus scrapes the merged text: the three components under our target, for long enough
    // that the queries' windows hold samples of this run only.
    let components = format!("count by (component) (smartcity_build_info{{instance=\"{target}\"}})");
    let scrapes = format!("count_over_time(testbench_grafana_run{{run=\"{run}\"}}[1m])");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        binaries.check_running();
        let fresh = prom_query(&http, &base, &scrapes).await.first().map(|(_, v)| *v).unwrap_or(0.0);
        if fresh >= f64::from(FRESH_SCRAPES) && prom_query(&http, &base, &components).await.len() == 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus did not scrape the three binaries at {target} within 60 s (last fetch error: {:?}); see {base}/targets",
            failure.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let boards = boards();
    let all_targets = promql_targets(&boards);
    for &(uid, t, r) in EXPORTER_ONLY {
        let (_, _, _, expr) = all_targets
            .iter()
            .find(|(u, tt, rr, _)| (*u, *tt, *rr) == (uid, t, r))
            .unwrap_or_else(|| panic!("EXPORTER_ONLY lists {uid} / {t} / {r}, which no longer exists"));
        let names = metric_names(expr);
        assert!(
            !names.is_empty()
                && names.iter().all(|n| ["broker_", "pulsar_", "redpanda_"].iter().any(|p| n.starts_with(p))),
            "{uid} / {t} / {r} reads more than an exporter's metrics ({names:?}): {expr}"
        );
    }
    let checked: Vec<_> = all_targets.iter().filter(|(u, t, r, _)| !EXPORTER_ONLY.contains(&(*u, *t, *r))).collect();

    // Every query returns series (rates need two scrapes in their window: retry for a while).
    let instance = board(&boards, "smartcity-pipeline");
    let all = Scope { board: instance, sel: HashMap::new(), bucket: String::new() };
    let deadline = Instant::now() + Duration::from_secs(90);
    let results = loop {
        binaries.check_running();
        let mut results = BTreeMap::new();
        let mut empty = Vec::new();
        for &&(uid, t, r, expr) in &checked {
            let q = all.promql(expr);
            let series = prom_query(&http, &base, &q).await;
            if series.is_empty() {
                empty.push(format!("{uid} / {t} / {r}: {q}"));
            }
            results.insert((t, r), series);
        }
        if empty.is_empty() {
            break results;
        }
        assert!(Instant::now() < deadline, "queries without series after 90 s:\n{}", empty.join("\n"));
        tokio::time::sleep(Duration::from_secs(2)).await;
    };

    // And they show the pipeline at work, not only that the names exist.
    let positive = |t: &str, r: &str| results[&(t, r)].iter().any(|(_, v)| *v > 0.0);
    let deadline = Instant::now() + Duration::from_secs(60);
    for (t, r) in [
        ("Simulator: readings per second per sink", "A"),
        ("Gateway: messages per second per source", "A"),
        ("Gateway: messages per second per source", "B"),
        ("Points written per second", "A"),
    ] {
        let expr = checked.iter().find(|(_, tt, rr, _)| (*tt, *rr) == (t, r)).unwrap().3;
        let mut ok = positive(t, r);
        while !ok {
            assert!(Instant::now() < deadline, "{t} / {r} stays at 0: {expr}");
            tokio::time::sleep(Duration::from_secs(1)).await;
            ok = prom_query(&http, &base, &all.promql(expr)).await.iter().any(|(_, v)| *v > 0.0);
        }
    }
    let p95 = &results[&("End-to-end latency (observedAt → written), gateway", "B")];
    assert!(p95.iter().any(|(_, v)| v.is_finite()), "an end-to-end p95: {p95:?}");

    // The dashboard's variable, and the queries with one instance selected instead of All.
    let var = instance.variables().into_iter().find(|v| v["name"] == "instance").expect("instance variable");
    let q = variable_query(var);
    let (metric, label) = q
        .strip_prefix("label_values(")
        .and_then(|s| s.strip_suffix(')'))
        .and_then(|s| s.split_once(", "))
        .unwrap_or_else(|| panic!("label_values(metric, label): {q}"));
    let values: Value = http
        .get(format!("{base}/api/v1/label/{label}/values"))
        .query(&[("match[]", metric)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed: Vec<&str> = values["data"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(listed.contains(&target.as_str()), "{q} lists {listed:?}, not {target}");
    let one = Scope {
        board: instance,
        sel: HashMap::from([("instance".to_string(), Sel::Values(vec![target.clone()]))]),
        bucket: String::new(),
    };
    for &&(uid, t, r, expr) in
        checked.iter().filter(|(u, _, _, e)| *u == "smartcity-pipeline" && e.contains("$instance"))
    {
        let q = one.promql(expr);
        assert!(!prom_query(&http, &base, &q).await.is_empty(), "{uid} / {t} / {r} with instance {target}: {q}");
    }

    let summary: Vec<String> = results
        .iter()
        .map(|((t, r), series)| {
            let max = series.iter().map(|(_, v)| *v).filter(|v| v.is_finite()).fold(f64::NAN, f64::max);
            format!("{t} / {r}: {} series, max {max:.3}", series.len())
        })
        .collect();
    eprintln!(
        "PromQL: {} queries return series ({} on exporters not run here):\n  {}",
        checked.len(),
        EXPORTER_ONLY.len(),
        summary.join("\n  ")
    );
    binaries.stop.cancel();
}
