//! Publishes readings through a Kafka REST proxy: one `POST /topics/{topic}` per topic and chunk of
//! the batch. The proxy answers once Kafka acknowledged the records, with one offset (or error) per
//! record, so a reading counts as published only when its own entry says so.
//!
//! Status policy: 5xx and 429 are retried (honouring `Retry-After`), 401/403 and other 4xx refuse
//! the request's readings for good, a transport error retries them.

use super::config::KafkaRestConfig;
use super::{error_words, join, plan, written, Written, BINARY_V2, V2};
use crate::http_client::{self, retry_after, transport_failure};
use crate::http_status::{self, Advice};
use crate::secret;
use crate::sink::{expand_topic, Failure, Outcome, Reason, Sink, SinkTelemetry};
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::{RequestBuilder, StatusCode};
use smartcity_model::{Reading, SensorKind};
use std::time::Duration;
use url::Url;

/// A REST proxy client.
pub struct KafkaRestSink {
    client: reqwest::Client,
    base: Url,
    address: String,
    /// The distinct topics with their produce URL.
    topics: Vec<(String, Url)>,
    /// Index into `topics` of each kind, in the order of `SensorKind::ALL`.
    topic_of_kind: [usize; 6],
    /// Basic-auth user and password.
    auth: Option<(String, Option<String>)>,
    max_records: usize,
    max_bytes: usize,
}

/// What came of one request.
enum Sent {
    /// A 2xx answer: the fate of each record.
    Answered(Vec<Written>),
    /// No usable answer: its readings are to be sent again. `everything` when the proxy is
    /// unreachable or rate-limiting us: the other requests of the batch would meet the same answer
    /// (or the same timeout, one after the other), so they wait too.
    Retry { failure: Failure, everything: bool },
    /// Refused for good (4xx).
    Refused(Failure),
}

/// The failure of a non-2xx answer, and whether to retry: the shared status policy
/// ([`crate::http_status`]), refusing only what is about the data.
fn refused(status: StatusCode, wait: Option<Duration>, what: &str, answer: &[u8]) -> (bool, Failure) {
    let advice = Advice {
        auth: "credentials refused by the REST proxy: check user and password_file",
        missing: "check url and topic_template: the topic may not exist and the proxy may not create it",
    };
    http_status::retry_or_refuse(status, wait, what, &error_words(answer), &advice)
}

impl KafkaRestSink {
    /// Builds the HTTP client (reads the password and the TLS files). No network.
    pub fn new(cfg: &KafkaRestConfig, _telemetry: SinkTelemetry) -> Result<Self, String> {
        let problems = cfg.problems();
        if !problems.is_empty() {
            let list: Vec<String> = problems.iter().map(|(f, m)| format!("{f}: {m}")).collect();
            return Err(format!("sink `{}`: {}", cfg.name, list.join("; ")));
        }
        let base = Url::parse(&cfg.url).map_err(|e| format!("url `{}`: {e}", cfg.url))?;
        let mut topics: Vec<(String, Url)> = Vec::new();
        let mut topic_of_kind = [0; 6];
        for (slot, kind) in topic_of_kind.iter_mut().zip(SensorKind::ALL) {
            let topic = expand_topic(&cfg.topic_template, kind.as_str());
            *slot = match topics.iter().position(|(t, _)| *t == topic) {
                Some(i) => i,
                None => {
                    let url = join(&base, &["topics", &topic])?;
                    topics.push((topic, url));
                    topics.len() - 1
                }
            };
        }
        let auth = match &cfg.username {
            Some(user) => Some((user.clone(), secret::read(&cfg.password_env, cfg.password_file.as_deref())?)),
            None => None,
        };
        Ok(KafkaRestSink {
            client: http_client::client(cfg.tls.as_ref(), cfg.timeout())?,
            base,
            address: cfg.address(),
            topics,
            topic_of_kind,
            auth,
            max_records: cfg.max_records,
            max_bytes: cfg.max_bytes,
        })
    }

    /// `Accept` and basic auth, common to every request.
    fn authorised(&self, builder: RequestBuilder) -> RequestBuilder {
        let builder = builder.header(ACCEPT, V2);
        match &self.auth {
            Some((user, password)) => builder.basic_auth(user, password.as_ref()),
            None => builder,
        }
    }

    async fn post(&self, topic: usize, body: Vec<u8>, records: usize) -> Sent {
        let Some((name, url)) = self.topics.get(topic) else {
            return Sent::Refused(Failure::new(Reason::Rejected, format!("no topic #{topic}")));
        };
        let what = format!("POST {}", url.path());
        let request = self.authorised(self.client.post(url.clone())).header(CONTENT_TYPE, BINARY_V2).body(body);
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return Sent::Retry { failure: transport_failure(&e), everything: true },
        };
        let status = response.status();
        let wait = retry_after(response.headers());
        let answer = match response.bytes().await {
            Ok(b) => b,
            Err(e) => return Sent::Retry { failure: transport_failure(&e), everything: true },
        };
        if !status.is_success() {
            return match refused(status, wait, &what, &answer) {
                // A 5xx may be one topic's trouble: the other topics are still tried.
                (true, failure) => Sent::Retry { failure, everything: status == StatusCode::TOO_MANY_REQUESTS },
                (false, failure) => Sent::Refused(failure),
            };
        }
        match written(&answer, records) {
            Ok(fates) => Sent::Answered(fates),
            // Perhaps written, perhaps not: sending again risks a duplicate, never a loss.
            Err(m) => {
                Sent::Retry { failure: Failure::new(Reason::Server, format!("topic `{name}`: {m}")), everything: false }
            }
        }
    }
}

impl Sink for KafkaRestSink {
    async fn send(&mut self, batch: &[Reading]) -> Outcome {
        let requests = plan(batch, |r| self.topic_of_kind[r.kind() as usize], self.max_records, self.max_bytes);
        let mut outcome = Outcome::ok();
        let mut requests = requests.into_iter();
        while let Some(request) = requests.next() {
            let topic = self.topics.get(request.topic).map(|(t, _)| t.as_str()).unwrap_or_default();
            match self.post(request.topic, request.body, request.indices.len()).await {
                Sent::Answered(fates) => {
                    for (fate, &i) in fates.iter().zip(&request.indices) {
                        let (list, reason, words) = match fate {
                            Written::Taken => continue,
                            Written::Rejected(m) => (&mut outcome.rejected, Reason::Rejected, m),
                            Written::Retry(m) => (&mut outcome.retry, Reason::Server, m),
                        };
                        list.push(i);
                        outcome.failure.get_or_insert_with(|| {
                            Failure::new(reason, format!("topic `{topic}`: record not written: {words}"))
                        });
                    }
                }
                Sent::Retry { failure, everything } => {
                    outcome.retry.extend(&request.indices);
                    outcome.failure.get_or_insert(failure);
                    if everything {
                        for rest in requests.by_ref() {
                            outcome.retry.extend(rest.indices);
                        }
                    }
                }
                Sent::Refused(failure) => {
                    outcome.rejected.extend(&request.indices);
                    outcome.failure.get_or_insert(failure);
                }
            }
        }
        outcome.retry.sort_unstable();
        outcome.rejected.sort_unstable();
        outcome
    }

    async fn check(&mut self) -> Result<String, Failure> {
        let url = join(&self.base, &["topics"]).map_err(|m| Failure::new(Reason::Rejected, m))?;
        let what = format!("GET {}", url.path());
        let response = self.authorised(self.client.get(url)).send().await.map_err(|e| transport_failure(&e))?;
        let status = response.status();
        let wait = retry_after(response.headers());
        let answer = response.bytes().await.map_err(|e| transport_failure(&e))?;
        if !status.is_success() {
            return Err(refused(status, wait, &what, &answer).1);
        }
        let listed: Vec<serde_json::Value> = serde_json::from_slice(&answer).map_err(|e| {
            let excerpt = http_client::excerpt(&String::from_utf8_lossy(&answer));
            Failure::new(Reason::Server, format!("{what} answered no list of topics ({e}): {excerpt}"))
        })?;
        let names: Vec<&str> = listed.iter().filter_map(|v| v.as_str()).collect();
        let report: Vec<String> = self
            .topics
            .iter()
            .map(|(topic, _)| match names.contains(&topic.as_str()) {
                true => format!("{topic} present"),
                false => format!("{topic} absent (auto-created on first write if the broker allows)"),
            })
            .collect();
        Ok(format!("REST proxy at {}: {} topics listed; {}", self.address, names.len(), report.join(", ")))
    }

    async fn close(self) {
        // Every request was answered before send() returned: nothing is buffered here.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_policy() {
        let (retry, f) = refused(StatusCode::SERVICE_UNAVAILABLE, Some(Duration::from_secs(7)), "POST /topics/x", b"");
        assert!(retry);
        assert_eq!((f.reason, f.retry_after), (Reason::Server, Some(Duration::from_secs(7))));
        assert!(refused(StatusCode::TOO_MANY_REQUESTS, None, "POST /topics/x", b"").0);
        // Credentials and a missing topic are about the proxy: retried, never refused.
        let (retry, f) = refused(StatusCode::UNAUTHORIZED, Some(Duration::from_secs(7)), "POST /topics/x", b"");
        assert!(retry);
        assert_eq!((f.reason, f.retry_after), (Reason::Auth, Some(Duration::from_secs(7))));
        let body = br#"{"error_code":40401,"message":"Topic not found."}"#;
        let (retry, f) = refused(StatusCode::NOT_FOUND, None, "POST /topics/x", body);
        assert!(retry);
        assert_eq!(f.reason, Reason::Missing);
        assert!(
            f.message.starts_with("POST /topics/x: HTTP 404: error_code 40401: Topic not found. (check url"),
            "{}",
            f.message
        );
        let body = br#"{"error_code":42201,"message":"Unrecognized field"}"#;
        let (retry, f) = refused(StatusCode::UNPROCESSABLE_ENTITY, None, "POST /topics/x", body);
        assert_eq!((retry, f.reason), (false, Reason::Rejected));
    }

    #[test]
    fn topic_urls_are_escaped_and_keep_the_base_path() {
        let base = Url::parse("http://proxy:8082/kafka/").unwrap();
        assert_eq!(join(&base, &["topics", "a b/c"]).unwrap().as_str(), "http://proxy:8082/kafka/topics/a%20b%2Fc");
        let root = Url::parse("http://proxy:8082").unwrap();
        assert_eq!(join(&root, &["topics"]).unwrap().as_str(), "http://proxy:8082/topics");
    }

    #[test]
    fn one_topic_for_all_kinds_is_one_route() {
        let metrics = crate::metrics::SinkMetrics::register(&prometheus::Registry::new(), "test");
        let cfg = KafkaRestConfig { topic_template: "readings".into(), ..Default::default() };
        let sink = KafkaRestSink::new(&cfg, SinkTelemetry::new(&metrics, "rest")).unwrap();
        assert_eq!(sink.topics.len(), 1);
        assert_eq!(sink.topic_of_kind, [0; 6]);
        let per_kind = KafkaRestSink::new(&KafkaRestConfig::default(), SinkTelemetry::new(&metrics, "rest2")).unwrap();
        assert_eq!(per_kind.topics[per_kind.topic_of_kind[1]].1.path(), "/topics/air-quality");
    }
}
