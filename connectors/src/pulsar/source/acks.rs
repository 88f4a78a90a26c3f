//! How the run loop carries out what deliveries ask for: acknowledgements, nacks (counted per
//! message, redelivered after a delay or dead-lettered once they run out), releases; and, at
//! shutdown, the acks still on their way before the consumer closes.

use super::delivery::{Cmd, Origin};
use super::run_loop::Runner;
use super::{Client, Consumer};
use crate::pulsar::source_config::SubscriptionType;
use std::time::Duration;
use tokio::time::{timeout, Instant};

/// Entries of the nack counts older than this are forgotten (the message was handled elsewhere).
const NACK_MEMORY: Duration = Duration::from_secs(3600);
/// Size of the nack counts at which old entries are looked for.
const NACK_PRUNE_AT: usize = 10_000;

impl Runner {
    pub(super) async fn handle(&mut self, cmd: Cmd, client: &Client, consumer: &mut Consumer) {
        match cmd {
            Cmd::Ack(origin) => self.ack(origin, consumer).await,
            Cmd::Release(origin) => self.redeliver_later(origin),
            Cmd::Redeliver(origin) => {
                self.done(&origin);
                if let Err(e) = consumer.nack_with_id(&origin.topic, origin.id).await {
                    // The consumer of that topic is gone; its successor gets the message anyway.
                    tracing::debug!("nack on {} not sent: {e}", origin.topic);
                }
            }
            Cmd::Nack(letter, reason) => {
                let key = letter.origin.key();
                let count = self.nacks.get(&key).map_or(0, |(n, _)| *n);
                if count >= self.src.cfg.max_redeliveries {
                    self.send_dead_letter(client, letter, &reason, Some(count)).await;
                } else {
                    if self.nacks.len() >= NACK_PRUNE_AT {
                        // Messages acknowledged by another consumer never come back to be forgotten.
                        let now = Instant::now();
                        self.nacks.retain(|_, (_, at)| now.duration_since(*at) < NACK_MEMORY);
                    }
                    self.nacks.insert(key, (count + 1, Instant::now()));
                    self.redeliver_later(letter.origin);
                }
            }
            Cmd::DeadLetter(letter, reason) => {
                let count = self.nacks.get(&letter.origin.key()).map(|(n, _)| *n);
                self.send_dead_letter(client, letter, &reason, count.filter(|n| *n > 0)).await;
            }
            Cmd::DeadLettered(origin, label, result) => self.dead_lettered(origin, label, result, consumer).await,
            Cmd::Probe(..) => {}
        }
    }

    pub(super) async fn ack(&mut self, origin: Origin, consumer: &mut Consumer) {
        self.done(&origin);
        if !self.nacks.is_empty() {
            self.nacks.remove(&origin.key());
        }
        // The broker acknowledges whole entries: only once every message of the batch is acked.
        let Some(id) = self.entries.acked(&origin.topic, &origin.id, origin.batch_size) else { return };
        if let Err(e) = consumer.ack_with_id(&origin.topic, id).await {
            // The consumer of that topic is gone: the message comes back, at least once.
            tracing::debug!("ack on {} not sent: {e}", origin.topic);
        }
    }

    /// Has the broker redeliver the message after `redelivery_delay_ms`.
    pub(super) fn redeliver_later(&self, origin: Origin) {
        let tx = self.tx.clone();
        let delay = Duration::from_millis(self.src.cfg.redelivery_delay_ms);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = tx.send(Cmd::Redeliver(origin));
        });
    }

    /// The message is no longer ours to count as in flight.
    fn done(&mut self, origin: &Origin) {
        if let Some(n) = self.in_flight.get_mut(&origin.topic) {
            *n = n.saturating_sub(1);
        }
    }

    /// At shutdown: forwards the acks already asked for, so that the broker does not redeliver what
    /// was handled, then closes the consumer (the broker redelivers everything else).
    pub(super) async fn close(&mut self, mut consumer: Consumer) {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let cmd = match self.rx.try_recv() {
                Ok(cmd) => cmd,
                // Dead letters with a receipt on the way: their originals can still be acknowledged.
                Err(_) if self.receipts_due > 0 && Instant::now() < deadline => {
                    match timeout(deadline.saturating_duration_since(Instant::now()), self.rx.recv()).await {
                        Ok(Some(cmd)) => cmd,
                        _ => break,
                    }
                }
                Err(_) => break,
            };
            match cmd {
                Cmd::Ack(origin) => self.ack(origin, &mut consumer).await,
                Cmd::DeadLettered(origin, label, result) => {
                    self.dead_lettered(origin, label, result, &mut consumer).await
                }
                _ => {}
            }
        }
        // The client's engine sends acks from its own queue: give it a moment before closing.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let _ = timeout(Duration::from_secs(5), consumer.close()).await;
        let subscription = &self.src.cfg.subscription;
        let kind = match self.src.cfg.subscription_type {
            SubscriptionType::KeyShared => "key_shared",
            SubscriptionType::Shared => "shared",
            SubscriptionType::Failover => "failover",
            SubscriptionType::Exclusive => "exclusive",
        };
        // Batches with a message not yet handled were not acknowledged: the broker resends them whole.
        let partial = self.entries.open();
        tracing::info!(
            "pulsar source `{}`: closed ({kind} subscription `{subscription}`; {partial} batches partly handled, to be redelivered)",
            self.src.cfg.name
        );
    }
}
