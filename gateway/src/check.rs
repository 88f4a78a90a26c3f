//! `gateway check`: connects to every configured source and to the store, one row each, without
//! consuming or writing a reading.

use crate::config::GatewayConfig;
use crate::dead_letter::DeadLetterFile;
use crate::store::Store;
use smartcity_connectors::kafka::KafkaSink;
use smartcity_connectors::metrics::{self, SinkMetrics};
use smartcity_connectors::mqtt::MqttSink;
use smartcity_connectors::sink::{Failure, Reason, Sink, SinkTelemetry};

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
    for source in cfg.sources() {
        let result = text(source.check().await);
        rows.push(CheckRow { name: source.name().to_string(), role: source.role(), result });
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
