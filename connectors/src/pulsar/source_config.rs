//! Settings of the Pulsar source (a consuming subscription), `[pulsar_source]` in a config file.

use super::client;
use super::config::{default_token_env, default_url};
use serde::Deserialize;
use std::path::PathBuf;

/// A subscription to read readings from, with its dead-letter topic and its watchdog.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PulsarSourceConfig {
    /// Name of this source in logs and in the `source` label of metrics.
    #[serde(default = "default_name")]
    pub name: String,
    /// Service URL: `pulsar://host:6650`, or `pulsar+ssl://host:6651` for TLS.
    #[serde(default = "default_url")]
    pub url: String,
    /// Environment variable holding a JWT for token authentication; it overrides `token_file`.
    /// The same token is sent to the admin API (`admin_url`) as a bearer token.
    #[serde(default = "default_token_env")]
    pub token_env: String,
    /// File holding the token (first line). No token at all: no authentication.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// PEM file of the CA that signed the broker's certificate, for `pulsar+ssl://` (and for an
    /// `https://` admin URL). The broker's host name is always verified against its certificate.
    #[serde(default)]
    pub tls_ca_file: Option<PathBuf>,
    /// Topics to consume, each `persistent://tenant/namespace/name` (or `non-persistent://...`).
    /// Ignored when `topic_pattern` is set.
    #[serde(default = "default_topics")]
    pub topics: Vec<String>,
    /// A regular expression matched against whole topic names, such as
    /// `persistent://public/default/smartcity-.*`; when set it replaces `topics`, and topics created
    /// later that match are picked up within 30 s. It must begin with the literal
    /// `persistent://tenant/namespace/` (the namespace whose topics are listed). A pattern may match
    /// `dead_letter_topic`: what arrives from it is acknowledged and skipped, never handed on (the
    /// dead letters stay in `dead_letter_subscription`, a separate cursor).
    #[serde(default)]
    pub topic_pattern: Option<String>,
    /// Subscription name, shared by every instance of the service.
    #[serde(default = "default_subscription")]
    pub subscription: String,
    /// `key_shared` (several instances share the load, each sensor's readings stay in order),
    /// `shared`, `failover` or `exclusive`.
    #[serde(default)]
    pub subscription_type: SubscriptionType,
    /// Consumer name shown by the broker's stats; default: `{name}-{process id}-{start time}`.
    #[serde(default)]
    pub consumer_name: Option<String>,
    /// Messages the client fetches ahead of the consumer (per topic).
    #[serde(default = "default_receiver_queue")]
    pub receiver_queue: u32,
    /// Where messages that cannot be handled go, with a `reason` property.
    #[serde(default = "default_dead_letter_topic")]
    pub dead_letter_topic: String,
    /// Subscription created on `dead_letter_topic` at startup, so that dead letters are kept until
    /// someone reads them (a topic without a subscription keeps nothing).
    #[serde(default = "default_dead_letter_subscription")]
    pub dead_letter_subscription: String,
    /// Redeliveries of a message that is negatively acknowledged before it goes to the dead-letter
    /// topic instead (at least 1).
    #[serde(default = "default_max_redeliveries")]
    pub max_redeliveries: u32,
    /// Delay before a negatively acknowledged message is redelivered.
    #[serde(default = "default_redelivery_delay_ms")]
    pub redelivery_delay_ms: u64,
    /// The broker's admin REST API (`http://host:8080`), read by the watchdog for the backlog.
    #[serde(default = "default_admin_url")]
    pub admin_url: String,
    /// When no message arrived for this long while the subscription has a backlog, the client and
    /// the consumer are recreated (the Rust client has been seen to stop receiving after a broker
    /// restart). 0 disables the watchdog.
    #[serde(default = "default_watchdog_seconds")]
    pub watchdog_seconds: u64,
    /// Time limit to connect, subscribe, get a dead letter's receipt, or an admin API answer.
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: u64,
}

/// How the consumers of one subscription share its messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionType {
    /// Messages of one key always go to the same consumer, in order; several consumers share keys.
    #[default]
    KeyShared,
    /// Round-robin among consumers, no ordering.
    Shared,
    /// One active consumer, the others stand by.
    Failover,
    /// A single consumer; a second one is refused.
    Exclusive,
}

impl SubscriptionType {
    /// The client's name of this type.
    pub fn sub_type(self) -> ::pulsar::SubType {
        match self {
            SubscriptionType::KeyShared => ::pulsar::SubType::KeyShared,
            SubscriptionType::Shared => ::pulsar::SubType::Shared,
            SubscriptionType::Failover => ::pulsar::SubType::Failover,
            SubscriptionType::Exclusive => ::pulsar::SubType::Exclusive,
        }
    }
}

fn default_name() -> String {
    "pulsar".into()
}
fn default_topics() -> Vec<String> {
    ["traffic", "airquality", "parking", "noise", "weather", "light"]
        .iter()
        .map(|k| format!("persistent://public/default/smartcity-{k}"))
        .collect()
}
fn default_subscription() -> String {
    "smartcity-distribution".into()
}
fn default_receiver_queue() -> u32 {
    1000
}
fn default_dead_letter_topic() -> String {
    "persistent://public/default/smartcity-dlq".into()
}
fn default_dead_letter_subscription() -> String {
    "smartcity-dlq".into()
}
fn default_max_redeliveries() -> u32 {
    5
}
fn default_redelivery_delay_ms() -> u64 {
    1000
}
fn default_admin_url() -> String {
    "http://127.0.0.1:8080".into()
}
fn default_watchdog_seconds() -> u64 {
    30
}
fn default_timeout_seconds() -> u64 {
    30
}

impl Default for PulsarSourceConfig {
    fn default() -> Self {
        PulsarSourceConfig {
            name: default_name(),
            url: default_url(),
            token_env: default_token_env(),
            token_file: None,
            tls_ca_file: None,
            topics: default_topics(),
            topic_pattern: None,
            subscription: default_subscription(),
            subscription_type: SubscriptionType::default(),
            consumer_name: None,
            receiver_queue: default_receiver_queue(),
            dead_letter_topic: default_dead_letter_topic(),
            dead_letter_subscription: default_dead_letter_subscription(),
            max_redeliveries: default_max_redeliveries(),
            redelivery_delay_ms: default_redelivery_delay_ms(),
            admin_url: default_admin_url(),
            watchdog_seconds: default_watchdog_seconds(),
            timeout_seconds: default_timeout_seconds(),
        }
    }
}

/// A topic name split into its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicName<'a> {
    /// `persistent` or `non-persistent`.
    pub domain: &'a str,
    /// Tenant.
    pub tenant: &'a str,
    /// Namespace within the tenant.
    pub namespace: &'a str,
    /// Local name (for a partition: `name-partition-N`).
    pub local: &'a str,
}

/// `domain://tenant/namespace/name` split into its parts; `None` for anything else (short names
/// such as `my-topic` are refused on purpose: the namespace must be explicit).
pub fn parse_topic(topic: &str) -> Option<TopicName<'_>> {
    let (domain, rest) = topic.split_once("://")?;
    if domain != "persistent" && domain != "non-persistent" {
        return None;
    }
    let mut parts = rest.splitn(3, '/');
    let (tenant, namespace, local) = (parts.next()?, parts.next()?, parts.next()?);
    let ok = |s: &str| !s.is_empty() && !s.contains(char::is_whitespace);
    (ok(tenant) && ok(namespace) && ok(local) && !local.contains('/')).then_some(TopicName {
        domain,
        tenant,
        namespace,
        local,
    })
}

/// The `domain://tenant/namespace/` a pattern starts with, as (domain, tenant, namespace).
pub fn pattern_namespace(pattern: &str) -> Option<(&str, &str, &str)> {
    let (domain, rest) = pattern.split_once("://")?;
    if domain != "persistent" && domain != "non-persistent" {
        return None;
    }
    let mut parts = rest.splitn(3, '/');
    let (tenant, namespace, _) = (parts.next()?, parts.next()?, parts.next()?);
    let literal = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    (literal(tenant) && literal(namespace)).then_some((domain, tenant, namespace))
}

/// The pattern as a regex matching whole topic names (the client's matching is unanchored, and
/// `persistent://...` would otherwise also match inside `non-persistent://...`).
pub fn anchored_regex(pattern: &str) -> Result<regex::Regex, regex::Error> {
    regex::Regex::new(&format!("^(?:{pattern})$"))
}

impl PulsarSourceConfig {
    /// Problems a user can fix in the file, as (field, message); empty when valid. No network.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        if self.name.trim().is_empty() {
            p.push(("name", "must not be empty".into()));
        }
        let mut tls = client::check_url(&self.url).unwrap_or_else(|why| {
            p.push(("url", why));
            false
        });
        match url::Url::parse(&self.admin_url) {
            Ok(u) if (u.scheme() == "http" || u.scheme() == "https") && u.host_str().is_some_and(|h| !h.is_empty()) => {
                tls |= u.scheme() == "https";
            }
            Ok(_) => p.push(("admin_url", format!("`{}` must be an http:// or https:// URL", self.admin_url))),
            Err(e) => p.push(("admin_url", format!("`{}` is not a URL: {e}", self.admin_url))),
        }
        match &self.topic_pattern {
            Some(pattern) => {
                if let Err(e) = anchored_regex(pattern) {
                    p.push(("topic_pattern", format!("not a valid regular expression: {e}")));
                } else if pattern_namespace(pattern).is_none() {
                    p.push((
                        "topic_pattern",
                        format!("`{pattern}` must begin with a literal persistent://tenant/namespace/"),
                    ));
                }
            }
            None if self.topics.is_empty() => {
                p.push(("topics", "name at least one topic (or set topic_pattern)".into()))
            }
            None => {
                for t in &self.topics {
                    if parse_topic(t).is_none() {
                        p.push(("topics", format!("`{t}` is not persistent://tenant/namespace/name")));
                    } else if *t == self.dead_letter_topic {
                        p.push(("topics", format!("`{t}` is the dead_letter_topic: dead letters would come back")));
                    }
                }
            }
        }
        for (field, value) in
            [("subscription", &self.subscription), ("dead_letter_subscription", &self.dead_letter_subscription)]
        {
            if value.trim().is_empty() {
                p.push((field, "must not be empty".into()));
            }
        }
        if parse_topic(&self.dead_letter_topic).is_none() {
            p.push((
                "dead_letter_topic",
                format!("`{}` is not persistent://tenant/namespace/name", self.dead_letter_topic),
            ));
        }
        if self.consumer_name.as_deref().is_some_and(|n| n.trim().is_empty()) {
            p.push(("consumer_name", "must not be empty when set".into()));
        }
        if !(1..=100_000).contains(&self.receiver_queue) {
            p.push(("receiver_queue", format!("must be 1-100000 (got {})", self.receiver_queue)));
        }
        if !(1..=1000).contains(&self.max_redeliveries) {
            p.push(("max_redeliveries", format!("must be 1-1000 (got {})", self.max_redeliveries)));
        }
        if self.redelivery_delay_ms > 3_600_000 {
            p.push(("redelivery_delay_ms", format!("at most 3600000 (got {})", self.redelivery_delay_ms)));
        }
        if self.watchdog_seconds != 0 && !(5..=86_400).contains(&self.watchdog_seconds) {
            p.push(("watchdog_seconds", format!("0 (off) or 5-86400 (got {})", self.watchdog_seconds)));
        }
        if !(1..=3600).contains(&self.timeout_seconds) {
            p.push(("timeout_seconds", format!("must be 1-3600 (got {})", self.timeout_seconds)));
        }
        p.extend(client::credential_problems(
            self.token_file.as_deref(),
            self.tls_ca_file.as_deref(),
            tls,
            "pulsar+ssl:// and https:// URLs",
        ));
        p
    }

    /// The service URL, for logs (a Pulsar URL carries no credentials).
    pub fn address(&self) -> String {
        self.url.clone()
    }

    /// What is consumed, for logs: the pattern, or the topics.
    pub fn what(&self) -> String {
        match &self.topic_pattern {
            Some(p) => format!("topics matching `{p}`"),
            None => self.topics.join(", "),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_six_kind_topics_and_valid() {
        let cfg = PulsarSourceConfig::default();
        assert!(cfg.problems().is_empty(), "{:?}", cfg.problems());
        assert_eq!(cfg.topics.len(), 6);
        assert_eq!(cfg.topics[1], "persistent://public/default/smartcity-airquality");
        assert_eq!(cfg.subscription_type, SubscriptionType::KeyShared);
        // An empty table gives the same defaults.
        let parsed: PulsarSourceConfig = toml::from_str("").unwrap();
        assert_eq!(parsed, cfg);
    }

    #[test]
    fn parses_every_field_and_refuses_unknown_ones() {
        let cfg: PulsarSourceConfig = toml::from_str(
            r#"
            topic_pattern = "persistent://public/default/smartcity-.*"
            subscription_type = "failover"
            max_redeliveries = 2
            watchdog_seconds = 0
            "#,
        )
        .unwrap();
        assert_eq!(cfg.subscription_type.sub_type(), ::pulsar::SubType::Failover);
        assert!(cfg.problems().is_empty(), "{:?}", cfg.problems());
        assert!(toml::from_str::<PulsarSourceConfig>("topic = \"x\"").is_err());
        assert!(toml::from_str::<PulsarSourceConfig>("subscription_type = \"KeyShared\"").is_err());
    }

    #[test]
    fn bad_values_are_named() {
        let bad = PulsarSourceConfig {
            url: "http://x".into(),
            admin_url: "ftp://x".into(),
            topics: vec!["smartcity-traffic".into(), "persistent://public/default/smartcity-dlq".into()],
            max_redeliveries: 0,
            receiver_queue: 0,
            watchdog_seconds: 2,
            tls_ca_file: Some("/nonexistent/ca.pem".into()),
            token_file: Some("/nonexistent/token".into()),
            ..Default::default()
        };
        let fields: Vec<_> = bad.problems().into_iter().map(|(f, _)| f).collect();
        assert_eq!(
            fields,
            [
                "url",
                "admin_url",
                "topics",
                "topics",
                "receiver_queue",
                "max_redeliveries",
                "watchdog_seconds",
                "token_file",
                "tls_ca_file",
                "tls_ca_file"
            ]
        );
        let empty = PulsarSourceConfig { topics: vec![], ..Default::default() };
        assert_eq!(empty.problems()[0].0, "topics");
    }

    #[test]
    fn patterns_are_checked_and_anchored() {
        let with = |p: &str| PulsarSourceConfig { topic_pattern: Some(p.into()), ..Default::default() };
        assert_eq!(with("persistent://public/default/(").problems()[0].0, "topic_pattern");
        assert!(with("persistent://public/.*/x").problems()[0].1.contains("literal"));
        assert!(with("persistent://public/default/smartcity-.*").problems().is_empty());
        assert!(with("persistent://public/default/smartcity-(traffic|noise)").problems().is_empty());
        let re = anchored_regex("persistent://public/default/smartcity-.*").unwrap();
        assert!(re.is_match("persistent://public/default/smartcity-noise"));
        assert!(!re.is_match("non-persistent://public/default/smartcity-noise"));
        assert_eq!(pattern_namespace("persistent://public/default/x.*"), Some(("persistent", "public", "default")));
    }

    #[test]
    fn topic_names_split() {
        let t = parse_topic("persistent://public/default/smartcity-noise").unwrap();
        assert_eq!((t.domain, t.tenant, t.namespace, t.local), ("persistent", "public", "default", "smartcity-noise"));
        assert!(parse_topic("non-persistent://a/b/c").is_some());
        for bad in [
            "smartcity-noise",
            "persistent://public/default",
            "persistent://a//c",
            "persistent://a/b/c/d",
            "kafka://a/b/c",
        ] {
            assert!(parse_topic(bad).is_none(), "{bad}");
        }
    }
}
