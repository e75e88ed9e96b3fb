//! The local pipeline's stages on real on-disk streams: delivery to the lake, alerts with a
//! webhook against a local HTTP server, and scoring across a restart.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use iot_anomaly_analytics::backend::local::LocalStreams;
use iot_anomaly_analytics::backend::{Layout, settings};
use iot_anomaly_analytics::config::{self, Loaded};
use iot_anomaly_analytics::pipeline::run::{Pipeline, PipelineSettings};
use iot_anomaly_analytics::pipeline::{
    Event, Reporter, StartAt, StopFlag, StreamRole, Streams, put_all,
};
use iot_anomaly_analytics::records::{Alert, Reading, ScoredReading};

const DEADLINE: Duration = Duration::from_secs(30);

/// A local consumer's checkpoint: the record number it finished with.
fn read_checkpoint(path: &std::path::Path) -> Option<u64> {
    match iot_anomaly_analytics::pipeline::read_position(path) {
        Ok(None) => None,
        Ok(Some(StartAt::AfterSequence(seq))) => Some(seq),
        other => panic!("checkpoint {}: {other:?}", path.display()),
    }
}

fn setup(extra: &str) -> (tempfile::TempDir, Loaded, Layout, Arc<LocalStreams>) {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("data_dir = \"data\"\n{extra}");
    let loaded = config::parse(&text, &dir.path().join("config.toml")).unwrap();
    let layout = Layout::new(&loaded);
    let streams = Arc::new(LocalStreams::open(&layout, &loaded).unwrap());
    (dir, loaded, layout, streams)
}

fn events() -> (Reporter, Arc<Mutex<Vec<Event>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    (Arc::new(move |e| s.lock().unwrap().push(e)), seen)
}

fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn reading(i: usize, value: i64) -> Reading {
    Reading {
        device_id: ["aaaa", "bbbb", "cccc", "dddd", "eeee"][i % 5].into(),
        sensor_reading: value,
        reading_timestamp: format!("2026-11-30 05:00:{:02}.{:03}", (i / 1000) % 60, i % 1000),
    }
}

/// `n` readings over the five devices, values cycling through -5..=5.
fn cycle(n: usize) -> Vec<Reading> {
    (0..n).map(|i| reading(i, (i % 11) as i64 - 5)).collect()
}

fn put_readings(streams: &dyn Streams, readings: &[Reading]) {
    let writer = streams.writer(StreamRole::Readings).unwrap();
    for chunk in readings.chunks(500) {
        let batch = chunk
            .iter()
            .map(|r| (r.device_id.clone(), r.encode()))
            .collect();
        put_all(writer.as_ref(), batch, &StopFlag::default(), |_| {}, None).unwrap();
    }
}

/// Runs delivery alone until its checkpoint reaches `records`, then stops it.
fn deliver_until(streams: &Arc<LocalStreams>, loaded: &Loaded, layout: &Layout, records: u64) {
    let (report, _) = events();
    let p = Pipeline::start(
        streams.clone(),
        PipelineSettings {
            delivery: Some(settings::delivery_settings(layout, loaded)),
            ..Default::default()
        },
        report,
    )
    .unwrap();
    wait_until("the delivery checkpoint", || {
        read_checkpoint(&layout.checkpoint("delivery")) == Some(records)
    });
    p.shutdown();
}

/// Every object under the lake (relative key, decoded bytes), skipping `.staging`.
fn lake_objects(lake: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let key = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                let raw = std::fs::read(&p).unwrap();
                let data = if key.ends_with(".gz") {
                    let mut d = flate2::read::GzDecoder::new(&raw[..]);
                    let mut v = Vec::new();
                    d.read_to_end(&mut v)
                        .unwrap_or_else(|e| panic!("{key} is not whole gzip: {e}"));
                    v
                } else {
                    raw
                };
                out.push((key, data));
            }
        }
    }
    let mut out = Vec::new();
    walk(lake, lake, &mut out);
    out.sort();
    out
}

fn lines(objects: &[(String, Vec<u8>)]) -> Vec<String> {
    objects
        .iter()
        .flat_map(|(_, d)| {
            String::from_utf8(d.clone())
                .unwrap()
                .lines()
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Firehose's key layout: YYYY/MM/DD/HH/<stream>-1-YYYY-MM-DD-HH-MM-SS-<uuid>[.gz].
fn assert_firehose_key(key: &str, gz: bool) {
    let parts: Vec<&str> = key.split('/').collect();
    assert_eq!(parts.len(), 5, "{key}");
    assert!(
        parts[0].len() == 4 && parts[1..4].iter().all(|p| p.len() == 2),
        "{key}"
    );
    assert!(
        parts[..4]
            .iter()
            .all(|p| p.chars().all(|c| c.is_ascii_digit())),
        "{key}"
    );
    let file = parts[4];
    let rest = file
        .strip_prefix("devicedata-1-")
        .unwrap_or_else(|| panic!("{key}"));
    let rest = if gz {
        rest.strip_suffix(".gz").unwrap_or_else(|| panic!("{key}"))
    } else {
        rest
    };
    let (time, uuid) = rest.split_at(19);
    let expected_time = format!("{}-{}-{}-{}", parts[0], parts[1], parts[2], parts[3]);
    assert!(
        time.starts_with(&expected_time),
        "folder and name disagree: {key}"
    );
    assert!(uuid::Uuid::parse_str(&uuid[1..]).is_ok(), "{key}");
}

#[test]
fn delivery_writes_firehose_layout_gzip_objects_with_every_record() {
    let (_dir, loaded, layout, streams) =
        setup("[delivery]\nbuffer_interval_secs = 0\ncompression = \"gzip\"\n");
    let readings = cycle(1_200);
    put_readings(streams.as_ref(), &readings);
    deliver_until(&streams, &loaded, &layout, 1_200);
    let objects = lake_objects(&layout.lake());
    assert!(!objects.is_empty());
    for (key, _) in &objects {
        assert_firehose_key(key, true);
    }
    let expected: Vec<String> = readings
        .iter()
        .map(|r| {
            String::from_utf8(r.encode())
                .unwrap()
                .trim_end()
                .to_string()
        })
        .collect();
    // Objects of the same second sort by their random uuid, so compare as sets, and check
    // that inside each object the records keep the stream's order.
    let mut got = lines(&objects);
    for (key, data) in &objects {
        let positions: Vec<usize> = String::from_utf8(data.clone())
            .unwrap()
            .lines()
            .map(|l| {
                expected
                    .iter()
                    .position(|e| e == l)
                    .expect("a record as sent")
            })
            .collect();
        assert!(
            positions.windows(2).all(|w| w[0] < w[1]),
            "{key} out of order"
        );
    }
    got.sort();
    let mut want = expected.clone();
    want.sort();
    assert_eq!(got.len(), want.len(), "every record exactly once");
    assert!(got == want, "records exactly as sent");
}

/// `format = "parquet"`: Parquet objects in Firehose's layout holding every reading, and the
/// records that are not readings kept as sent under delivery-errors/format-conversion-failed/.
#[cfg(feature = "sql")]
#[test]
fn delivery_writes_parquet_objects_and_keeps_what_is_not_a_reading() {
    let (_dir, loaded, layout, streams) =
        setup("[delivery]\nbuffer_interval_secs = 0\nformat = \"parquet\"\n");
    let readings = cycle(1_000);
    put_readings(streams.as_ref(), &readings);
    let junk = vec![
        ("aaaa".to_string(), b"not a reading\n".to_vec()),
        (
            "aaaa".to_string(),
            b"{\"deviceId\":\"aaaa\",\"sensorReading\":99999}".to_vec(),
        ),
    ];
    let writer = streams.writer(StreamRole::Readings).unwrap();
    put_all(writer.as_ref(), junk, &StopFlag::default(), |_| {}, None).unwrap();
    deliver_until(&streams, &loaded, &layout, 1_002);
    let objects = lake_objects(&layout.lake());
    let (errors, lake): (Vec<_>, Vec<_>) = objects
        .into_iter()
        .partition(|(k, _)| k.starts_with("delivery-errors/"));
    assert!(!lake.is_empty());
    for (key, data) in &lake {
        let stem = key
            .strip_suffix(".parquet")
            .unwrap_or_else(|| panic!("{key}"));
        assert_firehose_key(stem, false);
        assert!(
            data.starts_with(b"PAR1") && data.ends_with(b"PAR1"),
            "{key}"
        );
    }
    let rejected: Vec<String> = errors
        .iter()
        .inspect(|(k, _)| {
            assert!(
                k.starts_with("delivery-errors/format-conversion-failed/"),
                "{k}"
            );
            assert_firehose_key(
                &k["delivery-errors/format-conversion-failed/".len()..],
                false,
            );
        })
        .flat_map(|(_, d)| {
            String::from_utf8(d.clone())
                .unwrap()
                .lines()
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(
        rejected,
        vec![
            "not a reading".to_string(),
            r#"{"deviceId":"aaaa","sensorReading":99999}"#.to_string()
        ]
    );
    let engine = iot_anomaly_analytics::query::QueryEngine::new(
        &layout.lake(),
        iot_anomaly_analytics::query::EngineOptions {
            database: "analyticsdemo".into(),
            table: "devicedata".into(),
            max_rows: 10_000,
            memory_limit_bytes: 64 << 20,
        },
    )
    .unwrap();
    let out = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(engine.run(
            "SELECT deviceid, sensorreading, date_format(readingtimestamp, '%Y-%m-%d %H:%i:%s.%f') FROM devicedata",
        ))
        .unwrap();
    assert_eq!(out.malformed_lines, 0);
    let mut got: Vec<String> = out
        .rows
        .iter()
        .map(|r| {
            let v = |i: usize| r[i].clone().unwrap_or_default();
            format!("{} {} {}", v(0), v(1), &v(2)[..23])
        })
        .collect();
    let mut want: Vec<String> = readings
        .iter()
        .map(|r| {
            format!(
                "{} {} {}",
                r.device_id, r.sensor_reading, r.reading_timestamp
            )
        })
        .collect();
    got.sort();
    want.sort();
    assert!(
        got == want,
        "every reading once: {:?} vs {:?}",
        &got[..3],
        &want[..3]
    );
}

#[test]
fn quitting_flushes_the_buffer_and_a_restart_loses_nothing() {
    let (_dir, loaded, layout, streams) =
        setup("[delivery]\nbuffer_interval_secs = 900\ncompression = \"none\"\n");
    let settings = || PipelineSettings {
        delivery: Some(settings::delivery_settings(&layout, &loaded)),
        ..Default::default()
    };
    let first: Vec<Reading> = (0..10).map(|i| reading(i, 1)).collect();
    put_readings(streams.as_ref(), &first);
    let (report, _) = events();
    let p = Pipeline::start(streams.clone(), settings(), report.clone()).unwrap();
    // With a 900 s interval and a 1 MiB buffer, only the flush on stop can write an object.
    p.shutdown();
    let objects = lake_objects(&layout.lake());
    assert_eq!(objects.len(), 1);
    assert_firehose_key(&objects[0].0, false);
    assert_eq!(lines(&objects).len(), 10);

    // Records written while delivery was down are delivered after a restart, once.
    let second: Vec<Reading> = (10..25).map(|i| reading(i, 2)).collect();
    put_readings(streams.as_ref(), &second);
    let p = Pipeline::start(streams.clone(), settings(), report).unwrap();
    p.shutdown();
    let all = lines(&lake_objects(&layout.lake()));
    assert_eq!(all.len(), 25, "no loss, no duplicate after a clean restart");
    assert_eq!(read_checkpoint(&layout.checkpoint("delivery")), Some(25));
}

/// While objects are being written, every object visible under its final name is whole.
#[test]
fn objects_appear_atomically() {
    let (_dir, loaded, layout, streams) =
        setup("[delivery]\nbuffer_interval_secs = 0\ncompression = \"gzip\"\n");
    let (report, _) = events();
    let p = Pipeline::start(
        streams.clone(),
        PipelineSettings {
            delivery: Some(settings::delivery_settings(&layout, &loaded)),
            ..Default::default()
        },
        report,
    )
    .unwrap();
    let lake = layout.lake();
    let watcher = {
        let lake = lake.clone();
        std::thread::spawn(move || {
            let mut checks = 0;
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(2) {
                // lake_objects panics on a partial gzip object.
                checks += lake_objects(&lake).len();
            }
            checks
        })
    };
    for round in 0..40 {
        let batch: Vec<Reading> = (0..50).map(|i| reading(round * 50 + i, 3)).collect();
        put_readings(streams.as_ref(), &batch);
    }
    let checks = watcher.join().expect("every visible object was whole");
    wait_until("all delivered", || {
        read_checkpoint(&layout.checkpoint("delivery")) == Some(2_000)
    });
    p.shutdown();
    assert!(checks > 0, "the watcher saw objects");
    assert_eq!(lines(&lake_objects(&lake)).len(), 2_000);
    assert!(
        std::fs::read_dir(lake.join(".staging")).map_or(0, |d| d.count()) == 0,
        "no leftovers in .staging"
    );
}

/// A one-request-at-a-time HTTP server on 127.0.0.1 that records request bodies.
fn webhook_server(status: u16) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/alerts", listener.local_addr().unwrap());
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let b = bodies.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            // Read headers, then the body by Content-Length.
            let body = loop {
                let n = s.read(&mut chunk).unwrap_or(0);
                if n == 0 {
                    break None;
                }
                buf.extend_from_slice(&chunk[..n]);
                if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    while buf.len() < end + 4 + len {
                        let n = s.read(&mut chunk).unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    break Some(String::from_utf8_lossy(&buf[end + 4..]).into_owned());
                }
            };
            if let Some(body) = body {
                b.lock().unwrap().push(body);
            }
            let _ = write!(
                s,
                "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
        }
    });
    (url, bodies)
}

fn put_scored(streams: &dyn Streams, scores: &[f64]) {
    let writer = streams.writer(StreamRole::Anomalies).unwrap();
    let batch = scores
        .iter()
        .enumerate()
        .map(|(i, &score)| {
            let s = ScoredReading {
                reading: reading(i, if score > 4.0 { 450 } else { 1 }),
                anomaly_score: score,
                explanation: None,
            };
            (s.reading.device_id.clone(), s.encode())
        })
        .collect();
    put_all(writer.as_ref(), batch, &StopFlag::default(), |_| {}, None).unwrap();
}

#[test]
fn alerts_go_to_the_log_and_the_webhook() {
    let (url, bodies) = webhook_server(200);
    let (_dir, loaded, layout, streams) = setup(&format!(
        "[alerts]\nthreshold = 4\nwebhook_url = \"{url}\"\n"
    ));
    let (report, seen) = events();
    let p = Pipeline::start(
        streams.clone(),
        PipelineSettings {
            alerts: Some(settings::alert_settings(&layout, &loaded)),
            ..Default::default()
        },
        report,
    )
    .unwrap();
    // The alerts stage starts at the stream's latest record: write after it started.
    wait_until("the alerts stage", || !seen.lock().unwrap().is_empty());
    put_scored(streams.as_ref(), &[0.8, 4.0, 7.2, 0.9, 4.01]);
    wait_until("two webhook posts", || bodies.lock().unwrap().len() == 2);
    p.shutdown();
    let log = std::fs::read_to_string(layout.alerts_log()).unwrap();
    let alerts: Vec<Alert> = log
        .lines()
        .map(|l| Alert::decode(l.as_bytes()).unwrap())
        .collect();
    let scores: Vec<f64> = alerts.iter().map(|a| a.scored.anomaly_score).collect();
    assert_eq!(
        scores,
        [7.2, 4.01],
        "only scores above the threshold (4.0 is not above)"
    );
    assert!(
        alerts
            .iter()
            .all(|a| a.subject == "Anomaly Detected!" && a.threshold == 4.0)
    );
    let posted: Vec<Alert> = bodies
        .lock()
        .unwrap()
        .iter()
        .map(|b| Alert::decode(b.as_bytes()).unwrap())
        .collect();
    assert_eq!(
        posted, alerts,
        "the webhook gets the same JSON as alerts.log"
    );
    let alert_events = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|e| matches!(e, Event::Alert(_)))
        .count();
    assert_eq!(alert_events, 2);
}

#[test]
fn a_failing_webhook_is_retried_reported_and_never_blocks() {
    let (url, bodies) = webhook_server(500);
    let (_dir, loaded, layout, streams) = setup(&format!("[alerts]\nwebhook_url = \"{url}\"\n"));
    let (report, seen) = events();
    let p = Pipeline::start(
        streams.clone(),
        PipelineSettings {
            alerts: Some(settings::alert_settings(&layout, &loaded)),
            ..Default::default()
        },
        report,
    )
    .unwrap();
    wait_until("the alerts stage", || !seen.lock().unwrap().is_empty());
    put_scored(streams.as_ref(), &[9.0, 8.0]);
    // Both alerts are in the log at once, whatever the webhook does.
    wait_until("both alerts in alerts.log", || {
        std::fs::read_to_string(layout.alerts_log()).is_ok_and(|l| l.lines().count() == 2)
    });
    wait_until("the webhook to give up on the first alert", || {
        seen.lock().unwrap().iter().any(|e| matches!(e, Event::Problem { message, .. } if message.contains("gave up after 3 attempts")))
    });
    p.shutdown();
    assert!(bodies.lock().unwrap().len() >= 3, "retried");
}

#[test]
fn scoring_writes_every_reading_and_resumes_after_a_restart() {
    let (_dir, loaded, layout, streams) = setup("");
    let mut readings = cycle(600);
    readings.push(reading(600, 470));
    put_readings(streams.as_ref(), &readings);
    let (report, _) = events();
    let settings = || PipelineSettings {
        detector: Some(settings::detector_settings(&layout, &loaded)),
        ..Default::default()
    };
    let p = Pipeline::start(streams.clone(), settings(), report.clone()).unwrap();
    wait_until("every reading scored", || {
        streams.last_sequence(StreamRole::Anomalies) == Some(601)
    });
    p.shutdown();
    assert!(layout.snapshot().exists(), "the model is saved on stop");
    assert_eq!(read_checkpoint(&layout.checkpoint("detector")), Some(601));
    let mut reader = streams
        .reader(StreamRole::Anomalies, StartAt::TrimHorizon)
        .unwrap();
    let scored: Vec<ScoredReading> = reader
        .next_batch(10_000)
        .unwrap()
        .iter()
        .map(|r| ScoredReading::decode(&r.data).unwrap())
        .collect();
    assert_eq!(scored.len(), 601);
    let in_order: Vec<&Reading> = scored.iter().map(|s| &s.reading).collect();
    assert_eq!(in_order, readings.iter().collect::<Vec<_>>());
    assert!(
        scored[..50].iter().all(|s| s.anomaly_score == 0.0),
        "warm-up scores are 0"
    );
    assert!(
        scored[600].anomaly_score > 4.0,
        "the spike: {}",
        scored[600].anomaly_score
    );

    // After a restart the restored model continues after the checkpoint: nothing is
    // scored twice and the new readings are scored warm (no second warm-up).
    put_readings(
        streams.as_ref(),
        &(601..700).map(|i| reading(i, 0)).collect::<Vec<_>>(),
    );
    let p = Pipeline::start(streams.clone(), settings(), report).unwrap();
    wait_until("the new readings scored", || {
        streams.last_sequence(StreamRole::Anomalies) == Some(700)
    });
    p.shutdown();
    let rest: Vec<ScoredReading> = reader
        .next_batch(10_000)
        .unwrap()
        .iter()
        .map(|r| ScoredReading::decode(&r.data).unwrap())
        .collect();
    assert_eq!(rest.len(), 99);
    assert!(
        rest.iter().all(|s| s.anomaly_score > 0.0),
        "no second warm-up"
    );
}
