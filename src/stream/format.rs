//! The on-disk format: constants, the segment header, segment file names and listing, record
//! encoding and the little-endian readers used to decode records (see the module docs of
//! `stream` for the layout).

use std::fs;
use std::path::{Path, PathBuf};

use super::error::io_err;
use super::{NewRecord, StreamError};

/// Magic bytes at the start of every segment file.
pub const SEGMENT_MAGIC: [u8; 7] = *b"IOTALOG";
/// The segment format version this module reads and writes.
pub const FORMAT_VERSION: u8 = 1;
/// Longest partition key accepted, in bytes (Kinesis allows 256 characters).
pub const MAX_PARTITION_KEY_BYTES: usize = 256;
/// Largest record data accepted, in bytes (the classic Kinesis limit of 1 MiB).
pub const MAX_DATA_BYTES: usize = 1024 * 1024;

pub(super) const SEGMENT_HEADER_LEN: u64 = 8;
pub(super) const RECORD_HEADER_LEN: usize = 22;
pub(super) const CRC_LEN: usize = 4;
/// Smallest possible record on disk (empty key and data).
pub(super) const MIN_RECORD_LEN: u64 = (RECORD_HEADER_LEN + CRC_LEN) as u64;
const SEGMENT_SUFFIX: &str = ".seg";
const SEGMENT_NAME_DIGITS: usize = 20;

#[inline]
pub(super) fn segment_header() -> [u8; SEGMENT_HEADER_LEN as usize] {
    let mut header = [0u8; SEGMENT_HEADER_LEN as usize];
    header[..SEGMENT_MAGIC.len()].copy_from_slice(&SEGMENT_MAGIC);
    header[SEGMENT_MAGIC.len()] = FORMAT_VERSION;
    header
}

pub(super) fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!("{first_seq:0SEGMENT_NAME_DIGITS$}{SEGMENT_SUFFIX}"))
}

pub(super) fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != SEGMENT_NAME_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|&seq| seq > 0)
}

/// Segment names (first sequence numbers), oldest first.
pub(super) fn list_segments(dir: &Path) -> Result<Vec<u64>, StreamError> {
    let mut segs = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err("list stream directory", dir))? {
        let entry = entry.map_err(io_err("list stream directory", dir))?;
        if let Some(seg) = entry.file_name().to_str().and_then(parse_segment_name) {
            segs.push(seg);
        }
    }
    segs.sort_unstable();
    Ok(segs)
}

#[inline]
pub(super) fn encode_record(out: &mut Vec<u8>, seq: u64, arrival_ms: i64, record: &NewRecord<'_>) {
    let start = out.len();
    // Lengths were checked against the limits, which fit in u16 and u32.
    let key_len = u16::try_from(record.partition_key.len()).unwrap_or(u16::MAX);
    let data_len = u32::try_from(record.data.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&arrival_ms.to_le_bytes());
    out.extend_from_slice(&key_len.to_le_bytes());
    out.extend_from_slice(&data_len.to_le_bytes());
    out.extend_from_slice(record.partition_key.as_bytes());
    out.extend_from_slice(record.data);
    let crc = crc32fast::hash(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

#[inline]
pub(super) fn le_u64(bytes: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(a)
}

#[inline]
pub(super) fn le_i64(bytes: &[u8]) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&bytes[..8]);
    i64::from_le_bytes(a)
}

#[inline]
pub(super) fn le_u32(bytes: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&bytes[..4]);
    u32::from_le_bytes(a)
}
