//! ChirpStack v4 `up` events, JSON integration (MQTT topic
//! `application/{application id}/device/{dev eui}/event/up`, `[integration.mqtt] json=true`).
//!
//! ```json
//! {"time":"2026-11-21T11:30:00.250Z","fCnt":7,
//!  "deviceInfo":{"deviceName":"nz-lamentin-2","devEui":"0102030405060708"},
//!  "object":{"laeq":63.2,"lamax":71.8,"las":60.4},
//!  "rxInfo":[{"gatewayId":"0016c001f153a14c","location":{"latitude":14.613,"longitude":-60.999}}]}
//! ```
//! - sensor id: `deviceInfo.deviceName` made a valid id, else `deviceInfo.devEui`; seq: `fCnt`
//!   (the Protobuf JSON mapping leaves out zero values: missing is 0); time: `time`.
//! - values: the keys of `object` (the device profile's codec output), as for TTN. An event
//!   without `object` (no codec) is refused, or with `raw_payload = "cayenne-lpp"` its `data` is
//!   read as Cayenne LPP ([`lpp`]), whose GPS record wins over the gateways' positions.
//! - position: the first `rxInfo[].location` with a latitude and longitude (a gateway's
//!   position: approximate; ChirpStack sends `{}` when it has none), else the configured
//!   `lat`/`lon`.

use super::device::{self, DeviceError, Observation, Options, Origin, RawPayload};
use super::lpp;
use super::ttn::lat_lon;
use crate::reading::Reading;
use chrono::{DateTime, Utc};
use serde_json::Value;

/// Decodes one `up` event into its reading (a `Vec` like every device format; here of one).
pub fn decode(bytes: &[u8], options: &Options, _now: DateTime<Utc>) -> Result<Vec<Reading>, DeviceError> {
    let doc: Value = serde_json::from_slice(bytes)
        .map_err(|e| DeviceError::Syntax { format: "ChirpStack v4 up event", message: e.to_string() })?;
    let field = |path: &str| DeviceError::Field(path.to_string());
    let info = doc.get("deviceInfo").ok_or_else(|| field("deviceInfo"))?;
    let name = info.get("deviceName").and_then(Value::as_str).map(device::sensor_id).filter(|n| !n.is_empty());
    let sensor_id = match name {
        Some(n) => n,
        None => {
            device::sensor_id(info.get("devEui").and_then(Value::as_str).ok_or_else(|| field("deviceInfo.devEui"))?)
        }
    };
    let seq = match doc.get("fCnt") {
        None => 0,
        Some(n) => n.as_u64().ok_or_else(|| field("fCnt"))?,
    };
    let observed_at =
        device::parse_time("time", doc.get("time").and_then(Value::as_str).ok_or_else(|| field("time"))?)?;
    let mut obs = Observation::default();
    let mut own_position = None;
    match (doc.get("object").and_then(Value::as_object), options.raw_payload) {
        (Some(object), _) => device::add_object(&mut obs, object)?,
        (None, RawPayload::CayenneLpp) => {
            own_position = lpp::decode(&device::base64_field(&doc, "data", "data")?, &mut obs)?
        }
        (None, RawPayload::Refuse) => return Err(field("object")),
    }
    let gateway = doc
        .get("rxInfo")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| r.get("location"))
        .find_map(lat_lon);
    let origin = Origin { sensor_id, observed_at, seq, position: own_position.or(gateway) };
    Ok(vec![device::build(origin, obs, options)?])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reading::Values;
    use crate::SensorKind;

    fn doc_example() -> String {
        let block = include_str!("chirpstack.rs").split("```json\n").nth(1).unwrap().split("```").next().unwrap();
        block.lines().map(|l| l.trim_start_matches("//!").trim_start()).collect::<Vec<_>>().join("\n")
    }

    #[test]
    fn the_documented_event_is_a_noise_reading() {
        let r = &decode(doc_example().as_bytes(), &Options::default(), Utc::now()).unwrap()[0];
        assert_eq!((r.sensor_id.as_str(), r.seq, r.kind()), ("nz-lamentin-2", 7, SensorKind::Noise));
        assert_eq!(r.commune, crate::Commune::LeLamentin);
        let Values::Noise(n) = &r.values else { panic!() };
        assert_eq!((n.laeq, n.lamax, n.las), (Some(63.2), Some(71.8), Some(60.4)));
    }

    #[test]
    fn missing_f_cnt_is_zero_and_empty_locations_fall_back_to_the_configuration() {
        let text =
            doc_example().replace("\"fCnt\":7,", "").replace("{\"latitude\":14.613,\"longitude\":-60.999}", "{}");
        let opts = Options { lat: Some(14.74), lon: Some(-61.17), ..Options::default() };
        let r = &decode(text.as_bytes(), &opts, Utc::now()).unwrap()[0];
        assert_eq!((r.seq, r.commune), (0, crate::Commune::SaintPierre));
    }

    #[test]
    fn raw_cayenne_lpp_is_read_when_the_source_says_so() {
        let raw = doc_example().replace(r#""object":{"laeq":63.2,"lamax":71.8,"las":60.4}"#, r#""data":"A2cBEA==""#);
        assert_ne!(raw, doc_example());
        let lpp = Options { raw_payload: device::RawPayload::CayenneLpp, ..Options::default() };
        let r = &decode(raw.as_bytes(), &lpp, Utc::now()).unwrap()[0];
        assert_eq!((r.kind(), r.values.present()), (SensorKind::Weather, vec!["temperature"]));
        assert_eq!(r.commune, crate::Commune::LeLamentin, "no GPS record: the gateway's position");
        assert_eq!(decode(raw.as_bytes(), &Options::default(), Utc::now()).unwrap_err().reason(), "field");
    }

    #[test]
    fn refusals_name_the_field() {
        let good = doc_example();
        let cases = [
            (good.replace("\"object\"", "\"data\""), "field", "`object`"),
            (good.replace("\"time\"", "\"tim\""), "field", "`time`"),
            (good.replace("\"fCnt\":7", "\"fCnt\":-7"), "field", "`fCnt`"),
            (good.replace("\"las\":60.4", "\"las\":\"loud\""), "field", "`las`"),
            ("{".to_string(), "syntax", "ChirpStack"),
        ];
        for (text, reason, says) in cases {
            let e = decode(text.as_bytes(), &Options::default(), Utc::now()).unwrap_err();
            assert_eq!(e.reason(), reason, "{text}: {e}");
            assert!(e.to_string().contains(says), "{e} should say {says}");
        }
        // Without `las` the event is a noise reading without LAS; as a weather sensor it has nothing.
        let no_las = good.replace("\"las\"", "\"co2\"");
        let r = &decode(no_las.as_bytes(), &Options::default(), Utc::now()).unwrap()[0];
        assert_eq!(r.values.present(), ["LAeq", "LAmax"]);
        let weather = Options { kind: Some(SensorKind::Weather), ..Options::default() };
        let e = decode(no_las.as_bytes(), &weather, Utc::now()).unwrap_err();
        assert_eq!(e.reason(), "values", "{e}");
        assert!(e.to_string().contains("none of the kind's attributes"), "{e}");
    }
}
