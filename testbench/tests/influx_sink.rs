//! The InfluxDB sink against the bench's real InfluxDB 2.7: the status policy where the server can be
//! made to show it (400 names one bad line: only that reading is refused, the rest written; 401 wrong
//! or inactive token and 404 missing bucket: retried, nothing refused), `check`, gzip, and idempotent
//! writes (the same reading twice is one point).

use smartcity_connectors::fanout::{FanOut, QueueConfig};
use smartcity_connectors::influxdb::{InfluxConfig, InfluxSink};
use smartcity_connectors::metrics::{registry, SinkMetrics};
use smartcity_connectors::sink::{Reason, Sink, SinkTelemetry};
use smartcity_model::{Catalogue, Reading, ReadingStream, Values};
use smartcity_testbench::readback::{distinct, Influx};
use smartcity_testbench::{bench_var, unique};
use std::time::Duration;

fn sink(bucket: &str, token: &str, gzip: bool) -> InfluxSink {
    let token_file = std::env::temp_dir().join(unique("influx-token"));
    std::fs::write(&token_file, token).unwrap();
    let cfg = InfluxConfig {
        url: bench_var("BENCH_INFLUX_URL"),
        org: bench_var("BENCH_INFLUX_ORG"),
        bucket: bucket.into(),
        token_env: String::new(),
        token_file: Some(token_file),
        gzip,
        ..Default::default()
    };
    assert!(cfg.problems().is_empty(), "{:?}", cfg.problems());
    let metrics = SinkMetrics::register(&registry("test"), "test");
    InfluxSink::new(&cfg, SinkTelemetry::new(&metrics, "influxdb")).unwrap()
}

/// Two ticks of the built-in ten sensors on 2026-01-12.
fn readings() -> Vec<Reading> {
    let mut stream = ReadingStream::new(Catalogue::default_ten(), 7);
    let mut out = Vec::new();
    for minute in 0..2 {
        stream.tick_into(format!("2026-01-12T09:0{minute}:00Z").parse().unwrap(), &mut out);
    }
    out
}

const RANGE: (&str, &str) = ("2026-01-12T00:00:00Z", "2026-01-13T00:00:00Z");

#[tokio::test]
async fn a_bad_line_is_refused_alone_and_the_rest_is_written_once() {
    let influx = Influx::default();
    let bucket = unique("influx-sink");
    influx.create_bucket(&bucket).await;
    let mut sink = sink(&bucket, &bench_var("BENCH_INFLUX_TOKEN"), true);
    let check = sink.check().await.expect("check passes with the right token and bucket");
    assert!(check.contains(&bucket), "{check}");

    let mut batch = readings();
    let bad = batch.iter().position(|r| matches!(r.values, Values::Weather(_))).expect("a weather sensor");
    if let Values::Weather(w) = &mut batch[bad].values {
        w.temperature = Some(f64::NAN); // never made by the simulator: InfluxDB refuses the line
    }
    let outcome = sink.send(&batch).await;
    assert_eq!(outcome.rejected, vec![bad], "only the NaN line is refused: {outcome:?}");
    assert_eq!(outcome.retry.len(), batch.len() - 1, "the rest goes back to be written: {outcome:?}");
    let failure = outcome.failure.expect("the 400 is reported");
    assert_eq!(failure.reason, Reason::Rejected);
    assert!(failure.message.contains("400"), "{}", failure.message);

    // The fan-out sends the rest again; then the whole batch again (a redelivery): one point each.
    let rest: Vec<Reading> = outcome.retry.iter().map(|&i| batch[i].clone()).collect();
    assert!(sink.send(&rest).await.is_ok());
    assert!(sink.send(&rest).await.is_ok());
    let (points, dups) = distinct(&influx.seqs(&bucket, RANGE.0, RANGE.1).await);
    assert_eq!((points.len(), dups), (batch.len() - 1, 0), "idempotent: written twice, stored once");
    assert!(!points.contains(&(batch[bad].sensor_id.clone(), batch[bad].seq)));
}

#[tokio::test]
async fn a_wrong_token_and_a_missing_bucket_are_the_destination_down_not_the_data() {
    // Issue 17: a token refused or a bucket missing is fixed by an operator; the readings wait.
    let batch = readings();
    let mut wrong_token = sink(&bench_var("BENCH_INFLUX_BUCKET"), "not-the-token", false);
    let outcome = wrong_token.send(&batch).await;
    assert_eq!((outcome.retry.len(), outcome.rejected.len()), (batch.len(), 0), "{outcome:?}");
    let failure = outcome.failure.expect("the 401 is reported");
    assert_eq!(failure.reason, Reason::Auth);
    assert!(
        failure.message.contains("HTTP 401") && failure.message.contains("check token_file"),
        "{}",
        failure.message
    );
    assert_eq!(wrong_token.check().await.expect_err("check fails").reason, Reason::Auth);

    let mut no_bucket = sink(&unique("no-such-bucket"), &bench_var("BENCH_INFLUX_TOKEN"), false);
    let outcome = no_bucket.send(&batch).await;
    assert_eq!((outcome.retry.len(), outcome.rejected.len()), (batch.len(), 0), "{outcome:?}");
    let failure = outcome.failure.expect("the 404 is reported");
    assert_eq!(failure.reason, Reason::Missing);
    assert!(failure.message.contains("404") && failure.message.contains("check org and bucket"), "{}", failure.message);
    let err = no_bucket.check().await.expect_err("check fails");
    assert!(err.message.contains("not found"), "{}", err.message);
}

#[tokio::test]
async fn a_token_inactive_for_a_while_costs_a_wait_not_a_reading() {
    // Issue 17, the simulator's side: the fan-out retries until the operator reactivates the token.
    let influx = Influx::default();
    let bucket = unique("influx-token-off");
    influx.create_bucket(&bucket).await;
    let (id, token) = influx.create_token(&bucket).await;
    influx.set_token_active(&id, false).await;
    let metrics = SinkMetrics::register(&registry("test"), "test");
    let telemetry = SinkTelemetry::new(&metrics, "influxdb");
    let mut fanout = FanOut::new();
    fanout.add(sink(&bucket, &token, false), "influxdb".into(), QueueConfig::default(), telemetry.clone());
    let batch = readings();
    fanout.publish(batch.clone().into()).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while telemetry.errors_total() < 3 {
        assert!(std::time::Instant::now() < deadline, "three refused attempts");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!telemetry.is_up(), "down while the token is inactive");
    let down = metrics.down.with_label_values(&["influxdb", "auth"]).get();
    assert_eq!(down, 1, "down for its credentials");
    influx.set_token_active(&id, true).await;
    assert_eq!(fanout.close(Duration::from_secs(30)).await, 0, "nothing left unsent");
    assert_eq!((telemetry.published_total(), telemetry.dropped_total()), (batch.len() as u64, 0));
    let (points, _) = distinct(&influx.seqs(&bucket, RANGE.0, RANGE.1).await);
    assert_eq!(points.len(), batch.len(), "every reading in InfluxDB");
}
