//! The binary's tooling, kept out of the library's public surface: `iotaa bench` (the
//! detector and pipeline benchmark) and `iotaa soak` (the dashboard's pipeline for a long
//! run, measuring memory and CPU).

pub mod bench;
pub mod soak;
