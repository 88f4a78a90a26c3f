//! Smoke test of the Pulsar client (`pulsar` crate, tokio runtime) against the bench's Pulsar 4.0 standalone
//! (scripts/services/pulsar.sh): produce N messages to a fresh persistent topic, consume them with a fresh
//! exclusive subscription, ack each one, and check content, order and count; then check through the admin
//! REST API that the broker recorded the acks (subscription backlog 0).

use std::time::Duration;

use futures::TryStreamExt;
use pulsar::consumer::{ConsumerOptions, InitialPosition};
use pulsar::{Consumer, Pulsar, SubType, TokioExecutor};
use smartcity_testbench::{bench_var, unique};
use tokio::time::timeout;

const N: usize = 25;
const STEP: Duration = Duration::from_secs(30);

#[tokio::test]
async fn produce_consume_ack_round_trip() {
    let url = bench_var("BENCH_PULSAR_URL");
    let admin = bench_var("BENCH_PULSAR_ADMIN_URL");
    let topic_name = unique("smoke");
    let topic = format!("persistent://public/default/{topic_name}");
    let subscription = unique("smoke-sub");

    let pulsar: Pulsar<_> = timeout(STEP, Pulsar::builder(url.as_str(), TokioExecutor).build())
        .await
        .unwrap_or_else(|_| panic!("connecting to {url} timed out"))
        .unwrap_or_else(|e| panic!("cannot connect to Pulsar at {url}: {e}"));

    // Subscribe first (from the earliest message), so the topic and the subscription exist before producing.
    let mut consumer: Consumer<Vec<u8>, _> = timeout(
        STEP,
        pulsar
            .consumer()
            .with_topic(&topic)
            .with_consumer_name(unique("smoke-consumer"))
            .with_subscription(&subscription)
            .with_subscription_type(SubType::Exclusive)
            .with_options(ConsumerOptions::default().with_initial_position(InitialPosition::Earliest))
            .build(),
    )
    .await
    .expect("subscribing timed out")
    .unwrap_or_else(|e| panic!("cannot subscribe {subscription} to {topic}: {e}"));

    let mut producer = timeout(STEP, pulsar.producer().with_topic(&topic).with_name(unique("smoke-producer")).build())
        .await
        .expect("creating the producer timed out")
        .unwrap_or_else(|e| panic!("cannot create a producer on {topic}: {e}"));

    let sent: Vec<Vec<u8>> = (0..N).map(|i| format!("{topic_name} message {i}").into_bytes()).collect();
    for payload in &sent {
        let receipt = timeout(STEP, async { producer.send_non_blocking(payload.clone()).await?.await })
            .await
            .expect("sending timed out")
            .unwrap_or_else(|e| panic!("send to {topic} failed: {e}"));
        assert!(receipt.message_id.is_some(), "the broker acknowledged a send without a message id: {receipt:?}");
    }

    let mut received: Vec<Vec<u8>> = Vec::with_capacity(N);
    while received.len() < N {
        let msg = timeout(STEP, consumer.try_next())
            .await
            .unwrap_or_else(|_| panic!("only {} of {N} messages arrived within {STEP:?}", received.len()))
            .unwrap_or_else(|e| panic!("consumer error: {e}"))
            .expect("consumer stream ended early");
        consumer.ack(&msg).await.unwrap_or_else(|e| panic!("ack failed: {e}"));
        received.push(msg.payload.data.clone());
    }
    assert_eq!(received, sent, "messages came back different or out of order");

    // Nothing beyond what was sent.
    match timeout(Duration::from_secs(2), consumer.try_next()).await {
        Err(_) => {}
        Ok(extra) => panic!("unexpected extra message: {:?}", extra.map(|m| m.map(|m| m.payload.data))),
    }

    // The broker saw every ack: the subscription's backlog drains to 0 (acks are sent asynchronously).
    let stats_url = format!("{admin}/admin/v2/persistent/public/default/{topic_name}/stats");
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("http client");
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let stats: serde_json::Value = http
            .get(&stats_url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {stats_url}: {e}"))
            .error_for_status()
            .unwrap_or_else(|e| panic!("GET {stats_url}: {e}"))
            .json()
            .await
            .expect("topic stats are not JSON");
        assert_eq!(
            stats["msgInCounter"].as_u64(),
            Some(N as u64),
            "broker counted a different number of messages in: {stats}"
        );
        let backlog = stats["subscriptions"][&subscription]["msgBacklog"].as_u64();
        if backlog == Some(0) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "acks not recorded by the broker within {STEP:?}: {stats}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    consumer.close().await.expect("closing the consumer");
    producer.close().await.expect("closing the producer");
}
