//! Issue 18: every reading becomes an instance of the broker's history, read back with the temporal
//! API of the strict contract server (`smartcity_testbench::ngsi_ld_contract`):
//! - a backfill of two simulated days for ten sensors, in both history modes (`upserts`,
//!   `temporal`): each entity's history holds one instance per reading, in order, no duplicate;
//! - a live simulator whose broker refuses its token for 30 s: the history has no hole after;
//! - an entity failing in a 207 holds back its later readings, so that it ends at its latest;
//! - the gateway source's catch-up pages through 1,300 entities and reads every reading back.

use serde_json::Value;
use smartcity_connectors::metrics::{registry, SinkMetrics};
use smartcity_connectors::ngsi_ld::{History, NgsiLdConfig, NgsiLdSink, NgsiLdSourceConfig, Subscriber};
use smartcity_connectors::sink::{Sink, SinkTelemetry};
use smartcity_model::codec::ngsi_ld::entity_id;
use smartcity_model::codec::ngsi_ld_read;
use smartcity_model::{Catalogue, Reading, ReadingStream};
use smartcity_testbench::ngsi_ld_contract::{ContractServer, Fault};
use std::collections::BTreeSet;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const TENANT: &str = "martinique";

async fn get(server: &ContractServer, path: &str) -> Value {
    let response = reqwest::Client::new()
        .get(format!("{}{path}", server.url()))
        .header("NGSILD-Tenant", TENANT)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.unwrap()
}

/// A simulator run (the binary's library loop and config file) into the contract server.
async fn simulate(server: &ContractServer, history: &str, interval: f64, from: &str, to: &str) -> u64 {
    let toml = format!(
        "[embedded_broker]\nenabled = false\n[[mqtt]]\nenabled = false\n[[ngsi_ld]]\nurl = \"{}\"\ntenant = \"{TENANT}\"\nhistory = \"{history}\"\nobservation_period_seconds = {interval}\n[metrics]\nlisten = \"127.0.0.1:0\"\n[status]\ninterval_seconds = 0\n",
        server.url()
    );
    let path = std::env::temp_dir().join(smartcity_testbench::unique("ngsi-ld-history")).with_extension("toml");
    std::fs::write(&path, toml).unwrap();
    let mut cfg = smartcity_simulator::SimulatorConfig::load(Some(&path)).unwrap();
    cfg.simulation.interval_seconds = interval;
    cfg.simulation.from = from.into();
    cfg.simulation.to = to.into();
    cfg.simulation.drain_seconds = 120;
    cfg.validate(Some(&path)).unwrap();
    let catalogue = smartcity_simulator::build_catalogue(&cfg).unwrap();
    let summary = smartcity_simulator::run(cfg, catalogue, CancellationToken::new()).await.unwrap();
    assert_eq!(summary.unsent, 0, "{history}: everything delivered");
    summary.published
}

/// The ten sensors' entity ids.
fn entity_ids() -> Vec<String> {
    let mut out = Vec::new();
    ReadingStream::new(Catalogue::default_ten(), 42).tick_into("2026-01-01T00:00:00Z".parse().unwrap(), &mut out);
    out.iter().map(entity_id).collect()
}

/// Checks that the history of every entity holds exactly one instance of each measured attribute
/// per tick, `step` seconds apart from `first`, in order; returns the number of ticks seen.
async fn assert_whole_history(
    server: &ContractServer,
    label: &str,
    first: chrono::DateTime<chrono::Utc>,
    step: i64,
) -> usize {
    let mut ticks = None;
    for id in entity_ids() {
        let e = get(server, &format!("/ngsi-ld/v1/temporal/entities/{id}")).await;
        let attributes: Vec<(&String, &Vec<Value>)> =
            e.as_object().unwrap().iter().filter_map(|(name, v)| v.as_array().map(|a| (name, a))).collect();
        assert!(!attributes.is_empty(), "{label} {id}: no history");
        for (name, instances) in attributes {
            let times: Vec<chrono::DateTime<chrono::Utc>> =
                instances.iter().map(|i| i["observedAt"].as_str().unwrap().parse().unwrap()).collect();
            let expected: Vec<_> =
                (0..times.len() as i64).map(|k| first + chrono::TimeDelta::seconds(k * step)).collect();
            assert_eq!(times, expected, "{label} {id} {name}: one instance per reading, in order, none twice");
            assert_eq!(*ticks.get_or_insert(times.len()), times.len(), "{label} {id} {name}: as many as the others");
        }
    }
    ticks.unwrap_or(0)
}

#[tokio::test]
async fn a_backfill_of_two_days_leaves_every_reading_in_the_history_in_both_modes() {
    let from: chrono::DateTime<chrono::Utc> = "2026-02-01T00:00:00Z".parse().unwrap();
    for history in ["upserts", "temporal"] {
        let server = ContractServer::start(false).await;
        let published = simulate(&server, history, 60.0, "2026-02-01T00:00:00Z", "2026-02-02T23:59:00Z").await;
        assert_eq!(published, 28_800, "{history}: 2,880 ticks of ten sensors");
        assert!(server.upserts().iter().all(|(_, s)| *s < 300), "{history}: every upsert accepted");
        assert!(server.temporal_posts().iter().all(|(_, _, s)| *s < 300), "{history}: every temporal POST accepted");
        let ticks = assert_whole_history(&server, history, from, 60).await;
        assert_eq!(ticks, 2_880, "{history}");
        let (upserts, temporal) = (server.upserts().len(), server.temporal_posts().len());
        match history {
            "upserts" => assert_eq!(temporal, 0),
            _ => assert!(temporal > 0 && upserts < 2_880, "{history}: older readings went by the temporal API"),
        }
        println!("{history}: {upserts} upserts, {temporal} temporal POSTs for 28,800 readings");

        // The temporal query's filters answer what they promise.
        let id = &entity_ids()[0];
        let between = get(
            &server,
            &format!(
                "/ngsi-ld/v1/temporal/entities/{id}?timerel=between&timeAt=2026-02-01T01:00:00Z&endTimeAt=2026-02-01T02:00:00Z&options=temporalValues"
            ),
        )
        .await;
        let (name, attribute) = between.as_object().unwrap().iter().find(|(_, v)| v.get("values").is_some()).unwrap();
        assert_eq!(attribute["values"].as_array().map(Vec::len), Some(60), "{history} {name}: one hour of minutes");
        let last = get(&server, &format!("/ngsi-ld/v1/temporal/entities/{id}?lastN=1")).await;
        let instance = last.as_object().unwrap().values().find_map(|v| v.as_array()).unwrap();
        assert_eq!(instance.len(), 1);
        assert_eq!(instance[0]["observedAt"], "2026-02-02T23:59:00.000Z");
        // And the entity itself ends at the latest reading.
        let current = get(&server, &format!("/ngsi-ld/v1/entities/{id}")).await;
        let observed: Vec<&str> =
            current.as_object().unwrap().values().filter_map(|a| a["observedAt"].as_str()).collect();
        assert!(observed.iter().all(|t| *t == "2026-02-02T23:59:00.000Z"), "{history}: {observed:?}");
    }
}

#[tokio::test]
async fn a_live_sink_refused_for_30_seconds_leaves_no_hole_in_the_history() {
    let start = chrono::Utc::now() + chrono::TimeDelta::seconds(2);
    let start = chrono::DateTime::from_timestamp(start.timestamp(), 0).unwrap();
    let end = start + chrono::TimeDelta::seconds(39);
    let run = |history: &'static str| async move {
        let server = ContractServer::start(false).await;
        server.refuse_credentials(true);
        let held = server.clone();
        let release = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(32)).await;
            held.refuse_credentials(false);
        });
        let fmt = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let published = simulate(&server, history, 1.0, &fmt(start), &fmt(end)).await;
        release.await.unwrap();
        assert_eq!(published, 400, "{history}: 40 ticks of ten sensors");
        let refused = server.upserts().iter().filter(|u| u.1 == 401).count()
            + server.temporal_posts().iter().filter(|p| p.2 == 401).count();
        assert!(refused >= 2, "{history}: the broker refused the token for a while ({refused} refusals)");
        let ticks = assert_whole_history(&server, history, start, 1).await;
        assert_eq!(ticks, 40, "{history}: every second of the run, including the 30 s refused");
    };
    tokio::join!(run("upserts"), run("temporal"));
}

#[tokio::test]
async fn an_entity_failing_in_a_207_holds_back_its_later_readings() {
    let server = ContractServer::start(false).await;
    let cfg = NgsiLdConfig {
        url: server.url(),
        tenant: Some(TENANT.into()),
        token_env: String::new(),
        history: History::Upserts,
        ..Default::default()
    };
    let metrics = SinkMetrics::register(&registry("test"), "test");
    let mut sink = NgsiLdSink::new(&cfg, SinkTelemetry::new(&metrics, "ngsi-ld")).unwrap();
    let mut stream = ReadingStream::new(Catalogue::default_ten(), 7);
    let mut batch: Vec<Reading> = Vec::new();
    for t in ["2026-03-01T00:00:00Z", "2026-03-01T00:00:05Z", "2026-03-01T00:00:10Z"] {
        stream.tick_into(t.parse().unwrap(), &mut batch);
    }
    let failing = entity_id(&batch[3]);
    server.inject([Fault::FailEntities(vec![failing.clone()])]);
    let outcome = sink.send(&batch).await;
    // The failing entity's three readings wait; the others' are taken.
    assert_eq!(outcome.retry, [3, 13, 23], "{outcome:?}");
    assert!(outcome.rejected.is_empty());
    let upserts = server.upserts();
    assert_eq!(upserts.len(), 3, "three rounds: {upserts:?}");
    assert!(upserts[1].0.len() == 9 && !upserts[1].0.contains(&failing), "held back after its failure: {upserts:?}");
    let again: Vec<Reading> = outcome.retry.iter().map(|&i| batch[i].clone()).collect();
    assert!(sink.send(&again).await.is_ok());
    let times = |e: &Value| -> Vec<String> {
        e.as_object().unwrap().values().filter_map(|a| a["observedAt"].as_str().map(String::from)).collect()
    };
    let current = get(&server, &format!("/ngsi-ld/v1/entities/{failing}")).await;
    assert!(times(&current).iter().all(|t| t == "2026-03-01T00:00:10.000Z"), "ends at its latest: {current}");
    let history = get(&server, &format!("/ngsi-ld/v1/temporal/entities/{failing}")).await;
    let instances = history.as_object().unwrap().values().find_map(|v| v.as_array()).unwrap();
    let seen: Vec<&str> = instances.iter().map(|i| i["observedAt"].as_str().unwrap()).collect();
    assert_eq!(seen, ["2026-03-01T00:00:00.000Z", "2026-03-01T00:00:05.000Z", "2026-03-01T00:00:10.000Z"]);
}

#[tokio::test]
async fn a_catch_up_pages_through_every_entity_and_reads_back_every_reading() {
    let server = ContractServer::start(false).await;
    let cfg =
        NgsiLdConfig { url: server.url(), tenant: Some(TENANT.into()), token_env: String::new(), ..Default::default() };
    let metrics = SinkMetrics::register(&registry("test"), "test");
    let mut sink = NgsiLdSink::new(&cfg, SinkTelemetry::new(&metrics, "ngsi-ld")).unwrap();
    // 1,300 sensors: about 217 of each kind, three pages of 100 per kind.
    let mut stream = ReadingStream::new(Catalogue::generated(1_300, 7).unwrap(), 1);
    let mut batch: Vec<Reading> = Vec::new();
    for t in ["2026-04-01T00:00:00Z", "2026-04-01T00:00:05Z"] {
        stream.tick_into(t.parse().unwrap(), &mut batch);
    }
    assert!(sink.send(&batch).await.is_ok());

    let source: NgsiLdSourceConfig =
        serde_json::from_value(serde_json::json!({"url": server.url(), "tenant": TENANT, "token_env": ""})).unwrap();
    let subscriber = Subscriber::new(&source).unwrap();
    let states = subscriber.changed_since(chrono::Utc::now() - chrono::TimeDelta::hours(1)).await.unwrap();
    let back: BTreeSet<(String, i64)> = states
        .iter()
        .map(|e| ngsi_ld_read::reading(e).unwrap_or_else(|err| panic!("{err}: {e}")))
        .map(|r| (r.sensor_id, r.observed_at.timestamp()))
        .collect();
    let want: BTreeSet<(String, i64)> =
        batch.iter().map(|r| (r.sensor_id.clone(), r.observed_at.timestamp())).collect();
    assert_eq!((states.len(), back.len()), (2_600, 2_600), "every reading once");
    assert_eq!(back, want);
    let later = subscriber.changed_since(chrono::Utc::now() + chrono::TimeDelta::minutes(1)).await.unwrap();
    assert!(later.is_empty(), "nothing modified since: {later:?}");
}
