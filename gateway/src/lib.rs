//! The smart-city gateway: consumes readings from MQTT `city/sensors/#`, keeps the live state of
//! every sensor, and serves a map dashboard, a JSON API and Prometheus metrics.
//!
//! - [`config`]: `config/gateway.toml`, overrides, validation.
//! - [`ingest`]: decode, check, record, acknowledge; dead letters for bad messages.
//! - [`state`]: latest reading and history per sensor, sequence-gap accounting.
//! - [`web`]: dashboard, `/api/...`, `/metrics`, `/healthz`.

pub mod cli;
pub mod config;
pub mod ingest;
pub mod state;
pub mod web;

pub use config::GatewayConfig;

use smartcity_connectors::mqtt::MqttSource;
use smartcity_connectors::{http, metrics};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Runs the gateway until `shutdown`. Returns an error message meant for the user.
pub async fn run(cfg: GatewayConfig, shutdown: CancellationToken) -> Result<(), String> {
    let registry = metrics::registry("gateway");
    let ingest_metrics = ingest::IngestMetrics::register(&registry);
    let state = Arc::new(state::CityState::new(cfg.state.history_per_sensor, cfg.state.dead_letters_kept));

    let listener = http::bind(cfg.http.listen, "the dashboard", "http.listen").await?;
    tracing::info!("dashboard on http://{}/ (API: /api/readings, metrics: /metrics)", cfg.http.listen);
    let http_stop = CancellationToken::new();
    let web = tokio::spawn(http::serve(listener, web::router(state.clone(), registry), http_stop.clone()));

    let (tx, rx) = tokio::sync::mpsc::channel(1024);
    let ingest = tokio::spawn(ingest::run(rx, cfg.mqtt.topic_prefix.clone(), state, ingest_metrics.clone()));
    let source = MqttSource::new(cfg.mqtt.clone(), ingest_metrics.source.clone());
    let result = source.run(tx, shutdown.clone()).await.map_err(|e| format!("MQTT {}: {e}", cfg.mqtt.url()));
    // The source dropped its sender: ingest drains what is buffered, then ends.
    let _ = ingest.await;
    http_stop.cancel();
    let _ = web.await;
    tracing::info!("gateway stopped");
    result
}
