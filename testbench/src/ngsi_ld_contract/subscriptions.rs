//! The contract server's subscriptions and notifications (ETSI GS CIM 009 5.8, 5.2.12-5.2.15,
//! 5.3.1), as Stellio does them, the strictest of the brokers for a receiver:
//!
//! - `POST /ngsi-ld/v1/subscriptions/`: `type` "Subscription", `entities` a non-empty list of
//!   `{type}`, `notification.endpoint.uri` an http(s) URI, `notification.format` `normalized` or
//!   `keyValues`, `receiverInfo` a list of `{key, value}` (the headers sent with each
//!   notification); 400 otherwise, 409 `AlreadyExists` for an id in use, else 201 with `Location`.
//! - `GET` and `DELETE /ngsi-ld/v1/subscriptions/{id}`: 200 / 204, 404 `ResourceNotFound`;
//!   `GET /ngsi-ld/v1/subscriptions`: the tenant's, 404 `TenantNotFound` for an unknown tenant.
//! - After every accepted upsert, each entity is notified to every subscription of its tenant
//!   watching its type: `{"id", "type": "Notification", "subscriptionId", "notifiedAt", "data":
//!   [entity]}` with `Content-Type: application/json`, the tenant's `NGSILD-Tenant` and the
//!   receiverInfo headers; one entity per notification, in the order of the updates.
//! - A notification that fails (no answer, or any status but 200) is not retried, as Stellio does:
//!   a receiver that was down must catch up from the temporal API.

use super::{bad, has_null, problem, tenant, Inner};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// A subscription and the queue of its notifications (sent in order by one task).
pub(super) struct Subscription {
    pub body: Value,
    pub tenant: String,
    types: Vec<String>,
    queue: mpsc::UnboundedSender<Value>,
}

/// What happened to the notifications: (subscription id, status or 0 for no answer).
pub(super) type Delivered = Arc<Mutex<Vec<(String, u16)>>>;

/// What a valid subscription says: the entity types, the endpoint, the receiverInfo headers.
struct Parsed {
    types: Vec<String>,
    uri: String,
    headers: Vec<(String, String)>,
}

fn check(body: &Value) -> Result<Parsed, String> {
    if body.get("type").and_then(Value::as_str) != Some("Subscription") {
        return Err("`type` must be \"Subscription\"".into());
    }
    let types: Vec<String> = body
        .get("entities")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|e| e.get("type").and_then(Value::as_str).map(String::from)).collect())
        .unwrap_or_default();
    if types.is_empty() {
        return Err("`entities` must list at least one entity type".into());
    }
    let notification = body.get("notification").ok_or("`notification` is missing")?;
    match notification.get("format").and_then(Value::as_str) {
        None | Some("normalized") | Some("keyValues") => {}
        Some(other) => return Err(format!("notification format `{other}` is not normalized or keyValues")),
    }
    let endpoint = notification.get("endpoint").ok_or("`notification.endpoint` is missing")?;
    let uri = endpoint.get("uri").and_then(Value::as_str).ok_or("`endpoint.uri` is missing")?;
    if !(uri.starts_with("http://") || uri.starts_with("https://")) {
        return Err(format!("endpoint uri `{uri}` is not http(s)"));
    }
    let mut headers = Vec::new();
    if let Some(info) = endpoint.get("receiverInfo") {
        for item in info.as_array().ok_or("`receiverInfo` must be an array")? {
            match (item.get("key").and_then(Value::as_str), item.get("value").and_then(Value::as_str)) {
                (Some(k), Some(v)) => headers.push((k.to_string(), v.to_string())),
                _ => return Err("each receiverInfo item needs a string `key` and `value`".into()),
            }
        }
    }
    Ok(Parsed { types, uri: uri.to_string(), headers })
}

pub(super) async fn create(State(inner): State<Arc<Mutex<Inner>>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(refusal) = super::content_mode(&headers) {
        return *refusal;
    }
    let Ok(mut body) = serde_json::from_slice::<Value>(&body) else { return bad("the body is not JSON") };
    if has_null(&body) {
        return bad("JSON null is not a valid value");
    }
    let Parsed { types, uri, headers: receiver_headers } = match check(&body) {
        Ok(parts) => parts,
        Err(why) => return bad(why),
    };
    let mut inner = inner.lock().unwrap();
    if inner.refuse_credentials {
        return super::unauthorized();
    }
    inner.next_id += 1;
    let id = match body.get("id").and_then(Value::as_str) {
        Some(id) => id.to_string(),
        None => format!("urn:ngsi-ld:Subscription:{}", inner.next_id),
    };
    if inner.subscriptions.contains_key(&id) {
        return problem(StatusCode::CONFLICT, "AlreadyExists", "Already exists", &id);
    }
    body["id"] = json!(id);
    let tenant = tenant(&headers);
    let (queue, notifications) = mpsc::unbounded_channel();
    tokio::spawn(notify(id.clone(), uri, receiver_headers, tenant.clone(), notifications, inner.delivered.clone()));
    inner.subscriptions.insert(id.clone(), Subscription { body, tenant, types, queue });
    (StatusCode::CREATED, [("location", format!("/ngsi-ld/v1/subscriptions/{id}"))]).into_response()
}

/// `GET /ngsi-ld/v1/subscriptions`: the tenant's subscriptions; 404 `TenantNotFound` for a tenant
/// nothing was written into, as Orion-LD answers.
pub(super) async fn list(State(inner): State<Arc<Mutex<Inner>>>, headers: HeaderMap) -> Response {
    let inner = inner.lock().unwrap();
    let tenant = tenant(&headers);
    let known = tenant.is_empty()
        || inner.entities.contains_key(&tenant)
        || inner.subscriptions.values().any(|s| s.tenant == tenant);
    if !known {
        return problem(StatusCode::NOT_FOUND, "TenantNotFound", "Tenant not found", &tenant);
    }
    let mine: Vec<&Value> = inner.subscriptions.values().filter(|s| s.tenant == tenant).map(|s| &s.body).collect();
    (StatusCode::OK, [("content-type", "application/json")], serde_json::to_string(&mine).unwrap_or_default())
        .into_response()
}

pub(super) async fn one(State(inner): State<Arc<Mutex<Inner>>>, Path(id): Path<String>) -> Response {
    match inner.lock().unwrap().subscriptions.get(&id) {
        Some(s) => (StatusCode::OK, [("content-type", "application/json")], s.body.to_string()).into_response(),
        None => problem(StatusCode::NOT_FOUND, "ResourceNotFound", "Subscription not found", &id),
    }
}

pub(super) async fn delete(State(inner): State<Arc<Mutex<Inner>>>, Path(id): Path<String>) -> Response {
    match inner.lock().unwrap().subscriptions.remove(&id) {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => problem(StatusCode::NOT_FOUND, "ResourceNotFound", "Subscription not found", &id),
    }
}

/// Queues a notification of `entity` (its state after the update) for every subscription
/// watching it.
pub(super) fn updated(inner: &Inner, tenant: &str, entity: &Value) {
    let kind = entity.get("type").and_then(Value::as_str).unwrap_or("");
    for (id, s) in &inner.subscriptions {
        if s.tenant == tenant && s.types.iter().any(|t| t == kind) {
            let notification = json!({
                "id": format!("urn:ngsi-ld:Notification:{}", uuid_like()),
                "type": "Notification",
                "subscriptionId": id,
                "notifiedAt": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "data": [entity],
            });
            let _ = s.queue.send(notification);
        }
    }
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("{:016x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Sends one subscription's notifications in order, once each.
async fn notify(
    id: String,
    uri: String,
    headers: Vec<(String, String)>,
    tenant: String,
    mut queue: mpsc::UnboundedReceiver<Value>,
    delivered: Delivered,
) {
    let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(10)).build().expect("client");
    while let Some(notification) = queue.recv().await {
        let mut request = client.post(&uri).header("content-type", "application/json").body(notification.to_string());
        if !tenant.is_empty() {
            request = request.header("NGSILD-Tenant", &tenant);
        }
        for (k, v) in &headers {
            request = request.header(k, v);
        }
        let status = match request.send().await {
            Ok(r) => r.status().as_u16(),
            Err(_) => 0,
        };
        delivered.lock().unwrap().push((id.clone(), status));
    }
}
