//! Settings of a Pulsar producer.

use super::client;
use crate::fanout::QueueConfig;
use serde::Deserialize;
use std::path::PathBuf;

/// A Pulsar cluster to publish to, `[[pulsar]]` in the config.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PulsarConfig {
    /// Name of this sink in logs and in the `sink` label of metrics; unique among the sinks.
    #[serde(default = "default_name")]
    pub name: String,
    /// Use this sink at all.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// Service URL: `pulsar://host:6650`, or `pulsar+ssl://host:6651` for TLS.
    #[serde(default = "default_url")]
    pub url: String,
    /// Topic of each kind; `{kind}` becomes traffic, airquality, parking, noise, weather or light.
    #[serde(default = "default_topic_template")]
    pub topic_template: String,
    /// Environment variable holding a JWT for token authentication; it overrides `token_file`.
    #[serde(default = "default_token_env")]
    pub token_env: String,
    /// File holding the token (first line). No token at all: no authentication.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// PEM file of the CA that signed the broker's certificate, for `pulsar+ssl://`. The broker's
    /// host name is always verified against its certificate.
    #[serde(default)]
    pub tls_ca_file: Option<PathBuf>,
    /// Messages per producer batch (1: no batching). Batching multiplies throughput; note that a
    /// batch carries several sensors' keys, which a Key_Shared consumer receives together.
    #[serde(default = "default_batch_size")]
    pub batch_size: u32,
    /// A batch that is not full is sent after this long.
    #[serde(default = "default_batch_timeout_ms")]
    pub batch_timeout_ms: u64,
    /// Time limit to connect, and to get the receipts of one write.
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: u64,
    /// The publishing queue.
    #[serde(default)]
    pub queue: QueueConfig,
}

fn default_name() -> String {
    "pulsar".into()
}
fn default_enabled() -> bool {
    true
}
/// The source's default too (`source_config.rs`).
pub(super) fn default_url() -> String {
    "pulsar://127.0.0.1:6650".into()
}
fn default_topic_template() -> String {
    "persistent://public/default/smartcity-{kind}".into()
}
/// The source's default too (`source_config.rs`).
pub(super) fn default_token_env() -> String {
    "SMARTCITY_PULSAR_TOKEN".into()
}
fn default_batch_size() -> u32 {
    1000
}
fn default_batch_timeout_ms() -> u64 {
    10
}
fn default_timeout_seconds() -> u64 {
    30
}

impl Default for PulsarConfig {
    fn default() -> Self {
        PulsarConfig {
            name: default_name(),
            enabled: default_enabled(),
            url: default_url(),
            topic_template: default_topic_template(),
            token_env: default_token_env(),
            token_file: None,
            tls_ca_file: None,
            batch_size: default_batch_size(),
            batch_timeout_ms: default_batch_timeout_ms(),
            timeout_seconds: default_timeout_seconds(),
            queue: QueueConfig::default(),
        }
    }
}

impl PulsarConfig {
    /// Problems a user can fix in the file, as (field, message); empty when valid. No network.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        // Whether a CA file has a use is known only for a valid URL: say nothing about it otherwise.
        let uses_tls = client::check_url(&self.url).unwrap_or_else(|why| {
            p.push(("url", why));
            true
        });
        if let Some(why) = crate::sink::topic_template_problem(&self.topic_template) {
            p.push(("topic_template", why));
        }
        p.extend(client::credential_problems(
            self.token_file.as_deref(),
            self.tls_ca_file.as_deref(),
            uses_tls,
            "pulsar+ssl:// URLs",
        ));
        if self.batch_size == 0 {
            p.push(("batch_size", "must be at least 1".into()));
        }
        if self.timeout_seconds == 0 {
            p.push(("timeout_seconds", "must be at least 1".into()));
        }
        p.extend(self.queue.problems());
        p
    }

    /// The service URL, for logs (a Pulsar URL carries no credentials).
    pub fn address(&self) -> String {
        self.url.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_named() {
        assert!(PulsarConfig::default().problems().is_empty());
        let bad = PulsarConfig {
            url: "http://x".into(),
            topic_template: "".into(),
            tls_ca_file: Some("/nonexistent/ca.pem".into()),
            ..Default::default()
        };
        let fields: Vec<_> = bad.problems().into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, ["url", "topic_template", "tls_ca_file"]);
    }
}
