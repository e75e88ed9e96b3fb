//! The detector function's code: the `bootstrap.zip` that `stack deploy` uploads to the stack's
//! bucket under a content-addressed key (`artifacts/detector/<sha256>.zip`), so that a code
//! change is a new key, and a new key is a template change that updates the function.
//!
//! Where the zip comes from, in order:
//! 1. `[aws] detector_artifact` / `stack deploy --artifact PATH`;
//! 2. else cargo-lambda, in the source tree this binary was built from (`lambda/`):
//!    `cargo lambda build --release --arm64 --output-format zip -p iotaa-lambda`. Cargo decides
//!    what is stale, so this is a no-op of a second or two when nothing changed; a first build
//!    takes minutes (README). cargo-lambda installs from PyPI (`pip install cargo-lambda`, which
//!    brings zig to link against Amazon Linux's glibc): without it, one line says so.

use std::path::{Path, PathBuf};
use std::process::Command;

use color_eyre::eyre::{Result, eyre};
use sha2::{Digest, Sha256};

use crate::config::{DetectorPlace, Loaded};
use crate::stack::Say;

/// The key prefix of uploaded function code in the stack's bucket.
pub const PREFIX: &str = "artifacts/detector/";

/// A function zip and its key.
#[derive(Debug, Clone)]
pub struct Artifact {
    pub bytes: Vec<u8>,
    pub key: String,
    /// Where it was read from, for messages.
    pub from: PathBuf,
}

impl Artifact {
    pub fn read(path: &Path) -> Result<Artifact> {
        let bytes = std::fs::read(path)
            .map_err(|e| eyre!("detector function zip {}: {e}", path.display()))?;
        if !bytes.starts_with(b"PK\x03\x04") {
            return Err(eyre!(
                "detector function zip {}: not a zip file (expected the bootstrap.zip of `cargo lambda build --output-format zip`)",
                path.display()
            ));
        }
        Ok(Artifact {
            key: key_of(&bytes),
            bytes,
            from: path.to_path_buf(),
        })
    }
}

/// `artifacts/detector/<sha256 of the bytes, hex>.zip`.
pub fn key_of(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{PREFIX}{hex}.zip")
}

/// The function's code for this deploy: `None` when the detector runs in the app.
pub fn detector_artifact(loaded: &Loaded, say: &dyn Say) -> Result<Option<Artifact>> {
    if loaded.config.aws.detector == DetectorPlace::App {
        return Ok(None);
    }
    if let Some(path) = &loaded.config.aws.detector_artifact {
        return Artifact::read(path).map(Some);
    }
    let source = Path::new(env!("CARGO_MANIFEST_DIR"));
    if !source.join("lambda").join("Cargo.toml").is_file() {
        return Err(eyre!(
            "the detector function is built from the source tree {}, which is not here: pass `stack deploy --artifact PATH` (a bootstrap.zip), or set [aws] detector = \"app\"",
            source.display()
        ));
    }
    let has_cargo_lambda = Command::new("cargo")
        .args(["lambda", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_cargo_lambda {
        return Err(eyre!(
            "the detector function is built with cargo-lambda, which is not installed: `pip install cargo-lambda` (it brings zig), or pass `stack deploy --artifact PATH`, or set [aws] detector = \"app\""
        ));
    }
    say.out(
        "detector: cargo lambda build --release --arm64 --output-format zip -p iotaa-lambda (a first build takes several minutes)"
            .to_string(),
    );
    let out = Command::new("cargo")
        .args([
            "lambda",
            "build",
            "--release",
            "--arm64",
            "--output-format",
            "zip",
            "-p",
            "iotaa-lambda",
        ])
        .current_dir(source)
        .output()
        .map_err(|e| eyre!("cannot run cargo lambda build: {e}"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr
            .lines()
            .rev()
            .find(|l| l.trim_start().starts_with("error"))
            .or_else(|| stderr.lines().rev().find(|l| !l.trim().is_empty()))
            .unwrap_or("no output");
        return Err(eyre!(
            "cargo lambda build failed ({}): {}",
            out.status,
            last.trim()
        ));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| source.join("target"));
    let zip = target
        .join("lambda")
        .join("bootstrap")
        .join("bootstrap.zip");
    let artifact = Artifact::read(&zip)?;
    say.out(format!(
        "detector: {} ({})",
        zip.display(),
        crate::text::bytes(artifact.bytes.len() as u64)
    ));
    Ok(Some(artifact))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_the_content_hash_and_a_non_zip_is_refused() {
        // sha256("abc"), from FIPS 180-2.
        assert_eq!(
            key_of(b"abc"),
            "artifacts/detector/ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad.zip"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bootstrap.zip");
        std::fs::write(&path, b"not a zip").unwrap();
        let err = Artifact::read(&path).unwrap_err().to_string();
        assert!(err.contains("not a zip file"), "{err}");
        let err = Artifact::read(&dir.path().join("missing.zip"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing.zip"), "{err}");
    }
}
