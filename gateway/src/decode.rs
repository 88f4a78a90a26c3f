//! From a received message to a [`Reading`], through the wire-format codec
//! (`smartcity_model::codec::json`) or a device format ([`crate::formats`]), plus the checks that only the gateway can make: the size limit
//! and the topic agreeing with the payload. Every refusal carries a short fixed `reason` (the metric
//! label and the dead letter's `reason`) and a message a user can act on.
//!
//! Never panics, whatever the bytes (a property test feeds it arbitrary input).

use crate::formats::Format;
use smartcity_connectors::mqtt;
use smartcity_model::codec::device::{DeviceError, Options};
use smartcity_model::codec::json::{self, DecodeError};
use smartcity_model::codec::mapping::Mapping;
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
    /// Device payloads in a device format: the topic names a device (`v3/app@ttn/devices/dev1/up`),
    /// not a kind. With `uplinks_only` (MQTT, where the network server publishes joins and
    /// downlinks under the same prefix) only its end is checked: TTN `/up`, ChirpStack `/event/up`.
    Device { format: Format, options: Box<Options>, uplinks_only: bool, mapping: Option<Box<Mapping>> },
    /// An NGSI-LD entity notified by a context broker (the message's topic is the entity id): read
    /// back with `smartcity_model::codec::ngsi_ld_read`. Its readings' seq is the observation time.
    NgsiLdEntity,
}

impl TopicRule {
    /// Whether gaps in `seq` mean lost messages (not for SenML and NGSI-LD entities, whose seq is a
    /// time).
    pub fn counts_frames(&self) -> bool {
        match self {
            TopicRule::NgsiLdEntity => false,
            TopicRule::Device { mapping: Some(m), .. } => m.seq.is_some(),
            TopicRule::Device { format, .. } => format.counts_frames(),
            _ => true,
        }
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
pub const REASONS: [&str; 7] = ["size", "syntax", "version", "values", "time", "invalid", "topic"];

/// The further reasons of the device formats (docs/device-formats.md).
pub const DEVICE_REASONS: [&str; 5] = ["field", "unit", "kind", "unknown", "location"];

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

impl From<DeviceError> for Refusal {
    fn from(e: DeviceError) -> Self {
        Refusal::new(e.reason(), e.to_string())
    }
}

/// Decodes `payload` received on `topic` into its readings (a SenML pack can hold several).
pub fn decode_all(rule: &TopicRule, topic: &str, payload: &[u8], max_bytes: usize) -> Result<Vec<Reading>, Refusal> {
    let TopicRule::Device { format, options, uplinks_only, mapping } = rule else {
        return decode(rule, topic, payload, max_bytes).map(|r| vec![r]);
    };
    check_size(payload, max_bytes)?;
    if let Some(suffix) = format.topic_suffix().filter(|s| *uplinks_only && !topic.ends_with(s)) {
        let message =
            format!("`{topic}` is not an uplink topic (`...{suffix}`): format `{}` reads uplinks", format.as_str());
        return Err(Refusal::new("topic", message));
    }
    Ok(format.decode(payload, topic, options, mapping.as_deref())?)
}

fn check_size(payload: &[u8], max_bytes: usize) -> Result<(), Refusal> {
    if payload.len() > max_bytes {
        return Err(Refusal::new(
            "size",
            format!("{} bytes is over the {max_bytes}-byte limit (`max_message_bytes`)", payload.len()),
        ));
    }
    Ok(())
}

/// Decodes `payload` received on `topic` and checks it against the topic (the first reading of a
/// device payload; [`decode_all`] gives them all).
pub fn decode(rule: &TopicRule, topic: &str, payload: &[u8], max_bytes: usize) -> Result<Reading, Refusal> {
    if let TopicRule::Device { .. } = rule {
        let first = decode_all(rule, topic, payload, max_bytes)?.into_iter().next();
        return first.ok_or_else(|| Refusal::new("kind", "no reading in the payload"));
    }
    check_size(payload, max_bytes)?;
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

/// The topic a partition belongs to: a partition of a partitioned Pulsar topic is named
/// `{topic}-partition-{n}`.
fn partition_base(topic: &str) -> &str {
    if !topic.as_bytes().last().is_some_and(u8::is_ascii_digit) {
        return topic; // the usual case, without a search
    }
    match topic.rsplit_once("-partition-") {
        Some((base, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => base,
        _ => topic,
    }
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
        TopicRule::Template { template, pulsar_names } => {
            if template.contains("{kind}") {
                let name = |k: SensorKind| if *pulsar_names { k.pulsar_suffix() } else { k.as_str() };
                if !smartcity_connectors::sink::expands_to(template, name(reading.kind()), partition_base(topic)) {
                    return Err(mismatch());
                }
            }
        }
        TopicRule::Device { .. } | TopicRule::NgsiLdEntity => {}
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
    fn a_partition_belongs_to_its_topic() {
        assert_eq!(partition_base("persistent://p/d/smartcity-noise-partition-3"), "persistent://p/d/smartcity-noise");
        assert_eq!(partition_base("smartcity-noise-partition-"), "smartcity-noise-partition-");
        assert_eq!(partition_base("sensors-2"), "sensors-2");
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
    fn device_topics_are_uplinks_of_any_device() {
        let rule = TopicRule::Device {
            format: Format::Chirpstack,
            options: Box::default(),
            uplinks_only: true,
            mapping: None,
        };
        let event = r#"{"time":"2026-11-21T11:30:00Z","deviceInfo":{"devEui":"0102030405060708"},
            "object":{"laeq":60,"lamax":70,"las":58},"rxInfo":[{"location":{"latitude":14.6,"longitude":-61.0}}]}"#;
        let up = "application/1/device/0102030405060708/event/up";
        let r = decode_all(&rule, up, event.as_bytes(), 65_536).unwrap();
        assert_eq!((r.len(), r[0].sensor_id.as_str()), (1, "0102030405060708"));
        let join = decode_all(&rule, "application/1/device/0102030405060708/event/join", event.as_bytes(), 65_536);
        assert!(join.unwrap_err().message.contains("not an uplink topic"));
        let refusal = decode_all(&rule, up, b"{}", 65_536).unwrap_err();
        assert_eq!(refusal.reason, "field");
        assert!(DEVICE_REASONS.contains(&refusal.reason) || REASONS.contains(&refusal.reason));
        assert!(!rule.counts_frames() || Format::Chirpstack.counts_frames());
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
        assert!(!TopicRule::NgsiLdEntity.counts_frames());
    }
}
