//! The spool's settings: `[spool]` of the gateway's configuration.

use serde::Deserialize;
use std::path::PathBuf;

/// When appended records are forced to stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsyncPolicy {
    /// `fsync` after every append: an acknowledged record survives power loss (slowest).
    Always,
    /// `fsync` at most every `fsync_interval_ms` (the default): a process crash loses nothing, a
    /// power loss up to that much.
    #[default]
    Interval,
    /// Never `fsync`: a process crash loses nothing, a power loss whatever the OS had not written.
    Never,
}

/// The local spool, `[spool]` in the gateway config.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpoolConfig {
    /// Directory of the segment files (created if missing). Give each spool its own.
    pub dir: PathBuf,
    /// Most bytes the segment files may take; beyond it appends fail with [`SpoolError::Full`] and
    /// the gateway stops acknowledging (back-pressure on the sources).
    pub max_bytes: u64,
    /// A new segment file starts once the current one would exceed this. Disk is freed a whole
    /// segment at a time as the spool drains.
    pub segment_bytes: u64,
    /// `always`, `interval` (the default) or `never`: see [`FsyncPolicy`].
    pub fsync: FsyncPolicy,
    /// With `fsync = "interval"`: the longest time appended records may stay un-`fsync`ed.
    pub fsync_interval_ms: u64,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        SpoolConfig {
            dir: PathBuf::from("data/spool"),
            max_bytes: 1 << 30,
            segment_bytes: 64 << 20,
            fsync: FsyncPolicy::Interval,
            fsync_interval_ms: 1000,
        }
    }
}

impl SpoolConfig {
    /// Every problem with the values, as (field, message); empty if the config is usable.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        if self.dir.as_os_str().is_empty() {
            p.push(("spool.dir", "must not be empty".to_string()));
        }
        if !(64 << 10..=1 << 30).contains(&self.segment_bytes) {
            p.push(("spool.segment_bytes", format!("must be 65536-1073741824 (got {})", self.segment_bytes)));
        }
        if self.max_bytes < self.segment_bytes {
            p.push((
                "spool.max_bytes",
                format!("must be at least segment_bytes = {} (got {})", self.segment_bytes, self.max_bytes),
            ));
        }
        if self.fsync == FsyncPolicy::Interval && !(1..=60_000).contains(&self.fsync_interval_ms) {
            p.push(("spool.fsync_interval_ms", format!("must be 1-60000 (got {})", self.fsync_interval_ms)));
        }
        p
    }
}
