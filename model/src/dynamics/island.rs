//! Island-wide phenomena shared by every sensor: the sun, Saharan dust, tropical showers and the
//! rhythm of the roads. Functions of (seed, time, place) only, so neighbouring sensors agree.

use super::rng::Rng;
use crate::place::{Character, Commune};
use chrono::{DateTime, Datelike, FixedOffset, Timelike, Utc, Weekday};

/// Martinique wall-clock facts derived once per reading.
#[derive(Debug, Clone, Copy)]
pub struct LocalClock {
    /// Local hour of day with fraction, 0 <= h < 24.
    pub hour: f64,
    /// Day of year, 1-366.
    pub day_of_year: u32,
    /// Days since the Unix epoch in local time (for multi-day phenomena).
    pub day_index: i64,
    pub weekend: bool,
}

impl LocalClock {
    pub fn new(t: DateTime<Utc>) -> Self {
        let local: DateTime<FixedOffset> = crate::place::local_time(t);
        let hour = local.hour() as f64 + local.minute() as f64 / 60.0 + local.second() as f64 / 3600.0;
        let day_index = local.date_naive().signed_duration_since(chrono::NaiveDate::default()).num_days();
        LocalClock {
            hour,
            day_of_year: local.ordinal(),
            day_index,
            weekend: matches!(local.weekday(), Weekday::Sat | Weekday::Sun),
        }
    }

    /// June to November.
    pub fn wet_season(&self) -> bool {
        (152..=334).contains(&self.day_of_year)
    }
}

/// 0 below `a`, 1 above `b`, smooth in between.
pub fn smoothstep(a: f64, b: f64, x: f64) -> f64 {
    let t = ((x - a) / (b - a)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

fn bump(centre: f64, width: f64, x: f64) -> f64 {
    (-((x - centre) / width).powi(2)).exp()
}

/// Local sunrise and sunset hours at Martinique (14.6° N, 61.0° W) for a day of the year,
/// from the solar declination and the equation of time (accurate to a few minutes).
pub fn sunrise_sunset(day_of_year: u32) -> (f64, f64) {
    let lat = 14.64f64.to_radians();
    let gamma = std::f64::consts::TAU * (day_of_year as f64 - 1.0) / 365.0;
    let decl = 0.006918 - 0.399912 * gamma.cos() + 0.070257 * gamma.sin() - 0.006758 * (2.0 * gamma).cos()
        + 0.000907 * (2.0 * gamma).sin();
    let eq_time_min = 229.18
        * (0.000075 + 0.001868 * gamma.cos()
            - 0.032077 * gamma.sin()
            - 0.014615 * (2.0 * gamma).cos()
            - 0.040849 * (2.0 * gamma).sin());
    // Sun's centre 0.833° below the horizon (refraction + radius).
    let cos_h = ((90.833f64).to_radians().cos() - lat.sin() * decl.sin()) / (lat.cos() * decl.cos());
    let half_day_h = cos_h.clamp(-1.0, 1.0).acos().to_degrees() / 15.0;
    // Solar noon in UTC-4 at 61.0° W: 12:00 + (61.0 - 60)/15 h - equation of time.
    let noon = 12.0 + (61.0 - 60.0) / 15.0 - eq_time_min / 60.0;
    (noon - half_day_h, noon + half_day_h)
}

/// Strength of sunlight 0-1 (0 at night), for ozone and wind.
pub fn sunlight(clock: &LocalClock) -> f64 {
    let (rise, set) = sunrise_sunset(clock.day_of_year);
    if clock.hour <= rise || clock.hour >= set {
        0.0
    } else {
        (std::f64::consts::PI * (clock.hour - rise) / (set - rise)).sin()
    }
}

/// Extra PM10 (µg/m³) from a Saharan dust plume over the whole island on this day. Plumes start on
/// about 1 day in 8 from May to September, 1 in 25 otherwise, last 2-5 days, and bring 40-300 µg/m³.
pub fn saharan_dust(seed: u64, clock: &LocalClock) -> f64 {
    let mut extra: f64 = 0.0;
    for start in (clock.day_index - 5)..=clock.day_index {
        let mut rng = Rng::new(&[seed, start as u64, 0xd057]);
        let doy_of_start = (clock.day_of_year as i64 - (clock.day_index - start)).rem_euclid(365);
        let p = if (121..=273).contains(&doy_of_start) { 0.125 } else { 0.04 };
        if rng.unit() < p {
            let length = 2 + (rng.unit() * 4.0) as i64;
            let age = clock.day_index - start;
            if age < length {
                let peak = 40.0 + 260.0 * rng.unit().powi(2);
                // Arrives, peaks mid-episode, fades.
                let phase = (age as f64 + clock.hour / 24.0) / length as f64;
                extra = extra.max(peak * (std::f64::consts::PI * phase).sin().max(0.15));
            }
        }
    }
    extra
}

/// Rain (mm in the past hour) at a commune: short showers, more in the wet season and afternoons.
pub fn shower_mm(seed: u64, t: DateTime<Utc>, commune: Commune, clock: &LocalClock) -> f64 {
    let hour_index = t.timestamp().div_euclid(3600) as u64;
    let mut rng = Rng::new(&[seed, hour_index, commune as u64, 0x4a1]);
    let mut p = if clock.wet_season() { 0.13 } else { 0.06 };
    if (12.0..18.0).contains(&clock.hour) {
        p *= 1.6;
    }
    if rng.unit() < p {
        // Mostly light showers, sometimes a downpour.
        (0.3 - 4.0 * (1.0 - rng.unit()).ln()).min(60.0)
    } else {
        0.0
    }
}

/// Road activity 0-1 at a commune and time: commuter peaks around 07:30 and 17:15 on weekdays on the
/// Fort-de-France / Le Lamentin axis, a daytime plateau, near zero at night; beaches busy at weekends.
pub fn traffic_level(commune: Commune, clock: &LocalClock) -> f64 {
    let h = clock.hour;
    let daytime = smoothstep(5.5, 9.0, h) * (1.0 - smoothstep(19.0, 23.5, h));
    let (peaks, plateau) = if clock.weekend { (0.25, 0.30) } else { (1.0, 0.40) };
    let mut level = 0.05 + plateau * daytime + peaks * (0.55 * bump(7.5, 0.9, h) + 0.5 * bump(17.25, 1.0, h));
    match commune.character() {
        Character::UrbanCore => {}
        Character::Town => level *= 0.85,
        Character::Coastal => {
            if clock.weekend {
                level += 0.3 * bump(14.0, 3.0, h);
            }
        }
    }
    level.clamp(0.0, 1.0)
}
