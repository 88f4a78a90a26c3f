//! The gateway serves the JSON-LD context of the project's NGSI-LD entities, offline, with the media
//! type context brokers expect.

use smartcity_gateway::GatewayConfig;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test]
async fn serves_the_ngsi_ld_context() {
    let mut gw = GatewayConfig::load(None).unwrap();
    let http = free_port();
    gw.http.listen = format!("127.0.0.1:{http}").parse().unwrap();
    gw.mqtt[0].port = free_port();
    gw.set_data_dir(&std::env::temp_dir().join(format!("gw-context-{http}"))); // nobody there: the gateway serves HTTP regardless
    let stop = CancellationToken::new();
    let task = tokio::spawn(smartcity_gateway::run(gw, stop.clone()));
    let url = format!("http://127.0.0.1:{http}/ngsi-ld/context.jsonld");
    let mut answer = None;
    for _ in 0..100 {
        if let Ok(r) = reqwest::get(&url).await {
            answer = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = answer.expect("the gateway answers");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/ld+json");
    let doc: serde_json::Value = r.json().await.unwrap();
    assert!(doc["@context"].is_object() || doc["@context"].is_array(), "{doc}");
    assert_eq!(
        doc,
        serde_json::from_str::<serde_json::Value>(smartcity_model::codec::ngsi_ld::CONTEXT_DOCUMENT).unwrap()
    );
    stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
}
