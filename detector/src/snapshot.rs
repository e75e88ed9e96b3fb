//! Detector snapshots (beyond KDA, which always started empty): the model as bytes
//! ([`Detector::to_snapshot_bytes`], [`Detector::from_snapshot_bytes`]) and as a file
//! ([`Detector::save`], [`Detector::load`]). The layout is in the crate's documentation.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::durable::write_atomically;
use crate::rcf::{Detector, DetectorError, DetectorParams, Forests, fnv1a64};

/// Version of the snapshot file layout written by [`Detector::save`]. Bump it whenever the
/// payload changes shape (including a new krcflib whose serialized forest differs).
pub const SNAPSHOT_FORMAT_VERSION: u32 = 1;

pub(crate) const SNAPSHOT_MAGIC: &[u8; 8] = b"IOTAARCF";
/// magic + version: the part of the header every version shares.
pub(crate) const SNAPSHOT_FIXED_LEN: usize = 12;
/// magic + version + payload length + checksum.
pub(crate) const SNAPSHOT_HEADER_LEN: usize = 28;

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

impl Detector {
    /// Writes the model to `path` atomically: a temporary file in the same directory, fsync,
    /// rename over `path`, fsync of the directory. Errors name the path.
    pub fn save(&self, path: &Path) -> io::Result<()> {
        let in_context = |e: io::Error| {
            io::Error::new(
                e.kind(),
                format!("cannot write detector snapshot {}: {e}", path.display()),
            )
        };
        let bytes = self.to_snapshot_bytes().map_err(in_context)?;
        write_atomically(path, &bytes).map_err(in_context)
    }

    /// The model as snapshot bytes (header and payload), for a file or an object store.
    pub fn to_snapshot_bytes(&self) -> io::Result<Vec<u8>> {
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
        Detector::from_snapshot_bytes(&bytes, params, path)
    }

    /// Restores a model from snapshot bytes ([`Detector::to_snapshot_bytes`]); `origin` names
    /// where they came from in errors (a file, or an object's `s3://` URL).
    pub fn from_snapshot_bytes(
        bytes: &[u8],
        params: &DetectorParams,
        origin: &Path,
    ) -> Result<Detector, SnapshotError> {
        params.validate()?;
        let path = origin;
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

/// Copies a slice of known length into an array (the callers slice exactly N bytes).
fn le_array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    for (o, b) in out.iter_mut().zip(bytes) {
        *o = *b;
    }
    out
}
