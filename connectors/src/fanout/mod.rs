//! The fan-out stage: every batch of readings goes to every sink, each through its own bounded
//! queue and its own task, so one slow or dead server never holds the others back.
//!
//! Written once for every protocol: the queue and its overflow policy, batching, retry with
//! back-off (honouring a server's `Retry-After`), the per-sink metrics, and the shutdown flush
//! with one deadline for all sinks.
//!
//! A batch handed over with [`FanOut::publish_tracked`] reports back once every sink has finished
//! with it: taken by all, or given up by one (refused for good, which is about the data; or, about
//! the destination, its `retry_budget_seconds` spent or the shutdown deadline): the distribution
//! service acknowledges its source message only then, and counts a redelivery toward its
//! dead-letter limit only for the data's reasons ([`GivenUp::about_data`]).
//!
//! Guarantee per sink: at least once. A reading leaves the queue only when the server acknowledged
//! it or refused it for good (counted in `readings_dropped_total{reason="rejected"}`); transient
//! failures are retried without limit. Readings are dropped otherwise only by the `drop` overflow
//! policy (counted, `reason="overflow"`) or when the shutdown deadline passes (`reason="shutdown"`).

mod worker;

use crate::sink::{Sink, SinkTelemetry};
use serde::Deserialize;
use smartcity_model::Reading;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use worker::Worker;

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
    /// Give a reading up after this many seconds of failed attempts (0: retry forever, the default).
    /// The simulator drops (and counts) what it gives up; the distribution service has its source
    /// redeliver it.
    pub retry_budget_seconds: u64,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            capacity: 100_000,
            overflow: Overflow::Block,
            batch_size: 1000,
            linger_ms: 0,
            retry_budget_seconds: 0,
        }
    }
}

impl QueueConfig {
    /// A `[<protocol>.queue]` table over a protocol's own `default`: `QueueConfig`'s own
    /// `#[serde(default)]` would fill a left-out key with the generic default as soon as any other
    /// key of the table is given. For `#[serde(deserialize_with = ...)]` wrappers.
    pub fn deserialize_over<'de, D: serde::Deserializer<'de>>(
        d: D,
        default: QueueConfig,
    ) -> Result<QueueConfig, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Given {
            capacity: Option<usize>,
            overflow: Option<Overflow>,
            batch_size: Option<usize>,
            linger_ms: Option<u64>,
            retry_budget_seconds: Option<u64>,
        }
        let given = Given::deserialize(d)?;
        // Every field named, so a field added to QueueConfig fails to compile here instead of being
        // silently left at its generic default.
        Ok(QueueConfig {
            capacity: given.capacity.unwrap_or(default.capacity),
            overflow: given.overflow.unwrap_or(default.overflow),
            batch_size: given.batch_size.unwrap_or(default.batch_size),
            linger_ms: given.linger_ms.unwrap_or(default.linger_ms),
            retry_budget_seconds: given.retry_budget_seconds.unwrap_or(default.retry_budget_seconds),
        })
    }

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

/// What every sink reports about one tracked batch: `Ok` once all took it, or why one gave it up.
pub type Done = Result<(), GivenUp>;

/// Why a tracked batch was given up by at least one sink.
#[derive(Debug, Clone, PartialEq)]
pub struct GivenUp {
    /// The first reason, naming the sink; a reason about the data wins over one about a destination.
    pub why: String,
    /// True when a server refused the data itself: sending it again unchanged cannot succeed. False
    /// when only destinations failed (budget spent, queue full, shutdown): the data is fine.
    pub about_data: bool,
}

impl GivenUp {
    pub fn destination(why: impl Into<String>) -> Self {
        GivenUp { why: why.into(), about_data: false }
    }
}

impl std::fmt::Display for GivenUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.why)
    }
}

/// Counts the sinks still busy with one tracked batch; the last one to finish reports.
struct Completion {
    remaining: AtomicUsize,
    failure: Mutex<Option<GivenUp>>,
    report: Mutex<Option<oneshot::Sender<Done>>>,
}

impl Completion {
    fn new(sinks: usize, report: oneshot::Sender<Done>) -> Arc<Self> {
        Arc::new(Completion {
            remaining: AtomicUsize::new(sinks),
            failure: Mutex::new(None),
            report: Mutex::new(Some(report)),
        })
    }

    /// One sink is done with the batch (`failure`: it gave up some of it).
    fn finish(&self, failure: Option<GivenUp>) {
        if let Some(f) = failure {
            let mut kept = self.failure.lock().unwrap_or_else(|e| e.into_inner());
            match kept.as_ref() {
                Some(k) if k.about_data || !f.about_data => {}
                _ => *kept = Some(f),
            }
        }
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            let result = match self.failure.lock().unwrap_or_else(|e| e.into_inner()).take() {
                None => Ok(()),
                Some(f) => Err(f),
            };
            if let Some(tx) = self.report.lock().unwrap_or_else(|e| e.into_inner()).take() {
                let _ = tx.send(result);
            }
        }
    }
}

/// A batch in a sink's queue: the readings, the room they take, and who waits for the outcome.
struct Item {
    batch: Arc<[Reading]>,
    _room: OwnedSemaphorePermit,
    done: Option<Arc<Completion>>,
}

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
        let worker = Worker::new(sink, address, rx, room.clone(), cfg.clone(), telemetry.clone(), self.give_up.clone());
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
        self.hand_over(batch, None).await;
    }

    /// As [`FanOut::publish`], and reports once every sink has finished with `batch`: `Ok` when all
    /// took it, else the first reason a sink gave it up. Meant for `block` queues: a batch a `drop`
    /// queue has no room for counts as given up.
    pub async fn publish_tracked(&self, batch: Arc<[Reading]>) -> oneshot::Receiver<Done> {
        let (tx, rx) = oneshot::channel();
        if self.queues.is_empty() || batch.is_empty() {
            let _ = tx.send(Ok(()));
            return rx;
        }
        self.hand_over(batch, Some(Completion::new(self.queues.len(), tx))).await;
        rx
    }

    async fn hand_over(&self, batch: Arc<[Reading]>, done: Option<Arc<Completion>>) {
        if batch.is_empty() {
            return;
        }
        for q in &self.queues {
            // A batch larger than the whole queue takes all of it rather than waiting forever.
            let need = batch.len().min(q.cfg.capacity) as u32;
            let room = match q.cfg.overflow {
                Overflow::Block => q.room.clone().acquire_many_owned(need).await.ok(),
                Overflow::Drop => {
                    let room = q.room.clone().try_acquire_many_owned(need).ok();
                    if room.is_none() {
                        q.telemetry.dropped("overflow", batch.len() as u64);
                    }
                    room
                }
            };
            let Some(room) = room else {
                if let Some(d) = &done {
                    d.finish(Some(GivenUp::destination(format!("sink `{}`: queue full", q.telemetry.name))));
                }
                continue;
            };
            let item = Item { batch: batch.clone(), _room: room, done: done.clone() };
            match q.tx.send(item) {
                Ok(()) => q.telemetry.set_queue(q.cfg.capacity - q.room.available_permits()),
                Err(mpsc::error::SendError(item)) => {
                    if let Some(d) = item.done {
                        d.finish(Some(GivenUp::destination("shutting down")));
                    }
                }
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

#[cfg(test)]
mod tests {
    //! The fan-out's own logic, with scripted sinks (no protocol involved: every real sink is tested
    //! against its real server in testbench/).
    use super::*;
    use crate::metrics::{registry, SinkMetrics};
    use crate::sink::{Failure, Outcome, Reason};
    use smartcity_model::{Catalogue, ReadingStream};
    use std::collections::VecDeque;

    /// Answers each write with the next scripted outcome (then `Outcome::ok()`), counting writes.
    struct Scripted {
        answers: VecDeque<Outcome>,
        writes: Arc<AtomicUsize>,
    }

    impl Sink for Scripted {
        async fn send(&mut self, batch: &[Reading]) -> Outcome {
            self.writes.fetch_add(1, Ordering::SeqCst);
            let mut o = self.answers.pop_front().unwrap_or_default();
            o.retry.retain(|&i| i < batch.len());
            o.rejected.retain(|&i| i < batch.len());
            o
        }
        async fn check(&mut self) -> Result<String, Failure> {
            Ok("scripted".into())
        }
        async fn close(self) {}
    }

    /// Keeps up to three writes in flight; each ends with the outcome the test sends it. Its
    /// `send` (the fan-out's retries) takes everything at once.
    struct Pipelined {
        started: Arc<Mutex<Vec<oneshot::Sender<Outcome>>>>,
        sends: Arc<AtomicUsize>,
    }

    impl Sink for Pipelined {
        async fn send(&mut self, _batch: &[Reading]) -> Outcome {
            self.sends.fetch_add(1, Ordering::SeqCst);
            Outcome::ok()
        }
        fn writes_in_flight(&self) -> usize {
            3
        }
        async fn start(&mut self, _batch: &[Reading]) -> crate::sink::Started {
            let (tx, rx) = oneshot::channel();
            self.started.lock().unwrap().push(tx);
            Box::pin(async move { rx.await.expect("the test answers every write") })
        }
        async fn check(&mut self) -> Result<String, Failure> {
            Ok("pipelined".into())
        }
        async fn close(self) {}
    }

    fn down() -> Outcome {
        Outcome::retry_all(10, Failure::new(Reason::Connect, "refused"))
    }

    fn batch() -> Arc<[Reading]> {
        let mut out = Vec::new();
        ReadingStream::new(Catalogue::default_ten(), 1).tick_into("2026-01-01T00:00:00Z".parse().unwrap(), &mut out);
        out.into()
    }

    fn add(f: &mut FanOut, name: &str, answers: Vec<Outcome>, cfg: QueueConfig) -> (SinkTelemetry, Arc<AtomicUsize>) {
        let metrics = SinkMetrics::register(&registry("test"), "test");
        let t = SinkTelemetry::new(&metrics, name);
        let writes = Arc::new(AtomicUsize::new(0));
        f.add(Scripted { answers: answers.into(), writes: writes.clone() }, name.into(), cfg, t.clone());
        (t, writes)
    }

    #[tokio::test(start_paused = true)]
    async fn a_tracked_batch_reports_once_every_sink_took_it() {
        let mut f = FanOut::new();
        let (a, _) = add(&mut f, "a", vec![], QueueConfig::default());
        let (b, writes) = add(&mut f, "b", vec![down(), down()], QueueConfig::default());
        let done = f.publish_tracked(batch()).await;
        assert_eq!(done.await.unwrap(), Ok(()));
        assert_eq!((a.published_total(), b.published_total(), writes.load(Ordering::SeqCst)), (10, 10, 3));
        assert_eq!(f.close(Duration::from_secs(1)).await, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn writes_in_flight_are_settled_in_the_order_they_started() {
        let mut f = FanOut::new();
        let (started, sends) = (Arc::new(Mutex::new(Vec::new())), Arc::new(AtomicUsize::new(0)));
        let t = SinkTelemetry::new(&SinkMetrics::register(&registry("test"), "test"), "pipelined");
        let sink = Pipelined { started: started.clone(), sends: sends.clone() };
        f.add(sink, "p".into(), QueueConfig { batch_size: 10, ..QueueConfig::default() }, t.clone());
        let mut done = Vec::new();
        for _ in 0..4 {
            done.push(f.publish_tracked(batch()).await);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        let mut answers: Vec<_> = std::mem::take(&mut *started.lock().unwrap());
        assert_eq!(answers.len(), 3, "three writes in flight at once; the fourth waits for room");

        // Writes 2 and 1 answer first, 1 asking for one reading again: nothing settles before 0.
        answers.pop().unwrap().send(Outcome::ok()).unwrap();
        let retry_one = Outcome { retry: vec![3], ..Outcome::retry_all(0, Failure::new(Reason::Connect, "cut")) };
        answers.pop().unwrap().send(retry_one).unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(done.iter_mut().all(|d| d.try_recv().is_err()), "no batch ends before the oldest write");
        assert_eq!(t.published_total(), 0);

        answers.pop().unwrap().send(Outcome::ok()).unwrap();
        let mut done = done.into_iter();
        assert_eq!(done.next().unwrap().await.unwrap(), Ok(()));
        assert_eq!(done.next().unwrap().await.unwrap(), Ok(()), "batch 1 ends once its retry is taken");
        assert_eq!(sends.load(Ordering::SeqCst), 1, "the retry went out alone");
        assert_eq!(done.next().unwrap().await.unwrap(), Ok(()));
        assert_eq!(t.published_total(), 30);

        // Room again: the fourth write starts.
        tokio::time::sleep(Duration::from_millis(10)).await;
        started.lock().unwrap().pop().expect("the fourth write started").send(Outcome::ok()).unwrap();
        assert_eq!(done.next().unwrap().await.unwrap(), Ok(()));
        assert_eq!(t.published_total(), 40);
        assert_eq!(f.close(Duration::from_secs(1)).await, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn past_its_budget_a_failing_sink_gives_the_batch_up() {
        let mut f = FanOut::new();
        add(&mut f, "ok", vec![], QueueConfig::default());
        let budget = QueueConfig { retry_budget_seconds: 2, ..QueueConfig::default() };
        let (dead, _) = add(&mut f, "dead", (0..100).map(|_| down()).collect(), budget);
        let done = f.publish_tracked(batch()).await.await.unwrap();
        let given_up = done.expect_err("given up");
        assert!(given_up.why.contains("sink `dead`") && given_up.why.contains("budget"), "{given_up:?}");
        assert!(!given_up.about_data, "a destination that keeps failing says nothing about the data");
        assert_eq!(dead.dropped_total(), 10);
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_reading_fails_its_tracked_batch_and_is_counted() {
        let mut f = FanOut::new();
        let refused =
            Outcome { rejected: vec![3], failure: Some(Failure::new(Reason::Rejected, "400")), ..Outcome::ok() };
        let (t, _) = add(&mut f, "picky", vec![refused], QueueConfig::default());
        add(
            &mut f,
            "down",
            (0..100).map(|_| down()).collect(),
            QueueConfig { retry_budget_seconds: 2, ..QueueConfig::default() },
        );
        let done = f.publish_tracked(batch()).await.await.unwrap();
        let given_up = done.expect_err("given up");
        assert!(given_up.about_data && given_up.why.contains("sink `picky`"), "the data's reason wins: {given_up:?}");
        assert_eq!((t.published_total(), t.dropped_total()), (9, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn drop_policy_drops_the_newest_and_the_deadline_counts_the_rest() {
        let mut f = FanOut::new();
        let small = QueueConfig { capacity: 15, overflow: Overflow::Drop, ..QueueConfig::default() };
        let (t, _) = add(&mut f, "dead", (0..1000).map(|_| down()).collect(), small);
        f.publish(batch()).await; // 10 queued
        f.publish(batch()).await; // no room for 10 more: dropped
        assert_eq!(t.dropped_total(), 10);
        assert_eq!(f.close(Duration::from_secs(5)).await, 10, "the queued 10 are unsent at the deadline");
    }
}
