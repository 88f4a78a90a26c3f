//! Simulator → Pulsar → distribution → every target, on the real bench: each reading arrives on both
//! MQTT listeners (plain and mutual TLS; at least once, none missing), as FROST Observations and as
//! NGSI-LD entity updates; malformed messages end in the dead-letter topic with their reason, readable
//! through its subscription, while valid ones flow on.

mod common;

use common::{observations_per_tick, wait_for, Run};
use futures::TryStreamExt;
use smartcity_testbench::bench_var;
use smartcity_testbench::readback::distinct;
use std::collections::BTreeSet;
use std::time::Duration;

fn expected(ticks: u64) -> BTreeSet<(String, u64)> {
    smartcity_model::Catalogue::default_ten()
        .sensors()
        .iter()
        .flat_map(|s| (0..ticks).map(move |q| (s.id.to_string(), q)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_reading_reaches_every_target_and_bad_ones_are_dead_lettered() {
    let run = Run::new("dist").await;
    let frost = bench_var("BENCH_FROST_URL");
    let (plain, tls) = (run.mqtt_plain().await, run.mqtt_tls().await);
    let (stop, task) = run.start(run.distribution(&frost, "a"));

    // 30 ticks of the ten sensors.
    let n = run.simulate("2026-01-14T08:00:00Z", "2026-01-14T08:02:25Z", 1000).await;
    assert_eq!(n, 300);
    let want = expected(30);
    for (name, collector) in [("mosquitto", &plain), ("mosquitto-tls", &tls)] {
        let (set, _dups) = distinct(&collector.wait_for(n as usize, Duration::from_secs(60)).await);
        let missing: Vec<_> = want.difference(&set).take(5).collect();
        assert!(missing.is_empty() && set.len() == want.len(), "{name}: {} of {n}; missing {missing:?}", set.len());
    }
    let observations = 30 * observations_per_tick();
    let got = wait_for(observations, Duration::from_secs(90), || run.frost_observations(&frost)).await;
    assert_eq!(got, observations, "FROST holds one Observation per quantity of every reading");
    let latest: serde_json::Value =
        reqwest::get(format!("{}/ngsi-ld/v1/entities?type=WeatherObserved", run.ngsi.url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let weather = latest.as_array().expect("entities");
    assert!(!weather.is_empty());
    for e in weather {
        assert_eq!(e["temperature"]["observedAt"], "2026-01-14T08:02:25.000Z", "latest values: {e}");
    }

    // Malformed messages on the run's topics: dead-lettered with their reason; valid ones flow on.
    let client: pulsar::Pulsar<_> =
        pulsar::Pulsar::builder(bench_var("BENCH_PULSAR_URL"), pulsar::TokioExecutor).build().await.unwrap();
    let mut producer = client.producer().with_topic(run.topic("traffic")).build().await.unwrap();
    let good = plain.wait_for(0, Duration::ZERO).await.len();
    let weather_json = String::from_utf8(smartcity_model::codec::json::encode(&{
        let mut out = Vec::new();
        smartcity_model::ReadingStream::new(smartcity_model::Catalogue::default_ten(), 9)
            .tick_into("2026-01-14T09:00:00Z".parse().unwrap(), &mut out);
        out.into_iter().find(|r| r.kind() == smartcity_model::SensorKind::Weather).unwrap()
    }))
    .unwrap();
    let bad = ["not json at all".to_string(), r#"{"v":9,"id":"x"}"#.to_string(), weather_json];
    for payload in &bad {
        producer.send_non_blocking(payload.clone().into_bytes()).await.unwrap().await.unwrap();
    }
    let mut dlq: pulsar::Consumer<Vec<u8>, _> = client
        .consumer()
        .with_topic(run.dlq())
        .with_subscription(format!("{}-dlq-sub", run.names.run))
        .with_subscription_type(pulsar::SubType::Shared)
        .build()
        .await
        .unwrap();
    let mut reasons = Vec::new();
    while reasons.len() < bad.len() {
        let msg = tokio::time::timeout(Duration::from_secs(30), dlq.try_next())
            .await
            .expect("the dead letters arrive")
            .unwrap()
            .unwrap();
        let reason = msg.metadata().properties.iter().find(|p| p.key == "reason").map(|p| p.value.clone());
        reasons.push((String::from_utf8_lossy(&msg.payload.data).to_string(), reason.expect("a reason property")));
        dlq.ack(&msg).await.unwrap();
    }
    assert!(reasons.iter().any(|(p, r)| p == "not json at all" && r.starts_with("decode")), "{reasons:?}");
    assert!(reasons.iter().any(|(p, r)| p.contains("\"v\":9") && r.starts_with("decode")), "{reasons:?}");
    assert!(
        reasons.iter().any(|(p, r)| p.contains("weather") && r.starts_with("invalid")),
        "a weather reading on the traffic topic: {reasons:?}"
    );
    // Valid traffic still flows.
    let more = run.simulate("2026-01-14T08:02:30Z", "2026-01-14T08:02:35Z", 1000).await;
    assert_eq!(plain.wait_for(good + more as usize, Duration::from_secs(30)).await.len(), good + more as usize);

    stop.cancel();
    let summary = task.await.unwrap();
    assert_eq!(summary.dead_letters, 3);
    assert!(summary.delivered >= 320, "{summary:?}");
}
