//! The one `Reading` type every binary and connector shares, with typed values per kind.
//!
//! Attribute names follow the FIWARE Smart Data Models (`averageVehicleSpeed`, `pm25`, `LAeq`,
//! `relativeHumidity`, ...) so that the NGSI-LD codec is a renaming-free mapping. Units are fixed per
//! attribute and documented on each field; ratios are 0-1, never percent.

use crate::kind::SensorKind;
use crate::place::Commune;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One observation of one sensor at one instant. A reading carries the attributes its sensor
/// measured, nothing invented: every attribute of a kind is optional, and at least one is present.
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
    #[error("a {0} reading needs at least one attribute of its kind, and has none")]
    NoAttribute(SensorKind),
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

    /// Names of the attributes present, in the model's (wire) spelling.
    pub fn present(&self) -> Vec<&'static str> {
        let names: &[(&'static str, bool)] = match self {
            Values::Traffic(v) => &[
                ("intensity", v.intensity.is_some()),
                ("occupancy", v.occupancy.is_some()),
                ("averageVehicleSpeed", v.average_vehicle_speed.is_some()),
                ("congested", v.congested.is_some()),
            ],
            Values::AirQuality(v) => &[
                ("pm10", v.pm10.is_some()),
                ("pm25", v.pm25.is_some()),
                ("no2", v.no2.is_some()),
                ("o3", v.o3.is_some()),
                ("co", v.co.is_some()),
                ("so2", v.so2.is_some()),
                ("airQualityIndex", v.air_quality_index.is_some()),
                ("airQualityLevel", v.air_quality_level.is_some()),
            ],
            Values::Parking(v) => &[
                ("availableSpotNumber", v.available_spot_number.is_some()),
                ("totalSpotNumber", v.total_spot_number.is_some()),
                ("occupancy", v.occupancy.is_some()),
            ],
            Values::Noise(v) => &[("LAeq", v.laeq.is_some()), ("LAmax", v.lamax.is_some()), ("LAS", v.las.is_some())],
            Values::Weather(v) => &[
                ("temperature", v.temperature.is_some()),
                ("relativeHumidity", v.relative_humidity.is_some()),
                ("atmosphericPressure", v.atmospheric_pressure.is_some()),
                ("windSpeed", v.wind_speed.is_some()),
                ("windDirection", v.wind_direction.is_some()),
                ("precipitation", v.precipitation.is_some()),
            ],
            Values::Light(v) => &[
                ("status", v.status.is_some()),
                ("powerState", v.power_state.is_some()),
                ("illuminanceLevel", v.illuminance_level.is_some()),
                ("powerConsumption", v.power_consumption.is_some()),
            ],
        };
        names.iter().filter(|(_, p)| *p).map(|(n, _)| *n).collect()
    }

    /// Whether no attribute is present. Compared with the kind's all-absent default rather than
    /// through [`Values::present`], so that the check every decoded reading goes through does not
    /// allocate.
    pub fn is_empty(&self) -> bool {
        match self {
            Values::Traffic(v) => *v == Traffic::default(),
            Values::AirQuality(v) => *v == AirQuality::default(),
            Values::Parking(v) => *v == Parking::default(),
            Values::Noise(v) => *v == Noise::default(),
            Values::Weather(v) => *v == Weather::default(),
            Values::Light(v) => *v == Light::default(),
        }
    }

    /// Checks the values present; a reading must carry at least one (a device that measured
    /// nothing of its kind has nothing to say).
    fn validate(&self) -> Result<(), ReadingError> {
        if self.is_empty() {
            return Err(ReadingError::NoAttribute(self.kind()));
        }
        match self {
            Values::Traffic(v) => {
                opt_range("intensity", v.intensity.map(f64::from), 0.0, 20_000.0)?;
                opt_range("occupancy", v.occupancy, 0.0, 1.0)?;
                opt_range("averageVehicleSpeed", v.average_vehicle_speed, 0.0, 250.0)
            }
            Values::AirQuality(v) => {
                opt_range("pm10", v.pm10, 0.0, 2_000.0)?;
                opt_range("pm25", v.pm25, 0.0, 2_000.0)?;
                opt_range("no2", v.no2, 0.0, 2_000.0)?;
                opt_range("o3", v.o3, 0.0, 2_000.0)?;
                opt_range("co", v.co, 0.0, 100.0)?;
                opt_range("so2", v.so2, 0.0, 2_000.0)?;
                opt_range("airQualityIndex", v.air_quality_index.map(f64::from), 0.0, 500.0)
            }
            Values::Parking(v) => {
                if let (Some(available), Some(total)) = (v.available_spot_number, v.total_spot_number) {
                    if available > total {
                        return Err(ReadingError::SpotsExceedTotal { available, total });
                    }
                }
                opt_range("occupancy", v.occupancy, 0.0, 1.0)
            }
            Values::Noise(v) => {
                opt_range("LAeq", v.laeq, 0.0, 160.0)?;
                opt_range("LAmax", v.lamax, 0.0, 160.0)?;
                opt_range("LAS", v.las, 0.0, 160.0)
            }
            Values::Weather(v) => {
                opt_range("temperature", v.temperature, -20.0, 50.0)?;
                opt_range("relativeHumidity", v.relative_humidity, 0.0, 1.0)?;
                opt_range("atmosphericPressure", v.atmospheric_pressure, 870.0, 1085.0)?;
                opt_range("windSpeed", v.wind_speed, 0.0, 100.0)?;
                opt_range("windDirection", v.wind_direction, 0.0, 360.0)?;
                opt_range("precipitation", v.precipitation, 0.0, 500.0)
            }
            Values::Light(v) => {
                opt_range("illuminanceLevel", v.illuminance_level, 0.0, 1.0)?;
                opt_range("powerConsumption", v.power_consumption, 0.0, 5_000.0)
            }
        }
    }
}

fn opt_range(field: &'static str, value: Option<f64>, min: f64, max: f64) -> Result<(), ReadingError> {
    value.map_or(Ok(()), |v| in_range(field, v, min, max))
}

/// An attribute a payload names is a value: `"pm10": null` is refused like any other wrong type
/// (absence is written by leaving the attribute out, never by a null).
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// Smart Data Model `TrafficFlowObserved`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Traffic {
    /// Vehicle flow, vehicles per hour.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub intensity: Option<u32>,
    /// Fraction of time the detector is occupied, 0-1.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub occupancy: Option<f64>,
    /// km/h.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub average_vehicle_speed: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub congested: Option<bool>,
}

/// Smart Data Model `AirQualityObserved`. Concentrations in µg/m³ except `co` in mg/m³.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AirQuality {
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub pm10: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub pm25: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub no2: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub o3: Option<f64>,
    /// mg/m³.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub co: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub so2: Option<f64>,
    /// 0-500, the worst of the pollutant sub-indices.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub air_quality_index: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub air_quality_level: Option<AirQualityLevel>,
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
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Parking {
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub available_spot_number: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub total_spot_number: Option<u32>,
    /// Occupied fraction, 0-1.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub occupancy: Option<f64>,
}

/// Smart Data Model `NoiseLevelObserved`, dB(A).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Noise {
    /// Equivalent continuous level over the observation period.
    #[serde(rename = "LAeq")]
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub laeq: Option<f64>,
    /// Maximum level over the period.
    #[serde(rename = "LAmax")]
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub lamax: Option<f64>,
    /// Instantaneous slow-weighted level at the end of the period.
    #[serde(rename = "LAS")]
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub las: Option<f64>,
}

/// Smart Data Model `WeatherObserved`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Weather {
    /// °C.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub temperature: Option<f64>,
    /// 0-1.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub relative_humidity: Option<f64>,
    /// hPa.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub atmospheric_pressure: Option<f64>,
    /// m/s.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub wind_speed: Option<f64>,
    /// Degrees from north the wind blows from, 0-360.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub wind_direction: Option<f64>,
    /// mm over the observation period.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub precipitation: Option<f64>,
}

/// Smart Data Model `Streetlight`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Light {
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub status: Option<LightStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub power_state: Option<PowerState>,
    /// Commanded light output, 0-1.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub illuminance_level: Option<f64>,
    /// W.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub power_consumption: Option<f64>,
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
