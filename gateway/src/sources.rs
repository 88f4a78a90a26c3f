//! Starts every configured source, each handing its messages to one shared queue. Sources are
//! independent: one that cannot connect retries by itself without holding up the others.

use crate::config::GatewayConfig;
use crate::decode::TopicRule;
use crate::metrics::GatewayMetrics;
use smartcity_connectors::kafka::KafkaSource;
use smartcity_connectors::kafka_rest::KafkaRestSource;
use smartcity_connectors::mqtt::MqttSource;
use smartcity_connectors::pulsar::{PulsarDelivery, PulsarSource};
use smartcity_connectors::source::Message;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Each source's topic rule, by name.
pub fn topic_rules(cfg: &GatewayConfig) -> HashMap<String, TopicRule> {
    let mut rules = HashMap::new();
    for m in cfg.mqtt.iter().filter(|m| m.enabled) {
        rules.insert(m.name.clone(), TopicRule::Mqtt { prefix: m.topic_prefix.clone() });
    }
    for k in cfg.kafka.iter().filter(|k| k.enabled) {
        rules.insert(k.name.clone(), TopicRule::Template { template: k.topic_template.clone(), pulsar_names: false });
    }
    for k in cfg.kafka_rest.iter().filter(|k| k.enabled) {
        rules.insert(k.name.clone(), TopicRule::Template { template: k.topic_template.clone(), pulsar_names: false });
    }
    for p in &cfg.pulsar {
        // The topic list names the kinds itself; the default topics follow this template.
        let template = "persistent://public/default/smartcity-{kind}".to_string();
        let template = if p.topics.iter().all(|t| t.starts_with("persistent://public/default/smartcity-")) {
            template
        } else {
            "any".into()
        };
        rules.insert(p.name.clone(), TopicRule::Template { template, pulsar_names: true });
    }
    rules
}

/// Spawns every enabled source on `tasks`; each returns a user-facing error if it cannot run.
pub fn start(
    cfg: &GatewayConfig,
    metrics: &GatewayMetrics,
    out: &mpsc::Sender<Message>,
    stop: &CancellationToken,
    tasks: &mut JoinSet<Result<(), String>>,
) -> Result<(), String> {
    for m in cfg.mqtt.iter().filter(|m| m.enabled) {
        metrics.source_started(&m.name);
        let source = MqttSource::new(m.clone(), metrics.source.clone());
        let (out, stop, url, name) = (out.clone(), stop.clone(), m.url(), m.name.clone());
        tasks.spawn(async move { source.run(out, stop).await.map_err(|e| format!("{name} ({url}): {e}")) });
    }
    for k in cfg.kafka.iter().filter(|k| k.enabled) {
        metrics.source_started(&k.name);
        let source = KafkaSource::new(k.clone(), metrics.source.clone())
            .map_err(|e| format!("kafka source `{}`: {e}", k.name))?
            .with_lag_gauge(metrics.kafka_lag.with_label_values(&[&k.name]));
        let (out, stop, name) = (out.clone(), stop.clone(), k.name.clone());
        tasks.spawn(async move { source.run(out, stop).await.map_err(|e| format!("{name}: {e}")) });
    }
    for k in cfg.kafka_rest.iter().filter(|k| k.enabled) {
        metrics.source_started(&k.name);
        let source = KafkaRestSource::new(k.clone(), metrics.source.clone())
            .map_err(|e| format!("kafka_rest source `{}`: {e}", k.name))?;
        let (out, stop, name) = (out.clone(), stop.clone(), k.name.clone());
        tasks.spawn(async move { source.run(out, stop).await.map_err(|e| format!("{name}: {e}")) });
    }
    for p in &cfg.pulsar {
        metrics.source_started(&p.name);
        let source = PulsarSource::new(p.clone(), metrics.source.clone())?;
        let (deliveries, rx) = mpsc::channel(256);
        let name: Arc<str> = p.name.clone().into();
        tasks.spawn(forward_pulsar(rx, out.clone(), name.clone()));
        let stop = stop.clone();
        tasks.spawn(async move { source.run(deliveries, stop).await.map_err(|e| format!("{name}: {e}")) });
    }
    Ok(())
}

/// Hands Pulsar deliveries on as messages whose acknowledgement acks them on the broker (a
/// message dropped unacknowledged is redelivered).
async fn forward_pulsar(
    mut rx: mpsc::Receiver<PulsarDelivery>,
    out: mpsc::Sender<Message>,
    name: Arc<str>,
) -> Result<(), String> {
    while let Some(mut delivery) = rx.recv().await {
        let payload = std::mem::take(&mut delivery.payload);
        let topic = delivery.topic.clone();
        let message = Message::new(name.clone(), topic, payload.into(), Box::new(move || delivery.ack()));
        if out.send(message).await.is_err() {
            break;
        }
    }
    Ok(())
}
