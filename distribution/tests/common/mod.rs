//! A distribution run on the real bench: simulator → Pulsar (topics of one test run) → the
//! distribution service (in process) → Mosquitto plain and mutual TLS, FROST, and the NGSI-LD
//! contract server; with the read-back of every target.

#![allow(dead_code)] // each test file uses its own part of these helpers

use smartcity_connectors::mqtt::MqttConfig;
use smartcity_connectors::tls::TlsConfig;
use smartcity_distribution::{DistributionConfig, Summary};
use smartcity_testbench::bench_var;
use smartcity_testbench::ngsi_ld_contract::ContractServer;
use smartcity_testbench::readback::MqttCollector;
use smartcity_testbench::sim_config::{secret_file, RunNames};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub struct Run {
    pub names: RunNames,
    pub ngsi: ContractServer,
}

impl Run {
    pub async fn new(tag: &str) -> Self {
        Run { names: RunNames::new(tag), ngsi: ContractServer::start(false).await }
    }

    pub fn topic(&self, kind: &str) -> String {
        format!("persistent://public/default/{}-{kind}", self.names.run)
    }

    pub fn dlq(&self) -> String {
        format!("persistent://public/default/{}-dlq", self.names.run)
    }

    pub fn frost_prefix(&self) -> String {
        format!("{}-", self.names.run)
    }

    /// The distribution config of this run: its topics and subscription, both Mosquitto listeners,
    /// FROST at `frost_url`, the contract server.
    pub fn distribution(&self, frost_url: &str, instance: &str) -> DistributionConfig {
        let run = &self.names.run;
        let topics: Vec<String> =
            smartcity_model::SensorKind::ALL.iter().map(|k| format!("\"{}\"", self.topic(k.pulsar_suffix()))).collect();
        let toml = format!(
            r#"
[pulsar]
url = "{pulsar}"
topics = [{topics}]
subscription = "{run}-sub"
dead_letter_topic = "{dlq}"
dead_letter_subscription = "{run}-dlq-sub"
max_redeliveries = 3
redelivery_delay_ms = 500
admin_url = "{admin}"
watchdog_seconds = 10

[delivery]
retry_budget_seconds = 60

[[mqtt]]
name = "mosquitto"
host = "{host}"
port = {port}
client_id = "{run}-{instance}-plain"
topic_prefix = "{prefix_plain}"

[[mqtt]]
name = "mosquitto-tls"
host = "{host}"
port = {tls_port}
client_id = "{run}-{instance}-tls"
topic_prefix = "{prefix_tls}"
username = "{user}"
password_file = "{pw}"
[mqtt.tls]
ca_file = "{ca}"
client_cert_file = "{cert}"
client_key_file = "{key}"

[[sensorthings]]
name = "frost"
url = "{frost_url}"
name_prefix = "{frost_prefix}"

[[ngsi_ld]]
name = "ngsi-ld"
url = "{ngsi}"

[metrics]
listen = "127.0.0.1:0"

[status]
interval_seconds = 0
"#,
            pulsar = bench_var("BENCH_PULSAR_URL"),
            topics = topics.join(", "),
            dlq = self.dlq(),
            admin = bench_var("BENCH_PULSAR_ADMIN_URL"),
            host = bench_var("BENCH_MQTT_HOST"),
            port = bench_var("BENCH_MQTT_PORT"),
            tls_port = bench_var("BENCH_MQTTS_PORT"),
            prefix_plain = self.names.mqtt_prefix("mosquitto"),
            prefix_tls = self.names.mqtt_prefix("mosquitto-tls"),
            user = bench_var("BENCH_MQTT_USER"),
            pw = secret_file(&self.names, "dist-mqtt-pw", &bench_var("BENCH_MQTT_PASSWORD")),
            ca = bench_var("BENCH_TLS_CA"),
            cert = bench_var("BENCH_TLS_CLIENT_CERT"),
            key = bench_var("BENCH_TLS_CLIENT_KEY"),
            frost_prefix = self.frost_prefix(),
            ngsi = self.ngsi.url(),
        );
        let path = std::env::temp_dir().join(format!("{run}-{instance}-distribution.toml"));
        std::fs::write(&path, toml).unwrap();
        let cfg = DistributionConfig::load(Some(&path)).unwrap();
        cfg.validate(Some(&path)).unwrap();
        cfg
    }

    /// Messages of this run's subscription not yet acknowledged, over its six topics (admin API).
    pub async fn backlog(&self) -> u64 {
        let mut total = 0;
        for kind in smartcity_model::SensorKind::ALL {
            let topic = self.topic(kind.pulsar_suffix());
            let path = topic.replace("persistent://", "persistent/");
            let url = format!("{}/admin/v2/{path}/stats", bench_var("BENCH_PULSAR_ADMIN_URL"));
            let stats: serde_json::Value = reqwest::get(&url).await.unwrap().json().await.unwrap_or_default();
            total += stats["subscriptions"][format!("{}-sub", self.names.run)]["msgBacklog"].as_u64().unwrap_or(0);
        }
        total
    }

    /// Starts a distribution instance in this process.
    pub fn start(&self, cfg: DistributionConfig) -> (CancellationToken, JoinHandle<Summary>) {
        let stop = CancellationToken::new();
        let s = stop.clone();
        (stop, tokio::spawn(async move { smartcity_distribution::run(cfg, s).await.expect("distribution runs") }))
    }

    /// Publishes the built-in ten sensors' backfill `from`..=`to` (5 s ticks) to this run's topics with
    /// the simulator itself; `batch_size` of its Pulsar producer (1: no batching).
    pub async fn simulate(&self, from: &str, to: &str, batch_size: u32) -> u64 {
        let toml = format!(
            "[simulation]\ndrain_seconds = 60\n[embedded_broker]\nenabled = false\n[[mqtt]]\nenabled = false\n[[pulsar]]\nurl = \"{}\"\ntopic_template = \"{}\"\nbatch_size = {batch_size}\n[metrics]\nlisten = \"127.0.0.1:0\"\n[status]\ninterval_seconds = 0\n",
            bench_var("BENCH_PULSAR_URL"),
            self.topic("{kind}")
        );
        let path = std::env::temp_dir().join(format!("{}-sim.toml", self.names.run));
        std::fs::write(&path, toml).unwrap();
        let mut cfg = smartcity_simulator::SimulatorConfig::load(Some(&path)).unwrap();
        cfg.simulation.from = from.into();
        cfg.simulation.to = to.into();
        cfg.validate(Some(&path)).unwrap();
        let catalogue = smartcity_simulator::build_catalogue(&cfg).unwrap();
        let summary = smartcity_simulator::run(cfg, catalogue, CancellationToken::new()).await.unwrap();
        assert_eq!(summary.published, summary.generated, "every reading reached Pulsar");
        summary.generated
    }

    pub async fn mqtt_plain(&self) -> MqttCollector {
        let mut c = MqttConfig::new(
            &bench_var("BENCH_MQTT_HOST"),
            bench_var("BENCH_MQTT_PORT").parse().unwrap(),
            &format!("{}-watch", self.names.run),
        );
        c.clean_session = true;
        MqttCollector::start(c.options().unwrap(), &self.names.mqtt_prefix("mosquitto")).await
    }

    pub async fn mqtt_tls(&self) -> MqttCollector {
        let mut c = MqttConfig::new(
            &bench_var("BENCH_MQTT_HOST"),
            bench_var("BENCH_MQTTS_PORT").parse().unwrap(),
            &format!("{}-watch-tls", self.names.run),
        );
        c.clean_session = true;
        c.username = Some(bench_var("BENCH_MQTT_USER"));
        c.password_env = String::new();
        c.password_file = Some(secret_file(&self.names, "watch-pw", &bench_var("BENCH_MQTT_PASSWORD")).into());
        c.tls = Some(TlsConfig {
            ca_file: bench_var("BENCH_TLS_CA").into(),
            client_cert_file: Some(bench_var("BENCH_TLS_CLIENT_CERT").into()),
            client_key_file: Some(bench_var("BENCH_TLS_CLIENT_KEY").into()),
        });
        MqttCollector::start(c.options().unwrap(), &self.names.mqtt_prefix("mosquitto-tls")).await
    }

    /// Observations FROST holds under this run's prefix (`$count` over the Things' Datastreams).
    pub async fn frost_observations(&self, frost_url: &str) -> u64 {
        let url = format!(
            "{frost_url}/Observations?$count=true&$top=0&$filter=startswith(Datastream/Thing/name,'{}')",
            self.frost_prefix()
        );
        let v: serde_json::Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
        v["@iot.count"].as_u64().unwrap_or_else(|| panic!("no count from {url}: {v}"))
    }
}

/// The Observations `n_ticks` ticks of the built-in ten make (one per quantity of each reading).
pub fn observations_per_tick() -> u64 {
    smartcity_model::Catalogue::default_ten()
        .sensors()
        .iter()
        .map(|s| smartcity_model::codec::sensorthings::quantities(s.kind).len() as u64)
        .sum()
}

/// Waits until `probe` returns at least `want` (or `timeout`), returning the last value.
pub async fn wait_for<F, Fut>(want: u64, timeout: Duration, mut probe: F) -> u64
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = u64>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let got = probe().await;
        if got >= want || tokio::time::Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
