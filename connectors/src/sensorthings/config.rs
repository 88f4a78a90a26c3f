//! Settings of the SensorThings API sink, `[[sensorthings]]` in the config.

use crate::fanout::QueueConfig;
use crate::secret;
use crate::tls::{self, TlsConfig};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;
use url::Url;

/// An OGC SensorThings API 1.1 server (FROST-Server) to write readings to, as Things, Datastreams
/// and Observations (docs/sensorthings.md).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensorThingsConfig {
    /// Name of this sink in logs and metrics (the `sink` label); unique among the sinks.
    #[serde(default = "default_name")]
    pub name: String,
    /// Use this sink at all.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// The service root, version included: `http://host:8080/FROST-Server/v1.1`. Entities are read and
    /// created under it (`{url}/Things`, `{url}/CreateObservations`). The server must load FROST's
    /// DataArray plugin, which serves `CreateObservations` (`check` says whether it does).
    #[serde(default = "default_url")]
    pub url: String,
    /// Prepended to the name of every Thing, Sensor and ObservedProperty the sink creates (and looks
    /// up), so that several cities, gateways or test runs share one server without sharing entities:
    /// `"fdf-"` gives the Thing `fdf-traffic-fort-de-france-01` and the Sensor `fdf-traffic-sensor`.
    /// Changing it later creates a new set of entities; the old ones stay.
    #[serde(default)]
    pub name_prefix: String,
    /// User name for HTTP basic authentication, if the server requires it.
    #[serde(default)]
    pub username: Option<String>,
    /// Environment variable holding the basic-auth password; it wins over `password_file`.
    #[serde(default = "default_password_env")]
    pub password_env: String,
    /// File holding the basic-auth password (first line), used when `password_env` is not set.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Seconds to wait for the answer to one request (connecting included).
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: u64,
    /// CA (and client certificate) of an `https://` server signed by a private CA. Without it,
    /// `https://` is verified against the public web roots.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// This sink's queue; `batch_size` readings make one `CreateObservations` request (one Observation
    /// per quantity: about 5 per reading).
    #[serde(default)]
    pub queue: QueueConfig,
}

fn default_name() -> String {
    "sensorthings".into()
}
fn default_enabled() -> bool {
    true
}
fn default_url() -> String {
    "http://127.0.0.1:8090/FROST-Server/v1.1".into()
}
fn default_password_env() -> String {
    "SMARTCITY_STA_PASSWORD".into()
}
fn default_timeout_seconds() -> u64 {
    10
}

impl Default for SensorThingsConfig {
    fn default() -> Self {
        SensorThingsConfig {
            name: default_name(),
            enabled: default_enabled(),
            url: default_url(),
            name_prefix: String::new(),
            username: None,
            password_env: default_password_env(),
            password_file: None,
            timeout_seconds: default_timeout_seconds(),
            tls: None,
            queue: QueueConfig::default(),
        }
    }
}

impl SensorThingsConfig {
    /// Problems a user can fix in the file, as (field, message); empty when valid. No network.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        if self.name.trim().is_empty() {
            p.push(("name", "must not be empty".into()));
        }
        match Url::parse(&self.url) {
            Err(e) => p.push(("url", format!("`{}` is not a URL: {e}", self.url))),
            Ok(u) if !matches!(u.scheme(), "http" | "https") || u.cannot_be_a_base() => {
                p.push(("url", format!("`{}` must be an http:// or https:// URL", self.url)))
            }
            Ok(u) if u.host_str().is_none_or(str::is_empty) => p.push(("url", format!("`{}` names no host", self.url))),
            Ok(u) if !u.username().is_empty() || u.password().is_some() => {
                p.push(("url", "must not hold credentials: use `username` and `password_env`".into()))
            }
            Ok(u) if u.query().is_some() || u.fragment().is_some() => {
                p.push(("url", format!("`{}`: give the service root only, without `?` or `#`", self.url)))
            }
            Ok(u) if u.scheme() == "http" && self.tls.is_some() => {
                p.push(("tls", "is set but the url is http://: use https://".into()))
            }
            Ok(_) => {}
        }
        // The prefix ends up inside OData string literals and entity names: no control characters.
        if self.name_prefix.chars().any(char::is_control) {
            p.push(("name_prefix", "must not contain control characters".into()));
        }
        if self.name_prefix.len() > 100 {
            p.push(("name_prefix", format!("at most 100 bytes (got {})", self.name_prefix.len())));
        }
        if self.timeout_seconds == 0 || self.timeout_seconds > 300 {
            p.push(("timeout_seconds", format!("must be 1-300 (got {})", self.timeout_seconds)));
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

    /// The service root, for logs: never credentials.
    pub fn address(&self) -> String {
        match Url::parse(&self.url) {
            Ok(mut u) => {
                let _ = u.set_username("");
                let _ = u.set_password(None);
                u.as_str().trim_end_matches('/').to_string()
            }
            // Not a URL: problems() says so; show it only after a possible `user:password@`.
            Err(_) => self.url.rsplit('@').next().unwrap_or_default().to_string(),
        }
    }

    /// The per-request timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(c: &SensorThingsConfig) -> Vec<&'static str> {
        c.problems().into_iter().map(|(f, _)| f).collect()
    }

    #[test]
    fn defaults_are_valid_and_match_an_empty_table() {
        let parsed: SensorThingsConfig = toml::from_str("").unwrap();
        assert_eq!(parsed, SensorThingsConfig::default());
        assert!(parsed.problems().is_empty(), "{:?}", parsed.problems());
        assert_eq!(parsed.address(), "http://127.0.0.1:8090/FROST-Server/v1.1");
        assert_eq!(parsed.password_env, "SMARTCITY_STA_PASSWORD");
        assert_eq!(parsed.timeout(), Duration::from_secs(10));
        assert!(toml::from_str::<SensorThingsConfig>("prefix = \"x\"").is_err());
        let c: SensorThingsConfig = toml::from_str("name_prefix = \"fdf-\"\n[queue]\nbatch_size = 200").unwrap();
        assert_eq!((c.name_prefix.as_str(), c.queue.batch_size), ("fdf-", 200));
    }

    #[test]
    fn problems_name_the_field() {
        let bad = SensorThingsConfig {
            name: " ".into(),
            url: "ftp://x".into(),
            name_prefix: "a\nb".into(),
            timeout_seconds: 0,
            password_file: Some("/nonexistent/pw".into()),
            queue: QueueConfig { capacity: 0, ..Default::default() },
            ..Default::default()
        };
        assert_eq!(
            fields(&bad),
            ["name", "url", "name_prefix", "timeout_seconds", "password_file", "password_file", "queue.capacity"]
        );
        let https = SensorThingsConfig { url: "https://sta.example/FROST-Server/v1.1/".into(), ..Default::default() };
        assert!(fields(&https).is_empty(), "public roots verify an https:// server without `tls`");
        let missing_ca = SensorThingsConfig {
            tls: Some(TlsConfig { ca_file: "/nonexistent/ca.pem".into(), ..Default::default() }),
            ..https
        };
        assert_eq!(fields(&missing_ca), ["tls"]);
        let tls_on_http = SensorThingsConfig { tls: missing_ca.tls.clone(), ..Default::default() };
        assert_eq!(fields(&tls_on_http), ["tls", "tls"]);
        let creds = SensorThingsConfig { url: "http://u:pw@sta:8080/v1.1".into(), ..Default::default() };
        assert_eq!(fields(&creds), ["url"]);
        assert!(!creds.address().contains("pw"), "{}", creds.address());
        assert_eq!(fields(&SensorThingsConfig { url: "not a url".into(), ..Default::default() }), ["url"]);
        let query = SensorThingsConfig { url: "http://sta/v1.1?x=1".into(), ..Default::default() };
        assert_eq!(fields(&query), ["url"]);
    }
}
