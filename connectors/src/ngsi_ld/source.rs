//! NGSI-LD as a source of readings: the gateway subscribes to the broker's entities of the six kinds
//! and the broker notifies every change to the gateway's HTTP server
//! (`{receiver_url}/ngsi-ld/notify/{name}`, gateway/src/notifications.rs), in the role
//! QuantumLeap plays in FIWARE deployments. This module is the broker side:
//!
//! - the subscription ([`Subscriber::subscribe`]): `urn:ngsi-ld:Subscription:smartcity-gateway:{name}`,
//!   the configured entity types, normalized format, the notification token as the
//!   `Authorization` header the broker sends back (`receiverInfo`); recreated at every start (its
//!   endpoint or token may have changed) and whenever a periodic look-up finds it gone or inactive;
//! - the catch-up ([`Subscriber::changed_since`]): brokers do not keep a notification that could
//!   not be delivered (Stellio never retries, Orion-LD pauses the subscription), so after a restart
//!   the gateway asks the temporal API for every instance modified since it last wrote one, and
//!   turns them back into entities.

use super::answer::problem;
use crate::http_client;
use crate::http_status::{self, Advice, Class};
use crate::sink::{Failure, Reason};
use crate::tls::TlsConfig;
use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE, LINK};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use smartcity_model::SensorKind;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// A context broker the gateway subscribes to, `[[ngsi_ld]]` in the gateway's config.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NgsiLdSourceConfig {
    /// Name in logs, metrics and the notification path; unique among the sources.
    #[serde(default = "default_name")]
    pub name: String,
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// Base URL of the broker.
    pub url: String,
    /// `NGSILD-Tenant`; None: the default tenant.
    #[serde(default)]
    pub tenant: Option<String>,
    /// The JSON-LD context our entity types expand with (the gateway serves it).
    #[serde(default = "default_context_url")]
    pub context_url: String,
    /// Environment variable holding the bearer token for the broker; overrides `token_file`.
    #[serde(default = "default_token_env")]
    pub token_env: String,
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// The gateway's HTTP server as the broker reaches it: notifications go to
    /// `{receiver_url}/ngsi-ld/notify/{name}`.
    #[serde(default = "default_receiver_url")]
    pub receiver_url: String,
    /// Environment variable holding the token the broker must send with each notification
    /// (overrides `notification_token_file`). Required: the receiver writes data.
    #[serde(default = "default_notification_token_env")]
    pub notification_token_env: String,
    #[serde(default)]
    pub notification_token_file: Option<PathBuf>,
    /// Entity types to subscribe to; the six kinds' Smart Data Models by default.
    #[serde(default = "default_types")]
    pub types: Vec<String>,
    /// How often the subscription is looked up (and recreated when the broker lost it).
    #[serde(default = "default_check_seconds")]
    pub check_seconds: u64,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    #[serde(default)]
    pub tls: Option<TlsConfig>,
}

fn default_name() -> String {
    "ngsi-ld".into()
}
fn default_enabled() -> bool {
    true
}
fn default_context_url() -> String {
    "http://127.0.0.1:8080/ngsi-ld/context.jsonld".into()
}
fn default_token_env() -> String {
    "SMARTCITY_NGSI_LD_TOKEN".into()
}
fn default_receiver_url() -> String {
    "http://127.0.0.1:8080".into()
}
fn default_notification_token_env() -> String {
    "SMARTCITY_NOTIFICATION_TOKEN".into()
}
fn default_types() -> Vec<String> {
    SensorKind::ALL.iter().map(|k| k.smart_data_model().to_string()).collect()
}
fn default_check_seconds() -> u64 {
    30
}
fn default_timeout() -> u64 {
    10
}

impl NgsiLdSourceConfig {
    /// Problems a user can fix in the file, as (field, message); empty when valid. No network.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        for (field, value) in
            [("url", &self.url), ("context_url", &self.context_url), ("receiver_url", &self.receiver_url)]
        {
            match url::Url::parse(value) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
                _ => p.push((field, format!("`{value}` must be an http:// or https:// URL"))),
            }
        }
        if self.name.is_empty() || !self.name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            p.push(("name", format!("`{}` must be letters, digits, - _ . (it is a URL path segment)", self.name)));
        }
        if self.types.is_empty() {
            p.push(("types", "must list at least one entity type".into()));
        }
        if self.check_seconds == 0 || self.timeout_seconds == 0 {
            p.push(("check_seconds", "check_seconds and timeout_seconds must be at least 1".into()));
        }
        if let Err(e) = self.notification_token() {
            p.push(("notification_token_file", e));
        }
        p.extend(crate::secret::file_problem("token_file", self.token_file.as_deref()));
        p
    }

    /// The broker and tenant, for logs (never a token).
    pub fn address(&self) -> String {
        match &self.tenant {
            Some(t) => format!("{} (tenant {t})", self.url.trim_end_matches('/')),
            None => self.url.trim_end_matches('/').to_string(),
        }
    }

    /// The token notifications must carry. An endpoint that writes data is never open.
    pub fn notification_token(&self) -> Result<String, String> {
        match crate::secret::read(&self.notification_token_env, self.notification_token_file.as_deref())? {
            Some(t) if !t.trim().is_empty() => Ok(t.trim().to_string()),
            _ => Err(format!(
                "the notification receiver needs a token: set {} or notification_token_file",
                self.notification_token_env
            )),
        }
    }

    pub fn subscription_id(&self) -> String {
        format!("urn:ngsi-ld:Subscription:smartcity-gateway:{}", self.name)
    }

    /// Where the broker sends notifications.
    pub fn endpoint(&self) -> String {
        format!("{}/ngsi-ld/notify/{}", self.receiver_url.trim_end_matches('/'), self.name)
    }
}

/// Entities per page of a catch-up query (brokers allow up to 100 or 1000).
const PAGE: usize = 100;

const ADVICE: Advice = Advice {
    auth: "token refused by the broker: check token_file (or the token variable)",
    missing: "check url and tenant",
};

/// The broker side of an NGSI-LD source.
pub struct Subscriber {
    cfg: NgsiLdSourceConfig,
    client: reqwest::Client,
    headers: HeaderMap,
    base: String,
}

impl Subscriber {
    pub fn new(cfg: &NgsiLdSourceConfig) -> Result<Self, String> {
        let client = http_client::client(cfg.tls.as_ref(), Duration::from_secs(cfg.timeout_seconds))?;
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        let link = HeaderValue::from_str(&super::link_header(&cfg.context_url))
            .map_err(|e| format!("context_url cannot go in a Link header: {e}"))?;
        headers.insert(LINK, link);
        headers.extend(super::broker_headers(cfg.tenant.as_deref(), &cfg.token_env, cfg.token_file.as_deref())?);
        let base = format!("{}/ngsi-ld/v1", cfg.url.trim_end_matches('/'));
        Ok(Subscriber { cfg: cfg.clone(), client, headers, base })
    }

    fn failure(&self, status: reqwest::StatusCode, what: &str, body: &str) -> Failure {
        http_status::failure(status, None, what, &problem(body), &ADVICE).1
    }

    async fn call(&self, request: reqwest::RequestBuilder) -> Result<(reqwest::StatusCode, String), Failure> {
        let response =
            request.headers(self.headers.clone()).send().await.map_err(|e| http_client::transport_failure(&e))?;
        let status = response.status();
        Ok((status, response.text().await.unwrap_or_default()))
    }

    /// (Re)creates the subscription: `fresh` deletes a previous one first, so that a changed
    /// endpoint or token takes effect.
    pub async fn subscribe(&self, fresh: bool) -> Result<(), Failure> {
        let id = self.cfg.subscription_id();
        if fresh {
            let (status, body) = self.call(self.client.delete(format!("{}/subscriptions/{id}", self.base))).await?;
            if !(status.is_success() || status == 404) {
                return Err(self.failure(status, "delete the old subscription", &body));
            }
        }
        let token = self.cfg.notification_token().map_err(|e| Failure::new(Reason::Auth, e))?;
        let body = json!({
            "id": id,
            "type": "Subscription",
            "description": "smartcity gateway: readings into InfluxDB",
            "entities": self.cfg.types.iter().map(|t| json!({"type": t})).collect::<Vec<_>>(),
            "notification": {
                "format": "normalized",
                "endpoint": {
                    "uri": self.cfg.endpoint(),
                    "accept": "application/json",
                    "receiverInfo": [{"key": "Authorization", "value": format!("Bearer {token}")}],
                },
            },
            "isActive": true,
        });
        let request =
            self.client.post(format!("{}/subscriptions/", self.base)).header(CONTENT_TYPE, "application/json");
        let (status, text) = self.call(request.body(body.to_string())).await?;
        match status.as_u16() {
            200..=299 | 409 => Ok(()), // 409: it exists already (created by a concurrent start)
            _ => Err(self.failure(status, "create the subscription", &text)),
        }
    }

    /// Whether the broker still has the subscription, active.
    pub async fn subscribed(&self) -> Result<bool, Failure> {
        let url = format!("{}/subscriptions/{}", self.base, self.cfg.subscription_id());
        let (status, body) = self.call(self.client.get(url)).await?;
        match status.as_u16() {
            200 => {
                let s: Value = serde_json::from_str(&body).unwrap_or_default();
                let paused = s.get("isActive") == Some(&Value::Bool(false))
                    || s.get("status").and_then(Value::as_str).is_some_and(|st| st == "paused" || st == "expired");
                Ok(!paused)
            }
            404 => Ok(false),
            _ => Err(self.failure(status, "look up the subscription", &body)),
        }
    }

    /// Every entity state modified since `since`, rebuilt from the temporal API: one entity per
    /// instant, each with the instances observed then and the entity's current static attributes
    /// (location, address), oldest first. Entities come a page of [`PAGE`] at a time; the instances
    /// of one entity come in one answer (brokers that cap them per answer, with a 206 and a
    /// `Content-Range`, are caught up in part: docs/ngsi-ld.md).
    pub async fn changed_since(&self, since: DateTime<Utc>) -> Result<Vec<Value>, Failure> {
        let at = since.to_rfc3339_opts(SecondsFormat::Millis, true);
        let mut out = Vec::new();
        for kind in &self.cfg.types {
            let temporal =
                [("type", kind.as_str()), ("timerel", "after"), ("timeAt", &at), ("timeproperty", "modifiedAt")];
            let Some(temporal) = self.all_pages("temporal/entities", &temporal).await? else { continue };
            let current = self.all_pages("entities", &[("type", kind.as_str())]).await?.unwrap_or_default();
            for entity in &temporal {
                let id = entity.get("id").and_then(Value::as_str).unwrap_or("");
                let statics = current.iter().find(|c| c.get("id").and_then(Value::as_str) == Some(id));
                out.extend(instants(entity, statics));
            }
        }
        Ok(out)
    }

    /// Every entity a query answers, page after page; `None` for a tenant not created yet.
    async fn all_pages(&self, path: &str, query: &[(&str, &str)]) -> Result<Option<Vec<Value>>, Failure> {
        let url = format!("{}/{path}", self.base);
        let mut all = Vec::new();
        loop {
            let page = [("limit", PAGE), ("offset", all.len())];
            let request = self.client.get(&url).query(query).query(&page);
            let (status, body) = self.call(request).await?;
            match status.as_u16() {
                200 => {}
                // Only a tenant not created yet means nothing to catch up on; any other 404 (no
                // temporal API at that address) is the broker failing, retried and logged.
                404 if all.is_empty() && tenant_not_found(&body) => return Ok(None),
                _ => return Err(self.failure(status, &format!("query {path}"), &body)),
            }
            let entities: Vec<Value> = serde_json::from_str(&body)
                .map_err(|e| Failure::new(Reason::Server, format!("query {path}: unreadable answer ({e})")))?;
            let last = entities.len() < PAGE;
            all.extend(entities);
            if last {
                return Ok(Some(all));
            }
        }
    }

    /// What `check` reports: the broker answers a subscription query with our credentials.
    pub async fn check(&self) -> Result<String, Failure> {
        let (status, body) = self.call(self.client.get(format!("{}/subscriptions?limit=1", self.base))).await?;
        match http_status::class(status) {
            Class::Taken => {
                Ok(format!("broker at {} answered; notifications go to {}", self.cfg.address(), self.cfg.endpoint()))
            }
            _ if status == 404
                && super::answer::problem_of(&body).is_some_and(|p| p.short_kind() == "TenantNotFound") =>
            {
                Ok(format!("broker at {}: tenant not created yet (its first write creates it)", self.cfg.address()))
            }
            _ => Err(self.failure(status, "query subscriptions", &body)),
        }
    }
}

/// A 404 that says the tenant does not exist yet (brokers create it on its first write).
fn tenant_not_found(body: &str) -> bool {
    super::answer::problem_of(body).is_some_and(|p| p.short_kind() == "TenantNotFound")
}

/// A temporal entity as one entity per instant: at each `observedAt`, the instances observed then
/// (normalized attributes), plus the static attributes of `current`.
pub fn instants(temporal: &Value, current: Option<&Value>) -> Vec<Value> {
    let Some(obj) = temporal.as_object() else { return Vec::new() };
    let mut by_time: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    for (name, instances) in obj {
        let Some(instances) = instances.as_array() else { continue };
        for instance in instances {
            if let Some(at) = instance.get("observedAt").and_then(Value::as_str) {
                by_time.entry(at.to_string()).or_default().insert(name.clone(), instance.clone());
            }
        }
    }
    let statics: Vec<(&String, &Value)> = current
        .and_then(Value::as_object)
        .map(|c| {
            c.iter().filter(|(name, a)| a.get("observedAt").is_none() && *name != "id" && *name != "type").collect()
        })
        .unwrap_or_default();
    by_time
        .into_values()
        .map(|mut entity| {
            for key in ["id", "type"] {
                if let Some(v) = obj.get(key) {
                    entity.insert(key.into(), v.clone());
                }
            }
            for (name, a) in &statics {
                entity.entry(name.to_string()).or_insert_with(|| (*a).clone());
            }
            Value::Object(entity)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_temporal_entity_becomes_one_entity_per_instant_with_the_static_attributes() {
        let temporal = json!({"id": "urn:x", "type": "NoiseLevelObserved",
            "LAeq": [{"type": "Property", "value": 60, "observedAt": "2026-01-01T00:00:05Z"},
                     {"type": "Property", "value": 61, "observedAt": "2026-01-01T00:00:00Z"}],
            "LAmax": [{"type": "Property", "value": 70, "observedAt": "2026-01-01T00:00:00Z"}]});
        let current = json!({"id": "urn:x", "type": "NoiseLevelObserved",
            "LAeq": {"type": "Property", "value": 60, "observedAt": "2026-01-01T00:00:05Z"},
            "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [-61.0, 14.6]}}});
        let out = instants(&temporal, Some(&current));
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(out[0]["LAeq"]["value"], 61, "oldest first");
        assert_eq!(out[0]["LAmax"]["value"], 70);
        assert!(out[1].get("LAmax").is_none());
        assert!(out.iter().all(|e| e["id"] == "urn:x" && e["location"]["type"] == "GeoProperty"));
    }

    #[test]
    fn only_a_tenant_not_created_yet_means_nothing_to_catch_up_on() {
        let tenant = r#"{"type":"https://uri.etsi.org/ngsi-ld/errors/TenantNotFound","title":"Tenant not found"}"#;
        assert!(tenant_not_found(tenant));
        // No temporal API at that address: the broker failing, not an empty history.
        assert!(!tenant_not_found(r#"{"type":"https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound"}"#));
        assert!(!tenant_not_found("<html>Not Found</html>"));
    }

    #[test]
    fn the_receiver_is_never_open_and_names_are_path_segments() {
        let cfg: NgsiLdSourceConfig = toml::from_str(
            "url = \"http://orion:1026\"\nname = \"a b\"\nnotification_token_env = \"SMARTCITY_TEST_UNSET_TOKEN\"",
        )
        .unwrap();
        let fields: Vec<&str> = cfg.problems().into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, ["name", "notification_token_file"]);
        assert_eq!(cfg.endpoint(), "http://127.0.0.1:8080/ngsi-ld/notify/a b");
        assert_eq!(cfg.types.len(), 6);
    }
}
