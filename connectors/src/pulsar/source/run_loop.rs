//! The run loop: one session (a client and its consumer) after the other, each receiving messages,
//! handing them on, and carrying out the requests of deliveries and of the watchdog.

use super::delivery::{Cmd, Handle, MsgKey, Origin};
use super::entry_acks::EntryAcks;
use super::topic_watch::TopicWatch;
use super::watchdog::Probe;
use super::{Client, Consumer, PulsarDelivery, PulsarSource, TOPIC_REFRESH};
use crate::retry::Backoff;
use ::pulsar::consumer::Message;
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Why a session (one client and consumer) ended.
enum End {
    Shutdown,
    Reconnect(String),
}

/// The run loop's state across sessions.
pub(super) struct Runner {
    pub(super) src: PulsarSource,
    pub(super) tx: mpsc::UnboundedSender<Cmd>,
    pub(super) rx: mpsc::UnboundedReceiver<Cmd>,
    /// Our nacks per message, and when the last one was.
    pub(super) nacks: HashMap<MsgKey, (u32, Instant)>,
    /// Messages received and not yet acknowledged, dead-lettered or given back, per topic.
    pub(super) in_flight: HashMap<String, u64>,
    dead_letter_ready: bool,
    pub(super) probe: Option<Arc<Probe>>,
    pub(super) session: u64,
    pub(super) probe_failures: u64,
    /// Dead letters sent whose receipt has not come back yet.
    pub(super) receipts_due: usize,
    /// Batches (entries) with some of their messages acknowledged.
    pub(super) entries: EntryAcks,
    /// `received` of the metrics, for this source.
    received: prometheus::IntCounter,
}

impl Runner {
    pub(super) fn new(src: PulsarSource) -> Result<Self, String> {
        let (tx, rx) = mpsc::unbounded_channel();
        let probe = src.probe()?;
        let received = src.metrics.received.with_label_values(&[src.cfg.name.as_str()]);
        Ok(Runner {
            src,
            tx,
            rx,
            nacks: HashMap::new(),
            in_flight: HashMap::new(),
            dead_letter_ready: false,
            probe,
            session: 0,
            probe_failures: 0,
            receipts_due: 0,
            entries: EntryAcks::default(),
            received,
        })
    }

    /// Hands every delivery on as `into` turns it (a gateway message, or the delivery itself).
    pub(super) async fn run<T: Send>(
        &mut self,
        out: mpsc::Sender<T>,
        into: impl Fn(PulsarDelivery) -> T + Send,
        shutdown: CancellationToken,
    ) -> Result<(), String> {
        let name = self.src.cfg.name.clone();
        let server = format!("pulsar source `{name}` at {}", self.src.cfg.url);
        let connected = self.src.metrics.connected.with_label_values(&[name.as_str()]);
        let mut backoff = Backoff::default();
        loop {
            let attempt = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                a = self.connect() => a,
            };
            let (client, consumer) = match attempt {
                Ok(session) => session,
                Err(e) => {
                    tokio::select! {
                        _ = shutdown.cancelled() => return Ok(()),
                        _ = backoff.failed(&server, e) => continue,
                    }
                }
            };
            backoff.reset();
            connected.set(1);
            tracing::info!(
                "{server}: subscription `{}` ({:?}) on {}",
                self.src.cfg.subscription,
                self.src.cfg.subscription_type,
                self.src.cfg.what()
            );
            let started = Instant::now();
            let end = self.serve(&client, consumer, &out, &into, &shutdown).await;
            connected.set(0);
            match end {
                End::Shutdown => return Ok(()),
                End::Reconnect(why) => {
                    tracing::warn!("{server}: {why}; recreating the client and the consumer");
                    // A consumer that ends right after subscribing must not make us spin; connection
                    // failures that follow are the back-off's (and logged by it).
                    if started.elapsed() < Duration::from_secs(5) {
                        tokio::select! {
                            _ = shutdown.cancelled() => return Ok(()),
                            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        }
                    }
                }
            }
        }
    }

    async fn connect(&mut self) -> Result<(Client, Consumer), String> {
        let client = self.src.client().await?;
        if !self.dead_letter_ready {
            self.src.create_dead_letter_subscription(&client).await.map_err(|e| {
                format!(
                    "cannot create the dead-letter subscription `{}` on {}: {e}",
                    self.src.cfg.dead_letter_subscription, self.src.cfg.dead_letter_topic
                )
            })?;
            self.dead_letter_ready = true;
        }
        let consumer =
            self.src.subscribe(&client).await.map_err(|e| {
                format!("cannot subscribe `{}` to {}: {e}", self.src.cfg.subscription, self.src.cfg.what())
            })?;
        Ok((client, consumer))
    }

    /// Receives, hands on and acknowledges until the session has to end.
    async fn serve<T: Send>(
        &mut self,
        client: &Client,
        mut consumer: Consumer,
        out: &mpsc::Sender<T>,
        into: &(impl Fn(PulsarDelivery) -> T + Send),
        shutdown: &CancellationToken,
    ) -> End {
        self.session += 1;
        let period = Duration::from_secs(self.src.cfg.watchdog_seconds.max(1));
        let mut tick = tokio::time::interval_at(Instant::now() + period, period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let watchdog = self.probe.is_some();
        let mut probing = false;
        let mut watch = TopicWatch::new(period, TOPIC_REFRESH);
        watch.held(consumer.topics().iter().map(String::as_str), Instant::now());
        let mut pending: Option<T> = None;
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => {
                    drop(pending);
                    self.close(consumer).await;
                    return End::Shutdown;
                }
                Some(cmd) = self.rx.recv() => match cmd {
                    Cmd::Probe(session, result) if session == self.session => {
                        probing = false;
                        watch.held(consumer.topics().iter().map(String::as_str), Instant::now());
                        if pending.is_some() {
                            continue; // back-pressure since the probe was sent: not silence
                        }
                        if let Some(why) = self.probe_result(result, &mut watch) {
                            self.src.watchdog_restarts.fetch_add(1, Ordering::Relaxed);
                            return End::Reconnect(format!("watchdog: {why}, nothing received from them for {period:?}"));
                        }
                    }
                    Cmd::Probe(..) => {} // from an earlier session
                    cmd => self.handle(cmd, client, &mut consumer).await,
                },
                permit = out.reserve(), if pending.is_some() => match permit {
                    Ok(permit) => {
                        if let Some(d) = pending.take() {
                            permit.send(d);
                        }
                    }
                    Err(_) => {
                        // The consumer of `out` is gone: nothing can be handled any more.
                        drop(pending);
                        self.close(consumer).await;
                        return End::Shutdown;
                    }
                },
                next = consumer.next(), if pending.is_none() => match next {
                    Some(Ok(msg)) => {
                        watch.received(&msg.topic, Instant::now());
                        pending = self.received(msg, &mut consumer).await.map(into);
                        // Handed on at once when `out` has room: one turn of this loop per message.
                        if let Some(d) = pending.take() {
                            match out.try_reserve() {
                                Ok(permit) => permit.send(d),
                                Err(_) => pending = Some(d), // full (or closed): the branch above waits
                            }
                        }
                    }
                    Some(Err(e)) => {
                        // One message the client could not read (its engine goes on): it stays
                        // unacknowledged and comes back with the next consumer.
                        tracing::warn!("pulsar source `{}`: {e}", self.src.cfg.name);
                    }
                    None => return End::Reconnect("the consumer's message stream ended".into()),
                },
                _ = tick.tick(), if watchdog => {
                    let now = Instant::now();
                    watch.held(consumer.topics().iter().map(String::as_str), now);
                    if pending.is_some() {
                        // Waiting for room in `out` is back-pressure, not a silent consumer.
                        watch.busy(now);
                    } else if !probing && watch.worth_probing(now) {
                        probing = true;
                        self.spawn_probe();
                    }
                }
            }
        }
    }

    /// Turns a message into a delivery, or skips it (ours from the dead-letter topic).
    async fn received(&mut self, msg: Message<Vec<u8>>, consumer: &mut Consumer) -> Option<PulsarDelivery> {
        let Message { topic, payload, message_id, .. } = msg;
        if topic == self.src.cfg.dead_letter_topic {
            // A pattern that matches the dead-letter topic: its own subscription keeps the letters.
            let _ = consumer.ack_with_id(&topic, message_id.id).await;
            return None;
        }
        self.received.inc();
        match self.in_flight.get_mut(&topic) {
            Some(n) => *n += 1,
            None => {
                self.in_flight.insert(topic.clone(), 1);
            }
        }
        let meta = payload.metadata;
        let origin = Origin {
            topic: topic.clone(),
            id: message_id.id,
            properties: meta.properties.into_iter().map(|kv| (kv.key, kv.value)).collect(),
            key_b64: meta.partition_key_b64_encoded,
            ordering_key: meta.ordering_key,
            batch_size: meta.num_messages_in_batch.map_or(1, |n| n.max(1) as u32),
        };
        // Nacks are rare: no key (a copy of the topic name) per message when there are none.
        let redeliveries = if self.nacks.is_empty() { 0 } else { self.nacks.get(&origin.key()).map_or(0, |(n, _)| *n) };
        Some(PulsarDelivery {
            topic,
            payload: payload.data,
            key: meta.partition_key,
            event_time: meta.event_time,
            redeliveries,
            handle: Handle { origin: Some(origin), tx: self.tx.clone() },
        })
    }
}
