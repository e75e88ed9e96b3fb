//! The Random Cut Forest detector: what Kinesis Data Analytics' `RANDOM_CUT_FOREST` (and
//! `RANDOM_CUT_FOREST_WITH_EXPLANATION`) did for the seed, run in-process.
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
//! Nothing here panics on data or I/O: errors are [`DetectorError`] and [`SnapshotError`], each
//! with a one-line message that says what and where.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rcflib::rcf::{AugmentedRCF, RCFBuilder, RCFLarge, RCFMedium, RCFOptionsBuilder, RCFSmall};
use serde::{Deserialize, Serialize};

use crate::records::{Attribution, Direction, Explanation, Reading, ScoredReading};

/// The one numeric field the forest scores, as named in the records and in the explanation.
pub const FIELD: &str = "sensorReading";

/// Version of the snapshot file layout written by [`Detector::save`]. Bump it whenever the
/// payload changes shape (including a new krcflib whose serialized forest differs).
pub const SNAPSHOT_FORMAT_VERSION: u32 = 1;

const SNAPSHOT_MAGIC: &[u8; 8] = b"IOTAARCF";
/// magic + version: the part of the header every version shares.
const SNAPSHOT_FIXED_LEN: usize = 12;
/// magic + version + payload length + checksum.
const SNAPSHOT_HEADER_LEN: usize = 28;

/// Random Cut Forest parameters, as KDA's `RANDOM_CUT_FOREST(…, trees, sample_size,
/// time_decay, shingle_size)` took them, plus this project's options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DetectorParams {
    /// Number of trees (KDA's numberOfTrees).
    pub trees: usize,
    /// Points each tree keeps (KDA's subSampleSize); warm-up is `1 + sample_size / 4` points.
    pub sample_size: usize,
    /// KDA's timeDecay, a number of records N: the forest forgets at rate 1/N.
    pub time_decay: u64,
    /// Consecutive readings (of one forest) scored together as one point (KDA's shingleSize).
    pub shingle_size: usize,
    /// One forest per device instead of one over all devices.
    pub per_device: bool,
    /// Add ANOMALY_EXPLANATION to scored readings. Output only: it does not change the model,
    /// so a snapshot loads whatever this is set to.
    pub explanation: bool,
    /// Seed of the forest's random choices (per device: combined with [`device_seed`]).
    pub random_seed: u64,
}

impl DetectorParams {
    /// The seed's settings: `RANDOM_CUT_FOREST(…, 100, 256, 120, 1)`, one forest over all
    /// devices, with explanation, seed 42.
    pub const fn seed() -> Self {
        DetectorParams {
            trees: 100,
            sample_size: 256,
            time_decay: 120,
            shingle_size: 1,
            per_device: false,
            explanation: true,
            random_seed: 42,
        }
    }

    /// Checks what the library cannot take. Messages name the field, as config errors do.
    pub fn validate(&self) -> Result<(), DetectorError> {
        let invalid = |field: &'static str, reason: String| {
            Err(DetectorError::InvalidParams { field, reason })
        };
        if self.trees == 0 {
            return invalid("trees", "expected at least 1, got 0".into());
        }
        if self.sample_size < 4 {
            return invalid(
                "sample_size",
                format!("expected at least 4, got {}", self.sample_size),
            );
        }
        if self.time_decay == 0 {
            return invalid("time_decay", "expected at least 1 record, got 0".into());
        }
        if self.shingle_size == 0 {
            return invalid("shingle_size", "expected at least 1, got 0".into());
        }
        if self
            .sample_size
            .checked_mul(self.trees)
            .and_then(|n| n.checked_add(1))
            .is_none()
        {
            return invalid(
                "sample_size",
                format!(
                    "sample_size × trees overflows ({} × {})",
                    self.sample_size, self.trees
                ),
            );
        }
        Ok(())
    }

    /// Points a forest must have taken in before it scores (the library's `output_after`).
    fn output_after(&self) -> usize {
        1 + self.sample_size / 4
    }

    /// Readings a forest must have seen before its scores are live: the warm-up.
    pub fn warm_up_readings(&self) -> u64 {
        (self.output_after() + self.shingle_size - 1) as u64
    }

    /// How `self` (a snapshot's params) differs from `now` in the fields that shape the model,
    /// as `field X (now Y)`.
    fn model_differences(&self, now: &DetectorParams) -> Vec<String> {
        let mut out = Vec::new();
        let mut cmp = |name: &str, was: String, is: String| {
            if was != is {
                out.push(format!("{name} {was} (now {is})"));
            }
        };
        cmp("trees", self.trees.to_string(), now.trees.to_string());
        cmp(
            "sample_size",
            self.sample_size.to_string(),
            now.sample_size.to_string(),
        );
        cmp(
            "time_decay",
            self.time_decay.to_string(),
            now.time_decay.to_string(),
        );
        cmp(
            "shingle_size",
            self.shingle_size.to_string(),
            now.shingle_size.to_string(),
        );
        cmp(
            "per_device",
            self.per_device.to_string(),
            now.per_device.to_string(),
        );
        cmp(
            "random_seed",
            self.random_seed.to_string(),
            now.random_seed.to_string(),
        );
        out
    }
}

impl Default for DetectorParams {
    fn default() -> Self {
        Self::seed()
    }
}

/// What went wrong building or running a forest.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DetectorError {
    #[error("invalid detector parameter {field}: {reason}")]
    InvalidParams { field: &'static str, reason: String },
    #[error("random cut forest{}: {message}", device_suffix(.device))]
    Forest {
        device: Option<String>,
        message: String,
    },
}

fn device_suffix(device: &Option<String>) -> String {
    match device {
        Some(d) => format!(" of device {d:?}"),
        None => String::new(),
    }
}

/// Why a snapshot could not be loaded. The caller reports it and starts fresh.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("no detector snapshot at {}", .path.display())]
    Missing { path: PathBuf },
    #[error("cannot read detector snapshot {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("detector snapshot {} is corrupt: {reason}", .path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error(
        "detector snapshot {} has format version {found}; this build reads version {expected}",
        .path.display()
    )]
    Version {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    #[error(
        "detector snapshot {} was built with other parameters: {}",
        .path.display(),
        .differences.join(", ")
    )]
    Params {
        path: PathBuf,
        /// One entry per differing field: `trees 50 (now 100)`.
        differences: Vec<String>,
    },
    #[error(transparent)]
    InvalidParams(#[from] DetectorError),
}

/// Stable 64-bit FNV-1a hash (the same on every run and platform, unlike std's `RandomState`).
fn fnv1a64(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(OFFSET, |h, &b| (h ^ u64::from(b)).wrapping_mul(PRIME))
}

/// SplitMix64's finaliser: spreads nearby inputs over all 64 bits.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Seed of a device's own forest (per-device mode): `random_seed` combined with a stable hash
/// of the device id, so the same device always gets the same forest for the same seed.
pub fn device_seed(random_seed: u64, device_id: &str) -> u64 {
    mix64(random_seed ^ fnv1a64(device_id.as_bytes()))
}

/// The concrete (serializable) forest type, the smallest one that holds the parameters.
#[derive(Serialize, Deserialize)]
enum Forest {
    /// sample_size <= 256, (trees + 1) × sample_size < 65535, shingle < 255: the seed's case.
    Small(RCFSmall<u64, u64>),
    /// sample_size and shingle below 65535.
    Medium(RCFMedium<u64, u64>),
    Large(RCFLarge<u64, u64>),
}

impl Forest {
    fn build(params: &DetectorParams, seed: u64) -> Result<Forest, String> {
        let mut builder = RCFBuilder::new(1, params.shingle_size);
        builder
            .number_of_trees(params.trees)
            .tree_capacity(params.sample_size)
            .time_decay(1.0 / params.time_decay as f64)
            .internal_shingling(true)
            .output_after(params.output_after())
            .random_seed(seed);
        let small = params.sample_size <= 256
            && params.shingle_size < 255
            && (params.trees + 1).saturating_mul(params.sample_size) < u16::MAX as usize;
        let medium = params.sample_size < u16::MAX as usize && params.shingle_size < 65_535;
        let forest = if small {
            builder.build_small_simple::<u64>().map(Forest::Small)
        } else if medium {
            builder.build_medium_simple::<u64>().map(Forest::Medium)
        } else {
            builder.build_large_simple::<u64>().map(Forest::Large)
        };
        forest.map_err(|e| e.to_string())
    }

    fn rcf_mut(&mut self) -> &mut dyn AugmentedRCF<u64, u64> {
        match self {
            Forest::Small(f) => f,
            Forest::Medium(f) => f,
            Forest::Large(f) => f,
        }
    }
}

/// One forest and how many readings it has seen (including those that filled its shingle).
#[derive(Serialize, Deserialize)]
struct ForestState {
    seen: u64,
    forest: Forest,
}

#[derive(Serialize, Deserialize)]
enum Forests {
    Global(Box<ForestState>),
    /// Ordered by device id, so snapshots and iteration are deterministic.
    PerDevice(BTreeMap<String, ForestState>),
}

/// The snapshot payload as written (borrowing the detector) …
#[derive(Serialize)]
struct SnapshotOut<'a> {
    params: &'a DetectorParams,
    scored: u64,
    forests: &'a Forests,
}

/// … and as read back.
#[derive(Deserialize)]
struct SnapshotIn {
    params: DetectorParams,
    scored: u64,
    forests: Forests,
}

/// Scores readings with a Random Cut Forest, one at a time, score first then update.
pub struct Detector {
    params: DetectorParams,
    forests: Forests,
    scored: u64,
    errors: u64,
    last_error: Option<String>,
}

impl fmt::Debug for Detector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Detector")
            .field("params", &self.params)
            .field("forests", &self.forest_count())
            .field("scored", &self.scored)
            .field("errors", &self.errors)
            .field("warm_up", &self.warm_up())
            .finish()
    }
}

impl Detector {
    /// An empty detector (it warms up first, as KDA did at every start).
    pub fn new(params: DetectorParams) -> Result<Detector, DetectorError> {
        params.validate()?;
        let forests = if params.per_device {
            Forests::PerDevice(BTreeMap::new())
        } else {
            let forest = Forest::build(&params, params.random_seed).map_err(|message| {
                DetectorError::Forest {
                    device: None,
                    message,
                }
            })?;
            Forests::Global(Box::new(ForestState { seen: 0, forest }))
        };
        Ok(Detector {
            params,
            forests,
            scored: 0,
            errors: 0,
            last_error: None,
        })
    }

    pub fn params(&self) -> &DetectorParams {
        &self.params
    }

    /// Turns ANOMALY_EXPLANATION on or off from the next reading on. Output only: the model and
    /// its scores are the same either way (explaining costs a second traversal per reading).
    pub fn set_explanation(&mut self, on: bool) {
        self.params.explanation = on;
    }

    /// Readings scored since the model was created (carried across snapshots).
    pub fn scored(&self) -> u64 {
        self.scored
    }

    /// Readings the forest library failed on since this process started (each was output
    /// with score 0.0 by [`Detector::score`]); not expected to happen with valid parameters.
    pub fn errors(&self) -> u64 {
        self.errors
    }

    /// The message of the last such failure.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// Number of forests: 1, or the number of devices seen in per-device mode.
    pub fn forest_count(&self) -> usize {
        match &self.forests {
            Forests::Global(_) => 1,
            Forests::PerDevice(map) => map.len(),
        }
    }

    /// Warm-up progress: `Some((seen, needed))` while scores are still 0.0, `None` once warm.
    ///
    /// One forest: readings seen so far and readings needed (`1 + sample_size / 4 +
    /// shingle_size - 1`; 65 for the seed). Per device: the least-warm device among those seen
    /// so far (`Some((0, needed))` before any reading); `None` when every device seen so far
    /// is warm. A device that appears later warms up on its own and makes this `Some` again.
    pub fn warm_up(&self) -> Option<(u64, u64)> {
        let needed = self.params.warm_up_readings();
        let seen = match &self.forests {
            Forests::Global(state) => state.seen,
            Forests::PerDevice(map) if map.is_empty() => 0,
            Forests::PerDevice(map) => map.values().map(|s| s.seen).min().unwrap_or(0),
        };
        (seen < needed).then_some((seen, needed))
    }

    /// Scores one reading (before adding it to the model) and adds it.
    ///
    /// Never fails: if the forest library reports an error (not expected with valid
    /// parameters), the reading is output with score 0.0 and no explanation, and
    /// [`Detector::errors`] / [`Detector::last_error`] say so. Use [`Detector::try_score`] to
    /// see the error instead.
    pub fn score(&mut self, reading: &Reading) -> ScoredReading {
        match self.try_score(reading) {
            Ok(scored) => scored,
            Err(e) => {
                self.errors += 1;
                self.last_error = Some(e.to_string());
                ScoredReading {
                    reading: reading.clone(),
                    anomaly_score: 0.0,
                    explanation: None,
                }
            }
        }
    }

    /// Like [`Detector::score`], returning the library's error if there is one.
    pub fn try_score(&mut self, reading: &Reading) -> Result<ScoredReading, DetectorError> {
        let params = self.params;
        let (state, device) = match &mut self.forests {
            Forests::Global(state) => (&mut **state, None),
            Forests::PerDevice(map) => {
                let id = reading.device_id.as_str();
                if !map.contains_key(id) {
                    let seed = device_seed(params.random_seed, id);
                    let forest =
                        Forest::build(&params, seed).map_err(|message| DetectorError::Forest {
                            device: Some(id.to_string()),
                            message,
                        })?;
                    map.insert(id.to_string(), ForestState { seen: 0, forest });
                }
                let state = map.get_mut(id).ok_or_else(|| DetectorError::Forest {
                    device: Some(id.to_string()),
                    message: "forest vanished".into(),
                })?;
                (state, Some(id))
            }
        };
        let fail = |e: rcflib::errors::RCFError| DetectorError::Forest {
            device: device.map(str::to_string),
            message: e.to_string(),
        };

        let point = [reading.sensor_reading as f32];
        let warm = state.seen >= params.warm_up_readings();
        let rcf = state.forest.rcf_mut();
        // Warm-up: the library itself returns 0 here; skipping the traversal keeps the
        // output in step with `warm_up()` by construction.
        let score = if warm {
            rcf.score(&point).map_err(fail)?
        } else {
            0.0
        };
        let explanation = if !params.explanation {
            None
        } else if warm {
            let attribution = rcf.attribution(&point).map_err(fail)?;
            let high: f64 = attribution.high.iter().sum();
            let low: f64 = attribution.low.iter().sum();
            Some(explain(high, low))
        } else {
            Some(explain(0.0, 0.0))
        };
        rcf.update(&point, 0).map_err(fail)?;
        state.seen += 1;
        self.scored += 1;

        Ok(ScoredReading {
            reading: reading.clone(),
            anomaly_score: score,
            explanation,
        })
    }

    /// Writes the model to `path` atomically: a temporary file in the same directory, fsync,
    /// rename over `path`, fsync of the directory. Errors name the path.
    pub fn save(&self, path: &Path) -> io::Result<()> {
        let in_context = |e: io::Error| {
            io::Error::new(
                e.kind(),
                format!("cannot write detector snapshot {}: {e}", path.display()),
            )
        };
        let bytes = self.snapshot_bytes().map_err(in_context)?;
        write_atomically(path, &bytes).map_err(in_context)
    }

    fn snapshot_bytes(&self) -> io::Result<Vec<u8>> {
        let payload = postcard::to_stdvec(&SnapshotOut {
            params: &self.params,
            scored: self.scored,
            forests: &self.forests,
        })
        .map_err(|e| io::Error::other(format!("encoding failed: {e}")))?;
        let mut bytes = Vec::with_capacity(SNAPSHOT_HEADER_LEN + payload.len());
        bytes.extend_from_slice(SNAPSHOT_MAGIC);
        bytes.extend_from_slice(&SNAPSHOT_FORMAT_VERSION.to_le_bytes());
        bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&fnv1a64(&payload).to_le_bytes());
        bytes.extend_from_slice(&payload);
        Ok(bytes)
    }

    /// Restores a model saved by [`Detector::save`]. It must have been built with the same
    /// model parameters (all but `explanation`, which is taken from `params`).
    pub fn load(path: &Path, params: &DetectorParams) -> Result<Detector, SnapshotError> {
        params.validate()?;
        let bytes = fs::read(path).map_err(|source| {
            if source.kind() == io::ErrorKind::NotFound {
                SnapshotError::Missing {
                    path: path.to_path_buf(),
                }
            } else {
                SnapshotError::Io {
                    path: path.to_path_buf(),
                    source,
                }
            }
        })?;
        let corrupt = |reason: String| SnapshotError::Corrupt {
            path: path.to_path_buf(),
            reason,
        };

        if bytes.len() < SNAPSHOT_FIXED_LEN {
            return Err(corrupt(format!(
                "truncated: {} bytes, shorter than its {SNAPSHOT_FIXED_LEN}-byte header",
                bytes.len()
            )));
        }
        if &bytes[..8] != SNAPSHOT_MAGIC {
            return Err(corrupt(
                "not a detector snapshot (it does not start with IOTAARCF)".into(),
            ));
        }
        let version = u32::from_le_bytes(le_array(&bytes[8..12]));
        if version != SNAPSHOT_FORMAT_VERSION {
            return Err(SnapshotError::Version {
                path: path.to_path_buf(),
                found: version,
                expected: SNAPSHOT_FORMAT_VERSION,
            });
        }
        if bytes.len() < SNAPSHOT_HEADER_LEN {
            return Err(corrupt(format!(
                "truncated: {} bytes, shorter than its {SNAPSHOT_HEADER_LEN}-byte header",
                bytes.len()
            )));
        }
        let declared = u64::from_le_bytes(le_array(&bytes[12..20]));
        let checksum = u64::from_le_bytes(le_array(&bytes[20..28]));
        let payload = &bytes[SNAPSHOT_HEADER_LEN..];
        if declared != payload.len() as u64 {
            return Err(corrupt(format!(
                "the header says {declared} bytes of model, the file holds {} (truncated or damaged)",
                payload.len()
            )));
        }
        if fnv1a64(payload) != checksum {
            return Err(corrupt("checksum mismatch (damaged)".into()));
        }
        let (snapshot, rest) = postcard::take_from_bytes::<SnapshotIn>(payload)
            .map_err(|e| corrupt(format!("cannot decode the model: {e}")))?;
        if !rest.is_empty() {
            return Err(corrupt(format!(
                "{} unexpected bytes after the model",
                rest.len()
            )));
        }

        let differences = snapshot.params.model_differences(params);
        if !differences.is_empty() {
            return Err(SnapshotError::Params {
                path: path.to_path_buf(),
                differences,
            });
        }
        let shape_ok = matches!(
            (&snapshot.forests, params.per_device),
            (Forests::Global(_), false) | (Forests::PerDevice(_), true)
        );
        if !shape_ok {
            return Err(corrupt(
                "its forests do not match its per_device setting".into(),
            ));
        }
        Ok(Detector {
            params: *params,
            forests: snapshot.forests,
            scored: snapshot.scored,
            errors: 0,
            last_error: None,
        })
    }
}

fn explain(high: f64, low: f64) -> Explanation {
    let total = high + low;
    let strength = if total > 0.0 {
        (high - low).abs() / total
    } else {
        0.0
    };
    let direction = if high >= low {
        Direction::High
    } else {
        Direction::Low
    };
    let mut explanation = Explanation::new();
    explanation.insert(
        FIELD.to_string(),
        Attribution {
            attribution_score: total,
            strength,
            direction,
        },
    );
    explanation
}

/// Copies a slice of known length into an array (the callers slice exactly N bytes).
fn le_array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    for (o, b) in out.iter_mut().zip(bytes) {
        *o = *b;
    }
    out
}

/// Distinguishes temporary files of concurrent saves in one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path has no file name"))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        // Best effort: the temporary file is useless now; the old snapshot is untouched.
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    // Directories cannot be opened for fsync here; the rename is as durable as it gets.
    Ok(())
}

/// What a backtest ([`score_lines`]) saw.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BacktestSummary {
    /// Lines read, including empty and bad ones.
    pub lines: u64,
    /// Readings scored (one output line each).
    pub scored: u64,
    /// Lines that were not a reading (reported through `on_bad_line`).
    pub bad: u64,
    /// Highest ANOMALY_SCORE seen (0.0 if none was scored or all were in warm-up).
    pub max_score: f64,
}

/// Backtest: scores NDJSON readings from `input` in order with a fresh detector built from
/// `params`, writing one scored reading per line to `out`. Lines that are not a reading are
/// reported to `on_bad_line(line number (1-based), one-line message)` and skipped; empty lines
/// are skipped silently. Fails only on I/O errors (or invalid `params`, as `InvalidInput`).
pub fn score_lines(
    input: impl BufRead,
    out: impl Write,
    params: &DetectorParams,
    on_bad_line: impl FnMut(usize, String),
) -> io::Result<BacktestSummary> {
    let mut detector = Detector::new(*params)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    score_lines_with(&mut detector, input, out, on_bad_line)
}

/// [`score_lines`] with a given detector (for example one loaded from a snapshot).
pub fn score_lines_with(
    detector: &mut Detector,
    mut input: impl BufRead,
    out: impl Write,
    mut on_bad_line: impl FnMut(usize, String),
) -> io::Result<BacktestSummary> {
    let mut out = io::BufWriter::new(out);
    let mut summary = BacktestSummary {
        lines: 0,
        scored: 0,
        bad: 0,
        max_score: 0.0,
    };
    let mut line = Vec::new();
    let mut number = 0usize;
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        number += 1;
        summary.lines += 1;
        let text = line.trim_ascii();
        if text.is_empty() {
            continue;
        }
        match Reading::decode(text) {
            Ok(reading) => {
                let scored = detector.score(&reading);
                summary.scored += 1;
                summary.max_score = summary.max_score.max(scored.anomaly_score);
                out.write_all(&scored.encode())?;
            }
            Err(e) => {
                summary.bad += 1;
                on_bad_line(number, e.to_string().replace(['\n', '\r'], " "));
            }
        }
    }
    out.flush()?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use std::time::Instant;

    /// The seed's alert threshold (facts/AWS.md: `WHERE ANOMALY_SCORE > 4`).
    const THRESHOLD: f64 = 4.0;
    /// The seed's devices (facts/AWS.md).
    const DEVICES: [&str; 5] = ["aaaa", "bbbb", "cccc", "dddd", "eeee"];

    fn reading(device: &str, value: i64, i: u64) -> Reading {
        let secs = i / 5;
        Reading {
            device_id: device.to_string(),
            sensor_reading: value,
            reading_timestamp: format!(
                "2026-11-30 {:02}:{:02}:{:02}.{:03}",
                (secs / 3600) % 24,
                (secs / 60) % 60,
                secs % 60,
                (i % 5) * 200
            ),
        }
    }

    /// The seed's normal stream: devices round-robin, readings uniform in -5..=5 (seeded).
    struct SeedStream {
        rng: ChaCha8Rng,
        i: u64,
    }

    impl SeedStream {
        fn new(seed: u64) -> Self {
            SeedStream {
                rng: ChaCha8Rng::seed_from_u64(seed),
                i: 0,
            }
        }

        fn normal(&mut self) -> Reading {
            let device = DEVICES[(self.i % 5) as usize];
            let r = reading(device, self.rng.random_range(-5..=5), self.i);
            self.i += 1;
            r
        }

        /// A seed spike: ±(400..=500) on a random device.
        fn spike(&mut self, positive: bool) -> Reading {
            let device = DEVICES[self.rng.random_range(0..5)];
            let magnitude: i64 = self.rng.random_range(400..=500);
            let r = reading(
                device,
                if positive { magnitude } else { -magnitude },
                self.i,
            );
            self.i += 1;
            r
        }
    }

    fn small_params() -> DetectorParams {
        DetectorParams {
            trees: 20,
            sample_size: 64,
            ..DetectorParams::seed()
        }
    }

    fn attribution(s: &ScoredReading) -> &Attribution {
        &s.explanation.as_ref().expect("explanation enabled")[FIELD]
    }

    fn assert_sums_to_score(s: &ScoredReading) {
        let a = attribution(s).attribution_score;
        let tolerance = 1e-9 * s.anomaly_score.abs().max(f64::MIN_POSITIVE);
        assert!(
            (a - s.anomaly_score).abs() <= tolerance,
            "attribution {a} vs score {}",
            s.anomaly_score
        );
    }

    #[test]
    fn detector_can_move_to_a_worker_thread() {
        fn assert_send<T: Send + 'static>() {}
        assert_send::<Detector>();
    }

    #[test]
    fn seed_params_are_kdas() {
        let p = DetectorParams::seed();
        assert_eq!(
            (
                p.trees,
                p.sample_size,
                p.time_decay,
                p.shingle_size,
                p.per_device,
                p.explanation,
                p.random_seed
            ),
            (100, 256, 120, 1, false, true, 42)
        );
        assert_eq!(p.warm_up_readings(), 65);
        assert_eq!(DetectorParams::default(), p);
    }

    #[test]
    fn normal_stream_warms_up_then_rarely_scores_above_threshold() {
        const READINGS: u64 = 10_000;
        // Explanation off: it is tested with the spikes, and it costs a second traversal.
        let params = DetectorParams {
            explanation: false,
            ..DetectorParams::seed()
        };
        let mut d = Detector::new(params).unwrap();
        let mut stream = SeedStream::new(1);
        let needed = params.warm_up_readings();
        assert_eq!(d.warm_up(), Some((0, needed)));

        let started = Instant::now();
        let mut live = Vec::new();
        for i in 0..READINGS {
            let s = d.score(&stream.normal());
            if i < needed {
                assert_eq!(s.anomaly_score, 0.0, "reading {i} is in warm-up");
                let expected = (i + 1 < needed).then_some((i + 1, needed));
                assert_eq!(d.warm_up(), expected, "after reading {i}");
            } else {
                assert!(s.anomaly_score > 0.0, "reading {i} scored 0 after warm-up");
                live.push(s.anomaly_score);
            }
        }
        let elapsed = started.elapsed().as_secs_f64();
        assert_eq!(d.warm_up(), None);
        assert_eq!(d.scored(), READINGS);
        assert_eq!(d.errors(), 0);

        let above = live.iter().filter(|&&s| s > THRESHOLD).count();
        let fraction = above as f64 / live.len() as f64;
        live.sort_by(f64::total_cmp);
        let pct = |p: f64| live[((live.len() - 1) as f64 * p) as usize];
        eprintln!(
            "normal: {} live, {above} above {THRESHOLD} ({:.4} %), median {:.3}, p99 {:.3}, \
             p99.9 {:.3}, max {:.3}; {:.0} readings/s",
            live.len(),
            fraction * 100.0,
            pct(0.5),
            pct(0.99),
            pct(0.999),
            live[live.len() - 1],
            READINGS as f64 / elapsed
        );
        assert!(fraction < 0.001, "{above} false alerts of {}", live.len());
        // Normal points sit near 1 (facts/RCF.md), far below a spike's ~7.
        assert!(pct(0.5) > 0.3 && pct(0.5) < 2.0, "median {}", pct(0.5));
    }

    #[test]
    fn every_seed_spike_scores_above_threshold_with_its_direction() {
        const SPIKES: usize = 20;
        let mut d = Detector::new(DetectorParams::seed()).unwrap();
        let mut stream = SeedStream::new(2);
        let mut gaps = ChaCha8Rng::seed_from_u64(3);
        for _ in 0..300 {
            let s = d.score(&stream.normal());
            assert_sums_to_score(&s);
        }
        assert_eq!(d.warm_up(), None);

        let mut min_spike = f64::INFINITY;
        for k in 0..SPIKES {
            // Explaining only the spikes keeps this test fast; it changes no score.
            d.set_explanation(false);
            for _ in 0..gaps.random_range(250..=350) {
                d.score(&stream.normal());
            }
            d.set_explanation(true);
            let positive = k % 2 == 0;
            let s = d.score(&stream.spike(positive));
            assert!(
                s.anomaly_score > THRESHOLD,
                "spike {k} ({}) scored {}",
                s.reading.sensor_reading,
                s.anomaly_score
            );
            min_spike = min_spike.min(s.anomaly_score);
            let a = attribution(&s);
            let expected = if positive {
                Direction::High
            } else {
                Direction::Low
            };
            assert_eq!(a.direction, expected, "spike {k}: {a:?}");
            assert!(a.strength > 0.5 && a.strength <= 1.0, "spike {k}: {a:?}");
            assert_sums_to_score(&s);
        }
        eprintln!("spikes: {SPIKES}, minimum score {min_spike:.3}");
    }

    #[test]
    fn explanation_is_absent_when_disabled_and_zero_in_warm_up() {
        let params = small_params();
        let mut with = Detector::new(params).unwrap();
        let mut without = Detector::new(DetectorParams {
            explanation: false,
            ..params
        })
        .unwrap();
        let mut stream = SeedStream::new(4);
        for i in 0..100 {
            let r = stream.normal();
            let a = with.score(&r);
            let b = without.score(&r);
            assert_eq!(b.explanation, None);
            assert_eq!(
                a.anomaly_score, b.anomaly_score,
                "explanation changes no score"
            );
            let line = String::from_utf8(b.encode()).unwrap();
            assert!(!line.contains("ANOMALY_EXPLANATION"), "{line}");
            if i < params.warm_up_readings() {
                assert_eq!(attribution(&a).attribution_score, 0.0);
                assert_eq!(attribution(&a).strength, 0.0);
            } else {
                assert_sums_to_score(&a);
            }
        }
    }

    #[test]
    fn per_device_forests_warm_up_separately_and_deterministically() {
        let params = DetectorParams {
            per_device: true,
            ..small_params()
        };
        let needed = params.warm_up_readings();
        let mut d = Detector::new(params).unwrap();
        assert_eq!(d.warm_up(), Some((0, needed)));
        assert_eq!(d.forest_count(), 0);
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut aaaa = Vec::new();
        for i in 0..needed + 20 {
            let s = d.score(&reading("aaaa", rng.random_range(-5..=5), i));
            aaaa.push(s.anomaly_score);
        }
        assert!(aaaa[..needed as usize].iter().all(|&s| s == 0.0));
        assert!(aaaa[needed as usize..].iter().all(|&s| s > 0.0));
        assert_eq!(d.warm_up(), None);

        // A new device warms up on its own, and is the least-warm one.
        let s = d.score(&reading("bbbb", 3, 0));
        assert_eq!(s.anomaly_score, 0.0);
        assert_eq!(d.warm_up(), Some((1, needed)));
        assert_eq!(d.forest_count(), 2);

        // Same seed and readings, same scores (per-device seeds are stable).
        let mut again = Detector::new(params).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for (i, &expected) in aaaa.iter().enumerate() {
            let s = again.score(&reading("aaaa", rng.random_range(-5..=5), i as u64));
            assert_eq!(s.anomaly_score, expected);
        }
        assert_eq!(device_seed(42, "aaaa"), device_seed(42, "aaaa"));
        assert_ne!(device_seed(42, "aaaa"), device_seed(42, "bbbb"));
        assert_ne!(device_seed(42, "aaaa"), device_seed(43, "aaaa"));
        // Pinned: changing the hash would change every per-device forest's seed.
        assert_eq!(fnv1a64(b"aaaa"), 0xf521_6183_ea91_2259);
    }

    /// Scores of `n + m` readings uninterrupted, and of `n`, save, load, `m` more.
    fn round_trip(params: DetectorParams, n: u64, m: u64) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.rcf");
        let mut stream = SeedStream::new(6);
        let readings: Vec<Reading> = (0..n + m)
            .map(|i| {
                if i == n + m / 2 {
                    stream.spike(true)
                } else {
                    stream.normal()
                }
            })
            .collect();

        let mut uninterrupted = Detector::new(params).unwrap();
        let expected: Vec<ScoredReading> =
            readings.iter().map(|r| uninterrupted.score(r)).collect();

        let mut first = Detector::new(params).unwrap();
        for r in &readings[..n as usize] {
            first.score(r);
        }
        first.save(&path).unwrap();
        let warm_up_before = first.warm_up();
        drop(first);

        let mut restored = Detector::load(&path, &params).unwrap();
        assert_eq!(restored.scored(), n);
        assert_eq!(restored.warm_up(), warm_up_before);
        for (i, r) in readings.iter().enumerate().skip(n as usize) {
            let s = restored.score(r);
            assert_eq!(s, expected[i], "reading {i} differs after restore");
        }
        assert!(
            expected[n as usize..]
                .iter()
                .any(|s| s.anomaly_score > THRESHOLD)
        );
        assert_eq!(restored.scored(), n + m);
        // Only the snapshot is left in the directory (no temporary files).
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("model.rcf")]);
    }

    #[test]
    fn restored_detector_continues_bit_identically() {
        round_trip(DetectorParams::seed(), 600, 400);
    }

    #[test]
    fn restored_per_device_detector_continues_bit_identically() {
        // 200 readings = 40 per device: saved in the middle of every device's warm-up.
        let params = DetectorParams {
            per_device: true,
            ..DetectorParams::seed()
        };
        round_trip(params, 200, 600);
    }

    #[test]
    fn other_forest_sizes_build_score_and_restore() {
        for params in [
            // more than 256 points per tree: the medium forest type
            DetectorParams {
                trees: 5,
                sample_size: 300,
                ..DetectorParams::seed()
            },
            // too many points for 16-bit indices: medium as well
            DetectorParams {
                trees: 300,
                sample_size: 256,
                time_decay: 100_000,
                ..DetectorParams::seed()
            },
            // shingled, per device
            DetectorParams {
                trees: 10,
                sample_size: 32,
                shingle_size: 4,
                per_device: true,
                ..DetectorParams::seed()
            },
        ] {
            round_trip(params, 150, 150);
        }
    }

    fn saved_snapshot(dir: &Path, params: &DetectorParams) -> (PathBuf, Vec<u8>) {
        let path = dir.join("model.rcf");
        let mut d = Detector::new(*params).unwrap();
        let mut stream = SeedStream::new(7);
        for _ in 0..100 {
            d.score(&stream.normal());
        }
        d.save(&path).unwrap();
        let bytes = fs::read(&path).unwrap();
        (path, bytes)
    }

    fn assert_one_line(e: &SnapshotError, path: &Path) {
        let message = e.to_string();
        assert!(!message.contains('\n'), "{message}");
        assert!(message.contains(&path.display().to_string()), "{message}");
    }

    #[test]
    fn snapshot_errors_are_typed_and_never_panic() {
        let dir = tempfile::tempdir().unwrap();
        let params = small_params();
        let (path, good) = saved_snapshot(dir.path(), &params);
        assert!(Detector::load(&path, &params).is_ok());

        let missing = dir.path().join("nothing-here.rcf");
        let e = Detector::load(&missing, &params).unwrap_err();
        assert!(matches!(e, SnapshotError::Missing { .. }), "{e}");
        assert_one_line(&e, &missing);

        let write = |bytes: &[u8]| fs::write(&path, bytes).unwrap();
        let load = || Detector::load(&path, &params);

        // Truncated anywhere.
        for len in [0, 5, 11, 12, 20, 27, 28, 29, good.len() / 2, good.len() - 1] {
            write(&good[..len]);
            let e = load().unwrap_err();
            assert!(matches!(e, SnapshotError::Corrupt { .. }), "len {len}: {e}");
            assert_one_line(&e, &path);
        }
        // A flipped byte in the magic, the length, the checksum or the model.
        let step = (good.len() / 97).max(1);
        let positions = [0, 7, 12, 19, 20, 27]
            .into_iter()
            .chain((SNAPSHOT_HEADER_LEN..good.len()).step_by(step));
        for at in positions {
            let mut bad = good.clone();
            bad[at] ^= 0x5a;
            write(&bad);
            let e = load().unwrap_err();
            assert!(matches!(e, SnapshotError::Corrupt { .. }), "byte {at}: {e}");
        }
        // A payload that passes the checksum but is cut short: the decoder says so.
        let mut short = good[..good.len() - 10].to_vec();
        let payload_len = (short.len() - SNAPSHOT_HEADER_LEN) as u64;
        let checksum = fnv1a64(&short[SNAPSHOT_HEADER_LEN..]);
        short[12..20].copy_from_slice(&payload_len.to_le_bytes());
        short[20..28].copy_from_slice(&checksum.to_le_bytes());
        write(&short);
        let e = load().unwrap_err();
        assert!(
            matches!(&e, SnapshotError::Corrupt { reason, .. } if reason.contains("decode")),
            "{e}"
        );
        // Not a snapshot at all.
        write(b"{\"deviceId\":\"aaaa\",\"sensorReading\":3}\n");
        let e = load().unwrap_err();
        assert!(
            matches!(e, SnapshotError::Corrupt { .. }) && e.to_string().contains("IOTAARCF"),
            "{e}"
        );

        // Another format version.
        let mut other = good.clone();
        other[8..12].copy_from_slice(&(SNAPSHOT_FORMAT_VERSION + 1).to_le_bytes());
        write(&other);
        let e = load().unwrap_err();
        assert!(
            matches!(e, SnapshotError::Version { found, expected, .. }
                if found == SNAPSHOT_FORMAT_VERSION + 1 && expected == SNAPSHOT_FORMAT_VERSION),
            "{e}"
        );
        assert_one_line(&e, &path);

        // Other model parameters.
        write(&good);
        let changed = DetectorParams {
            trees: 30,
            random_seed: 7,
            ..params
        };
        let e = Detector::load(&path, &changed).unwrap_err();
        match &e {
            SnapshotError::Params { differences, .. } => {
                assert_eq!(
                    differences,
                    &["trees 20 (now 30)", "random_seed 42 (now 7)"]
                )
            }
            other => panic!("expected Params, got {other}"),
        }
        assert_one_line(&e, &path);
        let e = Detector::load(
            &path,
            &DetectorParams {
                per_device: true,
                ..params
            },
        )
        .unwrap_err();
        assert!(matches!(e, SnapshotError::Params { .. }), "{e}");

        // `explanation` is output only: the snapshot loads and follows the new setting.
        let mut quiet = Detector::load(
            &path,
            &DetectorParams {
                explanation: false,
                ..params
            },
        )
        .unwrap();
        assert_eq!(quiet.score(&reading("aaaa", 1, 0)).explanation, None);

        // Invalid parameters are reported as such, before the file is read.
        let e = Detector::load(&path, &DetectorParams { trees: 0, ..params }).unwrap_err();
        assert!(matches!(e, SnapshotError::InvalidParams(_)), "{e}");
    }

    #[test]
    fn save_replaces_atomically_and_reports_where_it_failed() {
        let dir = tempfile::tempdir().unwrap();
        let params = small_params();
        let (path, _) = saved_snapshot(dir.path(), &params);
        // Saving again over an existing snapshot replaces it.
        let mut d = Detector::load(&path, &params).unwrap();
        d.score(&reading("aaaa", 1, 0));
        d.save(&path).unwrap();
        assert_eq!(Detector::load(&path, &params).unwrap().scored(), 101);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);

        let nowhere = dir.path().join("no-such-dir").join("model.rcf");
        let e = d.save(&nowhere).unwrap_err();
        assert!(
            e.to_string().contains(&nowhere.display().to_string()),
            "{e}"
        );
        assert!(!e.to_string().contains('\n'), "{e}");
    }

    #[test]
    fn invalid_params_are_rejected_with_the_field() {
        for (params, field) in [
            (
                DetectorParams {
                    trees: 0,
                    ..DetectorParams::seed()
                },
                "trees",
            ),
            (
                DetectorParams {
                    sample_size: 3,
                    ..DetectorParams::seed()
                },
                "sample_size",
            ),
            (
                DetectorParams {
                    time_decay: 0,
                    ..DetectorParams::seed()
                },
                "time_decay",
            ),
            (
                DetectorParams {
                    shingle_size: 0,
                    ..DetectorParams::seed()
                },
                "shingle_size",
            ),
        ] {
            let e = Detector::new(params).unwrap_err();
            assert!(
                matches!(&e, DetectorError::InvalidParams { field: f, .. } if *f == field),
                "{e}"
            );
            assert!(e.to_string().contains(field), "{e}");
        }
    }

    #[test]
    fn score_lines_reports_bad_lines_and_scores_the_rest_in_order() {
        let params = small_params();
        let mut stream = SeedStream::new(8);
        let readings: Vec<Reading> = (0..60).map(|_| stream.normal()).collect();
        let mut input = Vec::new();
        for (i, r) in readings.iter().enumerate() {
            if i == 30 {
                input.extend_from_slice(b"{\"deviceId\":\"aaaa\",\"sensorReading\":\"high\"}\n");
                input.extend_from_slice(b"\n");
            }
            let mut line = r.encode();
            if i == 40 {
                // CRLF line endings are accepted.
                line.insert(line.len() - 1, b'\r');
            }
            input.extend_from_slice(&line);
        }
        input.extend_from_slice(b"not json at all"); // last line, no newline

        let mut out = Vec::new();
        let mut bad = Vec::new();
        let summary = score_lines(&input[..], &mut out, &params, |n, message| {
            bad.push((n, message))
        })
        .unwrap();

        assert_eq!(bad.len(), 2, "{bad:?}");
        assert_eq!(bad[0].0, 31);
        assert!(
            bad[0].1.starts_with("expected a reading as JSON"),
            "{}",
            bad[0].1
        );
        assert!(!bad[0].1.contains('\n'));
        assert_eq!(bad[1].0, 63);

        let mut direct = Detector::new(params).unwrap();
        let expected: Vec<ScoredReading> = readings.iter().map(|r| direct.score(r)).collect();
        // Byte-for-byte: serde_json may read a float back 1 ULP off, so compare the lines.
        let lines: Vec<&[u8]> = out.split_inclusive(|&b| b == b'\n').collect();
        assert_eq!(lines.len(), expected.len());
        for (i, (line, s)) in lines.iter().zip(&expected).enumerate() {
            assert!(*line == s.encode().as_slice(), "output line {i} differs");
        }
        let max = expected.iter().map(|s| s.anomaly_score).fold(0.0, f64::max);
        assert_eq!(
            summary,
            BacktestSummary {
                lines: 63,
                scored: 60,
                bad: 2,
                max_score: max
            }
        );
        assert!(max > 0.0);
    }
}
