//! HTTP: the live map dashboard (`/`), the JSON API (a sensor's history: [`crate::history`]), OGC API – Features (`/ogc`, see [`crate::ogc`]),
//! the NGSI-LD @context, `/metrics` and `/healthz`.
//! Everything the page needs is embedded in the binary: it works with no internet access.

use crate::flux::InfluxHistory;
use crate::state::CityState;
use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus::Registry;
use smartcity_model::codec::json;
use smartcity_model::Reading;
use std::sync::Arc;

const DASHBOARD_HTML: &str = include_str!("../assets/dashboard.html");
const DASHBOARD_JS: &str = include_str!("../assets/dashboard.js");
const MARTINIQUE_JS: &str = include_str!("../assets/martinique.js");
const CHART_JS: &str = include_str!("../assets/chart.js");
const HEALTH_JS: &str = include_str!("../assets/health.js");

/// `influx`: where sensor histories over a range come from when `[influxdb]` is configured.
pub fn router(state: Arc<CityState>, registry: Registry, influx: Option<Arc<InfluxHistory>>) -> Router {
    let history = crate::history::HistoryApi { state: state.clone(), influx };
    Router::new()
        .route("/", get(|| async { Html(DASHBOARD_HTML) }))
        .route("/dashboard.js", get(|| async { javascript(DASHBOARD_JS) }))
        .route("/martinique.js", get(|| async { javascript(MARTINIQUE_JS) }))
        .route("/chart.js", get(|| async { javascript(CHART_JS) }))
        .route("/health.js", get(|| async { javascript(HEALTH_JS) }))
        .route("/healthz", get(|| async { "ok\n" }))
        // The JSON-LD context of our NGSI-LD entities, so that context brokers expand them without
        // the internet (the default `context_url` of the simulator's NGSI-LD sinks).
        .route("/ngsi-ld/context.jsonld", get(|| async { json_ld(smartcity_model::codec::ngsi_ld::CONTEXT_DOCUMENT) }))
        .route("/api/readings", get(latest))
        .route("/api/sensors/{id}/history", get(crate::history::handler).with_state(history))
        .route("/api/dead-letters", get(dead_letters))
        .with_state(state.clone())
        // OGC API – Features: the sensors for GIS clients (QGIS, GDAL, MapStore).
        .merge(crate::ogc::router(state))
        .merge(smartcity_connectors::http::metrics_router(registry))
}

fn json_ld(body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, "application/ld+json")], body).into_response()
}

fn javascript(body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], body).into_response()
}

/// A JSON array of readings in the wire format (the same documents that travel over MQTT).
fn readings_json(readings: &[Reading]) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], readings_body(readings)).into_response()
}

/// The bytes of [`readings_json`].
pub(crate) fn readings_body(readings: &[Reading]) -> Vec<u8> {
    let mut body = Vec::with_capacity(readings.len() * 320 + 2);
    body.push(b'[');
    for (i, r) in readings.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        json::encode_into(r, &mut body);
    }
    body.push(b']');
    body
}

async fn latest(State(state): State<Arc<CityState>>) -> Response {
    readings_json(&state.latest())
}

async fn dead_letters(State(state): State<Arc<CityState>>) -> Response {
    axum::Json(state.dead_letters()).into_response()
}
