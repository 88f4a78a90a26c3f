//! The six kinds of sensor and the name each protocol gives them.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A kind of sensor. The serde name is the MQTT topic segment and the JSON `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SensorKind {
    Traffic,
    AirQuality,
    Parking,
    Noise,
    Weather,
    Light,
}

impl SensorKind {
    pub const ALL: [SensorKind; 6] = [
        SensorKind::Traffic,
        SensorKind::AirQuality,
        SensorKind::Parking,
        SensorKind::Noise,
        SensorKind::Weather,
        SensorKind::Light,
    ];

    /// Name in MQTT topics (`city/sensors/{name}/{id}`), Kafka topics and the JSON `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            SensorKind::Traffic => "traffic",
            SensorKind::AirQuality => "air-quality",
            SensorKind::Parking => "parking",
            SensorKind::Noise => "noise",
            SensorKind::Weather => "weather",
            SensorKind::Light => "light",
        }
    }

    /// Suffix of the Pulsar topic `persistent://public/default/smartcity-{suffix}` (no dash, as in
    /// the original system).
    pub fn pulsar_suffix(self) -> &'static str {
        match self {
            SensorKind::AirQuality => "airquality",
            other => other.as_str(),
        }
    }

    /// The FIWARE Smart Data Models entity type this kind maps to.
    pub fn smart_data_model(self) -> &'static str {
        match self {
            SensorKind::Traffic => "TrafficFlowObserved",
            SensorKind::AirQuality => "AirQualityObserved",
            SensorKind::Parking => "OffStreetParking",
            SensorKind::Noise => "NoiseLevelObserved",
            SensorKind::Weather => "WeatherObserved",
            SensorKind::Light => "Streetlight",
        }
    }

    /// The attributes of a reading of this kind, by their wire (Smart Data Models) names, in the
    /// order every codec writes them. A reading carries at least one of them.
    pub fn attributes(self) -> &'static [&'static str] {
        match self {
            SensorKind::Traffic => &["intensity", "occupancy", "averageVehicleSpeed", "congested"],
            SensorKind::AirQuality => &["pm10", "pm25", "no2", "o3", "co", "so2", "airQualityIndex", "airQualityLevel"],
            SensorKind::Parking => &["availableSpotNumber", "totalSpotNumber", "occupancy"],
            SensorKind::Noise => &["LAeq", "LAmax", "LAS"],
            SensorKind::Weather => &[
                "temperature",
                "relativeHumidity",
                "atmosphericPressure",
                "windSpeed",
                "windDirection",
                "precipitation",
            ],
            SensorKind::Light => &["status", "powerState", "illuminanceLevel", "powerConsumption"],
        }
    }

    /// Two-letter code used in generated sensor ids.
    pub fn short_code(self) -> &'static str {
        match self {
            SensorKind::Traffic => "tf",
            SensorKind::AirQuality => "aq",
            SensorKind::Parking => "pk",
            SensorKind::Noise => "nz",
            SensorKind::Weather => "wx",
            SensorKind::Light => "lt",
        }
    }
}

impl fmt::Display for SensorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error for an unknown kind name; lists the valid ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown sensor kind `{0}` (expected one of: traffic, air-quality, parking, noise, weather, light)")]
pub struct UnknownKind(pub String);

impl FromStr for SensorKind {
    type Err = UnknownKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SensorKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| UnknownKind(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_the_kinds_in_declaration_order() {
        // `kind as usize` indexes arrays built from `ALL` (the gateway's per-kind counters).
        for (i, k) in SensorKind::ALL.into_iter().enumerate() {
            assert_eq!(k as usize, i, "{k:?}");
        }
    }

    #[test]
    fn names_round_trip() {
        for k in SensorKind::ALL {
            assert_eq!(k.as_str().parse::<SensorKind>().unwrap(), k);
        }
        assert!("airquality".parse::<SensorKind>().is_err());
        assert_eq!(SensorKind::AirQuality.pulsar_suffix(), "airquality");
    }
}
