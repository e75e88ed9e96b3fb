//! `iotaa lake compact`: closed hours of JSON objects into Parquet (see
//! [`crate::query::lake::compact`]), on the local lake.

use std::process::ExitCode;

use color_eyre::eyre::{Result, eyre};

use crate::config::{Backend, Loaded};

/// Runs `iotaa lake compact`: one line per hour compacted, then a summary line.
pub fn lake_compact(
    loaded: &Loaded,
    min_age: Option<&str>,
    abort_after_steps: Option<u64>,
) -> Result<ExitCode> {
    if loaded.config.backend == Backend::Aws {
        return Err(eyre!(
            "lake compact: works on the local lake; on AWS, Firehose writes Parquet itself with [delivery] format = \"parquet\" (then `stack deploy`)"
        ));
    }
    let min_age = match min_age {
        Some(text) => super::parse_duration_of("--min-age", text)?,
        None => std::time::Duration::from_secs(
            2 * u64::from(loaded.config.delivery.buffer_interval_secs) + 60,
        ),
    };
    run(loaded, min_age, abort_after_steps)
}

#[cfg(feature = "sql")]
fn run(
    loaded: &Loaded,
    min_age: std::time::Duration,
    abort_after_steps: Option<u64>,
) -> Result<ExitCode> {
    use crate::query::lake::compact::{CompactOptions, compact};
    let layout = crate::backend::layout::Layout::new(loaded);
    let (root, year_prefix) =
        crate::query::lake::split_prefix(&layout.lake(), &loaded.config.delivery.prefix);
    let opts = CompactOptions {
        root,
        year_prefix,
        stream_name: loaded.config.local.delivery_stream.clone(),
        now: chrono::Utc::now(),
        min_age,
        abort_after_steps,
    };
    let report =
        compact(&opts, |line| println!("{line}")).map_err(|e| eyre!("lake compact: {e}"))?;
    for line in &report.unreadable {
        eprintln!("lake compact: not compacted: {line}");
    }
    let t = crate::text::bytes;
    eprintln!(
        "{} hours compacted: {} objects ({}) → {} Parquet objects ({}), {} readings, {} malformed lines kept{}; {} hours not closed yet",
        report.hours,
        report.objects,
        t(report.source_bytes),
        report.parquet_objects,
        t(report.parquet_bytes),
        report.readings,
        report.malformed,
        if report.recovered > 0 {
            format!(
                "; {} objects left by a stopped compaction removed",
                report.recovered
            )
        } else {
            String::new()
        },
        report.open_hours
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(not(feature = "sql"))]
fn run(_: &Loaded, _: std::time::Duration, _: Option<u64>) -> Result<ExitCode> {
    Err(eyre!(
        "lake compact: this build has no Parquet support (built without the `sql` feature)"
    ))
}
