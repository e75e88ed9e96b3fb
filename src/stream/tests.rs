//! Tests of the stream as a whole (append, read back, reopen).

use std::fs;

use super::test_support::*;
use super::*;

#[test]
fn stream_and_reader_are_send_and_stream_is_sync() {
    fn send<T: Send>() {}
    fn sync<T: Sync>() {}
    send::<Stream>();
    sync::<Stream>();
    send::<StreamReader>();
    send::<StreamError>();
}

#[test]
fn appends_get_increasing_sequences_and_read_back_in_order() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("streams").join("readings");
    let stream = Stream::open(&dir, StreamOptions::default()).expect("open");
    assert_eq!(stream.stats().expect("stats"), StreamStats::default());
    assert_eq!(
        stream.append(&[], 1).expect("empty batch"),
        Vec::<u64>::new()
    );
    assert!(seg_files(&dir).is_empty(), "an empty batch creates nothing");

    assert_eq!(append_n(&stream, "aaaa", "x", 3, 1_000), vec![1, 2, 3]);
    assert_eq!(append_n(&stream, "bbbb", "y", 2, 2_000), vec![4, 5]);
    let single = stream.append(&[rec("cccc", b"")], 3_000).expect("append");
    assert_eq!(single, vec![6]);

    let mut reader = stream.reader(StartAt::TrimHorizon).expect("reader");
    let all = read_all(&mut reader);
    assert_eq!(seqs(&all), vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(all[0].partition_key, "aaaa");
    assert_eq!(all[0].data, b"x0");
    assert_eq!(all[0].arrival_ms, 1_000);
    assert_eq!(all[4].partition_key, "bbbb");
    assert_eq!(all[4].data, b"y1");
    assert_eq!(all[4].arrival_ms, 2_000);
    assert_eq!(all[5].data, b"");
    assert_eq!(reader.last_sequence(), Some(6));

    let stats = stream.stats().expect("stats");
    assert_eq!(stats.first_sequence, Some(1));
    assert_eq!(stats.last_sequence, Some(6));
    assert_eq!(stats.segments, 1);
    assert_eq!(
        stats.bytes,
        fs::metadata(&seg_files(&dir)[0]).expect("meta").len()
    );

    // Reopening continues the numbering.
    drop(stream);
    let stream = Stream::open(&dir, StreamOptions::default()).expect("reopen");
    assert_eq!(append_n(&stream, "aaaa", "z", 1, 4_000), vec![7]);
    assert_eq!(stream.stats().expect("stats").last_sequence, Some(7));
}
