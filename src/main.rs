use std::process::ExitCode;

use clap::Parser;
use color_eyre::eyre::{Result, WrapErr};

use iot_anomaly_analytics::app::App;
use iot_anomaly_analytics::cli::{Cli, Command, ConfigCommand};
use iot_anomaly_analytics::config::{self, Backend, Loaded};
use iot_anomaly_analytics::{logging, tui};

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
            let chain: Vec<String> = e.chain().map(ToString::to_string).collect();
            eprintln!("iotaa: {}", chain.join(": "));
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
        Some(command) => {
            eprintln!(
                "iotaa {}: not available in this version: the pipeline stage it drives is not \
                 built yet (the dashboard shell and `iotaa config` are).",
                command.name()
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

fn dashboard(loaded: Loaded) -> Result<ExitCode> {
    if loaded.config.backend == Backend::Aws {
        eprintln!(
            "iotaa: the aws backend is not available in this version; run with --backend local"
        );
        return Ok(ExitCode::FAILURE);
    }
    color_eyre::install()?;
    std::fs::create_dir_all(&loaded.data_dir)
        .wrap_err_with(|| format!("cannot create data dir {}", loaded.data_dir.display()))?;
    let _log_guard = logging::init(&loaded.data_dir, &loaded.config.log.level)
        .wrap_err_with(|| format!("cannot open the log in {}", loaded.data_dir.display()))?;
    tracing::info!(source = %loaded.source, data_dir = %loaded.data_dir.display(), "starting");
    if std::env::var_os("IOTAA_TEST_PANIC").is_some() {
        // For the end-to-end test of the panic path: the terminal must come back.
        return panic_after_start(loaded);
    }
    let app = App::new(&loaded, logging::log_file(&loaded.data_dir));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(tui::run(app))?;
    Ok(ExitCode::SUCCESS)
}

/// Takes the terminal, then panics: lets the end-to-end test prove that a panic restores it.
fn panic_after_start(loaded: Loaded) -> Result<ExitCode> {
    let _guard = tui::TerminalGuard::new()?;
    panic!(
        "IOTAA_TEST_PANIC is set: panicking on purpose with the terminal in raw mode ({})",
        loaded.source
    );
}
