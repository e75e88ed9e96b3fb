//! The producer: simulated devices sending readings to the readings stream.
//!
//! Seed behaviour by default: devices `aaaa`..`eeee`, one reading per device per second,
//! uniform integers in -5..=5. Readings go out in batches (≤ `batch_size`, at most 500 as
//! PutRecords allows) with the device id as partition key; failed entries are resent with
//! backoff, so throttling slows the producer and never drops a reading. The rate changes live
//! and the producer can pause; spikes are sent on request.
//!
//! With [`ProducerSettings::ack_log`] set, every reading whose batch put was acknowledged is
//! appended to that file as the exact JSON line sent (one write per batch, not fsynced: a
//! killed process keeps what it wrote). Opening the file cuts off a torn final line left by a
//! killed run, so lines from the next run never run into it. Crash tests use it to check that
//! nothing acknowledged is lost.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::Utc;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{
    Event, ProducerCounts, Reporter, Stage, StageState, Stall, StopFlag, StreamWriter, put_all,
};
use crate::records::{Reading, format_timestamp};

/// Highest rate `+` goes to, per device (readings/s).
pub const MAX_RATE_PER_DEVICE: f64 = 100_000.0;
/// Lowest rate `-` goes to, per device.
pub const MIN_RATE_PER_DEVICE: f64 = 0.01;

/// Commands to a running producer.
#[derive(Debug, Clone, PartialEq)]
pub enum Control {
    TogglePause,
    /// Multiply the rate (2.0 doubles, 0.5 halves), within the limits above.
    ScaleRate(f64),
    Spike {
        device: Option<String>,
        value: Option<i64>,
    },
}

#[derive(Debug, Clone)]
pub struct ProducerSettings {
    pub devices: Vec<String>,
    pub rate_per_device: f64,
    pub min_value: i64,
    pub max_value: i64,
    pub batch_size: usize,
    pub spike: SpikeSettings,
    pub start_paused: bool,
    /// Stop after sending this many readings (headless `produce --count`).
    pub limit: Option<u64>,
    /// Seed for values and device choice; `None` draws one.
    pub seed: Option<u64>,
    /// Append every acknowledged reading's JSON line here (headless `produce --ack-log`).
    pub ack_log: Option<PathBuf>,
    /// Highest rate per device the streams take ([`MAX_RATE_PER_DEVICE`] locally; Kinesis:
    /// 1,000 records/s per partition key, and the key is the device id).
    pub max_rate_per_device: f64,
}

/// What `a` (or `iotaa spike`) sends: a reading of `min_magnitude..=max_magnitude`, signed
/// by `direction`, from `device` (else a random one of the producer's devices).
#[derive(Debug, Clone, PartialEq)]
pub struct SpikeSettings {
    pub min_magnitude: i16,
    pub max_magnitude: i16,
    pub direction: SpikeDirection,
    pub device: Option<String>,
}

/// Which sign a spike has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpikeDirection {
    High,
    Low,
    Both,
}

/// A spike reading: the given or configured device (else a random one) and the given value
/// (else a random magnitude in the spike range, signed by its direction).
pub fn spike_reading(
    settings: &ProducerSettings,
    device: Option<String>,
    value: Option<i64>,
    rng: &mut impl Rng,
) -> Reading {
    let device = device
        .or_else(|| settings.spike.device.clone())
        .unwrap_or_else(|| settings.devices[rng.random_range(0..settings.devices.len())].clone());
    let value = value.unwrap_or_else(|| {
        let magnitude = i64::from(
            rng.random_range(settings.spike.min_magnitude..=settings.spike.max_magnitude),
        );
        let negative = match settings.spike.direction {
            SpikeDirection::High => false,
            SpikeDirection::Low => true,
            SpikeDirection::Both => rng.random_bool(0.5),
        };
        if negative { -magnitude } else { magnitude }
    });
    Reading {
        device_id: device,
        sensor_reading: value,
        reading_timestamp: format_timestamp(Utc::now()),
    }
}

/// Opens an acknowledgement log for appending, creating it if missing. A final line without
/// its `\n` (a write cut short by a kill) is cut off first: those readings were acknowledged
/// but their record is incomplete, and the next line must start on a line of its own.
pub fn open_ack_log(path: &Path) -> std::io::Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)?;
    let len = f.metadata()?.len();
    let mut end = len;
    // Scan back from the end, a block at a time, for the last newline. (Appends always go to
    // the end, so several producers logging to one file never overwrite each other's lines.)
    let mut block = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(block.len() as u64);
        let n = (end - start) as usize;
        f.seek(SeekFrom::Start(start))?;
        f.read_exact(&mut block[..n])?;
        match block[..n].iter().rposition(|&b| b == b'\n') {
            Some(i) => {
                end = start + i as u64 + 1;
                break;
            }
            None => end = start,
        }
    }
    if end != len {
        f.set_len(end)?;
    }
    f.seek(SeekFrom::End(0))?;
    Ok(f)
}

/// A running producer: send it [`Control`]s; it stops with the pipeline's stop flag.
pub struct ProducerHandle {
    control: Sender<Control>,
    thread: Option<JoinHandle<()>>,
}

impl ProducerHandle {
    pub fn sender(&self) -> Sender<Control> {
        self.control.clone()
    }

    pub fn join(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }
}

pub fn spawn(
    writer: Arc<dyn StreamWriter>,
    settings: ProducerSettings,
    report: Reporter,
    stop: StopFlag,
) -> std::io::Result<ProducerHandle> {
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("producer".into())
        .spawn(move || run(writer.as_ref(), settings, rx, &report, &stop))?;
    Ok(ProducerHandle {
        control: tx,
        thread: Some(thread),
    })
}

struct Producer<'a> {
    writer: &'a dyn StreamWriter,
    s: ProducerSettings,
    report: &'a Reporter,
    stop: &'a StopFlag,
    rng: StdRng,
    counts: ProducerCounts,
    /// Readings due but not yet sent (fractional).
    owed: f64,
    next_device: usize,
    /// Where acknowledged readings are logged (`ack_log`), once opened.
    ack: Option<File>,
    /// Reports the producer blocked while the readings stream refuses writes (disk full).
    stall: Stall,
}

impl Producer<'_> {
    /// Appends acknowledged lines to the ack log, if there is one; a failure is reported and
    /// the log is given up (it would no longer list every acknowledged reading).
    fn log_acked(&mut self, lines: &[u8]) {
        let Some(f) = self.ack.as_mut() else {
            return;
        };
        if let Err(e) = f.write_all(lines) {
            self.ack = None;
            (self.report)(Event::Problem {
                stage: Stage::Producer,
                message: format!(
                    "acknowledgement log {}: {e}; no longer logging",
                    self.s.ack_log.as_deref().unwrap_or(Path::new("")).display()
                ),
            });
        }
    }

    fn report_state(&mut self) {
        let detail = describe_rate(&self.s, self.counts.rate_per_device);
        self.stall.set_detail(detail.clone());
        if self.stall.is_blocked() {
            return;
        }
        (self.report)(Event::Stage {
            stage: Stage::Producer,
            state: if self.counts.paused {
                StageState::Paused
            } else {
                StageState::Running
            },
            detail,
        });
    }

    fn apply(&mut self, c: Control) {
        match c {
            Control::TogglePause => {
                self.counts.paused = !self.counts.paused;
                self.owed = 0.0;
                self.report_state();
            }
            Control::ScaleRate(f) => {
                self.counts.rate_per_device = (self.counts.rate_per_device * f)
                    .clamp(MIN_RATE_PER_DEVICE, self.s.max_rate_per_device);
                self.report_state();
            }
            Control::Spike { device, value } => {
                let reading = spike_reading(&self.s, device, value, &mut self.rng);
                let line = reading.encode();
                let bytes = line.len() as u64;
                self.counts.sent += 1;
                let mut retries = 0;
                let acked_line = self.ack.is_some().then(|| line.clone());
                let sent = put_all(
                    self.writer,
                    vec![(reading.device_id.clone(), line)],
                    self.stop,
                    |n| retries += n as u64,
                    Some(&mut self.stall),
                );
                self.counts.retries += retries;
                match sent {
                    Ok(()) => {
                        if let Some(l) = acked_line {
                            self.log_acked(&l);
                        }
                        self.counts.acknowledged += 1;
                        self.counts.bytes += bytes;
                        (self.report)(Event::Spike {
                            device: reading.device_id,
                            value: reading.sensor_reading,
                        });
                    }
                    Err(e) => {
                        self.counts.failed += 1;
                        (self.report)(Event::Problem {
                            stage: Stage::Producer,
                            message: format!("spike not sent: {e}"),
                        });
                    }
                }
            }
        }
    }

    /// Sends one batch of what is due (at most `batch_size`).
    fn send_due(&mut self) {
        let mut n = (self.owed.floor() as usize).min(self.s.batch_size);
        if let Some(limit) = self.s.limit {
            n = n.min(limit.saturating_sub(self.counts.sent) as usize);
        }
        if n == 0 {
            return;
        }
        let timestamp = format_timestamp(Utc::now());
        let mut batch = Vec::with_capacity(n);
        let mut bytes = 0u64;
        for _ in 0..n {
            let device = &self.s.devices[self.next_device % self.s.devices.len()];
            self.next_device = self.next_device.wrapping_add(1);
            let reading = Reading {
                device_id: device.clone(),
                sensor_reading: self.rng.random_range(self.s.min_value..=self.s.max_value),
                reading_timestamp: timestamp.clone(),
            };
            let line = reading.encode();
            bytes += line.len() as u64;
            batch.push((reading.device_id, line));
        }
        self.owed -= n as f64;
        self.counts.sent += n as u64;
        // The exact bytes sent, kept only when they are to be logged once acknowledged.
        let acked_lines: Option<Vec<u8>> = self.ack.is_some().then(|| {
            batch
                .iter()
                .map(|(_, l)| l.as_slice())
                .collect::<Vec<_>>()
                .concat()
        });
        let mut retries = 0u64;
        let sent = put_all(
            self.writer,
            batch,
            self.stop,
            |f| retries += f as u64,
            Some(&mut self.stall),
        );
        // Failed means never stored: a retried entry that a later attempt stored is a retry only.
        self.counts.retries += retries;
        if let Err(e) = &sent {
            self.counts.failed += e.unsent as u64;
        }
        match sent {
            Ok(()) => {
                if let Some(lines) = acked_lines {
                    self.log_acked(&lines);
                }
                self.counts.acknowledged += n as u64;
                self.counts.bytes += bytes;
            }
            Err(e) => (self.report)(Event::Problem {
                stage: Stage::Producer,
                message: format!("{n} readings not sent: {e}"),
            }),
        }
    }

    /// How long to sleep: until the next reading is due, at most 250 ms.
    fn wait(&self) -> Duration {
        if self.counts.paused {
            return Duration::from_millis(500);
        }
        let per_sec = self.counts.rate_per_device * self.s.devices.len().max(1) as f64;
        Duration::from_secs_f64(((1.0 - self.owed.fract()) / per_sec).clamp(0.001, 0.25))
    }
}

fn run(
    writer: &dyn StreamWriter,
    s: ProducerSettings,
    control: Receiver<Control>,
    report: &Reporter,
    stop: &StopFlag,
) {
    let rng = match s.seed {
        Some(seed) => StdRng::seed_from_u64(seed),
        None => StdRng::from_os_rng(),
    };
    let counts = ProducerCounts {
        rate_per_device: s.rate_per_device,
        paused: s.start_paused,
        ..ProducerCounts::default()
    };
    let ack = match &s.ack_log {
        Some(path) => match open_ack_log(path) {
            Ok(f) => Some(f),
            Err(e) => {
                // Producing without the log it was asked for would make the log lie by omission
                // without saying so: stop instead.
                report(Event::Stage {
                    stage: Stage::Producer,
                    state: StageState::Failed,
                    detail: format!("acknowledgement log {}: {e}", path.display()),
                });
                return;
            }
        },
        None => None,
    };
    let mut p = Producer {
        writer,
        s,
        report,
        stop,
        rng,
        counts,
        owed: 0.0,
        next_device: 0,
        ack,
        stall: Stall::new(Stage::Producer, report, ""),
    };
    p.report_state();
    report(Event::Producer(p.counts));
    let devices = p.s.devices.len().max(1) as f64;
    let mut last = Instant::now();
    let mut last_report = Instant::now();
    let mut reported = p.counts;
    while !stop.is_stopped() {
        // Commands first, so `p` and `a` act at once even at high rates.
        while let Ok(c) = control.try_recv() {
            p.apply(c);
        }
        let now = Instant::now();
        if !p.counts.paused {
            p.owed += now.duration_since(last).as_secs_f64() * p.counts.rate_per_device * devices;
            // After a stall, catch up by at most a few batches rather than bursting forever.
            p.owed = p.owed.min((p.s.batch_size * 4) as f64);
        }
        last = now;
        p.send_due();
        if p.counts != reported && last_report.elapsed() >= Duration::from_millis(250) {
            report(Event::Producer(p.counts));
            reported = p.counts;
            last_report = Instant::now();
        }
        if p.s.limit.is_some_and(|l| p.counts.sent >= l) {
            break;
        }
        match control.recv_timeout(p.wait()) {
            Ok(c) => p.apply(c),
            Err(RecvTimeoutError::Timeout) => {}
            // Nobody can send commands any more; keep producing until stopped.
            Err(RecvTimeoutError::Disconnected) => std::thread::sleep(p.wait()),
        }
    }
    report(Event::Producer(p.counts));
    report(Event::Stage {
        stage: Stage::Producer,
        state: StageState::Stopped,
        detail: format!("{} readings sent", p.counts.sent),
    });
}

fn describe_rate(s: &ProducerSettings, rate_per_device: f64) -> String {
    let total = rate_per_device * s.devices.len() as f64;
    format!("{total} readings/s")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{PipelineError, PutOutcome};
    use std::sync::Mutex;

    /// A fake readings stream: every first attempt of a batch loses its first two entries
    /// (as a throttled PutRecords does); the resend stores them.
    #[derive(Default)]
    struct FakeFlakyWriter {
        calls: Mutex<u64>,
        stored: Mutex<u64>,
    }

    impl StreamWriter for FakeFlakyWriter {
        fn put(&self, records: &[(String, Vec<u8>)]) -> Result<PutOutcome, PipelineError> {
            let mut calls = self.calls.lock().unwrap();
            *calls += 1;
            let failed: Vec<usize> = if *calls % 2 == 1 {
                (0..records.len().min(2)).collect()
            } else {
                Vec::new()
            };
            *self.stored.lock().unwrap() += (records.len() - failed.len()) as u64;
            Ok(PutOutcome { failed })
        }
    }

    #[test]
    fn an_entry_stored_on_retry_counts_as_a_retry_not_a_failure() {
        let writer = Arc::new(FakeFlakyWriter::default());
        let settings = ProducerSettings {
            devices: vec!["aaaa".into(), "bbbb".into()],
            rate_per_device: 10_000.0,
            min_value: -5,
            max_value: 5,
            batch_size: 10,
            spike: SpikeSettings {
                min_magnitude: 400,
                max_magnitude: 500,
                direction: SpikeDirection::Both,
                device: None,
            },
            start_paused: false,
            limit: Some(100),
            seed: Some(7),
            ack_log: None,
            max_rate_per_device: MAX_RATE_PER_DEVICE,
        };
        let last = Arc::new(Mutex::new(None));
        let seen = last.clone();
        let report: Reporter = Arc::new(move |e| {
            if let Event::Producer(c) = e {
                *seen.lock().unwrap() = Some(c);
            }
        });
        spawn(writer.clone(), settings, report, StopFlag::default())
            .unwrap()
            .join();
        let counts = last.lock().unwrap().unwrap();
        assert_eq!(counts.sent, 100);
        assert_eq!(counts.acknowledged, 100);
        assert_eq!(*writer.stored.lock().unwrap(), 100);
        assert!(counts.retries >= 2, "{counts:?}");
        assert_eq!(counts.failed, 0, "every entry was stored: {counts:?}");
    }

    #[test]
    fn ack_log_reopen_cuts_a_torn_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/ack.ndjson");
        for (before, after) in [
            (&b""[..], &b"c\n"[..]),
            (b"a\nb\n", b"a\nb\nc\n"),
            (b"a\nb\n{\"devi", b"a\nb\nc\n"),
            (b"torn", b"c\n"),
        ] {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, before).unwrap();
            let mut f = open_ack_log(&path).unwrap();
            f.write_all(b"c\n").unwrap();
            drop(f);
            assert_eq!(std::fs::read(&path).unwrap(), after, "{before:?}");
            std::fs::remove_file(&path).unwrap();
        }
        // A tail longer than one scan block.
        let mut long = b"x\n".to_vec();
        long.extend(std::iter::repeat_n(b'y', 200_000));
        std::fs::write(&path, &long).unwrap();
        let mut f = open_ack_log(&path).unwrap();
        f.write_all(b"c\n").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"x\nc\n");
    }
}
