//! The shape every sink has, whatever its protocol, so that the fan-out stage ([`crate::fanout`])
//! drives them all the same way and retry, back-off, metrics and shutdown are written once.
//!
//! A sink is built from its config without touching the network (`XxxSink::new(&cfg, telemetry)`):
//! it connects lazily on the first `send` and reconnects by itself, so a server that is down at
//! startup holds back nobody. Each `send` resolves once the server has acknowledged what it took;
//! the [`Outcome`] says which readings of the batch to try again and which the server refused for
//! good. Everything else counts as published.
//!
//! A sink whose protocol lets several writes wait for their acknowledgements at once (MQTT: the
//! next write's publishes go out while the previous write's PUBACKs are still coming) says so with
//! [`Sink::writes_in_flight`] and [`Sink::start`]; the fan-out then keeps that many writes
//! outstanding and settles them in the order they started. The others keep the default: one write
//! at a time, each awaited to the end before the next.

use crate::metrics::SinkMetrics;
use smartcity_model::{Reading, SensorKind};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// A write already handed to a sink's client: resolves to its [`Outcome`] once the server answered
/// every reading of it. Owns what it needs (`'static`), so that the next write can start meanwhile.
pub type Started = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// A destination of readings. Implemented once per protocol (`mqtt/sink.rs`, `kafka/sink.rs`, ...).
pub trait Sink: Send + 'static {
    /// Writes `batch` and waits for the server's acknowledgement of it.
    fn send(&mut self, batch: &[Reading]) -> impl Future<Output = Outcome> + Send;

    /// How many writes the fan-out may keep outstanding at once ([`Sink::start`]). The default, 1:
    /// each write is awaited to its end before the next starts.
    fn writes_in_flight(&self) -> usize {
        1
    }

    /// Hands `batch` to the client and resolves once the sink has taken it (not acknowledged yet),
    /// to the future of its [`Outcome`]. The default waits for the whole write (`send`): a sink
    /// that cannot pipeline behaves exactly as with `send`.
    // Yielding a future is the point: the outer one is the hand-over, the inner one the answer.
    #[allow(clippy::async_yields_async)]
    fn start(&mut self, batch: &[Reading]) -> impl Future<Output = Started> + Send {
        async move {
            let outcome = self.send(batch).await;
            Box::pin(std::future::ready(outcome)) as Started
        }
    }

    /// Connects and checks that writing would work (reachable, TLS, authenticated, topic or bucket
    /// usable) without writing any reading. `Ok` carries a short description of what was checked.
    fn check(&mut self) -> impl Future<Output = Result<String, Failure>> + Send;

    /// Flushes what the client still buffers and disconnects.
    fn close(self) -> impl Future<Output = ()> + Send;
}

/// Why a write failed, sorted into a small fixed set (the `reason` label of the error metric).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The server cannot be reached (refused, unreachable, DNS, connection reset).
    Connect,
    /// The TLS handshake failed (unknown CA, wrong host name, missing client certificate).
    Tls,
    /// The server refused our credentials or permissions.
    Auth,
    /// What we write into is missing on the server (bucket, org, topic, tenant, endpoint).
    Missing,
    /// No answer in time.
    Timeout,
    /// The server is there but failed or is busy (5xx, 429, broker-side errors).
    Server,
    /// The server refused the data itself (a line it cannot parse, a field type conflict, a schema
    /// violation it names): retrying it unchanged cannot help. The only reason about the data; every
    /// other reason is about the destination (see [`Reason::is_about_data`]).
    Rejected,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Connect => "connect",
            Reason::Tls => "tls",
            Reason::Auth => "auth",
            Reason::Missing => "missing",
            Reason::Timeout => "timeout",
            Reason::Server => "server",
            Reason::Rejected => "rejected",
        }
    }

    pub const ALL: [Reason; 7] = [
        Reason::Connect,
        Reason::Tls,
        Reason::Auth,
        Reason::Missing,
        Reason::Timeout,
        Reason::Server,
        Reason::Rejected,
    ];

    /// The failure model (`docs/failures.md`): only a failure about the data rejects readings. Any
    /// other reason means the destination is down: readings wait, as in an outage, and nothing is
    /// dropped or dead-lettered for it.
    pub fn is_about_data(self) -> bool {
        self == Reason::Rejected
    }
}

/// What went wrong in one write, for the log and the metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub reason: Reason,
    /// One line a user can act on: what failed, and the server's own words where it gave any.
    pub message: String,
    /// The server asked us to wait this long before trying again (HTTP `Retry-After`).
    pub retry_after: Option<Duration>,
}

impl Failure {
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        Failure { reason, message: message.into(), retry_after: None }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.reason.as_str(), self.message)
    }
}

/// The result of one `send`: indices into the batch of the readings that were not taken.
/// A reading in neither list was acknowledged by the server.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Outcome {
    /// To send again after a back-off (transient failure).
    pub retry: Vec<usize>,
    /// Refused for good by the server: logged, counted as dropped, never retried.
    pub rejected: Vec<usize>,
    /// What went wrong, when anything did.
    pub failure: Option<Failure>,
}

impl Outcome {
    /// Every reading taken.
    pub fn ok() -> Self {
        Outcome::default()
    }

    /// The whole batch of `len` readings must be tried again.
    pub fn retry_all(len: usize, failure: Failure) -> Self {
        Outcome { retry: (0..len).collect(), rejected: Vec::new(), failure: Some(failure) }
    }

    /// The whole batch of `len` readings was refused for good.
    pub fn reject_all(len: usize, failure: Failure) -> Self {
        Outcome { retry: Vec::new(), rejected: (0..len).collect(), failure: Some(failure) }
    }

    pub fn is_ok(&self) -> bool {
        self.retry.is_empty() && self.rejected.is_empty()
    }

    /// The failure model, enforced once for every sink: readings are refused only for a failure
    /// about the data. An outcome that refuses readings for a reason about the destination (a
    /// connector's mistake) has them tried again instead, so no sink can drop data for it.
    pub fn under_the_rule(mut self) -> Self {
        let about_data = self.failure.as_ref().is_some_and(|f| f.reason.is_about_data());
        if !self.rejected.is_empty() && !about_data {
            self.retry.append(&mut self.rejected);
            self.retry.sort_unstable();
            self.retry.dedup();
        }
        self
    }
}

/// A sink's handle on the shared metrics, bound to its configured name (the `sink` label).
#[derive(Clone)]
pub struct SinkTelemetry {
    pub name: String,
    metrics: SinkMetrics,
}

impl SinkTelemetry {
    /// Binds `metrics` to the sink `name` and exposes every label combination at zero.
    pub fn new(metrics: &SinkMetrics, name: &str) -> Self {
        for k in SensorKind::ALL {
            metrics.published.with_label_values(&[k.as_str(), name]);
        }
        for r in Reason::ALL {
            metrics.errors.with_label_values(&[name, r.as_str()]);
        }
        for why in ["overflow", "rejected", "budget", "shutdown"] {
            metrics.dropped.with_label_values(&[name, why]);
        }
        metrics.queue.with_label_values(&[name]);
        metrics.up.with_label_values(&[name]);
        for r in Reason::ALL {
            metrics.down.with_label_values(&[name, r.as_str()]);
        }
        metrics.latency.with_label_values(&[name]);
        SinkTelemetry { name: name.to_string(), metrics: metrics.clone() }
    }

    pub fn published(&self, kind: SensorKind, n: u64) {
        self.metrics.published.with_label_values(&[kind.as_str(), &self.name]).inc_by(n);
    }

    /// One failed write attempt (or connection attempt).
    pub fn error(&self, reason: Reason) {
        self.metrics.errors.with_label_values(&[&self.name, reason.as_str()]).inc();
    }

    /// Readings abandoned: `why` is `overflow` (queue full, `drop` policy), `rejected` (refused by the
    /// server) or `shutdown` (still queued when the stop deadline passed).
    pub fn dropped(&self, why: &'static str, n: u64) {
        self.metrics.dropped.with_label_values(&[&self.name, why]).inc_by(n);
    }

    pub fn set_queue(&self, readings: usize) {
        self.metrics.queue.with_label_values(&[&self.name]).set(readings as i64);
    }

    /// 1 once a write or connection succeeded, 0 after one failed.
    pub fn set_up(&self, up: bool) {
        self.metrics.up.with_label_values(&[&self.name]).set(up as i64);
        if up {
            for r in Reason::ALL {
                self.metrics.down.with_label_values(&[&self.name, r.as_str()]).set(0);
            }
        }
    }

    /// Down for `reason` (`up` 0, `down{reason}` 1 for this reason only), until a write succeeds.
    pub fn set_down(&self, reason: Reason) {
        self.metrics.up.with_label_values(&[&self.name]).set(0);
        for r in Reason::ALL {
            self.metrics.down.with_label_values(&[&self.name, r.as_str()]).set((r == reason) as i64);
        }
    }

    pub fn observe_latency(&self, seconds: f64) {
        self.metrics.latency.with_label_values(&[&self.name]).observe(seconds);
    }

    pub fn published_total(&self) -> u64 {
        SensorKind::ALL.iter().map(|k| self.metrics.published.with_label_values(&[k.as_str(), &self.name]).get()).sum()
    }

    pub fn errors_total(&self) -> u64 {
        Reason::ALL.iter().map(|r| self.metrics.errors.with_label_values(&[&self.name, r.as_str()]).get()).sum()
    }

    pub fn dropped_total(&self) -> u64 {
        ["overflow", "rejected", "budget", "shutdown"]
            .iter()
            .map(|w| self.metrics.dropped.with_label_values(&[self.name.as_str(), w]).get())
            .sum()
    }

    pub fn queue(&self) -> i64 {
        self.metrics.queue.with_label_values(&[&self.name]).get()
    }

    pub fn is_up(&self) -> bool {
        self.metrics.up.with_label_values(&[&self.name]).get() == 1
    }
}

/// Sorts an error message of a client library into a [`Reason`] by the words it uses: the clients
/// (reqwest, rdkafka, pulsar, rumqttc) do not share an error type, but their messages do. Addresses
/// in the message (`http://127.0.0.1:40343/...`, `auth.example:443`) are left out first: a port
/// number or a host name must not read as a status code or a cause.
pub fn classify(message: &str) -> Reason {
    let words: Vec<&str> = message.split_whitespace().filter(|w| !w.contains("://")).collect();
    let m = words.join(" ").to_ascii_lowercase();
    if ["certificate", "tls", "ssl", "handshake", "unknownissuer", "notvalidforname"].iter().any(|w| m.contains(w)) {
        Reason::Tls
    } else if [
        "authentication",
        "password",
        "credential",
        "not authorized",
        "notauthorized",
        "unauthorized",
        "forbidden",
    ]
    .iter()
    .any(|w| m.contains(w))
    {
        Reason::Auth
    } else if m.contains("timed out") || m.contains("timeout") {
        Reason::Timeout
    } else {
        Reason::Connect
    }
}

/// The topic of a reading's kind: `{kind}` in `template` replaced by `kind_name` (the protocol's
/// name of the kind: `air-quality` on Kafka, `airquality` on Pulsar). A template without `{kind}`
/// sends every kind to one topic.
pub fn expand_topic(template: &str, kind_name: &str) -> String {
    template.replace("{kind}", kind_name)
}

/// Whether `topic` is [`expand_topic`]`(template, kind_name)`, compared piece by piece: a source
/// checks every message's topic with it, and builds no topic name to do so.
pub fn expands_to(template: &str, kind_name: &str, topic: &str) -> bool {
    let mut pieces = template.split("{kind}");
    let Some(mut rest) = topic.strip_prefix(pieces.next().unwrap_or("")) else { return false };
    for piece in pieces {
        match rest.strip_prefix(kind_name).and_then(|r| r.strip_prefix(piece)) {
            Some(r) => rest = r,
            None => return false,
        }
    }
    rest.is_empty()
}

/// Why `template` cannot name topics, if it cannot: empty, blank, or an unknown `{placeholder}`.
pub fn topic_template_problem(template: &str) -> Option<String> {
    if template.trim().is_empty() {
        return Some("must not be empty (e.g. \"{kind}\")".into());
    }
    let rest = template.replace("{kind}", "");
    if rest.contains(['{', '}']) {
        return Some(format!("`{template}`: the only placeholder is {{kind}}"));
    }
    if template.chars().any(char::is_whitespace) {
        return Some(format!("`{template}` must not contain spaces"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_templates() {
        assert_eq!(expand_topic("smartcity-{kind}", "airquality"), "smartcity-airquality");
        assert_eq!(expand_topic("all", "traffic"), "all");
        assert!(topic_template_problem("").is_some());
        assert!(topic_template_problem("{kind").is_some());
        assert!(topic_template_problem("{type}").is_some());
        assert!(topic_template_problem("{kind}").is_none());
    }

    #[test]
    fn a_topic_expands_a_template_or_not() {
        for (template, name) in
            [("smartcity-{kind}", "noise"), ("{kind}", "light"), ("a/{kind}/b/{kind}", "x"), ("all", "y")]
        {
            assert!(expands_to(template, name, &expand_topic(template, name)), "{template}");
        }
        assert!(!expands_to("a/{kind}/b/{kind}", "light", "a/light/b/noise"));
        assert!(!expands_to("bench-{kind}", "noise", "bench-noise2"));
        assert!(!expands_to("bench-{kind}", "noise", "bench-nois"));
        assert!(!expands_to("x-{kind}", "noise", "bench-noise"));
        assert!(!expands_to("all", "noise", "all2"));
    }

    #[test]
    fn classifies_client_messages() {
        assert_eq!(classify("Connection refused (os error 111)"), Reason::Connect);
        assert_eq!(classify("invalid peer certificate: UnknownIssuer"), Reason::Tls);
        assert_eq!(classify("SASL authentication error: Authentication failed"), Reason::Auth);
        assert_eq!(classify("Connection refused: NotAuthorized"), Reason::Auth);
        assert_eq!(classify("operation timed out"), Reason::Timeout);
        // A port that looks like a status code, a host that looks like a cause: still a refusal.
        let refused = "error sending request for url (http://127.0.0.1:40343/FROST-Server/v1.1): client error (Connect): tcp connect error: Connection refused (os error 111)";
        assert_eq!(classify(refused), Reason::Connect);
        assert_eq!(
            classify("error sending request for url (https://auth.example/x): connection refused"),
            Reason::Connect
        );
    }

    #[test]
    fn outcomes() {
        assert!(Outcome::ok().is_ok());
        let o = Outcome::retry_all(3, Failure::new(Reason::Connect, "down"));
        assert_eq!(o.retry, vec![0, 1, 2]);
        assert!(!o.is_ok());
        assert_eq!(Outcome::reject_all(2, Failure::new(Reason::Rejected, "400")).rejected, vec![0, 1]);
    }

    #[test]
    fn only_the_data_rejects() {
        let data = Outcome::reject_all(2, Failure::new(Reason::Rejected, "400")).under_the_rule();
        assert_eq!((data.retry, data.rejected), (vec![], vec![0, 1]));
        for reason in Reason::ALL.into_iter().filter(|r| !r.is_about_data()) {
            let o = Outcome { retry: vec![2], ..Outcome::reject_all(2, Failure::new(reason, "x")) }.under_the_rule();
            assert_eq!((o.retry, o.rejected), (vec![0, 1, 2], vec![]), "{reason:?}");
        }
        assert_eq!(Reason::ALL.iter().filter(|r| r.is_about_data()).count(), 1);
    }
}
