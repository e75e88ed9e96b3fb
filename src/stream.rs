//! An append-only, segmented, on-disk log that stands in for a Kinesis data stream.
//!
//! A stream is a directory. It holds segment files named by the sequence number of their first
//! record (`00000000000000000001.seg`) and a `lock` file. Records get sequence numbers that are
//! strictly increasing, starting at 1, and an arrival timestamp (ms since the Unix epoch).
//!
//! # On-disk format (version 1, all integers little-endian)
//!
//! ```text
//! segment = header record*
//! header  = "IOTALOG" (7 bytes) + format version (1 byte, = 1)
//! record  = sequence u64 | arrival_ms i64 | key_len u16 | data_len u32   (22-byte record header)
//!           | partition key (key_len bytes, UTF-8) | data (data_len bytes)
//!           | crc32 u32 over the record header + key + data
//! ```
//!
//! Within a segment, sequence numbers are consecutive and the first one equals the file name.
//! Partition keys are limited to [`MAX_PARTITION_KEY_BYTES`] bytes and data to
//! [`MAX_DATA_BYTES`] bytes (the Kinesis limits).
//!
//! # Writers
//!
//! [`Stream::append`] holds an in-process mutex (so clones of a `Stream`, or one shared through
//! an `Arc`, append one at a time) and an exclusive [`File::lock`] on `<dir>/lock` (so several
//! processes, or several `Stream`s opened on the same directory, append one at a time). Under the
//! lock it re-reads the tail of the last segment from disk (another process may have appended;
//! only bytes past what this `Stream` already validated are scanned), writes every record of the
//! batch and then `fdatasync`s once (group commit): sequence numbers are returned only after
//! that. A segment is closed before a record would make it larger than
//! [`StreamOptions::segment_size_bytes`] (a record larger than that gets a segment of its own);
//! when a batch crosses into a new segment, the closed one is synced before the new one is
//! created, and the directory is synced before the batch is acknowledged.
//!
//! Arrival timestamps never go backwards: a batch's `arrival_ms` is raised to the previous
//! record's arrival if it is older (like Kinesis' server-assigned approximate arrival time). So
//! arrival order equals sequence order, which `AtTimestamp` readers and retention rely on.
//!
//! # Crash repair
//!
//! When a stream is opened, and whenever a writer takes the lock, the last segment is scanned.
//! A torn tail — a final record whose length runs past the end of the file, a final record
//! whose CRC (or sequence number) is wrong, or a zero-filled tail left by a crash — is cut off
//! (the file is truncated to the end of the last good record; nothing before it is lost).
//! Complete records of a batch whose `fdatasync` never returned may survive a crash; they were
//! not acknowledged, so callers must expect at-least-once delivery, as with Kinesis.
//!
//! A bad record with more data after it in the last segment is not a torn tail but corruption;
//! it is never cut off (that could lose good records). The next append instead closes that
//! segment and starts a new one whose first sequence number leaves a gap large enough that no
//! sequence number can repeat (sequence numbers stay strictly increasing; only there do they
//! skip).
//!
//! # Readers
//!
//! A [`StreamReader`] reads segment files directly, without any lock, and re-lists the
//! directory and re-reads file sizes on every [`StreamReader::next_batch`], so it sees records
//! appended by other processes. It returns only complete records whose CRC checks out; an
//! incomplete or torn record at the end of the last segment is simply "not there yet" (a writer
//! cuts it off before appending). A bad record anywhere else is reported once as
//! [`StreamError::Corrupt`] naming the segment file and byte offset; the reader then **skips the
//! rest of that segment** and continues with the next segment (records before the bad one are
//! returned first). Readers positioned in a segment deleted by retention continue from the
//! oldest remaining record.
//!
//! # Waiting for records
//!
//! [`StreamReader::wait_for_more`] blocks on a `Condvar` from a process-wide registry keyed by
//! the stream's canonical directory: every successful append through any [`Stream`] of this
//! process bumps a generation counter and wakes all waiters at once. Appends made by other
//! processes cannot signal it, so while waiting the reader also checks the disk every
//! [`POLL_INTERVAL`] (200 ms; adjustable per reader with
//! [`StreamReader::set_poll_interval`]) for a complete new record: records from other processes
//! are seen within about that interval, with no busy polling.

use std::collections::HashMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::time::{Duration, Instant};

/// Magic bytes at the start of every segment file.
pub const SEGMENT_MAGIC: [u8; 7] = *b"IOTALOG";
/// The segment format version this module reads and writes.
pub const FORMAT_VERSION: u8 = 1;
/// Longest partition key accepted, in bytes (Kinesis allows 256 characters).
pub const MAX_PARTITION_KEY_BYTES: usize = 256;
/// Largest record data accepted, in bytes (the classic Kinesis limit of 1 MiB).
pub const MAX_DATA_BYTES: usize = 1024 * 1024;
/// How often a waiting reader re-checks the disk for records appended by other processes.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// Default segment size (8 MiB).
pub const DEFAULT_SEGMENT_SIZE_BYTES: u64 = 8 * 1024 * 1024;

const SEGMENT_HEADER_LEN: u64 = 8;
const RECORD_HEADER_LEN: usize = 22;
const CRC_LEN: usize = 4;
/// Smallest possible record on disk (empty key and data).
const MIN_RECORD_LEN: u64 = (RECORD_HEADER_LEN + CRC_LEN) as u64;
const LOCK_FILE_NAME: &str = "lock";
const SEGMENT_SUFFIX: &str = ".seg";
const SEGMENT_NAME_DIGITS: usize = 20;
/// Reader offset meaning "the rest of this segment is skipped".
const SKIP_REST: u64 = u64::MAX;
const READ_BUFFER_BYTES: usize = 64 * 1024;

// ---------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------

/// Options of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamOptions {
    /// A segment is closed before a record would make it larger than this.
    pub segment_size_bytes: u64,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions {
            segment_size_bytes: DEFAULT_SEGMENT_SIZE_BYTES,
        }
    }
}

/// A record to append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewRecord<'a> {
    pub partition_key: &'a str,
    pub data: &'a [u8],
}

/// A record read from a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub sequence: u64,
    /// Arrival time, ms since the Unix epoch.
    pub arrival_ms: i64,
    pub partition_key: String,
    pub data: Vec<u8>,
}

/// Where a reader starts, like the Kinesis shard iterator types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// The oldest retained record.
    TrimHorizon,
    /// Only records appended after the reader was created.
    Latest,
    /// The first record whose arrival time (ms since the Unix epoch) is at or after this.
    AtTimestamp(i64),
    /// The first record after this sequence number.
    AfterSequence(u64),
}

/// Numbers for the UI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamStats {
    pub first_sequence: Option<u64>,
    pub last_sequence: Option<u64>,
    pub segments: usize,
    /// Total size of the segment files.
    pub bytes: u64,
}

/// Errors of this module. Messages say what went wrong and where.
#[derive(Debug)]
pub enum StreamError {
    /// An I/O operation failed.
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// Bad data on disk: a record or segment header that cannot be trusted.
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    /// A record of a batch passed to [`Stream::append`] was rejected; nothing was written.
    InvalidRecord { index: usize, reason: String },
    /// The options passed to [`Stream::open`] are unusable.
    InvalidOptions { reason: String },
}

impl StreamError {
    /// True for bad data on disk (as opposed to an I/O failure or a rejected input).
    pub fn is_corruption(&self) -> bool {
        matches!(self, StreamError::Corrupt { .. })
    }
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamError::Io {
                action,
                path,
                source,
            } => write!(f, "cannot {action} {}: {source}", path.display()),
            StreamError::Corrupt {
                path,
                offset,
                reason,
            } => write!(
                f,
                "corrupt stream data in {} at byte offset {offset}: {reason}",
                path.display()
            ),
            StreamError::InvalidRecord { index, reason } => {
                write!(f, "record {index} of the batch was rejected: {reason}")
            }
            StreamError::InvalidOptions { reason } => {
                write!(f, "invalid stream options: {reason}")
            }
        }
    }
}

impl std::error::Error for StreamError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StreamError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StreamError {
    move |source| StreamError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

// ---------------------------------------------------------------------------------------------
// Wake-ups within this process
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Default)]
struct Notifier {
    generation: Mutex<u64>,
    cond: Condvar,
}

impl Notifier {
    fn generation(&self) -> u64 {
        *self
            .generation
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn notify(&self) {
        let mut generation = self
            .generation
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *generation = generation.wrapping_add(1);
        self.cond.notify_all();
    }

    /// Waits until the generation differs from `seen` or `timeout` passes; true if it changed.
    fn wait_changed(&self, seen: u64, timeout: Duration) -> bool {
        let generation = self
            .generation
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (generation, _) = self
            .cond
            .wait_timeout_while(generation, timeout, |g| *g == seen)
            .unwrap_or_else(PoisonError::into_inner);
        *generation != seen
    }
}

type Registry = Mutex<HashMap<PathBuf, Weak<Notifier>>>;

/// The notifier shared by every `Stream` and reader of this process on `canonical_dir`.
fn notifier_for(canonical_dir: &Path) -> Arc<Notifier> {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    let mut map = REGISTRY
        .get_or_init(Registry::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(existing) = map.get(canonical_dir).and_then(Weak::upgrade) {
        return existing;
    }
    map.retain(|_, weak| weak.strong_count() > 0);
    let notifier = Arc::new(Notifier::default());
    map.insert(canonical_dir.to_path_buf(), Arc::downgrade(&notifier));
    notifier
}

// ---------------------------------------------------------------------------------------------
// Stream
// ---------------------------------------------------------------------------------------------

/// A stream on disk. Cheap to clone; clones share the in-process append mutex.
#[derive(Debug, Clone)]
pub struct Stream {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    options: StreamOptions,
    notifier: Arc<Notifier>,
    writer: Mutex<WriterState>,
    /// Tail of the last segment as last seen by `stats` and `Latest` readers (read-only scans).
    read_tail: Mutex<Option<TailCache>>,
}

#[derive(Debug)]
struct WriterState {
    lock_file: File,
    lock_path: PathBuf,
    /// Tail of the last segment as validated under the lock by this `Stream`.
    tail: Option<TailCache>,
}

/// What is known to be valid in a segment: bytes `[0, end)` hold good records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TailCache {
    seg: u64,
    end: u64,
    next_seq: u64,
    last_arrival: Option<i64>,
}

/// Holds the in-process mutex and the cross-process file lock; releases both on drop.
struct WriterGuard<'a> {
    state: MutexGuard<'a, WriterState>,
}

impl Drop for WriterGuard<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.state.lock_file.unlock() {
            tracing::warn!(path = %self.state.lock_path.display(), error = %e, "cannot unlock stream lock file");
        }
    }
}

/// The segment a batch is written to.
struct ActiveSegment {
    seg: u64,
    path: PathBuf,
    file: File,
    /// Bytes on disk (records past this are in the write buffer).
    end: u64,
}

struct PreparedTail {
    /// The last segment, ready to append to; `None` when a new segment must be created.
    active: Option<ActiveSegment>,
    next_seq: u64,
    last_arrival: Option<i64>,
}

impl Stream {
    /// Opens the stream in `dir`, creating the directory if missing and repairing a torn tail.
    pub fn open(dir: &Path, options: StreamOptions) -> Result<Stream, StreamError> {
        if options.segment_size_bytes == 0 {
            return Err(StreamError::InvalidOptions {
                reason: "segment_size_bytes must be greater than 0".into(),
            });
        }
        fs::create_dir_all(dir).map_err(io_err("create stream directory", dir))?;
        let dir = fs::canonicalize(dir).map_err(io_err("resolve stream directory", dir))?;
        let lock_path = dir.join(LOCK_FILE_NAME);
        let lock_file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(io_err("open lock file", &lock_path))?;
        let stream = Stream {
            inner: Arc::new(Inner {
                notifier: notifier_for(&dir),
                dir,
                options,
                writer: Mutex::new(WriterState {
                    lock_file,
                    lock_path,
                    tail: None,
                }),
                read_tail: Mutex::new(None),
            }),
        };
        {
            let mut guard = stream.lock_writer()?;
            stream.prepare_tail(&mut guard.state)?;
        }
        Ok(stream)
    }

    /// The stream's directory (canonical).
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The options the stream was opened with.
    pub fn options(&self) -> StreamOptions {
        self.inner.options
    }

    /// Appends a batch; every record gets `arrival_ms` (raised to the previous record's arrival
    /// if older). Returns the sequence numbers, in batch order, once the batch is on disk
    /// (fsynced). An empty batch writes nothing. A rejected record rejects the whole batch.
    pub fn append(
        &self,
        records: &[NewRecord<'_>],
        arrival_ms: i64,
    ) -> Result<Vec<u64>, StreamError> {
        for (index, record) in records.iter().enumerate() {
            if record.partition_key.len() > MAX_PARTITION_KEY_BYTES {
                return Err(StreamError::InvalidRecord {
                    index,
                    reason: format!(
                        "partition key is {} bytes, more than the limit of {MAX_PARTITION_KEY_BYTES}",
                        record.partition_key.len()
                    ),
                });
            }
            if record.data.len() > MAX_DATA_BYTES {
                return Err(StreamError::InvalidRecord {
                    index,
                    reason: format!(
                        "data is {} bytes, more than the limit of {MAX_DATA_BYTES}",
                        record.data.len()
                    ),
                });
            }
        }
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let result = {
            let mut guard = self.lock_writer()?;
            let result = self.append_locked(&mut guard.state, records, arrival_ms);
            if result.is_err() {
                // The disk may hold part of the batch: rescan it next time.
                guard.state.tail = None;
            }
            result
        };
        if result.is_ok() {
            self.inner.notifier.notify();
        }
        result
    }

    /// Wakes every reader of this stream in this process that waits in
    /// [`StreamReader::wait_for_more`], as an append would (used to stop consumers at once).
    pub fn wake_readers(&self) {
        self.inner.notifier.notify();
    }

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

    /// First and last sequence number, number of segments and their total size.
    pub fn stats(&self) -> Result<StreamStats, StreamError> {
        let dir = &self.inner.dir;
        let segs = list_segments(dir)?;
        let mut stats = StreamStats::default();
        for &seg in &segs {
            let path = segment_path(dir, seg);
            match fs::metadata(&path) {
                Ok(meta) => {
                    stats.segments += 1;
                    stats.bytes += meta.len();
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("read metadata of segment", &path)(e)),
            }
        }
        for (i, &seg) in segs.iter().enumerate() {
            let path = segment_path(dir, seg);
            match SegmentFile::open(path, i + 1 == segs.len(), 0, seg)? {
                Opened::Ready(mut file) => match file.next()? {
                    Step::Record(record) => {
                        stats.first_sequence = Some(record.sequence);
                        break;
                    }
                    Step::Corrupt { .. } => {
                        // Unreadable, but this is where the segment's records start.
                        stats.first_sequence = Some(seg);
                        break;
                    }
                    Step::End | Step::Torn => {}
                },
                Opened::HeaderBad(_) => {
                    stats.first_sequence = Some(seg);
                    break;
                }
                Opened::Missing | Opened::HeaderTorn | Opened::Shrunk => {}
            }
        }
        if let Some((seg, scan)) = self.read_tail(&segs)? {
            if scan.next_seq > seg {
                stats.last_sequence = Some(scan.next_seq - 1);
            } else {
                // The last segment has no records yet (a crash right after it was created):
                // the last record is in an earlier segment.
                for &earlier in segs.iter().rev().skip(1) {
                    let scan = scan_segment(&segment_path(dir, earlier), false, 0, earlier, None)?;
                    if scan.next_seq > earlier {
                        stats.last_sequence = Some(scan.next_seq - 1);
                        break;
                    }
                }
            }
        }
        Ok(stats)
    }

    /// Deletes whole segments whose newest record arrived before `now_ms - retention_ms`; never
    /// the last (active) segment. Returns how many were deleted.
    pub fn enforce_retention(&self, now_ms: i64, retention_ms: i64) -> Result<usize, StreamError> {
        let cutoff = now_ms.saturating_sub(retention_ms);
        let dir = &self.inner.dir;
        // Under the writer lock, so no append rolls segments meanwhile and no other process
        // runs retention at the same time.
        let _guard = self.lock_writer()?;
        let segs = list_segments(dir)?;
        let mut deleted = 0;
        for (i, pair) in segs.windows(2).enumerate() {
            let (seg, next) = (pair[0], pair[1]);
            // A segment that starts within the retention period is kept, and so is every newer
            // one: no need to read it. (Without this check, the oldest segment was scanned
            // whole on every run, each minute, for as long as the stream was younger than the
            // retention period: tens of milliseconds of CPU for a 16 MiB segment.)
            if first_record(dir, seg, false)?.is_some_and(|r| r.arrival_ms >= cutoff) {
                break;
            }
            // Arrival times never decrease: if the next segment starts before the cutoff, all
            // of this one is older. Otherwise read this segment to find its newest record.
            let next_first = first_record(dir, next, i + 2 == segs.len())?;
            let old = match next_first {
                Some(record) if record.arrival_ms < cutoff => true,
                _ => {
                    let scan = scan_segment(&segment_path(dir, seg), false, 0, seg, None)?;
                    matches!(
                        (&scan.stop, scan.last_arrival),
                        (TailStop::Clean, Some(newest)) if newest < cutoff
                    )
                }
            };
            if !old {
                break;
            }
            let path = segment_path(dir, seg);
            match fs::remove_file(&path) {
                Ok(()) => {
                    deleted += 1;
                    tracing::debug!(path = %path.display(), "retention deleted segment");
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("delete segment", &path)(e)),
            }
        }
        if deleted > 0 {
            sync_dir(dir)?;
        }
        Ok(deleted)
    }

    fn lock_writer(&self) -> Result<WriterGuard<'_>, StreamError> {
        let state = match self.inner.writer.lock() {
            Ok(state) => state,
            Err(poisoned) => {
                let mut state = poisoned.into_inner();
                state.tail = None;
                state
            }
        };
        state
            .lock_file
            .lock()
            .map_err(io_err("lock", &state.lock_path))?;
        Ok(WriterGuard { state })
    }

    /// Re-reads the tail of the last segment under the lock and repairs a torn tail.
    fn prepare_tail(&self, state: &mut WriterState) -> Result<PreparedTail, StreamError> {
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

    fn append_locked(
        &self,
        state: &mut WriterState,
        records: &[NewRecord<'_>],
        arrival_ms: i64,
    ) -> Result<Vec<u64>, StreamError> {
        let dir = &self.inner.dir;
        let segment_size = self.inner.options.segment_size_bytes;
        let prepared = self.prepare_tail(state)?;
        let arrival = prepared
            .last_arrival
            .map_or(arrival_ms, |previous| arrival_ms.max(previous));
        let mut next_seq = prepared.next_seq;
        let mut buf = Vec::new();
        let mut created_segment = false;
        let mut active = match prepared.active {
            Some(active) => active,
            None => {
                created_segment = true;
                create_segment(dir, next_seq, &mut buf)?
            }
        };
        let mut sequences = Vec::with_capacity(records.len());
        for record in records {
            let size =
                (RECORD_HEADER_LEN + record.partition_key.len() + record.data.len() + CRC_LEN)
                    as u64;
            let active_len = active.end + buf.len() as u64;
            if active_len > SEGMENT_HEADER_LEN && active_len + size > segment_size {
                flush(&mut active, &mut buf)?;
                active
                    .file
                    .sync_data()
                    .map_err(io_err("sync", &active.path))?;
                active = create_segment(dir, next_seq, &mut buf)?;
                created_segment = true;
            }
            encode_record(&mut buf, next_seq, arrival, record);
            sequences.push(next_seq);
            next_seq = next_seq
                .checked_add(1)
                .ok_or_else(|| StreamError::Corrupt {
                    path: active.path.clone(),
                    offset: active.end,
                    reason: "sequence numbers exhausted".into(),
                })?;
        }
        flush(&mut active, &mut buf)?;
        active
            .file
            .sync_data()
            .map_err(io_err("sync", &active.path))?;
        if created_segment {
            sync_dir(dir)?;
        }
        state.tail = Some(TailCache {
            seg: active.seg,
            end: active.end,
            next_seq,
            last_arrival: Some(arrival),
        });
        Ok(sequences)
    }

    /// Scans the last segment read-only (no repair), continuing from what was seen before.
    fn read_tail(&self, segs: &[u64]) -> Result<Option<(u64, TailScan)>, StreamError> {
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

fn segment_header() -> [u8; SEGMENT_HEADER_LEN as usize] {
    let mut header = [0u8; SEGMENT_HEADER_LEN as usize];
    header[..SEGMENT_MAGIC.len()].copy_from_slice(&SEGMENT_MAGIC);
    header[SEGMENT_MAGIC.len()] = FORMAT_VERSION;
    header
}

fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!("{first_seq:0SEGMENT_NAME_DIGITS$}{SEGMENT_SUFFIX}"))
}

fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != SEGMENT_NAME_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|&seq| seq > 0)
}

/// Segment names (first sequence numbers), oldest first.
fn list_segments(dir: &Path) -> Result<Vec<u64>, StreamError> {
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

fn create_segment(
    dir: &Path,
    first_seq: u64,
    buf: &mut Vec<u8>,
) -> Result<ActiveSegment, StreamError> {
    let path = segment_path(dir, first_seq);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(io_err("create segment", &path))?;
    buf.clear();
    buf.extend_from_slice(&segment_header());
    Ok(ActiveSegment {
        seg: first_seq,
        path,
        file,
        end: 0,
    })
}

fn flush(active: &mut ActiveSegment, buf: &mut Vec<u8>) -> Result<(), StreamError> {
    if buf.is_empty() {
        return Ok(());
    }
    active
        .file
        .seek(SeekFrom::Start(active.end))
        .and_then(|_| active.file.write_all(buf))
        .map_err(io_err("write records to", &active.path))?;
    active.end += buf.len() as u64;
    buf.clear();
    Ok(())
}

fn encode_record(out: &mut Vec<u8>, seq: u64, arrival_ms: i64, record: &NewRecord<'_>) {
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

#[cfg(unix)]
fn sync_dir(dir: &Path) -> Result<(), StreamError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("sync directory", dir))
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> Result<(), StreamError> {
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Reading segment files
// ---------------------------------------------------------------------------------------------

enum Opened {
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

enum Step {
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
struct SegmentFile {
    path: PathBuf,
    reader: BufReader<File>,
    /// File size when opened; bytes past it are ignored until the next open.
    len: u64,
    offset: u64,
    expect_seq: u64,
    is_last: bool,
}

fn le_u64(bytes: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(a)
}

fn le_i64(bytes: &[u8]) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&bytes[..8]);
    i64::from_le_bytes(a)
}

fn le_u32(bytes: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&bytes[..4]);
    u32::from_le_bytes(a)
}

impl SegmentFile {
    /// Opens `path` at `offset` (0 = validate the header first) expecting `expect_seq` next.
    fn open(
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

    fn next(&mut self) -> Result<Step, StreamError> {
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

#[derive(Debug)]
enum TailStop {
    Clean,
    Torn,
    Corrupt { offset: u64, reason: String },
    HeaderTorn,
    HeaderBad(String),
}

#[derive(Debug)]
struct TailScan {
    /// File size when scanned.
    len: u64,
    /// End of the last good record (or of the header).
    end: u64,
    next_seq: u64,
    last_arrival: Option<i64>,
    stop: TailStop,
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
fn scan_segment(
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
fn first_record(dir: &Path, seg: u64, is_last: bool) -> Result<Option<Record>, StreamError> {
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

// ---------------------------------------------------------------------------------------------
// Reader
// ---------------------------------------------------------------------------------------------

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
    use std::process::{Command, Stdio};
    use std::sync::Barrier;
    use std::thread;

    fn opts(segment_size_bytes: u64) -> StreamOptions {
        StreamOptions { segment_size_bytes }
    }

    fn rec<'a>(key: &'a str, data: &'a [u8]) -> NewRecord<'a> {
        NewRecord {
            partition_key: key,
            data,
        }
    }

    /// Appends `n` records `key` / "<prefix><i>" in one batch.
    fn append_n(stream: &Stream, key: &str, prefix: &str, n: usize, arrival: i64) -> Vec<u64> {
        let data: Vec<Vec<u8>> = (0..n)
            .map(|i| format!("{prefix}{i}").into_bytes())
            .collect();
        let batch: Vec<NewRecord<'_>> = data.iter().map(|d| rec(key, d)).collect();
        stream.append(&batch, arrival).expect("append")
    }

    fn read_all(reader: &mut StreamReader) -> Vec<Record> {
        let mut all = Vec::new();
        loop {
            let batch = reader.next_batch(7).expect("next_batch");
            if batch.is_empty() {
                return all;
            }
            all.extend(batch);
        }
    }

    fn seqs(records: &[Record]) -> Vec<u64> {
        records.iter().map(|r| r.sequence).collect()
    }

    fn seg_files(dir: &Path) -> Vec<PathBuf> {
        list_segments(dir)
            .expect("list")
            .into_iter()
            .map(|s| segment_path(dir, s))
            .collect()
    }

    /// On-disk size of a record with this key and data.
    fn rec_len(key: &str, data_len: usize) -> u64 {
        (RECORD_HEADER_LEN + key.len() + data_len + CRC_LEN) as u64
    }

    fn flip_byte(path: &Path, offset: u64) {
        let mut bytes = fs::read(path).expect("read segment");
        bytes[offset as usize] ^= 0x55;
        fs::write(path, bytes).expect("write segment");
    }

    fn append_raw(path: &Path, bytes: &[u8]) {
        let mut f = OpenOptions::new().append(true).open(path).expect("open");
        f.write_all(bytes).expect("write");
    }

    #[test]
    fn stream_and_reader_are_send_and_stream_is_sync() {
        fn send<T: Send>() {}
        fn sync<T: Sync>() {}
        send::<Stream>();
        sync::<Stream>();
        send::<StreamReader>();
        send::<StreamError>();
    }

    #[test]
    fn appends_get_increasing_sequences_and_read_back_in_order() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("streams").join("readings");
        let stream = Stream::open(&dir, StreamOptions::default()).expect("open");
        assert_eq!(stream.stats().expect("stats"), StreamStats::default());
        assert_eq!(
            stream.append(&[], 1).expect("empty batch"),
            Vec::<u64>::new()
        );
        assert!(seg_files(&dir).is_empty(), "an empty batch creates nothing");

        assert_eq!(append_n(&stream, "aaaa", "x", 3, 1_000), vec![1, 2, 3]);
        assert_eq!(append_n(&stream, "bbbb", "y", 2, 2_000), vec![4, 5]);
        let single = stream.append(&[rec("cccc", b"")], 3_000).expect("append");
        assert_eq!(single, vec![6]);

        let mut reader = stream.reader(StartAt::TrimHorizon).expect("reader");
        let all = read_all(&mut reader);
        assert_eq!(seqs(&all), vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(all[0].partition_key, "aaaa");
        assert_eq!(all[0].data, b"x0");
        assert_eq!(all[0].arrival_ms, 1_000);
        assert_eq!(all[4].partition_key, "bbbb");
        assert_eq!(all[4].data, b"y1");
        assert_eq!(all[4].arrival_ms, 2_000);
        assert_eq!(all[5].data, b"");
        assert_eq!(reader.last_sequence(), Some(6));

        let stats = stream.stats().expect("stats");
        assert_eq!(stats.first_sequence, Some(1));
        assert_eq!(stats.last_sequence, Some(6));
        assert_eq!(stats.segments, 1);
        assert_eq!(
            stats.bytes,
            fs::metadata(&seg_files(&dir)[0]).expect("meta").len()
        );

        // Reopening continues the numbering.
        drop(stream);
        let stream = Stream::open(&dir, StreamOptions::default()).expect("reopen");
        assert_eq!(append_n(&stream, "aaaa", "z", 1, 4_000), vec![7]);
        assert_eq!(stream.stats().expect("stats").last_sequence, Some(7));
    }

    #[test]
    fn arrival_times_never_go_backwards() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let stream = Stream::open(tmp.path(), StreamOptions::default()).expect("open");
        append_n(&stream, "k", "a", 1, 5_000);
        append_n(&stream, "k", "b", 1, 4_000);
        append_n(&stream, "k", "c", 1, 6_000);
        let all = read_all(&mut stream.reader(StartAt::TrimHorizon).expect("reader"));
        let arrivals: Vec<i64> = all.iter().map(|r| r.arrival_ms).collect();
        assert_eq!(arrivals, vec![5_000, 5_000, 6_000]);
    }

    #[test]
    fn invalid_records_are_rejected_without_writing() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let stream = Stream::open(tmp.path(), StreamOptions::default()).expect("open");
        let long_key = "k".repeat(MAX_PARTITION_KEY_BYTES + 1);
        let err = stream
            .append(&[rec("ok", b"1"), rec(&long_key, b"2")], 1)
            .expect_err("long key");
        assert!(
            matches!(err, StreamError::InvalidRecord { index: 1, .. }),
            "{err}"
        );
        let big = vec![0u8; MAX_DATA_BYTES + 1];
        let err = stream.append(&[rec("k", &big)], 1).expect_err("big data");
        assert!(err.to_string().contains("data is"), "{err}");
        assert_eq!(stream.stats().expect("stats").last_sequence, None);
        let err = Stream::open(tmp.path(), opts(0)).expect_err("zero segment size");
        assert!(matches!(err, StreamError::InvalidOptions { .. }));
    }

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
    fn segments_roll_at_the_size_limit() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let size = 200;
        let stream = Stream::open(tmp.path(), opts(size)).expect("open");
        // 40 records of 22 + 4 + 10 + 4 = 40 bytes: 4 per segment (8 + 4 * 40 = 168).
        let data = [7u8; 10];
        let batch: Vec<NewRecord<'_>> = (0..40).map(|_| rec("dev1", &data)).collect();
        assert_eq!(
            stream.append(&batch[..15], 1).expect("append"),
            (1..=15).collect::<Vec<_>>()
        );
        assert_eq!(
            stream.append(&batch[15..], 2).expect("append"),
            (16..=40).collect::<Vec<_>>()
        );
        let files = seg_files(tmp.path());
        assert_eq!(files.len(), 10);
        let mut total = 0;
        for (i, path) in files.iter().enumerate() {
            let len = fs::metadata(path).expect("meta").len();
            assert!(len <= size, "{} is {len} bytes", path.display());
            total += len;
            let first = 1 + 4 * i as u64;
            assert_eq!(
                path.file_name()
                    .and_then(|n| n.to_str())
                    .and_then(parse_segment_name),
                Some(first)
            );
            let record = first_record(tmp.path(), first, i + 1 == files.len()).expect("read");
            assert_eq!(record.map(|r| r.sequence), Some(first));
        }
        let stats = stream.stats().expect("stats");
        assert_eq!((stats.segments, stats.bytes), (10, total));
        assert_eq!(
            (stats.first_sequence, stats.last_sequence),
            (Some(1), Some(40))
        );
        let all = read_all(&mut stream.reader(StartAt::TrimHorizon).expect("reader"));
        assert_eq!(seqs(&all), (1..=40).collect::<Vec<_>>());

        // A record bigger than a segment gets a segment of its own.
        let big = vec![1u8; 500];
        assert_eq!(
            stream
                .append(&[rec("k", &big), rec("k", b"s")], 3)
                .expect("append"),
            vec![41, 42]
        );
        let files = seg_files(tmp.path());
        assert_eq!(files.len(), 12);
        assert_eq!(
            fs::metadata(&files[10]).expect("meta").len(),
            SEGMENT_HEADER_LEN + rec_len("k", 500)
        );
    }

    #[test]
    fn retention_deletes_old_segments_but_not_the_active_one() {
        let tmp = tempfile::tempdir().expect("tempdir");
        // Three records per segment.
        let size = SEGMENT_HEADER_LEN + 3 * rec_len("k", 2);
        let stream = Stream::open(tmp.path(), opts(size)).expect("open");
        append_n(&stream, "k", "a", 6, 1_000); // segments 1 and 4
        append_n(&stream, "k", "b", 3, 5_000); // segment 7
        append_n(&stream, "k", "c", 2, 9_000); // segment 10 (active)
        assert_eq!(list_segments(tmp.path()).expect("list"), vec![1, 4, 7, 10]);

        let mut in_first = stream.reader(StartAt::TrimHorizon).expect("reader");
        assert_eq!(seqs(&in_first.next_batch(1).expect("batch")), vec![1]);
        let mut at_end_of_second = stream.reader(StartAt::TrimHorizon).expect("reader");
        assert_eq!(at_end_of_second.next_batch(6).expect("batch").len(), 6);
        let mut unresolved = stream.reader(StartAt::TrimHorizon).expect("reader");

        // Cutoff 4000: segments 1 and 4 hold only records from 1000.
        assert_eq!(
            stream.enforce_retention(10_000, 6_000).expect("retention"),
            2
        );
        assert_eq!(list_segments(tmp.path()).expect("list"), vec![7, 10]);
        let stats = stream.stats().expect("stats");
        assert_eq!(
            (stats.first_sequence, stats.last_sequence, stats.segments),
            (Some(7), Some(11), 2)
        );

        assert_eq!(seqs(&read_all(&mut in_first)), (7..=11).collect::<Vec<_>>());
        assert_eq!(
            seqs(&read_all(&mut at_end_of_second)),
            (7..=11).collect::<Vec<_>>()
        );
        assert_eq!(
            seqs(&read_all(&mut unresolved)),
            (7..=11).collect::<Vec<_>>()
        );

        // Everything is old now, but the active segment stays.
        assert_eq!(
            stream.enforce_retention(1_000_000, 1).expect("retention"),
            1
        );
        assert_eq!(
            stream.enforce_retention(1_000_000, 1).expect("retention"),
            0
        );
        assert_eq!(list_segments(tmp.path()).expect("list"), vec![10]);
        assert_eq!(append_n(&stream, "k", "d", 1, 1_000_001), vec![12]);
        let all = read_all(&mut stream.reader(StartAt::TrimHorizon).expect("reader"));
        assert_eq!(seqs(&all), vec![10, 11, 12]);
    }

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

    #[test]
    fn wait_for_more_wakes_on_an_in_process_append() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let stream = Stream::open(tmp.path(), StreamOptions::default()).expect("open");
        let mut reader = stream.reader(StartAt::Latest).expect("reader");
        // Disk polling would take an hour: only the in-process wake-up can end the wait early.
        reader.set_poll_interval(Duration::from_secs(3_600));
        assert!(reader.next_batch(10).expect("batch").is_empty());
        assert!(
            !reader.wait_for_more(Duration::from_millis(50)),
            "nothing appended yet"
        );

        let writer = stream.clone();
        let start = Arc::new(Barrier::new(2));
        let go = Arc::clone(&start);
        let handle = thread::spawn(move || {
            go.wait();
            writer.append(&[rec("k", b"hello")], 1).expect("append")
        });
        start.wait();
        let began = Instant::now();
        assert!(reader.wait_for_more(Duration::from_secs(60)));
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "woke late: {:?}",
            began.elapsed()
        );
        assert_eq!(handle.join().expect("writer thread"), vec![1]);
        let got = reader.next_batch(10).expect("batch");
        assert_eq!(seqs(&got), vec![1]);
        assert_eq!(got[0].data, b"hello");
        // Already-available records end the wait at once.
        append_n(&stream, "k", "x", 1, 2);
        assert!(reader.wait_for_more(Duration::from_secs(3_600)));
    }

    #[test]
    fn wait_for_more_sees_appends_of_another_stream_on_the_same_dir() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let a = Stream::open(tmp.path(), StreamOptions::default()).expect("open");
        let b = Stream::open(tmp.path(), StreamOptions::default()).expect("open");
        let mut reader = a.reader(StartAt::TrimHorizon).expect("reader");
        reader.set_poll_interval(Duration::from_secs(3_600));
        let handle = thread::spawn(move || append_n(&b, "k", "b", 3, 1));
        assert!(reader.wait_for_more(Duration::from_secs(60)));
        assert_eq!(handle.join().expect("thread"), vec![1, 2, 3]);
        assert_eq!(seqs(&read_all(&mut reader)), vec![1, 2, 3]);
    }

    #[test]
    fn concurrent_writers_in_one_process() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let shared = Arc::new(Stream::open(tmp.path(), opts(2_048)).expect("open"));
        const THREADS: usize = 4;
        const PER_THREAD: usize = 200;
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                // Half the threads share one Stream, the others open their own.
                let stream = if t % 2 == 0 {
                    Arc::clone(&shared)
                } else {
                    Arc::new(Stream::open(tmp.path(), opts(2_048)).expect("open"))
                };
                thread::spawn(move || {
                    let key = format!("t{t}");
                    for chunk in 0..PER_THREAD / 10 {
                        let data: Vec<Vec<u8>> = (0..10)
                            .map(|i| (chunk * 10 + i).to_string().into_bytes())
                            .collect();
                        let batch: Vec<NewRecord<'_>> = data.iter().map(|d| rec(&key, d)).collect();
                        let got = stream.append(&batch, 1).expect("append");
                        assert!(got.windows(2).all(|w| w[1] == w[0] + 1), "{got:?}");
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().expect("writer thread");
        }
        let all = read_all(&mut shared.reader(StartAt::TrimHorizon).expect("reader"));
        assert_eq!(
            seqs(&all),
            (1..=(THREADS * PER_THREAD) as u64).collect::<Vec<_>>()
        );
        for t in 0..THREADS {
            let key = format!("t{t}");
            let mine: Vec<String> = all
                .iter()
                .filter(|r| r.partition_key == key)
                .map(|r| String::from_utf8_lossy(&r.data).into_owned())
                .collect();
            let expected: Vec<String> = (0..PER_THREAD).map(|i| i.to_string()).collect();
            assert_eq!(mine, expected, "records of {key}");
        }
    }

    const CHILD_DIR_ENV: &str = "IOTAA_STREAM_TEST_WRITER_DIR";
    const CHILD_ID_ENV: &str = "IOTAA_STREAM_TEST_WRITER_ID";
    const CHILD_COUNT_ENV: &str = "IOTAA_STREAM_TEST_WRITER_COUNT";
    const PER_CHILD: usize = 2_000;
    const CHILD_BATCH: usize = 40;
    const TWO_PROCESS_SEGMENT_BYTES: u64 = 16 * 1024;

    /// The full libtest name of a test in this module.
    fn test_name(name: &str) -> String {
        let module = module_path!();
        let within_crate = module.split_once("::").map_or("", |(_, rest)| rest);
        format!("{within_crate}::{name}")
    }

    fn child_writer(dir: &str) {
        let id = std::env::var(CHILD_ID_ENV).expect("writer id");
        let count: usize = std::env::var(CHILD_COUNT_ENV)
            .expect("writer count")
            .parse()
            .expect("count is a number");
        let stream =
            Stream::open(Path::new(dir), opts(TWO_PROCESS_SEGMENT_BYTES)).expect("child open");
        let mut written = 0;
        while written < count {
            let n = CHILD_BATCH.min(count - written);
            let data: Vec<Vec<u8>> = (written..written + n)
                .map(|i| format!("{id}:{i}").into_bytes())
                .collect();
            let batch: Vec<NewRecord<'_>> = data.iter().map(|d| rec(&id, d)).collect();
            let got = stream
                .append(&batch, 1_000 + written as i64)
                .expect("child append");
            assert_eq!(got.len(), n);
            written += n;
        }
    }

    #[test]
    fn two_processes_append_concurrently() {
        if let Ok(dir) = std::env::var(CHILD_DIR_ENV) {
            child_writer(&dir);
            return;
        }
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("readings");
        let stream = Stream::open(&dir, opts(TWO_PROCESS_SEGMENT_BYTES)).expect("open");
        let mut follower = stream.reader(StartAt::TrimHorizon).expect("reader");
        let exe = std::env::current_exe().expect("test binary");
        let name = test_name("two_processes_append_concurrently");
        let mut children: Vec<_> = ["a", "b"]
            .iter()
            .map(|id| {
                Command::new(&exe)
                    .args(["--exact", &name, "--nocapture", "--test-threads=1"])
                    .env(CHILD_DIR_ENV, &dir)
                    .env(CHILD_ID_ENV, id)
                    .env(CHILD_COUNT_ENV, PER_CHILD.to_string())
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("spawn writer process")
            })
            .collect();

        // Follow the stream while the children write: their appends cannot wake this
        // process, so this exercises the disk re-check in wait_for_more.
        let total = 2 * PER_CHILD;
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut followed = Vec::new();
        loop {
            let exited = children
                .iter_mut()
                .all(|c| matches!(c.try_wait(), Ok(Some(_))));
            let batch = follower.next_batch(500).expect("follow");
            if !batch.is_empty() {
                followed.extend(batch);
                continue;
            }
            if followed.len() >= total || exited || Instant::now() > deadline {
                break;
            }
            follower.wait_for_more(Duration::from_secs(1));
        }
        for child in children {
            let output = child.wait_with_output().expect("wait for writer");
            assert!(
                output.status.success(),
                "writer process failed: {}\nstdout:\n{}\nstderr:\n{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }

        let all = read_all(&mut stream.reader(StartAt::TrimHorizon).expect("reader"));
        assert_eq!(followed, all, "the follower saw exactly what is on disk");
        assert_eq!(seqs(&all), (1..=total as u64).collect::<Vec<_>>());
        for id in ["a", "b"] {
            let mine: Vec<&[u8]> = all
                .iter()
                .filter(|r| r.partition_key == id)
                .map(|r| r.data.as_slice())
                .collect();
            let expected: Vec<Vec<u8>> = (0..PER_CHILD)
                .map(|i| format!("{id}:{i}").into_bytes())
                .collect();
            assert_eq!(mine.len(), PER_CHILD, "records of writer {id}");
            assert!(
                mine.iter().zip(&expected).all(|(a, b)| *a == b.as_slice()),
                "order of writer {id}"
            );
        }
        assert!(all.windows(2).all(|w| w[0].arrival_ms <= w[1].arrival_ms));
        let stats = stream.stats().expect("stats");
        assert_eq!(
            (stats.first_sequence, stats.last_sequence),
            (Some(1), Some(total as u64))
        );
        assert!(stats.segments > 1);
    }
}
