//! Plain view structs: everything a frame shows, built by the app from its state.
//!
//! Nothing here knows where the numbers come from (local or AWS, live or recorded): the app
//! fills these structs in `App::view()` and the widgets in this crate render them.

/// The four panes of the dashboard, in focus order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PaneId {
    Stack,
    Throughput,
    Scores,
    Query,
}

impl PaneId {
    /// All panes in focus order (`Tab` walks this list, `1`–`4` index it).
    pub const ALL: [PaneId; 4] = [
        PaneId::Stack,
        PaneId::Throughput,
        PaneId::Scores,
        PaneId::Query,
    ];

    pub fn title(self) -> &'static str {
        match self {
            PaneId::Stack => "Stack",
            PaneId::Throughput => "Throughput",
            PaneId::Scores => "Scores",
            PaneId::Query => "Query",
        }
    }

    /// 1-based number shown in titles and used by the `1`–`4` keys.
    pub fn number(self) -> usize {
        self.index() + 1
    }

    pub fn index(self) -> usize {
        match self {
            PaneId::Stack => 0,
            PaneId::Throughput => 1,
            PaneId::Scores => 2,
            PaneId::Query => 3,
        }
    }

    pub fn next(self) -> PaneId {
        PaneId::ALL[(self.index() + 1) % PaneId::ALL.len()]
    }

    pub fn prev(self) -> PaneId {
        PaneId::ALL[(self.index() + PaneId::ALL.len() - 1) % PaneId::ALL.len()]
    }
}

/// Everything one frame of the dashboard shows.
#[derive(Debug, Clone, PartialEq)]
pub struct DashboardView {
    /// Left part of the top bar, e.g. `iotaa · local · ./data`.
    pub title: String,
    pub focus: PaneId,
    /// The focused pane fills the screen.
    pub zoomed: bool,
    pub stack: StackView,
    pub throughput: ThroughputView,
    pub scores: ScoresView,
    pub query: QueryView,
    pub status: StatusView,
    /// `Some` while the help overlay is open.
    pub help: Option<HelpView>,
}

/// How healthy a resource or stage is. Rendered as a word and a colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Ok,
    InProgress,
    Stopped,
    Failed,
    Missing,
}

impl Health {
    pub fn label(self) -> &'static str {
        match self {
            Health::Ok => "ok",
            Health::InProgress => "in progress",
            Health::Stopped => "stopped",
            Health::Failed => "failed",
            Health::Missing => "missing",
        }
    }
}

/// One row of the Stack pane: a resource (local folder, log, stream) or an AWS resource.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceRow {
    pub name: String,
    pub kind: String,
    pub health: Health,
    /// Free text: a path, a size, a checkpoint position.
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct StackView {
    /// `local` or `aws (stack NAME, REGION)`.
    pub backend: String,
    pub resources: Vec<ResourceRow>,
    /// Most recent last.
    pub events: Vec<String>,
    pub outputs: Vec<(String, String)>,
}

/// Live figures for the Throughput pane.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ThroughputStats {
    pub records_per_sec: f64,
    /// Bytes sent in the last bin, per second, as the app writes sizes (`812 B`, `1.2 KiB`:
    /// one unit system in every view).
    pub bytes_per_sec: String,
    pub sent: u64,
    pub acknowledged: u64,
    pub failed: u64,
    pub retries: u64,
    /// Seconds between a reading's arrival and its delivery to the lake, if known.
    pub delivery_lag_secs: Option<f64>,
    pub objects_delivered: u64,
    /// Set when another service delivers (AWS: Firehose's status); shown instead of the
    /// objects and lag this process cannot see.
    pub delivery_note: Option<String>,
    /// Records per second, one value per bin, oldest first. The chart shows the newest bins
    /// that fit its width, so the app need send no more than that.
    pub history: Vec<u64>,
    /// When each bin of `history` closed (ms since the Unix epoch, UTC), same length: the
    /// chart's time axis. May be empty (no axis labels then).
    pub history_times_ms: Vec<i64>,
    /// What one bin of `history` spans, for the axis label (e.g. `1 s`).
    pub bin_label: String,
    pub paused: bool,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ThroughputView {
    /// `None` until the producer has reported; the pane then says `waiting_for`.
    pub stats: Option<ThroughputStats>,
    pub waiting_for: String,
}

/// One alert line in the Scores pane.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRow {
    /// `HH:MM:SS` (UTC).
    pub time: String,
    pub device: String,
    pub value: i64,
    pub score: f64,
    /// Short text, e.g. `HIGH 7.1`.
    pub explanation: String,
}

/// What the scores in the chart's window say about a threshold: pick one by looking.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ScoreWindow {
    /// Readings in the window.
    pub readings: usize,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
    /// Readings of the window above the threshold: what it would have alerted.
    pub above_threshold: usize,
}

/// One device's row in the zoomed Scores pane.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeviceRow {
    pub device: String,
    /// Readings scored since the dashboard started.
    pub scored: u64,
    pub latest: f64,
    pub max: f64,
    /// Alerts in the alert history.
    pub alerts: u64,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ScoreStats {
    /// ANOMALY_SCORE values tailed from the anomaly stream, oldest first. The chart shows the
    /// newest two per column that fit its width, so the app need send no more than that.
    pub scores: Vec<f64>,
    /// When each of `scores` was read (ms since the Unix epoch, UTC): the chart's time axis.
    /// Same length as `scores`, or empty (no time labels then).
    pub times_ms: Vec<i64>,
    pub threshold: f64,
    pub latest: Option<f64>,
    /// `Some((seen, needed))` while the forest is still warming up.
    pub warming_up: Option<(u64, u64)>,
    /// Records the detector is behind the readings stream.
    pub lag_records: u64,
    /// Seconds the detector is behind the stream's newest record, where the stream measures
    /// lag in time rather than records (Kinesis' MillisBehindLatest); shown instead of
    /// `lag_records`.
    pub lag_secs: Option<f64>,
    /// When the detector runs elsewhere (the stack's Lambda function): its recent figures, and
    /// whether they hold errors or throttles.
    pub detector_note: Option<(String, bool)>,
    /// Alerts (of the focused device, if one is), most recent first, from `alert_offset` on.
    pub alerts: Vec<AlertRow>,
    /// Alerts in the (focused device's) history, and the index of `alerts[0]` in it.
    pub alerts_total: usize,
    pub alert_offset: usize,
    /// The devices seen so far, in the order the focus key cycles them.
    pub devices: Vec<String>,
    /// The device the chart shows (`None`: all devices mixed).
    pub device: Option<String>,
    /// Percentiles of the chart's window.
    pub window: Option<ScoreWindow>,
    /// Per device, the highest max score first (shown when zoomed).
    pub device_rows: Vec<DeviceRow>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ScoresView {
    pub stats: Option<ScoreStats>,
    pub waiting_for: String,
}

/// The SQL editor's content and cursor (the app owns the editing; this is what to draw).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EditorView {
    pub lines: Vec<String>,
    /// (row, column) in characters.
    pub cursor: (usize, usize),
    /// Keys go to the editor (the cursor is drawn).
    pub editing: bool,
}

/// Where the current or last query is.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum RunState {
    /// Nothing run yet: a hint.
    #[default]
    Idle,
    /// Running for `elapsed` (e.g. `1.2 s`); `tick` animates the spinner.
    Running { elapsed: String, tick: usize },
    /// Finished: the summary line (rows, bytes scanned, time, cost).
    Done { summary: String },
    /// Failed: one line, with position when the engine gave one.
    Failed { message: String },
    /// Cancelled; `detail` is what the engine said once it stopped (may be empty).
    Cancelled { detail: String },
}

/// A query result page: column names with types, rows (None = NULL), scroll offsets.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResultView {
    /// (name, type) per column.
    pub columns: Vec<(String, String)>,
    /// The rows from `row_offset` on (at most a screenful or so; the app keeps the rest).
    pub rows: Vec<Vec<Option<String>>>,
    /// Rows in the whole result.
    pub total_rows: usize,
    /// Index of `rows[0]` in the result, and the first column shown.
    pub row_offset: usize,
    pub col_offset: usize,
    /// Extra line under the table: rows dropped past the cap, where a CSV export went.
    pub note: Option<String>,
}

/// A list to choose from inside the pane (example queries, history).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PickerView {
    pub title: String,
    /// (name, one-line description or preview).
    pub items: Vec<(String, String)>,
    pub selected: usize,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueryView {
    pub editor: EditorView,
    pub run: RunState,
    pub result: Option<ResultView>,
    pub picker: Option<PickerView>,
    /// Shown instead of the pane's content when the engine cannot run (why, in one line).
    pub unavailable: Option<String>,
}

/// Severity of the status-line notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeLevel {
    Info,
    Warning,
    Error,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub level: NoticeLevel,
    pub text: String,
}

/// The bottom line: a notice, if any, then key hints.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StatusView {
    /// `(keys, label)` pairs, e.g. `("q", "quit")`, most useful first; cut to the width.
    pub hints: Vec<(String, String)>,
    pub notice: Option<Notice>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HelpRow {
    /// The keys bound, as the user writes them in config (`ctrl-r, f5`).
    pub keys: String,
    /// The action's name in config (`run_query`).
    pub action: String,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HelpSection {
    pub title: String,
    pub rows: Vec<HelpRow>,
}

/// The help overlay, generated from the keymap in force.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HelpView {
    pub sections: Vec<HelpSection>,
    /// A line under the table, e.g. where the config file is.
    pub footer: String,
}
