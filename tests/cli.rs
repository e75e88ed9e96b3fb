//! The real `iotaa` binary: config fixtures, `config check|print`, unfinished commands.
//!
//! Each `tests/configs/invalid/*.toml` starts with `# expect: <message>`; the binary must fail
//! with exit status 2 and print exactly `iotaa: <path><message>` on stderr, one line.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn iotaa(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_iotaa"))
        .args(args)
        .current_dir(cwd)
        .env_remove("RUST_LOG")
        .env("XDG_CONFIG_HOME", cwd.join("no-xdg-config"))
        .env("XDG_DATA_HOME", cwd.join("xdg-data"))
        .output()
        .expect("run iotaa")
}

fn fixtures(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/configs")
        .join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in {}", dir.display());
    files
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn valid_configs_load() {
    let tmp = tempfile::tempdir().unwrap();
    for file in fixtures("valid") {
        let out = iotaa(
            &["--config", file.to_str().unwrap(), "config", "check"],
            tmp.path(),
        );
        assert!(
            out.status.success(),
            "{}: {}",
            file.display(),
            text(&out.stderr)
        );
        let stdout = text(&out.stdout);
        assert!(
            stdout.starts_with(&format!("ok: {}", file.display())),
            "{stdout}"
        );
    }
}

#[test]
fn invalid_configs_fail_with_one_clear_line() {
    let tmp = tempfile::tempdir().unwrap();
    let files = fixtures("invalid");
    for file in &files {
        let content = std::fs::read_to_string(file).unwrap();
        let expected = content
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{} lacks `# expect:`", file.display()));
        let out = iotaa(
            &["--config", file.to_str().unwrap(), "config", "check"],
            tmp.path(),
        );
        assert_eq!(out.status.code(), Some(2), "{}", file.display());
        assert_eq!(
            text(&out.stderr),
            format!("iotaa: {}{expected}\n", file.display()),
            "{}",
            file.display()
        );
        assert!(out.stdout.is_empty());
    }
    assert!(files.len() >= 20, "the matrix shrank to {}", files.len());
}

/// A broken config fails before the dashboard touches the terminal (no escape codes).
#[test]
fn dashboard_refuses_a_broken_config_before_the_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("config.toml");
    std::fs::write(&file, "[detector]\ntrees = -3\n").unwrap();
    let out = iotaa(&[], tmp.path());
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        format!(
            "iotaa: {}:2:9: detector.trees: expected a positive integer, got -3\n",
            file.display()
        )
    );
    assert!(out.stdout.is_empty(), "nothing may reach the terminal");
}

#[test]
fn unreadable_and_non_utf8_files() {
    let tmp = tempfile::tempdir().unwrap();
    let binary = tmp.path().join("binary.toml");
    std::fs::write(&binary, b"backend = \"local\"\n# caf\xe9\n").unwrap();
    let out = iotaa(
        &["--config", binary.to_str().unwrap(), "config", "check"],
        tmp.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        format!(
            "iotaa: {}:2:6: not valid UTF-8 (byte 23); save the file as UTF-8\n",
            binary.display()
        )
    );
    // A directory cannot be read as a file, even by root.
    let dir = tmp.path().join("dir.toml");
    std::fs::create_dir(&dir).unwrap();
    let out = iotaa(
        &["--config", dir.to_str().unwrap(), "config", "check"],
        tmp.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with(&format!("iotaa: {}: cannot read: ", dir.display())),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1);
    let missing = tmp.path().join("missing.toml");
    let out = iotaa(
        &["--config", missing.to_str().unwrap(), "config", "check"],
        tmp.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        format!(
            "iotaa: {}: no such file (given with --config)\n",
            missing.display()
        )
    );
}

#[test]
fn lookup_order_and_relative_paths() {
    let tmp = tempfile::tempdir().unwrap();
    // No file anywhere: built-in defaults, data in XDG_DATA_HOME.
    let out = iotaa(&["config", "check"], tmp.path());
    assert_eq!(
        text(&out.stdout),
        format!(
            "ok: built-in defaults (no config file found) (backend local, data dir {})\n",
            tmp.path().join("xdg-data/iotaa").display()
        )
    );
    // The XDG config file is found when there is no ./config.toml.
    let xdg = tmp.path().join("no-xdg-config/iotaa");
    std::fs::create_dir_all(&xdg).unwrap();
    std::fs::write(xdg.join("config.toml"), "data_dir = \"d\"\n").unwrap();
    let out = iotaa(&["config", "check"], tmp.path());
    assert_eq!(
        text(&out.stdout),
        format!(
            "ok: {} (backend local, data dir {})\n",
            xdg.join("config.toml").display(),
            xdg.join("d").display()
        )
    );
    // ./config.toml wins over XDG; its relative data_dir resolves against its folder.
    std::fs::write(tmp.path().join("config.toml"), "data_dir = \"here\"\n").unwrap();
    let out = iotaa(&["config", "check"], tmp.path());
    assert_eq!(
        text(&out.stdout),
        format!(
            "ok: {} (backend local, data dir {})\n",
            tmp.path().join("config.toml").display(),
            tmp.path().join("here").display()
        )
    );
    // --backend overrides the file.
    let out = iotaa(&["--backend", "aws", "config", "check"], tmp.path());
    assert!(
        text(&out.stdout).contains("(backend aws,"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn config_print_is_the_effective_config_and_loads_back() {
    let tmp = tempfile::tempdir().unwrap();
    let rebound =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs/valid/rebound_keys.toml");
    let out = iotaa(
        &["--config", rebound.to_str().unwrap(), "config", "print"],
        tmp.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    assert!(printed.contains("quit = [\"x\"]"), "{printed}");
    assert!(printed.contains("zoom = [\"q\"]"), "{printed}");
    assert!(printed.contains("trees = 100"), "{printed}");
    // What it prints is a valid config that means the same.
    let again = tmp.path().join("printed.toml");
    std::fs::write(&again, &printed).unwrap();
    let out2 = iotaa(
        &["--config", again.to_str().unwrap(), "config", "print"],
        tmp.path(),
    );
    assert!(out2.status.success(), "{}", text(&out2.stderr));
    assert_eq!(text(&out2.stdout), printed);
}

/// With the aws backend and no AWS configuration, the pipeline and query commands fail before
/// any request with one line naming what is missing (every command opens the backend the same
/// way, `soak` and `stack` included).
/// (Against moto: tests/aws_stack.rs and tests/aws_pipeline.rs.)
#[test]
fn the_aws_backend_without_a_region_is_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    for (args, needle) in [
        (vec!["produce"], "no AWS region"),
        (vec!["spike"], "no AWS region"),
        (vec!["tail"], "no AWS region"),
        (vec!["detect"], "no AWS region"),
        (vec!["query", "SELECT 1"], "no AWS region"),
        (vec!["soak"], "no AWS region"),
        (vec!["stack", "status"], "no AWS region"),
    ] {
        let mut with_backend = vec!["--backend", "aws"];
        with_backend.extend(&args);
        let out = common::aws::command(tmp.path(), &[], &with_backend)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = text(&out.stderr);
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
}

#[test]
fn help_explains_every_command() {
    let tmp = tempfile::tempdir().unwrap();
    let out = iotaa(&["--help"], tmp.path());
    let help = text(&out.stdout);
    for cmd in [
        "produce", "spike", "tail", "query", "stack", "detect", "config",
    ] {
        assert!(
            help.contains(&format!("  {cmd}")),
            "{cmd} missing from:\n{help}"
        );
    }
}

/// `detect --input` scores recorded readings in order, reports bad lines with file:line and
/// goes on: the threshold backtest.
#[test]
fn detect_backtests_a_file_and_reports_bad_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("readings.ndjson");
    let mut lines = String::new();
    for i in 0..300 {
        if i == 149 {
            lines.push_str("{\"deviceId\": \"aaaa\"}\n");
        }
        lines.push_str(&format!(
            "{{\"deviceId\":\"{}\",\"sensorReading\":{},\"readingTimestamp\":\"2026-11-30 05:00:00.000\"}}\n",
            ["aaaa", "bbbb", "cccc"][i % 3],
            (i * 7 % 11) as i64 - 5
        ));
    }
    lines.push_str("{\"deviceId\":\"bbbb\",\"sensorReading\":480,\"readingTimestamp\":\"2026-11-30 05:00:00.000\"}\n");
    std::fs::write(&input, lines).unwrap();
    let out = iotaa(&["detect", "--input", input.to_str().unwrap()], tmp.path());
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let scored: Vec<iot_anomaly_analytics::records::ScoredReading> = text(&out.stdout)
        .lines()
        .map(|l| iot_anomaly_analytics::records::ScoredReading::decode(l.as_bytes()).unwrap())
        .collect();
    assert_eq!(scored.len(), 301);
    assert!(
        scored[..60].iter().all(|s| s.anomaly_score == 0.0),
        "warm-up"
    );
    assert!(
        scored[300].anomaly_score > 4.0,
        "the spike: {}",
        scored[300].anomaly_score
    );
    assert!(
        stderr.contains(&format!(
            "{}:150: expected a reading as JSON",
            input.display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("detect: 301 readings scored, 1 bad lines skipped"),
        "{stderr}"
    );
}

/// The status `iotaa stack status` prints for the resource `name` (its row: name, kind,
/// status, detail).
fn resource_status(status: &str, name: &str) -> Option<String> {
    status.lines().find_map(|l| {
        let rest = l.trim_start().strip_prefix(name)?;
        rest.split_whitespace().nth(1).map(str::to_string)
    })
}

#[test]
fn local_stack_deploy_status_and_delete() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("config.toml"), "data_dir = \"data\"\n").unwrap();
    let status = |tmp: &Path| text(&iotaa(&["stack", "status"], tmp).stdout);
    let s = status(tmp.path());
    assert_eq!(
        resource_status(&s, "readings stream").as_deref(),
        Some("missing"),
        "{s}"
    );
    let out = iotaa(&["stack", "deploy"], tmp.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = status(tmp.path());
    assert_eq!(
        resource_status(&s, "readings stream").as_deref(),
        Some("ok"),
        "{s}"
    );
    assert_eq!(
        resource_status(&s, "anomaly stream").as_deref(),
        Some("ok"),
        "{s}"
    );
    // Without --yes and without a terminal to ask on, delete refuses.
    let out = iotaa(&["stack", "delete"], tmp.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("refusing without --yes"));
    assert!(tmp.path().join("data/streams").exists());
    let out = iotaa(&["stack", "delete", "--yes"], tmp.path());
    assert!(out.status.success());
    assert!(!tmp.path().join("data/streams").exists());
    let s = status(tmp.path());
    assert_eq!(
        resource_status(&s, "readings stream").as_deref(),
        Some("missing"),
        "{s}"
    );
}

/// A bad duration names the flag it was given to.
#[test]
fn a_bad_duration_names_its_flag() {
    let tmp = tempfile::tempdir().unwrap();
    for (args, flag) in [
        (vec!["produce", "--duration", "soon"], "--duration:"),
        (vec!["soak", "--every", "5x"], "--every:"),
        (vec!["soak", "--idle", "abc"], "--idle:"),
    ] {
        let out = iotaa(&args, tmp.path());
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(flag), "{args:?}: {stderr}");
    }
}
