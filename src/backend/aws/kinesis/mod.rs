//! The pipeline's streams on AWS: Kinesis data streams behind the same [`Streams`] traits as
//! the local logs, so the producer, detector, alerts and tail stages run unchanged.
//!
//! - Writes are PutRecords, at most 500 records and 5 MiB a call; the entries a call reports
//!   failed (throttled, internal error) come back in [`PutOutcome::failed`] and
//!   [`crate::pipeline::put_all`] resends only those, with backoff and jitter.
//! - A reader follows every shard of a stream: it lists the shards, reads each with GetRecords
//!   no more than 3 times a second (readings) or once a second (anomalies) while records come
//!   (Kinesis allows 5 calls a second per shard, shared by every consumer: see
//!   [`READINGS_BUSY_POLL`]) and once a second when the shard is idle, renews an expired
//!   iterator from the last record it returned, backs off when throttled, and after a reshard
//!   reads the child shards once their parents are finished (so each device's readings stay in
//!   order).
//! - A reader's position is a token with the last sequence number of every shard
//!   ([`StreamReader::position`]); the detector checkpoints it like a local sequence number.
//! - The numbers a reader gives its records ([`StreamRecord::sequence`]) count from 1 in that
//!   reader: Kinesis sequence numbers are per shard and longer than 64 bits.
//!
//! The stages are threads; the SDK is async. Each call runs on a small tokio runtime owned by
//! [`KinesisStreams`] (`block_on` from the stage's thread).
//!
//! This module: the limits, errors and [`KinesisStreams`]; `writer`: PutRecords in chunks
//! with per-entry failures; `reader`: following every shard with GetRecords.

mod reader;
mod writer;

pub use reader::KinesisReader;
pub use writer::{KinesisWriter, chunks, failed_entries, put_in_runs};

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::error::ProvideErrorMetadata;
use aws_sdk_kinesis::primitives::{Blob, DateTime};
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ShardIteratorType};
use tokio::runtime::Handle;

use crate::pipeline::{
    PipelineError, PutOutcome, StartAt, StreamReader, StreamRecord, StreamRole, StreamWriter,
    Streams,
};

/// PutRecords limits: records and bytes (data plus partition keys) per call.
pub use iotaa_detector::batch::{PUT_MAX_BYTES, PUT_MAX_RECORDS};
/// GetRecords: at most 10,000 records a call.
const GET_MAX_RECORDS: usize = 10_000;
/// The least time between two GetRecords on one shard while it has records. Kinesis allows 5
/// a second per shard, shared by every consumer of the stream (the read budget, README "The
/// pipeline on AWS"): on the readings stream Firehose takes 1 and the detector's Lambda
/// mapping 1 (or the in-app detector 3, this), on the anomaly stream the alert function's
/// mapping 1 and each dashboard's tail and alerts consumer 1 each (this).
pub const READINGS_BUSY_POLL: Duration = Duration::from_millis(334);
pub const ANOMALY_BUSY_POLL: Duration = Duration::from_secs(1);
/// The time between two GetRecords on an idle shard.
pub const IDLE_POLL: Duration = Duration::from_secs(1);
/// How often a reader lists the shards again, to find shards added by a reshard that it has not
/// reached through a closed parent.
const RELIST_EVERY: Duration = Duration::from_secs(30);

/// An SDK error as one line: the service's code and message, or the error chain.
pub fn sdk_error<E>(what: &str, e: &aws_sdk_kinesis::error::SdkError<E>) -> PipelineError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    PipelineError::Stream(format!("{what}: {}", super::error_line(e)))
}

/// The error code of a service error (`ProvisionedThroughputExceededException`, …), if any.
fn code<E: ProvideErrorMetadata>(e: &aws_sdk_kinesis::error::SdkError<E>) -> Option<&str> {
    e.as_service_error().and_then(ProvideErrorMetadata::code)
}

/// Wakes readers waiting in [`StreamReader::wait_for_more`] (shutdown).
#[derive(Default)]
struct Waker {
    generation: Mutex<u64>,
    changed: Condvar,
}

impl Waker {
    fn wake(&self) {
        if let Ok(mut g) = self.generation.lock() {
            *g += 1;
        }
        self.changed.notify_all();
    }

    fn current(&self) -> u64 {
        self.generation.lock().map(|g| *g).unwrap_or(0)
    }

    /// Waits until woken after `seen` or `timeout` passes.
    fn wait(&self, seen: u64, timeout: Duration) {
        let Ok(g) = self.generation.lock() else {
            return;
        };
        let _ = self.changed.wait_timeout_while(g, timeout, |g| *g == seen);
    }
}

/// The readings and anomaly streams of a deployed stack.
pub struct KinesisStreams {
    client: Client,
    runtime: Handle,
    readings: String,
    anomalies: String,
    waker: Arc<Waker>,
}

impl KinesisStreams {
    /// Streams named `readings` and `anomalies` (from the stack's outputs); calls run on
    /// `runtime`.
    pub fn new(client: Client, runtime: Handle, readings: String, anomalies: String) -> Self {
        KinesisStreams {
            client,
            runtime,
            readings,
            anomalies,
            waker: Arc::default(),
        }
    }

    fn name(&self, role: StreamRole) -> &str {
        match role {
            StreamRole::Readings => &self.readings,
            StreamRole::Anomalies => &self.anomalies,
        }
    }

    /// A writer on `role`'s stream, as its concrete type (the Firehose tee wraps it).
    pub fn kinesis_writer(&self, role: StreamRole) -> KinesisWriter {
        KinesisWriter {
            client: self.client.clone(),
            runtime: self.runtime.clone(),
            stream: self.name(role).to_string(),
        }
    }

    /// A reader on `role`'s stream from `from`.
    pub fn kinesis_reader(&self, role: StreamRole, from: StartAt) -> KinesisReader {
        KinesisReader::new(
            self.client.clone(),
            self.runtime.clone(),
            self.name(role).to_string(),
            from,
            self.waker.clone(),
            match role {
                StreamRole::Readings => READINGS_BUSY_POLL,
                StreamRole::Anomalies => ANOMALY_BUSY_POLL,
            },
        )
    }
}

impl Streams for KinesisStreams {
    fn writer(&self, role: StreamRole) -> Result<Arc<dyn StreamWriter>, PipelineError> {
        Ok(Arc::new(self.kinesis_writer(role)))
    }

    fn reader(
        &self,
        role: StreamRole,
        from: StartAt,
    ) -> Result<Box<dyn StreamReader>, PipelineError> {
        if let StartAt::AfterSequence(n) = from {
            return Err(PipelineError::Stream(format!(
                "stream {}: position {n} is a local stream's record number, not a Kinesis position",
                self.name(role)
            )));
        }
        Ok(Box::new(self.kinesis_reader(role, from)))
    }

    /// Kinesis has no stream-wide record numbers: lag is not known this way.
    fn last_sequence(&self, _role: StreamRole) -> Option<u64> {
        None
    }

    fn wake_readers(&self) {
        self.waker.wake();
    }
}
