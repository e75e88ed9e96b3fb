//! Whole-screen snapshots of the dashboard at fixed sizes, on ratatui's `TestBackend`.
//! Review changes with `cargo insta review` or `INSTA_UPDATE=always cargo test -p ui` + git diff.

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ui::*;

/// 2026-11-30 06:40:30 UTC, in ms: the fixtures' first reading.
const T0: i64 = 1_796_107_230_000;

fn help() -> HelpView {
    let row = |keys: &str, action: &str, description: &str| HelpRow {
        keys: keys.into(),
        action: action.into(),
        description: description.into(),
    };
    HelpView {
        sections: vec![
            HelpSection {
                title: "Global".into(),
                rows: vec![
                    row("q, ctrl-c", "quit", "Quit, flushing what is buffered"),
                    row("?", "help", "Show or hide this help"),
                    row("tab", "focus_next", "Focus the next pane"),
                    row("z", "zoom", "Zoom the focused pane"),
                ],
            },
            HelpSection {
                title: "Query pane".into(),
                rows: vec![row("ctrl-r, f5", "run_query", "Run the SQL in the editor")],
            },
        ],
        footer: "Keys are set in [keys] of /home/me/.config/iotaa/config.toml".into(),
    }
}

/// The dashboard as it looks at start, before any stage has reported.
fn waiting() -> DashboardView {
    DashboardView {
        title: "iotaa · local · ./data".into(),
        focus: PaneId::Stack,
        zoomed: false,
        stack: StackView {
            backend: "local".into(),
            resources: vec![
                ResourceRow {
                    name: "data dir".into(),
                    kind: "folder".into(),
                    health: Health::Ok,
                    detail: "./data".into(),
                },
                ResourceRow {
                    name: "readings".into(),
                    kind: "stream".into(),
                    health: Health::Missing,
                    detail: "created when the pipeline starts".into(),
                },
            ],
            events: vec![],
            outputs: vec![],
        },
        throughput: ThroughputView {
            stats: None,
            waiting_for: "Waiting for the producer: no readings sent yet.".into(),
        },
        scores: ScoresView {
            stats: None,
            waiting_for: "Waiting for the anomaly stream: no scored readings yet.".into(),
        },
        query: QueryView {
            editor: EditorView {
                lines: vec![
                    "SELECT deviceid, count(*)".into(),
                    "FROM analyticsdemo.devicedata".into(),
                    "GROUP BY deviceid".into(),
                ],
                cursor: (0, 0),
                editing: false,
            },
            ..QueryView::default()
        },
        status: StatusView {
            hints: vec![
                ("q".into(), "quit".into()),
                ("?".into(), "help".into()),
                ("tab".into(), "focus".into()),
                ("z".into(), "zoom".into()),
                ("a".into(), "anomaly".into()),
                ("p".into(), "pause".into()),
            ],
            notice: None,
        },
        help: None,
    }
}

/// A dashboard with data in every pane (figures made up for the fixture).
fn live() -> DashboardView {
    let mut v = waiting();
    v.focus = PaneId::Scores;
    v.stack.events = vec!["06:40:01 readings stream opened".into()];
    v.stack.outputs = vec![("lake".into(), "./data/lake".into())];
    v.throughput.stats = Some(ThroughputStats {
        records_per_sec: 5.0,
        bytes_per_sec: "415 B".into(),
        sent: 1234,
        acknowledged: 1230,
        failed: 4,
        retries: 2,
        delivery_lag_secs: Some(3.5),
        objects_delivered: 12,
        delivery_note: None,
        history: (0..90).map(|i| 4 + (i % 3) as u64).collect(),
        history_times_ms: (0..90).map(|i| T0 + 1_000 * i).collect(),
        bin_label: "1 s".into(),
        paused: false,
    });
    let mut scores: Vec<f64> = (0..200).map(|i| 0.7 + 0.1 * ((i % 7) as f64)).collect();
    scores[150] = 7.2;
    // Five devices, one reading each per second: 40 s of readings.
    let times_ms = (0..200).map(|i| T0 + 200 * i).collect();
    let device = |name: &str, scored, latest, max, alerts| DeviceRow {
        device: String::from(name),
        scored,
        latest,
        max,
        alerts,
    };
    v.scores.stats = Some(ScoreStats {
        scores,
        times_ms,
        threshold: 4.0,
        latest: Some(0.83),
        warming_up: None,
        lag_records: 0,
        lag_secs: None,
        detector_note: None,
        alerts: vec![AlertRow {
            time: "06:41:07".into(),
            device: "cccc".into(),
            value: 451,
            score: 7.2,
            explanation: "sensorReading HIGH 7.20".into(),
        }],
        alerts_total: 1,
        alert_offset: 0,
        devices: ["aaaa", "bbbb", "cccc", "dddd", "eeee"]
            .map(String::from)
            .to_vec(),
        device: None,
        window: Some(ScoreWindow {
            readings: 200,
            p50: 1.0,
            p99: 1.3,
            max: 7.2,
            above_threshold: 1,
        }),
        device_rows: vec![
            device("cccc", 40, 0.8, 7.2, 1),
            device("aaaa", 40, 0.9, 1.3, 0),
            device("bbbb", 40, 0.7, 1.3, 0),
            device("dddd", 40, 1.1, 1.3, 0),
            device("eeee", 40, 0.8, 1.3, 0),
        ],
    });
    v.status.notice = Some(Notice {
        level: NoticeLevel::Info,
        text: "Anomaly sent: cccc = 451".into(),
    });
    v.query.run = RunState::Done {
        summary: "5 rows · 1.2 MiB scanned · 3 files · 0.21 s · ~$0.00005 on Athena".into(),
    };
    v.query.result = Some(result());
    v
}

fn result() -> ResultView {
    let row = |d: &str, n: &str, m: Option<&str>| {
        vec![
            Some(d.to_string()),
            Some(n.to_string()),
            m.map(String::from),
        ]
    };
    ResultView {
        columns: vec![
            ("deviceid".into(), "varchar".into()),
            ("readings".into(), "bigint".into()),
            ("max_reading".into(), "smallint".into()),
        ],
        rows: vec![
            row("aaaa", "1204", Some("5")),
            row("bbbb", "1203", Some("451")),
            row("cccc", "1203", Some("-5")),
            row("dddd", "1203", None),
            row("eeee", "1202", Some("4")),
        ],
        total_rows: 5,
        row_offset: 0,
        col_offset: 0,
        note: None,
    }
}

fn query_zoomed() -> DashboardView {
    let mut v = live();
    v.focus = PaneId::Query;
    v.zoomed = true;
    v
}

fn render(view: &DashboardView, width: u16, height: u16) -> TestBackend {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|f| f.render_widget(Dashboard(view), f.area()))
        .unwrap();
    terminal.backend().clone()
}

#[test]
fn waiting_120x40() {
    insta::assert_snapshot!(render(&waiting(), 120, 40));
}

#[test]
fn waiting_80x24() {
    insta::assert_snapshot!(render(&waiting(), 80, 24));
}

#[test]
fn waiting_40x12_shows_only_the_focused_pane() {
    insta::assert_snapshot!(render(&waiting(), 40, 12));
}

#[test]
fn live_120x40() {
    insta::assert_snapshot!(render(&live(), 120, 40));
}

#[test]
fn live_80x24() {
    insta::assert_snapshot!(render(&live(), 80, 24));
}

#[test]
fn zoomed_scores_80x24() {
    let mut v = live();
    v.zoomed = true;
    insta::assert_snapshot!(render(&v, 80, 24));
}

/// Zoomed with many alerts and one device focused: its chart, its alerts (scrolled), the
/// device strip scrolled to show it and its row highlighted.
fn scores_detail() -> DashboardView {
    let mut v = live();
    v.zoomed = true;
    if let Some(s) = v.scores.stats.as_mut() {
        s.alerts = (0..40)
            .map(|i| AlertRow {
                time: format!("06:4{}:{:02}", i / 60, 59 - i % 60),
                device: ["cccc", "aaaa"][i % 2].into(),
                value: 400 + i as i64,
                score: 7.0 - 0.05 * i as f64,
                explanation: "sensorReading HIGH 6.90".into(),
            })
            .collect();
        s.alerts_total = 1_000;
    }
    v
}

#[test]
fn zoomed_scores_with_history_80x24() {
    insta::assert_snapshot!(render(&scores_detail(), 80, 24));
}

#[test]
fn zoomed_scores_with_history_200x60() {
    insta::assert_snapshot!(render(&scores_detail(), 200, 60));
}

#[test]
fn one_device_focused_scrolled_80x24() {
    let mut v = scores_detail();
    if let Some(s) = v.scores.stats.as_mut() {
        s.devices = (0..30).map(|i| format!("dev{i:02}")).collect();
        s.device = Some("dev17".into());
        s.device_rows = (0..30)
            .map(|i| DeviceRow {
                device: format!("dev{i:02}"),
                scored: 40,
                latest: 0.8,
                max: 9.0 - 0.1 * i as f64,
                alerts: 1,
            })
            .collect();
        s.alerts.iter_mut().for_each(|a| a.device = "dev17".into());
        s.alerts_total = 40;
        s.alert_offset = 12;
        s.alerts.drain(..12);
    }
    let screen = render(&v, 80, 24).to_string();
    assert!(screen.contains("device dev17 (18/30)"), "title: {screen}");
    assert!(
        screen.contains(" dev17 "),
        "the strip scrolls to the device"
    );
    assert!(screen.contains("13–"), "scrolled history: {screen}");
    insta::assert_snapshot!(render(&v, 80, 24));
}

#[test]
fn one_device_focused_200x60() {
    let mut v = scores_detail();
    if let Some(s) = v.scores.stats.as_mut() {
        s.device = Some("cccc".into());
        s.alerts.retain(|a| a.device == "cccc");
        s.alerts_total = s.alerts.len();
    }
    insta::assert_snapshot!(render(&v, 200, 60));
}

/// The charts' time axes are labelled with wall-clock times from the data, and the
/// threshold line says what it is.
#[test]
fn charts_have_time_labels_and_a_labelled_threshold() {
    let screen = render(&live(), 120, 40).to_string();
    assert!(screen.contains("06:40:48"), "score chart starts: {screen}");
    assert!(screen.contains("06:41:09"), "score chart ends: {screen}");
    assert!(screen.contains("threshold 4"), "{screen}");
    assert!(screen.contains("06:41:59"), "throughput ends: {screen}");
    let zoomed = render(&scores_detail(), 200, 60).to_string();
    assert!(zoomed.contains("p50 1.00"), "{zoomed}");
    assert!(zoomed.contains("1 above 4"), "{zoomed}");
}

#[test]
fn warming_up_scores_80x24() {
    let mut v = live();
    if let Some(s) = v.scores.stats.as_mut() {
        s.warming_up = Some((23, 64));
        s.scores = vec![0.0; 23];
        s.times_ms.truncate(23);
        s.window = Some(ScoreWindow {
            readings: 23,
            ..ScoreWindow::default()
        });
        s.device_rows.clear();
        s.alerts.clear();
        s.alerts_total = 0;
        s.lag_records = 120;
    }
    v.zoomed = true;
    insta::assert_snapshot!(render(&v, 80, 24));
}

/// The detector's lag shows in records (local streams) or in seconds (Kinesis), and not at
/// all when it has caught up.
#[test]
fn detector_lag_shows_in_records_or_seconds() {
    let with_lag = |records: u64, secs: Option<f64>| {
        let mut v = live();
        if let Some(s) = v.scores.stats.as_mut() {
            s.lag_records = records;
            s.lag_secs = secs;
        }
        render(&v, 120, 40).to_string()
    };
    assert!(with_lag(300, None).contains("detector 300 behind"));
    assert!(with_lag(0, Some(2.34)).contains("detector 2.3 s behind"));
    assert!(!with_lag(0, None).contains("behind"));
    assert!(!with_lag(0, Some(0.01)).contains("behind"), "caught up");
}

/// A detector running in the stack's Lambda function shows its figures after the lag.
#[test]
fn a_detector_in_lambda_shows_its_figures() {
    let mut v = live();
    if let Some(s) = v.scores.stats.as_mut() {
        s.lag_secs = Some(1.5);
        s.detector_note = Some(("Lambda: 12 invocations, 0 errors".into(), false));
    }
    let screen = render(&v, 160, 40).to_string();
    assert!(
        screen.contains("detector 1.5 s behind  Lambda: 12 invocations, 0 errors"),
        "{screen}"
    );
}

#[test]
fn help_overlay_120x40() {
    let mut v = waiting();
    v.help = Some(help());
    insta::assert_snapshot!(render(&v, 120, 40));
}

#[test]
fn help_overlay_40x12() {
    let mut v = waiting();
    v.help = Some(help());
    insta::assert_snapshot!(render(&v, 40, 12));
}

#[test]
fn too_small_says_so() {
    insta::assert_snapshot!(render(&waiting(), 39, 11));
}

/// No size from 1×1 to 400×120 panics, in any focus, zoom or help state.
#[test]
fn every_size_renders_without_panic() {
    let views = [waiting(), live(), scores_detail()];
    for width in (1..=400).step_by(19).chain([39, 40, 41, 79, 80, 81]) {
        for height in (1..=120).step_by(9).chain([11, 12, 13, 19, 20, 21]) {
            for (i, base) in views.iter().enumerate() {
                let mut v = base.clone();
                v.focus = PaneId::ALL[(width as usize + height as usize + i) % 4];
                v.zoomed = width % 2 == 0;
                if height % 3 == 0 {
                    v.help = Some(help());
                }
                render(&v, width, height);
            }
        }
    }
}

#[test]
fn pane_areas_follow_size_focus_and_zoom() {
    let area = |w, h| ratatui::layout::Rect::new(0, 0, w, h);
    let mut v = waiting();
    assert_eq!(pane_areas(area(120, 40), &v).len(), 4);
    assert_eq!(
        pane_areas(area(60, 16), &v).len(),
        1,
        "compact: focused only"
    );
    assert!(pane_areas(area(39, 12), &v).is_empty(), "too small: none");
    v.zoomed = true;
    v.focus = PaneId::Query;
    let zoomed = pane_areas(area(120, 40), &v);
    assert_eq!(zoomed.len(), 1);
    assert_eq!(zoomed[0].0, PaneId::Query);
    assert_eq!(zoomed[0].1.width, 120);
}

#[test]
fn query_result_80x24() {
    insta::assert_snapshot!(render(&query_zoomed(), 80, 24));
}

#[test]
fn query_result_scrolled_with_a_note_60x16() {
    let mut v = query_zoomed();
    if let Some(r) = v.query.result.as_mut() {
        r.row_offset = 2;
        r.rows.drain(..2);
        r.col_offset = 1;
        r.note = Some("10000 rows kept; more were dropped (query.max_rows)".into());
    }
    insta::assert_snapshot!(render(&v, 60, 16));
}

#[test]
fn query_error_80x24() {
    let mut v = query_zoomed();
    v.query.result = None;
    v.query.run = RunState::Failed {
        message: "1:8: no column named deviceidd (columns: deviceid, sensorreading, readingtimestamp, datehour)".into(),
    };
    insta::assert_snapshot!(render(&v, 80, 24));
}

#[test]
fn query_editing_and_running_80x24() {
    let mut v = query_zoomed();
    v.query.editor.editing = true;
    v.query.editor.cursor = (1, 5);
    v.query.run = RunState::Running {
        elapsed: "1.4 s".into(),
        tick: 3,
    };
    insta::assert_snapshot!(render(&v, 80, 24));
}

#[test]
fn query_picker_80x24() {
    let mut v = query_zoomed();
    v.query.picker = Some(PickerView {
        title: "Examples".into(),
        items: vec![
            (
                "out_of_range.sql".into(),
                "Readings outside the normal -5..5".into(),
            ),
            (
                "count_per_device.sql".into(),
                "How many readings each device sent".into(),
            ),
            ("per_minute.sql".into(), "Readings per minute".into()),
        ],
        selected: 1,
    });
    insta::assert_snapshot!(render(&v, 80, 24));
}

/// A resource's kind is cut to 12 characters in the narrow Stack pane and whole when it is
/// zoomed (`Lambda::Function`, `CloudWatch::Alarm`).
#[test]
fn long_kinds_are_whole_in_a_wide_stack_pane() {
    let mut v = live();
    v.focus = PaneId::Stack;
    v.stack.resources.push(ResourceRow {
        name: "DetectorFunction".into(),
        kind: "Lambda::Function".into(),
        health: Health::Ok,
        detail: "iotaa-detector".into(),
    });
    let narrow = render(&v, 120, 40).to_string();
    assert!(
        narrow.contains("Lambda::Func ") && !narrow.contains("Lambda::Function"),
        "{narrow}"
    );
    v.zoomed = true;
    let wide = render(&v, 160, 40).to_string();
    assert!(wide.contains("Lambda::Function"), "{wide}");
}
