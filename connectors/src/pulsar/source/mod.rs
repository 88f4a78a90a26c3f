//! Consumes readings from Pulsar topics and hands each message on with its acknowledgement.
//!
//! Guarantee: at least once. A message is acknowledged only when the consumer calls
//! [`PulsarDelivery::ack`] (after its downstream write), or once its copy on the dead-letter topic has
//! a receipt. The broker acknowledges whole entries, and a producer batch is one entry: its
//! acknowledgement goes once every message of the batch is acked (`entry_acks.rs`), one frame per
//! batch. Whatever is unacknowledged when the consumer is recreated or the process stops is
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
//! `origin_message_id` (and `redeliveries` when nacks led there). Only nacks count, never
//! [`PulsarDelivery::release`] (a destination down: the message is fine). Our count is lost on
//! restart: a message refused for its data gets up to `max_redeliveries` more attempts per process.
//! The client's own dead-letter policy is deliberately not set: it counts every redelivery the
//! broker makes, releases included, so a target down for longer than its limit would send good
//! messages to the dead-letter topic (issue 17; measured: 20 s of 401 from one target put 38 of
//! 200 messages there).
//!
//! Watchdog: pulsar-rs consumers have been seen to stop receiving after a broker restart without any
//! error. When a topic our consumer has held for `watchdog_seconds` delivered nothing for as long
//! while the run loop was waiting for messages, the admin API is asked whether the subscription has
//! messages on it that no consumer holds; if so, the client and the consumer are recreated (counted
//! in [`PulsarSource::watchdog_restarts`]). Silence is judged per topic, from the moment our consumer
//! holds it (`topic_watch.rs`): a topic a pattern just picked up is not stuck. A topic the broker has
//! and our consumer does not hold counts after a topic refresh and a period. The consumer is also
//! recreated whenever its message stream ends.
//!
//! Files: `mod.rs`, the source and its subscription; `delivery.rs`, a message handed on and the
//! requests its answer sends to the run loop; `run_loop.rs`, sessions (one client and consumer each)
//! and receiving; `acks.rs`, carrying out acks, nacks and redeliveries; `entry_acks.rs`, which
//! batches are wholly acked; `dead_letter.rs`, producing
//! dead letters; `watchdog.rs`, the admin API backlog probe; `topic_watch.rs`, which topics' backlogs
//! count against the consumer.

mod acks;
mod dead_letter;
mod delivery;
mod entry_acks;
mod run_loop;
mod topic_watch;
mod watchdog;

pub use dead_letter::{message_id_text, reason_label};
pub use delivery::PulsarDelivery;

use super::client::{self, Client};
use super::source_config::{anchored_regex, pattern_namespace, PulsarSourceConfig};
use crate::metrics::SourceMetrics;
use crate::sink::Reason;
use ::pulsar::consumer::InitialPosition;
use ::pulsar::{ConsumerOptions, TokioExecutor};
use run_loop::Runner;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

type Consumer = ::pulsar::Consumer<Vec<u8>, TokioExecutor>;

/// How often a multi-topic consumer looks for new topics (pattern) or re-creates the per-topic
/// consumers it lost.
const TOPIC_REFRESH: Duration = Duration::from_secs(30);

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
        self.run_into(out, |d| d, shutdown).await
    }

    /// [`PulsarSource::run`], handing each delivery on as `into` turns it: the gateway's messages
    /// go straight into its pipeline, without a task between (one hand-over fewer per message).
    pub async fn run_into<T: Send>(
        self,
        out: mpsc::Sender<T>,
        into: impl Fn(PulsarDelivery) -> T + Send,
        shutdown: CancellationToken,
    ) -> Result<(), String> {
        Runner::new(self)?.run(out, into, shutdown).await
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.cfg.timeout_seconds)
    }

    async fn client(&self) -> Result<Client, String> {
        let cfg = &self.cfg;
        client::connect(&cfg.url, self.token.as_deref(), cfg.tls_ca_file.as_deref(), self.timeout()).await.map_err(
            |f| match f.reason {
                Reason::Connect => format!("cannot connect: {}", f.message),
                reason => format!("cannot connect ({}): {}", reason.as_str(), f.message),
            },
        )
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

#[cfg(test)]
mod tests {
    use super::*;

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
