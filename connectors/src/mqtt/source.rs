//! Subscribes to `{prefix}/#` (or `$share/{group}/{prefix}/#`) and hands each message on as a
//! [`Message`] whose acknowledgement is the PUBACK.
//!
//! Guarantee (QoS 1, clean_session = false, the defaults): at least once. The PUBACK is sent only
//! when the consumer acknowledges the message, i.e. after its downstream write, and in the order the
//! messages arrived ([`super::acks`]); the broker redelivers anything unacknowledged after a
//! reconnect, and queues what arrives while we are away.
//!
//! The event loop is polled without pause, even when the consumer is slow, so keep-alives keep
//! flowing, unless [`BUFFER_LIMIT`] messages wait for it (then it stops reading: back-pressure).
//! Nothing that polls it ever waits on the client's request channel: acknowledgements and
//! subscriptions go through their own task, because that channel is drained by the very loop that
//! would be waiting on it (a full channel at a reconnect would stall the source for good).

use super::acks::AckOrder;
use super::config::MqttConfig;
use crate::metrics::SourceMetrics;
use crate::retry::Backoff;
use crate::sink::{classify, Failure};
use crate::source::{Message, SourceError};
use rumqttc::{AsyncClient, Event, Packet, Publish, QoS};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Messages received and not yet taken by the consumer, at most. While the buffer is full the
/// event loop is not polled: a pause longer than 1.5 keep-alives makes the broker close the
/// connection, and the reconnect redelivers whatever was unacknowledged (nothing is lost).
pub const BUFFER_LIMIT: usize = 1000;

/// Largest incoming packet; beyond it (and beyond the broker's own `message_size_limit`, which
/// should be lower) a message cannot be received at all.
pub const INCOMING_LIMIT: usize = 32 << 20;

/// Connects as the source would (under another client id, with a clean session, so the running
/// subscriber's session is left alone) and disconnects: reachable, TLS, login. Subscribes to nothing.
pub async fn check(cfg: &MqttConfig) -> Result<String, Failure> {
    let options = cfg.options().map_err(|e| Failure::new(classify(&e), e))?;
    super::sink::probe_login(&options, &cfg.client_id).await?;
    let tls = if cfg.tls.is_some() { "TLS verified, " } else { "" };
    let user = cfg.username.as_deref().map_or("anonymous".to_string(), |u| format!("authenticated as {u}"));
    Ok(format!("connected to {} ({tls}{user}), would subscribe to {}/#", cfg.url(), cfg.topic_prefix))
}

/// What the request task is asked to do, by the event loop and by the messages' acknowledgements.
enum Request {
    /// A message was received (QoS 1/2): its PUBACK goes out in this order.
    Track(Publish),
    /// Message `n` (its number from `Track`) is handled.
    Ack(u64),
    /// Message `n` was dropped unacknowledged.
    Release(u64),
    Subscribe,
}

/// The acknowledgement of message `n`: `ack` asks for its PUBACK; dropping it unused releases it.
struct AckHandle {
    n: u64,
    requests: Option<mpsc::UnboundedSender<Request>>,
}

impl AckHandle {
    fn ack(mut self) {
        if let Some(r) = self.requests.take() {
            // The task is gone only at shutdown, when the broker redelivers anyway.
            let _ = r.send(Request::Ack(self.n));
        }
    }
}

impl Drop for AckHandle {
    fn drop(&mut self) {
        if let Some(r) = self.requests.take() {
            let _ = r.send(Request::Release(self.n));
        }
    }
}

/// An MQTT subscription.
pub struct MqttSource {
    cfg: MqttConfig,
    metrics: SourceMetrics,
}

impl MqttSource {
    pub fn new(cfg: MqttConfig, metrics: SourceMetrics) -> Self {
        MqttSource { cfg, metrics }
    }

    /// Name in logs and in the `source` label.
    pub fn name(&self) -> &str {
        if self.cfg.name.is_empty() {
            "mqtt"
        } else {
            &self.cfg.name
        }
    }

    /// The subscription filter: `{prefix}/#`, shared as `$share/{group}/...` when configured.
    pub fn filter(&self) -> String {
        match &self.cfg.share_group {
            Some(group) => format!("$share/{group}/{}/#", self.cfg.topic_prefix),
            None => format!("{}/#", self.cfg.topic_prefix),
        }
    }

    /// Runs until `shutdown`; reconnects and re-subscribes by itself, also when the broker refuses
    /// the login or the subscription (the broker's side: the source waits for the operator). Fails
    /// only when its own settings cannot work (TLS or password files unreadable).
    pub async fn run(self, out: mpsc::Sender<Message>, shutdown: CancellationToken) -> Result<(), SourceError> {
        let mut options = self
            .cfg
            .options()
            .map_err(|e| SourceError::Settings(format!("mqtt source `{}` ({}): {e}", self.name(), self.cfg.url())))?;
        options.set_manual_acks(true);
        // Incoming packets up to INCOMING_LIMIT: a larger message than `max_packet_bytes` must reach
        // the consumer (which sets it aside as a dead letter) rather than break the connection, or
        // the broker would redeliver it after every reconnect, forever.
        options.set_max_packet_size(INCOMING_LIMIT.max(self.cfg.max_packet_bytes), self.cfg.max_packet_bytes);
        let (client, mut event_loop) = AsyncClient::new(options, 256);
        let name: Arc<str> = self.name().into();
        let filter = self.filter();
        let url = self.cfg.url();
        let connected = self.metrics.connected.with_label_values(&[&name]);
        let received = self.metrics.received.with_label_values(&[&name]);
        let (requests, request_rx) = mpsc::unbounded_channel();
        let request_task = tokio::spawn(send_requests(client.clone(), request_rx, filter.clone(), self.cfg.qos()));
        let mut buffer: VecDeque<Message> = VecDeque::new();
        let mut backoff = Backoff::default();
        // Numbers of the tracked messages, as `AckOrder` counts them.
        let mut tracked: u64 = 0;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                permit = out.reserve(), if !buffer.is_empty() => match permit {
                    Ok(permit) => permit.send(buffer.pop_front().expect("buffer is not empty")),
                    Err(_) => break, // consumer gone
                },
                // Full buffer: stop reading from the socket (TCP flow control then holds the broker
                // back) until the consumer takes some. Brokers do not all honour the in-flight
                // window: Mosquitto 2.0 sends a whole queued backlog once acknowledgements start.
                event = event_loop.poll(), if buffer.len() < BUFFER_LIMIT => match event {
                    Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                        backoff.reset();
                        connected.set(1);
                        // Subscriptions do not survive a session the broker dropped: always renew.
                        let _ = requests.send(Request::Subscribe);
                        tracing::info!("{name}: connected to {url}, subscribing to {filter} (session present: {})", ack.session_present);
                    }
                    Ok(Event::Incoming(Packet::Publish(publish))) => {
                        received.inc();
                        let topic = publish.topic.clone();
                        let payload = publish.payload.clone();
                        // QoS 0 has nothing to acknowledge.
                        let ack: crate::source::Acker = if publish.qos == QoS::AtMostOnce {
                            Box::new(|| {})
                        } else {
                            let handle = AckHandle { n: tracked, requests: Some(requests.clone()) };
                            tracked += 1;
                            let _ = requests.send(Request::Track(publish));
                            Box::new(move || handle.ack())
                        };
                        buffer.push_back(Message::new(name.clone(), topic, payload, ack));
                    }
                    Ok(Event::Incoming(Packet::SubAck(ack))) => {
                        if ack.return_codes.iter().any(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure)) {
                            // The broker's permissions (an ACL), not the data: ask again after a
                            // back-off, saying what to change, until the operator grants it.
                            connected.set(0);
                            let why = format!(
                                "auth: the broker refused the subscription to {filter} (check the broker's ACL for this user)"
                            );
                            backoff.failed(&url, why).await;
                            let _ = requests.send(Request::Subscribe);
                        } else {
                            backoff.reset();
                            connected.set(1);
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        connected.set(0);
                        backoff.failed(&url, e).await;
                    }
                },
            }
        }
        connected.set(0);
        // Unacknowledged messages still buffered are dropped: the broker redelivers them.
        drop(buffer);
        drop(requests);
        // Let the acknowledgements of what the consumer still writes go out before disconnecting:
        // the request task ends once every message handed on is acknowledged or dropped.
        let _ = tokio::time::timeout(Duration::from_secs(10), async {
            let mut request_task = request_task;
            loop {
                tokio::select! {
                    _ = &mut request_task => break,
                    ev = event_loop.poll() => if ev.is_err() { break },
                }
            }
        })
        .await;
        let _ = client.disconnect().await;
        let _ = tokio::time::timeout(Duration::from_millis(500), async {
            while let Ok(ev) = event_loop.poll().await {
                if matches!(ev, Event::Outgoing(rumqttc::Outgoing::Disconnect)) {
                    break;
                }
            }
        })
        .await;
        Ok(())
    }
}

/// Sends acknowledgements (in arrival order, see [`super::acks`]) and subscriptions on the
/// client; waits for room in its request channel without holding up the event loop.
async fn send_requests(client: AsyncClient, mut rx: mpsc::UnboundedReceiver<Request>, filter: String, qos: QoS) {
    let mut order = AckOrder::default();
    while let Some(request) = rx.recv().await {
        let ready = match request {
            Request::Track(publish) => {
                order.track(publish);
                continue;
            }
            Request::Ack(n) => order.ack(n),
            Request::Release(n) => order.release(n),
            Request::Subscribe => {
                if let Err(e) = client.subscribe(&filter, qos).await {
                    tracing::debug!("MQTT subscription not sent (client stopping): {e}");
                    return;
                }
                continue;
            }
        };
        for publish in ready {
            if let Err(e) = client.ack(&publish).await {
                tracing::debug!("MQTT acknowledgement not sent (client stopping): {e}");
                return;
            }
        }
    }
}
