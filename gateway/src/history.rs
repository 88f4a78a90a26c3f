//! `GET /api/sensors/{id}/history`: the points of one sensor's chart on the map.
//!
//! - No parameter: the readings the gateway keeps in memory (`state.history_per_sensor`, the latest
//!   120 by default), as wire readings: the live chart.
//! - `range=10m|1h|6h|24h|7d|30d` (ending now) or `start=…&stop=…` (RFC 3339, start included, stop
//!   excluded): with `[influxdb]` configured, InfluxDB answers, downsampled to at most
//!   [`crate::flux::MAX_POINTS`] points ([`crate::flux`]); without it, the memory filtered to the range.
//!
//! The body is always a JSON array of readings (the chart needs `observedAt`, `type`, `commune` and
//! `values`); the `X-History-Source` header says who answered (`influxdb` or `memory`) and
//! `X-History-Window` the seconds each downsampled point stands for. Errors are JSON `{"error"}`:
//! 400 for a bad id or range, 404 for a sensor memory never saw, 502 when InfluxDB fails (the map
//! then falls back to memory and says so).

use crate::flux::{InfluxHistory, Window};
use crate::state::CityState;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use std::sync::Arc;

/// The ranges the map offers, ending now.
pub const RANGES: [(&str, i64); 6] =
    [("10m", 600), ("1h", 3600), ("6h", 6 * 3600), ("24h", 86_400), ("7d", 7 * 86_400), ("30d", 30 * 86_400)];

pub const SOURCE_HEADER: &str = "x-history-source";
pub const WINDOW_HEADER: &str = "x-history-window";

/// What the endpoint needs: the live state, and InfluxDB when configured.
#[derive(Clone)]
pub struct HistoryApi {
    pub state: Arc<CityState>,
    pub influx: Option<Arc<InfluxHistory>>,
}

/// Why a history cannot be served, with the message the map shows.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HistoryError {
    /// The id or the range is wrong: 400.
    #[error("{0}")]
    BadRequest(String),
    /// Memory never saw this sensor (and no InfluxDB to ask): 404.
    #[error("no sensor `{0}` seen yet")]
    NotFound(String),
    /// InfluxDB is unreachable or refused the query: 502. The message names InfluxDB.
    #[error("{0}")]
    Influx(String),
}

impl IntoResponse for HistoryError {
    fn into_response(self) -> Response {
        let status = match self {
            HistoryError::BadRequest(_) => StatusCode::BAD_REQUEST,
            HistoryError::NotFound(_) => StatusCode::NOT_FOUND,
            HistoryError::Influx(_) => StatusCode::BAD_GATEWAY,
        };
        (status, axum::Json(serde_json::json!({"error": self.to_string()}))).into_response()
    }
}

/// The wire format's id rule (docs/wire-format.md, `Reading::validate`): 1-128 characters of
/// `A-Z a-z 0-9 - _ .`. Checked before the id goes near a Flux query.
pub fn check_id(id: &str) -> Result<(), HistoryError> {
    let ok = (1..=128).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(HistoryError::BadRequest(format!("sensor id `{id}` must be 1-128 characters of A-Z a-z 0-9 - _ .")))
    }
}

/// The window asked for, `None` for the live history (no parameter). `now` ends a `range`.
pub fn parse_window(params: &[(String, String)], now: DateTime<Utc>) -> Result<Option<Window>, HistoryError> {
    let bad = |m: String| Err(HistoryError::BadRequest(m));
    let (mut range, mut start, mut stop) = (None, None, None);
    for (key, value) in params {
        let slot = match key.as_str() {
            "range" => &mut range,
            "start" => &mut start,
            "stop" => &mut stop,
            _ => return bad(format!("unknown parameter `{key}`: use range=, or start= and stop=")),
        };
        if slot.replace(value.as_str()).is_some() {
            return bad(format!("parameter `{key}` is given more than once"));
        }
    }
    let time = |name: &str, text: &str| -> Result<DateTime<Utc>, HistoryError> {
        // A `+` of an offset arrives as a space when the client did not percent-encode it.
        DateTime::parse_from_rfc3339(&text.trim().replace(' ', "+")).map(|t| t.with_timezone(&Utc)).map_err(|_| {
            HistoryError::BadRequest(format!("{name} `{text}` is not an RFC 3339 time (e.g. 2026-11-20T11:30:00Z)"))
        })
    };
    match (range, start, stop) {
        (None, None, None) => Ok(None),
        (Some(r), None, None) => match RANGES.iter().find(|(name, _)| *name == r) {
            Some((_, seconds)) => Ok(Some(Window { start: now - Duration::seconds(*seconds), stop: now })),
            None => {
                let names: Vec<&str> = RANGES.iter().map(|(n, _)| *n).collect();
                bad(format!("range `{r}` is not one of {}", names.join(", ")))
            }
        },
        (None, Some(a), Some(b)) => {
            let (start, stop) = (time("start", a)?, time("stop", b)?);
            if start >= stop {
                return bad(format!("start `{a}` must be before stop `{b}`"));
            }
            Ok(Some(Window { start, stop }))
        }
        (Some(_), _, _) => bad("give either range= or start= and stop=, not both".into()),
        _ => bad("start= and stop= go together".into()),
    }
}

pub async fn handler(
    State(api): State<HistoryApi>,
    Path(id): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    match answer(&api, &id, &params, Utc::now()).await {
        Ok(response) => response,
        Err(e) => {
            if let HistoryError::Influx(message) = &e {
                tracing::warn!("history of {id}: {message}");
            }
            e.into_response()
        }
    }
}

async fn answer(
    api: &HistoryApi,
    id: &str,
    params: &[(String, String)],
    now: DateTime<Utc>,
) -> Result<Response, HistoryError> {
    check_id(id)?;
    let window = parse_window(params, now)?;
    if let (Some(window), Some(influx)) = (window, &api.influx) {
        let points = influx.points(id, &window).await.map_err(HistoryError::Influx)?;
        let body = serde_json::to_vec(&points).unwrap_or_else(|_| b"[]".to_vec());
        let mut response = json_response(body, "influxdb");
        response
            .headers_mut()
            .insert(HeaderName::from_static(WINDOW_HEADER), HeaderValue::from(window.every_seconds()));
        return Ok(response);
    }
    let mut readings = api.state.history(id).ok_or_else(|| HistoryError::NotFound(id.to_string()))?;
    if let Some(window) = window {
        readings.retain(|r| window.contains(r.observed_at));
    }
    Ok(json_response(crate::web::readings_body(&readings), "memory"))
}

fn json_response(body: Vec<u8>, source: &'static str) -> Response {
    let headers = [(header::CONTENT_TYPE, "application/json"), (HeaderName::from_static(SOURCE_HEADER), source)];
    (headers, body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use smartcity_model::{dynamics::Simulation, Catalogue};

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn ids_follow_the_wire_format() {
        for ok in ["traffic-fort-de-france-01", "a", "A_b.9", &"x".repeat(128)] {
            assert!(check_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a\"b", "a b", "x\") or true or (\"", "é", &"x".repeat(129)] {
            assert!(
                matches!(check_id(bad), Err(HistoryError::BadRequest(m)) if m.contains("1-128 characters")),
                "{bad}"
            );
        }
    }

    #[test]
    fn windows_from_ranges_and_times() {
        let now = at("2026-06-10T12:00:00Z");
        assert_eq!(parse_window(&[], now), Ok(None), "no parameter: the live history");
        let w = parse_window(&params(&[("range", "24h")]), now).unwrap().unwrap();
        assert_eq!((w.start, w.stop), (at("2026-06-09T12:00:00Z"), now));
        let w = parse_window(&params(&[("range", "30d")]), now).unwrap().unwrap();
        assert_eq!(w.start, at("2026-05-11T12:00:00Z"));
        let w = parse_window(&params(&[("start", "2026-06-01T00:00:00-04:00"), ("stop", "2026-06-02T04:00:00Z")]), now)
            .unwrap()
            .unwrap();
        assert_eq!((w.start, w.stop), (at("2026-06-01T04:00:00Z"), at("2026-06-02T04:00:00Z")));
        // An unencoded `+` arrives as a space.
        let w = parse_window(&params(&[("start", "2026-06-01T00:00:00 01:00"), ("stop", "2026-06-02T00:00:00Z")]), now);
        assert_eq!(w.unwrap().unwrap().start, at("2026-05-31T23:00:00Z"));
    }

    #[test]
    fn bad_windows_say_why() {
        let now = Utc::now();
        let error = |pairs: &[(&str, &str)]| match parse_window(&params(pairs), now) {
            Err(HistoryError::BadRequest(m)) => m,
            other => panic!("{pairs:?}: {other:?}"),
        };
        assert!(error(&[("range", "2h")]).contains("10m, 1h, 6h, 24h, 7d, 30d"));
        assert!(error(&[("start", "yesterday"), ("stop", "2026-06-02T00:00:00Z")])
            .contains("`yesterday` is not an RFC 3339"));
        assert!(error(&[("start", "2026-06-02T00:00:00Z"), ("stop", "2026-06-01T00:00:00Z")]).contains("before"));
        assert!(error(&[("start", "2026-06-02T00:00:00Z")]).contains("go together"));
        assert!(error(&[("range", "1h"), ("start", "2026-06-02T00:00:00Z")]).contains("not both"));
        assert!(error(&[("range", "1h"), ("range", "24h")]).contains("more than once"));
        assert!(error(&[("from", "x")]).contains("unknown parameter `from`"));
    }

    #[tokio::test]
    async fn memory_answers_without_influxdb_filtered_to_the_window() {
        let state = Arc::new(CityState::new(10, 0));
        let catalogue = Catalogue::default_ten();
        let sensor = &catalogue.sensors()[0];
        let t0 = at("2026-06-01T00:00:00Z");
        for seq in 0..10 {
            state.accept(&Simulation::new(1).reading(sensor, t0 + Duration::minutes(seq), seq as u64));
        }
        let api = HistoryApi { state, influx: None };
        let body = |r: Response| async move {
            assert_eq!(r.headers()[SOURCE_HEADER], "memory");
            let bytes = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
            serde_json::from_slice::<Vec<serde_json::Value>>(&bytes).unwrap()
        };
        let all = body(answer(&api, &sensor.id, &[], Utc::now()).await.unwrap()).await;
        assert_eq!(all.len(), 10);
        let range = params(&[("start", "2026-06-01T00:02:00Z"), ("stop", "2026-06-01T00:05:00Z")]);
        let some = body(answer(&api, &sensor.id, &range, Utc::now()).await.unwrap()).await;
        let seqs: Vec<u64> = some.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
        assert_eq!(seqs, [2, 3, 4], "start included, stop excluded");
        let none =
            body(answer(&api, &sensor.id, &params(&[("range", "1h")]), t0 + Duration::days(2)).await.unwrap()).await;
        assert!(none.is_empty());
        assert_eq!(
            answer(&api, "unseen-1", &[], Utc::now()).await.unwrap_err(),
            HistoryError::NotFound("unseen-1".into())
        );
        let bad = answer(&api, "a\"b", &[], Utc::now()).await.unwrap_err().into_response();
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    }
}
