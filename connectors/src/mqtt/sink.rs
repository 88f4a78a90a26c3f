//! Publishes readings as JSON to `{prefix}/{kind}/{id}`.
//!
//! Guarantee: with QoS 1 (default) a `send` resolves once the broker acknowledged (PUBACK) every
//! reading of the batch. While the broker is away, rumqttc resends the unacknowledged publishes
//! after a reconnect as long as the broker kept our session (clean_session = false, the default).
//! If the broker lost the session, the readings it never acknowledged are handed back to the
//! fan-out as `retry` and published again: at least once, never silently lost.

use super::config::MqttConfig;
use crate::retry::Backoff;
use crate::sink::{classify, Failure, Outcome, Reason, Sink, SinkTelemetry};
use rumqttc::{AsyncClient, ConnectionError, Event, EventLoop, MqttOptions, Outgoing, Packet, QoS};
use smartcity_model::{codec::json, Reading};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// Readings of the current batch handed to rumqttc and not yet acknowledged, by batch index.
#[derive(Default)]
struct Tracker {
    /// Handed to the client, not yet written to the socket (FIFO: rumqttc writes in order).
    queued: VecDeque<usize>,
    /// Written, awaiting PUBACK/PUBCOMP, by packet id.
    inflight: HashMap<u16, usize>,
    /// Dropped with a session the broker lost: to publish again.
    lost: Vec<usize>,
    connections: u64,
}

impl Tracker {
    fn pending(&self) -> usize {
        self.queued.len() + self.inflight.len()
    }
}

/// An MQTT publisher; it connects on the first write, then reconnects by itself.
pub struct MqttSink {
    cfg: MqttConfig,
    options: rumqttc::MqttOptions,
    telemetry: SinkTelemetry,
    qos: QoS,
    tracker: Arc<Mutex<Tracker>>,
    drained: Arc<Notify>,
    /// The client and its event loop task, once started. Not at `new`: `simulator check` builds
    /// the sink too, and connecting with our client id would take over a running publisher's session.
    client: Option<(AsyncClient, JoinHandle<()>)>,
}

impl MqttSink {
    /// Reads the settings (password, TLS files); fails only on those. No network yet.
    pub fn new(cfg: &MqttConfig, telemetry: SinkTelemetry) -> Result<Self, String> {
        Ok(MqttSink {
            cfg: cfg.clone(),
            options: cfg.options()?,
            telemetry,
            qos: cfg.qos(),
            tracker: Arc::default(),
            drained: Arc::new(Notify::new()),
            client: None,
        })
    }

    fn client(&mut self) -> AsyncClient {
        let (client, _) = self.client.get_or_insert_with(|| {
            // The request channel bounds memory: publish() waits when it is full (back-pressure).
            let (client, event_loop) = AsyncClient::new(self.options.clone(), 1024);
            let server = format!("sink `{}` ({})", self.telemetry.name, self.cfg.url());
            let (tracker, drained) = (self.tracker.clone(), self.drained.clone());
            let task = tokio::spawn(drive(event_loop, self.qos, server, tracker, drained, self.telemetry.clone()));
            (client, task)
        });
        client.clone()
    }

    /// Waits until every reading handed over is acknowledged (or lost with the session).
    async fn wait_drained(&self) {
        loop {
            let notified = self.drained.notified();
            if lock(&self.tracker).pending() == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Sink for MqttSink {
    async fn send(&mut self, batch: &[Reading]) -> Outcome {
        let client = self.client();
        lock(&self.tracker).lost.clear();
        for (i, reading) in batch.iter().enumerate() {
            let topic = super::topic_for(&self.cfg.topic_prefix, reading);
            // Track before publishing: the event loop may write the packet before publish() returns.
            lock(&self.tracker).queued.push_back(i);
            if let Err(e) = client.publish(topic, self.qos, false, json::encode(reading)).await {
                let mut t = lock(&self.tracker);
                t.queued.clear();
                t.inflight.clear();
                return Outcome::retry_all(batch.len(), Failure::new(Reason::Connect, format!("client stopped: {e}")));
            }
        }
        self.wait_drained().await;
        let lost = std::mem::take(&mut lock(&self.tracker).lost);
        if lost.is_empty() {
            Outcome::ok()
        } else {
            let failure = Failure::new(
                Reason::Server,
                format!("the broker lost our session: {} readings to publish again", lost.len()),
            );
            Outcome { retry: lost, rejected: Vec::new(), failure: Some(failure) }
        }
    }

    async fn check(&mut self) -> Result<String, Failure> {
        probe_login(&self.options, &self.cfg.client_id).await?;
        let tls = if self.cfg.tls.is_some() { "TLS verified, " } else { "" };
        let user = self.cfg.username.as_deref().map_or("anonymous".to_string(), |u| format!("authenticated as {u}"));
        Ok(format!("connected to {} ({tls}{user}), publishing under {}/", self.cfg.url(), self.cfg.topic_prefix))
    }

    async fn close(self) {
        if let Some((client, event_loop)) = self.client {
            let _ = client.disconnect().await;
            let _ = tokio::time::timeout(Duration::from_secs(2), event_loop).await;
        }
    }
}

/// Connects and disconnects once, with a client of its own (`{client_id}-check`, a clean session):
/// connecting with the running client's id would take over (and with a clean session, wipe) its
/// session. `Ok` once the broker accepted the login.
pub(crate) async fn probe_login(options: &MqttOptions, client_id: &str) -> Result<(), Failure> {
    let mut options = options.clone();
    options.set_client_id(format!("{client_id}-check")).set_clean_session(true);
    let (client, mut event_loop) = AsyncClient::new(options, 10);
    let answer = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match event_loop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(connection_failure(&e)),
            }
        }
    })
    .await
    .unwrap_or_else(|_| Err(Failure::new(Reason::Timeout, "no CONNACK within 10 s")));
    let _ = client.disconnect().await;
    answer
}

/// A connection error as a failure a user can act on.
fn connection_failure(e: &ConnectionError) -> Failure {
    let reason = match e {
        ConnectionError::ConnectionRefused(code) => match code {
            rumqttc::ConnectReturnCode::BadUserNamePassword | rumqttc::ConnectReturnCode::NotAuthorized => Reason::Auth,
            _ => Reason::Server,
        },
        ConnectionError::Tls(_) => Reason::Tls,
        other => classify(&other.to_string()),
    };
    match reason {
        // What the operator changes; the readings wait meanwhile (docs/failures.md).
        Reason::Auth => {
            Failure::new(reason, format!("{e} (the broker refused our login: check username and password_file)"))
        }
        _ => Failure::new(reason, e.to_string()),
    }
}

fn lock(t: &Mutex<Tracker>) -> std::sync::MutexGuard<'_, Tracker> {
    // A panic elsewhere while holding the lock leaves plain indices behind: still usable.
    t.lock().unwrap_or_else(|e| e.into_inner())
}

async fn drive(
    mut event_loop: EventLoop,
    qos: QoS,
    server: String,
    tracker: Arc<Mutex<Tracker>>,
    drained: Arc<Notify>,
    telemetry: SinkTelemetry,
) {
    let mut backoff = Backoff::default();
    loop {
        match event_loop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                backoff.reset();
                telemetry.set_up(true);
                let mut t = lock(&tracker);
                t.connections += 1;
                if t.connections > 1 && !ack.session_present && t.pending() > 0 {
                    // rumqttc drops everything it held for the old session (in flight, and the
                    // requests it drained from its channel). Hand them all back to be published
                    // again: a few may go out twice (at least once), none is lost.
                    let Tracker { queued, inflight, lost, .. } = &mut *t;
                    lost.extend(queued.drain(..));
                    lost.extend(inflight.drain().map(|(_, i)| i));
                    tracing::warn!(
                        "{server}: broker lost our session; {} readings will be published again",
                        lost.len()
                    );
                    drained.notify_waiters();
                }
                tracing::info!("{server}: connected (session present: {})", ack.session_present);
            }
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                let mut t = lock(&tracker);
                if qos == QoS::AtMostOnce {
                    t.queued.pop_front();
                } else if !t.inflight.contains_key(&pkid) {
                    // A pkid already in flight is a retransmission after reconnect, not a new reading.
                    if let Some(i) = t.queued.pop_front() {
                        t.inflight.insert(pkid, i);
                    }
                }
                if t.pending() == 0 {
                    drained.notify_waiters();
                }
            }
            Ok(Event::Incoming(Packet::PubAck(ack))) => acknowledged(&tracker, &drained, ack.pkid),
            Ok(Event::Incoming(Packet::PubComp(ack))) => acknowledged(&tracker, &drained, ack.pkid),
            Ok(Event::Outgoing(Outgoing::Disconnect)) => return,
            Ok(_) => {}
            Err(ConnectionError::RequestsDone) => return,
            Err(e) => {
                let failure = connection_failure(&e);
                telemetry.error(failure.reason);
                telemetry.set_down(failure.reason);
                backoff.failed(&server, failure).await;
            }
        }
    }
}

fn acknowledged(tracker: &Mutex<Tracker>, drained: &Notify, pkid: u16) {
    let mut t = lock(tracker);
    t.inflight.remove(&pkid);
    if t.pending() == 0 {
        drained.notify_waiters();
    }
}
