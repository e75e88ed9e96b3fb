//! The detector stage, replacing Kinesis Data Analytics' RANDOM_CUT_FOREST: reads the readings
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
    DetectorProgress, Event, PipelineError, Reporter, Stage, StageState, Stall, StartAt, StopFlag,
    StreamReader, StreamRole, Streams, put_all, resume_from, save_position, spawn_stage,
};
use crate::detector::{Detector, DetectorParams};
use crate::records::Reading;

#[derive(Debug, Clone)]
pub struct DetectorSettings {
    pub params: DetectorParams,
    pub snapshot: PathBuf,
    pub checkpoint: PathBuf,
    pub snapshot_interval: Duration,
    /// Said in the stage's row after its state, e.g. what it scores when that is not the whole
    /// readings stream (`ingest = "firehose"`).
    pub note: Option<String>,
}

pub fn spawn(
    streams: Arc<dyn Streams>,
    settings: DetectorSettings,
    report: Reporter,
    stop: StopFlag,
) -> std::io::Result<JoinHandle<()>> {
    spawn_stage(Stage::Detector, report, move |report| {
        run(streams.as_ref(), &settings, report, &stop)
    })
}

/// Restores the model from its snapshot, or starts a fresh one and says why.
pub fn restore(s: &DetectorSettings, report: &Reporter) -> Result<(Detector, bool), PipelineError> {
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
                stage: Stage::Detector,
                message: format!("{e}; starting a fresh model"),
            });
            Ok((fresh()?, false))
        }
    }
}

fn save(
    s: &DetectorSettings,
    detector: &Detector,
    reader: &dyn StreamReader,
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
        save_position(&s.checkpoint, reader, seq)
            .map_err(|e| PipelineError::io(format!("checkpoint {}", s.checkpoint.display()), e))?;
    }
    Ok(())
}

fn run(
    streams: &dyn Streams,
    s: &DetectorSettings,
    report: &Reporter,
    stop: &StopFlag,
) -> Result<(), PipelineError> {
    let (mut detector, restored) = restore(s, report)?;
    let from = resume_from(&s.checkpoint, Stage::Detector, report, StartAt::TrimHorizon);
    let checkpoint = match from {
        StartAt::AfterSequence(seq) => Some(seq),
        _ => None,
    };
    let mut reader = streams.reader(StreamRole::Readings, from.clone())?;
    let writer = streams.writer(StreamRole::Anomalies)?;
    let detail = format!(
        "{} model{}{}",
        if restored { "restored" } else { "fresh" },
        match from {
            StartAt::AfterSequence(seq) => format!(", after record {seq}"),
            StartAt::Resume(_) => ", from its checkpoint".to_string(),
            _ => String::new(),
        },
        s.note
            .as_deref()
            .map(|n| format!("; {n}"))
            .unwrap_or_default()
    );
    report(Event::Stage {
        stage: Stage::Detector,
        state: StageState::Running,
        detail: detail.clone(),
    });
    // Disk full or read-only: hold the position (nothing is read past what is unwritten) and
    // retry, reporting the stage blocked.
    let mut stall = Stall::new(Stage::Detector, report, detail);
    let mut position = checkpoint;
    let mut scored = 0u64;
    let mut saved_at = Instant::now();
    let mut reported_at: Option<Instant> = None;
    let mut reported: Option<DetectorProgress> = None;
    let mut dirty = false;
    let mut stop_seen: Option<Instant> = None;
    // Where the readings stream ended when stop was asked (local streams number records).
    let mut drain_to: Option<u64> = None;
    let mut read_failures = crate::pipeline::ReadFailures::default();
    loop {
        let stopping = stop.is_stopped();
        if stopping && stop_seen.is_none() {
            stop_seen = Some(Instant::now());
            drain_to = streams.last_sequence(StreamRole::Readings);
        }
        let batch = super::next_batch(
            reader.as_mut(),
            500,
            Stage::Detector,
            report,
            &mut read_failures,
        );
        // Empty and nothing more to read now (a Kinesis reader may return nothing while it
        // waits for a shard's next read); once stopping, nothing more of what was there when
        // stop was asked.
        let empty = batch.is_empty() && reader.caught_up(stop_seen);
        let mut out = Vec::with_capacity(batch.len());
        for r in &batch {
            match Reading::decode(&r.data) {
                Ok(reading) => {
                    let s = detector.score(&reading);
                    out.push((reading.device_id, s.encode()));
                }
                Err(e) => report(Event::Problem {
                    stage: Stage::Detector,
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
            let newest = streams.last_sequence(StreamRole::Readings);
            let state = DetectorProgress {
                scored,
                warming_up: detector.warm_up(),
                lag_records: newest.map_or(0, |n| n.saturating_sub(position.unwrap_or(0))),
                lag_ms: if newest.is_none() {
                    reader.behind_ms()
                } else {
                    None
                },
            };
            if reported != Some(state) {
                report(Event::Detector(state));
                reported = Some(state);
                reported_at = Some(Instant::now());
            }
        }
        // Stopping: drain what was on the stream when stop was asked, not what other
        // producers add after it; where records have no numbers (Kinesis), for at most
        // DRAIN_LIMIT. The checkpoint says where the next start goes on.
        let drained = match drain_to {
            Some(target) => position.unwrap_or(0) >= target,
            None => stop_seen.is_some_and(|t| t.elapsed() >= super::DRAIN_LIMIT),
        };
        let finish = stopping && (empty || drained);
        if dirty && (saved_at.elapsed() >= s.snapshot_interval || finish) {
            stall.retry(stop, || save(s, &detector, reader.as_ref(), position))?;
            saved_at = Instant::now();
            dirty = false;
        }
        if finish {
            break;
        }
        if batch.is_empty() {
            reader.wait_for_more(super::IDLE_WAIT);
        }
    }
    report(Event::Stage {
        stage: Stage::Detector,
        state: StageState::Stopped,
        detail: format!("{scored} readings scored; model saved"),
    });
    Ok(())
}
