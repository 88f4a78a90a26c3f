//! A durable FIFO of opaque byte records on local disk: where the gateway parks readings while
//! InfluxDB is down, so that it can acknowledge them to their source (MQTT, Kafka, Pulsar) without
//! losing them.
//!
//! # On-disk format
//!
//! `dir` holds append-only segment files `NNNNNNNNNNNNNNNNNNNN.seg` (20-digit zero-padded sequence
//! number, so name order is age order). Each record is a 9-byte header, magic byte `0xD5`, payload
//! length (u32 little endian), CRC32 of the payload (u32 little endian), followed by the payload.
//! New records go to the last segment; a new segment starts when the next record would push the
//! current one past `segment_bytes`, and at every [`Spool::open`] (so a possibly damaged file is
//! never appended to).
//!
//! `dir/ack` holds the commit point, one text line `<segment> <offset> <crc32 hex>`: every segment
//! below `<segment>` and the bytes of `<segment>` before `<offset>` are consumed. It is replaced
//! atomically (write `ack.tmp`, rename over `ack`). A commit writes `ack` *first* and deletes the
//! consumed segments *after*, so a crash in between only leaves files that the next open
//! recognises (number below the commit point) and deletes. When a commit empties the spool, all
//! segments go and a fresh one starts, so a drained spool costs no disk. A missing `ack` means
//! nothing was consumed; an unreadable one is reported and everything left is replayed: delivery is
//! at-least-once (a crash between the downstream write and [`Spool::commit`] replays too), which
//! InfluxDB tolerates since rewriting a point with the same series and timestamp is idempotent.
//!
//! # Damage
//!
//! [`Spool::open`] checks every record (magic, lengths bounded by the file size and
//! [`MAX_RECORD`], CRC). A short header, short payload, bad magic or CRC mismatch ends the valid
//! part of a segment: in the last segment (a torn write, e.g. `kill -9` mid-append) the tail is
//! truncated away; in an earlier one (disk trouble) the rest of that segment is skipped. Either way
//! the records before the damage are kept, and [`OpenReport`] says what was lost and where.
//!
//! # Durability (`fsync`)
//!
//! Records are written with plain `write(2)` calls: once [`Spool::append`] returns they are in the
//! kernel, so they survive a crash of the process whatever the policy. `always` also `fsync`s the
//! segment (and the directory when a file is created or renamed): an acknowledged record survives
//! power loss. `interval` `fsync`s when an append finds the last one older than
//! `fsync_interval_ms`, and on [`Spool::sync`] (call it from a timer so that the window stays bounded
//! when appends stop) and on drop. `never` leaves it to the OS.
//!
//! # Blocking
//!
//! Every method does synchronous file I/O (`std::fs`). Appends and commits are short (one write,
//! plus an `fsync` under `always`), but [`Spool::open`] reads the whole spool and a `peek` reads up
//! to the records asked for: call them from `tokio::task::spawn_blocking` (or a dedicated thread)
//! rather than directly on an async worker.

mod segment;

pub use segment::MAX_RECORD;

use segment::{Bad, HEADER};
use serde::Deserialize;
use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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

/// One segment file, as far as the spool is concerned.
#[derive(Debug)]
struct Seg {
    seq: u64,
    /// End of the valid records: reading stops here even if the file goes on (skipped damage).
    end: u64,
    /// File size, for the `max_bytes` accounting.
    disk: u64,
}

/// The durable FIFO: see the module documentation.
#[derive(Debug)]
pub struct Spool {
    cfg: SpoolConfig,
    /// Oldest first; never empty: the back is the segment being appended to, the front holds the
    /// read position.
    segs: VecDeque<Seg>,
    /// Offset of the oldest pending record in `segs.front()`.
    read_off: u64,
    /// The back segment, open for appending.
    writer: File,
    pending: usize,
    pending_bytes: u64,
    disk_bytes: u64,
    /// Appended bytes not yet `fsync`ed.
    dirty: bool,
    last_sync: Instant,
    /// A write failed half-way: start a new segment rather than append after garbage.
    roll_next: bool,
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> SpoolError + 'a {
    move |source| SpoolError::Io { action, path: path.to_path_buf(), source }
}

/// Makes a created, renamed or deleted name durable (the file's own `fsync` does not cover it).
fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    #[cfg(unix)]
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err("fsync directory", dir))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// The text of the `ack` file.
fn ack_line(seq: u64, off: u64) -> String {
    let body = format!("{seq} {off}");
    format!("{body} {:08x}\n", crc32fast::hash(body.as_bytes()))
}

/// Parses the `ack` file's text; `None` if it is not exactly what [`ack_line`] writes.
fn parse_ack(text: &str) -> Option<(u64, u64)> {
    let mut it = text.trim_end_matches('\n').split(' ');
    let (seq, off, crc) = (it.next()?, it.next()?, it.next()?);
    let ok =
        it.next().is_none() && u32::from_str_radix(crc, 16).ok()? == crc32fast::hash(format!("{seq} {off}").as_bytes());
    ok.then_some((seq.parse().ok()?, off.parse().ok()?))
}

impl Spool {
    /// Opens (or creates) the spool in `cfg.dir`, checks every record, truncates a torn tail and
    /// skips damaged data (both reported), and starts a new segment for appends.
    pub fn open(cfg: SpoolConfig) -> Result<(Spool, OpenReport), SpoolError> {
        let dir = cfg.dir.clone();
        fs::create_dir_all(&dir).map_err(io_err("create directory", &dir))?;
        let mut report = OpenReport::default();
        let ack_path = dir.join("ack");
        let (ack_seq, ack_off) = match fs::read_to_string(&ack_path) {
            Ok(text) => parse_ack(&text).unwrap_or_else(|| {
                report.problems.push(format!(
                    "{}: unreadable commit point {text:?}; replaying every segment left",
                    ack_path.display()
                ));
                (0, 0)
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => (0, 0),
            Err(e) => return Err(io_err("read", &ack_path)(e)),
        };

        let mut seqs = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io_err("list directory", &dir))? {
            let entry = entry.map_err(io_err("list directory", &dir))?;
            if let Some(seq) = entry.file_name().to_str().and_then(segment::parse_name) {
                seqs.push(seq);
            }
        }
        seqs.sort_unstable();
        // New segments must sort after everything that ever existed, consumed ones included:
        // reusing a number could put fresh records under an old commit point.
        let next_seq = seqs.last().copied().unwrap_or(0).max(ack_seq) + 1;

        let mut found = Vec::new();
        for seq in seqs {
            let path = dir.join(segment::name(seq));
            if seq < ack_seq {
                // Consumed; the commit that moved past it was interrupted before deleting it.
                fs::remove_file(&path).map_err(io_err("delete", &path))?;
                continue;
            }
            let commit_off = if seq == ack_seq { ack_off } else { 0 };
            let scan = segment::scan(&path, commit_off).map_err(io_err("read", &path))?;
            if commit_off > scan.end {
                // Possible after power loss under `fsync = never`/`interval`: the commit reached
                // the disk, the records it covered did not.
                report.problems.push(format!(
                    "{}: commit point {commit_off} lies beyond the valid data ({} bytes)",
                    path.display(),
                    scan.end
                ));
            }
            found.push((seq, path, scan));
        }

        let last = found.len().checked_sub(1);
        let mut segs = VecDeque::new();
        let mut read_off = 0;
        for (i, (seq, path, mut scan)) in found.into_iter().enumerate() {
            if let Some((at, why)) = &scan.damage {
                let lost = scan.file_len - scan.end;
                report.skipped_bytes += lost;
                if Some(i) == last {
                    let f = OpenOptions::new().write(true).open(&path).map_err(io_err("open", &path))?;
                    f.set_len(scan.end).map_err(io_err("truncate", &path))?;
                    if cfg.fsync != FsyncPolicy::Never {
                        f.sync_all().map_err(io_err("fsync", &path))?;
                    }
                    scan.file_len = scan.end;
                    report.problems.push(format!(
                        "{}: {why} at byte {at}; truncated the torn tail ({lost} bytes), kept the records before it",
                        path.display()
                    ));
                } else {
                    report.problems.push(format!(
                        "{}: {why} at byte {at}; skipped the rest of this segment ({lost} bytes), kept the records before it",
                        path.display()
                    ));
                }
            }
            if scan.pending == 0 {
                // Empty or fully consumed: nothing to keep it for.
                fs::remove_file(&path).map_err(io_err("delete", &path))?;
                continue;
            }
            if segs.is_empty() {
                read_off = scan.read_off;
            }
            report.records += scan.pending as usize;
            report.bytes += scan.end - scan.read_off;
            segs.push_back(Seg { seq, end: scan.end, disk: scan.file_len });
        }

        let disk_bytes = segs.iter().map(|s| s.disk).sum();
        let writer = create_segment(&cfg, next_seq)?;
        segs.push_back(Seg { seq: next_seq, end: 0, disk: 0 });
        let spool = Spool {
            cfg,
            segs,
            read_off,
            writer,
            pending: report.records,
            pending_bytes: report.bytes,
            disk_bytes,
            dirty: false,
            last_sync: Instant::now(),
            roll_next: false,
        };
        Ok((spool, report))
    }

    /// Appends one record at the end. [`SpoolError::Full`] if it would take the files past
    /// `max_bytes` (nothing written); on success the record is in the kernel (and on disk under
    /// `fsync = "always"`).
    pub fn append(&mut self, record: &[u8]) -> Result<(), SpoolError> {
        if record.len() > MAX_RECORD {
            return Err(SpoolError::TooLarge { size: record.len() });
        }
        let size = HEADER + record.len() as u64;
        if self.disk_bytes + size > self.cfg.max_bytes {
            return Err(SpoolError::Full { used: self.disk_bytes, max: self.cfg.max_bytes });
        }
        let back = self.segs.back().map_or(0, |s| s.disk);
        if self.roll_next || (back > 0 && back + size > self.cfg.segment_bytes) {
            self.roll()?;
        }
        let path = self.seg_path(self.back_seq());
        if let Err(e) = self.writer.write_all(&segment::encode(record)) {
            // Part of the record may be in the file: never append after it. Reading stops at
            // `end`, and the next open reports and skips the partial record.
            self.roll_next = true;
            return Err(io_err("write", &path)(e));
        }
        if let Some(back) = self.segs.back_mut() {
            back.end += size;
            back.disk += size;
        }
        self.pending += 1;
        self.pending_bytes += size;
        self.disk_bytes += size;
        self.dirty = true;
        let due = match self.cfg.fsync {
            FsyncPolicy::Always => true,
            FsyncPolicy::Interval => self.last_sync.elapsed() >= Duration::from_millis(self.cfg.fsync_interval_ms),
            FsyncPolicy::Never => false,
        };
        if due {
            self.sync()?;
        }
        Ok(())
    }

    /// `fsync`s the segment being appended to. The gateway calls it on a timer under
    /// `fsync = "interval"`, so that records appended just before a lull do not wait for the
    /// next append to reach the disk.
    pub fn sync(&mut self) -> Result<(), SpoolError> {
        if self.dirty {
            if let Err(e) = self.writer.sync_data() {
                // After a failed fsync the kernel may have dropped the dirty pages: what this
                // file holds is uncertain, so later records go to a new one.
                self.roll_next = true;
                return Err(io_err("fsync", &self.seg_path(self.back_seq()))(e));
            }
            self.dirty = false;
        }
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Up to `max_records` of the oldest pending records, oldest first, without removing them.
    pub fn peek(&mut self, max_records: usize) -> Result<Vec<Vec<u8>>, SpoolError> {
        let want = max_records.min(self.pending);
        let mut out = Vec::with_capacity(want.min(1024));
        self.walk(want, |r, path, off, len, crc| {
            let payload = segment::read_payload(r, len, crc).map_err(|b| bad(b, path, off))?;
            out.push(payload);
            Ok(())
        })?;
        Ok(out)
    }

    /// Marks the `n` oldest pending records (the first `n` a [`Spool::peek`] returned) as written
    /// downstream: persists the commit point, then deletes the segments fully consumed.
    pub fn commit(&mut self, n: usize) -> Result<(), SpoolError> {
        if n > self.pending {
            return Err(SpoolError::CommitBeyond { n, pending: self.pending });
        }
        if n == 0 {
            return Ok(());
        }
        let mut bytes = 0;
        let (mut i, mut off) = self.walk(n, |r, path, off, len, _| {
            bytes += HEADER + u64::from(len);
            r.seek_relative(i64::from(len)).map_err(|e| bad(e.into(), path, off))
        })?;
        if n == self.pending {
            return self.reset();
        }
        // Move past segments now exhausted, so that they can go.
        while off >= self.segs[i].end && i + 1 < self.segs.len() {
            i += 1;
            off = 0;
        }
        // The commit point first: a crash before the deletes leaves files the next open discards.
        self.write_ack(self.segs[i].seq, off)?;
        for seg in self.segs.drain(..i) {
            self.disk_bytes -= seg.disk;
            let path = self.cfg.dir.join(segment::name(seg.seq));
            if let Err(e) = fs::remove_file(&path) {
                // Already consumed: the next open deletes it (number below the commit point).
                tracing::warn!("spool: cannot delete consumed segment {}: {e}", path.display());
            }
        }
        self.read_off = off;
        self.pending -= n;
        self.pending_bytes -= bytes;
        Ok(())
    }

    /// Records pending (appended or replayed, not yet committed).
    pub fn len(&self) -> usize {
        self.pending
    }

    /// Whether no record is pending.
    pub fn is_empty(&self) -> bool {
        self.pending == 0
    }

    /// Bytes of the pending records on disk, headers included.
    pub fn bytes(&self) -> u64 {
        self.pending_bytes
    }

    /// Bytes all segment files take: what `max_bytes` bounds (it includes the consumed part of
    /// the oldest segment and skipped damage, freed a segment at a time).
    pub fn disk_bytes(&self) -> u64 {
        self.disk_bytes
    }

    /// Segment files on disk, the one being appended to included.
    pub fn segments(&self) -> usize {
        self.segs.len()
    }

    fn back_seq(&self) -> u64 {
        self.segs.back().map_or(0, |s| s.seq)
    }

    fn seg_path(&self, seq: u64) -> PathBuf {
        self.cfg.dir.join(segment::name(seq))
    }

    /// Visits the headers of the `n` oldest pending records (`n <= pending`) in order; `visit`
    /// gets the reader positioned on the payload and must consume it (read or skip). Returns the
    /// position after the last one: (index in `segs`, offset).
    fn walk(
        &self,
        n: usize,
        mut visit: impl FnMut(&mut BufReader<File>, &Path, u64, u32, u32) -> Result<(), SpoolError>,
    ) -> Result<(usize, u64), SpoolError> {
        let (mut i, mut off) = (0, self.read_off);
        let mut reader: Option<(usize, PathBuf, BufReader<File>)> = None;
        for _ in 0..n {
            while off >= self.segs[i].end {
                i += 1;
                off = 0;
                if i == self.segs.len() {
                    // `pending` says there are more records than the segments hold: cannot happen
                    // unless the files changed under us.
                    let path = self.seg_path(self.back_seq());
                    return Err(SpoolError::Corrupt { path, offset: 0, reason: "fewer records than expected".into() });
                }
            }
            if reader.as_ref().map(|r| r.0) != Some(i) {
                let path = self.seg_path(self.segs[i].seq);
                let mut f = File::open(&path).map_err(io_err("open", &path))?;
                f.seek(SeekFrom::Start(off)).map_err(io_err("seek", &path))?;
                reader = Some((i, path, BufReader::with_capacity(64 << 10, f)));
            }
            let Some((_, path, r)) = reader.as_mut() else { unreachable!("reader set above") };
            let (len, crc) = match segment::read_header(r, self.segs[i].end - off) {
                Ok(Some(h)) => h,
                Ok(None) => unreachable!("off < end: some bytes are left"),
                Err(b) => return Err(bad(b, path, off)),
            };
            visit(r, path, off, len, crc)?;
            off += HEADER + u64::from(len);
        }
        Ok((i, off))
    }

    /// Starts a new segment for appends.
    fn roll(&mut self) -> Result<(), SpoolError> {
        if self.cfg.fsync != FsyncPolicy::Never {
            // The old segment will not be written again: make it durable now rather than never.
            self.sync()?;
        }
        let seq = self.back_seq() + 1;
        self.writer = create_segment(&self.cfg, seq)?;
        self.segs.push_back(Seg { seq, end: 0, disk: 0 });
        self.roll_next = false;
        self.dirty = false;
        Ok(())
    }

    /// Everything is consumed: delete every segment and start afresh, so a drained spool takes
    /// no disk.
    fn reset(&mut self) -> Result<(), SpoolError> {
        // Appends move to a new segment *before* the commit point passes the old ones: if writing
        // `ack` fails, the state is still consistent (nothing committed, new records after the
        // commit point), and a later append can never land in a segment the commit point covers.
        if self.cfg.fsync == FsyncPolicy::Interval {
            // Should the commit point fail below, the old segment's records stay pending: keep the
            // interval promise for them. Best effort: on success they are deleted anyway.
            if let Err(e) = self.sync() {
                tracing::warn!("{e}");
            }
        }
        let seq = self.back_seq() + 1;
        self.writer = create_segment(&self.cfg, seq)?;
        self.segs.push_back(Seg { seq, end: 0, disk: 0 });
        self.dirty = false;
        self.roll_next = false;
        // The commit point goes past every old segment before they are deleted, so that a crash
        // part-way leaves only files the next open deletes.
        self.write_ack(seq, 0)?;
        while self.segs.len() > 1 {
            let Some(seg) = self.segs.pop_front() else { break };
            let path = self.seg_path(seg.seq);
            if let Err(e) = fs::remove_file(&path) {
                tracing::warn!("spool: cannot delete consumed segment {}: {e}", path.display());
            }
        }
        self.read_off = 0;
        self.pending = 0;
        self.pending_bytes = 0;
        self.disk_bytes = 0;
        Ok(())
    }

    /// Replaces `ack` atomically: write a temporary file, rename it over.
    fn write_ack(&self, seq: u64, off: u64) -> Result<(), SpoolError> {
        let tmp = self.cfg.dir.join("ack.tmp");
        let path = self.cfg.dir.join("ack");
        let mut f = File::create(&tmp).map_err(io_err("create", &tmp))?;
        f.write_all(ack_line(seq, off).as_bytes()).map_err(io_err("write", &tmp))?;
        let always = self.cfg.fsync == FsyncPolicy::Always;
        if always {
            f.sync_all().map_err(io_err("fsync", &tmp))?;
        }
        fs::rename(&tmp, &path).map_err(io_err("rename into", &path))?;
        if always {
            sync_dir(&self.cfg.dir)?;
        }
        Ok(())
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        if self.cfg.fsync != FsyncPolicy::Never {
            // Best effort on shutdown; a failure here has nobody left to report to but the log.
            if let Err(e) = self.sync() {
                tracing::warn!("{e}");
            }
        }
    }
}

fn create_segment(cfg: &SpoolConfig, seq: u64) -> Result<File, SpoolError> {
    let path = cfg.dir.join(segment::name(seq));
    // `create_new`: a number is never reused, so an existing file would be a bug; refuse to
    // append to it.
    let f = OpenOptions::new().append(true).create_new(true).open(&path).map_err(io_err("create", &path))?;
    if cfg.fsync == FsyncPolicy::Always {
        sync_dir(&cfg.dir)?;
    }
    Ok(f)
}

fn bad(b: Bad, path: &Path, offset: u64) -> SpoolError {
    match b {
        Bad::Damaged(reason) => SpoolError::Corrupt { path: path.to_path_buf(), offset, reason },
        Bad::Io(source) => SpoolError::Io { action: "read", path: path.to_path_buf(), source },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A directory unique to one test, removed when the test ends (even on failure).
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            static N: AtomicUsize = AtomicUsize::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!("spool-test-{name}-{}-{n}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            TempDir(dir)
        }

        fn cfg(&self, segment_bytes: u64, max_bytes: u64, fsync: FsyncPolicy) -> SpoolConfig {
            SpoolConfig { dir: self.0.clone(), max_bytes, segment_bytes, fsync, fsync_interval_ms: 1000 }
        }

        /// Segment files present, oldest first.
        fn segment_files(&self) -> Vec<PathBuf> {
            let mut v: Vec<PathBuf> = fs::read_dir(&self.0)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "seg"))
                .collect();
            v.sort();
            v
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn rec(i: usize, len: usize) -> Vec<u8> {
        (0..len).map(|j| (i * 31 + j) as u8).collect()
    }

    fn open(cfg: &SpoolConfig) -> (Spool, OpenReport) {
        Spool::open(cfg.clone()).unwrap()
    }

    #[test]
    fn fifo_order_across_segments() {
        let t = TempDir::new("fifo");
        let cfg = t.cfg(100, 1 << 20, FsyncPolicy::Never);
        let (mut s, report) = open(&cfg);
        assert_eq!(report, OpenReport::default());
        let recs: Vec<_> = (0..40).map(|i| rec(i, i % 37)).collect();
        for r in &recs {
            s.append(r).unwrap();
        }
        assert!(s.segments() >= 5, "{} segments", s.segments());
        assert_eq!(s.len(), 40);
        assert_eq!(s.bytes(), recs.iter().map(|r| HEADER + r.len() as u64).sum::<u64>());
        assert_eq!(s.peek(1000).unwrap(), recs);
        assert_eq!(s.peek(3).unwrap(), recs[..3]);
        // peek does not consume.
        assert_eq!(s.peek(3).unwrap(), recs[..3]);
        let mut done = 0;
        for chunk in [1, 7, 13, 2] {
            s.commit(chunk).unwrap();
            done += chunk;
            assert_eq!(s.peek(1000).unwrap(), recs[done..]);
            assert_eq!(s.len(), 40 - done);
        }
    }

    #[test]
    fn commit_deletes_consumed_segments_and_survives_reopen() {
        let t = TempDir::new("commit");
        // 3 records of 21 bytes (9 + 12) per 64-byte segment.
        let cfg = t.cfg(64, 1 << 20, FsyncPolicy::Never);
        let recs: Vec<_> = (0..30).map(|i| rec(i, 12)).collect();
        {
            let (mut s, _) = open(&cfg);
            for r in &recs {
                s.append(r).unwrap();
            }
            assert_eq!(s.segments(), 10);
            assert_eq!(t.segment_files().len(), 10);
            s.peek(13).unwrap();
            s.commit(13).unwrap();
            // 4 full segments consumed and deleted; the 5th is one third consumed.
            assert_eq!(s.segments(), 6);
            assert_eq!(t.segment_files().len(), 6);
            assert_eq!(s.disk_bytes(), 6 * 63);
            assert_eq!(s.bytes(), 17 * 21);
        }
        {
            let (mut s, report) = open(&cfg);
            assert!(report.problems.is_empty(), "{:?}", report.problems);
            assert_eq!((report.records, report.bytes, report.skipped_bytes), (17, 17 * 21, 0));
            assert_eq!(s.peek(100).unwrap(), recs[13..]);
            s.commit(5).unwrap();
        }
        {
            let (mut s, report) = open(&cfg);
            assert_eq!(report.records, 12);
            assert_eq!(s.peek(100).unwrap(), recs[18..]);
            s.commit(12).unwrap();
            // Drained: only the fresh (empty) segment is left.
            assert_eq!(t.segment_files().len(), 1);
            assert_eq!((s.len(), s.bytes(), s.disk_bytes()), (0, 0, 0));
        }
        let (mut s, report) = open(&cfg);
        assert_eq!(report, OpenReport::default());
        assert!(s.peek(10).unwrap().is_empty());
        // Reopening does not pile up empty segment files.
        assert_eq!(t.segment_files().len(), 1);
    }

    #[test]
    fn full_at_the_bound_and_room_again_after_commit() {
        let t = TempDir::new("full");
        // 20-byte records, 3 per segment, 10 in all.
        let cfg = t.cfg(60, 200, FsyncPolicy::Never);
        let (mut s, _) = open(&cfg);
        for i in 0..10 {
            s.append(&rec(i, 11)).unwrap();
        }
        let err = s.append(&rec(10, 11)).unwrap_err();
        assert!(matches!(err, SpoolError::Full { used: 200, max: 200 }), "{err}");
        assert!(err.to_string().contains("max_bytes = 200"), "{err}");
        // Even a tiny record does not fit.
        assert!(matches!(s.append(b""), Err(SpoolError::Full { .. })));
        // Committing inside the first segment frees nothing yet...
        s.commit(2).unwrap();
        assert!(matches!(s.append(&rec(10, 11)), Err(SpoolError::Full { .. })));
        // ...finishing it does.
        s.commit(1).unwrap();
        s.append(&rec(10, 11)).unwrap();
        assert_eq!(s.len(), 8);
        s.commit(8).unwrap();
        assert_eq!(s.disk_bytes(), 0);
        for i in 0..10 {
            s.append(&rec(i, 11)).unwrap();
        }
    }

    #[test]
    fn oversized_record_and_commit_beyond_pending_are_errors() {
        let t = TempDir::new("errors");
        let (mut s, _) = open(&t.cfg(1 << 20, 64 << 20, FsyncPolicy::Never));
        let err = s.append(&vec![0; MAX_RECORD + 1]).unwrap_err();
        assert!(matches!(err, SpoolError::TooLarge { .. }), "{err}");
        s.append(b"a").unwrap();
        let err = s.commit(2).unwrap_err();
        assert!(matches!(err, SpoolError::CommitBeyond { n: 2, pending: 1 }), "{err}");
        s.commit(0).unwrap();
        assert_eq!(s.len(), 1);
    }

    /// Writes 5 records in one segment, closes, cuts the file `cut_back` bytes before its end,
    /// reopens: the first 4 records must survive and the damage be reported.
    fn torn_tail(name: &str, cut_back: u64, expect: &str) {
        let t = TempDir::new(name);
        let cfg = t.cfg(1 << 20, 64 << 20, FsyncPolicy::Never);
        let recs: Vec<_> = (0..5).map(|i| rec(i, 20)).collect();
        {
            let (mut s, _) = open(&cfg);
            for r in &recs {
                s.append(r).unwrap();
            }
        }
        let files = t.segment_files();
        let last = files.last().unwrap();
        let len = fs::metadata(last).unwrap().len();
        assert_eq!(len, 5 * 29);
        OpenOptions::new().write(true).open(last).unwrap().set_len(len - cut_back).unwrap();

        let (mut s, report) = open(&cfg);
        assert_eq!(report.records, 4);
        assert_eq!(report.skipped_bytes, 29 - cut_back);
        assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
        let p = &report.problems[0];
        assert!(p.contains(expect) && p.contains("truncated") && p.contains(last.to_str().unwrap()), "{p}");
        assert_eq!(fs::metadata(last).unwrap().len(), 4 * 29, "torn tail truncated away");
        assert_eq!(s.peek(10).unwrap(), recs[..4]);
        s.append(b"after").unwrap();
        drop(s);
        let (mut s, report) = open(&cfg);
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        let mut want = recs[..4].to_vec();
        want.push(b"after".to_vec());
        assert_eq!(s.peek(10).unwrap(), want);
    }

    #[test]
    fn torn_write_in_a_header_keeps_earlier_records() {
        // Keep 4 bytes of the last record: magic and 3 bytes of its length.
        torn_tail("torn-header", 25, "short header (4 of 9 bytes)");
    }

    #[test]
    fn torn_write_in_a_payload_keeps_earlier_records() {
        // Keep the header and 10 of the 20 payload bytes.
        torn_tail("torn-payload", 10, "short payload (header says 20 bytes, 10 left)");
    }

    #[test]
    fn crc_mismatch_in_an_earlier_segment_skips_only_its_rest() {
        let t = TempDir::new("crc");
        // 3 records of 19 bytes per segment, 9 records in 3 segments.
        let cfg = t.cfg(60, 1 << 20, FsyncPolicy::Never);
        let recs: Vec<_> = (0..9).map(|i| rec(i, 10)).collect();
        {
            let (mut s, _) = open(&cfg);
            for r in &recs {
                s.append(r).unwrap();
            }
            assert_eq!(s.segments(), 3);
        }
        let first = t.segment_files()[0].clone();
        let mut bytes = fs::read(&first).unwrap();
        bytes[19 + 9 + 4] ^= 0x40; // a payload byte of the second record
        fs::write(&first, &bytes).unwrap();

        let (mut s, report) = open(&cfg);
        assert_eq!(report.records, 7);
        assert_eq!(report.skipped_bytes, 2 * 19);
        assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
        let p = &report.problems[0];
        assert!(p.contains("CRC mismatch") && p.contains("at byte 19") && p.contains("skipped"), "{p}");
        assert!(p.contains(first.to_str().unwrap()), "{p}");
        let mut want = vec![recs[0].clone()];
        want.extend_from_slice(&recs[3..]);
        assert_eq!(s.peek(100).unwrap(), want);
        // The damaged file is left as is (not the last one) but counted, and goes once consumed.
        assert_eq!(fs::metadata(&first).unwrap().len(), 57);
        s.commit(1).unwrap();
        assert!(!first.exists());
        assert_eq!(s.peek(100).unwrap(), recs[3..]);
    }

    #[test]
    fn garbage_tail_with_a_huge_length_is_bounded_and_reported() {
        let t = TempDir::new("garbage");
        let cfg = t.cfg(1 << 20, 64 << 20, FsyncPolicy::Never);
        {
            let (mut s, _) = open(&cfg);
            s.append(b"one").unwrap();
            s.append(b"two").unwrap();
        }
        let last = t.segment_files().pop().unwrap();
        let mut f = OpenOptions::new().append(true).open(&last).unwrap();
        // A valid magic with a 4 GiB length: must be rejected, not allocated.
        f.write_all(&[segment::MAGIC, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 1, 2, 3]).unwrap();
        drop(f);
        let (mut s, report) = open(&cfg);
        assert!(report.problems[0].contains("exceeds the maximum"), "{:?}", report.problems);
        assert_eq!((report.records, report.skipped_bytes), (2, 12));
        assert_eq!(s.peek(10).unwrap(), [b"one".to_vec(), b"two".to_vec()]);
        drop(s);

        let last = t.segment_files().pop().unwrap();
        fs::write(&last, [0u8; 30]).unwrap(); // zeros: bad magic
        let (mut s, report) = open(&cfg);
        assert!(report.problems.iter().any(|p| p.contains("bad magic byte 0x00")), "{:?}", report.problems);
        assert_eq!(s.peek(10).unwrap(), [b"one".to_vec(), b"two".to_vec()]);
    }

    #[test]
    fn crash_between_ack_and_delete_does_not_replay_consumed_segments() {
        let t = TempDir::new("crash-delete");
        let cfg = t.cfg(64, 1 << 20, FsyncPolicy::Never);
        let recs: Vec<_> = (0..9).map(|i| rec(i, 12)).collect();
        let (mut s, _) = open(&cfg);
        for r in &recs {
            s.append(r).unwrap();
        }
        let first = t.segment_files()[0].clone();
        let saved = fs::read(&first).unwrap();
        s.commit(4).unwrap();
        drop(s);
        // As if the process died after renaming `ack` but before deleting the segment.
        fs::write(&first, saved).unwrap();
        let (mut s, report) = open(&cfg);
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        assert!(!first.exists(), "a segment below the commit point is deleted at open");
        assert_eq!(s.peek(100).unwrap(), recs[4..]);
    }

    #[test]
    fn commit_point_beyond_lost_data_is_reported() {
        let t = TempDir::new("ack-beyond");
        let cfg = t.cfg(1 << 20, 64 << 20, FsyncPolicy::Never);
        {
            let (mut s, _) = open(&cfg);
            for i in 0..5 {
                s.append(&rec(i, 10)).unwrap();
            }
            s.commit(3).unwrap();
        }
        // Power loss under `never`: the commit reached the disk, the last records did not.
        let seg = t.segment_files()[0].clone();
        OpenOptions::new().write(true).open(&seg).unwrap().set_len(19).unwrap();
        let (mut s, report) = open(&cfg);
        assert!(report.problems[0].contains("beyond the valid data"), "{:?}", report.problems);
        assert_eq!(report.records, 0);
        assert!(s.peek(10).unwrap().is_empty());
        // New records are not hidden behind the stale commit point.
        s.append(b"new").unwrap();
        drop(s);
        let (mut s, _) = open(&cfg);
        assert_eq!(s.peek(10).unwrap(), [b"new".to_vec()]);
    }

    #[test]
    fn failed_commit_changes_nothing_and_can_be_retried() {
        let t = TempDir::new("ack-fails");
        let cfg = t.cfg(64, 1 << 20, FsyncPolicy::Never);
        let (mut s, _) = open(&cfg);
        for i in 0..5 {
            s.append(&rec(i, 12)).unwrap();
        }
        // A directory in the way of `ack.tmp`: writing the commit point fails.
        fs::create_dir(t.0.join("ack.tmp")).unwrap();
        for n in [2, 5] {
            let err = s.commit(n).unwrap_err();
            assert!(err.to_string().contains("ack.tmp"), "{err}");
            assert_eq!(s.len(), 5);
        }
        s.append(b"later").unwrap();
        drop(s);
        let (mut s, report) = open(&cfg);
        assert_eq!(report.records, 6, "nothing committed, nothing lost");
        fs::remove_dir(t.0.join("ack.tmp")).unwrap();
        s.commit(5).unwrap();
        assert_eq!(s.peek(10).unwrap(), [b"later".to_vec()]);
        drop(s);
        let (mut s, _) = open(&cfg);
        assert_eq!(s.peek(10).unwrap(), [b"later".to_vec()]);
    }

    #[test]
    fn unreadable_ack_replays_everything_left() {
        let t = TempDir::new("ack");
        let cfg = t.cfg(1 << 20, 64 << 20, FsyncPolicy::Never);
        {
            let (mut s, _) = open(&cfg);
            for i in 0..4 {
                s.append(&rec(i, 5)).unwrap();
            }
            s.commit(2).unwrap();
        }
        let ack = t.0.join("ack");
        let text = fs::read_to_string(&ack).unwrap();
        assert_eq!(parse_ack(&text), Some((1, 28)));
        fs::write(&ack, text.replace("28", "14")).unwrap(); // CRC no longer matches
        let (mut s, report) = open(&cfg);
        assert!(report.problems[0].contains("unreadable commit point"), "{:?}", report.problems);
        assert_eq!(s.peek(10).unwrap().len(), 4, "at-least-once: replay rather than lose");
    }

    #[test]
    fn every_fsync_policy_round_trips() {
        for policy in [FsyncPolicy::Always, FsyncPolicy::Interval, FsyncPolicy::Never] {
            let t = TempDir::new("fsync");
            let mut cfg = t.cfg(50, 1 << 20, policy);
            cfg.fsync_interval_ms = 1;
            let recs: Vec<_> = (0..12).map(|i| rec(i, i + 3)).collect();
            {
                let (mut s, _) = open(&cfg);
                for r in &recs {
                    s.append(r).unwrap();
                    std::thread::sleep(Duration::from_millis(if policy == FsyncPolicy::Interval { 1 } else { 0 }));
                }
                s.sync().unwrap();
                s.commit(5).unwrap();
            }
            let (mut s, report) = open(&cfg);
            assert!(report.problems.is_empty(), "{policy:?}: {:?}", report.problems);
            assert_eq!(s.peek(100).unwrap(), recs[5..], "{policy:?}");
        }
    }

    #[test]
    fn random_appends_commits_and_reopens_match_a_queue() {
        // xorshift64*: deterministic, no extra crate.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut rand = move |n: u64| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            state.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
        };
        let t = TempDir::new("model");
        let cfg = t.cfg(300, 4000, FsyncPolicy::Never);
        let (mut s, _) = open(&cfg);
        let mut model: VecDeque<Vec<u8>> = VecDeque::new();
        let (mut next, mut fulls, mut reopens, mut drained) = (0usize, 0, 0, 0);
        for op in 0..3000 {
            // Alternate filling phases (which reach `Full`) and draining ones (which empty it).
            let filling = (op / 400) % 2 == 0;
            match rand(100) {
                0..=54 => {
                    let r = rec(next, rand(120) as usize);
                    match s.append(&r) {
                        Ok(()) => {
                            model.push_back(r);
                            next += 1;
                        }
                        Err(SpoolError::Full { used, max }) => {
                            assert!(used + HEADER + r.len() as u64 > max);
                            fulls += 1;
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
                55..=89 => {
                    let got = s.peek(rand(if filling { 6 } else { 40 }) as usize).unwrap();
                    assert!(got.iter().eq(model.iter().take(got.len())));
                    assert_eq!(got.len(), got.len().min(model.len()));
                    let n = rand(got.len() as u64 + 1) as usize;
                    s.commit(n).unwrap();
                    model.drain(..n);
                    drained += usize::from(n > 0 && model.is_empty());
                }
                _ => {
                    drop(s);
                    let report;
                    (s, report) = open(&cfg);
                    reopens += 1;
                    assert!(report.problems.is_empty(), "{:?}", report.problems);
                    assert_eq!(report.records, model.len());
                }
            }
            assert_eq!(s.len(), model.len());
            assert_eq!(s.bytes(), model.iter().map(|r| HEADER + r.len() as u64).sum::<u64>());
            assert!(s.disk_bytes() <= 4000);
            assert_eq!(t.segment_files().len(), s.segments());
        }
        assert!(
            fulls > 0 && reopens > 0 && drained > 0,
            "exercised: Full {fulls}, reopen {reopens}, drained {drained}"
        );
        assert!(s.peek(usize::MAX).unwrap().iter().eq(model.iter()));
    }

    #[test]
    fn config_defaults_parse_and_problems() {
        let c: SpoolConfig = toml::from_str("").unwrap();
        assert_eq!(c, SpoolConfig::default());
        assert_eq!(
            (c.max_bytes, c.segment_bytes, c.fsync, c.fsync_interval_ms),
            (1 << 30, 64 << 20, FsyncPolicy::Interval, 1000)
        );
        assert!(c.problems().is_empty());
        let c: SpoolConfig = toml::from_str("dir = \"/var/spool/gw\"\nfsync = \"always\"").unwrap();
        assert_eq!(c.fsync, FsyncPolicy::Always);
        assert!(toml::from_str::<SpoolConfig>("max_byte = 1").is_err(), "unknown fields are refused");
        assert!(toml::from_str::<SpoolConfig>("fsync = \"sometimes\"").is_err());
        let c = SpoolConfig { max_bytes: 1 << 20, segment_bytes: 100, fsync_interval_ms: 0, ..Default::default() };
        let fields: Vec<_> = c.problems().into_iter().map(|p| p.0).collect();
        assert_eq!(fields, ["spool.segment_bytes", "spool.fsync_interval_ms"]);
        let c = SpoolConfig { max_bytes: 1 << 20, ..Default::default() };
        assert_eq!(c.problems()[0].0, "spool.max_bytes");
    }
}
