//! Prints one wire-format document per kind (the examples of docs/wire-format.md):
//! `cargo run -p smartcity-model --example wire_examples`.

use chrono::{TimeZone, Utc};
use smartcity_model::{codec::json, dynamics::Simulation, Catalogue, SensorKind};

fn main() {
    let catalogue = Catalogue::default_ten();
    let t = Utc.with_ymd_and_hms(2026, 11, 20, 11, 30, 0).unwrap(); // 07:30 in Martinique
    let sim = Simulation::new(42);
    for kind in SensorKind::ALL {
        let sensor = catalogue.sensors().iter().find(|s| s.kind == kind).expect("every kind in the default ten");
        let reading = sim.reading(sensor, t, 1234);
        println!("{kind}:\n{}\n", String::from_utf8(json::encode(&reading)).unwrap());
    }
}
