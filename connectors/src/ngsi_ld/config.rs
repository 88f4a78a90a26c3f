//! Settings of an NGSI-LD context broker sink.

use crate::fanout::QueueConfig;
use crate::tls::TlsConfig;
use serde::Deserialize;
use std::path::PathBuf;

/// How the @context travels with the entities: never both ways at once (brokers answer 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContentMode {
    /// `Content-Type: application/json` and exactly one `Link` header naming the context.
    Json,
    /// `Content-Type: application/ld+json` and an `@context` member in every entity.
    LdJson,
}

/// Which readings become instances of the broker's history (its temporal API), docs/ngsi-ld.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum History {
    /// Every reading, through the normal batch upsert only: a batch holding several readings of one
    /// sensor goes out as successive upserts, oldest first, each with at most one reading per
    /// entity. Works with every broker that records updates (Stellio, Scorpio, Orion-LD with TRoE).
    Upserts,
    /// Every reading: the older readings of each sensor in a batch through the temporal API
    /// (`POST /ngsi-ld/v1/temporal/entities/`, all of one sensor's instances in one request), the
    /// latest through the batch upsert, which keeps the entity current. Fewer requests when a sink
    /// catches up; needs a broker that has the temporal API (Stellio, Scorpio, Orion-LD with TRoE).
    Temporal,
    /// Only the latest reading of each sensor in a batch: for a broker without history, or when
    /// only the current state matters.
    Latest,
}

/// A context broker, `[[ngsi_ld]]` in the config.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NgsiLdConfig {
    /// Name of this sink in logs and in the `sink` label of metrics; unique among the sinks.
    #[serde(default = "default_name")]
    pub name: String,
    /// Use this sink at all.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// Base URL of the broker (Orion-LD listens on 1026, Stellio's API gateway on 8080); requests go
    /// to `{url}/ngsi-ld/v1/...`.
    #[serde(default = "default_url")]
    pub url: String,
    /// `NGSILD-Tenant` header (Stellio needs its tenants declared in its own config). None: the
    /// default tenant.
    #[serde(default)]
    pub tenant: Option<String>,
    /// URL of the JSON-LD context the entities' short names expand with. The gateway serves the
    /// project's own at `/ngsi-ld/context.jsonld` (and the compose stack mounts
    /// `config/ngsi-ld-context.jsonld`): a broker that cannot fetch it answers 503
    /// `LdContextNotAvailable`. Create and update an entity always with the same context.
    #[serde(default = "default_context_url")]
    pub context_url: String,
    /// `json` (a Link header, the default) or `ld_json` (@context in each entity).
    #[serde(default = "default_content")]
    pub content: ContentMode,
    /// Environment variable holding a bearer token; it overrides `token_file`. No token: no
    /// `Authorization` header.
    #[serde(default = "default_token_env")]
    pub token_env: String,
    /// File holding the bearer token (first line).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// Seconds one noise observation covers (`dateObservedFrom` to `dateObservedTo`): the
    /// simulator's `interval_seconds`.
    #[serde(default = "default_period")]
    pub observation_period_seconds: f64,
    /// `upserts` (the default), `temporal` or `latest`: see [`History`].
    #[serde(default = "default_history")]
    pub history: History,
    /// Most entities in one upsert request.
    #[serde(default = "default_max_entities")]
    pub max_entities: usize,
    /// Time limit of one request.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// Private CA (and client certificate) of an `https://` broker; public roots otherwise.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// The publishing queue.
    #[serde(default)]
    pub queue: QueueConfig,
}

fn default_name() -> String {
    "ngsi-ld".into()
}
fn default_enabled() -> bool {
    true
}
fn default_url() -> String {
    "http://127.0.0.1:1026".into()
}
fn default_context_url() -> String {
    "http://127.0.0.1:8080/ngsi-ld/context.jsonld".into()
}
fn default_content() -> ContentMode {
    ContentMode::Json
}
fn default_token_env() -> String {
    "SMARTCITY_NGSI_LD_TOKEN".into()
}
fn default_period() -> f64 {
    5.0
}
fn default_history() -> History {
    History::Upserts
}
fn default_max_entities() -> usize {
    100
}
fn default_timeout() -> u64 {
    10
}

impl Default for NgsiLdConfig {
    fn default() -> Self {
        NgsiLdConfig {
            name: default_name(),
            enabled: default_enabled(),
            url: default_url(),
            tenant: None,
            context_url: default_context_url(),
            content: default_content(),
            token_env: default_token_env(),
            token_file: None,
            observation_period_seconds: default_period(),
            history: default_history(),
            max_entities: default_max_entities(),
            timeout_seconds: default_timeout(),
            tls: None,
            queue: QueueConfig::default(),
        }
    }
}

fn http_url_problem(field: &'static str, value: &str) -> Option<(&'static str, String)> {
    match url::Url::parse(value) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => None,
        Ok(_) => Some((field, format!("`{value}` must be an http:// or https:// URL"))),
        Err(e) => Some((field, format!("`{value}` is not a URL: {e}"))),
    }
}

impl NgsiLdConfig {
    /// Problems a user can fix in the file, as (field, message); empty when valid. No network.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        p.extend(http_url_problem("url", &self.url));
        p.extend(http_url_problem("context_url", &self.context_url));
        if self.tenant.as_deref().is_some_and(|t| t.trim().is_empty() || t.contains(char::is_whitespace)) {
            p.push(("tenant", "must be a non-empty name without spaces (or omitted)".into()));
        }
        if !(self.observation_period_seconds > 0.0 && self.observation_period_seconds <= 86_400.0) {
            p.push(("observation_period_seconds", "must be > 0 and at most 86400".into()));
        }
        if self.max_entities == 0 || self.max_entities > 10_000 {
            p.push(("max_entities", format!("must be 1-10000 (got {})", self.max_entities)));
        }
        if self.timeout_seconds == 0 {
            p.push(("timeout_seconds", "must be at least 1".into()));
        }
        p.extend(crate::secret::file_problem("token_file", self.token_file.as_deref()));
        if let Some(t) = &self.tls {
            if let Err(e) = crate::tls::client_config(t) {
                p.push(("tls", e.to_string()));
            }
        }
        p.extend(self.queue.problems());
        p
    }

    /// The broker and tenant, for logs (never the token).
    pub fn address(&self) -> String {
        match &self.tenant {
            Some(t) => format!("{} (tenant {t})", self.url.trim_end_matches('/')),
            None => self.url.trim_end_matches('/').to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_named() {
        assert!(NgsiLdConfig::default().problems().is_empty());
        let bad = NgsiLdConfig {
            url: "orion:1026".into(),
            context_url: "".into(),
            tenant: Some(" ".into()),
            max_entities: 0,
            ..Default::default()
        };
        let fields: Vec<_> = bad.problems().into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, ["url", "context_url", "tenant", "max_entities"]);
        let cfg: NgsiLdConfig = toml::from_str("content = \"ld_json\"\ntenant = \"martinique\"").unwrap();
        assert_eq!(cfg.history, History::Upserts, "every reading goes into the history by default");
        assert_eq!(
            (cfg.content, cfg.address()),
            (ContentMode::LdJson, "http://127.0.0.1:1026 (tenant martinique)".into())
        );
    }
}
