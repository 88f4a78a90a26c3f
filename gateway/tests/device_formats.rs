//! Device payloads on the real bench: a The Things Stack v3 uplink, a ChirpStack v4 `up` event and
//! a SenML pack published on Mosquitto under the prefixes a network server uses, and a TTN uplink
//! produced to Kafka, each source with its `[formats.<source>]`. Read back from InfluxDB with
//! Flux: each arrives as a reading of the right kind, with its tags (sensor id, commune), fields
//! (converted into the model's units) and observation time; a real device's published uplink
//! (shared/devices, a temperature and humidity probe) arrives as a partial reading, with those two
//! fields only. Payloads that do not fit (no decoded payload, a join event, an unknown unit) become
//! dead letters with their reason.

mod common;

use common::{create_kafka_topics, wait_metric, Gateway, Run, Sources};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::json;
use smartcity_gateway::dead_letter::DeadLetterLine;
use smartcity_testbench::bench_var;
use std::collections::HashMap;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ttn_chirpstack_and_senml_payloads_reach_influxdb_and_misfits_are_dead_letters() {
    let run = Run::new("gw-dev").await;
    let r = run.names.run.clone();
    create_kafka_topics(&run).await;
    let config = run.gateway_config(
        "a",
        &Sources { mqtt: true, kafka: true, ..Default::default() },
        &bench_var("BENCH_INFLUX_URL"),
        1 << 30,
    );
    let (ttn, cs, senml) =
        (format!("test/{r}/v3/city@ttn/devices"), format!("test/{r}/application/7"), format!("test/{r}/senml"));
    let acme = format!("test/{r}/acme");
    let mut extra = String::new();
    for (name, prefix) in [("ttn", &ttn), ("chirpstack", &cs), ("senml", &senml), ("acme", &acme)] {
        extra += &format!(
            "\n[[mqtt]]\nname = \"{name}\"\nhost = \"{}\"\nport = {}\nclient_id = \"{r}-{name}\"\ntopic_prefix = \"{prefix}\"\n",
            bench_var("BENCH_MQTT_HOST"),
            bench_var("BENCH_MQTT_PORT"),
        );
    }
    // SenML carries no position here: the source's fixed one (Sainte-Anne) applies. The ChirpStack
    // device's configured position wins over its gateway's (Le Lamentin → La Trinité).
    extra += &format!(
        "\n[formats.ttn]\nformat = \"ttn\"\n[formats.ttn.devices.{r}-lht65]\nlat = 14.436\nlon = -60.882\n\n\
         [formats.chirpstack]\nformat = \"chirpstack\"\n\
         [formats.chirpstack.devices.{r}-nz]\nlat = 14.738\nlon = -60.963\n\n\
         [formats.senml]\nformat = \"senml\"\nlat = 14.436\nlon = -60.882\n\n[formats.kafka]\nformat = \"ttn\"\n\n\
         [formats.acme]\nformat = \"mapping\"\n[formats.acme.mapping]\nsensor_id_topic_segment = 3\ntime = \"ts\"\n\
         time_format = \"unix_ms\"\nseq = \"n\"\nkind_path = \"type\"\nlat = \"pos.0\"\nlon = \"pos.1\"\n\
         fields = {{ intensity = {{ path = \"flow\", unit = \"1/s\" }}, occupancy = {{ path = \"occ\", unit = \"%\" }}, \
         averageVehicleSpeed = {{ path = \"v\", unit = \"m/s\" }}, congested = {{ path = \"jam\" }} }}\n"
    );
    std::fs::write(&config, std::fs::read_to_string(&config).unwrap() + &extra).unwrap();
    let check = std::process::Command::new(env!("CARGO_BIN_EXE_gateway"))
        .args(["--config", config.to_str().unwrap(), "--check-config"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success() && said.contains("ttn reads ttn") && said.contains("senml reads senml"), "{said}");

    let gw = Gateway::start(&config, "a");
    for source in ["mqtt", "ttn", "chirpstack", "senml", "acme"] {
        let series = format!("smartcity_gateway_source_connected{{source=\"{source}\"}}");
        assert_eq!(wait_metric(&gw, &series, 1.0, Duration::from_secs(20)).await, 1.0, "{source}: {}", gw.log_text());
    }
    tokio::time::sleep(Duration::from_secs(3)).await; // the Kafka group settles

    // A TTN uplink as the MQTT integration publishes it, with a battery level the model has no
    // attribute for (ignored, the default).
    let uplink = json!({
        "end_device_ids": {"device_id": format!("{r}-wx"), "application_ids": {"application_id": "city"}},
        "received_at": "2026-06-01T10:00:00.300Z",
        "uplink_message": {"f_port": 1, "f_cnt": 5, "received_at": "2026-06-01T10:00:00.250Z",
            "decoded_payload": {"temperature": 28.5, "humidity": 74, "pressure": {"value": 101.3, "unit": "kPa"},
                "wind_speed": 5.5, "wind_direction": 80, "rain": 0.4, "battery": 3.6},
            "locations": {"user": {"latitude": 14.616, "longitude": -61.059, "source": "SOURCE_REGISTRY"}}}
    });
    // A ChirpStack `up` event with fCnt 0, which the JSON mapping leaves out.
    let event = json!({
        "deduplicationId": "3ac7e3c4-4401-4b8d-9386-a5c902f9202d", "time": "2026-06-01T10:00:01.500Z",
        "deviceInfo": {"deviceName": format!("{r} nz"), "devEui": "0102030405060708"},
        "fPort": 1, "object": {"laeq": 62.5, "lamax": 74.0, "las": 60.0},
        "rxInfo": [{"gatewayId": "0016c001f153a14c", "location": {"latitude": 14.613, "longitude": -60.999}}]
    });
    // A SenML pack of one car park at two instants (base time and +60 s), spots in `count`.
    let pack = json!([
        {"bn": format!("urn:dev:{r}:pk:"), "bt": 1_780_308_000, "n": "availableSpotNumber", "u": "count", "v": 30},
        {"n": "totalSpotNumber", "u": "count", "v": 120},
        {"n": "availableSpotNumber", "u": "count", "v": 24, "t": 60},
        {"n": "totalSpotNumber", "u": "count", "v": 120, "t": 60}
    ]);
    let mut options = rumqttc::MqttOptions::new(
        format!("{r}-pub"),
        bench_var("BENCH_MQTT_HOST"),
        bench_var("BENCH_MQTT_PORT").parse().unwrap(),
    );
    options.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut events) = rumqttc::AsyncClient::new(options, 100);
    let pump = tokio::spawn(async move { while events.poll().await.is_ok() {} });
    let publish = |topic: String, payload: Vec<u8>| {
        let client = client.clone();
        async move { client.publish(topic, rumqttc::QoS::AtLeastOnce, false, payload).await.unwrap() }
    };
    let bytes = |v: &serde_json::Value| serde_json::to_vec(v).unwrap();
    publish(format!("{ttn}/{r}-wx/up"), bytes(&uplink)).await;
    publish(format!("{cs}/device/0102030405060708/event/up"), bytes(&event)).await;
    publish(format!("{senml}/{r}-pk"), bytes(&pack)).await;
    // A published uplink of a real device (shared/devices, located in Athens by its source: the
    // device's configured position wins): a temperature and humidity probe, a partial weather reading.
    let corpus =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/devices/ttn-up-dragino-lht65.json");
    let mut lht65: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&corpus).expect("the device corpus")).unwrap();
    lht65["end_device_ids"]["device_id"] = json!(format!("{r}-lht65"));
    // Its own time is 2020; the bucket's queries and retention are about 2026.
    lht65["uplink_message"]["received_at"] = json!("2026-06-01T10:00:04Z");
    publish(format!("{ttn}/{r}-lht65/up"), bytes(&lht65)).await;
    // Any other JSON, through the mapping: a traffic counter named by its topic segment.
    let counter = json!({"type": "traffic", "ts": 1_780_308_003_000u64, "n": 77, "pos": [14.575, -60.975],
        "flow": 0.5, "occ": 41, "v": 10, "jam": false});
    publish(format!("{acme}/{r}-tf/data"), bytes(&counter)).await;
    // Misfits: an uplink whose formatter failed, a join event, a SenML unit nobody registered.
    let mut raw = uplink.clone();
    raw["uplink_message"].as_object_mut().unwrap().remove("decoded_payload");
    publish(format!("{ttn}/{r}-wx/up"), bytes(&raw)).await;
    publish(format!("{cs}/device/0102030405060708/event/join"), bytes(&event)).await;
    publish(format!("{senml}/{r}-pk"), bytes(&json!([{"bn": "x:", "n": "temperature", "u": "furlong", "v": 1}]))).await;

    // A TTN uplink through Kafka (e.g. bridged by the network server's webhook): a streetlight.
    let lamp = json!({
        "end_device_ids": {"device_id": format!("{r}-lt")}, "received_at": "2026-06-01T10:00:02Z",
        "uplink_message": {"f_cnt": 9, "decoded_payload": {"status": "ok", "powerState": "on", "illuminanceLevel": 0.8, "power": 120},
            "locations": {"frm-payload": {"latitude": 14.678, "longitude": -60.94}}}
    });
    let producer: FutureProducer =
        rdkafka::ClientConfig::new().set("bootstrap.servers", bench_var("BENCH_KAFKA_BOOTSTRAP")).create().unwrap();
    let topic = run.kafka_template().replace("{kind}", "light");
    let lamp = bytes(&lamp);
    let record = FutureRecord::<str, [u8]>::to(&topic).payload(&lamp).key("lamp");
    producer.send(record, Duration::from_secs(10)).await.map_err(|(e, _)| e).unwrap();

    let wx = points(&run, &format!("{r}-wx"), 1).await;
    assert_point(&wx[0], "weather", "Fort-de-France", "2026-06-01T10:00:00.25Z", "5");
    assert_field(&wx[0], "relativeHumidity", 0.74);
    assert_field(&wx[0], "atmosphericPressure", 1013.0);
    assert_field(&wx[0], "precipitation", 0.4);
    assert!(!wx[0].contains_key("battery"), "unknown measurements are ignored: {:?}", wx[0]);

    let lht = points(&run, &format!("{r}-lht65"), 1).await;
    assert_point(&lht[0], "weather", "Sainte-Anne", "2026-06-01T10:00:04Z", "1");
    assert_field(&lht[0], "temperature", 28.29);
    assert_field(&lht[0], "relativeHumidity", 0.886);
    for absent in ["atmosphericPressure", "windSpeed", "windDirection", "precipitation"] {
        assert!(!lht[0].contains_key(absent), "a partial reading has no `{absent}` field: {:?}", lht[0]);
    }

    let nz = points(&run, &format!("{r}-nz"), 1).await;
    assert_point(&nz[0], "noise", "La Trinité", "2026-06-01T10:00:01.5Z", "0");
    assert_field(&nz[0], "LAeq", 62.5);

    let pk = points(&run, &format!("urn-dev-{r}-pk"), 2).await;
    assert_point(&pk[0], "parking", "Sainte-Anne", "2026-06-01T10:00:00Z", "1780308000");
    assert_point(&pk[1], "parking", "Sainte-Anne", "2026-06-01T10:01:00Z", "1780308060");
    assert_field(&pk[0], "occupancy", 0.75);
    assert_field(&pk[1], "occupancy", 0.8);

    let lt = points(&run, &format!("{r}-lt"), 1).await;
    assert_point(&lt[0], "light", "Le Robert", "2026-06-01T10:00:02Z", "9");
    assert_field(&lt[0], "powerConsumption", 120.0);

    let tf = points(&run, &format!("{r}-tf"), 1).await;
    assert_point(&tf[0], "traffic", "Ducos", "2026-06-01T10:00:03Z", "77");
    assert_field(&tf[0], "intensity", 1800.0);
    assert_field(&tf[0], "occupancy", 0.41);
    assert_field(&tf[0], "averageVehicleSpeed", 36.0);

    let dead = wait_dead(&run, 3).await;
    let find = |source: &str| {
        dead.iter().find(|d| d.source == source).unwrap_or_else(|| panic!("no dead letter from {source}: {dead:?}"))
    };
    let (t, c, s) = (find("ttn"), find("chirpstack"), find("senml"));
    assert_eq!((t.reason.as_str(), c.reason.as_str(), s.reason.as_str()), ("field", "topic", "unit"), "{dead:?}");
    assert!(t.message.contains("uplink_message.decoded_payload"), "{}", t.message);
    assert!(c.message.contains("not an uplink topic"), "{}", c.message);
    assert!(s.message.contains("furlong"), "{}", s.message);
    let series = "smartcity_gateway_messages_rejected_total{reason=\"unit\",source=\"senml\"}";
    assert_eq!(gw.metric(series).await, 1.0, "{series}");
    pump.abort();
    let mut gw = gw;
    gw.stop();
}

/// The points of `sensor`, one row per time with its fields pivoted into columns, in time order;
/// waits until there are `n`.
async fn points(run: &Run, sensor: &str, n: usize) -> Vec<HashMap<String, String>> {
    let flux = format!(
        "from(bucket: \"{}\") |> range(start: 2026-01-01T00:00:00Z, stop: 2027-01-01T00:00:00Z) \
         |> filter(fn: (r) => r.sensor_id == \"{sensor}\") \
         |> pivot(rowKey: [\"_time\"], columnKey: [\"_field\"], valueColumn: \"_value\") |> group() |> sort(columns: [\"_time\"])",
        run.names.bucket()
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rows = run.influx.query(&flux).await;
        if rows.len() >= n {
            assert_eq!(rows.len(), n, "{sensor}: {rows:?}");
            return rows;
        }
        assert!(Instant::now() < deadline, "{sensor}: {} of {n} points in InfluxDB", rows.len());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn assert_point(row: &HashMap<String, String>, kind: &str, commune: &str, time: &str, seq: &str) {
    assert_eq!(row["_measurement"], kind, "{row:?}");
    assert_eq!(row["kind"], kind, "{row:?}");
    assert_eq!(row["commune"], commune, "{row:?}");
    assert_eq!(row["_time"], time, "{row:?}");
    assert_eq!(row["seq"], seq, "{row:?}");
}

fn assert_field(row: &HashMap<String, String>, field: &str, want: f64) {
    let got: f64 = row[field].parse().unwrap_or_else(|_| panic!("{field} in {row:?}"));
    assert!((got - want).abs() < 1e-9, "{field} = {got}, not {want}");
}

async fn wait_dead(run: &Run, n: usize) -> Vec<DeadLetterLine> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let dead = run.dead_letters("a");
        if dead.len() >= n || Instant::now() > deadline {
            assert_eq!(dead.len(), n, "{dead:?}");
            return dead;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
