//! The dead-letter store: every message that cannot become a reading, kept with why, as one JSON
//! object per line in a file (`dead_letters.file`), so that an operator can read, grep, fix and
//! replay them. A line holds `time`, `source`, `topic`, `reason` (a fixed label), `message` (the
//! explanation), `bytes` (the payload's size) and `payload_base64`: the raw payload, exact even
//! when it is not UTF-8, cut at [`KEPT_PAYLOAD`] bytes (`truncated` says so).
//!
//! A message is acknowledged to its source only once its line is written (a dead letter is never
//! lost either). The file rotates once at `rotate_bytes` (to `*.1`), so it cannot fill the disk.

use crate::config::DeadLetterConfig;
use crate::dead_letter_copies::DeadLetterCopies;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;

/// Most payload bytes kept per dead letter (a 10 MB message keeps its first MiB).
pub const KEPT_PAYLOAD: usize = 1 << 20;

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct DeadLetterLine {
    pub time: String,
    pub source: String,
    pub topic: String,
    pub reason: String,
    pub message: String,
    pub bytes: usize,
    pub payload_base64: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

impl DeadLetterLine {
    pub fn new(source: &str, topic: &str, reason: &str, message: &str, payload: &[u8], now: DateTime<Utc>) -> Self {
        let kept = &payload[..payload.len().min(KEPT_PAYLOAD)];
        DeadLetterLine {
            time: smartcity_model::codec::json::format_time(now),
            source: source.into(),
            topic: topic.into(),
            reason: reason.into(),
            message: message.into(),
            bytes: payload.len(),
            payload_base64: BASE64.encode(kept),
            truncated: kept.len() < payload.len(),
        }
    }

    /// The payload as kept.
    pub fn payload(&self) -> Vec<u8> {
        BASE64.decode(&self.payload_base64).unwrap_or_default()
    }

    /// This line as one JSON object of at most `max_bytes` (a broker's message limit): when it is
    /// larger, the payload is cut (`truncated`); `bytes` still gives the payload's real size.
    pub fn to_json_within(&self, max_bytes: usize) -> Vec<u8> {
        let json = serde_json::to_vec(self).unwrap_or_default();
        if json.len() <= max_bytes {
            return json;
        }
        // Everything but the payload, then as many payload bytes as base64 fits in what is left.
        let room = max_bytes.saturating_sub(json.len() - self.payload_base64.len() + 32);
        let mut cut = self.payload();
        cut.truncate(room / 4 * 3);
        let line = DeadLetterLine { payload_base64: BASE64.encode(&cut), truncated: true, ..self.clone() };
        serde_json::to_vec(&line).unwrap_or_default()
    }
}

pub struct DeadLetterFile {
    cfg: DeadLetterConfig,
    file: Option<(File, u64)>,
    copies: DeadLetterCopies,
}

impl DeadLetterFile {
    pub fn new(cfg: &DeadLetterConfig) -> Self {
        DeadLetterFile { cfg: cfg.clone(), file: None, copies: DeadLetterCopies::default() }
    }

    /// Each line written is then also copied to these topics.
    pub fn with_copies(mut self, copies: DeadLetterCopies) -> Self {
        self.copies = copies;
        self
    }

    /// Appends one line, then queues its copies; the caller acknowledges the message only when
    /// this succeeded.
    pub fn write(&mut self, line: &DeadLetterLine) -> std::io::Result<()> {
        self.append(line)?;
        self.copies.offer(line);
        Ok(())
    }

    fn append(&mut self, line: &DeadLetterLine) -> std::io::Result<()> {
        let mut text = serde_json::to_vec(line).map_err(std::io::Error::other)?;
        text.push(b'\n');
        if self.file.as_ref().is_some_and(|(_, size)| *size >= self.cfg.rotate_bytes) {
            self.file = None;
            let mut old = self.cfg.file.clone().into_os_string();
            old.push(".1");
            fs::rename(&self.cfg.file, PathBuf::from(old))?;
        }
        if self.file.is_none() {
            if let Some(dir) = self.cfg.file.parent().filter(|d| !d.as_os_str().is_empty()) {
                fs::create_dir_all(dir)?;
            }
            let file = OpenOptions::new().create(true).append(true).open(&self.cfg.file)?;
            let size = file.metadata()?.len();
            self.file = Some((file, size));
        }
        let (file, size) = self.file.as_mut().expect("opened above");
        let written = file.write_all(&text);
        match written {
            Ok(()) => *size += text.len() as u64,
            Err(_) => self.file = None,
        }
        written
    }

    /// Checks that the file can be opened for appending.
    pub fn check(&self) -> Result<String, String> {
        if let Some(dir) = self.cfg.file.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.cfg.file)
            .map_err(|e| format!("cannot open {}: {e}", self.cfg.file.display()))?;
        Ok(format!("dead letters to {}", self.cfg.file.display()))
    }
}

/// Reads a dead-letter file back (tests, tools).
pub fn read(path: &std::path::Path) -> std::io::Result<Vec<DeadLetterLine>> {
    let text = fs::read_to_string(path)?;
    text.lines().map(|l| serde_json::from_str(l).map_err(std::io::Error::other)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_raw_bytes_and_rotates() {
        let dir = std::env::temp_dir().join(format!("gw-dl-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let cfg = DeadLetterConfig { file: dir.join("dl.jsonl"), rotate_bytes: 1000, ..Default::default() };
        let mut store = DeadLetterFile::new(&cfg);
        let raw = [0xff, 0xfe, b'{', b'\n'];
        for _ in 0..10 {
            store.write(&DeadLetterLine::new("mqtt", "city/x", "syntax", "not JSON", &raw, Utc::now())).unwrap();
        }
        let lines = read(&cfg.file).unwrap();
        assert!(!lines.is_empty() && lines.len() < 10, "rotated: {}", lines.len());
        assert_eq!(lines[0].payload(), raw);
        assert!(dir.join("dl.jsonl.1").exists());
        let big = vec![b'x'; KEPT_PAYLOAD + 5];
        let line = DeadLetterLine::new("k", "t", "size", "big", &big, Utc::now());
        assert!(line.truncated && line.bytes == big.len() && line.payload().len() == KEPT_PAYLOAD);
        // Cut to a broker's limit: still one valid line, as much payload as fits.
        let json = line.to_json_within(200_000);
        assert!(json.len() <= 200_000 && json.len() > 190_000, "{}", json.len());
        let copy: DeadLetterLine = serde_json::from_slice(&json).unwrap();
        assert!(copy.truncated && copy.bytes == big.len() && big.starts_with(&copy.payload()));
        let small = DeadLetterLine::new("k", "t", "syntax", "x", b"{", Utc::now());
        assert_eq!(small.to_json_within(200_000), serde_json::to_vec(&small).unwrap());
        fs::remove_dir_all(&dir).unwrap();
    }
}
