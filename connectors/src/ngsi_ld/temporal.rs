//! The temporal representation of an entity (ETSI GS CIM 009 5.6.11,
//! `POST /ngsi-ld/v1/temporal/entities/`): `id`, `type`, and each attribute as an array of its
//! instances. Pure: no network.
//!
//! Only the measured attributes go in, those with an `observedAt`: an instance of the history is
//! indexed by that time, and the static attributes (`location`, `address`) and the `dateObserved`
//! family reach the entity with the latest reading's upsert.

use serde_json::{Map, Value};
use smartcity_model::codec::ngsi_ld::{self, Options};
use smartcity_model::Reading;

/// The temporal entity holding `readings` (all of one entity, oldest first) as instances.
pub(super) fn temporal_entity<'a>(readings: impl IntoIterator<Item = &'a Reading>, options: &Options) -> Value {
    let plain = Options { context: None, ..*options };
    let mut out = Map::new();
    for reading in readings {
        let Value::Object(entity) = ngsi_ld::entity(reading, &plain) else { continue };
        for (name, attribute) in entity {
            match name.as_str() {
                "id" | "type" => {
                    out.entry(name).or_insert(attribute);
                }
                _ if attribute.get("observedAt").is_some() => {
                    if let Value::Array(instances) = out.entry(name).or_insert_with(|| Value::Array(Vec::new())) {
                        instances.push(attribute);
                    }
                }
                _ => {}
            }
        }
    }
    if let Some(context) = options.context {
        out.insert("@context".into(), Value::Array(vec![Value::String(context.into())]));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use smartcity_model::codec::ngsi_ld::entity_id;
    use smartcity_model::{Catalogue, ReadingStream, SensorKind};

    #[test]
    fn every_measured_attribute_becomes_its_instances_in_order() {
        let mut stream = ReadingStream::new(Catalogue::default_ten(), 3);
        let mut batch = Vec::new();
        for t in ["2026-01-01T00:00:00Z", "2026-01-01T00:00:05Z", "2026-01-01T00:00:10Z"] {
            stream.tick_into(t.parse().unwrap(), &mut batch);
        }
        let weather: Vec<&Reading> = batch.iter().filter(|r| r.kind() == SensorKind::Weather).collect();
        let one_sensor: Vec<&Reading> =
            weather.iter().copied().filter(|r| r.sensor_id == weather[0].sensor_id).collect();
        assert_eq!(one_sensor.len(), 3);
        let e = temporal_entity(one_sensor.iter().copied(), &Options::default());
        assert_eq!(e["id"], entity_id(one_sensor[0]).as_str());
        assert_eq!(e["type"], "WeatherObserved");
        let temperature = e["temperature"].as_array().unwrap();
        let times: Vec<&str> = temperature.iter().map(|i| i["observedAt"].as_str().unwrap()).collect();
        assert_eq!(times, ["2026-01-01T00:00:00.000Z", "2026-01-01T00:00:05.000Z", "2026-01-01T00:00:10.000Z"]);
        assert!(temperature.iter().all(|i| i["type"] == "Property" && i["unitCode"] == "CEL"));
        for static_attribute in ["location", "address", "dateObserved", "@context"] {
            assert!(e.get(static_attribute).is_none(), "{static_attribute}");
        }
        let ld =
            temporal_entity(one_sensor.iter().copied(), &Options { context: Some("http://ctx"), ..Default::default() });
        assert_eq!(ld["@context"], serde_json::json!(["http://ctx"]));
    }
}
