//! The pipeline on AWS through the real binary and the real AWS SDK, against moto (`./.ci/run`
//! starts it and sets `IOTAA_MOTO_ENDPOINT`):
//!
//! - producer → readings stream → detector → anomaly stream → tail and alerts, with a spike
//!   scoring above the threshold, while a fault-injecting proxy in front of moto throttles
//!   and partly fails PutRecords, loses replies after storing, throttles GetRecords and expires
//!   iterators: every acknowledged reading arrives scored (duplicates allowed, losses not);
//! - a second run after UpdateShardCount: the detector resumes from its Kinesis checkpoint
//!   (a sequence number per shard) in a new process, scores nothing twice, loses nothing and
//!   keeps each device's readings in order. moto's UpdateShardCount splits the shard but keeps
//!   writing to the closed parent and never ends it, so following child shards after a real
//!   reshard is tested against a fake Kinesis in `src/backend/kinesis.rs`'s unit tests.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::aws::{
    CREDS, FaultProxy, Faults, command, create_workgroup, endpoint, iotaa, output,
    queue_athena_result, stack_name, text, workdir,
};
use common::{acked_lines, read_text, wait_until};
use iot_anomaly_analytics::records::ScoredReading;

/// Deploys the stack of the config in `dir`.
fn deploy(dir: &Path) {
    let out = iotaa(dir, &CREDS, &["stack", "deploy"]);
    assert!(
        out.status.success(),
        "deploy: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// `iotaa produce --count n --rate r --ack-log <ack>`, waited for (at most 3 minutes).
fn produce(dir: &Path, n: u64, rate: u32, ack: &str, stderr: &str) -> String {
    let mut child = command(
        dir,
        &CREDS,
        &[
            "produce",
            "--count",
            &n.to_string(),
            "--rate",
            &rate.to_string(),
            "--ack-log",
            ack,
        ],
    )
    .stdout(Stdio::null())
    .stderr(std::fs::File::create(dir.join(stderr)).unwrap())
    .spawn()
    .unwrap();
    wait_until(
        Duration::from_secs(180),
        "produce to finish",
        || child.try_wait().unwrap().is_some(),
        || read_text(&dir.join(stderr)),
    );
    let log = read_text(&dir.join(stderr));
    assert!(child.wait().unwrap().success(), "produce failed:\n{log}");
    log
}

/// `iotaa tail --from trim-horizon --format json` in the background, its lines collected.
struct Tail {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Tail {
    fn start(dir: &Path) -> Tail {
        let mut child = command(
            dir,
            &CREDS,
            &["tail", "--from", "trim-horizon", "--format", "json"],
        )
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.join("tail.err")).unwrap())
        .spawn()
        .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().unwrap();
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Tail { child, lines }
    }

    /// The scored readings read so far.
    fn scored(&self) -> Vec<ScoredReading> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .map(|l| {
                ScoredReading::decode(l.as_bytes())
                    .unwrap_or_else(|e| panic!("tail printed a bad record: {e}: {l}"))
            })
            .collect()
    }
}

impl Drop for Tail {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The reading inside a scored reading, as the exact line the producer sent.
fn reading_line(s: &ScoredReading) -> Vec<u8> {
    let mut line = s.reading.encode();
    if line.last() == Some(&b'\n') {
        line.pop();
    }
    line
}

/// Waits until every acknowledged reading has been tailed from the anomaly stream; returns
/// how many tailed readings were duplicates.
fn wait_for_all(dir: &Path, tail: &Tail, acked: &HashMap<Vec<u8>, u64>) -> usize {
    // Identical readings (same device, value and millisecond) are counted, not merged.
    let missing = || {
        let lines: Vec<Vec<u8>> = tail.scored().iter().map(reading_line).collect();
        let seen = common::multiset(lines.iter().map(Vec::as_slice));
        acked
            .iter()
            .filter(|(k, n)| seen.get(*k).copied().unwrap_or(0) < **n)
            .map(|(k, _)| k.clone())
            .collect::<Vec<_>>()
    };
    wait_until(
        Duration::from_secs(120),
        "every acknowledged reading on the anomaly stream",
        || missing().is_empty(),
        || {
            let m = missing();
            format!(
                "{} of {} distinct acknowledged readings not tailed, e.g. {:?}\ntail stderr: {}\ndetect stderr: {}",
                m.len(),
                acked.len(),
                m.first().map(|l| String::from_utf8_lossy(l).into_owned()),
                read_text(&dir.join("tail.err")),
                read_text(&dir.join("detect.err"))
            )
        },
    );
    tail.scored().len() - acked.values().sum::<u64>() as usize
}

#[test]
fn injected_faults_lose_no_reading_from_producer_through_detector_to_tail() {
    let moto = endpoint();
    let proxy = FaultProxy::start(&moto, Faults::NONE);
    let stack = stack_name("faults");
    let dir = workdir(
        &stack,
        &format!("endpoint_url = \"{}\"\nshard_count = 2\n", proxy.url),
    );
    let d = dir.path();
    deploy(d);
    let parse = |k: &str, d: f64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    proxy.set(Faults {
        seed: 7,
        put_throttle: parse("F_PT", 0.1),
        put_partial: parse("F_PP", 0.3),
        entry_fail: 0.2,
        put_reply_lost: parse("F_PL", 0.05),
        get_throttle: parse("F_GT", 0.1),
        get_expired: parse("F_GE", 0.05),
        get_kms_throttle: parse("F_GK", 0.1),
        ..Faults::NONE
    });
    let n = 3_000;
    // A spike from a second process while the first produces (it waits for warm-up).
    let spiker = {
        let d = d.to_path_buf();
        std::thread::spawn(move || {
            wait_until(
                Duration::from_secs(120),
                "1,000 readings acknowledged",
                || common::count_lines(&d.join("acks.log")) >= 1_000,
                String::new,
            );
            iotaa(&d, &CREDS, &["spike", "--device", "cccc", "--value", "450"])
        })
    };
    let log = produce(d, n, 100, "acks.log", "produce.err");
    let spike = spiker.join().unwrap();
    assert!(spike.status.success(), "spike: {}", text(&spike.stderr));
    let spike_line = text(&spike.stdout);

    let (mut acked, lines, torn) = acked_lines(&d.join("acks.log"));
    assert_eq!((lines, torn), (n as usize, 0), "{log}");
    *acked
        .entry(spike_line.trim_end().as_bytes().to_vec())
        .or_default() += 1;
    // `failed` counts failed attempts (each resent), not losses.
    assert!(log.contains(&format!("acknowledged {n}, failed")), "{log}");
    assert!(!log.contains("retries 0;"), "no put was retried:\n{log}");

    // Shown only when the test fails (test output is captured): what produce said.
    println!("produce stderr:\n{log}");
    // produce's detector drains for at most 30 s after the producer stops (README); on a
    // loaded machine the injected faults can need longer. What it left is scored by the next
    // detector from its checkpoint, as a restart would: one runs while the test waits.
    let mut resumed = command(d, &CREDS, &["detect"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(d.join("detect.err")).unwrap())
        .spawn()
        .unwrap();
    let tail = Tail::start(d);
    let duplicates = wait_for_all(d, &tail, &acked);
    let _ = std::process::Command::new("kill")
        .args(["-INT", &resumed.id().to_string()])
        .status();
    let _ = resumed.wait();
    let scored = tail.scored();
    let spiked = scored
        .iter()
        .find(|s| reading_line(s) == spike_line.trim_end().as_bytes())
        .expect("the spike is on the anomaly stream");
    assert!(
        spiked.anomaly_score > 4.0,
        "spike scored {}",
        spiked.anomaly_score
    );
    let alerts = read_text(&d.join("data/aws").join(&stack).join("alerts.log"));
    assert!(
        alerts.contains(spike_line.trim_end().trim_end_matches('}')),
        "alerts.log has no alert for the spike {spike_line}:\n{alerts}"
    );

    let c = &proxy.counts;
    let g = common::aws::FaultCounts::get;
    for (what, count) in [
        ("throttled PutRecords", g(&c.put_throttled)),
        ("partly failed PutRecords", g(&c.put_partial)),
        ("lost PutRecords replies", g(&c.put_replies_lost)),
        ("throttled GetRecords", g(&c.get_throttled)),
        ("expired iterators", g(&c.get_expired)),
        ("KMS-throttled GetRecords", g(&c.get_kms_throttled)),
    ] {
        assert!(count > 0, "no {what} were injected: {}", proxy.summary());
    }
    eprintln!(
        "aws_pipeline: {} readings + 1 spike acknowledged, all scored on the anomaly stream ({} duplicates); spike score {:.2}; {}",
        n,
        duplicates,
        spiked.anomaly_score,
        proxy.summary()
    );
}

#[test]
fn the_detector_resumes_from_its_kinesis_checkpoint_across_update_shard_count() {
    let moto = endpoint();
    let stack = stack_name("reshard");
    let dir = workdir(
        &stack,
        &format!("endpoint_url = \"{moto}\"\nshard_count = 1\n"),
    );
    let d = dir.path();
    deploy(d);
    produce(d, 1_000, 100, "acks.log", "produce1.err");
    let checkpoint = d.join("data/aws").join(&stack).join("checkpoints/detector");
    let before = read_text(&checkpoint);

    // Split the one shard in two with the SDK, straight to moto.
    let stream = format!("{stack}-readings");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let shards = runtime.block_on(async {
        let client = crate::moto_client!(aws_sdk_kinesis, &moto);
        client
            .update_shard_count()
            .stream_name(&stream)
            .target_shard_count(2)
            .scaling_type(aws_sdk_kinesis::types::ScalingType::UniformScaling)
            .send()
            .await
            .unwrap();
        let listed = client
            .list_shards()
            .stream_name(&stream)
            .send()
            .await
            .unwrap();
        listed
            .shards()
            .iter()
            .map(|s| {
                (
                    s.shard_id().to_string(),
                    s.parent_shard_id().unwrap_or_default().to_string(),
                )
            })
            .collect::<Vec<_>>()
    });
    assert!(shards.len() >= 3, "no reshard: {shards:?}");

    produce(d, 1_000, 100, "acks.log", "produce2.err");
    let after = read_text(&checkpoint);
    let (acked, lines, _) = acked_lines(&d.join("acks.log"));
    assert_eq!(lines, 2_000);

    let tail = Tail::start(d);
    let duplicates = wait_for_all(d, &tail, &acked);
    // Each device's readings were scored in the order they were sent.
    let mut last: BTreeMap<String, String> = BTreeMap::new();
    for s in tail.scored() {
        let r = &s.reading;
        if let Some(prev) = last.get(&r.device_id) {
            assert!(
                *prev <= r.reading_timestamp,
                "{}: {} scored after {prev}",
                r.device_id,
                r.reading_timestamp
            );
        }
        last.insert(r.device_id.clone(), r.reading_timestamp.clone());
    }
    let second = read_text(&d.join("produce2.err"));
    assert!(
        second.contains("detector: running: restored model, from its checkpoint"),
        "{second}"
    );
    assert!(
        before.trim_start().starts_with('{'),
        "not a Kinesis position: {before}"
    );
    assert_eq!(duplicates, 0, "readings scored twice after resuming");
    eprintln!(
        "aws_pipeline: UpdateShardCount 1 → 2 ({shards:?}); checkpoint {} → {}; 2,000 readings scored once, in order per device",
        before.trim(),
        after.trim()
    );
}

#[test]
fn athena_queries_poll_page_past_1000_rows_report_cost_and_stop_when_cancelled() {
    let moto = endpoint();
    // moto runs no SQL: it answers with results queued through its API, all rows at once and
    // 0 bytes scanned. The proxy pages them as Athena does and reports 123,456,789 bytes.
    let proxy = FaultProxy::start(
        &moto,
        Faults {
            athena_page_rows: 1_000,
            athena_scanned: Some(123_456_789),
            ..Faults::NONE
        },
    );
    let stack = stack_name("athena");
    let dir = workdir(&stack, &format!("endpoint_url = \"{}\"\n", proxy.url));
    let d = dir.path();
    deploy(d);
    // moto does not create the stack's workgroup (it skips AWS::Athena::WorkGroup): create it
    // by its output's name.
    create_workgroup(&moto, &output(d, "AthenaWorkGroup"));
    let sql = "SELECT deviceid, count(*) AS n FROM devicedata GROUP BY deviceid ORDER BY deviceid";

    // 2,500 rows over three pages; the header row is not data.
    queue_athena_result(&moto, 2_500);
    let out = iotaa(d, &CREDS, &["--format", "csv", "query", sql]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2_501, "{stderr}");
    assert_eq!(lines[0], "deviceid,n");
    assert_eq!(lines[1], "d0000,0");
    assert_eq!(lines[2_500], "d2499,2499");
    assert!(
        !lines[1..].contains(&"deviceid,n"),
        "the header row came back as data"
    );
    assert!(stderr.starts_with("2500 rows · "), "{stderr}");
    // 123,456,789 bytes: 118 MB at $5 per TB.
    assert!(stderr.contains("Athena cost ≈ $0.000563"), "{stderr}");
    let g = common::aws::FaultCounts::get;
    let pages = g(&proxy.counts.athena_pages);
    assert_eq!(pages, 3, "{}", proxy.summary());
    assert!(g(&proxy.counts.athena_polls) >= 1, "no polling");

    // --max-rows stops paging once it has enough rows and says more were left.
    queue_athena_result(&moto, 2_500);
    let out = iotaa(
        d,
        &CREDS,
        &["--format", "csv", "query", "--max-rows", "1500", sql],
    );
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(text(&out.stdout).lines().count(), 1_501);
    assert!(stderr.contains("more rows were dropped"), "{stderr}");
    assert_eq!(g(&proxy.counts.athena_pages) - pages, 2);

    // Ctrl-C while the query runs: StopQueryExecution, one line, exit 1.
    proxy.set(Faults {
        athena_hold_running: true,
        athena_scanned: Some(123_456_789),
        ..Faults::NONE
    });
    let polls = g(&proxy.counts.athena_polls);
    let child = command(d, &CREDS, &["query", sql])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until(
        Duration::from_secs(30),
        "the query to be polled twice",
        || g(&proxy.counts.athena_polls) >= polls + 2,
        || proxy.summary(),
    );
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    // A cancelled query is billed for what it scanned: the line says how much.
    assert!(stderr.contains("cancelled: Athena query"), "{stderr}");
    assert!(
        stderr.contains("stopped; it scanned 117.7 MiB ($0.000563)"),
        "{stderr}"
    );
    assert_eq!(g(&proxy.counts.athena_stops), 1, "{}", proxy.summary());
    eprintln!(
        "aws_pipeline: Athena on moto: 2,500 rows in {pages} pages without the header row, cost from the statistics, --max-rows 1500 in 2 pages, Ctrl-C → StopQueryExecution"
    );
}

/// Keys of the objects in `bucket` on moto (S3 ListObjectsV2, path style; moto checks no
/// signature).
fn list_objects(moto: &str, bucket: &str) -> Vec<String> {
    let mut reply = ureq::get(&format!("{moto}/{bucket}?list-type=2"))
        .call()
        .unwrap();
    let xml = reply.body_mut().read_to_string().unwrap();
    xml.split("<Key>")
        .skip(1)
        .filter_map(|s| s.split("</Key>").next())
        .map(str::to_string)
        .collect()
}

#[test]
fn firehose_ingest_puts_record_batches_that_land_in_s3_and_scores_what_it_sent() {
    let moto = endpoint();
    let stack = stack_name("firehose");
    let dir = workdir(
        &stack,
        &format!("endpoint_url = \"{moto}\"\ningest = \"firehose\"\n"),
    );
    let d = dir.path();
    deploy(d);
    // moto accepts but does not create the delivery stream: create it as the template does
    // (DirectPut to the lake bucket, no prefix), under the name the stack outputs.
    let delivery = output(d, "DeliveryStreamName");
    let bucket = output(d, "BucketName");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        use aws_sdk_firehose::types::{DeliveryStreamType, ExtendedS3DestinationConfiguration};
        crate::moto_client!(aws_sdk_firehose, &moto)
            .create_delivery_stream()
            .delivery_stream_name(&delivery)
            .delivery_stream_type(DeliveryStreamType::DirectPut)
            .extended_s3_destination_configuration(
                ExtendedS3DestinationConfiguration::builder()
                    .role_arn("arn:aws:iam::123456789012:role/firehose")
                    .bucket_arn(format!("arn:aws:s3:::{bucket}"))
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
    });
    let log = produce(d, 1_000, 100, "acks.log", "produce.err");
    let (acked, lines, _) = acked_lines(&d.join("acks.log"));
    assert_eq!(lines, 1_000, "{log}");

    // The lake: objects in Firehose's key layout, holding every acknowledged reading.
    let keys = list_objects(&moto, &bucket);
    assert!(!keys.is_empty(), "no objects in {bucket}");
    let mut lake = Vec::new();
    for key in &keys {
        let parts: Vec<&str> = key.split('/').collect();
        assert_eq!(parts.len(), 5, "not YYYY/MM/DD/HH/name: {key}");
        assert!(
            parts[..4]
                .iter()
                .all(|p| p.chars().all(|c| c.is_ascii_digit())),
            "{key}"
        );
        assert!(parts[4].starts_with(&format!("{delivery}-1-")), "{key}");
        // As the account (moto reads the access key, not the signature): the bucket policy
        // refuses anonymous reads.
        let mut reply = ureq::get(&format!("{moto}/{bucket}/{key}"))
            .header(
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=testing/20261130/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0",
            )
            .call()
            .unwrap();
        lake.extend(reply.body_mut().read_to_vec().unwrap());
    }
    let (lines, torn) = common::split_lines(&lake);
    assert!(torn.is_empty(), "an object ends without a newline");
    let in_lake = common::multiset(lines.into_iter());
    for (line, n) in &acked {
        assert!(
            in_lake.get(line).copied().unwrap_or(0) >= *n,
            "acknowledged but not in S3: {}",
            String::from_utf8_lossy(line)
        );
    }

    // The detector scored what this process sent (its local log of it) onto the anomaly
    // stream.
    assert!(
        log.contains("detector: stopped: 1000 readings scored"),
        "{log}"
    );
    let tail = Tail::start(d);
    wait_for_all(d, &tail, &acked);
    eprintln!(
        "aws_pipeline: Firehose ingest: 1,000 readings in {} S3 objects in the Firehose key layout, all scored",
        keys.len()
    );
}
