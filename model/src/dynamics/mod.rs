//! Realistic values for every kind of sensor, as a pure function of (seed, sensor, time).
//!
//! Island-wide phenomena live in [`island`]; this module turns them into each kind's values and
//! adds per-sensor measurement noise. Nothing here keeps state between readings, which makes the
//! stream deterministic for a seed and lets 100,000 sensors cost only their catalogue entry.

pub mod island;
pub mod rng;

use crate::catalogue::Sensor;
use crate::kind::SensorKind;
use crate::place::{Character, Commune};
use crate::reading::{
    AirQuality, AirQualityLevel, Light, LightStatus, Noise, Parking, PowerState, Reading, Traffic, Values, Weather,
};
use chrono::{DateTime, Utc};
use island::{smoothstep, LocalClock};
use rng::Rng;

/// The simulated world: a seed, and the rules of [`island`].
#[derive(Debug, Clone, Copy)]
pub struct Simulation {
    seed: u64,
}

impl Simulation {
    pub fn new(seed: u64) -> Self {
        Simulation { seed }
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The reading `sensor` makes at `t`, numbered `seq`.
    pub fn reading(&self, sensor: &Sensor, t: DateTime<Utc>, seq: u64) -> Reading {
        let clock = LocalClock::new(t);
        let mut noise = Rng::new(&[self.seed, sensor.key, t.timestamp_millis() as u64]);
        let values = match sensor.kind {
            SensorKind::Traffic => Values::Traffic(self.traffic(sensor, &clock, &mut noise)),
            SensorKind::AirQuality => Values::AirQuality(self.air_quality(sensor, t, &clock, &mut noise)),
            SensorKind::Parking => Values::Parking(self.parking(sensor, &clock, &mut noise)),
            SensorKind::Noise => Values::Noise(self.noise(sensor, &clock, &mut noise)),
            SensorKind::Weather => Values::Weather(self.weather(sensor, t, &clock, &mut noise)),
            SensorKind::Light => Values::Light(self.light(sensor, t, &clock)),
        };
        Reading {
            sensor_id: sensor.id.to_string(),
            commune: sensor.commune,
            lat: sensor.lat,
            lon: sensor.lon,
            observed_at: t,
            seq,
            values,
        }
    }

    fn traffic(&self, s: &Sensor, clock: &LocalClock, noise: &mut Rng) -> Traffic {
        let level = island::traffic_level(s.commune, clock);
        let intensity = (s.capacity as f64 * level * (1.0 + 0.08 * noise.gauss())).max(0.0);
        let occupancy = (0.9 * level.powf(1.5) + 0.02 * noise.gauss()).clamp(0.0, 1.0);
        let free_speed = match s.commune.character() {
            Character::UrbanCore => 55.0,
            Character::Town => 60.0,
            Character::Coastal => 50.0,
        };
        let speed = (free_speed * (1.0 - 0.78 * occupancy * occupancy) + 2.0 * noise.gauss()).max(3.0);
        Traffic {
            intensity: Some(intensity.round() as u32),
            occupancy: Some(round(occupancy, 3)),
            average_vehicle_speed: Some(round(speed, 1)),
            congested: Some(occupancy > 0.55),
        }
    }

    fn air_quality(&self, s: &Sensor, t: DateTime<Utc>, clock: &LocalClock, noise: &mut Rng) -> AirQuality {
        let road = island::traffic_level(s.commune, clock)
            * match s.commune.character() {
                Character::UrbanCore => 1.0,
                Character::Town => 0.5,
                Character::Coastal => 0.3,
            };
        let dust = island::saharan_dust(self.seed, clock);
        // Rain washes particles out of the air.
        let washout = if island::shower_mm(self.seed, t, s.commune, clock) > 0.0 { 0.7 } else { 1.0 };
        let local_pm10 = (12.0 + 14.0 * road + 2.0 * noise.gauss()).max(2.0);
        let pm10 = (local_pm10 + dust) * washout;
        // Desert dust is coarse: it adds little to PM2.5 compared with combustion.
        let pm25 = ((0.45 * local_pm10 + 0.2 * dust) * washout + 0.8 * noise.gauss()).max(1.0);
        let no2 = (8.0 + 50.0 * road + 3.0 * noise.gauss()).max(1.0);
        let o3 = (25.0 + 35.0 * island::sunlight(clock) - 10.0 * road + 3.0 * noise.gauss()).max(2.0);
        let co = (0.2 + 0.8 * road + 0.05 * noise.gauss()).max(0.05);
        // The Le Lamentin refinery adds a little SO2 downwind.
        let so2_base = if s.commune == Commune::LeLamentin { 5.0 } else { 2.0 };
        let so2 = (so2_base + 0.6 * noise.gauss()).max(0.1);
        let aqi = pm10_index(pm10).max(pm25_index(pm25)).min(500.0).round() as u32;
        AirQuality {
            pm10: Some(round(pm10, 1)),
            pm25: Some(round(pm25, 1)),
            no2: Some(round(no2, 1)),
            o3: Some(round(o3, 1)),
            co: Some(round(co, 2)),
            so2: Some(round(so2, 1)),
            air_quality_index: Some(aqi),
            air_quality_level: Some(AirQualityLevel::from_index(aqi)),
        }
    }

    fn parking(&self, s: &Sensor, clock: &LocalClock, noise: &mut Rng) -> Parking {
        let h = clock.hour;
        let open = |from: f64, to: f64| smoothstep(from, from + 2.0, h) * (1.0 - smoothstep(to, to + 2.0, h));
        let level = match (s.commune.character(), clock.weekend) {
            // Offices and shops downtown on weekdays; Saturday-morning shopping at weekends.
            (Character::UrbanCore, false) => 0.1 + 0.82 * open(7.0, 17.0),
            (Character::UrbanCore, true) => 0.08 + 0.4 * open(8.5, 12.5),
            (Character::Town, false) => 0.12 + 0.55 * open(7.5, 16.0),
            (Character::Town, true) => 0.1 + 0.35 * open(8.0, 12.0),
            // Beaches: afternoons, and full at weekends.
            (Character::Coastal, false) => 0.08 + 0.5 * open(9.5, 16.5),
            (Character::Coastal, true) => 0.1 + 0.85 * open(9.0, 17.0),
        };
        let total = s.capacity.max(1);
        let occupied_fraction = (level + 0.04 * noise.gauss()).clamp(0.0, 1.0);
        let occupied = ((total as f64) * occupied_fraction).round() as u32;
        Parking {
            available_spot_number: Some(total - occupied.min(total)),
            total_spot_number: Some(total),
            occupancy: Some(round(occupied.min(total) as f64 / total as f64, 3)),
        }
    }

    fn noise(&self, s: &Sensor, clock: &LocalClock, noise: &mut Rng) -> Noise {
        // Road noise follows traffic: quiet ~44 dB(A) nights, ~70 dB(A) at rush hour.
        let level = island::traffic_level(s.commune, clock);
        let laeq = (42.0 + 28.0 * level + 1.5 * noise.gauss()).clamp(30.0, 110.0);
        let lamax = (laeq + 8.0 + 4.0 * noise.gauss().abs()).min(125.0);
        let las = (laeq + 2.0 * noise.gauss()).clamp(25.0, 120.0);
        Noise { laeq: Some(round(laeq, 1)), lamax: Some(round(lamax, 1)), las: Some(round(las, 1)) }
    }

    fn weather(&self, s: &Sensor, t: DateTime<Utc>, clock: &LocalClock, noise: &mut Rng) -> Weather {
        use std::f64::consts::{PI, TAU};
        let h = clock.hour;
        // -1 at 06:00, +1 at 14:00: warms fast in the morning, cools slowly through the night.
        let diurnal = if (6.0..14.0).contains(&h) {
            -(PI * (h - 6.0) / 8.0).cos()
        } else {
            (PI * (h - 14.0).rem_euclid(24.0) / 16.0).cos()
        };
        // Warmest in September, coolest in February.
        let seasonal = 1.2 * (TAU * (clock.day_of_year as f64 - 150.0) / 365.0).sin();
        let rain = island::shower_mm(self.seed, t, s.commune, clock);
        let raining = if rain > 0.0 { 1.0 } else { 0.0 };
        let leeward = if matches!(s.commune, Commune::SaintPierre | Commune::Schoelcher) { 0.3 } else { 0.0 };
        let temperature = 26.8 + seasonal + 3.3 * diurnal + leeward - 1.5 * raining + 0.3 * noise.gauss();
        let humidity = (0.78 - 0.11 * diurnal + 0.1 * raining + 0.02 * noise.gauss()).clamp(0.55, 0.99);
        // Semi-diurnal atmospheric tide (peaks near 10:00 and 22:00) plus slow synoptic swings.
        let synoptic = (TAU * clock.day_index as f64 / 5.3).sin();
        let pressure = 1014.0 + 1.1 * (2.0 * TAU * (h - 10.0) / 24.0).cos() + 2.0 * synoptic + 0.2 * noise.gauss();
        // Easterly trade winds, 15-35 km/h, stronger in the afternoon.
        let wind = (5.5 + 2.5 * island::sunlight(clock) + 1.2 * synoptic + 0.8 * noise.gauss()).clamp(0.5, 20.0);
        let direction =
            (90.0 + 25.0 * (TAU * clock.day_index as f64 / 7.0).sin() + 12.0 * noise.gauss()).rem_euclid(360.0);
        Weather {
            temperature: Some(round(temperature, 1)),
            relative_humidity: Some(round(humidity, 3)),
            atmospheric_pressure: Some(round(pressure, 1)),
            wind_speed: Some(round(wind, 1)),
            wind_direction: Some(round(direction, 0).rem_euclid(360.0)),
            precipitation: Some(round(rain, 1)),
        }
    }

    fn light(&self, s: &Sensor, t: DateTime<Utc>, clock: &LocalClock) -> Light {
        let (sunrise, sunset) = island::sunrise_sunset(clock.day_of_year);
        let h = clock.hour;
        // On 10 minutes after sunset, off 10 minutes before sunrise, dimmed 23:00-04:30 to save energy.
        let dark = h >= sunset + 1.0 / 6.0 || h < sunrise - 1.0 / 6.0;
        let (power_state, level) = match (dark, !(4.5..23.0).contains(&h)) {
            (false, _) => (PowerState::Off, 0.0),
            (true, true) => (PowerState::Low, 0.5),
            (true, false) => (PowerState::On, 1.0),
        };
        // About 3 % of lamps have a fault in any given week; it lasts the week.
        let week = t.timestamp().div_euclid(7 * 86_400) as u64;
        let mut fault = Rng::new(&[self.seed, s.key, week, 0xf417]);
        let status = if fault.unit() < 0.03 {
            [LightStatus::DefectiveLamp, LightStatus::BrokenLantern, LightStatus::ColumnIssue]
                [(fault.unit() * 3.0) as usize % 3]
        } else {
            LightStatus::Ok
        };
        let lit = if status == LightStatus::Ok { level } else { 0.0 };
        Light {
            status: Some(status),
            power_state: Some(power_state),
            illuminance_level: Some(lit),
            power_consumption: Some(round(s.capacity as f64 * lit, 1)),
        }
    }
}

fn round(x: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (x * f).round() / f
}

/// Piecewise-linear index over (concentration, index) breakpoints.
fn index(c: f64, table: &[(f64, f64)]) -> f64 {
    let mut prev = (0.0, 0.0);
    for &(bc, bi) in table {
        if c <= bc {
            return prev.1 + (c - prev.0) * (bi - prev.1) / (bc - prev.0);
        }
        prev = (bc, bi);
    }
    500.0
}

/// PM10 sub-index (US EPA breakpoints, µg/m³).
fn pm10_index(c: f64) -> f64 {
    index(c, &[(54.0, 50.0), (154.0, 100.0), (254.0, 150.0), (354.0, 200.0), (424.0, 300.0), (604.0, 500.0)])
}

/// PM2.5 sub-index (US EPA 2024 breakpoints, µg/m³).
fn pm25_index(c: f64) -> f64 {
    index(c, &[(9.0, 50.0), (35.4, 100.0), (55.4, 150.0), (125.4, 200.0), (225.4, 300.0), (325.4, 500.0)])
}

#[cfg(test)]
mod tests;
