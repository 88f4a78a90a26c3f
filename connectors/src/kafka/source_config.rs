//! Settings of the Kafka source, `[[kafka]]` in the gateway's config: one consumer group over the
//! topics of the six sensor kinds, read by librdkafka.

use super::security::{
    bootstrap_problem, default_password_env, default_sasl_mechanism, default_security_protocol, one_of, Security,
};
use crate::sink::expand_topic;
use crate::tls::TlsConfig;
use rdkafka::ClientConfig;
use serde::Deserialize;
use smartcity_model::SensorKind;
use std::collections::BTreeMap;
use std::path::PathBuf;

const OFFSET_RESETS: [&str; 2] = ["earliest", "latest"];

/// How often librdkafka reports its statistics (consumer lag).
const STATISTICS_INTERVAL_MS: u32 = 5000;

/// A Kafka cluster to read readings from, one topic per sensor kind.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSourceConfig {
    /// Name of this source in logs and in the `source` label of metrics; unique among the sources.
    #[serde(default = "default_name")]
    pub name: String,
    /// Use this source at all.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// `host:port` of one or more brokers, comma-separated; the others are found from them.
    #[serde(default = "default_bootstrap")]
    pub bootstrap_servers: String,
    /// Topics to read: `{kind}` is replaced by each kind (`traffic`, `air-quality`, `parking`,
    /// `noise`, `weather`, `light`), giving six topics. Without `{kind}`, one topic.
    #[serde(default = "default_topic_template")]
    pub topic_template: String,
    /// Consumer group: every gateway of one deployment uses the same, so that each message is read
    /// by one of them and the committed offsets are shared.
    #[serde(default = "default_group_id")]
    pub group_id: String,
    /// Where a group without committed offsets starts: `earliest` (default: nothing retained is
    /// missed) or `latest` (only what arrives from now on).
    #[serde(default = "default_auto_offset_reset")]
    pub auto_offset_reset: String,
    /// Milliseconds between two commits of the acknowledged offsets. A crash re-reads at most what
    /// was acknowledged in this window (duplicates, never loss).
    #[serde(default = "default_commit_interval_ms")]
    pub commit_interval_ms: u64,
    /// `plaintext` (default), `ssl`, `sasl_plaintext` or `sasl_ssl`.
    #[serde(default = "default_security_protocol")]
    pub security_protocol: String,
    /// SASL mechanism with the `sasl_*` protocols: `PLAIN` (default), `SCRAM-SHA-256`, `SCRAM-SHA-512`.
    #[serde(default = "default_sasl_mechanism")]
    pub sasl_mechanism: String,
    /// SASL user name; required with the `sasl_*` protocols.
    #[serde(default)]
    pub username: Option<String>,
    /// Environment variable holding the SASL password; it wins over `password_file`.
    #[serde(default = "default_password_env")]
    pub password_env: String,
    /// File holding the SASL password (first line), used when `password_env` is not set.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// CA (and client certificate) with the `ssl` and `sasl_ssl` protocols. Without it, OpenSSL's
    /// system CAs are used. The broker's host name is always verified.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Extra librdkafka properties (`"fetch.max.bytes" = "1048576"`), applied last so they override
    /// everything above: the escape hatch for what this file has no field for. Not checked; setting
    /// `enable.auto.commit` here would break the at-least-once guarantee.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

fn default_name() -> String {
    "kafka".into()
}
fn default_enabled() -> bool {
    true
}
fn default_bootstrap() -> String {
    "127.0.0.1:9092".into()
}
fn default_topic_template() -> String {
    "{kind}".into()
}
fn default_group_id() -> String {
    "smartcity-gateway".into()
}
fn default_auto_offset_reset() -> String {
    "earliest".into()
}
fn default_commit_interval_ms() -> u64 {
    1000
}

impl Default for KafkaSourceConfig {
    fn default() -> Self {
        KafkaSourceConfig {
            name: default_name(),
            enabled: default_enabled(),
            bootstrap_servers: default_bootstrap(),
            topic_template: default_topic_template(),
            group_id: default_group_id(),
            auto_offset_reset: default_auto_offset_reset(),
            commit_interval_ms: default_commit_interval_ms(),
            security_protocol: default_security_protocol(),
            sasl_mechanism: default_sasl_mechanism(),
            username: None,
            password_env: default_password_env(),
            password_file: None,
            tls: None,
            properties: BTreeMap::new(),
        }
    }
}

impl KafkaSourceConfig {
    fn security(&self) -> Security<'_> {
        Security {
            protocol: &self.security_protocol,
            mechanism: &self.sasl_mechanism,
            username: self.username.as_deref(),
            password_env: &self.password_env,
            password_file: self.password_file.as_deref(),
            tls: self.tls.as_ref(),
            properties: &self.properties,
        }
    }

    /// Problems a user can fix in the file, as (field, message); empty when valid. No network.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        if self.name.trim().is_empty() {
            p.push(("name", "must not be empty".into()));
        }
        p.extend(bootstrap_problem(&self.bootstrap_servers));
        if let Some(m) = super::topic_problem(&self.topic_template) {
            p.push(("topic_template", m));
        }
        if self.group_id.trim().is_empty() {
            p.push(("group_id", "must not be empty".into()));
        }
        p.extend(one_of("auto_offset_reset", &self.auto_offset_reset, &OFFSET_RESETS));
        if !(10..=600_000).contains(&self.commit_interval_ms) {
            p.push(("commit_interval_ms", format!("must be 10-600000 (got {})", self.commit_interval_ms)));
        }
        p.extend(self.security().problems());
        p
    }

    /// `kafka://host:port (protocol)`, for logs: never the password.
    pub fn address(&self) -> String {
        format!("kafka://{} ({})", self.bootstrap_servers, self.security_protocol)
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

    /// The librdkafka configuration of the consumer (reads the SASL password). Offsets are
    /// committed by the source, and only for acknowledged messages: neither librdkafka's automatic
    /// commit nor its automatic offset store (which would mark a message done once handed over).
    pub fn client_config(&self) -> Result<ClientConfig, String> {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap_servers)
            .set("client.id", format!("smartcity-{}", self.name))
            .set("group.id", &self.group_id)
            .set("auto.offset.reset", &self.auto_offset_reset)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("statistics.interval.ms", STATISTICS_INTERVAL_MS.to_string())
            // One partition per kind topic is common: the default `range` assignor hands partition
            // 0 of every topic to the same member, so a second gateway would get nothing. Round
            // robin spreads the partitions of all topics over the members (`properties` overrides).
            .set("partition.assignment.strategy", "roundrobin")
            // Brokers close idle connections: not an error worth a log line.
            .set("log.connection.close", "false");
        let security = self.security();
        security.apply(&mut c)?;
        security.apply_properties(&mut c);
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(c: &KafkaSourceConfig) -> Vec<&'static str> {
        c.problems().into_iter().map(|(f, _)| f).collect()
    }

    #[test]
    fn defaults_are_valid_and_match_an_empty_table() {
        let parsed: KafkaSourceConfig = toml::from_str("").unwrap();
        assert_eq!(parsed, KafkaSourceConfig::default());
        assert!(parsed.problems().is_empty(), "{:?}", parsed.problems());
        assert_eq!(parsed.topics(), ["traffic", "air-quality", "parking", "noise", "weather", "light"]);
        let c = parsed.client_config().unwrap();
        assert_eq!(c.get("group.id"), Some("smartcity-gateway"));
        assert_eq!(c.get("enable.auto.commit"), Some("false"));
        assert_eq!(c.get("enable.auto.offset.store"), Some("false"));
        assert_eq!(c.get("auto.offset.reset"), Some("earliest"));
        assert_eq!(c.get("security.protocol"), Some("plaintext"));
        assert!(toml::from_str::<KafkaSourceConfig>("group = \"x\"").is_err());
    }

    #[test]
    fn one_topic_without_kind() {
        let c = KafkaSourceConfig { topic_template: "readings".into(), ..Default::default() };
        assert_eq!(c.topics(), ["readings"]);
    }

    #[test]
    fn problems_name_the_field() {
        let bad = KafkaSourceConfig {
            name: " ".into(),
            bootstrap_servers: "a:1,".into(),
            topic_template: "{type}".into(),
            group_id: "".into(),
            auto_offset_reset: "smallest".into(),
            commit_interval_ms: 0,
            security_protocol: "sasl_ssl".into(),
            password_file: Some("/nonexistent/pw".into()),
            ..Default::default()
        };
        let f = fields(&bad);
        for want in [
            "name",
            "bootstrap_servers",
            "topic_template",
            "group_id",
            "auto_offset_reset",
            "commit_interval_ms",
            "username",
            "password_file",
        ] {
            assert!(f.contains(&want), "{want} missing in {f:?}");
        }
        let plain_with_tls = KafkaSourceConfig { tls: Some(TlsConfig::default()), ..Default::default() };
        assert_eq!(fields(&plain_with_tls), ["tls"]);
    }

    #[test]
    fn sasl_settings_and_properties_reach_librdkafka() {
        let mut properties = BTreeMap::new();
        properties.insert("fetch.max.bytes".to_string(), "1024".to_string());
        std::env::set_var("SMARTCITY_TEST_KAFKA_SOURCE_PW", "s3cret");
        let c = KafkaSourceConfig {
            security_protocol: "sasl_plaintext".into(),
            username: Some("gw".into()),
            password_env: "SMARTCITY_TEST_KAFKA_SOURCE_PW".into(),
            properties,
            ..Default::default()
        };
        assert!(c.problems().is_empty(), "{:?}", c.problems());
        let rd = c.client_config().unwrap();
        assert_eq!(rd.get("sasl.username"), Some("gw"));
        assert_eq!(rd.get("sasl.password"), Some("s3cret"));
        assert_eq!(rd.get("fetch.max.bytes"), Some("1024"));
        assert!(!c.address().contains("s3cret"));
    }
}
