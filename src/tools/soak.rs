//! `iotaa soak`: the dashboard's pipeline and state for a long run, without a terminal, printing
//! this process's memory and CPU at a fixed interval.
//!
//! What runs is what the dashboard runs, wired by the same function ([`dashboard::start`]):
//! every stage with the dashboard's settings, every action fed to a real [`App`] (the same
//! `update`), a tick every second, and the
//! view rendered into an off-screen 120×40 buffer whenever something changed, at most ~30 times
//! a second, as the terminal loop does. Only the terminal is missing.
//!
//! Then the producer is paused; once the detector has caught up, and the last lake object and
//! model snapshot are written (the longer of the two intervals, plus 2 s), CPU is measured over
//! the idle window. The verdicts: resident memory after the first minute stays within ±5 % of its
//! median (every history buffer is bounded), and the idle process uses under 0.5 % of a core.
//! The exit status is 1 if either fails.
//!
//! Memory and CPU come from `/proc/self/status` (VmRSS) and `/proc/self/stat` (utime + stime,
//! in clock ticks of 1/100 s, Linux's fixed USER_HZ), so this command is Linux-only.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use color_eyre::eyre::{Result, WrapErr, eyre};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use iot_anomaly_analytics::action::Action;
use iot_anomaly_analytics::app::App;
use iot_anomaly_analytics::config::Loaded;
use iot_anomaly_analytics::pipeline::{DetectorProgress, Event};
use iot_anomaly_analytics::{backend, dashboard};

/// Linux's USER_HZ: `/proc/<pid>/stat` times are in these ticks per second.
const TICKS_PER_SEC: f64 = 100.0;
/// RSS samples taken before this are warm-up (buffers, allocator arenas and the score window
/// filling) and not judged; they are printed all the same.
const WARM_UP: Duration = Duration::from_secs(120);
/// Allowed RSS spread around the median after warm-up.
const RSS_TOLERANCE: f64 = 0.05;
/// Allowed CPU while idle, as a fraction of one core.
const IDLE_CPU_LIMIT: f64 = 0.005;
/// How long to wait for the detector to catch up before measuring idle CPU anyway (at 5,000
/// readings/s on 2 shared cores it can end 10 minutes most of a million readings behind).
const DRAIN_LIMIT: Duration = Duration::from_secs(900);
const FRAME: Duration = Duration::from_millis(33);

pub struct SoakOptions {
    pub duration: Duration,
    /// Readings per second, all devices together.
    pub rate: f64,
    pub every: Duration,
    pub idle: Duration,
    /// Run here instead of a fresh temporary folder (which is removed afterwards).
    pub data_dir: Option<std::path::PathBuf>,
}

/// One sample of this process.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    pub rss_bytes: u64,
    /// User + system CPU time since the process started.
    pub cpu: Duration,
}

/// Reads this process's resident memory and CPU time from `/proc/self`.
pub fn usage() -> std::io::Result<Usage> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let rss_kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .ok_or_else(|| std::io::Error::other("no VmRSS line in /proc/self/status"))?;
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| std::io::Error::other("unexpected /proc/self/stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .ok_or_else(|| std::io::Error::other("unexpected /proc/self/stat"))
    };
    let cpu_ticks = ticks(11)? + ticks(12)?;
    Ok(Usage {
        rss_bytes: rss_kb * 1024,
        cpu: Duration::from_secs_f64(cpu_ticks as f64 / TICKS_PER_SEC),
    })
}

/// The dashboard's loop without a terminal: events into the App, ticks, off-screen draws.
struct Headless {
    app: App,
    actions: mpsc::Receiver<Action>,
    terminal: Terminal<TestBackend>,
    next_tick: Instant,
    last_draw: Option<Instant>,
    dirty: bool,
    frames: u64,
    detector: Option<DetectorProgress>,
    acknowledged: u64,
    objects: u64,
}

impl Headless {
    /// Runs the loop until `until`.
    fn run_until(&mut self, until: Instant) -> Result<()> {
        loop {
            let now = Instant::now();
            if now >= until {
                return Ok(());
            }
            if now >= self.next_tick {
                self.dirty |= self.app.update(Action::Tick);
                self.next_tick += Duration::from_secs(1);
            }
            if self.dirty && self.last_draw.is_none_or(|t| now >= t + FRAME) {
                let view = self.app.view();
                self.terminal
                    .draw(|f| f.render_widget(ui::Dashboard(&view), f.area()))
                    .wrap_err("off-screen draw")?;
                self.frames += 1;
                self.last_draw = Some(now);
                self.dirty = false;
            }
            let mut wake = until.min(self.next_tick);
            if self.dirty {
                wake = wake.min(self.last_draw.map_or(now, |t| t + FRAME));
            }
            match self
                .actions
                .recv_timeout(wake.saturating_duration_since(Instant::now()))
            {
                Ok(action) => {
                    if let Action::Pipeline(e) = &action {
                        match e {
                            Event::Detector(p) => self.detector = Some(*p),
                            Event::Producer(c) => self.acknowledged = c.acknowledged,
                            Event::Delivered { objects, .. } => self.objects = *objects,
                            _ => {}
                        }
                    }
                    self.dirty |= self.app.update(action);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(eyre!("the dashboard's action channel closed"));
                }
            }
        }
    }

    fn lag(&self) -> u64 {
        self.detector.map_or(0, |s| s.lag_records)
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

pub fn soak(loaded: &Loaded, opts: &SoakOptions) -> Result<ExitCode> {
    if !(opts.rate.is_finite() && opts.rate > 0.0) {
        return Err(eyre!(
            "--rate: expected a positive number of readings per second, got {}",
            opts.rate
        ));
    }
    if opts.every.is_zero() {
        return Err(eyre!("--every: expected a positive interval"));
    }
    usage().wrap_err("soak reads /proc/self (Linux only)")?;
    let temp = opts.data_dir.is_none().then(|| {
        std::env::temp_dir().join(format!("iotaa-soak-{}", uuid::Uuid::new_v4().simple()))
    });
    let mut loaded = loaded.clone();
    loaded.data_dir = opts
        .data_dir
        .clone()
        .or_else(|| temp.clone())
        .unwrap_or_default();
    std::fs::create_dir_all(&loaded.data_dir)
        .wrap_err_with(|| format!("cannot create {}", loaded.data_dir.display()))?;
    let result = run(&loaded, opts);
    if let Some(dir) = temp {
        let _ = std::fs::remove_dir_all(dir);
    }
    result
}

fn run(loaded: &Loaded, opts: &SoakOptions) -> Result<ExitCode> {
    let devices = loaded.config.producer.devices.len().max(1);
    let backend = backend::open(loaded)?;
    let mut settings = backend.plan.dashboard();
    if let Some(p) = settings.producer.as_mut() {
        p.rate_per_device = opts.rate / devices as f64;
        p.start_paused = false;
    }
    let (tx, rx) = mpsc::channel();
    let send: iot_anomaly_analytics::action::Sender =
        Arc::new(move |action| tx.send(action).is_ok());
    let (app, running) = dashboard::start(loaded, backend, settings, send)?;
    let mut h = Headless {
        app,
        actions: rx,
        terminal: Terminal::new(TestBackend::new(120, 40))?,
        next_tick: Instant::now() + Duration::from_secs(1),
        last_draw: None,
        dirty: true,
        frames: 0,
        detector: None,
        acknowledged: 0,
        objects: 0,
    };

    println!(
        "soak: {} readings/s for {:.0} s in {}, a sample every {:.0} s",
        opts.rate,
        opts.duration.as_secs_f64(),
        loaded.data_dir.display(),
        opts.every.as_secs_f64()
    );
    println!(
        "{:>7} {:>9} {:>9} {:>11} {:>9} {:>8} {:>7}",
        "time_s", "rss_mib", "cpu_core", "acked", "lag", "objects", "frames"
    );
    let started = Instant::now();
    let mut last = (Instant::now(), usage()?);
    let mut samples: Vec<(Duration, Usage)> = Vec::new();
    let mut next = started + opts.every;
    let end = started + opts.duration;
    while next <= end {
        h.run_until(next)?;
        let u = usage()?;
        let now = Instant::now();
        let cpu = (u.cpu.saturating_sub(last.1.cpu)).as_secs_f64()
            / now.duration_since(last.0).as_secs_f64();
        println!(
            "{:>7.0} {:>9.1} {:>9.2} {:>11} {:>9} {:>8} {:>7}",
            now.duration_since(started).as_secs_f64(),
            mib(u.rss_bytes),
            cpu,
            h.acknowledged,
            h.lag(),
            h.objects,
            h.frames
        );
        samples.push((now.duration_since(started), u));
        last = (now, u);
        next += opts.every;
    }
    h.run_until(end)?;
    let produced_for = started.elapsed().as_secs_f64();
    let scored = h.detector.map_or(0, |s| s.scored);
    println!(
        "detector: {scored} scored in {produced_for:.0} s ({:.0}/s) of {} acknowledged ({:.0}/s); {}",
        scored as f64 / produced_for,
        h.acknowledged,
        h.acknowledged as f64 / produced_for,
        if h.lag() == 0 {
            "kept up".to_string()
        } else {
            format!("{} behind", h.lag())
        }
    );
    let drain_started = Instant::now();

    // Idle: pause the producer, let the detector catch up, then measure.
    // As the dashboard's `p` key does.
    h.app.update(Action::TogglePause);
    let drain_until = Instant::now() + DRAIN_LIMIT;
    let acked_at_pause = h.acknowledged;
    loop {
        h.run_until(Instant::now() + Duration::from_millis(500))?;
        // Caught up: scoring reports no lag for what was acknowledged up to the pause.
        let caught_up = h.lag() == 0 && h.detector.is_some_and(|s| s.scored >= acked_at_pause);
        if caught_up || Instant::now() >= drain_until {
            break;
        }
    }
    let drained = h.lag() == 0;
    println!(
        "drain: {:.0} s after the pause the detector is {}",
        drain_started.elapsed().as_secs_f64(),
        if drained { "caught up" } else { "still behind" }
    );
    // The work that follows the last reading is not idleness: delivery's last object (after
    // its buffer interval) and the detector's last snapshot (after its snapshot interval).
    let settle = Duration::from_secs(
        loaded
            .config
            .delivery
            .buffer_interval_secs
            .max(loaded.config.detector.snapshot_interval_secs)
            .into(),
    ) + Duration::from_secs(2);
    h.run_until(Instant::now() + settle)?;
    println!(
        "settle: waited {:.0} s for the last lake object and model snapshot",
        settle.as_secs_f64()
    );
    let before = usage()?;
    let idle_started = Instant::now();
    h.run_until(idle_started + opts.idle)?;
    let after = usage()?;
    let idle_cpu =
        after.cpu.saturating_sub(before.cpu).as_secs_f64() / idle_started.elapsed().as_secs_f64();
    println!(
        "idle: producer paused, detector {}; {:.3} % of a core over {:.0} s ({:.2} s CPU), rss {:.1} MiB",
        if drained {
            "caught up".to_string()
        } else {
            format!("still {} behind", h.lag())
        },
        idle_cpu * 100.0,
        opts.idle.as_secs_f64(),
        after.cpu.saturating_sub(before.cpu).as_secs_f64(),
        mib(after.rss_bytes)
    );
    running.shutdown();

    let judged: Vec<u64> = samples
        .iter()
        .filter(|(t, _)| *t >= WARM_UP)
        .map(|(_, u)| u.rss_bytes)
        .collect();
    let rss_ok = if judged.len() >= 2 {
        let mut sorted = judged.clone();
        sorted.sort_unstable();
        let median = sorted[sorted.len() / 2] as f64;
        let (lo, hi) = (sorted[0] as f64, sorted[sorted.len() - 1] as f64);
        let spread = ((hi - median) / median).max((median - lo) / median);
        let ok = spread <= RSS_TOLERANCE;
        println!(
            "rss after the first {:.0} s: {} samples, median {:.1} MiB, min {:.1}, max {:.1}: within ±{:.1} % — {} (limit ±{:.0} %)",
            WARM_UP.as_secs_f64(),
            judged.len(),
            mib(median as u64),
            mib(lo as u64),
            mib(hi as u64),
            spread * 100.0,
            if ok { "PASS" } else { "FAIL" },
            RSS_TOLERANCE * 100.0
        );
        ok
    } else {
        println!(
            "rss: fewer than 2 samples after the first {:.0} s; not judged (run longer)",
            WARM_UP.as_secs_f64()
        );
        true
    };
    let idle_ok = idle_cpu < IDLE_CPU_LIMIT;
    println!(
        "idle cpu: {:.3} % of a core — {} (limit {:.1} %)",
        idle_cpu * 100.0,
        if idle_ok { "PASS" } else { "FAIL" },
        IDLE_CPU_LIMIT * 100.0
    );
    Ok(if rss_ok && idle_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_reads_this_process() {
        let before = usage().unwrap();
        // Touch 128 MiB so resident memory must grow, and burn some CPU. (Other tests run
        // in this process too; none frees anything near 32 MiB meanwhile.)
        let block = vec![1u8; 128 << 20];
        let sum: u64 = block.iter().step_by(4096).map(|&b| u64::from(b)).sum();
        let mut x = 0u64;
        let spin = Instant::now();
        while spin.elapsed() < Duration::from_millis(300) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        let after = usage().unwrap();
        assert_eq!(sum, (128 << 20) / 4096);
        assert!(x != 1);
        assert!(
            after.rss_bytes >= before.rss_bytes + (96 << 20),
            "{before:?} → {after:?}"
        );
        assert!(
            after.cpu >= before.cpu + Duration::from_millis(100),
            "{before:?} → {after:?}"
        );
        drop(block);
    }
}
