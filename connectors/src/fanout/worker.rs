//! One sink's task: takes batches from its queue, coalesces them up to `batch_size`, writes them,
//! retries what the server did not take (with back-off, within the retry budget), keeps the
//! metrics, and tells each tracked batch how it ended.

use super::{GivenUp, Item, QueueConfig};
use crate::retry::Backoff;
use crate::sink::{Failure, Outcome, Reason, Sink, SinkTelemetry};
use smartcity_model::{Reading, SensorKind};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;

/// Why some readings of a write were not taken in the end.
enum Lost {
    /// Refused for good by the server (about the data), or the retry budget spent (about the
    /// destination): the write goes on without them.
    GivenUp(Vec<usize>, GivenUp),
    /// The shutdown deadline passed: nothing more is written.
    Shutdown(Vec<usize>),
}

pub(super) struct Worker<S> {
    sink: S,
    server: String,
    rx: mpsc::UnboundedReceiver<Item>,
    room: Arc<Semaphore>,
    cfg: QueueConfig,
    telemetry: SinkTelemetry,
    give_up: CancellationToken,
    backoff: Backoff,
}

impl<S: Sink> Worker<S> {
    pub(super) fn new(
        sink: S,
        address: String,
        rx: mpsc::UnboundedReceiver<Item>,
        room: Arc<Semaphore>,
        cfg: QueueConfig,
        telemetry: SinkTelemetry,
        give_up: CancellationToken,
    ) -> Self {
        let server = format!("sink `{}` ({address})", telemetry.name);
        Worker { sink, server, rx, room, cfg, telemetry, give_up, backoff: Backoff::default() }
    }

    pub(super) async fn run(mut self) {
        let mut held: Vec<Item> = Vec::new();
        while self.fill(&mut held).await {
            // Coalesce what is queued into writes of at most `batch_size` readings, remembering
            // which item each reading came from so that a tracked batch learns how it ended.
            let readings: Vec<Reading> = held.iter().flat_map(|item| item.batch.iter().cloned()).collect();
            let owner: Vec<usize> =
                held.iter().enumerate().flat_map(|(n, item)| std::iter::repeat_n(n, item.batch.len())).collect();
            let mut failed: Vec<Option<GivenUp>> = vec![None; held.len()];
            let mut stopped = false;
            let mut start = 0;
            while start < readings.len() && !stopped {
                let end = (start + self.cfg.batch_size).min(readings.len());
                for lost in self.write(&readings[start..end]).await {
                    let (indices, why) = match lost {
                        Lost::GivenUp(i, why) => (i, why),
                        Lost::Shutdown(i) => {
                            stopped = true;
                            (i, GivenUp::destination("the shutdown deadline passed"))
                        }
                    };
                    for i in indices {
                        failed[owner[start + i]].get_or_insert_with(|| why.clone());
                    }
                }
                if stopped {
                    // Not written at all: count them, and fail their batches.
                    self.telemetry.dropped("shutdown", (readings.len() - end) as u64);
                    for slot in &mut failed[owner.get(end).copied().unwrap_or(held.len())..] {
                        slot.get_or_insert_with(|| GivenUp::destination("the shutdown deadline passed"));
                    }
                }
                start = end;
            }
            for (item, failure) in held.drain(..).zip(failed) {
                if let Some(done) = &item.done {
                    done.finish(
                        failure.map(|f| GivenUp { why: format!("sink `{}`: {}", self.telemetry.name, f.why), ..f }),
                    );
                }
            }
            // The items are gone: their room in the queue is free again.
            self.telemetry.set_queue(self.cfg.capacity - self.room.available_permits());
            if stopped {
                self.give_up_queue().await;
                break;
            }
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
        let mut count = first.batch.len();
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
                    count += item.batch.len();
                    held.push(item);
                }
                None => break,
            }
        }
        true
    }

    /// Writes `batch` until every reading is taken, refused, or given up; returns what was not
    /// taken (indices into `batch`).
    async fn write(&mut self, batch: &[Reading]) -> Vec<Lost> {
        let mut lost = Vec::new();
        // The readings still to write, as indices into `batch`.
        let mut todo: Vec<usize> = (0..batch.len()).collect();
        // tokio's clock, so that tests can run a budget in paused time.
        let mut failing_since: Option<tokio::time::Instant> = None;
        loop {
            let attempt: Vec<Reading> = todo.iter().map(|&i| batch[i].clone()).collect();
            let started = Instant::now();
            let outcome = tokio::select! {
                o = self.sink.send(&attempt) => o.under_the_rule(),
                _ = self.give_up.cancelled() => {
                    self.telemetry.dropped("shutdown", todo.len() as u64);
                    lost.push(Lost::Shutdown(todo));
                    return lost;
                }
            };
            self.telemetry.observe_latency(started.elapsed().as_secs_f64());
            self.account(&attempt, &outcome);
            if !outcome.rejected.is_empty() {
                let why = outcome.failure.as_ref().map_or_else(|| "refused".to_string(), ToString::to_string);
                let given_up = GivenUp { why, about_data: true };
                lost.push(Lost::GivenUp(
                    outcome.rejected.iter().filter_map(|&i| todo.get(i).copied()).collect(),
                    given_up,
                ));
            }
            if outcome.retry.is_empty() {
                if outcome.failure.is_none() {
                    self.backoff.reset();
                }
                return lost;
            }
            let failure = outcome
                .failure
                .clone()
                .unwrap_or_else(|| Failure::new(Reason::Server, "some readings were not acknowledged"));
            todo = outcome.retry.iter().filter_map(|&i| todo.get(i).copied()).collect();
            let since = *failing_since.get_or_insert_with(tokio::time::Instant::now);
            let budget = Duration::from_secs(self.cfg.retry_budget_seconds);
            if self.cfg.retry_budget_seconds > 0 && since.elapsed() >= budget {
                tracing::warn!(
                    "{}: giving up {} readings after {budget:?} of failures: {failure}",
                    self.server,
                    todo.len()
                );
                self.telemetry.dropped("budget", todo.len() as u64);
                lost.push(Lost::GivenUp(
                    todo,
                    GivenUp::destination(format!("retry budget of {budget:?} spent: {failure}")),
                ));
                return lost;
            }
            tokio::select! {
                _ = self.backoff.failed_after(&self.server, &failure, failure.retry_after) => {}
                _ = self.give_up.cancelled() => {
                    self.telemetry.dropped("shutdown", todo.len() as u64);
                    lost.push(Lost::Shutdown(todo));
                    return lost;
                }
            }
        }
    }

    fn account(&self, batch: &[Reading], outcome: &Outcome) {
        let mut taken = vec![true; batch.len()];
        for &i in outcome.retry.iter().chain(&outcome.rejected) {
            if let Some(t) = taken.get_mut(i) {
                *t = false;
            }
        }
        let mut by_kind = [0u64; SensorKind::ALL.len()];
        for (r, _) in batch.iter().zip(&taken).filter(|(_, t)| **t) {
            by_kind[r.kind() as usize] += 1;
        }
        for (k, n) in SensorKind::ALL.iter().zip(by_kind) {
            if n > 0 {
                self.telemetry.published(*k, n);
            }
        }
        match &outcome.failure {
            None => self.telemetry.set_up(true),
            Some(f) => {
                self.telemetry.error(f.reason);
                if f.reason.is_about_data() {
                    // Some readings refused for their data (the rest taken or sent again): the
                    // destination itself works.
                    self.telemetry.set_up(taken.iter().any(|t| *t) || !outcome.retry.is_empty());
                } else if !outcome.retry.is_empty() {
                    self.telemetry.set_down(f.reason);
                }
                if !outcome.rejected.is_empty() {
                    self.telemetry.dropped("rejected", outcome.rejected.len() as u64);
                    tracing::error!("{}: {} readings refused and dropped: {f}", self.server, outcome.rejected.len());
                }
            }
        }
    }

    /// At the shutdown deadline: counts what is still queued, without writing it.
    async fn give_up_queue(&mut self) {
        self.rx.close();
        while let Some(item) = self.rx.recv().await {
            self.telemetry.dropped("shutdown", item.batch.len() as u64);
            if let Some(done) = item.done {
                done.finish(Some(GivenUp::destination("the shutdown deadline passed")));
            }
        }
    }
}
