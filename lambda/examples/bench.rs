//! `cargo run --release -p iotaa-lambda --example bench`: what one invocation of the detector
//! function costs in CPU, against the detector alone on the same readings, and what the function
//! would cost a month next to the Kinesis Data Analytics application it replaces.
//!
//! - Invocation: the Kinesis event's JSON as Lambda delivers it (base64 data) is parsed, every
//!   reading decoded, scored and encoded, the PutRecords batches built and the reply serialized:
//!   the handler's own work. Its AWS calls go to `DiscardingAws`, which makes none (it keeps
//!   the snapshot in memory and drops the records), so the figure is the function's compute,
//!   not AWS's latency. The baseline is our `Detector` scoring the same readings already
//!   decoded. Baseline and invocation run back to back, 7 pairs (alternating which goes
//!   first); rates are medians, the ratio is the median of the pairs' ratios.
//! - Snapshot: its size, and the time to encode and to decode it, for one forest after the
//!   batches (the seed's parameters).
//! - Cost: from the measured compute rate, scaled to the share of a vCPU that Lambda gives the
//!   chosen memory (a full vCPU at 1,769 MB), plus an assumed 25 ms a call of AWS latency
//!   (the S3 HEAD and the PutRecords), with the us-east-1 prices below (2026-12-02).

use std::time::{Duration, Instant};

use aws_lambda_events::encodings::Base64Data;
use aws_lambda_events::event::kinesis::KinesisEvent;
use iotaa_detector::records::Reading;
use iotaa_detector::{Detector, DetectorParams};
use iotaa_lambda::config::Config;
use iotaa_lambda::handler::{Aws, Handler};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

/// Lambda, arm64, us-east-1: $ per GB-second and per request; S3 Standard: $ per 1,000 PUT and
/// per 1,000 HEAD/GET; Kinesis Data Analytics for SQL: $ per KPU-hour (what the seed paid).
const LAMBDA_GB_SECOND: f64 = 0.000_013_333_4;
const LAMBDA_REQUEST: f64 = 0.20 / 1_000_000.0;
const S3_PUT_PER_1000: f64 = 0.005;
const S3_GET_PER_1000: f64 = 0.0004;
const KPU_HOUR: f64 = 0.11;
/// Baseline/invocation pairs per batch size.
const PAIRS: usize = 7;
const MONTH_SECS: f64 = 30.0 * 24.0 * 3600.0;
/// Assumed AWS latency of one invocation's calls (S3 HEAD + PutRecords), not measured here.
const CALL_LATENCY: Duration = Duration::from_millis(25);

/// Makes no AWS call: keeps the last snapshot in memory, drops the scored records.
#[derive(Default)]
struct DiscardingAws {
    snapshot: std::sync::Mutex<Option<(Vec<u8>, String)>>,
}

impl Aws for DiscardingAws {
    async fn position(&self, _key: &str) -> Result<Option<String>, String> {
        Ok(self
            .snapshot
            .lock()
            .unwrap()
            .as_ref()
            .map(|(_, p)| p.clone()))
    }
    async fn load(&self, _key: &str) -> Result<Option<(Vec<u8>, String)>, String> {
        Ok(self.snapshot.lock().unwrap().clone())
    }
    async fn save(&self, _key: &str, bytes: Vec<u8>, position: &str) -> Result<(), String> {
        *self.snapshot.lock().unwrap() = Some((bytes, position.to_string()));
        Ok(())
    }
    async fn put_records(&self, records: &[(String, Vec<u8>)]) -> Result<Vec<usize>, String> {
        std::hint::black_box(records);
        Ok(Vec::new())
    }
    async fn parent_shard(&self, _arn: &str, _shard: &str) -> Result<Option<String>, String> {
        Ok(None)
    }
    fn location(&self, key: &str) -> String {
        format!("memory:{key}")
    }
}

fn readings(n: usize, seed: u64) -> Vec<Reading> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|i| Reading {
            device_id: ["aaaa", "bbbb", "cccc", "dddd", "eeee"][i % 5].to_string(),
            sensor_reading: if rng.random_bool(0.001) {
                rng.random_range(400..=500)
            } else {
                rng.random_range(-5..=5)
            },
            reading_timestamp: format!(
                "2026-12-02 {:02}:{:02}:{:02}.000",
                i / 3600 % 24,
                i / 60 % 60,
                i % 60
            ),
        })
        .collect()
}

/// The event bytes of `rs` in batches of `batch`, as the mapping sends them.
fn events(rs: &[Reading], batch: usize) -> Vec<Vec<u8>> {
    rs.chunks(batch)
        .enumerate()
        .map(|(b, part)| {
            let records: Vec<_> = part
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let seq = format!("49590338271490256608559692538361571{:021}", b * batch + i + 1);
                    let mut data = Base64Data::default();
                    data.0 = r.encode();
                    json!({
                        "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": r.device_id,
                            "sequenceNumber": seq, "data": data,
                            "approximateArrivalTimestamp": 1764670000.123},
                        "eventSource": "aws:kinesis", "eventVersion": "1.0",
                        "eventID": format!("shardId-000000000000:{seq}"),
                        "eventName": "aws:kinesis:record",
                        "invokeIdentityArn": "arn:aws:iam::123456789012:role/iotaa-DetectorRole",
                        "awsRegion": "us-east-1",
                        "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/iotaa-readings"
                    })
                })
                .collect();
            serde_json::to_vec(&json!({ "Records": records })).unwrap()
        })
        .collect()
}

fn config(params: DetectorParams) -> Config {
    Config {
        params,
        anomaly_stream: "iotaa-anomalies".into(),
        bucket: "bench".into(),
        prefix: "detector-state/".into(),
        snapshot_interval: Duration::from_secs(60),
    }
}

fn baseline(rs: &[Reading], params: DetectorParams) -> f64 {
    let mut d = Detector::new(params).unwrap();
    let start = Instant::now();
    for r in rs {
        std::hint::black_box(d.score(r));
    }
    rs.len() as f64 / start.elapsed().as_secs_f64()
}

fn invocations(
    rt: &tokio::runtime::Runtime,
    rs: &[Reading],
    events: &[Vec<u8>],
    params: DetectorParams,
) -> f64 {
    let mut h = Handler::new(config(params), DiscardingAws::default());
    h.log = |_| {};
    let start = Instant::now();
    for e in events {
        let event: KinesisEvent = serde_json::from_slice(e).unwrap();
        let (reply, summary) = rt.block_on(h.kinesis(event));
        assert!(reply.batch_item_failures.is_empty());
        std::hint::black_box(serde_json::to_vec(&reply).unwrap());
        std::hint::black_box(summary);
    }
    rs.len() as f64 / start.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let params = DetectorParams::seed();
    let n = 20_000;
    let rs = readings(n, 42);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    println!(
        "lambda bench: {n} readings, seed parameters (100 trees, sample 256, decay 120, explanation), medians of {PAIRS} paired runs (ratio: median of the pairs' ratios)"
    );
    let mut at_1000 = 0.0;
    for batch in [100, 1_000, 10_000] {
        let evs = events(&rs, batch);
        let (mut base, mut inv, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for pair in 0..PAIRS {
            // Alternate which runs first, so a drift in the host's load favours neither.
            let (b, i) = if pair % 2 == 0 {
                let b = baseline(&rs, params);
                (b, invocations(&rt, &rs, &evs, params))
            } else {
                let i = invocations(&rt, &rs, &evs, params);
                (baseline(&rs, params), i)
            };
            base.push(b);
            inv.push(i);
            ratios.push(i / b);
        }
        let (b, i) = (median(base), median(inv));
        if batch == 1_000 {
            at_1000 = i;
        }
        println!(
            "  batch {batch:>6}: detector alone {b:>8.0} readings/s   one invocation {i:>8.0} readings/s   ratio {:.2}",
            median(ratios)
        );
    }

    let mut d = Detector::new(params).unwrap();
    for r in &rs {
        d.score(r);
    }
    let (mut enc, mut dec) = (Vec::new(), Vec::new());
    let mut bytes = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        bytes = d.to_snapshot_bytes().unwrap();
        enc.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let back = Detector::from_snapshot_bytes(&bytes, &params, std::path::Path::new("memory"));
        dec.push(t.elapsed().as_secs_f64() * 1e3);
        assert!(back.is_ok());
    }
    println!(
        "  snapshot (one forest): {:.1} KiB, encode {:.1} ms, decode {:.1} ms (plus one S3 PUT or GET)",
        bytes.len() as f64 / 1024.0,
        median(enc),
        median(dec)
    );

    println!(
        "  cost a month, us-east-1, arm64 (2026-12-02 prices; {} ms assumed AWS latency a call; batching window 1 s, one shard):",
        CALL_LATENCY.as_millis()
    );
    let kda = KPU_HOUR * MONTH_SECS / 3600.0;
    for (rate, memory_mb) in [(5.0, 512.0), (1_000.0, 512.0), (1_000.0, 1_769.0)] {
        // One invocation a second per shard (the batching window) while readings arrive.
        let calls = MONTH_SECS;
        let vcpu = (memory_mb / 1_769.0_f64).min(1.0);
        let compute = rate / (at_1000 * vcpu);
        let secs = compute + CALL_LATENCY.as_secs_f64();
        let gb_s = calls * secs * memory_mb / 1024.0;
        let lambda = gb_s * LAMBDA_GB_SECOND + calls * LAMBDA_REQUEST;
        let s3 = calls * S3_GET_PER_1000 / 1000.0 + (MONTH_SECS / 60.0) * S3_PUT_PER_1000 / 1000.0;
        println!(
            "    {rate:>5} readings/s at {memory_mb:>4} MB: {:>4.0} ms an invocation, {:>7.0} GB-s ${:.2} + requests ${:.2} + S3 ${:.2} = ${:.2}   (KDA, 1 KPU: ${kda:.2})",
            secs * 1e3,
            gb_s,
            gb_s * LAMBDA_GB_SECOND,
            calls * LAMBDA_REQUEST,
            s3,
            lambda + s3
        );
    }
}
