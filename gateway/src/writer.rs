//! The writer: batches decoded readings, writes them to the store, and acknowledges each one to its
//! source only once it is safe: accepted by the store, or parked in the spool on local disk.
//!
//! - **Direct** (the spool is empty and the store answered last time): a batch goes straight to
//!   the store; once it answers, the batch is acknowledged. Readings the store refused for good
//!   (a 400 naming a line) become dead letters; those it could not take now go to the spool.
//!   Up to `writes_in_flight` batches are written at once ([`crate::in_flight`]): the next batch
//!   goes out while the store answers the earlier ones. Answers are settled in the order the
//!   batches went out, so acknowledgements leave in arrival order, and a batch that failed among
//!   several is spooled before any later one is settled. Every write in flight is settled before
//!   the writer appends to the spool or drains it, so the spool keeps arrival order.
//! - **Spooling** (the store failed, or the spool still holds older batches): batches are appended
//!   to the spool, so that the spool drains in arrival order, and acknowledged at once. Between
//!   appends the writer drains the spool's oldest batches to the store, up to `writes_in_flight`
//!   writes at once and committed in order, after a back-off while the store keeps failing. When the spool is empty again, writes go direct.
//! - **Full** (the spool reached `max_bytes`): the batch is held, unacknowledged, and nothing more
//!   is read: the sources stop, and the brokers keep the messages (MQTT: unacknowledged in-flight
//!   messages and the session queue; Kafka: uncommitted offsets; Pulsar: unacknowledged messages).
//!   Nothing is dropped.
//!
//! At shutdown the writer stops once its input is closed and nothing is held: what the spool holds
//! stays on disk and is replayed at the next start (at least once: a batch written but not yet
//! committed in the spool is written twice, which InfluxDB stores as one point).

use crate::config::WriterConfig;
use crate::dead_letter::{DeadLetterFile, DeadLetterLine};
use crate::in_flight::InFlight;
use crate::metrics::GatewayMetrics;
use crate::store::Store;
use chrono::Utc;
use smartcity_connectors::sink::{Failure, Outcome};
use smartcity_connectors::source::Ack;
use smartcity_connectors::spool::{Spool, SpoolError};
use smartcity_model::codec::json;
use smartcity_model::Reading;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

#[derive(Clone, Copy, PartialEq)]
enum Fate {
    Written,
    Retry,
    Rejected,
}

/// What the outcome says of each reading of a batch of `len`.
fn fates(len: usize, outcome: &Outcome) -> Vec<Fate> {
    let mut fate = vec![Fate::Written; len];
    for &i in &outcome.retry {
        if let Some(f) = fate.get_mut(i) {
            *f = Fate::Retry;
        }
    }
    for &i in &outcome.rejected {
        if let Some(f) = fate.get_mut(i) {
            *f = Fate::Rejected;
        }
    }
    fate
}

/// A decoded reading and the acknowledgement of the message it came from.
pub struct Item {
    pub reading: Reading,
    /// Source name and topic, for a dead letter if the store refuses the reading.
    pub source: Arc<str>,
    pub topic: String,
    pub ack: Ack,
}

/// A direct write, handed back by [`InFlight`] in the order the writes went out.
struct Sent {
    items: Vec<Item>,
    readings: Vec<Reading>,
    outcome: Outcome,
    elapsed: Duration,
}

/// A batch of at most `batch_size` from `first` and what follows it within `linger_ms`. Returns
/// the batch and whether the input is closed. (Not a method: the writer is not `Sync`, its writes
/// in flight hold acknowledgements.)
async fn gather(first: Item, input: &mut mpsc::Receiver<Item>, batch_size: usize, linger_ms: u64) -> (Vec<Item>, bool) {
    let mut batch = vec![first];
    let deadline = tokio::time::Instant::now() + Duration::from_millis(linger_ms);
    while batch.len() < batch_size {
        match input.try_recv() {
            Ok(item) => batch.push(item),
            Err(mpsc::error::TryRecvError::Disconnected) => return (batch, true),
            Err(mpsc::error::TryRecvError::Empty) => match tokio::time::timeout_at(deadline, input.recv()).await {
                Ok(Some(item)) => batch.push(item),
                Ok(None) => return (batch, true),
                Err(_) => break,
            },
        }
    }
    (batch, false)
}

/// Most spool records read at once when draining (they are then written in batches of
/// `batch_size`, up to `writes_in_flight` at once).
const DRAIN_RECORDS: usize = 1024;
/// About the size of a reading in the spool (our wire format, one JSON line): a drain reads
/// `batch_size` × this per write in flight, so that small spooled batches still make full writes.
const SPOOLED_READING_BYTES: usize = 320;

const FIRST_RETRY: Duration = Duration::from_millis(200);
const MAX_RETRY: Duration = Duration::from_secs(5);

/// One write of a drain: the readings of `records` consecutive spool records.
#[derive(Default)]
struct DrainWrite {
    records: usize,
    readings: Vec<Reading>,
}

pub struct Writer {
    store: Arc<Store>,
    in_flight: InFlight<Sent>,
    spool: Arc<Mutex<Spool>>,
    spool_max: u64,
    cfg: WriterConfig,
    metrics: GatewayMetrics,
    dead: Arc<Mutex<DeadLetterFile>>,
    /// No write to the store before this (back-off after a failure).
    retry_at: Option<Instant>,
    retry_delay: Duration,
    failures: u64,
    warned_nearly_full: bool,
    /// Batches in the spool (a spool record is one batch); kept here to avoid locking to ask.
    spooled_batches: usize,
}

impl Writer {
    pub fn new(
        store: Store,
        spool: Spool,
        spool_max: u64,
        cfg: WriterConfig,
        metrics: GatewayMetrics,
        dead: Arc<Mutex<DeadLetterFile>>,
    ) -> Self {
        let spooled_batches = spool.len();
        metrics.spool_max_bytes.set(spool_max as i64);
        // Up until a write says otherwise: an idle gateway is not an outage.
        metrics.store_state(None);
        let w = Writer {
            store: Arc::new(store),
            in_flight: InFlight::new(cfg.writes_in_flight),
            spool: Arc::new(Mutex::new(spool)),
            spool_max,
            cfg,
            metrics,
            dead,
            retry_at: None,
            retry_delay: FIRST_RETRY,
            failures: 0,
            warned_nearly_full: false,
            spooled_batches,
        };
        w.update_spool_metrics(&w.spool.lock().unwrap_or_else(|e| e.into_inner()));
        w
    }

    /// The spool, for the periodic `fsync` task.
    pub fn spool(&self) -> Arc<Mutex<Spool>> {
        self.spool.clone()
    }

    /// Runs until `input` is closed and nothing is held back.
    pub async fn run(mut self, mut input: mpsc::Receiver<Item>) {
        let mut held: Option<Vec<Item>> = None;
        let mut closed = false;
        loop {
            if let Some(batch) = held.take() {
                held = self.park(batch).await;
            }
            // Writes in flight are settled first whenever the next step may not overlap them: a
            // park or a drain (the spool keeps arrival order), a write beyond the limit, the stop.
            if !self.in_flight.is_empty() && (held.is_some() || closed || !self.direct() || !self.in_flight.has_room())
            {
                let sent = self.in_flight.next().await.expect("a write is in flight");
                self.settle(sent, &mut held);
                continue;
            }
            let first = if self.in_flight.is_empty() {
                if self.spooled_batches > 0 && self.due() {
                    self.drain_one().await;
                }
                if closed {
                    // Whatever is held stays unacknowledged: its source redelivers it after the restart.
                    break;
                }
                if held.is_some() {
                    // Full: read nothing more (back-pressure) until the drain makes room; drain on at
                    // once while the store takes writes.
                    if self.spooled_batches == 0 || !self.due() {
                        tokio::time::sleep(self.wait_for_store().unwrap_or(FIRST_RETRY)).await;
                    }
                    continue;
                }
                let first_wait = if self.spooled_batches == 0 {
                    None
                } else {
                    Some(self.wait_for_store().unwrap_or(Duration::ZERO))
                };
                match first_wait {
                    None => input.recv().await,
                    Some(wait) => match tokio::time::timeout(wait, input.recv()).await {
                        Ok(item) => item,
                        Err(_) => continue,
                    },
                }
            } else {
                // Direct, with room for another write: the next reading or the oldest write's
                // answer, whichever comes first (both waits are cancel-safe: nothing is lost).
                let next = tokio::select! {
                    biased;
                    sent = self.in_flight.next() => Err(sent.expect("a write is in flight")),
                    item = input.recv() => Ok(item),
                };
                match next {
                    Ok(item) => item,
                    Err(sent) => {
                        self.settle(sent, &mut held);
                        continue;
                    }
                }
            };
            let Some(first) = first else {
                closed = true;
                continue;
            };
            // Spooled batches need not be large: linger only when writing direct.
            let linger = if self.spooled_batches == 0 { self.cfg.linger_ms } else { 0 };
            let (batch, input_closed) = gather(first, &mut input, self.cfg.batch_size, linger).await;
            closed = input_closed;
            held = self.take(batch).await;
        }
        let spool = self.spool.lock().unwrap_or_else(|e| e.into_inner());
        if !spool.is_empty() {
            tracing::info!(
                "stopping with {} batches ({} bytes) in the spool: they are written at the next start",
                spool.len(),
                spool.bytes()
            );
        }
    }

    /// Handles a new batch: a write in flight when writing direct, else the spool; returns it back
    /// if it could not be made safe (spool full).
    async fn take(&mut self, batch: Vec<Item>) -> Option<Vec<Item>> {
        if !self.direct() {
            return self.park(batch).await;
        }
        let readings: Vec<Reading> = batch.iter().map(|i| i.reading.clone()).collect();
        let store = self.store.clone();
        self.in_flight.push(async move {
            let started = Instant::now();
            let outcome = store.send(&readings).await.under_the_rule();
            Sent { items: batch, readings, outcome, elapsed: started.elapsed() }
        });
        self.metrics.writes_in_flight.set(self.in_flight.len() as i64);
        None
    }

    /// Settles a write handed back (in order): acknowledges the readings the store took or refused
    /// for good (dead letters), and adds those it could not take to `held`, to be spooled next.
    fn settle(&mut self, sent: Sent, held: &mut Option<Vec<Item>>) {
        self.metrics.writes_in_flight.set(self.in_flight.len() as i64);
        let outcome = self.account(&sent.readings, sent.outcome, sent.elapsed);
        let fate = fates(sent.readings.len(), &outcome);
        let mut to_spool = Vec::new();
        for (i, item) in sent.items.into_iter().enumerate() {
            if fate[i] == Fate::Retry {
                to_spool.push(item);
            } else if fate[i] == Fate::Rejected {
                let reason = outcome.failure.as_ref().map(|f| f.message.as_str()).unwrap_or("refused by the store");
                self.dead_letter(&item, reason);
                item.ack.ack();
            } else {
                item.ack.ack();
            }
        }
        if !to_spool.is_empty() {
            // After what is held already: the spool keeps arrival order.
            held.get_or_insert_with(Vec::new).extend(to_spool);
        }
    }

    /// Appends `batch` to the spool, in records of at most [`Writer::record_limit`] bytes, and
    /// acknowledges each record's readings once it is appended; gives back what did not fit.
    async fn park(&mut self, batch: Vec<Item>) -> Option<Vec<Item>> {
        let mut rest = batch.into_iter().peekable();
        while rest.peek().is_some() {
            let mut record = Vec::new();
            let mut chunk = Vec::new();
            while let Some(item) = rest.next_if(|_| chunk.is_empty() || record.len() < self.record_limit()) {
                json::encode_into(&item.reading, &mut record);
                record.push(b'\n');
                chunk.push(item);
            }
            if let Err(()) = self.append(record, chunk.len()).await {
                chunk.extend(rest);
                return Some(chunk);
            }
            self.metrics.spooled.inc_by(chunk.len() as u64);
            for item in chunk {
                item.ack.ack();
            }
        }
        None
    }

    /// Largest spool record: small enough that even a small spool always has room for one
    /// (a record that could never fit would hold the gateway forever).
    fn record_limit(&self) -> usize {
        ((self.spool_max / 4) as usize).clamp(4096, smartcity_connectors::spool::MAX_RECORD / 2)
    }

    /// Appends one record; `Err` when the spool is full or failed (already logged and counted).
    async fn append(&mut self, record: Vec<u8>, readings: usize) -> Result<(), ()> {
        let spool = self.spool.clone();
        let (result, stats) = tokio::task::spawn_blocking(move || {
            let mut s = spool.lock().unwrap_or_else(|e| e.into_inner());
            let r = s.append(&record);
            (r, (s.disk_bytes(), s.len(), s.segments(), s.bytes()))
        })
        .await
        .expect("spool task does not panic");
        self.set_spool_metrics(stats);
        match result {
            Ok(()) => {
                self.spooled_batches += 1;
                if self.metrics.spool_full.get() == 1 {
                    tracing::info!("spool has room again: acknowledging readings again");
                    self.metrics.spool_full.set(0);
                }
                self.warn_when_nearly_full(stats.0);
                Ok(())
            }
            Err(SpoolError::Full { used, max }) => {
                if self.metrics.spool_full.get() == 0 {
                    tracing::warn!(
                        "spool full ({used} of {max} bytes): holding back acknowledgements of {readings} readings and \
                         reading no more; the brokers keep the messages until {} takes writes again",
                        self.store.describe()
                    );
                    self.metrics.spool_full.set(1);
                }
                Err(())
            }
            Err(e) => {
                tracing::error!("{e}: holding back acknowledgements");
                self.metrics.spool_full.set(1);
                Err(())
            }
        }
    }

    /// Writes the spool's oldest batches to the store, up to `writes_in_flight` writes at once, and
    /// commits in the spool those written, in order. A write that fails ends the commit there: it
    /// and the ones after it stay first in line, and those after it that the store took are written
    /// again at the next drain (the same points, which InfluxDB stores once). So the spool drains
    /// in arrival order, as many writes at a time as the direct path keeps in flight.
    async fn drain_one(&mut self) {
        let spool = self.spool.clone();
        let budget = SPOOLED_READING_BYTES * self.cfg.batch_size * self.cfg.writes_in_flight;
        let peeked = tokio::task::spawn_blocking(move || {
            spool.lock().unwrap_or_else(|e| e.into_inner()).peek_bytes(DRAIN_RECORDS, budget)
        })
        .await
        .expect("spool task does not panic");
        let records = match peeked {
            Ok(records) if !records.is_empty() => records,
            Ok(_) => {
                self.spooled_batches = 0;
                return;
            }
            Err(e) => {
                tracing::error!("{e}");
                self.back_off(&Failure::new(smartcity_connectors::sink::Reason::Server, e.to_string()));
                return;
            }
        };
        let writes = self.drain_writes(&records);
        let store = &self.store;
        let answers = futures::future::join_all(writes.iter().map(|w| async move {
            let started = Instant::now();
            let outcome = match w.readings.is_empty() {
                true => Outcome::ok(),
                false => store.send(&w.readings).await.under_the_rule(),
            };
            (outcome, started.elapsed())
        }))
        .await;
        let mut taken = 0;
        for (w, (outcome, elapsed)) in writes.iter().zip(answers) {
            let outcome = match w.readings.is_empty() {
                true => outcome,
                false => self.account(&w.readings, outcome, elapsed),
            };
            if !outcome.retry.is_empty() {
                break; // `account` set the back-off; this batch stays first in line.
            }
            for &i in &outcome.rejected {
                let reason = outcome.failure.as_ref().map(|f| f.message.as_str()).unwrap_or("refused by the store");
                if let Some(r) = w.readings.get(i) {
                    let line = json::encode(r);
                    self.write_dead_letter("spool", "spool", "rejected", reason, &line);
                }
            }
            taken += w.records;
        }
        if taken == 0 {
            return;
        }
        let spool = self.spool.clone();
        let (result, stats) = tokio::task::spawn_blocking(move || {
            let mut s = spool.lock().unwrap_or_else(|e| e.into_inner());
            let r = s.commit(taken);
            (r, (s.disk_bytes(), s.len(), s.segments(), s.bytes()))
        })
        .await
        .expect("spool task does not panic");
        self.set_spool_metrics(stats);
        match result {
            Ok(()) => {
                self.spooled_batches = stats.1;
                if self.spooled_batches == 0 {
                    tracing::info!("spool drained: writing directly to {} again", self.store.describe());
                }
            }
            Err(e) => tracing::error!("{e}"),
        }
    }

    /// The oldest spool records as up to `writes_in_flight` writes of at most `batch_size` readings
    /// each (a record larger than that is one write of its own), in spool order.
    fn drain_writes(&self, records: &[Vec<u8>]) -> Vec<DrainWrite> {
        let mut writes: Vec<DrainWrite> = Vec::new();
        let mut current = DrainWrite::default();
        for record in records {
            let lines = record.iter().filter(|b| **b == b'\n').count();
            if current.records > 0 && current.readings.len() + lines > self.cfg.batch_size {
                writes.push(std::mem::take(&mut current));
                if writes.len() == self.cfg.writes_in_flight {
                    return writes;
                }
            }
            current.records += 1;
            for line in record.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                match json::decode(line) {
                    Ok(r) => current.readings.push(r),
                    // Checksummed on disk, so this is a bug or a format change: keep the evidence.
                    Err(e) => self.write_dead_letter("spool", "spool", "invalid", &e.to_string(), line),
                }
            }
        }
        if current.records > 0 {
            writes.push(current);
        }
        writes
    }

    /// The metrics and the back-off bookkeeping of one write's `outcome`.
    fn account(&mut self, readings: &[Reading], outcome: Outcome, elapsed: Duration) -> Outcome {
        self.metrics.write_seconds.observe(elapsed.as_secs_f64());
        self.metrics.batch_size.observe(readings.len() as f64);
        let failed = outcome.retry.len() + outcome.rejected.len();
        let written = readings.len() - failed.min(readings.len());
        self.metrics.written.inc_by(written as u64);
        let now = Utc::now();
        let fate = fates(readings.len(), &outcome);
        for (i, r) in readings.iter().enumerate() {
            if fate[i] == Fate::Written {
                let age = (now - r.observed_at).num_milliseconds().max(0) as f64 / 1000.0;
                self.metrics.end_to_end_seconds.observe(age);
            }
        }
        match &outcome.failure {
            Some(f) => {
                self.metrics.write_errors.with_label_values(&[f.reason.as_str()]).inc();
                // A 400 that names lines has the others written again: the store itself is up.
                self.metrics.store_state(Some(f.reason).filter(|r| !r.is_about_data()));
                if !outcome.retry.is_empty() {
                    self.back_off(f);
                } else {
                    tracing::warn!("{}: {f}", self.store.describe());
                }
            }
            None => {
                self.metrics.store_state(None);
                if self.failures > 0 {
                    tracing::info!(
                        "{} takes writes again after {} failed attempts",
                        self.store.describe(),
                        self.failures
                    );
                }
                self.failures = 0;
                self.retry_delay = FIRST_RETRY;
                self.retry_at = None;
            }
        }
        outcome
    }

    fn back_off(&mut self, failure: &Failure) {
        self.failures += 1;
        let delay = failure.retry_after.unwrap_or(self.retry_delay).max(self.retry_delay);
        if self.failures == 1 || self.failures.is_multiple_of(12) {
            tracing::warn!(
                "{}: {failure} (attempt {}); readings go to the spool, retrying in {delay:?}",
                self.store.describe(),
                self.failures
            );
        }
        self.retry_at = Some(Instant::now() + delay);
        self.retry_delay = (self.retry_delay * 2).min(MAX_RETRY);
    }

    /// Whether new batches go straight to the store (nothing spooled, no back-off running).
    fn direct(&self) -> bool {
        self.spooled_batches == 0 && self.due()
    }

    /// Whether a write to the store may be tried now.
    fn due(&self) -> bool {
        self.retry_at.is_none_or(|t| Instant::now() >= t)
    }

    fn wait_for_store(&self) -> Option<Duration> {
        self.retry_at.map(|t| t.saturating_duration_since(Instant::now()))
    }

    fn dead_letter(&self, item: &Item, reason: &str) {
        let line = json::encode(&item.reading);
        self.write_dead_letter(&item.source, &item.topic, "rejected", reason, &line);
    }

    fn write_dead_letter(&self, source: &str, topic: &str, label: &str, message: &str, payload: &[u8]) {
        self.metrics.source.rejected.with_label_values(&[source, label]).inc();
        let line = DeadLetterLine::new(source, topic, label, message, payload, Utc::now());
        if let Err(e) = self.dead.lock().unwrap_or_else(|e| e.into_inner()).write(&line) {
            tracing::error!("cannot write a dead letter ({label}: {message}): {e}");
        }
    }

    fn warn_when_nearly_full(&mut self, disk: u64) {
        if disk * 10 >= self.spool_max * 8 && !self.warned_nearly_full {
            self.warned_nearly_full = true;
            tracing::warn!(
                "spool at {}% of its {} bytes: at the bound the gateway stops acknowledging (nothing is dropped)",
                disk * 100 / self.spool_max.max(1),
                self.spool_max
            );
        } else if disk * 2 < self.spool_max {
            self.warned_nearly_full = false;
        }
    }

    fn update_spool_metrics(&self, s: &Spool) {
        self.set_spool_metrics((s.disk_bytes(), s.len(), s.segments(), s.bytes()));
    }

    fn set_spool_metrics(&self, (disk, batches, segments, _pending): (u64, usize, usize, u64)) {
        self.metrics.spool_bytes.set(disk as i64);
        self.metrics.spool_records.set(batches as i64);
        self.metrics.spool_segments.set(segments as i64);
    }
}
