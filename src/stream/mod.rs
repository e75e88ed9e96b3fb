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

#[cfg(doc)]
use std::fs::File;

mod error;
mod format;
mod notify;
mod reader;
mod repair;
mod retention;
mod segment;
mod stats;
mod types;
mod writer;

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;

pub use error::StreamError;
pub use format::{FORMAT_VERSION, MAX_DATA_BYTES, MAX_PARTITION_KEY_BYTES, SEGMENT_MAGIC};
pub use reader::{POLL_INTERVAL, StreamReader};
pub use types::{
    DEFAULT_SEGMENT_SIZE_BYTES, NewRecord, Record, StartAt, StreamOptions, StreamStats,
};
pub use writer::Stream;
