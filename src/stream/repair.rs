//! Scanning the tail of a segment and crash repair: under the writer lock the last segment is
//! re-read (from where this `Stream` last validated it) and a torn tail or torn header is cut
//! off or rewritten; a bad record with data after it is left alone and writing continues in a
//! new segment. Also the read-only tail scan used by `stats` and `Latest` readers.

use std::fs::OpenOptions;
use std::io::{self, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::PoisonError;

use super::error::io_err;
use super::format::{
    MIN_RECORD_LEN, SEGMENT_HEADER_LEN, list_segments, parse_segment_name, segment_header,
    segment_path,
};
use super::segment::{Opened, SegmentFile, Step};
use super::writer::{ActiveSegment, WriterState};
use super::{Record, Stream, StreamError};

/// What is known to be valid in a segment: bytes `[0, end)` hold good records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct TailCache {
    pub(super) seg: u64,
    pub(super) end: u64,
    pub(super) next_seq: u64,
    pub(super) last_arrival: Option<i64>,
}

pub(super) struct PreparedTail {
    /// The last segment, ready to append to; `None` when a new segment must be created.
    pub(super) active: Option<ActiveSegment>,
    pub(super) next_seq: u64,
    pub(super) last_arrival: Option<i64>,
}

impl Stream {
    /// Re-reads the tail of the last segment under the lock and repairs a torn tail.
    pub(super) fn prepare_tail(
        &self,
        state: &mut WriterState,
    ) -> Result<PreparedTail, StreamError> {
        let dir = &self.inner.dir;
        let segs = list_segments(dir)?;
        let Some(&last) = segs.last() else {
            state.tail = None;
            return Ok(PreparedTail {
                active: None,
                next_seq: 1,
                last_arrival: None,
            });
        };
        let path = segment_path(dir, last);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io_err("open segment for writing", &path))?;
        let cached = state.tail.filter(|c| c.seg == last);
        let scan = scan_tail(dir, last, cached)?;
        let mut end = scan.end;
        match &scan.stop {
            TailStop::Clean => {}
            TailStop::Torn => {
                tracing::warn!(
                    path = %path.display(),
                    offset = scan.end,
                    cut_bytes = scan.len.saturating_sub(scan.end),
                    "cutting off a torn record at the end of the stream"
                );
                file.set_len(scan.end)
                    .map_err(io_err("truncate torn tail of", &path))?;
                file.sync_data().map_err(io_err("sync", &path))?;
            }
            TailStop::HeaderTorn => {
                tracing::warn!(path = %path.display(), "rewriting the torn header of the last segment");
                file.set_len(0)
                    .map_err(io_err("truncate torn header of", &path))?;
                file.seek(SeekFrom::Start(0))
                    .and_then(|_| file.write_all(&segment_header()))
                    .map_err(io_err("write segment header to", &path))?;
                file.sync_data().map_err(io_err("sync", &path))?;
                end = SEGMENT_HEADER_LEN;
            }
            TailStop::HeaderBad(reason) => {
                state.tail = None;
                return Err(StreamError::Corrupt {
                    path,
                    offset: 0,
                    reason: reason.clone(),
                });
            }
            TailStop::Corrupt { offset, reason } => {
                // Records may follow the bad one; leave them and continue in a new segment
                // numbered past any sequence number they could hold.
                let gap = scan.len.saturating_sub(*offset) / MIN_RECORD_LEN;
                let next_seq =
                    scan.next_seq
                        .checked_add(gap)
                        .ok_or_else(|| StreamError::Corrupt {
                            path: path.clone(),
                            offset: *offset,
                            reason: "sequence numbers exhausted".into(),
                        })?;
                tracing::warn!(
                    path = %path.display(),
                    offset,
                    reason = %reason,
                    next_sequence = next_seq,
                    "corrupt record in the middle of the last segment; continuing in a new segment"
                );
                state.tail = None;
                let last_arrival = scan
                    .last_arrival
                    .or_else(|| last_arrival_before(dir, &segs));
                return Ok(PreparedTail {
                    active: None,
                    next_seq,
                    last_arrival,
                });
            }
        }
        let last_arrival = scan
            .last_arrival
            .or_else(|| last_arrival_before(dir, &segs));
        state.tail = Some(TailCache {
            seg: last,
            end,
            next_seq: scan.next_seq,
            last_arrival,
        });
        Ok(PreparedTail {
            active: Some(ActiveSegment {
                seg: last,
                path,
                file,
                end,
            }),
            next_seq: scan.next_seq,
            last_arrival,
        })
    }

    /// Scans the last segment read-only (no repair), continuing from what was seen before.
    pub(super) fn read_tail(&self, segs: &[u64]) -> Result<Option<(u64, TailScan)>, StreamError> {
        let Some(&last) = segs.last() else {
            return Ok(None);
        };
        let mut cache = self
            .inner
            .read_tail
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let cached = cache.filter(|c| c.seg == last);
        let scan = scan_tail(&self.inner.dir, last, cached)?;
        *cache = match scan.stop {
            TailStop::Clean | TailStop::Torn | TailStop::Corrupt { .. } => Some(TailCache {
                seg: last,
                end: scan.end,
                next_seq: scan.next_seq,
                last_arrival: scan.last_arrival,
            }),
            TailStop::HeaderTorn | TailStop::HeaderBad(_) => None,
        };
        Ok(Some((last, scan)))
    }
}

#[derive(Debug)]
pub(super) enum TailStop {
    Clean,
    Torn,
    Corrupt { offset: u64, reason: String },
    HeaderTorn,
    HeaderBad(String),
}

#[derive(Debug)]
pub(super) struct TailScan {
    /// File size when scanned.
    pub(super) len: u64,
    /// End of the last good record (or of the header).
    pub(super) end: u64,
    pub(super) next_seq: u64,
    pub(super) last_arrival: Option<i64>,
    pub(super) stop: TailStop,
}

/// Scans the last segment `seg`, from the cached position when there is one.
fn scan_tail(dir: &Path, seg: u64, cached: Option<TailCache>) -> Result<TailScan, StreamError> {
    let path = segment_path(dir, seg);
    match cached {
        Some(c) => scan_segment(&path, true, c.end, c.next_seq, c.last_arrival),
        None => scan_segment(&path, true, 0, seg, None),
    }
}

/// Reads a segment from `offset` to where its good records end.
pub(super) fn scan_segment(
    path: &Path,
    is_last: bool,
    offset: u64,
    expect_seq: u64,
    last_arrival: Option<i64>,
) -> Result<TailScan, StreamError> {
    let seg_first = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(parse_segment_name)
        .unwrap_or(expect_seq);
    let mut file = match SegmentFile::open(path.to_path_buf(), is_last, offset, expect_seq)? {
        Opened::Ready(file) => file,
        Opened::Shrunk => return scan_segment(path, is_last, 0, seg_first, None),
        Opened::Missing => {
            return Err(io_err("open segment", path)(io::Error::from(
                io::ErrorKind::NotFound,
            )));
        }
        Opened::HeaderTorn => {
            return Ok(TailScan {
                len: 0,
                end: 0,
                next_seq: seg_first,
                last_arrival: None,
                stop: TailStop::HeaderTorn,
            });
        }
        Opened::HeaderBad(reason) => {
            return Ok(TailScan {
                len: 0,
                end: 0,
                next_seq: seg_first,
                last_arrival: None,
                stop: TailStop::HeaderBad(reason),
            });
        }
    };
    let mut last_arrival = last_arrival;
    let stop = loop {
        match file.next()? {
            Step::Record(record) => last_arrival = Some(record.arrival_ms),
            Step::End => break TailStop::Clean,
            Step::Torn => break TailStop::Torn,
            Step::Corrupt { offset, reason } => break TailStop::Corrupt { offset, reason },
        }
    };
    Ok(TailScan {
        len: file.len,
        end: file.offset,
        next_seq: file.expect_seq,
        last_arrival,
        stop,
    })
}

/// The first record of a segment, if it has a readable one.
pub(super) fn first_record(
    dir: &Path,
    seg: u64,
    is_last: bool,
) -> Result<Option<Record>, StreamError> {
    match SegmentFile::open(segment_path(dir, seg), is_last, 0, seg)? {
        Opened::Ready(mut file) => match file.next()? {
            Step::Record(record) => Ok(Some(record)),
            _ => Ok(None),
        },
        _ => Ok(None),
    }
}

/// Arrival time of the newest record before the last segment (for a last segment without
/// records). Rare: only after a crash right after a segment was created.
fn last_arrival_before(dir: &Path, segs: &[u64]) -> Option<i64> {
    segs.iter().rev().skip(1).find_map(|&seg| {
        scan_segment(&segment_path(dir, seg), false, 0, seg, None)
            .ok()
            .and_then(|scan| scan.last_arrival)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::format::encode_record;
    use crate::stream::test_support::*;
    use crate::stream::{StartAt, StreamOptions};
    use std::fs;

    #[test]
    fn torn_tail_is_cut_off_on_open_and_numbering_continues() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        let stream = Stream::open(dir, StreamOptions::default()).expect("open");
        append_n(&stream, "k", "good", 5, 1_000);
        drop(stream);
        let path = seg_files(dir).remove(0);
        let good_len = fs::metadata(&path).expect("meta").len();

        // Half a record (a crash mid-write).
        let mut half = Vec::new();
        encode_record(&mut half, 6, 2_000, &rec("k", b"never acknowledged"));
        append_raw(&path, &half[..half.len() / 2]);
        let stream = Stream::open(dir, StreamOptions::default()).expect("reopen");
        assert_eq!(fs::metadata(&path).expect("meta").len(), good_len);
        assert_eq!(stream.stats().expect("stats").last_sequence, Some(5));
        assert_eq!(append_n(&stream, "k", "new", 1, 3_000), vec![6]);
        drop(stream);

        // Garbage bytes.
        let good_len = fs::metadata(&path).expect("meta").len();
        append_raw(&path, &[0xAB; 40]);
        let stream = Stream::open(dir, StreamOptions::default()).expect("reopen");
        assert_eq!(fs::metadata(&path).expect("meta").len(), good_len);
        drop(stream);

        // A zero-filled tail (the file size reached disk, the data did not).
        append_raw(&path, &[0; 4096]);
        let stream = Stream::open(dir, StreamOptions::default()).expect("reopen");
        assert_eq!(fs::metadata(&path).expect("meta").len(), good_len);
        drop(stream);

        // A complete final record with a bad CRC.
        let mut bad = Vec::new();
        encode_record(&mut bad, 7, 4_000, &rec("k", b"bad crc"));
        let last = bad.len() - 1;
        bad[last] ^= 0xFF;
        append_raw(&path, &bad);
        let stream = Stream::open(dir, StreamOptions::default()).expect("reopen");
        assert_eq!(fs::metadata(&path).expect("meta").len(), good_len);

        assert_eq!(append_n(&stream, "k", "next", 2, 5_000), vec![7, 8]);
        let all = read_all(&mut stream.reader(StartAt::TrimHorizon).expect("reader"));
        assert_eq!(seqs(&all), (1..=8).collect::<Vec<_>>());
        assert_eq!(all[4].data, b"good4");
        assert_eq!(all[5].data, b"new0");
        assert_eq!(all[6].data, b"next0");
    }

    #[test]
    fn torn_segment_header_is_rewritten() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let size = SEGMENT_HEADER_LEN + 2 * rec_len("k", 2);
        let stream = Stream::open(tmp.path(), opts(size)).expect("open");
        append_n(&stream, "k", "a", 2, 1_000);
        drop(stream);
        // A crash right after creating the next segment: 3 bytes of its header.
        fs::write(segment_path(tmp.path(), 3), &segment_header()[..3]).expect("write");
        let stream = Stream::open(tmp.path(), opts(size)).expect("reopen");
        assert_eq!(stream.stats().expect("stats").last_sequence, Some(2));
        let mut reader = stream.reader(StartAt::Latest).expect("reader");
        // The earlier segment's arrival still bounds the new records' arrival from below.
        assert_eq!(append_n(&stream, "k", "b", 1, 500), vec![3]);
        let got = reader.next_batch(10).expect("batch");
        assert_eq!(seqs(&got), vec![3]);
        assert_eq!(got[0].arrival_ms, 1_000);
    }

    #[test]
    fn corrupt_record_in_the_active_segment_is_kept_and_writing_goes_on() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let stream = Stream::open(tmp.path(), StreamOptions::default()).expect("open");
        append_n(&stream, "k", "a", 5, 1_000);
        let first = segment_path(tmp.path(), 1);
        let len_before = fs::metadata(&first).expect("meta").len();
        let second_record = SEGMENT_HEADER_LEN + rec_len("k", 2);
        flip_byte(&first, second_record + 1); // its sequence number
        drop(stream);

        let stream = Stream::open(tmp.path(), StreamOptions::default()).expect("reopen");
        let mut latest = stream.reader(StartAt::Latest).expect("reader");
        let new = append_n(&stream, "k", "b", 2, 2_000);
        assert_eq!(new.len(), 2);
        assert!(new[0] > 5, "no sequence number may repeat: got {new:?}");
        assert_eq!(new[1], new[0] + 1);
        assert_eq!(
            fs::metadata(&first).expect("meta").len(),
            len_before,
            "nothing was cut"
        );

        let mut reader = stream.reader(StartAt::TrimHorizon).expect("reader");
        assert_eq!(seqs(&reader.next_batch(100).expect("batch")), vec![1]);
        let err = reader.next_batch(100).expect_err("corruption is reported");
        assert!(
            err.to_string().contains(&format!("offset {second_record}")),
            "{err}"
        );
        assert_eq!(seqs(&read_all(&mut reader)), new);
        assert_eq!(seqs(&read_all(&mut latest)), new);
        assert_eq!(stream.stats().expect("stats").last_sequence, Some(new[1]));
    }
}
