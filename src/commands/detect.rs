//! `iotaa detect`: the detector on recorded readings (`--input FILE`, a backtest) or
//! following the readings stream.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use color_eyre::eyre::{Result, WrapErr};

use super::{EventLines, stop_on_signal};
use crate::backend;
use crate::config::Loaded;
use crate::detector;
use crate::pipeline::run::Pipeline;
use crate::pipeline::{Event, Reporter};

/// `iotaa detect --input FILE`: scores recorded readings offline (the threshold backtest).
pub fn detect_file(loaded: &Loaded, input: &Path) -> Result<ExitCode> {
    let file =
        std::fs::File::open(input).wrap_err_with(|| format!("cannot read {}", input.display()))?;
    let params = backend::settings::detector_params(loaded);
    let stdout = std::io::stdout().lock();
    let name = input.display().to_string();
    let summary = detector::score_lines(
        std::io::BufReader::new(file),
        stdout,
        &params,
        |line, msg| {
            eprintln!("{name}:{line}: {msg}");
        },
    )
    .wrap_err_with(|| format!("scoring {}", input.display()))?;
    let threshold = loaded.config.alerts.threshold;
    eprintln!(
        "detect: {} readings scored, {} bad lines skipped, max score {:.3} (threshold {threshold})",
        summary.scored, summary.bad, summary.max_score
    );
    Ok(ExitCode::SUCCESS)
}

/// `iotaa detect`: the detector stage alone, following the readings stream.
pub fn detect_follow(loaded: &Loaded) -> Result<ExitCode> {
    let backend = backend::open(loaded)?;
    if let Some(place) = &backend.plan.detector_elsewhere {
        eprintln!(
            "detect: the detector runs in {place}, not here; `iotaa detect` scores in this process only with [aws] detector = \"app\""
        );
        return Ok(ExitCode::SUCCESS);
    }
    let lines = EventLines::default();
    let report: Reporter = Arc::new(move |event| match event {
        Event::Detector(_) => {}
        other => eprintln!("{}", lines.line(&other)),
    });
    let stop = stop_on_signal();
    let pipeline = Pipeline::start(
        backend.streams.clone(),
        backend.plan.detector_only(),
        report,
    )?;
    while !stop.is_stopped() {
        std::thread::sleep(Duration::from_millis(100));
    }
    pipeline.shutdown();
    Ok(ExitCode::SUCCESS)
}
