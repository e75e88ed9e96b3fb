//! Command line: the dashboard by default, headless commands for the same pipeline.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::Backend;

#[derive(Debug, Parser)]
#[command(
    name = "iotaa",
    version,
    about = "A terminal dashboard that runs and operates a streaming IoT anomaly pipeline.",
    long_about = "A terminal dashboard that runs and operates a streaming IoT anomaly pipeline: \
simulated devices send readings, a Random Cut Forest scores each one, high scores raise alerts, \
and every reading lands in a data lake you can query with SQL. With no command, starts the \
dashboard."
)]
pub struct Cli {
    /// Config file (default: ./config.toml, else ~/.config/iotaa/config.toml, else built-in defaults).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Run on this backend instead of the config's `backend`.
    #[arg(long, global = true, value_enum)]
    pub backend: Option<Backend>,
    /// Output format of headless commands.
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the producer and the pipeline without the dashboard.
    Produce {
        /// Readings per second per device (default: producer.rate).
        #[arg(long)]
        rate: Option<f64>,
        /// Stop after sending this many readings.
        #[arg(long, conflicts_with = "duration")]
        count: Option<u64>,
        /// Stop after this long, e.g. 15s, 2m.
        #[arg(long)]
        duration: Option<String>,
        /// Append every acknowledged reading to FILE, one JSON line each, exactly as sent,
        /// once its batch put has succeeded (for crash tests: all of them must reach the
        /// lake). Created if missing; a torn last line left by a killed run is cut off.
        #[arg(long, value_name = "FILE")]
        ack_log: Option<PathBuf>,
        /// Run the producer alone: no detector, alerts or delivery in this process (to load a
        /// stream, or to measure ingest: `bench/aws-vs-seed`).
        #[arg(long)]
        producer_only: bool,
    },
    /// Send one anomalous reading to the readings stream.
    Spike {
        /// Device to spike (default: spike.device, else a random device).
        #[arg(long)]
        device: Option<String>,
        /// Reading to send (default: random in the spike range).
        #[arg(long, allow_hyphen_values = true)]
        value: Option<i16>,
    },
    /// Print scored readings from the anomaly stream as they arrive.
    Tail {
        /// Where to start: trim-horizon, latest, or a UTC timestamp.
        #[arg(long, default_value = "latest")]
        from: String,
        /// Stop after this many records.
        #[arg(long)]
        count: Option<u64>,
    },
    /// Run a SQL query over the lake (Athena's dialect) and print the result.
    Query {
        /// The SQL to run.
        sql: Option<String>,
        /// Read the SQL from a file.
        #[arg(short = 'f', long = "file", conflicts_with = "sql")]
        file: Option<PathBuf>,
        /// Keep at most this many rows (default: query.max_rows).
        #[arg(long)]
        max_rows: Option<u32>,
    },
    /// Maintain the local lake.
    Lake {
        #[command(subcommand)]
        action: LakeCommand,
    },
    /// Deploy, inspect or delete the resources of the pipeline.
    Stack {
        #[command(subcommand)]
        action: StackCommand,
    },
    /// Run the detector alone, or score a file of recorded readings to backtest a threshold.
    Detect {
        /// NDJSON readings to score offline; prints scored readings as NDJSON.
        #[arg(long)]
        input: Option<PathBuf>,
    },
    /// Measure throughput: raw RCF, the whole local pipeline, stream append/read, per-device scaling.
    Bench {
        /// Readings per measurement.
        #[arg(long, default_value_t = 20_000)]
        points: usize,
    },
    /// Run the dashboard's pipeline and state without a terminal for a long time, printing
    /// memory and CPU every interval; then pause the producer and measure idle CPU. Exits 1
    /// if memory is not flat (±5 % after the first minute) or idle CPU is 0.5 % of a core or
    /// more. Runs in a fresh temporary folder unless --data-dir is given.
    Soak {
        /// How long to produce, e.g. 10m.
        #[arg(long, default_value = "10m")]
        duration: String,
        /// Readings per second, all devices together.
        #[arg(long, default_value_t = 5_000.0)]
        rate: f64,
        /// Sample interval.
        #[arg(long, default_value = "30s")]
        every: String,
        /// Idle window measured after the producer is paused.
        #[arg(long, default_value = "30s")]
        idle: String,
        /// Run in this folder (kept) instead of a temporary one.
        #[arg(long)]
        data_dir: Option<std::path::PathBuf>,
    },
    /// Check or print the configuration.
    Config {
        #[command(subcommand)]
        action: ConfigCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum StackCommand {
    /// Create or update the stack and follow it until it settles. On AWS with
    /// `[aws] detector = "lambda"` this builds the detector function with cargo-lambda first
    /// (unless --artifact) and uploads it to the stack's bucket.
    Deploy {
        /// The detector function's zip (a `bootstrap.zip` from `cargo lambda build`) to deploy
        /// instead of building it.
        #[arg(long, value_name = "PATH")]
        artifact: Option<std::path::PathBuf>,
    },
    /// Show the stack's status and each resource's status.
    Status,
    /// Show the stack's recent events.
    Events,
    /// Show the stack's outputs.
    Outputs,
    /// Print the IAM policy an operator needs to run the dashboard on the deployed stack
    /// (with --deploy: to deploy and delete it), filled with the account, region and names.
    Policy {
        #[arg(long)]
        deploy: bool,
    },
    /// Delete the stack (asks first unless --yes).
    Delete {
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
        /// On AWS, delete the lake bucket too (readings, query results, the detector's code
        /// and model), which is otherwise kept.
        #[arg(long)]
        delete_lake: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum LakeCommand {
    /// Turn the objects of each closed hour (JSON, and small Parquet objects) into one Parquet
    /// object (a fraction of the bytes to scan), atomically: a query sees the originals or the
    /// Parquet object, never both or neither, and the originals are removed only once the
    /// Parquet object is durable.
    /// Lines that are not readings are kept under delivery-errors/compaction-malformed/.
    Compact {
        /// An hour is closed this long after it ends (default: twice delivery's buffer
        /// interval, plus a minute), e.g. 0s, 10m.
        #[arg(long, value_name = "DURATION")]
        min_age: Option<String>,
        /// Tests: abort after this many file-system steps.
        #[arg(long, hide = true)]
        abort_after_steps: Option<u64>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the config and say which file it came from.
    Check,
    /// Print the effective config (defaults, file and resolved paths) as TOML.
    Print,
}

impl Command {
    /// The command as the user typed it, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Produce { .. } => "produce",
            Command::Spike { .. } => "spike",
            Command::Tail { .. } => "tail",
            Command::Query { .. } => "query",
            Command::Lake { .. } => "lake compact",
            Command::Stack { action } => match action {
                StackCommand::Deploy { .. } => "stack deploy",
                StackCommand::Status => "stack status",
                StackCommand::Events => "stack events",
                StackCommand::Outputs => "stack outputs",
                StackCommand::Delete { .. } => "stack delete",
                StackCommand::Policy { .. } => "stack policy",
            },
            Command::Detect { .. } => "detect",
            Command::Config { .. } => "config",
            Command::Bench { .. } => "bench",
            Command::Soak { .. } => "soak",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_subcommand_explains_itself() {
        for sub in Cli::command().get_subcommands() {
            assert!(sub.get_about().is_some(), "{} has no help", sub.get_name());
        }
    }

    #[test]
    fn negative_spike_values_parse() {
        let cli = Cli::try_parse_from(["iotaa", "spike", "--value", "-450"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Spike {
                value: Some(-450),
                ..
            })
        ));
    }
}
