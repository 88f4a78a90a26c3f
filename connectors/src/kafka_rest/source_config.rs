//! Settings of the Kafka REST proxy source, `[[kafka_rest]]` in the gateway's config: one named
//! consumer instance of a consumer group, created on the proxy (Confluent REST Proxy v2 API).

use super::config::{address, url_problem};
use crate::secret;
use crate::sink::expand_topic;
use crate::tls::{self, TlsConfig};
use serde::Deserialize;
use smartcity_model::SensorKind;
use std::path::PathBuf;
use std::time::Duration;

/// A REST proxy to read readings through, one topic per sensor kind.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaRestSourceConfig {
    /// Name of this source in logs and in the `source` label of metrics; unique among the sources.
    #[serde(default = "default_name")]
    pub name: String,
    /// Use this source at all.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// Base URL of the proxy; requests go to `{url}/consumers/{group}/...`, always this URL (not the
    /// `base_uri` the proxy answers, which names the host as the proxy sees itself). `https://` is
    /// verified against the public web PKI roots, or against `tls.ca_file` when given.
    #[serde(default = "default_url")]
    pub url: String,
    /// Topics to read: `{kind}` is replaced by each kind (`traffic`, `air-quality`, `parking`,
    /// `noise`, `weather`, `light`), giving six topics. Without `{kind}`, one topic.
    #[serde(default = "default_topic_template")]
    pub topic_template: String,
    /// Kafka consumer group of the instance: the committed offsets are the group's.
    #[serde(default = "default_group")]
    pub group: String,
    /// Name of the consumer instance on the proxy. Stable on purpose: a gateway that was killed
    /// leaves its instance behind, and the next start, finding the name taken, deletes that stale
    /// instance (whose position may be past records never written) and creates a fresh one. Several
    /// gateways sharing a group must each have their own name, or they delete each other's instance.
    #[serde(default = "default_instance")]
    pub instance: String,
    /// Longest the proxy waits for records before answering a fetch with none, in milliseconds.
    #[serde(default = "default_poll_timeout_ms")]
    pub poll_timeout_ms: u64,
    /// Most bytes (keys and values) the proxy returns per fetch.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
    /// Milliseconds between two commits of the acknowledged offsets. A crash re-reads at most what
    /// was acknowledged in this window (duplicates, never loss).
    #[serde(default = "default_commit_interval_ms")]
    pub commit_interval_ms: u64,
    /// User name for HTTP basic authentication, if the proxy requires it.
    #[serde(default)]
    pub username: Option<String>,
    /// Environment variable holding the basic-auth password; it wins over `password_file`.
    #[serde(default = "default_password_env")]
    pub password_env: String,
    /// File holding the basic-auth password (first line), used when `password_env` is not set.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Seconds to wait for the proxy's answer to one request; more than `poll_timeout_ms`, since a
    /// fetch is answered only after that long when there is nothing to read.
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: u64,
    /// CA (and client certificate) of an `https://` proxy.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
}

fn default_name() -> String {
    "kafka-rest".into()
}
fn default_enabled() -> bool {
    true
}
fn default_url() -> String {
    "http://127.0.0.1:8082".into()
}
fn default_topic_template() -> String {
    "{kind}".into()
}
fn default_group() -> String {
    "smartcity-gateway".into()
}
fn default_instance() -> String {
    "smartcity-gateway".into()
}
fn default_poll_timeout_ms() -> u64 {
    1000
}
fn default_max_bytes() -> u64 {
    1024 * 1024
}
fn default_commit_interval_ms() -> u64 {
    1000
}
fn default_password_env() -> String {
    "SMARTCITY_KAFKA_REST_PASSWORD".into()
}
fn default_timeout_seconds() -> u64 {
    10
}

impl Default for KafkaRestSourceConfig {
    fn default() -> Self {
        KafkaRestSourceConfig {
            name: default_name(),
            enabled: default_enabled(),
            url: default_url(),
            topic_template: default_topic_template(),
            group: default_group(),
            instance: default_instance(),
            poll_timeout_ms: default_poll_timeout_ms(),
            max_bytes: default_max_bytes(),
            commit_interval_ms: default_commit_interval_ms(),
            username: None,
            password_env: default_password_env(),
            password_file: None,
            timeout_seconds: default_timeout_seconds(),
            tls: None,
        }
    }
}

/// `(field, message)` unless `value` is a name that fits in a URL path as it is (proxies decode
/// `%2F` before routing, so an escaped `/` would not survive).
fn name_problem(field: &'static str, value: &str) -> Option<(&'static str, String)> {
    if value.is_empty() {
        Some((field, "must not be empty".into()))
    } else if !value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) {
        Some((field, format!("`{value}`: only letters, digits, `.`, `_` and `-`")))
    } else {
        None
    }
}

impl KafkaRestSourceConfig {
    /// Problems a user can fix in the file, as (field, message); empty when valid. No network.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        if self.name.trim().is_empty() {
            p.push(("name", "must not be empty".into()));
        }
        p.extend(url_problem(&self.url, self.tls.is_some()));
        if let Some(m) = crate::kafka::topic_problem(&self.topic_template) {
            p.push(("topic_template", m));
        }
        p.extend(name_problem("group", &self.group));
        p.extend(name_problem("instance", &self.instance));
        if !(10..=60_000).contains(&self.poll_timeout_ms) {
            p.push(("poll_timeout_ms", format!("must be 10-60000 (got {})", self.poll_timeout_ms)));
        }
        if self.max_bytes == 0 {
            p.push(("max_bytes", "must be at least 1".into()));
        }
        if !(10..=600_000).contains(&self.commit_interval_ms) {
            p.push(("commit_interval_ms", format!("must be 10-600000 (got {})", self.commit_interval_ms)));
        }
        if self.timeout_seconds == 0 || self.timeout_seconds > 600 {
            p.push(("timeout_seconds", format!("must be 1-600 (got {})", self.timeout_seconds)));
        } else if self.timeout_seconds * 1000 < self.poll_timeout_ms + 1000 {
            p.push((
                "timeout_seconds",
                format!(
                    "must exceed poll_timeout_ms by at least a second (got {} s for {} ms)",
                    self.timeout_seconds, self.poll_timeout_ms
                ),
            ));
        }
        if self.password_file.is_some() && self.username.is_none() {
            p.push(("password_file", "needs `username` too".into()));
        }
        p.extend(secret::file_problem("password_file", self.password_file.as_deref()));
        if let Some(Err(e)) = self.tls.as_ref().map(tls::client_config) {
            p.push(("tls", e.to_string()));
        }
        p
    }

    /// The proxy's URL, for logs: never credentials.
    pub fn address(&self) -> String {
        address(&self.url)
    }

    /// The per-request timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_seconds)
    }

    /// The distinct topics to subscribe to, in the order of `SensorKind::ALL`.
    pub fn topics(&self) -> Vec<String> {
        let mut topics: Vec<String> = Vec::new();
        for kind in SensorKind::ALL {
            let t = expand_topic(&self.topic_template, kind.as_str());
            if !topics.contains(&t) {
                topics.push(t);
            }
        }
        topics
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(c: &KafkaRestSourceConfig) -> Vec<&'static str> {
        c.problems().into_iter().map(|(f, _)| f).collect()
    }

    #[test]
    fn defaults_are_valid_and_match_an_empty_table() {
        let parsed: KafkaRestSourceConfig = toml::from_str("").unwrap();
        assert_eq!(parsed, KafkaRestSourceConfig::default());
        assert!(parsed.problems().is_empty(), "{:?}", parsed.problems());
        assert_eq!(parsed.address(), "http://127.0.0.1:8082/");
        assert_eq!(parsed.topics().len(), 6);
        assert_eq!((parsed.group.as_str(), parsed.instance.as_str()), ("smartcity-gateway", "smartcity-gateway"));
        assert!(toml::from_str::<KafkaRestSourceConfig>("consumer = \"x\"").is_err());
        let one = KafkaRestSourceConfig { topic_template: "readings".into(), ..Default::default() };
        assert_eq!(one.topics(), ["readings"]);
    }

    #[test]
    fn problems_name_the_field() {
        let bad = KafkaRestSourceConfig {
            url: "http://u:pw@proxy".into(),
            topic_template: "a b".into(),
            group: "".into(),
            instance: "gw/1".into(),
            poll_timeout_ms: 0,
            max_bytes: 0,
            commit_interval_ms: 0,
            timeout_seconds: 0,
            password_file: Some("/nonexistent/pw".into()),
            ..Default::default()
        };
        assert_eq!(
            fields(&bad),
            [
                "url",
                "topic_template",
                "group",
                "instance",
                "poll_timeout_ms",
                "max_bytes",
                "commit_interval_ms",
                "timeout_seconds",
                "password_file",
                "password_file"
            ]
        );
        let slow = KafkaRestSourceConfig { poll_timeout_ms: 30_000, timeout_seconds: 30, ..Default::default() };
        assert_eq!(fields(&slow), ["timeout_seconds"]);
        let plain_tls = KafkaRestSourceConfig { tls: Some(TlsConfig::default()), ..Default::default() };
        assert!(fields(&plain_tls).contains(&"tls"));
    }
}
