//! `gateway reinject` on the real bench (issue 17): a run whose data InfluxDB refuses (points older
//! than the bucket's one-hour retention: a 422 about the data), its dead letters written again once
//! the operator widened the retention; InfluxDB then holds every reading, and a second re-injection
//! changes nothing.

mod common;

use common::{expected, wait_mqtt_connected, Gateway, Run, Sources};
use smartcity_testbench::bench_var;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn reinject(config: &std::path::Path, args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .args(["--config", config.to_str().unwrap(), "reinject"])
        .args(args)
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dead_letters_are_written_again_once_their_cause_is_fixed_and_only_once() {
    let run = Arc::new(Run::new("gw-reinject").await);
    let bucket = run.names.bucket();
    run.influx.set_retention(&bucket, 3600).await;
    let config =
        run.gateway_config("a", &Sources { mqtt: true, ..Default::default() }, &bench_var("BENCH_INFLUX_URL"), 1 << 30);
    let mut gw = Gateway::start(&config, "a");
    wait_mqtt_connected(&gw).await;
    // 10 sensors x 12 ticks in January: older than the bucket keeps.
    let n = run.simulate("old", 10, "2026-01-20T08:00:00Z", "2026-01-20T08:00:55Z", &run.mqtt_sink()).await as usize;
    assert_eq!(n, 120);
    let deadline = Instant::now() + Duration::from_secs(60);
    while run.dead_letters("a").len() < n {
        assert!(Instant::now() < deadline, "{} dead letters: {}", run.dead_letters("a").len(), gw.log_text());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    gw.stop();
    let dead = run.dead_letters("a");
    assert!(dead.iter().all(|d| d.reason == "rejected"), "{:?}", dead.first());
    assert!(dead[0].message.contains("422"), "InfluxDB refused the data itself: {}", dead[0].message);
    assert!(run.written().await.is_empty());

    // Before the fix, a re-injection is refused again, and says so.
    let (code, text) = reinject(&config, &["--reason", "rejected"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("120 selected, 0 written, still refused: rejected: 120"), "{text}");

    // The operator keeps data forever: the same dead letters go in, once and for all.
    run.influx.set_retention(&bucket, 0).await;
    let want = expected(&run, "old", 10, 12);
    for round in 1..=2 {
        let (code, text) = reinject(&config, &["--reason", "rejected", "--since", "2020-01-01T00:00:00Z"]);
        assert_eq!(code, Some(0), "round {round}: {text}");
        assert!(text.contains("120 selected, 120 written"), "round {round}: {text}");
        assert_eq!(run.written().await, want, "round {round}: every reading once");
        let points = run.influx.seqs(&bucket, "2020-01-01T00:00:00Z", "2030-01-01T00:00:00Z").await;
        assert_eq!(points.len(), n, "round {round}: one point per reading");
    }
    // A selection that takes nothing writes nothing.
    let (code, text) = reinject(&config, &["--reason", "syntax"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("120 dead letters read, 0 selected, 0 written"), "{text}");
}
