//! PutRecords: a batch in calls of at most 500 records and 5 MiB, and which entries failed.

use super::*;

/// PutRecords on one stream.
#[derive(Clone)]
pub struct KinesisWriter {
    pub(super) client: Client,
    pub(super) runtime: Handle,
    pub(super) stream: String,
}

pub use iotaa_detector::batch::{chunks, failed_entries};

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
    }
}
