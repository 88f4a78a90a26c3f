//! `gateway reinject`: writes dead letters to the store once their cause is fixed (a bucket's
//! retention widened, a field type conflict cleared, a producer's topic corrected and the gateway's
//! config with it), chosen by reason and time range.
//!
//! Safe to run twice: a reading written again is the same InfluxDB point (same series and time),
//! and the dead-letter file is only read, never changed: it stays the record of what happened.
//! Each line is decoded again as the gateway would decode it now: `rejected` lines (refused by the
//! store) hold the reading as the wire format; the others hold the raw payload, decoded with the
//! topic rule of their source in the current config. A line that still does not decode is counted by
//! its reason and left alone.

use crate::config::GatewayConfig;
use crate::dead_letter::{self, DeadLetterLine};
use crate::decode;
use crate::store::Store;
use chrono::{DateTime, Utc};
use smartcity_model::codec::json;
use smartcity_model::Reading;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Which dead letters to write again.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Only these reasons (all when empty).
    pub reasons: Vec<String>,
    /// Only dead letters set aside at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only dead letters set aside before this time.
    pub until: Option<DateTime<Utc>>,
}

impl Selection {
    fn takes(&self, line: &DeadLetterLine) -> bool {
        let at = parse_time(&line.time).ok();
        (self.reasons.is_empty() || self.reasons.contains(&line.reason))
            && self.since.is_none_or(|s| at.is_some_and(|t| t >= s))
            && self.until.is_none_or(|u| at.is_some_and(|t| t < u))
    }
}

/// What a re-injection did.
#[derive(Debug, Default, PartialEq)]
pub struct Report {
    /// Dead letters read from the files.
    pub read: usize,
    /// Of those, the ones the selection took.
    pub selected: usize,
    /// Readings the store took.
    pub written: usize,
    /// Selected lines that still do not decode (or that the store still refuses), by reason.
    pub refused: BTreeMap<String, usize>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} dead letters read, {} selected, {} written", self.read, self.selected, self.written)?;
        if !self.refused.is_empty() {
            let each: Vec<String> = self.refused.iter().map(|(r, n)| format!("{r}: {n}")).collect();
            write!(f, ", still refused: {}", each.join(", "))?;
        }
        Ok(())
    }
}

/// The dead-letter files of `cfg`: the rotated one (older) first, then the current one.
pub fn files(cfg: &GatewayConfig) -> Vec<PathBuf> {
    let mut rotated = cfg.dead_letters.file.clone().into_os_string();
    rotated.push(".1");
    [PathBuf::from(rotated), cfg.dead_letters.file.clone()].into_iter().filter(|p| p.exists()).collect()
}

/// Attempts at a write before giving up (the destination down: nothing is lost, the lines stay).
const ATTEMPTS: u32 = 10;

/// Decodes the selected dead letters of `files` again and writes them to the store of `cfg`.
pub async fn reinject(cfg: &GatewayConfig, files: &[PathBuf], selection: &Selection) -> Result<Report, String> {
    let rules = crate::sources::topic_rules(cfg);
    let mut report = Report::default();
    let mut readings = Vec::new();
    for path in files {
        let lines = read(path)?;
        report.read += lines.len();
        for line in lines.into_iter().filter(|l| selection.takes(l)) {
            report.selected += 1;
            let payload = line.payload();
            let decoded = match (line.reason.as_str(), rules.get(&line.source)) {
                // The store refused a reading the gateway had decoded: the payload is its wire format.
                ("rejected", _) => json::decode(&payload).map(|r| vec![r]).map_err(|e| decode::Refusal::from(e).reason),
                (_, Some(rule)) => {
                    decode::decode_all(rule, &line.topic, &payload, cfg.writer.max_message_bytes).map_err(|r| r.reason)
                }
                (_, None) => Err("topic"),
            };
            match decoded {
                Ok(decoded) => readings.extend(decoded),
                Err(reason) => *report.refused.entry(reason.to_string()).or_default() += 1,
            }
        }
    }
    let mut store = Store::new(cfg, &prometheus::Registry::new())?;
    for batch in readings.chunks(cfg.writer.batch_size.max(1)) {
        let (written, refused) = write(&mut store, batch).await?;
        report.written += written;
        if refused > 0 {
            *report.refused.entry("rejected".into()).or_default() += refused;
        }
    }
    Ok(report)
}

/// An RFC 3339 time (`2026-01-01T00:00:00Z`), as dead-letter lines and the command line give it.
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("`{text}` is not an RFC 3339 time such as 2026-01-01T00:00:00Z: {e}"))
}

fn read(path: &Path) -> Result<Vec<DeadLetterLine>, String> {
    dead_letter::read(path).map_err(|e| format!("cannot read the dead letters in {}: {e}", path.display()))
}

/// Writes `batch` until every reading is taken or refused for its data; returns (written, refused).
/// A destination that stays down fails the command: the lines stay in the file for the next run.
async fn write(store: &mut Store, batch: &[Reading]) -> Result<(usize, usize), String> {
    let mut todo: Vec<Reading> = batch.to_vec();
    let (mut written, mut refused) = (0, 0);
    let mut delay = Duration::from_millis(200);
    for attempt in 1..=ATTEMPTS {
        let outcome = store.send(&todo).await.under_the_rule();
        written += todo.len().saturating_sub(outcome.retry.len() + outcome.rejected.len());
        refused += outcome.rejected.len();
        if outcome.retry.is_empty() {
            return Ok((written, refused));
        }
        let failure = outcome.failure.map(|f| f.to_string()).unwrap_or_default();
        if attempt == ATTEMPTS {
            return Err(format!("{}: {failure}; nothing is lost: run the command again", store.describe()));
        }
        eprintln!("{}: {failure} (attempt {attempt} of {ATTEMPTS}; retrying in {delay:?})", store.describe());
        todo = outcome.retry.iter().filter_map(|&i| todo.get(i).cloned()).collect();
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
    Ok((written, refused))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(reason: &str, time: &str) -> DeadLetterLine {
        let at = parse_time(time).unwrap();
        DeadLetterLine::new("mqtt", "city/sensors/x", reason, "why", b"{}", at)
    }

    #[test]
    fn selects_by_reason_and_time() {
        let all = Selection::default();
        assert!(all.takes(&line("syntax", "2026-01-01T00:00:00Z")));
        let some = Selection {
            reasons: vec!["rejected".into()],
            since: Some(parse_time("2026-01-01T00:00:00Z").unwrap()),
            until: Some(parse_time("2026-01-02T00:00:00Z").unwrap()),
        };
        assert!(some.takes(&line("rejected", "2026-01-01T00:00:00Z")), "since is inclusive");
        assert!(!some.takes(&line("rejected", "2026-01-02T00:00:00Z")), "until is exclusive");
        assert!(!some.takes(&line("rejected", "2025-12-31T23:59:59Z")));
        assert!(!some.takes(&line("syntax", "2026-01-01T12:00:00Z")));
    }
}
