//! Live state of the city: the latest reading and a short history per sensor, sequence-gap
//! accounting, the dead letters (malformed messages set aside with the reason), and the silent
//! sensors ([`watch_silence`]).

use chrono::{DateTime, Utc};
use prometheus::IntGauge;
use serde::Serialize;
use smartcity_model::{Reading, Values};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// A sensor whose latest reading was observed longer ago than this is silent
/// (`smartcity_gateway_sensors_silent`, alert `SensorSilent`).
pub const SILENCE: Duration = Duration::from_secs(5 * 60);

/// What happened to a reading offered to the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// Next in sequence (or the first seen).
    InOrder,
    /// Newer, but `missing` sequence numbers were skipped (lost or still to come).
    AfterGap { missing: u64 },
    /// Already seen or older than the latest: kept out of the live view (redelivery is normal
    /// under at-least-once).
    Stale,
}

pub struct SensorEntry {
    pub latest: Reading,
    history: VecDeque<Point>,
    pub received: u64,
}

/// One reading of a sensor's history without what its latest reading already holds (the id and the
/// commune). Why: the history is most of the gateway's memory (`history_per_sensor` of them per
/// sensor), and a point is 152 bytes with no allocation of its own, where a `Reading` is 176 plus
/// its id's allocation (about 40); accepting a reading then allocates nothing. (Both were 56 bytes
/// smaller before partial readings: an optional f64 takes 16 bytes, and the largest kind,
/// air quality, has six.)
struct Point {
    observed_at: DateTime<Utc>,
    seq: u64,
    lat: f64,
    lon: f64,
    values: Values,
}

impl Point {
    fn of(r: &Reading) -> Self {
        Point { observed_at: r.observed_at, seq: r.seq, lat: r.lat, lon: r.lon, values: r.values.clone() }
    }

    /// The reading again, with the id and commune of `sensor` (its latest reading).
    fn reading(&self, sensor: &Reading) -> Reading {
        Reading {
            sensor_id: sensor.sensor_id.clone(),
            commune: sensor.commune,
            lat: self.lat,
            lon: self.lon,
            observed_at: self.observed_at,
            seq: self.seq,
            values: self.values.clone(),
        }
    }
}

/// A message that could not be used, kept for inspection.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    pub received_at: String,
    pub topic: String,
    pub reason: String,
    /// The payload as text (lossy), cut at 2 KiB.
    pub payload: String,
}

pub struct CityState {
    sensors: RwLock<BTreeMap<String, SensorEntry>>,
    dead: Mutex<VecDeque<DeadLetter>>,
    history_len: usize,
    dead_kept: usize,
}

impl CityState {
    pub fn new(history_len: usize, dead_kept: usize) -> Self {
        CityState { sensors: RwLock::default(), dead: Mutex::default(), history_len: history_len.max(1), dead_kept }
    }

    pub fn accept(&self, reading: &Reading) -> Accepted {
        let mut sensors = self.sensors.write().unwrap_or_else(|e| e.into_inner());
        match sensors.get_mut(&reading.sensor_id) {
            None => {
                // Grown as readings come: a sensor seen once costs one point, not the full history.
                let mut history = VecDeque::new();
                history.push_back(Point::of(reading));
                let entry = SensorEntry { latest: reading.clone(), history, received: 1 };
                sensors.insert(reading.sensor_id.clone(), entry);
                Accepted::InOrder
            }
            Some(entry) => {
                entry.received += 1;
                let last = entry.latest.seq;
                if reading.seq <= last {
                    return Accepted::Stale;
                }
                let missing = reading.seq - last - 1;
                if entry.history.len() >= self.history_len {
                    entry.history.pop_front();
                }
                entry.history.push_back(Point::of(reading));
                // Field by field: the id (the same) keeps its allocation.
                let latest = &mut entry.latest;
                (latest.commune, latest.lat, latest.lon) = (reading.commune, reading.lat, reading.lon);
                (latest.observed_at, latest.seq, latest.values) =
                    (reading.observed_at, reading.seq, reading.values.clone());
                if missing == 0 {
                    Accepted::InOrder
                } else {
                    Accepted::AfterGap { missing }
                }
            }
        }
    }

    pub fn set_aside(&self, topic: &str, reason: String, payload: &[u8], now: DateTime<Utc>) {
        if self.dead_kept == 0 {
            return;
        }
        let mut text = String::from_utf8_lossy(&payload[..payload.len().min(2048)]).into_owned();
        if payload.len() > 2048 {
            text.push('…');
        }
        let mut dead = self.dead.lock().unwrap_or_else(|e| e.into_inner());
        if dead.len() == self.dead_kept {
            dead.pop_front();
        }
        dead.push_back(DeadLetter {
            received_at: smartcity_model::codec::json::format_time(now),
            topic: topic.to_string(),
            reason,
            payload: text,
        });
    }

    pub fn sensor_count(&self) -> usize {
        self.sensors.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Sensors seen since start whose latest reading's `observedAt` is more than `older_than` before `now`.
    pub fn silent(&self, now: DateTime<Utc>, older_than: Duration) -> usize {
        let older_than = chrono::Duration::from_std(older_than).unwrap_or(chrono::Duration::MAX);
        let Some(threshold) = now.checked_sub_signed(older_than) else { return 0 };
        self.sensors
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|e| e.latest.observed_at < threshold)
            .count()
    }

    /// The latest reading of every sensor, by id.
    pub fn latest(&self) -> Vec<Reading> {
        self.sensors.read().unwrap_or_else(|e| e.into_inner()).values().map(|e| e.latest.clone()).collect()
    }

    pub fn history(&self, id: &str) -> Option<Vec<Reading>> {
        let sensors = self.sensors.read().unwrap_or_else(|e| e.into_inner());
        sensors.get(id).map(|e| e.history.iter().map(|p| p.reading(&e.latest)).collect())
    }

    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.dead.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned().collect()
    }
}

/// Keeps `gauge` at the number of sensors silent for longer than [`SILENCE`], counted every `every`,
/// until aborted.
pub async fn watch_silence(state: Arc<CityState>, gauge: IntGauge, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        gauge.set(i64::try_from(state.silent(Utc::now(), SILENCE)).unwrap_or(i64::MAX));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smartcity_model::{dynamics::Simulation, Catalogue};

    fn reading(seq: u64) -> Reading {
        let cat = Catalogue::default_ten();
        Simulation::new(1).reading(&cat.sensors()[0], Utc::now(), seq)
    }

    /// The history is most of the gateway's memory: a point's size is a figure of
    /// docs/performance.md, and growing it should be a decision.
    #[test]
    fn a_history_point_is_152_bytes() {
        assert_eq!((std::mem::size_of::<Point>(), std::mem::size_of::<Reading>()), (152, 176));
    }

    #[test]
    fn tracks_order_gaps_and_duplicates() {
        let s = CityState::new(3, 2);
        assert_eq!(s.accept(&reading(0)), Accepted::InOrder);
        assert_eq!(s.accept(&reading(1)), Accepted::InOrder);
        assert_eq!(s.accept(&reading(4)), Accepted::AfterGap { missing: 2 });
        assert_eq!(s.accept(&reading(4)), Accepted::Stale);
        assert_eq!(s.accept(&reading(2)), Accepted::Stale);
        assert_eq!(s.accept(&reading(5)), Accepted::InOrder);
        assert_eq!(s.latest()[0].seq, 5);
        let history = s.history(&reading(0).sensor_id).unwrap();
        let seqs: Vec<u64> = history.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, vec![1, 4, 5], "history is capped at 3");
        assert_eq!(history.last(), s.latest().first(), "a point of the history is the reading it was");
    }

    fn observed(sensor: usize, seq: u64, at: DateTime<Utc>) -> Reading {
        let cat = Catalogue::default_ten();
        Simulation::new(1).reading(&cat.sensors()[sensor], at, seq)
    }

    #[test]
    fn counts_sensors_silent_since_their_latest_reading() {
        let now = Utc::now();
        let minutes = |m: i64| now - chrono::Duration::minutes(m);
        let s = CityState::new(3, 2);
        assert_eq!(s.silent(now, SILENCE), 0, "no sensor seen yet, none silent");
        s.accept(&observed(0, 0, minutes(10)));
        s.accept(&observed(1, 0, minutes(6)));
        s.accept(&observed(2, 0, minutes(1)));
        s.accept(&observed(3, 0, now - chrono::Duration::seconds(300)));
        assert_eq!(s.silent(now, SILENCE), 2, "10 and 6 minutes are silent; 1 and exactly 5 are not");
        assert_eq!(s.silent(now, Duration::from_secs(90)), 3, "the 1-minute one is not silent for 90 s");
        // A newer reading ends the silence; a stale (redelivered) one does not.
        s.accept(&observed(0, 1, now));
        s.accept(&observed(1, 0, now));
        assert_eq!(s.silent(now, SILENCE), 1);
        assert_eq!(s.silent(now, Duration::MAX), 0, "a bound beyond any date: nothing silent");
    }

    #[tokio::test]
    async fn watch_silence_sets_the_gauge() {
        let s = Arc::new(CityState::new(3, 2));
        s.accept(&observed(0, 0, Utc::now() - chrono::Duration::minutes(6)));
        s.accept(&observed(1, 0, Utc::now()));
        let gauge = IntGauge::new("silent", "test").unwrap();
        let task = tokio::spawn(watch_silence(s, gauge.clone(), Duration::from_millis(10)));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while gauge.get() != 1 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        task.abort();
        assert_eq!(gauge.get(), 1);
    }

    #[test]
    fn dead_letters_are_capped_and_truncated() {
        let s = CityState::new(3, 2);
        for i in 0..3 {
            s.set_aside("t", format!("r{i}"), &[b'x'; 5000], Utc::now());
        }
        let d = s.dead_letters();
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].reason, "r1");
        assert!(d[0].payload.chars().count() <= 2049);
    }
}
