//! Headless commands: the pipeline without the dashboard, one file per command. They open
//! the backend through [`crate::backend`] and never look at which one it is.
//!
//! This module holds what they share: stopping on a signal, parsing durations and stream
//! positions, one line per pipeline event, and the delete confirmation.

mod detect;
mod lake;
mod produce;
mod query;
mod stack;
mod tail;

use std::io::{BufRead, IsTerminal};
use std::time::Duration;

use chrono::Utc;
use color_eyre::eyre::{Result, eyre};

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::pipeline::{Event, Stage, StageState, StartAt, StopFlag};
use crate::records::parse_timestamp;

pub use detect::{detect_file, detect_follow};
pub use lake::lake_compact;
pub use produce::{produce, spike};
pub use query::query;
pub use stack::stack;
pub use tail::tail;

/// Sets the returned flag on SIGINT or SIGTERM, so headless loops end cleanly.
pub fn stop_on_signal() -> StopFlag {
    let flag = StopFlag::default();
    let f = flag.clone();
    let _ = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                use tokio::signal::unix::{SignalKind, signal};
                let (Ok(mut term), Ok(mut int)) = (
                    signal(SignalKind::terminate()),
                    signal(SignalKind::interrupt()),
                ) else {
                    return;
                };
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            });
            f.stop();
        });
    flag
}

/// Parses `15s`, `2m`, `1h`, `500ms` or plain seconds given to `--duration`.
pub fn parse_duration(text: &str) -> Result<Duration> {
    parse_duration_of("--duration", text)
}

/// Parses `15s`, `2m`, `1h`, `500ms` or plain seconds; errors name `flag`.
pub fn parse_duration_of(flag: &str, text: &str) -> Result<Duration> {
    let t = text.trim();
    let (number, unit) = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map_or((t, "s"), |i| t.split_at(i));
    let n: f64 = number
        .parse()
        .map_err(|_| eyre!("{flag}: expected a duration like 15s, 2m or 1h, got {text:?}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" | "" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => {
            return Err(eyre!(
                "{flag}: expected a unit of ms, s, m or h, got {text:?}"
            ));
        }
    };
    Ok(Duration::from_secs_f64(secs.max(0.0)))
}

/// One line per pipeline event for stderr: the same text the dashboard's status line shows
/// ([`Event::line`]); each stage's last state is kept so a resume after a block says so.
#[derive(Default)]
pub struct EventLines(Mutex<BTreeMap<Stage, StageState>>);

impl EventLines {
    pub fn line(&self, event: &Event) -> String {
        let Ok(mut states) = self.0.lock() else {
            return event.line(None);
        };
        match event {
            Event::Stage { stage, state, .. } => event.line(states.insert(*stage, *state)),
            _ => event.line(None),
        }
    }
}

/// Parses `--from`: trim-horizon, latest, or a UTC timestamp.
pub fn parse_from(text: &str) -> Result<StartAt> {
    match text {
        "trim-horizon" | "trim_horizon" | "TRIM_HORIZON" => Ok(StartAt::TrimHorizon),
        "latest" | "LATEST" => Ok(StartAt::Latest),
        t => parse_timestamp(t)
            .or_else(|| {
                chrono::DateTime::parse_from_rfc3339(t)
                    .ok()
                    .map(|d| d.with_timezone(&Utc))
            })
            .map(|d| StartAt::AtTimestamp(d.timestamp_millis()))
            .ok_or_else(|| {
                eyre!(
                    "--from: expected trim-horizon, latest or a UTC time like \"2026-11-30 05:00:00\", got {t:?}"
                )
            }),
    }
}

/// Asks `question` on stderr and reads y/N from stdin; refuses (an error) when stdin is not a
/// terminal, so a script never deletes without `--yes`.
pub(crate) fn confirm(question: &str) -> Result<bool> {
    if !std::io::stdin().is_terminal() {
        return Err(eyre!(
            "stack delete: refusing without --yes when stdin is not a terminal"
        ));
    }
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    let yes = matches!(answer.trim(), "y" | "Y" | "yes");
    if !yes {
        eprintln!("stack delete: nothing deleted");
    }
    Ok(yes)
}
