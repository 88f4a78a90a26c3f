//! One sink's task: takes batches from its queue, cuts them into writes of at most `batch_size`
//! readings, keeps up to the sink's [`Sink::writes_in_flight`] writes outstanding, settles each in
//! the order it started (metrics; retry with back-off within the retry budget), and tells each
//! tracked batch how it ended once every write holding part of it is settled.
//!
//! Why writes in flight, and why this way: a write to MQTT is taken at once but ends only with its
//! last PUBACK, which Mosquitto holds back about 40 ms (docs/performance.md); waiting for it before
//! the next write left the connection idle. So the sink starts a write and hands back its outcome
//! as a future, and this task starts the next one meanwhile: the smallest change that lets a sink
//! pipeline while the guarantees stay here, written once. A reading still counts as published only
//! once its write's outcome says so, and writes are settled strictly in order, so what upstream
//! learns (tracked batches, metrics) follows the queue order as before. A write whose outcome asks
//! for retries is retried, alone, before any later write is settled; the later ones stay in flight
//! meanwhile. Sinks that do not pipeline keep a window of 1: start, wait, settle, next.

use super::{GivenUp, Item, QueueConfig};
use crate::retry::Backoff;
use crate::sink::{Failure, Outcome, Reason, Sink, SinkTelemetry, Started};
use futures::stream::{FuturesOrdered, StreamExt};
use futures::FutureExt;
use smartcity_model::{Reading, SensorKind};
use std::borrow::Cow;
use std::collections::VecDeque;
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

/// A batch taken from the queue, until every write holding part of it is settled.
struct Held {
    item: Item,
    /// Its readings already put into writes (`item.batch[..next]`).
    next: usize,
    /// Writes holding part of it and not settled yet.
    open: usize,
    /// The first reason some of its readings were not taken.
    failure: Option<GivenUp>,
}

/// A started write: its readings and the held batches they came from, in order.
struct Write {
    readings: Vec<Reading>,
    /// (number of the held batch, readings of it in this write).
    parts: Vec<(u64, usize)>,
    started: Instant,
}

impl Write {
    /// The number of the held batch each reading of the write came from.
    fn owners(&self) -> Vec<u64> {
        self.parts.iter().flat_map(|&(n, len)| std::iter::repeat_n(n, len)).collect()
    }
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
    /// Batches taken from the queue and not finished, in queue order; `held[0]` is number `first`.
    held: VecDeque<Held>,
    first: u64,
    /// `held[..whole]` are entirely in writes; `held[whole..]` still have readings to write.
    whole: usize,
    /// Writes in flight, oldest first, and their outcomes in the same order.
    writes: VecDeque<Write>,
    outcomes: FuturesOrdered<Started>,
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
        Worker {
            sink,
            server,
            rx,
            room,
            cfg,
            telemetry,
            give_up,
            backoff: Backoff::default(),
            held: VecDeque::new(),
            first: 0,
            whole: 0,
            writes: VecDeque::new(),
            outcomes: FuturesOrdered::new(),
        }
    }

    pub(super) async fn run(mut self) {
        let window = self.sink.writes_in_flight().max(1);
        let mut open = true;
        loop {
            let room = self.writes.len() < window;
            if room && self.whole < self.held.len() {
                if !self.start_write().await {
                    break;
                }
                continue;
            }
            if !open && self.writes.is_empty() {
                self.sink.close().await;
                return;
            }
            // Nothing to start, or no room: the oldest write's outcome, or (with room) more readings.
            tokio::select! {
                biased;
                _ = self.give_up.cancelled() => break,
                Some(outcome) = self.outcomes.next(), if !self.outcomes.is_empty() => {
                    if !self.settle_oldest(outcome).await {
                        break;
                    }
                }
                item = self.rx.recv(), if open && room => match item {
                    Some(item) => self.hold(item),
                    None => open = false,
                },
            }
        }
        // The shutdown deadline passed.
        self.stop().await;
        self.sink.close().await;
    }

    fn hold(&mut self, item: Item) {
        // `FanOut::hand_over` never queues an empty batch: each held batch has readings to write.
        self.held.push_back(Held { item, next: 0, open: 0, failure: None });
    }

    /// Starts the next write: the held readings not written yet, then whatever else is queued
    /// (waiting up to `linger_ms` for more), up to `batch_size`. False at the shutdown deadline.
    async fn start_write(&mut self) -> bool {
        let size = self.cfg.batch_size;
        let linger = tokio::time::Instant::now() + Duration::from_millis(self.cfg.linger_ms);
        let mut write = Write { readings: Vec::new(), parts: Vec::new(), started: Instant::now() };
        loop {
            while write.readings.len() < size && self.whole < self.held.len() {
                let number = self.first + self.whole as u64;
                let h = &mut self.held[self.whole];
                let take = (h.item.batch.len() - h.next).min(size - write.readings.len());
                write.readings.extend_from_slice(&h.item.batch[h.next..h.next + take]);
                write.parts.push((number, take));
                h.next += take;
                h.open += 1;
                if h.next == h.item.batch.len() {
                    self.whole += 1;
                }
            }
            if write.readings.len() >= size {
                break;
            }
            let next = match self.rx.try_recv() {
                Ok(item) => Some(item),
                Err(_) if self.cfg.linger_ms > 0 => {
                    tokio::time::timeout_at(linger, self.rx.recv()).await.ok().flatten()
                }
                Err(_) => None,
            };
            match next {
                Some(item) => self.hold(item),
                None => break,
            }
        }
        write.started = Instant::now();
        let outcome = tokio::select! {
            started = self.sink.start(&write.readings) => Some(started),
            _ = self.give_up.cancelled() => None,
        };
        self.writes.push_back(write);
        match outcome {
            Some(outcome) => {
                self.outcomes.push_back(outcome);
                true
            }
            // Not handed over in full: `stop` counts it with the writes in flight (it is the last).
            None => false,
        }
    }

    /// Settles the oldest write with its `outcome` (retrying what it asks for); false at the
    /// shutdown deadline.
    async fn settle_oldest(&mut self, outcome: Outcome) -> bool {
        let write = self.writes.pop_front().expect("one write per outcome in flight");
        let lost = self.settle(&write.readings, outcome, write.started).await;
        let mut stopped = false;
        if !lost.is_empty() {
            let owners = write.owners();
            for lost in lost {
                let (indices, why) = match lost {
                    Lost::GivenUp(i, why) => (i, why),
                    Lost::Shutdown(i) => {
                        stopped = true;
                        (i, GivenUp::destination("the shutdown deadline passed"))
                    }
                };
                for i in indices {
                    let h = &mut self.held[(owners[i] - self.first) as usize];
                    h.failure.get_or_insert_with(|| why.clone());
                }
            }
        }
        for &(number, _) in &write.parts {
            self.held[(number - self.first) as usize].open -= 1;
        }
        // The batches now written and settled in full, in queue order.
        while self.whole > 0 && self.held.front().is_some_and(|h| h.open == 0) {
            let h = self.held.pop_front().expect("checked");
            self.first += 1;
            self.whole -= 1;
            self.report(h.item, h.failure);
        }
        // Those items are gone: their room in the queue is free again.
        self.telemetry.set_queue(self.cfg.capacity - self.room.available_permits());
        !stopped
    }

    fn report(&self, item: Item, failure: Option<GivenUp>) {
        if let Some(done) = &item.done {
            done.finish(failure.map(|f| GivenUp { why: format!("sink `{}`: {}", self.telemetry.name, f.why), ..f }));
        }
    }

    /// Takes `first`, the outcome of `batch`'s write, and writes again (one write at a time) what
    /// it asks for, until every reading is taken, refused, or given up; returns what was not taken
    /// (indices into `batch`).
    async fn settle(&mut self, batch: &[Reading], first: Outcome, mut started: Instant) -> Vec<Lost> {
        let mut lost = Vec::new();
        let mut outcome = first.under_the_rule();
        // What the last attempt wrote, and which readings of `batch` it held.
        let mut attempt: Cow<'_, [Reading]> = Cow::Borrowed(batch);
        let mut todo: Vec<usize> = (0..batch.len()).collect();
        // tokio's clock, so that tests can run a budget in paused time.
        let mut failing_since: Option<tokio::time::Instant> = None;
        loop {
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
            attempt = Cow::Owned(todo.iter().map(|&i| batch[i].clone()).collect());
            started = Instant::now();
            outcome = tokio::select! {
                o = self.sink.send(&attempt) => o.under_the_rule(),
                _ = self.give_up.cancelled() => {
                    self.telemetry.dropped("shutdown", todo.len() as u64);
                    lost.push(Lost::Shutdown(todo));
                    return lost;
                }
            };
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

    /// At the shutdown deadline: settles the writes already answered, then counts everything else
    /// (writes still in flight, readings not written, what is still queued) as dropped, without
    /// writing it, and fails the tracked batches it belongs to.
    async fn stop(&mut self) {
        while let Some(Some(outcome)) = self.outcomes.next().now_or_never() {
            // Retries stop at once: the deadline has passed.
            self.settle_oldest(outcome).await;
        }
        self.outcomes = FuturesOrdered::new();
        let in_flight: usize = self.writes.drain(..).map(|w| w.readings.len()).sum();
        let unwritten: usize = self.held.iter().map(|h| h.item.batch.len() - h.next).sum();
        self.telemetry.dropped("shutdown", (in_flight + unwritten) as u64);
        for h in std::mem::take(&mut self.held) {
            let why = h.failure.unwrap_or_else(|| GivenUp::destination("the shutdown deadline passed"));
            self.report(h.item, Some(why));
        }
        self.rx.close();
        while let Some(item) = self.rx.recv().await {
            self.telemetry.dropped("shutdown", item.batch.len() as u64);
            self.report(item, Some(GivenUp::destination("the shutdown deadline passed")));
        }
        self.telemetry.set_queue(self.cfg.capacity - self.room.available_permits());
    }
}
