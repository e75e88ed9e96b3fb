//! Reading segment files: [`SegmentFile`] checks a segment's header and decodes its records
//! one by one, telling a clean end from a torn tail and from corruption. Every reader of the
//! disk (the stream reader, tail scans, statistics, retention) goes through it.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::PathBuf;

use super::error::io_err;
use super::format::{
    CRC_LEN, FORMAT_VERSION, MAX_DATA_BYTES, MAX_PARTITION_KEY_BYTES, RECORD_HEADER_LEN,
    SEGMENT_HEADER_LEN, SEGMENT_MAGIC, le_i64, le_u32, le_u64, segment_header,
};
use super::{Record, StreamError};

const READ_BUFFER_BYTES: usize = 64 * 1024;

pub(super) enum Opened {
    Ready(SegmentFile),
    /// The file does not exist (deleted by retention since it was listed).
    Missing,
    /// The last segment's header is incomplete (a crash right after creating it).
    HeaderTorn,
    /// The header is wrong: not a segment, or an unsupported version.
    HeaderBad(String),
    /// The file is shorter than the requested offset (records were cut off).
    Shrunk,
}

pub(super) enum Step {
    Record(Record),
    /// End of the file (as of when it was opened), at a record boundary.
    End,
    /// The rest of the last segment is a torn write: not (yet) a record.
    Torn,
    /// A bad record that is not a torn tail.
    Corrupt {
        offset: u64,
        reason: String,
    },
}

/// A segment file opened for reading at a record boundary.
pub(super) struct SegmentFile {
    path: PathBuf,
    reader: BufReader<File>,
    /// File size when opened; bytes past it are ignored until the next open.
    pub(super) len: u64,
    pub(super) offset: u64,
    pub(super) expect_seq: u64,
    is_last: bool,
}

impl SegmentFile {
    /// Opens `path` at `offset` (0 = validate the header first) expecting `expect_seq` next.
    pub(super) fn open(
        path: PathBuf,
        is_last: bool,
        offset: u64,
        expect_seq: u64,
    ) -> Result<Opened, StreamError> {
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Opened::Missing),
            Err(e) => return Err(io_err("open segment", &path)(e)),
        };
        let len = file
            .metadata()
            .map_err(io_err("read metadata of segment", &path))?
            .len();
        let mut reader = BufReader::with_capacity(READ_BUFFER_BYTES, file);
        let offset = if offset < SEGMENT_HEADER_LEN {
            let header_len = len.min(SEGMENT_HEADER_LEN) as usize;
            let mut header = [0u8; SEGMENT_HEADER_LEN as usize];
            match reader.read_exact(&mut header[..header_len]) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Ok(if is_last {
                        Opened::HeaderTorn
                    } else {
                        Opened::HeaderBad("segment file shrank while being read".into())
                    });
                }
                Err(e) => return Err(io_err("read segment header of", &path)(e)),
            }
            let expected = segment_header();
            let header = &header[..header_len];
            let all_zero = header.iter().all(|&b| b == 0);
            if header_len < SEGMENT_HEADER_LEN as usize {
                return Ok(
                    if is_last && (all_zero || header == &expected[..header_len]) {
                        Opened::HeaderTorn
                    } else {
                        Opened::HeaderBad(format!(
                            "segment file is {len} bytes, shorter than its {SEGMENT_HEADER_LEN}-byte header"
                        ))
                    },
                );
            }
            if header != expected {
                if is_last && all_zero {
                    let mut probe = SegmentFile {
                        path: path.clone(),
                        reader,
                        len,
                        offset: 0,
                        expect_seq,
                        is_last,
                    };
                    if probe.rest_is_zero(0)? {
                        return Ok(Opened::HeaderTorn);
                    }
                    return Ok(Opened::HeaderBad(
                        "segment header is zeroed but the file is not".into(),
                    ));
                }
                return Ok(Opened::HeaderBad(
                    if header[..SEGMENT_MAGIC.len()] != SEGMENT_MAGIC {
                        "not a stream segment (bad magic bytes)".to_string()
                    } else {
                        format!(
                            "unsupported segment format version {} (this build reads version {FORMAT_VERSION})",
                            header[SEGMENT_MAGIC.len()]
                        )
                    },
                ));
            }
            SEGMENT_HEADER_LEN
        } else {
            if offset > len {
                return Ok(Opened::Shrunk);
            }
            reader
                .seek(SeekFrom::Start(offset))
                .map_err(io_err("seek in segment", &path))?;
            offset
        };
        Ok(Opened::Ready(SegmentFile {
            path,
            reader,
            len,
            offset,
            expect_seq,
            is_last,
        }))
    }

    pub(super) fn next(&mut self) -> Result<Step, StreamError> {
        let remaining = self.len.saturating_sub(self.offset);
        if remaining == 0 {
            return Ok(Step::End);
        }
        if remaining < RECORD_HEADER_LEN as u64 {
            return Ok(self.incomplete());
        }
        let mut header = [0u8; RECORD_HEADER_LEN];
        if !self.read_exact(&mut header)? {
            return Ok(self.incomplete());
        }
        let seq = le_u64(&header[0..8]);
        let arrival_ms = le_i64(&header[8..16]);
        let key_len = usize::from(u16::from_le_bytes([header[16], header[17]]));
        let data_len = le_u32(&header[18..22]) as usize;
        let total = (RECORD_HEADER_LEN + key_len + CRC_LEN) as u64 + data_len as u64;
        if total > remaining {
            return Ok(self.incomplete());
        }
        let record_end = self.offset + total;
        if key_len > MAX_PARTITION_KEY_BYTES || data_len > MAX_DATA_BYTES {
            return self.invalid(
                record_end,
                format!("record lengths out of range (key {key_len} bytes, data {data_len} bytes)"),
            );
        }
        let mut body = vec![0u8; key_len + data_len + CRC_LEN];
        if !self.read_exact(&mut body)? {
            return Ok(self.incomplete());
        }
        let stored_crc = le_u32(&body[key_len + data_len..]);
        body.truncate(key_len + data_len);
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&header);
        hasher.update(&body);
        let computed_crc = hasher.finalize();
        if stored_crc != computed_crc {
            return self.invalid(
                record_end,
                format!("CRC mismatch (stored {stored_crc:#010x}, computed {computed_crc:#010x})"),
            );
        }
        if seq == u64::MAX {
            // Never written (appends stop with "sequence numbers exhausted" before it), and no
            // record could follow it: accepting it would let the next number wrap to 0.
            return self.invalid(
                record_end,
                "sequence number u64::MAX is never written".into(),
            );
        }
        if seq != self.expect_seq {
            return self.invalid(
                record_end,
                format!(
                    "sequence number {seq} where {} was expected",
                    self.expect_seq
                ),
            );
        }
        let data = body.split_off(key_len);
        let Ok(partition_key) = String::from_utf8(body) else {
            return self.invalid(record_end, "partition key is not UTF-8".into());
        };
        self.offset = record_end;
        self.expect_seq = seq.wrapping_add(1);
        Ok(Step::Record(Record {
            sequence: seq,
            arrival_ms,
            partition_key,
            data,
        }))
    }

    /// Reads exactly `buf.len()` bytes; false if the file ended first (it shrank).
    fn read_exact(&mut self, buf: &mut [u8]) -> Result<bool, StreamError> {
        match self.reader.read_exact(buf) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
            Err(e) => Err(io_err("read segment", &self.path)(e)),
        }
    }

    /// The record at `self.offset` runs past the end of the file.
    fn incomplete(&self) -> Step {
        if self.is_last {
            Step::Torn
        } else {
            Step::Corrupt {
                offset: self.offset,
                reason: "record runs past the end of a closed segment".into(),
            }
        }
    }

    /// The record at `self.offset` (ending at `record_end`) is bad: a torn tail if it is the
    /// final record of the last segment or the rest of the file is zeros, corruption otherwise.
    fn invalid(&mut self, record_end: u64, reason: String) -> Result<Step, StreamError> {
        if self.is_last && (record_end == self.len || self.rest_is_zero(self.offset)?) {
            return Ok(Step::Torn);
        }
        Ok(Step::Corrupt {
            offset: self.offset,
            reason,
        })
    }

    /// True if every byte from `from` to the end of the file is zero.
    fn rest_is_zero(&mut self, from: u64) -> Result<bool, StreamError> {
        self.reader
            .seek(SeekFrom::Start(from))
            .map_err(io_err("seek in segment", &self.path))?;
        let mut remaining = self.len.saturating_sub(from);
        let mut chunk = vec![0u8; 8192];
        while remaining > 0 {
            let n = remaining.min(chunk.len() as u64) as usize;
            if !self.read_exact(&mut chunk[..n])? {
                return Ok(true);
            }
            if chunk[..n].iter().any(|&b| b != 0) {
                return Ok(false);
            }
            remaining -= n as u64;
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::format::{encode_record, segment_path};
    use crate::stream::test_support::*;
    use crate::stream::{StartAt, Stream, StreamOptions};
    use std::fs;

    /// A segment holding u64::MAX followed by 0, CRCs valid (found by the fuzz target
    /// `stream_log`): readers must not return 0 after u64::MAX.
    #[test]
    fn sequence_numbers_never_wrap_past_u64_max() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let stream = Stream::open(tmp.path(), StreamOptions::default()).expect("open");
        let mut bytes = segment_header().to_vec();
        for seq in [u64::MAX - 1, u64::MAX, 0] {
            encode_record(&mut bytes, seq, 1, &rec("k", b"d"));
        }
        fs::write(segment_path(tmp.path(), u64::MAX - 1), &bytes).expect("write");
        let mut reader = stream.reader(StartAt::TrimHorizon).expect("reader");
        assert_eq!(seqs(&reader.next_batch(10).expect("batch")), [u64::MAX - 1]);
        let err = reader.next_batch(10).expect_err("u64::MAX is corrupt");
        assert!(err.to_string().contains("u64::MAX"), "{err}");
        assert!(reader.next_batch(10).expect("batch").is_empty());
    }

    #[test]
    fn bad_segment_header_is_an_error_not_a_panic() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = segment_path(tmp.path(), 1);
        fs::write(&path, b"NOTALOG!and some more bytes here").expect("write");
        let err = Stream::open(tmp.path(), StreamOptions::default()).expect_err("bad magic");
        assert!(
            err.to_string().contains("00000000000000000001.seg"),
            "{err}"
        );
        assert!(err.to_string().contains("magic"), "{err}");

        let mut header = segment_header();
        header[7] = 99;
        fs::write(&path, header).expect("write");
        let err = Stream::open(tmp.path(), StreamOptions::default()).expect_err("bad version");
        assert!(err.to_string().contains("version 99"), "{err}");
    }
}
