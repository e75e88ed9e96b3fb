//! The local backend: streams are on-disk logs under the data directory, the lake is a folder.
//!
//! ```text
//! <data_dir>/streams/<readings_stream>/   readings stream (segments + lock)
//! <data_dir>/streams/<anomaly_stream>/    anomaly stream
//! <data_dir>/lake/                        delivered objects, Firehose key layout
//! <data_dir>/checkpoints/{delivery,scoring,alerts}
//! <data_dir>/model/detector.snapshot      the detector's saved forest
//! <data_dir>/alerts.log                   one JSON line per alert
//! <data_dir>/logs/iotaa.log
//! ```

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::layout::Layout;
use crate::config::Loaded;
use crate::pipeline::{
    PipelineError, PutOutcome, StartAt, StreamReader, StreamRecord, StreamRole, StreamWriter,
    Streams,
};
use crate::stream::{self, NewRecord, Stream, StreamOptions};

/// The pipeline's two streams as on-disk logs.
pub struct LocalStreams {
    readings: Arc<Stream>,
    /// `None` for a log of readings only ([`LocalStreams::open_readings_only`]).
    anomalies: Option<Arc<Stream>>,
    retention_ms: i64,
}

fn open_stream(dir: &Path, loaded: &Loaded) -> Result<Arc<Stream>, PipelineError> {
    let options = StreamOptions {
        segment_size_bytes: u64::from(loaded.config.local.segment_size_mib) * 1024 * 1024,
    };
    Stream::open(dir, options)
        .map(Arc::new)
        .map_err(|e| PipelineError::Stream(format!("open stream {}: {e}", dir.display())))
}

impl LocalStreams {
    /// Opens (creating when missing) both streams, repairing a torn tail.
    pub fn open(layout: &Layout, loaded: &Loaded) -> Result<Self, PipelineError> {
        Ok(LocalStreams {
            readings: open_stream(&layout.stream_dir(StreamRole::Readings), loaded)?,
            anomalies: Some(open_stream(
                &layout.stream_dir(StreamRole::Anomalies),
                loaded,
            )?),
            retention_ms: i64::from(loaded.config.local.retention_hours) * 3_600_000,
        })
    }

    /// A log of readings only, in `dir` (what this machine sent to Firehose, for the detector).
    pub fn open_readings_only(dir: &Path, loaded: &Loaded) -> Result<Self, PipelineError> {
        Ok(LocalStreams {
            readings: open_stream(dir, loaded)?,
            anomalies: None,
            retention_ms: i64::from(loaded.config.local.retention_hours) * 3_600_000,
        })
    }

    fn stream(&self, role: StreamRole) -> Result<&Arc<Stream>, PipelineError> {
        match role {
            StreamRole::Readings => Ok(&self.readings),
            StreamRole::Anomalies => self
                .anomalies
                .as_ref()
                .ok_or_else(|| PipelineError::Stream("this local log holds readings only".into())),
        }
    }

    fn streams(&self) -> impl Iterator<Item = &Arc<Stream>> {
        std::iter::once(&self.readings).chain(&self.anomalies)
    }

    pub fn stats(&self, role: StreamRole) -> Option<stream::StreamStats> {
        self.stream(role).ok()?.stats().ok()
    }
}

/// How often a waiting reader checks the disk for appends by other processes.
const READER_POLL: Duration = Duration::from_secs(1);

struct LocalWriter(Arc<Stream>);

impl StreamWriter for LocalWriter {
    fn put(&self, records: &[(String, Vec<u8>)]) -> Result<PutOutcome, PipelineError> {
        let batch: Vec<NewRecord<'_>> = records
            .iter()
            .map(|(key, data)| NewRecord {
                partition_key: key,
                data,
            })
            .collect();
        self.0
            .append(&batch, chrono::Utc::now().timestamp_millis())
            .map(|_| PutOutcome::default())
            .map_err(|e| PipelineError::Stream(e.to_string()))
    }
}

struct LocalReader(stream::StreamReader);

impl StreamReader for LocalReader {
    fn next_batch(&mut self, max: usize) -> Result<Vec<StreamRecord>, PipelineError> {
        self.0
            .next_batch(max)
            .map(|records| {
                records
                    .into_iter()
                    .map(|r| StreamRecord {
                        sequence: r.sequence,
                        arrival_ms: r.arrival_ms,
                        data: r.data,
                    })
                    .collect()
            })
            .map_err(|e| {
                if e.is_corruption() {
                    PipelineError::Skipped(e.to_string())
                } else {
                    PipelineError::Stream(e.to_string())
                }
            })
    }

    fn wait_for_more(&mut self, timeout: Duration) -> bool {
        self.0.wait_for_more(timeout)
    }
}

impl Streams for LocalStreams {
    fn writer(&self, role: StreamRole) -> Result<Arc<dyn StreamWriter>, PipelineError> {
        Ok(Arc::new(LocalWriter(self.stream(role)?.clone())))
    }

    fn reader(
        &self,
        role: StreamRole,
        from: StartAt,
    ) -> Result<Box<dyn StreamReader>, PipelineError> {
        let from = match from {
            StartAt::TrimHorizon => stream::StartAt::TrimHorizon,
            StartAt::Latest => stream::StartAt::Latest,
            StartAt::AtTimestamp(ms) => stream::StartAt::AtTimestamp(ms),
            StartAt::AfterSequence(s) => stream::StartAt::AfterSequence(s),
            StartAt::Resume(token) => {
                return Err(PipelineError::Stream(format!(
                    "checkpoint {token:?} is not a local stream position (a record number)"
                )));
            }
        };
        self.stream(role)?
            .reader(from)
            .map(|mut r| {
                // Appends in this process wake the reader at once; this is how soon it sees
                // appends by other processes (`iotaa spike`, a second `produce`).
                r.set_poll_interval(READER_POLL);
                Box::new(LocalReader(r)) as Box<dyn StreamReader>
            })
            .map_err(|e| PipelineError::Stream(e.to_string()))
    }

    fn wake_readers(&self) {
        for s in self.streams() {
            s.wake_readers();
        }
    }

    fn last_sequence(&self, role: StreamRole) -> Option<u64> {
        self.stream(role).ok()?.stats().ok()?.last_sequence
    }

    fn housekeeping(&self) -> Result<String, PipelineError> {
        let now = chrono::Utc::now().timestamp_millis();
        let mut deleted = 0;
        for s in self.streams() {
            deleted += s
                .enforce_retention(now, self.retention_ms)
                .map_err(|e| PipelineError::Stream(e.to_string()))?;
        }
        Ok(format!("retention: {deleted} old segments deleted"))
    }
}

/// Size of a folder's files, recursively (for the Stack pane).
pub fn folder_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => folder_size(&e.path()),
            Ok(_) => e.metadata().map(|m| m.len()).unwrap_or(0),
            Err(_) => 0,
        })
        .sum()
}
