//! Headless end-to-end: `iotaa produce` runs the whole local pipeline for 15 s while a second
//! process sends a spike with `iotaa spike`; the alert lands in alerts.log and readings in the
//! lake.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use iot_anomaly_analytics::records::{Alert, Reading};

fn iotaa(cwd: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_iotaa"));
    c.current_dir(cwd).env_remove("RUST_LOG");
    c
}

#[test]
fn produce_and_a_spike_from_another_process_raise_an_alert() {
    let dir = tempfile::tempdir().unwrap();
    // 10 readings/s per device: the forest is warm (~64 readings) in about 1.5 s.
    std::fs::write(
        dir.path().join("config.toml"),
        "data_dir = \"data\"\n[producer]\nrate = 10\n[delivery]\nbuffer_interval_secs = 2\n",
    )
    .unwrap();
    let produce = iotaa(dir.path())
        .args(["produce", "--duration", "15s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // Ready when 200 scored readings are on the anomaly stream: warm by then.
    let warm = iotaa(dir.path())
        .args([
            "tail",
            "--from",
            "trim-horizon",
            "--count",
            "200",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert!(
        warm.status.success(),
        "{}",
        String::from_utf8_lossy(&warm.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&warm.stdout).lines().count(), 200);

    let spike = iotaa(dir.path())
        .args(["spike", "--device", "cccc", "--value", "455"])
        .output()
        .unwrap();
    assert!(
        spike.status.success(),
        "{}",
        String::from_utf8_lossy(&spike.stderr)
    );
    let sent = Reading::decode(&spike.stdout).unwrap();
    assert_eq!(
        (sent.device_id.as_str(), sent.sensor_reading),
        ("cccc", 455)
    );

    let start = Instant::now();
    let out = produce.wait_with_output().unwrap();
    assert!(start.elapsed() < Duration::from_secs(40));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");

    // The alert: on produce's stdout and in alerts.log.
    let log = std::fs::read_to_string(dir.path().join("data/alerts.log")).unwrap();
    let alerts: Vec<Alert> = log
        .lines()
        .map(|l| Alert::decode(l.as_bytes()).unwrap())
        .collect();
    let spike_alert = alerts
        .iter()
        .find(|a| a.scored.reading == sent)
        .unwrap_or_else(|| panic!("no alert for the spike in {log}\n{stderr}"));
    assert!(spike_alert.scored.anomaly_score > 4.0);
    assert_eq!(spike_alert.subject, "Anomaly Detected!");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("\"sensorReading\":455"), "{stdout}");

    // The lake has the readings, including the spike (flushed on stop).
    let mut lake_lines = 0;
    let mut found_spike = false;
    for entry in walk(&dir.path().join("data/lake")) {
        let raw = std::fs::read(&entry).unwrap();
        let mut text = String::new();
        use std::io::Read;
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_string(&mut text)
            .unwrap();
        lake_lines += text.lines().count();
        found_spike |= text.contains("\"sensorReading\":455");
    }
    assert!(lake_lines > 500, "{lake_lines} readings in the lake");
    assert!(found_spike, "the spike is in the lake");
    assert!(stderr.contains("produce: sent"), "{stderr}");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
