//! The distribution loop: Pulsar messages in, decoded, handed to every target through the fan-out,
//! and acknowledged to Pulsar only once every target took the reading.
//!
//! - Malformed message (not the wire format: reason `decode: …`; or its kind disagrees with the
//!   topic: `invalid: …`): straight to the dead-letter topic with the reason in its `reason`
//!   property, then acknowledged.
//! - A target that refuses the reading itself (about the data: a 400, a schema violation): the
//!   message is negatively acknowledged and Pulsar redelivers it; after `pulsar.max_redeliveries` it
//!   goes to the dead-letter topic with the last reason.
//! - A target that keeps failing past `delivery.retry_budget_seconds` for a reason about itself
//!   (down, refusing our credentials, a tenant missing): the message is released, redelivered after
//!   `redelivery_delay_ms` without counting toward `max_redeliveries`, for as long as the target
//!   stays down: the dead-letter topic receives only data failures (`docs/failures.md`).
//! - Either way the other targets got it meanwhile (they get it again on the redelivery: at least once).
//! - Shutdown: no new messages; what is in flight finishes (10 s at most) and is acknowledged.

use crate::config::DistributionConfig;
use prometheus::{IntCounterVec, IntGauge};
use smartcity_connectors::config_file::ConfigError;
use smartcity_connectors::fanout::FanOut;
use smartcity_connectors::http;
use smartcity_connectors::metrics::{self, SinkMetrics, SourceMetrics};
use smartcity_connectors::pulsar::{PulsarDelivery, PulsarSource};
use smartcity_connectors::sink::{Failure, Sink, SinkTelemetry};
use smartcity_connectors::sinks::AnySink;
use smartcity_connectors::sources::SourceConfig;
use smartcity_model::codec::json;
use smartcity_model::Reading;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Why the service could not run. Each message tells the user what to change.
#[derive(Debug, thiserror::Error)]
pub enum DistError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Target(String),
    #[error("{0}")]
    Source(String),
    #[error("{0}")]
    Http(String),
}

/// The `reason` labels of dead letters (`connectors::pulsar::source::reason_label`).
const DEAD_LETTER_REASONS: [&str; 5] = ["decode", "invalid", "target", "redeliveries", "other"];

/// Counters of the pipeline itself (the targets' are the shared sink metrics, with a `sink` label).
#[derive(Clone)]
struct Pipeline {
    /// Messages acknowledged to Pulsar after every target took them.
    delivered: prometheus::IntCounter,
    /// Messages negatively acknowledged (to be redelivered), by the target's reason.
    redelivered: IntCounterVec,
    in_flight: IntGauge,
    /// The subscription's backlog (admin API), -1 while unknown.
    backlog: IntGauge,
    /// Consumers the watchdog recreated.
    restarts: prometheus::IntCounter,
    source: SourceMetrics,
}

impl Pipeline {
    fn register(registry: &prometheus::Registry) -> Self {
        let p = Pipeline {
            delivered: metrics::counter(
                registry,
                "smartcity_distribution_messages_delivered_total",
                "Messages acknowledged to Pulsar after every target took their reading.",
            ),
            redelivered: metrics::counter_vec(
                registry,
                "smartcity_distribution_messages_redelivered_total",
                "Messages negatively acknowledged because a target failed past its retry budget or refused them.",
                &["sink"],
            ),
            in_flight: metrics::gauge(
                registry,
                "smartcity_distribution_messages_in_flight",
                "Messages received and not yet acknowledged.",
            ),
            backlog: metrics::gauge(
                registry,
                "smartcity_distribution_consumer_backlog",
                "Messages of the subscription not yet acknowledged, from the broker's admin API (-1: unknown).",
            ),
            restarts: metrics::counter(
                registry,
                "smartcity_distribution_consumer_restarts_total",
                "Consumers recreated by the watchdog (stopped receiving while their topics had a backlog).",
            ),
            source: SourceMetrics::register(registry, "distribution"),
        };
        p.source.received.with_label_values(&["pulsar"]);
        for reason in DEAD_LETTER_REASONS {
            p.source.rejected.with_label_values(&["pulsar", reason]);
        }
        p
    }
}

/// What a finished run did.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub delivered: u64,
    pub redelivered: u64,
    pub dead_letters: u64,
}

/// One row of `distribution check`.
#[derive(Debug, Clone)]
pub struct CheckRow {
    pub name: String,
    pub protocol: &'static str,
    pub address: String,
    pub result: Result<String, Failure>,
}

fn build_targets(
    cfg: &DistributionConfig,
    metrics: &SinkMetrics,
) -> Result<Vec<(AnySink, String, SinkTelemetry, smartcity_connectors::fanout::QueueConfig)>, DistError> {
    cfg.targets()
        .into_iter()
        .map(|t| {
            let telemetry = SinkTelemetry::new(metrics, t.name());
            let built =
                t.build(telemetry.clone()).map_err(|e| DistError::Target(format!("target `{}`: {e}", t.name())))?;
            // One budget for every target: a message must go back to Pulsar in bounded time.
            let mut queue = t.queue().clone();
            queue.retry_budget_seconds = cfg.delivery.retry_budget_seconds;
            Ok((built, t.address(), telemetry, queue))
        })
        .collect()
}

/// Checks the Pulsar subscription's server and every target, sending nothing.
pub async fn check(cfg: &DistributionConfig) -> Result<Vec<CheckRow>, DistError> {
    let metrics = SinkMetrics::register(&metrics::registry("distribution"), "distribution");
    let names: Vec<(String, &'static str)> =
        cfg.targets().iter().map(|t| (t.name().to_string(), t.protocol())).collect();
    let checks = build_targets(cfg, &metrics)?.into_iter().zip(names).map(
        |((mut sink, address, _, _), (name, protocol))| async move {
            let result = sink.check().await;
            sink.close().await;
            CheckRow { name, protocol, address, result }
        },
    );
    let source = SourceConfig::Pulsar(&cfg.pulsar);
    let mut rows = vec![CheckRow {
        name: source.name().to_string(),
        protocol: source.protocol(),
        address: source.address(),
        result: source.check().await,
    }];
    rows.extend(futures::future::join_all(checks).await);
    Ok(rows)
}

/// `distribution check` as a table, one row per server.
pub fn check_table(rows: &[CheckRow]) -> String {
    rows.iter()
        .map(|r| {
            let (verdict, detail) = match &r.result {
                Ok(d) => ("ok  ", d.clone()),
                Err(f) => ("FAIL", f.to_string()),
            };
            format!("{verdict}  {:<14} {:<12} {:<40} {detail}\n", r.name, r.protocol, r.address)
        })
        .collect()
}

/// The target named by a fan-out failure (`sink `name`: ...`), for the metric's label.
fn target_of(why: &str) -> &str {
    why.strip_prefix("sink `").and_then(|r| r.split_once('`')).map_or("unknown", |(name, _)| name)
}

/// Why a message cannot be delivered at all, or its reading.
fn decode(delivery: &PulsarDelivery) -> Result<Reading, (&'static str, String)> {
    let reading = json::decode(&delivery.payload).map_err(|e| ("decode", e.to_string()))?;
    // The topic names a kind (`...smartcity-airquality`): a reading of another kind is misrouted.
    let suffix = reading.kind().pulsar_suffix();
    let topic_kind = delivery.topic.rsplit(['/', '-']).next().unwrap_or("");
    let topic_kind = topic_kind.split("-partition").next().unwrap_or(topic_kind);
    if smartcity_model::SensorKind::ALL.iter().any(|k| k.pulsar_suffix() == topic_kind) && topic_kind != suffix {
        return Err(("invalid", format!("a `{}` reading on topic {}", reading.kind(), delivery.topic)));
    }
    Ok(reading)
}

/// Keeps `counter` equal to the source's own count of watchdog restarts.
async fn mirror(count: Arc<std::sync::atomic::AtomicU64>, counter: prometheus::IntCounter) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let now = count.load(std::sync::atomic::Ordering::Relaxed);
        if now > counter.get() {
            counter.inc_by(now - counter.get());
        }
    }
}

/// Runs until `shutdown`.
pub async fn run(cfg: DistributionConfig, shutdown: CancellationToken) -> Result<Summary, DistError> {
    let registry = metrics::registry("distribution");
    let sink_metrics = SinkMetrics::register(&registry, "distribution");
    let pipeline = Pipeline::register(&registry);

    let mut fanout = FanOut::new();
    let mut telemetry = Vec::new();
    let target_names: Vec<String> = cfg.targets().iter().map(|t| t.name().to_string()).collect();
    for n in &target_names {
        pipeline.redelivered.with_label_values(&[n.as_str()]);
    }
    for (target, address, t, queue) in build_targets(&cfg, &sink_metrics)? {
        tracing::info!("target `{}`: {address}", t.name);
        telemetry.push(t.clone());
        fanout.add(target, address, queue, t);
    }
    let fanout = Arc::new(fanout);

    let listener = http::bind(cfg.metrics.listen, "metrics", "metrics.listen").await.map_err(DistError::Http)?;
    tracing::info!("metrics on http://{}/metrics", cfg.metrics.listen);
    let http_stop = CancellationToken::new();
    let http_task = tokio::spawn(http::serve(listener, http::metrics_router(registry), http_stop.clone()));

    // The source keeps acknowledging until everything in flight is settled, after `shutdown`.
    let source_stop = CancellationToken::new();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<PulsarDelivery>(1024);
    let source = PulsarSource::new(cfg.pulsar.clone(), pipeline.source.clone()).map_err(DistError::Source)?;
    tracing::info!("consuming {} (subscription {})", cfg.pulsar.address(), cfg.pulsar.subscription);
    let restarts = source.watchdog_restarts();
    let source_task = tokio::spawn(source.run(tx, source_stop.clone()));
    let watchers = [
        tokio::spawn(smartcity_connectors::pulsar::backlog::watch(
            cfg.pulsar.clone(),
            pipeline.backlog.clone(),
            Duration::from_secs(5),
        )),
        tokio::spawn(mirror(restarts, pipeline.restarts.clone())),
    ];

    let status = (cfg.status.interval_seconds > 0).then(|| {
        let p = pipeline.clone();
        let report = move || crate::status::line(p.delivered.get(), p.in_flight.get(), p.backlog.get(), &telemetry);
        tokio::spawn(crate::status::every(Duration::from_secs(cfg.status.interval_seconds), report))
    });

    let in_flight = Arc::new(Semaphore::new(cfg.delivery.max_in_flight));
    let mut settling = tokio::task::JoinSet::new();
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            p = in_flight.clone().acquire_owned() => p.expect("the semaphore is never closed"),
        };
        let delivery = tokio::select! {
            _ = shutdown.cancelled() => break,
            d = rx.recv() => match d { Some(d) => d, None => break },
        };
        let reading = match decode(&delivery) {
            Ok(r) => r,
            Err((reason, why)) => {
                tracing::warn!("dead letter ({reason}) from {}: {why}", delivery.topic);
                delivery.dead_letter(&format!("{reason}: {why}"));
                continue;
            }
        };
        pipeline.in_flight.inc();
        let done = fanout.publish_tracked(Arc::from(vec![reading])).await;
        let p = pipeline.clone();
        settling.spawn(async move {
            match done.await {
                Ok(Ok(())) => {
                    delivery.ack();
                    p.delivered.inc();
                }
                Ok(Err(given_up)) => {
                    p.redelivered.with_label_values(&[target_of(&given_up.why)]).inc();
                    if given_up.about_data {
                        delivery.nack(&given_up.why);
                    } else {
                        // A target down (budget spent): the message is fine and must never reach
                        // the dead-letter topic for it; it comes back until the target takes it.
                        delivery.release();
                    }
                }
                Err(_) => delivery.release(),
            }
            p.in_flight.dec();
            drop(permit);
        });
        // Reap finished settlements so the set does not grow.
        while settling.try_join_next().is_some() {}
    }

    tracing::info!("stopping: finishing the messages in flight");
    let unsent = match Arc::try_unwrap(fanout) {
        Ok(f) => f.close(Duration::from_secs(10)).await,
        Err(_) => 0,
    };
    while settling.join_next().await.is_some() {}
    source_stop.cancel();
    if let Ok(Err(e)) = source_task.await {
        tracing::error!("Pulsar source: {e}");
    }
    if let Some(t) = status {
        t.abort();
    }
    for w in watchers {
        w.abort();
    }
    http_stop.cancel();
    let _ = http_task.await;
    let summary = Summary {
        delivered: pipeline.delivered.get(),
        redelivered: target_names.iter().map(|n| pipeline.redelivered.with_label_values(&[n.as_str()]).get()).sum(),
        dead_letters: DEAD_LETTER_REASONS
            .iter()
            .map(|r| pipeline.source.rejected.with_label_values(&["pulsar", r]).get())
            .sum(),
    };
    tracing::info!(
        "stopped: {} messages delivered to every target, {} sent back for redelivery, {} dead letters, {unsent} unsent at shutdown",
        summary.delivered,
        summary.redelivered,
        summary.dead_letters
    );
    Ok(summary)
}
