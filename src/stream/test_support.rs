//! Helpers shared by the unit tests of the stream module.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::format::{CRC_LEN, RECORD_HEADER_LEN, list_segments, segment_path};
use super::{NewRecord, Record, Stream, StreamOptions, StreamReader};

pub(super) fn opts(segment_size_bytes: u64) -> StreamOptions {
    StreamOptions { segment_size_bytes }
}

pub(super) fn rec<'a>(key: &'a str, data: &'a [u8]) -> NewRecord<'a> {
    NewRecord {
        partition_key: key,
        data,
    }
}

/// Appends `n` records `key` / "<prefix><i>" in one batch.
pub(super) fn append_n(
    stream: &Stream,
    key: &str,
    prefix: &str,
    n: usize,
    arrival: i64,
) -> Vec<u64> {
    let data: Vec<Vec<u8>> = (0..n)
        .map(|i| format!("{prefix}{i}").into_bytes())
        .collect();
    let batch: Vec<NewRecord<'_>> = data.iter().map(|d| rec(key, d)).collect();
    stream.append(&batch, arrival).expect("append")
}

pub(super) fn read_all(reader: &mut StreamReader) -> Vec<Record> {
    let mut all = Vec::new();
    loop {
        let batch = reader.next_batch(7).expect("next_batch");
        if batch.is_empty() {
            return all;
        }
        all.extend(batch);
    }
}

pub(super) fn seqs(records: &[Record]) -> Vec<u64> {
    records.iter().map(|r| r.sequence).collect()
}

pub(super) fn seg_files(dir: &Path) -> Vec<PathBuf> {
    list_segments(dir)
        .expect("list")
        .into_iter()
        .map(|s| segment_path(dir, s))
        .collect()
}

/// On-disk size of a record with this key and data.
pub(super) fn rec_len(key: &str, data_len: usize) -> u64 {
    (RECORD_HEADER_LEN + key.len() + data_len + CRC_LEN) as u64
}

pub(super) fn flip_byte(path: &Path, offset: u64) {
    let mut bytes = fs::read(path).expect("read segment");
    bytes[offset as usize] ^= 0x55;
    fs::write(path, bytes).expect("write segment");
}

pub(super) fn append_raw(path: &Path, bytes: &[u8]) {
    let mut f = OpenOptions::new().append(true).open(path).expect("open");
    f.write_all(bytes).expect("write");
}
