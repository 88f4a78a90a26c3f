use super::*;
use crate::catalogue::Catalogue;
use crate::reading::*;
use chrono::{Duration, TimeZone};

/// Local Martinique time (UTC-4) as UTC.
fn local(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap() + Duration::hours(4)
}

fn week_of_readings(seed: u64) -> Vec<Reading> {
    let cat = Catalogue::default_ten();
    let sim = Simulation::new(seed);
    let start = local(2026, 8, 3, 0, 0); // a Monday in the wet season
    (0..7 * 24 * 60)
        .flat_map(|m| {
            let t = start + Duration::minutes(m);
            cat.sensors().iter().map(move |s| sim.reading(s, t, m as u64)).collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn a_simulated_week_stays_in_physical_and_climatic_ranges() {
    for r in week_of_readings(11) {
        r.validate().unwrap_or_else(|e| panic!("{e} in {r:?}"));
        let ctx = format!("{r:?}");
        // The simulator measures everything: every attribute of the kind is there.
        assert_eq!(r.values.present(), r.kind().attributes(), "{ctx}");
        match &r.values {
            Values::Weather(w) => {
                assert!((20.0..=35.0).contains(&w.temperature.unwrap()), "{ctx}");
                assert!((0.55..=0.99).contains(&w.relative_humidity.unwrap()), "{ctx}");
                assert!((1005.0..=1022.0).contains(&w.atmospheric_pressure.unwrap()), "{ctx}");
                assert!((0.5..=20.0).contains(&w.wind_speed.unwrap()), "{ctx}");
                assert!((0.0..360.0).contains(&w.wind_direction.unwrap()), "{ctx}");
            }
            Values::Noise(n) => {
                let (laeq, lamax) = (n.laeq.unwrap(), n.lamax.unwrap());
                assert!((30.0..=125.0).contains(&laeq) && lamax >= laeq, "{ctx}")
            }
            Values::AirQuality(a) => {
                let (pm25, pm10) = (a.pm25.unwrap(), a.pm10.unwrap());
                assert!(pm25 <= pm10 + 5.0 && pm10 < 400.0, "{ctx}")
            }
            Values::Traffic(t) => assert!(t.average_vehicle_speed.unwrap() >= 3.0, "{ctx}"),
            Values::Parking(p) => {
                let (total, available) = (p.total_spot_number.unwrap(), p.available_spot_number.unwrap());
                assert_eq!(total - available, (p.occupancy.unwrap() * total as f64).round() as u32, "{ctx}")
            }
            Values::Light(_) => {}
        }
    }
}

fn traffic_intensity(sim: &Simulation, t: DateTime<Utc>) -> u32 {
    let cat = Catalogue::default_ten();
    match sim.reading(&cat.sensors()[0], t, 0).values {
        Values::Traffic(v) => v.intensity.expect("the simulator measures every attribute"),
        other => panic!("sensor 0 is traffic, got {other:?}"),
    }
}

#[test]
fn morning_rush_beats_the_night_every_weekday() {
    let sim = Simulation::new(3);
    for day in 2..=6 {
        // 2026-11-02 is a Monday.
        let rush = traffic_intensity(&sim, local(2026, 11, day, 7, 30));
        let night = traffic_intensity(&sim, local(2026, 11, day, 3, 0));
        assert!(rush > 3 * night, "day {day}: 07:30 {rush} vs 03:00 {night}");
    }
}

#[test]
fn street_lights_on_at_eight_pm_and_off_at_noon_all_year() {
    let cat = Catalogue::default_ten();
    let lamp = cat.sensors().iter().find(|s| s.kind == SensorKind::Light).unwrap();
    let sim = Simulation::new(5);
    for month in 1..=12 {
        let state = |h| match sim.reading(lamp, local(2026, month, 15, h, 0), 0).values {
            Values::Light(l) => l.power_state,
            other => panic!("{other:?}"),
        };
        assert_eq!(state(20), Some(PowerState::On), "month {month} 20:00");
        assert_eq!(state(12), Some(PowerState::Off), "month {month} 12:00");
        assert_eq!(state(2), Some(PowerState::Low), "month {month} 02:00 dimmed");
    }
}

#[test]
fn sunrise_and_sunset_match_martinique_almanac() {
    for doy in [1, 80, 172, 266, 355] {
        let (rise, set) = island::sunrise_sunset(doy);
        assert!((5.5..=6.5).contains(&rise), "doy {doy} sunrise {rise}");
        assert!((17.5..=18.6).contains(&set), "doy {doy} sunset {set}");
    }
}

#[test]
fn same_seed_same_stream_other_seed_other_stream() {
    let a = week_of_readings(99);
    assert_eq!(a, week_of_readings(99));
    assert_ne!(a, week_of_readings(100));
}

#[test]
fn saharan_dust_episodes_happen_and_end() {
    let sim_seed = 8;
    let days: Vec<f64> = (0..365)
        .map(|d| {
            let t = local(2026, 1, 1, 12, 0) + Duration::days(d);
            island::saharan_dust(sim_seed, &island::LocalClock::new(t))
        })
        .collect();
    let dusty = days.iter().filter(|&&x| x > 30.0).count();
    assert!((15..=150).contains(&dusty), "{dusty} dusty days in a year");
    assert!(days.iter().any(|&x| x > 100.0), "at least one strong episode");
}

#[test]
fn showers_are_short_and_more_frequent_in_the_wet_season() {
    let count = |month| {
        (0..30 * 24)
            .filter(|h| {
                let t = local(2026, month, 1, 0, 0) + Duration::hours(*h);
                island::shower_mm(1, t, Commune::FortDeFrance, &island::LocalClock::new(t)) > 0.0
            })
            .count()
    };
    let (dry, wet) = (count(3), count(9));
    assert!(wet > dry, "wet {wet} dry {dry}");
    assert!(wet < 30 * 24 / 3, "it does not rain all the time: {wet}");
}
