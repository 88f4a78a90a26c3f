//! The fan-out stage: every batch of readings goes to every sink, each through its own bounded
//! queue and its own task, so one slow or dead server never holds the others back.
//!
//! Written once for every protocol: the queue and its overflow policy, batching, retry with
//! back-off (honouring a server's `Retry-After`), the per-sink metrics, and the shutdown flush
//! with one deadline for all sinks.
//!
//! Guarantee per sink: at least once. A reading leaves the queue only when the server acknowledged
//! it or refused it for good (counted in `readings_dropped_total{reason="rejected"}`); transient
//! failures are retried without limit. Readings are dropped otherwise only by the `drop` overflow
//! policy (counted, `reason="overflow"`) or when the shutdown deadline passes (`reason="shutdown"`).

use crate::retry::Backoff;
use crate::sink::{Outcome, Sink, SinkTelemetry};
use serde::Deserialize;
use smartcity_model::Reading;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// What happens when a sink's queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Overflow {
    /// The simulated clock waits for room: nothing is lost (the default; right for a backfill).
    Block,
    /// The newest readings are dropped for this sink only, and counted: the clock never waits.
    Drop,
}

/// A sink's queue, `[<protocol>.queue]` in the config.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// Readings the queue holds before the overflow policy applies.
    pub capacity: usize,
    /// `block` (wait for room, lose nothing) or `drop` (drop the newest readings, counted).
    pub overflow: Overflow,
    /// Most readings written in one request (or one producer flush).
    pub batch_size: usize,
    /// Wait up to this long for a batch to fill before writing it (0: write what is there at once).
    pub linger_ms: u64,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig { capacity: 100_000, overflow: Overflow::Block, batch_size: 1000, linger_ms: 0 }
    }
}

impl QueueConfig {
    /// Problems a user can fix, as (field, message); empty when valid.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        if self.capacity == 0 || self.capacity > 100_000_000 {
            p.push(("queue.capacity", format!("must be 1-100000000 (got {})", self.capacity)));
        }
        if self.batch_size == 0 || self.batch_size > 100_000 {
            p.push(("queue.batch_size", format!("must be 1-100000 (got {})", self.batch_size)));
        }
        if self.linger_ms > 60_000 {
            p.push(("queue.linger_ms", format!("at most 60000 (got {})", self.linger_ms)));
        }
        p
    }
}

type Item = (Arc<[Reading]>, OwnedSemaphorePermit);

struct Queue {
    tx: mpsc::UnboundedSender<Item>,
    room: Arc<Semaphore>,
    cfg: QueueConfig,
    telemetry: SinkTelemetry,
}

/// The queues and tasks of every sink.
#[derive(Default)]
pub struct FanOut {
    queues: Vec<Queue>,
    tasks: Vec<JoinHandle<()>>,
    /// Cancelled when the shutdown deadline passes: tasks give up what they still hold.
    give_up: CancellationToken,
}

impl FanOut {
    pub fn new() -> Self {
        FanOut::default()
    }

    /// Starts the task of `sink`; `address` names the server in log lines.
    pub fn add<S: Sink>(&mut self, sink: S, address: String, cfg: QueueConfig, telemetry: SinkTelemetry) {
        let (tx, rx) = mpsc::unbounded_channel();
        let room = Arc::new(Semaphore::new(cfg.capacity));
        let worker = Worker {
            sink,
            address,
            rx,
            room: room.clone(),
            cfg: cfg.clone(),
            telemetry: telemetry.clone(),
            give_up: self.give_up.clone(),
        };
        self.tasks.push(tokio::spawn(worker.run()));
        self.queues.push(Queue { tx, room, cfg, telemetry });
    }

    pub fn telemetry(&self) -> impl Iterator<Item = &SinkTelemetry> {
        self.queues.iter().map(|q| &q.telemetry)
    }

    pub fn is_empty(&self) -> bool {
        self.queues.is_empty()
    }

    /// Hands `batch` to every sink's queue: waits for room where the policy is `block`, drops (and
    /// counts) where it is `drop`.
    pub async fn publish(&self, batch: Arc<[Reading]>) {
        if batch.is_empty() {
            return;
        }
        for q in &self.queues {
            // A batch larger than the whole queue takes all of it rather than waiting forever.
            let need = batch.len().min(q.cfg.capacity) as u32;
            let permit = match q.cfg.overflow {
                Overflow::Block => match q.room.clone().acquire_many_owned(need).await {
                    Ok(p) => p,
                    Err(_) => continue, // closed: shutting down
                },
                Overflow::Drop => match q.room.clone().try_acquire_many_owned(need) {
                    Ok(p) => p,
                    Err(_) => {
                        q.telemetry.dropped("overflow", batch.len() as u64);
                        continue;
                    }
                },
            };
            if q.tx.send((batch.clone(), permit)).is_ok() {
                q.telemetry.set_queue(q.cfg.capacity - q.room.available_permits());
            }
        }
    }

    /// Closes the queues and lets every sink write what they hold, for at most `deadline` in all.
    /// Returns the readings left unwritten (counted as dropped with `reason="shutdown"`).
    pub async fn close(self, deadline: Duration) -> u64 {
        let FanOut { queues, tasks, give_up } = self;
        let telemetry: Vec<SinkTelemetry> = queues.iter().map(|q| q.telemetry.clone()).collect();
        let before: Vec<u64> = telemetry.iter().map(|t| t.dropped_total()).collect();
        drop(queues);
        let mut all = tokio::spawn(async move {
            for t in tasks {
                let _ = t.await;
            }
        });
        if tokio::time::timeout(deadline, &mut all).await.is_err() {
            give_up.cancel();
            // Tasks now count what they hold and stop; give them a moment to do so.
            let _ = tokio::time::timeout(Duration::from_secs(3), all).await;
        }
        telemetry.iter().zip(before).map(|(t, b)| t.dropped_total() - b).sum()
    }
}

struct Worker<S> {
    sink: S,
    address: String,
    rx: mpsc::UnboundedReceiver<Item>,
    room: Arc<Semaphore>,
    cfg: QueueConfig,
    telemetry: SinkTelemetry,
    give_up: CancellationToken,
}

impl<S: Sink> Worker<S> {
    async fn run(mut self) {
        let server = format!("sink `{}` ({})", self.telemetry.name, self.address);
        let mut backoff = Backoff::default();
        let mut held: Vec<Item> = Vec::new();
        loop {
            if !self.fill(&mut held).await {
                break;
            }
            // Coalesce what is queued into batches of at most `batch_size` readings.
            let mut pending: Vec<Reading> = held.iter().flat_map(|(b, _)| b.iter().cloned()).collect();
            while !pending.is_empty() {
                let rest = pending.split_off(pending.len().min(self.cfg.batch_size));
                if !self.write(std::mem::replace(&mut pending, rest), &server, &mut backoff).await {
                    self.telemetry.dropped("shutdown", (pending.len()) as u64);
                    self.give_up_queue(held).await;
                    self.sink.close().await;
                    return;
                }
            }
            held.clear(); // releases the room these readings took in the queue
            self.telemetry.set_queue(self.cfg.capacity - self.room.available_permits());
        }
        self.sink.close().await;
    }

    /// Waits for the next readings (and up to `linger_ms` for more); false once the queue is closed
    /// and empty, or the shutdown deadline passed.
    async fn fill(&mut self, held: &mut Vec<Item>) -> bool {
        let first = tokio::select! {
            item = self.rx.recv() => item,
            _ = self.give_up.cancelled() => None,
        };
        let Some(first) = first else { return false };
        let mut count = first.0.len();
        held.push(first);
        let linger = tokio::time::Instant::now() + Duration::from_millis(self.cfg.linger_ms);
        while count < self.cfg.batch_size {
            let next = match self.rx.try_recv() {
                Ok(item) => Some(item),
                Err(_) if self.cfg.linger_ms > 0 => {
                    tokio::time::timeout_at(linger, self.rx.recv()).await.ok().flatten()
                }
                Err(_) => None,
            };
            match next {
                Some(item) => {
                    count += item.0.len();
                    held.push(item);
                }
                None => break,
            }
        }
        true
    }

    /// Writes `batch` until every reading is acknowledged or refused; false if the shutdown
    /// deadline passed first (the readings still unwritten are then counted by the caller).
    async fn write(&mut self, mut batch: Vec<Reading>, server: &str, backoff: &mut Backoff) -> bool {
        loop {
            let started = Instant::now();
            let outcome = tokio::select! {
                o = self.sink.send(&batch) => o,
                _ = self.give_up.cancelled() => {
                    self.telemetry.dropped("shutdown", batch.len() as u64);
                    return false;
                }
            };
            self.telemetry.observe_latency(started.elapsed().as_secs_f64());
            self.account(&batch, &outcome, server);
            if outcome.retry.is_empty() {
                if outcome.failure.is_none() {
                    backoff.reset();
                }
                return true;
            }
            let failure = outcome.failure.clone().unwrap_or_else(|| {
                crate::sink::Failure::new(crate::sink::Reason::Server, "some readings were not acknowledged")
            });
            batch = keep(batch, &outcome.retry);
            tokio::select! {
                _ = backoff.failed_after(server, &failure, failure.retry_after) => {}
                _ = self.give_up.cancelled() => {
                    self.telemetry.dropped("shutdown", batch.len() as u64);
                    return false;
                }
            }
        }
    }

    fn account(&self, batch: &[Reading], outcome: &Outcome, server: &str) {
        let mut taken = vec![true; batch.len()];
        for &i in outcome.retry.iter().chain(&outcome.rejected) {
            if let Some(t) = taken.get_mut(i) {
                *t = false;
            }
        }
        let mut by_kind = [0u64; smartcity_model::SensorKind::ALL.len()];
        for (r, _) in batch.iter().zip(&taken).filter(|(_, t)| **t) {
            by_kind[r.kind() as usize] += 1;
        }
        for (k, n) in smartcity_model::SensorKind::ALL.iter().zip(by_kind) {
            if n > 0 {
                self.telemetry.published(*k, n);
            }
        }
        match &outcome.failure {
            None => self.telemetry.set_up(true),
            Some(f) => {
                self.telemetry.error(f.reason);
                self.telemetry.set_up(outcome.retry.is_empty() && taken.iter().any(|t| *t));
                if !outcome.rejected.is_empty() {
                    self.telemetry.dropped("rejected", outcome.rejected.len() as u64);
                    tracing::error!("{server}: {} readings refused and dropped: {f}", outcome.rejected.len());
                }
            }
        }
    }

    /// At the shutdown deadline: counts what is still queued, without writing it.
    async fn give_up_queue(&mut self, held: Vec<Item>) {
        drop(held);
        self.rx.close();
        while let Some((batch, _)) = self.rx.recv().await {
            self.telemetry.dropped("shutdown", batch.len() as u64);
        }
    }
}

/// The readings of `batch` at `indices`, in order.
fn keep(batch: Vec<Reading>, indices: &[usize]) -> Vec<Reading> {
    let mut wanted = vec![false; batch.len()];
    for &i in indices {
        if let Some(w) = wanted.get_mut(i) {
            *w = true;
        }
    }
    batch.into_iter().zip(wanted).filter(|(_, w)| *w).map(|(r, _)| r).collect()
}
