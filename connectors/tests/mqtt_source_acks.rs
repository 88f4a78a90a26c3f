//! The MQTT source against the embedded broker: a message acknowledged by the consumer is not
//! delivered again, and messages keep flowing.

use rumqttc::{AsyncClient, MqttOptions, QoS};
use smartcity_connectors::metrics::{registry, SourceMetrics};
use smartcity_connectors::mqtt::{EmbeddedBroker, EmbeddedBrokerConfig, MqttConfig, MqttSource};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_are_delivered_once() {
    let port = free_port();
    let broker = EmbeddedBrokerConfig { listen: format!("127.0.0.1:{port}").parse().unwrap(), ..Default::default() };
    EmbeddedBroker::start(&broker).unwrap();
    let mut cfg = MqttConfig::new("127.0.0.1", port, &format!("acks-{port}"));
    cfg.name = "mqtt".into();
    let source = MqttSource::new(cfg, SourceMetrics::register(&registry("t"), "t"));
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let stop = CancellationToken::new();
    let task = tokio::spawn(source.run(tx, stop.clone()));
    tokio::time::sleep(Duration::from_millis(500)).await;

    let (client, mut events) = AsyncClient::new(MqttOptions::new(format!("pub-{port}"), "127.0.0.1", port), 10);
    tokio::spawn(async move { while events.poll().await.is_ok() {} });
    let mut got = Vec::new();
    for i in 0..5 {
        client.publish(format!("city/sensors/traffic/m{i}"), QoS::AtLeastOnce, false, format!("{i}")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        while let Ok(m) = rx.try_recv() {
            got.push(String::from_utf8_lossy(&m.payload).into_owned());
            m.ack();
        }
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while let Ok(Some(m)) = tokio::time::timeout_at(deadline, rx.recv()).await {
        got.push(String::from_utf8_lossy(&m.payload).into_owned());
        m.ack();
    }
    assert_eq!(got, vec!["0", "1", "2", "3", "4"], "each once, in order");
    stop.cancel();
    task.await.unwrap().unwrap();
}

/// The consumer finishes messages out of order (a malformed one is set aside before the valid one
/// ahead of it is written): PUBACKs still leave in arrival order, so the broker (rumqttd, which
/// enforces MQTT 3.1.1 §4.6) redelivers nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_order_acknowledgements_cause_no_redelivery() {
    let port = free_port();
    let broker = EmbeddedBrokerConfig { listen: format!("127.0.0.1:{port}").parse().unwrap(), ..Default::default() };
    EmbeddedBroker::start(&broker).unwrap();
    let mut cfg = MqttConfig::new("127.0.0.1", port, &format!("ooo-{port}"));
    cfg.name = "mqtt".into();
    let source = MqttSource::new(cfg, SourceMetrics::register(&registry("t"), "t"));
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let stop = CancellationToken::new();
    let task = tokio::spawn(source.run(tx, stop.clone()));
    tokio::time::sleep(Duration::from_millis(500)).await;

    let (client, mut events) = AsyncClient::new(MqttOptions::new(format!("pub-{port}"), "127.0.0.1", port), 10);
    tokio::spawn(async move { while events.poll().await.is_ok() {} });
    let mut got = Vec::new();
    for round in 0..5 {
        for i in 0..2 {
            let topic = format!("city/sensors/traffic/m{round}-{i}");
            client.publish(topic, QoS::AtLeastOnce, false, format!("{round}-{i}")).await.unwrap();
        }
        let first = rx.recv().await.unwrap();
        let second = rx.recv().await.unwrap();
        got.push(String::from_utf8_lossy(&first.payload).into_owned());
        got.push(String::from_utf8_lossy(&second.payload).into_owned());
        second.ack();
        tokio::time::sleep(Duration::from_millis(150)).await;
        first.ack();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while let Ok(Some(m)) = tokio::time::timeout_at(deadline, rx.recv()).await {
        got.push(String::from_utf8_lossy(&m.payload).into_owned());
        m.ack();
    }
    let want: Vec<String> = (0..5).flat_map(|r| (0..2).map(move |i| format!("{r}-{i}"))).collect();
    assert_eq!(got, want, "each once");
    stop.cancel();
    task.await.unwrap().unwrap();
}
