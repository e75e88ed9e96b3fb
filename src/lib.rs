//! iot-anomaly-analytics: a terminal dashboard that runs and operates a streaming IoT anomaly
//! pipeline. The binary is `iotaa`; this library holds everything so tests can drive it.

pub mod action;
pub mod app;
pub mod cli;
pub mod config;
pub mod keymap;
pub mod logging;
pub mod tui;
