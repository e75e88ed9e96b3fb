//! Statistics of a stream for the UI.

use std::fs;
use std::io;

use super::error::io_err;
use super::format::{list_segments, segment_path};
use super::repair::scan_segment;
use super::segment::{Opened, SegmentFile, Step};
use super::{Stream, StreamError, StreamStats};

impl Stream {
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
}
