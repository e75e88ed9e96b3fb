//! Helpers shared by the tests that run the headless pipeline as a process and then check
//! its files directly (crash safety, disk full).
#![allow(dead_code)] // each test binary uses a different part

pub mod aws;
pub mod proxy;

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use iot_anomaly_analytics::records::Reading;
use iot_anomaly_analytics::stream::{StartAt, Stream, StreamOptions};

/// `iotaa produce --ack-log <ack> [extra…]` in `dir`, stdout discarded, stderr to `stderr`
/// (files, not pipes, so a full pipe can never block the pipeline).
pub fn spawn_produce(dir: &Path, ack: &Path, stderr: &Path, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_iotaa"))
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .arg("produce")
        .arg("--ack-log")
        .arg(ack)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(stderr).unwrap())
        .spawn()
        .unwrap()
}

pub fn read_text(path: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned()
}

/// Polls `cond` every 50 ms until it holds; panics with `what` and `context()` after `limit`.
pub fn wait_until(
    limit: Duration,
    what: &str,
    mut cond: impl FnMut() -> bool,
    context: impl Fn() -> String,
) {
    let deadline = Instant::now() + limit;
    while !cond() {
        if Instant::now() > deadline {
            panic!(
                "timed out after {limit:?} waiting for {what}\n{}",
                context()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn read_checkpoint(path: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(
        text.trim()
            .parse()
            .unwrap_or_else(|e| panic!("checkpoint {}: {text:?}: {e}", path.display())),
    )
}

/// Every file under `dir`, skipping dot-names (`.staging/`, temp files) at any depth.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// Complete lines of `bytes` (without `\n`) and the unterminated tail, if any.
pub fn split_lines(bytes: &[u8]) -> (Vec<&[u8]>, &[u8]) {
    let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let (body, tail) = bytes.split_at(complete);
    let lines = match body.strip_suffix(b"\n") {
        Some(body) => body.split(|&b| b == b'\n').collect(),
        None => Vec::new(),
    };
    (lines, tail)
}

/// Number of complete lines in a file (0 if missing).
pub fn count_lines(path: &Path) -> usize {
    split_lines(&std::fs::read(path).unwrap_or_default())
        .0
        .len()
}

/// Reads a whole stream from TRIM_HORIZON; panics on any error or a sequence number that does
/// not increase. Returns (records, first and last sequence, gaps).
pub fn read_stream(dir: &Path, mut check: impl FnMut(u64, &[u8])) -> (u64, u64, u64, u64) {
    let stream = Stream::open(
        dir,
        StreamOptions {
            segment_size_bytes: 16 << 20,
        },
    )
    .unwrap_or_else(|e| panic!("reopen {}: {e}", dir.display()));
    let mut reader = stream
        .reader(StartAt::TrimHorizon)
        .unwrap_or_else(|e| panic!("reader on {}: {e}", dir.display()));
    let (mut records, mut first, mut last, mut gaps) = (0u64, 0u64, 0u64, 0u64);
    loop {
        let batch = reader
            .next_batch(4096)
            .unwrap_or_else(|e| panic!("read {} after sequence {last}: {e}", dir.display()));
        if batch.is_empty() {
            break;
        }
        for r in batch {
            assert!(
                r.sequence > last,
                "{}: sequence {} after {last}",
                dir.display(),
                r.sequence
            );
            if records == 0 {
                first = r.sequence;
            } else if r.sequence != last + 1 {
                gaps += 1;
            }
            check(r.sequence, &r.data);
            records += 1;
            last = r.sequence;
        }
    }
    (records, first, last, gaps)
}

/// The acknowledgement log as a multiset of lines (each checked to be a reading), the number
/// of lines and the length of a torn final line.
pub fn acked_lines(path: &Path) -> (HashMap<Vec<u8>, u64>, usize, usize) {
    let bytes = std::fs::read(path).unwrap();
    let (lines, torn) = split_lines(&bytes);
    for (i, line) in lines.iter().enumerate() {
        Reading::decode(line).unwrap_or_else(|e| {
            panic!(
                "{}:{}: {e}: {}",
                path.display(),
                i + 1,
                String::from_utf8_lossy(line)
            )
        });
    }
    (multiset(lines.iter().copied()), lines.len(), torn.len())
}

/// Counts of each line, for "every acknowledged record arrived" checks.
pub fn multiset<'a>(lines: impl Iterator<Item = &'a [u8]>) -> HashMap<Vec<u8>, u64> {
    let mut m = HashMap::new();
    for l in lines {
        *m.entry(l.to_vec()).or_default() += 1;
    }
    m
}

/// The lake read back, every object checked to be whole: one gzip stream and nothing after
/// it (for `.gz`), `\n`-terminated, every line a reading, at `YYYY/MM/DD/HH/name`.
pub struct Lake {
    pub objects: u64,
    pub lines: u64,
    pub readings: HashMap<Vec<u8>, u64>,
}

pub fn read_lake(lake: &Path) -> Lake {
    let mut out = Lake {
        objects: 0,
        lines: 0,
        readings: HashMap::new(),
    };
    for path in walk(lake) {
        let rel = path.strip_prefix(lake).unwrap();
        assert_eq!(
            rel.components().count(),
            5,
            "not YYYY/MM/DD/HH/name: {rel:?}"
        );
        let raw = std::fs::read(&path).unwrap();
        let body = if path.extension().is_some_and(|e| e == "gz") {
            let mut decoder = flate2::read::GzDecoder::new(&raw[..]);
            let mut body = Vec::new();
            decoder
                .read_to_end(&mut body)
                .unwrap_or_else(|e| panic!("{rel:?}: not a whole gzip stream: {e}"));
            assert!(
                decoder.into_inner().is_empty(),
                "{rel:?}: bytes after the gzip stream"
            );
            body
        } else {
            raw
        };
        assert!(
            body.ends_with(b"\n"),
            "{rel:?}: empty or ends in a partial line"
        );
        let (lines, tail) = split_lines(&body);
        assert!(tail.is_empty());
        for (i, line) in lines.iter().enumerate() {
            Reading::decode(line).unwrap_or_else(|e| {
                panic!("{rel:?}:{}: {e}: {}", i + 1, String::from_utf8_lossy(line))
            });
            *out.readings.entry(line.to_vec()).or_default() += 1;
        }
        out.objects += 1;
        out.lines += lines.len() as u64;
    }
    out
}

/// Panics if any acknowledged reading is in the lake fewer times than it was acknowledged.
pub fn assert_all_acked_in_lake(acked: &HashMap<Vec<u8>, u64>, lake: &Lake) {
    let mut missing = 0u64;
    let mut examples = Vec::new();
    for (line, &n) in acked {
        let have = lake.readings.get(line).copied().unwrap_or(0);
        if have < n {
            missing += n - have;
            if examples.len() < 5 {
                examples.push(format!(
                    "{} (acked {n}, in lake {have})",
                    String::from_utf8_lossy(line)
                ));
            }
        }
    }
    assert_eq!(
        missing,
        0,
        "acknowledged readings missing from the lake, e.g.:\n{}",
        examples.join("\n")
    );
}

/// The whole dashboard for `app`, drawn on a `w`×`h` test terminal, as text.
pub fn screen(app: &iot_anomaly_analytics::app::App, w: u16, h: u16) -> String {
    let mut t = ratatui::Terminal::new(ratatui::backend::TestBackend::new(w, h)).unwrap();
    let view = app.view();
    t.draw(|f| f.render_widget(ui::Dashboard(&view), f.area()))
        .unwrap();
    t.backend().to_string()
}
