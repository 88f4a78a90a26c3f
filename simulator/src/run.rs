//! The simulator loop: tick the simulated clock, generate one reading per sensor, publish them,
//! report metrics and a status line, and stop cleanly on request or at `to`.

use crate::clock::{Next, SimClock};
use crate::config::SimulatorConfig;
use chrono::Utc;
use prometheus::{IntCounterVec, IntGauge};
use smartcity_connectors::config_file::ConfigError;
use smartcity_connectors::metrics::{self, SinkMetrics};
use smartcity_connectors::mqtt::{broker::BrokerError, EmbeddedBroker, MqttSink};
use smartcity_connectors::{http, SinkError};
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
    #[error("MQTT: {0}")]
    Sink(#[from] SinkError),
    #[error("{0}")]
    Http(String),
}

/// What a finished run did.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub generated: u64,
    pub published: u64,
    pub unacknowledged: usize,
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
    sink: SinkMetrics,
}

impl Counters {
    fn published_total(&self) -> u64 {
        SensorKind::ALL.iter().map(|k| self.sink.published.with_label_values(&[k.as_str(), "mqtt"]).get()).sum()
    }
    fn generated_total(&self) -> u64 {
        SensorKind::ALL.iter().map(|k| self.generated.with_label_values(&[k.as_str()]).get()).sum()
    }
    fn errors_total(&self) -> u64 {
        self.sink.errors.with_label_values(&["mqtt"]).get()
    }
}

/// Runs until `shutdown` is cancelled or the simulated clock passes `to`.
pub async fn run(cfg: SimulatorConfig, catalogue: Catalogue, shutdown: CancellationToken) -> Result<Summary, SimError> {
    let registry = metrics::registry("simulator");
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
        sink: SinkMetrics::register(&registry, "simulator"),
    });
    // Expose every label combination from the start, so dashboards and alerts see zeros, not gaps.
    for k in SensorKind::ALL {
        counters.generated.with_label_values(&[k.as_str()]);
        counters.sink.published.with_label_values(&[k.as_str(), "mqtt"]);
    }
    counters.sink.errors.with_label_values(&["mqtt"]);
    counters.sensors.set(catalogue.len() as i64);

    let _broker = if cfg.embedded_broker.enabled { Some(EmbeddedBroker::start(&cfg.embedded_broker)?) } else { None };

    let listener = http::bind(cfg.metrics.listen, "metrics", "metrics.listen").await.map_err(SimError::Http)?;
    tracing::info!("metrics on http://{}/metrics", cfg.metrics.listen);
    let http_stop = CancellationToken::new();
    let http_task = tokio::spawn(http::serve(listener, http::metrics_router(registry), http_stop.clone()));

    let sink = MqttSink::start(&cfg.mqtt, counters.sink.clone())?;
    tracing::info!(
        "simulating {} sensors (seed {}), publishing to {} under {}/",
        catalogue.len(),
        cfg.simulation.seed,
        cfg.mqtt.url(),
        cfg.mqtt.topic_prefix
    );

    let status_task = (cfg.status.interval_seconds > 0).then(|| {
        tokio::spawn(status_loop(counters.clone(), catalogue.len(), Duration::from_secs(cfg.status.interval_seconds)))
    });

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
        tokio::select! {
            _ = shutdown.cancelled() => break,
            sent = sink.send(&batch) => sent?,
        }
    }

    if let Some(t) = status_task {
        t.abort();
    }
    let unacknowledged = sink.close(Duration::from_secs(10)).await;
    let summary =
        Summary { generated: counters.generated_total(), published: counters.published_total(), unacknowledged };
    tracing::info!(
        "stopped: {} readings generated, {} acknowledged by the broker, {} not",
        summary.generated,
        summary.published,
        summary.unacknowledged
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
        let published = counters.published_total();
        let now = tokio::time::Instant::now();
        let rate = (published - last.0) as f64 / (now - last.1).as_secs_f64().max(1e-3);
        last = (published, now);
        let sim_time = chrono::DateTime::from_timestamp(counters.simulated_time.get(), 0)
            .map(|t| smartcity_model::place::local_time(t).format("%Y-%m-%d %H:%M:%S%:z").to_string())
            .unwrap_or_default();
        tracing::info!(
            "status: {sensors} sensors | simulated {sim_time} | {rate:.1} readings/s | generated {} | published {} | errors {}",
            counters.generated_total(),
            published,
            counters.errors_total()
        );
    }
}
