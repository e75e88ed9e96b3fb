//! The real `App`, driven headless: key events and actions in, view structs out.

use std::path::{Path, PathBuf};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use iot_anomaly_analytics::action::{Action, BINDABLE};
use iot_anomaly_analytics::app::App;
use iot_anomaly_analytics::config;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
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

fn screen(app: &App, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    let view = app.view();
    t.draw(|f| f.render_widget(ui::Dashboard(&view), f.area()))
        .unwrap();
    t.backend().to_string()
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

/// Actions whose stage is not built yet say so instead of doing nothing silently.
#[test]
fn unbuilt_stages_say_so() {
    let mut a = app("");
    press(&mut a, &[key('a')]);
    let notice = a.view().status.notice.expect("a notice");
    assert_eq!(
        notice.text,
        "fire_anomaly: the producer is not part of this version yet."
    );
    assert!(screen(&a, 120, 40).contains("fire_anomaly: the producer is not part"));
}

#[test]
fn stack_pane_shows_config_source_and_data_dir() {
    let a = app("data_dir = \"/srv/iotaa\"\n");
    let stack = a.view().stack;
    let rows: Vec<(&str, &str)> = stack
        .resources
        .iter()
        .map(|r| (r.name.as_str(), r.detail.as_str()))
        .collect();
    assert_eq!(
        rows,
        [
            ("config", "/cfg/config.toml"),
            ("data dir", "/srv/iotaa"),
            ("log", "/cfg/data/logs/iotaa.log")
        ]
    );
}

#[test]
fn query_pane_uses_the_configured_table() {
    let a = app("[query]\ndatabase = \"lab\"\ntable = \"pumps\"\n");
    assert!(a.view().query.sql.contains("FROM lab.pumps"));
}
