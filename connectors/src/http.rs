//! The small HTTP pieces every binary serves: `/metrics` and a graceful server loop.

use axum::{http::header, response::IntoResponse, routing::get, Router};
use prometheus::Registry;
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// `GET /metrics`: the Prometheus text exposition of `registry`.
pub fn metrics_router(registry: Registry) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let body = crate::metrics::encode(&registry);
            async move { ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response() }
        }),
    )
}

/// Binds `addr`, with an error that names the address and what to change.
pub async fn bind(addr: SocketAddr, what: &str, setting: &str) -> Result<TcpListener, String> {
    TcpListener::bind(addr).await.map_err(|e| format!("cannot serve {what} on {addr}: {e} (change `{setting}`)"))
}

/// Serves `router` until `shutdown` is cancelled.
pub async fn serve(listener: TcpListener, router: Router, shutdown: CancellationToken) {
    let addr = listener.local_addr().ok();
    if let Err(e) = axum::serve(listener, router).with_graceful_shutdown(shutdown.cancelled_owned()).await {
        tracing::error!("HTTP server on {addr:?} stopped: {e}");
    }
}
