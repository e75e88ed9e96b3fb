//! The writer side: [`Stream`] (the handle to a stream on disk), opening it, the in-process
//! mutex plus the cross-process lock file, and appending batches with group commit.

use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::error::io_err;
use super::format::{
    CRC_LEN, MAX_DATA_BYTES, MAX_PARTITION_KEY_BYTES, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN,
    encode_record, segment_header, segment_path,
};
use super::notify::{Notifier, notifier_for};
use super::repair::TailCache;
use super::{NewRecord, StreamError, StreamOptions};

#[cfg(doc)]
use super::StreamReader;

const LOCK_FILE_NAME: &str = "lock";

/// A stream on disk. Cheap to clone; clones share the in-process append mutex.
#[derive(Debug, Clone)]
pub struct Stream {
    pub(super) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(super) struct Inner {
    pub(super) dir: PathBuf,
    pub(super) options: StreamOptions,
    pub(super) notifier: Arc<Notifier>,
    pub(super) writer: Mutex<WriterState>,
    /// Tail of the last segment as last seen by `stats` and `Latest` readers (read-only scans).
    pub(super) read_tail: Mutex<Option<TailCache>>,
}

#[derive(Debug)]
pub(super) struct WriterState {
    lock_file: File,
    lock_path: PathBuf,
    /// Tail of the last segment as validated under the lock by this `Stream`.
    pub(super) tail: Option<TailCache>,
}

/// Holds the in-process mutex and the cross-process file lock; releases both on drop.
pub(super) struct WriterGuard<'a> {
    pub(super) state: MutexGuard<'a, WriterState>,
}

impl Drop for WriterGuard<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.state.lock_file.unlock() {
            tracing::warn!(path = %self.state.lock_path.display(), error = %e, "cannot unlock stream lock file");
        }
    }
}

/// The segment a batch is written to.
pub(super) struct ActiveSegment {
    pub(super) seg: u64,
    pub(super) path: PathBuf,
    pub(super) file: File,
    /// Bytes on disk (records past this are in the write buffer).
    pub(super) end: u64,
}

impl Stream {
    /// Opens the stream in `dir`, creating the directory if missing and repairing a torn tail.
    pub fn open(dir: &Path, options: StreamOptions) -> Result<Stream, StreamError> {
        if options.segment_size_bytes == 0 {
            return Err(StreamError::InvalidOptions {
                reason: "segment_size_bytes must be greater than 0".into(),
            });
        }
        fs::create_dir_all(dir).map_err(io_err("create stream directory", dir))?;
        let dir = fs::canonicalize(dir).map_err(io_err("resolve stream directory", dir))?;
        let lock_path = dir.join(LOCK_FILE_NAME);
        let lock_file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(io_err("open lock file", &lock_path))?;
        let stream = Stream {
            inner: Arc::new(Inner {
                notifier: notifier_for(&dir),
                dir,
                options,
                writer: Mutex::new(WriterState {
                    lock_file,
                    lock_path,
                    tail: None,
                }),
                read_tail: Mutex::new(None),
            }),
        };
        {
            let mut guard = stream.lock_writer()?;
            stream.prepare_tail(&mut guard.state)?;
        }
        Ok(stream)
    }

    /// The stream's directory (canonical).
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The options the stream was opened with.
    pub fn options(&self) -> StreamOptions {
        self.inner.options
    }

    /// Appends a batch; every record gets `arrival_ms` (raised to the previous record's arrival
    /// if older). Returns the sequence numbers, in batch order, once the batch is on disk
    /// (fsynced). An empty batch writes nothing. A rejected record rejects the whole batch.
    pub fn append(
        &self,
        records: &[NewRecord<'_>],
        arrival_ms: i64,
    ) -> Result<Vec<u64>, StreamError> {
        for (index, record) in records.iter().enumerate() {
            if record.partition_key.len() > MAX_PARTITION_KEY_BYTES {
                return Err(StreamError::InvalidRecord {
                    index,
                    reason: format!(
                        "partition key is {} bytes, more than the limit of {MAX_PARTITION_KEY_BYTES}",
                        record.partition_key.len()
                    ),
                });
            }
            if record.data.len() > MAX_DATA_BYTES {
                return Err(StreamError::InvalidRecord {
                    index,
                    reason: format!(
                        "data is {} bytes, more than the limit of {MAX_DATA_BYTES}",
                        record.data.len()
                    ),
                });
            }
        }
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let result = {
            let mut guard = self.lock_writer()?;
            let result = self.append_locked(&mut guard.state, records, arrival_ms);
            if result.is_err() {
                // The disk may hold part of the batch: rescan it next time.
                guard.state.tail = None;
            }
            result
        };
        if result.is_ok() {
            self.inner.notifier.notify();
        }
        result
    }

    /// Wakes every reader of this stream in this process that waits in
    /// [`StreamReader::wait_for_more`], as an append would (used to stop consumers at once).
    pub fn wake_readers(&self) {
        self.inner.notifier.notify();
    }

    pub(super) fn lock_writer(&self) -> Result<WriterGuard<'_>, StreamError> {
        let state = match self.inner.writer.lock() {
            Ok(state) => state,
            Err(poisoned) => {
                let mut state = poisoned.into_inner();
                state.tail = None;
                state
            }
        };
        state
            .lock_file
            .lock()
            .map_err(io_err("lock", &state.lock_path))?;
        Ok(WriterGuard { state })
    }

    fn append_locked(
        &self,
        state: &mut WriterState,
        records: &[NewRecord<'_>],
        arrival_ms: i64,
    ) -> Result<Vec<u64>, StreamError> {
        let dir = &self.inner.dir;
        let segment_size = self.inner.options.segment_size_bytes;
        let prepared = self.prepare_tail(state)?;
        let arrival = prepared
            .last_arrival
            .map_or(arrival_ms, |previous| arrival_ms.max(previous));
        let mut next_seq = prepared.next_seq;
        let mut buf = Vec::new();
        let mut created_segment = false;
        let mut active = match prepared.active {
            Some(active) => active,
            None => {
                created_segment = true;
                create_segment(dir, next_seq, &mut buf)?
            }
        };
        let mut sequences = Vec::with_capacity(records.len());
        for record in records {
            let size =
                (RECORD_HEADER_LEN + record.partition_key.len() + record.data.len() + CRC_LEN)
                    as u64;
            let active_len = active.end + buf.len() as u64;
            if active_len > SEGMENT_HEADER_LEN && active_len + size > segment_size {
                flush(&mut active, &mut buf)?;
                active
                    .file
                    .sync_data()
                    .map_err(io_err("sync", &active.path))?;
                active = create_segment(dir, next_seq, &mut buf)?;
                created_segment = true;
            }
            encode_record(&mut buf, next_seq, arrival, record);
            sequences.push(next_seq);
            next_seq = next_seq
                .checked_add(1)
                .ok_or_else(|| StreamError::Corrupt {
                    path: active.path.clone(),
                    offset: active.end,
                    reason: "sequence numbers exhausted".into(),
                })?;
        }
        flush(&mut active, &mut buf)?;
        active
            .file
            .sync_data()
            .map_err(io_err("sync", &active.path))?;
        if created_segment {
            sync_dir(dir)?;
        }
        state.tail = Some(TailCache {
            seg: active.seg,
            end: active.end,
            next_seq,
            last_arrival: Some(arrival),
        });
        Ok(sequences)
    }
}

fn create_segment(
    dir: &Path,
    first_seq: u64,
    buf: &mut Vec<u8>,
) -> Result<ActiveSegment, StreamError> {
    let path = segment_path(dir, first_seq);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(io_err("create segment", &path))?;
    buf.clear();
    buf.extend_from_slice(&segment_header());
    Ok(ActiveSegment {
        seg: first_seq,
        path,
        file,
        end: 0,
    })
}

fn flush(active: &mut ActiveSegment, buf: &mut Vec<u8>) -> Result<(), StreamError> {
    if buf.is_empty() {
        return Ok(());
    }
    active
        .file
        .seek(SeekFrom::Start(active.end))
        .and_then(|_| active.file.write_all(buf))
        .map_err(io_err("write records to", &active.path))?;
    active.end += buf.len() as u64;
    buf.clear();
    Ok(())
}

pub(super) fn sync_dir(dir: &Path) -> Result<(), StreamError> {
    crate::detector::durable::sync_dir(dir).map_err(io_err("sync directory", dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::StartAt;
    use crate::stream::format::parse_segment_name;
    use crate::stream::repair::first_record;
    use crate::stream::test_support::*;
    use std::process::{Command, Stdio};
    use std::thread;
    use std::time::{Duration, Instant};

    #[test]
    fn arrival_times_never_go_backwards() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let stream = Stream::open(tmp.path(), StreamOptions::default()).expect("open");
        append_n(&stream, "k", "a", 1, 5_000);
        append_n(&stream, "k", "b", 1, 4_000);
        append_n(&stream, "k", "c", 1, 6_000);
        let all = read_all(&mut stream.reader(StartAt::TrimHorizon).expect("reader"));
        let arrivals: Vec<i64> = all.iter().map(|r| r.arrival_ms).collect();
        assert_eq!(arrivals, vec![5_000, 5_000, 6_000]);
    }

    #[test]
    fn invalid_records_are_rejected_without_writing() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let stream = Stream::open(tmp.path(), StreamOptions::default()).expect("open");
        let long_key = "k".repeat(MAX_PARTITION_KEY_BYTES + 1);
        let err = stream
            .append(&[rec("ok", b"1"), rec(&long_key, b"2")], 1)
            .expect_err("long key");
        assert!(
            matches!(err, StreamError::InvalidRecord { index: 1, .. }),
            "{err}"
        );
        let big = vec![0u8; MAX_DATA_BYTES + 1];
        let err = stream.append(&[rec("k", &big)], 1).expect_err("big data");
        assert!(err.to_string().contains("data is"), "{err}");
        assert_eq!(stream.stats().expect("stats").last_sequence, None);
        let err = Stream::open(tmp.path(), opts(0)).expect_err("zero segment size");
        assert!(matches!(err, StreamError::InvalidOptions { .. }));
    }

    #[test]
    fn segments_roll_at_the_size_limit() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let size = 200;
        let stream = Stream::open(tmp.path(), opts(size)).expect("open");
        // 40 records of 22 + 4 + 10 + 4 = 40 bytes: 4 per segment (8 + 4 * 40 = 168).
        let data = [7u8; 10];
        let batch: Vec<NewRecord<'_>> = (0..40).map(|_| rec("dev1", &data)).collect();
        assert_eq!(
            stream.append(&batch[..15], 1).expect("append"),
            (1..=15).collect::<Vec<_>>()
        );
        assert_eq!(
            stream.append(&batch[15..], 2).expect("append"),
            (16..=40).collect::<Vec<_>>()
        );
        let files = seg_files(tmp.path());
        assert_eq!(files.len(), 10);
        let mut total = 0;
        for (i, path) in files.iter().enumerate() {
            let len = fs::metadata(path).expect("meta").len();
            assert!(len <= size, "{} is {len} bytes", path.display());
            total += len;
            let first = 1 + 4 * i as u64;
            assert_eq!(
                path.file_name()
                    .and_then(|n| n.to_str())
                    .and_then(parse_segment_name),
                Some(first)
            );
            let record = first_record(tmp.path(), first, i + 1 == files.len()).expect("read");
            assert_eq!(record.map(|r| r.sequence), Some(first));
        }
        let stats = stream.stats().expect("stats");
        assert_eq!((stats.segments, stats.bytes), (10, total));
        assert_eq!(
            (stats.first_sequence, stats.last_sequence),
            (Some(1), Some(40))
        );
        let all = read_all(&mut stream.reader(StartAt::TrimHorizon).expect("reader"));
        assert_eq!(seqs(&all), (1..=40).collect::<Vec<_>>());

        // A record bigger than a segment gets a segment of its own.
        let big = vec![1u8; 500];
        assert_eq!(
            stream
                .append(&[rec("k", &big), rec("k", b"s")], 3)
                .expect("append"),
            vec![41, 42]
        );
        let files = seg_files(tmp.path());
        assert_eq!(files.len(), 12);
        assert_eq!(
            fs::metadata(&files[10]).expect("meta").len(),
            SEGMENT_HEADER_LEN + rec_len("k", 500)
        );
    }

    #[test]
    fn concurrent_writers_in_one_process() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let shared = Arc::new(Stream::open(tmp.path(), opts(2_048)).expect("open"));
        const THREADS: usize = 4;
        const PER_THREAD: usize = 200;
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                // Half the threads share one Stream, the others open their own.
                let stream = if t % 2 == 0 {
                    Arc::clone(&shared)
                } else {
                    Arc::new(Stream::open(tmp.path(), opts(2_048)).expect("open"))
                };
                thread::spawn(move || {
                    let key = format!("t{t}");
                    for chunk in 0..PER_THREAD / 10 {
                        let data: Vec<Vec<u8>> = (0..10)
                            .map(|i| (chunk * 10 + i).to_string().into_bytes())
                            .collect();
                        let batch: Vec<NewRecord<'_>> = data.iter().map(|d| rec(&key, d)).collect();
                        let got = stream.append(&batch, 1).expect("append");
                        assert!(got.windows(2).all(|w| w[1] == w[0] + 1), "{got:?}");
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().expect("writer thread");
        }
        let all = read_all(&mut shared.reader(StartAt::TrimHorizon).expect("reader"));
        assert_eq!(
            seqs(&all),
            (1..=(THREADS * PER_THREAD) as u64).collect::<Vec<_>>()
        );
        for t in 0..THREADS {
            let key = format!("t{t}");
            let mine: Vec<String> = all
                .iter()
                .filter(|r| r.partition_key == key)
                .map(|r| String::from_utf8_lossy(&r.data).into_owned())
                .collect();
            let expected: Vec<String> = (0..PER_THREAD).map(|i| i.to_string()).collect();
            assert_eq!(mine, expected, "records of {key}");
        }
    }

    const CHILD_DIR_ENV: &str = "IOTAA_STREAM_TEST_WRITER_DIR";
    const CHILD_ID_ENV: &str = "IOTAA_STREAM_TEST_WRITER_ID";
    const CHILD_COUNT_ENV: &str = "IOTAA_STREAM_TEST_WRITER_COUNT";
    const PER_CHILD: usize = 2_000;
    const CHILD_BATCH: usize = 40;
    const TWO_PROCESS_SEGMENT_BYTES: u64 = 16 * 1024;

    /// The full libtest name of a test in this module.
    fn test_name(name: &str) -> String {
        let module = module_path!();
        let within_crate = module.split_once("::").map_or("", |(_, rest)| rest);
        format!("{within_crate}::{name}")
    }

    fn child_writer(dir: &str) {
        let id = std::env::var(CHILD_ID_ENV).expect("writer id");
        let count: usize = std::env::var(CHILD_COUNT_ENV)
            .expect("writer count")
            .parse()
            .expect("count is a number");
        let stream =
            Stream::open(Path::new(dir), opts(TWO_PROCESS_SEGMENT_BYTES)).expect("child open");
        let mut written = 0;
        while written < count {
            let n = CHILD_BATCH.min(count - written);
            let data: Vec<Vec<u8>> = (written..written + n)
                .map(|i| format!("{id}:{i}").into_bytes())
                .collect();
            let batch: Vec<NewRecord<'_>> = data.iter().map(|d| rec(&id, d)).collect();
            let got = stream
                .append(&batch, 1_000 + written as i64)
                .expect("child append");
            assert_eq!(got.len(), n);
            written += n;
        }
    }

    #[test]
    fn two_processes_append_concurrently() {
        if let Ok(dir) = std::env::var(CHILD_DIR_ENV) {
            child_writer(&dir);
            return;
        }
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("readings");
        let stream = Stream::open(&dir, opts(TWO_PROCESS_SEGMENT_BYTES)).expect("open");
        let mut follower = stream.reader(StartAt::TrimHorizon).expect("reader");
        let exe = std::env::current_exe().expect("test binary");
        let name = test_name("two_processes_append_concurrently");
        let mut children: Vec<_> = ["a", "b"]
            .iter()
            .map(|id| {
                Command::new(&exe)
                    .args(["--exact", &name, "--nocapture", "--test-threads=1"])
                    .env(CHILD_DIR_ENV, &dir)
                    .env(CHILD_ID_ENV, id)
                    .env(CHILD_COUNT_ENV, PER_CHILD.to_string())
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("spawn writer process")
            })
            .collect();

        // Follow the stream while the children write: their appends cannot wake this
        // process, so this exercises the disk re-check in wait_for_more.
        let total = 2 * PER_CHILD;
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut followed = Vec::new();
        loop {
            let exited = children
                .iter_mut()
                .all(|c| matches!(c.try_wait(), Ok(Some(_))));
            let batch = follower.next_batch(500).expect("follow");
            if !batch.is_empty() {
                followed.extend(batch);
                continue;
            }
            if followed.len() >= total || exited || Instant::now() > deadline {
                break;
            }
            follower.wait_for_more(Duration::from_secs(1));
        }
        for child in children {
            let output = child.wait_with_output().expect("wait for writer");
            assert!(
                output.status.success(),
                "writer process failed: {}\nstdout:\n{}\nstderr:\n{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }

        let all = read_all(&mut stream.reader(StartAt::TrimHorizon).expect("reader"));
        assert_eq!(followed, all, "the follower saw exactly what is on disk");
        assert_eq!(seqs(&all), (1..=total as u64).collect::<Vec<_>>());
        for id in ["a", "b"] {
            let mine: Vec<&[u8]> = all
                .iter()
                .filter(|r| r.partition_key == id)
                .map(|r| r.data.as_slice())
                .collect();
            let expected: Vec<Vec<u8>> = (0..PER_CHILD)
                .map(|i| format!("{id}:{i}").into_bytes())
                .collect();
            assert_eq!(mine.len(), PER_CHILD, "records of writer {id}");
            assert!(
                mine.iter().zip(&expected).all(|(a, b)| *a == b.as_slice()),
                "order of writer {id}"
            );
        }
        assert!(all.windows(2).all(|w| w[0].arrival_ms <= w[1].arrival_ms));
        let stats = stream.stats().expect("stats");
        assert_eq!(
            (stats.first_sequence, stats.last_sequence),
            (Some(1), Some(total as u64))
        );
        assert!(stats.segments > 1);
    }
}
