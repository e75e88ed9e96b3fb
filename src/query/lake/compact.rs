//! `iotaa lake compact`: the objects of closed hours become one Parquet object per hour (JSON
//! objects, and small Parquet objects such as delivery's with `format = "parquet"`; an hour
//! that is one Parquet object already is left alone).
//!
//! An hour folder is *closed* once its hour ended more than `min_age` ago (delivery names an
//! object after its oldest record's arrival, and writes it up to one buffer interval later). A
//! JSON object that still lands in a compacted hour stays JSON until the next compaction.
//!
//! For each closed hour, in this order:
//! 1. **Recovery**: objects that a Parquet object of the folder already replaces (left by a
//!    compaction that stopped after its rename) are removed.
//! 2. Every remaining object is read in full, in name order, and its readings are added to the
//!    new object. One that cannot be read to its end (a torn `.gz`, a foreign Parquet object)
//!    is left as it is, not compacted. Lines that are not readings are written, as they were,
//!    to `<prefix>delivery-errors/compaction-malformed/YYYY/MM/DD/HH/<object>.malformed`
//!    (where Firehose puts records its format conversion rejects), durably, before the new
//!    object appears.
//! 3. The Parquet object is written in `.staging/`, fsynced, renamed into the hour folder and the
//!    folder fsynced. Its footer names the objects it replaces, with their row counts, in the
//!    order of its rows.
//! 4. The originals are removed.
//!
//! A reader therefore sees the originals or the Parquet object, never both or neither: a scan
//! that lists the Parquet object skips the objects it names, and a scan that listed an
//! original that is gone when it opens it reads that object's rows from the Parquet object
//! (see `super::parquet`; row ranges compose when the replacing object was itself replaced).
//! A stop at any point loses and duplicates nothing; running again finishes the job. Every
//! file-system change is one *step*; tests stop the process after any step
//! (`abort_after_steps`).

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use datafusion::arrow::array::RecordBatch;

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};

use crate::detector::durable::{sync_dir, write_atomically_in};

use super::listing::{is_parquet_name, list_hour_folders, sorted_dir};
use super::parquet::{ParquetFile, ReadFail, ReadParts, Replaced, Rows};
use super::write::{ParquetObject, file_schema};
use super::{COL_DEVICE, COL_READING, COL_TIMESTAMP};

/// What to compact.
#[derive(Debug, Clone)]
pub struct CompactOptions {
    /// The folder that holds the year folders (the lake, plus the key prefix's folders).
    pub root: PathBuf,
    /// The rest of the key prefix (before `YYYY`), usually empty.
    pub year_prefix: String,
    /// Objects are named after the delivery stream.
    pub stream_name: String,
    pub now: DateTime<Utc>,
    /// An hour is closed this long after it ends.
    pub min_age: Duration,
    /// Tests: stop the process (abort) after this many file-system steps.
    pub abort_after_steps: Option<u64>,
}

/// What a compaction did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CompactReport {
    /// Closed hours compacted.
    pub hours: usize,
    /// Objects replaced (JSON, and Parquet objects merged), and their bytes.
    pub objects: usize,
    pub source_bytes: u64,
    /// Parquet objects written, and their bytes.
    pub parquet_objects: usize,
    pub parquet_bytes: u64,
    pub readings: u64,
    /// Lines that were not readings, kept under delivery-errors/.
    pub malformed: u64,
    /// Objects left as they are because they cannot be read to their end: which, and why.
    pub unreadable: Vec<String>,
    /// Leftovers of a stopped compaction removed.
    pub recovered: usize,
    /// Hours not closed yet.
    pub open_hours: usize,
}

struct Steps {
    done: u64,
    abort_after: Option<u64>,
}

impl Steps {
    fn step(&mut self) {
        self.done += 1;
        if self.abort_after.is_some_and(|n| self.done >= n) {
            eprintln!("compact: stopping after step {} (test)", self.done);
            std::process::abort();
        }
    }
}

/// Compacts every closed hour; `progress` gets one line per hour compacted.
pub fn compact(
    opts: &CompactOptions,
    mut progress: impl FnMut(&str),
) -> Result<CompactReport, String> {
    let mut report = CompactReport::default();
    let mut steps = Steps {
        done: 0,
        abort_after: opts.abort_after_steps,
    };
    // The root's own staging folder (a prefix with folders puts the root below the lake): a
    // rename must stay on one file system, and scans ignore dot-folders.
    let staging = opts.root.join(".staging");
    let errors_root = opts
        .root
        .join(format!("{}delivery-errors", opts.year_prefix))
        .join("compaction-malformed");
    for (datehour, dir) in list_hour_folders(&opts.root, &opts.year_prefix) {
        let Some(start) = hour_start(&datehour) else {
            continue;
        };
        let closed_at = start
            + TimeDelta::hours(1)
            + TimeDelta::from_std(opts.min_age).unwrap_or(TimeDelta::MAX);
        if closed_at > opts.now {
            report.open_hours += 1;
            continue;
        }
        compact_hour(
            opts,
            &datehour,
            start,
            &dir,
            &staging,
            &errors_root.join(&datehour),
            &mut report,
            &mut steps,
            &mut progress,
        )?;
    }
    Ok(report)
}

fn hour_start(datehour: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(&format!("{datehour}:00"), "%Y/%m/%d/%H:%M")
        .ok()
        .map(|t| t.and_utc())
}

#[allow(clippy::too_many_arguments)]
fn compact_hour(
    opts: &CompactOptions,
    datehour: &str,
    start: DateTime<Utc>,
    dir: &Path,
    staging: &Path,
    errors_dir: &Path,
    report: &mut CompactReport,
    steps: &mut Steps,
    progress: &mut impl FnMut(&str),
) -> Result<(), String> {
    let listed: Vec<(String, PathBuf, u64)> = sorted_dir(dir)
        .into_iter()
        .filter(|(_, _, ty, _)| ty.is_file())
        .map(|(name, path, _, size)| (name, path, size))
        .collect();
    // 1. Recovery: objects already replaced by a Parquet object of this folder.
    let mut replaced = std::collections::HashSet::new();
    let mut parquet = std::collections::HashMap::new();
    for (name, path, _) in &listed {
        if is_parquet_name(name)
            && let Ok(p) = ParquetFile::open(path)
        {
            replaced.extend(p.replaces.iter().map(|r| r.object.clone()));
            parquet.insert(name.clone(), p);
        }
    }
    let mut sources = Vec::new();
    let mut removed_any = false;
    for (name, path, size) in listed {
        if replaced.contains(&name) {
            remove(&path)?;
            steps.step();
            report.recovered += 1;
            removed_any = true;
        } else if !is_parquet_name(&name) || parquet.contains_key(&name) {
            sources.push((name, path, size));
        } else {
            report.unreadable.push(format!(
                "{}: not a Parquet object the table reads (left as it is)",
                path.display()
            ));
        }
    }
    if removed_any {
        sync_dir(dir).map_err(|e| format!("cannot sync {}: {e}", dir.display()))?;
    }
    // Nothing to do for an hour that is one Parquet object already.
    let has_json = sources.iter().any(|(n, _, _)| !is_parquet_name(n));
    if !has_json && sources.len() < 2 {
        return Ok(());
    }
    // 2. Every object's readings into the new object, in name order.
    let mut object = ParquetObject::new()?;
    let mut replaces = Vec::new();
    let mut source_bytes = 0u64;
    let mut malformed = 0u64;
    let mut done = Vec::new();
    let mut any_json = false;
    let mut rejected: Vec<(String, Vec<u8>)> = Vec::new();
    for (name, path, size) in sources {
        let before = object.rows();
        // Read in full first: an object unreadable past some point adds nothing.
        let read = match parquet.get(&name) {
            Some(p) => parquet_rows(p, &path).map(|batches| (batches, Vec::new())),
            None => read_json_object(&path)
                .map(|text| (Vec::new(), text))
                .map_err(|e| e.to_string()),
        };
        let (batches, text) = match read {
            Ok(read) => read,
            Err(e) => {
                report
                    .unreadable
                    .push(format!("{}: {e} (left as it is)", path.display()));
                continue;
            }
        };
        for batch in &batches {
            object.push_batch(batch)?;
        }
        let mut bad: Vec<&[u8]> = Vec::new();
        for line in text.split(|&b| b == b'\n') {
            if !line.trim_ascii().is_empty() && !object.push_record(line)? {
                bad.push(line);
            }
        }
        if !bad.is_empty() {
            malformed += bad.len() as u64;
            rejected.push((name.clone(), bad.join(&b'\n')));
        }
        any_json |= !parquet.contains_key(&name);
        source_bytes += size;
        replaces.push(Replaced {
            object: name,
            rows: object.rows() - before,
        });
        done.push(path);
    }
    // Only a single Parquet object was readable: it stays as it is.
    if done.is_empty() || (done.len() == 1 && !any_json) {
        return Ok(());
    }
    object.set_replaces(&replaces)?;
    // Lines that are not readings, kept before anything is replaced.
    for (name, mut lines) in rejected {
        lines.push(b'\n');
        let path = errors_dir.join(format!("{name}.malformed"));
        write_atomically_in(&path, &lines, staging)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        steps.step();
    }
    // 3. The Parquet object, durable and in place.
    let readings = object.rows();
    let bytes = object.finish()?;
    let name = crate::pipeline::delivery::object_name(&opts.stream_name, start, ".parquet");
    let path = dir.join(&name);
    write_atomically_in(&path, &bytes, staging)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    steps.step();
    // 4. The originals go.
    for p in &done {
        remove(p)?;
        steps.step();
    }
    sync_dir(dir).map_err(|e| format!("cannot sync {}: {e}", dir.display()))?;
    report.hours += 1;
    report.objects += done.len();
    report.source_bytes += source_bytes;
    report.parquet_objects += 1;
    report.parquet_bytes += bytes.len() as u64;
    report.readings += readings;
    report.malformed += malformed;
    progress(&format!(
        "{datehour}: {} objects ({}) → {name} ({}), {readings} readings{}",
        done.len(),
        crate::text::bytes(source_bytes),
        crate::text::bytes(bytes.len() as u64),
        if malformed > 0 {
            format!(", {malformed} malformed lines kept in delivery-errors/")
        } else {
            String::new()
        }
    ));
    Ok(())
}

/// Every row of a Parquet object, in order.
fn parquet_rows(file: &ParquetFile, path: &Path) -> Result<Vec<RecordBatch>, String> {
    let projection = [COL_DEVICE, COL_READING, COL_TIMESTAMP];
    let schema = file_schema();
    let parts = ReadParts {
        schema: &schema,
        projection: &projection,
        batch_size: 8192,
        datehour: "",
    };
    let groups: Vec<usize> = (0..file.row_groups()).collect();
    let mut batches = Vec::new();
    file.read(path, Rows::Groups(&groups), &parts, |b| {
        batches.push(b);
        true
    })
    .map_err(|e| match e {
        ReadFail::Gone => "gone".to_string(),
        ReadFail::Broken { why, .. } => format!("unreadable ({why})"),
    })?;
    Ok(batches)
}

fn remove(path: &Path) -> Result<(), String> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("cannot remove {}: {e}", path.display())),
    }
}

/// A JSON object's text (gunzipped for `.gz`), or an error if it cannot be read to its end.
fn read_json_object(path: &Path) -> std::io::Result<Vec<u8>> {
    let file = BufReader::new(File::open(path)?);
    let mut text = Vec::new();
    if path.extension().is_some_and(|e| e == "gz") {
        flate2::read::MultiGzDecoder::new(file).read_to_end(&mut text)?;
    } else {
        let mut file = file;
        file.read_to_end(&mut text)?;
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Array, Int16Array, RecordBatch};

    use super::super::listing::{list_hour_folders, list_objects};
    use super::super::read::PartitionScan;
    use super::super::{ScanCounters, table_schema};
    use super::*;
    use crate::query::lake::write::ParquetObject;

    fn line(device: &str, reading: i16, second: u32) -> String {
        format!(
            "{{\"deviceId\":\"{device}\",\"sensorReading\":{reading},\"readingTimestamp\":\"2026-12-01 10:00:{second:02}.000\"}}\n"
        )
    }

    /// The readings of `objects`, read as a scan reads them: (device, reading) sorted.
    fn scan(objects: Vec<super::super::listing::LakeObject>) -> (Vec<i16>, u64) {
        let schema = Arc::new(table_schema().project(&[1]).unwrap());
        let counters = Arc::new(ScanCounters::default());
        let scan = PartitionScan {
            schema,
            projection: vec![1],
            batch_size: 7,
            limit: None,
            counters: counters.clone(),
            predicate: None,
        };
        let mut values = Vec::new();
        scan.run(
            objects,
            |b: RecordBatch| {
                let a = b.column(0).as_any().downcast_ref::<Int16Array>().unwrap();
                values.extend((0..a.len()).map(|i| a.value(i)));
                true
            },
            || false,
        )
        .unwrap();
        values.sort_unstable();
        (
            values,
            counters
                .malformed
                .load(std::sync::atomic::Ordering::Relaxed),
        )
    }

    /// A scan that listed the JSON objects before a compaction and opens them after it reads
    /// their rows from the Parquet object: the same readings, once each.
    #[test]
    fn a_scan_listed_before_compaction_reads_the_replaced_rows() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("lake");
        let hour = root.join("2026/12/01/10");
        std::fs::create_dir_all(&hour).unwrap();
        let a: String = (0..20).map(|i| line("aaaa", i, i as u32)).collect();
        let b: String = (0..15)
            .map(|i| line("bbbb", 100 + i, i as u32))
            .collect::<String>()
            + "not a reading\n";
        std::fs::write(hour.join("devicedata-1-a"), &a).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, b.as_bytes()).unwrap();
        std::fs::write(hour.join("devicedata-1-b.gz"), gz.finish().unwrap()).unwrap();
        // A small Parquet object (delivery with format = "parquet") is merged too.
        let mut small = ParquetObject::new().unwrap();
        for i in 0..5 {
            assert!(
                small
                    .push_record(line("cccc", 200 + i, 9).as_bytes())
                    .unwrap()
            );
        }
        std::fs::write(hour.join("devicedata-1-c.parquet"), small.finish().unwrap()).unwrap();

        let stale = list_objects(list_hour_folders(&root, ""));
        let before = scan(stale.clone());
        assert_eq!(before.0.len(), 40);
        assert_eq!(before.1, 1, "one malformed line");

        let report = compact(&opts(&root), |_| {}).unwrap();
        assert_eq!((report.hours, report.objects, report.readings), (1, 3, 40));
        assert_eq!(report.malformed, 1);
        let kept = root
            .join("delivery-errors/compaction-malformed/2026/12/01/10/devicedata-1-b.gz.malformed");
        assert_eq!(std::fs::read_to_string(kept).unwrap(), "not a reading\n");

        // The stale listing names three objects that are gone.
        assert!(stale.iter().all(|o| !o.path.exists()));
        assert_eq!(scan(stale).0, before.0);
        // A fresh listing has the Parquet object only.
        let fresh = list_objects(list_hour_folders(&root, ""));
        assert_eq!(fresh.len(), 1);
        assert_eq!(scan(fresh.clone()).0, before.0);

        // An hour that is one Parquet object is left as it is; one more object that lands
        // there is merged with it, and a scan listed before reads the first one's rows from
        // the new object.
        let again = compact(&opts(&root), |_| {}).unwrap();
        assert_eq!(again.hours, 0);
        std::fs::write(hour.join("devicedata-1-d"), line("dddd", 300, 1)).unwrap();
        let stale = list_objects(list_hour_folders(&root, ""));
        let third = compact(&opts(&root), |_| {}).unwrap();
        assert_eq!((third.hours, third.objects, third.readings), (1, 2, 41));
        let mut want = before.0.clone();
        want.push(300);
        want.sort_unstable();
        assert_eq!(scan(stale).0, want);
        assert_eq!(scan(list_objects(list_hour_folders(&root, ""))).0, want);
    }

    /// Compaction of the lake at `root` at 12:00 on 2026-12-01, hours closed a minute after
    /// they end.
    fn opts(root: &Path) -> CompactOptions {
        CompactOptions {
            root: root.to_path_buf(),
            year_prefix: String::new(),
            stream_name: "devicedata".into(),
            now: "2026-12-01T12:00:00Z".parse().unwrap(),
            min_age: Duration::from_secs(60),
            abort_after_steps: None,
        }
    }

    /// The hour that is not over yet (plus `min_age`) is left alone.
    #[test]
    fn open_hours_are_not_compacted() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("lake");
        let hour = root.join("2026/12/01/10");
        std::fs::create_dir_all(&hour).unwrap();
        std::fs::write(hour.join("devicedata-1-a"), line("aaaa", 1, 0)).unwrap();
        let opts = |now: &str| CompactOptions {
            now: now.parse().unwrap(),
            min_age: Duration::from_secs(120),
            ..opts(&root)
        };
        let r = compact(&opts("2026-12-01T11:01:59Z"), |_| {}).unwrap();
        assert_eq!((r.hours, r.open_hours), (0, 1));
        assert!(hour.join("devicedata-1-a").exists());
        let r = compact(&opts("2026-12-01T11:02:00Z"), |_| {}).unwrap();
        assert_eq!((r.hours, r.open_hours), (1, 0));
        assert!(!hour.join("devicedata-1-a").exists());
    }
}
