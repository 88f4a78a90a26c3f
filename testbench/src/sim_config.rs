//! Simulator configurations for the bench, as TOML text the way a user writes them: every sink at
//! once, with topics, prefixes and an InfluxDB bucket unique to one test run so read-backs are exact.

use crate::bench_var;

/// Where one test run's readings go.
pub struct RunNames {
    /// Unique tag of the run (`fan-<pid>-<nanos>`).
    pub run: String,
}

impl RunNames {
    pub fn new(prefix: &str) -> Self {
        RunNames { run: crate::unique(prefix) }
    }
    /// MQTT prefix of the broker entry `name`.
    pub fn mqtt_prefix(&self, name: &str) -> String {
        format!("test/{}/{name}", self.run)
    }
    /// Kafka topic template of the sink `name` (`{kind}` expanded by the sink).
    pub fn kafka_template(&self, name: &str) -> String {
        format!("{}-{name}-{{kind}}", self.run)
    }
    /// The six Kafka topics of the sink `name`.
    pub fn kafka_topics(&self, name: &str) -> Vec<String> {
        kinds().map(|k| self.kafka_template(name).replace("{kind}", k.as_str())).collect()
    }
    pub fn pulsar_template(&self) -> String {
        format!("persistent://public/default/{}-{{kind}}", self.run)
    }
    pub fn pulsar_topics(&self) -> Vec<String> {
        kinds().map(|k| self.pulsar_template().replace("{kind}", k.pulsar_suffix())).collect()
    }
    pub fn bucket(&self) -> String {
        self.run.clone()
    }
}

fn kinds() -> impl Iterator<Item = smartcity_model::SensorKind> {
    smartcity_model::SensorKind::ALL.into_iter()
}

/// Secrets for the bench, written to files of this run (the TOML names the files, never the secret).
pub fn secret_file(run: &RunNames, name: &str, value: &str) -> String {
    let path = std::env::temp_dir().join(format!("{}-{name}", run.run));
    std::fs::write(&path, value).expect("secret file");
    path.display().to_string()
}

/// Passwords to use; the right ones by default, a wrong one to test refusals.
pub struct Passwords {
    pub mqtt: String,
    pub kafka: String,
}

impl Default for Passwords {
    fn default() -> Self {
        Passwords { mqtt: bench_var("BENCH_MQTT_PASSWORD"), kafka: bench_var("BENCH_KAFKA_SASL_PASSWORD") }
    }
}

/// Every sink of the bench: Mosquitto plain (`mosquitto`) and mutual TLS + password (`mosquitto-tls`),
/// Kafka PLAINTEXT (`kafka`) and SASL_SSL (`kafka-sasl`), the REST proxy (`kafka-rest`, at `rest_url`),
/// Pulsar (`pulsar`) and InfluxDB (`influxdb`, the run's bucket). No embedded broker.
pub fn all_sinks(run: &RunNames, rest_url: &str, pw: &Passwords) -> String {
    let host = bench_var("BENCH_MQTT_HOST");
    format!(
        r#"
[embedded_broker]
enabled = false

[[mqtt]]
name = "mosquitto"
host = "{host}"
port = {mqtt_port}
client_id = "{run}-plain"
topic_prefix = "{prefix_plain}"

[[mqtt]]
name = "mosquitto-tls"
host = "{host}"
port = {mqtts_port}
client_id = "{run}-tls"
topic_prefix = "{prefix_tls}"
username = "{mqtt_user}"
password_file = "{mqtt_pw}"
[mqtt.tls]
ca_file = "{ca}"
client_cert_file = "{cert}"
client_key_file = "{key}"

[[kafka]]
name = "kafka"
bootstrap_servers = "{kafka}"
topic_template = "{kafka_plain}"

[[kafka]]
name = "kafka-sasl"
bootstrap_servers = "{kafka_sasl}"
topic_template = "{kafka_sasl_t}"
security_protocol = "sasl_ssl"
sasl_mechanism = "PLAIN"
username = "{kafka_user}"
password_file = "{kafka_pw}"
[kafka.tls]
ca_file = "{kafka_ca}"

[[kafka_rest]]
name = "kafka-rest"
url = "{rest_url}"
topic_template = "{kafka_rest_t}"

[[pulsar]]
name = "pulsar"
url = "{pulsar}"
topic_template = "{pulsar_t}"

[[influxdb]]
name = "influxdb"
url = "{influx}"
org = "{org}"
bucket = "{bucket}"
token_file = "{token}"
"#,
        run = run.run,
        mqtt_port = bench_var("BENCH_MQTT_PORT"),
        mqtts_port = bench_var("BENCH_MQTTS_PORT"),
        prefix_plain = run.mqtt_prefix("mosquitto"),
        prefix_tls = run.mqtt_prefix("mosquitto-tls"),
        mqtt_user = bench_var("BENCH_MQTT_USER"),
        mqtt_pw = secret_file(run, "mqtt-pw", &pw.mqtt),
        ca = bench_var("BENCH_TLS_CA"),
        cert = bench_var("BENCH_TLS_CLIENT_CERT"),
        key = bench_var("BENCH_TLS_CLIENT_KEY"),
        kafka = bench_var("BENCH_KAFKA_BOOTSTRAP"),
        kafka_plain = run.kafka_template("kafka"),
        kafka_sasl = bench_var("BENCH_KAFKA_SASL_BOOTSTRAP"),
        kafka_sasl_t = run.kafka_template("kafka-sasl"),
        kafka_user = bench_var("BENCH_KAFKA_SASL_USER"),
        kafka_pw = secret_file(run, "kafka-pw", &pw.kafka),
        kafka_ca = bench_var("BENCH_KAFKA_TLS_CA"),
        kafka_rest_t = run.kafka_template("kafka-rest"),
        pulsar = bench_var("BENCH_PULSAR_URL"),
        pulsar_t = run.pulsar_template(),
        influx = bench_var("BENCH_INFLUX_URL"),
        org = bench_var("BENCH_INFLUX_ORG"),
        bucket = run.bucket(),
        token = secret_file(run, "influx-token", &bench_var("BENCH_INFLUX_TOKEN")),
    )
}

/// An rdkafka config for reading back from the bench's plain listener.
pub fn kafka_reader() -> rdkafka::ClientConfig {
    let mut c = rdkafka::ClientConfig::new();
    c.set("bootstrap.servers", bench_var("BENCH_KAFKA_BOOTSTRAP"));
    c
}
