//! The `iotaa` binary: parses the command line, loads the config, and runs the dashboard or a
//! headless command. The backend is chosen in one place, `backend::open`.

mod tools;

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use color_eyre::eyre::{Result, WrapErr};

use iot_anomaly_analytics::action::Action;
use iot_anomaly_analytics::cli::{Cli, Command, ConfigCommand, LakeCommand};
use iot_anomaly_analytics::config::{self, Loaded};
use iot_anomaly_analytics::{backend, commands, dashboard, logging, text, tui};

/// Exit status for a config or usage error (clap uses 2 for usage errors too).
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The config is loaded and checked before the terminal is touched.
    let mut loaded = match config::load(cli.config.as_deref()) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("iotaa: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if let Some(backend) = cli.backend {
        loaded.config.backend = backend;
    }
    match run(cli, loaded) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("iotaa: {}", text::report_chain(&e));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli, loaded: Loaded) -> Result<ExitCode> {
    match cli.command {
        None => dashboard(loaded),
        Some(Command::Config { action }) => {
            match action {
                ConfigCommand::Check => println!(
                    "ok: {} (backend {}, data dir {})",
                    loaded.source,
                    loaded.config.backend,
                    loaded.data_dir.display()
                ),
                ConfigCommand::Print => print!("{}", loaded.to_toml()),
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Produce {
            rate,
            count,
            duration,
            ack_log,
            producer_only,
        }) => {
            let _log = headless_logging(&loaded)?;
            let duration = duration
                .as_deref()
                .map(commands::parse_duration)
                .transpose()?;
            commands::produce(&loaded, rate, count, duration, ack_log, producer_only)
        }
        Some(Command::Spike { device, value }) => commands::spike(&loaded, device, value),
        Some(Command::Tail { from, count }) => commands::tail(&loaded, &from, count, cli.format),
        Some(Command::Detect { input: Some(file) }) => commands::detect_file(&loaded, &file),
        Some(Command::Detect { input: None }) => {
            let _log = headless_logging(&loaded)?;
            commands::detect_follow(&loaded)
        }
        Some(Command::Stack { action }) => commands::stack(&loaded, &action),
        Some(Command::Lake {
            action:
                LakeCommand::Compact {
                    min_age,
                    abort_after_steps,
                },
        }) => commands::lake_compact(&loaded, min_age.as_deref(), abort_after_steps),
        Some(Command::Soak {
            duration,
            rate,
            every,
            idle,
            data_dir,
        }) => {
            let opts = tools::soak::SoakOptions {
                duration: commands::parse_duration(&duration)?,
                rate,
                every: commands::parse_duration_of("--every", &every)?,
                idle: commands::parse_duration_of("--idle", &idle)?,
                data_dir,
            };
            tools::soak::soak(&loaded, &opts)
        }
        Some(Command::Bench { points }) => {
            tools::bench::run(points, &std::env::temp_dir())?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Query {
            sql,
            file,
            max_rows,
        }) => commands::query(&loaded, sql, file, max_rows, cli.format),
    }
}

/// Long-running headless commands log to the same file as the dashboard.
fn headless_logging(loaded: &Loaded) -> Result<tracing_appender::non_blocking::WorkerGuard> {
    logging::init(&loaded.data_dir, &loaded.config.log.level)
        .wrap_err_with(|| format!("cannot open the log in {}", loaded.data_dir.display()))
}

/// The dashboard, on either backend. The backend is opened first, so a stack that is not
/// deployed, a missing region or credentials is one line before the terminal is touched.
fn dashboard(loaded: Loaded) -> Result<ExitCode> {
    let opened = backend::open(&loaded).wrap_err("cannot start the pipeline");
    color_eyre::install()?;
    let backend = opened?;
    std::fs::create_dir_all(&loaded.data_dir)
        .wrap_err_with(|| format!("cannot create data dir {}", loaded.data_dir.display()))?;
    let _log_guard = logging::init(&loaded.data_dir, &loaded.config.log.level)
        .wrap_err_with(|| format!("cannot open the log in {}", loaded.data_dir.display()))?;
    tracing::info!(source = %loaded.source, data_dir = %loaded.data_dir.display(), backend = %loaded.config.backend, "starting");
    #[cfg(debug_assertions)]
    if std::env::var_os("IOTAA_TEST_PANIC").is_some() {
        // For the end-to-end test of the panic path (debug builds only): the terminal must
        // come back.
        return panic_after_start(loaded);
    }
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Action>();
    let send: iot_anomaly_analytics::action::Sender =
        Arc::new(move |action| tx.send(action).is_ok());
    let settings = backend.plan.dashboard();
    let (app, running) = dashboard::start(&loaded, backend, settings, send)?;
    let result = running.runtime().block_on(tui::run(app, rx));
    // The terminal is restored; now flush the lake buffer and save the model.
    running.shutdown();
    result?;
    Ok(ExitCode::SUCCESS)
}

/// Takes the terminal, then panics: lets the end-to-end test prove that a panic restores it.
#[cfg(debug_assertions)]
fn panic_after_start(loaded: Loaded) -> Result<ExitCode> {
    let _guard = tui::TerminalGuard::new()?;
    panic!(
        "IOTAA_TEST_PANIC is set: panicking on purpose with the terminal in raw mode ({})",
        loaded.source
    );
}
