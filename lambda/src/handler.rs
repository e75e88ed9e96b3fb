//! The invocations: Kinesis batches and Firehose transformations, and the models they keep.
//!
//! Rules (issue 12), per shard:
//! - A model in memory remembers `last`, the last sequence number whose reading updated it,
//!   and `stored_seen`, the position of the stored snapshot when this environment last read or
//!   wrote it. Each invocation reads the stored position (one S3 HEAD). When it is not
//!   `stored_seen`, another environment has had the shard meanwhile: the stored snapshot is
//!   loaded instead of the model in memory. A cold start loads it too; a shard with nothing
//!   stored starts from its parent's snapshot (after a reshard), else from an empty model.
//! - A record at or below `last` never updates the model again. If its score is still waiting
//!   to be stored (a partial failure before), that same score is put; otherwise it was stored,
//!   and it is skipped.
//! - Scores are put with PutRecords; entries that fail are resent (a few times, with backoff).
//!   When some are still not stored, the reply names the first of them in `batchItemFailures`:
//!   Lambda retries from it, and the records after it that were stored are not put again.
//! - A snapshot is saved only when every score up to `last` is stored, after an environment's
//!   first invocation and then at most every `snapshot_interval` (so at least that often while
//!   readings arrive), and only when it is ahead of the stored one: a stored snapshot never
//!   moves backwards. So a cold start never skips a reading whose score was not stored.
//! - A record that is not a reading is counted, logged (one line with its sequence number) and
//!   skipped: it never fails the batch.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use aws_lambda_events::encodings::Base64Data;
use aws_lambda_events::event::firehose::KinesisFirehoseEvent;
use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::event::streams::{KinesisBatchItemFailure, KinesisEventResponse};
use iotaa_detector::Detector;
use iotaa_detector::batch::{PUT_MAX_BYTES, PUT_MAX_RECORDS, chunks};
use iotaa_detector::records::Reading;
use serde::Serialize;

use crate::config::Config;
use crate::seq::SeqNo;

/// The calls the function makes. [`crate::aws::Clients`] makes them on AWS; the unit tests use
/// a fake.
pub trait Aws {
    /// The position stored with the snapshot under `key`; `None` when there is none.
    fn position(&self, key: &str) -> impl Future<Output = Result<Option<String>, String>> + Send;
    /// The snapshot under `key` and its position.
    fn load(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<(Vec<u8>, String)>, String>> + Send;
    /// Stores a snapshot under `key` with its position.
    fn save(
        &self,
        key: &str,
        bytes: Vec<u8>,
        position: &str,
    ) -> impl Future<Output = Result<(), String>> + Send;
    /// One PutRecords call on the anomaly stream (at most 500 entries, 5 MiB): the indexes of
    /// the entries that failed, or an error when the call failed whole.
    fn put_records(
        &self,
        records: &[(String, Vec<u8>)],
    ) -> impl Future<Output = Result<Vec<usize>, String>> + Send;
    /// The parent of `shard` in the stream `stream_arn`, when it has one (a reshard's child).
    fn parent_shard(
        &self,
        stream_arn: &str,
        shard: &str,
    ) -> impl Future<Output = Result<Option<String>, String>> + Send;
    /// Where `key` is, for messages (`s3://bucket/key`).
    fn location(&self, key: &str) -> String;
}

/// How many times a put of scores is tried, and the first pause between tries (doubled each
/// time). Lambda retries the rest of the batch after that.
pub const PUT_ATTEMPTS: u32 = 4;
pub const PUT_BACKOFF: Duration = Duration::from_millis(100);

/// One model and where it stands.
struct Model {
    detector: Detector,
    /// The last sequence number whose reading updated the model (Kinesis).
    last: Option<SeqNo>,
    /// Scores not yet stored on the anomaly stream, by sequence number: (key, record).
    pending: BTreeMap<SeqNo, (String, Vec<u8>)>,
    /// The stored snapshot's position when this environment last read or wrote it.
    stored_seen: Option<String>,
    /// When this environment last saved it; `None` until then, so a new environment saves
    /// after its first invocation (then at most every interval).
    saved_at: Option<Instant>,
}

/// What one invocation did, logged as one line.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub records: usize,
    pub scored: usize,
    /// Records that were not readings (skipped, logged).
    pub not_readings: usize,
    /// Records already in the model whose scores were stored before (a retried batch).
    pub already_stored: usize,
    pub put: usize,
    /// Scores still not stored after the retries.
    pub unstored: usize,
    pub snapshots_loaded: usize,
    pub snapshots_saved: usize,
    /// Scores above 0 of this invocation's readings, for the log.
    pub max_score: Option<String>,
}

/// The function's state across invocations of one execution environment.
pub struct Handler<A: Aws> {
    pub config: Config,
    pub aws: A,
    models: HashMap<String, Model>,
    /// The first pause between two tries of a put (tests shorten it).
    pub backoff: Duration,
    /// Log lines (one per skipped record or failure) go here; stdout in the function.
    pub log: fn(&str),
}

fn stdout_line(line: &str) {
    println!("{line}");
}

/// The Firehose reply: each record back, unchanged, with result `Ok` (the `metadata` block of
/// dynamic partitioning is left out: the stream does not use it).
#[derive(Debug, Serialize)]
pub struct FirehoseResponse {
    pub records: Vec<FirehoseResponseRecord>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FirehoseResponseRecord {
    pub record_id: String,
    pub result: &'static str,
    pub data: Base64Data,
}

impl<A: Aws> Handler<A> {
    pub fn new(config: Config, aws: A) -> Self {
        Handler {
            config,
            aws,
            models: HashMap::new(),
            backoff: PUT_BACKOFF,
            log: stdout_line,
        }
    }

    fn log(&self, line: &str) {
        (self.log)(line)
    }

    /// The state key of a Kinesis shard's model.
    pub fn shard_key(&self, shard: &str) -> String {
        format!("{}kinesis/{shard}", self.config.prefix)
    }

    /// The state key of a Firehose stream's model.
    pub fn firehose_key(&self, stream: &str) -> String {
        format!("{}firehose/{stream}", self.config.prefix)
    }

    /// Number of readings the model under `key` has scored (tests, bench).
    pub fn model_scored(&self, key: &str) -> Option<u64> {
        self.models.get(key).map(|m| m.detector.scored())
    }

    /// A Kinesis batch from the event source mapping.
    pub async fn kinesis(&mut self, event: KinesisEvent) -> (KinesisEventResponse, Summary) {
        let mut summary = Summary {
            records: event.records.len(),
            ..Summary::default()
        };
        // Records by shard, in the order given (one shard per batch with the mapping, but the
        // event shape allows more).
        let mut shards: Vec<(String, String, Vec<usize>)> = Vec::new();
        for (i, r) in event.records.iter().enumerate() {
            let shard = r
                .event_id
                .as_deref()
                .and_then(|id| id.split_once(':'))
                .map(|(s, _)| s.to_string())
                .unwrap_or_else(|| "shard-unknown".to_string());
            let arn = r.event_source_arn.clone().unwrap_or_default();
            match shards.iter_mut().find(|(s, _, _)| *s == shard) {
                Some((_, _, list)) => list.push(i),
                None => shards.push((shard, arn, vec![i])),
            }
        }
        let mut failures = Vec::new();
        for (shard, arn, indexes) in shards {
            let records: Vec<(String, &[u8])> = indexes
                .iter()
                .map(|&i| {
                    let k = &event.records[i].kinesis;
                    (k.sequence_number.clone(), k.data.0.as_slice())
                })
                .collect();
            if let Some(first_unstored) =
                self.shard_batch(&shard, &arn, &records, &mut summary).await
            {
                let mut failure = KinesisBatchItemFailure::default();
                failure.item_identifier = Some(first_unstored);
                failures.push(failure);
            }
        }
        let mut response = KinesisEventResponse::default();
        response.batch_item_failures = failures;
        (response, summary)
    }

    /// One shard's records: returns the sequence number Lambda should retry from, if any.
    async fn shard_batch(
        &mut self,
        shard: &str,
        stream_arn: &str,
        records: &[(String, &[u8])],
        summary: &mut Summary,
    ) -> Option<String> {
        let key = self.shard_key(shard);
        let first = records.first().map(|(s, _)| s.clone())?;
        if let Err(e) = self
            .ensure_model(&key, Some((stream_arn, shard)), summary)
            .await
        {
            self.log(&format!(
                "shard {shard}: cannot read the model state ({e}); the batch is retried from {first}"
            ));
            return Some(first);
        }
        let Some(model) = self.models.get_mut(&key) else {
            return Some(first);
        };
        // This batch's scores to put, in sequence order: held ones (a retry) are taken out of
        // `pending`, new ones go straight here; what is not stored goes back to `pending`.
        let mut to_put: Vec<(SeqNo, (String, Vec<u8>))> = Vec::with_capacity(records.len());
        let mut scores = Vec::with_capacity(records.len());
        let mut skipped_lines = Vec::new();
        for (seq_text, data) in records {
            let Some(seq) = SeqNo::parse(seq_text) else {
                summary.not_readings += 1;
                skipped_lines.push(format!(
                    "shard {shard}: record with sequence number {seq_text:?} skipped: expected decimal digits"
                ));
                continue;
            };
            if model.last.as_ref().is_some_and(|last| seq <= *last) {
                match model.pending.remove(&seq) {
                    Some(held) => to_put.push((seq, held)),
                    None => summary.already_stored += 1,
                }
                continue;
            }
            match Reading::decode(data) {
                Ok(reading) => {
                    let scored = model.detector.score(&reading);
                    scores.push(scored.anomaly_score);
                    summary.scored += 1;
                    let line = scored.encode();
                    to_put.push((seq.clone(), (scored.reading.device_id, line)));
                }
                Err(e) => {
                    summary.not_readings += 1;
                    skipped_lines.push(format!("shard {shard}: record {seq} skipped: {e}"));
                }
            }
            model.last = Some(seq);
        }
        for line in &skipped_lines {
            self.log(line);
        }
        note_max(summary, &scores);

        to_put.sort_by(|a, b| a.0.cmp(&b.0));
        to_put.dedup_by(|a, b| a.0 == b.0);
        let (seqs, entries): (Vec<SeqNo>, Vec<(String, Vec<u8>)>) = to_put.into_iter().unzip();
        let (stored, error) = self.put_all(&entries).await;
        summary.put += stored.iter().filter(|s| **s).count();
        let model = self.models.get_mut(&key)?;
        let mut first_unstored = None;
        for ((seq, entry), ok) in seqs.into_iter().zip(entries).zip(&stored) {
            if !*ok {
                if first_unstored.is_none() {
                    first_unstored = Some(seq.clone());
                }
                model.pending.insert(seq, entry);
            }
        }
        summary.unstored += stored.iter().filter(|s| !**s).count();
        if let Some(seq) = &first_unstored {
            self.log(&format!(
                "shard {shard}: {} score(s) not stored on {} ({}); the batch is retried from {seq}",
                summary.unstored,
                self.config.anomaly_stream,
                error.unwrap_or_default()
            ));
            return Some(seq.to_string());
        }
        self.maybe_save(&key, summary).await;
        None
    }

    /// A Firehose transformation: every record back unchanged, the readings scored and put.
    pub async fn firehose(&mut self, event: KinesisFirehoseEvent) -> (FirehoseResponse, Summary) {
        let mut summary = Summary {
            records: event.records.len(),
            ..Summary::default()
        };
        let stream = event
            .delivery_stream_arn
            .as_deref()
            .and_then(|arn| arn.rsplit_once('/'))
            .map(|(_, name)| name.to_string())
            .unwrap_or_else(|| "unknown".to_string());
        let key = self.firehose_key(&stream);
        let mut entries = Vec::new();
        match self.ensure_model(&key, None, &mut summary).await {
            Err(e) => self.log(&format!(
                "firehose {stream}: cannot read the model state ({e}); these {} records are delivered but not scored",
                event.records.len()
            )),
            Ok(()) => {
                let mut scores = Vec::new();
                let mut lines = Vec::new();
                if let Some(model) = self.models.get_mut(&key) {
                    for r in &event.records {
                        match Reading::decode(&r.data.0) {
                            Ok(reading) => {
                                let scored = model.detector.score(&reading);
                                scores.push(scored.anomaly_score);
                                summary.scored += 1;
                                entries.push((reading.device_id.clone(), scored.encode()));
                            }
                            Err(e) => {
                                summary.not_readings += 1;
                                lines.push(format!(
                                    "firehose {stream}: record {} skipped: {e}",
                                    r.record_id.as_deref().unwrap_or("?")
                                ));
                            }
                        }
                    }
                }
                for line in &lines {
                    self.log(line);
                }
                note_max(&mut summary, &scores);
            }
        }
        let (stored, error) = self.put_all(&entries).await;
        summary.put = stored.iter().filter(|s| **s).count();
        summary.unstored = stored.len() - summary.put;
        if summary.unstored > 0 {
            // Firehose would redeliver or divert the records if we failed the invocation, and
            // the lake must be exactly what was sent: the scores are lost, and said so.
            self.log(&format!(
                "firehose {stream}: {} score(s) not stored on {} ({}); the records are delivered unscored",
                summary.unstored,
                self.config.anomaly_stream,
                error.unwrap_or_default()
            ));
        } else {
            self.maybe_save(&key, &mut summary).await;
        }
        let records = event
            .records
            .into_iter()
            .map(|r| FirehoseResponseRecord {
                record_id: r.record_id.unwrap_or_default(),
                result: "Ok",
                data: r.data,
            })
            .collect();
        (FirehoseResponse { records }, summary)
    }

    /// Makes sure `self.models[key]` is the model to continue from (see the module's rules).
    async fn ensure_model(
        &mut self,
        key: &str,
        shard: Option<(&str, &str)>,
        summary: &mut Summary,
    ) -> Result<(), String> {
        let stored = self.aws.position(key).await?;
        if let Some(model) = self.models.get(key)
            && model.stored_seen == stored
        {
            return Ok(());
        }
        if let Some(model) = self.models.get(key) {
            self.log(&format!(
                "{key}: the stored snapshot is at {} but this environment last saw {}: another environment had the shard; loading it",
                stored.as_deref().unwrap_or("nothing"),
                model.stored_seen.as_deref().unwrap_or("nothing")
            ));
        }
        let mut source = key.to_string();
        if stored.is_none()
            && let Some((arn, shard)) = shard
            && !arn.is_empty()
        {
            match self.aws.parent_shard(arn, shard).await {
                Ok(Some(parent)) => source = self.shard_key(&parent),
                Ok(None) => {}
                Err(e) => self.log(&format!(
                    "{key}: cannot look up the parent shard ({e}); starting from an empty model"
                )),
            }
        }
        let loaded = if stored.is_some() || source != key {
            self.aws.load(&source).await?
        } else {
            None
        };
        let params = self.config.params;
        let (detector, last) = match loaded {
            None => (Detector::new(params).map_err(|e| e.to_string())?, None),
            Some((bytes, position)) => {
                let origin = self.aws.location(&source);
                match Detector::from_snapshot_bytes(&bytes, &params, Path::new(&origin)) {
                    Ok(d) => {
                        summary.snapshots_loaded += 1;
                        // A parent's position is a sequence number of another shard.
                        let last = if source == key {
                            SeqNo::parse(&position)
                        } else {
                            None
                        };
                        (d, last)
                    }
                    Err(e) => {
                        self.log(&format!("{e}; starting from an empty model"));
                        (Detector::new(params).map_err(|e| e.to_string())?, None)
                    }
                }
            }
        };
        self.models.insert(
            key.to_string(),
            Model {
                detector,
                last,
                pending: BTreeMap::new(),
                stored_seen: stored,
                saved_at: None,
            },
        );
        Ok(())
    }

    /// Saves the model under `key` when nothing is pending, the interval has passed and it is
    /// ahead of the stored snapshot.
    async fn maybe_save(&mut self, key: &str, summary: &mut Summary) {
        let interval = self.config.snapshot_interval;
        let Some(model) = self.models.get(key) else {
            return;
        };
        if !model.pending.is_empty() || model.saved_at.is_some_and(|t| t.elapsed() < interval) {
            return;
        }
        let position = match &model.last {
            Some(last) => last.to_string(),
            // Firehose: no sequence numbers; the count of readings the model has taken.
            None => model.detector.scored().to_string(),
        };
        let ahead = match model.stored_seen.as_deref().and_then(SeqNo::parse) {
            None => true,
            Some(stored) => SeqNo::parse(&position).is_some_and(|p| p > stored),
        };
        if !ahead {
            return;
        }
        let bytes = match model.detector.to_snapshot_bytes() {
            Ok(b) => b,
            Err(e) => {
                self.log(&format!("{key}: cannot encode the model: {e}"));
                return;
            }
        };
        match self.aws.save(key, bytes, &position).await {
            Ok(()) => {
                summary.snapshots_saved += 1;
                if let Some(model) = self.models.get_mut(key) {
                    model.stored_seen = Some(position);
                    model.saved_at = Some(Instant::now());
                }
            }
            Err(e) => self.log(&format!(
                "{key}: snapshot not saved ({e}); it is tried again next time"
            )),
        }
    }

    /// Puts `entries` in calls that fit PutRecords, resending failed entries up to
    /// [`PUT_ATTEMPTS`] times. Returns, per entry, whether it is stored, and the last error.
    async fn put_all(&self, entries: &[(String, Vec<u8>)]) -> (Vec<bool>, Option<String>) {
        let mut stored = vec![false; entries.len()];
        let mut last_error = None;
        let mut pause = self.backoff;
        for attempt in 0..PUT_ATTEMPTS {
            let todo: Vec<usize> = (0..entries.len()).filter(|&i| !stored[i]).collect();
            if todo.is_empty() {
                break;
            }
            if attempt > 0 {
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            // The first try sends `entries` as they are; a retry, the ones still not stored.
            let retry: Vec<(String, Vec<u8>)>;
            let batch: &[(String, Vec<u8>)] = if todo.len() == entries.len() {
                entries
            } else {
                retry = todo.iter().map(|&i| entries[i].clone()).collect();
                &retry
            };
            for run in chunks(batch, PUT_MAX_RECORDS, PUT_MAX_BYTES) {
                match self.aws.put_records(&batch[run.clone()]).await {
                    Ok(failed) => {
                        let mut failed_in_run = vec![false; run.len()];
                        for &j in &failed {
                            if let Some(f) = failed_in_run.get_mut(j) {
                                *f = true;
                            }
                        }
                        for (j, entry) in run.clone().enumerate() {
                            if !failed_in_run[j] {
                                stored[todo[entry]] = true;
                            }
                        }
                        if !failed.is_empty() {
                            last_error = Some(format!("{} entries failed", failed.len()));
                        }
                    }
                    Err(e) => last_error = Some(e),
                }
            }
        }
        (stored, last_error)
    }
}

fn note_max(summary: &mut Summary, scores: &[f64]) {
    let max = scores.iter().copied().fold(f64::NAN, f64::max);
    if max.is_finite() {
        summary.max_score = Some(format!("{max:.3}"));
    }
}

#[cfg(test)]
mod tests;
