//! Writes readings to a SensorThings API 1.1 server: the entities of each sensor once (an idempotent
//! bootstrap), then each batch through `POST {url}/CreateObservations`, in requests of at most
//! [`MAX_ROWS`] Observations.
//!
//! Bootstrap, on the first reading of each sensor: the kind's Sensor and the quantities'
//! ObservedProperties, then the sensor's Thing, are each LOOKED UP by name (`$filter=name eq '...'`)
//! and created only when missing: the Sensor and ObservedProperties by `POST`, the Thing with its
//! Location and Datastreams by one deep insert (a Datastream missing from a Thing found is added
//! alone). The server never de-duplicates, so this is what keeps a restart, a second gateway or a
//! server restart from multiplying entities; when two writers did race, both use the entity with the
//! lowest id. The ids are cached (a Datastream id per sensor and quantity) for the life of the sink.
//!
//! What each answer of `CreateObservations` means for the readings of the batch:
//! - 201: one row per Observation, a self-link or `"error ..."`, checked one by one. A reading is
//!   taken when all its rows are stored; a failed row sends its reading back to the fan-out (only the
//!   missing rows are written again: the sink remembers the rows stored) and drops the cached ids of
//!   its sensor, so that the next attempt looks them up again: a Datastream deleted on the server
//!   (FROST then answers "No FeatureOfInterest provided") is thus found missing and created again.
//! - 429, 5xx, no answer: tried again, after the server's `Retry-After` when it gave one; the
//!   requests after it in the same batch wait too.
//! - 400 and other 4xx: refused (the server's message is in the failure); 401/403: refused, auth.
//!
//! An answer lost after the request left (a timeout, a cut connection, a 5xx from a proxy) may hide
//! Observations the server stored, or is still storing. Before the next write the sink then waits
//! until a request timeout has passed since the loss (the server has finished by then), asks per
//! Datastream which of the rows it is about to write are already there (same Datastream and
//! `phenomenonTime`), and skips them: a retry does not store an Observation twice.
//!
//! Nothing is logged here: the fan-out logs each `Failure`, whose message carries the status and
//! the server's own words.

use super::config::SensorThingsConfig;
use super::{
    entity_ids, error_words, first_thing, incomplete, name_filter, phenomenon_times, row_fates, service_root,
    FoundThing, RowFate, ENTITY_SETS,
};
use crate::http_client::{self, retry_after, transport_failure};
use crate::http_status::{self, Advice};
use crate::secret;
use crate::sink::{Failure, Outcome, Reason, Sink, SinkTelemetry};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::{RequestBuilder, StatusCode};
use serde_json::Value;
use smartcity_model::codec::sensorthings as sta;
use smartcity_model::{Reading, SensorKind};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};
use url::Url;

/// Rows per page when asking which Observations are already stored.
const PAGE: usize = 1000;

/// Most Observations in one `CreateObservations` request: FROST stores about 1,000 a second on the
/// bench, so a request stays well within the timeout whatever the batch size. A request that
/// outlives its timeout is the one case where the server may still store rows the sink is about to
/// write again.
pub const MAX_ROWS: usize = 1000;

/// A SensorThings server and the ids of the entities the sink found or created on it.
pub struct SensorThingsSink {
    client: reqwest::Client,
    /// The service root, `.../v1.1`.
    root: Url,
    address: String,
    prefix: String,
    /// Basic-auth user and password.
    auth: Option<(String, Option<String>)>,
    /// Sensor id per kind.
    sensors: HashMap<SensorKind, Value>,
    /// ObservedProperty id per kind and quantity index.
    properties: HashMap<(SensorKind, usize), Value>,
    /// Datastream id per quantity (in the order of `sta::quantities`), per sensor id.
    datastreams: HashMap<String, Vec<Value>>,
    /// Quantities already stored of the readings sent back to the fan-out with some rows not stored
    /// (an entry lives until its reading is taken or refused).
    stored: HashMap<ReadingKey, Vec<bool>>,
    /// When a write ended without an answer that may have stored Observations: they are looked for
    /// before writing again, once `settle` has passed since then.
    unsure: Option<Instant>,
    /// How long the server may still work on a request we stopped waiting for: the request timeout.
    settle: Duration,
}

/// A reading, as the fan-out sends it again: sensor, sequence number, time in ms.
type ReadingKey = (String, u64, i64);

fn key(r: &Reading) -> ReadingKey {
    (r.sensor_id.clone(), r.seq, r.observed_at.timestamp_millis())
}

/// One Observation to write: its reading (index in the batch), quantity, Datastream, time and result.
struct Pending {
    reading: usize,
    quantity: usize,
    datastream: Value,
    time: DateTime<Utc>,
    result: Value,
}

/// What came of one `CreateObservations` request.
enum Written {
    /// Answered row by row: whether each row (in the order given) was stored, and why not.
    Rows { stored: Vec<bool>, failure: Option<Failure> },
    /// No usable answer: to be sent again.
    Retry(Failure),
    /// Refused for good (4xx).
    Refused(Failure),
}

/// `{base}/{segment}`, the segment escaped, the base path kept.
fn join(base: &Url, segment: &str) -> Result<Url, Failure> {
    let mut u = base.clone();
    u.path_segments_mut()
        .map_err(|_| Failure::new(Reason::Rejected, format!("`{base}` cannot take a path")))?
        .pop_if_empty()
        .push(segment);
    Ok(u)
}

/// `Datastreams(7)` or `Datastreams('a''b')`: the path of one entity.
fn entity(set: &str, id: &Value) -> String {
    match id.as_str() {
        Some(s) => format!("{set}({})", super::odata_string(s)),
        None => format!("{set}({id})"),
    }
}

/// The failure of a non-2xx answer, and whether to retry: the shared status policy
/// ([`crate::http_status`]), refusing only what is about the data.
fn refused(status: StatusCode, wait: Option<Duration>, what: &str, answer: &[u8]) -> (bool, Failure) {
    let missing = if what.ends_with("/CreateObservations") {
        "the server does not serve CreateObservations: load FROST's DataArray plugin, or check url"
    } else {
        "check url: the SensorThings service root"
    };
    let advice = Advice { auth: "credentials refused by the server: check user and password_file", missing };
    let (retry, mut failure) = http_status::retry_or_refuse(status, wait, what, &error_words(answer), &advice);
    if status == StatusCode::METHOD_NOT_ALLOWED && what.ends_with("/CreateObservations") {
        failure.message.push_str(&format!(" ({missing})"));
    }
    (retry, failure)
}

/// An answer that is not what the protocol promises: the server is failing.
fn unreadable(what: &str, message: String) -> Failure {
    Failure::new(Reason::Server, format!("{what}: {message}"))
}

impl SensorThingsSink {
    /// Reads the password and builds the HTTP client; touches no network.
    pub fn new(cfg: &SensorThingsConfig, telemetry: SinkTelemetry) -> Result<Self, String> {
        // The fan-out stage does all the accounting from each `Outcome`: nothing to report here.
        let _ = telemetry;
        let problems = cfg.problems();
        if !problems.is_empty() {
            let list: Vec<String> = problems.iter().map(|(f, m)| format!("{f}: {m}")).collect();
            return Err(format!("sink `{}`: {}", cfg.name, list.join("; ")));
        }
        let root = Url::parse(cfg.url.trim_end_matches('/')).map_err(|e| format!("url `{}`: {e}", cfg.url))?;
        let auth = match &cfg.username {
            Some(user) => Some((user.clone(), secret::read(&cfg.password_env, cfg.password_file.as_deref())?)),
            None => None,
        };
        Ok(SensorThingsSink {
            client: http_client::client(cfg.tls.as_ref(), cfg.timeout())?,
            root,
            address: cfg.address(),
            prefix: cfg.name_prefix.clone(),
            auth,
            sensors: HashMap::new(),
            properties: HashMap::new(),
            datastreams: HashMap::new(),
            stored: HashMap::new(),
            unsure: None,
            settle: cfg.timeout(),
        })
    }

    /// `Accept` and basic auth, common to every request.
    fn authorised(&self, builder: RequestBuilder) -> RequestBuilder {
        let builder = builder.header(ACCEPT, "application/json");
        match &self.auth {
            Some((user, password)) => builder.basic_auth(user, password.as_ref()),
            None => builder,
        }
    }

    /// Sends `request`: the status, `Retry-After` and body of the answer, or the transport failure.
    async fn fetch(&self, request: RequestBuilder) -> Result<(StatusCode, Option<Duration>, Bytes), Failure> {
        let response = self.authorised(request).send().await.map_err(|e| transport_failure(&e))?;
        let status = response.status();
        let wait = retry_after(response.headers());
        let answer = response.bytes().await.map_err(|e| transport_failure(&e))?;
        Ok((status, wait, answer))
    }

    /// Sends `request`; the body of a 2xx answer, else the failure.
    async fn exchange(&self, request: RequestBuilder, what: &str) -> Result<Bytes, Failure> {
        match self.fetch(request).await? {
            (status, _, answer) if status.is_success() => Ok(answer),
            (status, wait, answer) => Err(refused(status, wait, what, &answer).1),
        }
    }

    /// `GET url`: the body of a 2xx answer.
    async fn get(&self, url: Url) -> Result<Bytes, Failure> {
        let what = format!("GET {}", url.path());
        self.exchange(self.client.get(url), &what).await
    }

    /// `POST {url}/{set}` of the JSON `body`; a 2xx answer is success (201 Created from FROST).
    async fn post(&self, set: &str, body: &Value) -> Result<(), Failure> {
        let url = join(&self.root, set)?;
        let what = format!("POST {}", url.path());
        let request = self.client.post(url).header(CONTENT_TYPE, "application/json").body(body.to_string());
        self.exchange(request, &what).await.map(drop)
    }

    /// The id of the entity of `set` named `name`: the lowest when several.
    async fn find(&self, set: &str, name: &str) -> Result<Option<Value>, Failure> {
        let mut url = join(&self.root, set)?;
        url.query_pairs_mut()
            .append_pair("$filter", &name_filter(name))
            .append_pair("$orderby", "id asc")
            .append_pair("$select", "id");
        let answer = self.get(url).await?;
        let ids = entity_ids(&answer).map_err(|m| unreadable(&format!("GET {set}"), m))?;
        Ok(ids.into_iter().next())
    }

    /// The id of the entity of `set` named `name`, created from `body` when there is none yet.
    async fn find_or_create(&self, set: &str, name: &str, body: &Value) -> Result<Value, Failure> {
        if let Some(id) = self.find(set, name).await? {
            return Ok(id);
        }
        self.post(set, body).await?;
        // Looked up again rather than read from the `Location` header: a writer that raced us is
        // seen, and both keep the lowest id.
        self.find(set, name).await?.ok_or_else(|| {
            Failure::new(Reason::Server, format!("{set} `{name}` was created but cannot be found by its name"))
        })
    }

    /// The Thing named `name` with its Datastreams, the lowest id when several.
    async fn find_thing(&self, name: &str) -> Result<Option<FoundThing>, Failure> {
        let mut url = join(&self.root, "Things")?;
        url.query_pairs_mut()
            .append_pair("$filter", &name_filter(name))
            .append_pair("$orderby", "id asc")
            .append_pair("$top", "1")
            .append_pair("$select", "id")
            .append_pair("$expand", "Datastreams($select=id,name;$orderby=id asc)");
        let answer = self.get(url).await?;
        first_thing(&answer).map_err(|m| unreadable("GET Things", m))
    }

    /// Finds or creates the entities of the sensor of `reading` and caches its Datastream ids.
    async fn bootstrap(&mut self, reading: &Reading) -> Result<(), Failure> {
        let kind = reading.kind();
        let quantities = sta::quantities(kind);
        let sensor = match self.sensors.get(&kind) {
            Some(id) => id.clone(),
            None => {
                let body = sta::sensor(&self.prefix, kind);
                let id = self.find_or_create("Sensors", &sta::sensor_name(&self.prefix, kind), &body).await?;
                self.sensors.insert(kind, id.clone());
                id
            }
        };
        let mut properties = Vec::with_capacity(quantities.len());
        for (i, q) in quantities.iter().enumerate() {
            let id = match self.properties.get(&(kind, i)) {
                Some(id) => id.clone(),
                None => {
                    let name = sta::observed_property_name(&self.prefix, kind, q);
                    let body = sta::observed_property(&self.prefix, kind, q);
                    let id = self.find_or_create("ObservedProperties", &name, &body).await?;
                    self.properties.insert((kind, i), id.clone());
                    id
                }
            };
            properties.push(id);
        }
        let name = sta::thing_name(&self.prefix, &reading.sensor_id);
        let mut thing = match self.find_thing(&name).await? {
            Some(found) => found,
            None => {
                self.post("Things", &sta::thing(&self.prefix, reading, &sensor, &properties)).await?;
                self.find_thing(&name).await?.ok_or_else(|| {
                    Failure::new(Reason::Server, format!("Thing `{name}` was created but cannot be found by its name"))
                })?
            }
        };
        let mut ids = Vec::with_capacity(quantities.len());
        for (q, property) in quantities.iter().zip(&properties) {
            let stream = sta::datastream_name(&name, q);
            let mut id = thing.datastreams.iter().find(|(n, _)| *n == stream).map(|(_, id)| id.clone());
            if id.is_none() {
                // A Thing made by hand or by an older mapping: add the missing Datastream to it.
                self.post("Datastreams", &sta::datastream(&name, q, &sensor, property, Some(&thing.id))).await?;
                thing = self.find_thing(&name).await?.unwrap_or(thing);
                id = thing.datastreams.iter().find(|(n, _)| *n == stream).map(|(_, id)| id.clone());
            }
            ids.push(id.ok_or_else(|| {
                Failure::new(Reason::Server, format!("Datastream `{stream}` was created but cannot be found"))
            })?);
        }
        self.datastreams.insert(reading.sensor_id.clone(), ids);
        Ok(())
    }

    /// [`Self::bootstrap`], once more after a refusal with the kind's Sensor and ObservedProperties
    /// looked up again: a Thing refers to them by id, and one deleted on the server since it was
    /// cached makes the server refuse the Thing.
    async fn bootstrap_afresh(&mut self, reading: &Reading) -> Result<(), Failure> {
        match self.bootstrap(reading).await {
            Err(f) if f.reason == Reason::Rejected => {
                let kind = reading.kind();
                self.sensors.remove(&kind);
                self.properties.retain(|(k, _), _| *k != kind);
                self.bootstrap(reading).await
            }
            done => done,
        }
    }

    /// The `phenomenonTime`s (ms) of the Observations of `datastream` between `from` and `to` (ms).
    async fn stored_times(&self, datastream: &Value, from: i64, to: i64) -> Result<HashSet<i64>, Failure> {
        let (Some(from), Some(to)) = (DateTime::from_timestamp_millis(from), DateTime::from_timestamp_millis(to))
        else {
            return Ok(HashSet::new());
        };
        let filter = format!(
            "phenomenonTime ge {} and phenomenonTime le {}",
            sta::phenomenon_time(from),
            sta::phenomenon_time(to)
        );
        let mut times = HashSet::new();
        for page in 0.. {
            let mut url = join(&self.root, &entity("Datastreams", datastream))?;
            url.path_segments_mut().map_err(|_| unreadable("Datastreams", "no path".into()))?.push("Observations");
            url.query_pairs_mut()
                .append_pair("$filter", &filter)
                .append_pair("$select", "phenomenonTime")
                .append_pair("$orderby", "id asc")
                .append_pair("$top", &PAGE.to_string())
                .append_pair("$skip", &(page * PAGE).to_string());
            let what = format!("GET {}", url.path());
            let answer = match self.fetch(self.client.get(url)).await? {
                (status, _, answer) if status.is_success() => answer,
                // The Datastream is gone, and its Observations with it; writing to it will fail
                // row by row, which sends the sensor through the bootstrap again.
                (StatusCode::NOT_FOUND, _, _) => return Ok(HashSet::new()),
                (status, wait, answer) => return Err(refused(status, wait, &what, &answer).1),
            };
            let (found, members) = phenomenon_times(&answer).map_err(|m| unreadable("GET Observations", m))?;
            times.extend(found);
            if members < PAGE {
                break;
            }
        }
        Ok(times)
    }

    /// Drops from `pending` the Observations the server already holds, marking them stored.
    async fn skip_stored(&mut self, batch: &[Reading], pending: &mut Vec<Pending>) -> Result<(), Failure> {
        let mut spans: Vec<(Value, i64, i64)> = Vec::new();
        for p in pending.iter() {
            let t = p.time.timestamp_millis();
            match spans.iter_mut().find(|(d, _, _)| *d == p.datastream) {
                Some((_, from, to)) => (*from, *to) = ((*from).min(t), (*to).max(t)),
                None => spans.push((p.datastream.clone(), t, t)),
            }
        }
        let mut held: Vec<(Value, HashSet<i64>)> = Vec::with_capacity(spans.len());
        for (datastream, from, to) in spans {
            let times = self.stored_times(&datastream, from, to).await?;
            held.push((datastream, times));
        }
        let mut keep = Vec::with_capacity(pending.len());
        for p in pending.drain(..) {
            let t = p.time.timestamp_millis();
            match batch.get(p.reading) {
                Some(reading) if held.iter().any(|(d, times)| *d == p.datastream && times.contains(&t)) => {
                    self.mark_stored(reading, p.quantity)
                }
                _ => keep.push(p),
            }
        }
        *pending = keep;
        Ok(())
    }

    fn mark_stored(&mut self, reading: &Reading, quantity: usize) {
        let n = sta::quantities(reading.kind()).len();
        let done = self.stored.entry(key(reading)).or_insert_with(|| vec![false; n]);
        if let Some(d) = done.get_mut(quantity) {
            *d = true;
        }
    }

    /// One `POST {url}/CreateObservations` of `pending`, and what its answer means.
    async fn create_observations(&mut self, batch: &[Reading], pending: &[Pending]) -> Written {
        let rows: Vec<sta::Row> = pending
            .iter()
            .map(|p| sta::Row { datastream: &p.datastream, phenomenon_time: p.time, result: p.result.clone() })
            .collect();
        let (body, order) = sta::create_observations(&rows);
        let url = match join(&self.root, "CreateObservations") {
            Ok(u) => u,
            Err(f) => return Written::Refused(f),
        };
        let what = format!("POST {}", url.path());
        let request = self.client.post(url).header(CONTENT_TYPE, "application/json").body(body.to_string());
        let response = match self.authorised(request).send().await {
            Ok(r) => r,
            Err(e) => {
                // Refused at connect: nothing left. Anything later: the server may have stored it.
                if !e.is_connect() {
                    self.unsure = Some(Instant::now());
                }
                return Written::Retry(transport_failure(&e));
            }
        };
        let status = response.status();
        let wait = retry_after(response.headers());
        let answer = match response.bytes().await {
            Ok(b) => b,
            Err(e) => {
                self.unsure = Some(Instant::now());
                return Written::Retry(transport_failure(&e));
            }
        };
        if !status.is_success() {
            // FROST rolls back before a 5xx, but a proxy's 502/504 may hide a request it passed on.
            if status.is_server_error() {
                self.unsure = Some(Instant::now());
            }
            return match refused(status, wait, &what, &answer) {
                (true, f) => Written::Retry(f),
                (false, f) => Written::Refused(f),
            };
        }
        let fates = match row_fates(&answer, rows.len()) {
            Ok(f) => f,
            Err(m) => {
                self.unsure = Some(Instant::now());
                return Written::Retry(unreadable(&what, m));
            }
        };
        let mut stored = vec![false; pending.len()];
        let (mut failed, mut first_error) = (0, None);
        for (fate, &row) in fates.iter().zip(&order) {
            match fate {
                RowFate::Created => {
                    if let Some(s) = stored.get_mut(row) {
                        *s = true;
                    }
                }
                RowFate::Failed(why) => {
                    failed += 1;
                    let Some(reading) = pending.get(row).and_then(|p| batch.get(p.reading)) else { continue };
                    // Perhaps a Datastream deleted on the server: the next attempt looks the
                    // sensor's entities up again (and creates what is missing).
                    self.datastreams.remove(&reading.sensor_id);
                    first_error.get_or_insert_with(|| format!("{why} (sensor {})", reading.sensor_id));
                }
            }
        }
        let failure = first_error.map(|why| {
            let message =
                format!("{what}: {failed} of {} Observations not stored, to be written again: {why}", rows.len());
            Failure::new(Reason::Server, message)
        });
        Written::Rows { stored, failure }
    }

    /// Bootstraps the sensors of `batch` not known yet. Returns, per reading, `None` when it can be
    /// written, else whether to retry it (`true`) or refuse it, with the failure.
    async fn prepare(&mut self, batch: &[Reading]) -> Vec<Option<(bool, Failure)>> {
        let mut verdicts: Vec<Option<(bool, Failure)>> = vec![None; batch.len()];
        let mut failed: HashMap<&str, (bool, Failure)> = HashMap::new();
        // After a transient failure the server is likely down: the other sensors wait too, rather
        // than each meeting the same timeout in turn.
        let mut down: Option<Failure> = None;
        for (reading, verdict) in batch.iter().zip(verdicts.iter_mut()) {
            if sta::results(&reading.values).iter().flatten().any(Value::is_null) {
                let message = format!("reading {} #{}: a value is not a finite number", reading.sensor_id, reading.seq);
                *verdict = Some((false, Failure::new(Reason::Rejected, message)));
            } else if self.datastreams.contains_key(&reading.sensor_id) {
                continue;
            } else if let Some(f) = failed.get(reading.sensor_id.as_str()) {
                *verdict = Some(f.clone());
            } else if let Some(f) = &down {
                *verdict = Some((true, f.clone()));
            } else if let Err(f) = self.bootstrap_afresh(reading).await {
                let retry = !f.reason.is_about_data();
                let f = Failure { message: format!("sensor {}: {}", reading.sensor_id, f.message), ..f };
                if retry {
                    down = Some(f.clone());
                }
                failed.insert(&reading.sensor_id, (retry, f.clone()));
                *verdict = Some((retry, f));
            }
        }
        verdicts
    }
}

impl Sink for SensorThingsSink {
    async fn send(&mut self, batch: &[Reading]) -> Outcome {
        let mut outcome = Outcome::ok();
        let mut ready = Vec::with_capacity(batch.len());
        for (i, verdict) in self.prepare(batch).await.into_iter().enumerate() {
            match verdict {
                None => ready.push(i),
                Some((retry, failure)) => {
                    if retry { &mut outcome.retry } else { &mut outcome.rejected }.push(i);
                    // A retry drives the fan-out's back-off: its failure is the one reported.
                    if retry || outcome.failure.is_none() {
                        outcome.failure = Some(failure);
                    }
                }
            }
        }

        let mut pending = Vec::new();
        for &i in &ready {
            let Some(reading) = batch.get(i) else { continue };
            let Some(ids) = self.datastreams.get(&reading.sensor_id) else { continue };
            let done = self.stored.get(&key(reading));
            for (q, (datastream, result)) in ids.iter().zip(sta::results(&reading.values)).enumerate() {
                // An attribute the sensor did not measure has no Observation.
                let Some(result) = result else { continue };
                if !done.and_then(|d| d.get(q)).copied().unwrap_or(false) {
                    let (datastream, time) = (datastream.clone(), reading.observed_at);
                    pending.push(Pending { reading: i, quantity: q, datastream, time, result });
                }
            }
        }
        if let (Some(since), false) = (self.unsure, pending.is_empty()) {
            // A request the server may still be working on has finished by now (see `settle`).
            tokio::time::sleep_until((since + self.settle).into()).await;
            if let Err(f) = self.skip_stored(batch, &mut pending).await {
                return finish(outcome, &ready, true, f);
            }
            self.unsure = None;
        }

        let mut stored = vec![false; pending.len()];
        let mut refused_rows = 0..0;
        for start in (0..pending.len()).step_by(MAX_ROWS) {
            let end = (start + MAX_ROWS).min(pending.len());
            let Some(chunk) = pending.get(start..end) else { break };
            match self.create_observations(batch, chunk).await {
                Written::Rows { stored: answer, failure } => {
                    stored.splice(start..end, answer);
                    if failure.is_some() {
                        outcome.failure = failure;
                    }
                }
                // The rest waits too: the server is down or busy.
                Written::Retry(f) => {
                    outcome.failure = Some(f);
                    break;
                }
                Written::Refused(f) => {
                    outcome.failure = Some(f);
                    refused_rows = start..end;
                    break;
                }
            }
        }
        for (p, _) in pending.iter().zip(&stored).filter(|(_, s)| **s) {
            if let Some(reading) = batch.get(p.reading) {
                self.mark_stored(reading, p.quantity);
            }
        }
        let reading_of_row: Vec<usize> = pending.iter().map(|p| p.reading).collect();
        let again = incomplete(&stored, &reading_of_row);
        let mut refused: Vec<usize> = pending.get(refused_rows).unwrap_or_default().iter().map(|p| p.reading).collect();
        refused.dedup(); // rows of a reading are contiguous
        refused.sort_unstable();
        for &i in &ready {
            let Some(reading) = batch.get(i) else { continue };
            match again.binary_search(&i) {
                // Taken: its record of stored rows goes.
                Err(_) => {
                    self.stored.remove(&key(reading));
                }
                Ok(_) if refused.binary_search(&i).is_ok() => {
                    self.stored.remove(&key(reading));
                    outcome.rejected.push(i);
                }
                Ok(_) => outcome.retry.push(i),
            }
        }
        outcome.retry.sort_unstable();
        outcome.rejected.sort_unstable();
        outcome
    }

    async fn check(&mut self) -> Result<String, Failure> {
        let answer = self.get(self.root.clone()).await?;
        let root =
            service_root(&answer).map_err(|m| Failure::new(Reason::Rejected, format!("GET {}: {m}", self.address)))?;
        let missing: Vec<&str> =
            ENTITY_SETS.iter().copied().filter(|s| !root.entity_sets.iter().any(|e| e == s)).collect();
        if !missing.is_empty() {
            let message =
                format!("{} lists no {}: is it a SensorThings 1.1 service root?", self.address, missing.join(", "));
            return Err(Failure::new(Reason::Rejected, message));
        }
        if !root.data_array {
            let message = format!(
                "{}: {} entity sets, but CreateObservations is not available (the server does not list the \
                 DataArray conformance class: load FROST's DataArray plugin, plugins.dataArray.enable=true)",
                self.address,
                root.entity_sets.len()
            );
            return Err(Failure::new(Reason::Rejected, message));
        }
        Ok(format!(
            "SensorThings at {}: {} entity sets, CreateObservations available",
            self.address,
            root.entity_sets.len()
        ))
    }

    async fn close(self) {
        // Every request was answered before send() returned: nothing is buffered here.
    }
}

/// `outcome` with every reading of `ready` to retry (or refused) after `failure`.
fn finish(mut outcome: Outcome, ready: &[usize], retry: bool, failure: Failure) -> Outcome {
    if retry { &mut outcome.retry } else { &mut outcome.rejected }.extend(ready);
    outcome.retry.sort_unstable();
    outcome.rejected.sort_unstable();
    outcome.failure = Some(failure);
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn status_policy() {
        let wait = Some(Duration::from_secs(7));
        let (retry, f) = refused(StatusCode::SERVICE_UNAVAILABLE, wait, "POST /v1.1/CreateObservations", b"");
        assert!(retry);
        assert_eq!((f.reason, f.retry_after), (Reason::Server, wait));
        let (retry, f) = refused(StatusCode::TOO_MANY_REQUESTS, wait, "GET /v1.1/Things", b"");
        assert_eq!((retry, f.reason, f.retry_after), (true, Reason::Server, wait));
        // Credentials and a missing endpoint are about the server: retried, never refused.
        let (retry, f) = refused(StatusCode::UNAUTHORIZED, wait, "GET /v1.1/Things", b"");
        assert_eq!((retry, f.reason, f.retry_after), (true, Reason::Auth, wait));
        assert!(f.message.contains("check user and password_file"), "{}", f.message);
        assert_eq!(refused(StatusCode::FORBIDDEN, None, "x", b"").1.reason, Reason::Auth);
        let body = br#"{"code":400,"type":"error","message":"Invalid unitOfMeasurement."}"#;
        let (retry, f) = refused(StatusCode::BAD_REQUEST, None, "POST /v1.1/Things", body);
        assert!(!retry);
        assert_eq!(f.reason, Reason::Rejected);
        assert_eq!(f.message, "POST /v1.1/Things: HTTP 400: Invalid unitOfMeasurement.");
        assert_eq!(refused(StatusCode::UNPROCESSABLE_ENTITY, None, "x", b"").1.reason, Reason::Rejected);
        let (retry, f) = refused(StatusCode::NOT_FOUND, None, "POST /FROST-Server/v1.1/CreateObservations", b"");
        assert_eq!((retry, f.reason), (true, Reason::Missing));
        assert!(f.message.contains("DataArray plugin"), "{}", f.message);
        let (retry, f) = refused(StatusCode::METHOD_NOT_ALLOWED, None, "POST /v1.1/CreateObservations", b"");
        assert_eq!((retry, f.reason), (true, Reason::Server));
        assert!(f.message.contains("DataArray plugin"), "{}", f.message);
    }

    #[test]
    fn paths_keep_the_service_root_and_quote_string_ids() {
        let root = Url::parse("http://sta:8080/FROST-Server/v1.1").unwrap();
        assert_eq!(join(&root, "Things").unwrap().as_str(), "http://sta:8080/FROST-Server/v1.1/Things");
        let slash = Url::parse("http://sta:8080/FROST-Server/v1.1/").unwrap();
        assert_eq!(join(&slash, "Things").unwrap().path(), "/FROST-Server/v1.1/Things");
        assert_eq!(entity("Datastreams", &json!(7)), "Datastreams(7)");
        assert_eq!(entity("Datastreams", &json!("a'b")), "Datastreams('a''b')");
    }

    #[test]
    fn building_touches_no_network_and_checks_the_config() {
        let metrics = crate::metrics::SinkMetrics::register(&prometheus::Registry::new(), "test");
        let cfg = SensorThingsConfig { url: "http://127.0.0.1:9/FROST-Server/v1.1/".into(), ..Default::default() };
        let sink = SensorThingsSink::new(&cfg, SinkTelemetry::new(&metrics, "sta")).unwrap();
        assert_eq!(sink.root.as_str(), "http://127.0.0.1:9/FROST-Server/v1.1");
        let bad = SensorThingsConfig { url: "ftp://x".into(), ..Default::default() };
        let err = SensorThingsSink::new(&bad, SinkTelemetry::new(&metrics, "sta2")).err().unwrap();
        assert!(err.contains("url"), "{err}");
    }
}
