//! Fuzz entry points: one function per `cargo fuzz` target in `fuzz/`, each taking arbitrary
//! bytes. The same functions replay the committed corpus in `tests/fuzz_corpus.rs`, so a crash
//! found by the fuzzer stays a regression test of the normal test run.
//!
//! Errors are fine; a panic, a hang or a broken invariant is a bug. Each function asserts the
//! invariants of its part:
//!
//! - [`config_load`]: the bytes as a config file, loaded as `iotaa` loads one (non-UTF-8
//!   included); an error is one line.
//! - [`reading_decode`], [`scored_decode`]: a record that decodes encodes and decodes back to an
//!   equal value.
//! - [`stream_log`]: the bytes as a segment file; readers return strictly increasing sequence
//!   numbers, opening (which repairs a torn tail) loses no readable record, and a record
//!   appended afterwards is readable, last, with a larger sequence number.
//!
//! Not part of the library: the fuzz targets and `tests/fuzz_corpus.rs` include this file
//! (`#[path]`), and it uses only the library's public API. Each fuzz target calls one of these
//! functions, so the others are unused there.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use iot_anomaly_analytics::config;
use iot_anomaly_analytics::records::{Reading, ScoredReading};
use iot_anomaly_analytics::stream::{
    NewRecord, Record, StartAt, Stream, StreamOptions, StreamReader,
};

/// The path the config bytes are loaded as (never read: the bytes are given).
const CONFIG_PATH: &str = "/fuzz/config.toml";

/// (a) The bytes as the contents of a config file.
pub fn config_load(data: &[u8]) {
    if let Err(e) = config::load_bytes(data.to_vec(), Path::new(CONFIG_PATH)) {
        let line = e.to_string();
        assert!(
            !line.contains('\n') && !line.contains('\r'),
            "a config error must be one line, got {line:?}"
        );
    }
}

/// (b) The bytes as one reading (a JSON line).
pub fn reading_decode(data: &[u8]) {
    if let Ok(reading) = Reading::decode(data) {
        let line = reading.encode();
        let again = Reading::decode(&line)
            .unwrap_or_else(|e| panic!("{reading:?} encodes to a line that does not decode: {e}"));
        assert_eq!(again, reading, "encode→decode changed the reading");
    }
}

/// (c) The bytes as one scored reading (a JSON line).
pub fn scored_decode(data: &[u8]) {
    if let Ok(scored) = ScoredReading::decode(data) {
        let line = scored.encode();
        let again = ScoredReading::decode(&line)
            .unwrap_or_else(|e| panic!("{scored:?} encodes to a line that does not decode: {e}"));
        assert_eq!(again, scored, "encode→decode changed the scored reading");
    }
}

/// Segment size for [`stream_log`]: small, so that appending to a fuzzed segment of a few KiB
/// sometimes rolls to a new segment.
pub const STREAM_SEGMENT_SIZE: u64 = 1024;
/// Most `next_batch` calls one read-everything may take before it counts as a hang.
const MAX_BATCHES: usize = 1_000;
const BATCH: usize = 64;

/// (d) The bytes as the only segment file of a stream.
///
/// The file is named by the sequence number of its first record (bytes 8..16, the first record
/// header after the 8-byte segment header) when that is not 0, else `…001.seg`: a valid segment
/// keeps a name that matches, and a mutated one can start anywhere, up to `u64::MAX`.
pub fn stream_log(data: &[u8]) {
    let tmp = TempDir::new("stream");
    let dir = tmp.path().join("stream");
    let options = StreamOptions {
        segment_size_bytes: STREAM_SEGMENT_SIZE,
    };
    // Open the empty stream first (directory and lock file), then put the segment in place:
    // the first reader sees the bytes exactly as given, before any repair.
    let first = Stream::open(&dir, options).expect("open an empty stream");
    fs::write(dir.join(segment_file_name(data)), data).expect("write the segment file");
    let Some(raw) = read_everything(&first) else {
        return;
    };
    assert_increasing(&raw, "reading the segment as given");

    // Opening for append repairs a torn tail: never a record a reader could read.
    let Ok(stream) = Stream::open(&dir, options) else {
        return;
    };
    let Some(repaired) = read_everything(&stream) else {
        return;
    };
    assert_eq!(
        sequences(&repaired),
        sequences(&raw),
        "opening the stream (tail repair) changed what a reader reads"
    );
    assert!(repaired == raw, "opening the stream changed a record");

    let payload = b"{\"fuzz\":\"appended\"}";
    let new = NewRecord {
        partition_key: "fuzz",
        data: payload,
    };
    let Ok(appended) = stream.append(&[new], 1_000) else {
        return;
    };
    assert_eq!(
        appended.len(),
        1,
        "one record appended, one sequence number"
    );
    let Some(after) = read_everything(&stream) else {
        return;
    };
    assert_increasing(&after, "reading after the append");
    let Some((last, before)) = after.split_last() else {
        panic!("the appended record {} is not readable", appended[0]);
    };
    assert_eq!(
        (last.sequence, last.partition_key.as_str(), &last.data[..]),
        (appended[0], "fuzz", &payload[..]),
        "the last record read is not the appended one"
    );
    assert!(
        before == &raw[..],
        "appending changed the records before it: {:?} → {:?}",
        sequences(&raw),
        sequences(before)
    );
}

/// Name of the segment file [`stream_log`] writes `data` to.
pub fn segment_file_name(data: &[u8]) -> String {
    let first = data
        .get(8..16)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()))
        .filter(|&seq| seq > 0)
        .unwrap_or(1);
    format!("{first:020}.seg")
}

/// Every record from `TRIM_HORIZON`, going on past corruption as a consumer does. `None` on an
/// I/O error (not the fuzzer's business). Panics if the reader never reaches the end.
fn read_everything(stream: &Stream) -> Option<Vec<Record>> {
    let mut reader: StreamReader = stream.reader(StartAt::TrimHorizon).ok()?;
    let mut out = Vec::new();
    for _ in 0..MAX_BATCHES {
        match reader.next_batch(BATCH) {
            Ok(batch) if batch.is_empty() => return Some(out),
            Ok(batch) => out.extend(batch),
            // Reported once; the reader has skipped the rest of that segment.
            Err(e) if e.is_corruption() => {}
            Err(_) => return None,
        }
    }
    panic!(
        "the reader did not reach the end in {MAX_BATCHES} batches ({} records)",
        out.len()
    );
}

fn sequences(records: &[Record]) -> Vec<u64> {
    records.iter().map(|r| r.sequence).collect()
}

fn assert_increasing(records: &[Record], what: &str) {
    for pair in records.windows(2) {
        assert!(
            pair[0].sequence < pair[1].sequence,
            "{what}: sequence {} followed by {} ({:?})",
            pair[0].sequence,
            pair[1].sequence,
            sequences(records)
        );
    }
}

/// Seed inputs for [`stream_log`]: segments written through the [`Stream`] API, and mutations of
/// them (torn tails, flipped bytes, zero tails, trailing garbage, renumbered records).
pub fn stream_seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    let one = api_segment(&[("aaaa", b"{\"deviceId\":\"aaaa\",\"sensorReading\":3}\n")]);
    let many = api_segment(&[
        ("aaaa", b"{\"deviceId\":\"aaaa\",\"sensorReading\":3}\n"),
        ("", b""),
        ("bbbb", b"x"),
        ("cccc", &[0u8; 40]),
        ("k\u{e9}y", b"\xff\xfe non-UTF-8 data is fine"),
    ]);
    seeds.push(("valid_one".to_string(), one.clone()));
    seeds.push(("valid_many".to_string(), many.clone()));
    seeds.push(("header_only".to_string(), many[..8].to_vec()));
    seeds.push(("torn_header".to_string(), many[..5].to_vec()));
    seeds.push(("zero_header".to_string(), vec![0; 8]));
    let mut version = many.clone();
    version[7] = 2;
    seeds.push(("version_2".to_string(), version));
    for cut in [9, 30, one.len() - 1] {
        seeds.push((format!("one_cut_at_{cut}"), one[..cut].to_vec()));
    }
    for cut in [many.len() - 1, many.len() - 4, many.len() / 2] {
        seeds.push((format!("many_cut_at_{cut}"), many[..cut].to_vec()));
    }
    for flip in [8, 16, 24, 26, 30, 40, many.len() / 2, many.len() - 1] {
        let mut bad = many.clone();
        bad[flip] ^= 0x40;
        seeds.push((format!("many_flip_{flip}"), bad));
    }
    let mut zeros = many.clone();
    zeros.extend_from_slice(&[0; 64]);
    seeds.push(("many_zero_tail".to_string(), zeros));
    let mut garbage = many.clone();
    garbage.extend_from_slice(b"garbage after the last record, longer than a header");
    seeds.push(("many_garbage_tail".to_string(), garbage));
    let mut doubled = many.clone();
    doubled.extend_from_slice(&many[8..]);
    seeds.push(("many_repeated_records".to_string(), doubled));
    for base in [2, 1 << 32, u64::MAX - 2, u64::MAX] {
        seeds.push((format!("many_from_{base}"), renumber(&many, base)));
    }
    seeds
}

/// A segment holding `records`, written by [`Stream::append`].
fn api_segment(records: &[(&str, &[u8])]) -> Vec<u8> {
    let tmp = TempDir::new("seed");
    let dir = tmp.path().join("stream");
    let stream = Stream::open(&dir, StreamOptions::default()).expect("open a seed stream");
    let batch: Vec<NewRecord<'_>> = records
        .iter()
        .map(|&(partition_key, data)| NewRecord {
            partition_key,
            data,
        })
        .collect();
    stream
        .append(&batch, 1_764_478_800_000)
        .expect("append seed records");
    fs::read(dir.join(format!("{:020}.seg", 1))).expect("read the seed segment")
}

/// `segment` with its records numbered from `base` (CRCs recomputed): a valid segment as a
/// stream that started elsewhere would hold it. Sequence numbers past `u64::MAX` wrap.
fn renumber(segment: &[u8], base: u64) -> Vec<u8> {
    let mut out = segment.to_vec();
    let mut at = 8;
    let mut seq = base;
    while at + 22 <= out.len() {
        let key_len = usize::from(u16::from_le_bytes([out[at + 16], out[at + 17]]));
        let data_len = u32::from_le_bytes(out[at + 18..at + 22].try_into().unwrap_or_default());
        let end = at + 22 + key_len + data_len as usize;
        if end + 4 > out.len() {
            break;
        }
        out[at..at + 8].copy_from_slice(&seq.to_le_bytes());
        let crc = crc32fast::hash(&out[at..end]);
        out[end..end + 4].copy_from_slice(&crc.to_le_bytes());
        seq = seq.wrapping_add(1);
        at = end + 4;
    }
    out
}

/// A fresh directory under the system temp dir (`TMPDIR`), removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("iotaa-fuzz-{what}-{}-{n}", std::process::id()));
        // A leftover of an earlier process with the same id.
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("create a temp dir");
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seeds themselves run in `tests/fuzz_corpus.rs`.
    #[test]
    fn segments_are_named_by_their_first_sequence() {
        let seeds = stream_seeds();
        let seed = |name: &str| &seeds.iter().find(|(n, _)| n == name).unwrap().1;
        assert_eq!(
            segment_file_name(seed("valid_many")),
            "00000000000000000001.seg"
        );
        assert_eq!(
            segment_file_name(seed("many_from_2")),
            "00000000000000000002.seg"
        );
        assert_eq!(segment_file_name(b"short"), "00000000000000000001.seg");
    }
}
