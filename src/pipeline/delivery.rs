//! Delivery to the lake, with Firehose's semantics: a consumer of the readings stream that
//! buffers records by size and interval and writes each buffer as one object at
//! `<lake>/<prefix>YYYY/MM/DD/HH/<stream>-1-YYYY-MM-DD-HH-MM-SS-<uuid>[.gz]` (UTC, the oldest
//! buffered record's arrival time; `.gz` with GZIP), the records exactly as sent.
//!
//! With `format = "parquet"` the buffer's readings become one Parquet object (`.parquet`, the
//! Glue table's columns, as Firehose's record format conversion writes them); records that are
//! not readings go, as sent, to `<lake>/<prefix>delivery-errors/format-conversion-failed/
//! YYYY/MM/DD/HH/<object name>` (where Firehose puts the records its conversion rejects),
//! written before the Parquet object.
//!
//! An object appears atomically (written under a dot-name in `<lake>/.staging/`, fsynced,
//! renamed into place). The stream position is checkpointed only after the object is durable,
//! so delivery is at-least-once: a crash between the two re-delivers that buffer, never loses
//! it. Stopping flushes what is buffered.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::{
    Event, PipelineError, Reporter, Stage, StageState, Stall, StartAt, StopFlag, StreamRole,
    Streams, resume_from, spawn_stage, write_checkpoint,
};

#[derive(Debug, Clone)]
pub struct DeliverySettings {
    pub lake_dir: PathBuf,
    pub prefix: String,
    /// Objects are named after the delivery stream, as Firehose does.
    pub stream_name: String,
    pub interval: Duration,
    pub size_bytes: usize,
    pub gzip: bool,
    /// Parquet objects instead of JSON lines (`gzip` does not apply): the encoder (the query
    /// engine's, given by the backend).
    pub parquet: Option<ParquetEncoder>,
    pub checkpoint: PathBuf,
}

/// Encodes a buffer (`data`, each record ending at one of `ends`) as one Parquet object; also
/// returns the records that are not readings, as sent, each ending in a newline.
pub type ParquetEncoder = fn(data: &[u8], ends: &[usize]) -> Result<(Vec<u8>, Vec<u8>), String>;

/// The object key for a buffer whose oldest record arrived at `at`, ending in `extension`
/// (`""`, `".gz"` or `".parquet"`).
pub fn object_key(prefix: &str, stream_name: &str, at: DateTime<Utc>, extension: &str) -> String {
    format!(
        "{prefix}{}/{}",
        at.format("%Y/%m/%d/%H"),
        object_name(stream_name, at, extension)
    )
}

/// The name of a new object (Firehose's: stream, version, time, a random uuid) without its
/// hour folder.
pub fn object_name(stream_name: &str, at: DateTime<Utc>, extension: &str) -> String {
    format!(
        "{stream_name}-1-{}-{}{extension}",
        at.format("%Y-%m-%d-%H-%M-%S"),
        uuid::Uuid::new_v4(),
    )
}

struct Buffer {
    data: Vec<u8>,
    /// Where each record ends in `data`.
    ends: Vec<usize>,
    records: u64,
    first_arrival_ms: i64,
    started: Instant,
    last_sequence: u64,
}

pub fn spawn(
    streams: Arc<dyn Streams>,
    settings: DeliverySettings,
    report: Reporter,
    stop: StopFlag,
) -> std::io::Result<JoinHandle<()>> {
    spawn_stage(Stage::Delivery, report, move |report| {
        run(streams.as_ref(), &settings, report, &stop)
    })
}

fn run(
    streams: &dyn Streams,
    s: &DeliverySettings,
    report: &Reporter,
    stop: &StopFlag,
) -> Result<(), PipelineError> {
    let from = resume_from(&s.checkpoint, Stage::Delivery, report, StartAt::TrimHorizon);
    let mut reader = streams.reader(StreamRole::Readings, from)?;
    let detail = format!(
        "every {} s or {} KiB{}",
        s.interval.as_secs(),
        s.size_bytes / 1024,
        if s.parquet.is_some() { ", Parquet" } else { "" }
    );
    report(Event::Stage {
        stage: Stage::Delivery,
        state: StageState::Running,
        detail: detail.clone(),
    });
    // A buffer that cannot be written (disk full, read-only lake) is kept and retried; nothing
    // more is read meanwhile, so the backlog waits on the stream, not in memory.
    let mut stall = Stall::new(Stage::Delivery, report, detail);
    let mut buffer: Option<Buffer> = None;
    let mut objects = 0u64;
    let mut read_failures = crate::pipeline::ReadFailures::default();
    loop {
        let stopping = stop.is_stopped();
        let batch = super::next_batch(
            reader.as_mut(),
            500,
            Stage::Delivery,
            report,
            &mut read_failures,
        );
        let empty = batch.is_empty();
        for r in batch {
            let b = buffer.get_or_insert_with(|| Buffer {
                data: Vec::new(),
                ends: Vec::new(),
                records: 0,
                first_arrival_ms: r.arrival_ms,
                started: Instant::now(),
                last_sequence: r.sequence,
            });
            b.data.extend_from_slice(&r.data);
            b.ends.push(b.data.len());
            b.records += 1;
            b.last_sequence = r.sequence;
            if b.data.len() >= s.size_bytes {
                flush(s, &mut buffer, &mut objects, report, &mut stall, stop)?;
            }
        }
        let due = buffer
            .as_ref()
            .is_some_and(|b| b.started.elapsed() >= s.interval);
        // On stop: drain what is on the stream now, then flush and leave.
        if due || (stopping && empty) {
            flush(s, &mut buffer, &mut objects, report, &mut stall, stop)?;
        }
        if stopping && empty {
            break;
        }
        if empty {
            let wait = buffer.as_ref().map_or(super::IDLE_WAIT, |b| {
                s.interval
                    .saturating_sub(b.started.elapsed())
                    .min(super::IDLE_WAIT)
            });
            reader.wait_for_more(wait);
        }
    }
    report(Event::Stage {
        stage: Stage::Delivery,
        state: StageState::Stopped,
        detail: format!("{objects} objects delivered"),
    });
    Ok(())
}

fn flush(
    s: &DeliverySettings,
    buffer: &mut Option<Buffer>,
    objects: &mut u64,
    report: &Reporter,
    stall: &mut Stall,
    stop: &StopFlag,
) -> Result<(), PipelineError> {
    let Some(b) = buffer.as_ref() else {
        return Ok(());
    };
    let at = DateTime::<Utc>::from_timestamp_millis(b.first_arrival_ms).unwrap_or_else(Utc::now);
    let (bytes, extension) = if let Some(encode) = s.parquet {
        let (bytes, rejected) = encode(&b.data, &b.ends)
            .map_err(|e| PipelineError::io("parquet", std::io::Error::other(e)))?;
        if !rejected.is_empty() {
            stall.retry(stop, || {
                let key = format!(
                    "{}delivery-errors/format-conversion-failed/{}",
                    s.prefix,
                    object_key("", &s.stream_name, at, "")
                );
                write_object(&s.lake_dir, &key, &rejected).map_err(|e| {
                    PipelineError::io(format!("write {}", s.lake_dir.join(&key).display()), e)
                })
            })?;
        }
        (bytes, ".parquet")
    } else if s.gzip {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let bytes = enc
            .write_all(&b.data)
            .and_then(|_| enc.finish())
            .map_err(|e| PipelineError::io("gzip", e))?;
        (bytes, ".gz")
    } else {
        (b.data.clone(), "")
    };
    let key = stall.retry(stop, || {
        let key = object_key(&s.prefix, &s.stream_name, at, extension);
        write_object(&s.lake_dir, &key, &bytes).map_err(|e| {
            PipelineError::io(format!("write {}", s.lake_dir.join(&key).display()), e)
        })?;
        Ok(key)
    })?;
    // The object is durable: from here on, a failure re-delivers it at worst.
    stall.retry(stop, || {
        write_checkpoint(&s.checkpoint, b.last_sequence)
            .map_err(|e| PipelineError::io(format!("checkpoint {}", s.checkpoint.display()), e))
    })?;
    *objects += 1;
    let lag_secs = (Utc::now().timestamp_millis() - b.first_arrival_ms).max(0) as f64 / 1000.0;
    report(Event::Delivered {
        objects: *objects,
        records: b.records,
        lag_secs,
        key,
    });
    *buffer = None;
    Ok(())
}

/// Writes the object under a temporary name in `<lake>/.staging/`, then renames it into
/// place: the object is never visible partly written.
fn write_object(lake: &Path, key: &str, bytes: &[u8]) -> std::io::Result<()> {
    crate::detector::durable::write_atomically_in(&lake.join(key), bytes, &lake.join(".staging"))
}
