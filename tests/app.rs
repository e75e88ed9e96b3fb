//! The real `App`, driven headless: key events and actions in, view structs out.

mod common;

use std::path::{Path, PathBuf};

use common::screen;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use iot_anomaly_analytics::action::{Action, BINDABLE};
use iot_anomaly_analytics::app::App;
use iot_anomaly_analytics::config;
use ui::PaneId;

fn app(toml: &str) -> App {
    let loaded = config::parse(toml, Path::new("/cfg/config.toml")).expect("config");
    App::new(&loaded, PathBuf::from("/cfg/data/logs/iotaa.log"))
}

fn key(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

/// Feeds key presses the way the loop does; returns how many changed the view.
fn press(app: &mut App, keys: &[KeyEvent]) -> usize {
    let mut changed = 0;
    for k in keys {
        if let Some(action) = app.action_for_key(k)
            && app.update(action)
        {
            changed += 1;
        }
    }
    changed
}

#[test]
fn tab_and_numbers_move_focus() {
    let mut a = app("");
    assert_eq!(a.focus(), PaneId::Stack);
    press(&mut a, &[KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE)]);
    assert_eq!(a.focus(), PaneId::Throughput);
    press(
        &mut a,
        &[KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT)],
    );
    press(
        &mut a,
        &[KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT)],
    );
    assert_eq!(a.focus(), PaneId::Query);
    press(&mut a, &[key('3')]);
    assert_eq!(a.focus(), PaneId::Scores);
    assert!(
        screen(&a, 120, 40).contains("┏ 3 Scores"),
        "focused border is thick"
    );
}

#[test]
fn zoom_shows_one_pane() {
    let mut a = app("");
    press(&mut a, &[key('2'), key('z')]);
    let s = screen(&a, 120, 40);
    assert!(s.contains("2 Throughput"));
    assert!(!s.contains("┌ 1 Stack") && !s.contains("┌ 3 Scores"), "{s}");
    press(&mut a, &[key('z')]);
    assert!(screen(&a, 120, 40).contains("┌ 1 Stack"));
}

#[test]
fn help_lists_every_bound_action_and_swallows_other_keys() {
    let mut a = app("");
    press(&mut a, &[key('?')]);
    let help = a.view().help.expect("help open");
    let names: Vec<&str> = help
        .sections
        .iter()
        .flat_map(|s| &s.rows)
        .map(|r| r.action.as_str())
        .collect();
    for (action, _, _) in BINDABLE {
        assert!(names.contains(&action.name().unwrap()), "{action:?}");
    }
    // Keys behind the overlay do nothing; Esc closes it.
    assert_eq!(press(&mut a, &[key('3')]), 0);
    assert_eq!(a.focus(), PaneId::Stack);
    press(&mut a, &[KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE)]);
    assert!(a.view().help.is_none());
}

/// The help overlay and the status line show the user's keys, not the defaults.
#[test]
fn rebound_keys_show_in_help_and_status() {
    let mut a = app("[keys]\nquit = \"x\"\nhelp = \"h\"\n");
    let status = a.view().status.hints;
    assert_eq!(status[0], ("x".to_string(), "quit".to_string()));
    assert_eq!(status[1], ("h".to_string(), "help".to_string()));
    assert_eq!(press(&mut a, &[key('q')]), 0, "q is no longer bound");
    press(&mut a, &[key('h')]);
    let help = a.view().help.unwrap();
    let quit = help
        .sections
        .iter()
        .flat_map(|s| &s.rows)
        .find(|r| r.action == "quit")
        .unwrap();
    assert_eq!(quit.keys, "x");
    press(&mut a, &[key('x')]);
    assert!(a.should_quit());
}

#[test]
fn ctrl_c_quits_outside_the_query_pane() {
    let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
    let mut a = app("");
    press(&mut a, &[key('4')]);
    assert_eq!(a.action_for_key(&ctrl_c), Some(Action::CancelQuery));
    press(&mut a, &[key('1')]);
    assert_eq!(a.action_for_key(&ctrl_c), Some(Action::Quit));
}

/// Nothing in the shell changes with time: a tick must not cause a redraw.
#[test]
fn ticks_and_repeated_state_do_not_redraw() {
    let mut a = app("");
    assert!(!a.update(Action::Tick));
    assert!(a.update(Action::Resize(80, 24)));
    assert!(!a.update(Action::Resize(80, 24)));
    assert!(!a.update(Action::FocusStack), "already focused");
}

/// Keys that drive the producer say so when none is running, instead of doing nothing.
#[test]
fn producer_keys_without_a_producer_say_so() {
    let mut a = app("");
    press(&mut a, &[key('a')]);
    let notice = a.view().status.notice.expect("a notice");
    assert_eq!(notice.text, "No producer is running in this process.");
    assert!(screen(&a, 120, 40).contains("No producer is running"));
    press(
        &mut a,
        &[key('4'), KeyEvent::new(KeyCode::F(5), KeyModifiers::NONE)],
    );
    assert_eq!(
        a.view().status.notice.unwrap().text,
        "run_query: the query engine is not running"
    );
}

#[test]
fn stack_pane_shows_config_source_and_data_dir() {
    let toml = "data_dir = \"/srv/iotaa\"\n";
    let mut a = app(toml);
    // The stack watcher's first description of the local stack (nothing exists at /srv).
    let loaded = config::parse(toml, Path::new("/cfg/config.toml")).unwrap();
    let stack = iot_anomaly_analytics::backend::local_stack::LocalStack::new(&loaded);
    a.update(Action::Stack(
        iot_anomaly_analytics::stack::Stack::snapshot(&stack),
    ));
    let stack = a.view().stack;
    let rows: Vec<(&str, &str)> = stack
        .resources
        .iter()
        .map(|r| (r.name.as_str(), r.detail.as_str()))
        .collect();
    assert_eq!(rows[0], ("config", "/cfg/config.toml"));
    assert_eq!(rows[1], ("data dir", "missing · /srv/iotaa"));
    assert!(
        rows.contains(&("log", "missing · /srv/iotaa/logs/iotaa.log")),
        "{rows:?}"
    );
    assert!(
        stack.backend.starts_with("local (/srv/iotaa)"),
        "{}",
        stack.backend
    );
}

#[test]
fn query_pane_uses_the_configured_table() {
    let a = app("[query]\ndatabase = \"lab\"\ntable = \"pumps\"\n");
    assert!(a.query_sql().contains("FROM lab.pumps"));
}

mod pipeline_events {
    use super::*;
    use iot_anomaly_analytics::pipeline::{
        DetectorProgress, Event, ProducerCounts, Stage, StageState,
    };
    use iot_anomaly_analytics::records::{Alert, Reading, ScoredReading};

    fn counts(acked: u64, paused: bool) -> Event {
        Event::Producer(ProducerCounts {
            sent: acked,
            acknowledged: acked,
            bytes: acked * 80,
            rate_per_device: 1.0,
            paused,
            ..ProducerCounts::default()
        })
    }

    fn scored(value: i64, score: f64) -> ScoredReading {
        ScoredReading {
            reading: Reading {
                device_id: "cccc".into(),
                sensor_reading: value,
                reading_timestamp: "2026-11-30 05:00:01.000".into(),
            },
            anomaly_score: score,
            explanation: None,
        }
    }

    #[test]
    fn ticks_bin_the_producer_rate() {
        let mut a = app("");
        assert!(
            a.view().throughput.stats.is_none(),
            "waiting before any report"
        );
        a.update(Action::Pipeline(counts(0, false)));
        a.update(Action::Pipeline(counts(5, false)));
        assert!(a.update(Action::Tick));
        a.update(Action::Pipeline(counts(15, false)));
        assert!(a.update(Action::Tick));
        let t = a.view().throughput.stats.unwrap();
        assert_eq!(t.history, [5, 10]);
        assert_eq!(t.records_per_sec, 10.0);
        assert_eq!(t.bytes_per_sec, "800 B");
        assert!(screen(&a, 120, 40).contains("sent 10 rec/s"));
    }

    /// Paused with nothing sent: ticks change nothing, so nothing is redrawn.
    #[test]
    fn a_paused_producer_does_not_redraw() {
        let mut a = app("");
        a.update(Action::Pipeline(counts(7, true)));
        a.update(Action::Tick);
        assert!(!a.update(Action::Tick));
        assert!(!a.update(Action::Tick));
    }

    #[test]
    fn scores_warm_up_and_alerts_show_in_the_scores_pane() {
        let mut a = app("");
        a.update(Action::Pipeline(Event::Detector(DetectorProgress {
            scored: 20,
            warming_up: Some((20, 64)),
            lag_records: 0,
            lag_ms: None,
        })));
        assert!(screen(&a, 120, 40).contains("warming up: 20/64"));
        a.update(Action::Pipeline(Event::Detector(DetectorProgress {
            scored: 100,
            warming_up: None,
            lag_records: 300,
            lag_ms: None,
        })));
        a.update(Action::Pipeline(Event::Scores(vec![
            scored(1, 0.8),
            scored(455, 7.25),
        ])));
        let alert = Alert::new(scored(455, 7.25), 4.0, chrono::Utc::now());
        a.update(Action::Pipeline(Event::Alert(Box::new(alert))));
        let s = a.view().scores.stats.unwrap();
        assert_eq!(s.scores, [0.8, 7.25]);
        assert_eq!(s.latest, Some(7.25));
        assert_eq!(s.alerts.len(), 1);
        assert_eq!(
            (s.alerts[0].device.as_str(), s.alerts[0].value),
            ("cccc", 455)
        );
        let screen = screen(&a, 120, 40);
        assert!(screen.contains("detector 300 behind"), "{screen}");
        assert!(
            screen.contains("Anomaly Detected! cccc = 455, score 7.25"),
            "{screen}"
        );
    }

    /// On Kinesis the detector reports how far behind it is in time (MillisBehindLatest), not
    /// in records: the Scores pane shows that lag as it shows the local record lag.
    #[test]
    fn the_scores_pane_shows_the_kinesis_lag_in_seconds() {
        let mut a = app("");
        a.update(Action::Pipeline(Event::Detector(DetectorProgress {
            scored: 1_200,
            warming_up: None,
            lag_records: 0,
            lag_ms: Some(2_340),
        })));
        let s = a.view().scores.stats.unwrap();
        assert_eq!((s.lag_secs, s.lag_records), (Some(2.34), 0));
        let shown = screen(&a, 120, 40);
        assert!(shown.contains("detector 2.3 s behind"), "{shown}");

        // Caught up: no lag shown.
        a.update(Action::Pipeline(Event::Detector(DetectorProgress {
            scored: 1_300,
            warming_up: None,
            lag_records: 0,
            lag_ms: Some(0),
        })));
        assert!(!screen(&a, 120, 40).contains("behind"));
    }

    #[test]
    fn stages_show_in_the_stack_pane() {
        let mut a = app("");
        a.update(Action::Pipeline(Event::Stage {
            stage: Stage::Delivery,
            state: StageState::Failed,
            detail: "write /x: disk full".into(),
        }));
        let rows = a.view().stack.resources;
        let row = rows.iter().find(|r| r.name == "delivery").unwrap();
        assert_eq!(row.health, ui::Health::Failed);
        assert_eq!(
            a.view().status.notice.unwrap().text,
            "delivery failed: write /x: disk full"
        );
    }

    /// Disk full: the stage row turns red with the error and the status line says so; when it
    /// resumes, the row is green again and the status line says that too.
    #[test]
    fn a_blocked_stage_shows_its_error_then_its_recovery() {
        let mut a = app("");
        a.update(Action::Pipeline(Event::Stage {
            stage: Stage::Producer,
            state: StageState::Blocked,
            detail: "No space left on device (os error 28); holding what it has and retrying"
                .into(),
        }));
        let rows = a.view().stack.resources;
        let row = rows.iter().find(|r| r.name == "producer").unwrap();
        assert_eq!(row.health, ui::Health::Failed);
        assert!(row.detail.starts_with("blocked: No space left"), "{row:?}");
        let notice = a.view().status.notice.unwrap();
        assert!(
            notice.text.starts_with("producer blocked: No space left"),
            "{notice:?}"
        );
        assert!(screen(&a, 120, 40).contains("producer blocked: No space left"));

        a.update(Action::Pipeline(Event::Stage {
            stage: Stage::Producer,
            state: StageState::Running,
            detail: "5 readings/s (resumed after 3 s blocked)".into(),
        }));
        let rows = a.view().stack.resources;
        let row = rows.iter().find(|r| r.name == "producer").unwrap();
        assert_eq!(row.health, ui::Health::Ok);
        assert_eq!(
            a.view().status.notice.unwrap().text,
            "producer resumed: 5 readings/s (resumed after 3 s blocked)"
        );
    }

    /// History and score buffers are bounded, however long the dashboard runs.
    #[test]
    fn buffers_are_bounded() {
        let mut a = app("");
        for i in 0..(iot_anomaly_analytics::app::HISTORY_BINS as u64 + 50) {
            a.update(Action::Pipeline(counts(i * 5, false)));
            a.update(Action::Tick);
        }
        let batch = vec![scored(1, 0.9); iot_anomaly_analytics::app::SCORES_KEPT + 10];
        a.update(Action::Pipeline(Event::Scores(batch)));
        let v = a.view();
        assert_eq!(
            v.throughput.stats.unwrap().history.len(),
            iot_anomaly_analytics::app::HISTORY_BINS
        );
        assert_eq!(
            v.scores.stats.unwrap().scores.len(),
            iot_anomaly_analytics::app::SCORES_KEPT
        );
    }

    /// The grid, then the Throughput and the Scores pane zoomed, at 80×24.
    fn screens_80x24(a: &mut App) -> Vec<String> {
        let mut out = vec![screen(a, 80, 24)];
        a.update(Action::FocusThroughput);
        a.update(Action::Zoom);
        out.push(screen(a, 80, 24));
        a.update(Action::FocusScores);
        out.push(screen(a, 80, 24));
        a.update(Action::Zoom);
        a.update(Action::FocusStack);
        out
    }

    /// Once the terminal's width is known, a frame carries only the newest points its charts
    /// can show (not the whole history), and draws exactly what the whole history drew.
    #[test]
    fn frames_carry_only_what_the_charts_show() {
        let mut a = app("");
        let mut acked = 0;
        for i in 0..(iot_anomaly_analytics::app::HISTORY_BINS as u64 + 50) {
            acked += (i * 7) % 13;
            a.update(Action::Pipeline(counts(acked, false)));
            a.update(Action::Tick);
        }
        // A spike long before what the chart shows must not scale it.
        let mut batch: Vec<ScoredReading> = (0..1_000)
            .map(|i| scored(1, 0.5 + ((i * 5) % 11) as f64 / 4.0))
            .collect();
        batch[10] = scored(9, 50.0);
        a.update(Action::Pipeline(Event::Scores(batch)));
        let whole = a.view();
        let before = screens_80x24(&mut a);

        assert!(a.update(Action::Resize(80, 24)));
        let v = a.view();
        let history = v.throughput.stats.unwrap().history;
        let whole_history = whole.throughput.stats.unwrap().history;
        assert_eq!(history.len(), 80);
        assert_eq!(history[..], whole_history[whole_history.len() - 80..]);
        let scores = v.scores.stats.unwrap();
        let whole_scores = whole.scores.stats.unwrap().scores;
        assert_eq!(scores.scores.len(), 160, "two points per column");
        assert_eq!(scores.scores[..], whole_scores[whole_scores.len() - 160..]);
        assert_eq!(scores.latest, whole_scores.last().copied());
        assert_eq!(screens_80x24(&mut a), before);
    }
}

/// The Scores pane as an operator uses it: one device at a time, the alert history (with
/// what alerts.log held at start), a row per device, the window's percentiles, time axes.
mod scores_pane {
    use super::*;
    use iot_anomaly_analytics::pipeline::{Event, ProducerCounts};
    use iot_anomaly_analytics::records::{Alert, Reading, ScoredReading};

    fn scored(device: &str, second: u32, value: i64, score: f64) -> ScoredReading {
        ScoredReading {
            reading: Reading {
                device_id: device.into(),
                sensor_reading: value,
                reading_timestamp: format!("2026-11-30 05:00:{second:02}.000"),
            },
            anomaly_score: score,
            explanation: None,
        }
    }

    fn alert(device: &str, value: i64, score: f64) -> Alert {
        Alert::new(
            scored(device, 30, value, score),
            4.0,
            chrono::DateTime::from_timestamp(1_796_014_830, 0).unwrap(),
        )
    }

    fn down() -> KeyEvent {
        KeyEvent::new(KeyCode::Down, KeyModifiers::NONE)
    }

    /// Five devices for 20 s, `bbbb` and `dddd` spiking at second 10, both alerted.
    fn fleet() -> App {
        let mut a = app("");
        a.update(Action::Resize(120, 40));
        let mut batch = Vec::new();
        for second in 0..20 {
            for d in ["aaaa", "bbbb", "cccc", "dddd", "eeee"] {
                let spike = second == 10 && (d == "bbbb" || d == "dddd");
                batch.push(if spike {
                    scored(d, second, 450, if d == "bbbb" { 6.5 } else { 5.5 })
                } else {
                    scored(d, second, 1, 0.5 + f64::from(second % 3) / 10.0)
                });
            }
        }
        a.update(Action::Pipeline(Event::Scores(batch)));
        a.update(Action::Pipeline(Event::Alert(Box::new(alert(
            "bbbb", 450, 6.5,
        )))));
        a.update(Action::Pipeline(Event::Alert(Box::new(alert(
            "dddd", 450, 5.5,
        )))));
        a
    }

    #[test]
    fn d_cycles_the_chart_through_each_device_and_the_title_says_which() {
        let mut a = fleet();
        assert_eq!(
            press(&mut a, &[key('d')]),
            0,
            "d does nothing outside the pane"
        );
        press(&mut a, &[key('3')]);
        assert!(screen(&a, 120, 40).contains("3 Scores · all devices"));
        let hints = a.view().status.hints;
        assert!(hints.contains(&("d".into(), "device".into())), "{hints:?}");
        press(&mut a, &[key('d'), key('d')]);
        assert_eq!(a.scores_device(), Some("bbbb"));
        let s = a.view().scores.stats.unwrap();
        assert_eq!(s.scores.len(), 20, "only bbbb's readings");
        assert_eq!(s.alerts.len(), 1);
        assert_eq!(s.alerts[0].device, "bbbb");
        assert!(screen(&a, 120, 40).contains("3 Scores · device bbbb (2/5)"));
        press(&mut a, &[key('d'), key('d')]);
        assert_eq!(a.scores_device(), Some("dddd"));
        assert_eq!(a.view().scores.stats.unwrap().alerts[0].device, "dddd");
        // Back: shift-d; and round through all devices again.
        press(
            &mut a,
            &[KeyEvent::new(KeyCode::Char('D'), KeyModifiers::SHIFT)],
        );
        assert_eq!(a.scores_device(), Some("cccc"));
        assert!(screen(&a, 120, 40).contains("no alerts for cccc"));
        press(&mut a, &[key('d'), key('d'), key('d')]);
        assert_eq!(a.scores_device(), None);
    }

    #[test]
    fn zoomed_it_lists_the_alerts_devices_and_percentiles() {
        let mut a = fleet();
        press(&mut a, &[key('3'), key('z')]);
        let shown = screen(&a, 200, 60);
        for text in [
            "alert history  1–2 of 2",
            "last 100 readings: p50 0.60",
            "max 6.50 · 2 above 4 (2.00 %)",
            "threshold 4",
            // The chart's time axis runs over the readings' timestamps.
            "05:00:00",
            "05:00:19",
        ] {
            assert!(shown.contains(text), "{text}: {shown}");
        }
        let s = a.view().scores.stats.unwrap();
        let order: Vec<&str> = s.device_rows.iter().map(|r| r.device.as_str()).collect();
        assert_eq!(order[..2], ["bbbb", "dddd"], "highest max score first");
        let bbbb = &s.device_rows[0];
        assert_eq!((bbbb.scored, bbbb.max, bbbb.alerts), (20, 6.5, 1));
        assert!(
            a.view()
                .status
                .hints
                .contains(&("down".into(), "alerts".into())),
            "the status line says how to scroll"
        );
    }

    #[test]
    fn the_history_from_alerts_log_is_listed_after_live_alerts_and_scrolls() {
        let mut a = fleet();
        let history: Vec<Alert> = (0..30)
            .map(|i| alert(&format!("old{i:02}"), 400 + i, 5.0))
            .collect();
        assert!(a.update(Action::AlertHistory {
            alerts: history,
            skipped: 0,
        }));
        press(&mut a, &[key('3'), key('z')]);
        let s = a.view().scores.stats.unwrap();
        assert_eq!(s.alerts_total, 32);
        assert_eq!(s.alerts[0].device, "dddd", "live alerts first");
        assert_eq!(
            s.alerts[2].device, "old29",
            "then the history, newest first"
        );
        assert!(s.alerts.len() <= 40, "the view carries a screenful");
        press(&mut a, &[down(), down(), key('j')]);
        let s = a.view().scores.stats.unwrap();
        assert_eq!((s.alert_offset, s.alerts[0].device.as_str()), (3, "old28"));
        press(
            &mut a,
            &[KeyEvent::new(KeyCode::PageDown, KeyModifiers::NONE); 5],
        );
        assert_eq!(
            a.view().scores.stats.unwrap().alert_offset,
            31,
            "the oldest"
        );
        assert!(screen(&a, 80, 24).contains("old00"));
        // The scroll keys still scroll the Query pane's result there.
        press(&mut a, &[key('4'), down()]);
        assert_eq!(a.view().scores.stats.unwrap().alert_offset, 31);
    }

    #[test]
    fn unreadable_alerts_log_lines_are_counted_not_fatal() {
        let mut a = app("");
        a.update(Action::AlertHistory {
            alerts: vec![alert("aaaa", 450, 6.0)],
            skipped: 2,
        });
        let notice = a.view().status.notice.unwrap();
        assert_eq!(
            notice.text,
            "alerts.log: 2 unreadable line(s) skipped; 1 alerts read back"
        );
        let s = a
            .view()
            .scores
            .stats
            .expect("the history shows before any score");
        assert_eq!(s.alerts[0].device, "aaaa");
    }

    /// The throughput chart's time axis comes from the App's clock, set here.
    #[test]
    fn throughput_bins_carry_the_time_they_closed() {
        let mut a = app("");
        a.set_clock(|| 1_796_014_801_000); // 2026-11-30 05:00:01 UTC
        let counts = |acked| {
            Event::Producer(ProducerCounts {
                sent: acked,
                acknowledged: acked,
                ..ProducerCounts::default()
            })
        };
        a.update(Action::Pipeline(counts(0)));
        for i in 1..=3 {
            a.update(Action::Pipeline(counts(i * 5)));
            a.update(Action::Tick);
        }
        let t = a.view().throughput.stats.unwrap();
        assert_eq!(t.history_times_ms, [1_796_014_801_000; 3]);
        press(&mut a, &[key('2'), key('z')]);
        assert!(screen(&a, 120, 40).contains("05:00:01"));
    }

    /// Per-device state is bounded however many devices report.
    #[test]
    fn devices_are_bounded() {
        let mut a = app("");
        let batch: Vec<ScoredReading> = (0..iot_anomaly_analytics::app::DEVICES_KEPT * 3)
            .map(|i| scored(&format!("dev{i:05}"), 1, 1, 0.5))
            .collect();
        a.update(Action::Pipeline(Event::Scores(batch)));
        let s = a.view().scores.stats.unwrap();
        assert_eq!(s.devices.len(), iot_anomaly_analytics::app::DEVICES_KEPT);
        assert_eq!(
            s.device_rows.len(),
            iot_anomaly_analytics::app::DEVICES_KEPT
        );
    }
}

mod query_pane {
    use super::*;
    use iot_anomaly_analytics::app::query_pane::QueryRunner;
    use iot_anomaly_analytics::query::{Column, QueryOutcome, QueryOutput};
    use std::sync::{Arc, Mutex};

    /// A fake runner for these tests: records what it was asked; results are fed by hand.
    #[derive(Default)]
    struct FakeRunner {
        started: Mutex<Vec<(u64, String)>>,
        cancelled: Mutex<Vec<u64>>,
    }

    impl QueryRunner for FakeRunner {
        fn start(&self, id: u64, sql: String) {
            self.started.lock().unwrap().push((id, sql));
        }
        fn cancel(&self, id: u64) {
            self.cancelled.lock().unwrap().push(id);
        }
    }

    fn with_runner(toml: &str) -> (App, Arc<FakeRunner>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("queries")).unwrap();
        std::fs::write(
            dir.path().join("queries/count.sql"),
            "-- Readings per device\nSELECT deviceid, count(*) FROM analyticsdemo.devicedata GROUP BY deviceid\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("queries/devicedata.sql"),
            "-- The table\nCREATE EXTERNAL TABLE devicedata (deviceid string)\n",
        )
        .unwrap();
        let text = format!("data_dir = \"data\"\n{toml}");
        let loaded = config::parse(&text, &dir.path().join("config.toml")).unwrap();
        let mut a = App::new(&loaded, dir.path().join("data/logs/iotaa.log"));
        let runner = Arc::new(FakeRunner::default());
        a.attach_query_runner(runner.clone());
        (a, runner, dir)
    }

    /// A result of `n` rows as an engine returns it (the second row's count is NULL).
    fn table(n: usize) -> QueryOutput {
        QueryOutput {
            columns: vec![
                Column {
                    name: "deviceid".into(),
                    data_type: "varchar".into(),
                },
                Column {
                    name: "n".into(),
                    data_type: "bigint".into(),
                },
            ],
            rows: (0..n)
                .map(|i| {
                    vec![
                        Some(format!("dev{i}")),
                        if i == 1 { None } else { Some(i.to_string()) },
                    ]
                })
                .collect(),
            dropped_rows: None,
            more_rows: false,
            bytes_scanned: 1024,
            files_scanned: 1,
            malformed_lines: 0,
            skipped_objects: Vec::new(),
            elapsed: std::time::Duration::from_millis(12),
            execution_id: None,
        }
    }

    fn enter() -> KeyEvent {
        KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)
    }

    fn esc() -> KeyEvent {
        KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE)
    }

    fn f5() -> KeyEvent {
        KeyEvent::new(KeyCode::F(5), KeyModifiers::NONE)
    }

    #[test]
    fn typing_runs_and_shows_the_result() {
        let (mut a, runner, _dir) = with_runner("");
        press(&mut a, &[key('4'), enter()]);
        assert!(a.view().query.editor.editing);
        // In the editor, q and 1 are text, not quit and focus.
        press(&mut a, &[key('q'), key('1')]);
        assert!(!a.should_quit());
        assert_eq!(a.focus(), PaneId::Query);
        assert!(a.query_sql().starts_with("q1SELECT"), "{}", a.query_sql());
        press(&mut a, &[f5()]);
        let started = runner.started.lock().unwrap().clone();
        assert_eq!(started.len(), 1);
        assert_eq!(started[0].1, a.query_sql());
        assert!(matches!(a.view().query.run, ui::RunState::Running { .. }));
        assert!(
            a.update(Action::Tick),
            "a running query redraws each second"
        );
        a.update(Action::QueryFinished {
            id: started[0].0,
            outcome: QueryOutcome::Done(table(3)),
        });
        let q = a.view().query;
        assert!(matches!(q.run, ui::RunState::Done { .. }));
        let r = q.result.unwrap();
        assert_eq!(r.total_rows, 3);
        assert_eq!(r.rows[1][1], None, "NULL stays NULL");
        let s = screen(&a, 120, 40);
        assert!(s.contains("dev2") && s.contains("∅"), "{s}");
    }

    #[test]
    fn ctrl_c_cancels_and_late_results_are_dropped() {
        let (mut a, runner, _dir) = with_runner("");
        press(&mut a, &[key('4'), f5()]);
        let id = runner.started.lock().unwrap()[0].0;
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        press(&mut a, &[ctrl_c]);
        assert_eq!(*runner.cancelled.lock().unwrap(), [id]);
        assert!(
            !a.should_quit(),
            "ctrl-c in the Query pane cancels, it does not quit"
        );
        assert!(
            matches!(a.view().query.run, ui::RunState::Cancelled { .. }),
            "{:?}",
            a.view().query.run
        );
        assert!(!a.update(Action::QueryFinished {
            id,
            outcome: QueryOutcome::Done(table(2)),
        }));
        assert!(a.view().query.result.is_none());
    }

    #[test]
    fn errors_show_in_the_pane_and_the_app_goes_on() {
        let (mut a, runner, _dir) = with_runner("");
        press(&mut a, &[key('4'), f5()]);
        let id = runner.started.lock().unwrap()[0].0;
        a.update(Action::QueryFinished {
            id,
            outcome: QueryOutcome::Failed("1:8: no column named deviceidd".into()),
        });
        assert!(screen(&a, 120, 40).contains("1:8: no column named deviceidd"));
        press(&mut a, &[key('1')]);
        assert_eq!(a.focus(), PaneId::Stack);
    }

    #[test]
    fn examples_history_and_csv_export() {
        let (mut a, runner, dir) = with_runner("");
        press(&mut a, &[key('4'), key('e')]);
        let picker = a.view().query.picker.expect("examples");
        assert_eq!(
            picker.items,
            [("count.sql".to_string(), "Readings per device".to_string())],
            "the DDL is not offered as an example"
        );
        press(&mut a, &[enter()]);
        assert!(a.query_sql().contains("count(*)"));
        press(&mut a, &[f5()]);
        let id = runner.started.lock().unwrap()[0].0;
        a.update(Action::QueryFinished {
            id,
            outcome: QueryOutcome::Done(table(4)),
        });
        // History is persisted: a new app sees it.
        let history = std::fs::read_to_string(dir.path().join("data/query_history.jsonl")).unwrap();
        assert_eq!(history.lines().count(), 1);
        press(&mut a, &[key('x')]);
        let notice = a.view().status.notice.unwrap().text;
        let path = notice.strip_prefix("Result exported to ").expect(&notice);
        let csv = std::fs::read_to_string(path).unwrap();
        assert_eq!(csv, "deviceid,n\ndev0,0\ndev1,\ndev2,2\ndev3,3\n");
        let (mut b, _, _) = {
            let text = "data_dir = \"data\"\n";
            let loaded = config::parse(text, &dir.path().join("config.toml")).unwrap();
            let b = App::new(&loaded, dir.path().join("data/logs/iotaa.log"));
            (b, (), ())
        };
        press(&mut b, &[key('4'), key('h')]);
        let picker = b.view().query.picker.expect("history");
        assert!(picker.items[0].0.contains("count(*)"));
        press(&mut b, &[esc()]);
        assert!(b.view().query.picker.is_none());
    }

    #[test]
    fn results_scroll_and_a_megabyte_paste_is_kept() {
        let (mut a, runner, _dir) = with_runner("");
        press(&mut a, &[key('4'), f5()]);
        let id = runner.started.lock().unwrap()[0].0;
        a.update(Action::QueryFinished {
            id,
            outcome: QueryOutcome::Done(table(1000)),
        });
        let down = KeyEvent::new(KeyCode::Down, KeyModifiers::NONE);
        let right = KeyEvent::new(KeyCode::Right, KeyModifiers::NONE);
        press(&mut a, &[down, down, right]);
        let r = a.view().query.result.unwrap();
        assert_eq!((r.row_offset, r.col_offset), (2, 1));
        assert_eq!(r.rows[0][0].as_deref(), Some("dev2"));
        assert!(
            r.rows.len() <= 300,
            "the view carries a window, not every row"
        );
        // 1 MB pasted into the editor arrives whole.
        let big = "SELECT 1;\n".repeat(100_000);
        let before = a.query_sql().len();
        a.update(Action::Paste(big.clone()));
        assert!(a.view().query.editor.editing);
        assert_eq!(
            a.query_sql().len(),
            before + big.len(),
            "every pasted byte is kept"
        );
        assert!(a.query_sql().contains(&big[..big.len() - 1]));
        screen(&a, 80, 24);
    }
}

/// Deploy and delete from the dashboard ask first: `y` runs the operation (here a fake that
/// counts calls), any other key cancels; on the local backend the keys only explain.
mod stack_ops {
    use super::*;
    use iot_anomaly_analytics::app::StackOps;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Default)]
    struct FakeStackOps {
        deploys: AtomicUsize,
        deletes: AtomicUsize,
    }

    impl StackOps for FakeStackOps {
        fn name(&self) -> String {
            "stack demo".into()
        }
        fn refused(&self) -> Option<String> {
            None
        }
        fn delete_question(&self) -> String {
            "DELETE stack demo and every resource in it?".into()
        }
        fn deploy(&self) {
            self.deploys.fetch_add(1, Ordering::SeqCst);
        }
        fn delete(&self) {
            self.deletes.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn ctrl(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
    }

    #[test]
    fn deploy_and_delete_need_a_y_and_anything_else_cancels() {
        let mut a = app("backend = \"aws\"\n[aws]\nstack_name = \"demo\"\n");
        let ops = Arc::new(FakeStackOps::default());
        a.attach_stack_ops(ops.clone());

        press(&mut a, &[ctrl('d')]);
        assert!(
            screen(&a, 160, 40).contains("Deploy stack demo"),
            "no question"
        );
        press(&mut a, &[key('y')]);
        assert_eq!(ops.deploys.load(Ordering::SeqCst), 1);
        assert!(screen(&a, 160, 40).contains("stack demo: deploy_stack started"));

        // Delete: `n` cancels, so does any other key (here `q`, which must not quit).
        press(&mut a, &[ctrl('x')]);
        assert!(screen(&a, 160, 40).contains("DELETE stack demo"));
        press(&mut a, &[key('n')]);
        press(&mut a, &[ctrl('x'), key('q')]);
        assert_eq!(ops.deletes.load(Ordering::SeqCst), 0);
        assert!(!a.should_quit(), "the key that cancelled also quit");
        assert!(screen(&a, 160, 40).contains("Cancelled: the stack is unchanged."));
        press(&mut a, &[ctrl('x'), key('y')]);
        assert_eq!(ops.deletes.load(Ordering::SeqCst), 1);
        // Progress lines from the operation reach the status line.
        a.update(Action::StackOpLine(
            "stack demo: DELETE_FAILED: bucket not empty".into(),
            true,
        ));
        assert!(screen(&a, 160, 40).contains("DELETE_FAILED"));
    }

    #[test]
    fn a_confirmed_delete_pauses_this_processs_producer_first() {
        use iot_anomaly_analytics::pipeline::producer::Control;
        use iot_anomaly_analytics::pipeline::run::Controller;
        use iot_anomaly_analytics::pipeline::{Event, ProducerCounts};
        let mut a = app("backend = \"aws\"\n[aws]\nstack_name = \"demo\"\n");
        let ops = Arc::new(FakeStackOps::default());
        a.attach_stack_ops(ops.clone());
        let (tx, rx) = std::sync::mpsc::channel();
        a.attach_producer(Controller::new(tx));
        a.update(Action::Pipeline(Event::Producer(ProducerCounts {
            sent: 10,
            acknowledged: 10,
            rate_per_device: 1.0,
            paused: false,
            ..ProducerCounts::default()
        })));
        // A cancelled delete leaves the producer alone; a confirmed one pauses it first.
        press(&mut a, &[ctrl('x'), key('n')]);
        assert!(rx.try_recv().is_err());
        press(&mut a, &[ctrl('x'), key('y')]);
        assert_eq!(rx.try_recv(), Ok(Control::TogglePause));
        assert_eq!(ops.deletes.load(Ordering::SeqCst), 1);
        assert!(screen(&a, 160, 40).contains("Producer paused before deleting the stack"));
        // Already paused: nothing is sent (a toggle would start it again).
        a.update(Action::Pipeline(Event::Producer(ProducerCounts {
            paused: true,
            ..ProducerCounts::default()
        })));
        press(&mut a, &[ctrl('x'), key('y')]);
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn on_the_local_backend_the_keys_explain_instead() {
        let mut a = app("");
        let loaded = config::parse("", Path::new("/cfg/config.toml")).unwrap();
        let local: Arc<dyn iot_anomaly_analytics::stack::Stack> =
            Arc::new(iot_anomaly_analytics::backend::local_stack::LocalStack::new(&loaded));
        a.attach_stack_ops(Arc::new(
            iot_anomaly_analytics::app::stack_ops::StackRunner::new(
                local,
                Arc::new(|_| true),
                std::sync::mpsc::channel().0,
            ),
        ));
        press(&mut a, &[ctrl('x'), key('y')]);
        assert!(screen(&a, 160, 40).contains("The local stack is the data folder"));
    }
}
