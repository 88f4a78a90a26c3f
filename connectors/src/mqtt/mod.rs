//! MQTT: a publishing sink, a subscribing source, and an embeddable broker for the demo.
//!
//! Topic layout (from the original system): `{prefix}/{kind}/{sensor id}`, prefix `city/sensors`.

pub mod acks;
pub mod broker;
pub mod config;
pub mod sink;
pub mod source;

pub use broker::{EmbeddedBroker, EmbeddedBrokerConfig};
pub use config::MqttConfig;
pub use sink::MqttSink;
pub use source::MqttSource;

use smartcity_model::{Reading, SensorKind};

/// `{prefix}/{kind}/{sensor id}`.
pub fn topic_for(prefix: &str, reading: &Reading) -> String {
    format!("{prefix}/{}/{}", reading.kind().as_str(), reading.sensor_id)
}

/// The (kind, sensor id) a topic names, or why it names none.
pub fn parse_topic<'a>(prefix: &str, topic: &'a str) -> Result<(SensorKind, &'a str), String> {
    let rest = topic
        .strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('/'))
        .ok_or_else(|| format!("topic `{topic}` is not under `{prefix}/`"))?;
    let (kind, id) = rest.split_once('/').ok_or_else(|| format!("topic `{topic}` lacks `/{{kind}}/{{id}}`"))?;
    if id.is_empty() || id.contains('/') {
        return Err(format!("topic `{topic}` must end in exactly one sensor id"));
    }
    Ok((kind.parse().map_err(|e: smartcity_model::kind::UnknownKind| e.to_string())?, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_parse() {
        assert_eq!(parse_topic("city/sensors", "city/sensors/air-quality/aq-1"), Ok((SensorKind::AirQuality, "aq-1")));
        assert!(parse_topic("city/sensors", "city/other/traffic/x").is_err());
        assert!(parse_topic("city/sensors", "city/sensors/traffic").is_err());
        assert!(parse_topic("city/sensors", "city/sensors/traffic/a/b").is_err());
        assert!(parse_topic("city/sensors", "city/sensors/radar/a").unwrap_err().contains("radar"));
    }
}
