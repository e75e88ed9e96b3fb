//! Replays the fuzz corpus: every file of `fuzz/corpus/<target>/` and
//! `fuzz/regressions/<target>/` through the entry function its `cargo fuzz` target calls
//! (`fuzz/fuzzing.rs`, included here), plus the seed inputs those directories were grown from.
//! Deterministic and quick: no fuzzing happens here (see `fuzz/README.md` for that).
//!
//! `cargo test --test fuzz_corpus -- --ignored write_seeds` writes the seeds into the corpus
//! directories (before a fuzzing run; `cargo fuzz cmin` keeps those that add coverage).

use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

#[path = "../fuzz/fuzzing.rs"]
mod fuzzing;

type Entry = fn(&[u8]);
/// Named inputs.
type Inputs = Vec<(String, Vec<u8>)>;

const FUZZ: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz");

/// Files of `dir`, sorted by name (hidden files skipped); none if it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("list a corpus directory").path())
        .filter(|p| p.is_file())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    files.sort();
    files
}

/// Runs every input through `entry`; fails naming each input that panicked.
fn run_all(entry: Entry, inputs: impl IntoIterator<Item = (String, Vec<u8>)>) -> usize {
    let mut count = 0;
    let mut failed = Vec::new();
    for (name, bytes) in inputs {
        count += 1;
        if panic::catch_unwind(AssertUnwindSafe(|| entry(&bytes))).is_err() {
            failed.push(name);
        }
    }
    assert!(failed.is_empty(), "inputs that fail: {failed:#?}");
    count
}

fn read(path: &Path) -> (String, Vec<u8>) {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    (path.display().to_string(), bytes)
}

/// The corpus (must not be empty: an empty one would pass on nothing) and the regressions.
fn replay(target: &str, entry: Entry) {
    let corpus = files(&Path::new(FUZZ).join("corpus").join(target));
    assert!(
        !corpus.is_empty(),
        "fuzz/corpus/{target} is empty or missing: nothing would be replayed"
    );
    let regressions = files(&Path::new(FUZZ).join("regressions").join(target));
    run_all(entry, corpus.iter().map(|p| read(p)));
    run_all(entry, regressions.iter().map(|p| read(p)));
}

#[test]
fn config_load_corpus() {
    replay("config_load", fuzzing::config_load);
    run_all(fuzzing::config_load, config_seeds());
}

#[test]
fn reading_decode_corpus() {
    replay("reading_decode", fuzzing::reading_decode);
    run_all(fuzzing::reading_decode, record_seeds());
}

#[test]
fn scored_decode_corpus() {
    replay("scored_decode", fuzzing::scored_decode);
    run_all(fuzzing::scored_decode, record_seeds());
}

#[test]
fn stream_log_corpus() {
    replay("stream_log", fuzzing::stream_log);
    run_all(fuzzing::stream_log, fuzzing::stream_seeds());
}

/// The shipped config and every config fixture.
fn config_seeds() -> Inputs {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut paths = vec![root.join("config.toml")];
    for kind in ["valid", "invalid"] {
        paths.extend(files(&root.join("tests/configs").join(kind)));
    }
    paths.iter().map(|p| read(p)).collect()
}

/// Readings and scored readings as the pipeline writes them, and a few near misses.
fn record_seeds() -> Inputs {
    let lines: [&str; 12] = [
        r#"{"deviceId":"aaaa","sensorReading":3,"readingTimestamp":"2026-11-30 05:00:01.123"}"#,
        "{\"deviceId\":\"eeee\",\"sensorReading\":-5,\"readingTimestamp\":\"2026-11-30 05:00:01.000\"}\n",
        r#"{"deviceId":"cccc","sensorReading":455,"readingTimestamp":"2026-11-30 05:00:02.500","ANOMALY_SCORE":7.2,"ANOMALY_EXPLANATION":{"sensorReading":{"ATTRIBUTION_SCORE":7.2,"STRENGTH":1.0,"DIRECTION":"HIGH"}}}"#,
        r#"{"deviceId":"dddd","sensorReading":-420,"readingTimestamp":"2026-11-30 05:00:03.001","ANOMALY_SCORE":4.25,"ANOMALY_EXPLANATION":{"sensorReading":{"ATTRIBUTION_SCORE":4.25,"STRENGTH":0.5,"DIRECTION":"LOW"}}}"#,
        r#"{"deviceId":"bbbb","sensorReading":0,"readingTimestamp":"2026-11-30 05:00:04.000","ANOMALY_SCORE":0}"#,
        r#"{"deviceId":"bbbb","sensorReading":1,"readingTimestamp":"x","ANOMALY_SCORE":1e-300,"ANOMALY_EXPLANATION":null}"#,
        r#"{"deviceId":"\u00e9\ud83d\ude00","sensorReading":9223372036854775807,"readingTimestamp":"","ANOMALY_SCORE":-0.0}"#,
        r#"{"sensorReading":-9223372036854775808,"readingTimestamp":"2026-11-30 05:00:01","deviceId":"a","extra":[1,{"b":null}]}"#,
        r#"{"deviceId":"aaaa","sensorReading":3.5,"readingTimestamp":"2026-11-30 05:00:01.123"}"#,
        r#"{"deviceId":"aaaa"}"#,
        "[\"aaaa\",3,\"2026-11-30 05:00:01.123\",0.5]",
        "\u{feff}{\"deviceId\":\"aaaa\",\"sensorReading\":3,\"readingTimestamp\":\"t\"}\n\n",
    ];
    lines
        .iter()
        .enumerate()
        .map(|(i, l)| (format!("record_{i}"), l.as_bytes().to_vec()))
        .collect()
}

/// Writes the seeds into `fuzz/corpus/<target>/seed_<name>` (run by hand before fuzzing).
#[test]
#[ignore = "writes into fuzz/corpus; run by hand before fuzzing"]
fn write_seeds() {
    let sets: [(&str, Inputs); 4] = [
        ("config_load", config_seeds()),
        ("reading_decode", record_seeds()),
        ("scored_decode", record_seeds()),
        ("stream_log", fuzzing::stream_seeds()),
    ];
    for (target, seeds) in sets {
        let dir = Path::new(FUZZ).join("corpus").join(target);
        fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in seeds {
            let name = Path::new(&name)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            fs::write(dir.join(format!("seed_{name}")), bytes).unwrap();
        }
    }
}
