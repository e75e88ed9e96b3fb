//! iot-anomaly-analytics: a terminal dashboard that runs and operates a streaming IoT anomaly
//! pipeline. The binary is `iotaa`; this library holds everything so tests can drive it.

pub mod action;
pub mod app;
pub mod backend;
pub mod bench;
pub mod cli;
pub mod commands;
pub mod config;
pub mod detector;
pub mod keymap;
pub mod logging;
pub mod pipeline;
pub mod query;
pub mod records;
pub mod stream;
pub mod tui;
