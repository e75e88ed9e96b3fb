//! The real `bootstrap` under a local Lambda Runtime API (`cargo lambda watch
//! --only-lambda-apis`), fed Kinesis events built from moto's GetRecords the way the event
//! source mapping builds them (base64 data, sequence numbers, shard id, event source ARN), with
//! the state bucket and the anomaly streams on moto. moto stores Lambda functions but cannot run
//! them (it needs Docker); this runs the function's own binary instead, as Lambda would.
//!
//! Needs `IOTAA_MOTO_ENDPOINT` (`./.ci/run` starts moto) and cargo-lambda (`./.ci/run` installs
//! it in `.ci/venv`, which this test puts on PATH).

#[path = "../../tests/common/proxy.rs"]
#[allow(dead_code)]
mod proxy;

use std::ffi::OsString;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_lambda_events::encodings::Base64Data;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ShardIteratorType};
use iotaa_detector::records::{Reading, ScoredReading};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use proxy::{FaultProxy, Faults};

const THRESHOLD: f64 = 4.0;
const BATCH: usize = 100;

fn moto() -> String {
    std::env::var("IOTAA_MOTO_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "IOTAA_MOTO_ENDPOINT is not set: run the tests through ./.ci/run, which starts moto, \
             or start .ci/venv/bin/moto_server and set IOTAA_MOTO_ENDPOINT=http://127.0.0.1:5000"
        )
    })
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// PATH with `.ci/venv/bin` (cargo-lambda and its zig) in front; fails the test when
/// cargo-lambda cannot be run.
fn path_with_cargo_lambda() -> OsString {
    let mut dirs = vec![workspace().join(".ci").join("venv").join("bin")];
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    let path = std::env::join_paths(dirs).unwrap();
    let ok = Command::new("cargo")
        .args(["lambda", "--version"])
        .env("PATH", &path)
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "cargo-lambda is not installed: run ./.ci/run (it installs it in .ci/venv), or `pip install cargo-lambda`"
    );
    path
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_until(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The Runtime API emulator and the function process attached to it: one execution
/// environment. Dropping it kills both (the next one is a cold start).
struct Environment {
    watch: Child,
    function: Child,
    port: u16,
    path: OsString,
    dir: tempfile::TempDir,
}

impl Environment {
    fn start(endpoint: &str, env: &[(&str, String)]) -> Environment {
        let path = path_with_cargo_lambda();
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let watch = Command::new("cargo")
            .args([
                "lambda",
                "watch",
                "--only-lambda-apis",
                "--invoke-address",
                "127.0.0.1",
            ])
            .args(["--invoke-port", &port.to_string()])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("PATH", &path)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.path().join("watch.log")).unwrap())
            .stderr(std::fs::File::create(dir.path().join("watch.err")).unwrap())
            .spawn()
            .unwrap();
        wait_until("the Runtime API emulator", Duration::from_secs(60), || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        let mut function = Command::new(env!("CARGO_BIN_EXE_bootstrap"));
        function
            .env_clear()
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{port}/.rt"),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", "_")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL", endpoint)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.path().join("function.log")).unwrap())
            .stderr(std::fs::File::create(dir.path().join("function.err")).unwrap());
        for (k, v) in env {
            function.env(k, v);
        }
        let function = function.spawn().unwrap();
        Environment {
            watch,
            function,
            port,
            path,
            dir,
        }
    }

    /// Invokes the function with `event` (`cargo lambda invoke`) and returns its reply.
    fn invoke(&mut self, event: &Value) -> Value {
        let file = self.dir.path().join("event.json");
        std::fs::write(&file, serde_json::to_vec(event).unwrap()).unwrap();
        let out = Command::new("cargo")
            .args(["lambda", "invoke", "--invoke-address", "127.0.0.1"])
            .args([
                "--invoke-port",
                &self.port.to_string(),
                "--output-format",
                "json",
            ])
            .arg("--data-file")
            .arg(&file)
            .arg("_")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("PATH", &self.path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "invoke failed: {}\nfunction log:\n{}{}",
            String::from_utf8_lossy(&out.stderr),
            self.log(),
            std::fs::read_to_string(self.dir.path().join("function.err")).unwrap_or_default()
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("reply {:?}: {e}", String::from_utf8_lossy(&out.stdout)))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("function.log")).unwrap_or_default()
    }
}

impl Drop for Environment {
    fn drop(&mut self) {
        let _ = self.function.kill();
        let _ = self.function.wait();
        let _ = self.watch.kill();
        let _ = self.watch.wait();
    }
}

/// One record as GetRecords returned it.
#[derive(Clone)]
struct Got {
    seq: String,
    key: String,
    data: Vec<u8>,
    arrival: f64,
}

fn sdk(endpoint: &str) -> aws_config::SdkConfig {
    let creds = aws_sdk_kinesis::config::Credentials::new("testing", "testing", None, None, "test");
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_kinesis::config::SharedCredentialsProvider::new(
            creds,
        ))
        .http_client(
            aws_smithy_http_client::Builder::new()
                .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                    aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
                ))
                .build_https(),
        )
        .build()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn create_stream(k: &aws_sdk_kinesis::Client, name: &str) -> String {
    k.create_stream()
        .stream_name(name)
        .shard_count(1)
        .send()
        .await
        .unwrap();
    k.describe_stream_summary()
        .stream_name(name)
        .send()
        .await
        .unwrap()
        .stream_description_summary()
        .unwrap()
        .stream_arn()
        .to_string()
}

/// Every record of the stream's one shard, from the start.
async fn read_all(k: &aws_sdk_kinesis::Client, name: &str) -> Vec<Got> {
    let shard = k
        .list_shards()
        .stream_name(name)
        .send()
        .await
        .unwrap()
        .shards()[0]
        .shard_id()
        .to_string();
    let mut it = k
        .get_shard_iterator()
        .stream_name(name)
        .shard_id(shard)
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap()
        .shard_iterator()
        .map(str::to_string);
    let mut out = Vec::new();
    while let Some(i) = it {
        let page = k.get_records().shard_iterator(i).send().await.unwrap();
        if page.records().is_empty() {
            break;
        }
        for r in page.records() {
            out.push(Got {
                seq: r.sequence_number().to_string(),
                key: r.partition_key().unwrap_or_default().to_string(),
                data: r.data().as_ref().to_vec(),
                arrival: r
                    .approximate_arrival_timestamp()
                    .map_or(0.0, |t| t.as_secs_f64()),
            });
        }
        it = page.next_shard_iterator().map(str::to_string);
    }
    out
}

/// A Kinesis event as the event source mapping builds it from records of one shard.
fn event(arn: &str, records: &[Got]) -> Value {
    let records: Vec<Value> = records
        .iter()
        .map(|r| {
            let mut data = Base64Data::default();
            data.0 = r.data.clone();
            json!({
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": r.key,
                    "sequenceNumber": r.seq,
                    "data": data,
                    "approximateArrivalTimestamp": r.arrival
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": format!("shardId-000000000000:{}", r.seq),
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::123456789012:role/iotaa-DetectorRole",
                "awsRegion": "us-east-1",
                "eventSourceARN": arn
            })
        })
        .collect();
    json!({ "Records": records })
}

fn readings(n: usize, spike: usize) -> Vec<Reading> {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    (0..n)
        .map(|i| Reading {
            device_id: ["aaaa", "bbbb", "cccc", "dddd", "eeee"][i % 5].to_string(),
            sensor_reading: if i == spike {
                450
            } else {
                rng.random_range(-5..=5)
            },
            reading_timestamp: format!("2026-12-02 10:{:02}:{:02}.000", i / 60 % 60, i % 60),
        })
        .collect()
}

fn scores(records: &[Got]) -> Vec<ScoredReading> {
    records
        .iter()
        .map(|r| ScoredReading::decode(&r.data).unwrap())
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn failures(reply: &Value) -> Vec<String> {
    reply["batchItemFailures"]
        .as_array()
        .unwrap_or_else(|| panic!("no batchItemFailures in {reply}"))
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_bootstrap_scores_kinesis_batches_across_cold_starts_and_retries_on_moto() {
    let moto = moto();
    let rt = runtime();
    let conf = sdk(&moto);
    let k = aws_sdk_kinesis::Client::new(&conf);
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&conf)
            .force_path_style(true)
            .build(),
    );
    let run = format!(
        "lambda-e2e-{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    );
    let bucket = format!("{run}-state");
    let readings_stream = format!("{run}-readings");
    let rs = readings(600, 500);

    // The readings stream on moto, written with PutRecords as the producer does.
    let (arn, got) = rt.block_on(async {
        let arn = create_stream(&k, &readings_stream).await;
        for name in ["a", "b", "c"] {
            create_stream(&k, &format!("{run}-anomalies-{name}")).await;
        }
        s3.create_bucket().bucket(&bucket).send().await.unwrap();
        for part in rs.chunks(300) {
            let entries = part
                .iter()
                .map(|r| {
                    PutRecordsRequestEntry::builder()
                        .partition_key(&r.device_id)
                        .data(Blob::new(r.encode()))
                        .build()
                        .unwrap()
                })
                .collect();
            let out = k
                .put_records()
                .stream_name(&readings_stream)
                .set_records(Some(entries))
                .send()
                .await
                .unwrap();
            assert_eq!(out.failed_record_count(), Some(0));
        }
        (arn, read_all(&k, &readings_stream).await)
    });
    assert_eq!(got.len(), 600);
    let env = |name: &str| {
        vec![
            ("ANOMALY_STREAM_NAME", format!("{run}-anomalies-{name}")),
            ("STATE_BUCKET", bucket.clone()),
            ("STATE_PREFIX", format!("{name}/")),
        ]
    };

    // A: one environment for all six batches.
    let mut a = Environment::start(&moto, &env("a"));
    for part in got.chunks(BATCH) {
        let reply = a.invoke(&event(&arn, part));
        assert!(failures(&reply).is_empty(), "{reply}\n{}", a.log());
    }
    drop(a);

    // B: a cold start (emulator and function restarted) before every batch.
    for part in got.chunks(BATCH) {
        let mut b = Environment::start(&moto, &env("b"));
        let reply = b.invoke(&event(&arn, part));
        assert!(failures(&reply).is_empty(), "{reply}\n{}", b.log());
    }

    // C: half the entries of every PutRecords fail (a proxy in front of moto): the function
    // retries, then names the first unstored record; the test retries from it, as Lambda does.
    let faulty = FaultProxy::start(
        &moto,
        Faults {
            seed: 5,
            put_partial: 1.0,
            entry_fail: 0.5,
            ..Faults::NONE
        },
    );
    let mut c = Environment::start(&faulty.url, &env("c"));
    let mut retries = 0;
    for part in got.chunks(BATCH) {
        let mut rest = part.to_vec();
        loop {
            let reply = c.invoke(&event(&arn, &rest));
            let failed = failures(&reply);
            let Some(first) = failed.first() else { break };
            retries += 1;
            assert!(retries < 200, "no progress: {reply}");
            let from = rest
                .iter()
                .position(|r| &r.seq == first)
                .expect("a sequence number of the batch");
            rest = rest[from..].to_vec();
        }
    }
    let c_log = c.log();
    drop(c);
    assert!(
        retries > 0,
        "the faults made no batch fail: the retry path was not exercised"
    );

    let (sa, sb, sc) = rt.block_on(async {
        let read = |n: &str| {
            let k = k.clone();
            let name = format!("{run}-anomalies-{n}");
            async move { scores(&read_all(&k, &name).await) }
        };
        (read("a").await, read("b").await, read("c").await)
    });
    assert_eq!(sa.len(), 600);
    assert_eq!(sb.len(), 600);
    let order: Vec<&Reading> = sa.iter().map(|s| &s.reading).collect();
    assert_eq!(order, rs.iter().collect::<Vec<_>>(), "scored in order");

    // The spike is scored above the threshold, and only it.
    let alerts = |s: &[ScoredReading]| -> Vec<String> {
        s.iter()
            .filter(|s| s.anomaly_score > THRESHOLD)
            .map(|s| format!("{} {}", s.reading.device_id, s.reading.reading_timestamp))
            .collect()
    };
    assert_eq!(
        alerts(&sa),
        vec![format!("aaaa {}", rs[500].reading_timestamp)]
    );
    assert_eq!(
        alerts(&sb),
        alerts(&sa),
        "a cold start gives the same alerts"
    );
    let normal = |s: &[ScoredReading]| {
        median(
            s.iter()
                .filter(|s| s.anomaly_score > 0.0 && s.anomaly_score <= THRESHOLD)
                .map(|s| s.anomaly_score)
                .collect(),
        )
    };
    let (ma, mb) = (normal(&sa), normal(&sb));
    assert!(
        (mb - ma).abs() <= 0.02 * ma,
        "median of normal scores {ma} vs {mb} after cold starts"
    );

    // C: each reading's score stored once, and the same score as A's: the retried records did
    // not update the model again.
    assert_eq!(sc.len(), 600, "each score stored exactly once\n{c_log}");
    let by_reading = |s: &[ScoredReading]| {
        let mut v: Vec<(String, String, u64)> = s
            .iter()
            .map(|s| {
                (
                    s.reading.reading_timestamp.clone(),
                    s.reading.device_id.clone(),
                    s.anomaly_score.to_bits(),
                )
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        by_reading(&sc),
        by_reading(&sa),
        "retries do not change any score"
    );
    eprintln!(
        "lambda emulator: 600 readings, 6 batches of {BATCH}; spike score {:.3}; normal median {ma:.4} (uninterrupted) vs {mb:.4} (cold start before every batch); {retries} retried invocations after partial failures ({}), scores identical",
        sa[500].anomaly_score,
        faulty.summary()
    );
}
