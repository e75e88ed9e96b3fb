//! PutRecords: a batch in calls of at most 500 records and 5 MiB, and which entries failed.

use super::*;

/// PutRecords on one stream.
#[derive(Clone)]
pub struct KinesisWriter {
    pub(super) client: Client,
    pub(super) runtime: Handle,
    pub(super) stream: String,
}

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

/// Puts `records` in runs that fit one call ([`chunks`]); `put_run` makes the call and returns
/// the indexes, within its run, of the entries that failed. A first run failing whole fails the
/// batch (nothing was stored); a later one marks itself and every run after it failed.
pub fn put_in_runs(
    records: &[(String, Vec<u8>)],
    max_records: usize,
    max_bytes: usize,
    mut put_run: impl FnMut(&[(String, Vec<u8>)]) -> Result<Vec<usize>, PipelineError>,
) -> Result<PutOutcome, PipelineError> {
    let mut failed = Vec::new();
    for (n, run) in chunks(records, max_records, max_bytes)
        .into_iter()
        .enumerate()
    {
        match put_run(&records[run.clone()]) {
            Ok(f) => failed.extend(f.into_iter().map(|i| run.start + i)),
            Err(e) if n == 0 => return Err(e),
            Err(e) => {
                tracing::warn!("{e}");
                failed.extend(run.start..records.len());
                break;
            }
        }
    }
    Ok(PutOutcome { failed })
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

impl KinesisWriter {
    async fn put_chunk(&self, records: &[(String, Vec<u8>)]) -> Result<Vec<usize>, PipelineError> {
        let entries = records
            .iter()
            .map(|(key, data)| {
                PutRecordsRequestEntry::builder()
                    .partition_key(key)
                    .data(Blob::new(data.clone()))
                    .build()
                    .map_err(|e| PipelineError::Stream(format!("put record: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = self
            .client
            .put_records()
            .stream_name(&self.stream)
            .set_records(Some(entries))
            .send()
            .await
            .map_err(|e| sdk_error(&format!("PutRecords to {}", self.stream), &e))?;
        if out.failed_record_count().unwrap_or(0) == 0 {
            return Ok(Vec::new());
        }
        Ok(failed_entries(
            records.len(),
            out.records().iter().map(|r| r.error_code().is_some()),
        ))
    }
}

impl StreamWriter for KinesisWriter {
    fn put(&self, records: &[(String, Vec<u8>)]) -> Result<PutOutcome, PipelineError> {
        put_in_runs(records, PUT_MAX_RECORDS, PUT_MAX_BYTES, |run| {
            self.runtime.block_on(self.put_chunk(run))
        })
    }
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
    fn a_run_failing_whole_fails_the_batch_only_when_it_is_the_first() {
        let records = recs(&[1; 1_200]);
        let mut calls = 0;
        let out = put_in_runs(&records, 500, 1 << 20, |run| {
            assert!(run.len() <= 500);
            calls += 1;
            match calls {
                1 => Ok(vec![0, 499]),
                2 => Err(PipelineError::Stream("throttled".into())),
                _ => panic!("no call after a failed run"),
            }
        })
        .unwrap();
        assert_eq!(out.failed.len(), 2 + 700);
        assert_eq!(&out.failed[..3], &[0, 499, 500]);
        assert!(
            put_in_runs(&records, 500, 1 << 20, |_| Err(PipelineError::Stream(
                "x".into()
            )))
            .is_err()
        );
        assert_eq!(failed_entries(3, [false, true, false].into_iter()), vec![1]);
        assert_eq!(failed_entries(3, [true].into_iter()), vec![0, 1, 2]);
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
}
