//! The simulator loop: tick the simulated clock, generate one reading per sensor, publish them,
//! report metrics and a status line, and stop cleanly on request or at `to`.

use crate::clock::{Next, SimClock};
use crate::config::SimulatorConfig;
use chrono::Utc;
use prometheus::{IntCounterVec, IntGauge};
use smartcity_connectors::config_file::ConfigError;
use smartcity_connectors::fanout::FanOut;
use smartcity_connectors::http;
use smartcity_connectors::metrics::{self, SinkMetrics};
use smartcity_connectors::mqtt::broker::BrokerError;
use smartcity_connectors::sink::{Failure, Sink, SinkTelemetry};
use smartcity_connectors::sinks::{AnySink, SinkConfig};
use smartcity_model::{Catalogue, CatalogueError, Reading, ReadingStream, SensorKind};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Why the simulator could not run. Each message tells the user what to change.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("catalogue {path}: {source}")]
    Catalogue { path: PathBuf, source: CatalogueError },
    #[error("cannot read catalogue {path}: {source}")]
    CatalogueRead { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Broker(#[from] BrokerError),
    #[error("{0}")]
    Sink(String),
    #[error("{0} sink(s) failed their check (--strict):\n{1}")]
    Strict(usize, String),
    #[error("{0}")]
    Http(String),
}

/// What a finished run did.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub generated: u64,
    /// Readings acknowledged, summed over every sink.
    pub published: u64,
    /// Readings some sink had not written when the shutdown deadline passed.
    pub unsent: u64,
    /// Each sink that did not deliver every reading, with how many it dropped (refused, overflow,
    /// budget) or left unsent: a run with any is not a success (`simulator` exits 1).
    pub lost: Vec<(String, u64)>,
}

impl Summary {
    /// `sink `a`: 610 readings, sink `b`: 3 readings`, or `None` when every sink delivered everything.
    pub fn losses(&self) -> Option<String> {
        let each: Vec<String> = self.lost.iter().map(|(sink, n)| format!("sink `{sink}`: {n} readings")).collect();
        (!each.is_empty()).then(|| each.join(", "))
    }
}

/// The sensors the configuration asks for.
pub fn build_catalogue(cfg: &SimulatorConfig) -> Result<Catalogue, SimError> {
    let sim = &cfg.simulation;
    if sim.sensors > 0 {
        return Catalogue::generated(sim.sensors, sim.seed)
            .map_err(|source| SimError::Catalogue { path: "(generated)".into(), source });
    }
    match cfg.catalogue_path() {
        None => Ok(Catalogue::default_ten()),
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .map_err(|source| SimError::CatalogueRead { path: path.clone(), source })?;
            Catalogue::from_toml(&text).map_err(|source| SimError::Catalogue { path, source })
        }
    }
}

struct Counters {
    generated: IntCounterVec,
    sensors: IntGauge,
    simulated_time: IntGauge,
    sinks: Vec<SinkTelemetry>,
}

impl Counters {
    fn published_total(&self) -> u64 {
        self.sinks.iter().map(SinkTelemetry::published_total).sum()
    }
    fn generated_total(&self) -> u64 {
        SensorKind::ALL.iter().map(|k| self.generated.with_label_values(&[k.as_str()]).get()).sum()
    }
    /// One short figure per sink: `mqtt 1200` when up, `pulsar DOWN q=340 err=12` when not.
    fn sinks_line(&self) -> String {
        let figures: Vec<String> = self
            .sinks
            .iter()
            .map(|t| {
                let mut f = format!("{} {}", t.name, t.published_total());
                if !t.is_up() {
                    f.push_str(" DOWN");
                }
                if t.queue() > 0 {
                    f.push_str(&format!(" q={}", t.queue()));
                }
                if t.errors_total() > 0 {
                    f.push_str(&format!(" err={}", t.errors_total()));
                }
                if t.dropped_total() > 0 {
                    f.push_str(&format!(" dropped={}", t.dropped_total()));
                }
                f
            })
            .collect();
        figures.join(" | ")
    }
}

/// Builds every enabled sink of `cfg`, registering its metrics on `metrics`.
fn build_sinks<'c>(
    cfg: &'c SimulatorConfig,
    metrics: &SinkMetrics,
) -> Result<Vec<(SinkConfig<'c>, AnySink, SinkTelemetry)>, SimError> {
    cfg.sinks()
        .into_iter()
        .map(|sc| {
            let telemetry = SinkTelemetry::new(metrics, sc.name());
            let sink = sc.build(telemetry.clone()).map_err(|e| SimError::Sink(format!("sink `{}`: {e}", sc.name())))?;
            Ok((sc, sink, telemetry))
        })
        .collect()
}

/// One row of `simulator check`.
#[derive(Debug, Clone)]
pub struct CheckRow {
    pub name: String,
    pub protocol: &'static str,
    pub address: String,
    pub result: Result<String, Failure>,
}

/// Connects to every enabled sink and checks it, all at once; sends no readings.
pub async fn check(cfg: &SimulatorConfig) -> Result<Vec<CheckRow>, SimError> {
    let metrics = SinkMetrics::register(&metrics::registry("simulator"), "simulator");
    let checks = build_sinks(cfg, &metrics)?.into_iter().map(|(sc, mut sink, _)| async move {
        let result = sink.check().await;
        sink.close().await;
        CheckRow { name: sc.name().to_string(), protocol: sc.protocol(), address: sc.address(), result }
    });
    Ok(futures::future::join_all(checks).await)
}

/// `simulator check` as a table, one row per sink.
pub fn check_table(rows: &[CheckRow]) -> String {
    let mut out = String::new();
    for r in rows {
        let (verdict, detail) = match &r.result {
            Ok(d) => ("ok  ", d.clone()),
            Err(f) => ("FAIL", f.to_string()),
        };
        out.push_str(&format!("{verdict}  {:<14} {:<10} {:<40} {detail}\n", r.name, r.protocol, r.address));
    }
    out
}

/// Runs until `shutdown` is cancelled or the simulated clock passes `to`. The embedded broker, when
/// enabled, is the caller's to start (`EmbeddedBroker::start`), before the checks of `--strict`.
pub async fn run(cfg: SimulatorConfig, catalogue: Catalogue, shutdown: CancellationToken) -> Result<Summary, SimError> {
    let registry = metrics::registry("simulator");
    let sink_metrics = SinkMetrics::register(&registry, "simulator");
    let mut fanout = FanOut::new();
    for (sc, sink, telemetry) in build_sinks(&cfg, &sink_metrics)? {
        tracing::info!("sink `{}`: {} {}", sc.name(), sc.protocol(), sc.address());
        fanout.add(sink, sc.address(), sc.queue().clone(), telemetry);
    }
    let counters = Arc::new(Counters {
        generated: metrics::counter_vec(
            &registry,
            "smartcity_simulator_readings_generated_total",
            "Readings generated, by kind.",
            &["kind"],
        ),
        sensors: metrics::gauge(&registry, "smartcity_simulator_sensors", "Simulated sensors."),
        simulated_time: metrics::gauge(
            &registry,
            "smartcity_simulator_simulated_time_seconds",
            "Simulated clock of the last tick, Unix seconds.",
        ),
        sinks: fanout.telemetry().cloned().collect(),
    });
    // Expose every label combination from the start, so dashboards and alerts see zeros, not gaps.
    for k in SensorKind::ALL {
        counters.generated.with_label_values(&[k.as_str()]);
    }
    counters.sensors.set(catalogue.len() as i64);

    let listener = http::bind(cfg.metrics.listen, "metrics", "metrics.listen").await.map_err(SimError::Http)?;
    tracing::info!("metrics on http://{}/metrics", cfg.metrics.listen);
    let http_stop = CancellationToken::new();
    let http_task = tokio::spawn(http::serve(listener, http::metrics_router(registry), http_stop.clone()));
    tracing::info!("simulating {} sensors (seed {})", catalogue.len(), cfg.simulation.seed);

    let status_task = (cfg.status.interval_seconds > 0).then(|| {
        tokio::spawn(status_loop(counters.clone(), catalogue.len(), Duration::from_secs(cfg.status.interval_seconds)))
    });

    let started = std::time::Instant::now();
    let mut clock =
        SimClock::new(cfg.from(), cfg.to(), cfg.simulation.interval_seconds, cfg.simulation.speed, Utc::now());
    let mut stream = ReadingStream::new(catalogue, cfg.simulation.seed);
    let mut batch: Vec<Reading> = Vec::new();
    loop {
        let (at, wait) = match clock.next(Utc::now(), tokio::time::Instant::now()) {
            Next::Done => {
                tracing::info!("simulated clock reached `to`: stopping");
                break;
            }
            Next::Tick { at, wait } => (at, wait),
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
        }
        batch.clear();
        stream.tick_into(at, &mut batch);
        for r in &batch {
            counters.generated.with_label_values(&[r.kind().as_str()]).inc();
        }
        counters.simulated_time.set(at.timestamp());
        let shared: Arc<[Reading]> = batch.drain(..).collect();
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = fanout.publish(shared) => {}
        }
    }

    if let Some(t) = status_task {
        t.abort();
    }
    let unsent = fanout.close(Duration::from_secs(cfg.simulation.drain_seconds)).await;
    let elapsed = started.elapsed();
    let lost =
        counters.sinks.iter().filter(|t| t.dropped_total() > 0).map(|t| (t.name.clone(), t.dropped_total())).collect();
    let summary =
        Summary { generated: counters.generated_total(), published: counters.published_total(), unsent, lost };
    tracing::info!(
        "stopped: {} readings generated in {:.2} s ({:.0}/s); acknowledged: {}; {} left unsent",
        summary.generated,
        elapsed.as_secs_f64(),
        summary.generated as f64 / elapsed.as_secs_f64().max(1e-6),
        counters.sinks_line(),
        summary.unsent
    );
    http_stop.cancel();
    let _ = http_task.await;
    Ok(summary)
}

async fn status_loop(counters: Arc<Counters>, sensors: usize, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    let mut last = (0u64, tokio::time::Instant::now());
    loop {
        tick.tick().await;
        let generated = counters.generated_total();
        let now = tokio::time::Instant::now();
        let rate = (generated - last.0) as f64 / (now - last.1).as_secs_f64().max(1e-3);
        last = (generated, now);
        let sim_time = chrono::DateTime::from_timestamp(counters.simulated_time.get(), 0)
            .map(|t| smartcity_model::place::local_time(t).format("%Y-%m-%d %H:%M:%S%:z").to_string())
            .unwrap_or_default();
        tracing::info!(
            "status: {sensors} sensors | simulated {sim_time} | {rate:.1} readings/s | generated {generated} | {}",
            counters.sinks_line()
        );
    }
}
