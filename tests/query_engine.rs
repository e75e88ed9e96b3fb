//! The embedded SQL engine over a generated lake: every shipped query, the Athena dialect,
//! datehour pruning, malformed lines, read-only refusals, cancellation, the row cap, and the
//! `iotaa query` command through the real binary.
//!
//! The lake is generated with a seeded RNG around the current hour (so the shipped queries that
//! look at "the last hour" have something to find); every expected answer is computed here in
//! plain Rust from the generated records, never through the engine.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use iot_anomaly_analytics::query::{EngineOptions, QueryEngine, QueryOutput};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const DEVICES: [&str; 5] = ["aaaa", "bbbb", "cccc", "dddd", "eeee"];
const HOUR_MS: i64 = 3_600_000;
const QUERIES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/queries");

#[derive(Debug, Clone)]
struct Rec {
    device: String,
    reading: i64,
    ts_ms: i64,
    datehour: String,
}

struct Lake {
    dir: tempfile::TempDir,
    records: Vec<Rec>,
    malformed: u64,
    /// datehour → (object path, size in bytes)
    objects: BTreeMap<String, Vec<(PathBuf, u64)>>,
    /// The first hour folder's start (UTC ms).
    hour0_ms: i64,
    /// `now` when the lake was made.
    made_ms: i64,
}

impl Lake {
    fn root(&self) -> PathBuf {
        self.dir.path().join("lake")
    }
    fn total_files(&self) -> u64 {
        self.objects.values().map(|v| v.len() as u64).sum()
    }
}

fn fmt_ms(ms: i64, pattern: &str) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap()
        .format(pattern)
        .to_string()
}

fn fmt_ts(ms: i64) -> String {
    fmt_ms(ms, "%Y-%m-%d %H:%M:%S%.3f")
}

fn reading_line(device: &str, reading: i64, ts_ms: i64, style: u32) -> String {
    let ts = fmt_ts(ts_ms);
    match style {
        // Extra keys (a scored reading), as the anomaly stream has them.
        1 => format!(
            r#"{{"deviceId":"{device}","sensorReading":{reading},"readingTimestamp":"{ts}","ANOMALY_SCORE":0.71}}"#
        ),
        // Keys in another case: the OpenX SerDe matches them case-insensitively.
        2 => format!(
            r#"{{"DEVICEID":"{device}","SensorReading":{reading},"readingtimestamp":"{ts}"}}"#
        ),
        // Other key order and spacing.
        3 => format!(
            r#"{{ "readingTimestamp": "{ts}", "sensorReading": {reading}, "deviceId": "{device}" }}"#
        ),
        _ => format!(
            r#"{{"deviceId":"{device}","sensorReading":{reading},"readingTimestamp":"{ts}"}}"#
        ),
    }
}

/// Lines that are not readings, one of each kind.
fn malformed_line(kind: u64, ts_ms: i64) -> String {
    let ts = fmt_ts(ts_ms);
    match kind % 8 {
        0 => r#"{"deviceId":"aaaa","sensorReading":3,"#.to_string(),
        1 => format!(r#"{{"deviceId":"aaaa","readingTimestamp":"{ts}"}}"#),
        2 => format!(r#"{{"deviceId":"aaaa","sensorReading":"3","readingTimestamp":"{ts}"}}"#),
        3 => format!(r#"{{"deviceId":"aaaa","sensorReading":99999,"readingTimestamp":"{ts}"}}"#),
        4 => r#"{"deviceId":"aaaa","sensorReading":3,"readingTimestamp":"yesterday"}"#.to_string(),
        5 => "not json at all".to_string(),
        6 => format!(r#"{{"deviceId":7,"sensorReading":3,"readingTimestamp":"{ts}"}}"#),
        _ => format!(r#"{{"deviceId":"aaaa","sensorReading":2.5,"readingTimestamp":"{ts}"}}"#),
    }
}

fn write_object(dir: &Path, name: &str, lines: &[String], gzip: bool) -> (PathBuf, u64) {
    std::fs::create_dir_all(dir).unwrap();
    let mut text = String::new();
    for l in lines {
        text.push_str(l);
        text.push('\n');
    }
    let path = dir.join(if gzip {
        format!("{name}.gz")
    } else {
        name.to_string()
    });
    let bytes = if gzip {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(text.as_bytes()).unwrap();
        enc.finish().unwrap()
    } else {
        text.into_bytes()
    };
    std::fs::write(&path, &bytes).unwrap();
    (path, bytes.len() as u64)
}

/// Five hour folders ending with the current hour, `ticks` readings per device per hour (none
/// in the last 3 minutes, none within 2 minutes of an hour ago), three objects per folder
/// (two gzipped), a spike now and then, malformed lines, and things a scan must ignore.
fn generate(seed: u64, ticks: i64) -> Lake {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("lake");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let made_ms = Utc::now().timestamp_millis();
    let hour0_ms = (made_ms / HOUR_MS - 4) * HOUR_MS;
    let hour_ago = made_ms - HOUR_MS;
    let forced_spike_tick = hour_ago + 10 * 60_000;
    let mut records = Vec::new();
    let mut objects = BTreeMap::new();
    let mut malformed = 0u64;
    let mut forced = false;
    for h in 0..5 {
        let start = hour0_ms + h * HOUR_MS;
        let datehour = fmt_ms(start, "%Y/%m/%d/%H");
        let folder = root.join(&datehour);
        let mut lines: Vec<Vec<String>> = vec![Vec::new(); 3];
        let step = HOUR_MS / ticks;
        for t in 0..ticks {
            let tick = start + t * step;
            if tick + 1000 > made_ms - 180_000 || (tick - hour_ago).abs() < 120_000 {
                continue;
            }
            for (d, device) in DEVICES.iter().enumerate() {
                let mut reading = if rng.random_ratio(1, 250) {
                    let magnitude = rng.random_range(400..=500i64);
                    if rng.random_bool(0.5) {
                        magnitude
                    } else {
                        -magnitude
                    }
                } else {
                    rng.random_range(-5..=5i64)
                };
                if !forced && tick >= forced_spike_tick {
                    // At least one spike in the last hour, for last_hour_spikes.sql.
                    reading = match *device {
                        "aaaa" => -420,
                        "cccc" => 444,
                        _ => reading,
                    };
                }
                let ts_ms = tick + d as i64 * 37 + rng.random_range(0..500i64);
                let style = match rng.random_range(0..100u32) {
                    0..=2 => 1,
                    3..=4 => 2,
                    5..=6 => 3,
                    _ => 0,
                };
                let object = rng.random_range(0..3usize);
                lines[object].push(reading_line(device, reading, ts_ms, style));
                records.push(Rec {
                    device: device.to_string(),
                    reading,
                    ts_ms,
                    datehour: datehour.clone(),
                });
            }
            if !forced && tick >= forced_spike_tick {
                forced = true;
            }
            if rng.random_ratio(1, 15) {
                let object = rng.random_range(0..3usize);
                lines[object].push(malformed_line(malformed, tick));
                malformed += 1;
            }
            if rng.random_ratio(1, 40) {
                // Blank lines are not readings, but not malformed either.
                lines[rng.random_range(0..3usize)].push(String::new());
            }
        }
        if h == 1 {
            // A device whose readings are all 3: exact percentiles.
            for i in 0..20 {
                let ts_ms = start + 1000 * i + 5;
                lines[0].push(reading_line("pppp", 3, ts_ms, 0));
                records.push(Rec {
                    device: "pppp".into(),
                    reading: 3,
                    ts_ms,
                    datehour: datehour.clone(),
                });
            }
        }
        let mut written = Vec::new();
        for (k, object_lines) in lines.iter().enumerate() {
            let name = format!(
                "devicedata-1-{}-{:032x}",
                fmt_ms(start + k as i64 * 60_000, "%Y-%m-%d-%H-%M-%S"),
                rng.random::<u128>()
            );
            written.push(write_object(&folder, &name, object_lines, k != 1));
        }
        objects.insert(datehour, written);
    }
    // What a scan must ignore: the delivery's staging folder, dot- and underscore-files, a
    // folder that is not an hour, a file at the top.
    let ignored = vec![reading_line("zzzz", 1, hour0_ms, 0)];
    write_object(&root.join(".staging"), ".devicedata-tmp", &ignored, false);
    let first_hour = root.join(fmt_ms(hour0_ms, "%Y/%m/%d/%H"));
    write_object(&first_hour, ".hidden", &ignored, false);
    write_object(&first_hour, "_SUCCESS", &ignored, false);
    write_object(&root.join("notes"), "devicedata-1-x", &ignored, false);
    write_object(
        &root.join(fmt_ms(hour0_ms, "%Y/%m/%d")),
        "stray",
        &ignored,
        false,
    );
    write_object(&root, "stray", &ignored, false);
    Lake {
        dir,
        records,
        malformed,
        objects,
        hour0_ms,
        made_ms,
    }
}

fn options(max_rows: usize) -> EngineOptions {
    EngineOptions {
        database: "analyticsdemo".into(),
        table: "devicedata".into(),
        max_rows,
        memory_limit_bytes: 256 << 20,
    }
}

fn engine(lake: &Lake, max_rows: usize) -> QueryEngine {
    QueryEngine::new(&lake.root(), options(max_rows)).unwrap()
}

async fn run(engine: &QueryEngine, sql: &str) -> QueryOutput {
    match engine.run(sql).await {
        Ok(out) => out,
        Err(e) => panic!("{sql}\n=> {e}"),
    }
}

fn cells(out: &QueryOutput) -> Vec<Vec<String>> {
    out.rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|v| v.clone().unwrap_or_else(|| "NULL".into()))
                .collect()
        })
        .collect()
}

fn single(out: &QueryOutput) -> String {
    assert_eq!(out.rows.len(), 1, "{:?}", out.rows);
    assert_eq!(out.rows[0].len(), 1, "{:?}", out.rows);
    out.rows[0][0].clone().unwrap_or_else(|| "NULL".into())
}

fn row(values: &[&dyn ToString]) -> Vec<String> {
    values.iter().map(|v| v.to_string()).collect()
}

fn is_spike(r: &Rec) -> bool {
    r.reading < -5 || r.reading > 5
}

/// Nearest-rank percentile.
fn percentile(sorted: &[i64], p: f64) -> f64 {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64
}

fn per_device<T: Default>(
    records: &[Rec],
    mut fold: impl FnMut(&mut T, &Rec),
) -> BTreeMap<String, T> {
    let mut map: BTreeMap<String, T> = BTreeMap::new();
    for r in records {
        fold(map.entry(r.device.clone()).or_default(), r);
    }
    map
}

/// The example queries of `queries/` (not the DDL), sorted.
fn shipped_queries() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(QUERIES)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".sql") && n != "devicedata.sql")
        .collect();
    files.sort();
    files
}

fn query_text(name: &str) -> String {
    std::fs::read_to_string(Path::new(QUERIES).join(name)).unwrap()
}

/// Compares rows exactly, except in the listed columns, which are compared as numbers within
/// `tolerance`.
fn assert_rows(
    name: &str,
    got: &[Vec<String>],
    want: &[Vec<String>],
    approx: &[usize],
    tolerance: f64,
) {
    assert_eq!(
        got.len(),
        want.len(),
        "{name}: row count\n got {got:?}\nwant {want:?}"
    );
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.len(), w.len(), "{name}: row {i} width: {g:?} vs {w:?}");
        for (c, (gv, wv)) in g.iter().zip(w).enumerate() {
            if approx.contains(&c) {
                let (gn, wn): (f64, f64) = (gv.parse().unwrap(), wv.parse().unwrap());
                assert!(
                    (gn - wn).abs() <= tolerance,
                    "{name}: row {i} column {c}: got {gv}, want {wv} (± {tolerance})"
                );
            } else {
                assert_eq!(gv, wv, "{name}: row {i} column {c}\n got {g:?}\nwant {w:?}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shipped_query_gives_the_expected_answer() {
    let lake = generate(11, 240);
    let recs = &lake.records;
    assert!(recs.len() > 4000, "{}", recs.len());
    let e = engine(&lake, 100_000);
    let files = shipped_queries();
    assert!(files.len() >= 8, "{files:?}");
    for name in &files {
        let sql = query_text(name);
        let first = sql.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("-- ") && first.len() > 10,
            "{name}: the first line must be a `-- ` comment saying what it answers"
        );
        let started_ms = Utc::now().timestamp_millis();
        let out = run(&e, &sql).await;
        let got = cells(&out);
        if name == "last_hour_spikes.sql" {
            // Pruned: only the malformed lines of the recent folders were seen.
            assert!(
                out.malformed_lines <= lake.malformed,
                "{name}: malformed lines"
            );
        } else {
            assert_eq!(
                out.malformed_lines, lake.malformed,
                "{name}: malformed lines"
            );
        }
        let mut approx: Vec<usize> = Vec::new();
        let mut tolerance = 0.0;
        let want: Vec<Vec<String>> = match name.as_str() {
            "out_of_range.sql" => {
                let mut spikes: Vec<&Rec> = recs.iter().filter(|r| is_spike(r)).collect();
                spikes.sort_by(|a, b| {
                    (a.ts_ms, &a.device, a.reading).cmp(&(b.ts_ms, &b.device, b.reading))
                });
                assert!(
                    spikes.len() >= 5,
                    "too few spikes to test: {}",
                    spikes.len()
                );
                spikes
                    .iter()
                    .map(|r| row(&[&r.device, &r.reading, &fmt_ts(r.ts_ms)]))
                    .collect()
            }
            "count_per_device.sql" => per_device(recs, |n: &mut u64, _| *n += 1)
                .iter()
                .map(|(d, n)| row(&[d, n]))
                .collect(),
            "stats_per_device.sql" => {
                approx = vec![3];
                tolerance = 1e-9;
                per_device(recs, |v: &mut Vec<i64>, r| v.push(r.reading))
                    .iter()
                    .map(|(d, v)| {
                        let avg = v.iter().sum::<i64>() as f64 / v.len() as f64;
                        let (max, min) = (v.iter().max().unwrap(), v.iter().min().unwrap());
                        row(&[d, max, min, &avg])
                    })
                    .collect()
            }
            "readings_per_minute.sql" => {
                let mut minutes: BTreeMap<i64, (u64, u64)> = BTreeMap::new();
                for r in recs {
                    let m = minutes
                        .entry(r.ts_ms - r.ts_ms.rem_euclid(60_000))
                        .or_default();
                    m.0 += 1;
                    m.1 += u64::from(is_spike(r));
                }
                minutes
                    .iter()
                    .map(|(m, (n, s))| row(&[&fmt_ts(*m), n, s]))
                    .collect()
            }
            "last_hour_spikes.sql" => {
                let since = started_ms - HOUR_MS;
                let mut spikes: Vec<&Rec> = recs
                    .iter()
                    .filter(|r| is_spike(r) && r.ts_ms > since)
                    .collect();
                spikes.sort_by(|a, b| (b.ts_ms, &a.device).cmp(&(a.ts_ms, &b.device)));
                assert!(
                    !spikes.is_empty(),
                    "the lake must have a spike in the last hour"
                );
                // Pruned: only hour folders from two hours ago on were opened.
                let from = fmt_ms(lake.made_ms - 2 * HOUR_MS, "%Y/%m/%d/%H");
                let recent: u64 = lake
                    .objects
                    .range(from..)
                    .map(|(_, v)| v.len() as u64)
                    .sum();
                assert!(
                    out.files_scanned > 0 && out.files_scanned <= recent,
                    "{name}: opened {} objects, expected at most {recent}",
                    out.files_scanned
                );
                assert!(out.files_scanned < lake.total_files());
                spikes
                    .iter()
                    .map(|r| row(&[&fmt_ts(r.ts_ms), &r.device, &r.reading]))
                    .collect()
            }
            "percentiles_per_device.sql" => {
                // approx_percentile is a t-digest estimate (as on Athena): within one of the
                // exact nearest-rank percentile; exact for a device with one value.
                approx = vec![1, 2];
                tolerance = 1.0;
                per_device(recs, |v: &mut Vec<i64>, r| v.push(r.reading))
                    .iter_mut()
                    .map(|(d, v)| {
                        v.sort_unstable();
                        row(&[d, &percentile(v, 0.5), &percentile(v, 0.99), &v.len()])
                    })
                    .collect()
            }
            "top_out_of_range_devices.sql" => {
                let mut counts: Vec<(String, u64, i64)> =
                    per_device(recs, |v: &mut (u64, i64), r| {
                        if is_spike(r) {
                            v.0 += 1;
                            v.1 = v.1.max(r.reading.abs());
                        }
                    })
                    .into_iter()
                    .filter(|(_, (n, _))| *n > 0)
                    .map(|(d, (n, m))| (d, n, m))
                    .collect();
                counts.sort_by(|a, b| (b.1, &a.0).cmp(&(a.1, &b.0)));
                counts.truncate(10);
                counts.iter().map(|(d, n, m)| row(&[d, n, m])).collect()
            }
            "hourly_last_day.sql" => {
                let mut hours: BTreeMap<String, (u64, i64, i64)> = BTreeMap::new();
                for r in recs {
                    let h = hours
                        .entry(r.datehour.clone())
                        .or_insert((0, i64::MAX, i64::MIN));
                    h.0 += 1;
                    h.1 = h.1.min(r.ts_ms);
                    h.2 = h.2.max(r.ts_ms);
                }
                hours
                    .iter()
                    .map(|(h, (n, lo, hi))| {
                        let f = |ms| fmt_ms(ms, "%Y-%m-%d %H:%M:%S");
                        row(&[h, n, &f(*lo), &f(*hi)])
                    })
                    .collect()
            }
            other => panic!("queries/{other} has no expected answer in this test: add one"),
        };
        assert_rows(name, &got, &want, &approx, tolerance);
        assert!(!out.more_rows, "{name}");
        assert!(out.bytes_scanned > 0, "{name}");
    }
}

#[test]
fn the_ddl_names_the_same_columns_as_the_local_table() {
    let ddl = query_text("devicedata.sql");
    assert!(ddl.lines().next().unwrap().starts_with("-- "));
    let body: String = ddl
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    let upper = body.to_uppercase();
    assert!(upper.contains("CREATE EXTERNAL TABLE IF NOT EXISTS ANALYTICSDEMO.DEVICEDATA ("));
    let columns_start = body.find('(').unwrap() + 1;
    let columns_end = upper.find("PARTITIONED BY").unwrap();
    let columns: Vec<(String, String)> = body[columns_start..columns_end]
        .trim()
        .trim_end_matches(')')
        .split(',')
        .map(|c| {
            let mut words = c.split_whitespace();
            (
                words.next().unwrap().to_string(),
                words.next().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        columns,
        [
            ("deviceid".to_string(), "string".to_string()),
            ("sensorreading".into(), "smallint".into()),
            ("readingtimestamp".into(), "timestamp".into()),
        ]
    );
    assert!(upper.contains("PARTITIONED BY (DATEHOUR STRING)"));
    for needle in [
        "'org.openx.data.jsonserde.JsonSerDe'",
        "'projection.enabled'                = 'true'",
        "'projection.datehour.type'          = 'date'",
        "'projection.datehour.format'        = 'yyyy/MM/dd/HH'",
        "'projection.datehour.interval'      = '1'",
        "'projection.datehour.interval.unit' = 'HOURS'",
        "'storage.location.template'         = 's3://<bucket>/${datehour}/'",
        "LOCATION 's3://<bucket>/'",
    ] {
        assert!(body.contains(needle), "devicedata.sql lacks {needle}");
    }
    assert!(body.contains("'projection.datehour.range'") && body.contains(",NOW'"));
    // The local table: the same columns plus the partition column, Athena's types.
    let lake = generate(1, 4);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let out = rt
        .block_on(engine(&lake, 10).run("SELECT * FROM analyticsdemo.devicedata LIMIT 1"))
        .unwrap();
    let local: Vec<(String, String)> = out
        .columns
        .iter()
        .map(|c| (c.name.clone(), c.data_type.clone()))
        .collect();
    assert_eq!(
        local,
        [
            ("deviceid".to_string(), "varchar".to_string()),
            ("sensorreading".into(), "smallint".into()),
            ("readingtimestamp".into(), "timestamp".into()),
            ("datehour".into(), "varchar".into()),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn athena_dialect_runs_as_written() {
    let lake = generate(22, 60);
    let recs = &lake.records;
    let e = engine(&lake, 1000);
    let total = recs.len();
    let earliest = recs
        .iter()
        .min_by_key(|r| (r.ts_ms, r.device.clone()))
        .unwrap();
    let h2 = lake.hour0_ms + 2 * HOUR_MS;
    let since_h2 = recs.iter().filter(|r| r.ts_ms >= h2).count();
    let ab = recs
        .iter()
        .filter(|r| r.device.starts_with('a') || r.device.starts_with('b'))
        .count();
    let last_hour = recs
        .iter()
        .filter(|r| r.ts_ms > Utc::now().timestamp_millis() - HOUR_MS)
        .count();
    let max_reading = recs.iter().map(|r| r.reading).max().unwrap();
    let first_device = recs.iter().map(|r| r.device.clone()).min().unwrap();
    let first_device_count = recs.iter().filter(|r| r.device == first_device).count();
    let t = "analyticsdemo.devicedata";
    let cases: Vec<(String, String)> = vec![
        (
            format!(
                "SELECT date_trunc('hour', readingtimestamp) FROM {t} ORDER BY readingtimestamp, deviceid LIMIT 1"
            ),
            fmt_ts(earliest.ts_ms - earliest.ts_ms.rem_euclid(HOUR_MS)),
        ),
        (
            format!(
                "SELECT date_format(readingtimestamp, '%Y-%m-%d %H') FROM {t} ORDER BY readingtimestamp, deviceid LIMIT 1"
            ),
            fmt_ms(earliest.ts_ms, "%Y-%m-%d %H"),
        ),
        (
            format!(
                "SELECT date_format(readingtimestamp, '%H:%i:%s.%f') FROM {t} ORDER BY readingtimestamp, deviceid LIMIT 1"
            ),
            format!(
                "{}.{:06}",
                fmt_ms(earliest.ts_ms, "%H:%M:%S"),
                earliest.ts_ms.rem_euclid(1000) * 1000
            ),
        ),
        (
            "SELECT date_format(from_iso8601_timestamp('2026-11-30T04:07:09.123Z'), \
             '%Y|%m|%d|%H|%i|%s|%S|%M|%b|%c|%e|%f|%h|%I|%j|%k|%l|%p|%T|%r|%W|%a|%y|%%')"
                .into(),
            "2026|11|30|04|07|09|09|November|Nov|11|30|123000|04|04|334|4|4|AM|04:07:09|04:07:09 AM|Monday|Mon|26|%"
                .into(),
        ),
        (
            "SELECT from_iso8601_timestamp('2026-11-30T05:40:00+01:00')".into(),
            "2026-11-30 04:40:00.000".into(),
        ),
        (
            format!(
                "SELECT count(*) FROM {t} WHERE readingtimestamp >= from_iso8601_timestamp('{}')",
                fmt_ms(h2, "%Y-%m-%dT%H:%M:%SZ")
            ),
            since_h2.to_string(),
        ),
        (
            format!("SELECT approx_percentile(sensorreading, 0.99) FROM {t} WHERE deviceid = 'pppp'"),
            "3".into(),
        ),
        (
            format!("SELECT count(*) FROM {t} WHERE regexp_like(deviceid, '^[ab]')"),
            ab.to_string(),
        ),
        (
            format!(
                "SELECT count(*) FROM {t} WHERE readingtimestamp > current_timestamp - interval '1' hour"
            ),
            last_hour.to_string(),
        ),
        (
            format!("SELECT CAST(max(sensorreading) AS varchar) || '!' FROM {t}"),
            format!("{max_reading}!"),
        ),
        (
            "SELECT count(*) FROM \"analyticsdemo\".\"devicedata\" WHERE \"deviceid\" = 'pppp'"
                .into(),
            "20".into(),
        ),
        (
            format!("SELECT count(deviceId) FROM {t}"),
            total.to_string(),
        ),
        (
            "SELECT count(*) FROM devicedata".into(),
            total.to_string(),
        ),
        (
            format!("SELECT count(*) FROM awsdatacatalog.{t}"),
            total.to_string(),
        ),
        (
            format!("SELECT deviceid FROM {t} GROUP BY deviceid ORDER BY deviceid LIMIT 1"),
            first_device.clone(),
        ),
        (
            format!(
                "SELECT \"n\" FROM (SELECT deviceid, count(*) AS \"n\" FROM {t} GROUP BY deviceid) \
                 WHERE deviceid = '{first_device}'"
            ),
            first_device_count.to_string(),
        ),
        (
            "SELECT hour(from_iso8601_timestamp('2026-11-30T04:07:09Z')) * 100 \
             + minute(from_iso8601_timestamp('2026-11-30T04:07:09Z'))"
                .into(),
            "407".into(),
        ),
        (
            "SELECT day_of_week(from_iso8601_date('2026-11-30'))".into(),
            "1".into(),
        ),
        (
            "SELECT date_diff('minute', from_iso8601_timestamp('2026-11-30T04:00:00Z'), \
             from_iso8601_timestamp('2026-11-30T05:30:00Z'))"
                .into(),
            "90".into(),
        ),
        (
            "SELECT date_add('month', 1, from_iso8601_timestamp('2026-01-31T04:00:00Z'))".into(),
            "2026-02-28 04:00:00.000".into(),
        ),
        (
            "SELECT to_unixtime(from_iso8601_timestamp('1970-01-01T00:00:01.5Z'))".into(),
            "1.5".into(),
        ),
        (
            "SELECT regexp_extract('device-42-x', '(\\d+)-(\\w)', 2)".into(),
            "x".into(),
        ),
    ];
    for (sql, want) in &cases {
        let out = run(&e, sql).await;
        assert_eq!(&single(&out), want, "{sql}");
    }
    // LIMIT, and the table's columns in order.
    let out = run(&e, &format!("SELECT * FROM {t} LIMIT 7")).await;
    assert_eq!(out.rows.len(), 7);
    let names: Vec<&str> = out.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        ["deviceid", "sensorreading", "readingtimestamp", "datehour"]
    );
    // Unnamed expressions are named as on Athena: `_colN`, N their position.
    let out = run(
        &e,
        &format!("SELECT deviceid, count(*), count(*) + 0, max(sensorreading) AS top FROM {t} GROUP BY deviceid"),
    )
    .await;
    let names: Vec<&str> = out.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["deviceid", "_col1", "_col2", "top"]);
    // DESCRIBE with Athena's type names.
    let out = run(&e, &format!("DESCRIBE {t}")).await;
    assert_eq!(
        cells(&out),
        [
            ["deviceid", "varchar", "NULL"],
            ["sensorreading", "smallint", "NULL"],
            ["readingtimestamp", "timestamp", "NULL"],
            ["datehour", "varchar", "partition key"],
        ]
    );
    // CAST(x AS varchar) is a varchar.
    let out = run(
        &e,
        &format!("SELECT CAST(sensorreading AS varchar) AS s FROM {t} LIMIT 1"),
    )
    .await;
    assert_eq!(out.columns[0].data_type, "varchar");
    // What cannot be supported says which function and that it is not supported.
    for (sql, needle) in [
        (
            format!("SELECT format_datetime(readingtimestamp, 'yyyy') FROM {t}"),
            "format_datetime",
        ),
        (
            format!("SELECT date_format(readingtimestamp, '%U') FROM {t}"),
            "%U",
        ),
    ] {
        let err = e.run(&sql).await.unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(needle) && text.contains("not supported") && !text.contains('\n'),
            "{sql}: {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datehour_filters_open_only_matching_folders() {
    let lake = generate(33, 60);
    let e = engine(&lake, 1000);
    let hours: Vec<&String> = lake.objects.keys().collect();
    let files_in = |hs: &[&String]| -> (u64, u64) {
        hs.iter()
            .flat_map(|h| &lake.objects[*h])
            .fold((0, 0), |(n, b), (_, size)| (n + 1, b + size))
    };
    let count_in = |hs: &[&String]| -> String {
        lake.records
            .iter()
            .filter(|r| hs.contains(&&r.datehour))
            .count()
            .to_string()
    };
    let t = "analyticsdemo.devicedata";
    let cases: Vec<(String, Vec<&String>)> = vec![
        (format!("datehour = '{}'", hours[2]), vec![hours[2]]),
        (format!("'{}' = datehour", hours[1]), vec![hours[1]]),
        (format!("datehour < '{}'", hours[1]), vec![hours[0]]),
        (
            format!("datehour <= '{}'", hours[1]),
            vec![hours[0], hours[1]],
        ),
        (format!("datehour > '{}'", hours[3]), vec![hours[4]]),
        (
            format!("datehour >= '{}'", hours[3]),
            vec![hours[3], hours[4]],
        ),
        (
            format!("datehour BETWEEN '{}' AND '{}'", hours[1], hours[2]),
            vec![hours[1], hours[2]],
        ),
        (
            format!("datehour IN ('{}', '{}')", hours[0], hours[4]),
            vec![hours[0], hours[4]],
        ),
        (
            format!("datehour = '{}' AND sensorreading > -100", hours[2]),
            vec![hours[2]],
        ),
        (
            format!("substr(datehour, 1, 13) = '{}'", hours[3]),
            vec![hours[3]],
        ),
        ("datehour = '1999/01/01/00'".to_string(), vec![]),
        // Not prunable: another column in the same condition.
        (
            format!("(datehour = '{}' OR deviceid <> 'nobody')", hours[2]),
            hours.clone(),
        ),
    ];
    for (condition, expected_hours) in &cases {
        let sql = format!("SELECT count(*) FROM {t} WHERE {condition}");
        let out = run(&e, &sql).await;
        let (files, bytes) = files_in(expected_hours);
        assert_eq!(out.files_scanned, files, "{sql}: objects opened");
        assert_eq!(out.bytes_scanned, bytes, "{sql}: bytes scanned");
        let want = if condition.contains("OR") {
            lake.records.len().to_string()
        } else {
            count_in(expected_hours)
        };
        assert_eq!(single(&out), want, "{sql}");
    }
    // No filter: every object, every byte (gzip objects count their compressed size).
    let out = run(&e, &format!("SELECT count(*) FROM {t}")).await;
    let (files, bytes) = files_in(&hours);
    assert_eq!((out.files_scanned, out.bytes_scanned), (files, bytes));
    assert!(out.cost_usd() > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_lines_are_skipped_and_counted() {
    let lake = generate(44, 120);
    assert!(lake.malformed >= 8, "{}", lake.malformed);
    let e = engine(&lake, 10);
    for sql in [
        "SELECT count(*) FROM analyticsdemo.devicedata",
        "SELECT count(deviceid) FROM analyticsdemo.devicedata",
        "SELECT count(DISTINCT datehour) FROM analyticsdemo.devicedata",
        "SELECT count(*) FROM analyticsdemo.devicedata WHERE sensorreading BETWEEN -32768 AND 32767",
    ] {
        let out = run(&e, sql).await;
        assert_eq!(out.malformed_lines, lake.malformed, "{sql}");
        let want = if sql.contains("DISTINCT") {
            // Hours that hold records: the current hour is empty in its first minutes.
            let hours: std::collections::BTreeSet<&str> =
                lake.records.iter().map(|r| r.datehour.as_str()).collect();
            hours.len().to_string()
        } else {
            lake.records.len().to_string()
        };
        assert_eq!(single(&out), want, "{sql}");
    }
    // The huge reading (99999) and the others never show up as values.
    let out = run(
        &e,
        "SELECT count(*) FROM analyticsdemo.devicedata WHERE sensorreading > 500 OR deviceid NOT IN ('aaaa','bbbb','cccc','dddd','eeee','pppp')",
    )
    .await;
    assert_eq!(single(&out), "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_is_read_only_and_confined() {
    let lake = generate(55, 20);
    let e = engine(&lake, 10);
    let outside = lake.dir.path().join("written-by-sql.csv");
    let statements = [
        "CREATE TABLE t (a INT)".to_string(),
        "CREATE TABLE t AS SELECT * FROM analyticsdemo.devicedata".into(),
        "INSERT INTO analyticsdemo.devicedata VALUES ('x', 1, now(), 'y')".into(),
        format!("COPY (SELECT 1) TO '{}'", outside.display()),
        format!(
            "CREATE EXTERNAL TABLE x STORED AS CSV LOCATION '{}'",
            lake.root().display()
        ),
        "DROP TABLE analyticsdemo.devicedata".into(),
        "DELETE FROM analyticsdemo.devicedata".into(),
        "CREATE VIEW v AS SELECT 1".into(),
        "SELECT * INTO copied FROM analyticsdemo.devicedata".into(),
        "SET datafusion.execution.batch_size = 1".into(),
        "EXPLAIN CREATE TABLE t (a INT)".into(),
    ];
    for sql in &statements {
        let err = e.run(sql).await.unwrap_err().to_string();
        let keyword = sql.split_whitespace().next().unwrap();
        let keyword = if sql.contains(" INTO copied") {
            "SELECT INTO"
        } else {
            keyword
        };
        assert!(err.contains(keyword), "{sql}: {err}");
        assert!(
            err.starts_with("iotaa is read-only: ") && err.contains("not allowed"),
            "{sql}: {err}"
        );
        assert!(!err.contains('\n'), "{err}");
    }
    assert!(!outside.exists());
    // No way to reach a path through SQL, and one statement at a time.
    for sql in [
        "SELECT * FROM '/etc/passwd'".to_string(),
        format!("SELECT * FROM '{}'", lake.root().display()),
        "SELECT * FROM information_schema.tables".into(),
        "SELECT 1; SELECT 2".into(),
        "".into(),
    ] {
        let err = e.run(&sql).await.unwrap_err().to_string();
        assert!(!err.contains('\n'), "{sql}: {err}");
    }
    // The table is untouched and EXPLAIN and DESCRIBE still work.
    let out = run(&e, "SELECT count(*) FROM analyticsdemo.devicedata").await;
    assert_eq!(single(&out), lake.records.len().to_string());
    let out = run(
        &e,
        "EXPLAIN SELECT count(*) FROM analyticsdemo.devicedata WHERE datehour = '2026/11/30/00'",
    )
    .await;
    assert!(
        cells(&out)
            .iter()
            .flatten()
            .any(|c| c.contains("LakeScanExec")),
        "{:?}",
        out.rows
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syntax_errors_give_a_position() {
    let lake = generate(66, 4);
    let e = engine(&lake, 10);
    let err = e
        .run("SELECT deviceid\nFROM analyticsdemo.devicedata\nWHERE sensorreading >")
        .await
        .unwrap_err();
    assert_eq!(err.position.map(|p| p.0), Some(3), "{err}");
    assert!(err.to_string().starts_with("3:"), "{err}");
    assert!(!err.to_string().contains('\n'));
    let err = e.run("SELEC 1").await.unwrap_err();
    assert!(err.message.contains("syntax error"), "{err}");
    let err = e
        .run("SELECT nosuchcolumn FROM analyticsdemo.devicedata")
        .await
        .unwrap_err();
    assert!(err.message.contains("nosuchcolumn"), "{err}");
    let err = e
        .run("SELECT * FROM analyticsdemo.nosuchtable")
        .await
        .unwrap_err();
    assert!(err.message.contains("nosuchtable"), "{err}");
    // A deep expression runs on the engine's big stacks, even when awaited on a small one
    // (this overflowed a 2 MiB tokio worker at 200 terms before).
    let deep = format!(
        "SELECT 0{} AS x FROM analyticsdemo.devicedata LIMIT 1",
        " + sensorreading".repeat(300)
    );
    let out = tokio::spawn({
        let e = e.clone();
        async move { e.run(&deep).await }
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(out.rows.len(), 1);
    // Absurdly long SQL is refused before it is planned.
    let long = format!("SELECT 0{} AS x", " + 1".repeat(6000));
    let err = e.run(&long).await.unwrap_err();
    assert!(err.message.contains("too long"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_are_capped_at_max_rows() {
    let lake = generate(77, 240);
    assert!(lake.records.len() > 1000);
    let e = engine(&lake, 10);
    let out = run(
        &e,
        "SELECT deviceid, readingtimestamp FROM analyticsdemo.devicedata ORDER BY readingtimestamp, deviceid LIMIT 1000",
    )
    .await;
    let mut sorted = lake.records.clone();
    sorted.sort_by(|a, b| (a.ts_ms, &a.device).cmp(&(b.ts_ms, &b.device)));
    let want: Vec<Vec<String>> = sorted[..10]
        .iter()
        .map(|r| row(&[&r.device, &fmt_ts(r.ts_ms)]))
        .collect();
    assert_eq!(cells(&out), want);
    assert!(out.more_rows);
    // A sorted result is already computed: what was dropped is counted exactly.
    assert_eq!(out.dropped_rows, Some(990));
    // A plain scan stops early: more rows, counted only if they were already there.
    let out = run(&e, "SELECT * FROM analyticsdemo.devicedata").await;
    assert_eq!(out.rows.len(), 10);
    assert!(out.more_rows);
    if let Some(n) = out.dropped_rows {
        assert_eq!(n as usize, lake.records.len() - 10);
    }
    // Under the cap: nothing dropped.
    let out = e
        .run_with_max_rows("SELECT * FROM analyticsdemo.devicedata", 100_000)
        .await
        .unwrap();
    assert_eq!(out.rows.len(), lake.records.len());
    assert!(!out.more_rows);
    assert_eq!(out.dropped_rows, None);
}

/// A lake big enough that a full scan takes seconds in a debug build.
fn big_lake(lines_per_object: usize, objects: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("lake/2026/11/30/05");
    std::fs::create_dir_all(&folder).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let base = DateTime::parse_from_rfc3339("2026-11-30T05:00:00Z")
        .unwrap()
        .timestamp_millis();
    for o in 0..objects {
        let mut text = String::with_capacity(lines_per_object * 90);
        for i in 0..lines_per_object {
            let device = DEVICES[i % DEVICES.len()];
            let reading = rng.random_range(-5..=5i64);
            text.push_str(&reading_line(device, reading, base + (i as i64) * 10, 0));
            text.push('\n');
        }
        std::fs::write(
            folder.join(format!("devicedata-1-2026-11-30-05-00-{o:02}-x")),
            text,
        )
        .unwrap();
    }
    dir
}

async fn wait_for_scans_to_stop(e: &QueryEngine, within: Duration) -> Duration {
    let started = Instant::now();
    while e.active_scans() > 0 {
        assert!(
            started.elapsed() < within,
            "scan threads still running {:?} after the query was dropped",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborting_a_query_stops_its_scan() {
    let dir = big_lake(25_000, 24);
    let lake_dir = dir.path().join("lake");
    let e = QueryEngine::new(&lake_dir, options(100)).unwrap();
    let sql = "SELECT deviceid, avg(sensorreading), count(*) FROM analyticsdemo.devicedata GROUP BY deviceid";

    // Aborting the task.
    let task = tokio::spawn({
        let e = e.clone();
        async move { e.run(sql).await }
    });
    let started = Instant::now();
    while e.active_scans() == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the scan never started"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !task.is_finished(),
        "the query finished too fast to test cancellation"
    );
    task.abort();
    let joined = tokio::time::timeout(Duration::from_secs(2), task).await;
    assert!(
        matches!(joined, Ok(Err(ref e)) if e.is_cancelled()),
        "{joined:?}"
    );
    wait_for_scans_to_stop(&e, Duration::from_secs(3)).await;

    // Dropping the future (a timeout).
    let timed = tokio::time::timeout(Duration::from_millis(300), e.run(sql)).await;
    assert!(
        timed.is_err(),
        "the query finished too fast to test cancellation"
    );
    wait_for_scans_to_stop(&e, Duration::from_secs(3)).await;

    // The engine still answers afterwards.
    let out = e
        .run("SELECT count(*) FROM analyticsdemo.devicedata WHERE datehour = '1999/01/01/00'")
        .await
        .unwrap();
    assert_eq!(single(&out), "0");
}

// ---------------------------------------------------------------------------------------------
// The real binary.

fn iotaa(dir: &Path, args: &[&str]) -> Output {
    let config = dir.join("config.toml");
    Command::new(env!("CARGO_BIN_EXE_iotaa"))
        .arg("--config")
        .arg(&config)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn iotaa_query_prints_tables_csv_and_json() {
    let lake = generate(88, 30);
    let dir = lake.dir.path();
    std::fs::write(
        dir.join("config.toml"),
        format!("data_dir = {:?}\n", dir.display().to_string()),
    )
    .unwrap();
    let counts = per_device(&lake.records, |n: &mut u64, _| *n += 1);
    let sql = "SELECT deviceid, count(*) AS n FROM analyticsdemo.devicedata GROUP BY deviceid ORDER BY deviceid";

    let out = iotaa(dir, &["query", sql]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["deviceid", "n"]
    );
    assert!(lines[1].starts_with("--------"), "{stdout}");
    let body: Vec<Vec<String>> = lines[2..]
        .iter()
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect();
    let want: Vec<Vec<String>> = counts.iter().map(|(d, n)| row(&[d, n])).collect();
    assert_eq!(body, want);
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!("{} rows · ", want.len()))
            && stderr.contains(&format!("in {} objects", lake.total_files()))
            && stderr.contains(&format!("{} malformed lines skipped", lake.malformed))
            && stderr.contains("Athena cost ≈ $"),
        "{stderr}"
    );

    let out = iotaa(dir, &["--format", "csv", "query", sql]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut csv = String::from("deviceid,n\n");
    for (d, n) in &counts {
        csv.push_str(&format!("{d},{n}\n"));
    }
    assert_eq!(text(&out.stdout), csv);

    let out = iotaa(dir, &["query", "--format", "json", "--max-rows", "2", sql]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (d, n) = counts.iter().next().unwrap();
    assert_eq!(json.len(), 2);
    assert_eq!(json[0], serde_json::json!({"deviceid": d, "n": n}));
    assert!(
        text(&out.stderr).contains("max rows"),
        "{}",
        text(&out.stderr)
    );

    // A shipped query by file.
    let file = Path::new(QUERIES).join("count_per_device.sql");
    let out = iotaa(
        dir,
        &["--format", "csv", "query", "-f", file.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        csv.replace("deviceid,n", "deviceid,readings")
    );

    // A syntax error: non-zero, one line on stderr, nothing on stdout.
    let out = iotaa(
        dir,
        &[
            "query",
            "SELECT deviceid FROM analyticsdemo.devicedata WHERE",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("iotaa: query: 1:"), "{stderr}");
    assert!(stderr.contains("syntax error"), "{stderr}");
    assert!(out.stdout.is_empty());

    // A refused statement.
    let out = iotaa(dir, &["query", "DROP TABLE analyticsdemo.devicedata"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr)
            .starts_with("iotaa: query: iotaa is read-only: DROP TABLE is not allowed"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_prefixes_and_engine_sharing() {
    fn shareable<T: Clone + Send + Sync + 'static>(_: &T) {}
    let dir = tempfile::tempdir().unwrap();
    let lines = vec![
        reading_line("aaaa", 1, 1_796_014_800_000, 0),
        reading_line("bbbb", 2, 1_796_014_801_000, 0),
    ];
    // `readings/` → a folder; `raw-` → the start of each year folder's name.
    write_object(
        &dir.path().join("lake/readings/2026/11/30/05"),
        "devicedata-1-a",
        &lines,
        true,
    );
    write_object(
        &dir.path().join("lake/raw-2026/11/30/06"),
        "devicedata-1-b",
        &lines[..1],
        false,
    );
    let lake = dir.path().join("lake");
    for (prefix, want) in [
        ("readings/", "2026/11/30/05 2"),
        ("raw-", "2026/11/30/06 1"),
        ("", ""),
    ] {
        let e = QueryEngine::with_key_prefix(&lake, prefix, options(10)).unwrap();
        shareable(&e);
        let out = run(
            &e,
            "SELECT datehour, count(*) FROM analyticsdemo.devicedata GROUP BY datehour",
        )
        .await;
        let got: Vec<String> = cells(&out).iter().map(|r| r.join(" ")).collect();
        assert_eq!(got.join(","), want, "prefix {prefix:?}");
    }
    // Queries from several tasks at once on one engine.
    let e = QueryEngine::with_key_prefix(&lake, "readings/", options(10)).unwrap();
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let e = e.clone();
            tokio::spawn(async move {
                e.run("SELECT sum(sensorreading) FROM devicedata")
                    .await
                    .unwrap()
            })
        })
        .collect();
    for t in tasks {
        let out = t.await.unwrap();
        assert_eq!(single(&out), "3");
        assert_eq!(out.files_scanned, 1);
    }
}

// ------------------------------------------------------------------ Parquet objects

fn compact_lake(lake: &Lake) -> iot_anomaly_analytics::query::lake::compact::CompactReport {
    use iot_anomaly_analytics::query::lake::compact::{CompactOptions, compact};
    compact(
        &CompactOptions {
            root: lake.root(),
            year_prefix: String::new(),
            stream_name: "devicedata".into(),
            now: Utc::now(),
            min_age: Duration::ZERO,
            abort_after_steps: None,
        },
        |_| {},
    )
    .unwrap()
}

/// Every shipped query gives the same answer on the JSON form of a lake and on its compacted
/// form (every hour but the current one Parquet; the current one still JSON: a mixed lake).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shipped_query_gives_the_same_answer_on_json_and_parquet() {
    let lake = generate(12, 240);
    let e = engine(&lake, 100_000);
    let files = shipped_queries();
    let mut json = Vec::new();
    for name in &files {
        json.push(run(&e, &query_text(name)).await);
    }
    let whole = "SELECT deviceid, sensorreading, readingtimestamp, datehour FROM devicedata ORDER BY 1, 2, 3";
    let json_rows = run(&e, whole).await;
    assert_eq!(json_rows.rows.len(), lake.records.len());

    let report = compact_lake(&lake);
    assert_eq!(report.hours, 4, "{report:?}");
    assert_eq!(report.open_hours, 1, "{report:?}");
    assert_eq!(report.objects, 12, "{report:?}");
    assert!(report.unreadable.is_empty(), "{report:?}");
    let in_current_hour = lake
        .records
        .iter()
        .filter(|r| Some(&r.datehour) == lake.objects.keys().last())
        .count() as u64;
    assert_eq!(report.readings + in_current_hour, lake.records.len() as u64);
    for folder in lake.objects.keys().take(4) {
        let names: Vec<String> = std::fs::read_dir(lake.root().join(folder))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| !n.starts_with(['.', '_']))
            .collect();
        assert_eq!(names.len(), 1, "{folder}: {names:?}");
        assert!(names[0].ends_with(".parquet"), "{names:?}");
    }

    for (name, before) in files.iter().zip(&json) {
        let after = run(&e, &query_text(name)).await;
        assert_eq!(
            cells(&after),
            cells(before),
            "{name}: the Parquet form answers differently"
        );
        assert_eq!(after.columns, before.columns, "{name}");
        assert!(
            after.bytes_scanned < before.bytes_scanned,
            "{name}: {} bytes on Parquet, {} on JSON",
            after.bytes_scanned,
            before.bytes_scanned
        );
    }
    let parquet_rows = run(&e, whole).await;
    assert_eq!(cells(&parquet_rows), cells(&json_rows));
    // The malformed lines of the compacted hours were kept, not lost.
    let errors = lake.root().join("delivery-errors/compaction-malformed");
    let mut kept = 0u64;
    for hour in lake.objects.keys().take(4) {
        let Ok(dir) = std::fs::read_dir(errors.join(hour)) else {
            continue;
        };
        for f in dir {
            kept += std::fs::read_to_string(f.unwrap().path())
                .unwrap()
                .lines()
                .count() as u64;
        }
    }
    assert_eq!(kept, report.malformed);
    assert_eq!(parquet_rows.malformed_lines + kept, lake.malformed);
}

/// One hour folder holding a plain JSON object, a gzipped one and a Parquet object (written
/// with small row groups): one table over all three, `datehour` pruning as before, and row
/// groups skipped by their statistics for filters on `readingtimestamp` and `sensorreading`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_gzip_and_parquet_in_one_hour_are_one_table() {
    use iot_anomaly_analytics::query::lake::write::ParquetObject;
    let lake = generate(13, 60);
    let hours: Vec<String> = lake.objects.keys().cloned().collect();
    let hour = &hours[2];
    let start = lake.hour0_ms + 2 * HOUR_MS;
    // 10 row groups of 100 readings, each group 10 s of one device's readings 0..=99.
    let mut object = ParquetObject::with_row_groups_of(100).unwrap();
    let mut extra = Vec::new();
    for i in 0..1000i64 {
        let ts = start + i * 100;
        let device = DEVICES[(i / 100) as usize % 5];
        let reading = (i % 100) + if i / 100 == 7 { 1000 } else { 0 };
        let line = reading_line(device, reading, ts, 0);
        assert!(object.push_record(line.as_bytes()).unwrap());
        extra.push(Rec {
            device: device.into(),
            reading,
            ts_ms: ts,
            datehour: hour.clone(),
        });
    }
    let bytes = object.finish().unwrap();
    let path = lake.root().join(hour).join("devicedata-1-extra.parquet");
    std::fs::write(&path, &bytes).unwrap();
    let mut all = lake.records.clone();
    all.extend(extra.iter().cloned());
    let e = engine(&lake, 1000);

    let t = "analyticsdemo.devicedata";
    let out = run(&e, &format!("SELECT count(*), sum(sensorreading) FROM {t}")).await;
    let sum: i64 = all.iter().map(|r| r.reading).sum();
    assert_eq!(cells(&out), vec![row(&[&all.len(), &sum])]);
    assert_eq!(out.files_scanned, lake.total_files() + 1);
    assert_eq!(out.malformed_lines, lake.malformed);

    let hour_only = run(
        &e,
        &format!("SELECT count(*), max(sensorreading) FROM {t} WHERE datehour = '{hour}'"),
    )
    .await;
    let in_hour: Vec<&Rec> = all.iter().filter(|r| &r.datehour == hour).collect();
    let max = in_hour.iter().map(|r| r.reading).max().unwrap();
    assert_eq!(cells(&hour_only), vec![row(&[&in_hour.len(), &max])]);
    assert_eq!(hour_only.files_scanned, 4);

    // Row groups: readings above 1000 are all in group 7 of the Parquet object; the JSON
    // objects are read whole whatever the filter.
    let full = run(
        &e,
        &format!("SELECT sum(sensorreading) FROM {t} WHERE datehour = '{hour}'"),
    )
    .await;
    let spikes = run(
        &e,
        &format!("SELECT count(*), min(sensorreading) FROM {t} WHERE datehour = '{hour}' AND sensorreading > 1000"),
    )
    .await;
    assert_eq!(cells(&spikes), vec![row(&[&99, &1001])]);
    let json_bytes: u64 = lake.objects[hour].iter().map(|(_, s)| s).sum();
    // The footer (metadata length + 8) is read whatever the filter.
    let tail = &bytes[bytes.len() - 8..];
    let footer = u32::from_le_bytes(tail[..4].try_into().unwrap()) as u64 + 8;
    let parquet_full = full.bytes_scanned - json_bytes - footer;
    let parquet_spikes = spikes.bytes_scanned - json_bytes - footer;
    assert!(
        parquet_spikes * 4 < parquet_full,
        "one row group of ten: {parquet_spikes} of {parquet_full} bytes"
    );
    // A time window of 25 s: three row groups at most.
    let (from, to) = (start + 12_000, start + 37_000);
    let window = run(
        &e,
        &format!(
            "SELECT count(*) FROM {t} WHERE readingtimestamp >= TIMESTAMP '{}' AND readingtimestamp < TIMESTAMP '{}'",
            fmt_ts(from),
            fmt_ts(to)
        ),
    )
    .await;
    let want = all
        .iter()
        .filter(|r| r.ts_ms >= from && r.ts_ms < to)
        .count();
    assert_eq!(single(&window), want.to_string());
    let ts_only = run(
        &e,
        &format!("SELECT count(readingtimestamp) FROM {t} WHERE datehour = '{hour}'"),
    )
    .await;
    let window_in_hour = run(
        &e,
        &format!(
            "SELECT count(*) FROM {t} WHERE datehour = '{hour}' AND readingtimestamp >= TIMESTAMP '{}' AND readingtimestamp < TIMESTAMP '{}'",
            fmt_ts(from),
            fmt_ts(to)
        ),
    )
    .await;
    assert!(
        (window_in_hour.bytes_scanned - json_bytes - footer) * 2
            < ts_only.bytes_scanned - json_bytes - footer,
        "{} vs {}",
        window_in_hour.bytes_scanned,
        ts_only.bytes_scanned
    );
    // LIMIT stops in the Parquet object too.
    let limited = run(
        &e,
        &format!("SELECT * FROM {t} WHERE datehour = '{hour}' LIMIT 3"),
    )
    .await;
    assert_eq!(limited.rows.len(), 3);
}
