//! The terminal: a guard that always restores it, and the event loop.
//!
//! The loop waits on crossterm's event stream, the action channel, a 1 s tick and signals,
//! and draws only when an update changed something, at most ~30 times a second. With nothing
//! happening it draws nothing.

use std::io::{Stdout, Write, stdout};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use color_eyre::eyre::{Result, WrapErr};
use crossterm::event::{
    DisableBracketedPaste, EnableBracketedPaste, Event, EventStream, KeyEventKind,
};
use crossterm::terminal::{
    BeginSynchronizedUpdate, EndSynchronizedUpdate, EnterAlternateScreen, LeaveAlternateScreen,
    disable_raw_mode, enable_raw_mode,
};
use crossterm::{cursor, execute};
use futures::StreamExt;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

use crate::action::Action;
use crate::app::App;

/// Minimum time between two frames: about 30 fps while data streams.
const FRAME: Duration = Duration::from_millis(33);
const TICK: Duration = Duration::from_secs(1);

static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Owns the terminal in raw mode on the alternate screen with bracketed paste; restores it
/// when dropped, and from the panic hook, so every exit path leaves a usable terminal.
pub struct TerminalGuard {
    pub terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl TerminalGuard {
    /// Call after `color_eyre::install()`: the hook installed here restores the terminal
    /// first and then hands the panic to color-eyre's hook, so the report is readable.
    pub fn new() -> Result<Self> {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
        ACTIVE.store(true, Ordering::SeqCst);
        let setup = || -> std::io::Result<Terminal<CrosstermBackend<Stdout>>> {
            enable_raw_mode()?;
            execute!(stdout(), EnterAlternateScreen, EnableBracketedPaste)?;
            Terminal::new(CrosstermBackend::new(stdout()))
        };
        match setup() {
            Ok(terminal) => Ok(TerminalGuard { terminal }),
            Err(e) => {
                restore();
                Err(e).wrap_err("cannot set up the terminal (is stdout a terminal?)")
            }
        }
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
    }
}

/// Undoes everything `TerminalGuard::new` did. Safe to call more than once.
pub fn restore() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        let mut out = stdout();
        let _ = execute!(
            out,
            DisableBracketedPaste,
            LeaveAlternateScreen,
            cursor::Show
        );
        let _ = disable_raw_mode();
        let _ = out.flush();
    }
}

/// Runs the dashboard until the user quits or a signal asks it to. Workers send their
/// reports as actions on `rx`'s channel.
pub async fn run(mut app: App, mut rx: mpsc::UnboundedReceiver<Action>) -> Result<()> {
    let mut guard = TerminalGuard::new()?;
    let size = guard.terminal.size()?;
    app.update(Action::Resize(size.width, size.height));

    let mut events = EventStream::new();
    let mut tick = tokio::time::interval_at(Instant::now() + TICK, TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .wrap_err("cannot listen for SIGTERM")?;
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .wrap_err("cannot listen for SIGINT")?;

    let mut dirty = true;
    let mut last_draw: Option<Instant> = None;
    let mut frames: u64 = 0;
    loop {
        if app.should_quit() {
            break;
        }
        let now = Instant::now();
        let next_frame = last_draw.map_or(now, |t| t + FRAME);
        if dirty && now >= next_frame {
            draw(&mut guard, &app)?;
            frames += 1;
            tracing::trace!(frames, "frame drawn");
            dirty = false;
            last_draw = Some(now);
        }
        tokio::select! {
            event = events.next() => match event {
                Some(Ok(Event::Key(key))) if key.kind == KeyEventKind::Press => {
                    if let Some(action) = app.action_for_key(&key) {
                        tracing::debug!(?action, "key");
                        dirty |= app.update(action);
                    }
                }
                Some(Ok(Event::Resize(w, h))) => {
                    // A resize always redraws: the terminal cleared what was there.
                    app.update(Action::Resize(w, h));
                    guard.terminal.autoresize()?;
                    dirty = true;
                }
                Some(Ok(Event::Paste(text))) => dirty |= app.update(Action::Paste(text)),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e).wrap_err("cannot read terminal events"),
                None => break,
            },
            Some(action) = rx.recv() => dirty |= app.update(action),
            _ = tick.tick() => dirty |= app.update(Action::Tick),
            _ = sigterm.recv() => {
                tracing::info!("SIGTERM: quitting");
                app.update(Action::Quit);
            }
            _ = sigint.recv() => {
                tracing::info!("SIGINT: quitting");
                app.update(Action::Quit);
            }
            _ = tokio::time::sleep_until(next_frame), if dirty => {}
        }
    }
    tracing::info!(frames, "dashboard closed");
    drop(guard);
    Ok(())
}

fn draw(guard: &mut TerminalGuard, app: &App) -> Result<()> {
    let view = app.view();
    execute!(stdout(), BeginSynchronizedUpdate)?;
    let drawn = guard
        .terminal
        .draw(|frame| frame.render_widget(ui::Dashboard(&view), frame.area()));
    execute!(stdout(), EndSynchronizedUpdate)?;
    drawn.wrap_err("cannot draw")?;
    Ok(())
}
