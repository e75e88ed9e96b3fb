//! `iotaa lake compact` stopped at any point loses and duplicates nothing.
//!
//! - **Every step**: the real binary is stopped (aborted) after its 1st, 2nd, … file-system step
//!   (a kept malformed-lines file, the Parquet object's rename, each original's removal; the
//!   originals are JSON, gzip JSON and, in every other hour, a Parquet object) on a
//!   fresh copy of one lake, until a run finishes on its own. After each stop, a query sees every
//!   reading exactly once (the multiset of rows equals the lake's); then compaction runs again
//!   and finishes, and the same holds, with only Parquet objects left in the closed hours and
//!   every malformed line kept under delivery-errors/.
//! - **Kill -9 at seeded random moments** of a larger lake's compaction, 8 times, restarting it
//!   each time, then once more to the end: the same checks.
//!
//! `cargo test --test compaction -- --nocapture` prints the figures.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use iot_anomaly_analytics::query::lake::write::ParquetObject;
use iot_anomaly_analytics::query::{EngineOptions, QueryEngine};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const SEED: u64 = 0x0C0A_C7ED;
const DEVICES: [&str; 5] = ["aaaa", "bbbb", "cccc", "dddd", "eeee"];

struct Lake {
    /// Holds config.toml and data/lake.
    dir: PathBuf,
    /// Every reading, as the query's rows (deviceid, sensorreading, readingtimestamp), sorted.
    rows: Vec<[String; 3]>,
    malformed: u64,
    hours: Vec<String>,
}

/// `hours` closed hour folders (December 2025), each with `objects` objects of `lines` lines
/// (every other one gzipped; a malformed line now and then; in every other hour the third
/// object is Parquet).
fn make_lake(dir: &Path, rng: &mut StdRng, hours: usize, objects: usize, lines: usize) -> Lake {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("config.toml"), "data_dir = \"data\"\n").unwrap();
    let mut rows = Vec::new();
    let mut malformed = 0;
    let mut names = Vec::new();
    for h in 0..hours {
        let datehour = format!("2025/12/{:02}/{:02}", 1 + h / 24, h % 24);
        let folder = dir.join("data/lake").join(&datehour);
        std::fs::create_dir_all(&folder).unwrap();
        for o in 0..objects {
            let mut text = String::new();
            for i in 0..lines {
                if rng.random_ratio(1, 97) {
                    text.push_str("{\"deviceId\":\"aaaa\",\"sensorReading\":\"x\"}\n");
                    malformed += 1;
                }
                let device = DEVICES[rng.random_range(0..5)];
                let reading: i16 = rng.random_range(-9..=9);
                let ts = format!(
                    "{}-{}-{} {}:{:02}:{:02}.{:03}",
                    &datehour[0..4],
                    &datehour[5..7],
                    &datehour[8..10],
                    &datehour[11..13],
                    (o * 7 + i / 60) % 60,
                    i % 60,
                    rng.random_range(0..1000)
                );
                text.push_str(&format!(
                    "{{\"deviceId\":\"{device}\",\"sensorReading\":{reading},\"readingTimestamp\":\"{ts}\"}}\n"
                ));
                rows.push([device.to_string(), reading.to_string(), ts]);
            }
            let name = format!("devicedata-1-{}-{o:02}", datehour.replace('/', "-"));
            if o == 2 && h % 2 == 1 {
                // A Parquet object, as delivery with format = "parquet" writes (the lines that
                // are not readings are not in it).
                let mut object = ParquetObject::new().unwrap();
                for line in text.lines() {
                    if !object.push_record(line.as_bytes()).unwrap() {
                        malformed -= 1;
                    }
                }
                std::fs::write(
                    folder.join(format!("{name}.parquet")),
                    object.finish().unwrap(),
                )
                .unwrap();
            } else if o % 2 == 0 {
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                gz.write_all(text.as_bytes()).unwrap();
                std::fs::write(folder.join(format!("{name}.gz")), gz.finish().unwrap()).unwrap();
            } else {
                std::fs::write(folder.join(name), text).unwrap();
            }
        }
        names.push(datehour);
    }
    rows.sort();
    Lake {
        dir: dir.to_path_buf(),
        rows,
        malformed,
        hours: names,
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

fn compact_command(dir: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_iotaa"));
    c.current_dir(dir)
        .args([
            "--config",
            "config.toml",
            "lake",
            "compact",
            "--min-age",
            "0s",
        ])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

/// Every reading exactly once: the rows a query returns, as a multiset, are the lake's.
fn assert_rows_once(lake: &Lake, dir: &Path, rt: &tokio::runtime::Runtime, when: &str) {
    let engine = QueryEngine::new(
        &dir.join("data/lake"),
        EngineOptions {
            database: "analyticsdemo".into(),
            table: "devicedata".into(),
            max_rows: 10_000_000,
            memory_limit_bytes: 256 << 20,
        },
    )
    .unwrap();
    let out = rt
        .block_on(engine.run("SELECT deviceid, sensorreading, readingtimestamp FROM devicedata"))
        .unwrap_or_else(|e| panic!("{when}: {e}"));
    assert!(
        out.skipped_objects.is_empty(),
        "{when}: {:?}",
        out.skipped_objects
    );
    let mut got: Vec<[String; 3]> = out
        .rows
        .iter()
        .map(|r| {
            let v = |i: usize| r[i].clone().unwrap_or_default();
            [v(0), v(1), v(2)]
        })
        .collect();
    got.sort();
    assert_eq!(
        got.len(),
        lake.rows.len(),
        "{when}: {} rows, the lake holds {}",
        got.len(),
        lake.rows.len()
    );
    assert!(got == lake.rows, "{when}: the rows differ from the lake's");
}

/// After a finished compaction: one Parquet object per hour, no temporary file left in an
/// hour folder, and every malformed line kept.
fn assert_finished(lake: &Lake, dir: &Path, when: &str) {
    let root = dir.join("data/lake");
    for hour in &lake.hours {
        let names: Vec<String> = std::fs::read_dir(root.join(hour))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 1, "{when}: {hour}: {names:?}");
        assert!(names[0].ends_with(".parquet"), "{when}: {names:?}");
    }
    let mut kept = 0u64;
    let errors = root.join("delivery-errors/compaction-malformed");
    for hour in &lake.hours {
        if let Ok(files) = std::fs::read_dir(errors.join(hour)) {
            for f in files {
                kept += std::fs::read_to_string(f.unwrap().path())
                    .unwrap()
                    .lines()
                    .count() as u64;
            }
        }
    }
    assert_eq!(kept, lake.malformed, "{when}: malformed lines kept");
}

#[test]
fn compaction_stopped_after_any_step_loses_and_duplicates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(SEED);
    let lake = make_lake(&tmp.path().join("original"), &mut rng, 3, 3, 300);
    assert!(lake.malformed > 0);
    let rt = tokio::runtime::Runtime::new().unwrap();
    assert_rows_once(&lake, &lake.dir, &rt, "before");
    let mut k = 1u64;
    loop {
        let dir = tmp.path().join(format!("stop-{k}"));
        copy_dir(&lake.dir, &dir);
        let out = compact_command(&dir, &["--abort-after-steps", &k.to_string()])
            .output()
            .unwrap();
        if out.status.success() {
            break;
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("stopping after step {k}")),
            "step {k}: {stderr}"
        );
        assert_rows_once(&lake, &dir, &rt, &format!("stopped after step {k}"));
        let again = compact_command(&dir, &[]).output().unwrap();
        assert!(
            again.status.success(),
            "{}",
            String::from_utf8_lossy(&again.stderr)
        );
        assert_rows_once(
            &lake,
            &dir,
            &rt,
            &format!("finished after a stop at step {k}"),
        );
        assert_finished(&lake, &dir, &format!("finished after a stop at step {k}"));
        std::fs::remove_dir_all(&dir).unwrap();
        k += 1;
        assert!(k < 100, "compaction never finished on its own");
    }
    // 3 hours × (kept malformed files + the Parquet object + 3 removals).
    assert!(k > 3 * 4, "only {} steps", k - 1);
    let dir = tmp.path().join(format!("stop-{k}"));
    assert_rows_once(&lake, &dir, &rt, "uninterrupted");
    assert_finished(&lake, &dir, "uninterrupted");
    eprintln!(
        "compaction: stopped after each of its {} steps: every reading once, each time ({} readings, {} malformed lines kept)",
        k - 1,
        lake.rows.len(),
        lake.malformed
    );
}

#[test]
fn compaction_killed_at_random_moments_loses_and_duplicates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(SEED + 1);
    let lake = make_lake(&tmp.path().join("lake"), &mut rng, 24, 3, 2_000);
    let rt = tokio::runtime::Runtime::new().unwrap();
    // How long an uninterrupted run takes on this machine, on a copy.
    let probe = tmp.path().join("probe");
    copy_dir(&lake.dir, &probe);
    let started = Instant::now();
    assert!(compact_command(&probe, &[]).status().unwrap().success());
    let full = started.elapsed();
    std::fs::remove_dir_all(&probe).unwrap();
    let mut kills = 0;
    for _ in 0..8 {
        let mut child = compact_command(&lake.dir, &[]).spawn().unwrap();
        let at = full.mul_f64(rng.random_range(0.02..0.15));
        let deadline = Instant::now() + at;
        while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(2));
        }
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            kills += 1;
        }
        child.wait().unwrap();
        assert_rows_once(&lake, &lake.dir, &rt, &format!("after kill {kills}"));
    }
    assert!(compact_command(&lake.dir, &[]).status().unwrap().success());
    assert_rows_once(&lake, &lake.dir, &rt, "finished");
    assert_finished(&lake, &lake.dir, "finished");
    assert!(
        kills >= 4,
        "only {kills} of 8 runs were killed before they ended"
    );
    eprintln!(
        "compaction: killed {kills} times (a full run takes {:.2} s): every reading once ({} readings)",
        full.as_secs_f64(),
        lake.rows.len()
    );
}
