//! `iotaa bench`: throughput figures, all measured in one run on the same data.
//!
//! 1. The raw RCF library (krcflib) scoring then updating each reading: the baseline.
//! 2. The whole local pipeline: producer → readings stream → scoring → anomaly stream, with
//!    delivery and alerts running beside it; records/s from the producer's first reading until
//!    the last scored reading is on the anomaly stream. pipeline / raw is the overhead ratio.
//! 3. Stream log append (batches of 500, one fsync each) and read rates.
//! 4. Per-device forests on one thread and on two threads (devices sharded), and the speedup.
//!
//! Every measurement uses the seed's detector parameters (100 trees, sample size 256, time
//! decay 120, shingle 1) and the seed's readings (uniform -5..=5, 5 devices), seeded.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use color_eyre::eyre::Result;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rcflib::rcf::{AugmentedRCF, RCFBuilder, RCFOptionsBuilder};

use iot_anomaly_analytics::backend;
use iot_anomaly_analytics::config::{self, Loaded};
use iot_anomaly_analytics::detector::{Detector, DetectorParams};
use iot_anomaly_analytics::pipeline::run::Pipeline;
use iot_anomaly_analytics::pipeline::{Reporter, StreamRole};
use iot_anomaly_analytics::records::Reading;
use iot_anomaly_analytics::stream::{NewRecord, StartAt, Stream, StreamOptions};

const DEVICES: [&str; 5] = ["aaaa", "bbbb", "cccc", "dddd", "eeee"];

fn readings(n: usize, devices: usize, seed: u64) -> Vec<Reading> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|i| Reading {
            device_id: if devices <= DEVICES.len() {
                DEVICES[i % devices].to_string()
            } else {
                format!("dev{:03}", i % devices)
            },
            sensor_reading: rng.random_range(-5..=5),
            reading_timestamp: "2026-11-30 05:00:00.000".into(),
        })
        .collect()
}

/// Runs of each measurement. A baseline and the thing compared with it run back to back in
/// pairs, so both see the same load on a shared machine; medians are reported.
const RUNS: usize = 5;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median rates of `base` and `other` over `RUNS` back-to-back pairs, and the median of the
/// per-pair ratios other / base.
fn paired(
    mut base: impl FnMut(usize) -> Result<f64>,
    mut other: impl FnMut(usize) -> Result<f64>,
) -> Result<(f64, f64, f64)> {
    let (mut b, mut o, mut r) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..RUNS {
        let x = base(run)?;
        let y = other(run)?;
        b.push(x);
        o.push(y);
        r.push(y / x);
    }
    Ok((median(b), median(o), median(r)))
}

fn per_sec(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

/// Raw library rate: score (and attribution, for the explanation) then update, one 1-D
/// forest, seed parameters.
fn raw_rcf(data: &[Reading], p: &DetectorParams, attribution: bool) -> Result<f64> {
    let mut builder = RCFBuilder::new(1, p.shingle_size);
    builder
        .number_of_trees(p.trees)
        .tree_capacity(p.sample_size)
        .time_decay(1.0 / p.time_decay as f64)
        .internal_shingling(true)
        .random_seed(p.random_seed);
    let mut forest = builder
        .build_small_simple::<u64>()
        .map_err(|e| color_eyre::eyre::eyre!("build forest: {e}"))?;
    let start = Instant::now();
    let mut sum = 0.0;
    for r in data {
        let point = [r.sensor_reading as f32];
        sum += forest.score(&point).unwrap_or(0.0);
        if attribution {
            sum += forest
                .attribution(&point)
                .map(|a| a.high.iter().sum::<f64>())
                .unwrap_or(0.0);
        }
        forest
            .update(&point, 0)
            .map_err(|e| color_eyre::eyre::eyre!("update: {e}"))?;
    }
    std::hint::black_box(sum);
    Ok(per_sec(data.len(), start.elapsed()))
}

fn pipeline_rate(dir: &Path, n: usize, explanation: bool) -> Result<f64> {
    let text = format!(
        "data_dir = \"data\"\n[producer]\nrate = 1000000\nbatch_size = 500\n[delivery]\nbuffer_interval_secs = 1\n[detector]\nexplanation = {explanation}\n"
    );
    let text = text.as_str();
    let loaded: Loaded = config::parse(text, &dir.join("config.toml"))?;
    let backend = backend::open(&loaded)?;
    let streams = backend.streams.clone();
    let mut producer = backend.plan.producer.clone();
    producer.limit = Some(n as u64);
    producer.seed = Some(7);
    let settings = backend.plan.headless(producer, false);
    let report: Reporter = Arc::new(|_| {});
    let start = Instant::now();
    let pipeline = Pipeline::start(streams.clone(), settings, report)?;
    while streams.last_sequence(StreamRole::Anomalies).unwrap_or(0) < n as u64 {
        std::thread::sleep(Duration::from_millis(10));
    }
    let elapsed = start.elapsed();
    pipeline.shutdown();
    Ok(per_sec(n, elapsed))
}

fn stream_rates(dir: &Path, data: &[Reading]) -> Result<(f64, f64)> {
    let stream = Stream::open(
        &dir.join("bench-stream"),
        StreamOptions {
            segment_size_bytes: 16 << 20,
        },
    )?;
    let lines: Vec<(String, Vec<u8>)> = data
        .iter()
        .map(|r| (r.device_id.clone(), r.encode()))
        .collect();
    let start = Instant::now();
    for chunk in lines.chunks(500) {
        let batch: Vec<NewRecord<'_>> = chunk
            .iter()
            .map(|(k, d)| NewRecord {
                partition_key: k,
                data: d,
            })
            .collect();
        stream.append(&batch, 0)?;
    }
    let append = per_sec(data.len(), start.elapsed());
    let start = Instant::now();
    let mut reader = stream.reader(StartAt::TrimHorizon)?;
    let mut read = 0;
    loop {
        let batch = reader.next_batch(10_000)?;
        if batch.is_empty() {
            break;
        }
        read += batch.len();
    }
    Ok((append, per_sec(read, start.elapsed())))
}

/// Our detector (warm-up, records) without the pipeline around it, explanation off.
fn detector_alone(data: &[Reading], p: &DetectorParams) -> Result<f64> {
    let mut d = Detector::new(DetectorParams {
        explanation: false,
        ..*p
    })?;
    let start = Instant::now();
    for r in data {
        std::hint::black_box(d.score(r));
    }
    Ok(per_sec(data.len(), start.elapsed()))
}

/// Per-device forests (one per device), devices sharded over `threads` threads.
fn per_device_scaling(data: &[Reading], p: &DetectorParams, threads: u64) -> Result<f64> {
    let params = DetectorParams {
        per_device: true,
        explanation: false,
        ..*p
    };
    let shards: Vec<Vec<&Reading>> = (0..threads)
        .map(|k| {
            data.iter()
                .filter(|r| {
                    iot_anomaly_analytics::detector::device_seed(0, &r.device_id) % threads == k
                })
                .collect()
        })
        .collect();
    let start = Instant::now();
    let scored = std::thread::scope(|s| {
        let handles: Vec<_> = shards
            .into_iter()
            .map(|shard| {
                s.spawn(move || -> Result<usize> {
                    let mut d = Detector::new(params)?;
                    for r in &shard {
                        std::hint::black_box(d.score(r));
                    }
                    Ok(shard.len())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| color_eyre::eyre::eyre!("bench thread panicked"))?
            })
            .sum::<Result<usize>>()
    })?;
    Ok(per_sec(scored, start.elapsed()))
}

pub fn run(points: usize, scratch: &Path) -> Result<()> {
    let p = DetectorParams::seed();
    let dir = scratch.join(format!("bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = (|| -> Result<()> {
        let data = readings(points, 5, 42);
        println!(
            "iotaa bench: {points} readings, seed parameters (100 trees, sample 256, decay 120, shingle 1), medians of {RUNS} paired runs"
        );
        let (raw, wrapped, ratio) =
            paired(|_| raw_rcf(&data, &p, false), |_| detector_alone(&data, &p))?;
        println!(
            "  raw krcflib score+update, 1 thread           {raw:>10.0} readings/s   (baseline)"
        );
        println!(
            "  our Detector alone (no JSON), 1 thread       {wrapped:>10.0} readings/s   ratio {ratio:.2}"
        );
        let (raw, pipe, ratio) = paired(
            |_| raw_rcf(&data, &p, false),
            |run| pipeline_rate(&dir.join(format!("pipeline-{run}")), points, false),
        )?;
        println!(
            "  raw krcflib score+update, 1 thread           {raw:>10.0} readings/s   (baseline)"
        );
        println!(
            "  whole local pipeline, no explanation         {pipe:>10.0} readings/s   ratio {ratio:.2}"
        );
        let (raw, pipe, ratio) = paired(
            |_| raw_rcf(&data, &p, true),
            |run| pipeline_rate(&dir.join(format!("pipeline-x-{run}")), points, true),
        )?;
        println!(
            "  raw krcflib score+attribution+update         {raw:>10.0} readings/s   (baseline)"
        );
        println!(
            "  whole local pipeline, ANOMALY_EXPLANATION    {pipe:>10.0} readings/s   ratio {ratio:.2}"
        );
        let mut appends = Vec::new();
        let mut reads = Vec::new();
        for run in 0..RUNS {
            let (a, r) = stream_rates(&dir.join(format!("stream-{run}")), &data)?;
            appends.push(a);
            reads.push(r);
        }
        println!(
            "  stream append (batches of 500, fsync)        {:>10.0} records/s",
            median(appends)
        );
        println!(
            "  stream read                                  {:>10.0} records/s",
            median(reads)
        );
        let devices = readings(points, 50, 43);
        let (one, two, speedup) = paired(
            |_| per_device_scaling(&devices, &p, 1),
            |_| per_device_scaling(&devices, &p, 2),
        )?;
        println!("  per-device forests (50 devices), 1 thread    {one:>10.0} readings/s");
        println!(
            "  per-device forests (50 devices), 2 threads   {two:>10.0} readings/s   speedup {speedup:.2}×"
        );
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}
