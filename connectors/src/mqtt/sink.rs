//! Publishes readings as JSON to `{prefix}/{kind}/{id}`.
//!
//! Guarantee: with QoS 1 (default) a reading counts as published only when the broker's PUBACK
//! arrives; unacknowledged ones are resent by rumqttc after a reconnect as long as the broker kept
//! our session (clean_session = false, the default). If the broker lost the session, the readings
//! it never acknowledged are counted in `publish_errors_total` and logged: never silently lost.

use super::config::MqttConfig;
use crate::metrics::SinkMetrics;
use crate::retry::Backoff;
use crate::SinkError;
use rumqttc::{AsyncClient, Event, EventLoop, Outgoing, Packet, QoS};
use smartcity_model::{codec::json, Reading, SensorKind};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

const SINK: &str = "mqtt";

/// Readings handed to rumqttc and not yet acknowledged, to time them and to know when all are done.
#[derive(Default)]
struct Tracker {
    /// Handed to the client, not yet written to the socket (FIFO: rumqttc writes in order).
    queued: VecDeque<(Instant, SensorKind)>,
    /// Written, awaiting PUBACK/PUBCOMP, by packet id.
    inflight: HashMap<u16, (Instant, SensorKind)>,
    connections: u64,
}

impl Tracker {
    fn pending(&self) -> usize {
        self.queued.len() + self.inflight.len()
    }
}

/// A connected MQTT publisher. Cheap to share behind `&`.
pub struct MqttSink {
    client: AsyncClient,
    qos: QoS,
    prefix: String,
    tracker: Arc<Mutex<Tracker>>,
    drained: Arc<Notify>,
    event_loop: JoinHandle<()>,
}

impl MqttSink {
    /// Starts the client; it connects (and reconnects) in the background.
    pub fn start(cfg: &MqttConfig, metrics: SinkMetrics) -> Result<Self, SinkError> {
        let options = cfg.options().map_err(SinkError::Fatal)?;
        // The request channel bounds memory: publish() waits when it is full (back-pressure).
        let (client, event_loop) = AsyncClient::new(options, 1024);
        let tracker = Arc::new(Mutex::new(Tracker::default()));
        let drained = Arc::new(Notify::new());
        let qos = cfg.qos();
        let task = tokio::spawn(drive(event_loop, qos, cfg.url(), tracker.clone(), drained.clone(), metrics));
        Ok(MqttSink { client, qos, prefix: cfg.topic_prefix.clone(), tracker, drained, event_loop: task })
    }

    /// Hands every reading to the client, waiting when its queue is full.
    pub async fn send(&self, batch: &[Reading]) -> Result<(), SinkError> {
        for reading in batch {
            let topic = super::topic_for(&self.prefix, reading);
            // Track before publishing: the event loop may write the packet before publish() returns.
            lock(&self.tracker).queued.push_back((Instant::now(), reading.kind()));
            if let Err(e) = self.client.publish(topic, self.qos, false, json::encode(reading)).await {
                lock(&self.tracker).queued.pop_back();
                return Err(SinkError::Fatal(format!("MQTT client stopped: {e}")));
            }
        }
        Ok(())
    }

    /// Readings handed over and not yet acknowledged.
    pub fn pending(&self) -> usize {
        lock(&self.tracker).pending()
    }

    /// Waits until every reading handed over is acknowledged, or `timeout`; returns how many are not.
    pub async fn flush(&self, timeout: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.drained.notified();
            let pending = self.pending();
            if pending == 0 {
                return 0;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.pending();
            }
        }
    }

    /// Flushes (up to `timeout`), then disconnects cleanly.
    pub async fn close(self, timeout: Duration) -> usize {
        let left = self.flush(timeout).await;
        if left > 0 {
            tracing::warn!("closing MQTT sink with {left} readings not acknowledged by the broker");
        }
        let _ = self.client.disconnect().await;
        let _ = tokio::time::timeout(Duration::from_secs(2), self.event_loop).await;
        left
    }
}

fn lock(t: &Mutex<Tracker>) -> std::sync::MutexGuard<'_, Tracker> {
    // A panic elsewhere while holding the lock leaves plain counters behind: still usable.
    t.lock().unwrap_or_else(|e| e.into_inner())
}

async fn drive(
    mut event_loop: EventLoop,
    qos: QoS,
    url: String,
    tracker: Arc<Mutex<Tracker>>,
    drained: Arc<Notify>,
    metrics: SinkMetrics,
) {
    let mut backoff = Backoff::default();
    loop {
        match event_loop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                backoff.reset();
                let mut t = lock(&tracker);
                t.connections += 1;
                if t.connections > 1 && !ack.session_present && t.pending() > 0 {
                    // rumqttc drops everything it held for the old session (in flight, and the
                    // requests it drained from its channel when the connection broke). Count them all
                    // as lost: conservative (a publish blocked on the channel at that moment still
                    // goes out, uncounted), and it keeps the FIFO aligned with what is really sent.
                    let lost = t.pending();
                    t.inflight.clear();
                    t.queued.clear();
                    metrics.errors.with_label_values(&[SINK]).inc_by(lost as u64);
                    tracing::error!("{url}: broker lost our session; {lost} readings it never acknowledged are lost");
                    drained.notify_waiters();
                }
                tracing::info!("publishing to {url} (session present: {})", ack.session_present);
            }
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                let mut t = lock(&tracker);
                if qos == QoS::AtMostOnce {
                    if let Some((since, kind)) = t.queued.pop_front() {
                        observe(&metrics, since, kind);
                    }
                } else if !t.inflight.contains_key(&pkid) {
                    // A pkid already in flight is a retransmission after reconnect, not a new reading.
                    if let Some(entry) = t.queued.pop_front() {
                        t.inflight.insert(pkid, entry);
                    }
                }
                if t.pending() == 0 {
                    drained.notify_waiters();
                }
            }
            Ok(Event::Incoming(Packet::PubAck(ack))) => acknowledged(&tracker, &drained, &metrics, ack.pkid),
            Ok(Event::Incoming(Packet::PubComp(ack))) => acknowledged(&tracker, &drained, &metrics, ack.pkid),
            Ok(Event::Outgoing(Outgoing::Disconnect)) => return,
            Ok(_) => {}
            Err(rumqttc::ConnectionError::RequestsDone) => return,
            Err(e) => {
                metrics.errors.with_label_values(&[SINK]).inc();
                backoff.failed(&url, e).await;
            }
        }
    }
}

fn acknowledged(tracker: &Mutex<Tracker>, drained: &Notify, metrics: &SinkMetrics, pkid: u16) {
    let mut t = lock(tracker);
    if let Some((since, kind)) = t.inflight.remove(&pkid) {
        observe(metrics, since, kind);
    }
    if t.pending() == 0 {
        drained.notify_waiters();
    }
}

fn observe(metrics: &SinkMetrics, since: Instant, kind: SensorKind) {
    metrics.published.with_label_values(&[kind.as_str(), SINK]).inc();
    metrics.latency.with_label_values(&[SINK]).observe(since.elapsed().as_secs_f64());
}
