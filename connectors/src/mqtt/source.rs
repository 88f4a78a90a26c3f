//! Subscribes to `{prefix}/#` and hands each message on with an acknowledgement.
//!
//! Guarantee (QoS 1, clean_session = false, the defaults): at least once. The PUBACK is sent only
//! when the consumer calls [`Delivery::ack`], i.e. after it has handled the message; the broker
//! redelivers anything unacknowledged after a reconnect. The event loop is polled continuously even
//! when the consumer is slow (keep-alives keep flowing); the broker's in-flight window bounds how
//! many unacknowledged messages can pile up here.

use super::config::MqttConfig;
use crate::metrics::SourceMetrics;
use crate::retry::Backoff;
use crate::SinkError;
use bytes::Bytes;
use rumqttc::{AsyncClient, Event, Packet, Publish};
use std::collections::VecDeque;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const SOURCE: &str = "mqtt";

/// One received message and the means to acknowledge it.
pub struct Delivery {
    pub topic: String,
    pub payload: Bytes,
    publish: Publish,
    client: AsyncClient,
}

impl Delivery {
    /// Tells the broker the message is handled (PUBACK for QoS 1).
    pub async fn ack(self) {
        if let Err(e) = self.client.ack(&self.publish).await {
            tracing::debug!("ack not sent (client stopping): {e}");
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

    /// Runs until `shutdown`; reconnects and re-subscribes by itself.
    pub async fn run(self, out: mpsc::Sender<Delivery>, shutdown: CancellationToken) -> Result<(), SinkError> {
        let mut options = self.cfg.options().map_err(SinkError::Fatal)?;
        options.set_manual_acks(true);
        let (client, mut event_loop) = AsyncClient::new(options, 256);
        let filter = format!("{}/#", self.cfg.topic_prefix);
        let url = self.cfg.url();
        let connected = self.metrics.connected.with_label_values(&[SOURCE]);
        let mut buffer: VecDeque<Delivery> = VecDeque::new();
        let mut backoff = Backoff::default();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                permit = out.reserve(), if !buffer.is_empty() => match permit {
                    Ok(permit) => permit.send(buffer.pop_front().expect("buffer is not empty")),
                    Err(_) => break, // consumer gone
                },
                event = event_loop.poll() => match event {
                    Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                        backoff.reset();
                        connected.set(1);
                        // Subscriptions do not survive a session the broker dropped: always renew.
                        if let Err(e) = client.subscribe(&filter, self.cfg.qos()).await {
                            return Err(SinkError::Fatal(format!("cannot subscribe to {filter}: {e}")));
                        }
                        tracing::info!("subscribed to {filter} on {url} (session present: {})", ack.session_present);
                    }
                    Ok(Event::Incoming(Packet::Publish(publish))) => {
                        self.metrics.received.with_label_values(&[SOURCE]).inc();
                        buffer.push_back(Delivery {
                            topic: publish.topic.clone(),
                            payload: publish.payload.clone(),
                            publish,
                            client: client.clone(),
                        });
                    }
                    Ok(Event::Incoming(Packet::SubAck(ack))) => {
                        if ack.return_codes.iter().any(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure)) {
                            return Err(SinkError::Fatal(format!("{url} refused the subscription to {filter}")));
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
        let _ = client.disconnect().await;
        // Let the DISCONNECT go out.
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
