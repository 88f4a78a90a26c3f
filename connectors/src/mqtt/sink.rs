//! Publishes readings as JSON to `{prefix}/{kind}/{sensor id}`.
//!
//! Guarantee: with QoS 1 (default) a write's outcome says a reading is published only once the
//! broker acknowledged it (PUBACK). Writes pipeline ([`Sink::start`]): the next write's publishes
//! go out while the previous write's PUBACKs are still coming, within rumqttc's window of `inflight`
//! unacknowledged messages (100 by default), the same window a single write had. Each write keeps
//! its own count of readings not yet acknowledged, so its outcome never depends on a later write.
//!
//! While the broker is away, rumqttc resends the unacknowledged publishes after a reconnect as long
//! as the broker kept our session (clean_session = false, the default). What it had taken from its
//! request channel but not written yet, and (if the broker lost the session) what it was to resend,
//! goes back to the fan-out as `retry` and is published again: at least once, never silently lost
//! ([`hand_back_unsent`] says why the first part is needed even when the session is kept).

use super::config::MqttConfig;
use crate::retry::Backoff;
use crate::sink::{classify, Failure, Outcome, Reason, Sink, SinkTelemetry, Started};
use rumqttc::{AsyncClient, ConnectionError, Event, EventLoop, MqttOptions, Outgoing, Packet, QoS, Request};
use smartcity_model::{codec::json, Reading};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A reading handed to rumqttc: the number of its write and its index in that write.
type Slot = (u64, usize);

/// A write whose readings are not all answered yet.
struct Pending {
    /// Readings neither acknowledged nor lost yet.
    unanswered: usize,
    /// Lost with a session (or with the client): to publish again.
    lost: Vec<usize>,
    why: Option<Failure>,
    done: oneshot::Sender<Outcome>,
}

/// The readings handed to rumqttc and not yet acknowledged, across every write in flight.
#[derive(Default)]
struct Tracker {
    /// Handed to the client, not yet written to the socket (FIFO: rumqttc writes in order).
    queued: VecDeque<Slot>,
    /// Written, awaiting PUBACK/PUBCOMP, by packet id.
    inflight: HashMap<u16, Slot>,
    writes: HashMap<u64, Pending>,
    next_write: u64,
    connections: u64,
    /// Taken from the channel but held by rumqttc until this packet id is acknowledged (a packet
    /// id collision, when a broker acknowledges out of order): out of `queued`, not written yet.
    collided: Option<(u16, Slot)>,
}

impl Tracker {
    /// A new write of `len` readings; `done` gets its outcome once every one is answered.
    fn open(&mut self, len: usize, done: oneshot::Sender<Outcome>) -> u64 {
        let n = self.next_write;
        self.next_write += 1;
        self.writes.insert(n, Pending { unanswered: len, lost: Vec::new(), why: None, done });
        n
    }

    /// The reading in `slot` is answered: acknowledged (`lost` None) or lost for that reason.
    fn answer(&mut self, (write, i): Slot, lost: Option<&Failure>) {
        let Some(w) = self.writes.get_mut(&write) else { return };
        w.unanswered = w.unanswered.saturating_sub(1);
        if let Some(why) = lost {
            w.lost.push(i);
            w.why.get_or_insert_with(|| why.clone());
        }
        if w.unanswered == 0 {
            let Pending { mut lost, why, done, .. } = self.writes.remove(&write).expect("present");
            let outcome = if lost.is_empty() {
                Outcome::ok()
            } else {
                lost.sort_unstable();
                Outcome { retry: lost, rejected: Vec::new(), failure: why }
            };
            // The fan-out may have stopped waiting (shutdown deadline): nobody to tell.
            let _ = done.send(outcome);
        }
    }

    /// Loses every reading written and not acknowledged; returns how many.
    fn lose_in_flight(&mut self, why: &Failure) -> usize {
        let slots: Vec<Slot> = self.inflight.drain().map(|(_, s)| s).collect();
        for &slot in &slots {
            self.answer(slot, Some(why));
        }
        slots.len()
    }

    /// Loses the `n` oldest readings handed over and not written (all of them: `usize::MAX`).
    fn lose_unsent(&mut self, n: usize, why: &Failure) {
        let n = n.min(self.queued.len());
        let slots: Vec<Slot> = self.queued.drain(..n).collect();
        for slot in slots {
            self.answer(slot, Some(why));
        }
    }
}

/// An MQTT publisher; it connects on the first write, then reconnects by itself.
pub struct MqttSink {
    cfg: MqttConfig,
    options: rumqttc::MqttOptions,
    telemetry: SinkTelemetry,
    qos: QoS,
    tracker: Arc<Mutex<Tracker>>,
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
            client: None,
        })
    }

    fn client(&mut self) -> AsyncClient {
        let (client, _) = self.client.get_or_insert_with(|| {
            // The request channel bounds memory: publish() waits when it is full (back-pressure).
            let (client, event_loop) = AsyncClient::new(self.options.clone(), 1024);
            let server = format!("sink `{}` ({})", self.telemetry.name, self.cfg.url());
            let tracker = self.tracker.clone();
            let task = tokio::spawn(drive(event_loop, self.qos, server, tracker, self.telemetry.clone()));
            (client, task)
        });
        client.clone()
    }
}

impl Sink for MqttSink {
    async fn send(&mut self, batch: &[Reading]) -> Outcome {
        self.start(batch).await.await
    }

    /// As many writes as messages may await their PUBACK (`inflight`): a write holds at least one,
    /// so more writes could not have anything more on the wire.
    fn writes_in_flight(&self) -> usize {
        usize::from(self.cfg.inflight.max(1))
    }

    async fn start(&mut self, batch: &[Reading]) -> Started {
        if batch.is_empty() {
            return Box::pin(std::future::ready(Outcome::ok()));
        }
        let client = self.client();
        let (done, outcome) = oneshot::channel();
        let write = lock(&self.tracker).open(batch.len(), done);
        for (i, reading) in batch.iter().enumerate() {
            let topic = super::topic_for(&self.cfg.topic_prefix, reading);
            // Track before publishing: the event loop may write the packet before publish() returns.
            lock(&self.tracker).queued.push_back((write, i));
            if let Err(e) = client.publish(topic, self.qos, false, json::encode(reading)).await {
                // The event loop has ended (the sink is closing): nothing handed over will be
                // acknowledged any more, in this write or an earlier one.
                let why = Failure::new(Reason::Connect, format!("client stopped: {e}"));
                let mut t = lock(&self.tracker);
                for j in i + 1..batch.len() {
                    t.answer((write, j), Some(&why));
                }
                t.lose_in_flight(&why);
                t.lose_unsent(usize::MAX, &why);
                break;
            }
        }
        let len = batch.len();
        Box::pin(async move {
            outcome
                .await
                .unwrap_or_else(|_| Outcome::retry_all(len, Failure::new(Reason::Connect, "the MQTT client stopped")))
        })
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
                if t.connections > 1 && !ack.session_present && !t.inflight.is_empty() {
                    // rumqttc dropped the publishes it was to resend in the old session. Hand them
                    // back to be published again: a few may go out twice (at least once), none is
                    // lost. (What it had not written yet went back at the disconnection, below.)
                    let why = Failure::new(Reason::Server, "the broker lost our session: publishing again");
                    let lost = t.lose_in_flight(&why);
                    tracing::warn!("{server}: broker lost our session; {lost} readings will be published again");
                }
                tracing::info!("{server}: connected (session present: {})", ack.session_present);
            }
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                let mut t = lock(&tracker);
                if qos == QoS::AtMostOnce {
                    if let Some(slot) = t.queued.pop_front() {
                        t.answer(slot, None);
                    }
                } else if !t.inflight.contains_key(&pkid) {
                    // A pkid already in flight is a retransmission after reconnect, not a new
                    // reading. A held publish goes out once its packet id is free again.
                    let slot = match t.collided {
                        Some((held, slot)) if held == pkid => t.collided.take().map(|_| slot),
                        _ => t.queued.pop_front(),
                    };
                    if let Some(slot) = slot {
                        t.inflight.insert(pkid, slot);
                    }
                }
            }
            Ok(Event::Outgoing(Outgoing::AwaitAck(pkid))) => {
                let mut t = lock(&tracker);
                if let Some(slot) = t.queued.pop_front() {
                    t.collided = Some((pkid, slot));
                }
            }
            Ok(Event::Incoming(Packet::PubAck(ack))) => acknowledged(&tracker, ack.pkid),
            Ok(Event::Incoming(Packet::PubComp(ack))) => acknowledged(&tracker, ack.pkid),
            Ok(Event::Outgoing(Outgoing::Disconnect)) => return,
            Ok(_) => {}
            Err(ConnectionError::RequestsDone) => return,
            Err(e) => {
                hand_back_unsent(&mut event_loop, &tracker);
                let failure = connection_failure(&e);
                telemetry.error(failure.reason);
                telemetry.set_down(failure.reason);
                backoff.failed(&server, failure).await;
            }
        }
    }
}

/// After a disconnection, rumqttc keeps in `pending`, to send first on the next connection, the
/// publishes awaiting their PUBACK (with their packet ids) and the requests it had taken from its
/// channel but not written (no packet id yet: the oldest of our queue). On the next connection the
/// latter get packet ids that collide with the resent ones, and rumqttc 0.25 keeps only the last
/// colliding publish: the others vanish and their write never ends (seen in
/// testbench/tests/mqtt_sink_in_flight.rs). So they are taken out here and handed back to the
/// fan-out, which publishes them again: never written, they cannot arrive twice.
/// A publish held back for a packet id collision stays in rumqttc's state across the reconnection
/// (where, in a new session, nothing would ever free its id): it goes back the same way.
fn hand_back_unsent(event_loop: &mut EventLoop, tracker: &Mutex<Tracker>) {
    let before = event_loop.pending.len();
    event_loop.pending.retain(|r| !matches!(r, Request::Publish(p) if p.pkid == 0));
    let unsent = before - event_loop.pending.len();
    let mut t = lock(tracker);
    let held = event_loop.state.collision.take().and_then(|_| t.collided.take());
    let lost = unsent + usize::from(held.is_some());
    let why = Failure::new(Reason::Connect, format!("connection lost before {lost} publishes went out"));
    if let Some((_, slot)) = held {
        t.answer(slot, Some(&why));
    }
    t.lose_unsent(unsent, &why);
}

fn acknowledged(tracker: &Mutex<Tracker>, pkid: u16) {
    let mut t = lock(tracker);
    if let Some(slot) = t.inflight.remove(&pkid) {
        t.answer(slot, None);
    }
}
