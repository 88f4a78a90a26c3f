//! The Things Stack v3 uplink messages (MQTT topic `v3/{app}@{tenant}/devices/{device}/up`).
//!
//! ```json
//! {"end_device_ids":{"device_id":"wx-fdf-1","application_ids":{"application_id":"city"}},
//!  "received_at":"2026-11-21T11:30:00.120Z",
//!  "uplink_message":{"f_cnt":42,"received_at":"2026-11-21T11:30:00.100Z",
//!   "decoded_payload":{"temperature":27.5,"humidity":78,"pressure":1013.2,
//!                      "wind_speed":6.1,"wind_direction":90,"rain":0},
//!   "locations":{"user":{"latitude":14.616,"longitude":-61.059,"source":"SOURCE_REGISTRY"}}}}
//! ```
//! - sensor id: `end_device_ids.device_id`; seq: `uplink_message.f_cnt` (left out when 0, so
//!   missing is 0); time: the first usable (from 2000 on) of `uplink_message.received_at`, the
//!   top-level `received_at` and the gateways' `rx_metadata[].time`.
//! - values: the keys of `decoded_payload` (the application's payload formatter), bare numbers or
//!   `{"value": n, "unit": "kPa"}`, mapped by [`device::attribute`]. An uplink without a
//!   `decoded_payload` (no formatter, or it failed) is refused: the raw bytes are vendor-specific;
//!   with `raw_payload = "cayenne-lpp"` its `frm_payload` is read as Cayenne LPP ([`lpp`]).
//! - position: `uplink_message.locations`, the device's own (`frm-payload`) first, then the
//!   registry's (`user`), then any other; else the first `rx_metadata[].location` (a gateway's
//!   position: approximate); else the configured `lat`/`lon`.

use super::device::{self, DeviceError, Observation, Options, Origin, RawPayload};
use super::lpp;
use crate::reading::Reading;
use chrono::{DateTime, Utc};
use serde_json::Value;

/// Decodes one uplink into its reading (a `Vec` like every device format; here of one).
pub fn decode(bytes: &[u8], options: &Options, _now: DateTime<Utc>) -> Result<Vec<Reading>, DeviceError> {
    let doc: Value = serde_json::from_slice(bytes)
        .map_err(|e| DeviceError::Syntax { format: "TTN v3 uplink", message: e.to_string() })?;
    let field = |path: &str| DeviceError::Field(path.to_string());
    let device_id = doc
        .pointer("/end_device_ids/device_id")
        .and_then(Value::as_str)
        .ok_or_else(|| field("end_device_ids.device_id"))?;
    let up = doc.get("uplink_message").filter(|u| u.is_object()).ok_or_else(|| field("uplink_message"))?;
    let seq = match up.get("f_cnt") {
        None => 0,
        Some(n) => n.as_u64().ok_or_else(|| field("uplink_message.f_cnt"))?,
    };
    let observed_at = time(&doc, up)?;
    let mut obs = Observation::default();
    let mut own_position = None;
    match (up.get("decoded_payload").and_then(Value::as_object), options.raw_payload) {
        (Some(object), _) => device::add_object(&mut obs, object)?,
        (None, RawPayload::CayenneLpp) => {
            let bytes = device::base64_field(up, "frm_payload", "uplink_message.frm_payload")?;
            own_position = lpp::decode(&bytes, &mut obs)?;
        }
        (None, RawPayload::Refuse) => return Err(field("uplink_message.decoded_payload")),
    }
    // A GPS record in the payload is the device's own position, as TTN's `frm-payload` location.
    let position = own_position.or_else(|| position(up));
    let origin = Origin { sensor_id: device::sensor_id(device_id), observed_at, seq, position };
    Ok(vec![device::build(origin, obs, options)?])
}

/// The first usable of `uplink_message.received_at`, the top-level `received_at`, and the
/// gateways' `rx_metadata[].time`: simulated uplinks carry a zero `uplink_message.received_at`,
/// and some integrations publish no `received_at` at all.
fn time(doc: &Value, up: &Value) -> Result<DateTime<Utc>, DeviceError> {
    let gateways = up.get("rx_metadata").and_then(Value::as_array).into_iter().flatten();
    let candidates = [("uplink_message.received_at", up.get("received_at")), ("received_at", doc.get("received_at"))]
        .into_iter()
        .chain(gateways.map(|m| ("uplink_message.rx_metadata[].time", m.get("time"))))
        .filter_map(|(field, v)| Some((field, v?.as_str()?)));
    let mut first_error = None;
    for (field, text) in candidates {
        match device::parse_time(field, text) {
            Ok(t) => return Ok(t),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or_else(|| DeviceError::Field("received_at".into())))
}

fn position(up: &Value) -> Option<(f64, f64)> {
    let locations = up.get("locations").and_then(Value::as_object);
    let preferred = ["frm-payload", "user"].into_iter().filter_map(|k| locations.and_then(|l| l.get(k)));
    let others = locations.into_iter().flat_map(|l| l.values());
    let gateways =
        up.get("rx_metadata").and_then(Value::as_array).into_iter().flatten().filter_map(|m| m.get("location"));
    preferred.chain(others).chain(gateways).find_map(lat_lon)
}

/// `{"latitude": .., "longitude": ..}` (TTN and ChirpStack alike); an empty `{}` is no position.
pub(crate) fn lat_lon(v: &Value) -> Option<(f64, f64)> {
    Some((v.get("latitude")?.as_f64()?, v.get("longitude")?.as_f64()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reading::Values;
    use crate::SensorKind;

    fn now() -> DateTime<Utc> {
        Utc::now()
    }

    fn doc_example() -> &'static str {
        include_str!("ttn.rs").split("```json\n").nth(1).unwrap().split("```").next().unwrap()
    }

    fn uncomment(s: &str) -> String {
        s.lines().map(|l| l.trim_start_matches("//!").trim_start()).collect::<Vec<_>>().join("\n")
    }

    #[test]
    fn the_documented_uplink_is_a_weather_reading() {
        let r = decode(uncomment(doc_example()).as_bytes(), &Options::default(), now()).unwrap();
        assert_eq!(r.len(), 1);
        let r = &r[0];
        assert_eq!((r.sensor_id.as_str(), r.seq, r.kind()), ("wx-fdf-1", 42, SensorKind::Weather));
        assert_eq!(r.commune, crate::Commune::FortDeFrance);
        assert_eq!(r.observed_at.to_rfc3339(), "2026-11-21T11:30:00.100+00:00");
        let Values::Weather(w) = &r.values else { panic!() };
        assert_eq!((w.temperature, w.relative_humidity, w.wind_speed), (Some(27.5), Some(0.78), Some(6.1)));
    }

    fn uplink(payload: &str, extra: &str) -> String {
        format!(
            r#"{{"end_device_ids":{{"device_id":"pk-1"}},"received_at":"2026-11-21T11:30:00Z",
               "uplink_message":{{"decoded_payload":{payload}{extra}}}}}"#
        )
    }

    #[test]
    fn f_cnt_left_out_is_zero_and_gateway_location_is_a_fallback() {
        let text = uplink(
            r#"{"occupied":true,"previous_state_duration":74}"#,
            r#","rx_metadata":[{"gateway_ids":{"gateway_id":"g"}},{"location":{"latitude":14.47,"longitude":-60.87}}]"#,
        );
        let r = &decode(text.as_bytes(), &Options::default(), now()).unwrap()[0];
        assert_eq!((r.seq, r.kind(), r.commune), (0, SensorKind::Parking, crate::Commune::LeMarin));
        let Values::Parking(p) = &r.values else { panic!() };
        assert_eq!((p.available_spot_number, p.total_spot_number, p.occupancy), (Some(0), Some(1), Some(1.0)));
    }

    #[test]
    fn a_zero_uplink_time_falls_back_to_the_message_time() {
        let text = uplink(r#"{"occupied":false}"#, r#","received_at":"0001-01-01T00:00:00Z""#);
        let opts = Options { lat: Some(14.6), lon: Some(-61.0), ..Options::default() };
        let r = &decode(text.as_bytes(), &opts, now()).unwrap()[0];
        assert_eq!(r.observed_at.to_rfc3339(), "2026-11-21T11:30:00+00:00");
    }

    /// An uplink without decoded payload, its bytes Cayenne LPP (myDevices' documented encoding):
    /// temperature 27.2 °C on channel 3, humidity 78 %, and a GPS fix that places the device.
    #[test]
    fn raw_cayenne_lpp_is_read_when_the_source_says_so() {
        let text = r#"{"end_device_ids":{"device_id":"wx-lpp"},"received_at":"2026-11-21T11:30:00Z",
            "uplink_message":{"f_cnt":3,"frm_payload":"A2cBEAJonAGIAjrS9rE6AAPo"}}"#;
        let e = decode(text.as_bytes(), &Options::default(), now()).unwrap_err();
        assert_eq!(e.to_string(), "`uplink_message.decoded_payload` is missing or not of the expected type");
        let lpp = Options { raw_payload: RawPayload::CayenneLpp, ..Options::default() };
        let r = &decode(text.as_bytes(), &lpp, now()).unwrap()[0];
        assert_eq!((r.kind(), r.seq, r.commune), (SensorKind::Weather, 3, crate::Commune::LeLamentin));
        let Values::Weather(w) = &r.values else { panic!() };
        assert_eq!((w.temperature, w.relative_humidity), (Some(27.2), Some(0.78)));
        assert_eq!((r.lat, r.lon), (14.613, -60.999), "the GPS record of the payload");
        let not_lpp = text.replace("A2cBEAJonAGIAjrS9rE6AAPo", "AXVVA2fu");
        let e = decode(not_lpp.as_bytes(), &lpp, now()).unwrap_err();
        assert_eq!(e.to_string(), "not a Cayenne LPP payload: byte 1: 0x75 is not a Cayenne LPP type");
        let e = decode(text.replace("A2cB", "!!").as_bytes(), &lpp, now()).unwrap_err();
        assert_eq!(e.to_string(), "`uplink_message.frm_payload` is missing or not of the expected type");
    }

    #[test]
    fn refusals_name_the_field() {
        let opts = Options { lat: Some(14.6), lon: Some(-61.0), ..Options::default() };
        let cases = [
            ("[]", "field", "end_device_ids.device_id"),
            (
                r#"{"end_device_ids":{"device_id":"a"},"uplink_message":{"frm_payload":"gkHe"},"received_at":"2026-11-21T11:30:00Z"}"#,
                "field",
                "decoded_payload",
            ),
            (&uplink(r#"{"co2":900}"#, ""), "kind", "co2"),
            (
                &uplink(r#"{"occupied":true}"#, "").replace("2026-11-21T11:30:00Z", "0001-01-01T00:00:00Z"),
                "time",
                "before 2000",
            ),
            (&uplink(r#"{"pressure":{"value":95,"unit":"furlong"}}"#, ""), "unit", "furlong"),
        ];
        for (text, reason, says) in cases {
            let e = decode(text.as_bytes(), &opts, now()).unwrap_err();
            assert_eq!(e.reason(), reason, "{text}: {e}");
            assert!(e.to_string().contains(says), "{e} should say {says}");
        }
        // A temperature alone is a partial weather reading; read as noise, it is nothing.
        let alone = uplink(r#"{"temperature":20}"#, "");
        assert_eq!(decode(alone.as_bytes(), &opts, now()).unwrap()[0].values.present(), ["temperature"]);
        let noise = Options { kind: Some(SensorKind::Noise), ..opts.clone() };
        let e = decode(alone.as_bytes(), &noise, now()).unwrap_err();
        assert_eq!(e.reason(), "values", "{e}");
        assert!(e.to_string().contains("`LAeq`, `LAmax`, `LAS`"), "{e}");
        let e = decode(uplink(r#"{"occupied":true}"#, "").as_bytes(), &Options::default(), now()).unwrap_err();
        assert_eq!(e.reason(), "location", "{e}");
        let refuse = Options { unknown: device::Unknown::Refuse, ..opts };
        let e = decode(uplink(r#"{"occupied":true,"battery":3.1}"#, "").as_bytes(), &refuse, now()).unwrap_err();
        assert_eq!((e.reason(), e.to_string().contains("battery")), ("unknown", true), "{e}");
    }
}
