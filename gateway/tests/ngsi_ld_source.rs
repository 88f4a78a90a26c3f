//! Issue 18: NGSI-LD as a gateway source. Simulator → context broker (the strict contract server:
//! no NGSI-LD broker can be installed here) → subscription notifications → gateway → the real
//! InfluxDB. Every reading arrives, counted by sensor and observation time (an entity carries no
//! sequence number: its reading's `seq` is the observation time in seconds), although the gateway
//! is SIGKILLed mid-stream and the broker, like Stellio, never retries a failed notification: the
//! restarted gateway catches up from the temporal API. Also: the receiver refuses a notification
//! without the token, sets a malformed one aside, the subscription comes back when the broker
//! loses it, and the map shows the sensors.

mod common;

use common::{Gateway, Run, Sources};
use smartcity_model::{Catalogue, ReadingStream};
use smartcity_testbench::ngsi_ld_contract::ContractServer;
use smartcity_testbench::sim_config::secret_file;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const TENANT: &str = "martinique";

/// A live simulator run of the ten catalogue sensors, one reading a second, into the broker.
async fn simulate(dir: PathBuf, broker: ContractServer, from: chrono::DateTime<chrono::Utc>, seconds: i64) -> u64 {
    let toml = format!(
        "[embedded_broker]\nenabled = false\n[[mqtt]]\nenabled = false\n[[ngsi_ld]]\nurl = \"{}\"\ntenant = \"{TENANT}\"\nobservation_period_seconds = 1\n[metrics]\nlisten = \"127.0.0.1:0\"\n[status]\ninterval_seconds = 0\n",
        broker.url()
    );
    let path = dir.join("sim.toml");
    std::fs::write(&path, toml).unwrap();
    let mut cfg = smartcity_simulator::SimulatorConfig::load(Some(&path)).unwrap();
    let fmt = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    cfg.simulation.interval_seconds = 1.0;
    cfg.simulation.from = fmt(from);
    cfg.simulation.to = fmt(from + chrono::TimeDelta::seconds(seconds - 1));
    cfg.validate(Some(&path)).unwrap();
    let catalogue = smartcity_simulator::build_catalogue(&cfg).unwrap();
    let summary = smartcity_simulator::run(cfg, catalogue, CancellationToken::new()).await.unwrap();
    assert_eq!(summary.unsent, 0);
    summary.published
}

async fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// Several threads: the contract server answers while the test waits on `gateway check`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_written_into_a_broker_reach_influxdb_through_a_restart() {
    let run = Run::new("ngsild").await;
    let broker = ContractServer::start(false).await;
    let config =
        run.gateway_config("gw", &Sources::default(), &smartcity_testbench::bench_var("BENCH_INFLUX_URL"), 64 << 20);
    let text = std::fs::read_to_string(&config).unwrap();
    let port: u16 = text
        .lines()
        .find_map(|l| l.strip_prefix("listen = \"127.0.0.1:"))
        .unwrap()
        .trim_end_matches('"')
        .parse()
        .unwrap();
    let token = "notify-secret-1";
    std::fs::write(
        &config,
        format!(
            "{text}\n[[ngsi_ld]]\nurl = \"{}\"\ntenant = \"{TENANT}\"\nreceiver_url = \"http://127.0.0.1:{port}\"\nnotification_token_env = \"\"\nnotification_token_file = \"{}\"\ncheck_seconds = 2\n",
            broker.url(),
            secret_file(&run.names, "notify-token", token)
        ),
    )
    .unwrap();
    // `gateway check` reaches the broker; a tenant not written into yet is fine.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gateway"))
        .args(["check", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{table}{}", String::from_utf8_lossy(&out.stderr));
    assert!(table.lines().any(|l| l.starts_with("OK") && l.contains("ngsi_ld source")), "{table}");
    let mut gateway = Gateway::start(&config, "gw-1");
    wait_until("the subscription", Duration::from_secs(20), || broker.subscriptions().len() == 1).await;
    common::wait_metric(
        &gateway,
        "smartcity_gateway_source_connected{source=\"ngsi-ld\"}",
        1.0,
        Duration::from_secs(10),
    )
    .await;
    let subscription = &broker.subscriptions()[0];
    assert_eq!(subscription["notification"]["format"], "normalized");
    assert_eq!(subscription["entities"].as_array().map(Vec::len), Some(6), "the six kinds");

    // The receiver writes data: never without the token.
    let notify = format!("http://127.0.0.1:{port}/ngsi-ld/notify/ngsi-ld");
    let client = reqwest::Client::new();
    let refused = client.post(&notify).body("{}").send().await.unwrap();
    assert_eq!(refused.status(), 401);
    let wrong = client.post(&notify).bearer_auth("guess").body("{}").send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    // A malformed notification is set aside (a dead letter) and answered 200: sending it again
    // cannot fix it.
    let malformed = r#"{"type":"Notification","data":[{"id":"urn:ngsi-ld:Building:b1","type":"Building"}]}"#;
    let set_aside = client.post(&notify).bearer_auth(token).body(malformed).send().await.unwrap();
    assert_eq!(set_aside.status(), 200);
    let dead = run.dead_letters("gw");
    assert!(
        dead.iter().any(|d| d.reason == "kind" && d.source == "ngsi-ld"),
        "{:?}",
        dead.iter().map(|d| &d.reason).collect::<Vec<_>>()
    );

    // 40 s of ten sensors; the gateway is killed after 12 s and back 10 s later.
    let start = chrono::DateTime::from_timestamp(chrono::Utc::now().timestamp() + 2, 0).unwrap();
    let stream = tokio::spawn(simulate(run.dir.clone(), broker.clone(), start, 40));
    tokio::time::sleep(Duration::from_secs(14)).await;
    gateway.kill9();
    let failed_before = broker.notifications().iter().filter(|n| n.1 != 200).count();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let failed_while_down = broker.notifications().iter().filter(|n| n.1 != 200).count() - failed_before;
    assert!(failed_while_down >= 50, "the broker lost notifications while the gateway was down: {failed_while_down}");
    let gateway = Gateway::start(&config, "gw-2");
    let published = stream.await.unwrap();
    assert_eq!(published, 400);

    let mut want = BTreeSet::new();
    let mut first = Vec::new();
    ReadingStream::new(Catalogue::default_ten(), 42).tick_into(start, &mut first);
    for r in &first {
        for s in 0..40 {
            want.insert((r.sensor_id.clone(), (start.timestamp() + s) as u64));
        }
    }
    let got = run.wait_written(want.len(), Duration::from_secs(60)).await;
    common::assert_exactly(&want, &got);
    let log = gateway.log_text();
    assert!(log.contains("catching up on"), "the restart caught up from the temporal API: {log}");

    // The map shows the ten sensors.
    let latest: serde_json::Value =
        reqwest::get(format!("http://127.0.0.1:{port}/api/readings")).await.unwrap().json().await.unwrap();
    assert_eq!(latest.as_array().map(Vec::len), Some(10), "{latest}");

    // A broker that lost the subscription gets it again.
    broker.lose_subscriptions();
    wait_until("the subscription created again", Duration::from_secs(20), || broker.subscriptions().len() == 1).await;
}
