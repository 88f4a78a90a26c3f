//! The one `Reading` type every binary and connector shares, with typed values per kind.
//!
//! Attribute names follow the FIWARE Smart Data Models (`averageVehicleSpeed`, `pm25`, `LAeq`,
//! `relativeHumidity`, ...) so that the NGSI-LD codec is a renaming-free mapping. Units are fixed per
//! attribute and documented on each field; ratios are 0-1, never percent.

use crate::kind::SensorKind;
use crate::place::Commune;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One observation of one sensor at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// Stable sensor id, unique in the catalogue (`traffic-fort-de-france-01`).
    pub sensor_id: String,
    pub commune: Commune,
    /// WGS84 latitude, degrees.
    pub lat: f64,
    /// WGS84 longitude, degrees.
    pub lon: f64,
    /// When the value was observed, UTC.
    pub observed_at: DateTime<Utc>,
    /// Per-sensor sequence number, +1 for every reading the sensor emits: gaps downstream mean loss.
    pub seq: u64,
    pub values: Values,
}

impl Reading {
    pub fn kind(&self) -> SensorKind {
        self.values.kind()
    }

    /// Checks that every value is finite and physically possible; the first violation is returned.
    pub fn validate(&self) -> Result<(), ReadingError> {
        if self.sensor_id.is_empty() || self.sensor_id.len() > 128 {
            return Err(ReadingError::BadId(self.sensor_id.clone()));
        }
        if !self.sensor_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.') {
            return Err(ReadingError::BadId(self.sensor_id.clone()));
        }
        in_range("lat", self.lat, -90.0, 90.0)?;
        in_range("lon", self.lon, -180.0, 180.0)?;
        self.values.validate()
    }
}

/// What is wrong with a reading.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReadingError {
    #[error("`{field}` = {value} is outside its physical range [{min}, {max}]")]
    OutOfRange { field: &'static str, value: f64, min: f64, max: f64 },
    #[error("sensor id `{0}` must be 1-128 characters of A-Z a-z 0-9 - _ .")]
    BadId(String),
    #[error("availableSpotNumber {available} exceeds totalSpotNumber {total}")]
    SpotsExceedTotal { available: u32, total: u32 },
}

fn in_range(field: &'static str, value: f64, min: f64, max: f64) -> Result<(), ReadingError> {
    // `contains` is false for NaN, so non-finite values are rejected too.
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ReadingError::OutOfRange { field, value, min, max })
    }
}

/// Typed values, one variant per kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    Traffic(Traffic),
    AirQuality(AirQuality),
    Parking(Parking),
    Noise(Noise),
    Weather(Weather),
    Light(Light),
}

impl Values {
    pub fn kind(&self) -> SensorKind {
        match self {
            Values::Traffic(_) => SensorKind::Traffic,
            Values::AirQuality(_) => SensorKind::AirQuality,
            Values::Parking(_) => SensorKind::Parking,
            Values::Noise(_) => SensorKind::Noise,
            Values::Weather(_) => SensorKind::Weather,
            Values::Light(_) => SensorKind::Light,
        }
    }

    fn validate(&self) -> Result<(), ReadingError> {
        match self {
            Values::Traffic(v) => {
                in_range("intensity", v.intensity as f64, 0.0, 20_000.0)?;
                in_range("occupancy", v.occupancy, 0.0, 1.0)?;
                in_range("averageVehicleSpeed", v.average_vehicle_speed, 0.0, 250.0)
            }
            Values::AirQuality(v) => {
                in_range("pm10", v.pm10, 0.0, 2_000.0)?;
                in_range("pm25", v.pm25, 0.0, 2_000.0)?;
                in_range("no2", v.no2, 0.0, 2_000.0)?;
                in_range("o3", v.o3, 0.0, 2_000.0)?;
                in_range("co", v.co, 0.0, 100.0)?;
                in_range("so2", v.so2, 0.0, 2_000.0)?;
                in_range("airQualityIndex", v.air_quality_index as f64, 0.0, 500.0)
            }
            Values::Parking(v) => {
                if v.available_spot_number > v.total_spot_number {
                    return Err(ReadingError::SpotsExceedTotal {
                        available: v.available_spot_number,
                        total: v.total_spot_number,
                    });
                }
                in_range("occupancy", v.occupancy, 0.0, 1.0)
            }
            Values::Noise(v) => {
                in_range("LAeq", v.laeq, 0.0, 160.0)?;
                in_range("LAmax", v.lamax, 0.0, 160.0)?;
                in_range("LAS", v.las, 0.0, 160.0)
            }
            Values::Weather(v) => {
                in_range("temperature", v.temperature, -20.0, 50.0)?;
                in_range("relativeHumidity", v.relative_humidity, 0.0, 1.0)?;
                in_range("atmosphericPressure", v.atmospheric_pressure, 870.0, 1085.0)?;
                in_range("windSpeed", v.wind_speed, 0.0, 100.0)?;
                in_range("windDirection", v.wind_direction, 0.0, 360.0)?;
                in_range("precipitation", v.precipitation, 0.0, 500.0)
            }
            Values::Light(v) => {
                in_range("illuminanceLevel", v.illuminance_level, 0.0, 1.0)?;
                in_range("powerConsumption", v.power_consumption, 0.0, 5_000.0)
            }
        }
    }
}

/// Smart Data Model `TrafficFlowObserved`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Traffic {
    /// Vehicle flow, vehicles per hour.
    pub intensity: u32,
    /// Fraction of time the detector is occupied, 0-1.
    pub occupancy: f64,
    /// km/h.
    pub average_vehicle_speed: f64,
    pub congested: bool,
}

/// Smart Data Model `AirQualityObserved`. Concentrations in µg/m³ except `co` in mg/m³.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AirQuality {
    pub pm10: f64,
    pub pm25: f64,
    pub no2: f64,
    pub o3: f64,
    /// mg/m³.
    pub co: f64,
    pub so2: f64,
    /// 0-500, the worst of the pollutant sub-indices.
    pub air_quality_index: u32,
    pub air_quality_level: AirQualityLevel,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AirQualityLevel {
    Good,
    Moderate,
    UnhealthyForSensitiveGroups,
    Unhealthy,
    VeryUnhealthy,
    Hazardous,
}

impl AirQualityLevel {
    /// Level of an index value, on the usual 0-50-100-150-200-300 bands.
    pub fn from_index(aqi: u32) -> Self {
        match aqi {
            0..=50 => AirQualityLevel::Good,
            51..=100 => AirQualityLevel::Moderate,
            101..=150 => AirQualityLevel::UnhealthyForSensitiveGroups,
            151..=200 => AirQualityLevel::Unhealthy,
            201..=300 => AirQualityLevel::VeryUnhealthy,
            _ => AirQualityLevel::Hazardous,
        }
    }
}

/// Smart Data Model `OffStreetParking`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Parking {
    pub available_spot_number: u32,
    pub total_spot_number: u32,
    /// Occupied fraction, 0-1.
    pub occupancy: f64,
}

/// Smart Data Model `NoiseLevelObserved`, dB(A).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Noise {
    /// Equivalent continuous level over the observation period.
    #[serde(rename = "LAeq")]
    pub laeq: f64,
    /// Maximum level over the period.
    #[serde(rename = "LAmax")]
    pub lamax: f64,
    /// Instantaneous slow-weighted level at the end of the period.
    #[serde(rename = "LAS")]
    pub las: f64,
}

/// Smart Data Model `WeatherObserved`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Weather {
    /// °C.
    pub temperature: f64,
    /// 0-1.
    pub relative_humidity: f64,
    /// hPa.
    pub atmospheric_pressure: f64,
    /// m/s.
    pub wind_speed: f64,
    /// Degrees from north the wind blows from, 0-360.
    pub wind_direction: f64,
    /// mm over the observation period.
    pub precipitation: f64,
}

/// Smart Data Model `Streetlight`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Light {
    pub status: LightStatus,
    pub power_state: PowerState,
    /// Commanded light output, 0-1.
    pub illuminance_level: f64,
    /// W.
    pub power_consumption: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LightStatus {
    Ok,
    DefectiveLamp,
    ColumnIssue,
    BrokenLantern,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PowerState {
    On,
    Off,
    Low,
    BootingUp,
}
