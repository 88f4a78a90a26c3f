//! The spool's unit tests: order, commits, the bound, every kind of damage, and a random model check.

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
fn peek_bytes_stops_after_the_record_that_fills_the_budget() {
    let t = TempDir::new("peek-bytes");
    let (mut s, _) = open(&t.cfg(100, 1 << 20, FsyncPolicy::Never));
    let recs: Vec<_> = (0..20).map(|i| rec(i, 10)).collect();
    for r in &recs {
        s.append(r).unwrap();
    }
    assert_eq!(s.peek_bytes(1000, 25).unwrap(), recs[..3], "10 + 10 < 25, the third reaches it");
    assert_eq!(s.peek_bytes(1000, 30).unwrap(), recs[..3]);
    assert_eq!(s.peek_bytes(1000, 1).unwrap(), recs[..1], "at least one record");
    assert_eq!(s.peek_bytes(4, usize::MAX).unwrap(), recs[..4], "the record limit holds too");
    s.commit(3).unwrap();
    assert_eq!(s.peek_bytes(1000, 15).unwrap(), recs[3..5], "after a commit, from the oldest pending");
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
    assert!(fulls > 0 && reopens > 0 && drained > 0, "exercised: Full {fulls}, reopen {reopens}, drained {drained}");
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
