//! Backfill end to end over MQTT: `from`/`to` emit every tick at once and stop by themselves, and a
//! subscriber receives every reading exactly as numbered (contiguous `seq` per sensor).

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use smartcity_connectors::mqtt::{EmbeddedBroker, EmbeddedBrokerConfig};
use smartcity_model::codec::json;
use smartcity_simulator::SimulatorConfig;
use std::collections::HashMap;
use std::net::TcpListener;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_hour_backfill_arrives_complete_and_in_sequence() {
    let port = free_port();
    let broker_cfg =
        EmbeddedBrokerConfig { listen: format!("127.0.0.1:{port}").parse().unwrap(), ..Default::default() };
    EmbeddedBroker::start(&broker_cfg).unwrap();

    // Subscribe before anything is published.
    let mut opts = MqttOptions::new("backfill-watcher", "127.0.0.1", port);
    opts.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut events) = AsyncClient::new(opts, 100);
    client.subscribe("city/sensors/#", QoS::AtLeastOnce).await.unwrap();
    loop {
        if let Event::Incoming(Packet::SubAck(_)) = events.poll().await.unwrap() {
            break;
        }
    }

    let mut cfg = SimulatorConfig::load(None).unwrap();
    cfg.embedded_broker.enabled = false;
    cfg.mqtt[0].port = port;
    cfg.metrics.listen = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    cfg.status.interval_seconds = 0;
    cfg.simulation.interval_seconds = 60.0;
    cfg.simulation.from = "2026-11-20T10:00:00Z".into();
    cfg.simulation.to = "2026-11-20T11:00:00Z".into();
    cfg.validate(None).unwrap();
    let catalogue = smartcity_simulator::build_catalogue(&cfg).unwrap();
    let summary = tokio::time::timeout(
        Duration::from_secs(30),
        smartcity_simulator::run(cfg, catalogue, CancellationToken::new()),
    )
    .await
    .expect("a backfill with `to` stops by itself")
    .unwrap();
    // 10:00 to 11:00 inclusive at 1-minute steps: 61 ticks of 10 sensors.
    assert_eq!(summary.generated, 610);
    assert_eq!(summary.published, 610, "every reading acknowledged by the broker");
    assert_eq!(summary.unsent, 0);

    let mut next_seq: HashMap<String, u64> = HashMap::new();
    let mut received = 0;
    while received < 610 {
        let Ok(event) = tokio::time::timeout(Duration::from_secs(10), events.poll()).await else {
            panic!("only {received} of 610 readings arrived");
        };
        let event = event.expect("subscriber stays connected");
        if let Event::Incoming(Packet::Publish(p)) = event {
            let r = json::decode(&p.payload).unwrap();
            let expected = next_seq.entry(r.sensor_id.clone()).or_insert(0);
            assert_eq!(r.seq, *expected, "{} out of sequence", r.sensor_id);
            *expected += 1;
            let from: chrono::DateTime<chrono::Utc> = "2026-11-20T10:00:00Z".parse().unwrap();
            let to: chrono::DateTime<chrono::Utc> = "2026-11-20T11:00:00Z".parse().unwrap();
            assert!((from..=to).contains(&r.observed_at), "{} outside the backfill range", r.observed_at);
            received += 1;
        }
    }
    assert_eq!(next_seq.len(), 10);
    assert!(next_seq.values().all(|&n| n == 61));
}
