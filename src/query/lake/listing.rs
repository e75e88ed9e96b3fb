//! Listing the lake at scan time: the `YYYY/MM/DD/HH` folders, then the objects in the ones kept.

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One object to read.
#[derive(Debug, Clone)]
pub(super) struct LakeObject {
    pub(super) path: PathBuf,
    pub(super) datehour: Arc<str>,
    pub(super) gzip: bool,
    pub(super) size: u64,
}

fn digits(name: &str, len: usize) -> bool {
    name.len() == len && name.bytes().all(|b| b.is_ascii_digit())
}

fn sorted_dir(dir: &Path) -> Vec<(String, PathBuf, std::fs::FileType, u64)> {
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

/// The objects in the given hour folders.
pub(super) fn list_objects(folders: Vec<(String, PathBuf)>) -> Vec<LakeObject> {
    let mut objects = Vec::new();
    for (datehour, dir) in folders {
        let datehour: Arc<str> = datehour.into();
        for (name, path, ty, size) in sorted_dir(&dir) {
            if !ty.is_file() {
                continue;
            }
            objects.push(LakeObject {
                gzip: name.ends_with(".gz"),
                path,
                datehour: datehour.clone(),
                size,
            });
        }
    }
    objects
}
