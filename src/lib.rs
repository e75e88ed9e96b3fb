//! iot-anomaly-analytics: a terminal dashboard that runs and operates a streaming IoT anomaly
//! pipeline. The binary is `iotaa`; this library holds everything but its tooling (`bench`,
//! `soak`, in `src/tools/`) so tests can drive it. ARCHITECTURE.md has the layers and what each
//! may import.

pub mod action;
pub mod app;
pub mod backend;
pub mod cli;
pub mod commands;
pub mod config;
pub mod dashboard;
/// The RCF detector lives in its own crate (`detector/`), which the AWS Lambda function also
/// builds; these two paths keep `crate::detector` and `crate::records` for the app.
pub use iotaa_detector as detector;
pub use iotaa_detector::records;
pub mod keymap;
pub mod logging;
pub mod pipeline;
pub mod query;
pub mod stack;
pub mod stream;
pub mod text;
pub mod tui;
