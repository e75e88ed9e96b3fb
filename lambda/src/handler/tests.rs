//! The handler against a fake of its AWS calls (`FakeAws`: an in-memory bucket and stream with
//! scripted failures), with events in the JSON shapes AWS sends.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use iotaa_detector::DetectorParams;
use iotaa_detector::records::{Reading, ScoredReading};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use super::*;

#[derive(Default)]
struct FakeInner {
    objects: HashMap<String, (Vec<u8>, String)>,
    stream: Vec<(String, Vec<u8>)>,
    /// Scripted replies of the next PutRecords calls: `Some(indexes)` fails those entries,
    /// `None` fails the call whole. Calls beyond the script succeed.
    put_script: VecDeque<Option<Vec<usize>>>,
    parents: HashMap<String, String>,
    saves: usize,
}

/// A fake of the function's AWS calls; clones share one bucket and stream.
#[derive(Clone, Default)]
struct FakeAws(Arc<Mutex<FakeInner>>);

impl FakeAws {
    fn scored(&self) -> Vec<ScoredReading> {
        let inner = self.0.lock().unwrap();
        inner
            .stream
            .iter()
            .map(|(_, d)| ScoredReading::decode(d).unwrap())
            .collect()
    }
    fn script(&self, replies: Vec<Option<Vec<usize>>>) {
        self.0.lock().unwrap().put_script = replies.into();
    }
}

impl Aws for FakeAws {
    async fn position(&self, key: &str) -> Result<Option<String>, String> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .objects
            .get(key)
            .map(|(_, p)| p.clone()))
    }
    async fn load(&self, key: &str) -> Result<Option<(Vec<u8>, String)>, String> {
        Ok(self.0.lock().unwrap().objects.get(key).cloned())
    }
    async fn save(&self, key: &str, bytes: Vec<u8>, position: &str) -> Result<(), String> {
        let mut inner = self.0.lock().unwrap();
        inner.saves += 1;
        inner
            .objects
            .insert(key.to_string(), (bytes, position.to_string()));
        Ok(())
    }
    async fn put_records(&self, records: &[(String, Vec<u8>)]) -> Result<Vec<usize>, String> {
        let mut inner = self.0.lock().unwrap();
        match inner.put_script.pop_front() {
            Some(None) => Err("ServiceUnavailable: fake".to_string()),
            Some(Some(failed)) => {
                for (i, r) in records.iter().enumerate() {
                    if !failed.contains(&i) {
                        inner.stream.push(r.clone());
                    }
                }
                Ok(failed)
            }
            None => {
                inner.stream.extend(records.iter().cloned());
                Ok(Vec::new())
            }
        }
    }
    async fn parent_shard(&self, _arn: &str, shard: &str) -> Result<Option<String>, String> {
        Ok(self.0.lock().unwrap().parents.get(shard).cloned())
    }
    fn location(&self, key: &str) -> String {
        format!("s3://fake-bucket/{key}")
    }
}

fn config(interval_secs: u64) -> Config {
    Config {
        params: DetectorParams {
            trees: 30,
            sample_size: 64,
            ..DetectorParams::seed()
        },
        anomaly_stream: "iotaa-anomalies".into(),
        bucket: "fake-bucket".into(),
        prefix: "detector-state/".into(),
        snapshot_interval: Duration::from_secs(interval_secs),
    }
}

fn handler(aws: &FakeAws, interval_secs: u64) -> Handler<FakeAws> {
    let mut h = Handler::new(config(interval_secs), aws.clone());
    h.backoff = Duration::from_millis(1);
    h.log = |_| {};
    h
}

/// `n` readings of five devices, seeded; a spike of 450 at `spike`.
fn readings(n: usize, spike: Option<usize>) -> Vec<Reading> {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    (0..n)
        .map(|i| Reading {
            device_id: ["aaaa", "bbbb", "cccc", "dddd", "eeee"][i % 5].to_string(),
            sensor_reading: if Some(i) == spike {
                450
            } else {
                rng.random_range(-5..=5)
            },
            reading_timestamp: format!("2026-12-02 10:{:02}:{:02}.000", i / 60 % 60, i % 60),
        })
        .collect()
}

/// Bytes as the base64 string of an event's `data`.
fn b64(bytes: &[u8]) -> serde_json::Value {
    let mut data = Base64Data::default();
    data.0 = bytes.to_vec();
    serde_json::to_value(data).unwrap()
}

const ARN: &str = "arn:aws:kinesis:us-east-1:123456789012:stream/iotaa-readings";

/// Sequence numbers shaped like Kinesis' (56 digits), increasing with `i`, with gaps.
fn seq(i: usize) -> String {
    format!(
        "4959033827149025660855969253836157109592157598913{:07}",
        i * 37 + 5
    )
}

/// A Kinesis event exactly as the event source mapping sends it (AWS's documented example,
/// with our data): base64 data, sequence numbers, eventID `shardId:sequence`, the stream ARN.
fn kinesis_event(shard: &str, items: &[(String, Vec<u8>)]) -> KinesisEvent {
    let records: Vec<_> = items
        .iter()
        .map(|(seq, data)| {
            json!({
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": "aaaa",
                    "sequenceNumber": seq,
                    "data": b64(data),
                    "approximateArrivalTimestamp": 1764670000.123
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": format!("{shard}:{seq}"),
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::123456789012:role/iotaa-DetectorRole",
                "awsRegion": "us-east-1",
                "eventSourceARN": ARN
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).unwrap()
}

fn batch(rs: &[Reading], from: usize) -> Vec<(String, Vec<u8>)> {
    rs.iter()
        .enumerate()
        .map(|(i, r)| (seq(from + i), r.encode()))
        .collect()
}

const SHARD: &str = "shardId-000000000000";

fn run<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn kinesis_batches_are_scored_in_order_and_the_spike_is_above_the_threshold() {
    let aws = FakeAws::default();
    let mut h = handler(&aws, 3600);
    let rs = readings(300, Some(250));
    run(async {
        for (n, part) in rs.chunks(100).enumerate() {
            let (resp, summary) = h.kinesis(kinesis_event(SHARD, &batch(part, n * 100))).await;
            assert!(resp.batch_item_failures.is_empty());
            assert_eq!(summary.scored, 100);
            assert_eq!(summary.put, 100);
        }
    });
    let scored = aws.scored();
    assert_eq!(scored.len(), 300);
    // Same scores as the detector run directly on the same readings.
    let mut direct = Detector::new(config(1).params).unwrap();
    for (r, s) in rs.iter().zip(&scored) {
        assert_eq!(&s.reading, r);
        assert_eq!(direct.score(r).anomaly_score, s.anomaly_score);
    }
    assert!(
        scored[250].anomaly_score > 4.0,
        "{}",
        scored[250].anomaly_score
    );
    assert!(scored[240].anomaly_score < 4.0);
    // The response serializes as Lambda expects.
    let resp = run(h.kinesis(kinesis_event(SHARD, &batch(&readings(1, None), 300)))).0;
    assert_eq!(
        serde_json::to_value(&resp).unwrap(),
        json!({"batchItemFailures": []})
    );
}

#[test]
fn a_record_that_is_not_a_reading_is_counted_and_skipped_never_failing_the_batch() {
    let aws = FakeAws::default();
    let mut h = handler(&aws, 3600);
    let mut items = batch(&readings(3, None), 0);
    items.insert(1, (seq(99), b"{\"deviceId\": 5}".to_vec()));
    items[1].0 = seq(1) + "0"; // keep the sequence increasing: longer means larger
    items.sort_by(|a, b| SeqNo::parse(&a.0).cmp(&SeqNo::parse(&b.0)));
    let (resp, summary) = run(h.kinesis(kinesis_event(SHARD, &items)));
    assert!(resp.batch_item_failures.is_empty());
    assert_eq!(summary.not_readings, 1);
    assert_eq!(summary.scored, 3);
    assert_eq!(aws.scored().len(), 3);
}

#[test]
fn a_partial_failure_names_the_first_unstored_record_and_the_retry_updates_the_model_once() {
    let aws = FakeAws::default();
    let mut h = handler(&aws, 3600);
    let rs = readings(10, None);
    let items = batch(&rs, 0);
    // Entries 4 and 7 fail on every try.
    aws.script(vec![
        Some(vec![4, 7]),
        Some(vec![0, 1]),
        Some(vec![0, 1]),
        Some(vec![0, 1]),
    ]);
    let (resp, summary) = run(h.kinesis(kinesis_event(SHARD, &items)));
    assert_eq!(
        resp.batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone().unwrap())
            .collect::<Vec<_>>(),
        vec![seq(4)]
    );
    assert_eq!(summary.unstored, 2);
    assert_eq!(aws.scored().len(), 8);
    let key = h.shard_key(SHARD);
    assert_eq!(h.model_scored(&key), Some(10));

    // Lambda retries from record 4: 4..10 come again. 4 and 7 are put with the scores they
    // had; 5, 6, 8, 9 were stored and are not put again; the model is not updated again.
    let (resp, summary) = run(h.kinesis(kinesis_event(SHARD, &items[4..])));
    assert!(resp.batch_item_failures.is_empty());
    assert_eq!(
        (summary.scored, summary.put, summary.already_stored),
        (0, 2, 4)
    );
    assert_eq!(h.model_scored(&key), Some(10));
    let mut stored: Vec<_> = aws.scored().into_iter().map(|s| s.reading).collect();
    stored.sort_by(|a, b| a.reading_timestamp.cmp(&b.reading_timestamp));
    assert_eq!(stored, rs, "each reading's score stored once");
}

#[test]
fn a_call_failing_whole_fails_the_batch_from_its_first_record() {
    let aws = FakeAws::default();
    let mut h = handler(&aws, 3600);
    let items = batch(&readings(5, None), 0);
    aws.script(vec![None; PUT_ATTEMPTS as usize]);
    let (resp, _) = run(h.kinesis(kinesis_event(SHARD, &items)));
    assert_eq!(
        resp.batch_item_failures[0].item_identifier.as_deref(),
        Some(seq(0).as_str())
    );
    assert!(aws.scored().is_empty());
    // The retry puts the five scores, scored once.
    let (resp, summary) = run(h.kinesis(kinesis_event(SHARD, &items)));
    assert!(resp.batch_item_failures.is_empty());
    assert_eq!((summary.scored, summary.put), (0, 5));
}

#[test]
fn a_cold_start_continues_from_the_snapshot_with_the_same_scores_and_skips_what_it_holds() {
    let rs = readings(400, Some(350));
    // Uninterrupted.
    let whole = FakeAws::default();
    let mut h = handler(&whole, 0);
    run(async {
        for (n, part) in rs.chunks(100).enumerate() {
            h.kinesis(kinesis_event(SHARD, &batch(part, n * 100))).await;
        }
    });
    // A new environment for every batch (snapshot every invocation).
    let cold = FakeAws::default();
    for (n, part) in rs.chunks(100).enumerate() {
        let mut h = handler(&cold, 0);
        let (_, summary) = run(h.kinesis(kinesis_event(SHARD, &batch(part, n * 100))));
        assert_eq!(summary.snapshots_loaded, usize::from(n > 0));
        assert_eq!(summary.snapshots_saved, 1);
    }
    let a: Vec<f64> = whole.scored().iter().map(|s| s.anomaly_score).collect();
    let b: Vec<f64> = cold.scored().iter().map(|s| s.anomaly_score).collect();
    assert_eq!(
        a, b,
        "a restored model scores bit for bit as one that never stopped"
    );

    // A batch replayed after a cold start (already in the snapshot) is skipped, not rescored.
    let mut h = handler(&cold, 0);
    let (_, summary) = run(h.kinesis(kinesis_event(SHARD, &batch(&rs[300..], 300))));
    assert_eq!(
        (summary.scored, summary.already_stored, summary.put),
        (0, 100, 0)
    );
    assert_eq!(cold.scored().len(), 400);
}

#[test]
fn an_environment_that_lost_the_shard_reloads_and_the_snapshot_never_moves_backwards() {
    let aws = FakeAws::default();
    let rs = readings(300, None);
    let mut a = handler(&aws, 0);
    let mut b = handler(&aws, 0);
    let key = a.shard_key(SHARD);
    run(a.kinesis(kinesis_event(SHARD, &batch(&rs[..100], 0))));
    // B takes the shard for the next batch: it loads A's snapshot.
    let (_, s) = run(b.kinesis(kinesis_event(SHARD, &batch(&rs[100..200], 100))));
    assert_eq!(s.snapshots_loaded, 1);
    assert_eq!(b.model_scored(&key), Some(200));
    // A gets the shard back: the stored position is not what A saved, so A loads B's model.
    let (_, s) = run(a.kinesis(kinesis_event(SHARD, &batch(&rs[200..], 200))));
    assert_eq!(s.snapshots_loaded, 1);
    assert_eq!(a.model_scored(&key), Some(300));
    let stored_at = |aws: &FakeAws| aws.0.lock().unwrap().objects[&key].1.clone();
    assert_eq!(
        stored_at(&aws),
        SeqNo::parse(&seq(299)).unwrap().to_string()
    );
    // B, stale, replays an old batch: it reloads, skips it all, and saves nothing older.
    let saves = aws.0.lock().unwrap().saves;
    let (_, s) = run(b.kinesis(kinesis_event(SHARD, &batch(&rs[150..200], 150))));
    assert_eq!((s.snapshots_loaded, s.scored, s.snapshots_saved), (1, 0, 0));
    assert_eq!(aws.0.lock().unwrap().saves, saves);
    assert_eq!(
        stored_at(&aws),
        SeqNo::parse(&seq(299)).unwrap().to_string()
    );
}

#[test]
fn snapshots_are_saved_at_most_every_interval() {
    let aws = FakeAws::default();
    let mut h = handler(&aws, 3600);
    run(async {
        for n in 0..5 {
            h.kinesis(kinesis_event(SHARD, &batch(&readings(10, None), n * 10)))
                .await;
        }
    });
    assert_eq!(
        aws.0.lock().unwrap().saves,
        1,
        "saved after the first invocation, then not before the interval has passed"
    );
}

#[test]
fn a_child_shard_starts_from_its_parents_model() {
    let aws = FakeAws::default();
    let rs = readings(200, None);
    let mut h = handler(&aws, 0);
    run(h.kinesis(kinesis_event(SHARD, &batch(&rs[..100], 0))));
    let child = "shardId-000000000002";
    aws.0
        .lock()
        .unwrap()
        .parents
        .insert(child.to_string(), SHARD.to_string());
    let mut h2 = handler(&aws, 0);
    // The child's sequence numbers are its own: they start low again.
    let (_, s) = run(h2.kinesis(kinesis_event(child, &batch(&rs[100..], 0))));
    assert_eq!((s.snapshots_loaded, s.scored), (1, 100));
    assert_eq!(h2.model_scored(&h2.shard_key(child)), Some(200));
}

#[test]
fn firehose_records_come_back_unchanged_ok_and_their_scores_are_put() {
    let aws = FakeAws::default();
    let mut h = handler(&aws, 3600);
    let rs = readings(3, None);
    let mut records: Vec<_> = rs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            json!({
                "recordId": format!("49546986683135544286507457936321625675700192471156785154{i}"),
                "approximateArrivalTimestamp": 1764670000123u64 + i as u64,
                "data": b64(&r.encode())
            })
        })
        .collect();
    records.push(json!({
        "recordId": "not-a-reading",
        "approximateArrivalTimestamp": 1764670000200u64,
        "data": b64(b"hello")
    }));
    // AWS's documented shape of a transformation event (DirectPut).
    let event: KinesisFirehoseEvent = serde_json::from_value(json!({
        "invocationId": "invocationIdExample",
        "deliveryStreamArn": "arn:aws:firehose:us-east-1:123456789012:deliverystream/iotaa-devicedata",
        "region": "us-east-1",
        "records": records.clone()
    }))
    .unwrap();
    let (resp, summary) = run(h.firehose(event));
    assert_eq!(
        (summary.scored, summary.not_readings, summary.put),
        (3, 1, 3)
    );
    let out = serde_json::to_value(&resp).unwrap();
    for (sent, back) in records.iter().zip(out["records"].as_array().unwrap()) {
        assert_eq!(back["recordId"], sent["recordId"]);
        assert_eq!(back["data"], sent["data"], "data unchanged");
        assert_eq!(back["result"], "Ok");
    }
    assert_eq!(out["records"].as_array().unwrap().len(), 4);
    assert_eq!(aws.scored().len(), 3);
    assert!(
        h.model_scored("detector-state/firehose/iotaa-devicedata")
            .is_some()
    );
}
