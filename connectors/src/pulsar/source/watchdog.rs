//! The watchdog's probe: reads from the admin REST API which topics of the subscription have messages
//! that no consumer holds. [`super::topic_watch`] judges which of them count against our consumer (the
//! run loop then recreates the client and consumer).

use super::delivery::Cmd;
use super::run_loop::Runner;
use super::topic_watch::{base_topic, TopicWatch};
use super::PulsarSource;
use crate::pulsar::source_config::{parse_topic, pattern_namespace};
use std::collections::HashMap;
use std::sync::Arc;

/// Messages of `subscription` on one topic that no consumer holds, from the topic's admin stats:
/// the backlog less what is out for acknowledgement (the broker's count for shared subscriptions,
/// `in_flight`, ours, for the others). 0 when we are a stand-by failover consumer.
fn undelivered(stats: &serde_json::Value, subscription: &str, consumer_name: &str, in_flight: u64) -> u64 {
    let sub = &stats["subscriptions"][subscription];
    let active = sub["activeConsumerName"].as_str();
    if sub["type"].as_str() == Some("Failover") && active.is_some_and(|a| a != consumer_name) {
        return 0;
    }
    let backlog = sub["msgBacklog"].as_u64().unwrap_or(0);
    let unacked = sub["unackedMessages"].as_u64().unwrap_or(0);
    backlog.saturating_sub(unacked.max(in_flight))
}

/// Reads backlogs from the admin REST API, for the watchdog.
pub(super) struct Probe {
    http: reqwest::Client,
    admin: String,
    token: Option<String>,
    subscription: String,
    consumer_name: String,
    topics: Vec<String>,
    pattern: Option<(regex::Regex, String)>,
}

impl Probe {
    /// GET `path` as JSON; `None` for 404.
    async fn get(&self, path: &str) -> Result<Option<serde_json::Value>, String> {
        let url = format!("{}{path}", self.admin.trim_end_matches('/'));
        let mut request = self.http.get(&url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|e| crate::http_client::transport_failure(&e).message)?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(format!("GET {url}: HTTP {}", response.status()));
        }
        response.json().await.map(Some).map_err(|e| format!("GET {url}: {e}"))
    }

    async fn topics(&self) -> Result<Vec<String>, String> {
        let Some((re, namespace_path)) = &self.pattern else { return Ok(self.topics.clone()) };
        let listed = self.get(&format!("/admin/v2/{namespace_path}")).await?.unwrap_or_default();
        let names = listed.as_array().map(Vec::as_slice).unwrap_or_default();
        Ok(names.iter().filter_map(|v| v.as_str()).filter(|t| re.is_match(t)).map(String::from).collect())
    }

    /// The topics with undelivered messages, and how many. `in_flight` counts ours per topic or
    /// partition; the admin API answers per topic.
    async fn undelivered(&self, in_flight: HashMap<String, u64>) -> Result<Vec<(String, u64)>, String> {
        let mut ours: HashMap<&str, u64> = HashMap::new();
        for (topic, n) in &in_flight {
            *ours.entry(base_topic(topic)).or_default() += n;
        }
        let mut stuck = Vec::new();
        for topic in self.topics().await? {
            let Some(t) = parse_topic(&topic) else { continue };
            let base = format!("/admin/v2/{}/{}/{}/{}", t.domain, t.tenant, t.namespace, t.local);
            // A partitioned topic has no stats of its own under its base name, only partitioned-stats.
            let stats = match self.get(&format!("{base}/stats")).await? {
                Some(s) => s,
                None => match self.get(&format!("{base}/partitioned-stats")).await? {
                    Some(s) => s,
                    None => continue,
                },
            };
            let mine = ours.get(topic.as_str()).copied().unwrap_or(0);
            let n = undelivered(&stats, &self.subscription, &self.consumer_name, mine);
            if n > 0 {
                stuck.push((topic, n));
            }
        }
        Ok(stuck)
    }
}

impl PulsarSource {
    /// The watchdog's probe; `None` when the watchdog is off (`watchdog_seconds = 0`).
    pub(super) fn probe(&self) -> Result<Option<Arc<Probe>>, String> {
        if self.cfg.watchdog_seconds == 0 {
            return Ok(None);
        }
        let https = self.cfg.admin_url.starts_with("https:");
        let tls = self
            .cfg
            .tls_ca_file
            .clone()
            .filter(|_| https)
            .map(|ca_file| crate::tls::TlsConfig { ca_file, ..Default::default() });
        let http = crate::http_client::client(tls.as_ref(), self.timeout())?;
        let pattern = match (&self.pattern, self.cfg.topic_pattern.as_deref().and_then(pattern_namespace)) {
            (Some(re), Some((domain, tenant, ns))) => Some((re.clone(), format!("{domain}/{tenant}/{ns}"))),
            _ => None,
        };
        Ok(Some(Arc::new(Probe {
            http,
            admin: self.cfg.admin_url.clone(),
            token: self.token.clone(),
            subscription: self.cfg.subscription.clone(),
            consumer_name: self.consumer_name.clone(),
            topics: self.cfg.topics.clone(),
            pattern,
        })))
    }
}

impl Runner {
    /// Asks the admin API in a task of its own; the answer comes back as [`Cmd::Probe`].
    pub(super) fn spawn_probe(&self) {
        let Some(probe) = self.probe.clone() else { return };
        let (tx, session, in_flight) = (self.tx.clone(), self.session, self.in_flight.clone());
        tokio::spawn(async move {
            let result = probe.undelivered(in_flight).await;
            let _ = tx.send(Cmd::Probe(session, result));
        });
    }

    /// Why the consumer looks stuck, if it does: topics with undelivered messages that `watch` counts
    /// against it. Logs probe failures (first, then every 20th).
    pub(super) fn probe_result(
        &mut self,
        result: Result<Vec<(String, u64)>, String>,
        watch: &mut TopicWatch,
    ) -> Option<String> {
        match result {
            Ok(undelivered) => {
                self.probe_failures = 0;
                let stuck = watch.stuck(&undelivered, tokio::time::Instant::now());
                let list: Vec<String> = stuck.iter().map(|(t, n)| format!("{t}: {n}")).collect();
                (!list.is_empty()).then(|| format!("messages wait on the broker ({})", list.join(", ")))
            }
            Err(e) => {
                self.probe_failures += 1;
                if self.probe_failures == 1 || self.probe_failures.is_multiple_of(20) {
                    tracing::warn!(
                        "pulsar source `{}`: watchdog cannot read the backlog from {}: {e}",
                        self.src.cfg.name,
                        self.src.cfg.admin_url
                    );
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undelivered_is_backlog_less_what_consumers_hold() {
        let stats = |ty: &str, backlog: u64, unacked: u64, active: &str| {
            serde_json::json!({"subscriptions": {"sub": {
                "type": ty, "msgBacklog": backlog, "unackedMessages": unacked, "activeConsumerName": active
            }}})
        };
        assert_eq!(undelivered(&stats("Key_Shared", 10, 4, ""), "sub", "me", 0), 6);
        assert_eq!(undelivered(&stats("Key_Shared", 10, 10, ""), "sub", "me", 0), 0);
        // Exclusive: the broker does not count unacked messages; ours do.
        assert_eq!(undelivered(&stats("Exclusive", 10, 0, "me"), "sub", "me", 10), 0);
        assert_eq!(undelivered(&stats("Exclusive", 10, 0, "me"), "sub", "me", 3), 7);
        // A stand-by failover consumer receives nothing, rightly.
        assert_eq!(undelivered(&stats("Failover", 10, 0, "other"), "sub", "me", 0), 0);
        assert_eq!(undelivered(&stats("Failover", 10, 0, "me"), "sub", "me", 0), 10);
        // Unknown subscription or malformed stats: nothing to say.
        assert_eq!(undelivered(&stats("Shared", 10, 0, ""), "nope", "me", 0), 0);
        assert_eq!(undelivered(&serde_json::json!([1, 2]), "sub", "me", 0), 0);
    }
}
