//! Keeps one NGSI-LD entity per sensor up to date with batch upserts:
//! `POST {url}/ngsi-ld/v1/entityOperations/upsert?options=update`, the body always an array.
//!
//! What each answer means for the readings of the request:
//! - 201 (some created) or 204 (all updated): taken.
//! - 207: the `errors` list names the entities that failed, in the specification's dialect or
//!   Scorpio's (`answer.rs`): those refused for their data (ProblemDetails `BadRequestData`,
//!   `InvalidRequest`) are refused; the others' readings are sent again, and only theirs.
//!   Orion-LD's legacy 207 with an empty `errors` list (a mix of creations and updates) is a success.
//! - 400 / 409 / 413 / 422 (about the data, [`crate::http_status`]): the broker refused the data;
//!   the readings are refused, counted, and the broker's ProblemDetails (`type`, `title`, `detail`)
//!   logged.
//! - Every other status (401 / 403 token refused, 404 tenant or endpoint missing, 429, 503
//!   `LdContextNotAvailable` and other 5xx) and no answer: about the broker, not the data; sent
//!   again after a back-off, honouring `Retry-After`. Nothing is dropped for them.
//!
//! Which readings reach the broker's history follows `history` (`rounds.rs`): by default every
//! reading, as successive upserts with one reading per entity each, oldest first; or the older ones
//! through the temporal API (`temporal.rs`) and the latest by upsert; or only the latest.
//! An entity whose reading must be sent again holds back its later readings of the batch: sending
//! them first would leave the entity at an older state once the retry lands.

use super::answer::{failed_entities, problem, problem_of, Failed};
use super::config::{ContentMode, NgsiLdConfig};
use super::rounds::{self, Item};
use super::temporal::temporal_entity;
use crate::http_client;
use crate::http_status::{self, Advice, Class};
use crate::sink::{Failure, Outcome, Reason, Sink, SinkTelemetry};
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE, LINK};
use reqwest::StatusCode;
use serde_json::Value;
use smartcity_model::codec::ngsi_ld::{self, Form, Options};
use smartcity_model::{Reading, SensorKind};
use std::collections::HashSet;
use std::time::Duration;

/// `check` asks for one entity of our types; a broker that answers 404 `TenantNotFound` passes: a
/// tenant is created by its first write, so a new deployment must not fail its check.
///
/// A context broker to upsert entities into. reqwest's pool connects on the first request.
pub struct NgsiLdSink {
    cfg: NgsiLdConfig,
    client: reqwest::Client,
    headers: HeaderMap,
    upsert_url: String,
    temporal_url: String,
}

impl NgsiLdSink {
    /// Reads the token and builds the HTTP client; no network.
    pub fn new(cfg: &NgsiLdConfig, _telemetry: SinkTelemetry) -> Result<Self, String> {
        let client = http_client::client(cfg.tls.as_ref(), Duration::from_secs(cfg.timeout_seconds))?;
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        match cfg.content {
            ContentMode::Json => {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                let link = HeaderValue::from_str(&super::link_header(&cfg.context_url))
                    .map_err(|e| format!("context_url cannot go in a Link header: {e}"))?;
                headers.insert(LINK, link);
            }
            ContentMode::LdJson => {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/ld+json"));
            }
        }
        headers.extend(super::broker_headers(cfg.tenant.as_deref(), &cfg.token_env, cfg.token_file.as_deref())?);
        let upsert_url = format!("{}/ngsi-ld/v1/entityOperations/upsert?options=update", cfg.url.trim_end_matches('/'));
        let temporal_url = format!("{}/ngsi-ld/v1/temporal/entities/", cfg.url.trim_end_matches('/'));
        Ok(NgsiLdSink { cfg: cfg.clone(), client, headers, upsert_url, temporal_url })
    }

    fn options(&self) -> Options<'_> {
        Options {
            form: Form::Normalized,
            context: (self.cfg.content == ContentMode::LdJson).then_some(self.cfg.context_url.as_str()),
            // Validated to (0, 86400] by the config; a default instead of a panic all the same.
            period: Duration::try_from_secs_f64(self.cfg.observation_period_seconds).unwrap_or(Duration::from_secs(5)),
        }
    }

    /// One upsert of the readings `sent` (batch indices, one per entity).
    async fn upsert(&self, batch: &[Reading], sent: &[usize]) -> Answer {
        let options = self.options();
        let body = Value::Array(sent.iter().map(|&i| ngsi_ld::entity(&batch[i], &options)).collect());
        self.post(&self.upsert_url, &body).await
    }

    /// The readings `older` (one entity's, oldest first) as instances of its history.
    async fn post_temporal(&self, batch: &[Reading], older: &[usize]) -> Answer {
        let body = temporal_entity(older.iter().map(|&i| &batch[i]), &self.options());
        self.post(&self.temporal_url, &body).await
    }

    async fn post(&self, url: &str, body: &Value) -> Answer {
        let sent = self.client.post(url).headers(self.headers.clone()).json(body).send().await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => return Answer::Retry(http_client::transport_failure(&e)),
        };
        let status = response.status();
        let retry_after = http_client::retry_after(response.headers());
        let text = response.text().await.unwrap_or_default();
        judge(status, retry_after, &text)
    }
}

/// What one upsert answer means.
#[derive(Debug, PartialEq)]
enum Answer {
    Taken,
    /// 207: these entity ids failed for the broker's reasons (to send again) and these for their
    /// data (refused), with the first error.
    Partial {
        retry: Vec<String>,
        reject: Vec<String>,
        failure: Failure,
    },
    Retry(Failure),
    Reject(Failure),
}

fn judge(status: StatusCode, retry_after: Option<Duration>, body: &str) -> Answer {
    match status.as_u16() {
        200 | 201 | 204 => Answer::Taken,
        207 => match failed_entities(body) {
            Ok(failed) if failed.is_empty() => Answer::Taken, // Orion-LD's legacy mixed create/update
            Ok(failed) => {
                let first = failed.first().map(|f| format!("{}: {}", f.id, f.why())).unwrap_or_default();
                let (data, broker): (Vec<_>, Vec<_>) = failed.into_iter().partition(Failed::about_the_data);
                let message = format!(
                    "207: {} entities refused for their data, {} to send again (first: {first})",
                    data.len(),
                    broker.len()
                );
                // The reason is the data's as soon as one entity was refused for it: only then may
                // the outcome refuse readings (`Outcome::under_the_rule`).
                let reason = if data.is_empty() { Reason::Server } else { Reason::Rejected };
                Answer::Partial {
                    retry: broker.into_iter().map(|f| f.id).collect(),
                    reject: data.into_iter().map(|f| f.id).collect(),
                    failure: Failure::new(reason, message),
                }
            }
            Err(why) => Answer::Retry(Failure::new(Reason::Server, format!("207 with an unreadable body ({why})"))),
        },
        _ => match http_status::failure(status, retry_after, "upsert", &problem(body), &ADVICE) {
            (Class::Taken, _) => Answer::Taken,
            (Class::Data, f) => Answer::Reject(f),
            (Class::Destination(_), f) => Answer::Retry(f),
        },
    }
}

/// What an operator changes when a broker refuses us.
const ADVICE: Advice = Advice {
    auth: "token refused by the broker: check token_file (or the token variable)",
    missing: "check url and tenant",
};

/// The fate of a batch's readings while its requests go out.
struct Tally {
    settled: Vec<bool>,
    outcome: Outcome,
    /// Entities with a reading to send again: their later readings wait for it.
    held: HashSet<String>,
}

impl Tally {
    fn new(len: usize) -> Self {
        Tally { settled: vec![false; len], outcome: Outcome::ok(), held: HashSet::new() }
    }

    fn taken(&mut self, readings: &[usize]) {
        readings.iter().for_each(|&i| self.settled[i] = true);
    }

    fn rejected(&mut self, readings: &[usize]) {
        self.taken(readings);
        self.outcome.rejected.extend(readings);
    }

    /// A refusal for the data wins: it is what lets the outcome refuse readings.
    fn note(&mut self, failure: Failure) {
        if failure.reason.is_about_data() || self.outcome.failure.is_none() {
            self.outcome.failure = Some(failure);
        }
    }

    /// Every reading not taken nor refused is sent again.
    fn finish(mut self) -> Outcome {
        self.outcome.retry = (0..self.settled.len()).filter(|&i| !self.settled[i]).collect();
        self.outcome.rejected.sort_unstable();
        self.outcome
    }
}

impl Sink for NgsiLdSink {
    async fn send(&mut self, batch: &[Reading]) -> Outcome {
        let ids: Vec<String> = batch.iter().map(ngsi_ld::entity_id).collect();
        let groups = rounds::by_entity(batch, &ids);
        let mut tally = Tally::new(batch.len());
        let (posts, upserts) = rounds::plan(&groups, self.cfg.history, self.cfg.max_entities);
        for older in posts {
            match self.post_temporal(batch, &older).await {
                Answer::Taken => tally.taken(&older),
                Answer::Reject(f) => {
                    tally.rejected(&older);
                    tally.note(f);
                }
                // The broker is away or busy (a temporal entity has no partial answer): the
                // rest of the batch would fare no better now.
                Answer::Retry(f) | Answer::Partial { failure: f, .. } => {
                    tally.note(f);
                    return tally.finish();
                }
            }
        }
        for round in upserts {
            let round: Vec<&Item> = round.iter().filter(|item| !tally.held.contains(&ids[item.sent])).collect();
            for chunk in round.chunks(self.cfg.max_entities.max(1)) {
                let sent: Vec<usize> = chunk.iter().map(|item| item.sent).collect();
                match self.upsert(batch, &sent).await {
                    Answer::Taken => chunk.iter().for_each(|item| tally.taken(&item.covers)),
                    Answer::Partial { retry, reject, failure } => {
                        for item in chunk {
                            let id = &ids[item.sent];
                            if retry.contains(id) {
                                tally.held.insert(id.clone());
                            } else if reject.contains(id) {
                                tally.rejected(&item.covers);
                            } else {
                                tally.taken(&item.covers);
                            }
                        }
                        tally.note(failure);
                    }
                    Answer::Reject(f) => {
                        chunk.iter().for_each(|item| tally.rejected(&item.covers));
                        tally.note(f);
                    }
                    Answer::Retry(f) => {
                        tally.note(f);
                        return tally.finish();
                    }
                }
            }
        }
        tally.finish()
    }

    async fn check(&mut self) -> Result<String, Failure> {
        // Asking for entities of one of our types makes the broker expand it with our context: this
        // is where a broker that cannot fetch the context answers 503 LdContextNotAvailable.
        let kind = SensorKind::Traffic.smart_data_model();
        let url = format!("{}/ngsi-ld/v1/entities?type={kind}&limit=1", self.cfg.url.trim_end_matches('/'));
        let mut headers = self.headers.clone();
        headers.remove(CONTENT_TYPE);
        if self.cfg.content == ContentMode::LdJson {
            // A GET carries no body: the context goes in a Link header whatever the content mode.
            if let Ok(link) = HeaderValue::from_str(&super::link_header(&self.cfg.context_url)) {
                headers.insert(LINK, link);
            }
        }
        let response =
            self.client.get(&url).headers(headers).send().await.map_err(|e| http_client::transport_failure(&e))?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        match status.as_u16() {
            200 => Ok(format!(
                "broker at {} answered a query for {kind} with the context {}",
                self.cfg.address(),
                self.cfg.context_url
            )),
            // Brokers create a tenant on its first write: a new deployment is fine.
            404 if problem_of(&body).is_some_and(|p| p.short_kind() == "TenantNotFound") => Ok(format!(
                "broker at {} answered: tenant `{}` does not exist yet (brokers create it on the first write)",
                self.cfg.address(),
                self.cfg.tenant.as_deref().unwrap_or("")
            )),
            _ => Err(http_status::failure(status, None, "query", &problem(&body), &ADVICE).1),
        }
    }

    async fn close(self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_judged_by_the_policy() {
        assert_eq!(judge(StatusCode::CREATED, None, "[]"), Answer::Taken);
        assert_eq!(judge(StatusCode::NO_CONTENT, None, ""), Answer::Taken);
        assert_eq!(judge(StatusCode::MULTI_STATUS, None, r#"{"success":["a"],"errors":[]}"#), Answer::Taken);
        let partial = judge(
            StatusCode::MULTI_STATUS,
            None,
            r#"{"success":[],"errors":[{"entityId":"urn:a","error":{"type":"https://uri.etsi.org/ngsi-ld/errors/BadRequestData","title":"bad"}}]}"#,
        );
        // An entity refused for its data is refused; one failed for the broker's reasons is sent again.
        assert!(
            matches!(&partial, Answer::Partial { retry, reject, failure } if retry.is_empty() && reject == &["urn:a"]
                && failure.reason == Reason::Rejected && failure.message.contains("errors/BadRequestData: bad"))
        );
        let scorpio = judge(
            StatusCode::MULTI_STATUS,
            None,
            r#"{"errors":[{"type":"Upsert","id":"urn:b","ProblemDetails":{"type":"https://uri.etsi.org/ngsi-ld/errors/InternalError","title":"db"}}]}"#,
        );
        assert!(
            matches!(&scorpio, Answer::Partial { retry, reject, failure } if retry == &["urn:b"] && reject.is_empty()
                && failure.reason == Reason::Server)
        );
        let busy = judge(
            StatusCode::SERVICE_UNAVAILABLE,
            Some(Duration::from_secs(2)),
            r#"{"type":"https://uri.etsi.org/ngsi-ld/errors/LdContextNotAvailable","title":"cannot fetch"}"#,
        );
        assert!(
            matches!(&busy, Answer::Retry(f) if f.retry_after == Some(Duration::from_secs(2)) && f.message.contains("LdContextNotAvailable"))
        );
        assert!(
            matches!(judge(StatusCode::BAD_REQUEST, None, "{}"), Answer::Reject(f) if f.reason == Reason::Rejected)
        );
        assert!(matches!(judge(StatusCode::UNAUTHORIZED, None, ""), Answer::Retry(f) if f.reason == Reason::Auth));
        assert!(matches!(judge(StatusCode::NOT_FOUND, None, ""), Answer::Retry(f) if f.reason == Reason::Missing));
        assert!(matches!(judge(StatusCode::MULTI_STATUS, None, "nope"), Answer::Retry(_)));
    }
}
