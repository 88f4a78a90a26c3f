//! The NGSI-LD sink against the strict contract server (no NGSI-LD broker can be installed here; see
//! `smartcity_testbench::ngsi_ld_contract`): a simulator backfill in both content modes, every entity
//! read back by id and by type with its latest values; a 207 naming two failed entities leads to
//! exactly those two being sent again; a 503 is retried; a 400 is refused with its ProblemDetails and
//! counted; a 401 for a while costs a wait, no reading; Orion-LD's legacy 207 with an empty `errors`
//! list is a success.

use serde_json::Value;
use smartcity_connectors::fanout::{FanOut, QueueConfig};
use smartcity_connectors::metrics::{registry, SinkMetrics};
use smartcity_connectors::ngsi_ld::{ContentMode, NgsiLdConfig, NgsiLdSink};
use smartcity_connectors::sink::{Reason, Sink, SinkTelemetry};
use smartcity_model::codec::ngsi_ld::entity_id;
use smartcity_model::{Catalogue, Reading, ReadingStream, SensorKind};
use smartcity_testbench::ngsi_ld_contract::{ContractServer, Fault};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn config(server: &ContractServer, content: ContentMode) -> NgsiLdConfig {
    NgsiLdConfig {
        url: server.url(),
        content,
        tenant: Some("martinique".into()),
        context_url: "http://127.0.0.1:8080/ngsi-ld/context.jsonld".into(),
        token_env: String::new(),
        ..Default::default()
    }
}

fn sink(cfg: &NgsiLdConfig) -> (NgsiLdSink, SinkTelemetry) {
    let metrics = SinkMetrics::register(&registry("test"), "test");
    let telemetry = SinkTelemetry::new(&metrics, "ngsi-ld");
    (NgsiLdSink::new(cfg, telemetry.clone()).unwrap(), telemetry)
}

fn tick(stream: &mut ReadingStream, at: &str) -> Vec<Reading> {
    let mut out = Vec::new();
    stream.tick_into(at.parse().unwrap(), &mut out);
    out
}

async fn get(server: &ContractServer, path: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{}{path}", server.url()))
        .header("NGSILD-Tenant", "martinique")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A simulator backfill (the real binary's library loop and config file) into the contract server.
async fn backfill(server: &ContractServer, content: &str) -> u64 {
    let toml = format!(
        "[embedded_broker]\nenabled = false\n[[mqtt]]\nenabled = false\n[[ngsi_ld]]\nurl = \"{}\"\ncontent = \"{content}\"\ntenant = \"martinique\"\n[metrics]\nlisten = \"127.0.0.1:0\"\n[status]\ninterval_seconds = 0\n",
        server.url()
    );
    let path = std::env::temp_dir().join(smartcity_testbench::unique("ngsi-ld")).with_extension("toml");
    std::fs::write(&path, toml).unwrap();
    let mut cfg = smartcity_simulator::SimulatorConfig::load(Some(&path)).unwrap();
    cfg.simulation.from = "2026-01-13T10:00:00Z".into();
    cfg.simulation.to = "2026-01-13T10:04:55Z".into();
    cfg.validate(Some(&path)).unwrap();
    let catalogue = smartcity_simulator::build_catalogue(&cfg).unwrap();
    let summary = smartcity_simulator::run(cfg, catalogue, CancellationToken::new()).await.unwrap();
    assert_eq!(summary.unsent, 0);
    summary.published
}

#[tokio::test]
async fn a_backfill_keeps_one_entity_per_sensor_in_both_content_modes() {
    for content in ["json", "ld_json"] {
        let server = ContractServer::start(false).await;
        assert_eq!(backfill(&server, content).await, 600, "{content}: 60 ticks of ten sensors, all taken");
        // Every upsert was accepted: the contract server refuses anything off the specification.
        assert!(server.upserts().iter().all(|(_, s)| *s == 201 || *s == 204), "{content}: {:?}", server.upserts());

        let mut stream = ReadingStream::new(Catalogue::default_ten(), 42);
        let mut last = Vec::new();
        for t in 0..60 {
            last = tick(&mut stream, &format!("2026-01-13T10:{:02}:{:02}Z", t * 5 / 60, t * 5 % 60));
        }
        for reading in &last {
            let id = entity_id(reading);
            let e = get(&server, &format!("/ngsi-ld/v1/entities/{id}")).await;
            assert_eq!(e["id"], id.as_str(), "{content}");
            assert_eq!(e["type"], reading.kind().smart_data_model());
            let coords = &e["location"]["value"]["coordinates"];
            assert_eq!((coords[0].as_f64(), coords[1].as_f64()), (Some(reading.lon), Some(reading.lat)));
            // The latest values: every observedAt is the last tick.
            let observed: Vec<&str> =
                e.as_object().unwrap().values().filter_map(|a| a["observedAt"].as_str()).collect();
            assert!(
                !observed.is_empty() && observed.iter().all(|t| *t == "2026-01-13T10:04:55.000Z"),
                "{content} {id}: {observed:?}"
            );
        }
        for kind in SensorKind::ALL {
            let found = get(&server, &format!("/ngsi-ld/v1/entities?type={}", kind.smart_data_model())).await;
            let expected = last.iter().filter(|r| r.kind() == kind).count();
            assert_eq!(found.as_array().map(Vec::len), Some(expected), "{content}: entities of type {kind}");
        }
    }
}

#[tokio::test]
async fn a_207_resends_exactly_the_failed_entities_and_a_503_is_retried() {
    let server = ContractServer::start(false).await;
    let cfg = config(&server, ContentMode::Json);
    let batch: Arc<[Reading]> =
        tick(&mut ReadingStream::new(Catalogue::default_ten(), 1), "2026-01-13T11:00:00Z").into();
    let failed = vec![entity_id(&batch[2]), entity_id(&batch[7])];
    server.inject([Fault::FailEntities(failed.clone()), Fault::Unavailable]);

    let (sink, telemetry) = sink(&cfg);
    let mut fanout = FanOut::new();
    fanout.add(sink, cfg.address(), QueueConfig::default(), telemetry.clone());
    fanout.publish(batch.clone()).await;
    assert_eq!(fanout.close(Duration::from_secs(20)).await, 0);
    assert_eq!(telemetry.published_total(), 10);

    let upserts = server.upserts();
    assert_eq!(upserts.len(), 3, "{upserts:?}");
    assert_eq!((upserts[0].0.len(), upserts[0].1), (10, 207));
    assert_eq!(upserts[1], (failed.clone(), 503), "exactly the two failed entities are sent again");
    assert_eq!(upserts[2], (failed, 201), "then again after the 503");
    let traffic = batch.iter().filter(|r| r.kind() == SensorKind::Traffic).count();
    assert_eq!(
        get(&server, "/ngsi-ld/v1/entities?type=TrafficFlowObserved").await.as_array().map(Vec::len),
        Some(traffic)
    );
}

#[tokio::test]
async fn a_400_is_refused_with_its_problem_details_and_counted() {
    let server = ContractServer::start(false).await;
    let (mut sink, _) = sink(&config(&server, ContentMode::LdJson));
    let batch = tick(&mut ReadingStream::new(Catalogue::default_ten(), 2), "2026-01-13T12:00:00Z");
    server.inject([Fault::BadRequest]);
    let outcome = sink.send(&batch).await;
    assert_eq!(outcome.rejected.len(), 10, "{outcome:?}");
    let failure = outcome.failure.unwrap();
    assert_eq!(failure.reason, Reason::Rejected);
    assert!(failure.message.contains("BadRequestData") && failure.message.contains("injected"), "{}", failure.message);
    // The broker is fine again: the same batch goes through.
    assert!(sink.send(&batch).await.is_ok());
}

#[tokio::test]
async fn orion_ld_legacy_207_without_errors_is_a_success() {
    let server = ContractServer::start(true).await;
    let (mut sink, _) = sink(&config(&server, ContentMode::Json));
    let mut stream = ReadingStream::new(Catalogue::default_ten(), 3);
    let first = tick(&mut stream, "2026-01-13T13:00:00Z");
    assert!(sink.send(&first[..5]).await.is_ok());
    // Five known entities and five new ones: the legacy broker answers 207 with no errors.
    let second = tick(&mut stream, "2026-01-13T13:00:05Z");
    let outcome = sink.send(&second).await;
    assert!(outcome.is_ok() && outcome.failure.is_none(), "{outcome:?}");
    assert_eq!(server.upserts().last().map(|u| u.1), Some(207));
}

#[tokio::test]
async fn credentials_refused_for_a_while_cost_a_wait_not_a_reading() {
    // Issue 17: a 401 is about the broker (a token revoked, rotated late): nothing is dropped.
    let server = ContractServer::start(false).await;
    let cfg = config(&server, ContentMode::Json);
    let batch: Arc<[Reading]> =
        tick(&mut ReadingStream::new(Catalogue::default_ten(), 4), "2026-01-13T14:00:00Z").into();
    server.refuse_credentials(true);
    let (sink, telemetry) = sink(&cfg);
    let mut fanout = FanOut::new();
    fanout.add(sink, cfg.address(), QueueConfig::default(), telemetry.clone());
    fanout.publish(batch.clone()).await;
    let refused = || server.upserts().iter().filter(|u| u.1 == 401).count();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while refused() < 3 {
        assert!(std::time::Instant::now() < deadline, "three refused attempts: {:?}", server.upserts());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!telemetry.is_up(), "down while refused");
    server.refuse_credentials(false);
    assert_eq!(fanout.close(Duration::from_secs(30)).await, 0, "nothing left unsent");
    assert_eq!((telemetry.published_total(), telemetry.dropped_total()), (10, 0));
    let statuses: Vec<u16> = server.upserts().iter().map(|u| u.1).collect();
    assert_eq!(statuses.first(), Some(&401), "{statuses:?}");
    assert!(statuses.last().is_some_and(|s| *s < 300), "taken once accepted again: {statuses:?}");
}

#[tokio::test]
async fn scorpio_207_resends_exactly_the_failed_entities() {
    let server = ContractServer::start(false).await;
    server.answer_like_scorpio();
    let cfg = config(&server, ContentMode::Json);
    let batch: Arc<[Reading]> =
        tick(&mut ReadingStream::new(Catalogue::default_ten(), 5), "2026-01-13T15:00:00Z").into();
    let failed = vec![entity_id(&batch[4])];
    server.inject([Fault::FailEntities(failed.clone())]);
    let (sink, telemetry) = sink(&cfg);
    let mut fanout = FanOut::new();
    fanout.add(sink, cfg.address(), QueueConfig::default(), telemetry.clone());
    fanout.publish(batch.clone()).await;
    assert_eq!(fanout.close(Duration::from_secs(20)).await, 0);
    assert_eq!((telemetry.published_total(), telemetry.dropped_total()), (10, 0));
    let upserts = server.upserts();
    assert_eq!(upserts.len(), 2, "{upserts:?}");
    assert_eq!(upserts[1], (failed, 201), "exactly the failed entity is sent again");
}

#[tokio::test]
async fn check_passes_on_a_tenant_not_created_yet() {
    let server = ContractServer::start(false).await;
    let cfg =
        NgsiLdConfig { tenant: Some(smartcity_testbench::unique("new-city")), ..config(&server, ContentMode::Json) };
    let (mut sink, _) = sink(&cfg);
    let text = sink.check().await.expect("a tenant is created by its first write");
    assert!(text.contains("does not exist yet"), "{text}");
    // After the first write the tenant exists and answers like any other.
    let batch = tick(&mut ReadingStream::new(Catalogue::default_ten(), 6), "2026-01-13T16:00:00Z");
    assert!(sink.send(&batch).await.is_ok());
    let text = sink.check().await.expect("check passes");
    assert!(text.contains("answered a query"), "{text}");
}
