//! The Random Cut Forest detector: parameters, the forests (one, or one per device), scoring
//! with KDA's score-then-update order, and the explanation. See the crate's documentation.

use std::collections::BTreeMap;
use std::fmt;

use rcflib::rcf::{AugmentedRCF, RCFBuilder, RCFLarge, RCFMedium, RCFOptionsBuilder, RCFSmall};
use serde::{Deserialize, Serialize};

use crate::records::{Attribution, Direction, Explanation, Reading, ScoredReading};

/// The one numeric field the forest scores, as named in the records and in the explanation.
pub const FIELD: &str = "sensorReading";

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
    pub(crate) fn model_differences(&self, now: &DetectorParams) -> Vec<String> {
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
/// Stable 64-bit FNV-1a hash (the same on every run and platform, unlike std's `RandomState`).
pub(crate) fn fnv1a64(bytes: &[u8]) -> u64 {
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
pub(crate) enum Forest {
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
pub(crate) struct ForestState {
    pub(crate) seen: u64,
    pub(crate) forest: Forest,
}

#[derive(Serialize, Deserialize)]
pub(crate) enum Forests {
    Global(Box<ForestState>),
    /// Ordered by device id, so snapshots and iteration are deterministic.
    PerDevice(BTreeMap<String, ForestState>),
}

/// Scores readings with a Random Cut Forest, one at a time, score first then update.
pub struct Detector {
    pub(crate) params: DetectorParams,
    pub(crate) forests: Forests,
    pub(crate) scored: u64,
    pub(crate) errors: u64,
    pub(crate) last_error: Option<String>,
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
