//! Settings of the Kafka sink, `[[kafka]]` in the config: one broker cluster, written to by librdkafka.

use super::security::{
    bootstrap_problem, default_password_env, default_sasl_mechanism, default_security_protocol, one_of, Security,
};
use crate::fanout::QueueConfig;
use crate::tls::TlsConfig;
use rdkafka::ClientConfig;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

const ACKS: [&str; 3] = ["all", "1", "0"];
/// gzip comes with rdkafka's default `libz` feature; zstd would need its `zstd` feature, which is off.
const COMPRESSIONS: [&str; 4] = ["none", "gzip", "snappy", "lz4"];

/// A Kafka cluster to publish readings to, one topic per sensor kind.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Name of this sink in logs and metrics (the `sink` label); unique among the sinks.
    #[serde(default = "default_name")]
    pub name: String,
    /// Use this sink at all.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// `host:port` of one or more brokers, comma-separated; the others are found from them.
    #[serde(default = "default_bootstrap")]
    pub bootstrap_servers: String,
    /// Topic of each reading: `{kind}` is replaced by the kind (`traffic`, `air-quality`, `parking`,
    /// `noise`, `weather`, `light`). Without `{kind}`, every kind goes to one topic.
    #[serde(default = "default_topic_template")]
    pub topic_template: String,
    /// Acknowledgement a write waits for: `all` (every in-sync replica, the default), `1` (the
    /// partition leader only) or `0` (none: a lost reading goes unnoticed).
    #[serde(default = "default_acks")]
    pub acks: String,
    /// Idempotent producer: a write retried by librdkafka is stored once, in order. Needs `acks = "all"`.
    #[serde(default = "default_idempotence")]
    pub idempotence: bool,
    /// Compression of message batches: `none`, `gzip`, `snappy` or `lz4` (default). zstd is not
    /// compiled into this build.
    #[serde(default = "default_compression")]
    pub compression: String,
    /// Milliseconds librdkafka waits for more messages before sending a batch to a broker.
    #[serde(default = "default_linger_ms")]
    pub linger_ms: u64,
    /// Most messages librdkafka puts in one batch to a broker.
    #[serde(default = "default_batch_num_messages")]
    pub batch_num_messages: u32,
    /// Milliseconds librdkafka keeps trying to deliver a message (reconnecting, retrying); after that
    /// it gives up and the sink queues the reading again itself, after a back-off.
    #[serde(default = "default_message_timeout_ms")]
    pub message_timeout_ms: u64,
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
    /// Extra librdkafka properties (`"socket.keepalive.enable" = "true"`), applied last so they
    /// override everything above: the escape hatch for what this file has no field for. Not checked.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// This sink's queue in the gateway.
    #[serde(default)]
    pub queue: QueueConfig,
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
fn default_acks() -> String {
    "all".into()
}
fn default_idempotence() -> bool {
    true
}
fn default_compression() -> String {
    "lz4".into()
}
fn default_linger_ms() -> u64 {
    5
}
fn default_batch_num_messages() -> u32 {
    10_000
}
fn default_message_timeout_ms() -> u64 {
    30_000
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            name: default_name(),
            enabled: default_enabled(),
            bootstrap_servers: default_bootstrap(),
            topic_template: default_topic_template(),
            acks: default_acks(),
            idempotence: default_idempotence(),
            compression: default_compression(),
            linger_ms: default_linger_ms(),
            batch_num_messages: default_batch_num_messages(),
            message_timeout_ms: default_message_timeout_ms(),
            security_protocol: default_security_protocol(),
            sasl_mechanism: default_sasl_mechanism(),
            username: None,
            password_env: default_password_env(),
            password_file: None,
            tls: None,
            properties: BTreeMap::new(),
            queue: QueueConfig::default(),
        }
    }
}

impl KafkaConfig {
    /// The security fields, for the checks and settings shared with the source.
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
        if let Some(m) = crate::kafka::topic_problem(&self.topic_template) {
            p.push(("topic_template", m));
        }
        p.extend(one_of("acks", &self.acks, &ACKS));
        p.extend(one_of("compression", &self.compression, &COMPRESSIONS));
        if self.idempotence && self.acks != "all" {
            p.push(("acks", format!("must be \"all\" with idempotence = true (got `{}`)", self.acks)));
        }
        if self.linger_ms > 900_000 {
            p.push(("linger_ms", format!("at most 900000 (got {})", self.linger_ms)));
        }
        if self.batch_num_messages == 0 || self.batch_num_messages > 1_000_000 {
            p.push(("batch_num_messages", format!("must be 1-1000000 (got {})", self.batch_num_messages)));
        }
        // 0 would mean "never give up" in librdkafka: a reading could then wait forever unseen.
        if self.message_timeout_ms < 1000 || self.message_timeout_ms > i32::MAX as u64 {
            p.push(("message_timeout_ms", format!("must be 1000-2147483647 (got {})", self.message_timeout_ms)));
        } else if self.message_timeout_ms <= self.linger_ms {
            p.push(("message_timeout_ms", "must be larger than linger_ms".into()));
        }
        p.extend(self.security().problems());
        p.extend(self.queue.problems());
        p
    }

    /// `kafka://host:port (protocol)`, for logs: never the password.
    pub fn address(&self) -> String {
        format!("kafka://{} ({})", self.bootstrap_servers, self.security_protocol)
    }

    /// The librdkafka configuration of the producer (reads the SASL password).
    pub fn client_config(&self) -> Result<ClientConfig, String> {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap_servers)
            .set("client.id", format!("smartcity-{}", self.name))
            .set("acks", &self.acks)
            .set("enable.idempotence", self.idempotence.to_string())
            .set("compression.type", &self.compression)
            .set("linger.ms", self.linger_ms.to_string())
            .set("batch.num.messages", self.batch_num_messages.to_string())
            .set("message.timeout.ms", self.message_timeout_ms.to_string())
            // Brokers close idle connections (connections.max.idle.ms): not an error worth a log line
            // or a `down` state. Real connection failures are still reported.
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

    fn fields(c: &KafkaConfig) -> Vec<&'static str> {
        c.problems().into_iter().map(|(f, _)| f).collect()
    }

    #[test]
    fn defaults_are_valid_and_match_an_empty_table() {
        let parsed: KafkaConfig = toml::from_str("").unwrap();
        assert_eq!(parsed, KafkaConfig::default());
        assert!(parsed.problems().is_empty(), "{:?}", parsed.problems());
        assert_eq!(parsed.address(), "kafka://127.0.0.1:9092 (plaintext)");
        let c = parsed.client_config().unwrap();
        assert_eq!(c.get("acks"), Some("all"));
        assert_eq!(c.get("compression.type"), Some("lz4"));
        assert_eq!(c.get("sasl.mechanisms"), None);
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(toml::from_str::<KafkaConfig>("bootstrap = \"x\"").is_err());
    }

    #[test]
    fn problems_name_the_field() {
        let c = KafkaConfig {
            bootstrap_servers: " ".into(),
            topic_template: "{type}".into(),
            acks: "1".into(),
            compression: "zstd".into(),
            security_protocol: "sasl_ssl".into(),
            sasl_mechanism: "GSSAPI".into(),
            password_file: Some("/nonexistent/pw".into()),
            tls: Some(TlsConfig { ca_file: "/nonexistent/ca.pem".into(), ..Default::default() }),
            ..Default::default()
        };
        let f = fields(&c);
        for want in ["bootstrap_servers", "topic_template", "acks", "compression", "sasl_mechanism", "username", "tls"]
        {
            assert!(f.contains(&want), "{want} missing in {f:?}");
        }
        assert_eq!(f.iter().filter(|x| **x == "password_file").count(), 2, "{f:?}");
        let plain_with_tls = KafkaConfig { tls: Some(TlsConfig::default()), ..Default::default() };
        assert_eq!(fields(&plain_with_tls), ["tls"]);
        let no_timeout = KafkaConfig { message_timeout_ms: 0, ..Default::default() };
        assert_eq!(fields(&no_timeout), ["message_timeout_ms"]);
    }

    #[test]
    fn sasl_ssl_settings_reach_librdkafka_and_properties_win() {
        let path = std::env::temp_dir().join(format!("kafka-pw-{}", std::process::id()));
        std::fs::write(&path, "s3cret\n").unwrap();
        let mut properties = BTreeMap::new();
        properties.insert("linger.ms".to_string(), "50".to_string());
        let c = KafkaConfig {
            security_protocol: "sasl_ssl".into(),
            sasl_mechanism: "SCRAM-SHA-512".into(),
            username: Some("gw".into()),
            password_env: String::new(),
            password_file: Some(path.clone()),
            tls: Some(TlsConfig { ca_file: "/etc/ca.pem".into(), ..Default::default() }),
            properties,
            ..Default::default()
        };
        let rd = c.client_config().unwrap();
        assert_eq!(rd.get("sasl.password"), Some("s3cret"));
        assert_eq!(rd.get("sasl.mechanisms"), Some("SCRAM-SHA-512"));
        assert_eq!(rd.get("ssl.ca.location"), Some("/etc/ca.pem"));
        assert_eq!(rd.get("ssl.endpoint.identification.algorithm"), Some("https"));
        assert_eq!(rd.get("linger.ms"), Some("50"));
        assert!(!c.address().contains("s3cret"));
        let _ = std::fs::remove_file(path);
        let missing = KafkaConfig { password_file: None, ..c };
        assert!(missing.client_config().unwrap_err().contains("password"));
    }
}
