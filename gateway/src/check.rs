//! `gateway check`: connects to every configured source and to the store, one row each, without
//! consuming or writing a reading.

use crate::config::GatewayConfig;
use crate::dead_letter::DeadLetterFile;
use crate::store::Store;
use rdkafka::consumer::{BaseConsumer, Consumer};
use smartcity_connectors::kafka::KafkaSink;
use smartcity_connectors::kafka::KafkaSourceConfig;
use smartcity_connectors::kafka_rest::KafkaRestSourceConfig;
use smartcity_connectors::metrics::{self, SinkMetrics};
use smartcity_connectors::mqtt::MqttSink;
use smartcity_connectors::sink::{Failure, Reason, Sink, SinkTelemetry};
use std::time::Duration;

/// One checked server.
pub struct CheckRow {
    pub name: String,
    pub role: &'static str,
    pub result: Result<String, String>,
}

pub async fn check(cfg: &GatewayConfig) -> Vec<CheckRow> {
    let registry = metrics::registry("check");
    let sink_metrics = SinkMetrics::register(&registry, "check");
    let mut rows = Vec::new();
    let text = |r: Result<String, Failure>| r.map_err(|f| f.to_string());
    for m in cfg.mqtt.iter().filter(|m| m.enabled) {
        let sink = MqttSink::new(m, SinkTelemetry::new(&sink_metrics, &m.name));
        let result = probe(sink, format!("connected to {}, would subscribe to {}/#", m.url(), m.topic_prefix)).await;
        rows.push(CheckRow { name: m.name.clone(), role: "mqtt source", result });
    }
    for k in cfg.kafka.iter().filter(|k| k.enabled) {
        let result = check_kafka(k).await;
        rows.push(CheckRow { name: k.name.clone(), role: "kafka source", result });
    }
    for k in cfg.kafka_rest.iter().filter(|k| k.enabled) {
        let result = check_kafka_rest(k).await;
        rows.push(CheckRow { name: k.name.clone(), role: "kafka_rest source", result });
    }
    for p in &cfg.pulsar {
        let result = text(smartcity_connectors::pulsar::check_source(p).await);
        rows.push(CheckRow { name: p.name.clone(), role: "pulsar source", result });
    }
    let result = match Store::new(cfg, &registry) {
        Ok(mut store) => text(store.check().await),
        Err(e) => text(Err(Failure::new(Reason::Auth, e))),
    };
    rows.push(CheckRow { name: cfg.influx().map_or("files".into(), |i| i.name.clone()), role: "store", result });
    let dead = DeadLetterFile::new(&cfg.dead_letters).check();
    rows.push(CheckRow { name: "dead-letters".into(), role: "dead letters", result: dead });
    if let Some(m) = cfg.dead_letters.mqtt.as_ref().filter(|m| m.enabled) {
        let sink = MqttSink::new(m, SinkTelemetry::new(&sink_metrics, &m.name));
        let result = probe(sink, format!("connected to {}, would publish to {}/{{reason}}", m.url(), m.topic_prefix));
        rows.push(CheckRow { name: m.name.clone(), role: "dead-letter copies", result: result.await });
    }
    if let Some(k) = cfg.dead_letters.kafka.as_ref().filter(|k| k.enabled) {
        let sink = KafkaSink::new(k, SinkTelemetry::new(&sink_metrics, &k.name));
        let result = probe(sink, format!("connected to {}, would produce to `{}`", k.address(), k.topic_template));
        rows.push(CheckRow { name: k.name.clone(), role: "dead-letter copies", result: result.await });
    }
    rows
}

/// A sink's own check (it never takes over a running client's session), then its close: `success`
/// when the server answered as it should, or what failed.
async fn probe<S: Sink>(sink: Result<S, String>, success: String) -> Result<String, String> {
    let mut sink = sink?;
    let checked = sink.check().await;
    sink.close().await;
    checked.map(|_| success).map_err(|f| f.to_string())
}

/// Asks the cluster for its topics: reachable, TLS and SASL accepted, and which topics exist yet.
async fn check_kafka(cfg: &KafkaSourceConfig) -> Result<String, String> {
    let client_config = cfg.client_config()?;
    let (address, wanted) = (cfg.address(), cfg.topics());
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = client_config.create().map_err(|e| e.to_string())?;
        let metadata = consumer.fetch_metadata(None, Duration::from_secs(10)).map_err(|e| format!("{address}: {e}"))?;
        let present: Vec<&str> = metadata.topics().iter().map(|t| t.name()).collect();
        let found = wanted.iter().filter(|t| present.contains(&t.as_str())).count();
        Ok(format!(
            "connected to {address} ({} brokers), {found} of the {} topics exist (the others are read once created)",
            metadata.brokers().len(),
            wanted.len()
        ))
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Lists the proxy's topics: reachable, TLS and credentials accepted.
async fn check_kafka_rest(cfg: &KafkaRestSourceConfig) -> Result<String, String> {
    let client = smartcity_connectors::http_client::client(cfg.tls.as_ref(), Duration::from_secs(cfg.timeout_seconds))?;
    let url = format!("{}/topics", cfg.url.trim_end_matches('/'));
    let mut request = client.get(&url).header("Accept", smartcity_connectors::kafka_rest::V2);
    if let Some(user) = &cfg.username {
        let password = smartcity_connectors::secret::read(&cfg.password_env, cfg.password_file.as_deref())?;
        request = request.basic_auth(user, password);
    }
    let response = request.send().await.map_err(|e| format!("{}: {e}", cfg.url))?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        return Err(format!("GET {url}: {status} {}", body.chars().take(200).collect::<String>()));
    }
    Ok(format!("the proxy at {} answers (group `{}`)", cfg.url, cfg.group))
}

/// The rows as a table: `OK`/`FAIL`, name, role, then what was checked or what failed.
pub fn table(rows: &[CheckRow]) -> String {
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(0);
    let roles = rows.iter().map(|r| r.role.len()).max().unwrap_or(0);
    rows.iter()
        .map(|r| {
            let (status, detail) = match &r.result {
                Ok(d) => ("OK  ", d.as_str()),
                Err(e) => ("FAIL", e.as_str()),
            };
            format!("{status} {:width$}  {:roles$}  {detail}\n", r.name, r.role)
        })
        .collect()
}
