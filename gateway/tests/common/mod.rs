//! The gateway on the real bench, as an operator runs it: the `gateway` binary with a config file,
//! fed by the simulator (in process) over the bench's Mosquitto, Kafka, REST proxy and Pulsar, and
//! every (sensor, seq) read back from InfluxDB with Flux.

#![allow(dead_code)] // each test file uses its own part of these helpers

use smartcity_model::Catalogue;
use smartcity_testbench::bench_var;
use smartcity_testbench::gate::Gate;
use smartcity_testbench::readback::Influx;
use smartcity_testbench::sim_config::{secret_file, RunNames};
use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One test run: its topics, its InfluxDB bucket, its folder for spools and dead letters.
pub struct Run {
    pub names: RunNames,
    pub dir: PathBuf,
    pub influx: Influx,
}

/// Which sources a gateway of the run reads.
#[derive(Clone, Default)]
pub struct Sources {
    pub mqtt: bool,
    pub kafka: bool,
    pub kafka_rest: bool,
    pub pulsar: bool,
    /// Share the MQTT subscription with the run's other gateways.
    pub share: bool,
}

impl Run {
    pub async fn new(tag: &str) -> Self {
        let names = RunNames::new(tag);
        let dir = std::env::temp_dir().join(&names.run);
        std::fs::create_dir_all(&dir).unwrap();
        let influx = Influx::default();
        influx.create_bucket(&names.bucket()).await;
        Run { names, dir, influx }
    }

    pub fn mqtt_prefix(&self) -> String {
        self.names.mqtt_prefix("gw")
    }
    pub fn kafka_template(&self) -> String {
        self.names.kafka_template("gw")
    }
    pub fn rest_template(&self) -> String {
        self.names.kafka_template("rest")
    }

    /// Writes the config of gateway `instance` and returns its path. `influx_url` lets a test put a
    /// gate in front of InfluxDB; `spool_max` bounds the spool.
    pub fn gateway_config(&self, instance: &str, sources: &Sources, influx_url: &str, spool_max: u64) -> PathBuf {
        let run = &self.names.run;
        let dir = self.dir.join(instance);
        let mut toml = String::new();
        let share = if sources.share { format!("share_group = \"{run}\"\n") } else { String::new() };
        toml += &format!(
            "[[mqtt]]\nname = \"mqtt\"\nenabled = {}\nhost = \"{}\"\nport = {}\nclient_id = \"{run}-{instance}\"\ntopic_prefix = \"{}\"\n{share}inflight = 200\n\n",
            sources.mqtt,
            bench_var("BENCH_MQTT_HOST"),
            bench_var("BENCH_MQTT_PORT"),
            self.mqtt_prefix()
        );
        if sources.kafka {
            toml += &format!(
                // A killed gateway stays a group member until its session times out: 6 s (the
                // broker's minimum) rather than 45 s keeps the SIGKILL tests short.
                "[[kafka]]\nname = \"kafka\"\nbootstrap_servers = \"{}\"\ntopic_template = \"{}\"\ngroup_id = \"{run}\"\n[kafka.properties]\n\"session.timeout.ms\" = \"6000\"\n\n",
                bench_var("BENCH_KAFKA_BOOTSTRAP"),
                self.kafka_template()
            );
        }
        if sources.kafka_rest {
            toml += &format!(
                "[[kafka_rest]]\nname = \"kafka-rest\"\nurl = \"{}\"\ntopic_template = \"{}\"\ngroup = \"{run}\"\ninstance = \"{run}-{instance}\"\n\n",
                bench_var("BENCH_KAFKA_REST_URL"),
                self.rest_template()
            );
        }
        if sources.pulsar {
            let topics: Vec<String> = self.names.pulsar_topics().iter().map(|t| format!("\"{t}\"")).collect();
            toml += &format!(
                "[[pulsar]]\nname = \"pulsar\"\nurl = \"{}\"\ntopics = [{}]\nsubscription = \"{run}\"\nadmin_url = \"{}\"\ndead_letter_topic = \"persistent://public/default/{run}-dlq\"\n\n",
                bench_var("BENCH_PULSAR_URL"),
                topics.join(", "),
                bench_var("BENCH_PULSAR_ADMIN_URL"),
            );
        }
        toml += &format!(
            "[influxdb]\nurl = \"{influx_url}\"\norg = \"{}\"\nbucket = \"{}\"\ntoken_env = \"\"\ntoken_file = \"{}\"\ntimeout_seconds = 5\n\n",
            bench_var("BENCH_INFLUX_ORG"),
            self.names.bucket(),
            secret_file(&self.names, "influx-token", &bench_var("BENCH_INFLUX_TOKEN")),
        );
        toml += &format!(
            "[writer]\nbatch_size = 2000\nlinger_ms = 50\n\n[spool]\ndir = \"{}\"\nmax_bytes = {spool_max}\nsegment_bytes = 1048576\n\n[dead_letters]\nfile = \"{}\"\n\n[http]\nlisten = \"127.0.0.1:{}\"\n",
            dir.join("spool").display(),
            dir.join("dead-letters.jsonl").display(),
            free_port()
        );
        let path = self.dir.join(format!("{instance}.toml"));
        std::fs::write(&path, toml).unwrap();
        path
    }

    /// The config at `config` without its `[influxdb]` table, as `{instance}.toml`: that gateway writes
    /// line-protocol files into `{instance}/points` and serves histories from memory only.
    pub fn without_influx(&self, config: &Path, instance: &str) -> PathBuf {
        let mut table: toml::Table = std::fs::read_to_string(config).unwrap().parse().unwrap();
        table.remove("influxdb");
        let points = self.dir.join(instance).join("points").display().to_string();
        let mut files = toml::Table::new();
        files.insert("dir".into(), toml::Value::String(points));
        table.insert("files".into(), toml::Value::Table(files));
        let path = self.dir.join(format!("{instance}.toml"));
        std::fs::write(&path, toml::to_string(&table).unwrap()).unwrap();
        path
    }

    pub fn dead_letters(&self, instance: &str) -> Vec<smartcity_gateway::dead_letter::DeadLetterLine> {
        let path = self.dir.join(instance).join("dead-letters.jsonl");
        if !path.exists() {
            return Vec::new();
        }
        smartcity_gateway::dead_letter::read(&path).unwrap()
    }

    /// `n` generated sensors whose ids start with `prefix` (so that two feeds of one run never
    /// write the same series).
    pub fn catalogue(&self, prefix: &str, n: usize) -> PathBuf {
        let mut text = String::new();
        for s in Catalogue::generated(n, 7).unwrap().sensors() {
            text += &format!(
                "[[sensor]]\nid = \"{prefix}-{}\"\nkind = \"{}\"\ncommune = \"{}\"\nlat = {}\nlon = {}\n",
                s.id,
                s.kind.as_str(),
                s.commune.name(),
                s.lat,
                s.lon
            );
        }
        let path = self.dir.join(format!("{prefix}-catalogue.toml"));
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Publishes a backfill of `sensors` sensors (ids `{prefix}-...`) from `from` to `to` (5 s ticks)
    /// with the simulator itself, through the sink described by `sink_toml`; returns how many.
    pub async fn simulate(&self, prefix: &str, sensors: usize, from: &str, to: &str, sink_toml: &str) -> u64 {
        let toml = format!(
            "[embedded_broker]\nenabled = false\n{sink_toml}\n[metrics]\nlisten = \"127.0.0.1:0\"\n[status]\ninterval_seconds = 0\n"
        );
        let path = self.dir.join(format!("{prefix}-sim.toml"));
        std::fs::write(&path, toml).unwrap();
        let mut cfg = smartcity_simulator::SimulatorConfig::load(Some(&path)).unwrap();
        cfg.simulation.from = from.into();
        cfg.simulation.to = to.into();
        cfg.simulation.catalogue = self.catalogue(prefix, sensors).display().to_string();
        cfg.validate(Some(&path)).unwrap();
        let catalogue = smartcity_simulator::build_catalogue(&cfg).unwrap();
        let summary = smartcity_simulator::run(cfg, catalogue, CancellationToken::new()).await.unwrap();
        assert_eq!(summary.published, summary.generated, "every reading reached the broker");
        summary.generated
    }

    pub fn mqtt_sink(&self) -> String {
        format!(
            "[[mqtt]]\nhost = \"{}\"\nport = {}\nclient_id = \"{}-sim\"\ntopic_prefix = \"{}\"\nqos = 1\n",
            bench_var("BENCH_MQTT_HOST"),
            bench_var("BENCH_MQTT_PORT"),
            self.names.run,
            self.mqtt_prefix()
        )
    }

    pub fn kafka_sink(&self) -> String {
        format!(
            "[[mqtt]]\nenabled = false\n[[kafka]]\nbootstrap_servers = \"{}\"\ntopic_template = \"{}\"\n",
            bench_var("BENCH_KAFKA_BOOTSTRAP"),
            self.kafka_template()
        )
    }

    pub fn kafka_rest_sink(&self) -> String {
        format!(
            "[[mqtt]]\nenabled = false\n[[kafka_rest]]\nurl = \"{}\"\ntopic_template = \"{}\"\n",
            bench_var("BENCH_KAFKA_REST_URL"),
            self.rest_template()
        )
    }

    pub fn pulsar_sink(&self) -> String {
        format!(
            "[[mqtt]]\nenabled = false\n[[pulsar]]\nurl = \"{}\"\ntopic_template = \"{}\"\n",
            bench_var("BENCH_PULSAR_URL"),
            self.names.pulsar_template()
        )
    }

    /// Every distinct (sensor id, seq) in the run's bucket.
    pub async fn written(&self) -> BTreeSet<(String, u64)> {
        self.influx
            .seqs(&self.names.bucket(), "2020-01-01T00:00:00Z", "2030-01-01T00:00:00Z")
            .await
            .into_iter()
            .collect()
    }

    /// Waits until the bucket holds `want` distinct (sensor, seq), or `timeout`; returns what it holds.
    pub async fn wait_written(&self, want: usize, timeout: Duration) -> BTreeSet<(String, u64)> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.written().await;
            if got.len() >= want || Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
}

/// The (sensor, seq) a backfill of `sensors` sensors with ids `{prefix}-...` over `ticks` ticks makes.
pub fn expected(run: &Run, prefix: &str, sensors: usize, ticks: u64) -> BTreeSet<(String, u64)> {
    let _ = run;
    let mut set = BTreeSet::new();
    for s in Catalogue::generated(sensors, 7).unwrap().sensors() {
        for seq in 0..ticks {
            set.insert((format!("{prefix}-{}", s.id), seq));
        }
    }
    set
}

/// A running `gateway` process.
pub struct Gateway {
    pub child: Child,
    pub port: u16,
    pub log: PathBuf,
    config: PathBuf,
}

impl Gateway {
    /// Starts the binary with `config` and waits until it serves HTTP.
    pub fn start(config: &Path, log_name: &str) -> Gateway {
        let text = std::fs::read_to_string(config).unwrap();
        let port: u16 = text
            .lines()
            .find_map(|l| l.strip_prefix("listen = \"127.0.0.1:"))
            .and_then(|p| p.trim_end_matches('"').parse().ok())
            .expect("http.listen in the config");
        let log = config.with_file_name(format!("{log_name}.log"));
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_gateway"))
            .args(["--config", config.to_str().unwrap()])
            .env("RUST_LOG", std::env::var("GW_TEST_LOG").unwrap_or_else(|_| "info".into()))
            .stdout(Stdio::null())
            .stderr(Stdio::from(file))
            .spawn()
            .unwrap();
        let g = Gateway { child, port, log, config: config.to_path_buf() };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "gateway did not start serving: {}", g.log_text());
            std::thread::sleep(Duration::from_millis(50));
        }
        g
    }

    pub fn log_text(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// SIGKILL: no flush, no goodbye.
    pub fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) {
        assert!(Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap().success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "gateway exit {status}: {}", self.log_text());
                return;
            }
            assert!(Instant::now() < deadline, "gateway ignored SIGTERM: {}", self.log_text());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The value of one metric series (`name{labels}` exactly as exposed), 0 when absent.
    pub async fn metric(&self, series: &str) -> f64 {
        let text = reqwest::get(format!("http://127.0.0.1:{}/metrics", self.port))
            .await
            .and_then(|r| r.error_for_status())
            .unwrap_or_else(|e| panic!("GET /metrics: {e}"))
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
            .map(|v| v.trim().parse().unwrap())
            .unwrap_or(0.0)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `services.sh restart NAME`: the bench server stopped and started again with its data kept.
pub async fn restart_service(name: &'static str) {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let out = tokio::task::spawn_blocking(move || {
        Command::new("scripts/services/services.sh").args(["restart", name]).current_dir(root).output().unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success(), "restart {name}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Polls `gw`'s metric `series` until it is at least `at_least` (or `timeout`); returns the last value.
pub async fn wait_metric(gw: &Gateway, series: &str, at_least: f64, timeout: Duration) -> f64 {
    let deadline = Instant::now() + timeout;
    loop {
        let v = gw.metric(series).await;
        if v >= at_least || Instant::now() > deadline {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until the gateway's MQTT source is subscribed (the broker then keeps our session's messages).
pub async fn wait_mqtt_connected(gw: &Gateway) {
    let v = wait_metric(gw, "smartcity_gateway_source_connected{source=\"mqtt\"}", 1.0, Duration::from_secs(20)).await;
    assert_eq!(v, 1.0, "MQTT source connected: {}", gw.log_text());
    tokio::time::sleep(Duration::from_millis(500)).await;
}

/// Asserts that `got` holds exactly `want`, naming a few missing ones.
pub fn assert_exactly(want: &BTreeSet<(String, u64)>, got: &BTreeSet<(String, u64)>) {
    let missing: Vec<_> = want.difference(got).take(10).collect();
    let extra: Vec<_> = got.difference(want).take(10).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{} of {} missing (e.g. {missing:?}); unexpected: {extra:?}",
        want.difference(got).count(),
        want.len()
    );
}

/// Creates the run's six Kafka topics (one partition each) before any gateway subscribes, so that a
/// consumer group settles at once instead of when the first producer creates them.
pub async fn create_kafka_topics(run: &Run) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let admin: AdminClient<rdkafka::client::DefaultClientContext> =
        rdkafka::ClientConfig::new().set("bootstrap.servers", bench_var("BENCH_KAFKA_BOOTSTRAP")).create().unwrap();
    let names: Vec<String> = run.names.kafka_topics("gw");
    let topics: Vec<NewTopic> = names.iter().map(|t| NewTopic::new(t, 1, TopicReplication::Fixed(1))).collect();
    for result in admin.create_topics(&topics, &AdminOptions::new()).await.unwrap() {
        result.unwrap_or_else(|(topic, e)| panic!("creating {topic}: {e}"));
    }
}

/// Waits until the gateway's log contains `needle` (or panics after `timeout`).
pub async fn wait_log(gw: &Gateway, needle: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while !gw.log_text().contains(needle) {
        assert!(Instant::now() < deadline, "no `{needle}` in the log: {}", gw.log_text());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A TCP gate in front of the bench's InfluxDB, for tests that cut, stall or hold its answers.
pub async fn influx_gate() -> std::sync::Arc<Gate> {
    let influx: reqwest::Url = bench_var("BENCH_INFLUX_URL").parse().expect("BENCH_INFLUX_URL is a URL");
    let target = format!("{}:{}", influx.host_str().expect("a host"), influx.port().expect("a port"));
    Gate::open_to(target.parse().expect("host:port")).await
}

/// Replaces `from` with `to` in the config file. `from` must be there: a default that changed in
/// `Run::gateway_config` fails the test instead of leaving the setting unedited.
pub fn edit_config(config: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(config).unwrap();
    assert!(text.contains(from), "`{from}` is not in {}: {text}", config.display());
    std::fs::write(config, text.replacen(from, to, 1)).unwrap();
}
