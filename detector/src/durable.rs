//! Durable file writes: the one atomic write of the project (the app's checkpoints, exports
//! and the detector's snapshot files all use it) and the directory fsync that makes a rename
//! or a new file survive a crash. std only.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Distinguishes temporary files of concurrent saves in one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` so that readers see the old file or the whole new one, never a
/// part: a temporary file in the same folder, fsync, rename over `path`, fsync of the folder.
/// The folder must exist.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    write_atomically_in(path, bytes, dir)
}

/// [`write_atomically`] with the temporary file in `staging` (a folder on the same file
/// system, created if missing), for folders where readers must never see a temporary file
/// (the lake's hour folders). `path`'s folder is created if missing.
pub fn write_atomically_in(path: &Path, bytes: &[u8], staging: &Path) -> io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path has no file name"))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let tmp = staging.join(format!(
        ".{}.tmp-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        if staging != dir {
            fs::create_dir_all(staging)?;
            fs::create_dir_all(dir)?;
        }
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        // Best effort: the temporary file is useless now; the old file is untouched.
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Makes a folder's entries (a new or renamed file) durable.
#[cfg(unix)]
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
pub fn sync_dir(_dir: &Path) -> io::Result<()> {
    // Directories cannot be opened for fsync here; the rename is as durable as it gets.
    Ok(())
}
