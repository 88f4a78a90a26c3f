//! The model's attributes as devices name them, and the units their values come in: the table
//! every device format looks names up in ([`attribute`]) and the conversions into the model's
//! units ([`convert`]). docs/device-formats.md shows both as tables.

use super::device::DeviceError;
use crate::kind::SensorKind;

/// A unit a value can come in (SenML's names, or a vendor's spelling mapped onto them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Celsius,
    Kelvin,
    /// 0-1 (`/`, and SenML's deprecated `%`, which is an alias of `/`).
    Ratio,
    /// 0-100 (`%RH`, `/100`, a vendor's `%`).
    Percent,
    Pa,
    HPa,
    KPa,
    MetrePerSecond,
    KmPerHour,
    PerSecond,
    PerHour,
    Count,
    MicrogramPerM3,
    MilligramPerM3,
    Ppm,
    Decibel,
    Lux,
    Watt,
    Degree,
    Millimetre,
}

/// A SenML unit (RFC 8428 §12.1 and the RFC 8798 secondary units we can use).
pub fn senml_unit(u: &str) -> Option<Unit> {
    Some(match u {
        "Cel" => Unit::Celsius,
        "K" => Unit::Kelvin,
        "/" | "%" => Unit::Ratio,
        "%RH" | "/100" => Unit::Percent,
        "Pa" => Unit::Pa,
        "hPa" => Unit::HPa,
        "m/s" => Unit::MetrePerSecond,
        "km/h" => Unit::KmPerHour,
        "1/s" => Unit::PerSecond,
        "count" => Unit::Count,
        "ug/m3" => Unit::MicrogramPerM3,
        "ppm" => Unit::Ppm,
        "dB" => Unit::Decibel,
        "lx" => Unit::Lux,
        "W" => Unit::Watt,
        "deg" => Unit::Degree,
        "mm" => Unit::Millimetre,
        _ => return None,
    })
}

/// A unit as vendors' payload formatters spell it (`{"unit": "kPa", "value": 95.9}`); here `%` is a
/// percentage, as every vendor means it.
pub fn vendor_unit(u: &str) -> Option<Unit> {
    Some(match u.trim() {
        "°C" | "C" | "Cel" | "degC" => Unit::Celsius,
        "K" => Unit::Kelvin,
        "/" | "ratio" => Unit::Ratio,
        "%" | "%RH" | "% RH" => Unit::Percent,
        "Pa" => Unit::Pa,
        "hPa" | "mbar" => Unit::HPa,
        "kPa" => Unit::KPa,
        "m/s" | "m⋅s⁻¹" | "m s-1" => Unit::MetrePerSecond,
        "km/h" => Unit::KmPerHour,
        "1/s" => Unit::PerSecond,
        "1/h" | "/h" | "veh/h" => Unit::PerHour,
        "count" => Unit::Count,
        "ug/m3" | "µg/m³" | "µg/m3" | "µg⋅m⁻³" | "ug/m³" => Unit::MicrogramPerM3,
        "mg/m3" | "mg/m³" | "mg⋅m⁻³" => Unit::MilligramPerM3,
        "ppm" => Unit::Ppm,
        "dB" | "dBA" | "dB(A)" => Unit::Decibel,
        "lx" | "lux" => Unit::Lux,
        "W" => Unit::Watt,
        "°" | "deg" => Unit::Degree,
        "mm" => Unit::Millimetre,
        _ => return None,
    })
}

/// What an attribute measures, which fixes the units it accepts and the model's unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Quantity {
    /// °C.
    Temperature,
    /// 0-1.
    Ratio,
    /// hPa.
    Pressure,
    /// m/s.
    WindSpeed,
    /// km/h.
    VehicleSpeed,
    /// µg/m³; a gas's molar mass (g/mol) allows ppm (at 25 °C, 1013 hPa).
    Concentration { molar_mass: Option<f64> },
    /// mg/m³ (carbon monoxide).
    ConcentrationMg { molar_mass: f64 },
    /// dB(A).
    Level,
    /// W.
    Power,
    /// Degrees.
    Angle,
    /// mm.
    Depth,
    /// Vehicles per hour.
    Flow,
    /// A whole number (spots, an index).
    Count,
    /// A string (light status and power state).
    Text,
    /// true/false.
    Flag,
}

/// One attribute of the model, and the names devices give it.
#[derive(Debug)]
pub struct Attribute {
    /// The model's name (`relativeHumidity`).
    pub name: &'static str,
    pub kinds: &'static [SensorKind],
    pub quantity: Quantity,
    /// The unit of a bare number (no unit given).
    pub default_unit: Option<Unit>,
    /// Names devices use, compared lower-case without `_`, `-`, `.` and spaces.
    pub aliases: &'static [&'static str],
}

use SensorKind::{AirQuality as A, Light as L, Noise as N, Parking as P, Traffic as T, Weather as W};

/// Molar volume of an ideal gas at 25 °C and 1013.25 hPa, litres (ppm → µg/m³).
const MOLAR_VOLUME: f64 = 24.45;

/// The attributes devices can fill, with the vendor names recognised for each.
pub const ATTRIBUTES: &[Attribute] = &[
    attr("intensity", &[T], Quantity::Flow, Some(Unit::PerHour), &["intensity", "flow", "vehiclesperhour"]),
    attr("occupancy", &[T, P], Quantity::Ratio, Some(Unit::Ratio), &["occupancy"]),
    attr(
        "averageVehicleSpeed",
        &[T],
        Quantity::VehicleSpeed,
        Some(Unit::KmPerHour),
        &["averagevehiclespeed", "avgspeed", "averagespeed", "speed"],
    ),
    attr("congested", &[T], Quantity::Flag, None, &["congested"]),
    attr(
        "pm10",
        &[A],
        Quantity::Concentration { molar_mass: None },
        Some(Unit::MicrogramPerM3),
        &["pm10", "pm10massconcentration"],
    ),
    attr(
        "pm25",
        &[A],
        Quantity::Concentration { molar_mass: None },
        Some(Unit::MicrogramPerM3),
        &["pm25", "pm2p5", "pm2p5massconcentration"],
    ),
    attr("no2", &[A], Quantity::Concentration { molar_mass: Some(46.0055) }, Some(Unit::MicrogramPerM3), &["no2"]),
    attr("o3", &[A], Quantity::Concentration { molar_mass: Some(47.9982) }, Some(Unit::MicrogramPerM3), &["o3"]),
    attr("co", &[A], Quantity::ConcentrationMg { molar_mass: 28.0101 }, Some(Unit::MilligramPerM3), &["co"]),
    attr("so2", &[A], Quantity::Concentration { molar_mass: Some(64.066) }, Some(Unit::MicrogramPerM3), &["so2"]),
    attr("airQualityIndex", &[A], Quantity::Count, Some(Unit::Count), &["airqualityindex", "aqi"]),
    attr("airQualityLevel", &[A], Quantity::Text, None, &["airqualitylevel"]),
    attr(
        "availableSpotNumber",
        &[P],
        Quantity::Count,
        Some(Unit::Count),
        &["availablespotnumber", "freespots", "availablespots"],
    ),
    attr("totalSpotNumber", &[P], Quantity::Count, Some(Unit::Count), &["totalspotnumber", "totalspots", "capacity"]),
    // A single-spot detector (Nwave, Milesight...): one spot, occupied or not.
    attr("occupied", &[P], Quantity::Flag, None, &["occupied"]),
    attr("LAeq", &[N], Quantity::Level, Some(Unit::Decibel), &["laeq", "soundavg", "noise", "soundlevel"]),
    attr("LAmax", &[N], Quantity::Level, Some(Unit::Decibel), &["lamax", "soundpeak", "soundmax"]),
    attr("LAS", &[N], Quantity::Level, Some(Unit::Decibel), &["las"]),
    attr(
        "temperature",
        &[W],
        Quantity::Temperature,
        Some(Unit::Celsius),
        &["temperature", "temp", "airtemperature", "tempcsht", "tempc"],
    ),
    // Vendors publish humidity in percent: a bare number is a percentage.
    attr(
        "relativeHumidity",
        &[W],
        Quantity::Ratio,
        Some(Unit::Percent),
        &["relativehumidity", "humidity", "hum", "airhumidity", "humsht", "rh"],
    ),
    attr(
        "atmosphericPressure",
        &[W],
        Quantity::Pressure,
        Some(Unit::HPa),
        &["atmosphericpressure", "pressure", "barometricpressure", "airpressure"],
    ),
    attr("windSpeed", &[W], Quantity::WindSpeed, Some(Unit::MetrePerSecond), &["windspeed"]),
    attr("windDirection", &[W], Quantity::Angle, Some(Unit::Degree), &["winddirection"]),
    attr("precipitation", &[W], Quantity::Depth, Some(Unit::Millimetre), &["precipitation", "rain", "rainfall"]),
    attr("status", &[L], Quantity::Text, None, &["status"]),
    attr("powerState", &[L], Quantity::Text, None, &["powerstate"]),
    attr("illuminanceLevel", &[L], Quantity::Ratio, Some(Unit::Ratio), &["illuminancelevel", "dimlevel"]),
    attr("powerConsumption", &[L], Quantity::Power, Some(Unit::Watt), &["powerconsumption", "power"]),
];

const fn attr(
    name: &'static str,
    kinds: &'static [SensorKind],
    quantity: Quantity,
    default_unit: Option<Unit>,
    aliases: &'static [&'static str],
) -> Attribute {
    Attribute { name, kinds, quantity, default_unit, aliases }
}

/// The attribute a device's measurement name stands for, if any.
pub fn attribute(name: &str) -> Option<&'static Attribute> {
    ATTRIBUTES.iter().find(|a| a.aliases.contains(&key(name).as_str()))
}

/// A device's name compared with the aliases: lower case, without `_`, `-`, `.` and spaces, except
/// that a separator between two digits is a decimal point, written `p`: `pm2_5` and `pm2.5` are
/// `pm2p5`, and `pm1_0` (PM1.0) must not become `pm10`.
fn key(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut key = String::with_capacity(name.len());
    for (i, &c) in chars.iter().enumerate() {
        if matches!(c, '_' | '-' | '.' | ' ') {
            let digit = |j: Option<usize>| j.and_then(|j| chars.get(j)).is_some_and(char::is_ascii_digit);
            if digit(i.checked_sub(1)) && digit(Some(i + 1)) {
                key.push('p');
            }
        } else {
            key.extend(c.to_lowercase());
        }
    }
    key
}

/// The attribute a SenML record without a name stands for, from its unit alone, when the unit
/// names one attribute only.
pub fn attribute_of_unit(unit: &str) -> Option<&'static Attribute> {
    let name = match unit {
        "Cel" | "K" => "temperature",
        "%RH" => "relativeHumidity",
        "Pa" | "hPa" => "atmosphericPressure",
        _ => return None,
    };
    ATTRIBUTES.iter().find(|a| a.name == name)
}

/// `value` in `unit` (the attribute's default unit when `None`), in the model's unit of `a`.
pub fn convert(a: &Attribute, key: &str, value: f64, unit: Option<Unit>, unit_text: &str) -> Result<f64, DeviceError> {
    let unit = unit.or(a.default_unit);
    let bad = |problem| DeviceError::Unit { name: key.to_string(), unit: unit_text.to_string(), problem };
    let Some(unit) = unit else { return Err(bad("is needed for this measurement")) };
    use Unit as U;
    let v = match (a.quantity, unit) {
        (Quantity::Temperature, U::Celsius) => value,
        (Quantity::Temperature, U::Kelvin) => value - 273.15,
        (Quantity::Ratio, U::Ratio) => value,
        (Quantity::Ratio, U::Percent) => value / 100.0,
        (Quantity::Pressure, U::HPa) => value,
        (Quantity::Pressure, U::Pa) => value / 100.0,
        (Quantity::Pressure, U::KPa) => value * 10.0,
        (Quantity::WindSpeed, U::MetrePerSecond) => value,
        (Quantity::WindSpeed, U::KmPerHour) => value / 3.6,
        (Quantity::VehicleSpeed, U::KmPerHour) => value,
        (Quantity::VehicleSpeed, U::MetrePerSecond) => value * 3.6,
        (Quantity::Concentration { .. }, U::MicrogramPerM3) => value,
        (Quantity::Concentration { .. }, U::MilligramPerM3) => value * 1000.0,
        (Quantity::Concentration { molar_mass: Some(m) }, U::Ppm) => value * m * 1000.0 / MOLAR_VOLUME,
        (Quantity::ConcentrationMg { .. }, U::MilligramPerM3) => value,
        (Quantity::ConcentrationMg { .. }, U::MicrogramPerM3) => value / 1000.0,
        (Quantity::ConcentrationMg { molar_mass }, U::Ppm) => value * molar_mass / MOLAR_VOLUME,
        (Quantity::Level, U::Decibel) => value,
        (Quantity::Power, U::Watt) => value,
        (Quantity::Angle, U::Degree) => value,
        (Quantity::Depth, U::Millimetre) => value,
        (Quantity::Flow, U::PerHour | U::Count) => value,
        (Quantity::Flow, U::PerSecond) => value * 3600.0,
        (Quantity::Count, U::Count) => value,
        _ => return Err(bad("does not fit this measurement")),
    };
    Ok(v)
}

/// The model's own unit of a quantity (what a declarative mapping's field without a unit is in).
pub fn model_unit(q: Quantity) -> Option<Unit> {
    Some(match q {
        Quantity::Temperature => Unit::Celsius,
        Quantity::Ratio => Unit::Ratio,
        Quantity::Pressure => Unit::HPa,
        Quantity::WindSpeed => Unit::MetrePerSecond,
        Quantity::VehicleSpeed => Unit::KmPerHour,
        Quantity::Concentration { .. } => Unit::MicrogramPerM3,
        Quantity::ConcentrationMg { .. } => Unit::MilligramPerM3,
        Quantity::Level => Unit::Decibel,
        Quantity::Power => Unit::Watt,
        Quantity::Angle => Unit::Degree,
        Quantity::Depth => Unit::Millimetre,
        Quantity::Flow => Unit::PerHour,
        Quantity::Count => Unit::Count,
        Quantity::Text | Quantity::Flag => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(name: &str, v: f64, unit: &str) -> f64 {
        let a = attribute(name).unwrap();
        convert(a, name, v, vendor_unit(unit).or(senml_unit(unit)), unit).unwrap()
    }

    #[test]
    fn vendor_names_map_to_attributes() {
        assert_eq!(attribute("pm2_5").unwrap().name, "pm25");
        assert_eq!(attribute("TempC_SHT").unwrap().name, "temperature");
        assert_eq!(attribute("soundAvg").unwrap().name, "LAeq");
        assert_eq!(attribute("barometric_pressure").unwrap().name, "atmosphericPressure");
        assert!(attribute("co2").is_none(), "the model has no CO2");
        assert_eq!(attribute("pm2.5").unwrap().name, "pm25");
        assert_eq!(attribute("pm2_5_mass_concentration").unwrap().name, "pm25");
        assert_eq!(attribute("pm10_mass_concentration").unwrap().name, "pm10");
        assert!(attribute("pm1_0_mass_concentration").is_none(), "PM1.0 is not PM10 (Decentlab DL-PM)");
        assert!(attribute("illuminance").is_none(), "lux is not the lamp's output level");
    }

    #[test]
    fn every_conversion() {
        assert_eq!(conv("temperature", 300.0, "K"), 300.0 - 273.15);
        assert_eq!(conv("humidity", 62.0, "%"), 0.62);
        assert!((conv("pressure", 95.96, "kPa") - 959.6).abs() < 1e-9);
        assert_eq!(conv("pressure", 101_325.0, "Pa"), 1013.25);
        assert_eq!(conv("windSpeed", 36.0, "km/h"), 10.0);
        assert_eq!(conv("speed", 10.0, "m/s"), 36.0);
        assert_eq!(conv("co", 1000.0, "µg/m³"), 1.0);
        assert_eq!(conv("pm10", 0.05, "mg/m3"), 50.0);
        assert!((conv("no2", 0.1, "ppm") - 188.16).abs() < 0.01, "0.1 ppm NO2 is about 188 µg/m³");
        assert!((conv("co", 1.0, "ppm") - 1.1456).abs() < 0.001);
        assert_eq!(conv("intensity", 0.5, "1/s"), 1800.0);
    }

    #[test]
    fn mismatched_units_are_refused() {
        let a = attribute("temperature").unwrap();
        let e = convert(a, "temperature", 1.0, Some(Unit::Pa), "Pa").unwrap_err();
        assert_eq!(e.reason(), "unit");
        assert!(e.to_string().contains("`temperature`: unit `Pa` does not fit"), "{e}");
        let pm = attribute("pm10").unwrap();
        assert!(convert(pm, "pm10", 1.0, Some(Unit::Ppm), "ppm").is_err(), "particles have no molar mass");
    }
}
