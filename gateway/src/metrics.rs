//! The gateway's metrics (`/metrics`), next to the shared source metrics
//! (`smartcity_gateway_messages_received_total{source}`, `..._messages_rejected_total{source,reason}`,
//! `..._source_connected{source}`). Every family is exposed at zero from the start.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};
use smartcity_connectors::metrics::{self, SourceMetrics};
use smartcity_connectors::sink::Reason;
use smartcity_model::SensorKind;

#[derive(Clone)]
pub struct GatewayMetrics {
    pub source: SourceMetrics,
    /// Valid readings decoded, by kind.
    pub accepted: IntCounterVec,
    pub gaps: IntCounter,
    pub stale: IntCounter,
    pub sensors: IntGauge,
    /// Sensors seen since start whose latest reading is older than five minutes (`state::watch_silence`).
    pub sensors_silent: IntGauge,
    /// Readings the store accepted (InfluxDB or the files).
    pub written: IntCounter,
    /// Failed writes, by reason (`connect`, `timeout`, `auth`, `server`, `rejected`, ...).
    pub write_errors: IntCounterVec,
    /// 1 while the store takes writes, 0 while it is down (readings go to the spool).
    pub store_up: IntGauge,
    /// 1 for the reason the store is down (`auth`, `missing`, `connect`, ...), 0 otherwise.
    pub store_down: IntGaugeVec,
    pub batch_size: Histogram,
    pub write_seconds: Histogram,
    /// Writes sent to the store and not yet settled (at most `writer.writes_in_flight`).
    pub writes_in_flight: IntGauge,
    /// From `observedAt` to written.
    pub end_to_end_seconds: Histogram,
    pub spool_bytes: IntGauge,
    pub spool_records: IntGauge,
    pub spool_segments: IntGauge,
    pub spool_max_bytes: IntGauge,
    /// 1 while the spool is full and the gateway holds back acknowledgements.
    pub spool_full: IntGauge,
    /// Readings appended to the spool (InfluxDB down or behind).
    pub spooled: IntCounter,
    /// Kafka consumer lag, by source.
    pub kafka_lag: IntGaugeVec,
    /// Pulsar subscription backlog (admin API), by source; -1 while unknown.
    pub pulsar_backlog: IntGaugeVec,
    /// Copies of dead letters on MQTT or Kafka, by target and outcome (`crate::dead_letter_copies`).
    pub dead_letter_copies: IntCounterVec,
}

fn histogram(registry: &Registry, name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
    let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets)).expect("valid metric definition");
    registry.register(Box::new(h.clone())).expect("metric registered once");
    h
}

impl GatewayMetrics {
    pub fn register(registry: &Registry) -> Self {
        let seconds = vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];
        let kafka_lag = IntGaugeVec::new(
            Opts::new("smartcity_gateway_kafka_consumer_lag", "Messages behind the end of the Kafka partitions."),
            &["source"],
        )
        .expect("valid metric definition");
        registry.register(Box::new(kafka_lag.clone())).expect("metric registered once");
        let pulsar_backlog = IntGaugeVec::new(
            Opts::new(
                "smartcity_gateway_pulsar_backlog",
                "Messages of the Pulsar subscription not yet acknowledged (admin API; -1 while unknown).",
            ),
            &["source"],
        )
        .expect("valid metric definition");
        registry.register(Box::new(pulsar_backlog.clone())).expect("metric registered once");
        let m = GatewayMetrics {
            source: SourceMetrics::register(registry, "gateway"),
            accepted: metrics::counter_vec(
                registry,
                "smartcity_gateway_readings_accepted_total",
                "Valid readings decoded, by kind.",
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
            sensors_silent: metrics::gauge(
                registry,
                "smartcity_gateway_sensors_silent",
                "Sensors seen since start whose latest reading was observed more than 5 minutes ago.",
            ),
            written: metrics::counter(
                registry,
                "smartcity_gateway_points_written_total",
                "Readings the store (InfluxDB or the line-protocol files) accepted.",
            ),
            write_errors: metrics::counter_vec(
                registry,
                "smartcity_gateway_write_errors_total",
                "Failed writes to the store, by reason.",
                &["reason"],
            ),
            store_up: metrics::gauge(
                registry,
                "smartcity_gateway_store_up",
                "1 while the store takes writes; 0 while it is down and readings go to the spool.",
            ),
            store_down: {
                let g = IntGaugeVec::new(
                    Opts::new(
                        "smartcity_gateway_store_down",
                        "1 for the reason the store is down (auth, missing, connect, timeout, server), else 0.",
                    ),
                    &["reason"],
                )
                .expect("valid metric definition");
                registry.register(Box::new(g.clone())).expect("metric registered once");
                g
            },
            batch_size: histogram(
                registry,
                "smartcity_gateway_write_batch_readings",
                "Readings per write to the store.",
                vec![1.0, 10.0, 50.0, 100.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0],
            ),
            write_seconds: histogram(
                registry,
                "smartcity_gateway_write_duration_seconds",
                "Duration of one write to the store until it answered.",
                seconds.clone(),
            ),
            end_to_end_seconds: histogram(
                registry,
                "smartcity_gateway_end_to_end_seconds",
                "From a reading's observedAt to its write to the store.",
                seconds,
            ),
            writes_in_flight: metrics::gauge(
                registry,
                "smartcity_gateway_writes_in_flight",
                "Writes sent to the store whose readings are not acknowledged yet.",
            ),
            spool_bytes: metrics::gauge(registry, "smartcity_gateway_spool_bytes", "Bytes on disk in the spool."),
            spool_records: metrics::gauge(
                registry,
                "smartcity_gateway_spool_batches",
                "Batches waiting in the spool for the store.",
            ),
            spool_segments: metrics::gauge(registry, "smartcity_gateway_spool_segments", "Segment files of the spool."),
            spool_max_bytes: metrics::gauge(registry, "smartcity_gateway_spool_max_bytes", "The spool's size bound."),
            spool_full: metrics::gauge(
                registry,
                "smartcity_gateway_spool_full",
                "1 while the spool is at its bound and acknowledgements are held back.",
            ),
            spooled: metrics::counter(
                registry,
                "smartcity_gateway_readings_spooled_total",
                "Readings parked in the spool because the store was unavailable or behind.",
            ),
            kafka_lag,
            pulsar_backlog,
            dead_letter_copies: metrics::counter_vec(
                registry,
                "smartcity_gateway_dead_letter_copies_total",
                "Copies of dead letters to the MQTT or Kafka target: published, retried, or dropped (only in the file).",
                &["target", "outcome"],
            ),
        };
        for k in SensorKind::ALL {
            m.accepted.with_label_values(&[k.as_str()]);
        }
        for r in Reason::ALL {
            m.write_errors.with_label_values(&[r.as_str()]);
            m.store_down.with_label_values(&[r.as_str()]);
        }
        m
    }

    /// The store took a write (`None`) or is down for `reason`.
    pub fn store_state(&self, down: Option<Reason>) {
        self.store_up.set(down.is_none() as i64);
        for r in Reason::ALL {
            self.store_down.with_label_values(&[r.as_str()]).set((Some(r) == down) as i64);
        }
    }

    /// Exposes every series of a source at zero.
    pub fn source_started(&self, name: &str) {
        self.source.received.with_label_values(&[name]);
        self.source.connected.with_label_values(&[name]);
        for reason in crate::decode::REASONS.into_iter().chain(crate::decode::DEVICE_REASONS) {
            self.source.rejected.with_label_values(&[name, reason]);
        }
    }
}
