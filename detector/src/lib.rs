//! iotaa-detector: the records of the pipeline and the Random Cut Forest detector, what Kinesis
//! Data Analytics' `RANDOM_CUT_FOREST` (and `RANDOM_CUT_FOREST_WITH_EXPLANATION`) did for the
//! seed. The dashboard runs it in-process; the AWS Lambda function runs the same code.
//!
//! It depends on krcflib, serde, serde_json, chrono, postcard and thiserror only: no async
//! runtime, no AWS SDK, no SQL engine, no terminal UI (`cargo tree -p iotaa-detector -e normal`),
//! so it builds alone in well under a minute.
//!
//! - Library: `krcflib` 4.0.2 (AWS's Rust RCF, imported as `rcflib`); see `facts/RCF.md`.
//!   Every reading is scored first and then added to the model, as KDA did.
//! - Model: by default one forest over all devices, 1-D over `sensorReading`; with
//!   [`DetectorParams::per_device`] one forest per device, each seeded from
//!   [`DetectorParams::random_seed`] and a stable hash of the device id ([`device_seed`]).
//!   Forests are created on a device's first reading and never dropped: about 1 MB each at the
//!   seed's parameters, so this mode suits a known, modest number of devices.
//! - Warm-up: a forest scores 0.0 until it has seen `1 + sample_size / 4` points (plus
//!   `shingle_size - 1` readings to fill its first shingle); see [`Detector::warm_up`].
//! - Explanation: per field (only `sensorReading` here) ATTRIBUTION_SCORE = high + low
//!   attribution (the fields sum to the score), DIRECTION = HIGH if high >= low else LOW,
//!   STRENGTH = |high − low| / (high + low), 0 when both are 0. During warm-up the explanation
//!   is present (when enabled) with all three at 0 / HIGH.
//! - Snapshots (beyond KDA, which always started empty): [`Detector::save`] writes the model
//!   atomically, [`Detector::load`] restores it, and the restored detector continues with the
//!   same scores, bit for bit, as one that never stopped. Snapshot file layout:
//!
//!   | bytes | content |
//!   |---|---|
//!   | 8 | magic `IOTAARCF` |
//!   | 4 | format version, u32 little-endian ([`SNAPSHOT_FORMAT_VERSION`]) |
//!   | 8 | payload length, u64 little-endian |
//!   | 8 | FNV-1a 64 checksum of the payload, u64 little-endian |
//!   | n | payload: `postcard` (serde) encoding of the params, the counters and the forest(s) |
//!
//!   Only the first 12 bytes are fixed across versions; a different version is refused before
//!   anything after them is read.
//! - Backtest: [`score_lines`] scores a file of recorded readings (`iotaa detect --input FILE`).
//!
//! - Durable files: [`durable`] holds the project's one atomic file write and directory fsync.
//! - Batches: [`batch`] splits a batch into PutRecords calls and reads which entries failed
//!   (the app's writers and the Lambda function use the same code).
//!
//! Nothing here panics on data or I/O: errors are [`DetectorError`] and [`SnapshotError`], each
//! with a one-line message that says what and where.

pub mod backtest;
pub mod batch;
pub mod durable;
mod rcf;
pub mod records;
mod snapshot;

pub use backtest::{BacktestSummary, score_lines, score_lines_with};
pub use rcf::{Detector, DetectorError, DetectorParams, FIELD, device_seed};
pub use snapshot::{SNAPSHOT_FORMAT_VERSION, SnapshotError};

#[cfg(test)]
mod tests;
