//! The contract server's temporal API (ETSI GS CIM 009 5.6.11, 5.7.3, 6.18, 6.19), as Stellio and
//! Scorpio serve it and the ETSI test suite checks it:
//!
//! - every accepted upsert records an instance of each attribute that has an `observedAt`;
//! - `POST /ngsi-ld/v1/temporal/entities/` takes `id`, `type` and each attribute as a non-empty
//!   array of instances (each checked like an attribute of an upsert, and needing an `observedAt`,
//!   the time the history is indexed by): 201 with a `Location` for an entity the broker did not
//!   know, 204 for one it knew. It adds to the history only, as Orion-LD's TRoE does: the entity's
//!   current state is the upserts';
//! - `GET /ngsi-ld/v1/temporal/entities/{id}` answers the instances of each attribute sorted by
//!   `observedAt`, filtered by `timerel` (`before`, `after`, `between`) with `timeAt` and
//!   `endTimeAt` (400 when one is missing or not a date-time) on `observedAt`, or on the time the
//!   server recorded the instance with `timeproperty=modifiedAt`, the last `lastN` of each,
//!   `attrs=` to choose attributes, `options=temporalValues` for `[[value, time], ...]` pairs;
//!   404 `TenantNotFound` for a tenant nothing was written into, 404 `ResourceNotFound` for an
//!   entity without history.
//!
//! The history keeps every instance it is given, duplicates included (an append-only store, as
//! TRoE and Stellio's instance tables are): a test that finds two instances at one time has found
//! a reading written twice.

use super::{
    bad, check_attribute, content_mode, has_null, problem, tenant, unauthorized, unavailable, Fault, Inner, Page,
};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// One entity's history: its type and the instances of each attribute, in arrival order.
#[derive(Debug, Default, Clone)]
pub(super) struct History {
    kind: String,
    /// Each instance with the time the server recorded it (its `modifiedAt`).
    attributes: BTreeMap<String, Vec<(Value, DateTime<Utc>)>>,
}

/// Records the instances of an accepted upserted entity.
pub(super) fn record(inner: &mut Inner, tenant: &str, entity: &Value) {
    let (Some(id), Some(obj)) = (entity.get("id").and_then(Value::as_str), entity.as_object()) else { return };
    let history = entity_history(inner, tenant, id, obj);
    for (name, attr) in obj {
        if attr.get("observedAt").is_some() {
            history.attributes.entry(name.clone()).or_default().push((attr.clone(), Utc::now()));
        }
    }
}

fn entity_history<'a>(inner: &'a mut Inner, tenant: &str, id: &str, obj: &Map<String, Value>) -> &'a mut History {
    let kind = obj.get("type").and_then(Value::as_str).unwrap_or("").to_string();
    let history = inner.history.entry(tenant.to_string()).or_default().entry(id.to_string()).or_default();
    if history.kind.is_empty() {
        history.kind = kind;
    }
    history
}

/// What a temporal entity must be: the checks of an upserted entity, with every attribute an
/// array of instances, each with its `observedAt`. The number of instances when valid.
fn check_temporal(entity: &Value, ld: bool) -> Result<usize, String> {
    let obj = entity.as_object().ok_or("a temporal entity must be a JSON object")?;
    let id = obj.get("id").and_then(Value::as_str).ok_or("`id` is missing")?;
    if !id.contains(':') || id.contains(char::is_whitespace) {
        return Err(format!("`{id}` is not a URI"));
    }
    obj.get("type").and_then(Value::as_str).filter(|t| !t.is_empty()).ok_or("`type` is missing")?;
    match (ld, obj.contains_key("@context")) {
        (true, false) => return Err("application/ld+json needs @context in the body".into()),
        (false, true) => return Err("application/json must not carry @context in the body".into()),
        _ => {}
    }
    let mut count = 0;
    for (name, instances) in obj {
        if ["id", "type", "@context"].contains(&name.as_str()) {
            continue;
        }
        let instances = instances
            .as_array()
            .filter(|a| !a.is_empty())
            .ok_or(format!("`{name}` must be a non-empty array of instances"))?;
        for instance in instances {
            check_attribute(name, instance)?;
            instance.get("observedAt").ok_or(format!("an instance of `{name}` has no observedAt"))?;
        }
        count += instances.len();
    }
    Ok(count)
}

pub(super) async fn create(State(inner): State<Arc<Mutex<Inner>>>, headers: HeaderMap, body: Bytes) -> Response {
    let ld = match content_mode(&headers) {
        Ok(ld) => ld,
        Err(refusal) => return *refusal,
    };
    let Ok(entity) = serde_json::from_slice::<Value>(&body) else { return bad("the body is not JSON") };
    if has_null(&entity) {
        return bad("JSON null is not a valid value");
    }
    let id = entity.get("id").and_then(Value::as_str).unwrap_or("").to_string();
    let mut inner = inner.lock().unwrap();
    let answer = |inner: &mut Inner, instances: usize, code: StatusCode| {
        inner.temporal_posts.push((id.clone(), instances, code.as_u16()));
    };
    if inner.refuse_credentials {
        answer(&mut inner, 0, StatusCode::UNAUTHORIZED);
        return unauthorized();
    }
    match inner.faults.pop_front() {
        Some(Fault::Unavailable) => {
            answer(&mut inner, 0, StatusCode::SERVICE_UNAVAILABLE);
            return unavailable();
        }
        Some(Fault::BadRequest) => {
            answer(&mut inner, 0, StatusCode::BAD_REQUEST);
            return bad("injected: the broker refused this entity");
        }
        // A temporal entity has no partial answer: the fault is for a batch upsert.
        Some(fault @ Fault::FailEntities(_)) => inner.faults.push_front(fault),
        None => {}
    }
    let instances = match check_temporal(&entity, ld) {
        Ok(n) => n,
        Err(why) => {
            answer(&mut inner, 0, StatusCode::BAD_REQUEST);
            return bad(why);
        }
    };
    let tenant = tenant(&headers);
    let known = inner.history.get(&tenant).is_some_and(|t| t.contains_key(&id))
        || inner.entities.get(&tenant).is_some_and(|t| t.contains_key(&id));
    let obj = entity.as_object().cloned().unwrap_or_default();
    let history = entity_history(&mut inner, &tenant, &id, &obj);
    for (name, list) in obj.into_iter().filter(|(name, _)| !["id", "type", "@context"].contains(&name.as_str())) {
        let now = Utc::now();
        let instances = list.as_array().cloned().unwrap_or_default().into_iter().map(|i| (i, now));
        history.attributes.entry(name).or_default().extend(instances);
    }
    if known {
        answer(&mut inner, instances, StatusCode::NO_CONTENT);
        StatusCode::NO_CONTENT.into_response()
    } else {
        answer(&mut inner, instances, StatusCode::CREATED);
        (StatusCode::CREATED, [("location", format!("/ngsi-ld/v1/temporal/entities/{id}"))]).into_response()
    }
}

fn time_param(params: &HashMap<String, String>, name: &str) -> Result<Option<DateTime<Utc>>, String> {
    match params.get(name) {
        None => Ok(None),
        Some(v) => v.parse::<DateTime<Utc>>().map(Some).map_err(|_| format!("`{name}` = `{v}` is not a date-time")),
    }
}

/// Which instance times a query keeps.
type Window = Box<dyn Fn(DateTime<Utc>) -> bool + Send>;

/// The time window a query asks for: instances at `t` with `keep(t)`.
fn window(params: &HashMap<String, String>) -> Result<Window, String> {
    let at = time_param(params, "timeAt")?;
    let end = time_param(params, "endTimeAt")?;
    let Some(timerel) = params.get("timerel") else { return Ok(Box::new(|_| true)) };
    let at = at.ok_or("`timerel` needs `timeAt`")?;
    match timerel.as_str() {
        "before" => Ok(Box::new(move |t| t < at)),
        "after" => Ok(Box::new(move |t| t >= at)),
        "between" => {
            let end = end.ok_or("`timerel=between` needs `endTimeAt`")?;
            Ok(Box::new(move |t| t >= at && t < end))
        }
        other => Err(format!("`timerel` = `{other}` is not before, after or between")),
    }
}

fn observed_at(instance: &Value) -> Option<DateTime<Utc>> {
    instance.get("observedAt").and_then(Value::as_str).and_then(|t| t.parse().ok())
}

/// What a temporal query asks for.
struct Ask {
    keep: Window,
    /// Filter on the server's record time (`timeproperty=modifiedAt` or `createdAt`) instead of
    /// `observedAt`.
    by_record_time: bool,
    last_n: Option<usize>,
    attrs: Option<Vec<String>>,
    values_only: bool,
}

impl Ask {
    fn read(params: &HashMap<String, String>) -> Result<Ask, String> {
        let keep = window(params)?;
        let last_n = match params.get("lastN").map(|n| n.parse::<usize>()) {
            None => None,
            Some(Ok(n)) if n > 0 => Some(n),
            Some(_) => return Err("`lastN` must be a positive integer".into()),
        };
        let attrs = params.get("attrs").map(|a| a.split(',').map(String::from).collect());
        let values_only = params.get("options").is_some_and(|o| o.split(',').any(|o| o == "temporalValues"));
        let by_record_time = match params.get("timeproperty").map(String::as_str) {
            None | Some("observedAt") => false,
            Some("modifiedAt") | Some("createdAt") => true,
            Some(other) => {
                return Err(format!("`timeproperty` = `{other}` is not observedAt, createdAt or modifiedAt"))
            }
        };
        Ok(Ask { keep, by_record_time, last_n, attrs, values_only })
    }

    /// The temporal representation of one entity's history.
    fn answer(&self, id: &str, history: &History) -> Value {
        let mut out = Map::new();
        out.insert("id".into(), json!(id));
        out.insert("type".into(), json!(history.kind));
        for (name, instances) in &history.attributes {
            if self.attrs.as_ref().is_some_and(|c| !c.contains(name)) {
                continue;
            }
            let mut kept: Vec<&Value> = instances
                .iter()
                .filter(|(i, recorded)| match self.by_record_time {
                    true => (self.keep)(*recorded),
                    false => observed_at(i).is_some_and(&self.keep),
                })
                .map(|(i, _)| i)
                .collect();
            kept.sort_by_key(|i| observed_at(i)); // stable: equal times keep their arrival order
            if let Some(n) = self.last_n {
                kept.drain(..kept.len().saturating_sub(n));
            }
            if kept.is_empty() {
                continue;
            }
            let attribute = match self.values_only {
                true => {
                    let values: Vec<Value> = kept.iter().map(|i| json!([i["value"], i["observedAt"]])).collect();
                    json!({"type": "Property", "values": values})
                }
                false => Value::Array(kept.into_iter().cloned().collect()),
            };
            out.insert(name.clone(), attribute);
        }
        Value::Object(out)
    }
}

fn known_tenant(inner: &Inner, tenant: &str) -> bool {
    tenant.is_empty() || inner.entities.contains_key(tenant) || inner.history.contains_key(tenant)
}

fn json_response(v: Value) -> Response {
    (StatusCode::OK, [("content-type", "application/json")], v.to_string()).into_response()
}

pub(super) async fn query(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let ask = match Ask::read(&params) {
        Ok(ask) => ask,
        Err(why) => return bad(why),
    };
    let inner = inner.lock().unwrap();
    let tenant = tenant(&headers);
    if !known_tenant(&inner, &tenant) {
        return problem(StatusCode::NOT_FOUND, "TenantNotFound", "Tenant not found", &tenant);
    }
    match inner.history.get(&tenant).and_then(|t| t.get(&id)) {
        Some(history) => json_response(ask.answer(&id, history)),
        None => problem(StatusCode::NOT_FOUND, "ResourceNotFound", "Entity not found", &id),
    }
}

/// `GET /ngsi-ld/v1/temporal/entities?type=...`: the history of every entity of the types (a
/// comma-separated list), those with no instance in the window left out, one page of them
/// (`limit`, `offset`); `type` is required.
pub(super) async fn query_type(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let Some(types) = params.get("type").map(|t| t.split(',').map(String::from).collect::<Vec<_>>()) else {
        return bad("a temporal query needs `type` (or other filters)");
    };
    if !params.contains_key("timerel") {
        return bad("a temporal query of several entities needs `timerel` and `timeAt`");
    }
    let (ask, page) = match Ask::read(&params).and_then(|ask| Ok((ask, Page::read(&params)?))) {
        Ok(parts) => parts,
        Err(why) => return bad(why),
    };
    let inner = inner.lock().unwrap();
    let tenant = tenant(&headers);
    if !known_tenant(&inner, &tenant) {
        return problem(StatusCode::NOT_FOUND, "TenantNotFound", "Tenant not found", &tenant);
    }
    let found: Vec<Value> = inner
        .history
        .get(&tenant)
        .map(|entities| {
            let answers = entities
                .iter()
                .filter(|(_, h)| types.contains(&h.kind))
                .map(|(id, h)| ask.answer(id, h))
                .filter(|e| e.as_object().is_some_and(|o| o.len() > 2));
            page.of(answers).collect()
        })
        .unwrap_or_default();
    json_response(Value::Array(found))
}
