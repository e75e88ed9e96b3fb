//! The rendering layer of iot-anomaly-analytics.
//!
//! Depends on ratatui only: no async runtime, no AWS, no SQL engine. The app builds a
//! [`DashboardView`] from its state; [`Dashboard`] renders it. Every pane is a widget over its
//! own view struct, so renders are deterministic and snapshot-testable on a `TestBackend`.

mod dashboard;
mod help;
mod panes;
mod status;
pub mod theme;
mod view;

pub use dashboard::{Dashboard, MIN_HEIGHT, MIN_WIDTH, pane_areas};
pub use view::*;
