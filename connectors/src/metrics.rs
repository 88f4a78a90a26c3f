//! The Prometheus families every connector reports, defined once so that all sinks and sources
//! expose the same names and labels. Names: `smartcity_<component>_...`, base units, counters end
//! in `_total`, labels bounded (kind, sink, source, reason: small fixed sets).

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

/// A registry carrying `smartcity_build_info{component,version} 1`.
pub fn registry(component: &str) -> Registry {
    let registry = Registry::new();
    let info = IntGaugeVec::new(
        Opts::new("smartcity_build_info", "Build of the running binary (always 1)."),
        &["component", "version"],
    )
    .expect("valid metric definition");
    info.with_label_values(&[component, env!("CARGO_PKG_VERSION")]).set(1);
    registry.register(Box::new(info)).expect("first registration");
    registry
}

/// The text exposition (Prometheus format 0.0.4) of everything in `registry`.
pub fn encode(registry: &Registry) -> String {
    prometheus::TextEncoder::new()
        .encode_to_string(&registry.gather())
        .unwrap_or_else(|e| format!("# encode error: {e}\n"))
}

fn register<T: prometheus::core::Collector + Clone + 'static>(registry: &Registry, c: T) -> T {
    registry.register(Box::new(c.clone())).expect("metric registered once per registry");
    c
}

/// What every sink reports, each family labelled by `sink` (the sink's configured name).
#[derive(Clone)]
pub struct SinkMetrics {
    /// Readings acknowledged by the server, by kind and sink.
    pub published: IntCounterVec,
    /// Failed write or connection attempts, by sink and reason (see `sink::Reason`).
    pub errors: IntCounterVec,
    /// Readings abandoned, by sink and why (`overflow`, `rejected`, `shutdown`).
    pub dropped: IntCounterVec,
    /// Readings waiting in the sink's queue.
    pub queue: IntGaugeVec,
    /// 1 while the sink's last write or connection succeeded.
    pub up: IntGaugeVec,
    /// 1 for the reason the sink is down (`sink::Reason`), 0 for the others and while up.
    pub down: IntGaugeVec,
    /// Duration of one write (a batch), from handing it to the client to the server's acknowledgement.
    pub latency: HistogramVec,
}

impl SinkMetrics {
    pub fn register(registry: &Registry, component: &str) -> Self {
        let published = IntCounterVec::new(
            Opts::new(
                format!("smartcity_{component}_readings_published_total"),
                "Readings acknowledged by the downstream server.",
            ),
            &["kind", "sink"],
        )
        .expect("valid metric definition");
        let errors = IntCounterVec::new(
            Opts::new(
                format!("smartcity_{component}_publish_errors_total"),
                "Failed write or connection attempts, by reason.",
            ),
            &["sink", "reason"],
        )
        .expect("valid metric definition");
        let dropped = IntCounterVec::new(
            Opts::new(
                format!("smartcity_{component}_readings_dropped_total"),
                "Readings abandoned: queue overflow (drop policy), refused by the server, or unsent at shutdown.",
            ),
            &["sink", "reason"],
        )
        .expect("valid metric definition");
        let queue = IntGaugeVec::new(
            Opts::new(format!("smartcity_{component}_sink_queue_readings"), "Readings waiting in the sink's queue."),
            &["sink"],
        )
        .expect("valid metric definition");
        let up = IntGaugeVec::new(
            Opts::new(
                format!("smartcity_{component}_sink_up"),
                "1 while the sink's last write or connection succeeded.",
            ),
            &["sink"],
        )
        .expect("valid metric definition");
        let down = IntGaugeVec::new(
            Opts::new(
                format!("smartcity_{component}_sink_down"),
                "1 for the reason the sink's destination is down (auth, missing, connect, ...), else 0.",
            ),
            &["sink", "reason"],
        )
        .expect("valid metric definition");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                format!("smartcity_{component}_publish_duration_seconds"),
                "Duration of one write (a batch of readings) until the server acknowledged it.",
            )
            .buckets(vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            &["sink"],
        )
        .expect("valid metric definition");
        SinkMetrics {
            published: register(registry, published),
            errors: register(registry, errors),
            dropped: register(registry, dropped),
            queue: register(registry, queue),
            up: register(registry, up),
            down: register(registry, down),
            latency: register(registry, latency),
        }
    }
}

/// What every source reports.
#[derive(Clone)]
pub struct SourceMetrics {
    /// Messages received, by source.
    pub received: IntCounterVec,
    /// Messages set aside as dead letters, by source and reason.
    pub rejected: IntCounterVec,
    /// 1 while connected to the server, by source.
    pub connected: IntGaugeVec,
}

impl SourceMetrics {
    pub fn register(registry: &Registry, component: &str) -> Self {
        let received = IntCounterVec::new(
            Opts::new(format!("smartcity_{component}_messages_received_total"), "Messages received."),
            &["source"],
        )
        .expect("valid metric definition");
        let rejected = IntCounterVec::new(
            Opts::new(
                format!("smartcity_{component}_messages_rejected_total"),
                "Messages set aside as dead letters (malformed or invalid).",
            ),
            &["source", "reason"],
        )
        .expect("valid metric definition");
        let connected = IntGaugeVec::new(
            Opts::new(format!("smartcity_{component}_source_connected"), "1 while connected to the server."),
            &["source"],
        )
        .expect("valid metric definition");
        SourceMetrics {
            received: register(registry, received),
            rejected: register(registry, rejected),
            connected: register(registry, connected),
        }
    }
}

/// A plain gauge registered on `registry`.
pub fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    register(registry, IntGauge::new(name, help).expect("valid metric definition"))
}

/// A counter family registered on `registry`.
pub fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    register(registry, IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric definition"))
}

/// A plain counter registered on `registry`.
pub fn counter(registry: &Registry, name: &str, help: &str) -> prometheus::IntCounter {
    register(registry, prometheus::IntCounter::new(name, help).expect("valid metric definition"))
}
