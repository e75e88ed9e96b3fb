//! The Query pane's state: the SQL editor, the run in progress, the result page, history,
//! the examples from `queries/`, CSV export.
//!
//! The engine is reached only through [`QueryRunner`]; results come back as
//! `Action::QueryFinished` in this module's own types, so the pane is driven the same way by
//! the real engine and by a test's fake runner. Elapsed time advances with the app's 1 s tick,
//! so what the pane shows never depends on reading a clock while drawing.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crossterm::event::KeyEvent;
use ratatui_textarea::TextArea;
use ui::{EditorView, PickerView, QueryView, ResultView, RunState};

use crate::query::{QueryOutcome, QueryOutput};
use crate::text;

/// Result rows handed to the view per frame (more than any terminal shows).
const VIEW_ROWS: usize = 300;

/// History entries kept (and persisted).
pub const HISTORY_KEPT: usize = 200;

/// A finished query as the pane shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultTable {
    /// (name, type) per column.
    pub columns: Vec<(String, String)>,
    /// Display strings; `None` is NULL.
    pub rows: Vec<Vec<Option<String>>>,
    /// Rows, bytes scanned, time, cost estimate.
    pub summary: String,
    /// Rows dropped past the cap, malformed lines skipped.
    pub note: Option<String>,
}

/// Runs queries off the UI loop and sends `Action::QueryFinished { id, .. }` when done.
pub trait QueryRunner: Send + Sync {
    fn start(&self, id: u64, sql: String);
    fn cancel(&self, id: u64);
}

/// An example query from `queries/`.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub name: String,
    /// Its first `-- ` comment line.
    pub description: String,
    pub sql: String,
}

/// Reads `queries/*.sql`, skipping DDL (CREATE …): the examples offered in the picker.
pub fn load_examples(dir: &Path) -> Vec<Example> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut examples: Vec<Example> = entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "sql"))
        .filter_map(|e| {
            let sql = std::fs::read_to_string(e.path()).ok()?;
            let body: String = sql
                .lines()
                .filter(|l| !l.trim_start().starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n");
            if body.trim_start().to_ascii_uppercase().starts_with("CREATE") {
                return None;
            }
            let description = sql
                .lines()
                .find_map(|l| l.trim_start().strip_prefix("--"))
                .unwrap_or("")
                .trim()
                .to_string();
            Some(Example {
                name: e.file_name().to_string_lossy().into_owned(),
                description,
                sql: sql.trim_end().to_string(),
            })
        })
        .collect();
    examples.sort_by(|a, b| a.name.cmp(&b.name));
    examples
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum PickerKind {
    Examples,
    History,
}

#[derive(Debug, Clone, PartialEq)]
enum Run {
    Idle,
    Running {
        id: u64,
        seconds: u64,
        tick: usize,
    },
    Done(String),
    Failed(String),
    /// Cancelled query `id`; what its engine said when it stopped (Athena: what it scanned and
    /// cost), once known.
    Cancelled {
        id: u64,
        detail: String,
    },
}

pub struct QueryPane {
    editor: TextArea<'static>,
    editing: bool,
    run: Run,
    next_id: u64,
    result: Option<ResultTable>,
    row_offset: usize,
    col_offset: usize,
    export_note: Option<String>,
    picker: Option<(PickerKind, usize)>,
    examples: Vec<Example>,
    history: Vec<String>,
    history_path: Option<PathBuf>,
    exports_dir: PathBuf,
    runner: Option<Arc<dyn QueryRunner>>,
    /// Why queries cannot run (no engine), if so.
    unavailable: Option<String>,
}

impl std::fmt::Debug for QueryPane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryPane")
            .field("editing", &self.editing)
            .field("run", &self.run)
            .finish_non_exhaustive()
    }
}

/// Reads the history file: one JSON string per line, oldest first; unreadable lines skipped.
fn load_history(path: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let mut h: Vec<String> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<String>(l).ok())
        .collect();
    let excess = h.len().saturating_sub(HISTORY_KEPT);
    h.drain(..excess);
    h
}

impl QueryPane {
    /// `initial_sql` fills the editor; `history_path` persists what is run.
    pub fn new(
        initial_sql: &str,
        examples: Vec<Example>,
        history_path: Option<PathBuf>,
        exports_dir: PathBuf,
    ) -> Self {
        let history = history_path
            .as_deref()
            .map(load_history)
            .unwrap_or_default();
        QueryPane {
            editor: TextArea::from(initial_sql.lines().map(String::from)),
            editing: false,
            run: Run::Idle,
            next_id: 1,
            result: None,
            row_offset: 0,
            col_offset: 0,
            export_note: None,
            picker: None,
            examples,
            history,
            history_path,
            exports_dir,
            runner: None,
            unavailable: None,
        }
    }

    pub fn attach_runner(&mut self, runner: Arc<dyn QueryRunner>) {
        self.runner = Some(runner);
        self.unavailable = None;
    }

    pub fn set_unavailable(&mut self, why: String) {
        self.unavailable = Some(why);
    }

    pub fn editing(&self) -> bool {
        self.editing
    }

    pub fn picker_open(&self) -> bool {
        self.picker.is_some()
    }

    pub fn sql(&self) -> String {
        self.editor.lines().join("\n")
    }

    pub fn history(&self) -> &[String] {
        &self.history
    }

    pub fn set_editing(&mut self, on: bool) -> bool {
        let changed = self.editing != on;
        self.editing = on;
        changed
    }

    /// A key typed into the editor.
    pub fn input(&mut self, key: KeyEvent) -> bool {
        self.editor.input(key)
    }

    /// Pasted text (bracketed paste) goes into the editor as typed text, newlines included.
    pub fn paste(&mut self, text: &str) -> bool {
        let text = text.replace("\r\n", "\n").replace('\r', "\n");
        self.editor.insert_str(text)
    }

    /// Starts the SQL in the editor. Returns a notice when it cannot run.
    pub fn run(&mut self) -> Result<(), String> {
        if let Some(why) = &self.unavailable {
            return Err(why.clone());
        }
        let Some(runner) = self.runner.clone() else {
            return Err("the query engine is not running".into());
        };
        if let Run::Running { .. } = self.run {
            return Err("a query is already running: ctrl-c cancels it".into());
        }
        let sql = self.sql();
        if sql.trim().is_empty() {
            return Err("nothing to run: the editor is empty".into());
        }
        let id = self.next_id;
        self.next_id += 1;
        self.remember(&sql);
        self.run = Run::Running {
            id,
            seconds: 0,
            tick: 0,
        };
        self.editing = false;
        runner.start(id, sql);
        Ok(())
    }

    /// Cancels the running query. Returns false when none runs.
    pub fn cancel(&mut self) -> bool {
        let Run::Running { id, .. } = self.run else {
            return false;
        };
        if let Some(r) = &self.runner {
            r.cancel(id);
        }
        self.run = Run::Cancelled {
            id,
            detail: String::new(),
        };
        true
    }

    /// A result for query `id`; results of cancelled or superseded queries are dropped.
    pub fn finished(&mut self, id: u64, outcome: QueryOutcome) -> bool {
        match &mut self.run {
            Run::Running { id: current, .. } if *current == id => {}
            // A cancelled query's last word: what it scanned and cost, when the engine says.
            Run::Cancelled {
                id: current,
                detail,
            } if *current == id => {
                return match outcome {
                    QueryOutcome::Cancelled(said) | QueryOutcome::Failed(said) => {
                        *detail = said;
                        true
                    }
                    QueryOutcome::Done(_) => false,
                };
            }
            _ => return false,
        }
        self.run = match outcome {
            QueryOutcome::Done(output) => {
                let table = table(output);
                let summary = table.summary.clone();
                self.result = Some(table);
                self.row_offset = 0;
                self.col_offset = 0;
                self.export_note = None;
                Run::Done(summary)
            }
            QueryOutcome::Failed(message) => Run::Failed(message),
            QueryOutcome::Cancelled(detail) => Run::Cancelled { id, detail },
        };
        true
    }

    /// The 1 s tick: a running query's elapsed time and spinner move.
    pub fn tick(&mut self) -> bool {
        if let Run::Running { seconds, tick, .. } = &mut self.run {
            *seconds += 1;
            *tick += 1;
            return true;
        }
        false
    }

    fn remember(&mut self, sql: &str) {
        if self.history.last().map(String::as_str) == Some(sql) {
            return;
        }
        self.history.push(sql.to_string());
        let excess = self.history.len().saturating_sub(HISTORY_KEPT);
        self.history.drain(..excess);
        if let Some(path) = &self.history_path {
            // Appending one line keeps the file valid even if the app dies mid-way.
            let line = format!("{}\n", serde_json::Value::String(sql.to_string()));
            let write = || -> std::io::Result<()> {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                use std::io::Write;
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?
                    .write_all(line.as_bytes())
            };
            if let Err(e) = write() {
                tracing::warn!("cannot append to {}: {e}", path.display());
            }
        }
    }

    /// Scrolls the result (rows by `dy`, columns by `dx`), or moves the picker selection.
    pub fn scroll(&mut self, dy: isize, dx: isize) -> bool {
        if let Some((kind, selected)) = &mut self.picker {
            let len = match kind {
                PickerKind::Examples => self.examples.len(),
                PickerKind::History => self.history.len(),
            };
            let before = *selected;
            *selected = (*selected as isize + dy).clamp(0, len.saturating_sub(1) as isize) as usize;
            return before != *selected;
        }
        let Some(r) = &self.result else {
            return false;
        };
        let (rows, cols) = (r.rows.len(), r.columns.len());
        let before = (self.row_offset, self.col_offset);
        self.row_offset =
            (self.row_offset as isize + dy).clamp(0, rows.saturating_sub(1) as isize) as usize;
        self.col_offset =
            (self.col_offset as isize + dx).clamp(0, cols.saturating_sub(1) as isize) as usize;
        before != (self.row_offset, self.col_offset)
    }

    pub fn open_examples(&mut self) -> Result<(), String> {
        if self.examples.is_empty() {
            return Err("no example queries found (queries/*.sql)".into());
        }
        self.picker = Some((PickerKind::Examples, 0));
        Ok(())
    }

    pub fn open_history(&mut self) -> Result<(), String> {
        if self.history.is_empty() {
            return Err("no history yet: queries you run are kept here".into());
        }
        // Newest first.
        self.picker = Some((PickerKind::History, 0));
        Ok(())
    }

    pub fn close_picker(&mut self) -> bool {
        self.picker.take().is_some()
    }

    /// Puts the selected example or history entry in the editor.
    pub fn pick(&mut self) -> bool {
        let Some((kind, selected)) = self.picker.take() else {
            return false;
        };
        let sql = match kind {
            PickerKind::Examples => self.examples.get(selected).map(|e| e.sql.clone()),
            PickerKind::History => self.history.iter().rev().nth(selected).cloned(),
        };
        if let Some(sql) = sql {
            self.editor = TextArea::from(sql.lines().map(String::from));
        }
        true
    }

    /// Writes the current result as CSV under the exports folder; returns the path.
    pub fn export_csv(&mut self, now: chrono::DateTime<chrono::Utc>) -> Result<PathBuf, String> {
        let Some(r) = &self.result else {
            return Err("no result to export: run a query first".into());
        };
        let path = self
            .exports_dir
            .join(format!("query-{}.csv", now.format("%Y%m%d-%H%M%S")));
        let mut out = String::new();
        let field = |s: &str| {
            if s.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s.to_string()
            }
        };
        out.push_str(
            &r.columns
                .iter()
                .map(|(n, _)| field(n))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push('\n');
        for row in &r.rows {
            let cells: Vec<String> = row
                .iter()
                .map(|v| v.as_deref().map(field).unwrap_or_default())
                .collect();
            out.push_str(&cells.join(","));
            out.push('\n');
        }
        std::fs::create_dir_all(&self.exports_dir)
            .and_then(|_| crate::pipeline::write_atomic(&path, out.as_bytes()))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        self.export_note = Some(format!(
            "{} rows exported to {}",
            r.rows.len(),
            path.display()
        ));
        Ok(path)
    }

    pub fn view(&self) -> QueryView {
        let ratatui_textarea::DataCursor(row, col) = self.editor.cursor();
        let run = match &self.run {
            Run::Idle => RunState::Idle,
            Run::Running { seconds, tick, .. } => RunState::Running {
                elapsed: format!("{seconds} s"),
                tick: *tick,
            },
            Run::Done(summary) => RunState::Done {
                summary: summary.clone(),
            },
            Run::Failed(message) => RunState::Failed {
                message: message.clone(),
            },
            Run::Cancelled { detail, .. } => RunState::Cancelled {
                detail: detail.clone(),
            },
        };
        let picker = self.picker.map(|(kind, selected)| match kind {
            PickerKind::Examples => PickerView {
                title: "Examples (queries/)".into(),
                items: self
                    .examples
                    .iter()
                    .map(|e| (e.name.clone(), e.description.clone()))
                    .collect(),
                selected,
            },
            PickerKind::History => PickerView {
                title: "History".into(),
                items: self
                    .history
                    .iter()
                    .rev()
                    .map(|sql| {
                        (
                            sql.split_whitespace().collect::<Vec<_>>().join(" "),
                            String::new(),
                        )
                    })
                    .collect(),
                selected,
            },
        });
        QueryView {
            editor: EditorView {
                lines: self.editor.lines().to_vec(),
                cursor: (row, col),
                editing: self.editing,
            },
            run,
            result: self.result.as_ref().map(|r| ResultView {
                columns: r.columns.clone(),
                // A window from the offset: enough for any screen, not the whole result.
                rows: r
                    .rows
                    .iter()
                    .skip(self.row_offset)
                    .take(VIEW_ROWS)
                    .cloned()
                    .collect(),
                total_rows: r.rows.len(),
                row_offset: self.row_offset,
                col_offset: self.col_offset,
                note: match (&self.export_note, &r.note) {
                    (Some(e), _) => Some(e.clone()),
                    (None, n) => n.clone(),
                },
            }),
            picker,
            unavailable: self.unavailable.clone(),
        }
    }
}

/// The pane's table from the engine's output: the summary says rows, bytes scanned, files,
/// time and what Athena would charge; the note says what was dropped or skipped.
fn table(out: QueryOutput) -> ResultTable {
    let cost = out.cost_usd();
    let summary = match &out.execution_id {
        // Athena reports bytes scanned but not objects; the query id finds it in the console.
        Some(id) => format!(
            "{} rows · {} scanned · {:.2} s · Athena cost ≈ ${cost:.6} · query {id}",
            out.rows.len(),
            text::bytes(out.bytes_scanned),
            out.elapsed.as_secs_f64()
        ),
        None => format!(
            "{} rows · {} scanned · {} files · {:.2} s · Athena would charge ${cost:.6}",
            out.rows.len(),
            text::bytes(out.bytes_scanned),
            out.files_scanned,
            out.elapsed.as_secs_f64()
        ),
    };
    let mut notes = Vec::new();
    if out.more_rows {
        notes.push(match out.dropped_rows {
            Some(n) => format!("{n} more rows dropped (query.max_rows)"),
            None => "more rows were dropped (query.max_rows)".to_string(),
        });
    }
    if out.malformed_lines > 0 {
        notes.push(format!("{} malformed lines skipped", out.malformed_lines));
    }
    if let Some(first) = out.skipped_objects.first() {
        let more = out.skipped_objects.len() - 1;
        notes.push(if more > 0 {
            format!("skipped {first} (and {more} more objects: see the log)")
        } else {
            format!("skipped {first}")
        });
    }
    ResultTable {
        columns: out
            .columns
            .into_iter()
            .map(|c| (c.name, c.data_type))
            .collect(),
        rows: out.rows,
        summary,
        note: (!notes.is_empty()).then(|| notes.join(" · ")),
    }
}
