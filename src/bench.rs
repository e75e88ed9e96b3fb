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

use crate::backend::local::{self, Layout, LocalStreams};
use crate::config::{self, Loaded};
use crate::detector::{Detector, DetectorParams};
use crate::pipeline::run::{Pipeline, PipelineSettings};
use crate::pipeline::{Reporter, StreamRole, Streams};
use crate::records::Reading;
use crate::stream::{NewRecord, StartAt, Stream, StreamOptions};

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

fn per_sec(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

/// Raw library rate: score then update, one 1-D forest, seed parameters.
fn raw_rcf(data: &[Reading], p: &DetectorParams) -> Result<f64> {
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
        forest
            .update(&point, 0)
            .map_err(|e| color_eyre::eyre::eyre!("update: {e}"))?;
    }
    std::hint::black_box(sum);
    Ok(per_sec(data.len(), start.elapsed()))
}

fn pipeline_rate(dir: &Path, n: usize) -> Result<f64> {
    let text = "data_dir = \"data\"\n[producer]\nrate = 1000000\nbatch_size = 500\n[delivery]\nbuffer_interval_secs = 1\n";
    let loaded: Loaded = config::parse(text, &dir.join("config.toml"))?;
    let layout = Layout::new(&loaded);
    let streams = Arc::new(LocalStreams::open(&layout, &loaded)?);
    let mut producer = local::producer_settings(&loaded);
    producer.limit = Some(n as u64);
    producer.seed = Some(7);
    let settings = PipelineSettings {
        producer: Some(producer),
        delivery: Some(local::delivery_settings(&layout, &loaded)),
        scoring: Some(local::scoring_settings(&layout, &loaded)),
        alerts: Some(local::alert_settings(&layout, &loaded)),
        tail: None,
    };
    let report: Reporter = Arc::new(|_| {});
    let start = Instant::now();
    let pipeline = Pipeline::start(streams.clone(), settings, report)?;
    while streams.last_sequence(StreamRole::Anomalies).unwrap_or(0) < n as u64 {
        std::thread::sleep(Duration::from_millis(2));
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

/// Per-device forests for `devices` devices: all on one thread, then sharded on two.
fn per_device_scaling(data: &[Reading], p: &DetectorParams) -> Result<(f64, f64)> {
    let params = DetectorParams {
        per_device: true,
        explanation: false,
        ..*p
    };
    let run = |shard: Vec<&Reading>| -> Result<usize> {
        let mut d = Detector::new(params)?;
        for r in &shard {
            std::hint::black_box(d.score(r));
        }
        Ok(shard.len())
    };
    let start = Instant::now();
    run(data.iter().collect())?;
    let one = per_sec(data.len(), start.elapsed());
    let shard = |k: usize| -> Vec<&Reading> {
        data.iter()
            .filter(|r| crate::detector::device_seed(0, &r.device_id) % 2 == k as u64)
            .collect()
    };
    let (a, b) = (shard(0), shard(1));
    let start = Instant::now();
    let (ra, rb) = std::thread::scope(|s| {
        let ha = s.spawn(|| run(a));
        let hb = s.spawn(|| run(b));
        (ha.join(), hb.join())
    });
    let n = ra.map_err(|_| color_eyre::eyre::eyre!("bench thread panicked"))??
        + rb.map_err(|_| color_eyre::eyre::eyre!("bench thread panicked"))??;
    Ok((one, per_sec(n, start.elapsed())))
}

pub fn run(points: usize, scratch: &Path) -> Result<()> {
    let p = DetectorParams::seed();
    let dir = scratch.join(format!("bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = (|| -> Result<()> {
        let data = readings(points, 5, 42);
        println!(
            "iotaa bench: {points} readings, seed parameters (100 trees, sample 256, decay 120, shingle 1)"
        );
        let raw = raw_rcf(&data, &p)?;
        println!("  raw krcflib score+update, 1 thread     {raw:>10.0} readings/s   (baseline)");
        let pipe = pipeline_rate(&dir.join("pipeline"), points)?;
        println!(
            "  whole local pipeline                   {pipe:>10.0} readings/s   ratio to raw {:.2}",
            pipe / raw
        );
        let (append, read) = stream_rates(&dir, &data)?;
        println!("  stream append (batches of 500, fsync)  {append:>10.0} records/s");
        println!("  stream read                            {read:>10.0} records/s");
        let devices = readings(points, 50, 43);
        let (one, two) = per_device_scaling(&devices, &p)?;
        println!("  per-device forests (50), 1 thread      {one:>10.0} readings/s");
        println!(
            "  per-device forests (50), 2 threads     {two:>10.0} readings/s   speedup {:.2}×",
            two / one
        );
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}
