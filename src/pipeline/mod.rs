//! The pipeline's stages and the small traits they talk through.
//!
//! ```text
//! producer ─► readings stream ─┬─► delivery ─► lake
//!                              └─► scoring (RCF) ─► anomaly stream ─┬─► tail ─► Scores pane
//!                                                                   └─► alerts ─► alerts.log, webhook
//! ```
//!
//! Every stage is a worker thread that owns its state and reports [`Event`]s through a
//! [`Reporter`]; the dashboard turns them into actions, headless commands print them. Streams
//! are reached only through [`Streams`], [`StreamWriter`] and [`StreamReader`], which the local
//! backend implements over on-disk logs and the AWS backend over Kinesis, so nothing here knows
//! which backend runs.

pub mod alerts;
pub mod delivery;
pub mod detector;
mod event;
pub mod producer;
pub mod run;
pub mod tail;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub use event::{DetectorProgress, Event, Level, ProducerCounts, Stage, StageState};

/// Where a reader starts, as Kinesis' shard iterator types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartAt {
    TrimHorizon,
    Latest,
    /// Arrival time, milliseconds since the Unix epoch.
    AtTimestamp(i64),
    AfterSequence(u64),
    /// A position a reader of this backend gave ([`StreamReader::position`]), saved in a
    /// checkpoint: Kinesis' last sequence number per shard.
    Resume(String),
}

/// One record read from a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamRecord {
    pub sequence: u64,
    pub arrival_ms: i64,
    pub data: Vec<u8>,
}

/// What happened to a batch put: which entries failed and may be resent.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PutOutcome {
    /// Indexes into the batch of entries that were not stored (throttled, internal failure).
    pub failed: Vec<usize>,
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The whole request failed; nothing in it was stored.
    #[error("{0}")]
    Stream(String),
    /// A reader met data it cannot trust (a record failing its checksum) and skipped past it;
    /// reading again goes on after it.
    #[error("{0}")]
    Skipped(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl PipelineError {
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        PipelineError::Io {
            what: what.into(),
            source,
        }
    }
}

/// Puts batches of records on one stream (Kinesis PutRecords or a local log append).
pub trait StreamWriter: Send + Sync {
    /// Stores `records` (partition key, data); entries listed in the outcome failed and may
    /// be resent. An `Err` means the whole batch failed.
    fn put(&self, records: &[(String, Vec<u8>)]) -> Result<PutOutcome, PipelineError>;
}

/// Reads one stream in order from a position.
pub trait StreamReader: Send {
    /// Records available now, at most `max`; empty when there are none.
    fn next_batch(&mut self, max: usize) -> Result<Vec<StreamRecord>, PipelineError>;
    /// Blocks until more records may be available or `timeout` passes.
    fn wait_for_more(&mut self, timeout: Duration) -> bool;
    /// The position after the last record returned, when the backend's positions are not the
    /// records' [`StreamRecord::sequence`] (Kinesis: a sequence number per shard). Saved in
    /// checkpoints and given back as [`StartAt::Resume`].
    fn position(&self) -> Option<String> {
        None
    }
    /// True when the last [`StreamReader::next_batch`] came back empty because the reader has
    /// everything there is, not because it had to wait (Kinesis: a shard not due for its next
    /// GetRecords, or throttled). With `since`, everything there was at that instant: a
    /// stopping stage passes the instant stop was asked and drains until this holds.
    fn caught_up(&self, _since: Option<std::time::Instant>) -> bool {
        true
    }
    /// Milliseconds behind the newest record, where the stream reports it (Kinesis); `None`
    /// where lag is counted in records instead ([`Streams::last_sequence`]).
    fn behind_ms(&self) -> Option<u64> {
        None
    }
}

/// How long an idle stage waits for records before it looks again. Appends in this process
/// wake it at once, and so does stopping the pipeline ([`Streams::wake_readers`]); the wait only
/// bounds how often an idle pipeline touches the disk (appends by other processes are seen
/// within the local reader's poll interval, 1 s).
pub const IDLE_WAIT: Duration = Duration::from_secs(1);

/// A stage's run of failed reads, for [`next_batch`].
#[derive(Debug, Default)]
pub struct ReadFailures {
    streak: u32,
}

/// The next batch from `reader`, at most `max`. Data the stream had to skip (a corrupt
/// record) is reported as a problem of `stage`, and reading goes on after it: one bad record
/// must not stop a stage. A read that fails (a service error after the SDK's own retries, a
/// dropped connection, a disk error) does not stop it either: the stage is shown blocked with
/// the error, waits with backoff (up to 2 s) and gets an empty batch, so its loop goes on (and
/// can stop); the next read that works shows it running again.
pub fn next_batch(
    reader: &mut dyn StreamReader,
    max: usize,
    stage: Stage,
    report: &Reporter,
    failures: &mut ReadFailures,
) -> Vec<StreamRecord> {
    loop {
        match reader.next_batch(max) {
            Err(PipelineError::Skipped(message)) => {
                tracing::error!(stage = stage.name(), "{message}");
                report(Event::Problem {
                    stage,
                    message: format!("{message}; skipped to the next segment"),
                });
            }
            Ok(batch) => {
                if failures.streak > 0 {
                    report(Event::Stage {
                        stage,
                        state: StageState::Running,
                        detail: format!(
                            "reading again after {} failed read{}",
                            failures.streak,
                            if failures.streak == 1 { "" } else { "s" }
                        ),
                    });
                    failures.streak = 0;
                }
                return batch;
            }
            Err(e) => {
                failures.streak = failures.streak.saturating_add(1);
                tracing::warn!(
                    stage = stage.name(),
                    "read failed ({}): {e}",
                    failures.streak
                );
                report(Event::Stage {
                    stage,
                    state: StageState::Blocked,
                    detail: format!("cannot read: {e}; retrying"),
                });
                std::thread::sleep(backoff(failures.streak));
                return Vec::new();
            }
        }
    }
}

/// The two streams of the pipeline, by role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamRole {
    Readings,
    Anomalies,
}

/// Opens writers and readers on the pipeline's streams.
pub trait Streams: Send + Sync {
    fn writer(&self, role: StreamRole) -> Result<Arc<dyn StreamWriter>, PipelineError>;
    fn reader(
        &self,
        role: StreamRole,
        from: StartAt,
    ) -> Result<Box<dyn StreamReader>, PipelineError>;
    /// Sequence number of the newest record, for lag figures.
    fn last_sequence(&self, role: StreamRole) -> Option<u64>;
    /// Wakes this process's readers waiting for records, so that stopped stages leave at once
    /// rather than at the end of their wait.
    fn wake_readers(&self) {}
    /// Periodic upkeep (local: retention). Returns a line for the log.
    fn housekeeping(&self) -> Result<String, PipelineError> {
        Ok(String::new())
    }
}

/// Where stages send their events.
pub type Reporter = Arc<dyn Fn(Event) + Send + Sync>;

/// Runs a stage on its own named thread; an error that ends it is reported as the stage
/// failing (with its one-line message), never lost.
pub fn spawn_stage(
    stage: Stage,
    report: Reporter,
    run: impl FnOnce(&Reporter) -> Result<(), PipelineError> + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(stage.name().into())
        .spawn(move || {
            if let Err(e) = run(&report) {
                report(Event::Stage {
                    stage,
                    state: StageState::Failed,
                    detail: e.to_string(),
                });
            }
        })
}

/// A stop flag shared by the stages of one pipeline.
#[derive(Debug, Clone, Default)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Tells the dashboard when a stage cannot write and when it can again.
///
/// The first failure of a run of failures reports the stage [`StageState::Blocked`] with the
/// error (once, not on every retry); the next success reports it `Running` again with its
/// usual detail and how long it was blocked. Used around every write a stage must not skip:
/// stream puts, lake objects, checkpoints, snapshots, alerts.log.
pub struct Stall {
    stage: Stage,
    report: Reporter,
    /// The stage's `Running` detail, restored on recovery.
    detail: String,
    since: Option<std::time::Instant>,
}

impl Stall {
    pub fn new(stage: Stage, report: &Reporter, detail: impl Into<String>) -> Self {
        Stall {
            stage,
            report: report.clone(),
            detail: detail.into(),
            since: None,
        }
    }

    /// The `Running` detail to restore after a recovery.
    pub fn set_detail(&mut self, detail: impl Into<String>) {
        self.detail = detail.into();
    }

    pub fn is_blocked(&self) -> bool {
        self.since.is_some()
    }

    /// A write failed; it will be retried.
    pub fn failed(&mut self, error: &PipelineError) {
        tracing::warn!(stage = self.stage.name(), "write failed, retrying: {error}");
        if self.since.is_none() {
            self.since = Some(std::time::Instant::now());
            (self.report)(Event::Stage {
                stage: self.stage,
                state: StageState::Blocked,
                detail: format!("{error}; holding what it has and retrying"),
            });
        }
    }

    /// A write succeeded.
    pub fn ok(&mut self) {
        if let Some(since) = self.since.take() {
            (self.report)(Event::Stage {
                stage: self.stage,
                state: StageState::Running,
                detail: format!(
                    "{} (resumed after {:.0} s blocked)",
                    self.detail,
                    since.elapsed().as_secs_f64()
                ),
            });
        }
    }

    /// Runs `op` until it succeeds, with backoff between attempts, or until `stop` is set
    /// (then the last error is returned: the caller's data was not written).
    pub fn retry<T>(
        &mut self,
        stop: &StopFlag,
        mut op: impl FnMut() -> Result<T, PipelineError>,
    ) -> Result<T, PipelineError> {
        let mut attempt: u32 = 0;
        loop {
            match op() {
                Ok(v) => {
                    self.ok();
                    return Ok(v);
                }
                Err(e) => {
                    self.failed(&e);
                    if stop.is_stopped() {
                        return Err(e);
                    }
                    attempt = attempt.saturating_add(1);
                    std::thread::sleep(backoff(attempt));
                }
            }
        }
    }
}

/// How long a stopping consumer of a stream without record numbers (Kinesis) keeps draining
/// before it checkpoints where it is and stops: records that other producers keep adding must
/// not hold up a quit. Local consumers drain to the record that was last when stop was asked.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(30);

/// How long a put keeps retrying after `stop` is set before it gives up on what is unsent.
pub const STOP_GRACE: Duration = Duration::from_secs(15);

/// Puts `batch` until every entry is stored, resending only failed entries with exponential
/// backoff and jitter. Throttling slows the caller; nothing is dropped unless `stop` has been
/// set for [`STOP_GRACE`] (then the unsent entries are returned as an error, and the caller
/// has not acknowledged or checkpointed them). A request that fails as a whole (disk full,
/// stream unreachable) is reported through `stall`, when given, as the stage blocking.
///
/// `on_retry(n)` is told of every resend of `n` entries; only the entries in
/// [`PutFailed::unsent`] were never confirmed stored.
pub fn put_all(
    writer: &dyn StreamWriter,
    batch: Vec<(String, Vec<u8>)>,
    stop: &StopFlag,
    mut on_retry: impl FnMut(usize),
    mut stall: Option<&mut Stall>,
) -> Result<(), PutFailed> {
    let mut pending = batch;
    let mut attempt: u32 = 0;
    let mut stopped_at: Option<std::time::Instant> = None;
    loop {
        let result = writer.put(&pending);
        if stop.is_stopped() && stopped_at.is_none() {
            stopped_at = Some(std::time::Instant::now());
        }
        let give_up = stopped_at.is_some_and(|t| t.elapsed() >= STOP_GRACE);
        if let Some(stall) = stall.as_deref_mut() {
            match &result {
                Ok(_) => stall.ok(),
                Err(e) => stall.failed(e),
            }
        }
        let failed = match result {
            Ok(outcome) if outcome.failed.is_empty() => return Ok(()),
            Ok(outcome) => outcome.failed,
            Err(error) if give_up => {
                return Err(PutFailed {
                    unsent: pending.len(),
                    error,
                });
            }
            Err(e) => {
                if stall.is_none() {
                    tracing::warn!("put failed, retrying: {e}");
                }
                (0..pending.len()).collect()
            }
        };
        if give_up {
            return Err(PutFailed {
                unsent: failed.len(),
                error: PipelineError::Stream(format!(
                    "{} records not stored after {} s of retries while stopping",
                    failed.len(),
                    STOP_GRACE.as_secs()
                )),
            });
        }
        on_retry(failed.len());
        let mut keep = vec![false; pending.len()];
        for i in failed {
            if let Some(k) = keep.get_mut(i) {
                *k = true;
            }
        }
        let mut keep = keep.into_iter();
        pending.retain(|_| keep.next().unwrap_or(false));
        attempt = attempt.saturating_add(1);
        std::thread::sleep(backoff(attempt));
    }
}

/// A put that gave up while stopping: how many of its entries were never confirmed stored
/// (the rest were stored, but the batch as a whole is not acknowledged), and why.
#[derive(Debug)]
pub struct PutFailed {
    pub unsent: usize,
    pub error: PipelineError,
}

impl std::fmt::Display for PutFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for PutFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl From<PutFailed> for PipelineError {
    fn from(p: PutFailed) -> PipelineError {
        p.error
    }
}

/// Exponential backoff with full jitter: up to 25 ms · 2^attempt, capped at 2 s.
pub fn backoff(attempt: u32) -> Duration {
    let cap_ms = (25u64 << attempt.min(7)).min(2_000);
    Duration::from_millis(rand::random_range(cap_ms / 2..=cap_ms))
}

/// Writes `bytes` to `path` so that readers see the old file or the whole new one, never a
/// part, creating the folder first ([`crate::detector::durable::write_atomically`]).
pub fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    crate::detector::durable::write_atomically(path, bytes)
}

/// A consumer's saved position, as [`save_position`] wrote it: a local record number
/// (`AfterSequence`) or a backend's position token (`Resume`: Kinesis' JSON map of shard to
/// sequence number). `Ok(None)` when there is no checkpoint (a first start); `Err` with one line
/// when there is one that cannot be used (unreadable, empty, or neither form).
pub fn read_position(path: &std::path::Path) -> Result<Option<StartAt>, String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read checkpoint {}: {e}", path.display())),
    };
    let text = String::from_utf8_lossy(&bytes);
    let text = text.trim();
    if let Ok(seq) = text.parse::<u64>() {
        return Ok(Some(StartAt::AfterSequence(seq)));
    }
    if serde_json::from_str::<std::collections::BTreeMap<String, String>>(text).is_ok() {
        return Ok(Some(StartAt::Resume(text.to_string())));
    }
    let shown: String = text.chars().take(40).collect();
    Err(format!(
        "checkpoint {} holds {shown:?}, which is neither a record number nor a Kinesis position",
        path.display()
    ))
}

/// Where a consumer resumes: its checkpoint, or `default` when it has none. A checkpoint that
/// cannot be used is reported once as a problem of `stage` (one line, saying where it starts
/// instead), never silently replaced.
pub fn resume_from(
    path: &std::path::Path,
    stage: Stage,
    report: &Reporter,
    default: StartAt,
) -> StartAt {
    match read_position(path) {
        Ok(Some(at)) => at,
        Ok(None) => default,
        Err(why) => {
            let instead = match default {
                StartAt::Latest => "the newest record",
                _ => "the oldest record",
            };
            report(Event::Problem {
                stage,
                message: format!("{why}; starting from {instead}"),
            });
            default
        }
    }
}

/// Saves a consumer's position after the record numbered `last` that `reader` returned.
pub fn save_position(
    path: &std::path::Path,
    reader: &dyn StreamReader,
    last: u64,
) -> std::io::Result<()> {
    match reader.position() {
        Some(token) => write_atomic(path, format!("{token}\n").as_bytes()),
        None => write_checkpoint(path, last),
    }
}

pub fn write_checkpoint(path: &std::path::Path, sequence: u64) -> std::io::Result<()> {
    write_atomic(path, format!("{sequence}\n").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake reader for `next_batch`: replies scripted, one per call.
    struct FakeReader(std::collections::VecDeque<Result<Vec<StreamRecord>, PipelineError>>);

    impl StreamReader for FakeReader {
        fn next_batch(&mut self, _max: usize) -> Result<Vec<StreamRecord>, PipelineError> {
            self.0.pop_front().unwrap_or(Ok(Vec::new()))
        }
        fn wait_for_more(&mut self, _timeout: Duration) -> bool {
            false
        }
    }

    #[test]
    fn a_failed_read_blocks_the_stage_and_the_next_good_one_runs_it_again() {
        let record = StreamRecord {
            sequence: 1,
            arrival_ms: 0,
            data: b"{}".to_vec(),
        };
        let mut reader = FakeReader(
            vec![
                Err(PipelineError::Stream("InternalFailure: try again".into())),
                Err(PipelineError::Stream("connection reset".into())),
                Ok(vec![record]),
            ]
            .into(),
        );
        let events = Arc::new(std::sync::Mutex::new(Vec::new()));
        let report: Reporter = {
            let events = events.clone();
            Arc::new(move |e| events.lock().unwrap().push(e))
        };
        let mut failures = ReadFailures::default();
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(next_batch(&mut reader, 10, Stage::Detector, &report, &mut failures).len());
        }
        assert_eq!(
            got,
            vec![0, 0, 1],
            "failed reads give empty batches, never an error"
        );
        let states: Vec<(StageState, String)> = events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Event::Stage { state, detail, .. } => Some((*state, detail.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(
            states,
            vec![
                (
                    StageState::Blocked,
                    "cannot read: InternalFailure: try again; retrying".to_string()
                ),
                (
                    StageState::Blocked,
                    "cannot read: connection reset; retrying".to_string()
                ),
                (
                    StageState::Running,
                    "reading again after 2 failed reads".to_string()
                ),
            ]
        );
    }

    #[test]
    fn checkpoints_resume_by_number_or_token_and_a_bad_one_is_one_warning() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("delivery");
        let problems = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = problems.clone();
        let report: Reporter = Arc::new(move |e| {
            if let Event::Problem { stage, message } = e {
                seen.lock().unwrap().push((stage, message));
            }
        });
        let resume = |default| resume_from(&path, Stage::Delivery, &report, default);

        // No checkpoint: the default, silently.
        assert_eq!(resume(StartAt::TrimHorizon), StartAt::TrimHorizon);
        write_checkpoint(&path, 41).unwrap();
        assert_eq!(resume(StartAt::TrimHorizon), StartAt::AfterSequence(41));
        let token = r#"{"shardId-000000000000":"4959"}"#;
        write_atomic(&path, format!("{token}\n").as_bytes()).unwrap();
        assert_eq!(resume(StartAt::Latest), StartAt::Resume(token.into()));
        assert!(problems.lock().unwrap().is_empty());

        // Damaged, empty, unreadable: one line each, naming the file, and the default.
        for (bytes, expect) in [
            (
                &b"12x\n"[..],
                "neither a record number nor a Kinesis position",
            ),
            (b"", "neither"),
            (b"\xff\xfe", "neither"),
        ] {
            std::fs::write(&path, bytes).unwrap();
            assert_eq!(resume(StartAt::TrimHorizon), StartAt::TrimHorizon);
            let (stage, line) = problems.lock().unwrap().pop().unwrap();
            assert_eq!(stage, Stage::Delivery);
            assert!(line.contains(expect) && line.contains("delivery"), "{line}");
            assert!(line.ends_with("starting from the oldest record"), "{line}");
            assert!(!line.contains('\n'), "{line}");
        }
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap();
        assert_eq!(resume(StartAt::Latest), StartAt::Latest);
        let (_, line) = problems.lock().unwrap().pop().unwrap();
        assert!(line.starts_with("cannot read checkpoint"), "{line}");
        assert!(line.ends_with("starting from the newest record"), "{line}");
    }
}
