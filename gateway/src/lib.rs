//! The smart-city gateway: consumes readings from MQTT, Kafka (native or through a REST proxy),
//! Pulsar and NGSI-LD context brokers (their notifications), writes every one to InfluxDB (or line-protocol files) with nothing lost, keeps the live
//! state of every sensor, and serves a map dashboard, a JSON API and Prometheus metrics.
//!
//! The pipeline: [`sources`] → [`ingest`] (decode, dead letters, live state) → [`writer`] (batches
//! to the [`store`], the spool when it cannot take them) → acknowledgement back to the source.
//!
//! - [`config`]: `config/gateway.toml`, overrides, validation.
//! - [`decode`]: the wire codec plus the gateway's checks (size, topic); [`formats`]: device formats.
//! - [`dead_letter`]: the dead-letter file; [`dead_letter_copies`]: its copies on MQTT or Kafka.
//! - [`line_files`]: the store without InfluxDB.
//! - [`state`]: latest reading and history per sensor, sequence-gap accounting.
//! - [`web`]: dashboard, `/api/...`, `/metrics`, `/healthz`.
//! - [`notifications`]: NGSI-LD sources, a broker's subscription and its notifications' receiver.
//! - [`history`]: a sensor's history for the map's chart, from memory or from InfluxDB ([`flux`]).
//! - [`check`]: `gateway check`.
//! - [`in_flight`]: the writer's writes in flight, handed back in the order they went out.

pub mod check;
pub mod cli;
pub mod config;
pub mod dead_letter;
pub mod dead_letter_copies;
pub mod decode;
pub mod flux;
pub mod formats;
pub mod history;
pub mod in_flight;
pub mod ingest;
pub mod line_files;
pub mod metrics;
pub mod notifications;
pub mod ogc;
pub mod reinject;
pub mod sample;
pub mod sources;
pub mod state;
pub mod store;
pub mod web;
pub mod writer;

pub use config::GatewayConfig;

use smartcity_connectors::spool::Spool;
use smartcity_connectors::{http, metrics as shared_metrics};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Runs the gateway until `shutdown`. Returns an error message meant for the user.
pub async fn run(cfg: GatewayConfig, shutdown: CancellationToken) -> Result<(), String> {
    let registry = shared_metrics::registry("gateway");
    let metrics = metrics::GatewayMetrics::register(&registry);
    let state = Arc::new(state::CityState::new(cfg.state.history_per_sensor, cfg.state.dead_letters_kept));
    let store = store::Store::new(&cfg, &registry)?;
    let spool = open_spool(&cfg).await?;
    let dead_file = dead_letter::DeadLetterFile::new(&cfg.dead_letters);
    dead_file.check().map_err(|e| format!("dead letters: {e}"))?;
    // The copies' tasks end once the dead-letter file is dropped (ingest and writer done).
    let (copies, copy_tasks) =
        dead_letter_copies::DeadLetterCopies::start(&cfg.dead_letters, &metrics.dead_letter_copies)?;
    let dead = Arc::new(Mutex::new(dead_file.with_copies(copies)));

    let listener = http::bind(cfg.http.listen, "the dashboard", "http.listen").await?;
    tracing::info!("dashboard on http://{}/ (API: /api/readings, metrics: /metrics)", cfg.http.listen);
    tracing::info!("writing readings to {}; sources: {}", store.describe(), cfg.source_names().join(", "));
    let http_stop = CancellationToken::new();
    // Histories over a range come from InfluxDB when it is configured (the writer's token and TLS).
    let influx_history = match cfg.influx() {
        Some(influx) => Some(Arc::new(flux::InfluxHistory::new(influx).map_err(|e| format!("influxdb: {e}"))?)),
        None => None,
    };
    let mut receivers = notifications::open(&cfg)?;
    let router = web::router(state.clone(), registry, influx_history).merge(receivers.router);
    let web = tokio::spawn(http::serve(listener, router, http_stop.clone()));

    let writer =
        writer::Writer::new(store, spool, cfg.spool.max_bytes, cfg.writer.clone(), metrics.clone(), dead.clone());
    let syncer = tokio::spawn(sync_spool(writer.spool(), Duration::from_millis(cfg.spool.fsync_interval_ms.max(1))));
    let silence =
        tokio::spawn(state::watch_silence(state.clone(), metrics.sensors_silent.clone(), Duration::from_secs(15)));
    let (item_tx, item_rx) = tokio::sync::mpsc::channel(cfg.writer.queue_capacity);
    let writer = tokio::spawn(writer.run(item_rx));
    let (message_tx, message_rx) = tokio::sync::mpsc::channel(1024);
    let ingest = ingest::Ingest {
        rules: sources::topic_rules(&cfg),
        max_message_bytes: cfg.writer.max_message_bytes,
        state,
        metrics: metrics.clone(),
        dead,
    };
    let ingest = tokio::spawn(ingest.run(message_rx, item_tx));

    // Sources stop reading at `stop`, then wait (briefly) for what they handed on to be written
    // and acknowledged before they disconnect.
    let stop = shutdown.child_token();
    let mut tasks = JoinSet::new();
    let started = sources::start(&cfg, &metrics, &message_tx, &stop, &mut tasks, &mut receivers.inboxes);
    drop(message_tx);
    let mut result = started;
    if result.is_err() {
        stop.cancel();
    }
    while let Some(done) = tasks.join_next().await {
        let outcome = done.map_err(|e| format!("a source task failed: {e}")).and_then(|r| r);
        if let Err(e) = outcome {
            if result.is_ok() {
                tracing::error!("{e}: stopping");
                result = Err(e);
            }
            stop.cancel();
        }
    }
    // Every source is gone: ingest drains what is queued, then the writer writes (or spools) it.
    let _ = ingest.await;
    let _ = writer.await;
    copy_tasks.finish().await;
    syncer.abort();
    silence.abort();
    http_stop.cancel();
    let _ = web.await;
    tracing::info!("gateway stopped");
    result
}

/// Opens the spool (replaying what a previous run left), off the async workers.
async fn open_spool(cfg: &GatewayConfig) -> Result<Spool, String> {
    let spool_cfg = cfg.spool.clone();
    let (spool, report) = tokio::task::spawn_blocking(move || Spool::open(spool_cfg))
        .await
        .map_err(|e| format!("spool: {e}"))?
        .map_err(|e| e.to_string())?;
    for problem in &report.problems {
        tracing::warn!("spool: {problem}");
    }
    if report.records > 0 {
        tracing::info!(
            "spool {}: {} batches ({} bytes) from the last run to write first",
            cfg.spool.dir.display(),
            report.records,
            report.bytes
        );
    }
    Ok(spool)
}

/// `fsync`s the spool on a timer, so that the `interval` policy's window stays bounded when appends stop.
async fn sync_spool(spool: Arc<Mutex<Spool>>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let spool = spool.clone();
        let synced = tokio::task::spawn_blocking(move || spool.lock().unwrap_or_else(|e| e.into_inner()).sync()).await;
        if let Ok(Err(e)) = synced {
            tracing::error!("{e}");
        }
    }
}
