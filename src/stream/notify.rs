//! Wake-ups within this process: a process-wide registry of `Condvar`s keyed by a stream's
//! canonical directory, so every append through any `Stream` of this process wakes the readers
//! of that stream that wait in `StreamReader::wait_for_more`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError, Weak};
use std::time::Duration;

#[derive(Debug, Default)]
pub(super) struct Notifier {
    generation: Mutex<u64>,
    cond: Condvar,
}

impl Notifier {
    pub(super) fn generation(&self) -> u64 {
        *self
            .generation
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn notify(&self) {
        let mut generation = self
            .generation
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *generation = generation.wrapping_add(1);
        self.cond.notify_all();
    }

    /// Waits until the generation differs from `seen` or `timeout` passes; true if it changed.
    pub(super) fn wait_changed(&self, seen: u64, timeout: Duration) -> bool {
        let generation = self
            .generation
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (generation, _) = self
            .cond
            .wait_timeout_while(generation, timeout, |g| *g == seen)
            .unwrap_or_else(PoisonError::into_inner);
        *generation != seen
    }
}

type Registry = Mutex<HashMap<PathBuf, Weak<Notifier>>>;

/// The notifier shared by every `Stream` and reader of this process on `canonical_dir`.
pub(super) fn notifier_for(canonical_dir: &Path) -> Arc<Notifier> {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    let mut map = REGISTRY
        .get_or_init(Registry::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(existing) = map.get(canonical_dir).and_then(Weak::upgrade) {
        return existing;
    }
    map.retain(|_, weak| weak.strong_count() > 0);
    let notifier = Arc::new(Notifier::default());
    map.insert(canonical_dir.to_path_buf(), Arc::downgrade(&notifier));
    notifier
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::test_support::*;
    use crate::stream::{StartAt, Stream, StreamOptions};
    use std::sync::Barrier;
    use std::thread;
    use std::time::Instant;

    #[test]
    fn wait_for_more_wakes_on_an_in_process_append() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let stream = Stream::open(tmp.path(), StreamOptions::default()).expect("open");
        let mut reader = stream.reader(StartAt::Latest).expect("reader");
        // Disk polling would take an hour: only the in-process wake-up can end the wait early.
        reader.set_poll_interval(Duration::from_secs(3_600));
        assert!(reader.next_batch(10).expect("batch").is_empty());
        assert!(
            !reader.wait_for_more(Duration::from_millis(50)),
            "nothing appended yet"
        );

        let writer = stream.clone();
        let start = Arc::new(Barrier::new(2));
        let go = Arc::clone(&start);
        let handle = thread::spawn(move || {
            go.wait();
            writer.append(&[rec("k", b"hello")], 1).expect("append")
        });
        start.wait();
        let began = Instant::now();
        assert!(reader.wait_for_more(Duration::from_secs(60)));
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "woke late: {:?}",
            began.elapsed()
        );
        assert_eq!(handle.join().expect("writer thread"), vec![1]);
        let got = reader.next_batch(10).expect("batch");
        assert_eq!(seqs(&got), vec![1]);
        assert_eq!(got[0].data, b"hello");
        // Already-available records end the wait at once.
        append_n(&stream, "k", "x", 1, 2);
        assert!(reader.wait_for_more(Duration::from_secs(3_600)));
    }

    #[test]
    fn wait_for_more_sees_appends_of_another_stream_on_the_same_dir() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let a = Stream::open(tmp.path(), StreamOptions::default()).expect("open");
        let b = Stream::open(tmp.path(), StreamOptions::default()).expect("open");
        let mut reader = a.reader(StartAt::TrimHorizon).expect("reader");
        reader.set_poll_interval(Duration::from_secs(3_600));
        let handle = thread::spawn(move || append_n(&b, "k", "b", 3, 1));
        assert!(reader.wait_for_more(Duration::from_secs(60)));
        assert_eq!(handle.join().expect("thread"), vec![1, 2, 3]);
        assert_eq!(seqs(&read_all(&mut reader)), vec![1, 2, 3]);
    }
}
