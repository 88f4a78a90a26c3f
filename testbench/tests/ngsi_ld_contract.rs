//! The contract server refuses what Orion-LD, Stellio and the NGSI-LD specification refuse: proof that
//! a sink passing against it could not pass by being lax (each case here must fail).

use serde_json::{json, Value};
use smartcity_testbench::ngsi_ld_contract::ContractServer;

const LINK: &str = "<http://127.0.0.1:8080/ngsi-ld/context.jsonld>; rel=\"http://www.w3.org/ns/json-ld#context\"; type=\"application/ld+json\"";

fn entity() -> Value {
    json!({
        "id": "urn:ngsi-ld:WeatherObserved:wx-1",
        "type": "WeatherObserved",
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [-61.06, 14.61]}},
        "temperature": {"type": "Property", "value": 27.5, "unitCode": "CEL", "observedAt": "2026-01-13T10:00:00.000Z"}
    })
}

async fn post(server: &ContractServer, content_type: &str, links: &[&str], body: &Value) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{}/ngsi-ld/v1/entityOperations/upsert?options=update", server.url()))
        .header("Content-Type", content_type)
        .body(body.to_string());
    for l in links {
        req = req.header("Link", *l);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn refuses_what_the_brokers_refuse() {
    let s = ContractServer::start(false).await;
    let with = |f: &dyn Fn(&mut Value)| {
        let mut e = entity();
        f(&mut e);
        json!([e])
    };
    // The well-formed request is accepted (201), so every refusal below is for its one defect.
    assert_eq!(post(&s, "application/json", &[LINK], &json!([entity()])).await.0, 201);

    // Request-level refusals: 400 / 415.
    assert_eq!(post(&s, "text/plain", &[LINK], &json!([entity()])).await.0, 415);
    assert_eq!(post(&s, "application/json", &[], &json!([entity()])).await.0, 400, "no Link");
    assert_eq!(post(&s, "application/json", &[LINK, LINK], &json!([entity()])).await.0, 400, "two Links");
    let untyped = "<http://x/ctx.jsonld>; rel=\"http://www.w3.org/ns/json-ld#context\"";
    assert_eq!(
        post(&s, "application/json", &[untyped], &json!([entity()])).await.0,
        400,
        "Link without type= (Stellio)"
    );
    assert_eq!(
        post(&s, "application/ld+json", &[LINK], &with(&|e| e["@context"] = json!(["http://x"]))).await.0,
        400,
        "both"
    );
    assert_eq!(post(&s, "application/json", &[LINK], &entity()).await.0, 400, "not an array");
    assert_eq!(
        post(&s, "application/json", &[LINK], &with(&|e| e["temperature"]["value"] = Value::Null)).await.0,
        400,
        "null"
    );

    // Entity-level refusals: 207 listing the entity.
    let cases: Vec<(&str, Value)> = vec![
        ("id not a URI", with(&|e| e["id"] = json!("wx 1"))),
        ("[lat, lon]", with(&|e| e["location"]["value"]["coordinates"] = json!([14.61, -61.06]))),
        ("observedAt without Z", with(&|e| e["temperature"]["observedAt"] = json!("2026-01-13T10:00:00"))),
        (
            "no unitCode",
            with(&|e| e["temperature"].as_object_mut().unwrap().remove("unitCode").map(drop).unwrap_or(())),
        ),
        ("@context in application/json", with(&|e| e["@context"] = json!(["http://x"]))),
    ];
    for (what, body) in cases {
        let (status, answer) = post(&s, "application/json", &[LINK], &body).await;
        assert_eq!(status, 207, "{what}: {answer}");
        assert_eq!(answer["errors"].as_array().map(Vec::len), Some(1), "{what}: {answer}");
    }
    let (status, answer) = post(&s, "application/ld+json", &[], &json!([entity()])).await;
    assert_eq!((status, answer["errors"].as_array().map(Vec::len)), (207, Some(1)), "ld+json without @context");
}
