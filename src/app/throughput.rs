//! The Throughput pane: the producer's counts, its rate binned once per tick, and what
//! delivery reports.

use ui::{ThroughputStats, ThroughputView};

use super::series::Series;
use crate::pipeline::{Event, ProducerCounts, Stage};

/// Seconds of throughput history kept (one bin per tick).
pub const HISTORY_BINS: usize = 600;

/// The Throughput pane's state.
#[derive(Debug)]
pub struct ThroughputPane {
    producer: Option<ProducerCounts>,
    /// Acknowledged readings and bytes at the last tick, to bin the rate.
    acked_at_tick: u64,
    bytes_at_tick: u64,
    /// Readings acknowledged per tick (about one per second).
    history: Series<u64>,
    /// When each bin of `history` closed (ms since the epoch, from the App's clock).
    history_times: Series<i64>,
    bytes_last_bin: u64,
    objects: u64,
    delivery_lag_secs: Option<f64>,
}

impl Default for ThroughputPane {
    fn default() -> Self {
        ThroughputPane {
            producer: None,
            acked_at_tick: 0,
            bytes_at_tick: 0,
            history: Series::with_capacity(HISTORY_BINS),
            history_times: Series::with_capacity(HISTORY_BINS),
            bytes_last_bin: 0,
            objects: 0,
            delivery_lag_secs: None,
        }
    }
}

impl ThroughputPane {
    /// Folds producer counts and deliveries in. Returns whether the pane changed.
    pub fn on_event(&mut self, event: &Event) -> bool {
        match event {
            Event::Producer(counts) => {
                if self.producer.is_none() {
                    self.acked_at_tick = counts.acknowledged;
                    self.bytes_at_tick = counts.bytes;
                }
                self.producer = Some(*counts);
                true
            }
            Event::Delivered {
                objects, lag_secs, ..
            } => {
                self.objects = *objects;
                self.delivery_lag_secs = Some(*lag_secs);
                true
            }
            _ => false,
        }
    }

    /// Whether a producer of this process is sending (known and not paused).
    pub fn producer_running(&self) -> bool {
        self.producer.is_some_and(|c| !c.paused)
    }

    /// Closes one throughput bin at `now_ms` (ms since the epoch). Nothing changes (and nothing
    /// is redrawn) while no producer runs or while it is paused with nothing sent.
    pub fn tick(&mut self, now_ms: i64) -> bool {
        let Some(counts) = self.producer else {
            return false;
        };
        let acked = counts.acknowledged - self.acked_at_tick.min(counts.acknowledged);
        if counts.paused && acked == 0 {
            return false;
        }
        self.bytes_last_bin = counts.bytes - self.bytes_at_tick.min(counts.bytes);
        self.acked_at_tick = counts.acknowledged;
        self.bytes_at_tick = counts.bytes;
        self.history.push(acked);
        self.history_times.push(now_ms);
        true
    }

    /// The latest counts of the producer or delivery stage, for its Stack row.
    pub fn live_figures(&self, stage: Stage) -> String {
        match stage {
            Stage::Producer => self.producer.map_or(String::new(), |c| {
                format!(
                    "{} sent, {} acked, {} failed",
                    c.sent, c.acknowledged, c.failed
                )
            }),
            Stage::Delivery => match self.delivery_lag_secs {
                Some(lag) => format!("{} objects, lag {lag:.1} s", self.objects),
                None => String::new(),
            },
            _ => String::new(),
        }
    }

    /// The pane. Its chart draws one bin per column: only the newest `columns` bins go into
    /// the view (all of them when the width is not known). `delivery_note` is set where
    /// another service delivers.
    pub fn view(&self, delivery_note: Option<String>, columns: Option<usize>) -> ThroughputView {
        ThroughputView {
            stats: self.producer.map(|c| ThroughputStats {
                records_per_sec: self.history.last().unwrap_or(0) as f64,
                bytes_per_sec: crate::text::bytes(self.bytes_last_bin),
                sent: c.sent,
                acknowledged: c.acknowledged,
                failed: c.failed,
                retries: c.retries,
                delivery_lag_secs: self.delivery_lag_secs,
                objects_delivered: self.objects,
                delivery_note,
                history: self.history.tail(columns.unwrap_or(usize::MAX)),
                history_times_ms: self.history_times.tail(columns.unwrap_or(usize::MAX)),
                bin_label: "1 s".into(),
                paused: c.paused,
            }),
            waiting_for: "Waiting for the producer: no readings sent yet.".into(),
        }
    }
}
