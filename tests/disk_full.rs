//! Disk full and a read-only data directory, for real: the data directory is a 24 MiB tmpfs
//! mounted for the test (so the test needs root, as CI runs; without it the test fails and
//! says so). The headless pipeline runs at 5,000 readings/s with `--ack-log` on the normal
//! disk, and:
//!
//! 1. a ballast file fills the tmpfs: the producer, delivery and detector each report
//!    `blocked: … No space left on device` on stderr (one line each, not one per retry), and
//!    no reading is acknowledged while the disk is full;
//! 2. the ballast is removed: the stages report `<stage> resumed: … (resumed after N s blocked)` and
//!    acknowledgements go on;
//! 3. SIGTERM: a clean exit, then every acknowledged reading is in the lake, every object is
//!    whole, and both stream logs read back with strictly increasing sequence numbers;
//! 4. the tmpfs is remounted read-only: `produce` refuses to start with one line naming
//!    `Read-only file system`, and `query` still reads every row.
//!
//! Linux refuses to remount a filesystem read-only while files on it are open for writing, so
//! a data directory cannot be made read-only under a running pipeline here; if it happens
//! (a filesystem remounted read-only after an error), writes fail with EROFS and take the same
//! path as ENOSPC in step 1: the stage reports itself blocked and retries.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use common::{
    acked_lines, assert_all_acked_in_lake, count_lines, read_lake, read_stream, read_text,
    spawn_produce, wait_until,
};

const CONFIG: &str = "[producer]\nrate = 1000\n\
[delivery]\nbuffer_interval_secs = 1\n\
[detector]\nsnapshot_interval_secs = 1\nexplanation = false\n";

/// A tmpfs mounted at a path, unmounted (lazily) on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        run_mount(&["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"], at);
        Tmpfs(at.to_path_buf())
    }

    fn remount(&self, mode: &str) {
        run_mount(&["-o", &format!("remount,{mode}")], &self.0);
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn run_mount(args: &[&str], at: &Path) {
    let out = Command::new("mount")
        .args(args)
        .arg(at)
        .output()
        .unwrap_or_else(|e| panic!("running mount: {e}"));
    assert!(
        out.status.success(),
        "mount {args:?} {}: {} — this test mounts a tmpfs to fill it, which needs root (CI runs as root)",
        at.display(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

/// Kills the child if the test fails before it exits.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Writes zeros to `path` until the filesystem refuses; returns the bytes written.
fn fill(path: &Path) -> u64 {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    let mut written = 0u64;
    for chunk in [1 << 20, 4096, 1] {
        let block = vec![0u8; chunk];
        loop {
            match f.write(&block) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
    }
    written
}

#[test]
fn disk_full_and_read_only_block_the_pipeline_then_it_resumes_losing_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mnt = dir.join("mnt");
    let fs = Tmpfs::mount(&mnt, "24m");
    let data = mnt.join("data");
    std::fs::write(
        dir.join("config.toml"),
        format!("data_dir = {:?}\n{CONFIG}", data.display().to_string()),
    )
    .unwrap();
    let ack = dir.join("ack.ndjson");
    let stderr = dir.join("produce.stderr");
    let mut child = Running(spawn_produce(dir, &ack, &stderr, &[]));
    let log = || read_text(&stderr);
    let context = || format!("produce stderr:\n{}", read_text(&stderr));
    let count = |needle: &str| read_text(&stderr).matches(needle).count();

    wait_until(
        Duration::from_secs(60),
        "a first lake object",
        || log().contains("delivery: object 1:"),
        context,
    );

    // 1. Disk full.
    let ballast = mnt.join("ballast");
    let filled = fill(&ballast);
    assert!(filled > 0);
    wait_until(
        Duration::from_secs(30),
        "the producer to report itself blocked",
        || log().contains("producer blocked: "),
        context,
    );
    let acked_when_blocked = count_lines(&ack);
    for stage in ["delivery", "detector"] {
        wait_until(
            Duration::from_secs(30),
            &format!("{stage} to report itself blocked"),
            || log().contains(&format!("{stage} blocked: ")),
            context,
        );
    }
    let text = log();
    for stage in ["producer", "delivery", "detector"] {
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with(&format!("{stage} blocked: ")))
            .collect();
        assert_eq!(lines.len(), 1, "one blocked line for {stage}:\n{text}");
        assert!(
            lines[0].contains("No space left on device"),
            "{stage} does not say why: {}",
            lines[0]
        );
    }
    // Delivery and the detector blocked after the producer did (a second at least, for
    // delivery's buffer interval); no reading was acknowledged meanwhile.
    assert_eq!(
        count_lines(&ack),
        acked_when_blocked,
        "readings acknowledged while the disk was full"
    );

    // 2. Space returns.
    std::fs::remove_file(&ballast).unwrap();
    for stage in ["producer", "delivery", "detector"] {
        wait_until(
            Duration::from_secs(30),
            &format!("{stage} to resume"),
            || {
                log().lines().any(|l| {
                    l.starts_with(&format!("{stage} resumed: ")) && l.contains("resumed after")
                })
            },
            context,
        );
    }
    wait_until(
        Duration::from_secs(30),
        "acknowledgements after the disk has space again",
        || count_lines(&ack) > acked_when_blocked + 5_000,
        context,
    );
    let text = log();
    assert!(
        !text.contains("failed"),
        "a stage failed instead of blocking:\n{text}"
    );

    // 3. A clean stop, then nothing acknowledged is missing.
    let pid = child.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    wait_until(
        Duration::from_secs(120),
        "produce to exit after SIGTERM",
        || child.0.try_wait().unwrap().is_some(),
        context,
    );
    let status = child.0.wait().unwrap();
    assert!(status.success(), "produce: {status}\n{}", log());

    let (acked, ack_count, _) = acked_lines(&ack);
    let lake = read_lake(&data.join("lake"));
    assert_all_acked_in_lake(&acked, &lake);
    let (readings, ..) = read_stream(&data.join("streams/readings"), |_, _| {});
    let (anomalies, ..) = read_stream(&data.join("streams/anomalies"), |_, _| {});
    assert!(readings >= ack_count as u64);
    assert!(anomalies >= readings);
    // 4. The data directory read-only (remounted now that nothing writes): starting refuses
    // with one line, and what was written is still there to query.
    fs.remount("ro");
    let out = Command::new(env!("CARGO_BIN_EXE_iotaa"))
        .current_dir(dir)
        .args(["produce", "--duration", "1s"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.contains("Read-only file system"), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_iotaa"))
        .current_dir(dir)
        .args([
            "query",
            "--format",
            "csv",
            "SELECT count(*) AS n FROM devicedata",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "query on the read-only lake: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let n: u64 = String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("{}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(n, lake.lines, "rows queried on the read-only lake");

    eprintln!(
        "disk_full: ballast {filled} bytes; {ack_count} readings acknowledged, {} blocked lines, {} resumed lines; lake {} objects, {} lines; streams {readings} readings, {anomalies} scored; 0 acknowledged missing",
        count(" blocked: "),
        count("resumed after"),
        lake.objects,
        lake.lines
    );
}
