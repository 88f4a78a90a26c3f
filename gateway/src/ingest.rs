//! From received messages to live state: decode, check against the topic, record, acknowledge.
//! A bad message is counted, set aside as a dead letter and acknowledged (redelivering it cannot
//! fix it); the pipeline goes on.

use crate::state::{Accepted, CityState};
use chrono::Utc;
use prometheus::{IntCounter, IntCounterVec, IntGauge, Registry};
use smartcity_connectors::metrics::{self, SourceMetrics};
use smartcity_connectors::mqtt::{self, Delivery};
use smartcity_model::codec::json::{self, DecodeError};
use smartcity_model::{Reading, SensorKind};
use std::sync::Arc;
use tokio::sync::mpsc;

/// The gateway's own metrics, next to the shared source metrics.
#[derive(Clone)]
pub struct IngestMetrics {
    pub source: SourceMetrics,
    pub accepted: IntCounterVec,
    pub gaps: IntCounter,
    pub stale: IntCounter,
    pub sensors: IntGauge,
}

impl IngestMetrics {
    pub fn register(registry: &Registry) -> Self {
        let m = IngestMetrics {
            source: SourceMetrics::register(registry, "gateway"),
            accepted: metrics::counter_vec(
                registry,
                "smartcity_gateway_readings_accepted_total",
                "Valid readings recorded, by kind.",
                &["kind"],
            ),
            gaps: metrics::counter(
                registry,
                "smartcity_gateway_sequence_gaps_total",
                "Sequence numbers skipped by a sensor's readings (lost upstream or not yet arrived).",
            ),
            stale: metrics::counter(
                registry,
                "smartcity_gateway_readings_stale_total",
                "Readings older than or equal to the latest of their sensor (redeliveries).",
            ),
            sensors: metrics::gauge(registry, "smartcity_gateway_sensors", "Sensors seen since start."),
        };
        for k in SensorKind::ALL {
            m.accepted.with_label_values(&[k.as_str()]);
        }
        m.source.received.with_label_values(&["mqtt"]);
        m
    }
}

fn reason_label(e: &DecodeError) -> &'static str {
    match e {
        DecodeError::Syntax(_) => "syntax",
        DecodeError::Version(_) => "version",
        DecodeError::Values { .. } => "values",
        DecodeError::Time(_) => "time",
        DecodeError::Invalid(_) => "invalid",
    }
}

/// Decodes a message and checks that its topic names the same kind and sensor.
pub fn decode(prefix: &str, topic: &str, payload: &[u8]) -> Result<Reading, (&'static str, String)> {
    let reading = json::decode(payload).map_err(|e| (reason_label(&e), e.to_string()))?;
    let (kind, id) = mqtt::parse_topic(prefix, topic).map_err(|e| ("topic", e))?;
    if kind != reading.kind() || id != reading.sensor_id {
        return Err((
            "topic",
            format!("topic `{topic}` does not match the payload's {} sensor `{}`", reading.kind(), reading.sensor_id),
        ));
    }
    Ok(reading)
}

/// Consumes deliveries until the channel closes.
pub async fn run(mut rx: mpsc::Receiver<Delivery>, prefix: String, state: Arc<CityState>, m: IngestMetrics) {
    while let Some(delivery) = rx.recv().await {
        match decode(&prefix, &delivery.topic, &delivery.payload) {
            Ok(reading) => {
                let kind = reading.kind();
                match state.accept(reading) {
                    Accepted::InOrder => m.accepted.with_label_values(&[kind.as_str()]).inc(),
                    Accepted::AfterGap { missing } => {
                        m.accepted.with_label_values(&[kind.as_str()]).inc();
                        m.gaps.inc_by(missing);
                    }
                    Accepted::Stale => m.stale.inc(),
                }
                m.sensors.set(state.sensor_count() as i64);
            }
            Err((reason, message)) => {
                m.source.rejected.with_label_values(&["mqtt", reason]).inc();
                tracing::warn!("dead letter from {}: {message}", delivery.topic);
                state.set_aside(&delivery.topic, message, &delivery.payload, Utc::now());
            }
        }
        delivery.ack().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smartcity_model::{dynamics::Simulation, Catalogue};

    #[test]
    fn topic_must_match_payload() {
        let cat = Catalogue::default_ten();
        let r = Simulation::new(1).reading(&cat.sensors()[0], Utc::now(), 0);
        let bytes = json::encode(&r);
        let good = format!("city/sensors/traffic/{}", r.sensor_id);
        assert!(decode("city/sensors", &good, &bytes).is_ok());
        let (reason, msg) = decode("city/sensors", "city/sensors/noise/x", &bytes).unwrap_err();
        assert_eq!(reason, "topic");
        assert!(msg.contains("does not match"), "{msg}");
        assert_eq!(decode("city/sensors", &good, b"{").unwrap_err().0, "syntax");
    }
}
