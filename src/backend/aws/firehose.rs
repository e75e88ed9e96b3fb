//! `[aws] ingest = "firehose"`, the seed's topology: producers call Firehose PutRecordBatch on a
//! DirectPut delivery stream, which writes the lake. Nothing can read a DirectPut stream, so the
//! detector scores what this machine sends: every reading Firehose accepted is also appended to
//! a local log (`<data_dir>/aws/<stack>/streams/firehose-sent/`, safe for several processes, so
//! `iotaa spike` from another terminal is scored too), and the detector reads that log. The
//! anomaly stream is still Kinesis, read by the alert function and the tail. The dashboard says
//! so in the detector's row.
//!
//! PutRecordBatch takes at most 500 records and 4 MiB a call; entries the reply marks failed
//! (FailedPutCount) are resent alone, with backoff, like PutRecords.

use std::sync::Arc;

use aws_sdk_firehose::Client;
use aws_sdk_firehose::primitives::Blob;
use aws_sdk_firehose::types::Record;
use tokio::runtime::Handle;

use super::kinesis::{KinesisStreams, failed_entries, put_in_runs};
use crate::backend::local::LocalStreams;
use crate::pipeline::{
    PipelineError, PutOutcome, StartAt, StreamReader, StreamRole, StreamWriter, Streams,
};

/// PutRecordBatch limits.
pub const BATCH_MAX_RECORDS: usize = 500;
pub const BATCH_MAX_BYTES: usize = 4 * 1024 * 1024;

/// PutRecordBatch on one delivery stream.
#[derive(Clone)]
pub struct FirehoseWriter {
    client: Client,
    runtime: Handle,
    name: String,
}

impl FirehoseWriter {
    pub fn new(client: Client, runtime: Handle, name: String) -> Self {
        FirehoseWriter {
            client,
            runtime,
            name,
        }
    }

    async fn put_chunk(&self, records: &[(String, Vec<u8>)]) -> Result<Vec<usize>, PipelineError> {
        let entries = records
            .iter()
            .map(|(_, data)| {
                Record::builder()
                    .data(Blob::new(data.clone()))
                    .build()
                    .map_err(|e| PipelineError::Stream(format!("Firehose record: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = self
            .client
            .put_record_batch()
            .delivery_stream_name(&self.name)
            .set_records(Some(entries))
            .send()
            .await
            .map_err(|e| {
                PipelineError::Stream(format!(
                    "PutRecordBatch to {}: {}",
                    self.name,
                    super::error_line(&e)
                ))
            })?;
        if out.failed_put_count() == 0 {
            return Ok(Vec::new());
        }
        Ok(failed_entries(
            records.len(),
            out.request_responses()
                .iter()
                .map(|r| r.error_code().is_some()),
        ))
    }
}

impl StreamWriter for FirehoseWriter {
    fn put(&self, records: &[(String, Vec<u8>)]) -> Result<PutOutcome, PipelineError> {
        put_in_runs(records, BATCH_MAX_RECORDS, BATCH_MAX_BYTES, |run| {
            self.runtime.block_on(self.put_chunk(run))
        })
    }
}

/// Firehose for what producers send, plus the local log of it the detector reads.
struct Tee {
    firehose: FirehoseWriter,
    sent: Arc<dyn StreamWriter>,
}

impl StreamWriter for Tee {
    fn put(&self, records: &[(String, Vec<u8>)]) -> Result<PutOutcome, PipelineError> {
        let outcome = self.firehose.put(records)?;
        let mut ok = vec![true; records.len()];
        for &i in &outcome.failed {
            if let Some(x) = ok.get_mut(i) {
                *x = false;
            }
        }
        let accepted: Vec<(String, Vec<u8>)> = records
            .iter()
            .zip(ok)
            .filter(|(_, ok)| *ok)
            .map(|(r, _)| r.clone())
            .collect();
        if !accepted.is_empty() {
            // Firehose has them. If the local log cannot take them (disk full), the error fails
            // the whole put: the producer reports itself blocked and resends the batch
            // (duplicates in the lake, never a reading the detector misses).
            self.sent.put(&accepted)?;
        }
        Ok(outcome)
    }
}

/// The streams with `ingest = "firehose"`: readings go to Firehose and a local log; the
/// anomaly stream is Kinesis.
pub struct FirehoseIngest {
    tee: Arc<Tee>,
    local: Arc<LocalStreams>,
    kinesis: KinesisStreams,
}

impl FirehoseIngest {
    pub fn new(
        firehose: FirehoseWriter,
        local: LocalStreams,
        kinesis: KinesisStreams,
    ) -> Result<Self, PipelineError> {
        let local = Arc::new(local);
        let sent = local.writer(StreamRole::Readings)?;
        Ok(FirehoseIngest {
            tee: Arc::new(Tee { firehose, sent }),
            local,
            kinesis,
        })
    }
}

impl Streams for FirehoseIngest {
    fn writer(&self, role: StreamRole) -> Result<Arc<dyn StreamWriter>, PipelineError> {
        match role {
            StreamRole::Readings => Ok(self.tee.clone()),
            StreamRole::Anomalies => self.kinesis.writer(role),
        }
    }

    fn reader(
        &self,
        role: StreamRole,
        from: StartAt,
    ) -> Result<Box<dyn StreamReader>, PipelineError> {
        match role {
            StreamRole::Readings => self.local.reader(role, from),
            StreamRole::Anomalies => self.kinesis.reader(role, from),
        }
    }

    fn last_sequence(&self, role: StreamRole) -> Option<u64> {
        match role {
            StreamRole::Readings => self.local.last_sequence(role),
            StreamRole::Anomalies => None,
        }
    }

    fn wake_readers(&self) {
        self.local.wake_readers();
        self.kinesis.wake_readers();
    }

    fn housekeeping(&self) -> Result<String, PipelineError> {
        self.local.housekeeping()
    }
}
