//! iot-anomaly-analytics: a terminal dashboard that runs and operates a streaming IoT anomaly
//! pipeline. The binary is `iotaa`; this library holds everything so tests can drive it.

pub mod action;
pub mod app;
pub mod backend;
pub mod bench;
pub mod cli;
pub mod commands;
pub mod config;
/// The RCF detector lives in its own crate (`detector/`), which the AWS Lambda function also
/// builds; these two paths keep `crate::detector` and `crate::records` for the app.
pub use iotaa_detector as detector;
#[doc(hidden)]
pub mod fuzzing;
pub mod keymap;
pub mod logging;
pub mod pipeline;
#[cfg(feature = "sql")]
pub mod query;
pub use iotaa_detector::records;
pub mod soak;
pub mod stream;
pub mod tui;
