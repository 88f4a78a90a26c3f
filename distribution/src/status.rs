//! The status line: one figure per target, every `status.interval_seconds`.

use smartcity_connectors::sink::SinkTelemetry;
use std::time::Duration;

pub(crate) fn line(delivered: u64, in_flight: i64, backlog: i64, targets: &[SinkTelemetry]) -> String {
    let figures: Vec<String> = targets
        .iter()
        .map(|t| {
            let mut f = format!("{} {}", t.name, t.published_total());
            if !t.is_up() {
                f.push_str(" DOWN");
            }
            if t.queue() > 0 {
                f.push_str(&format!(" q={}", t.queue()));
            }
            if t.errors_total() > 0 {
                f.push_str(&format!(" err={}", t.errors_total()));
            }
            f
        })
        .collect();
    let backlog = if backlog < 0 { "?".to_string() } else { backlog.to_string() };
    format!("status: delivered {delivered} | in flight {in_flight} | backlog {backlog} | {}", figures.join(" | "))
}

pub(crate) async fn every(period: Duration, report: impl Fn() -> String) {
    let mut tick = tokio::time::interval(period);
    tick.tick().await;
    loop {
        tick.tick().await;
        tracing::info!("{}", report());
    }
}
