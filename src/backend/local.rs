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

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::config::{Compression, Loaded};
use crate::detector::DetectorParams;
use crate::pipeline::alerts::AlertSettings;
use crate::pipeline::delivery::DeliverySettings;
use crate::pipeline::producer::ProducerSettings;
use crate::pipeline::scoring::ScoringSettings;
use crate::pipeline::{
    PipelineError, PutOutcome, StartAt, StreamReader, StreamRecord, StreamRole, StreamWriter,
    Streams,
};
use crate::stream::{self, NewRecord, Stream, StreamOptions};

/// Where everything lives under the data directory.
#[derive(Debug, Clone)]
pub struct Layout {
    pub data_dir: PathBuf,
    pub readings_stream: String,
    pub anomaly_stream: String,
}

impl Layout {
    pub fn new(loaded: &Loaded) -> Self {
        Layout {
            data_dir: loaded.data_dir.clone(),
            readings_stream: loaded.config.local.readings_stream.clone(),
            anomaly_stream: loaded.config.local.anomaly_stream.clone(),
        }
    }

    pub fn stream_dir(&self, role: StreamRole) -> PathBuf {
        let name = match role {
            StreamRole::Readings => &self.readings_stream,
            StreamRole::Anomalies => &self.anomaly_stream,
        };
        self.data_dir.join("streams").join(name)
    }

    pub fn lake(&self) -> PathBuf {
        self.data_dir.join("lake")
    }

    pub fn checkpoint(&self, consumer: &str) -> PathBuf {
        self.data_dir.join("checkpoints").join(consumer)
    }

    pub fn snapshot(&self) -> PathBuf {
        self.data_dir.join("model").join("detector.snapshot")
    }

    pub fn alerts_log(&self) -> PathBuf {
        self.data_dir.join("alerts.log")
    }
}

/// The pipeline's two streams as on-disk logs.
pub struct LocalStreams {
    readings: Arc<Stream>,
    anomalies: Arc<Stream>,
    retention_ms: i64,
}

impl LocalStreams {
    /// Opens (creating when missing) both streams, repairing a torn tail.
    pub fn open(layout: &Layout, loaded: &Loaded) -> Result<Self, PipelineError> {
        let options = || StreamOptions {
            segment_size_bytes: u64::from(loaded.config.local.segment_size_mib) * 1024 * 1024,
        };
        let open = |role| {
            let dir = layout.stream_dir(role);
            Stream::open(&dir, options())
                .map(Arc::new)
                .map_err(|e| PipelineError::Stream(format!("open stream {}: {e}", dir.display())))
        };
        Ok(LocalStreams {
            readings: open(StreamRole::Readings)?,
            anomalies: open(StreamRole::Anomalies)?,
            retention_ms: i64::from(loaded.config.local.retention_hours) * 3_600_000,
        })
    }

    fn stream(&self, role: StreamRole) -> &Arc<Stream> {
        match role {
            StreamRole::Readings => &self.readings,
            StreamRole::Anomalies => &self.anomalies,
        }
    }

    pub fn stats(&self, role: StreamRole) -> Option<stream::StreamStats> {
        self.stream(role).stats().ok()
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
        Ok(Arc::new(LocalWriter(self.stream(role).clone())))
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
        self.stream(role)
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
        self.readings.wake_readers();
        self.anomalies.wake_readers();
    }

    fn last_sequence(&self, role: StreamRole) -> Option<u64> {
        self.stream(role).stats().ok()?.last_sequence
    }

    fn housekeeping(&self) -> Result<String, PipelineError> {
        let now = chrono::Utc::now().timestamp_millis();
        let mut deleted = 0;
        for role in [StreamRole::Readings, StreamRole::Anomalies] {
            deleted += self
                .stream(role)
                .enforce_retention(now, self.retention_ms)
                .map_err(|e| PipelineError::Stream(e.to_string()))?;
        }
        Ok(format!("retention: {deleted} old segments deleted"))
    }
}

/// Every stage the dashboard runs: the producer (paused unless `producer.autostart`), delivery,
/// scoring, alerts, and a tail of the anomaly stream from two minutes back, which fills the
/// Scores pane's sparkline at once.
pub fn dashboard_settings(
    layout: &Layout,
    loaded: &Loaded,
) -> crate::pipeline::run::PipelineSettings {
    crate::pipeline::run::PipelineSettings {
        producer: Some(producer_settings(loaded)),
        delivery: Some(delivery_settings(layout, loaded)),
        scoring: Some(scoring_settings(layout, loaded)),
        alerts: Some(alert_settings(layout, loaded)),
        tail: Some(crate::pipeline::StartAt::AtTimestamp(
            chrono::Utc::now().timestamp_millis() - 120_000,
        )),
    }
}

/// Settings for every stage from the config and the layout.
pub fn producer_settings(loaded: &Loaded) -> ProducerSettings {
    ProducerSettings::from_config(&loaded.config.producer, &loaded.config.spike)
}

pub fn detector_params(loaded: &Loaded) -> DetectorParams {
    let d = &loaded.config.detector;
    DetectorParams {
        trees: d.trees as usize,
        sample_size: d.sample_size as usize,
        time_decay: u64::from(d.time_decay),
        shingle_size: d.shingle_size as usize,
        per_device: d.per_device,
        explanation: d.explanation,
        random_seed: d.random_seed,
    }
}

pub fn scoring_settings(layout: &Layout, loaded: &Loaded) -> ScoringSettings {
    ScoringSettings {
        params: detector_params(loaded),
        snapshot: layout.snapshot(),
        checkpoint: layout.checkpoint("scoring"),
        snapshot_interval: Duration::from_secs(
            loaded.config.detector.snapshot_interval_secs.into(),
        ),
        note: (loaded.config.backend == crate::config::Backend::Aws
            && loaded.config.aws.ingest == crate::config::Ingest::Firehose)
            .then(|| "scores what this machine sends to Firehose".to_string()),
    }
}

pub fn delivery_settings(layout: &Layout, loaded: &Loaded) -> DeliverySettings {
    let d = &loaded.config.delivery;
    DeliverySettings {
        lake_dir: layout.lake(),
        prefix: d.prefix.clone(),
        stream_name: loaded.config.local.delivery_stream.clone(),
        interval: Duration::from_secs(d.buffer_interval_secs.into()),
        size_bytes: d.buffer_size_mib as usize * 1024 * 1024,
        gzip: d.compression == Compression::Gzip,
        checkpoint: layout.checkpoint("delivery"),
    }
}

pub fn alert_settings(layout: &Layout, loaded: &Loaded) -> AlertSettings {
    AlertSettings {
        threshold: loaded.config.alerts.threshold,
        log_path: layout.alerts_log(),
        webhook_url: loaded.config.alerts.webhook_url.clone(),
        checkpoint: layout.checkpoint("alerts"),
        webhook_timeout: Duration::from_secs(5),
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
