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

mod config;
mod error;
mod segment;

pub use config::{FsyncPolicy, SpoolConfig};
pub use error::{OpenReport, SpoolError};
pub use segment::MAX_RECORD;

use segment::{Bad, HEADER};
use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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
        self.peek_bytes(max_records, usize::MAX)
    }

    /// Like [`Spool::peek`], but stops after the record that brings their size to `max_bytes` (at
    /// least one record): a reader takes what its next writes hold, whether the records are large
    /// or small, with memory bounded by the budget plus one record.
    pub fn peek_bytes(&mut self, max_records: usize, max_bytes: usize) -> Result<Vec<Vec<u8>>, SpoolError> {
        let want = max_records.min(self.pending);
        let mut out = Vec::with_capacity(want.min(1024));
        let mut total = 0usize;
        self.walk(want, |r, path, off, len, crc| {
            let payload = segment::read_payload(r, len, crc).map_err(|b| bad(b, path, off))?;
            total += payload.len();
            out.push(payload);
            Ok(total < max_bytes)
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
            r.seek_relative(i64::from(len)).map_err(|e| bad(e.into(), path, off))?;
            Ok(true)
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
    /// gets the reader positioned on the payload and must consume it (read or skip), and answers
    /// whether to go on. Returns the position after the last one visited: (index in `segs`, offset).
    fn walk(
        &self,
        n: usize,
        mut visit: impl FnMut(&mut BufReader<File>, &Path, u64, u32, u32) -> Result<bool, SpoolError>,
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
            let more = visit(r, path, off, len, crc)?;
            off += HEADER + u64::from(len);
            if !more {
                break;
            }
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
mod tests;
