//! Batches for the Kinesis PutRecords and Firehose PutRecordBatch calls, shared by the app's
//! writers and the Lambda function: splitting a batch into calls that fit the service's limits,
//! and reading which entries of a reply failed. Pure functions, no SDK.

/// PutRecords limits: records and bytes (data plus partition keys) per call.
pub const PUT_MAX_RECORDS: usize = 500;
pub const PUT_MAX_BYTES: usize = 5 * 1024 * 1024;

/// Splits `records` into runs that fit one call: at most `max_records` and `max_bytes` (data
/// plus key). A record larger than `max_bytes` alone gets a call of its own (the service
/// refuses it, and says why).
pub fn chunks(
    records: &[(String, Vec<u8>)],
    max_records: usize,
    max_bytes: usize,
) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, (key, data)) in records.iter().enumerate() {
        let size = key.len() + data.len();
        if i > start && (i - start == max_records || bytes + size > max_bytes) {
            out.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < records.len() {
        out.push(start..records.len());
    }
    out
}

/// The entries of a reply that carry an error code; all of them when the reply does not list
/// one result per entry sent (then nothing says which were stored: resend them all).
pub fn failed_entries(sent: usize, has_error: impl ExactSizeIterator<Item = bool>) -> Vec<usize> {
    if has_error.len() != sent {
        return (0..sent).collect();
    }
    has_error
        .enumerate()
        .filter(|(_, e)| *e)
        .map(|(i, _)| i)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recs(sizes: &[usize]) -> Vec<(String, Vec<u8>)> {
        sizes
            .iter()
            .map(|&n| ("k".to_string(), vec![b'x'; n]))
            .collect()
    }

    #[test]
    fn chunks_respect_the_record_and_byte_limits() {
        assert!(chunks(&[], 500, 100).is_empty());
        assert_eq!(
            chunks(&recs(&[9; 1_200]), 500, 1 << 20),
            vec![0..500, 500..1_000, 1_000..1_200]
        );
        // 10 bytes each with the key: 3 fit in 30 bytes.
        assert_eq!(chunks(&recs(&[9; 7]), 500, 30), vec![0..3, 3..6, 6..7]);
        // A record over the limit goes alone; its neighbours are not held back.
        assert_eq!(chunks(&recs(&[1, 100, 1]), 500, 30), vec![0..1, 1..2, 2..3]);
    }

    #[test]
    fn failed_entries_are_those_with_an_error_or_all_when_the_reply_is_short() {
        assert_eq!(failed_entries(3, [false, true, false].into_iter()), vec![1]);
        assert_eq!(failed_entries(3, [true].into_iter()), vec![0, 1, 2]);
        assert!(failed_entries(2, [false, false].into_iter()).is_empty());
    }
}
