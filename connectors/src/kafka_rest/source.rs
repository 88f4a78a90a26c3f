//! Reads readings through a Kafka REST proxy (Confluent v2 API) and hands each record on with an
//! acknowledgement; offsets are committed only for acknowledged records.
//!
//! Guarantee: at least once. One named consumer instance (`instance`) of the group (`group`) is
//! created on the proxy with automatic commits off; every `commit_interval_ms` the source commits,
//! per partition, the lowest offset still unacknowledged ([`Commits`]), which the proxy stores as
//! given (Kafka's convention: the next offset to read).
//!
//! The instance has a position of its own on the proxy, which moves as soon as the proxy hands
//! records out. So whenever records may have been handed out without reaching us (a fetch without
//! a usable answer), and whenever the proxy forgot the instance (it restarted, expired or deleted
//! it: `40403`), the source forgets everything it tracks, creates the instance and its
//! subscription again, and re-reads from the committed offsets: duplicates, never loss. Carrying on
//! with the old instance would commit past records we never saw. For the same reason a fetch in
//! flight is never abandoned while the instance lives on: the loop keeps it across commits and
//! hand-overs.
//!
//! Back-pressure: records are fetched only once the previous fetch is handed on entirely; while the
//! `out` queue is full nothing is fetched, but commits go on. (A proxy closes instances idle for
//! longer than its instance timeout, 5 minutes with Confluent's: the instance is then recreated as
//! above.)
//!
//! Shutdown: fetching stops, acks are awaited for up to 10 s, the commit points are committed and
//! the instance is deleted (a killed gateway leaves it behind instead; the next start deletes it).

use super::consume::{self, Fetched, Trouble};
use super::source_config::KafkaRestSourceConfig;
use super::{join, BINARY_V2, V2};
use crate::http_client::{self, transport_failure};
use crate::kafka::commits::{Commits, Point};
use crate::kafka::source::wait_for_acks;
use crate::metrics::SourceMetrics;
use crate::retry::Backoff;
use crate::secret;
use crate::source::{Message, SourceError};
use bytes::Bytes;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::Method;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use url::Url;

/// Lists the proxy's topics as the source would ask (reachable, TLS and credentials accepted).
/// Creates no consumer instance, reads nothing.
pub async fn check(cfg: &KafkaRestSourceConfig) -> Result<String, crate::sink::Failure> {
    use crate::sink::{classify, Failure};
    let setup = |e: String| Failure::new(classify(&e), e);
    let client =
        http_client::client(cfg.tls.as_ref(), std::time::Duration::from_secs(cfg.timeout_seconds)).map_err(setup)?;
    let url = format!("{}/topics", cfg.url.trim_end_matches('/'));
    let mut request = client.get(&url).header(ACCEPT, V2);
    if let Some(user) = &cfg.username {
        request =
            request.basic_auth(user, secret::read(&cfg.password_env, cfg.password_file.as_deref()).map_err(setup)?);
    }
    let response = request.send().await.map_err(|e| transport_failure(&e))?;
    let status = response.status();
    if !status.is_success() {
        let words = super::error_words(&response.bytes().await.unwrap_or_default());
        let advice = crate::http_status::Advice { auth: "check user and password_file", missing: "check url" };
        return Err(crate::http_status::failure(status, None, &format!("GET {url}"), &words, &advice).1);
    }
    Ok(format!("the proxy at {} answers (group `{}`)", cfg.url, cfg.group))
}

type Shared = Arc<Mutex<Commits>>;
type InFlight<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
/// A commit request: the points sent, and what came of it.
type Committed = (Vec<Point>, Result<(), Trouble>);

fn lock(m: &Mutex<Commits>) -> MutexGuard<'_, Commits> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// How a session (one consumer instance) ended.
enum End {
    Stop,
    /// The instance is gone or its position uncertain: create a new one.
    Lost(String),
    Fatal(String),
}

/// The URLs of the instance's endpoints.
struct Urls {
    create: Url,
    instance: Url,
    subscription: Url,
    records: Url,
    offsets: Url,
}

/// A consumer instance on a REST proxy over the topics of the six kinds.
pub struct KafkaRestSource {
    cfg: KafkaRestSourceConfig,
    metrics: SourceMetrics,
    client: reqwest::Client,
    auth: Option<(String, Option<String>)>,
    urls: Urls,
    who: String,
}

impl KafkaRestSource {
    /// Checks the settings, reads the password and the TLS files; connects later, in
    /// [`KafkaRestSource::run`].
    pub fn new(cfg: KafkaRestSourceConfig, metrics: SourceMetrics) -> Result<Self, SourceError> {
        Self::build(cfg, metrics).map_err(SourceError::Settings)
    }

    fn build(cfg: KafkaRestSourceConfig, metrics: SourceMetrics) -> Result<Self, String> {
        let who = format!("kafka-rest source `{}`", cfg.name);
        let problems = cfg.problems();
        if !problems.is_empty() {
            let list: Vec<String> = problems.iter().map(|(f, m)| format!("{f}: {m}")).collect();
            return Err(format!("{who}: {}", list.join("; ")));
        }
        let base = Url::parse(&cfg.url).map_err(|e| format!("{who}: url `{}`: {e}", cfg.url))?;
        let instance = join(&base, &["consumers", &cfg.group, "instances", &cfg.instance])?;
        let mut records = join(&instance, &["records"])?;
        records
            .query_pairs_mut()
            .append_pair("timeout", &cfg.poll_timeout_ms.to_string())
            .append_pair("max_bytes", &cfg.max_bytes.to_string());
        let urls = Urls {
            create: join(&base, &["consumers", &cfg.group])?,
            subscription: join(&instance, &["subscription"])?,
            offsets: join(&instance, &["offsets"])?,
            records,
            instance,
        };
        let auth = match &cfg.username {
            Some(user) => Some((user.clone(), secret::read(&cfg.password_env, cfg.password_file.as_deref())?)),
            None => None,
        };
        let client = http_client::client(cfg.tls.as_ref(), cfg.timeout()).map_err(|e| format!("{who}: {e}"))?;
        Ok(KafkaRestSource { cfg, metrics, client, auth, urls, who })
    }

    /// Runs until `stop` (or until `out` is closed); recreates the instance by itself and waits out
    /// credentials refused or a missing endpoint (saying what to change), so it returns an error only
    /// when the proxy refuses the very requests the v2 API defines (400, 409 or 422 on them).
    pub async fn run(self, out: mpsc::Sender<Message>, stop: CancellationToken) -> Result<(), SourceError> {
        let name: Arc<str> = self.cfg.name.as_str().into();
        let connected = self.metrics.connected.with_label_values(&[&*name]);
        let commits: Shared = Arc::default();
        let server = format!("{} at {}", self.who, self.cfg.address());
        let mut backoff = Backoff::default();
        let mut exists = false;
        let result = loop {
            let opened = tokio::select! {
                _ = stop.cancelled() => break Ok(()),
                opened = self.open() => opened,
            };
            match opened {
                Ok(()) => exists = true,
                Err(Trouble::Fatal(m)) => break Err(m),
                Err(Trouble::Gone(m) | Trouble::Exists(m) | Trouble::Retry(m)) => {
                    tokio::select! {
                        _ = stop.cancelled() => break Ok(()),
                        _ = backoff.failed(&server, m) => continue,
                    }
                }
            }
            connected.set(1);
            tracing::info!(
                "{}: consumer instance `{}` of group `{}` reading {} through {}",
                self.who,
                self.cfg.instance,
                self.cfg.group,
                self.cfg.topics().join(", "),
                self.cfg.address()
            );
            let end = self.serve(&name, &commits, &out, &stop, &mut backoff).await;
            connected.set(0);
            match end {
                End::Stop => break Ok(()),
                End::Fatal(m) => break Err(m),
                End::Lost(why) => {
                    // Late acks of what was handed on are ignored; it is all read again.
                    lock(&commits).clear();
                    let why = format!(
                        "{why}; creating consumer instance `{}` again (records not committed yet will be read again)",
                        self.cfg.instance
                    );
                    tokio::select! {
                        _ = stop.cancelled() => break Ok(()),
                        _ = backoff.failed(&server, why) => {}
                    }
                }
            }
        };
        if exists {
            self.close(&commits).await;
        }
        connected.set(0);
        result.map_err(|m| SourceError::Refused(format!("{}: {m}", self.who)))
    }

    /// One request: the body of a 2xx answer, else what the answer means.
    async fn call(&self, method: Method, url: &Url, body: Option<serde_json::Value>) -> Result<Bytes, Trouble> {
        let what = format!("{method} {}", url.path());
        let accept = if url == &self.urls.records { BINARY_V2 } else { V2 };
        let mut request = self.client.request(method, url.clone()).header(ACCEPT, accept);
        if let Some((user, password)) = &self.auth {
            request = request.basic_auth(user, password.as_ref());
        }
        if let Some(body) = body {
            request = request.header(CONTENT_TYPE, V2).body(body.to_string());
        }
        let failed = |e: reqwest::Error| Trouble::Retry(format!("{what}: {}", transport_failure(&e).message));
        let response = request.send().await.map_err(failed)?;
        let status = response.status();
        let answer = response.bytes().await.map_err(failed)?;
        if status.is_success() {
            Ok(answer)
        } else {
            Err(consume::trouble(status.as_u16(), &answer, &what))
        }
    }

    /// Creates the instance (replacing a stale one of the same name) and subscribes it.
    async fn open(&self) -> Result<(), Trouble> {
        let body = consume::create_body(&self.cfg.instance);
        match self.call(Method::POST, &self.urls.create, Some(body.clone())).await {
            Ok(_) => {}
            Err(Trouble::Exists(_)) => {
                // Left by a gateway that was killed (or by this one, before the proxy became
                // unreachable). Reusing it would skip what it fetched and we never wrote.
                tracing::info!(
                    "{}: consumer instance `{}` already exists on the proxy: deleting it and starting afresh",
                    self.who,
                    self.cfg.instance
                );
                self.delete().await?;
                self.call(Method::POST, &self.urls.create, Some(body)).await?;
            }
            Err(t) => return Err(t),
        }
        let topics = consume::subscription_body(&self.cfg.topics());
        self.call(Method::POST, &self.urls.subscription, Some(topics)).await.map(|_| ())
    }

    /// Deletes the instance; one that is already gone is fine.
    async fn delete(&self) -> Result<(), Trouble> {
        match self.call(Method::DELETE, &self.urls.instance, None).await {
            Ok(_) | Err(Trouble::Gone(_)) => Ok(()),
            Err(t) => Err(t),
        }
    }

    async fn fetch(&self) -> Result<Vec<Fetched>, Trouble> {
        let answer = self.call(Method::GET, &self.urls.records, None).await?;
        consume::records(&answer).map_err(Trouble::Retry)
    }

    async fn commit(&self, points: Vec<Point>) -> Committed {
        let result = self.call(Method::POST, &self.urls.offsets, Some(consume::offsets_body(&points))).await;
        (points, result.map(|_| ()))
    }

    /// One session: fetch, hand on, commit, until the instance is lost or `stop`.
    async fn serve(
        &self,
        name: &Arc<str>,
        commits: &Shared,
        out: &mpsc::Sender<Message>,
        stop: &CancellationToken,
        backoff: &mut Backoff,
    ) -> End {
        let received = self.metrics.received.with_label_values(&[&**name]);
        let mut buffer: VecDeque<Fetched> = VecDeque::new();
        let mut fetching: Option<InFlight<'_, Result<Vec<Fetched>, Trouble>>> = None;
        let mut committing: Option<InFlight<'_, Committed>> = None;
        let mut tick = tokio::time::interval(Duration::from_millis(self.cfg.commit_interval_ms));
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut answered = false;
        let mut commit_failures: u64 = 0;
        loop {
            if fetching.is_none() && buffer.is_empty() {
                fetching = Some(Box::pin(self.fetch()));
            }
            tokio::select! {
                biased;
                _ = stop.cancelled() => return End::Stop,
                done = async { committing.as_mut().expect("guarded").await }, if committing.is_some() => {
                    committing = None;
                    match done {
                        (_, Ok(())) => commit_failures = 0,
                        (_, Err(Trouble::Gone(m) | Trouble::Exists(m))) => return End::Lost(m),
                        (_, Err(Trouble::Fatal(m))) => return End::Fatal(m),
                        // The instance is unaffected by a failed commit: send it again with the next.
                        (points, Err(Trouble::Retry(m))) => {
                            commit_failures += 1;
                            if commit_failures == 1 || commit_failures.is_multiple_of(30) {
                                tracing::warn!("{}: offset commit failed {commit_failures} time(s) in a row (will retry): {m}", self.who);
                            }
                            lock(commits).failed(points);
                        }
                    }
                }
                _ = tick.tick(), if committing.is_none() => {
                    let due = lock(commits).due();
                    if !due.is_empty() {
                        committing = Some(Box::pin(self.commit(due)));
                    }
                }
                permit = out.reserve(), if !buffer.is_empty() => {
                    let Ok(permit) = permit else { return End::Stop }; // the consumer of `out` is gone
                    let Some(r) = buffer.pop_front() else { continue };
                    received.inc();
                    lock(commits).received(&r.topic, r.partition, r.offset);
                    let (shared, topic, partition, offset) = (commits.clone(), r.topic.clone(), r.partition, r.offset);
                    let ack = Box::new(move || lock(&shared).acked(&topic, partition, offset));
                    permit.send(Message::new(name.clone(), r.topic, r.value, ack));
                }
                fetched = async { fetching.as_mut().expect("guarded").await }, if fetching.is_some() => {
                    fetching = None;
                    match fetched {
                        Ok(records) => {
                            if !answered {
                                // The session works: the next failure starts from the shortest delay.
                                answered = true;
                                backoff.reset();
                            }
                            buffer.extend(records);
                        }
                        Err(Trouble::Fatal(m)) => return End::Fatal(m),
                        Err(Trouble::Gone(m) | Trouble::Exists(m)) => {
                            return End::Lost(format!("the proxy no longer knows the consumer instance ({m})"))
                        }
                        // The proxy may have handed out records that never reached us.
                        Err(Trouble::Retry(m)) => return End::Lost(format!("fetching records failed: {m}")),
                    }
                }
            }
        }
    }

    /// Shutdown: waits for acks, commits every commit point, deletes the instance.
    async fn close(&self, commits: &Shared) {
        wait_for_acks(commits, &self.who).await;
        let points = lock(commits).all();
        if !points.is_empty() {
            if let (_, Err(t)) = self.commit(points).await {
                tracing::warn!("{}: final offset commit failed: {t}", self.who);
            }
        }
        match self.delete().await {
            Ok(()) => tracing::info!("{}: consumer instance `{}` deleted", self.who, self.cfg.instance),
            Err(t) => tracing::warn!(
                "{}: consumer instance `{}` not deleted ({t}); the next start replaces it",
                self.who,
                self.cfg.instance
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics() -> SourceMetrics {
        SourceMetrics::register(&crate::metrics::registry("t"), "t")
    }

    #[test]
    fn urls_are_built_from_the_configured_base() {
        let cfg = KafkaRestSourceConfig {
            url: "http://proxy:8082/kafka".into(),
            group: "g".into(),
            instance: "i-1".into(),
            ..Default::default()
        };
        let s = KafkaRestSource::new(cfg, metrics()).unwrap();
        assert_eq!(s.urls.create.as_str(), "http://proxy:8082/kafka/consumers/g");
        assert_eq!(s.urls.offsets.as_str(), "http://proxy:8082/kafka/consumers/g/instances/i-1/offsets");
        assert_eq!(
            s.urls.records.as_str(),
            "http://proxy:8082/kafka/consumers/g/instances/i-1/records?timeout=1000&max_bytes=1048576"
        );
        let bad = KafkaRestSourceConfig { instance: "a/b".into(), ..Default::default() };
        let refused = KafkaRestSource::new(bad, metrics()).err().unwrap();
        assert!(matches!(&refused, SourceError::Settings(m) if m.contains("instance")), "{refused}");
    }

    #[tokio::test]
    async fn unreachable_proxy_is_retried_until_stop() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let cfg = KafkaRestSourceConfig {
            name: "unreachable".into(),
            url: format!("http://127.0.0.1:{port}"),
            ..Default::default()
        };
        let m = metrics();
        let source = KafkaRestSource::new(cfg, m.clone()).unwrap();
        let (tx, _rx) = mpsc::channel(4);
        let stop = CancellationToken::new();
        let task = tokio::spawn(source.run(tx, stop.clone()));
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert!(!task.is_finished(), "gave up instead of retrying");
        stop.cancel();
        let result = tokio::time::timeout(Duration::from_secs(3), task).await.expect("stops promptly").unwrap();
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(m.connected.with_label_values(&["unreachable"]).get(), 0);
    }
}
