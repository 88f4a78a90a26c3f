//! Live state of the city: the latest reading and a short history per sensor, sequence-gap
//! accounting, and the dead letters (malformed messages set aside with the reason).

use chrono::{DateTime, Utc};
use serde::Serialize;
use smartcity_model::Reading;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, RwLock};

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
    pub history: VecDeque<Reading>,
    pub received: u64,
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

    pub fn accept(&self, reading: Reading) -> Accepted {
        let mut sensors = self.sensors.write().unwrap_or_else(|e| e.into_inner());
        match sensors.get_mut(&reading.sensor_id) {
            None => {
                let mut history = VecDeque::with_capacity(self.history_len);
                history.push_back(reading.clone());
                sensors.insert(reading.sensor_id.clone(), SensorEntry { latest: reading, history, received: 1 });
                Accepted::InOrder
            }
            Some(entry) => {
                entry.received += 1;
                let last = entry.latest.seq;
                if reading.seq <= last {
                    return Accepted::Stale;
                }
                let missing = reading.seq - last - 1;
                if entry.history.len() == self.history_len {
                    entry.history.pop_front();
                }
                entry.history.push_back(reading.clone());
                entry.latest = reading;
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

    /// The latest reading of every sensor, by id.
    pub fn latest(&self) -> Vec<Reading> {
        self.sensors.read().unwrap_or_else(|e| e.into_inner()).values().map(|e| e.latest.clone()).collect()
    }

    pub fn history(&self, id: &str) -> Option<Vec<Reading>> {
        self.sensors.read().unwrap_or_else(|e| e.into_inner()).get(id).map(|e| e.history.iter().cloned().collect())
    }

    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.dead.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned().collect()
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

    #[test]
    fn tracks_order_gaps_and_duplicates() {
        let s = CityState::new(3, 2);
        assert_eq!(s.accept(reading(0)), Accepted::InOrder);
        assert_eq!(s.accept(reading(1)), Accepted::InOrder);
        assert_eq!(s.accept(reading(4)), Accepted::AfterGap { missing: 2 });
        assert_eq!(s.accept(reading(4)), Accepted::Stale);
        assert_eq!(s.accept(reading(2)), Accepted::Stale);
        assert_eq!(s.accept(reading(5)), Accepted::InOrder);
        assert_eq!(s.latest()[0].seq, 5);
        let seqs: Vec<u64> = s.history(&reading(0).sensor_id).unwrap().iter().map(|r| r.seq).collect();
        assert_eq!(seqs, vec![1, 4, 5], "history is capped at 3");
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
