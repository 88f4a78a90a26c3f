//! The subscription's backlog, read from the broker's admin API every few seconds, as a metric: how
//! far a consumer (the distribution service, the gateway) is behind: the figure an operator watches
//! when a downstream server is down.

use super::source_config::parse_topic;
use super::PulsarSourceConfig;
use prometheus::IntGauge;
use std::time::Duration;

/// Every `period`: the sum of `msgBacklog` of our subscription over the configured topics (a
/// pattern's topics are not listed here: the gauge then covers none and stays at -1).
pub async fn watch(cfg: PulsarSourceConfig, gauge: IntGauge, period: Duration) {
    let http = match reqwest::Client::builder().timeout(Duration::from_secs(5)).build() {
        Ok(c) => c,
        Err(_) => return,
    };
    gauge.set(-1);
    let mut tick = tokio::time::interval(period);
    loop {
        tick.tick().await;
        if cfg.topic_pattern.is_some() {
            continue;
        }
        let mut total = 0i64;
        let mut known = true;
        for topic in &cfg.topics {
            let Some(t) = parse_topic(topic) else { continue };
            let url = format!(
                "{}/admin/v2/{}/{}/{}/{}/stats",
                cfg.admin_url.trim_end_matches('/'),
                t.domain,
                t.tenant,
                t.namespace,
                t.local
            );
            let stats: Option<serde_json::Value> = match http.get(&url).send().await {
                Ok(r) if r.status().is_success() => r.json().await.ok(),
                _ => None,
            };
            match stats.as_ref().and_then(|s| s["subscriptions"][&cfg.subscription]["msgBacklog"].as_i64()) {
                Some(n) => total += n,
                None => known = false,
            }
        }
        gauge.set(if known { total } else { -1 });
    }
}
