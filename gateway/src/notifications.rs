//! NGSI-LD sources (`[[ngsi_ld]]`): the gateway's side of a broker's subscription.
//!
//! - The receiver: `POST /ngsi-ld/notify/{name}` on the HTTP server. It takes only the source's
//!   notification token (`Authorization: Bearer`, sent by the broker from the subscription's
//!   `receiverInfo`), hands each entity of `data` on as a message (topic: the entity id), and
//!   answers 200 only once every one is written, spooled or set aside as a dead letter; 503
//!   otherwise (the gateway stopping, the store away with the spool full for 30 s), so that a
//!   broker that retries sends it again. A body that is not a notification is one message, which
//!   the decoder sets aside (a dead letter with its reason) before the 200.
//! - The source task ([`run`]): creates the subscription (afresh at start), looks it up every
//!   `check_seconds` and recreates it when the broker lost it or paused it, and after a restart
//!   catches up from the broker's temporal API on everything modified since the last notification
//!   it wrote (kept in `{spool.dir}/ngsi-ld-{name}.since`), because brokers drop a notification the
//!   receiver could not take (Stellio does not retry; Orion-LD pauses the subscription).
//!
//! Entities carry no sequence number (their readings' `seq` is the observation time), so loss is
//! counted by sensor and observation time: writing the same entity twice writes the same point.

use crate::config::GatewayConfig;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use chrono::{DateTime, TimeDelta, Utc};
use prometheus::IntGauge;
use serde_json::Value;
use smartcity_connectors::ngsi_ld::{NgsiLdSourceConfig, Subscriber};
use smartcity_connectors::retry::Backoff;
use smartcity_connectors::source::Message;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Longest a notification waits for its readings to be written before the answer is 503.
const WRITE_WAIT: Duration = Duration::from_secs(30);
/// How far before the last written notification a catch-up starts: notifications still in
/// flight then, and the broker's clock against ours.
const CATCH_UP_MARGIN: TimeDelta = TimeDelta::seconds(60);

/// Where one source's notifications go, and what it remembers across restarts.
struct Inbox {
    token: String,
    source: Arc<str>,
    to_source: mpsc::Sender<Message>,
    since: Arc<Since>,
}

/// The arrival time of the latest notification fully written, kept in a file so that a restart
/// knows where to catch up from. Not saved while a catch-up is under way: until it is written,
/// the older point is where the next start must catch up from.
pub struct Since {
    path: PathBuf,
    latest: Mutex<Option<DateTime<Utc>>>,
    saved: Mutex<Option<DateTime<Utc>>>,
    catching_up: AtomicBool,
}

impl Since {
    fn open(path: PathBuf) -> Self {
        let saved = std::fs::read_to_string(&path).ok().and_then(|t| t.trim().parse::<DateTime<Utc>>().ok());
        Since {
            path,
            latest: Mutex::new(saved),
            saved: Mutex::new(saved),
            catching_up: AtomicBool::new(saved.is_some()),
        }
    }

    fn written(&self, at: DateTime<Utc>) {
        let mut latest = self.latest.lock().unwrap_or_else(|e| e.into_inner());
        *latest = Some(latest.map_or(at, |l| l.max(at)));
    }

    /// Writes the file when the time moved on (atomically: a new file renamed over the old).
    fn save(&self) {
        if self.catching_up.load(Ordering::Acquire) {
            return;
        }
        let latest = *self.latest.lock().unwrap_or_else(|e| e.into_inner());
        let mut saved = self.saved.lock().unwrap_or_else(|e| e.into_inner());
        if latest == *saved {
            return;
        }
        if let Some(at) = latest {
            let tmp = self.path.with_extension("since.tmp");
            let written = std::fs::write(&tmp, at.to_rfc3339()).and_then(|()| std::fs::rename(&tmp, &self.path));
            match written {
                Ok(()) => *saved = latest,
                Err(e) => tracing::error!("cannot keep {}: {e}", self.path.display()),
            }
        }
    }
}

/// The receivers' routes, and each source's end of its inbox (for [`run`]), by source name.
pub struct Receivers {
    pub router: Router,
    pub inboxes: HashMap<String, (mpsc::Receiver<Message>, Arc<Since>)>,
}

/// Opens an inbox per enabled `[[ngsi_ld]]` source. Fails when a source has no token.
pub fn open(cfg: &GatewayConfig) -> Result<Receivers, String> {
    let mut routes: HashMap<String, Inbox> = HashMap::new();
    let mut inboxes = HashMap::new();
    for n in cfg.ngsi_ld.iter().filter(|n| n.enabled) {
        let token = n.notification_token().map_err(|e| format!("ngsi_ld source `{}`: {e}", n.name))?;
        let since = Arc::new(Since::open(cfg.spool.dir.join(format!("ngsi-ld-{}.since", n.name))));
        let (to_source, inbox) = mpsc::channel(1024);
        let source: Arc<str> = n.name.clone().into();
        routes.insert(n.name.clone(), Inbox { token, source, to_source, since: since.clone() });
        inboxes.insert(n.name.clone(), (inbox, since));
    }
    let router = match routes.is_empty() {
        true => Router::new(),
        false => Router::new().route("/ngsi-ld/notify/{name}", post(receive)).with_state(Arc::new(routes)),
    };
    Ok(Receivers { router, inboxes })
}

fn answer(status: StatusCode, kind: &str, detail: &str) -> Response {
    let body = serde_json::json!({"type": format!("https://uri.etsi.org/ngsi-ld/errors/{kind}"), "title": kind, "detail": detail});
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// Compares in time independent of where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn receive(
    State(routes): State<Arc<HashMap<String, Inbox>>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(inbox) = routes.get(&name) else {
        return answer(StatusCode::NOT_FOUND, "ResourceNotFound", "no NGSI-LD source of that name");
    };
    let presented = headers.get(header::AUTHORIZATION).map(|v| v.as_bytes()).unwrap_or_default();
    if !same(presented, format!("Bearer {}", inbox.token).as_bytes()) {
        let mut refused = answer(StatusCode::UNAUTHORIZED, "Unauthorized", "a notification needs the source's token");
        refused.headers_mut().insert(header::WWW_AUTHENTICATE, "Bearer".parse().expect("header"));
        return refused;
    }
    let arrived = Utc::now();
    let entities: Vec<(String, Bytes)> = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(n)) if n.get("data").is_some_and(Value::is_array) => n["data"]
            .as_array()
            .map(|data| {
                data.iter()
                    .map(|e| {
                        (e.get("id").and_then(Value::as_str).unwrap_or("").to_string(), Bytes::from(e.to_string()))
                    })
                    .collect()
            })
            .unwrap_or_default(),
        // Not a notification: the decoder sets it aside with its reason.
        _ => vec![("notification".to_string(), body)],
    };
    let (acked, mut acks) = mpsc::unbounded_channel::<()>();
    let count = entities.len();
    for (id, payload) in entities {
        let message = counted(inbox.source.clone(), id, payload, &acked);
        if inbox.to_source.send(message).await.is_err() {
            return answer(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", "the gateway is stopping");
        }
    }
    drop(acked);
    let all_written = tokio::time::timeout(WRITE_WAIT, async {
        for _ in 0..count {
            acks.recv().await?;
        }
        Some(())
    });
    match all_written.await {
        Ok(Some(())) => {
            inbox.since.written(arrived);
            (StatusCode::OK, "").into_response()
        }
        _ => {
            let mut r = answer(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", "not written yet: send it again");
            r.headers_mut().insert(header::RETRY_AFTER, "5".parse().expect("header"));
            r
        }
    }
}

/// One NGSI-LD source: forwards its inbox to the gateway's pipeline and keeps the subscription.
/// `connected` is 1 while the broker holds the subscription (`smartcity_gateway_source_connected`).
pub async fn run(
    cfg: NgsiLdSourceConfig,
    mut inbox: mpsc::Receiver<Message>,
    since: Arc<Since>,
    out: mpsc::Sender<Message>,
    connected: IntGauge,
    stop: CancellationToken,
) -> Result<(), String> {
    let subscriber = Subscriber::new(&cfg).map_err(|e| format!("ngsi_ld source `{}`: {e}", cfg.name))?;
    let forward = async {
        while let Some(message) = inbox.recv().await {
            if out.send(message).await.is_err() {
                break;
            }
        }
    };
    tokio::select! {
        _ = forward => {}
        _ = keep(&cfg, &subscriber, &since, &out, &connected) => {}
        _ = stop.cancelled() => {}
    }
    since.save();
    Ok(())
}

/// Subscribes, catches up, then keeps the subscription alive and the `since` file current.
async fn keep(
    cfg: &NgsiLdSourceConfig,
    subscriber: &Subscriber,
    since: &Since,
    out: &mpsc::Sender<Message>,
    connected: &IntGauge,
) {
    let server = format!("ngsi_ld source `{}` ({})", cfg.name, cfg.address());
    let mut backoff = Backoff::default();
    while let Err(f) = subscriber.subscribe(true).await {
        connected.set(0);
        backoff.failed_after(&server, &f, f.retry_after).await;
    }
    connected.set(1);
    tracing::info!("{server}: subscribed; notifications go to {}", cfg.endpoint());
    let from = *since.saved.lock().unwrap_or_else(|e| e.into_inner());
    // The catch-up runs beside the subscription's upkeep: a broker whose temporal API fails keeps
    // it retrying (and the `since` file where it was), not the subscription unwatched.
    let catching_up = async {
        if let Some(from) = from {
            catch_up(subscriber, &server, from - CATCH_UP_MARGIN, cfg, out).await;
            since.catching_up.store(false, Ordering::Release);
        }
    };
    tokio::join!(catching_up, upkeep(cfg, subscriber, since, connected, &server));
}

/// Saves the `since` file every second; every `check_seconds`, makes sure the broker still holds
/// the subscription.
async fn upkeep(cfg: &NgsiLdSourceConfig, subscriber: &Subscriber, since: &Since, connected: &IntGauge, server: &str) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut ticks = 0u64;
    loop {
        tick.tick().await;
        since.save();
        ticks += 1;
        if !ticks.is_multiple_of(cfg.check_seconds) {
            continue;
        }
        let held = match subscriber.subscribed().await {
            Ok(true) => true,
            Ok(false) => {
                tracing::warn!("{server}: the broker lost or paused the subscription: creating it again");
                match subscriber.subscribe(true).await {
                    Ok(()) => true,
                    Err(f) => {
                        tracing::warn!("{server}: {f}");
                        false
                    }
                }
            }
            Err(f) => {
                tracing::warn!("{server}: {f}");
                false
            }
        };
        connected.set(i64::from(held));
    }
}

/// Hands on every entity state modified since `from`, and waits until all are written.
async fn catch_up(
    subscriber: &Subscriber,
    server: &str,
    from: DateTime<Utc>,
    cfg: &NgsiLdSourceConfig,
    out: &mpsc::Sender<Message>,
) {
    let mut backoff = Backoff::default();
    let entities = loop {
        match subscriber.changed_since(from).await {
            Ok(entities) => break entities,
            Err(f) => backoff.failed_after(server, &f, f.retry_after).await,
        }
    };
    tracing::info!("{server}: catching up on {} entity states modified since {from}", entities.len());
    let source: Arc<str> = cfg.name.clone().into();
    let (acked, mut acks) = mpsc::unbounded_channel::<()>();
    let count = entities.len();
    for entity in entities {
        let id = entity.get("id").and_then(Value::as_str).unwrap_or("").to_string();
        let message = counted(source.clone(), id, Bytes::from(entity.to_string()), &acked);
        if out.send(message).await.is_err() {
            return;
        }
    }
    drop(acked);
    for _ in 0..count {
        if acks.recv().await.is_none() {
            // Some were not written (the gateway stopping): the next start catches up again.
            std::future::pending::<()>().await;
        }
    }
    tracing::info!("{server}: caught up");
}

/// A message whose acknowledgement is counted on `acked` (the caller waits for as many as it sent).
fn counted(source: Arc<str>, id: String, payload: Bytes, acked: &mpsc::UnboundedSender<()>) -> Message {
    let acked = acked.clone();
    Message::new(
        source,
        id,
        payload,
        Box::new(move || {
            let _ = acked.send(());
        }),
    )
}
