//! End-to-end: the real binary in a real terminal (tmux) at a fixed size.
//!
//! Each test runs its own tmux server (`-L` socket) with `remain-on-exit`. The binary runs
//! under `sh -c '…; echo EXIT=$?'` so its exit status is read from the screen (tmux 3.3 at
//! times never reaps a child that exits right after closing its tty, leaving
//! `pane_dead_status` empty). After it ends the test checks whether the terminal is still on
//! the alternate screen. Waits poll the screen for a condition with a deadline; no fixed sleeps
//! stand in for a condition.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(30);

struct Tmux {
    socket: String,
    _conf: tempfile::NamedTempFile,
}

impl Tmux {
    /// Starts `command` in a detached session of `width`×`height`.
    fn start(width: u16, height: u16, cwd: &Path, env: &[(&str, &str)], command: &[&str]) -> Tmux {
        static N: AtomicUsize = AtomicUsize::new(0);
        let socket = format!(
            "iotaa-e2e-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let conf = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(
            conf.path(),
            "set -g remain-on-exit on\nset -g history-limit 100\n",
        )
        .unwrap();
        let mut args: Vec<String> = vec![
            "-L".into(),
            socket.clone(),
            "-f".into(),
            conf.path().display().to_string(),
            "new-session".into(),
            "-d".into(),
            "-x".into(),
            width.to_string(),
            "-y".into(),
            height.to_string(),
            "-c".into(),
            cwd.display().to_string(),
        ];
        for (k, v) in env {
            args.push("-e".into());
            args.push(format!("{k}={v}"));
        }
        let quoted: Vec<String> = command.iter().map(|a| format!("'{a}'")).collect();
        args.push("sh".into());
        args.push("-c".into());
        // One line after the command: its status and the tty's canonical/echo modes.
        args.push(format!(
            "{}; st=$?; echo \"EXIT=$st TTY=$(stty -a | tr ' ;' '\\n\\n' | grep -xE -- '-?(icanon|echo)' | tr '\\n' ,)\"",
            quoted.join(" ")
        ));
        let status = Command::new("tmux")
            .args(&args)
            .env_remove("TMUX")
            .status()
            .expect("tmux must be installed (see .ci/run)");
        assert!(status.success(), "tmux new-session failed");
        Tmux {
            socket,
            _conf: conf,
        }
    }

    /// The dashboard with `config`, in `dir`, at `width`×`height`.
    fn dashboard(width: u16, height: u16, dir: &Path, config: &Path, env: &[(&str, &str)]) -> Tmux {
        Tmux::start(
            width,
            height,
            dir,
            env,
            &[bin(), "--config", config.to_str().unwrap()],
        )
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", "0"])
    }

    /// The screen and the scrollback above it, wrapped lines joined.
    fn screen_and_history(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-J", "-S", "-", "-t", "0"])
    }

    fn display(&self, format: &str) -> String {
        self.tmux(&["display-message", "-p", "-t", "0", format])
            .trim()
            .to_string()
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "0"];
        args.extend(keys);
        self.tmux(&args);
    }

    /// Waits until `cond` holds for the screen; panics with the screen at the deadline.
    fn wait_for(&self, what: &str, cond: impl Fn(&str) -> bool) -> String {
        self.wait_on(what, Self::screen, cond)
    }

    fn wait_on(
        &self,
        what: &str,
        capture: fn(&Self) -> String,
        cond: impl Fn(&str) -> bool,
    ) -> String {
        let start = Instant::now();
        loop {
            let screen = capture(self);
            if cond(&screen) {
                return screen;
            }
            if start.elapsed() > DEADLINE {
                panic!("timed out waiting for {what}; screen:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the command to end; returns its exit status (from the `EXIT=` line).
    fn wait_exit(&self) -> i32 {
        let screen = self.wait_on("the command to exit", Self::screen_and_history, |s| {
            s.contains("EXIT=")
        });
        screen
            .split("EXIT=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no exit status on screen:\n{screen}"))
    }

    /// The pid of the command (the child of the `sh` that runs it).
    fn command_pid(&self) -> String {
        let shell = self.display("#{pane_pid}");
        let out = Command::new("ps")
            .args(["-o", "pid=", "--ppid", &shell])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn alternate_screen(&self) -> bool {
        self.display("#{alternate_on}") == "1"
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.tmux(&["kill-server"]);
    }
}

/// A temporary folder with a config.toml that keeps data in it, plus `extra` TOML.
fn workdir_with(extra: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, format!("data_dir = \"data\"\n{extra}")).unwrap();
    (dir, config)
}

fn workdir() -> (tempfile::TempDir, PathBuf) {
    workdir_with("")
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_iotaa")
}

const PANES: [&str; 4] = ["1 Stack", "2 Throughput", "3 Scores", "4 Query"];

#[test]
fn starts_shows_panes_and_help_and_quits_cleanly() {
    let (dir, config) = workdir();
    let t = Tmux::dashboard(120, 40, dir.path(), &config, &[]);
    let screen = t.wait_for("the four panes", |s| PANES.iter().all(|p| s.contains(p)));
    assert!(screen.contains("q quit"), "status line: {screen}");
    assert!(t.alternate_screen());

    t.keys(&["?"]);
    let help = t.wait_for("the help overlay", |s| s.contains("Help · ? or Esc closes"));
    assert!(help.contains("Quit, flushing what is buffered"));
    assert!(help.contains("ctrl-r, f5"));
    t.keys(&["Escape"]);
    t.wait_for("help to close", |s| !s.contains("Help · ?"));

    t.keys(&["Tab"]);
    t.wait_for("focus on Throughput", |s| s.contains("┏ 2 Throughput"));
    t.keys(&["z"]);
    t.wait_for("Throughput zoomed", |s| {
        !s.contains("┌ 1 Stack") && s.contains(" zoom\n")
    });

    t.keys(&["q"]);
    assert_eq!(t.wait_exit(), 0);
    assert!(
        !t.alternate_screen(),
        "terminal left on the alternate screen"
    );
    let log = std::fs::read_to_string(dir.path().join("data/logs/iotaa.log")).unwrap();
    assert!(log.contains("dashboard closed"), "{log}");
}

/// With nothing happening the loop draws nothing: with the producer paused, once start-up
/// has settled, no frame is drawn for a second and more (one tick included). The log's
/// per-frame trace lines say when the loop really drew.
#[test]
fn idle_dashboard_does_not_redraw() {
    let (dir, config) = workdir_with("[producer]\nautostart = false\n");
    let t = Tmux::dashboard(
        100,
        30,
        dir.path(),
        &config,
        &[("RUST_LOG", "iot_anomaly_analytics::tui=trace")],
    );
    t.wait_for("the paused producer", |s| s.contains("paused"));
    // Measuring an absence takes time: idle across at least one 1 s tick.
    std::thread::sleep(Duration::from_millis(1500));
    t.keys(&["q"]);
    assert_eq!(t.wait_exit(), 0);
    let log = std::fs::read_to_string(dir.path().join("data/logs/iotaa.log")).unwrap();
    let time = |line: &str| {
        chrono::DateTime::parse_from_rfc3339(line.split_whitespace().next().unwrap_or("")).ok()
    };
    let quit = log
        .lines()
        .find(|l| l.contains("key") && l.contains("Quit"))
        .and_then(time)
        .unwrap_or_else(|| panic!("no quit key in the log:\n{log}"));
    let frames: Vec<_> = log
        .lines()
        .filter(|l| l.contains("frame drawn"))
        .filter_map(time)
        .collect();
    assert!(!frames.is_empty(), "no frame trace in the log:\n{log}");
    let recent = frames
        .iter()
        .filter(|t| quit.signed_duration_since(**t) < chrono::Duration::milliseconds(1200))
        .count();
    assert_eq!(recent, 0, "frames drawn while idle:\n{log}");
}

#[test]
fn small_sizes_and_resizes() {
    let (dir, config) = workdir();
    let t = Tmux::dashboard(40, 12, dir.path(), &config, &[]);
    let s = t.wait_for("the compact layout", |s| s.contains("1 Stack"));
    assert!(s.contains("q quit"), "{s}");
    t.tmux(&["resize-window", "-t", "0", "-x", "30", "-y", "10"]);
    t.wait_for("the too-small message", |s| {
        s.contains("Terminal too small: 30×10")
    });
    t.tmux(&["resize-window", "-t", "0", "-x", "120", "-y", "40"]);
    t.wait_for("all four panes again", |s| {
        PANES.iter().all(|p| s.contains(p))
    });
    t.keys(&["q"]);
    assert_eq!(t.wait_exit(), 0);
    assert!(!t.alternate_screen());
}

/// Bad terminal input through a real terminal: 60 resizes between 1×1 and 400×120 with no
/// pause between them, then a 1 MB bracketed paste into the SQL editor. The dashboard keeps
/// drawing at the final size, shows the end of the paste, and quits cleanly.
#[test]
fn rapid_resizes_and_a_1_mb_paste() {
    let (dir, config) = workdir();
    let t = Tmux::dashboard(100, 30, dir.path(), &config, &[]);
    t.wait_for("all four panes", |s| PANES.iter().all(|p| s.contains(p)));
    let sizes = [
        (1, 1),
        (400, 120),
        (2, 50),
        (300, 3),
        (40, 12),
        (39, 11),
        (80, 24),
    ];
    for i in 0..60 {
        let (w, h) = sizes[i % sizes.len()];
        t.tmux(&[
            "resize-window",
            "-t",
            "0",
            "-x",
            &w.to_string(),
            "-y",
            &h.to_string(),
        ]);
    }
    t.tmux(&["resize-window", "-t", "0", "-x", "110", "-y", "32"]);
    t.wait_for("all four panes at 110×32", |s| {
        PANES.iter().all(|p| s.contains(p)) && s.lines().any(|l| l.chars().count() == 110)
    });

    // 1 MB of SQL comments and a last line to find, pasted with bracketed paste (-p).
    let mut paste = "-- a filler line for the paste test, about fifty bytes\n".repeat(20_000);
    paste.push_str("SELECT 42 AS end_of_paste");
    let file = dir.path().join("paste.sql");
    std::fs::write(&file, &paste).unwrap();
    assert!(std::fs::metadata(&file).unwrap().len() >= 1_000_000);
    t.keys(&["4", "Enter"]);
    t.wait_for("the editor", |s| s.contains("4 Query · editing"));
    t.tmux(&["load-buffer", "-b", "big", file.to_str().unwrap()]);
    t.tmux(&["paste-buffer", "-p", "-b", "big", "-t", "0"]);
    t.wait_for("the end of the paste in the editor", |s| {
        s.contains("SELECT 42 AS end_of_paste")
    });
    t.keys(&["Escape"]);
    t.keys(&["q"]);
    assert_eq!(t.wait_exit(), 0);
    assert!(!t.alternate_screen());
}

#[test]
fn sigterm_quits_cleanly() {
    let (dir, config) = workdir();
    let t = Tmux::dashboard(100, 30, dir.path(), &config, &[]);
    t.wait_for("the four panes", |s| PANES.iter().all(|p| s.contains(p)));
    let pid = t.command_pid();
    let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
    assert_eq!(t.wait_exit(), 0);
    assert!(!t.alternate_screen());
}

#[test]
fn a_panic_restores_the_terminal() {
    let (dir, config) = workdir();
    let t = Tmux::dashboard(
        100,
        40,
        dir.path(),
        &config,
        &[("IOTAA_TEST_PANIC", "1"), ("RUST_BACKTRACE", "0")],
    );
    assert_eq!(t.wait_exit(), 101, "a panic exits with 101");
    let screen = t.screen_and_history();
    assert!(
        !t.alternate_screen(),
        "terminal left on the alternate screen"
    );
    assert!(screen.contains("panicking on purpose"), "{screen}");
    // Raw mode is undone: canonical input and echo are back (stty says `-icanon` if not).
    assert!(screen.contains("TTY=icanon,echo,"), "{screen}");
}

/// The product's main job: the pipeline runs, scores stream in, and `a` raises an alert that
/// shows in the Scores pane.
#[test]
fn pressing_a_raises_an_alert_in_the_scores_pane() {
    // 20 readings/s per device: the forest is warm in well under a second.
    let (dir, config) = workdir_with("[producer]\nrate = 20\n");
    let t = Tmux::dashboard(120, 40, dir.path(), &config, &[]);
    t.wait_for("warm scores", |s| {
        s.contains("latest ") && s.contains("rec/s")
    });
    t.keys(&["a"]);
    let screen = t.wait_for("the alert", |s| s.contains("Anomaly Detected!"));
    assert!(
        screen.contains("no alerts yet") || screen.contains("score"),
        "{screen}"
    );
    t.wait_for("the alert row", |s| {
        s.contains("sensorReading HIGH") || s.contains("sensorReading LOW")
    });
    t.keys(&["q"]);
    assert_eq!(t.wait_exit(), 0);
    let log = std::fs::read_to_string(dir.path().join("data/alerts.log")).unwrap();
    assert_eq!(log.lines().count(), 1, "{log}");
}

/// `iotaa spike --device DEVICE --value VALUE` from another process, as an operator (or a
/// real device) would, while the dashboard runs.
fn spike(dir: &Path, config: &Path, device: &str, value: &str) {
    let out = Command::new(bin())
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .args([
            "--config",
            config.to_str().unwrap(),
            "spike",
            "--device",
            device,
        ])
        .args(["--value", value])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether a screen has an alert row of `device` with `value` (the history's table).
fn alert_row(screen: &str, device: &str, value: &str) -> bool {
    screen
        .lines()
        .any(|l| l.contains(&format!(" {device}   {value} ")) && l.contains("sensorReading"))
}

/// Two devices spike; the zoomed Scores pane lists both alerts, `d` shows each device on its
/// own (title, chart, its alert only), and a restart reads the history back from alerts.log.
#[test]
fn two_spiked_devices_are_listed_and_each_has_its_own_view() {
    let (dir, config) = workdir_with("[producer]\nrate = 20\n");
    let t = Tmux::dashboard(200, 60, dir.path(), &config, &[]);
    t.wait_for("warm scores", |s| {
        s.contains("latest ") && s.contains("rec/s")
    });
    t.keys(&["3", "z"]);
    t.wait_for("the zoomed Scores pane", |s| {
        s.contains("3 Scores · all devices")
    });
    // One at a time, on either side of the normal range: each is an anomaly of its own.
    spike(dir.path(), &config, "bbbb", "450");
    t.wait_for("bbbb's alert", |s| alert_row(s, "bbbb", "450"));
    spike(dir.path(), &config, "dddd", "-5000");
    let screen = t.wait_for("both alerts", |s| {
        alert_row(s, "dddd", "-5000") && s.contains("alert history  1–2 of 2")
    });
    assert!(alert_row(&screen, "bbbb", "450"), "{screen}");
    assert!(
        screen.contains("p50 ") && screen.contains("above 4"),
        "{screen}"
    );

    // all → aaaa → bbbb: its title, its alert, not dddd's.
    t.keys(&["d", "d"]);
    let screen = t.wait_for("bbbb's view", |s| {
        s.contains("3 Scores · device bbbb (2/5)") && s.contains("alert history of bbbb  1–1 of 1")
    });
    assert!(alert_row(&screen, "bbbb", "450"), "{screen}");
    assert!(!alert_row(&screen, "dddd", "-5000"), "{screen}");
    // → cccc → dddd.
    t.keys(&["d", "d"]);
    let screen = t.wait_for("dddd's view", |s| {
        s.contains("3 Scores · device dddd (4/5)") && s.contains("alert history of dddd  1–1 of 1")
    });
    assert!(alert_row(&screen, "dddd", "-5000"), "{screen}");
    assert!(!alert_row(&screen, "bbbb", "450"), "{screen}");
    t.keys(&["q"]);
    assert_eq!(t.wait_exit(), 0);
    drop(t);
    let log = std::fs::read_to_string(dir.path().join("data/alerts.log")).unwrap();
    assert_eq!(log.lines().count(), 2, "{log}");

    // A restart keeps the history: both alerts are listed again, read from alerts.log.
    let t = Tmux::dashboard(200, 60, dir.path(), &config, &[]);
    t.wait_for("the four panes", |s| PANES.iter().all(|p| s.contains(p)));
    t.keys(&["3", "z"]);
    t.wait_for("the history, zoomed", |s| {
        s.contains("alert history  1–2 of 2")
            && alert_row(s, "bbbb", "450")
            && alert_row(s, "dddd", "-5000")
    });
    t.keys(&["q"]);
    assert_eq!(t.wait_exit(), 0);
}

/// Type a query in the Query pane, run it on the embedded engine, see rows.
#[test]
fn a_query_typed_in_the_query_pane_returns_rows() {
    let (dir, config) =
        workdir_with("[producer]\nrate = 20\n[delivery]\nbuffer_interval_secs = 1\n");
    let t = Tmux::dashboard(120, 40, dir.path(), &config, &[]);
    t.wait_for("an object in the lake", |s| {
        s.contains("delivered ") && !s.contains("delivered 0 objects")
    });
    // Zoomed, so the summary line is not cut at the pane's width.
    t.keys(&["4", "z", "Enter"]);
    t.wait_for("the editor", |s| s.contains("4 Query · editing"));
    // Clear the example SQL, then type ours.
    t.tmux(&["send-keys", "-t", "0", "-N", "300", "Delete"]);
    t.keys(&[
        "-l",
        "SELECT deviceid, count(*) AS n FROM analyticsdemo.devicedata GROUP BY deviceid ORDER BY deviceid",
    ]);
    t.keys(&["F5"]);
    let screen = t.wait_for("rows", |s| s.contains("Athena would charge"));
    for device in ["aaaa", "bbbb", "cccc", "dddd", "eeee"] {
        assert!(screen.contains(device), "{device} missing:\n{screen}");
    }
    assert!(
        screen.contains("varchar") && screen.contains("bigint"),
        "{screen}"
    );
    t.keys(&["q"]);
    assert_eq!(t.wait_exit(), 0);
}

/// The dashboard with `backend = "aws"` on moto: the Stack pane shows the CloudFormation stack
/// and its resources, the producer writes Kinesis, the detector scores it, `a` raises an alert
/// read back from the anomaly stream, a query in the Query pane runs on Athena, and ctrl-d
/// then `y` redeploys from the dashboard.
#[test]
fn the_dashboard_on_aws_shows_the_stack_and_raises_an_alert_through_kinesis() {
    use common::aws::{
        CREDS, create_workgroup, endpoint, iotaa, output, queue_athena_result, stack_name, text,
        workdir,
    };
    let stack = stack_name("tui");
    let dir = workdir(
        &stack,
        &format!("endpoint_url = \"{}\"\n[producer]\nrate = 20\n", endpoint()),
    );
    let d = dir.path();
    let out = iotaa(d, &CREDS, &["stack", "deploy"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let home = d.display().to_string();
    let mut env = CREDS.to_vec();
    env.push(("HOME", &home));
    env.push(("AWS_EC2_METADATA_DISABLED", "true"));
    let t = Tmux::start(150, 45, d, &env, &[bin()]);
    let screen = t.wait_for("the stack", |s| s.contains("CREATE_COMPLETE"));
    assert!(screen.contains(&format!("stack {stack}")), "{screen}");
    t.wait_for("warm scores", |s| {
        s.contains("latest ") && s.contains("rec/s")
    });
    // moto does not create the delivery stream: the Throughput pane says what Firehose said.
    t.wait_for("the Firehose status", |s| s.contains("delivery Firehose"));
    t.keys(&["a"]);
    t.wait_for("the alert", |s| s.contains("Anomaly Detected!"));
    // A query in the Query pane runs on Athena (moto answers with a queued result).
    create_workgroup(&endpoint(), &output(d, "AthenaWorkGroup"));
    queue_athena_result(&endpoint(), 3);
    t.keys(&["4", "z", "F5"]);
    let screen = t.wait_for("Athena's rows", |s| {
        s.contains("query ") && s.contains("d0002")
    });
    assert!(screen.contains("Athena cost"), "{screen}");
    assert!(!screen.contains("d0003"), "{screen}");
    t.keys(&["z", "1"]);
    // Deploy from the dashboard: asked, confirmed, followed to its end in the status line.
    t.keys(&["C-d"]);
    t.wait_for("the question", |s| {
        s.contains(&format!("Deploy stack {stack}"))
    });
    t.keys(&["y"]);
    // moto updates the stack even with nothing changed; AWS would say it is up to date.
    t.wait_for("the deploy's result", |s| {
        s.contains(&format!("stack {stack}: UPDATE_COMPLETE")) || s.contains("already up to date")
    });
    t.keys(&["q"]);
    assert_eq!(t.wait_exit(), 0);
    let log = std::fs::read_to_string(d.join("data/aws").join(&stack).join("alerts.log")).unwrap();
    assert_eq!(log.lines().count(), 1, "{log}");
}

/// `detector = "lambda"` with the function deployed (a stand-in zip: moto stores functions but
/// never runs them): the dashboard does not score, and its Stack pane says where the detector
/// runs and shows the function's row.
#[test]
fn the_dashboard_on_aws_says_the_detector_runs_in_lambda() {
    use common::aws::{CREDS, endpoint, iotaa, stack_name, text, workdir};
    let stack = stack_name("tuifn");
    let dir = workdir(
        &stack,
        &format!("endpoint_url = \"{}\"\ndetector = \"lambda\"\n", endpoint()),
    );
    let d = dir.path();
    let zip = d.join("bootstrap.zip");
    let made = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, zipfile\nwith zipfile.ZipFile(sys.argv[1], 'w') as z: z.writestr('bootstrap', b'stand-in')",
        ])
        .arg(&zip)
        .status()
        .unwrap();
    assert!(made.success());
    let out = iotaa(
        d,
        &CREDS,
        &["stack", "deploy", "--artifact", zip.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let home = d.display().to_string();
    let mut env = CREDS.to_vec();
    env.push(("HOME", &home));
    env.push(("AWS_EC2_METADATA_DISABLED", "true"));
    let t = Tmux::start(200, 50, d, &env, &[bin()]);
    // The detail column is cut on the left in a narrow pane; zoomed, the row is whole.
    t.keys(&["1", "z"]);
    t.wait_for("the detector's place", |s| {
        s.contains(&format!(
            "in the Lambda function {stack}-detector (this process does not score)"
        ))
    });
    t.wait_for("the function's row", |s| {
        s.contains("-detector, last result:")
    });
    t.keys(&["q"]);
    assert_eq!(t.wait_exit(), 0);
    let out = iotaa(d, &CREDS, &["stack", "delete", "--yes", "--delete-lake"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}
