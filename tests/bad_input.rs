//! The bad-input matrix: table-driven cases for config, SQL, data and the terminal. Every case
//! asserts a clear single-line message (or a visible pane error) and, where something keeps
//! running, that it does.
//!
//! Other rows of the matrix live next to the code they drive: config files through the real
//! binary (`tests/cli.rs`, 25 fixtures and the unreadable/non-UTF-8 cases), a 1 MB paste into
//! the SQL editor (`tests/app.rs`), rapid resizes and a paste through a real terminal
//! (`tests/e2e_tmux.rs`), disk full (`tests/disk_full.rs`). The AWS row (missing credentials,
//! unknown region, unreachable endpoint, throttling, expired iterators, ROLLBACK_COMPLETE)
//! waits for the AWS backend (issue 5).
//!
//! `cargo test --test bad_input -- --nocapture` prints how many cases each table ran.

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use iot_anomaly_analytics::config::{self, ConfigError};

/// The contract for every message: not empty, one line.
fn assert_one_line(case: &str, message: &str) {
    assert!(!message.trim().is_empty(), "{case}: empty message");
    assert!(
        !message.trim_end().contains('\n'),
        "{case}: more than one line:\n{message}"
    );
}

fn parse(text: &str) -> Result<config::Loaded, ConfigError> {
    config::parse(text, Path::new("/cfg/config.toml"))
}

/// Parses `text`, expects an error naming `key` and the file, on one line; returns it.
fn config_error(case: &str, text: &str, key: &str) -> String {
    let e = match parse(text) {
        Ok(_) => panic!("{case}: accepted:\n{text}"),
        Err(e) => e.to_string(),
    };
    assert_one_line(case, &e);
    assert!(e.starts_with("/cfg/config.toml"), "{case}: no file: {e}");
    assert!(e.contains(key), "{case}: does not name {key}: {e}");
    e
}

mod config_matrix {
    use super::*;

    /// Every key of the shipped config.toml (which documents every key), as (section, key,
    /// example value): the keys set there, and the optional ones and the keymap, which it
    /// shows commented out (`# key = value`).
    fn shipped_keys() -> Vec<(Option<String>, String, toml::Value)> {
        let table: toml::Table = config::SHIPPED.parse().unwrap();
        let mut keys = Vec::new();
        for (k, v) in table {
            match v {
                toml::Value::Table(t) => {
                    for (kk, vv) in t {
                        keys.push((Some(k.clone()), kk, vv));
                    }
                }
                v => keys.push((None, k, v)),
            }
        }
        let mut section = None;
        for line in config::SHIPPED.lines() {
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = Some(name.to_string());
            } else if let Some(commented) = line.strip_prefix("# ")
                && let Ok(t) = commented.parse::<toml::Table>()
                && let Some((k, v)) = t.into_iter().next()
                && !keys.iter().any(|(s, kk, _)| *s == section && *kk == k)
            {
                keys.push((section.clone(), k, v));
            }
        }
        keys
    }

    fn wrong_type(v: &toml::Value) -> &'static str {
        match v {
            toml::Value::String(_) => "42",
            toml::Value::Integer(_) | toml::Value::Float(_) => "\"seven\"",
            toml::Value::Boolean(_) => "\"yes\"",
            toml::Value::Array(_) => "7",
            toml::Value::Table(_) => "7",
            toml::Value::Datetime(_) => "7",
        }
    }

    fn doc(section: &Option<String>, line: &str) -> String {
        match section {
            Some(s) => format!("[{s}]\n{line}\n"),
            None => format!("{line}\n"),
        }
    }

    #[test]
    fn every_key_with_a_wrong_type() {
        let keys = shipped_keys();
        assert!(keys.len() >= 60, "only {} keys found", keys.len());
        for (section, key, default) in &keys {
            let text = doc(section, &format!("{key} = {}", wrong_type(default)));
            let case = format!("{section:?}.{key} wrong type");
            let e = config_error(&case, &text, key);
            assert!(
                e.contains("expected") || e.contains("invalid"),
                "{case}: {e}"
            );
            // The position points at the value's line.
            let line = if section.is_some() { ":2:" } else { ":1:" };
            assert!(e.contains(line), "{case}: no line {line}: {e}");
        }
        eprintln!("config: {} keys with a wrong type", keys.len());
    }

    #[test]
    fn an_unknown_key_in_every_section() {
        let mut sections: Vec<Option<String>> = shipped_keys().into_iter().map(|k| k.0).collect();
        sections.sort();
        sections.dedup();
        sections.push(Some("keys".into()));
        for section in &sections {
            let e = config_error(
                &format!("unknown key in {section:?}"),
                &doc(section, "frobnicate = 1"),
                "frobnicate",
            );
            assert!(
                e.contains("unknown") || e.contains("expected one of"),
                "{e}"
            );
        }
        config_error("unknown section", "[frobnicate]\nx = 1\n", "frobnicate");
        eprintln!("config: an unknown key in {} sections", sections.len());
    }

    #[test]
    fn out_of_range_and_inconsistent_values() {
        let cases: &[(&str, &str)] = &[
            ("producer.rate", "[producer]\nrate = 0"),
            ("producer.rate", "[producer]\nrate = -1.5"),
            ("producer.rate", "[producer]\nrate = nan"),
            ("producer.rate", "[producer]\nrate = inf"),
            ("producer.batch_size", "[producer]\nbatch_size = 0"),
            ("producer.batch_size", "[producer]\nbatch_size = 501"),
            ("producer.batch_size", "[producer]\nbatch_size = -3"),
            ("min_value", "[producer]\nmin_value = 40000"),
            ("max_value", "[producer]\nmin_value = 5\nmax_value = -5"),
            ("producer.devices", "[producer]\ndevices = []"),
            (
                "producer.devices",
                "[producer]\ndevices = [\"a\", \"b\", \"a\"]",
            ),
            ("producer.devices", "[producer]\ndevices = [\"\"]"),
            ("producer.devices", "[producer]\ndevices = [\"a\\tb\"]"),
            ("min_magnitude", "[spike]\nmin_magnitude = 0"),
            (
                "max_magnitude",
                "[spike]\nmin_magnitude = 50\nmax_magnitude = 10",
            ),
            ("spike.direction", "[spike]\ndirection = \"sideways\""),
            ("spike.device", "[spike]\ndevice = \"zzzz\""),
            ("detector.trees", "[detector]\ntrees = 0"),
            ("detector.trees", "[detector]\ntrees = 5000"),
            ("detector.sample_size", "[detector]\nsample_size = 2"),
            ("detector.shingle_size", "[detector]\nshingle_size = 0"),
            ("detector.time_decay", "[detector]\ntime_decay = -1"),
            (
                "delivery.buffer_interval_secs",
                "[delivery]\nbuffer_interval_secs = 901",
            ),
            (
                "delivery.buffer_size_mib",
                "[delivery]\nbuffer_size_mib = 129",
            ),
            (
                "delivery.buffer_size_mib",
                "[delivery]\nbuffer_size_mib = 0",
            ),
            ("delivery.compression", "[delivery]\ncompression = \"zip\""),
            ("delivery.prefix", "[delivery]\nprefix = \"/abs/\""),
            ("delivery.prefix", "[delivery]\nprefix = \"a/../b/\""),
            ("alerts.threshold", "[alerts]\nthreshold = -1.0"),
            ("alerts.webhook_url", "[alerts]\nwebhook_url = \"ftp://x\""),
            ("query.max_rows", "[query]\nmax_rows = 0"),
            (
                "local.readings_stream",
                "[local]\nreadings_stream = \"a b\"",
            ),
            (
                "local.anomaly_stream",
                "[local]\nreadings_stream = \"x\"\nanomaly_stream = \"x\"",
            ),
            ("local.segment_size_mib", "[local]\nsegment_size_mib = 0"),
            ("aws.ingest", "[aws]\ningest = \"carrier-pigeon\""),
            (
                "aws.endpoint_url",
                "[aws]\nendpoint_url = \"localhost:5000\"",
            ),
            ("log.level", "[log]\nlevel = \"loud\""),
            ("backend", "backend = \"azure\""),
        ];
        for (key, text) in cases {
            config_error(&format!("{key}: {text:?}"), &format!("{text}\n"), key);
        }
        eprintln!(
            "config: {} out-of-range or inconsistent values",
            cases.len()
        );
    }

    #[test]
    fn invalid_keymap_entries() {
        let cases: &[(&str, &str)] = &[
            ("keys", "[keys]\nnot_an_action = \"x\""),
            ("keys.quit", "[keys]\nquit = \"Ctrl+Banana\""),
            ("keys.quit", "[keys]\nquit = \"\""),
            ("keys.quit", "[keys]\nquit = 5"),
            ("keys.quit", "[keys]\nquit = [\"x\", 3]"),
            ("keys", "[keys]\nquit = \"x\"\nhelp = \"x\""),
        ];
        for (key, text) in cases {
            config_error(&format!("{key}: {text:?}"), &format!("{text}\n"), key);
        }
        eprintln!("config: {} invalid keymap entries", cases.len());
    }

    #[test]
    fn syntax_encoding_and_unreadable_files() {
        // TOML syntax errors, each at its position.
        for text in [
            "backend = ",
            "[producer\nrate = 1",
            "rate = 1\nrate = 2",
            "[producer]\nrate = 1\n[producer]\nrate = 2",
            "x = \"unterminated",
        ] {
            let e = match parse(text) {
                Ok(_) => panic!("accepted {text:?}"),
                Err(e) => e.to_string(),
            };
            assert_one_line(text, &e);
            assert!(e.starts_with("/cfg/config.toml:"), "{e}");
        }
        // Not UTF-8.
        let e = config::load_bytes(
            b"backend = \"local\"\n\xff\xfe = 1\n".to_vec(),
            Path::new("/cfg/c.toml"),
        )
        .unwrap_err()
        .to_string();
        assert_one_line("non-UTF-8", &e);
        assert!(e.contains("UTF-8"), "{e}");
        // A folder, and a missing file, where the config should be.
        let dir = tempfile::tempdir().unwrap();
        for path in [dir.path().to_path_buf(), dir.path().join("missing.toml")] {
            let e = config::load_file(&path).unwrap_err().to_string();
            assert_one_line("unreadable", &e);
            assert!(e.contains(&path.display().to_string()), "{e}");
        }
        eprintln!("config: 5 syntax errors, 1 non-UTF-8 file, 2 unreadable paths");
    }
}

mod sql_matrix {
    use super::*;
    use iot_anomaly_analytics::query::{EngineOptions, QueryEngine, QueryOutput};
    use std::io::Write;

    const ROWS: usize = 160;

    fn write_gz(path: &Path, body: &[u8]) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(body).unwrap();
        std::fs::write(path, enc.finish().unwrap()).unwrap();
    }

    fn hour_dir(lake: &Path) -> PathBuf {
        lake.join(chrono::Utc::now().format("%Y/%m/%d/%H").to_string())
    }

    fn line(device: &str, value: i64) -> String {
        let ts = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S%.3f");
        format!(
            "{{\"deviceId\":\"{device}\",\"sensorReading\":{value},\"readingTimestamp\":\"{ts}\"}}\n"
        )
    }

    fn engine(lake: &Path) -> QueryEngine {
        QueryEngine::new(
            lake,
            EngineOptions {
                database: "analyticsdemo".into(),
                table: "devicedata".into(),
                max_rows: 10_000,
                memory_limit_bytes: 256 << 20,
            },
        )
        .unwrap()
    }

    fn run(
        rt: &tokio::runtime::Runtime,
        e: &QueryEngine,
        sql: &str,
    ) -> Result<QueryOutput, String> {
        rt.block_on(e.run(sql)).map_err(|e| e.to_string())
    }

    #[test]
    fn bad_sql_gets_one_line_and_the_engine_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let lake = dir.path().join("lake");
        let body: String = (0..ROWS)
            .map(|i| line("aaaa", (i % 11) as i64 - 5))
            .collect();
        write_gz(&hour_dir(&lake).join("devicedata-1-a.gz"), body.as_bytes());
        let rt = tokio::runtime::Runtime::new().unwrap();
        let e = engine(&lake);
        let deep = format!("SELECT {}1{}", "(".repeat(5_000), ")".repeat(5_000));
        let cases: &[(&str, &str)] = &[
            ("SELEC * FROM analyticsdemo.devicedata", "SELEC"),
            ("SELECT * FROM", "1:"),
            (
                "SELECT nosuchcol FROM analyticsdemo.devicedata",
                "nosuchcol",
            ),
            ("SELECT * FROM analyticsdemo.nosuchtable", "nosuchtable"),
            (
                "SELECT nosuchfn(sensorreading) FROM analyticsdemo.devicedata",
                "nosuchfn",
            ),
            (
                "SELECT sensorreading + 'abc' FROM analyticsdemo.devicedata",
                "coerce",
            ),
            ("SELECT 1/0", "zero"),
            ("CREATE TABLE t (a int)", "read-only"),
            ("CREATE VIEW v AS SELECT 1", "read-only"),
            ("DROP TABLE analyticsdemo.devicedata", "read-only"),
            (
                "INSERT INTO analyticsdemo.devicedata VALUES ('x', 1, now(), 'h')",
                "read-only",
            ),
            ("DELETE FROM analyticsdemo.devicedata", ""),
            ("UPDATE analyticsdemo.devicedata SET sensorreading = 1", ""),
            ("COPY (SELECT 1) TO '/tmp/iotaa-bad-input.csv'", ""),
            ("SET datafusion.execution.batch_size = 1", ""),
            ("", ""),
            ("   ;  ", ""),
            ("SELECT 1; SELECT 2", ""),
            ("SELECT '\u{0}'", ""),
            (&deep, ""),
        ];
        let mut errors = 0;
        for (sql, needle) in cases {
            let case: String = sql.chars().take(60).collect();
            match run(&rt, &e, sql) {
                Err(msg) => {
                    assert_one_line(&case, &msg);
                    assert!(
                        msg.to_lowercase().contains(&needle.to_lowercase()),
                        "{case}: {msg} (expected it to mention {needle:?})"
                    );
                    errors += 1;
                }
                // A few odd inputs are legal SQL; they must then not have changed anything.
                Ok(out) => assert!(
                    needle.is_empty() && !sql.contains("DELETE") && !sql.contains("UPDATE"),
                    "{case}: ran, returning {:?}",
                    out.rows.first()
                ),
            }
        }
        assert!(
            !std::path::Path::new("/tmp/iotaa-bad-input.csv").exists(),
            "COPY wrote a file"
        );
        // The engine still answers, and the lake is unchanged.
        let out = run(&rt, &e, "SELECT count(*) FROM analyticsdemo.devicedata").unwrap();
        assert_eq!(out.rows[0][0].as_deref(), Some(ROWS.to_string().as_str()));
        eprintln!(
            "sql: {} statements, {errors} refused with one line",
            cases.len()
        );
    }

    /// Millions of rows: the cap keeps what is shown bounded and says how much was left out;
    /// a cancelled query stops its scan.
    #[test]
    fn millions_of_rows_and_a_cancelled_query() {
        let dir = tempfile::tempdir().unwrap();
        let lake = dir.path().join("lake");
        let body: String = (0..ROWS).map(|i| line("bbbb", i as i64 % 7)).collect();
        write_gz(&hour_dir(&lake).join("devicedata-1-b.gz"), body.as_bytes());
        let rt = tokio::runtime::Runtime::new().unwrap();
        let e = engine(&lake);
        // 160³ = 4,096,000 rows.
        let sql = "SELECT a.sensorreading, b.sensorreading, c.sensorreading \
                   FROM analyticsdemo.devicedata a, analyticsdemo.devicedata b, analyticsdemo.devicedata c";
        let started = Instant::now();
        let out = run(&rt, &e, sql).unwrap();
        assert_eq!(out.rows.len(), 10_000);
        assert!(out.more_rows);
        if let Some(dropped) = out.dropped_rows {
            assert_eq!(dropped, (ROWS * ROWS * ROWS - 10_000) as u64);
        }
        let capped = started.elapsed();

        // Cancelled: the future is dropped mid-scan; the scan ends, the engine goes on.
        let slow = "SELECT count(*) FROM analyticsdemo.devicedata a, analyticsdemo.devicedata b, \
                    analyticsdemo.devicedata c, analyticsdemo.devicedata d";
        let cancelled = rt.block_on(async {
            tokio::time::timeout(Duration::from_millis(300), e.run(slow)).await
        });
        assert!(
            cancelled.is_err(),
            "a 655-million-row count finished in 300 ms?"
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while e.active_scans() > 0 {
            assert!(
                Instant::now() < deadline,
                "the cancelled scan is still running"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = run(&rt, &e, "SELECT count(*) FROM analyticsdemo.devicedata").unwrap();
        assert_eq!(out.rows[0][0].as_deref(), Some(ROWS.to_string().as_str()));
        eprintln!(
            "sql: 4,096,000-row result capped at 10,000 in {:.2} s; a cancelled query's scan stopped",
            capped.as_secs_f64()
        );
    }

    /// Damaged lake objects: the good lines are queried, the rest counted as malformed.
    #[test]
    fn damaged_lake_objects() {
        let dir = tempfile::tempdir().unwrap();
        let lake = dir.path().join("lake");
        let hour = hour_dir(&lake);
        let good: String = (0..100).map(|i| line("cccc", i % 5)).collect();
        let ts = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S%.3f");
        let bad_lines = [
            "not json at all".to_string(),
            "{\"deviceId\":\"cccc\"".to_string(),
            format!(
                "{{\"deviceId\":\"cccc\",\"sensorReading\":\"five\",\"readingTimestamp\":\"{ts}\"}}"
            ),
            format!(
                "{{\"deviceId\":\"cccc\",\"sensorReading\":1e400,\"readingTimestamp\":\"{ts}\"}}"
            ),
            format!(
                "{{\"deviceId\":\"cccc\",\"sensorReading\":99999999999999999999,\"readingTimestamp\":\"{ts}\"}}"
            ),
            r#"{"deviceId":"cccc","sensorReading":3,"readingTimestamp":"yesterday"}"#.to_string(),
            "[1,2,3]".to_string(),
            "\u{feff}{\"deviceId\":".to_string(),
        ];
        let mixed = format!("{good}{}\n{good}", bad_lines.join("\n"));
        write_gz(&hour.join("devicedata-1-mixed.gz"), mixed.as_bytes());
        // Truncated: the first half of a gzip stream of the good lines.
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(good.repeat(20).as_bytes()).unwrap();
        let gz = enc.finish().unwrap();
        std::fs::write(hour.join("devicedata-1-truncated.gz"), &gz[..gz.len() / 2]).unwrap();
        // Not gzip at all, named .gz; empty; plain text with a torn last line.
        std::fs::write(
            hour.join("devicedata-1-notgzip.gz"),
            b"hello, I am not gzip",
        )
        .unwrap();
        std::fs::write(hour.join("devicedata-1-empty.gz"), b"").unwrap();
        std::fs::write(
            hour.join("devicedata-1-plain"),
            format!("{good}{{\"deviceId\":\"cc").as_bytes(),
        )
        .unwrap();

        let rt = tokio::runtime::Runtime::new().unwrap();
        let e = engine(&lake);
        let out = run(
            &rt,
            &e,
            "SELECT count(*) AS n, count(sensorreading) AS r FROM analyticsdemo.devicedata",
        )
        .unwrap();
        let n: u64 = out.rows[0][0].as_deref().unwrap().parse().unwrap();
        // mixed: 200 good; plain: 100 good; truncated: some good lines before the cut.
        assert!(n >= 300, "{n} rows");
        assert!(
            n < 300 + 2_000,
            "{n} rows: the truncated object cannot hold all of its 2,000"
        );
        assert!(
            out.malformed_lines >= bad_lines.len() as u64 + 3,
            "{} malformed lines counted",
            out.malformed_lines
        );
        assert_eq!(out.files_scanned, 5);
        eprintln!(
            "data: lake of 5 damaged objects: {n} rows read, {} malformed lines counted",
            out.malformed_lines
        );
    }

    /// Parquet objects the table cannot read (not Parquet, torn, foreign columns, a damaged page)
    /// are each counted as one malformed line and named in one line saying which and why; every
    /// other object is read, and the query runs.
    #[test]
    fn damaged_and_foreign_parquet_objects() {
        use iot_anomaly_analytics::query::lake::write::ParquetObject;
        use parquet::arrow::ArrowWriter;
        use std::sync::Arc;
        let dir = tempfile::tempdir().unwrap();
        let lake = dir.path().join("lake");
        let hour = lake.join(chrono::Utc::now().format("%Y/%m/%d/%H").to_string());
        std::fs::create_dir_all(&hour).unwrap();
        let ts = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S%.3f");
        let good = |n: usize, v: i64| -> Vec<u8> {
            let mut o = ParquetObject::with_row_groups_of(50).unwrap();
            for _ in 0..n {
                let line = format!(
                    "{{\"deviceId\":\"dddd\",\"sensorReading\":{v},\"readingTimestamp\":\"{ts}\"}}"
                );
                assert!(o.push_record(line.as_bytes()).unwrap());
            }
            o.finish().unwrap()
        };
        // Read: 100 readings of 1.
        std::fs::write(hour.join("devicedata-1-good.parquet"), good(100, 1)).unwrap();
        // Not Parquet at all; empty; torn (its second half, with the footer, is missing).
        std::fs::write(
            hour.join("devicedata-1-text.parquet"),
            b"hello, I am not parquet",
        )
        .unwrap();
        std::fs::write(hour.join("devicedata-1-empty.parquet"), b"").unwrap();
        let whole = good(200, 2);
        std::fs::write(
            hour.join("devicedata-1-torn.parquet"),
            &whole[..whole.len() / 2],
        )
        .unwrap();
        // Foreign: a Parquet file of other columns, and one whose sensorreading is a string.
        let foreign = |fields: Vec<(&str, Arc<dyn datafusion::arrow::array::Array>)>| -> Vec<u8> {
            let batch = datafusion::arrow::array::RecordBatch::try_from_iter(fields).unwrap();
            let mut w = ArrowWriter::try_new(Vec::new(), batch.schema(), None).unwrap();
            w.write(&batch).unwrap();
            w.into_inner().unwrap()
        };
        use datafusion::arrow::array::{Int64Array, StringArray};
        std::fs::write(
            hour.join("devicedata-1-other.parquet"),
            foreign(vec![(
                "city",
                Arc::new(StringArray::from(vec!["Oslo"])) as _,
            )]),
        )
        .unwrap();
        std::fs::write(
            hour.join("devicedata-1-types.parquet"),
            foreign(vec![
                ("deviceId", Arc::new(StringArray::from(vec!["eeee"])) as _),
                (
                    "sensorReading",
                    Arc::new(StringArray::from(vec!["five"])) as _,
                ),
                ("readingTimestamp", Arc::new(Int64Array::from(vec![1])) as _),
            ]),
        )
        .unwrap();
        // Damaged pages: the footer is whole, the first third of what follows the magic number
        // (the first row groups' pages, headers included) is zeros. (Without page checksums, a
        // flipped value inside a page would go unseen; a page header that does not decode is
        // seen.)
        let mut damaged = good(300, 3);
        let tail = &damaged[damaged.len() - 8..];
        let footer = u32::from_le_bytes(tail[..4].try_into().unwrap()) as usize + 8;
        let data = damaged.len() - footer - 4;
        damaged[4..4 + data / 3].fill(0);
        std::fs::write(hour.join("devicedata-1-damaged.parquet"), &damaged).unwrap();

        let rt = tokio::runtime::Runtime::new().unwrap();
        let e = engine(&lake);
        let out = run(
        &rt,
        &e,
        "SELECT count(*), sum(sensorreading), count(DISTINCT deviceid) FROM analyticsdemo.devicedata",
    )
    .unwrap();
        let n: u64 = out.rows[0][0].as_deref().unwrap().parse().unwrap();
        let sum: u64 = out.rows[0][1].as_deref().unwrap().parse().unwrap();
        // good: 100 × 1; damaged: the row groups before the damage (50 rows each) × 3.
        assert!((100..400).contains(&n), "{n} rows; {out:?}");
        assert_eq!((sum - 100) % 3, 0, "{sum}");
        assert_eq!(out.rows[0][2].as_deref(), Some("1"), "only dddd was read");
        let skipped = out.skipped_objects.join("\n");
        for (name, why) in [
            ("devicedata-1-text.parquet", "not a readable Parquet file"),
            ("devicedata-1-empty.parquet", "not a readable Parquet file"),
            ("devicedata-1-torn.parquet", "not a readable Parquet file"),
            ("devicedata-1-other.parquet", "no column deviceid"),
            (
                "devicedata-1-types.parquet",
                "column sensorreading is Utf8, expected an integer",
            ),
            ("devicedata-1-damaged.parquet", "unreadable past this point"),
        ] {
            let line = out
                .skipped_objects
                .iter()
                .find(|l| l.contains(name))
                .unwrap_or_else(|| panic!("{name} not named in:\n{skipped}"));
            assert!(line.contains(why), "{line}");
            assert!(!line.contains('\n'), "{line}");
        }
        assert_eq!(out.skipped_objects.len(), 6, "{skipped}");
        assert_eq!(out.malformed_lines, 6);
        eprintln!(
            "data: 7 Parquet objects, 6 damaged or foreign: {n} rows read; skipped:\n{skipped}"
        );
    }
}

mod stream_matrix {
    use super::*;
    use iot_anomaly_analytics::backend::local::LocalStreams;
    use iot_anomaly_analytics::backend::{Layout, settings};
    use iot_anomaly_analytics::pipeline::run::{Pipeline, PipelineSettings};
    use iot_anomaly_analytics::pipeline::{
        Event, Reporter, StageState, StartAt, StreamRole, Streams,
    };
    use iot_anomaly_analytics::records::ScoredReading;
    use iot_anomaly_analytics::stream::{NewRecord, Stream, StreamOptions};

    /// The detector reads a readings stream holding a record with a bad checksum, malformed
    /// records, readings with missing fields or wrong types, and extreme values: it reports
    /// each bad record in one line, skips what it must, scores everything else and keeps
    /// running.
    #[test]
    fn the_detector_survives_bad_records_and_a_bad_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "data_dir = {:?}\n[detector]\nexplanation = false\nsnapshot_interval_secs = 1\n",
            dir.path().join("data").display().to_string()
        );
        let loaded = parse(&text).unwrap();
        let layout = Layout::new(&loaded);
        let ts = "2026-11-30 05:00:01.000";
        let good = |v: i64| {
            format!(
                "{{\"deviceId\":\"aaaa\",\"sensorReading\":{v},\"readingTimestamp\":\"{ts}\"}}\n"
            )
        };
        let bad: Vec<String> = vec![
            "not json\n".into(),
            "{\"deviceId\":\"aaaa\"}\n".into(),
            format!(
                "{{\"deviceId\":\"aaaa\",\"sensorReading\":\"5\",\"readingTimestamp\":\"{ts}\"}}\n"
            ),
            format!(
                "{{\"deviceId\":\"aaaa\",\"sensorReading\":1e400,\"readingTimestamp\":\"{ts}\"}}\n"
            ),
            format!(
                "{{\"deviceId\":\"aaaa\",\"sensorReading\":99999999999999999999,\"readingTimestamp\":\"{ts}\"}}\n"
            ),
            format!("{{\"deviceId\":7,\"sensorReading\":1,\"readingTimestamp\":\"{ts}\"}}\n"),
            String::new(),
            "\u{0}\u{1}\u{2}".into(),
        ];
        let extremes = [i64::MAX, i64::MIN, 0];
        // Small segments (4 KiB), so a bad checksum costs only the rest of one segment.
        let mut payloads: Vec<String> = (0..200).map(|i| good(i % 11 - 5)).collect();
        let corrupt_marker =
            "{\"deviceId\":\"CORRUPTME\",\"sensorReading\":1,\"readingTimestamp\":\"x\"}\n";
        payloads.insert(60, corrupt_marker.into());
        payloads.extend(bad.iter().cloned());
        payloads.extend(extremes.iter().map(|&v| good(v)));
        {
            let stream = Stream::open(
                &layout.stream_dir(StreamRole::Readings),
                StreamOptions {
                    segment_size_bytes: 4096,
                },
            )
            .unwrap();
            for p in &payloads {
                stream
                    .append(
                        &[NewRecord {
                            partition_key: "aaaa",
                            data: p.as_bytes(),
                        }],
                        1,
                    )
                    .unwrap();
            }
        }
        // Flip one byte of the marked record's data: its CRC no longer matches.
        let mut corrupted = None;
        for entry in std::fs::read_dir(layout.stream_dir(StreamRole::Readings)).unwrap() {
            let path = entry.unwrap().path();
            let mut bytes = std::fs::read(&path).unwrap();
            if let Some(i) = bytes.windows(9).position(|w| w == b"CORRUPTME") {
                bytes[i] = b'X';
                std::fs::write(&path, &bytes).unwrap();
                corrupted = Some(path);
            }
        }
        let corrupted = corrupted.expect("the marked record");

        let events = Arc::new(Mutex::new(Vec::<Event>::new()));
        let report: Reporter = {
            let events = events.clone();
            Arc::new(move |e| events.lock().unwrap().push(e))
        };
        let streams: Arc<dyn Streams> = Arc::new(LocalStreams::open(&layout, &loaded).unwrap());
        let last = streams.last_sequence(StreamRole::Readings).unwrap();
        let pipeline = Pipeline::start(
            streams.clone(),
            PipelineSettings {
                detector: Some(settings::detector_settings(&layout, &loaded)),
                ..Default::default()
            },
            report,
        )
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let caught_up = events
                .lock()
                .unwrap()
                .iter()
                .any(|e| matches!(e, Event::Detector(p) if p.lag_records == 0 && p.scored > 0));
            if caught_up {
                break;
            }
            assert!(Instant::now() < deadline, "{:#?}", events.lock().unwrap());
            std::thread::sleep(Duration::from_millis(20));
        }
        pipeline.shutdown();
        let events = events.lock().unwrap().clone();

        let problems: Vec<&String> = events
            .iter()
            .filter_map(|e| match e {
                Event::Problem { message, .. } => Some(message),
                _ => None,
            })
            .collect();
        for p in &problems {
            assert_one_line("problem", p);
        }
        let corrupt: Vec<_> = problems
            .iter()
            .filter(|p| p.contains("corrupt stream data"))
            .collect();
        assert_eq!(corrupt.len(), 1, "{problems:#?}");
        assert!(
            corrupt[0].contains(&corrupted.display().to_string()) && corrupt[0].contains("offset"),
            "{}",
            corrupt[0]
        );
        let undecodable = problems
            .iter()
            .filter(|p| p.contains("readings stream record") && p.contains("expected a reading"))
            .count();
        assert_eq!(undecodable, bad.len(), "{problems:#?}");
        assert!(
            !events.iter().any(|e| matches!(
                e,
                Event::Stage {
                    state: StageState::Failed,
                    ..
                }
            )),
            "the detector failed: {events:#?}"
        );

        // The anomaly stream has every good reading the checksum did not take with it,
        // including the extremes, each with a finite score.
        let mut reader = streams
            .reader(StreamRole::Anomalies, StartAt::TrimHorizon)
            .unwrap();
        let mut scored = Vec::new();
        loop {
            let batch = reader.next_batch(1000).unwrap();
            if batch.is_empty() {
                break;
            }
            scored.extend(
                batch
                    .iter()
                    .map(|r| ScoredReading::decode(&r.data).unwrap()),
            );
        }
        for s in &scored {
            assert!(s.anomaly_score.is_finite(), "{s:?}");
        }
        for v in extremes {
            assert!(
                scored.iter().any(|s| s.reading.sensor_reading == v),
                "{v} not scored"
            );
        }
        let skipped = payloads.len() - bad.len() - scored.len();
        assert!(skipped >= 1, "the corrupt record itself was scored?");
        assert!(
            skipped < 60,
            "{skipped} records lost to one bad checksum: more than a 4 KiB segment holds"
        );
        assert_eq!(last as usize, payloads.len());
        eprintln!(
            "data: stream of {} records: 1 bad checksum ({skipped} records skipped with it), {} undecodable records reported, {} scored",
            payloads.len(),
            bad.len(),
            scored.len()
        );
    }
}

mod terminal_matrix {
    use super::*;
    use common::screen as draw;
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    use iot_anomaly_analytics::action::Action;
    use iot_anomaly_analytics::app::App;

    /// Every size from 1×1 to 400×120 (a grid of widths and heights around every layout
    /// breakpoint), in every state: focus on each pane, zoomed, help open, an SQL error
    /// and a long SQL text in the editor. Nothing panics, and each frame says something.
    #[test]
    fn every_size_in_every_state() {
        let widths = [
            1u16, 2, 3, 5, 8, 13, 20, 39, 40, 41, 60, 79, 80, 81, 100, 120, 160, 200, 300, 400,
        ];
        let heights = [
            1u16, 2, 3, 5, 8, 11, 12, 13, 19, 20, 24, 30, 40, 60, 80, 120,
        ];
        let loaded = parse("").unwrap();
        let mut app = App::new(&loaded, PathBuf::from("/cfg/data/logs/iotaa.log"));
        app.update(Action::Paste(format!(
            "SELECT {} FROM analyticsdemo.devicedata\n",
            "sensorreading + ".repeat(500)
        )));
        app.update(Action::Paste("\n-- ünïcødé ✓ 表 🚀\n".repeat(200)));
        let key = |c: KeyCode| KeyEvent::new(c, KeyModifiers::NONE);
        let states: Vec<Vec<KeyEvent>> = vec![
            vec![],
            vec![key(KeyCode::Esc), key(KeyCode::Char('1'))],
            vec![key(KeyCode::Char('2'))],
            vec![key(KeyCode::Char('3')), key(KeyCode::Char('z'))],
            vec![key(KeyCode::Char('z')), key(KeyCode::Char('4'))],
            vec![key(KeyCode::Char('?'))],
            vec![key(KeyCode::Esc)],
        ];
        let mut frames = 0;
        for keys in &states {
            for k in keys {
                if let Some(a) = app.action_for_key(k) {
                    app.update(a);
                }
            }
            for &w in &widths {
                for &h in &heights {
                    app.update(Action::Resize(w, h));
                    let screen = draw(&app, w, h);
                    assert!(
                        !screen.trim().is_empty() || w * h < 20,
                        "{w}×{h}: blank frame"
                    );
                    frames += 1;
                }
            }
        }
        // Rapid resizes between extremes, then a normal frame.
        for i in 0..2_000u32 {
            let (w, h) = if i % 2 == 0 { (1, 1) } else { (400, 120) };
            app.update(Action::Resize(w, h));
        }
        app.update(Action::Resize(120, 40));
        let screen = draw(&app, 120, 40);
        assert!(screen.contains("Stack"), "{screen}");
        eprintln!(
            "terminal: {frames} frames drawn at {} sizes in {} states, 2,000 rapid resizes",
            widths.len() * heights.len(),
            states.len()
        );
    }
}
