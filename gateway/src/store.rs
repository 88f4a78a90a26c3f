//! Where readings end up: InfluxDB when configured (the simulator's InfluxDB sink: one codec, one
//! status policy), otherwise line-protocol files ([`crate::line_files`]).

use crate::config::GatewayConfig;
use crate::line_files::LineFiles;
use smartcity_connectors::influxdb::InfluxSink;
use smartcity_connectors::metrics::SinkMetrics;
use smartcity_connectors::sink::{Failure, Outcome, Sink, SinkTelemetry};
use smartcity_model::Reading;
use std::sync::Mutex;

/// Shared by the writer's writes in flight (`send` takes `&self`).
pub enum Store {
    Influx {
        sink: Box<InfluxSink>,
        describe: String,
    },
    /// Behind a lock: a file takes one batch at a time (each a single short `write(2)`).
    Files(Mutex<LineFiles>),
}

impl Store {
    /// Builds the store of `cfg` without touching the network.
    pub fn new(cfg: &GatewayConfig, registry: &prometheus::Registry) -> Result<Self, String> {
        match cfg.influx() {
            Some(influx) => {
                // The sink's own families stay unregistered: the writer reports under
                // `smartcity_gateway_*` what it needs.
                let _ = registry;
                let telemetry =
                    SinkTelemetry::new(&SinkMetrics::register(&prometheus::Registry::new(), "gateway"), "influxdb");
                let sink = InfluxSink::new(influx, telemetry).map_err(|e| format!("influxdb: {e}"))?;
                let describe = format!("InfluxDB {}", influx.address());
                Ok(Store::Influx { sink: Box::new(sink), describe })
            }
            None => Ok(Store::Files(Mutex::new(LineFiles::new(&cfg.files)))),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Store::Influx { describe, .. } => describe.clone(),
            Store::Files(files) => files.lock().unwrap_or_else(|e| e.into_inner()).describe(),
        }
    }

    /// Writes `batch`; see [`Outcome`]. Several calls may run at once.
    pub async fn send(&self, batch: &[Reading]) -> Outcome {
        match self {
            Store::Influx { sink, .. } => sink.send_shared(batch).await,
            // One `write(2)` of a batch's lines: short enough for an async worker.
            Store::Files(files) => files.lock().unwrap_or_else(|e| e.into_inner()).send(batch),
        }
    }

    /// Checks that writing would work, without writing a reading.
    pub async fn check(&mut self) -> Result<String, Failure> {
        match self {
            Store::Influx { sink, .. } => sink.check().await,
            Store::Files(files) => files.get_mut().unwrap_or_else(|e| e.into_inner()).check(),
        }
    }
}
