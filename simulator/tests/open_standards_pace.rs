//! The open-standard sinks keep pace live: the real binary runs the built-in ten sensors at one
//! reading per second each for 18 s into FROST (SensorThings, the bench's real server) and an NGSI-LD
//! broker (the strict contract server: no real one can be installed here); neither queue grows, and
//! at the end every reading was taken by both.

mod common;

use common::Sim;
use smartcity_testbench::ngsi_ld_contract::ContractServer;
use smartcity_testbench::{bench_var, unique};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_sinks_keep_pace_with_ten_sensors_at_one_hertz() {
    let broker = ContractServer::start(false).await;
    let prefix = format!("{}-", unique("pace"));
    let toml = format!(
        "[embedded_broker]\nenabled = false\n[[mqtt]]\nenabled = false\n\
         [[ngsi_ld]]\nurl = \"{}\"\nobservation_period_seconds = 1.0\n\
         [[sensorthings]]\nname = \"frost\"\nurl = \"{}\"\nname_prefix = \"{prefix}\"\n[status]\ninterval_seconds = 1\n",
        broker.url(),
        bench_var("BENCH_FROST_URL")
    );
    let mut sim = Sim::start(&unique("pace"), &toml, &["--interval", "1"]);
    // The first seconds bootstrap ten Things in FROST (lookups, deep inserts: about 4 s on a cold
    // server); keeping pace is the steady state after that: at most two ticks (20 readings) waiting.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let mut worst = (0.0f64, 0.0f64);
    for _ in 0..12 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let ngsi = sim.metric("smartcity_simulator_sink_queue_readings{sink=\"ngsi-ld\"}").await;
        let sta = sim.metric("smartcity_simulator_sink_queue_readings{sink=\"frost\"}").await;
        worst = (worst.0.max(ngsi), worst.1.max(sta));
    }
    assert!(worst.0 <= 20.0 && worst.1 <= 20.0, "queues grew (ngsi-ld, frost): {worst:?}\n{}", sim.log_text());
    assert!(sim.stop(Duration::from_secs(20)).success(), "{}", sim.log_text());
    let n = sim.generated();
    assert!(n >= 170, "ten sensors at 1 Hz for 18 s: {n}");
    let log = sim.log_text();
    let last = log.lines().rev().find(|l| l.contains("stopped:")).unwrap_or_default();
    assert!(
        last.contains(&format!("ngsi-ld {n}")) && last.contains(&format!("frost {n}")),
        "both took all {n}: {last}"
    );
    assert!(last.contains("0 left unsent"), "{last}");
}
