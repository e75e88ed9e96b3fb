//! Backtest: score a file of recorded readings (`iotaa detect --input FILE`).

use std::io::{self, BufRead, Write};

use crate::rcf::{Detector, DetectorParams};
use crate::records::Reading;

/// What a backtest ([`score_lines`]) saw.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BacktestSummary {
    /// Lines read, including empty and bad ones.
    pub lines: u64,
    /// Readings scored (one output line each).
    pub scored: u64,
    /// Lines that were not a reading (reported through `on_bad_line`).
    pub bad: u64,
    /// Highest ANOMALY_SCORE seen (0.0 if none was scored or all were in warm-up).
    pub max_score: f64,
}

/// Backtest: scores NDJSON readings from `input` in order with a fresh detector built from
/// `params`, writing one scored reading per line to `out`. Lines that are not a reading are
/// reported to `on_bad_line(line number (1-based), one-line message)` and skipped; empty lines
/// are skipped silently. Fails only on I/O errors (or invalid `params`, as `InvalidInput`).
pub fn score_lines(
    input: impl BufRead,
    out: impl Write,
    params: &DetectorParams,
    on_bad_line: impl FnMut(usize, String),
) -> io::Result<BacktestSummary> {
    let mut detector = Detector::new(*params)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    score_lines_with(&mut detector, input, out, on_bad_line)
}

/// [`score_lines`] with a given detector (for example one loaded from a snapshot).
pub fn score_lines_with(
    detector: &mut Detector,
    mut input: impl BufRead,
    out: impl Write,
    mut on_bad_line: impl FnMut(usize, String),
) -> io::Result<BacktestSummary> {
    let mut out = io::BufWriter::new(out);
    let mut summary = BacktestSummary {
        lines: 0,
        scored: 0,
        bad: 0,
        max_score: 0.0,
    };
    let mut line = Vec::new();
    let mut number = 0usize;
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        number += 1;
        summary.lines += 1;
        let text = line.trim_ascii();
        if text.is_empty() {
            continue;
        }
        match Reading::decode(text) {
            Ok(reading) => {
                let scored = detector.score(&reading);
                summary.scored += 1;
                summary.max_score = summary.max_score.max(scored.anomaly_score);
                out.write_all(&scored.encode())?;
            }
            Err(e) => {
                summary.bad += 1;
                on_bad_line(number, e.to_string().replace(['\n', '\r'], " "));
            }
        }
    }
    out.flush()?;
    Ok(summary)
}
