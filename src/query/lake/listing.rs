//! Listing the lake at scan time: the `YYYY/MM/DD/HH` folders, then the objects in the ones kept.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::parquet::ParquetFile;

/// What an object holds, from its name (`.parquet`, `.gz`, anything else: JSON lines).
#[derive(Debug, Clone)]
pub(super) enum ObjectKind {
    Json {
        gzip: bool,
    },
    /// Opened when the scan is planned; `Err` says why the table cannot read it.
    Parquet(Arc<Result<ParquetFile, String>>),
    /// The rows a compacted Parquet object holds for an object gone since it was listed:
    /// `count` rows from row `start` (the object is the compacted one).
    Replaced {
        file: Arc<ParquetFile>,
        start: u64,
        count: u64,
    },
}

/// One object to read.
#[derive(Debug, Clone)]
pub(super) struct LakeObject {
    pub(super) path: PathBuf,
    pub(super) datehour: Arc<str>,
    pub(super) kind: ObjectKind,
    pub(super) size: u64,
}

/// Whether a file name is a Parquet object's.
pub(crate) fn is_parquet_name(name: &str) -> bool {
    name.ends_with(".parquet")
}

fn digits(name: &str, len: usize) -> bool {
    name.len() == len && name.bytes().all(|b| b.is_ascii_digit())
}

/// A folder's entries in name order, without dot- and `_`-names, symlinks followed: (name,
/// path, type, size). Empty if the folder cannot be read.
pub(super) fn sorted_dir(dir: &Path) -> Vec<(String, PathBuf, std::fs::FileType, u64)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<_> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            if name.starts_with('.') || name.starts_with('_') {
                return None;
            }
            // Follow symlinks: a lake may link folders in.
            let meta = std::fs::metadata(e.path()).ok()?;
            Some((name, e.path(), meta.file_type(), meta.len()))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Every `YYYY/MM/DD/HH` folder under the root, as (`datehour`, path), in time order.
pub(super) fn list_hour_folders(root: &Path, year_prefix: &str) -> Vec<(String, PathBuf)> {
    let mut hours = Vec::new();
    for (name, year_dir, ty, _) in sorted_dir(root) {
        let Some(year) = name.strip_prefix(year_prefix) else {
            continue;
        };
        if !ty.is_dir() || !digits(year, 4) {
            continue;
        }
        for (month, month_dir, ty, _) in sorted_dir(&year_dir) {
            if !ty.is_dir() || !digits(&month, 2) {
                continue;
            }
            for (day, day_dir, ty, _) in sorted_dir(&month_dir) {
                if !ty.is_dir() || !digits(&day, 2) {
                    continue;
                }
                for (hour, hour_dir, ty, _) in sorted_dir(&day_dir) {
                    if ty.is_dir() && digits(&hour, 2) {
                        hours.push((format!("{year}/{month}/{day}/{hour}"), hour_dir));
                    }
                }
            }
        }
    }
    hours
}

/// The objects in the given hour folders. Parquet objects are opened (their footers read);
/// objects that a compacted Parquet object in the same folder replaces are left out, and a
/// Parquet object gone between the folder's listing and its opening is read from the object
/// that replaced it, if any.
pub(super) fn list_objects(folders: Vec<(String, PathBuf)>) -> Vec<LakeObject> {
    let mut objects = Vec::new();
    for (datehour, dir) in folders {
        let datehour: Arc<str> = datehour.into();
        let mut here = Vec::new();
        let mut gone = Vec::new();
        let mut replaced = std::collections::HashSet::new();
        for (name, path, ty, size) in sorted_dir(&dir) {
            if !ty.is_file() {
                continue;
            }
            let kind = if is_parquet_name(&name) {
                let opened = ParquetFile::open(&path);
                match &opened {
                    Ok(p) => replaced.extend(p.replaces.iter().map(|r| r.object.clone())),
                    Err(_) if !path.exists() => {
                        gone.push(name);
                        continue;
                    }
                    Err(_) => {}
                }
                ObjectKind::Parquet(Arc::new(opened))
            } else {
                ObjectKind::Json {
                    gzip: name.ends_with(".gz"),
                }
            };
            here.push((name, path, kind, size));
        }
        for (name, path, kind, size) in here {
            if replaced.contains(&name) {
                continue;
            }
            objects.push(LakeObject {
                path,
                datehour: datehour.clone(),
                kind,
                size,
            });
        }
        for name in gone.iter().filter(|n| !replaced.contains(*n)) {
            if let Some(object) = replaced_rows(&dir, name, &datehour, None) {
                objects.push(object);
            }
        }
    }
    objects
}

/// The rows of the object `name`, gone from `dir`, in the compacted object that replaced it
/// (only rows `sub` of them: (first, count), when the gone object was itself read for another
/// object's rows).
pub(super) fn replaced_rows(
    dir: &Path,
    name: &str,
    datehour: &Arc<str>,
    sub: Option<(u64, u64)>,
) -> Option<LakeObject> {
    let (file, path, mut start, mut count) = replacement_of(dir, name)?;
    if let Some((from, n)) = sub {
        start += from;
        count = n.min(count.saturating_sub(from));
    }
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    Some(LakeObject {
        path,
        datehour: datehour.clone(),
        kind: ObjectKind::Replaced {
            file: Arc::new(file),
            start,
            count,
        },
        size,
    })
}

/// The compacted Parquet object in `dir` that replaces the object `name`, with the rows
/// that object gave: (the object, its path, first row, row count).
fn replacement_of(dir: &Path, name: &str) -> Option<(ParquetFile, PathBuf, u64, u64)> {
    for (file, path, ty, _) in sorted_dir(dir) {
        if !ty.is_file() || !is_parquet_name(&file) {
            continue;
        }
        let Ok(p) = ParquetFile::open(&path) else {
            continue;
        };
        let mut start = 0u64;
        let mut found = None;
        for r in &p.replaces {
            if r.object == name {
                found = Some((start, r.rows));
                break;
            }
            start += r.rows;
        }
        if let Some((start, rows)) = found {
            return Some((p, path, start, rows));
        }
    }
    None
}
