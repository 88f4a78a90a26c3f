//! From a received message to a [`Reading`], through the one wire-format codec
//! (`smartcity_model::codec::json`), plus the checks that only the gateway can make: the size limit
//! and the topic agreeing with the payload. Every refusal carries a short fixed `reason` (the metric
//! label and the dead letter's `reason`) and a message a user can act on.
//!
//! Never panics, whatever the bytes (a property test feeds it arbitrary input).

use smartcity_connectors::mqtt;
use smartcity_model::codec::json::{self, DecodeError};
use smartcity_model::codec::ngsi_ld_read;
use smartcity_model::{Reading, SensorKind};

/// How a source's topic names the kind (and, for MQTT, the sensor) of the readings it carries.
#[derive(Debug, Clone, PartialEq)]
pub enum TopicRule {
    /// `{prefix}/{kind}/{sensor id}`.
    Mqtt { prefix: String },
    /// A topic template with `{kind}` (Kafka `{kind}`, Pulsar `persistent://.../smartcity-{kind}`):
    /// the topic must be the template expanded with the payload's kind. `pulsar_names` spells
    /// air-quality `airquality`, as the Pulsar topics do. A template without `{kind}` carries every
    /// kind and checks nothing.
    Template { template: String, pulsar_names: bool },
    /// An NGSI-LD entity notified by a context broker (the message's topic is the entity id): read
    /// back with `smartcity_model::codec::ngsi_ld_read`. Its readings carry no sequence number.
    NgsiLdEntity,
}

impl TopicRule {
    /// Whether the readings' `seq` counts the sensor's readings, so that a gap means loss.
    pub fn has_sequence(&self) -> bool {
        !matches!(self, TopicRule::NgsiLdEntity)
    }
}

/// Why a message was set aside.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// One of [`REASONS`].
    pub reason: &'static str,
    pub message: String,
}

/// Every `reason` a refusal can have (the metric's label values, pre-registered at zero).
pub const REASONS: [&str; 8] = ["size", "syntax", "version", "values", "time", "invalid", "topic", "kind"];

impl Refusal {
    fn new(reason: &'static str, message: impl Into<String>) -> Self {
        Refusal { reason, message: message.into() }
    }
}

impl From<DecodeError> for Refusal {
    fn from(e: DecodeError) -> Self {
        let reason = match e {
            DecodeError::Syntax(_) => "syntax",
            DecodeError::Version(_) => "version",
            DecodeError::Values { .. } => "values",
            DecodeError::Time(_) => "time",
            DecodeError::Invalid(_) => "invalid",
        };
        Refusal::new(reason, e.to_string())
    }
}

/// Decodes `payload` received on `topic` and checks it against the topic.
pub fn decode(rule: &TopicRule, topic: &str, payload: &[u8], max_bytes: usize) -> Result<Reading, Refusal> {
    if payload.len() > max_bytes {
        return Err(Refusal::new(
            "size",
            format!("{} bytes is over the {max_bytes}-byte limit (`max_message_bytes`)", payload.len()),
        ));
    }
    if *rule == TopicRule::NgsiLdEntity {
        return ngsi_ld_entity(payload);
    }
    let reading = json::decode(payload)?;
    check_topic(rule, topic, &reading)?;
    Ok(reading)
}

fn ngsi_ld_entity(payload: &[u8]) -> Result<Reading, Refusal> {
    let entity: serde_json::Value = serde_json::from_slice(payload)
        .map_err(|e| Refusal::new("syntax", format!("an NGSI-LD notification must be JSON: {e}")))?;
    ngsi_ld_read::reading(&entity).map_err(|e| Refusal::new(e.reason(), e.to_string()))
}

fn check_topic(rule: &TopicRule, topic: &str, reading: &Reading) -> Result<(), Refusal> {
    let mismatch = || {
        Refusal::new(
            "topic",
            format!("topic `{topic}` does not match the payload's {} sensor `{}`", reading.kind(), reading.sensor_id),
        )
    };
    match rule {
        TopicRule::Mqtt { prefix } => {
            let (kind, id) = mqtt::parse_topic(prefix, topic).map_err(|e| Refusal::new("topic", e))?;
            if kind != reading.kind() || id != reading.sensor_id {
                return Err(mismatch());
            }
        }
        TopicRule::NgsiLdEntity => {}
        TopicRule::Template { template, pulsar_names } => {
            if template.contains("{kind}") {
                let name = |k: SensorKind| if *pulsar_names { k.pulsar_suffix() } else { k.as_str() };
                // A partition of a partitioned Pulsar topic is named `{topic}-partition-{n}`.
                let base = match topic.rsplit_once("-partition-") {
                    Some((base, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => base,
                    _ => topic,
                };
                if base != smartcity_connectors::sink::expand_topic(template, name(reading.kind())) {
                    return Err(mismatch());
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use smartcity_model::{dynamics::Simulation, Catalogue};

    fn traffic() -> Reading {
        let cat = Catalogue::default_ten();
        Simulation::new(1).reading(&cat.sensors()[0], Utc::now(), 0)
    }

    #[test]
    fn mqtt_topic_must_match_kind_and_id() {
        let r = traffic();
        let bytes = json::encode(&r);
        let rule = TopicRule::Mqtt { prefix: "city/sensors".into() };
        let good = format!("city/sensors/traffic/{}", r.sensor_id);
        assert!(decode(&rule, &good, &bytes, 65_536).is_ok());
        let refusal = decode(&rule, "city/sensors/noise/x", &bytes, 65_536).unwrap_err();
        assert_eq!(refusal.reason, "topic");
        assert!(refusal.message.contains("does not match"), "{}", refusal.message);
        assert_eq!(decode(&rule, &good, b"{", 65_536).unwrap_err().reason, "syntax");
        assert_eq!(decode(&rule, &good, &bytes, 10).unwrap_err().reason, "size");
    }

    #[test]
    fn template_topic_must_match_kind() {
        let r = traffic();
        let bytes = json::encode(&r);
        let kafka = TopicRule::Template { template: "{kind}".into(), pulsar_names: false };
        assert!(decode(&kafka, "traffic", &bytes, 65_536).is_ok());
        assert_eq!(decode(&kafka, "noise", &bytes, 65_536).unwrap_err().reason, "topic");
        let pulsar =
            TopicRule::Template { template: "persistent://public/default/smartcity-{kind}".into(), pulsar_names: true };
        assert!(decode(&pulsar, "persistent://public/default/smartcity-traffic", &bytes, 65_536).is_ok());
        assert!(decode(&pulsar, "persistent://public/default/smartcity-traffic-partition-3", &bytes, 65_536).is_ok());
        let any = TopicRule::Template { template: "everything".into(), pulsar_names: false };
        assert!(decode(&any, "everything", &bytes, 65_536).is_ok());
    }

    #[test]
    fn ngsi_ld_entities_read_back_and_refusals_keep_their_reason() {
        let r = traffic();
        let entity = smartcity_model::codec::ngsi_ld::entity(&r, &Default::default()).to_string();
        let back = decode(&TopicRule::NgsiLdEntity, "urn:x", entity.as_bytes(), 65_536).unwrap();
        assert_eq!(
            (back.sensor_id, back.observed_at.timestamp_millis()),
            (r.sensor_id, r.observed_at.timestamp_millis())
        );
        let other = decode(&TopicRule::NgsiLdEntity, "urn:x", br#"{"id":"urn:b","type":"Building"}"#, 65_536);
        assert_eq!(other.unwrap_err().reason, "kind");
        assert_eq!(decode(&TopicRule::NgsiLdEntity, "urn:x", b"[", 65_536).unwrap_err().reason, "syntax");
    }
}
