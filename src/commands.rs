//! Headless commands: the same pipeline without the dashboard (local backend).

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use color_eyre::eyre::{Result, WrapErr, eyre};

use crate::backend::local::{self, Layout, LocalStreams, folder_size};
use crate::cli::Format;
use crate::config::Loaded;
use crate::detector;
use crate::pipeline::producer::spike_reading;
use crate::pipeline::run::{Pipeline, PipelineSettings};
use crate::pipeline::{Event, Reporter, StartAt, StopFlag, StreamRole, Streams, put_all};
use crate::records::{ScoredReading, parse_timestamp};

/// Sets the returned flag on SIGINT or SIGTERM, so headless loops end cleanly.
pub fn stop_on_signal() -> StopFlag {
    let flag = StopFlag::default();
    let f = flag.clone();
    let _ = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                use tokio::signal::unix::{SignalKind, signal};
                let (Ok(mut term), Ok(mut int)) = (
                    signal(SignalKind::terminate()),
                    signal(SignalKind::interrupt()),
                ) else {
                    return;
                };
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            });
            f.stop();
        });
    flag
}

fn open_streams(loaded: &Loaded) -> Result<(Layout, Arc<LocalStreams>)> {
    let layout = Layout::new(loaded);
    let streams = LocalStreams::open(&layout, loaded)?;
    Ok((layout, Arc::new(streams)))
}

/// The pipeline's streams on the configured backend, and where this process keeps its state
/// (checkpoints, model snapshot, alerts.log).
pub struct Opened {
    pub layout: Layout,
    pub streams: Arc<dyn Streams>,
    /// The AWS session (`None` locally); it owns the runtime the streams' calls run on, so it
    /// lives as long as they do.
    pub aws: Option<AwsSession>,
}

pub struct AwsSession {
    pub runtime: tokio::runtime::Runtime,
    pub deployed: crate::backend::aws::Deployed,
}

/// Opens the backend's streams. On AWS: finds the deployed stack (one line when there is none),
/// and keeps state under `<data_dir>/aws/<stack>/`, apart from the local pipeline's.
pub fn open_backend(loaded: &Loaded) -> Result<Opened> {
    if loaded.config.backend != crate::config::Backend::Aws {
        let (layout, streams) = open_streams(loaded)?;
        return Ok(Opened {
            layout,
            streams,
            aws: None,
        });
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("aws")
        .enable_all()
        .build()?;
    let deployed = runtime.block_on(crate::backend::aws::deployed_stack(loaded))?;
    let readings = deployed.output("ReadingsStreamName")?.to_string();
    let anomalies = deployed.output("AnomalyStreamName")?.to_string();
    let layout = Layout {
        data_dir: loaded.data_dir.join("aws").join(&deployed.stack),
        readings_stream: readings.clone(),
        anomaly_stream: anomalies.clone(),
    };
    let kinesis = crate::backend::kinesis::KinesisStreams::new(
        aws_sdk_kinesis::Client::new(&deployed.sdk),
        runtime.handle().clone(),
        readings,
        anomalies,
    );
    let streams: Arc<dyn Streams> = match loaded.config.aws.ingest {
        crate::config::Ingest::Kinesis => Arc::new(kinesis),
        crate::config::Ingest::Firehose => {
            use crate::backend::firehose::{FirehoseIngest, FirehoseWriter};
            let firehose = FirehoseWriter::new(
                aws_sdk_firehose::Client::new(&deployed.sdk),
                runtime.handle().clone(),
                deployed.output("DeliveryStreamName")?.to_string(),
            );
            // What this machine sent, for the detector (see backend::firehose).
            let sent = Layout {
                data_dir: layout.data_dir.clone(),
                readings_stream: "firehose-sent".into(),
                anomaly_stream: "unused".into(),
            };
            let local = LocalStreams::open(&sent, loaded)?;
            Arc::new(FirehoseIngest::new(firehose, local, kinesis)?)
        }
    };
    Ok(Opened {
        layout,
        streams,
        aws: Some(AwsSession { runtime, deployed }),
    })
}

/// Parses `15s`, `2m`, `1h`, `500ms` or plain seconds given to `--duration`.
pub fn parse_duration(text: &str) -> Result<Duration> {
    parse_duration_of("--duration", text)
}

/// Parses `15s`, `2m`, `1h`, `500ms` or plain seconds; errors name `flag`.
pub fn parse_duration_of(flag: &str, text: &str) -> Result<Duration> {
    let t = text.trim();
    let (number, unit) = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map_or((t, "s"), |i| t.split_at(i));
    let n: f64 = number
        .parse()
        .map_err(|_| eyre!("{flag}: expected a duration like 15s, 2m or 1h, got {text:?}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" | "" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => {
            return Err(eyre!(
                "{flag}: expected a unit of ms, s, m or h, got {text:?}"
            ));
        }
    };
    Ok(Duration::from_secs_f64(secs.max(0.0)))
}

/// `iotaa produce`: the whole local pipeline without the dashboard.
pub fn produce(
    loaded: &Loaded,
    rate: Option<f64>,
    count: Option<u64>,
    duration: Option<Duration>,
    ack_log: Option<std::path::PathBuf>,
    producer_only: bool,
) -> Result<ExitCode> {
    if let Some(path) = &ack_log {
        // Fail here, with one line, rather than in the producer thread.
        crate::pipeline::producer::open_ack_log(path)
            .wrap_err_with(|| format!("--ack-log {}", path.display()))?;
    }
    let opened = open_backend(loaded)?;
    let layout = &opened.layout;
    let on_aws = opened.aws.is_some();
    let mut producer = local::producer_settings(loaded);
    producer.start_paused = false;
    producer.limit = count;
    producer.ack_log = ack_log;
    if let Some(r) = rate {
        if !(r.is_finite() && r > 0.0) {
            return Err(eyre!(
                "--rate: expected a positive number of readings per second per device, got {r}"
            ));
        }
        producer.rate_per_device = r;
    }
    let last_counts = Arc::new(Mutex::new(None));
    let alerts = Arc::new(Mutex::new(0u64));
    let report: Reporter = {
        let last_counts = last_counts.clone();
        let alerts = alerts.clone();
        Arc::new(move |event| match event {
            Event::Producer(c) => {
                if let Ok(mut l) = last_counts.lock() {
                    *l = Some(c);
                }
            }
            Event::Alert(a) => {
                if let Ok(mut n) = alerts.lock() {
                    *n += 1;
                }
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(&a.encode());
            }
            other => eprintln!("{}", describe(&other)),
        })
    };
    // On AWS, Firehose delivers to the lake: the process runs the producer, the detector and
    // the alerts consumer (alerts.log, the webhook; the stack's function mails through SNS).
    let consumers = !producer_only;
    let settings = PipelineSettings {
        producer: Some(producer),
        delivery: (consumers && !on_aws).then(|| local::delivery_settings(layout, loaded)),
        scoring: consumers.then(|| local::scoring_settings(layout, loaded)),
        alerts: consumers.then(|| local::alert_settings(layout, loaded)),
        tail: None,
    };
    let stop = stop_on_signal();
    let pipeline = Pipeline::start(opened.streams.clone(), settings, report)?;
    let started = Instant::now();
    while !stop.is_stopped()
        && !pipeline.producer_finished()
        && duration.is_none_or(|d| started.elapsed() < d)
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "produce: stopping, {}saving the model…",
        if on_aws {
            ""
        } else {
            "flushing the lake buffer and "
        }
    );
    pipeline.shutdown();
    let c = last_counts.lock().ok().and_then(|c| *c).unwrap_or_default();
    let n = alerts.lock().map(|n| *n).unwrap_or(0);
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "produce: sent {}, acknowledged {}, failed {}, retries {}; {n} alerts; {:.0} readings/s acknowledged over {secs:.1} s",
        c.sent,
        c.acknowledged,
        c.failed,
        c.retries,
        c.acknowledged as f64 / secs.max(1e-9)
    );
    Ok(ExitCode::SUCCESS)
}

/// One line for a pipeline event, for headless output on stderr.
pub fn describe(event: &Event) -> String {
    match event {
        Event::Stage {
            stage,
            state,
            detail,
        } => format!(
            "{}: {}: {detail}",
            stage.name(),
            format!("{state:?}").to_lowercase()
        ),
        Event::Producer(c) => format!("producer: sent {} acked {}", c.sent, c.acknowledged),
        Event::Spike { device, value } => format!("producer: spike {device} = {value}"),
        Event::Delivered {
            objects,
            records,
            lag_secs,
            key,
        } => format!("delivery: object {objects}: {records} records, lag {lag_secs:.1} s: {key}"),
        Event::Scoring(p) => match p.warming_up {
            Some((seen, needed)) => format!("detector: warming up {seen}/{needed}"),
            None => format!("detector: {}", p.describe()),
        },
        Event::Scores(s) => format!("tail: {} scores", s.len()),
        Event::Alert(a) => format!("alerts: {}", String::from_utf8_lossy(&a.encode()).trim()),
        Event::Problem { stage, message } => format!("{}: {message}", stage.name()),
    }
}

/// `iotaa spike`: one anomalous reading on the readings stream.
pub fn spike(loaded: &Loaded, device: Option<String>, value: Option<i16>) -> Result<ExitCode> {
    let opened = open_backend(loaded)?;
    let streams = &opened.streams;
    let settings = local::producer_settings(loaded);
    let reading = spike_reading(&settings, device, value.map(i64::from), &mut rand::rng());
    let line = reading.encode();
    let writer = streams.writer(StreamRole::Readings)?;
    put_all(
        writer.as_ref(),
        vec![(reading.device_id.clone(), line.clone())],
        &StopFlag::default(),
        |_| {},
        None,
    )?;
    std::io::stdout().write_all(&line)?;
    Ok(ExitCode::SUCCESS)
}

/// Parses `--from`: trim-horizon, latest, or a UTC timestamp.
pub fn parse_from(text: &str) -> Result<StartAt> {
    match text {
        "trim-horizon" | "trim_horizon" | "TRIM_HORIZON" => Ok(StartAt::TrimHorizon),
        "latest" | "LATEST" => Ok(StartAt::Latest),
        t => parse_timestamp(t)
            .or_else(|| {
                chrono::DateTime::parse_from_rfc3339(t)
                    .ok()
                    .map(|d| d.with_timezone(&Utc))
            })
            .map(|d| StartAt::AtTimestamp(d.timestamp_millis()))
            .ok_or_else(|| {
                eyre!(
                    "--from: expected trim-horizon, latest or a UTC time like \"2026-11-30 05:00:00\", got {t:?}"
                )
            }),
    }
}

/// `iotaa tail`: scored readings from the anomaly stream as they arrive.
pub fn tail(loaded: &Loaded, from: &str, count: Option<u64>, format: Format) -> Result<ExitCode> {
    let from = parse_from(from)?;
    let opened = open_backend(loaded)?;
    let mut reader = opened.streams.reader(StreamRole::Anomalies, from)?;
    let stop = stop_on_signal();
    let mut out = std::io::stdout().lock();
    let mut printed = 0u64;
    match format {
        Format::Table => writeln!(
            out,
            "{:<23}  {:<8}  {:>8}  {:>7}  explanation",
            "readingTimestamp", "device", "reading", "score"
        )?,
        Format::Csv => writeln!(out, "readingTimestamp,deviceId,sensorReading,ANOMALY_SCORE")?,
        Format::Json => {}
    }
    out.flush()?;
    while !stop.is_stopped() && count.is_none_or(|c| printed < c) {
        let batch = match reader.next_batch(500) {
            Ok(batch) => batch,
            Err(crate::pipeline::PipelineError::Skipped(message)) => {
                eprintln!("tail: {message}; skipped to the next segment");
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if batch.is_empty() {
            reader.wait_for_more(Duration::from_millis(250));
            continue;
        }
        for r in batch {
            if count.is_some_and(|c| printed >= c) {
                break;
            }
            match ScoredReading::decode(&r.data) {
                Ok(s) => {
                    let rd = &s.reading;
                    match format {
                        Format::Json => out.write_all(&s.encode())?,
                        Format::Csv => writeln!(
                            out,
                            "{},{},{},{}",
                            rd.reading_timestamp, rd.device_id, rd.sensor_reading, s.anomaly_score
                        )?,
                        Format::Table => writeln!(
                            out,
                            "{:<23}  {:<8}  {:>8}  {:>7.3}  {}",
                            rd.reading_timestamp,
                            rd.device_id,
                            rd.sensor_reading,
                            s.anomaly_score,
                            s.explanation_summary()
                        )?,
                    }
                    printed += 1;
                }
                Err(e) => eprintln!("tail: anomaly stream record {}: {e}", r.sequence),
            }
        }
        out.flush()?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `iotaa detect --input FILE`: scores recorded readings offline (the threshold backtest).
pub fn detect_file(loaded: &Loaded, input: &Path) -> Result<ExitCode> {
    let file =
        std::fs::File::open(input).wrap_err_with(|| format!("cannot read {}", input.display()))?;
    let params = local::detector_params(loaded);
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

/// `iotaa detect`: the scoring stage alone, following the readings stream.
pub fn detect_follow(loaded: &Loaded) -> Result<ExitCode> {
    let opened = open_backend(loaded)?;
    let (layout, streams) = (&opened.layout, opened.streams.clone());
    let report: Reporter = Arc::new(|event| match event {
        Event::Scoring(_) => {}
        other => eprintln!("{}", describe(&other)),
    });
    let settings = PipelineSettings {
        scoring: Some(local::scoring_settings(layout, loaded)),
        ..PipelineSettings::default()
    };
    let stop = stop_on_signal();
    let pipeline = Pipeline::start(streams, settings, report)?;
    while !stop.is_stopped() {
        std::thread::sleep(Duration::from_millis(100));
    }
    pipeline.shutdown();
    Ok(ExitCode::SUCCESS)
}

/// Rows of the local stack: (resource, status, detail).
pub fn local_status(loaded: &Loaded) -> Vec<(String, String, String)> {
    let layout = Layout::new(loaded);
    let mut rows = Vec::new();
    let exists = |p: &Path| if p.exists() { "ok" } else { "missing" }.to_string();
    rows.push((
        "data dir".into(),
        exists(&layout.data_dir),
        layout.data_dir.display().to_string(),
    ));
    for role in [StreamRole::Readings, StreamRole::Anomalies] {
        let dir = layout.stream_dir(role);
        let detail = if dir.exists() {
            match crate::stream::Stream::open(
                &dir,
                crate::stream::StreamOptions {
                    segment_size_bytes: u64::from(loaded.config.local.segment_size_mib)
                        * 1024
                        * 1024,
                },
            )
            .and_then(|s| s.stats())
            {
                Ok(st) => format!(
                    "{}: records {}..{}, {} segments, {} bytes",
                    dir.display(),
                    st.first_sequence.map_or("-".into(), |s| s.to_string()),
                    st.last_sequence.map_or("-".into(), |s| s.to_string()),
                    st.segments,
                    st.bytes
                ),
                Err(e) => format!("{}: {e}", dir.display()),
            }
        } else {
            dir.display().to_string()
        };
        let name = match role {
            StreamRole::Readings => "readings stream",
            StreamRole::Anomalies => "anomaly stream",
        };
        rows.push((name.into(), exists(&dir), detail));
    }
    let lake = layout.lake();
    rows.push((
        "lake".into(),
        exists(&lake),
        format!("{}: {} bytes", lake.display(), folder_size(&lake)),
    ));
    for consumer in ["delivery", "scoring", "alerts"] {
        let p = layout.checkpoint(consumer);
        let at = match crate::pipeline::read_position(&p) {
            Ok(None) => "none".into(),
            Ok(Some(StartAt::AfterSequence(s))) => format!("after record {s}"),
            Ok(Some(_)) => "a Kinesis position".into(),
            Err(why) => why,
        };
        rows.push((format!("{consumer} checkpoint"), exists(&p), at));
    }
    let snap = layout.snapshot();
    rows.push((
        "model snapshot".into(),
        exists(&snap),
        snap.display().to_string(),
    ));
    let log = layout.alerts_log();
    let lines = std::fs::read(&log)
        .map(|b| b.iter().filter(|&&c| c == b'\n').count())
        .unwrap_or(0);
    rows.push((
        "alerts.log".into(),
        exists(&log),
        format!("{}: {lines} alerts", log.display()),
    ));
    rows
}

/// `iotaa stack deploy|status|events|outputs|delete` on the local backend.
pub fn stack(loaded: &Loaded, action: &crate::cli::StackCommand) -> Result<ExitCode> {
    use crate::cli::StackCommand;
    let print = |rows: Vec<(String, String, String)>| {
        for (name, status, detail) in rows {
            println!("{name:<20} {status:<8} {detail}");
        }
    };
    match action {
        StackCommand::Deploy => {
            open_streams(loaded)?;
            print(local_status(loaded));
        }
        StackCommand::Status => print(local_status(loaded)),
        StackCommand::Events => println!(
            "The local stack has no events: its resources are folders under {}.",
            loaded.data_dir.display()
        ),
        StackCommand::Outputs => {
            let layout = Layout::new(loaded);
            println!("lake        {}", layout.lake().display());
            println!("alerts_log  {}", layout.alerts_log().display());
            println!(
                "readings    {}",
                layout.stream_dir(StreamRole::Readings).display()
            );
            println!(
                "anomalies   {}",
                layout.stream_dir(StreamRole::Anomalies).display()
            );
        }
        StackCommand::Delete { yes } => {
            let layout = Layout::new(loaded);
            let targets = [
                layout.data_dir.join("streams"),
                layout.lake(),
                layout.data_dir.join("checkpoints"),
                layout.data_dir.join("model"),
                layout.alerts_log(),
            ];
            let question = format!(
                "Delete the streams, lake, checkpoints, model and alerts.log under {}?",
                layout.data_dir.display()
            );
            if !yes && !confirm(&question)? {
                return Ok(ExitCode::FAILURE);
            }
            for t in targets {
                let r = if t.is_dir() {
                    std::fs::remove_dir_all(&t)
                } else {
                    std::fs::remove_file(&t)
                };
                match r {
                    Ok(()) => println!("deleted {}", t.display()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(eyre!("cannot delete {}: {e}", t.display())),
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Asks `question` on stderr and reads y/N from stdin; refuses (an error) when stdin is not a
/// terminal, so a script never deletes without `--yes`.
fn confirm(question: &str) -> Result<bool> {
    if !std::io::stdin().is_terminal() {
        return Err(eyre!(
            "stack delete: refusing without --yes when stdin is not a terminal"
        ));
    }
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    let yes = matches!(answer.trim(), "y" | "Y" | "yes");
    if !yes {
        eprintln!("stack delete: nothing deleted");
    }
    Ok(yes)
}

/// `iotaa stack …` with the aws backend: CloudFormation (see [`crate::backend::aws`]).
pub fn aws_stack(loaded: &Loaded, action: &crate::cli::StackCommand) -> Result<ExitCode> {
    use crate::backend::aws;
    use crate::cli::StackCommand;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Polling while a stack is in progress; tests against moto (which settles at once) make it
    // short.
    let poll = std::env::var("IOTAA_STACK_POLL_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(aws::POLL, Duration::from_millis);
    let ok = match action {
        StackCommand::Deploy => runtime.block_on(aws::deploy(loaded, poll, &aws::Stdio))?,
        StackCommand::Status => runtime.block_on(aws::status(loaded))?,
        StackCommand::Events => runtime.block_on(aws::print_events(loaded))?,
        StackCommand::Outputs => runtime.block_on(aws::print_outputs(loaded))?,
        StackCommand::Delete { yes } => {
            let question = format!(
                "Delete the CloudFormation stack {} and every resource in it, including every object in its bucket (the lake and query results)?",
                loaded.config.aws.stack_name
            );
            if !yes && !confirm(&question)? {
                return Ok(ExitCode::FAILURE);
            }
            runtime.block_on(aws::delete(loaded, poll, &aws::Stdio))?
        }
    };
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
