use std::process::ExitCode;

use clap::Parser;
use color_eyre::eyre::{Result, WrapErr};

use std::sync::Arc;

use iot_anomaly_analytics::action::Action;
use iot_anomaly_analytics::app::App;
#[cfg(feature = "sql")]
use iot_anomaly_analytics::app::engine_runner::EngineRunner;
use iot_anomaly_analytics::backend::local;
use iot_anomaly_analytics::cli::{Cli, Command, ConfigCommand};
use iot_anomaly_analytics::config::{self, Backend, Loaded};
use iot_anomaly_analytics::pipeline::Reporter;
use iot_anomaly_analytics::pipeline::run::Pipeline;
#[cfg(feature = "sql")]
use iot_anomaly_analytics::query::QueryEngine;
use iot_anomaly_analytics::{commands, logging, tui};

/// Exit status for a config or usage error (clap uses 2 for usage errors too).
const EXIT_CONFIG: u8 = 2;

/// Why SQL is refused by a build without the engine.
#[cfg(not(feature = "sql"))]
const NO_SQL: &str = "this build has no SQL engine (built without the `sql` feature)";

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
        Some(Command::Stack { action }) if loaded.config.backend == Backend::Aws => {
            commands::aws_stack(&loaded, &action)
        }
        Some(command @ Command::Soak { .. }) if loaded.config.backend == Backend::Aws => {
            eprintln!(
                "iotaa {}: the aws backend is not available in this version; use --backend local",
                command.name()
            );
            Ok(ExitCode::FAILURE)
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
        Some(Command::Soak {
            duration,
            rate,
            every,
            idle,
            data_dir,
        }) => {
            let opts = iot_anomaly_analytics::soak::SoakOptions {
                duration: commands::parse_duration(&duration)?,
                rate,
                every: commands::parse_duration_of("--every", &every)?,
                idle: commands::parse_duration_of("--idle", &idle)?,
                data_dir,
            };
            iot_anomaly_analytics::soak::soak(&loaded, &opts)
        }
        Some(Command::Bench { points }) => {
            iot_anomaly_analytics::bench::run(points, &std::env::temp_dir())?;
            Ok(ExitCode::SUCCESS)
        }
        #[cfg(feature = "sql")]
        Some(Command::Query {
            sql,
            file,
            max_rows,
        }) => iot_anomaly_analytics::query::command(&loaded, sql, file, max_rows, cli.format),
        #[cfg(not(feature = "sql"))]
        Some(Command::Query { .. }) => {
            eprintln!("iotaa query: {NO_SQL}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Long-running headless commands log to the same file as the dashboard.
fn headless_logging(loaded: &Loaded) -> Result<tracing_appender::non_blocking::WorkerGuard> {
    logging::init(&loaded.data_dir, &loaded.config.log.level)
        .wrap_err_with(|| format!("cannot open the log in {}", loaded.data_dir.display()))
}

/// The dashboard, on either backend. On AWS the deployed stack's streams (Kinesis) feed the
/// detector, alerts and tail in this process, Firehose delivers to S3, queries run on Athena and
/// the Stack pane follows CloudFormation; the stack is found first, so a stack that is not
/// deployed, a missing region or credentials is one line before the terminal is touched.
fn dashboard(loaded: Loaded) -> Result<ExitCode> {
    let on_aws = if loaded.config.backend == Backend::Aws {
        Some(commands::open_backend(&loaded)?)
    } else {
        None
    };
    color_eyre::install()?;
    std::fs::create_dir_all(&loaded.data_dir)
        .wrap_err_with(|| format!("cannot create data dir {}", loaded.data_dir.display()))?;
    let _log_guard = logging::init(&loaded.data_dir, &loaded.config.log.level)
        .wrap_err_with(|| format!("cannot open the log in {}", loaded.data_dir.display()))?;
    tracing::info!(source = %loaded.source, data_dir = %loaded.data_dir.display(), backend = %loaded.config.backend, "starting");
    if std::env::var_os("IOTAA_TEST_PANIC").is_some() {
        // For the end-to-end test of the panic path: the terminal must come back.
        return panic_after_start(loaded);
    }
    let opened = match on_aws {
        Some(opened) => opened,
        None => commands::open_backend(&loaded).wrap_err("cannot start the pipeline")?,
    };
    let mut app = App::new(&loaded, logging::log_file(&loaded.data_dir));
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Action>();
    let query_tx = tx.clone();
    let stack_tx = tx.clone();
    let report: Reporter = Arc::new(move |event| {
        let _ = tx.send(Action::Pipeline(event));
    });
    let mut settings = local::dashboard_settings(&opened.layout, &loaded);
    if opened.aws.is_some() {
        // Firehose delivers to S3: no delivery stage here.
        settings.delivery = None;
    }
    let pipeline = Pipeline::start(opened.streams.clone(), settings, report)
        .wrap_err("cannot start the pipeline")?;
    if let Some(c) = pipeline.controller() {
        app.attach_producer(c);
    }
    let own_runtime;
    let runtime = match &opened.aws {
        Some(aws) => aws.runtime.handle().clone(),
        None => {
            own_runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            own_runtime.handle().clone()
        }
    };
    if let Some(aws) = &opened.aws {
        let wake = Arc::new(tokio::sync::Notify::new());
        app.attach_stack_ops(Arc::new(
            iot_anomaly_analytics::app::stack_ops::AwsStackOps::new(
                loaded.clone(),
                runtime.clone(),
                stack_tx.clone(),
                wake.clone(),
            ),
        ));
        runtime.spawn(iot_anomaly_analytics::backend::aws::watch(
            aws.deployed.sdk.clone(),
            aws.deployed.stack.clone(),
            wake,
            move |snapshot| stack_tx.send(Action::CloudStack(snapshot)).is_ok(),
        ));
    }
    #[cfg(feature = "sql")]
    match &opened.aws {
        None => match QueryEngine::for_config(&loaded) {
            Ok(engine) => app.attach_query_runner(Arc::new(EngineRunner::new(
                engine,
                runtime.clone(),
                query_tx,
            ))),
            Err(e) => app.query_unavailable(format!("The query engine cannot start: {e}")),
        },
        Some(aws) => match iot_anomaly_analytics::backend::athena::Athena::new(&aws.deployed) {
            Ok(athena) => app.attach_query_runner(Arc::new(
                iot_anomaly_analytics::app::athena_runner::AthenaRunner::new(
                    athena,
                    loaded.config.query.max_rows as usize,
                    runtime.clone(),
                    query_tx,
                ),
            )),
            Err(e) => app.query_unavailable(format!("Athena is not available: {e}")),
        },
    }
    #[cfg(not(feature = "sql"))]
    {
        drop(query_tx);
        app.query_unavailable(format!("The query engine cannot start: {NO_SQL}"));
    }
    let result = runtime.block_on(tui::run(app, rx));
    // The terminal is restored; now flush the lake buffer and save the model.
    pipeline.shutdown();
    result?;
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
