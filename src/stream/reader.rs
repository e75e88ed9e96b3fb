//! The reader side: [`Stream::reader`] positions a [`StreamReader`], which reads segment files
//! directly, without any lock, and waits for appends.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::format::{list_segments, segment_path};
use super::notify::Notifier;
use super::repair::{TailStop, first_record};
use super::segment::{Opened, SegmentFile, Step};
use super::{Record, StartAt, Stream, StreamError};

/// How often a waiting reader re-checks the disk for records appended by other processes.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// Reader offset meaning "the rest of this segment is skipped".
const SKIP_REST: u64 = u64::MAX;

impl Stream {
    /// A reader starting at `from`.
    pub fn reader(&self, from: StartAt) -> Result<StreamReader, StreamError> {
        let dir = &self.inner.dir;
        let cursor = match from {
            StartAt::TrimHorizon => Cursor::before_first(Skip::None),
            StartAt::Latest => {
                let segs = list_segments(dir)?;
                match self.read_tail(&segs)? {
                    None => Cursor::before_first(Skip::None),
                    Some((seg, scan)) => {
                        let mut cursor = Cursor::at_segment(seg, Skip::None);
                        match scan.stop {
                            TailStop::Clean | TailStop::Torn => {
                                cursor.offset = scan.end;
                                cursor.expect_seq = scan.next_seq;
                            }
                            // Wait for a writer to repair the header.
                            TailStop::HeaderTorn => {}
                            // Old damage is not news for a reader that starts at the end.
                            TailStop::HeaderBad(_) | TailStop::Corrupt { .. } => {
                                cursor.offset = SKIP_REST;
                            }
                        }
                        cursor
                    }
                }
            }
            StartAt::AtTimestamp(ms) => {
                // Arrival times never decrease, so start in the last segment whose first record
                // is older than `ms` and skip records until one is at or after `ms`.
                let segs = list_segments(dir)?;
                let mut start = None;
                for (i, &seg) in segs.iter().enumerate() {
                    match first_record(dir, seg, i + 1 == segs.len())? {
                        Some(record) if record.arrival_ms < ms => start = Some(seg),
                        Some(_) => break,
                        None => {}
                    }
                }
                let skip = Skip::BeforeArrival(ms);
                match start {
                    Some(seg) => Cursor::at_segment(seg, skip),
                    None => Cursor::before_first(skip),
                }
            }
            StartAt::AfterSequence(after) => {
                let skip = if after == 0 {
                    Skip::None
                } else {
                    Skip::UpToSequence(after)
                };
                let target = after.saturating_add(1);
                let segs = list_segments(dir)?;
                match segs.iter().rev().find(|&&seg| seg <= target) {
                    Some(&seg) => Cursor::at_segment(seg, skip),
                    None => Cursor::before_first(skip),
                }
            }
        };
        Ok(StreamReader {
            dir: dir.clone(),
            cursor,
            notifier: Arc::clone(&self.inner.notifier),
            last_sequence: None,
            pending_error: None,
            poll_interval: POLL_INTERVAL,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Skip {
    None,
    /// Skip records that arrived before this (ms).
    BeforeArrival(i64),
    /// Skip records with a sequence number up to and including this.
    UpToSequence(u64),
}

impl Skip {
    fn admits(self, record: &Record) -> bool {
        match self {
            Skip::None => true,
            Skip::BeforeArrival(ms) => record.arrival_ms >= ms,
            Skip::UpToSequence(seq) => record.sequence > seq,
        }
    }
}

/// A reader's position: a record boundary in a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cursor {
    /// Segment name; 0 = before the first segment.
    seg: u64,
    /// Byte offset of the next record; 0 = the header is still to be checked; `SKIP_REST`.
    offset: u64,
    expect_seq: u64,
    /// Applies until the first record it admits.
    skip: Skip,
}

impl Cursor {
    fn before_first(skip: Skip) -> Cursor {
        Cursor {
            seg: 0,
            offset: 0,
            expect_seq: 0,
            skip,
        }
    }

    fn at_segment(seg: u64, skip: Skip) -> Cursor {
        Cursor {
            seg,
            offset: 0,
            expect_seq: seg,
            skip,
        }
    }

    fn enter(&mut self, seg: u64) {
        self.seg = seg;
        self.offset = 0;
        self.expect_seq = seg;
    }
}

/// Reads records from `cursor` on, up to `max`, advancing `cursor` past each record pushed.
/// On an error, `out` holds what was read before it and `cursor` points just past that (past
/// the bad segment for a `Corrupt` error).
fn read_into(
    dir: &Path,
    cursor: &mut Cursor,
    max: usize,
    out: &mut Vec<Record>,
) -> Result<(), StreamError> {
    // List before looking at sizes: a segment followed by another one in this listing was
    // closed before the listing, so its size is final.
    let segs = list_segments(dir)?;
    while out.len() < max {
        let idx = match segs.binary_search(&cursor.seg) {
            Ok(idx) => idx,
            Err(idx) => {
                // Before the first segment, or in one deleted by retention: continue at the
                // oldest remaining record after it.
                let Some(&seg) = segs.get(idx) else {
                    return Ok(());
                };
                cursor.enter(seg);
                idx
            }
        };
        let is_last = idx + 1 == segs.len();
        if cursor.offset == SKIP_REST {
            if is_last {
                return Ok(());
            }
            cursor.enter(segs[idx + 1]);
            continue;
        }
        let path = segment_path(dir, cursor.seg);
        let mut file =
            match SegmentFile::open(path.clone(), is_last, cursor.offset, cursor.expect_seq)? {
                Opened::Ready(file) => file,
                Opened::Missing => {
                    if is_last {
                        return Ok(());
                    }
                    cursor.enter(segs[idx + 1]);
                    continue;
                }
                Opened::HeaderTorn => return Ok(()),
                Opened::HeaderBad(reason) => {
                    cursor.offset = SKIP_REST;
                    return Err(StreamError::Corrupt {
                        path,
                        offset: 0,
                        reason,
                    });
                }
                Opened::Shrunk => {
                    // Records this reader had passed were cut off (a damaged final record): find
                    // the position again by sequence number.
                    if cursor.skip == Skip::None {
                        cursor.skip = Skip::UpToSequence(cursor.expect_seq.saturating_sub(1));
                    }
                    let seg = cursor.seg;
                    cursor.enter(seg);
                    continue;
                }
            };
        cursor.offset = file.offset;
        while out.len() < max {
            match file.next()? {
                Step::Record(record) => {
                    cursor.offset = file.offset;
                    cursor.expect_seq = file.expect_seq;
                    if cursor.skip.admits(&record) {
                        cursor.skip = Skip::None;
                        out.push(record);
                    }
                }
                Step::End => {
                    if is_last {
                        return Ok(());
                    }
                    break;
                }
                Step::Torn => return Ok(()),
                Step::Corrupt { offset, reason } => {
                    cursor.offset = SKIP_REST;
                    return Err(StreamError::Corrupt {
                        path,
                        offset,
                        reason,
                    });
                }
            }
        }
        if out.len() >= max {
            return Ok(());
        }
        cursor.enter(segs[idx + 1]);
    }
    Ok(())
}

/// Reads a stream from a position; see the module docs.
#[derive(Debug)]
pub struct StreamReader {
    dir: PathBuf,
    cursor: Cursor,
    notifier: Arc<Notifier>,
    last_sequence: Option<u64>,
    /// A corruption found after some records were read; reported by the next call.
    pending_error: Option<StreamError>,
    poll_interval: Duration,
}

impl StreamReader {
    /// Up to `max` records available now (possibly none); never blocks on appends. After a
    /// `Corrupt` error the reader has skipped the rest of that segment: call again to go on.
    pub fn next_batch(&mut self, max: usize) -> Result<Vec<Record>, StreamError> {
        if let Some(error) = self.pending_error.take() {
            return Err(error);
        }
        let mut out = Vec::new();
        if max == 0 {
            return Ok(out);
        }
        let result = read_into(&self.dir, &mut self.cursor, max, &mut out);
        if let Some(record) = out.last() {
            self.last_sequence = Some(record.sequence);
        }
        match result {
            Ok(()) => Ok(out),
            Err(error) if out.is_empty() => Err(error),
            Err(error) => {
                // Return the good records first. A corruption is reported next time; an I/O
                // error will simply be met again (the position is just past `out`).
                if error.is_corruption() {
                    self.pending_error = Some(error);
                }
                Ok(out)
            }
        }
    }

    /// Blocks until new records may be available or `timeout` passes; true in the first case.
    /// Appends in this process wake it at once; appends by other processes are noticed by
    /// re-checking the disk every poll interval ([`POLL_INTERVAL`] by default).
    pub fn wait_for_more(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now().checked_add(timeout);
        // Read the generation before checking the disk so an append in between is not missed.
        let seen = self.notifier.generation();
        if self.pending_error.is_some() || self.available_on_disk() {
            return true;
        }
        loop {
            let slice = match deadline {
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return false;
                    }
                    (deadline - now).min(self.poll_interval)
                }
                None => self.poll_interval,
            };
            if self.notifier.wait_changed(seen, slice) || self.available_on_disk() {
                return true;
            }
        }
    }

    /// The last sequence number returned so far.
    pub fn last_sequence(&self) -> Option<u64> {
        self.last_sequence
    }

    /// How often [`wait_for_more`](Self::wait_for_more) re-checks the disk for appends by other
    /// processes (minimum 1 ms).
    pub fn set_poll_interval(&mut self, interval: Duration) {
        self.poll_interval = interval.max(Duration::from_millis(1));
    }

    /// True if the next `next_batch` would return a record or an error.
    fn available_on_disk(&self) -> bool {
        let mut cursor = self.cursor;
        let mut out = Vec::new();
        match read_into(&self.dir, &mut cursor, 1, &mut out) {
            Ok(()) => !out.is_empty(),
            Err(_) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::StreamOptions;
    use crate::stream::format::{RECORD_HEADER_LEN, SEGMENT_HEADER_LEN, encode_record};
    use crate::stream::test_support::*;
    use std::fs;

    #[test]
    fn start_positions_like_kinesis_iterators() {
        let tmp = tempfile::tempdir().expect("tempdir");
        // Two records per segment, so positions cross segment boundaries.
        let size = SEGMENT_HEADER_LEN + 2 * rec_len("k", 2);
        let stream = Stream::open(tmp.path(), opts(size)).expect("open");
        append_n(&stream, "k", "a", 3, 1_000); // 1..=3
        append_n(&stream, "k", "b", 3, 2_000); // 4..=6
        append_n(&stream, "k", "c", 3, 3_000); // 7..=9
        assert_eq!(seg_files(tmp.path()).len(), 5);

        let read = |from| read_all(&mut stream.reader(from).expect("reader"));
        assert_eq!(
            seqs(&read(StartAt::TrimHorizon)),
            (1..=9).collect::<Vec<_>>()
        );
        assert_eq!(
            seqs(&read(StartAt::AtTimestamp(2_000))),
            (4..=9).collect::<Vec<_>>()
        );
        assert_eq!(
            seqs(&read(StartAt::AtTimestamp(1_500))),
            (4..=9).collect::<Vec<_>>()
        );
        assert_eq!(
            seqs(&read(StartAt::AtTimestamp(0))),
            (1..=9).collect::<Vec<_>>()
        );
        assert_eq!(seqs(&read(StartAt::AtTimestamp(3_000))), vec![7, 8, 9]);
        assert_eq!(
            seqs(&read(StartAt::AfterSequence(0))),
            (1..=9).collect::<Vec<_>>()
        );
        assert_eq!(
            seqs(&read(StartAt::AfterSequence(2))),
            (3..=9).collect::<Vec<_>>()
        );
        assert_eq!(
            seqs(&read(StartAt::AfterSequence(5))),
            (6..=9).collect::<Vec<_>>()
        );
        assert_eq!(seqs(&read(StartAt::AfterSequence(9))), Vec::<u64>::new());
        assert_eq!(seqs(&read(StartAt::Latest)), Vec::<u64>::new());

        let mut latest = stream.reader(StartAt::Latest).expect("reader");
        let mut future = stream.reader(StartAt::AtTimestamp(5_000)).expect("reader");
        let mut after = stream.reader(StartAt::AfterSequence(9)).expect("reader");
        assert!(latest.next_batch(10).expect("batch").is_empty());
        assert!(future.next_batch(10).expect("batch").is_empty());
        append_n(&stream, "k", "d", 2, 4_000); // 10, 11
        append_n(&stream, "k", "e", 1, 5_000); // 12
        assert_eq!(seqs(&read_all(&mut latest)), vec![10, 11, 12]);
        assert_eq!(seqs(&read_all(&mut after)), vec![10, 11, 12]);
        assert_eq!(seqs(&read_all(&mut future)), vec![12]);
        assert_eq!(latest.last_sequence(), Some(12));
    }

    #[test]
    fn readers_on_an_empty_stream_see_the_first_records() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let stream = Stream::open(tmp.path(), StreamOptions::default()).expect("open");
        let mut readers: Vec<StreamReader> = [
            StartAt::TrimHorizon,
            StartAt::Latest,
            StartAt::AtTimestamp(0),
            StartAt::AfterSequence(0),
        ]
        .into_iter()
        .map(|from| stream.reader(from).expect("reader"))
        .collect();
        for reader in &mut readers {
            assert!(reader.next_batch(10).expect("batch").is_empty());
            assert_eq!(reader.last_sequence(), None);
        }
        append_n(&stream, "k", "a", 2, 10);
        for reader in &mut readers {
            assert_eq!(seqs(&read_all(reader)), vec![1, 2]);
        }
    }

    #[test]
    fn readers_never_return_a_partial_record() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let stream = Stream::open(tmp.path(), StreamOptions::default()).expect("open");
        append_n(&stream, "k", "a", 3, 1_000);
        let path = seg_files(tmp.path()).remove(0);
        let mut partial = Vec::new();
        encode_record(&mut partial, 4, 1_000, &rec("k", b"in flight"));
        append_raw(&path, &partial[..partial.len() - 3]);

        let mut reader = stream.reader(StartAt::TrimHorizon).expect("reader");
        assert_eq!(seqs(&read_all(&mut reader)), vec![1, 2, 3]);
        assert!(!reader.available_on_disk());
        let mut latest = stream.reader(StartAt::Latest).expect("reader");
        assert!(latest.next_batch(10).expect("batch").is_empty());

        // The next append (through another Stream, as another process would) cuts the torn
        // record and writes a real one in its place.
        let other = Stream::open(tmp.path(), StreamOptions::default()).expect("open");
        assert_eq!(append_n(&other, "k", "real", 1, 2_000), vec![4]);
        let got = reader.next_batch(10).expect("batch");
        assert_eq!(seqs(&got), vec![4]);
        assert_eq!(got[0].data, b"real0");
        assert_eq!(seqs(&latest.next_batch(10).expect("batch")), vec![4]);
    }

    #[test]
    fn corrupt_record_in_a_closed_segment_is_an_error_then_reading_goes_on() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let size = SEGMENT_HEADER_LEN + 3 * rec_len("k", 2);
        let stream = Stream::open(tmp.path(), opts(size)).expect("open");
        append_n(&stream, "k", "a", 9, 1_000); // segments 1, 4, 7
        let first = segment_path(tmp.path(), 1);
        let second_record = SEGMENT_HEADER_LEN + rec_len("k", 2);
        flip_byte(&first, second_record + RECORD_HEADER_LEN as u64 + 2); // its data

        let mut reader = stream.reader(StartAt::TrimHorizon).expect("reader");
        assert_eq!(seqs(&reader.next_batch(100).expect("batch")), vec![1]);
        let err = reader.next_batch(100).expect_err("corruption is reported");
        match &err {
            StreamError::Corrupt { path, offset, .. } => {
                assert_eq!(path, &first);
                assert_eq!(*offset, second_record);
            }
            other => panic!("unexpected error {other}"),
        }
        let message = err.to_string();
        assert!(message.contains("00000000000000000001.seg"), "{message}");
        assert!(
            message.contains(&format!("offset {second_record}")),
            "{message}"
        );
        assert!(message.contains("CRC"), "{message}");
        // The rest of the bad segment is skipped.
        assert_eq!(seqs(&read_all(&mut reader)), (4..=9).collect::<Vec<_>>());

        // A bad length field is an error too, never a panic or a huge allocation.
        let mut bytes = fs::read(&first).expect("read");
        let len_at = (SEGMENT_HEADER_LEN + 18) as usize;
        bytes[len_at..len_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        fs::write(&first, bytes).expect("write");
        let mut reader = stream.reader(StartAt::TrimHorizon).expect("reader");
        let err = reader.next_batch(100).expect_err("bad length");
        assert!(
            err.is_corruption() && err.to_string().contains("byte offset 8"),
            "{err}"
        );
        assert_eq!(seqs(&read_all(&mut reader)), (4..=9).collect::<Vec<_>>());
        assert_eq!(stream.stats().expect("stats").last_sequence, Some(9));
        // Retention still works around it.
        assert_eq!(stream.enforce_retention(10_000, 1).expect("retention"), 2);
    }
}
