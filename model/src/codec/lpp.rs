//! Cayenne Low Power Payload (LPP) v1, the generic LoRaWAN byte encoding of myDevices, for the raw
//! `frm_payload` (TTN) or `data` (ChirpStack) of an uplink that has no decoded payload, when the
//! source sets `raw_payload = "cayenne-lpp"`.
//!
//! A payload is a sequence of records: channel (1 byte), type (1 byte), then the value, big-endian,
//! with the size and resolution of its type. The type codes are the IPSO Smart Object ids minus
//! 3200. Reference: myDevices, "Cayenne Low Power Payload"
//! (<https://docs.mydevices.com/docs/lorawan/cayenne-lpp>), the same table as The Things Stack's
//! built-in CayenneLPP formatter and the Arduino `CayenneLPP` library (`CayenneLPP.h`).
//!
//! | type | code | bytes | resolution | becomes |
//! |---|---|---|---|---|
//! | temperature | 103 (0x67) | 2, signed | 0.1 °C | `temperature` |
//! | humidity | 104 (0x68) | 1, unsigned | 0.5 % | `relativeHumidity` |
//! | barometer | 115 (0x73) | 2, unsigned | 0.1 hPa | `atmosphericPressure` |
//! | GPS | 136 (0x88) | 9: lat, lon (3 signed, 0.0001°), alt (3 signed, 0.01 m) | | the device's position |
//! | digital in/out, analog in/out, illuminance, presence, accelerometer, gyrometer | 0, 1, 2, 3, 101, 102, 113, 134 | 1, 1, 2, 2, 2, 1, 6, 6 | | a measurement without attribute (`illuminance_3`) |
//!
//! A second channel of a type already read (two temperature probes) is a measurement without
//! attribute too (`temperature_5`): the first channel is the reading's.

use super::attributes::Unit;
use super::device::{DeviceError, Observation};
use serde_json::Value;

/// The record types: code, name, size of the value in bytes.
const TYPES: [(u8, &str, usize); 12] = [
    (0, "digital_input", 1),
    (1, "digital_output", 1),
    (2, "analog_input", 2),
    (3, "analog_output", 2),
    (101, "illuminance", 2),
    (102, "presence", 1),
    (103, "temperature", 2),
    (104, "humidity", 1),
    (113, "accelerometer", 6),
    (115, "barometer", 2),
    (134, "gyrometer", 6),
    (136, "gps", 9),
];

fn syntax(message: String) -> DeviceError {
    DeviceError::Syntax { format: "Cayenne LPP", message }
}

/// Big-endian signed integer of `bytes` (1 to 3 bytes).
fn signed(bytes: &[u8]) -> f64 {
    let unsigned = bytes.iter().fold(0i64, |acc, b| (acc << 8) | i64::from(*b));
    let bits = 8 * bytes.len() as u32;
    let value = if unsigned >= 1 << (bits - 1) { unsigned - (1 << bits) } else { unsigned };
    value as f64
}

fn unsigned(bytes: &[u8]) -> f64 {
    bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)) as f64
}

/// Adds the measurements of `bytes` to `obs`; returns the position of its first GPS record.
pub fn decode(bytes: &[u8], obs: &mut Observation) -> Result<Option<(f64, f64)>, DeviceError> {
    if bytes.is_empty() {
        return Err(syntax("an empty payload".into()));
    }
    let mut position = None;
    let mut i = 0;
    while i < bytes.len() {
        let (channel, code) = match bytes.get(i..i + 2) {
            Some(&[channel, code]) => (channel, code),
            _ => return Err(syntax(format!("byte {i}: a record needs a channel and a type, 1 byte is left"))),
        };
        let Some(&(_, name, size)) = TYPES.iter().find(|t| t.0 == code) else {
            return Err(syntax(format!("byte {}: 0x{code:02x} is not a Cayenne LPP type", i + 1)));
        };
        let data = bytes.get(i + 2..i + 2 + size).ok_or_else(|| {
            syntax(format!("byte {}: {name} needs {size} bytes, {} are left", i + 2, bytes.len() - i - 2))
        })?;
        let reading = match code {
            103 => Some(("temperature", signed(data) / 10.0, Unit::Celsius, "Cel")),
            104 => Some(("humidity", unsigned(data) / 2.0, Unit::Percent, "%RH")),
            115 => Some(("pressure", unsigned(data) / 10.0, Unit::HPa, "hPa")),
            _ => None,
        };
        match reading {
            Some((key, value, unit, text)) if !obs.attributes.contains_key(attribute_name(key)) => {
                obs.add(key, &Value::from(value), Some(text), Some(unit))?;
            }
            _ if code == 136 && position.is_none() => {
                position = Some((signed(&data[0..3]) / 10_000.0, signed(&data[3..6]) / 10_000.0));
            }
            _ => obs.unknown.push(format!("{name}_{channel}")),
        }
        i += 2 + size;
    }
    Ok(position)
}

/// The model's name of the attributes LPP fills.
fn attribute_name(key: &str) -> &'static str {
    match key {
        "temperature" => "temperature",
        "humidity" => "relativeHumidity",
        _ => "atmosphericPressure",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::device::Measure;

    fn lpp(hex: &str) -> Result<(Observation, Option<(f64, f64)>), DeviceError> {
        let bytes: Vec<u8> =
            (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
        let mut obs = Observation::default();
        let position = decode(&bytes, &mut obs)?;
        Ok((obs, position))
    }

    /// The examples of myDevices' documentation.
    #[test]
    fn the_documented_examples() {
        // Two temperature sensors: channel 3 27.2 °C, channel 5 25.5 °C (the second is extra).
        let (obs, _) = lpp("03670110056700FF").unwrap();
        assert_eq!(obs.attributes["temperature"], Measure::Number(27.2));
        assert_eq!(obs.unknown, ["temperature_5"]);
        // A negative temperature: -4.1 °C.
        let (obs, _) = lpp("0167FFD7").unwrap();
        assert_eq!(obs.attributes["temperature"], Measure::Number(-4.1));
        // An accelerometer: no attribute.
        let (obs, _) = lpp("067104D2FB2E0000").unwrap();
        assert_eq!(obs.unknown, ["accelerometer_6"]);
        // GPS: 42.3519, -87.9094, 10 m.
        let (_, position) = lpp("018806765ff2960a0003e8").unwrap();
        let (lat, lon) = position.unwrap();
        assert!((lat - 42.3519).abs() < 1e-9 && (lon + 87.9094).abs() < 1e-9, "{lat}, {lon}");
    }

    #[test]
    fn humidity_and_pressure_in_model_units() {
        // Humidity 0x9C = 156 half-percents = 78 %; barometer 0x2794 = 10132 = 1013.2 hPa.
        let (obs, _) = lpp("02689C0473 2794".replace(' ', "").as_str()).unwrap();
        assert_eq!(obs.attributes["relativeHumidity"], Measure::Number(0.78));
        assert_eq!(obs.attributes["atmosphericPressure"], Measure::Number(1013.2));
    }

    proptest::proptest! {
        /// Whatever the bytes, a reading's measurements or a `syntax` refusal, never a panic.
        #[test]
        fn no_bytes_panic_the_decoder(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let mut obs = Observation::default();
            if let Err(e) = decode(&bytes, &mut obs) {
                proptest::prop_assert_eq!(e.reason(), "syntax");
            }
        }
    }

    #[test]
    fn bytes_that_are_not_lpp_are_refused_naming_the_byte() {
        let cases = [
            ("", "an empty payload"),
            ("0175550367", "byte 1: 0x75 is not a Cayenne LPP type"), // Milesight: 0x75 is its battery
            ("0367", "byte 2: temperature needs 2 bytes, 0 are left"),
            ("036701", "byte 2: temperature needs 2 bytes, 1 are left"),
            ("03", "byte 0: a record needs a channel and a type, 1 byte is left"),
        ];
        for (hex, says) in cases {
            let e = lpp(hex).unwrap_err();
            assert_eq!((e.reason(), e.to_string()), ("syntax", format!("not a Cayenne LPP payload: {says}")), "{hex}");
        }
    }
}
