//! The gateway's configuration: `config/gateway.toml` (embedded as defaults) or a user file,
//! command-line overrides, and validation naming the file and field of any problem.

use crate::formats::FormatConfig;
use serde::{Deserialize, Deserializer};
use smartcity_connectors::config_file::{self, ConfigError};
use smartcity_connectors::influxdb::InfluxConfig;
use smartcity_connectors::kafka::{KafkaConfig, KafkaSourceConfig};
use smartcity_connectors::kafka_rest::KafkaRestSourceConfig;
use smartcity_connectors::mqtt::MqttConfig;
use smartcity_connectors::ngsi_ld::NgsiLdSourceConfig;
use smartcity_connectors::pulsar::PulsarSourceConfig;
use smartcity_connectors::sources::SourceConfig;
use smartcity_connectors::spool::SpoolConfig;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The shipped configuration, which is also the default.
pub const DEFAULT_TOML: &str = include_str!("../../config/gateway.toml");

/// MQTT client id when the file does not set one.
pub const DEFAULT_CLIENT_ID: &str = "smartcity-gateway";

/// Pulsar subscription of the gateway when its `[[pulsar]]` entry names none: its own, so that it
/// never splits the messages of the distribution service's subscription.
pub const DEFAULT_PULSAR_SUBSCRIPTION: &str = "smartcity-gateway";

/// Every section and field may be omitted: the defaults below are those of the shipped file
/// (a test checks that an empty file and `config/gateway.toml` give the same configuration).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// MQTT brokers to subscribe to: `[[mqtt]]` tables, or one `[mqtt]` table.
    #[serde(default = "default_mqtt", deserialize_with = "config_file::one_or_many")]
    pub mqtt: Vec<MqttConfig>,
    /// Kafka clusters (native protocol), `[[kafka]]`.
    #[serde(default)]
    pub kafka: Vec<KafkaSourceConfig>,
    /// Kafka REST proxies, `[[kafka_rest]]`.
    #[serde(default)]
    pub kafka_rest: Vec<KafkaRestSourceConfig>,
    /// Pulsar subscriptions, `[[pulsar]]`.
    #[serde(default, deserialize_with = "pulsar_with_gateway_defaults")]
    pub pulsar: Vec<PulsarSourceConfig>,
    /// NGSI-LD context brokers to subscribe to, `[[ngsi_ld]]`: their notifications arrive at
    /// `/ngsi-ld/notify/{name}` on the HTTP server.
    #[serde(default)]
    pub ngsi_ld: Vec<NgsiLdSourceConfig>,
    /// Where readings are written: InfluxDB when this section is present and enabled.
    /// `parallel_requests` defaults to 1 here (2 for the simulator's sink): see
    /// [`GATEWAY_PARALLEL_REQUESTS`].
    #[serde(default, deserialize_with = "influx_with_gateway_defaults")]
    pub influxdb: Option<InfluxConfig>,
    /// Where readings are written when InfluxDB is not configured: line-protocol files.
    #[serde(default)]
    pub files: FilesConfig,
    #[serde(default)]
    pub writer: WriterConfig,
    #[serde(default = "default_spool")]
    pub spool: SpoolConfig,
    #[serde(default)]
    pub dead_letters: DeadLetterConfig,
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(default)]
    pub state: StateConfig,
    /// The payload format of a source, by source name, when it is not our wire format
    /// (`[formats.<source>]`, see gateway/src/formats.rs and docs/device-formats.md).
    #[serde(default)]
    pub formats: BTreeMap<String, FormatConfig>,
}

fn default_mqtt() -> Vec<MqttConfig> {
    vec![MqttConfig::new("127.0.0.1", 1883, DEFAULT_CLIENT_ID)]
}

fn default_spool() -> SpoolConfig {
    SpoolConfig { dir: PathBuf::from("data/gateway/spool"), ..SpoolConfig::default() }
}

/// `[[pulsar]]` entries, with the gateway's own subscription name when an entry gives none.
fn pulsar_with_gateway_defaults<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<PulsarSourceConfig>, D::Error> {
    let tables: Vec<toml::Table> = config_file::one_or_many(d)?;
    tables
        .into_iter()
        .map(|mut t| {
            t.entry("subscription").or_insert_with(|| DEFAULT_PULSAR_SUBSCRIPTION.into());
            PulsarSourceConfig::deserialize(toml::Value::Table(t)).map_err(serde::de::Error::custom)
        })
        .collect()
}

/// Requests per write to InfluxDB when `[influxdb] parallel_requests` is left out. The gateway
/// already keeps `writer.writes_in_flight` (2) writes outstanding, so each write goes out whole:
/// two requests of 10,000 lines at a time, InfluxDB's fastest shape in the bench's ceiling table
/// and its cheapest per point. Splitting each write in two made four requests of 5,000 at a time:
/// 0.78× the rate from Kafka, 0.86× from MQTT, with InfluxDB spending 1.3× and 1.8× the CPU per
/// point (docs/performance.md).
pub const GATEWAY_PARALLEL_REQUESTS: i64 = 1;

fn influx_with_gateway_defaults<'de, D: Deserializer<'de>>(d: D) -> Result<Option<InfluxConfig>, D::Error> {
    let mut t = toml::Table::deserialize(d)?;
    t.entry("parallel_requests").or_insert(toml::Value::Integer(GATEWAY_PARALLEL_REQUESTS));
    InfluxConfig::deserialize(toml::Value::Table(t)).map(Some).map_err(serde::de::Error::custom)
}

/// Line-protocol files, the store when no InfluxDB is configured (`make run`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilesConfig {
    /// Folder of the `points-*.lp` files (created if missing). Import one with
    /// `influx write --bucket iot_data --precision ms --file points-....lp`.
    pub dir: PathBuf,
    /// A new file starts once the current one reaches this size.
    pub rotate_bytes: u64,
    /// Files kept; the oldest are deleted beyond it (0: keep all).
    pub keep_files: usize,
}

impl Default for FilesConfig {
    fn default() -> Self {
        FilesConfig { dir: PathBuf::from("data/gateway/points"), rotate_bytes: 64 << 20, keep_files: 20 }
    }
}

/// How readings are grouped into writes.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WriterConfig {
    /// Most readings per write (sent to InfluxDB as one request unless `[influxdb]
    /// parallel_requests` says more).
    pub batch_size: usize,
    /// Longest a reading waits for its batch to fill before it is written anyway.
    pub linger_ms: u64,
    /// Writes sent to the store at once: the next batch goes out while earlier ones wait for their
    /// answer. Acknowledgements still leave in arrival order (`writer.rs`).
    pub writes_in_flight: usize,
    /// Readings decoded and waiting for the writer; when full, the sources stop reading.
    pub queue_capacity: usize,
    /// Larger messages are dead letters (reason `size`).
    pub max_message_bytes: usize,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            batch_size: 10_000,
            linger_ms: 200,
            writes_in_flight: 2,
            queue_capacity: 20_000,
            max_message_bytes: 65_536,
        }
    }
}

/// Where malformed messages are set aside.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeadLetterConfig {
    /// JSON-lines file of dead letters (raw payload, source, topic, reason, time): the record.
    pub file: PathBuf,
    /// Once the file reaches this size it is renamed `*.1` (replacing the previous one) and a new
    /// one starts.
    pub rotate_bytes: u64,
    /// A copy of each dead letter (the same JSON object) published to `{topic_prefix}/{reason}` on
    /// this MQTT broker (`crate::dead_letter_copies`). Its `topic_prefix` defaults to
    /// `city/dead-letters`, its `client_id` to the gateway's first MQTT client id + `-dead-letters`.
    #[serde(deserialize_with = "mqtt_copy_target")]
    pub mqtt: Option<MqttConfig>,
    /// A copy of each dead letter produced to the topic `topic_template` (default
    /// `smartcity-dead-letters`, keyed by reason) on this Kafka cluster.
    #[serde(deserialize_with = "kafka_copy_target")]
    pub kafka: Option<KafkaConfig>,
}

impl Default for DeadLetterConfig {
    fn default() -> Self {
        DeadLetterConfig {
            file: PathBuf::from("data/gateway/dead-letters.jsonl"),
            rotate_bytes: 64 << 20,
            mqtt: None,
            kafka: None,
        }
    }
}

/// Default topic prefix of the MQTT copies of dead letters (never under a source's `city/sensors`).
pub const DEAD_LETTER_MQTT_PREFIX: &str = "city/dead-letters";
/// Default Kafka topic of the copies of dead letters.
pub const DEAD_LETTER_KAFKA_TOPIC: &str = "smartcity-dead-letters";

/// A table read as `T` after `defaults` were put in for the keys it leaves out: `T`'s own defaults
/// are those of a source or a sink, and a dead-letter topic must not be a readings topic.
fn with_defaults<'de, D: Deserializer<'de>, T: serde::de::DeserializeOwned>(
    d: D,
    defaults: &[(&str, &str)],
) -> Result<Option<T>, D::Error> {
    let mut table = toml::Table::deserialize(d)?;
    for (key, value) in defaults {
        table.entry(*key).or_insert_with(|| toml::Value::String((*value).into()));
    }
    toml::Value::Table(table).try_into().map(Some).map_err(serde::de::Error::custom)
}

fn mqtt_copy_target<'de, D: Deserializer<'de>>(d: D) -> Result<Option<MqttConfig>, D::Error> {
    with_defaults(d, &[("name", "dead-letters-mqtt"), ("topic_prefix", DEAD_LETTER_MQTT_PREFIX)])
}

fn kafka_copy_target<'de, D: Deserializer<'de>>(d: D) -> Result<Option<KafkaConfig>, D::Error> {
    with_defaults(d, &[("name", "dead-letters-kafka"), ("topic_template", DEAD_LETTER_KAFKA_TOPIC)])
}

impl DeadLetterConfig {
    /// Problems of the MQTT copy target: its own, and copies that the gateway would read back.
    fn mqtt_problems(&self, cfg: &GatewayConfig) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        if let Some(m) = self.mqtt.as_ref().filter(|m| m.enabled) {
            p.extend(m.problems());
            let prefix = m.topic_prefix.as_str();
            for source in cfg.mqtt.iter().filter(|s| s.enabled) {
                let under = prefix == source.topic_prefix || prefix.starts_with(&format!("{}/", source.topic_prefix));
                if under {
                    p.push((
                        "topic_prefix",
                        format!(
                            "`{prefix}` is under the source `{}`'s `{}/#`: the gateway would read its own dead letters",
                            source.name, source.topic_prefix
                        ),
                    ));
                }
            }
        }
        p
    }

    /// Problems of the Kafka copy target: its own, and copies that the gateway would read back.
    fn kafka_problems(&self, cfg: &GatewayConfig) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        if let Some(k) = self.kafka.as_ref().filter(|k| k.enabled) {
            p.extend(k.problems());
            if k.topic_template.contains('{') {
                p.push(("topic_template", "one topic for every dead letter: no `{kind}`".into()));
            }
            for source in cfg.kafka.iter().filter(|s| s.enabled) {
                if source.topics().contains(&k.topic_template) {
                    p.push((
                        "topic_template",
                        format!(
                            "`{}` is read by the source `{}`: the gateway would read its own dead letters",
                            k.topic_template, source.name
                        ),
                    ));
                }
            }
        }
        p
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub listen: SocketAddr,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig { listen: SocketAddr::from(([127, 0, 0, 1], 8080)) }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StateConfig {
    pub history_per_sensor: usize,
    pub dead_letters_kept: usize,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig { history_per_sensor: 120, dead_letters_kept: 200 }
    }
}

impl GatewayConfig {
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let mut cfg: Self = config_file::load(path, DEFAULT_TOML)?;
        let several = cfg.mqtt.len() > 1;
        for m in &mut cfg.mqtt {
            if m.name.is_empty() {
                m.name = if several { format!("mqtt-{}-{}", m.host, m.port) } else { "mqtt".into() };
            }
            if m.client_id.is_empty() {
                m.client_id =
                    if several { format!("{DEFAULT_CLIENT_ID}-{}", m.name) } else { DEFAULT_CLIENT_ID.into() };
            }
        }
        // The copies' own session, so that it never takes over the subscriber's (nor another
        // gateway's, since each gateway's subscriber id differs).
        let subscriber = cfg.mqtt.first().map_or(DEFAULT_CLIENT_ID.to_string(), |m| m.client_id.clone());
        if let Some(m) = cfg.dead_letters.mqtt.as_mut().filter(|m| m.client_id.is_empty()) {
            m.client_id = format!("{subscriber}-dead-letters");
        }
        Ok(cfg)
    }

    /// Puts every file the gateway writes (points, spool, dead letters) under `dir`.
    pub fn set_data_dir(&mut self, dir: &Path) {
        self.files.dir = dir.join("points");
        self.spool.dir = dir.join("spool");
        self.dead_letters.file = dir.join("dead-letters.jsonl");
    }

    /// The InfluxDB server readings go to, if one is configured and enabled.
    pub fn influx(&self) -> Option<&InfluxConfig> {
        self.influxdb.as_ref().filter(|i| i.enabled)
    }

    /// The enabled sources, whatever their protocol, in config order.
    pub fn sources(&self) -> Vec<SourceConfig<'_>> {
        let mqtt = self.mqtt.iter().map(SourceConfig::Mqtt);
        let kafka = self.kafka.iter().map(SourceConfig::Kafka);
        let rest = self.kafka_rest.iter().map(SourceConfig::KafkaRest);
        let pulsar = self.pulsar.iter().map(SourceConfig::Pulsar);
        let ngsi_ld = self.ngsi_ld.iter().map(SourceConfig::NgsiLd);
        mqtt.chain(kafka).chain(rest).chain(pulsar).chain(ngsi_ld).filter(SourceConfig::enabled).collect()
    }

    /// Names of the enabled sources, in config order.
    pub fn source_names(&self) -> Vec<String> {
        self.sources().iter().map(|s| s.name().to_string()).collect()
    }

    pub fn validate(&self, path: Option<&Path>) -> Result<(), ConfigError> {
        let names = self.source_names();
        if names.is_empty() {
            config_file::check(path, "", vec![("mqtt", "no source is enabled: enable at least one".into())])?;
        }
        let mut seen = BTreeSet::new();
        for n in &names {
            if !seen.insert(n) {
                config_file::check(
                    path,
                    "",
                    vec![("name", format!("two sources are named `{n}`: names must differ"))],
                )?;
            }
        }
        for (i, m) in self.mqtt.iter().enumerate().filter(|(_, m)| m.enabled) {
            config_file::check(path, &format!("mqtt[{i}]"), m.problems())?;
        }
        for (i, k) in self.kafka.iter().enumerate().filter(|(_, k)| k.enabled) {
            config_file::check(path, &format!("kafka[{i}]"), k.problems())?;
        }
        for (i, k) in self.kafka_rest.iter().enumerate().filter(|(_, k)| k.enabled) {
            config_file::check(path, &format!("kafka_rest[{i}]"), k.problems())?;
        }
        for (i, p) in self.pulsar.iter().enumerate() {
            config_file::check(path, &format!("pulsar[{i}]"), p.problems())?;
        }
        for (i, n) in self.ngsi_ld.iter().enumerate().filter(|(_, n)| n.enabled) {
            config_file::check(path, &format!("ngsi_ld[{i}]"), n.problems())?;
        }
        if let Some(influx) = self.influx() {
            config_file::check(path, "influxdb", influx.problems())?;
        }
        config_file::check(path, "", self.spool.problems())?;
        config_file::check(path, "dead_letters.mqtt", self.dead_letters.mqtt_problems(self))?;
        config_file::check(path, "dead_letters.kafka", self.dead_letters.kafka_problems(self))?;
        let mut writer = Vec::new();
        if !(1..=20_000).contains(&self.writer.batch_size) {
            writer.push(("batch_size", format!("must be 1-20000 (got {})", self.writer.batch_size)));
        }
        if self.writer.linger_ms > 60_000 {
            writer.push(("linger_ms", format!("must be at most 60000 (got {})", self.writer.linger_ms)));
        }
        if !(1..=16).contains(&self.writer.writes_in_flight) {
            writer.push(("writes_in_flight", format!("must be 1-16 (got {})", self.writer.writes_in_flight)));
        }
        if self.writer.queue_capacity < self.writer.batch_size {
            writer.push(("queue_capacity", "must be at least batch_size".into()));
        }
        if !(1024..=16 << 20).contains(&self.writer.max_message_bytes) {
            writer.push(("max_message_bytes", "must be 1024-16777216".into()));
        }
        config_file::check(path, "writer", writer)?;
        if self.files.rotate_bytes < 4096 {
            config_file::check(path, "files", vec![("rotate_bytes", "must be at least 4096".into())])?;
        }
        let mut state = Vec::new();
        if !(1..=10_000).contains(&self.state.history_per_sensor) {
            state.push(("history_per_sensor", format!("must be 1-10000 (got {})", self.state.history_per_sensor)));
        }
        if self.state.dead_letters_kept > 100_000 {
            state.push(("dead_letters_kept", format!("at most 100000 (got {})", self.state.dead_letters_kept)));
        }
        config_file::check(path, "state", state)?;
        for (source, f) in &self.formats {
            let at = format!("formats.{source}");
            if !names.contains(source) {
                let known = names.join(", ");
                config_file::check(
                    path,
                    &at,
                    vec![("format", format!("no enabled source is named `{source}` (sources: {known})"))],
                )?;
            }
            if self.ngsi_ld.iter().any(|n| &n.name == source) {
                let why = format!("`{source}` is an NGSI-LD source: it carries entities, in no other format");
                config_file::check(path, &at, vec![("format", why)])?;
            }
            config_file::check(path, &at, f.problems())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str, text: &str) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!("gw-{name}-{}.toml", std::process::id()));
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn shipped_file_parses_and_is_valid() {
        let c = GatewayConfig::load(None).unwrap();
        c.validate(None).unwrap();
        assert_eq!(c.http.listen.port(), 8080);
        assert_eq!(c.mqtt[0].client_id, "smartcity-gateway");
        assert!(c.influx().is_none(), "the demo writes files, no InfluxDB needed");
    }

    #[test]
    fn influxdb_writes_go_out_whole_unless_told_otherwise() {
        let path = temp("influx-default", "[influxdb]\nbucket = \"b\"\n");
        let c = GatewayConfig::load(Some(&path)).unwrap();
        assert_eq!(c.influx().unwrap().parallel_requests, 1);
        assert_eq!(c.influx().unwrap().bucket, "b");
        let path = temp("influx-three", "[influxdb]\nparallel_requests = 3\n");
        assert_eq!(GatewayConfig::load(Some(&path)).unwrap().influx().unwrap().parallel_requests, 3);
        let path = temp("influx-typo", "[influxdb]\nparalel_requests = 3\n");
        let err = GatewayConfig::load(Some(&path)).unwrap_err().to_string();
        assert!(err.contains("paralel_requests"), "{err}");
    }

    #[test]
    fn every_field_may_be_omitted() {
        let path = temp("empty", "");
        assert_eq!(GatewayConfig::load(Some(&path)).unwrap(), GatewayConfig::load(None).unwrap());
    }

    #[test]
    fn invalid_values_name_file_and_field() {
        let path = temp("bad", &DEFAULT_TOML.replace("history_per_sensor = 120", "history_per_sensor = 0"));
        let err = GatewayConfig::load(Some(&path)).unwrap().validate(Some(&path)).unwrap_err().to_string();
        assert!(err.contains(&path.display().to_string()) && err.contains("`state.history_per_sensor`"), "{err}");
        let path = temp("typo", &DEFAULT_TOML.replace("[http]", "[htp]"));
        let err = GatewayConfig::load(Some(&path)).unwrap_err().to_string();
        assert!(err.contains("htp"), "{err}");
    }

    #[test]
    fn pulsar_gets_its_own_subscription_and_names_must_differ() {
        let path = temp("pulsar", "[[pulsar]]\nname = \"p\"\n[[pulsar]]\nname = \"q\"\nsubscription = \"mine\"\n");
        let c = GatewayConfig::load(Some(&path)).unwrap();
        assert_eq!(c.pulsar[0].subscription, DEFAULT_PULSAR_SUBSCRIPTION);
        assert_eq!(c.pulsar[1].subscription, "mine");
        let path = temp("dup", "[[kafka]]\nname = \"mqtt\"\n");
        let err = GatewayConfig::load(Some(&path)).unwrap().validate(Some(&path)).unwrap_err().to_string();
        assert!(err.contains("two sources are named `mqtt`"), "{err}");
    }

    #[test]
    fn dead_letter_copies_get_their_own_topics_and_session() {
        let text = "[[mqtt]]\nclient_id = \"gw-a\"\n[dead_letters.mqtt]\nhost = \"broker\"\n[dead_letters.kafka]\nbootstrap_servers = \"k:9092\"\n";
        let path = temp("copies", text);
        let c = GatewayConfig::load(Some(&path)).unwrap();
        c.validate(Some(&path)).unwrap();
        let m = c.dead_letters.mqtt.as_ref().unwrap();
        assert_eq!((m.topic_prefix.as_str(), m.client_id.as_str()), (DEAD_LETTER_MQTT_PREFIX, "gw-a-dead-letters"));
        assert_eq!((m.name.as_str(), m.host.as_str()), ("dead-letters-mqtt", "broker"));
        let k = c.dead_letters.kafka.as_ref().unwrap();
        assert_eq!((k.topic_template.as_str(), k.name.as_str()), (DEAD_LETTER_KAFKA_TOPIC, "dead-letters-kafka"));

        for (text, field, says) in [
            (
                "[dead_letters.mqtt]\ntopic_prefix = \"city/sensors/bad\"\n",
                "dead_letters.mqtt.topic_prefix",
                "read its own",
            ),
            ("[dead_letters.mqtt]\ntopic_prefix = \"city/#\"\n", "dead_letters.mqtt.topic_prefix", "wildcards"),
            ("[dead_letters.mqtt]\nqos = 3\n", "dead_letters.mqtt.qos", ""),
            (
                "[[kafka]]\ntopic_template = \"smartcity-dead-letters\"\n[dead_letters.kafka]\n",
                "dead_letters.kafka.topic_template",
                "read its own",
            ),
            (
                "[dead_letters.kafka]\ntopic_template = \"dl-{kind}\"\n",
                "dead_letters.kafka.topic_template",
                "no `{kind}`",
            ),
        ] {
            let path = temp("bad-copies", text);
            let err = GatewayConfig::load(Some(&path)).unwrap().validate(Some(&path)).unwrap_err().to_string();
            assert!(err.contains(&format!("`{field}`")) && err.contains(says), "{text}: {err}");
        }
        let path = temp("typo-copies", "[dead_letters.mqtt]\nhots = \"x\"\n");
        let err = GatewayConfig::load(Some(&path)).unwrap_err().to_string();
        assert!(err.contains("hots"), "{err}");
    }

    #[test]
    fn formats_name_a_source_and_a_known_format() {
        let path = temp("formats", "[[mqtt]]\nname = \"ttn\"\n[formats.ttn]\nformat = \"ttn\"\nkind = \"weather\"\n");
        let c = GatewayConfig::load(Some(&path)).unwrap();
        c.validate(Some(&path)).unwrap();
        assert_eq!(c.formats["ttn"].format, crate::formats::Format::Ttn);
        for (text, says) in [
            ("[formats.other]\nformat = \"senml\"\n", "no enabled source is named `other`"),
            ("[formats.mqtt]\nformat = \"senml\"\nlat = 14.6\n", "both `lat` and `lon`"),
            ("[formats.mqtt]\nformat = \"senml\"\nlat = 48.8\nlon = 2.3\n", "from every commune"),
            ("[formats.mqtt]\nkind = \"noise\"\n", "takes no other setting"),
        ] {
            let path = temp("bad-formats", text);
            let err = GatewayConfig::load(Some(&path)).unwrap().validate(Some(&path)).unwrap_err().to_string();
            assert!(err.contains("formats.") && err.contains(says), "{text}: {err}");
        }
        let path = temp("typo-formats", "[formats.mqtt]\nformat = \"lorawan\"\n");
        let err = GatewayConfig::load(Some(&path)).unwrap_err().to_string();
        assert!(err.contains("lorawan"), "{err}");
    }
}
