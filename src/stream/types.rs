//! The public data types of a stream: its options, records in and out, reader start
//! positions and statistics.

/// Default segment size (8 MiB).
pub const DEFAULT_SEGMENT_SIZE_BYTES: u64 = 8 * 1024 * 1024;

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
