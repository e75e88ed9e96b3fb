//! tracing to `<data_dir>/logs/iotaa.log` through a non-blocking writer. Nothing is printed
//! to the terminal while the dashboard owns it. `RUST_LOG` overrides `log.level`.

use std::path::{Path, PathBuf};

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

pub fn log_file(data_dir: &Path) -> PathBuf {
    data_dir.join("logs").join("iotaa.log")
}

/// Starts logging; keep the guard alive until exit so buffered lines are written.
pub fn init(data_dir: &Path, level: &str) -> std::io::Result<WorkerGuard> {
    let dir = data_dir.join("logs");
    std::fs::create_dir_all(&dir)?;
    // Fail here, with the path, rather than inside the appender's thread.
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_file(data_dir))?;
    let appender = tracing_appender::rolling::never(&dir, "iotaa.log");
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .try_init();
    Ok(guard)
}
