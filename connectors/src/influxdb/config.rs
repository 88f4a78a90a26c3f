//! Settings of an InfluxDB v2 writer.

use crate::fanout::QueueConfig;
use crate::tls::TlsConfig;
use serde::{Deserialize, Deserializer};
use std::path::PathBuf;

/// An InfluxDB v2 server to write to, `[[influxdb]]` in the config.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InfluxConfig {
    /// Name of this sink in logs and in the `sink` label of metrics; unique among the sinks.
    #[serde(default = "default_name")]
    pub name: String,
    /// Use this sink at all.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// Base URL of the server, `http://host:8086` or `https://host:8086` (a path prefix is kept,
    /// for a server behind a reverse proxy). No credentials in it: the token goes in `token_env`
    /// or `token_file`.
    #[serde(default = "default_url")]
    pub url: String,
    /// Organization that owns the bucket (its name, not its id).
    #[serde(default = "default_org")]
    pub org: String,
    /// Bucket the readings are written to.
    #[serde(default = "default_bucket")]
    pub bucket: String,
    /// Environment variable holding the API token; it overrides `token_file`.
    #[serde(default = "default_token_env")]
    pub token_env: String,
    /// File holding the API token (first line). No token at all: requests go unauthenticated,
    /// which InfluxDB v2 refuses (`check` says so).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// Compress request bodies with gzip: about 5x less to send for some CPU; worth it over a slow
    /// link, not on localhost.
    #[serde(default)]
    pub gzip: bool,
    /// Time limit of one request (connecting included), seconds.
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: u64,
    /// A write is split into this many requests sent at once (parts of at least 500 lines); 2 by
    /// default, 1 in the gateway (`gateway::config::GATEWAY_PARALLEL_REQUESTS`). Why:
    /// InfluxDB answers one request at a time per connection, and on the bench one 5,000-line
    /// request at a time tops out at 62,000 lines/s where two at a time reach 132,000
    /// (bench/ingest.sh, the ceiling table).
    #[serde(default = "default_parallel_requests")]
    pub parallel_requests: usize,
    /// TLS settings for an `https://` server whose certificate a private CA signed (and for
    /// mutual TLS). Without it, `https://` verifies against the public web roots.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// The writing queue. A key left out takes the InfluxDB default, not the generic one: writes
    /// of 10,000 lines, sent as two requests of 5,000 (`parallel_requests`; the gateway, which keeps
    /// two writes in flight, sends each whole).
    #[serde(default = "default_queue", deserialize_with = "queue_with_influx_defaults")]
    pub queue: QueueConfig,
}

fn default_name() -> String {
    "influxdb".into()
}
fn default_enabled() -> bool {
    true
}
fn default_url() -> String {
    "http://127.0.0.1:8086".into()
}
fn default_org() -> String {
    "digitribe".into()
}
fn default_bucket() -> String {
    "iot_data".into()
}
fn default_token_env() -> String {
    "SMARTCITY_INFLUXDB_TOKEN".into()
}
fn default_parallel_requests() -> usize {
    2
}
fn default_timeout_seconds() -> u64 {
    10
}
fn default_queue() -> QueueConfig {
    QueueConfig { batch_size: 10_000, ..QueueConfig::default() }
}

/// `[influxdb.queue]` over [`default_queue`] (see [`QueueConfig::deserialize_over`]).
fn queue_with_influx_defaults<'de, D: Deserializer<'de>>(d: D) -> Result<QueueConfig, D::Error> {
    QueueConfig::deserialize_over(d, default_queue())
}

impl Default for InfluxConfig {
    fn default() -> Self {
        InfluxConfig {
            name: default_name(),
            enabled: default_enabled(),
            url: default_url(),
            org: default_org(),
            bucket: default_bucket(),
            token_env: default_token_env(),
            token_file: None,
            gzip: false,
            timeout_seconds: default_timeout_seconds(),
            parallel_requests: default_parallel_requests(),
            tls: None,
            queue: default_queue(),
        }
    }
}

impl InfluxConfig {
    /// Problems a user can fix in the file, as (field, message); empty when valid. No network.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        if self.name.trim().is_empty() {
            p.push(("name", "must not be empty".into()));
        }
        match url::Url::parse(&self.url) {
            Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {
                if u.host_str().is_none_or(str::is_empty) {
                    p.push(("url", format!("`{}` names no host", self.url)));
                }
                if !u.username().is_empty() || u.password().is_some() {
                    p.push(("url", "must not hold credentials: put the token in token_env or token_file".into()));
                }
                if u.query().is_some() || u.fragment().is_some() {
                    p.push(("url", format!("`{}`: give the base URL only, without `?` or `#`", self.url)));
                }
                if u.scheme() == "http" && self.tls.is_some() {
                    p.push(("tls", "is set but the url is http://: use https://".into()));
                }
            }
            Ok(_) => p.push(("url", format!("`{}` must start with http:// or https://", self.url))),
            Err(e) => p.push(("url", format!("`{}` is not a URL: {e}", self.url))),
        }
        if self.org.trim().is_empty() {
            p.push(("org", "must not be empty".into()));
        }
        if self.bucket.trim().is_empty() {
            p.push(("bucket", "must not be empty".into()));
        }
        p.extend(crate::secret::file_problem("token_file", self.token_file.as_deref()));
        if self.timeout_seconds == 0 || self.timeout_seconds > 300 {
            p.push(("timeout_seconds", format!("must be 1-300 (got {})", self.timeout_seconds)));
        }
        if !(1..=16).contains(&self.parallel_requests) {
            p.push(("parallel_requests", format!("must be 1-16 (got {})", self.parallel_requests)));
        }
        if let Some(tls) = &self.tls {
            if let Err(e) = crate::tls::client_config(tls) {
                p.push(("tls", e.to_string()));
            }
        }
        p.extend(self.queue.problems());
        p
    }

    /// `url (org …, bucket …)` for logs; never the token, and any credentials in the URL are hidden.
    pub fn address(&self) -> String {
        let url = match url::Url::parse(&self.url) {
            Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
                let _ = u.set_username("");
                let _ = u.set_password(None);
                u.to_string()
            }
            _ => self.url.clone(),
        };
        format!("{} (org {}, bucket {})", url.trim_end_matches('/'), self.org, self.bucket)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fanout::Overflow;

    #[test]
    fn defaults() {
        let d = InfluxConfig::default();
        assert_eq!(d.url, "http://127.0.0.1:8086");
        assert_eq!((d.org.as_str(), d.bucket.as_str()), ("digitribe", "iot_data"));
        assert_eq!(d.token_env, "SMARTCITY_INFLUXDB_TOKEN");
        assert_eq!((d.queue.batch_size, d.parallel_requests), (10_000, 2));
        assert!(d.problems().is_empty(), "{:?}", d.problems());
        assert_eq!(d.address(), "http://127.0.0.1:8086 (org digitribe, bucket iot_data)");
        // An empty table is the default, field for field.
        assert_eq!(toml::from_str::<InfluxConfig>("").unwrap(), d);
    }

    #[test]
    fn a_partial_queue_table_keeps_the_influx_batch_size() {
        let c: InfluxConfig = toml::from_str("[queue]\ncapacity = 10\noverflow = \"drop\"").unwrap();
        assert_eq!(c.queue.batch_size, 10_000);
        assert_eq!(c.queue.capacity, 10);
        assert_eq!(c.queue.overflow, Overflow::Drop);
        assert!(toml::from_str::<InfluxConfig>("[queue]\nbatchsize = 10")
            .unwrap_err()
            .to_string()
            .contains("batchsize"));
        assert!(toml::from_str::<InfluxConfig>("tokn = \"x\"").is_err());
    }

    #[test]
    fn problems_name_the_field() {
        let fields = |c: InfluxConfig| c.problems().into_iter().map(|(f, _)| f).collect::<Vec<_>>();
        let bad = InfluxConfig {
            url: "ftp://x".into(),
            org: " ".into(),
            bucket: "".into(),
            token_file: Some("/nonexistent/token".into()),
            timeout_seconds: 0,
            parallel_requests: 0,
            tls: Some(TlsConfig { ca_file: "/nonexistent/ca.pem".into(), ..Default::default() }),
            queue: QueueConfig { batch_size: 0, ..default_queue() },
            ..Default::default()
        };
        assert_eq!(
            fields(bad),
            ["url", "org", "bucket", "token_file", "timeout_seconds", "parallel_requests", "tls", "queue.batch_size"]
        );
        assert_eq!(fields(InfluxConfig { url: "not a url".into(), ..Default::default() }), ["url"]);
        let behind_a_proxy = InfluxConfig { url: "https://influx.example/prefix/".into(), ..Default::default() };
        assert!(behind_a_proxy.problems().is_empty());
        let tls_on_http = InfluxConfig {
            tls: Some(TlsConfig { ca_file: "/nonexistent/ca.pem".into(), ..Default::default() }),
            ..Default::default()
        };
        assert_eq!(fields(tls_on_http), ["tls", "tls"]);
        let with_credentials = InfluxConfig { url: "http://admin:secret@host:8086".into(), ..Default::default() };
        assert_eq!(fields(with_credentials.clone()), ["url"]);
        assert!(!with_credentials.address().contains("secret"), "{}", with_credentials.address());
    }
}
