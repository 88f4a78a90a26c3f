//! Which sensors exist: the default ten, a TOML file, or a generated island-wide set.

use crate::dynamics::rng::{fnv1a, Rng};
use crate::kind::SensorKind;
use crate::place::{Character, Commune};
use serde::Deserialize;
use std::collections::HashSet;

/// One simulated sensor. Kept small: `--sensors 100000` holds 100,000 of these.
#[derive(Debug, Clone, PartialEq)]
pub struct Sensor {
    pub id: Box<str>,
    pub kind: SensorKind,
    pub commune: Commune,
    pub lat: f64,
    pub lon: f64,
    /// Size of what the sensor watches: road capacity (vehicles/h) for traffic, spots for parking,
    /// lamp power (W) for lights; unused by the other kinds.
    pub capacity: u32,
    /// Stable hash of the id: seeds this sensor's measurement noise.
    pub key: u64,
}

impl Sensor {
    pub fn new(id: &str, kind: SensorKind, commune: Commune, lat: f64, lon: f64, capacity: Option<u32>) -> Self {
        Sensor {
            id: id.into(),
            kind,
            commune,
            lat,
            lon,
            capacity: capacity.unwrap_or_else(|| default_capacity(kind, commune)),
            key: fnv1a(id.as_bytes()),
        }
    }
}

fn default_capacity(kind: SensorKind, commune: Commune) -> u32 {
    let character = commune.character();
    match kind {
        SensorKind::Traffic => match character {
            Character::UrbanCore => 2400,
            Character::Town => 1400,
            Character::Coastal => 900,
        },
        SensorKind::Parking => match character {
            Character::UrbanCore => 400,
            Character::Town => 120,
            Character::Coastal => 150,
        },
        SensorKind::Light => 90,
        _ => 0,
    }
}

/// Why a catalogue could not be built.
#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error("catalogue is not valid TOML: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("catalogue has no sensors (add at least one [[sensor]] table)")]
    Empty,
    #[error("sensor `{0}` appears twice: ids must be unique")]
    DuplicateId(String),
    #[error("sensor `{id}`: {problem}")]
    BadSensor { id: String, problem: String },
    #[error("a generated catalogue needs 1 to 10,000,000 sensors, got {0}")]
    BadCount(usize),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogueFile {
    sensor: Vec<SensorEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SensorEntry {
    id: String,
    kind: SensorKind,
    commune: String,
    lat: Option<f64>,
    lon: Option<f64>,
    capacity: Option<u32>,
}

/// The set of sensors a simulator runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Catalogue {
    sensors: Vec<Sensor>,
}

impl Catalogue {
    pub fn sensors(&self) -> &[Sensor] {
        &self.sensors
    }

    pub fn len(&self) -> usize {
        self.sensors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sensors.is_empty()
    }

    /// Ten sensors covering all six kinds at real places of Martinique.
    pub fn default_ten() -> Self {
        use Commune::*;
        use SensorKind::*;
        let s = Sensor::new;
        Catalogue {
            sensors: vec![
                s("traffic-fort-de-france-01", Traffic, FortDeFrance, 14.6065, -61.0695, None),
                s("traffic-le-lamentin-01", Traffic, LeLamentin, 14.6110, -61.0120, None),
                s("air-quality-fort-de-france-01", AirQuality, FortDeFrance, 14.6160, -61.0560, None),
                s("air-quality-le-lamentin-01", AirQuality, LeLamentin, 14.6160, -60.9960, None),
                s("parking-fort-de-france-01", Parking, FortDeFrance, 14.6025, -61.0650, None),
                s("parking-sainte-anne-01", Parking, SainteAnne, 14.4360, -60.8820, None),
                s("noise-fort-de-france-01", Noise, FortDeFrance, 14.6100, -61.0620, None),
                s("weather-le-lamentin-01", Weather, LeLamentin, 14.5960, -60.9990, None),
                s("weather-saint-pierre-01", Weather, SaintPierre, 14.7430, -61.1760, None),
                s("light-schoelcher-01", Light, Schoelcher, 14.6150, -61.0900, None),
            ],
        }
    }

    /// Parses a TOML catalogue:
    /// ```toml
    /// [[sensor]]
    /// id = "traffic-ducos-01"
    /// kind = "traffic"          # traffic | air-quality | parking | noise | weather | light
    /// commune = "Ducos"         # one of the ten communes of docs/configuration.md
    /// lat = 14.575              # optional: the commune centre otherwise
    /// lon = -60.975
    /// capacity = 1400           # optional: vehicles/h, spots or lamp watts
    /// ```
    pub fn from_toml(text: &str) -> Result<Self, CatalogueError> {
        let file: CatalogueFile = toml::from_str(text)?;
        if file.sensor.is_empty() {
            return Err(CatalogueError::Empty);
        }
        let mut seen = HashSet::new();
        let mut sensors = Vec::with_capacity(file.sensor.len());
        for e in file.sensor {
            let bad = |problem: String| CatalogueError::BadSensor { id: e.id.clone(), problem };
            let commune = Commune::parse(&e.commune).ok_or_else(|| {
                let names: Vec<_> = Commune::ALL.iter().map(|c| c.name()).collect();
                bad(format!("unknown commune `{}` (known: {})", e.commune, names.join(", ")))
            })?;
            let (clat, clon) = commune.centre();
            let (lat, lon) = (e.lat.unwrap_or(clat), e.lon.unwrap_or(clon));
            if !(14.3..=14.95).contains(&lat) || !(-61.3..=-60.75).contains(&lon) {
                return Err(bad(format!(
                    "lat {lat}, lon {lon} is not on Martinique (lat 14.3-14.95, lon -61.3 to -60.75)"
                )));
            }
            if e.id.is_empty() || !e.id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
                return Err(bad("id must be non-empty and use only A-Z a-z 0-9 - _ .".into()));
            }
            if !seen.insert(e.id.clone()) {
                return Err(CatalogueError::DuplicateId(e.id));
            }
            sensors.push(Sensor::new(&e.id, e.kind, commune, lat, lon, e.capacity));
        }
        Ok(Catalogue { sensors })
    }

    /// `count` sensors spread over the ten communes, kinds mixed as a real deployment would be
    /// (more traffic and lights than weather stations). Deterministic for a given seed.
    pub fn generated(count: usize, seed: u64) -> Result<Self, CatalogueError> {
        if count == 0 || count > 10_000_000 {
            return Err(CatalogueError::BadCount(count));
        }
        // Out of every 20 sensors: 5 traffic, 3 air, 3 parking, 3 noise, 2 weather, 4 lights.
        const MIX: [(SensorKind, usize); 6] = [
            (SensorKind::Traffic, 5),
            (SensorKind::AirQuality, 3),
            (SensorKind::Parking, 3),
            (SensorKind::Noise, 3),
            (SensorKind::Weather, 2),
            (SensorKind::Light, 4),
        ];
        let wheel: Vec<SensorKind> = MIX.iter().flat_map(|&(k, n)| std::iter::repeat_n(k, n)).collect();
        let mut sensors = Vec::with_capacity(count);
        let mut id = String::with_capacity(48);
        for i in 0..count {
            let kind = wheel[i % wheel.len()];
            let commune = Commune::ALL[(i / wheel.len()) % Commune::ALL.len()];
            let mut rng = Rng::new(&[seed, i as u64, 0xca7a]);
            let (clat, clon) = commune.centre();
            // Within about 1.5 km of the commune centre.
            let lat = clat + (rng.unit() - 0.5) * 0.027;
            let lon = clon + (rng.unit() - 0.5) * 0.027;
            id.clear();
            use std::fmt::Write;
            let _ = write!(id, "{}-{}-{:06}", kind.as_str(), commune.slug(), i);
            sensors.push(Sensor::new(&id, kind, commune, lat, lon, None));
        }
        Ok(Catalogue { sensors })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_ten_covers_all_kinds_with_unique_ids() {
        let c = Catalogue::default_ten();
        assert_eq!(c.len(), 10);
        let kinds: HashSet<_> = c.sensors().iter().map(|s| s.kind).collect();
        assert_eq!(kinds.len(), 6);
        let ids: HashSet<_> = c.sensors().iter().map(|s| &s.id).collect();
        assert_eq!(ids.len(), 10);
    }

    #[test]
    fn generated_is_deterministic_and_unique() {
        let a = Catalogue::generated(1000, 1).unwrap();
        assert_eq!(a, Catalogue::generated(1000, 1).unwrap());
        let ids: HashSet<_> = a.sensors().iter().map(|s| &s.id).collect();
        assert_eq!(ids.len(), 1000);
        assert!(a.sensors().iter().all(|s| (14.3..14.95).contains(&s.lat) && (-61.3..-60.75).contains(&s.lon)));
        assert!(Catalogue::generated(0, 1).is_err());
    }

    #[test]
    fn file_catalogue_parses_and_reports_errors() {
        let ok = "[[sensor]]\nid='tf-1'\nkind='traffic'\ncommune='Ducos'\n";
        let c = Catalogue::from_toml(ok).unwrap();
        assert_eq!(c.sensors()[0].commune, Commune::Ducos);
        assert_eq!(c.sensors()[0].lat, 14.575);

        let unknown = "[[sensor]]\nid='x'\nkind='traffic'\ncommune='Paris'\n";
        let err = Catalogue::from_toml(unknown).unwrap_err().to_string();
        assert!(err.contains("unknown commune `Paris`"), "{err}");

        let dup = format!("{ok}{ok}");
        assert!(matches!(Catalogue::from_toml(&dup), Err(CatalogueError::DuplicateId(_))));

        let bad_kind = "[[sensor]]\nid='x'\nkind='radar'\ncommune='Ducos'\n";
        let err = Catalogue::from_toml(bad_kind).unwrap_err().to_string();
        assert!(err.contains("radar"), "{err}");
    }
}
