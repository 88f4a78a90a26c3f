//! Starts every configured source, each handing its messages to one shared queue. Sources are
//! independent: one that cannot connect retries by itself without holding up the others.

use crate::config::GatewayConfig;
use crate::decode::TopicRule;
use crate::formats::Format;
use crate::metrics::GatewayMetrics;
use crate::notifications::Since;
use smartcity_connectors::kafka::KafkaSource;
use smartcity_connectors::kafka_rest::KafkaRestSource;
use smartcity_connectors::mqtt::MqttSource;
use smartcity_connectors::pulsar::{PulsarDelivery, PulsarSource, PulsarSourceConfig};
use smartcity_connectors::source::Message;
use smartcity_connectors::sources::SourceConfig;
use smartcity_model::SensorKind;
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
        // A pattern may match any topic: then the topic names no kind to check.
        let template = match &p.topic_pattern {
            Some(_) => None,
            None => pulsar_template(&p.topics),
        };
        let template = template.unwrap_or_else(|| "any".into());
        rules.insert(p.name.clone(), TopicRule::Template { template, pulsar_names: true });
    }
    // A device format replaces the source's wire-format rule: its topics name devices, not kinds.
    for (name, f) in &cfg.formats {
        if f.format != Format::Json && rules.contains_key(name) {
            let uplinks_only = cfg.mqtt.iter().any(|m| &m.name == name);
            let options = Box::new(f.options());
            let mapping = f.mapping.clone().map(Box::new);
            rules.insert(name.clone(), TopicRule::Device { format: f.format, options, uplinks_only, mapping });
        }
    }
    // NGSI-LD sources carry entities whatever `[formats]` says.
    for n in cfg.ngsi_ld.iter().filter(|n| n.enabled) {
        rules.insert(n.name.clone(), TopicRule::NgsiLdEntity);
    }
    rules
}

/// The `{kind}` template the Pulsar topics follow (`persistent://public/default/smartcity-{kind}`
/// for the defaults), when they all end in a kind's name after one common prefix; `None` when they
/// do not (then the topic is not checked against the payload).
fn pulsar_template(topics: &[String]) -> Option<String> {
    let mut prefix: Option<&str> = None;
    for topic in topics {
        let kind = SensorKind::ALL.into_iter().find(|k| topic.ends_with(k.pulsar_suffix()))?;
        let p = &topic[..topic.len() - kind.pulsar_suffix().len()];
        if prefix.is_some_and(|q| q != p) {
            return None;
        }
        prefix = Some(p);
    }
    prefix.map(|p| format!("{p}{{kind}}"))
}

/// Spawns every enabled source on `tasks`; each returns a user-facing error if it cannot run.
pub fn start(
    cfg: &GatewayConfig,
    metrics: &GatewayMetrics,
    out: &mpsc::Sender<Message>,
    stop: &CancellationToken,
    tasks: &mut JoinSet<Result<(), String>>,
    inboxes: &mut HashMap<String, (mpsc::Receiver<Message>, Arc<Since>)>,
) -> Result<(), String> {
    for source in cfg.sources() {
        metrics.source_started(source.name());
        let (out, stop) = (out.clone(), stop.clone());
        match source {
            SourceConfig::Mqtt(m) => {
                let running = MqttSource::new(m.clone(), metrics.source.clone());
                let (url, name) = (m.url(), m.name.clone());
                tasks.spawn(async move {
                    running.run(out, stop).await.map_err(|e| format!("mqtt source `{name}` ({url}): {e}"))
                });
            }
            SourceConfig::Kafka(k) => {
                // Its errors name the source already.
                let running = KafkaSource::new(k.clone(), metrics.source.clone())?
                    .with_lag_gauge(metrics.kafka_lag.with_label_values(&[&k.name]));
                tasks.spawn(async move { running.run(out, stop).await.map_err(|e| e.to_string()) });
            }
            SourceConfig::KafkaRest(k) => {
                let running = KafkaRestSource::new(k.clone(), metrics.source.clone())?;
                tasks.spawn(async move { running.run(out, stop).await.map_err(|e| e.to_string()) });
            }
            SourceConfig::Pulsar(p) => start_pulsar(p, metrics, out, stop, tasks)?,
            SourceConfig::NgsiLd(n) => {
                let (inbox, since) =
                    inboxes.remove(&n.name).ok_or_else(|| format!("ngsi_ld source `{}` has no receiver", n.name))?;
                let connected = metrics.source.connected.with_label_values(&[&n.name]);
                tasks.spawn(crate::notifications::run(n.clone(), inbox, since, out, connected, stop));
            }
        }
    }
    Ok(())
}

/// The Pulsar source, its backlog watcher, and the task that hands its deliveries on as messages.
fn start_pulsar(
    p: &PulsarSourceConfig,
    metrics: &GatewayMetrics,
    out: mpsc::Sender<Message>,
    stop: CancellationToken,
    tasks: &mut JoinSet<Result<(), String>>,
) -> Result<(), String> {
    let source = PulsarSource::new(p.clone(), metrics.source.clone())?;
    let backlog = metrics.pulsar_backlog.with_label_values(&[&p.name]);
    tasks.spawn({
        let (cfg, stop) = (p.clone(), stop.clone());
        async move {
            tokio::select! {
                _ = smartcity_connectors::pulsar::backlog::watch(cfg, backlog, std::time::Duration::from_secs(5)) => {}
                _ = stop.cancelled() => {}
            }
            Ok(())
        }
    });
    let (deliveries, rx) = mpsc::channel(256);
    let name: Arc<str> = p.name.clone().into();
    tasks.spawn(forward_pulsar(rx, out, name.clone()));
    tasks.spawn(async move { source.run(deliveries, stop).await.map_err(|e| format!("pulsar source `{name}`: {e}")) });
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
        let topic = std::mem::take(&mut delivery.topic);
        let message = Message::new(name.clone(), topic, payload.into(), Box::new(move || delivery.ack()));
        if out.send(message).await.is_err() {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pulsar_topics_give_their_template() {
        let topics: Vec<String> =
            SensorKind::ALL.iter().map(|k| format!("persistent://public/default/run-{}", k.pulsar_suffix())).collect();
        assert_eq!(pulsar_template(&topics).as_deref(), Some("persistent://public/default/run-{kind}"));
        assert_eq!(pulsar_template(&["persistent://t/n/other".to_string()]), None);
        let mixed = vec!["persistent://a/b/x-noise".to_string(), "persistent://a/b/y-light".to_string()];
        assert_eq!(pulsar_template(&mixed), None);
    }
}
