//! The scoring stage, replacing Kinesis Data Analytics' RANDOM_CUT_FOREST: reads the readings
//! stream, scores each reading with the Random Cut Forest before adding it to the model, and
//! writes every scored reading to the anomaly stream.
//!
//! Beyond KDA the model survives restarts: it is saved every `snapshot_interval` and on stop,
//! then its stream position is checkpointed; on start both are restored. A missing, corrupt or
//! incompatible snapshot is reported and replaced by a fresh model (warm-up again), never a
//! crash. A crash between the snapshot and the checkpoint re-scores a few readings
//! (at-least-once on the anomaly stream). With no checkpoint the stage starts at the oldest
//! retained reading.

use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{
    Event, PipelineError, Reporter, ScoringProgress, Stage, StageState, Stall, StartAt, StopFlag,
    StreamRole, Streams, put_all, read_checkpoint, spawn_stage, write_checkpoint,
};
use crate::detector::{Detector, DetectorParams};
use crate::records::Reading;

#[derive(Debug, Clone)]
pub struct ScoringSettings {
    pub params: DetectorParams,
    pub snapshot: PathBuf,
    pub checkpoint: PathBuf,
    pub snapshot_interval: Duration,
}

pub fn spawn(
    streams: Arc<dyn Streams>,
    settings: ScoringSettings,
    report: Reporter,
    stop: StopFlag,
) -> std::io::Result<JoinHandle<()>> {
    spawn_stage(Stage::Scoring, report, move |report| {
        run(streams.as_ref(), &settings, report, &stop)
    })
}

/// Restores the model from its snapshot, or starts a fresh one and says why.
pub fn restore(s: &ScoringSettings, report: &Reporter) -> Result<(Detector, bool), PipelineError> {
    let fresh = || {
        Detector::new(s.params)
            .map_err(|e| PipelineError::Stream(format!("detector parameters: {e}")))
    };
    if !s.snapshot.exists() {
        return Ok((fresh()?, false));
    }
    match Detector::load(&s.snapshot, &s.params) {
        Ok(d) => Ok((d, true)),
        Err(e) => {
            report(Event::Problem {
                stage: Stage::Scoring,
                message: format!("{e}; starting a fresh model"),
            });
            Ok((fresh()?, false))
        }
    }
}

fn save(
    s: &ScoringSettings,
    detector: &Detector,
    position: Option<u64>,
) -> Result<(), PipelineError> {
    if let Some(dir) = s.snapshot.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| PipelineError::io(format!("create {}", dir.display()), e))?;
    }
    detector.save(&s.snapshot).map_err(|e| {
        PipelineError::Stream(format!("save model snapshot {}: {e}", s.snapshot.display()))
    })?;
    if let Some(seq) = position {
        write_checkpoint(&s.checkpoint, seq)
            .map_err(|e| PipelineError::io(format!("checkpoint {}", s.checkpoint.display()), e))?;
    }
    Ok(())
}

fn run(
    streams: &dyn Streams,
    s: &ScoringSettings,
    report: &Reporter,
    stop: &StopFlag,
) -> Result<(), PipelineError> {
    let (mut detector, restored) = restore(s, report)?;
    let checkpoint = read_checkpoint(&s.checkpoint);
    let from = match checkpoint {
        Some(seq) => StartAt::AfterSequence(seq),
        None => StartAt::TrimHorizon,
    };
    let mut reader = streams.reader(StreamRole::Readings, from.clone())?;
    let writer = streams.writer(StreamRole::Anomalies)?;
    let detail = format!(
        "{} model{}",
        if restored { "restored" } else { "fresh" },
        match from {
            StartAt::AfterSequence(seq) => format!(", after record {seq}"),
            _ => String::new(),
        }
    );
    report(Event::Stage {
        stage: Stage::Scoring,
        state: StageState::Running,
        detail: detail.clone(),
    });
    // Disk full or read-only: hold the position (nothing is read past what is unwritten) and
    // retry, reporting the stage blocked.
    let mut stall = Stall::new(Stage::Scoring, report, detail);
    let mut position = checkpoint;
    let mut scored = 0u64;
    let mut saved_at = Instant::now();
    let mut reported_at: Option<Instant> = None;
    let mut reported: Option<ScoringProgress> = None;
    let mut dirty = false;
    loop {
        let stopping = stop.is_stopped();
        let batch = super::next_batch(reader.as_mut(), 500, Stage::Scoring, report)?;
        let empty = batch.is_empty();
        let mut out = Vec::with_capacity(batch.len());
        for r in &batch {
            match Reading::decode(&r.data) {
                Ok(reading) => {
                    let s = detector.score(&reading);
                    out.push((reading.device_id, s.encode()));
                }
                Err(e) => report(Event::Problem {
                    stage: Stage::Scoring,
                    message: format!("readings stream record {}: {e}", r.sequence),
                }),
            }
        }
        if let Some(last) = batch.last() {
            scored += out.len() as u64;
            if !out.is_empty() {
                put_all(writer.as_ref(), out, stop, |_| {}, Some(&mut stall))?;
            }
            position = Some(last.sequence);
            dirty = true;
        }
        // Report what changed, at most every 250 ms while busy: an idle stage is silent.
        if reported_at.is_none_or(|t| t.elapsed() >= Duration::from_millis(250)) || empty {
            let newest = streams.last_sequence(StreamRole::Readings).unwrap_or(0);
            let state = ScoringProgress {
                scored,
                warming_up: detector.warm_up(),
                lag_records: newest.saturating_sub(position.unwrap_or(0)),
            };
            if reported != Some(state) {
                report(Event::Scoring(state));
                reported = Some(state);
                reported_at = Some(Instant::now());
            }
        }
        if dirty && (saved_at.elapsed() >= s.snapshot_interval || (stopping && empty)) {
            stall.retry(stop, || save(s, &detector, position))?;
            saved_at = Instant::now();
            dirty = false;
        }
        if stopping && empty {
            break;
        }
        if empty {
            reader.wait_for_more(super::IDLE_WAIT);
        }
    }
    report(Event::Stage {
        stage: Stage::Scoring,
        state: StageState::Stopped,
        detail: format!("{scored} readings scored; model saved"),
    });
    Ok(())
}
