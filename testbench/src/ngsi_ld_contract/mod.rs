//! A strict NGSI-LD contract server, for tests only: no NGSI-LD broker (Orion-LD, Stellio, Scorpio)
//! can be installed on this machine from the registries it reaches, so this answers as the NGSI-LD
//! specification (ETSI GS CIM 009) and as Orion-LD and Stellio do for what our sink sends, and
//! refuses what they refuse:
//!
//! - `Content-Type` other than `application/json` / `application/ld+json`: 415.
//! - `application/json` without exactly one context `Link` header, or a Link without
//!   `type="application/ld+json"` (Stellio), or an `@context` member in an entity: 400 BadRequestData.
//! - `application/ld+json` with a context Link header, or an entity without `@context`: 400.
//! - a body that is not a JSON array: 400. A JSON `null` anywhere: 400 (Orion-LD refuses nulls).
//! - an entity whose `id` is not a URI, without `type`, whose `location` is not a GeoJSON Point in
//!   [lon, lat] order inside Martinique's bounding box, with an `observedAt` not in UTC with `Z`, or a
//!   measured Property without the `unitCode` the conventions require: reported in a 207 `errors` list.
//!
//! It keeps what it accepted (merged attribute by attribute, as `options=update` does) so that tests
//! read entities back with `GET /ngsi-ld/v1/entities/{id}` and `GET /ngsi-ld/v1/entities?type=`.
//! Faults can be injected: the next N upserts answer 503, or 400, or a 207 failing chosen entities;
//! and, while told to refuse credentials, every upsert answers 401 with `WWW-Authenticate: Bearer`
//! (RFC 6750), as the brokers' PEP proxies (Kong, Wilma) and Stellio's Keycloak answer a token that
//! is no longer valid.
//! A query naming a tenant nothing was written into yet answers 404 `TenantNotFound`, as Orion-LD
//! and Stellio do (a tenant is created by its first write). Batch errors come in the
//! specification's dialect (`entityId`, `error`) or, after [`ContractServer::answer_like_scorpio`],
//! in Scorpio's (`id`, `ProblemDetails`, no `success` when every item failed).
//! The `legacy_207` flavour answers a mixed create/update with Orion-LD's legacy 207 and an empty
//! `errors` list instead of 201.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

mod subscriptions;
mod temporal;

const CONTEXT_REL: &str = "http://www.w3.org/ns/json-ld#context";

/// Measured attributes that must carry a `unitCode` (the conventions' UN/CEFACT table).
const NEEDS_UNIT: &[&str] = &[
    "occupancy",
    "averageVehicleSpeed",
    "pm10",
    "pm25",
    "no2",
    "o3",
    "co",
    "so2",
    "LAeq",
    "LAmax",
    "LAS",
    "temperature",
    "relativeHumidity",
    "atmosphericPressure",
    "windSpeed",
    "windDirection",
    "precipitation",
    "illuminanceLevel",
    "powerConsumption",
];

/// A fault to answer instead of processing an upsert.
#[derive(Debug, Clone)]
pub enum Fault {
    /// 503 ServiceUnavailable with `Retry-After: 0`... as a busy broker.
    Unavailable,
    /// 400 with a ProblemDetails body.
    BadRequest,
    /// Process the request, but report these entity ids as failed in a 207, with a ProblemDetails
    /// about the broker (`InternalError`): the client must send exactly them again.
    FailEntities(Vec<String>),
}

#[derive(Default)]
struct Inner {
    /// Entities by tenant, then id.
    entities: HashMap<String, BTreeMap<String, Map<String, Value>>>,
    faults: VecDeque<Fault>,
    /// Every upsert received: (entity ids in the body, status answered).
    upserts: Vec<(Vec<String>, u16)>,
    legacy_207: bool,
    /// Answer batch errors as Scorpio does: `{"type", "id", "ProblemDetails"}` items, and no
    /// `success` when every item failed.
    scorpio: bool,
    /// While set, every write is refused with 401 (the client's credentials are invalid).
    refuse_credentials: bool,
    /// The temporal history by tenant, then entity id.
    history: HashMap<String, BTreeMap<String, temporal::History>>,
    /// Every temporal POST: (entity id, instances in the body, status answered).
    temporal_posts: Vec<(String, usize, u16)>,
    subscriptions: BTreeMap<String, subscriptions::Subscription>,
    next_id: u64,
    delivered: subscriptions::Delivered,
}

/// A running contract server.
#[derive(Clone)]
pub struct ContractServer {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

impl ContractServer {
    /// Starts on a free loopback port. `legacy_207`: answer mixed create/update as old Orion-LD.
    pub async fn start(legacy_207: bool) -> Self {
        let inner = Arc::new(Mutex::new(Inner { legacy_207, ..Default::default() }));
        let app = Router::new()
            .route("/ngsi-ld/v1/entityOperations/upsert", post(upsert))
            .route("/ngsi-ld/v1/entities", get(query))
            .route("/ngsi-ld/v1/entities/{id}", get(one))
            .route("/ngsi-ld/v1/temporal/entities/", post(temporal::create))
            .route("/ngsi-ld/v1/temporal/entities", get(temporal::query_type).post(temporal::create))
            .route("/ngsi-ld/v1/temporal/entities/{id}", get(temporal::query))
            .route("/ngsi-ld/v1/subscriptions", get(subscriptions::list).post(subscriptions::create))
            .route("/ngsi-ld/v1/subscriptions/", post(subscriptions::create))
            .route("/ngsi-ld/v1/subscriptions/{id}", get(subscriptions::one).delete(subscriptions::delete))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("contract server binds");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, app).await.expect("contract server runs") });
        ContractServer { addr, inner }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The next upserts answer these faults, one each, in order.
    pub fn inject(&self, faults: impl IntoIterator<Item = Fault>) {
        self.inner.lock().unwrap().faults.extend(faults);
    }

    /// From now on batch errors come in Scorpio's dialect.
    pub fn answer_like_scorpio(&self) {
        self.inner.lock().unwrap().scorpio = true;
    }

    /// From now on every upsert answers 401 (`true`), as when the client's token was revoked, or
    /// the credentials are accepted again (`false`).
    pub fn refuse_credentials(&self, refuse: bool) {
        self.inner.lock().unwrap().refuse_credentials = refuse;
    }

    /// Every upsert so far: (entity ids, status).
    pub fn upserts(&self) -> Vec<(Vec<String>, u16)> {
        self.inner.lock().unwrap().upserts.clone()
    }

    /// Every notification sent so far: (subscription id, status answered, 0 for none).
    pub fn notifications(&self) -> Vec<(String, u16)> {
        self.inner.lock().unwrap().delivered.lock().unwrap().clone()
    }

    /// The subscriptions, as created.
    pub fn subscriptions(&self) -> Vec<Value> {
        self.inner.lock().unwrap().subscriptions.values().map(|s| s.body.clone()).collect()
    }

    /// Forgets every subscription, as a broker whose database was reset.
    pub fn lose_subscriptions(&self) {
        self.inner.lock().unwrap().subscriptions.clear();
    }

    /// Every temporal POST so far: (entity id, instances in its body, status).
    pub fn temporal_posts(&self) -> Vec<(String, usize, u16)> {
        self.inner.lock().unwrap().temporal_posts.clone()
    }
}

fn problem(status: StatusCode, kind: &str, title: &str, detail: &str) -> Response {
    let body = json!({"type": format!("https://uri.etsi.org/ngsi-ld/errors/{kind}"), "title": title, "detail": detail});
    (status, [("content-type", "application/json")], body.to_string()).into_response()
}

fn bad(detail: impl Into<String>) -> Response {
    problem(StatusCode::BAD_REQUEST, "BadRequestData", "Bad request", &detail.into())
}

/// The context Link headers of a request, and whether each declares `type="application/ld+json"`.
fn context_links(headers: &HeaderMap) -> Vec<bool> {
    headers
        .get_all("link")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter(|l| l.contains(CONTEXT_REL))
        .map(|l| l.replace(' ', "").contains("type=\"application/ld+json\""))
        .collect()
}

fn tenant(headers: &HeaderMap) -> String {
    headers.get("ngsild-tenant").and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
}

fn has_null(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.iter().any(has_null),
        Value::Object(o) => o.values().any(has_null),
        _ => false,
    }
}

/// Whether a write carries its context in the body (`application/ld+json`) or in a Link header
/// (`application/json`); the brokers' refusal when the headers break the rules.
fn content_mode(headers: &HeaderMap) -> Result<bool, Box<Response>> {
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    let ld = match content_type.split(';').next().unwrap_or("").trim() {
        "application/json" => false,
        "application/ld+json" => true,
        other => {
            return Err(Box::new(problem(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "InvalidRequest",
                "Unsupported Media Type",
                other,
            )))
        }
    };
    let links = context_links(headers);
    if ld && !links.is_empty() {
        return Err(Box::new(bad("application/ld+json must not come with a JSON-LD context Link header")));
    }
    if !ld && links.len() != 1 {
        return Err(Box::new(bad(format!(
            "application/json needs exactly one context Link header, got {}",
            links.len()
        ))));
    }
    if !ld && !links[0] {
        return Err(Box::new(bad("the context Link header lacks type=\"application/ld+json\"")));
    }
    Ok(ld)
}

/// 401 as a PEP proxy or Keycloak answers a revoked token (RFC 6750).
fn unauthorized() -> Response {
    let body = json!({"error": "invalid_token", "error_description": "the access token expired"});
    let headers = [("content-type", "application/json"), ("www-authenticate", "Bearer error=\"invalid_token\"")];
    (StatusCode::UNAUTHORIZED, headers, body.to_string()).into_response()
}

/// 503 as a busy broker, to be retried at once.
fn unavailable() -> Response {
    let mut r = problem(StatusCode::SERVICE_UNAVAILABLE, "LdContextNotAvailable", "busy", "try again");
    r.headers_mut().insert("retry-after", "0".parse().expect("header"));
    r
}

async fn upsert(State(inner): State<Arc<Mutex<Inner>>>, headers: HeaderMap, body: Bytes) -> Response {
    let ld = match content_mode(&headers) {
        Ok(ld) => ld,
        Err(refusal) => return *refusal,
    };
    let Ok(parsed) = serde_json::from_slice::<Value>(&body) else { return bad("the body is not JSON") };
    let Some(entities) = parsed.as_array() else { return bad("a batch operation body must be a JSON array") };
    if has_null(&parsed) {
        return bad("JSON null is not a valid value");
    }
    let ids: Vec<String> =
        entities.iter().map(|e| e.get("id").and_then(Value::as_str).unwrap_or("").to_string()).collect();
    let mut inner = inner.lock().unwrap();
    let status = |code: StatusCode, inner: &mut Inner| inner.upserts.push((ids.clone(), code.as_u16()));
    if inner.refuse_credentials {
        status(StatusCode::UNAUTHORIZED, &mut inner);
        return unauthorized();
    }
    let fault = inner.faults.pop_front();
    match &fault {
        Some(Fault::Unavailable) => {
            status(StatusCode::SERVICE_UNAVAILABLE, &mut inner);
            return unavailable();
        }
        Some(Fault::BadRequest) => {
            status(StatusCode::BAD_REQUEST, &mut inner);
            return bad("injected: the broker refused this batch");
        }
        _ => {}
    }
    let forced: Vec<String> = match fault {
        Some(Fault::FailEntities(ids)) => ids,
        _ => Vec::new(),
    };
    let (legacy, scorpio) = (inner.legacy_207, inner.scorpio);
    let tenant = tenant(&headers);
    let mut accepted: Vec<&Value> = Vec::new();
    let store = inner.entities.entry(tenant.clone()).or_default();
    let (mut created, mut updated, mut errors) = (Vec::new(), Vec::new(), Vec::new());
    for entity in entities {
        let id = entity.get("id").and_then(Value::as_str).unwrap_or("").to_string();
        let verdict = match forced.contains(&id) {
            true => Err(("InternalError", "Internal error", 500, "injected failure".to_string())),
            false => check_entity(entity, ld).map_err(|why| ("BadRequestData", "Bad request", 400, why)),
        };
        match verdict {
            Err((kind, title, code, why)) => {
                let problem = json!({"type": format!("https://uri.etsi.org/ngsi-ld/errors/{kind}"), "title": title,
                                     "detail": why, "status": code});
                errors.push(match scorpio {
                    true => json!({"type": "Upsert", "id": id, "ProblemDetails": problem}),
                    false => json!({"entityId": id, "error": problem}),
                })
            }
            Ok(()) => {
                accepted.push(entity);
                let mut attrs = entity.as_object().cloned().unwrap_or_default();
                attrs.remove("@context");
                match store.get_mut(&id) {
                    Some(existing) => {
                        existing.extend(attrs);
                        updated.push(id);
                    }
                    None => {
                        store.insert(id.clone(), attrs);
                        created.push(id);
                    }
                }
            }
        }
    }
    // Every update is recorded in the history, as Stellio, Scorpio (autorecording) and Orion-LD
    // with TRoE do.
    for entity in accepted {
        temporal::record(&mut inner, &tenant, entity);
        let id = entity.get("id").and_then(Value::as_str).unwrap_or("");
        if let Some(current) = inner.entities.get(&tenant).and_then(|t| t.get(id)) {
            subscriptions::updated(&inner, &tenant, &Value::Object(current.clone()));
        }
    }
    let (code, body) = if !errors.is_empty() {
        let success: Vec<&String> = created.iter().chain(&updated).collect();
        let body = match scorpio && success.is_empty() {
            true => json!({"errors": errors}),
            false => json!({"success": success, "errors": errors}),
        };
        (StatusCode::MULTI_STATUS, body.to_string())
    } else if created.is_empty() {
        (StatusCode::NO_CONTENT, String::new())
    } else if legacy && !updated.is_empty() {
        let success: Vec<&String> = created.iter().chain(&updated).collect();
        (StatusCode::MULTI_STATUS, json!({"success": success, "errors": []}).to_string())
    } else {
        (StatusCode::CREATED, json!(created).to_string())
    };
    status(code, &mut inner);
    (code, [("content-type", "application/json")], body).into_response()
}

/// What the spec and the brokers require of one entity of our batch.
fn check_entity(entity: &Value, ld: bool) -> Result<(), String> {
    let obj = entity.as_object().ok_or("an entity must be a JSON object")?;
    let id = obj.get("id").and_then(Value::as_str).ok_or("`id` is missing")?;
    let scheme_ok = id.split_once(':').is_some_and(|(s, rest)| {
        !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) && !rest.is_empty()
    });
    if !scheme_ok || id.contains(char::is_whitespace) {
        return Err(format!("`{id}` is not a URI"));
    }
    obj.get("type").and_then(Value::as_str).filter(|t| !t.is_empty()).ok_or("`type` is missing")?;
    match (ld, obj.contains_key("@context")) {
        (true, false) => return Err("application/ld+json needs @context in every entity".into()),
        (false, true) => return Err("application/json must not carry @context in the body".into()),
        _ => {}
    }
    for (name, attr) in obj {
        if ["id", "type", "@context"].contains(&name.as_str()) {
            continue;
        }
        check_attribute(name, attr)?;
    }
    Ok(())
}

/// One attribute (or one instance of a temporal attribute): its NGSI-LD type and what goes with it.
fn check_attribute(name: &str, attr: &Value) -> Result<(), String> {
    let kind = attr.get("type").and_then(Value::as_str).ok_or(format!("`{name}` has no `type`"))?;
    match kind {
        "GeoProperty" => check_point(name, attr.get("value").ok_or(format!("`{name}` has no value"))?)?,
        "Property" => {
            attr.get("value").ok_or(format!("`{name}` has no value"))?;
            if NEEDS_UNIT.contains(&name) && attr.get("unitCode").and_then(Value::as_str).is_none() {
                return Err(format!("`{name}` lacks its unitCode"));
            }
        }
        "Relationship" => {
            attr.get("object").ok_or(format!("`{name}` has no object"))?;
        }
        other => return Err(format!("`{name}` has an unknown attribute type `{other}`")),
    }
    if let Some(at) = attr.get("observedAt") {
        let at = at.as_str().ok_or(format!("`{name}`.observedAt is not a string"))?;
        let utc = at.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(at).is_ok();
        if !utc {
            return Err(format!("`{name}`.observedAt `{at}` is not a UTC date-time ending in Z"));
        }
    }
    Ok(())
}

/// A GeoJSON Point in [lon, lat] order on Martinique (the city's bounding box): [lat, lon] is refused.
fn check_point(name: &str, geo: &Value) -> Result<(), String> {
    if geo.get("type").and_then(Value::as_str) != Some("Point") {
        return Err(format!("`{name}` is not a GeoJSON Point"));
    }
    let c: Vec<f64> = geo
        .get("coordinates")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default();
    match c.as_slice() {
        [lon, lat] if (-61.3..=-60.7).contains(lon) && (14.3..=14.9).contains(lat) => Ok(()),
        [a, b] => Err(format!("`{name}` [{a}, {b}] is not [lon, lat] on Martinique")),
        _ => Err(format!("`{name}` coordinates must be [lon, lat]")),
    }
}

async fn one(State(inner): State<Arc<Mutex<Inner>>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let inner = inner.lock().unwrap();
    match inner.entities.get(&tenant(&headers)).and_then(|t| t.get(&id)) {
        Some(e) => (StatusCode::OK, [("content-type", "application/json")], Value::Object(e.clone()).to_string())
            .into_response(),
        None => problem(StatusCode::NOT_FOUND, "ResourceNotFound", "Entity not found", &id),
    }
}

async fn query(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let Some(kind) = params.get("type") else { return bad("a query needs `type` (or other filters)") };
    let page = match Page::read(&params) {
        Ok(page) => page,
        Err(why) => return bad(why),
    };
    let inner = inner.lock().unwrap();
    let tenant = tenant(&headers);
    if !tenant.is_empty() && !inner.entities.contains_key(&tenant) {
        // Orion-LD and Stellio: a tenant exists once something was written into it.
        return problem(StatusCode::NOT_FOUND, "TenantNotFound", "Tenant not found", &tenant);
    }
    let found: Vec<Value> = inner
        .entities
        .get(&tenant)
        .map(|t| {
            let of_kind = t.values().filter(|e| e.get("type").and_then(Value::as_str) == Some(kind));
            page.of(of_kind).cloned().map(Value::Object).collect()
        })
        .unwrap_or_default();
    (StatusCode::OK, [("content-type", "application/json")], Value::Array(found).to_string()).into_response()
}

/// A query's page of entities (ETSI GS CIM 009 5.5.9): `limit` (default 20, at most 1000 as
/// Orion-LD allows; 400 beyond) and `offset`, over the entities in id order.
struct Page {
    limit: usize,
    offset: usize,
}

impl Page {
    fn read(params: &HashMap<String, String>) -> Result<Page, String> {
        let number = |name: &str, default: usize| match params.get(name) {
            None => Ok(default),
            Some(v) => v.parse::<usize>().map_err(|_| format!("`{name}` = `{v}` is not a number")),
        };
        let (limit, offset) = (number("limit", 20)?, number("offset", 0)?);
        if limit > 1000 {
            return Err(format!("`limit` = {limit} is over the broker's maximum of 1000"));
        }
        Ok(Page { limit, offset })
    }

    fn of<T>(&self, items: impl Iterator<Item = T>) -> impl Iterator<Item = T> {
        items.skip(self.offset).take(self.limit)
    }
}
