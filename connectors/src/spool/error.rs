//! What can go wrong with the spool, and what opening it found.

use super::MAX_RECORD;
use std::io;
use std::path::PathBuf;

/// What went wrong with the spool; every message names the file concerned.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// The file system refused an operation.
    #[error("spool: cannot {action} {}: {source}", path.display())]
    Io {
        /// What we were doing, e.g. "write".
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The record does not fit under `max_bytes`: stop acknowledging until the spool drains.
    #[error("spool full: {used} bytes on disk, limit max_bytes = {max} (is the downstream draining it?)")]
    Full {
        /// Bytes the segment files take now.
        used: u64,
        /// The configured `max_bytes`.
        max: u64,
    },
    /// The record is larger than [`MAX_RECORD`].
    #[error("spool: record of {size} bytes is larger than the maximum {MAX_RECORD}")]
    TooLarge {
        /// Its size.
        size: usize,
    },
    /// A record that was valid at open (or when written) no longer reads back.
    #[error("spool: corrupt record in {} at byte {offset}: {reason}", path.display())]
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// Where the record starts.
        offset: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// `commit(n)` with more records than are pending: a bug in the caller.
    #[error("spool: cannot commit {n} records, only {pending} pending")]
    CommitBeyond {
        /// Records asked for.
        n: usize,
        /// Records pending.
        pending: usize,
    },
}

/// What [`Spool::open`] found on disk.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct OpenReport {
    /// Records pending (to replay downstream).
    pub records: usize,
    /// Their bytes on disk, headers included.
    pub bytes: u64,
    /// Bytes of damaged data truncated or skipped.
    pub skipped_bytes: u64,
    /// One line per damage or oddity found, naming the file: for the log.
    pub problems: Vec<String>,
}
