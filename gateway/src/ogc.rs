//! OGC API – Features (Part 1: Core, with GeoJSON) under `/ogc`: the latest reading of every sensor
//! as the collection `sensors`, so that QGIS, GDAL (`ogrinfo OAPIF:http://127.0.0.1:8080/ogc`) or
//! MapStore load the city's sensors with their latest values.
//!
//! - `GET /ogc`: landing page; `GET /ogc/conformance`; `GET /ogc/collections`; `GET /ogc/collections/sensors`.
//! - `GET /ogc/collections/sensors/items?limit=&offset=&bbox=&datetime=`: a GeoJSON FeatureCollection
//!   (`application/geo+json`) paged with `next`/`prev` links.
//! - `GET /ogc/collections/sensors/items/{id}`: one Feature, or 404.
//! - `GET /ogc/api`: the OpenAPI 3.0 definition; `GET /ogc/collections/sensors/schema`: the JSON
//!   Schema of a feature (GDAL and QGIS type the fields from it, whatever page they look at first).
//!
//! Conformance classes claimed: Core, GeoJSON and OpenAPI 3.0; no HTML encoding (`f=html` and
//! browsers get JSON). Coordinates are CRS84 (lon, lat). Links are absolute, built from the
//! request's `Host` (and `X-Forwarded-Proto`), so they work for whoever asked.

use crate::state::CityState;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use smartcity_model::codec::json as wire;
use smartcity_model::{Commune, Reading, Sensor, SensorKind};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};

/// The one collection: every sensor, as a point with its latest reading.
pub const COLLECTION: &str = "sensors";
/// Martinique (lon, lat): the collection's spatial extent, widened if a sensor lies outside it.
pub const MARTINIQUE_BBOX: [f64; 4] = [-61.25, 14.38, -60.80, 14.89];
pub const CRS84: &str = "http://www.opengis.net/def/crs/OGC/1.3/CRS84";
const GREGORIAN: &str = "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian";
/// What this API implements, and nothing more.
pub const CONFORMANCE: [&str; 3] = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
];
pub const DEFAULT_LIMIT: usize = 100;
/// A larger `limit` is served as this one (the standard allows either that or a 400).
pub const MAX_LIMIT: usize = 10_000;
const JSON: &str = "application/json";
const GEOJSON: &str = "application/geo+json";
const OPENAPI: &str = "application/vnd.oai.openapi+json;version=3.0";
const JSON_SCHEMA: &str = "application/schema+json";
const ITEMS_PARAMS: &[&str] = &["limit", "offset", "bbox", "bbox-crs", "datetime", "f"];

type Params = Query<Vec<(String, String)>>;

pub fn router(state: Arc<CityState>) -> Router {
    Router::new()
        .route("/ogc", get(landing))
        .route("/ogc/", get(landing))
        .route("/ogc/api", get(api))
        .route("/ogc/conformance", get(conformance))
        .route("/ogc/collections", get(collections))
        .route("/ogc/collections/{collection}", get(collection))
        .route("/ogc/collections/{collection}/items", get(items))
        .route("/ogc/collections/{collection}/items/{id}", get(item))
        .route("/ogc/collections/{collection}/schema", get(schema))
        .with_state(state)
}

/// An OGC API exception: a status and a JSON body `{"code", "description"}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub description: String,
}

impl ApiError {
    fn bad_request(description: String) -> Self {
        ApiError { status: StatusCode::BAD_REQUEST, code: "InvalidParameterValue", description }
    }
    fn not_found(description: String) -> Self {
        ApiError { status: StatusCode::NOT_FOUND, code: "NotFound", description }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"code": self.code, "description": self.description});
        (self.status, [(header::CONTENT_TYPE, JSON)], body.to_string()).into_response()
    }
}

/// A bounding box in CRS84 degrees. `min_lon > max_lon` crosses the antimeridian.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BBox {
    pub min_lon: f64,
    pub min_lat: f64,
    pub max_lon: f64,
    pub max_lat: f64,
}

impl BBox {
    /// `minLon,minLat,maxLon,maxLat`, or the 3D form `minLon,minLat,minZ,maxLon,maxLat,maxZ`
    /// (heights ignored: our sensors have none).
    pub fn parse(text: &str) -> Result<BBox, String> {
        let expected = "expected minLon,minLat,maxLon,maxLat in degrees, e.g. bbox=-61.10,14.55,-60.95,14.65";
        let numbers: Option<Vec<f64>> =
            text.split(',').map(|n| n.trim().parse::<f64>().ok().filter(|x| x.is_finite())).collect();
        let numbers = numbers.ok_or_else(|| format!("bbox `{text}`: {expected}"))?;
        let (min_lon, min_lat, max_lon, max_lat) = match numbers[..] {
            [a, b, c, d] => (a, b, c, d),
            [a, b, _, d, e, _] => (a, b, d, e),
            _ => return Err(format!("bbox `{text}` has {} numbers: {expected}", numbers.len())),
        };
        if ![min_lon, max_lon].iter().all(|x| (-180.0..=180.0).contains(x)) {
            return Err(format!("bbox `{text}`: longitudes must be within -180..180"));
        }
        if ![min_lat, max_lat].iter().all(|y| (-90.0..=90.0).contains(y)) {
            return Err(format!("bbox `{text}`: latitudes must be within -90..90"));
        }
        if min_lat > max_lat {
            return Err(format!("bbox `{text}`: minLat {min_lat} is above maxLat {max_lat}"));
        }
        Ok(BBox { min_lon, min_lat, max_lon, max_lat })
    }

    pub fn contains(&self, lon: f64, lat: f64) -> bool {
        let lon_in = if self.min_lon <= self.max_lon {
            (self.min_lon..=self.max_lon).contains(&lon)
        } else {
            lon >= self.min_lon || lon <= self.max_lon
        };
        lon_in && (self.min_lat..=self.max_lat).contains(&lat)
    }
}

/// `datetime`: an instant or a closed or half-open interval (`start/end`, `../end`, `start/..`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
}

impl Interval {
    pub fn parse(text: &str) -> Result<Interval, String> {
        // A `+` of a time zone offset arrives as a space when the client did not percent-encode it.
        let text = text.trim().replace(' ', "+");
        let bound = |t: &str| -> Result<Option<DateTime<Utc>>, String> {
            if t.is_empty() || t == ".." {
                return Ok(None);
            }
            let example = "e.g. 2026-11-21T12:00:00Z, or an interval start/end with `..` for an open end";
            DateTime::parse_from_rfc3339(t)
                .map(|d| Some(d.with_timezone(&Utc)))
                .map_err(|_| format!("datetime `{text}`: `{t}` is not an RFC 3339 time ({example})"))
        };
        match text.split_once('/') {
            None => match bound(&text)? {
                Some(t) => Ok(Interval { start: Some(t), end: Some(t) }),
                None => Err(format!("datetime `{text}`: an instant or an interval start/end is expected")),
            },
            Some((a, b)) => {
                let (start, end) = (bound(a)?, bound(b)?);
                if let (Some(s), Some(e)) = (start, end) {
                    if s > e {
                        return Err(format!("datetime `{text}`: the interval ends before it starts"));
                    }
                }
                Ok(Interval { start, end })
            }
        }
    }

    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.start.is_none_or(|s| t >= s) && self.end.is_none_or(|e| t <= e)
    }
}

/// The query of `/items`, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemsQuery {
    pub limit: usize,
    pub offset: usize,
    pub bbox: Option<BBox>,
    pub datetime: Option<Interval>,
    /// The filters and format as the client gave them, repeated in the paging links.
    pub keep: Vec<(String, String)>,
}

impl Default for ItemsQuery {
    fn default() -> Self {
        ItemsQuery { limit: DEFAULT_LIMIT, offset: 0, bbox: None, datetime: None, keep: Vec::new() }
    }
}

impl ItemsQuery {
    pub fn parse(params: &[(String, String)]) -> Result<ItemsQuery, String> {
        let mut q = ItemsQuery::default();
        let mut seen = BTreeSet::new();
        for (key, value) in params {
            if !seen.insert(key.as_str()) {
                return Err(format!("parameter `{key}` is given more than once"));
            }
            match key.as_str() {
                "limit" => q.limit = parse_limit(value)?,
                "offset" => {
                    q.offset = value
                        .trim()
                        .parse()
                        .map_err(|_| format!("offset `{value}`: expected a whole number, 0 or more"))?
                }
                "bbox" => q.bbox = Some(BBox::parse(value)?),
                "bbox-crs" if value.trim() == CRS84 => {}
                "bbox-crs" => return Err(format!("bbox-crs `{value}`: only {CRS84} is supported")),
                "datetime" => q.datetime = Some(Interval::parse(value)?),
                "f" => check_format(value)?,
                other => return Err(unknown_parameter(other, ITEMS_PARAMS)),
            }
            if !matches!(key.as_str(), "limit" | "offset") {
                q.keep.push((key.clone(), value.clone()));
            }
        }
        Ok(q)
    }

    pub fn matches(&self, r: &Reading) -> bool {
        self.bbox.is_none_or(|b| b.contains(r.lon, r.lat)) && self.datetime.is_none_or(|d| d.contains(r.observed_at))
    }

    /// The URL of the page at `offset` of this query.
    pub fn url(&self, items: &str, offset: usize) -> String {
        let mut url = format!("{items}?");
        for (k, v) in &self.keep {
            let _ = write!(url, "{}={}&", encode(k), encode(v));
        }
        let _ = write!(url, "limit={}&offset={offset}", self.limit);
        url
    }
}

fn parse_limit(value: &str) -> Result<usize, String> {
    match value.trim().parse::<u64>() {
        Ok(0) | Err(_) => Err(format!("limit `{value}`: expected a whole number from 1 to {MAX_LIMIT}")),
        Ok(n) => Ok(n.min(MAX_LIMIT as u64) as usize),
    }
}

/// `f`: `json` (or `geojson`); `html` is accepted and answered with JSON too.
fn check_format(value: &str) -> Result<(), String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "json" | "geojson" | "html" => Ok(()),
        _ => Err(format!("f `{value}`: this API speaks JSON only (f=json)")),
    }
}

fn unknown_parameter(name: &str, known: &[&str]) -> String {
    format!("unknown parameter `{name}` (this resource takes: {})", known.join(", "))
}

/// Parameters of the resources other than `/items`: only `f`.
fn only_format(params: &[(String, String)]) -> Result<(), String> {
    for (key, value) in params {
        match key.as_str() {
            "f" => check_format(value)?,
            other => return Err(unknown_parameter(other, &["f"])),
        }
    }
    Ok(())
}

/// Percent-encodes a query component.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~,:".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Which records of `matched` a page shows, and the offsets of the pages around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub start: usize,
    pub end: usize,
    pub next: Option<usize>,
    pub prev: Option<usize>,
}

pub fn page(matched: usize, offset: usize, limit: usize) -> Page {
    let start = offset.min(matched);
    let end = start.saturating_add(limit).min(matched);
    Page { start, end, next: (end < matched).then_some(end), prev: (offset > 0).then(|| offset.saturating_sub(limit)) }
}

/// The API root, absolute (`http://host:port/ogc`), from the request's `Host` and `X-Forwarded-Proto`.
pub fn base_url(headers: &HeaderMap) -> String {
    let valid_host = |h: &&str| {
        !h.is_empty() && h.len() <= 255 && h.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:[]_".contains(&b))
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).filter(valid_host).unwrap_or("localhost");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .map(|p| p.split(',').next().unwrap_or_default().trim())
        .filter(|p| *p == "https")
        .unwrap_or("http");
    format!("{scheme}://{host}/ogc")
}

fn link(href: &str, rel: &str, media_type: &str, title: &str) -> Value {
    json!({"href": href, "rel": rel, "type": media_type, "title": title})
}

pub fn landing_page(base: &str) -> Value {
    json!({
        "title": "Martinique smart city — live sensors",
        "description": "OGC API – Features of the Martinique smart-city gateway: every sensor (traffic, air quality, \
            parking, noise, weather, street lights) as a point with its latest reading.",
        "links": [
            link(base, "self", JSON, "This document"),
            link(&format!("{base}/api"), "service-desc", OPENAPI, "The API definition (OpenAPI 3.0)"),
            link(&format!("{base}/conformance"), "conformance", JSON, "Conformance classes implemented"),
            link(&format!("{base}/collections"), "data", JSON, "The collections: sensors"),
        ],
    })
}

pub fn conformance_doc() -> Value {
    json!({ "conformsTo": CONFORMANCE })
}

/// Martinique's box, widened to every sensor.
pub fn spatial_extent(readings: &[Reading]) -> [f64; 4] {
    readings
        .iter()
        .fold(MARTINIQUE_BBOX, |[x0, y0, x1, y1], r| [x0.min(r.lon), y0.min(r.lat), x1.max(r.lon), y1.max(r.lat)])
}

pub fn collection_doc(base: &str, readings: &[Reading]) -> Value {
    let first = readings.iter().map(|r| r.observed_at).min().map(wire::format_time);
    let last = readings.iter().map(|r| r.observed_at).max().map(wire::format_time);
    let here = format!("{base}/collections/{COLLECTION}");
    json!({
        "id": COLLECTION,
        "title": "Sensors",
        "description": "Every sensor of the city as a point, with its kind, commune, the time and sequence number \
            of its latest reading and that reading's values (units: docs/wire-format.md).",
        "extent": {
            "spatial": {"bbox": [spatial_extent(readings)], "crs": CRS84},
            "temporal": {"interval": [[first, last]], "trs": GREGORIAN},
        },
        "itemType": "feature",
        "crs": [CRS84],
        "links": [
            link(&here, "self", JSON, "This collection"),
            link(&format!("{here}/items"), "items", GEOJSON, "The sensors with their latest reading"),
            // The standard spelling, and the one GDAL (3.6) looks for, compared case-sensitively (RFC 8288
            // relation types are case-insensitive, so both name the same relation).
            link(&format!("{here}/schema"), "describedby", JSON_SCHEMA, "JSON Schema of a sensor feature"),
            link(&format!("{here}/schema"), "describedBy", JSON_SCHEMA, "JSON Schema of a sensor feature"),
        ],
    })
}

/// One sensor as a GeoJSON point: `kind`, `commune`, `observedAt`, `seq` and every value of the
/// reading, flattened from the wire format's `values` object.
pub fn feature(r: &Reading) -> Value {
    let mut doc: Map<String, Value> = serde_json::from_slice(&wire::encode(r)).unwrap_or_default();
    let mut properties = Map::new();
    for (from, to) in [("type", "kind"), ("commune", "commune"), ("observedAt", "observedAt"), ("seq", "seq")] {
        if let Some(v) = doc.remove(from) {
            properties.insert(to.to_string(), v);
        }
    }
    if let Some(Value::Object(values)) = doc.remove("values") {
        for (k, v) in values {
            properties.entry(k).or_insert(v);
        }
    }
    json!({
        "type": "Feature",
        "id": r.sensor_id,
        "geometry": {"type": "Point", "coordinates": [r.lon, r.lat]},
        "properties": properties,
    })
}

/// One page of the sensors that match `q`, as a GeoJSON FeatureCollection with its paging links.
pub fn feature_collection(readings: &[Reading], q: &ItemsQuery, base: &str, now: DateTime<Utc>) -> Value {
    let matched: Vec<&Reading> = readings.iter().filter(|r| q.matches(r)).collect();
    let p = page(matched.len(), q.offset, q.limit);
    let features: Vec<Value> = matched[p.start..p.end].iter().copied().map(feature).collect();
    let collection = format!("{base}/collections/{COLLECTION}");
    let items = format!("{collection}/items");
    let mut links = vec![link(&q.url(&items, q.offset), "self", GEOJSON, "This page")];
    if let Some(next) = p.next {
        links.push(link(&q.url(&items, next), "next", GEOJSON, "Next page"));
    }
    if let Some(prev) = p.prev {
        links.push(link(&q.url(&items, prev), "prev", GEOJSON, "Previous page"));
    }
    links.push(link(&collection, "collection", JSON, "The sensors collection"));
    json!({
        "type": "FeatureCollection",
        "timeStamp": wire::format_time(now),
        "numberMatched": matched.len(),
        "numberReturned": features.len(),
        "features": features,
        "links": links,
    })
}

/// The JSON type of a wire value: what a client should make of the field.
fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
        Value::Null => "null",
    }
}

/// The JSON Schema of a sensor feature. The value properties are typed from one reading of each
/// kind encoded in the wire format, so the schema cannot drift from what `/items` serves.
pub fn feature_schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let mut properties = Map::new();
        let kinds: Vec<&str> = SensorKind::ALL.iter().map(|k| k.as_str()).collect();
        let communes: Vec<&str> = Commune::ALL.iter().map(|c| c.name()).collect();
        properties.insert("kind".into(), json!({"type": "string", "enum": kinds}));
        properties.insert("commune".into(), json!({"type": "string", "enum": communes}));
        properties.insert("observedAt".into(), json!({"type": "string", "format": "date-time"}));
        properties.insert("seq".into(), json!({"type": "integer", "minimum": 0}));
        let sim = smartcity_model::dynamics::Simulation::new(0);
        let t = DateTime::<Utc>::UNIX_EPOCH;
        for kind in SensorKind::ALL {
            let sensor = Sensor::new("schema", kind, Commune::FortDeFrance, 14.6, -61.06, None);
            let f = feature(&sim.reading(&sensor, t, 0));
            for (k, v) in f["properties"].as_object().into_iter().flatten() {
                let description = format!("{} sensors", kind.as_str());
                let declared = json!({"type": json_type(v), "description": description});
                properties.entry(k.clone()).or_insert(declared);
            }
        }
        json!({
            "$schema": "https://json-schema.org/draft/2019-09/schema",
            "title": "Sensor",
            "description": "A sensor of the city with its latest reading: the properties after `seq` are the \
                reading's values, those of its kind only (units: docs/wire-format.md).",
            "type": "object",
            "required": ["type", "id", "geometry", "properties"],
            "properties": {
                "type": {"type": "string", "enum": ["Feature"]},
                "id": {"type": "string", "description": "The sensor id"},
                "geometry": {
                    "type": "object",
                    "required": ["type", "coordinates"],
                    "properties": {
                        "type": {"type": "string", "enum": ["Point"]},
                        "coordinates": {"type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "number"}},
                    },
                },
                "properties": {
                    "type": "object",
                    "required": ["kind", "commune", "observedAt", "seq"],
                    "properties": properties,
                },
            },
        })
    })
}

/// The OpenAPI 3.0 definition of this API, served at `/ogc/api`.
pub fn openapi_doc(base: &str) -> Value {
    let content = |media_type: &str, schema: Value| json!({ media_type: {"schema": schema} });
    let ok = |description: &str, media_type: &str, schema: Value| {
        json!({"200": {"description": description, "content": content(media_type, schema)},
               "400": {"$ref": "#/components/responses/InvalidParameter"}})
    };
    let object = json!({"type": "object"});
    let f = json!({"$ref": "#/components/parameters/f"});
    let operation = |id: &str, summary: &str, parameters: Value, responses: Value| {
        let get = json!({"operationId": id, "summary": summary, "parameters": parameters, "responses": responses});
        json!({ "get": get })
    };
    let mut item = ok("The sensor", GEOJSON, json!({"$ref": "#/components/schemas/sensor"}));
    item["404"] = json!({"$ref": "#/components/responses/NotFound"});
    let mut items = ok("A page of sensors", GEOJSON, json!({"$ref": "#/components/schemas/featureCollection"}));
    items["404"] = json!({"$ref": "#/components/responses/NotFound"});
    let param = |name: &str, description: &str, schema: Value| {
        json!({"name": name, "in": "query", "required": false, "description": description, "schema": schema,
               "style": "form", "explode": false})
    };
    let exception =
        json!({"description": "An error", "content": content(JSON, json!({"$ref": "#/components/schemas/exception"}))});
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Martinique smart city — live sensors (OGC API – Features)",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Every sensor of the city as a GeoJSON point with its latest reading.",
            "license": {"name": "Apache-2.0"},
        },
        "servers": [{"url": base}],
        "paths": {
            "/": operation("getLandingPage", "Landing page", json!([f]), ok("Links to the API", JSON, object.clone())),
            "/api": operation("getApi", "This API definition", json!([f]), ok("OpenAPI 3.0", OPENAPI, object.clone())),
            "/conformance": operation("getConformance", "Conformance classes", json!([f]),
                ok("The classes implemented", JSON, json!({"type": "object", "required": ["conformsTo"],
                    "properties": {"conformsTo": {"type": "array", "items": {"type": "string"}}}}))),
            "/collections": operation("getCollections", "The collections", json!([f]),
                ok("The collections", JSON, object.clone())),
            "/collections/sensors": operation("describeSensors", "The sensors collection", json!([f]),
                ok("The collection", JSON, object.clone())),
            "/collections/sensors/items": operation("getSensors", "The sensors with their latest reading",
                json!([
                    {"$ref": "#/components/parameters/limit"},
                    param("offset", "How many matching sensors to skip (the `next`/`prev` links carry it)",
                        json!({"type": "integer", "minimum": 0, "default": 0})),
                    {"$ref": "#/components/parameters/bbox"},
                    param("bbox-crs", "The CRS of `bbox`: CRS84 only",
                        json!({"type": "string", "format": "uri", "enum": [CRS84]})),
                    {"$ref": "#/components/parameters/datetime"},
                    f,
                ]),
                items),
            "/collections/sensors/items/{featureId}": operation("getSensor", "One sensor with its latest reading",
                json!([
                    {"name": "featureId", "in": "path", "required": true, "description": "The sensor id",
                        "schema": {"type": "string"}},
                    f,
                ]),
                item),
            "/collections/sensors/schema": operation("getSensorSchema", "JSON Schema of a sensor feature", json!([f]),
                ok("JSON Schema", JSON_SCHEMA, object)),
        },
        "components": {
            "parameters": {
                "f": param("f", "The encoding: JSON (`html` is answered with JSON too)",
                    json!({"type": "string", "enum": ["json", "geojson", "html"]})),
                "limit": param("limit", "Sensors per page (a larger value is served as 10000)",
                    json!({"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT})),
                "bbox": param("bbox", "minLon,minLat,maxLon,maxLat (CRS84), or minLon,minLat,minZ,maxLon,maxLat,maxZ",
                    json!({"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}})),
                "datetime": param("datetime", "An instant or an interval start/end (`..` for an open end), RFC 3339: \
                    sensors whose latest reading was observed then", json!({"type": "string"})),
            },
            "responses": {
                "InvalidParameter": exception.clone(),
                "NotFound": exception,
            },
            "schemas": {
                "exception": {"type": "object", "required": ["code"],
                    "properties": {"code": {"type": "string"}, "description": {"type": "string"}}},
                "link": {"type": "object", "required": ["href"], "properties": {"href": {"type": "string"},
                    "rel": {"type": "string"}, "type": {"type": "string"}, "title": {"type": "string"}}},
                "sensor": schema_for_openapi(),
                "featureCollection": {
                    "type": "object",
                    "required": ["type", "features"],
                    "properties": {
                        "type": {"type": "string", "enum": ["FeatureCollection"]},
                        "features": {"type": "array", "items": {"$ref": "#/components/schemas/sensor"}},
                        "links": {"type": "array", "items": {"$ref": "#/components/schemas/link"}},
                        "timeStamp": {"type": "string", "format": "date-time"},
                        "numberMatched": {"type": "integer", "minimum": 0},
                        "numberReturned": {"type": "integer", "minimum": 0},
                    },
                },
            },
        },
    })
}

/// The feature schema as an OpenAPI 3.0 schema object (which takes no `$schema`).
fn schema_for_openapi() -> Value {
    let mut schema = feature_schema().clone();
    if let Some(o) = schema.as_object_mut() {
        o.remove("$schema");
        o.remove("title");
    }
    schema
}

fn respond(result: Result<Value, ApiError>, media_type: &'static str) -> Response {
    match result {
        Ok(doc) => ([(header::CONTENT_TYPE, media_type)], doc.to_string()).into_response(),
        Err(e) => e.into_response(),
    }
}

fn known_collection(id: &str) -> Result<(), ApiError> {
    if id == COLLECTION {
        Ok(())
    } else {
        Err(ApiError::not_found(format!("no collection `{id}` (there is one: `{COLLECTION}`)")))
    }
}

async fn landing(headers: HeaderMap, Query(params): Params) -> Response {
    let doc = only_format(&params).map_err(ApiError::bad_request).map(|()| landing_page(&base_url(&headers)));
    respond(doc, JSON)
}

async fn api(headers: HeaderMap, Query(params): Params) -> Response {
    respond(only_format(&params).map_err(ApiError::bad_request).map(|()| openapi_doc(&base_url(&headers))), OPENAPI)
}

async fn schema(Path(id): Path<String>, Query(params): Params) -> Response {
    let doc = known_collection(&id).and_then(|()| only_format(&params).map_err(ApiError::bad_request));
    respond(doc.map(|()| feature_schema().clone()), JSON_SCHEMA)
}

async fn conformance(Query(params): Params) -> Response {
    respond(only_format(&params).map_err(ApiError::bad_request).map(|()| conformance_doc()), JSON)
}

async fn collections(State(state): State<Arc<CityState>>, headers: HeaderMap, Query(params): Params) -> Response {
    let doc = only_format(&params).map_err(ApiError::bad_request).map(|()| {
        let base = base_url(&headers);
        json!({
            "links": [link(&format!("{base}/collections"), "self", JSON, "The collections")],
            "collections": [collection_doc(&base, &state.latest())],
        })
    });
    respond(doc, JSON)
}

async fn collection(
    State(state): State<Arc<CityState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(params): Params,
) -> Response {
    let doc = known_collection(&id)
        .and_then(|()| only_format(&params).map_err(ApiError::bad_request))
        .map(|()| collection_doc(&base_url(&headers), &state.latest()));
    respond(doc, JSON)
}

async fn items(
    State(state): State<Arc<CityState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(params): Params,
) -> Response {
    let doc = known_collection(&id)
        .and_then(|()| ItemsQuery::parse(&params).map_err(ApiError::bad_request))
        .map(|q| feature_collection(&state.latest(), &q, &base_url(&headers), Utc::now()));
    respond(doc, GEOJSON)
}

async fn item(
    State(state): State<Arc<CityState>>,
    headers: HeaderMap,
    Path((collection, id)): Path<(String, String)>,
    Query(params): Params,
) -> Response {
    let doc = known_collection(&collection)
        .and_then(|()| only_format(&params).map_err(ApiError::bad_request))
        .and_then(|()| {
            // The history ends with the latest reading.
            let latest = state.history(&id).and_then(|h| h.last().cloned());
            latest.ok_or_else(|| ApiError::not_found(format!("no sensor `{id}` seen yet")))
        })
        .map(|r| {
            let base = base_url(&headers);
            let mut f = feature(&r);
            let collection = format!("{base}/collections/{COLLECTION}");
            let here = format!("{collection}/items/{}", encode(&r.sensor_id));
            f["links"] = json!([
                link(&here, "self", GEOJSON, "This sensor"),
                link(&collection, "collection", JSON, "The sensors collection"),
            ]);
            f
        });
    respond(doc, GEOJSON)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use smartcity_model::{dynamics::Simulation, Catalogue};

    fn readings() -> Vec<Reading> {
        let t = Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).unwrap();
        let sim = Simulation::new(3);
        let cat = Catalogue::default_ten();
        cat.sensors()
            .iter()
            .enumerate()
            .map(|(i, s)| sim.reading(s, t + chrono::Duration::minutes(i as i64), 7))
            .collect()
    }

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn pages_have_next_and_prev_where_there_is_more() {
        assert_eq!(page(10, 0, 100), Page { start: 0, end: 10, next: None, prev: None });
        assert_eq!(page(10, 0, 3), Page { start: 0, end: 3, next: Some(3), prev: None });
        assert_eq!(page(10, 3, 3), Page { start: 3, end: 6, next: Some(6), prev: Some(0) });
        assert_eq!(page(10, 9, 3), Page { start: 9, end: 10, next: None, prev: Some(6) });
        assert_eq!(page(10, 2, 3).prev, Some(0), "prev never goes below 0");
        assert_eq!(page(10, 50, 3), Page { start: 10, end: 10, next: None, prev: Some(47) });
        assert_eq!(page(0, 0, 100), Page { start: 0, end: 0, next: None, prev: None });
        assert_eq!(page(5, 0, usize::MAX).end, 5, "no overflow");
    }

    #[test]
    fn bbox_parses_checks_and_contains() {
        let b = BBox::parse("-61.1, 14.55,-60.95,14.65").unwrap();
        assert_eq!(b, BBox { min_lon: -61.1, min_lat: 14.55, max_lon: -60.95, max_lat: 14.65 });
        assert!(b.contains(-61.0, 14.6));
        assert!(b.contains(-61.1, 14.55), "edges are inside");
        assert!(!b.contains(-61.2, 14.6));
        assert!(!b.contains(-61.0, 14.7));
        let b3 = BBox::parse("-61.1,14.55,0,-60.95,14.65,100").unwrap();
        assert_eq!(b3, b, "3D boxes drop the heights");
        let across = BBox::parse("170,-20,-170,20").unwrap();
        assert!(across.contains(175.0, 0.0) && across.contains(-175.0, 0.0) && !across.contains(0.0, 0.0));
        for (bad, why) in [
            ("", "minLon,minLat,maxLon,maxLat"),
            ("1,2,3", "has 3 numbers"),
            ("a,b,c,d", "minLon,minLat,maxLon,maxLat"),
            ("-61,14,-60,NaN", "minLon,minLat,maxLon,maxLat"),
            ("-61,14,-60,inf", "minLon,minLat,maxLon,maxLat"),
            ("-200,14,-60,15", "longitudes"),
            ("-61,14,-60,95", "latitudes"),
            ("-61,15,-60,14", "minLat 15 is above maxLat 14"),
        ] {
            let e = BBox::parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn datetime_instants_and_intervals() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let i = Interval::parse("2026-11-21T12:00:00Z/2026-11-21T13:00:00Z").unwrap();
        assert!(i.contains(t("2026-11-21T12:30:00Z")) && !i.contains(t("2026-11-21T13:00:01Z")));
        let open = Interval::parse("../2026-11-21T12:00:00Z").unwrap();
        assert!(open.start.is_none() && open.contains(t("2000-01-01T00:00:00Z")));
        assert!(Interval::parse("2026-11-21T12:00:00Z/").unwrap().end.is_none());
        let instant = Interval::parse("2026-11-21T08:00:00-04:00").unwrap();
        assert!(instant.contains(t("2026-11-21T12:00:00Z")));
        // The `+` of an offset that the client left unencoded arrives as a space.
        assert!(Interval::parse("2026-11-21T16:00:00 04:00").unwrap().contains(t("2026-11-21T12:00:00Z")));
        assert!(Interval::parse("yesterday").unwrap_err().contains("RFC 3339"));
        assert!(Interval::parse("..").is_err());
        assert!(Interval::parse("2026-11-21T13:00:00Z/2026-11-21T12:00:00Z").unwrap_err().contains("ends before"));
    }

    #[test]
    fn items_query_defaults_limits_and_refusals() {
        let q = ItemsQuery::parse(&[]).unwrap();
        assert_eq!((q.limit, q.offset, q.bbox, q.datetime), (DEFAULT_LIMIT, 0, None, None));
        assert_eq!(ItemsQuery::parse(&params(&[("limit", "99999")])).unwrap().limit, MAX_LIMIT);
        let q = ItemsQuery::parse(&params(&[("limit", "5"), ("offset", "10"), ("f", "json")])).unwrap();
        assert_eq!((q.limit, q.offset), (5, 10));
        assert!(ItemsQuery::parse(&params(&[("f", "html")])).is_ok(), "HTML asked, JSON served");
        assert!(ItemsQuery::parse(&params(&[("bbox-crs", CRS84)])).is_ok());
        for (bad, why) in [
            (("limit", "0"), "from 1 to 10000"),
            (("limit", "-3"), "from 1 to 10000"),
            (("limit", "ten"), "from 1 to 10000"),
            (("offset", "x"), "offset `x`"),
            (("bbox", "1,2"), "bbox `1,2`"),
            (("bbox-crs", "http://www.opengis.net/def/crs/EPSG/0/4326"), "only"),
            (("f", "xml"), "JSON only"),
            (("colour", "red"), "unknown parameter `colour`"),
        ] {
            let e = ItemsQuery::parse(&params(&[bad])).unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
        let e = ItemsQuery::parse(&params(&[("limit", "1"), ("limit", "2")])).unwrap_err();
        assert!(e.contains("more than once"), "{e}");
    }

    #[test]
    fn features_flatten_the_wire_values() {
        let rs = readings();
        let f = feature(&rs[0]);
        assert_eq!(f["type"], "Feature");
        assert_eq!(f["id"], "traffic-fort-de-france-01");
        assert_eq!(f["geometry"], json!({"type": "Point", "coordinates": [-61.0695, 14.6065]}));
        let p = &f["properties"];
        assert_eq!(p["kind"], "traffic");
        assert_eq!(p["commune"], "Fort-de-France");
        assert_eq!(p["observedAt"], "2026-11-21T12:00:00.000Z");
        assert_eq!(p["seq"], 7);
        let wire: Value = serde_json::from_slice(&wire::encode(&rs[0])).unwrap();
        for (k, v) in wire["values"].as_object().unwrap() {
            assert_eq!(&p[k], v, "{k}");
        }
        assert!(p["intensity"].is_u64() && p["congested"].is_boolean());
        assert_eq!(p.as_object().unwrap().len(), 4 + wire["values"].as_object().unwrap().len());
        // Every kind flattens without clashing with the fixed properties.
        for r in &rs {
            let f = feature(r);
            assert_eq!(f["properties"]["kind"], r.kind().as_str());
            assert!(f["properties"].get("values").is_none());
        }
    }

    #[test]
    fn feature_collections_filter_count_and_link_pages() {
        let rs = readings();
        let base = "http://gw.example:8080/ogc";
        let now = Utc.with_ymd_and_hms(2026, 11, 21, 12, 30, 0).unwrap();
        let all = feature_collection(&rs, &ItemsQuery::default(), base, now);
        assert_eq!(all["type"], "FeatureCollection");
        assert_eq!((all["numberMatched"].as_u64(), all["numberReturned"].as_u64()), (Some(10), Some(10)));
        assert_eq!(all["timeStamp"], "2026-11-21T12:30:00.000Z");
        let rels: Vec<&str> = all["links"].as_array().unwrap().iter().map(|l| l["rel"].as_str().unwrap()).collect();
        assert_eq!(rels, ["self", "collection"], "one page: no next, no prev");

        // Fort-de-France only, 2 a page, from the second page.
        let q = ItemsQuery::parse(&params(&[
            ("bbox", "-61.08,14.59,-61.04,14.63"),
            ("limit", "2"),
            ("offset", "2"),
            ("datetime", "2026-11-21T12:00:00+00:00/.."),
        ]))
        .unwrap();
        let fc = feature_collection(&rs, &q, base, now);
        let fdf = rs.iter().filter(|r| q.bbox.unwrap().contains(r.lon, r.lat)).count();
        assert_eq!(fdf, 4, "four sensors in Fort-de-France's centre");
        assert_eq!(fc["numberMatched"], 4);
        assert_eq!(fc["numberReturned"], 2);
        let link = |rel: &str| {
            fc["links"]
                .as_array()
                .unwrap()
                .iter()
                .find(|l| l["rel"] == rel)
                .map(|l| l["href"].as_str().unwrap().to_string())
        };
        let items = "http://gw.example:8080/ogc/collections/sensors/items";
        let filters = "bbox=-61.08,14.59,-61.04,14.63&datetime=2026-11-21T12:00:00%2B00:00%2F..";
        assert_eq!(link("self").unwrap(), format!("{items}?{filters}&limit=2&offset=2"));
        assert_eq!(link("prev").unwrap(), format!("{items}?{filters}&limit=2&offset=0"));
        assert_eq!(link("next"), None, "the last page");
        assert_eq!(link("collection").unwrap(), "http://gw.example:8080/ogc/collections/sensors");

        let first = ItemsQuery { offset: 0, ..q.clone() };
        let fc0 = feature_collection(&rs, &first, base, now);
        let next = fc0["links"].as_array().unwrap().iter().find(|l| l["rel"] == "next").unwrap();
        assert_eq!(next["href"], format!("{items}?{filters}&limit=2&offset=2"));
        assert_eq!(next["type"], GEOJSON);

        let late = ItemsQuery::parse(&params(&[("datetime", "2026-11-21T12:05:00Z/..")])).unwrap();
        assert_eq!(feature_collection(&rs, &late, base, now)["numberMatched"], 5, "readings from 12:05 on");
    }

    #[test]
    fn documents_link_absolutely_from_the_host() {
        let mut h = HeaderMap::new();
        assert_eq!(base_url(&h), "http://localhost/ogc");
        h.insert(header::HOST, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(base_url(&h), "http://127.0.0.1:8080/ogc");
        h.insert("x-forwarded-proto", "https".parse().unwrap());
        assert_eq!(base_url(&h), "https://127.0.0.1:8080/ogc");
        h.insert(header::HOST, "evil/path?".parse().unwrap());
        assert_eq!(base_url(&h), "https://localhost/ogc", "a strange Host is not echoed into links");

        let landing = landing_page("http://h/ogc");
        let rels: Vec<&str> = landing["links"].as_array().unwrap().iter().map(|l| l["rel"].as_str().unwrap()).collect();
        assert_eq!(rels, ["self", "service-desc", "conformance", "data"]);
        assert_eq!(conformance_doc()["conformsTo"].as_array().unwrap().len(), 3);

        let rs = readings();
        let c = collection_doc("http://h/ogc", &rs);
        assert_eq!(c["id"], "sensors");
        assert_eq!(c["itemType"], "feature");
        assert_eq!(c["extent"]["spatial"]["bbox"][0], json!(MARTINIQUE_BBOX));
        assert_eq!(
            c["extent"]["temporal"]["interval"][0],
            json!(["2026-11-21T12:00:00.000Z", "2026-11-21T12:09:00.000Z"])
        );
        let items = c["links"].as_array().unwrap().iter().find(|l| l["rel"] == "items").unwrap();
        assert_eq!(items["href"], "http://h/ogc/collections/sensors/items");
        assert_eq!(collection_doc("http://h/ogc", &[])["extent"]["temporal"]["interval"], json!([[null, null]]));
        let mut far = rs[0].clone();
        far.lon = -61.3;
        assert_eq!(spatial_extent(&[far])[0], -61.3, "the extent covers every sensor");
    }

    #[test]
    fn the_schema_types_every_property_that_items_serve() {
        let schema = feature_schema();
        let props = &schema["properties"]["properties"]["properties"];
        assert_eq!(props["observedAt"]["format"], "date-time");
        assert_eq!(props["seq"]["type"], "integer");
        assert_eq!(props["LAeq"]["type"], "number");
        assert_eq!(props["intensity"]["type"], "integer");
        assert_eq!(props["congested"]["type"], "boolean");
        assert_eq!(props["airQualityLevel"]["type"], "string");
        assert_eq!(props["kind"]["enum"].as_array().unwrap().len(), 6);
        for r in readings() {
            for (k, v) in feature(&r)["properties"].as_object().unwrap() {
                let declared = props[k]["type"].as_str().unwrap_or_else(|| panic!("{k} missing from the schema"));
                assert_eq!(declared, json_type(v), "{k} of {}", r.sensor_id);
            }
        }
    }

    #[test]
    fn the_openapi_document_describes_the_items_parameters() {
        let doc = openapi_doc("http://h/ogc");
        assert_eq!(doc["openapi"], "3.0.3");
        assert_eq!(doc["servers"][0]["url"], "http://h/ogc");
        let items = &doc["paths"]["/collections/sensors/items"]["get"];
        let names: Vec<&str> = items["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| match p["$ref"].as_str() {
                Some(r) => doc["components"]["parameters"][r.rsplit('/').next().unwrap()]["name"].as_str().unwrap(),
                None => p["name"].as_str().unwrap(),
            })
            .collect();
        assert_eq!(names, ["limit", "offset", "bbox", "bbox-crs", "datetime", "f"]);
        assert_eq!(doc["components"]["parameters"]["limit"]["schema"]["maximum"], MAX_LIMIT);
        assert!(doc["components"]["schemas"]["sensor"].get("$schema").is_none());
        for path in ["/", "/api", "/conformance", "/collections", "/collections/sensors", "/collections/sensors/schema"]
        {
            assert!(doc["paths"][path]["get"]["responses"]["200"].is_object(), "{path}");
        }
    }
}
