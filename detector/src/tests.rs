//! The detector's unit tests: scoring the seed's stream, warm-up, per-device forests,
//! snapshots (round trip, damage, versions, parameters), backtests.

use super::*;
use crate::rcf::fnv1a64;
use crate::records::{Attribution, Direction, Reading, ScoredReading};
use crate::snapshot::SNAPSHOT_HEADER_LEN;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The seed's alert threshold (facts/AWS.md: `WHERE ANOMALY_SCORE > 4`).
const THRESHOLD: f64 = 4.0;
/// The seed's devices (facts/AWS.md).
const DEVICES: [&str; 5] = ["aaaa", "bbbb", "cccc", "dddd", "eeee"];

fn reading(device: &str, value: i64, i: u64) -> Reading {
    let secs = i / 5;
    Reading {
        device_id: device.to_string(),
        sensor_reading: value,
        reading_timestamp: format!(
            "2026-11-30 {:02}:{:02}:{:02}.{:03}",
            (secs / 3600) % 24,
            (secs / 60) % 60,
            secs % 60,
            (i % 5) * 200
        ),
    }
}

/// The seed's normal stream: devices round-robin, readings uniform in -5..=5 (seeded).
struct SeedStream {
    rng: ChaCha8Rng,
    i: u64,
}

impl SeedStream {
    fn new(seed: u64) -> Self {
        SeedStream {
            rng: ChaCha8Rng::seed_from_u64(seed),
            i: 0,
        }
    }

    fn normal(&mut self) -> Reading {
        let device = DEVICES[(self.i % 5) as usize];
        let r = reading(device, self.rng.random_range(-5..=5), self.i);
        self.i += 1;
        r
    }

    /// A seed spike: ±(400..=500) on a random device.
    fn spike(&mut self, positive: bool) -> Reading {
        let device = DEVICES[self.rng.random_range(0..5)];
        let magnitude: i64 = self.rng.random_range(400..=500);
        let r = reading(
            device,
            if positive { magnitude } else { -magnitude },
            self.i,
        );
        self.i += 1;
        r
    }
}

fn small_params() -> DetectorParams {
    DetectorParams {
        trees: 20,
        sample_size: 64,
        ..DetectorParams::seed()
    }
}

fn attribution(s: &ScoredReading) -> &Attribution {
    &s.explanation.as_ref().expect("explanation enabled")[FIELD]
}

fn assert_sums_to_score(s: &ScoredReading) {
    let a = attribution(s).attribution_score;
    let tolerance = 1e-9 * s.anomaly_score.abs().max(f64::MIN_POSITIVE);
    assert!(
        (a - s.anomaly_score).abs() <= tolerance,
        "attribution {a} vs score {}",
        s.anomaly_score
    );
}

#[test]
fn detector_can_move_to_a_worker_thread() {
    fn assert_send<T: Send + 'static>() {}
    assert_send::<Detector>();
}

#[test]
fn seed_params_are_kdas() {
    let p = DetectorParams::seed();
    assert_eq!(
        (
            p.trees,
            p.sample_size,
            p.time_decay,
            p.shingle_size,
            p.per_device,
            p.explanation,
            p.random_seed
        ),
        (100, 256, 120, 1, false, true, 42)
    );
    assert_eq!(p.warm_up_readings(), 65);
    assert_eq!(DetectorParams::default(), p);
}

#[test]
fn normal_stream_warms_up_then_rarely_scores_above_threshold() {
    const READINGS: u64 = 10_000;
    // Explanation off: it is tested with the spikes, and it costs a second traversal.
    let params = DetectorParams {
        explanation: false,
        ..DetectorParams::seed()
    };
    let mut d = Detector::new(params).unwrap();
    let mut stream = SeedStream::new(1);
    let needed = params.warm_up_readings();
    assert_eq!(d.warm_up(), Some((0, needed)));

    let started = Instant::now();
    let mut live = Vec::new();
    for i in 0..READINGS {
        let s = d.score(&stream.normal());
        if i < needed {
            assert_eq!(s.anomaly_score, 0.0, "reading {i} is in warm-up");
            let expected = (i + 1 < needed).then_some((i + 1, needed));
            assert_eq!(d.warm_up(), expected, "after reading {i}");
        } else {
            assert!(s.anomaly_score > 0.0, "reading {i} scored 0 after warm-up");
            live.push(s.anomaly_score);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(d.warm_up(), None);
    assert_eq!(d.scored(), READINGS);
    assert_eq!(d.errors(), 0);

    let above = live.iter().filter(|&&s| s > THRESHOLD).count();
    let fraction = above as f64 / live.len() as f64;
    live.sort_by(f64::total_cmp);
    let pct = |p: f64| live[((live.len() - 1) as f64 * p) as usize];
    eprintln!(
        "normal: {} live, {above} above {THRESHOLD} ({:.4} %), median {:.3}, p99 {:.3}, \
         p99.9 {:.3}, max {:.3}; {:.0} readings/s",
        live.len(),
        fraction * 100.0,
        pct(0.5),
        pct(0.99),
        pct(0.999),
        live[live.len() - 1],
        READINGS as f64 / elapsed
    );
    assert!(fraction < 0.001, "{above} false alerts of {}", live.len());
    // Normal points sit near 1 (facts/RCF.md), far below a spike's ~7.
    assert!(pct(0.5) > 0.3 && pct(0.5) < 2.0, "median {}", pct(0.5));
}

#[test]
fn every_seed_spike_scores_above_threshold_with_its_direction() {
    const SPIKES: usize = 20;
    let mut d = Detector::new(DetectorParams::seed()).unwrap();
    let mut stream = SeedStream::new(2);
    let mut gaps = ChaCha8Rng::seed_from_u64(3);
    for _ in 0..300 {
        let s = d.score(&stream.normal());
        assert_sums_to_score(&s);
    }
    assert_eq!(d.warm_up(), None);

    let mut min_spike = f64::INFINITY;
    for k in 0..SPIKES {
        // Explaining only the spikes keeps this test fast; it changes no score.
        d.set_explanation(false);
        for _ in 0..gaps.random_range(250..=350) {
            d.score(&stream.normal());
        }
        d.set_explanation(true);
        let positive = k % 2 == 0;
        let s = d.score(&stream.spike(positive));
        assert!(
            s.anomaly_score > THRESHOLD,
            "spike {k} ({}) scored {}",
            s.reading.sensor_reading,
            s.anomaly_score
        );
        min_spike = min_spike.min(s.anomaly_score);
        let a = attribution(&s);
        let expected = if positive {
            Direction::High
        } else {
            Direction::Low
        };
        assert_eq!(a.direction, expected, "spike {k}: {a:?}");
        assert!(a.strength > 0.5 && a.strength <= 1.0, "spike {k}: {a:?}");
        assert_sums_to_score(&s);
    }
    eprintln!("spikes: {SPIKES}, minimum score {min_spike:.3}");
}

#[test]
fn explanation_is_absent_when_disabled_and_zero_in_warm_up() {
    let params = small_params();
    let mut with = Detector::new(params).unwrap();
    let mut without = Detector::new(DetectorParams {
        explanation: false,
        ..params
    })
    .unwrap();
    let mut stream = SeedStream::new(4);
    for i in 0..100 {
        let r = stream.normal();
        let a = with.score(&r);
        let b = without.score(&r);
        assert_eq!(b.explanation, None);
        assert_eq!(
            a.anomaly_score, b.anomaly_score,
            "explanation changes no score"
        );
        let line = String::from_utf8(b.encode()).unwrap();
        assert!(!line.contains("ANOMALY_EXPLANATION"), "{line}");
        if i < params.warm_up_readings() {
            assert_eq!(attribution(&a).attribution_score, 0.0);
            assert_eq!(attribution(&a).strength, 0.0);
        } else {
            assert_sums_to_score(&a);
        }
    }
}

#[test]
fn per_device_forests_warm_up_separately_and_deterministically() {
    let params = DetectorParams {
        per_device: true,
        ..small_params()
    };
    let needed = params.warm_up_readings();
    let mut d = Detector::new(params).unwrap();
    assert_eq!(d.warm_up(), Some((0, needed)));
    assert_eq!(d.forest_count(), 0);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut aaaa = Vec::new();
    for i in 0..needed + 20 {
        let s = d.score(&reading("aaaa", rng.random_range(-5..=5), i));
        aaaa.push(s.anomaly_score);
    }
    assert!(aaaa[..needed as usize].iter().all(|&s| s == 0.0));
    assert!(aaaa[needed as usize..].iter().all(|&s| s > 0.0));
    assert_eq!(d.warm_up(), None);

    // A new device warms up on its own, and is the least-warm one.
    let s = d.score(&reading("bbbb", 3, 0));
    assert_eq!(s.anomaly_score, 0.0);
    assert_eq!(d.warm_up(), Some((1, needed)));
    assert_eq!(d.forest_count(), 2);

    // Same seed and readings, same scores (per-device seeds are stable).
    let mut again = Detector::new(params).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for (i, &expected) in aaaa.iter().enumerate() {
        let s = again.score(&reading("aaaa", rng.random_range(-5..=5), i as u64));
        assert_eq!(s.anomaly_score, expected);
    }
    assert_eq!(device_seed(42, "aaaa"), device_seed(42, "aaaa"));
    assert_ne!(device_seed(42, "aaaa"), device_seed(42, "bbbb"));
    assert_ne!(device_seed(42, "aaaa"), device_seed(43, "aaaa"));
    // Pinned: changing the hash would change every per-device forest's seed.
    assert_eq!(fnv1a64(b"aaaa"), 0xf521_6183_ea91_2259);
}

/// Scores of `n + m` readings uninterrupted, and of `n`, save, load, `m` more.
fn round_trip(params: DetectorParams, n: u64, m: u64) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.rcf");
    let mut stream = SeedStream::new(6);
    let readings: Vec<Reading> = (0..n + m)
        .map(|i| {
            if i == n + m / 2 {
                stream.spike(true)
            } else {
                stream.normal()
            }
        })
        .collect();

    let mut uninterrupted = Detector::new(params).unwrap();
    let expected: Vec<ScoredReading> = readings.iter().map(|r| uninterrupted.score(r)).collect();

    let mut first = Detector::new(params).unwrap();
    for r in &readings[..n as usize] {
        first.score(r);
    }
    first.save(&path).unwrap();
    let warm_up_before = first.warm_up();
    drop(first);

    let mut restored = Detector::load(&path, &params).unwrap();
    assert_eq!(restored.scored(), n);
    assert_eq!(restored.warm_up(), warm_up_before);
    for (i, r) in readings.iter().enumerate().skip(n as usize) {
        let s = restored.score(r);
        assert_eq!(s, expected[i], "reading {i} differs after restore");
    }
    assert!(
        expected[n as usize..]
            .iter()
            .any(|s| s.anomaly_score > THRESHOLD)
    );
    assert_eq!(restored.scored(), n + m);
    // Only the snapshot is left in the directory (no temporary files).
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("model.rcf")]);
}

#[test]
fn restored_detector_continues_bit_identically() {
    round_trip(DetectorParams::seed(), 600, 400);
}

#[test]
fn restored_per_device_detector_continues_bit_identically() {
    // 200 readings = 40 per device: saved in the middle of every device's warm-up.
    let params = DetectorParams {
        per_device: true,
        ..DetectorParams::seed()
    };
    round_trip(params, 200, 600);
}

#[test]
fn other_forest_sizes_build_score_and_restore() {
    for params in [
        // more than 256 points per tree: the medium forest type
        DetectorParams {
            trees: 5,
            sample_size: 300,
            ..DetectorParams::seed()
        },
        // too many points for 16-bit indices: medium as well
        DetectorParams {
            trees: 300,
            sample_size: 256,
            time_decay: 100_000,
            ..DetectorParams::seed()
        },
        // shingled, per device
        DetectorParams {
            trees: 10,
            sample_size: 32,
            shingle_size: 4,
            per_device: true,
            ..DetectorParams::seed()
        },
    ] {
        round_trip(params, 150, 150);
    }
}

fn saved_snapshot(dir: &Path, params: &DetectorParams) -> (PathBuf, Vec<u8>) {
    let path = dir.join("model.rcf");
    let mut d = Detector::new(*params).unwrap();
    let mut stream = SeedStream::new(7);
    for _ in 0..100 {
        d.score(&stream.normal());
    }
    d.save(&path).unwrap();
    let bytes = fs::read(&path).unwrap();
    (path, bytes)
}

fn assert_one_line(e: &SnapshotError, path: &Path) {
    let message = e.to_string();
    assert!(!message.contains('\n'), "{message}");
    assert!(message.contains(&path.display().to_string()), "{message}");
}

#[test]
fn snapshot_errors_are_typed_and_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let params = small_params();
    let (path, good) = saved_snapshot(dir.path(), &params);
    assert!(Detector::load(&path, &params).is_ok());

    let missing = dir.path().join("nothing-here.rcf");
    let e = Detector::load(&missing, &params).unwrap_err();
    assert!(matches!(e, SnapshotError::Missing { .. }), "{e}");
    assert_one_line(&e, &missing);

    let write = |bytes: &[u8]| fs::write(&path, bytes).unwrap();
    let load = || Detector::load(&path, &params);

    // Truncated anywhere.
    for len in [0, 5, 11, 12, 20, 27, 28, 29, good.len() / 2, good.len() - 1] {
        write(&good[..len]);
        let e = load().unwrap_err();
        assert!(matches!(e, SnapshotError::Corrupt { .. }), "len {len}: {e}");
        assert_one_line(&e, &path);
    }
    // A flipped byte in the magic, the length, the checksum or the model.
    let step = (good.len() / 97).max(1);
    let positions = [0, 7, 12, 19, 20, 27]
        .into_iter()
        .chain((SNAPSHOT_HEADER_LEN..good.len()).step_by(step));
    for at in positions {
        let mut bad = good.clone();
        bad[at] ^= 0x5a;
        write(&bad);
        let e = load().unwrap_err();
        assert!(matches!(e, SnapshotError::Corrupt { .. }), "byte {at}: {e}");
    }
    // A payload that passes the checksum but is cut short: the decoder says so.
    let mut short = good[..good.len() - 10].to_vec();
    let payload_len = (short.len() - SNAPSHOT_HEADER_LEN) as u64;
    let checksum = fnv1a64(&short[SNAPSHOT_HEADER_LEN..]);
    short[12..20].copy_from_slice(&payload_len.to_le_bytes());
    short[20..28].copy_from_slice(&checksum.to_le_bytes());
    write(&short);
    let e = load().unwrap_err();
    assert!(
        matches!(&e, SnapshotError::Corrupt { reason, .. } if reason.contains("decode")),
        "{e}"
    );
    // Not a snapshot at all.
    write(b"{\"deviceId\":\"aaaa\",\"sensorReading\":3}\n");
    let e = load().unwrap_err();
    assert!(
        matches!(e, SnapshotError::Corrupt { .. }) && e.to_string().contains("IOTAARCF"),
        "{e}"
    );

    // Another format version.
    let mut other = good.clone();
    other[8..12].copy_from_slice(&(SNAPSHOT_FORMAT_VERSION + 1).to_le_bytes());
    write(&other);
    let e = load().unwrap_err();
    assert!(
        matches!(e, SnapshotError::Version { found, expected, .. }
            if found == SNAPSHOT_FORMAT_VERSION + 1 && expected == SNAPSHOT_FORMAT_VERSION),
        "{e}"
    );
    assert_one_line(&e, &path);

    // Other model parameters.
    write(&good);
    let changed = DetectorParams {
        trees: 30,
        random_seed: 7,
        ..params
    };
    let e = Detector::load(&path, &changed).unwrap_err();
    match &e {
        SnapshotError::Params { differences, .. } => {
            assert_eq!(
                differences,
                &["trees 20 (now 30)", "random_seed 42 (now 7)"]
            )
        }
        other => panic!("expected Params, got {other}"),
    }
    assert_one_line(&e, &path);
    let e = Detector::load(
        &path,
        &DetectorParams {
            per_device: true,
            ..params
        },
    )
    .unwrap_err();
    assert!(matches!(e, SnapshotError::Params { .. }), "{e}");

    // `explanation` is output only: the snapshot loads and follows the new setting.
    let mut quiet = Detector::load(
        &path,
        &DetectorParams {
            explanation: false,
            ..params
        },
    )
    .unwrap();
    assert_eq!(quiet.score(&reading("aaaa", 1, 0)).explanation, None);

    // Invalid parameters are reported as such, before the file is read.
    let e = Detector::load(&path, &DetectorParams { trees: 0, ..params }).unwrap_err();
    assert!(matches!(e, SnapshotError::InvalidParams(_)), "{e}");
}

#[test]
fn save_replaces_atomically_and_reports_where_it_failed() {
    let dir = tempfile::tempdir().unwrap();
    let params = small_params();
    let (path, _) = saved_snapshot(dir.path(), &params);
    // Saving again over an existing snapshot replaces it.
    let mut d = Detector::load(&path, &params).unwrap();
    d.score(&reading("aaaa", 1, 0));
    d.save(&path).unwrap();
    assert_eq!(Detector::load(&path, &params).unwrap().scored(), 101);
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);

    let nowhere = dir.path().join("no-such-dir").join("model.rcf");
    let e = d.save(&nowhere).unwrap_err();
    assert!(
        e.to_string().contains(&nowhere.display().to_string()),
        "{e}"
    );
    assert!(!e.to_string().contains('\n'), "{e}");
}

#[test]
fn invalid_params_are_rejected_with_the_field() {
    for (params, field) in [
        (
            DetectorParams {
                trees: 0,
                ..DetectorParams::seed()
            },
            "trees",
        ),
        (
            DetectorParams {
                sample_size: 3,
                ..DetectorParams::seed()
            },
            "sample_size",
        ),
        (
            DetectorParams {
                time_decay: 0,
                ..DetectorParams::seed()
            },
            "time_decay",
        ),
        (
            DetectorParams {
                shingle_size: 0,
                ..DetectorParams::seed()
            },
            "shingle_size",
        ),
    ] {
        let e = Detector::new(params).unwrap_err();
        assert!(
            matches!(&e, DetectorError::InvalidParams { field: f, .. } if *f == field),
            "{e}"
        );
        assert!(e.to_string().contains(field), "{e}");
    }
}

#[test]
fn score_lines_reports_bad_lines_and_scores_the_rest_in_order() {
    let params = small_params();
    let mut stream = SeedStream::new(8);
    let readings: Vec<Reading> = (0..60).map(|_| stream.normal()).collect();
    let mut input = Vec::new();
    for (i, r) in readings.iter().enumerate() {
        if i == 30 {
            input.extend_from_slice(b"{\"deviceId\":\"aaaa\",\"sensorReading\":\"high\"}\n");
            input.extend_from_slice(b"\n");
        }
        let mut line = r.encode();
        if i == 40 {
            // CRLF line endings are accepted.
            line.insert(line.len() - 1, b'\r');
        }
        input.extend_from_slice(&line);
    }
    input.extend_from_slice(b"not json at all"); // last line, no newline

    let mut out = Vec::new();
    let mut bad = Vec::new();
    let summary = score_lines(&input[..], &mut out, &params, |n, message| {
        bad.push((n, message))
    })
    .unwrap();

    assert_eq!(bad.len(), 2, "{bad:?}");
    assert_eq!(bad[0].0, 31);
    assert!(
        bad[0].1.starts_with("expected a reading as JSON"),
        "{}",
        bad[0].1
    );
    assert!(!bad[0].1.contains('\n'));
    assert_eq!(bad[1].0, 63);

    let mut direct = Detector::new(params).unwrap();
    let expected: Vec<ScoredReading> = readings.iter().map(|r| direct.score(r)).collect();
    // Byte-for-byte: serde_json may read a float back 1 ULP off, so compare the lines.
    let lines: Vec<&[u8]> = out.split_inclusive(|&b| b == b'\n').collect();
    assert_eq!(lines.len(), expected.len());
    for (i, (line, s)) in lines.iter().zip(&expected).enumerate() {
        assert!(*line == s.encode().as_slice(), "output line {i} differs");
    }
    let max = expected.iter().map(|s| s.anomaly_score).fold(0.0, f64::max);
    assert_eq!(
        summary,
        BacktestSummary {
            lines: 63,
            scored: 60,
            bad: 2,
            max_score: max
        }
    );
    assert!(max > 0.0);
}
