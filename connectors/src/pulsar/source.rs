//! Consumes readings from Pulsar topics and hands each message on with its acknowledgement.
//!
//! Guarantee: at least once. A message is acknowledged only when the consumer calls
//! [`PulsarDelivery::ack`] (after its downstream write), or once its copy on the dead-letter topic has
//! a receipt. Whatever is unacknowledged when the consumer is recreated or the process stops is
//! redelivered by the broker. With `failover`/`exclusive` subscriptions a negative acknowledgement
//! makes the broker resend every unacknowledged message, not just that one: duplicates, still at
//! least once (`key_shared`, the default, resends only that message).
//!
//! One task, the run loop, owns the client and the consumer. Deliveries talk to it through an
//! unbounded channel, so an ack never waits for room in the `out` queue; only the reading of new
//! messages stops while `out` is full (back-pressure; the client then holds at most
//! `receiver_queue` messages per topic).
//!
//! Dead letters: [`PulsarDelivery::dead_letter`], or a nack when the message was already redelivered
//! `max_redeliveries` times (counted in this process), produces the raw payload to
//! `dead_letter_topic` with the same key, event time and properties, plus `reason`, `origin_topic`,
//! `origin_message_id` (and `redeliveries` when nacks led there). Our count is lost on restart, so the client's own dead-letter policy is
//! also set, at twice the limit, as a backstop: its dead letters carry `REAL_TOPIC` and
//! `ORIGIN_MESSAGE_ID` but no `reason`, and it only works on `key_shared`/`shared` subscriptions (the
//! broker counts redeliveries only there).
//!
//! Watchdog: pulsar-rs consumers have been seen to stop receiving after a broker restart without any
//! error. When nothing arrived for `watchdog_seconds` while the run loop was waiting for messages, the
//! admin API is asked whether the subscription has messages that no consumer holds; if so, the client
//! and the consumer are recreated (counted in [`PulsarSource::watchdog_restarts`]). The consumer is
//! also recreated whenever its message stream ends.

use super::source_config::{anchored_regex, parse_topic, pattern_namespace, PulsarSourceConfig, SubscriptionType};
use crate::metrics::SourceMetrics;
use crate::retry::Backoff;
use ::pulsar::consumer::{DeadLetterPolicy, InitialPosition, Message};
use ::pulsar::proto::MessageIdData;
use ::pulsar::{Authentication, ConnectionRetryOptions, ConsumerOptions, OperationRetryOptions, Pulsar, TokioExecutor};
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{timeout, Instant};
use tokio_util::sync::CancellationToken;

type Client = Pulsar<TokioExecutor>;
type Consumer = ::pulsar::Consumer<Vec<u8>, TokioExecutor>;

/// How often a multi-topic consumer looks for new topics (pattern) or re-creates the per-topic
/// consumers it lost.
const TOPIC_REFRESH: Duration = Duration::from_secs(30);
/// Entries of the nack counts older than this are forgotten (the message was handled elsewhere).
const NACK_MEMORY: Duration = Duration::from_secs(3600);
/// Size of the nack counts at which old entries are looked for.
const NACK_PRUNE_AT: usize = 10_000;

/// Where a message came from: what its ack, nack or dead letter refers to.
#[derive(Debug, Clone)]
struct Origin {
    topic: String,
    id: MessageIdData,
    properties: Vec<(String, String)>,
    key_b64: Option<bool>,
    ordering_key: Option<Vec<u8>>,
}

impl Origin {
    fn key(&self) -> MsgKey {
        MsgKey {
            topic: self.topic.clone(),
            ledger: self.id.ledger_id,
            entry: self.id.entry_id,
            partition: self.id.partition.unwrap_or(-1),
            batch: self.id.batch_index.unwrap_or(-1),
        }
    }
}

/// Identity of a message across redeliveries (the ack set and batch size fields may differ).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct MsgKey {
    topic: String,
    ledger: u64,
    entry: u64,
    partition: i32,
    batch: i32,
}

/// A message given back for the dead-letter topic.
struct Letter {
    origin: Origin,
    payload: Vec<u8>,
    key: Option<String>,
    event_time: Option<u64>,
}

/// What the run loop is asked to do, by deliveries and by its own helper tasks.
enum Cmd {
    Ack(Origin),
    Nack(Letter, String),
    DeadLetter(Letter, String),
    /// Dropped without an answer: redeliver, without counting it as a nack.
    Release(Origin),
    /// A nack's delay is over.
    Redeliver(Origin),
    /// The dead-letter topic's receipt (or why there is none), with the metric label.
    DeadLettered(Origin, &'static str, Result<(), String>),
    /// A watchdog probe's answer for session `0`: the topics with undelivered messages.
    Probe(u64, Result<Vec<(String, u64)>, String>),
}

/// The acknowledgement side of a delivery; dropping it unanswered redelivers the message.
struct Handle {
    origin: Option<Origin>,
    tx: mpsc::UnboundedSender<Cmd>,
}

impl Handle {
    fn send(&mut self, cmd: impl FnOnce(Origin) -> Cmd) {
        if let Some(origin) = self.origin.take() {
            // The run loop is gone only at shutdown, when the broker redelivers anyway.
            let _ = self.tx.send(cmd(origin));
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.send(Cmd::Release);
    }
}

/// One received message and the means to acknowledge it. Dropping it without calling one of the
/// methods has it redelivered (without counting as a nack).
pub struct PulsarDelivery {
    /// Topic (for a partitioned topic, the partition's name).
    pub topic: String,
    /// The message's bytes as produced.
    pub payload: Vec<u8>,
    /// The message key (the sensor id for our producers); Base64 when a producer set a binary key.
    pub key: Option<String>,
    /// Event time set by the producer, in Unix milliseconds.
    pub event_time: Option<u64>,
    /// How many times this process negatively acknowledged this message before (0 on first delivery).
    pub redeliveries: u32,
    handle: Handle,
}

impl std::fmt::Debug for PulsarDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PulsarDelivery")
            .field("topic", &self.topic)
            .field("key", &self.key)
            .field("bytes", &self.payload.len())
            .field("redeliveries", &self.redeliveries)
            .finish()
    }
}

impl PulsarDelivery {
    /// The message is handled: acknowledge it.
    pub fn ack(mut self) {
        self.handle.send(Cmd::Ack);
    }

    /// The message could not be handled now: redeliver it after `redelivery_delay_ms`, or, when it
    /// was already redelivered `max_redeliveries` times, send it to the dead-letter topic with `reason`.
    pub fn nack(mut self, reason: &str) {
        let (payload, key, event_time) = (std::mem::take(&mut self.payload), self.key.take(), self.event_time);
        self.handle.send(|origin| Cmd::Nack(Letter { origin, payload, key, event_time }, reason.to_string()));
    }

    /// The message can never be handled (malformed, invalid): send it to the dead-letter topic with
    /// `reason` (start it with `decode:`, `invalid:` or `target:` to pick the metric label), then
    /// acknowledge it once the dead letter has its receipt.
    pub fn dead_letter(mut self, reason: &str) {
        let (payload, key, event_time) = (std::mem::take(&mut self.payload), self.key.take(), self.event_time);
        self.handle.send(|origin| Cmd::DeadLetter(Letter { origin, payload, key, event_time }, reason.to_string()));
    }
}

/// The `reason` label of the `rejected` metric for a dead letter: the word before the first `:` of
/// `reason` when it is `decode`, `invalid` or `target`, else `other`; `redeliveries` when nacks ran out.
pub fn reason_label(reason: &str, nacks_ran_out: bool) -> &'static str {
    if nacks_ran_out {
        return "redeliveries";
    }
    match reason.split(':').next().map(str::trim) {
        Some("decode") => "decode",
        Some("invalid") => "invalid",
        Some("target") => "target",
        _ => "other",
    }
}

/// A message id as text, `ledger:entry:partition[:batch index]` (the form the client's own dead
/// letters use).
pub fn message_id_text(id: &MessageIdData) -> String {
    let base = format!("{}:{}:{}", id.ledger_id, id.entry_id, id.partition.unwrap_or(-1));
    match id.batch_index {
        Some(b) if b >= 0 => format!("{base}:{b}"),
        _ => base,
    }
}

/// The dead-letter copy of a message: the raw payload, the same key and event time, the original's
/// properties plus `reason`, `origin_topic`, `origin_message_id`, and `redeliveries` when nacks led here.
fn dead_letter_message(letter: Letter, reason: &str, redeliveries: Option<u32>) -> ::pulsar::producer::Message {
    let mut properties: HashMap<String, String> = letter.origin.properties.into_iter().collect();
    properties.insert("reason".into(), reason.into());
    properties.insert("origin_topic".into(), letter.origin.topic);
    properties.insert("origin_message_id".into(), message_id_text(&letter.origin.id));
    if let Some(n) = redeliveries {
        properties.insert("redeliveries".into(), n.to_string());
    }
    ::pulsar::producer::Message {
        payload: letter.payload,
        properties,
        partition_key: letter.key,
        partition_key_b64_encoded: letter.origin.key_b64,
        ordering_key: letter.origin.ordering_key,
        event_time: letter.event_time,
        ..Default::default()
    }
}

/// Messages of `subscription` on one topic that no consumer holds, from the topic's admin stats:
/// the backlog less what is out for acknowledgement (the broker's count for shared subscriptions,
/// `in_flight`, ours, for the others). 0 when we are a stand-by failover consumer.
fn undelivered(stats: &serde_json::Value, subscription: &str, consumer_name: &str, in_flight: u64) -> u64 {
    let sub = &stats["subscriptions"][subscription];
    let active = sub["activeConsumerName"].as_str();
    if sub["type"].as_str() == Some("Failover") && active.is_some_and(|a| a != consumer_name) {
        return 0;
    }
    let backlog = sub["msgBacklog"].as_u64().unwrap_or(0);
    let unacked = sub["unackedMessages"].as_u64().unwrap_or(0);
    backlog.saturating_sub(unacked.max(in_flight))
}

/// Reads backlogs from the admin REST API, for the watchdog.
struct Probe {
    http: reqwest::Client,
    admin: String,
    token: Option<String>,
    subscription: String,
    consumer_name: String,
    topics: Vec<String>,
    pattern: Option<(regex::Regex, String)>,
}

impl Probe {
    /// GET `path` as JSON; `None` for 404.
    async fn get(&self, path: &str) -> Result<Option<serde_json::Value>, String> {
        let url = format!("{}{path}", self.admin.trim_end_matches('/'));
        let mut request = self.http.get(&url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|e| crate::http_client::transport_failure(&e).message)?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(format!("GET {url}: HTTP {}", response.status()));
        }
        response.json().await.map(Some).map_err(|e| format!("GET {url}: {e}"))
    }

    async fn topics(&self) -> Result<Vec<String>, String> {
        let Some((re, namespace_path)) = &self.pattern else { return Ok(self.topics.clone()) };
        let listed = self.get(&format!("/admin/v2/{namespace_path}")).await?.unwrap_or_default();
        let names = listed.as_array().map(Vec::as_slice).unwrap_or_default();
        Ok(names.iter().filter_map(|v| v.as_str()).filter(|t| re.is_match(t)).map(String::from).collect())
    }

    /// The topics with undelivered messages, and how many.
    async fn stuck(&self, in_flight: HashMap<String, u64>) -> Result<Vec<(String, u64)>, String> {
        let mut stuck = Vec::new();
        for topic in self.topics().await? {
            let Some(t) = parse_topic(&topic) else { continue };
            let base = format!("/admin/v2/{}/{}/{}/{}", t.domain, t.tenant, t.namespace, t.local);
            // A partitioned topic has no stats of its own under its base name, only partitioned-stats.
            let stats = match self.get(&format!("{base}/stats")).await? {
                Some(s) => s,
                None => match self.get(&format!("{base}/partitioned-stats")).await? {
                    Some(s) => s,
                    None => continue,
                },
            };
            let mine = in_flight.get(&topic).copied().unwrap_or(0);
            let n = undelivered(&stats, &self.subscription, &self.consumer_name, mine);
            if n > 0 {
                stuck.push((topic, n));
            }
        }
        Ok(stuck)
    }
}

/// A Pulsar subscription over the configured topics (or pattern).
pub struct PulsarSource {
    cfg: PulsarSourceConfig,
    metrics: SourceMetrics,
    token: Option<String>,
    pattern: Option<regex::Regex>,
    consumer_name: String,
    watchdog_restarts: Arc<AtomicU64>,
}

impl PulsarSource {
    /// Checks the settings and reads the token; connects later, in [`PulsarSource::run`].
    pub fn new(cfg: PulsarSourceConfig, metrics: SourceMetrics) -> Result<Self, String> {
        let problems = cfg.problems();
        if !problems.is_empty() {
            let list: Vec<String> = problems.into_iter().map(|(f, m)| format!("{f}: {m}")).collect();
            return Err(format!("pulsar source `{}`: {}", cfg.name, list.join("; ")));
        }
        let token = crate::secret::read(&cfg.token_env, cfg.token_file.as_deref())?;
        let pattern = cfg.topic_pattern.as_deref().map(anchored_regex).transpose().map_err(|e| e.to_string())?;
        let consumer_name = cfg.consumer_name.clone().unwrap_or_else(|| {
            let started = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            format!("{}-{}-{:x}", cfg.name, std::process::id(), started.as_millis())
        });
        Ok(PulsarSource { cfg, metrics, token, pattern, consumer_name, watchdog_restarts: Arc::default() })
    }

    /// How many times the watchdog recreated the client and consumer; the distribution binary can
    /// read it at any time (for instance into a metric of its own).
    pub fn watchdog_restarts(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.watchdog_restarts)
    }

    /// Runs until `shutdown` (or until `out` is closed); reconnects and resubscribes by itself, so it
    /// returns an error only when the client cannot be set up at all.
    pub async fn run(self, out: mpsc::Sender<PulsarDelivery>, shutdown: CancellationToken) -> Result<(), String> {
        let (tx, rx) = mpsc::unbounded_channel();
        let probe = self.probe()?;
        let received = self.metrics.received.with_label_values(&[self.cfg.name.as_str()]);
        let mut runner = Runner {
            src: self,
            tx,
            rx,
            nacks: HashMap::new(),
            in_flight: HashMap::new(),
            dead_letter_ready: false,
            probe,
            session: 0,
            probe_failures: 0,
            receipts_due: 0,
            received,
        };
        runner.run(out, shutdown).await
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.cfg.timeout_seconds)
    }

    fn probe(&self) -> Result<Option<Arc<Probe>>, String> {
        if self.cfg.watchdog_seconds == 0 {
            return Ok(None);
        }
        let https = self.cfg.admin_url.starts_with("https:");
        let tls = self
            .cfg
            .tls_ca_file
            .clone()
            .filter(|_| https)
            .map(|ca_file| crate::tls::TlsConfig { ca_file, ..Default::default() });
        let http = crate::http_client::client(tls.as_ref(), self.timeout())?;
        let pattern = match (&self.pattern, self.cfg.topic_pattern.as_deref().and_then(pattern_namespace)) {
            (Some(re), Some((domain, tenant, ns))) => Some((re.clone(), format!("{domain}/{tenant}/{ns}"))),
            _ => None,
        };
        Ok(Some(Arc::new(Probe {
            http,
            admin: self.cfg.admin_url.clone(),
            token: self.token.clone(),
            subscription: self.cfg.subscription.clone(),
            consumer_name: self.consumer_name.clone(),
            topics: self.cfg.topics.clone(),
            pattern,
        })))
    }

    async fn client(&self) -> Result<Client, String> {
        let mut builder = Pulsar::builder(self.cfg.url.as_str(), TokioExecutor)
            // We reconnect with our own back-off (and the watchdog): fail fast instead of the
            // client's default dozen retries of up to 30 s each.
            .with_connection_retry_options(ConnectionRetryOptions {
                min_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(1),
                max_retries: 1,
                connection_timeout: self.timeout().min(Duration::from_secs(10)),
                ..Default::default()
            })
            .with_operation_retry_options(OperationRetryOptions {
                operation_timeout: self.timeout(),
                retry_delay: Duration::from_millis(500),
                max_retries: Some(3),
            });
        if let Some(token) = &self.token {
            builder = builder.with_auth(Authentication { name: "token".into(), data: token.clone().into_bytes() });
        }
        if let Some(ca) = &self.cfg.tls_ca_file {
            builder = builder
                .with_certificate_chain_file(ca)
                .map_err(|e| format!("{}: {e}", ca.display()))?
                .with_allow_insecure_connection(false)
                .with_tls_hostname_verification_enabled(true);
        }
        match timeout(self.timeout(), builder.build()).await {
            Ok(Ok(client)) => Ok(client),
            Ok(Err(e)) => match crate::sink::classify(&e.to_string()) {
                crate::sink::Reason::Connect => Err(format!("cannot connect: {e}")),
                reason => Err(format!("cannot connect ({}): {e}", reason.as_str())),
            },
            Err(_) => Err(format!("no connection within {:?}", self.timeout())),
        }
    }

    /// Subscribes `dead_letter_subscription` to the dead-letter topic and closes the consumer again:
    /// the durable subscription stays, and keeps every dead letter until someone reads it.
    async fn create_dead_letter_subscription(&self, client: &Client) -> Result<(), String> {
        let build = client
            .consumer()
            .with_topic(&self.cfg.dead_letter_topic)
            .with_subscription(&self.cfg.dead_letter_subscription)
            .with_subscription_type(::pulsar::SubType::Shared)
            .with_consumer_name(format!("{}-dlq-setup", self.consumer_name))
            .with_options(ConsumerOptions::default().with_initial_position(InitialPosition::Earliest))
            .build::<Vec<u8>>();
        let mut consumer = match timeout(self.timeout(), build).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => return Err(format!("no answer within {:?}", self.timeout())),
        };
        let _ = timeout(self.timeout(), consumer.close()).await;
        Ok(())
    }

    async fn subscribe(&self, client: &Client) -> Result<Consumer, String> {
        let cfg = &self.cfg;
        let mut builder = client
            .consumer()
            .with_subscription(&cfg.subscription)
            .with_subscription_type(cfg.subscription_type.sub_type())
            .with_consumer_name(&self.consumer_name)
            // Flow permits: as many as the receiver queue holds.
            .with_batch_size(cfg.receiver_queue)
            // Earliest matters only where the subscription is new: on a topic that existed before
            // (or one a pattern finds up to 30 s after its first message), nothing retained is missed.
            .with_options(
                ConsumerOptions::default()
                    .with_receiver_queue_size(cfg.receiver_queue)
                    .with_initial_position(InitialPosition::Earliest),
            )
            .with_dead_letter_policy(DeadLetterPolicy {
                max_redeliver_count: (cfg.max_redeliveries.max(1) as usize) * 2,
                dead_letter_topic: cfg.dead_letter_topic.clone(),
            })
            .with_topic_refresh(TOPIC_REFRESH);
        builder = match (&self.pattern, cfg.topic_pattern.as_deref().and_then(pattern_namespace)) {
            (Some(re), Some((_, tenant, ns))) => {
                builder.with_topic_regex(re.clone()).with_lookup_namespace(format!("{tenant}/{ns}"))
            }
            _ => builder.with_topics(&cfg.topics),
        };
        match timeout(self.timeout(), builder.build()).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {:?}", self.timeout())),
        }
    }
}

/// Why a session (one client and consumer) ended.
enum End {
    Shutdown,
    Reconnect(String),
}

/// The run loop's state across sessions.
struct Runner {
    src: PulsarSource,
    tx: mpsc::UnboundedSender<Cmd>,
    rx: mpsc::UnboundedReceiver<Cmd>,
    /// Our nacks per message, and when the last one was.
    nacks: HashMap<MsgKey, (u32, Instant)>,
    /// Messages received and not yet acknowledged, dead-lettered or given back, per topic.
    in_flight: HashMap<String, u64>,
    dead_letter_ready: bool,
    probe: Option<Arc<Probe>>,
    session: u64,
    probe_failures: u64,
    /// Dead letters sent whose receipt has not come back yet.
    receipts_due: usize,
    /// `received` of the metrics, for this source.
    received: prometheus::IntCounter,
}

impl Runner {
    async fn run(&mut self, out: mpsc::Sender<PulsarDelivery>, shutdown: CancellationToken) -> Result<(), String> {
        let name = self.src.cfg.name.clone();
        let server = format!("pulsar source `{name}` at {}", self.src.cfg.url);
        let connected = self.src.metrics.connected.with_label_values(&[name.as_str()]);
        let mut backoff = Backoff::default();
        loop {
            let attempt = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                a = self.connect() => a,
            };
            let (client, consumer) = match attempt {
                Ok(session) => session,
                Err(e) => {
                    tokio::select! {
                        _ = shutdown.cancelled() => return Ok(()),
                        _ = backoff.failed(&server, e) => continue,
                    }
                }
            };
            backoff.reset();
            connected.set(1);
            tracing::info!(
                "{server}: subscription `{}` ({:?}) on {}",
                self.src.cfg.subscription,
                self.src.cfg.subscription_type,
                self.src.cfg.what()
            );
            let started = Instant::now();
            let end = self.serve(&client, consumer, &out, &shutdown).await;
            connected.set(0);
            match end {
                End::Shutdown => return Ok(()),
                End::Reconnect(why) => {
                    tracing::warn!("{server}: {why}; recreating the client and the consumer");
                    // A consumer that ends right after subscribing must not make us spin; connection
                    // failures that follow are the back-off's (and logged by it).
                    if started.elapsed() < Duration::from_secs(5) {
                        tokio::select! {
                            _ = shutdown.cancelled() => return Ok(()),
                            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        }
                    }
                }
            }
        }
    }

    async fn connect(&mut self) -> Result<(Client, Consumer), String> {
        let client = self.src.client().await?;
        if !self.dead_letter_ready {
            self.src.create_dead_letter_subscription(&client).await.map_err(|e| {
                format!(
                    "cannot create the dead-letter subscription `{}` on {}: {e}",
                    self.src.cfg.dead_letter_subscription, self.src.cfg.dead_letter_topic
                )
            })?;
            self.dead_letter_ready = true;
        }
        let consumer =
            self.src.subscribe(&client).await.map_err(|e| {
                format!("cannot subscribe `{}` to {}: {e}", self.src.cfg.subscription, self.src.cfg.what())
            })?;
        Ok((client, consumer))
    }

    /// Receives, hands on and acknowledges until the session has to end.
    async fn serve(
        &mut self,
        client: &Client,
        mut consumer: Consumer,
        out: &mpsc::Sender<PulsarDelivery>,
        shutdown: &CancellationToken,
    ) -> End {
        self.session += 1;
        let period = Duration::from_secs(self.src.cfg.watchdog_seconds.max(1));
        let mut tick = tokio::time::interval_at(Instant::now() + period, period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let watchdog = self.probe.is_some();
        let mut probing = false;
        let mut idle_since = Instant::now();
        let mut pending: Option<PulsarDelivery> = None;
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => {
                    drop(pending);
                    self.close(consumer).await;
                    return End::Shutdown;
                }
                Some(cmd) = self.rx.recv() => match cmd {
                    Cmd::Probe(session, result) if session == self.session => {
                        probing = false;
                        let still_idle = pending.is_none() && idle_since.elapsed() >= period;
                        if let Some(why) = self.probe_result(result).filter(|_| still_idle) {
                            self.src.watchdog_restarts.fetch_add(1, Ordering::Relaxed);
                            let idle = idle_since.elapsed();
                            return End::Reconnect(format!("watchdog: nothing received for {idle:.1?} but {why}"));
                        }
                    }
                    Cmd::Probe(..) => {} // from an earlier session
                    cmd => self.handle(cmd, client, &mut consumer).await,
                },
                permit = out.reserve(), if pending.is_some() => match permit {
                    Ok(permit) => {
                        if let Some(d) = pending.take() {
                            permit.send(d);
                        }
                    }
                    Err(_) => {
                        // The consumer of `out` is gone: nothing can be handled any more.
                        drop(pending);
                        self.close(consumer).await;
                        return End::Shutdown;
                    }
                },
                next = consumer.next(), if pending.is_none() => match next {
                    Some(Ok(msg)) => {
                        idle_since = Instant::now();
                        pending = self.received(msg, &mut consumer).await;
                    }
                    Some(Err(e)) => {
                        // One message the client could not read (its engine goes on): it stays
                        // unacknowledged and comes back with the next consumer.
                        tracing::warn!("pulsar source `{}`: {e}", self.src.cfg.name);
                    }
                    None => return End::Reconnect("the consumer's message stream ended".into()),
                },
                _ = tick.tick(), if watchdog => {
                    if pending.is_some() {
                        // Waiting for room in `out` is back-pressure, not a silent consumer.
                        idle_since = Instant::now();
                    } else if !probing && idle_since.elapsed() >= period {
                        probing = true;
                        self.spawn_probe();
                    }
                }
            }
        }
    }

    /// Turns a message into a delivery, or skips it (ours from the dead-letter topic).
    async fn received(&mut self, msg: Message<Vec<u8>>, consumer: &mut Consumer) -> Option<PulsarDelivery> {
        let Message { topic, payload, message_id, .. } = msg;
        if topic == self.src.cfg.dead_letter_topic {
            // A pattern that matches the dead-letter topic: its own subscription keeps the letters.
            let _ = consumer.ack_with_id(&topic, message_id.id).await;
            return None;
        }
        self.received.inc();
        *self.in_flight.entry(topic.clone()).or_default() += 1;
        let meta = payload.metadata;
        let origin = Origin {
            topic: topic.clone(),
            id: message_id.id,
            properties: meta.properties.into_iter().map(|kv| (kv.key, kv.value)).collect(),
            key_b64: meta.partition_key_b64_encoded,
            ordering_key: meta.ordering_key,
        };
        let redeliveries = self.nacks.get(&origin.key()).map_or(0, |(n, _)| *n);
        Some(PulsarDelivery {
            topic,
            payload: payload.data,
            key: meta.partition_key,
            event_time: meta.event_time,
            redeliveries,
            handle: Handle { origin: Some(origin), tx: self.tx.clone() },
        })
    }

    fn done(&mut self, origin: &Origin) {
        if let Some(n) = self.in_flight.get_mut(&origin.topic) {
            *n = n.saturating_sub(1);
        }
    }

    fn redeliver_later(&self, origin: Origin) {
        let tx = self.tx.clone();
        let delay = Duration::from_millis(self.src.cfg.redelivery_delay_ms);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = tx.send(Cmd::Redeliver(origin));
        });
    }

    async fn handle(&mut self, cmd: Cmd, client: &Client, consumer: &mut Consumer) {
        match cmd {
            Cmd::Ack(origin) => self.ack(origin, consumer).await,
            Cmd::Release(origin) => self.redeliver_later(origin),
            Cmd::Redeliver(origin) => {
                self.done(&origin);
                if let Err(e) = consumer.nack_with_id(&origin.topic, origin.id).await {
                    // The consumer of that topic is gone; its successor gets the message anyway.
                    tracing::debug!("nack on {} not sent: {e}", origin.topic);
                }
            }
            Cmd::Nack(letter, reason) => {
                let key = letter.origin.key();
                let count = self.nacks.get(&key).map_or(0, |(n, _)| *n);
                if count >= self.src.cfg.max_redeliveries {
                    self.send_dead_letter(client, letter, &reason, Some(count)).await;
                } else {
                    if self.nacks.len() >= NACK_PRUNE_AT {
                        // Messages acknowledged by another consumer never come back to be forgotten.
                        let now = Instant::now();
                        self.nacks.retain(|_, (_, at)| now.duration_since(*at) < NACK_MEMORY);
                    }
                    self.nacks.insert(key, (count + 1, Instant::now()));
                    self.redeliver_later(letter.origin);
                }
            }
            Cmd::DeadLetter(letter, reason) => {
                let count = self.nacks.get(&letter.origin.key()).map(|(n, _)| *n);
                self.send_dead_letter(client, letter, &reason, count.filter(|n| *n > 0)).await;
            }
            cmd @ Cmd::DeadLettered(..) => self.dead_lettered(cmd, consumer).await,
            Cmd::Probe(..) => {}
        }
    }

    /// A dead letter's receipt: acknowledge the original, or have it redelivered when there is none.
    async fn dead_lettered(&mut self, cmd: Cmd, consumer: &mut Consumer) {
        let Cmd::DeadLettered(origin, label, result) = cmd else { return };
        self.receipts_due = self.receipts_due.saturating_sub(1);
        match result {
            Ok(()) => {
                self.src.metrics.rejected.with_label_values(&[self.src.cfg.name.as_str(), label]).inc();
                self.ack(origin, consumer).await;
            }
            Err(e) => {
                tracing::warn!(
                    "pulsar source `{}`: message {} of {} not dead-lettered ({e}); it will be redelivered",
                    self.src.cfg.name,
                    message_id_text(&origin.id),
                    origin.topic
                );
                self.redeliver_later(origin);
            }
        }
    }

    async fn ack(&mut self, origin: Origin, consumer: &mut Consumer) {
        self.done(&origin);
        self.nacks.remove(&origin.key());
        if let Err(e) = consumer.ack_with_id(&origin.topic, origin.id).await {
            // The consumer of that topic is gone: the message comes back, at least once.
            tracing::debug!("ack on {} not sent: {e}", origin.topic);
        }
    }

    /// Produces the dead letter; its receipt comes back as [`Cmd::DeadLettered`], so the loop goes on.
    async fn send_dead_letter(&mut self, client: &Client, letter: Letter, reason: &str, redeliveries: Option<u32>) {
        let label = reason_label(reason, redeliveries.is_some_and(|n| n >= self.src.cfg.max_redeliveries));
        let origin = letter.origin.clone();
        let message = dead_letter_message(letter, reason, redeliveries);
        let tx = self.tx.clone();
        let limit = self.src.timeout();
        self.receipts_due += 1;
        match client.send(self.src.cfg.dead_letter_topic.clone(), message).await {
            Ok(receipt) => {
                tokio::spawn(async move {
                    let result = match timeout(limit, receipt).await {
                        Ok(Ok(_)) => Ok(()),
                        Ok(Err(e)) => Err(e.to_string()),
                        Err(_) => Err(format!("no receipt within {limit:?}")),
                    };
                    let _ = tx.send(Cmd::DeadLettered(origin, label, result));
                });
            }
            Err(e) => {
                let _ = tx.send(Cmd::DeadLettered(origin, label, Err(e.to_string())));
            }
        }
    }

    fn spawn_probe(&self) {
        let Some(probe) = self.probe.clone() else { return };
        let (tx, session, in_flight) = (self.tx.clone(), self.session, self.in_flight.clone());
        tokio::spawn(async move {
            let result = probe.stuck(in_flight).await;
            let _ = tx.send(Cmd::Probe(session, result));
        });
    }

    /// Why the consumer looks stuck, if it does; logs probe failures (first, then every 20th).
    fn probe_result(&mut self, result: Result<Vec<(String, u64)>, String>) -> Option<String> {
        match result {
            Ok(stuck) => {
                self.probe_failures = 0;
                let list: Vec<String> = stuck.iter().map(|(t, n)| format!("{t}: {n}")).collect();
                (!list.is_empty()).then(|| format!("messages wait on the broker ({})", list.join(", ")))
            }
            Err(e) => {
                self.probe_failures += 1;
                if self.probe_failures == 1 || self.probe_failures.is_multiple_of(20) {
                    tracing::warn!(
                        "pulsar source `{}`: watchdog cannot read the backlog from {}: {e}",
                        self.src.cfg.name,
                        self.src.cfg.admin_url
                    );
                }
                None
            }
        }
    }

    /// At shutdown: forwards the acks already asked for, so that the broker does not redeliver what
    /// was handled, then closes the consumer (the broker redelivers everything else).
    async fn close(&mut self, mut consumer: Consumer) {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let cmd = match self.rx.try_recv() {
                Ok(cmd) => cmd,
                // Dead letters with a receipt on the way: their originals can still be acknowledged.
                Err(_) if self.receipts_due > 0 && Instant::now() < deadline => {
                    match timeout(deadline.saturating_duration_since(Instant::now()), self.rx.recv()).await {
                        Ok(Some(cmd)) => cmd,
                        _ => break,
                    }
                }
                Err(_) => break,
            };
            match cmd {
                Cmd::Ack(origin) => self.ack(origin, &mut consumer).await,
                cmd @ Cmd::DeadLettered(..) => self.dead_lettered(cmd, &mut consumer).await,
                _ => {}
            }
        }
        // The client's engine sends acks from its own queue: give it a moment before closing.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let _ = timeout(Duration::from_secs(5), consumer.close()).await;
        let subscription = &self.src.cfg.subscription;
        let kind = match self.src.cfg.subscription_type {
            SubscriptionType::KeyShared => "key_shared",
            SubscriptionType::Shared => "shared",
            SubscriptionType::Failover => "failover",
            SubscriptionType::Exclusive => "exclusive",
        };
        tracing::info!("pulsar source `{}`: closed ({kind} subscription `{subscription}`)", self.src.cfg.name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Origin {
        Origin {
            topic: "persistent://public/default/smartcity-noise".into(),
            id: MessageIdData {
                ledger_id: 12,
                entry_id: 34,
                partition: Some(-1),
                batch_index: Some(2),
                ..Default::default()
            },
            properties: vec![("producer".into(), "sim".into()), ("reason".into(), "old".into())],
            key_b64: None,
            ordering_key: None,
        }
    }

    #[test]
    fn dead_letters_keep_key_time_and_properties_and_say_why() {
        let letter =
            Letter { origin: origin(), payload: b"{oops".to_vec(), key: Some("noise-7".into()), event_time: Some(42) };
        let m = dead_letter_message(letter, "decode: expected value at line 1", Some(3));
        assert_eq!(m.payload, b"{oops");
        assert_eq!(m.partition_key.as_deref(), Some("noise-7"));
        assert_eq!(m.event_time, Some(42));
        let p = |k: &str| m.properties.get(k).map(String::as_str);
        assert_eq!(p("reason"), Some("decode: expected value at line 1"));
        assert_eq!(p("origin_topic"), Some("persistent://public/default/smartcity-noise"));
        assert_eq!(p("origin_message_id"), Some("12:34:-1:2"));
        assert_eq!(p("redeliveries"), Some("3"));
        assert_eq!(p("producer"), Some("sim"));
    }

    #[test]
    fn reason_labels_are_a_small_fixed_set() {
        assert_eq!(reason_label("decode: bad json", false), "decode");
        assert_eq!(reason_label("invalid: speed < 0", false), "invalid");
        assert_eq!(reason_label("target:influx refused", false), "target");
        assert_eq!(reason_label("something else: x", false), "other");
        assert_eq!(reason_label("", false), "other");
        assert_eq!(reason_label("target: down", true), "redeliveries");
        let id =
            MessageIdData { ledger_id: 1, entry_id: 2, partition: None, batch_index: Some(-1), ..Default::default() };
        assert_eq!(message_id_text(&id), "1:2:-1");
    }

    #[test]
    fn undelivered_is_backlog_less_what_consumers_hold() {
        let stats = |ty: &str, backlog: u64, unacked: u64, active: &str| {
            serde_json::json!({"subscriptions": {"sub": {
                "type": ty, "msgBacklog": backlog, "unackedMessages": unacked, "activeConsumerName": active
            }}})
        };
        assert_eq!(undelivered(&stats("Key_Shared", 10, 4, ""), "sub", "me", 0), 6);
        assert_eq!(undelivered(&stats("Key_Shared", 10, 10, ""), "sub", "me", 0), 0);
        // Exclusive: the broker does not count unacked messages; ours do.
        assert_eq!(undelivered(&stats("Exclusive", 10, 0, "me"), "sub", "me", 10), 0);
        assert_eq!(undelivered(&stats("Exclusive", 10, 0, "me"), "sub", "me", 3), 7);
        // A stand-by failover consumer receives nothing, rightly.
        assert_eq!(undelivered(&stats("Failover", 10, 0, "other"), "sub", "me", 0), 0);
        assert_eq!(undelivered(&stats("Failover", 10, 0, "me"), "sub", "me", 0), 10);
        // Unknown subscription or malformed stats: nothing to say.
        assert_eq!(undelivered(&stats("Shared", 10, 0, ""), "nope", "me", 0), 0);
        assert_eq!(undelivered(&serde_json::json!([1, 2]), "sub", "me", 0), 0);
    }

    #[tokio::test]
    async fn deliveries_send_their_answer_once_and_give_back_when_dropped() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let delivery = |payload: &str| PulsarDelivery {
            topic: "t".into(),
            payload: payload.as_bytes().to_vec(),
            key: Some("k".into()),
            event_time: Some(7),
            redeliveries: 0,
            handle: Handle { origin: Some(origin()), tx: tx.clone() },
        };
        delivery("a").ack();
        assert!(matches!(rx.recv().await, Some(Cmd::Ack(_))));
        delivery("b").dead_letter("decode: x");
        match rx.recv().await {
            Some(Cmd::DeadLetter(letter, reason)) => {
                assert_eq!((letter.payload.as_slice(), reason.as_str()), (b"b".as_slice(), "decode: x"));
                assert_eq!((letter.key.as_deref(), letter.event_time), (Some("k"), Some(7)));
                assert_eq!(letter.origin.id.entry_id, 34);
            }
            _ => panic!("expected a dead letter"),
        }
        delivery("c").nack("target: down");
        assert!(matches!(rx.recv().await, Some(Cmd::Nack(_, r)) if r == "target: down"));
        drop(delivery("d"));
        assert!(matches!(rx.recv().await, Some(Cmd::Release(_))));
        assert!(rx.try_recv().is_err(), "one answer per delivery");
    }

    #[tokio::test]
    async fn unreachable_broker_is_retried_until_shutdown() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let cfg = PulsarSourceConfig {
            name: "unreachable".into(),
            url: format!("pulsar://127.0.0.1:{port}"),
            timeout_seconds: 2,
            ..Default::default()
        };
        let metrics = SourceMetrics::register(&crate::metrics::registry("t"), "t");
        let source = PulsarSource::new(cfg, metrics.clone()).unwrap();
        let (tx, _rx) = mpsc::channel(1);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(source.run(tx, shutdown.clone()));
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(!task.is_finished(), "gave up instead of retrying");
        shutdown.cancel();
        let result = timeout(Duration::from_secs(3), task).await.expect("stops promptly").unwrap();
        assert_eq!(result, Ok(()));
        assert_eq!(metrics.connected.with_label_values(&["unreachable"]).get(), 0);
    }

    #[test]
    fn invalid_settings_are_refused_before_any_network() {
        let cfg = PulsarSourceConfig { topics: vec!["nope".into()], ..Default::default() };
        let metrics = SourceMetrics::register(&crate::metrics::registry("t"), "t");
        let e = PulsarSource::new(cfg, metrics).err().expect("refused");
        assert!(e.contains("topics: `nope`"), "{e}");
    }
}
