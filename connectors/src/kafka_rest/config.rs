//! Settings of the Kafka REST proxy sink, `[[kafka_rest]]` in the config.

use crate::fanout::QueueConfig;
use crate::secret;
use crate::tls::{self, TlsConfig};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;
use url::Url;

/// A Kafka REST proxy (Confluent v2 API, or Redpanda's HTTP proxy) to publish readings through.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaRestConfig {
    /// Name of this sink in logs and metrics (the `sink` label); unique among the sinks.
    #[serde(default = "default_name")]
    pub name: String,
    /// Use this sink at all.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// Base URL of the proxy; requests go to `{url}/topics/{topic}`. `https://` is verified against the
    /// public web PKI roots, or against `tls.ca_file` when given.
    #[serde(default = "default_url")]
    pub url: String,
    /// Topic of each reading: `{kind}` is replaced by the kind (`traffic`, `air-quality`, `parking`,
    /// `noise`, `weather`, `light`). Without `{kind}`, every kind goes to one topic.
    #[serde(default = "default_topic_template")]
    pub topic_template: String,
    /// Most records in one request.
    #[serde(default = "default_max_records")]
    pub max_records: usize,
    /// Most bytes in one request body (a single larger record is still sent, alone).
    #[serde(default = "default_max_bytes")]
    pub max_bytes: usize,
    /// User name for HTTP basic authentication, if the proxy requires it.
    #[serde(default)]
    pub username: Option<String>,
    /// Environment variable holding the basic-auth password; it wins over `password_file`.
    #[serde(default = "default_password_env")]
    pub password_env: String,
    /// File holding the basic-auth password (first line), used when `password_env` is not set.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Seconds to wait for the proxy's answer to one request (it answers once Kafka acknowledged).
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: u64,
    /// CA (and client certificate) of an `https://` proxy.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// This sink's queue in the gateway.
    #[serde(default)]
    pub queue: QueueConfig,
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
fn default_max_records() -> usize {
    500
}
fn default_max_bytes() -> usize {
    1024 * 1024
}
fn default_password_env() -> String {
    "SMARTCITY_KAFKA_REST_PASSWORD".into()
}
fn default_timeout_seconds() -> u64 {
    10
}

impl Default for KafkaRestConfig {
    fn default() -> Self {
        KafkaRestConfig {
            name: default_name(),
            enabled: default_enabled(),
            url: default_url(),
            topic_template: default_topic_template(),
            max_records: default_max_records(),
            max_bytes: default_max_bytes(),
            username: None,
            password_env: default_password_env(),
            password_file: None,
            timeout_seconds: default_timeout_seconds(),
            tls: None,
            queue: QueueConfig::default(),
        }
    }
}

/// `(field, message)` when `url` is not a usable proxy base URL (`tls`: a `tls` table is set).
/// Shared with the source.
pub(crate) fn url_problem(url: &str, tls: bool) -> Option<(&'static str, String)> {
    match Url::parse(url) {
        Err(e) => Some(("url", format!("`{url}` is not a URL: {e}"))),
        Ok(u) if !matches!(u.scheme(), "http" | "https") || u.cannot_be_a_base() => {
            Some(("url", format!("`{url}` must be an http:// or https:// URL")))
        }
        Ok(u) if !u.username().is_empty() || u.password().is_some() => {
            Some(("url", "must not hold credentials: use `username` and `password_env`".into()))
        }
        Ok(u) if u.query().is_some() || u.fragment().is_some() => {
            Some(("url", "must not have a query or fragment".into()))
        }
        Ok(u) if u.scheme() == "http" && tls => Some(("tls", "is set but the url is http://: use https://".into())),
        Ok(_) => None,
    }
}

/// `url` for logs: never credentials. Shared with the source.
pub(crate) fn address(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        // Not a URL: problems() says so; show it only up to a possible `user:password@`.
        Err(_) => url.rsplit('@').next().unwrap_or_default().to_string(),
    }
}

impl KafkaRestConfig {
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
        if self.max_records == 0 {
            p.push(("max_records", "must be at least 1".into()));
        }
        if self.max_bytes == 0 {
            p.push(("max_bytes", "must be at least 1".into()));
        }
        if self.timeout_seconds == 0 || self.timeout_seconds > 600 {
            p.push(("timeout_seconds", format!("must be 1-600 (got {})", self.timeout_seconds)));
        }
        if self.password_file.is_some() && self.username.is_none() {
            p.push(("password_file", "needs `username` too".into()));
        }
        p.extend(secret::file_problem("password_file", self.password_file.as_deref()));
        if let Some(Err(e)) = self.tls.as_ref().map(tls::client_config) {
            p.push(("tls", e.to_string()));
        }
        p.extend(self.queue.problems());
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(c: &KafkaRestConfig) -> Vec<&'static str> {
        c.problems().into_iter().map(|(f, _)| f).collect()
    }

    #[test]
    fn defaults_are_valid_and_match_an_empty_table() {
        let parsed: KafkaRestConfig = toml::from_str("").unwrap();
        assert_eq!(parsed, KafkaRestConfig::default());
        assert!(parsed.problems().is_empty(), "{:?}", parsed.problems());
        assert_eq!(parsed.address(), "http://127.0.0.1:8082/");
        assert!(toml::from_str::<KafkaRestConfig>("uri = \"http://x\"").is_err());
    }

    #[test]
    fn problems_name_the_field() {
        let bad = KafkaRestConfig {
            url: "ftp://x".into(),
            topic_template: "".into(),
            max_records: 0,
            max_bytes: 0,
            timeout_seconds: 0,
            password_file: Some("/nonexistent/pw".into()),
            ..Default::default()
        };
        let f = fields(&bad);
        for want in ["url", "topic_template", "max_records", "max_bytes", "timeout_seconds", "password_file"] {
            assert!(f.contains(&want), "{want} missing in {f:?}");
        }
        let https = KafkaRestConfig { url: "https://proxy:8082".into(), ..Default::default() };
        assert!(fields(&https).is_empty(), "public roots verify an https:// proxy without `tls`");
        let missing_ca = KafkaRestConfig {
            tls: Some(TlsConfig { ca_file: "/nonexistent/ca.pem".into(), ..Default::default() }),
            ..https
        };
        assert_eq!(fields(&missing_ca), ["tls"]);
        let creds = KafkaRestConfig { url: "http://u:pw@proxy:8082".into(), ..Default::default() };
        assert_eq!(fields(&creds), ["url"]);
        assert!(!creds.address().contains("pw"));
        assert_eq!(fields(&KafkaRestConfig { url: "not a url".into(), ..Default::default() }), ["url"]);
    }
}
