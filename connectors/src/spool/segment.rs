//! One segment file: the record format, and reading records back without trusting the disk.
//!
//! A record is a 9-byte header, `MAGIC` (1 byte), payload length (u32 LE), CRC32 of the payload
//! (u32 LE), then the payload. Every length read from disk is checked against the bytes that are
//! really there and against [`MAX_RECORD`] before anything is allocated, so a damaged header can
//! never make us allocate gigabytes or read past the data.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

/// First byte of every record: a cheap check that a header starts where we expect one.
pub(super) const MAGIC: u8 = 0xD5;
/// Header size: magic, length, CRC.
pub(super) const HEADER: u64 = 9;
/// Largest payload accepted (and believed when read back): 16 MiB.
pub const MAX_RECORD: usize = 16 << 20;

/// File name of segment `seq`: zero-padded so that name order is sequence order.
pub(super) fn name(seq: u64) -> String {
    format!("{seq:020}.seg")
}

/// The sequence number of a segment file name, `None` for any other file.
pub(super) fn parse_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Header and payload in one buffer, so that a record is written with a single `write_all`.
pub(super) fn encode(record: &[u8]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(HEADER as usize + record.len());
    buf.push(MAGIC);
    buf.extend_from_slice(&(record.len() as u32).to_le_bytes());
    buf.extend_from_slice(&crc32fast::hash(record).to_le_bytes());
    buf.extend_from_slice(record);
    buf
}

/// Why a record could not be read.
pub(super) enum Bad {
    /// The bytes are there but are not a valid record (torn write, bit rot): the reason, for a human.
    Damaged(String),
    /// The disk itself failed.
    Io(io::Error),
}

impl From<io::Error> for Bad {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            // The file is shorter than its size said: it shrank under us, i.e. damaged.
            Bad::Damaged("file ended inside a record".into())
        } else {
            Bad::Io(e)
        }
    }
}

/// Reads one header; `avail` is how many valid bytes remain from the reader's position.
/// `Ok(None)` is a clean end (no bytes left); the returned `(len, crc)` has a length that fits
/// in `avail`.
pub(super) fn read_header(r: &mut impl Read, avail: u64) -> Result<Option<(u32, u32)>, Bad> {
    if avail == 0 {
        return Ok(None);
    }
    if avail < HEADER {
        return Err(Bad::Damaged(format!("short header ({avail} of {HEADER} bytes)")));
    }
    let mut h = [0u8; HEADER as usize];
    r.read_exact(&mut h)?;
    if h[0] != MAGIC {
        return Err(Bad::Damaged(format!("bad magic byte 0x{:02x} (expected 0x{MAGIC:02x})", h[0])));
    }
    let len = u32::from_le_bytes([h[1], h[2], h[3], h[4]]);
    let crc = u32::from_le_bytes([h[5], h[6], h[7], h[8]]);
    if len as usize > MAX_RECORD {
        return Err(Bad::Damaged(format!("record length {len} exceeds the maximum {MAX_RECORD}")));
    }
    let left = avail - HEADER;
    if u64::from(len) > left {
        return Err(Bad::Damaged(format!("short payload (header says {len} bytes, {left} left)")));
    }
    Ok(Some((len, crc)))
}

/// Reads a payload whose header [`read_header`] accepted, and checks its CRC.
pub(super) fn read_payload(r: &mut impl Read, len: u32, crc: u32) -> Result<Vec<u8>, Bad> {
    // `len` was bounded by MAX_RECORD and by the bytes present: this allocation is safe.
    let mut payload = vec![0u8; len as usize];
    r.read_exact(&mut payload)?;
    let actual = crc32fast::hash(&payload);
    if actual != crc {
        return Err(Bad::Damaged(format!("CRC mismatch (stored {crc:08x}, computed {actual:08x})")));
    }
    Ok(payload)
}

/// What [`scan`] found in one segment file.
#[derive(Debug)]
pub(super) struct Scan {
    /// File size on disk.
    pub file_len: u64,
    /// End of the last valid record: everything after it is damaged (or there is nothing after it).
    pub end: u64,
    /// First record at or after the commit offset (the reader's start), `end` if none.
    pub read_off: u64,
    /// Valid records from `read_off` on.
    pub pending: u64,
    /// Where the damage starts and why.
    pub damage: Option<(u64, String)>,
}

/// Validates every record of a segment (CRC included). Records starting before `commit_off`
/// were already consumed; they are still validated because they locate the ones after them.
pub(super) fn scan(path: &Path, commit_off: u64) -> io::Result<Scan> {
    let file = File::open(path)?;
    let file_len = file.metadata()?.len();
    let mut r = BufReader::with_capacity(64 << 10, file);
    let (mut off, mut pending, mut read_off, mut damage) = (0u64, 0u64, None, None);
    loop {
        let step = read_header(&mut r, file_len - off).and_then(|h| match h {
            None => Ok(None),
            Some((len, crc)) => read_payload(&mut r, len, crc).map(|_| Some(len)),
        });
        let len = match step {
            Ok(None) => break,
            Ok(Some(len)) => len,
            Err(Bad::Damaged(why)) => {
                damage = Some((off, why));
                break;
            }
            Err(Bad::Io(e)) => return Err(e),
        };
        if off >= commit_off {
            read_off.get_or_insert(off);
            pending += 1;
        }
        off += HEADER + u64::from(len);
    }
    Ok(Scan { file_len, end: off, read_off: read_off.unwrap_or(off), pending, damage })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_reject_others() {
        assert_eq!(name(42), "00000000000000000042.seg");
        assert_eq!(parse_name(&name(42)), Some(42));
        assert_eq!(parse_name("ack"), None);
        assert_eq!(parse_name("0000000000000000042.seg"), None);
        assert_eq!(parse_name("0000000000000000004x.seg"), None);
        // 20 digits but above u64::MAX: ignored, not a panic.
        assert_eq!(parse_name("99999999999999999999.seg"), None);
    }

    #[test]
    fn header_lengths_are_not_trusted() {
        let mut rec = encode(b"hello");
        rec[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        let Err(Bad::Damaged(why)) = read_header(&mut &rec[..], rec.len() as u64) else { panic!("accepted") };
        assert!(why.contains("exceeds the maximum"), "{why}");
        rec[1..5].copy_from_slice(&1000u32.to_le_bytes());
        let Err(Bad::Damaged(why)) = read_header(&mut &rec[..], rec.len() as u64) else { panic!("accepted") };
        assert!(why.contains("short payload"), "{why}");
    }
}
