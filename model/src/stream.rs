//! The stream of readings a simulator emits: every sensor once per tick, each with its own
//! contiguous sequence number.

use crate::catalogue::Catalogue;
use crate::dynamics::Simulation;
use crate::reading::Reading;
use chrono::{DateTime, Utc};

/// A catalogue, the simulation rules, and the next sequence number of every sensor.
#[derive(Debug, Clone)]
pub struct ReadingStream {
    simulation: Simulation,
    catalogue: Catalogue,
    next_seq: Vec<u64>,
}

impl ReadingStream {
    pub fn new(catalogue: Catalogue, seed: u64) -> Self {
        let next_seq = vec![0; catalogue.len()];
        ReadingStream { simulation: Simulation::new(seed), catalogue, next_seq }
    }

    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }

    /// Appends one reading per sensor, observed at `t`, to `out`.
    pub fn tick_into(&mut self, t: DateTime<Utc>, out: &mut Vec<Reading>) {
        out.reserve(self.catalogue.len());
        for (sensor, seq) in self.catalogue.sensors().iter().zip(self.next_seq.iter_mut()) {
            out.push(self.simulation.reading(sensor, t, *seq));
            *seq += 1;
        }
    }

    /// One reading per sensor observed at `t`.
    pub fn tick(&mut self, t: DateTime<Utc>) -> Vec<Reading> {
        let mut out = Vec::new();
        self.tick_into(t, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};
    use std::collections::HashMap;

    #[test]
    fn sequence_numbers_are_contiguous_per_sensor() {
        let mut stream = ReadingStream::new(Catalogue::generated(50, 3).unwrap(), 3);
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let mut last: HashMap<String, u64> = HashMap::new();
        for i in 0..500 {
            for r in stream.tick(start + Duration::minutes(i)) {
                let expected = last.get(&r.sensor_id).map_or(0, |s| s + 1);
                assert_eq!(r.seq, expected, "{}", r.sensor_id);
                last.insert(r.sensor_id, r.seq);
            }
        }
        assert_eq!(last.len(), 50);
        assert!(last.values().all(|&s| s == 499));
    }
}
