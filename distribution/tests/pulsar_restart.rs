//! The Pulsar broker restarted mid-stream, keeping its data (`services.sh restart pulsar`): the
//! simulator's producer and the distribution's consumer both reconnect by themselves, and every
//! (sensor, seq) generated reaches MQTT (at least once). Alone in its file: the restart would disturb
//! any other test talking to Pulsar at the same time.

mod common;

use common::Run;
use smartcity_testbench::bench_var;
use smartcity_testbench::readback::distinct;
use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn consumption_resumes_by_itself_after_a_broker_restart() {
    let run = Run::new("dist-restart").await;
    let plain = run.mqtt_plain().await;
    let (stop, task) = run.start(run.distribution(&bench_var("BENCH_FROST_URL"), "a"));

    // A live simulator at 60x into the run's topics: 120 readings a second.
    let toml = format!(
        "[embedded_broker]\nenabled = false\n[[mqtt]]\nenabled = false\n[[pulsar]]\nurl = \"{}\"\ntopic_template = \"{}\"\n[metrics]\nlisten = \"127.0.0.1:0\"\n[status]\ninterval_seconds = 0\n",
        bench_var("BENCH_PULSAR_URL"),
        run.topic("{kind}")
    );
    let path = std::env::temp_dir().join(format!("{}-sim.toml", run.names.run));
    std::fs::write(&path, toml).unwrap();
    let mut cfg = smartcity_simulator::SimulatorConfig::load(Some(&path)).unwrap();
    cfg.simulation.speed = 60.0;
    cfg.validate(Some(&path)).unwrap();
    let catalogue = smartcity_simulator::build_catalogue(&cfg).unwrap();
    let sim_stop = CancellationToken::new();
    let sim = tokio::spawn(smartcity_simulator::run(cfg, catalogue, sim_stop.clone()));

    tokio::time::sleep(Duration::from_secs(3)).await;
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let restart = tokio::task::spawn_blocking(move || {
        Command::new("scripts/services/services.sh").args(["restart", "pulsar"]).current_dir(root).output().unwrap()
    })
    .await
    .unwrap();
    assert!(restart.status.success(), "restart: {}", String::from_utf8_lossy(&restart.stderr));
    tokio::time::sleep(Duration::from_secs(5)).await;
    sim_stop.cancel();
    let summary = sim.await.unwrap().unwrap();
    // The simulator's 10 s shutdown flush may leave readings it could not hand to Pulsar: those were
    // never in Pulsar; everything it did hand over must come out of the distribution.
    let published = summary.published;
    assert!(published >= 1000, "{summary:?}");

    let got = plain.wait_for(published as usize, Duration::from_secs(120)).await;
    let (set, dups) = distinct(&got);
    let ticks = summary.generated / 10;
    let generated: BTreeSet<(String, u64)> = smartcity_model::Catalogue::default_ten()
        .sensors()
        .iter()
        .flat_map(|s| (0..ticks).map(move |q| (s.id.to_string(), q)))
        .collect();
    assert!(set.is_subset(&generated));
    if summary.unsent == 0 {
        let missing: Vec<_> = generated.difference(&set).take(5).collect();
        assert!(missing.is_empty(), "every generated reading reached MQTT; missing (first 5): {missing:?}");
    }
    assert!(
        set.len() as u64 >= published,
        "{} distinct readings on MQTT, {published} published to Pulsar ({dups} twice)",
        set.len()
    );
    stop.cancel();
    let d = task.await.unwrap();
    assert_eq!(d.dead_letters, 0, "{d:?}");
}
