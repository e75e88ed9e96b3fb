//! Following every shard of a stream with GetRecords: pacing, iterator renewal, throttling,
//! resharding (parents to their end before their children) and the position token.

use super::*;

/// One shard as a reader follows it.
#[derive(Debug)]
struct ShardCursor {
    id: String,
    parents: Vec<String>,
    /// Where to start when there is no iterator and no record read yet.
    start: StartAt,
    iterator: Option<String>,
    /// The last record's sequence number read from this shard.
    last: Option<String>,
    /// Not before this instant (the per-shard read rate, throttling backoff).
    next_read: Instant,
    throttled: u32,
    /// MillisBehindLatest of the last GetRecords.
    behind_ms: u64,
    /// When the GetRecords that found this shard read to its tip (nothing returned, not
    /// behind) was sent; `None` once a read returns records or fails.
    drained: Option<Instant>,
}

/// Reads every shard of one stream (see the module docs).
pub struct KinesisReader {
    client: Client,
    runtime: Handle,
    stream: String,
    from: StartAt,
    /// From a checkpoint: the last sequence number read per shard, and finished shards.
    resume: BTreeMap<String, String>,
    shards: Vec<ShardCursor>,
    /// Shards read to their end (closed by a reshard).
    finished: BTreeSet<String>,
    listed_at: Option<Instant>,
    /// List the shards again before the next read.
    relist: bool,
    counter: u64,
    waker: Arc<Waker>,
    turn: usize,
    /// The least time between two GetRecords on one shard while it has records.
    busy_poll: Duration,
    /// A read that failed after other shards' records were read in the same call: those
    /// records are returned first (their iterators have moved past them), this error next.
    failed: Option<PipelineError>,
}

/// What a finished shard is recorded as in a position token.
const FINISHED: &str = "finished";

impl KinesisReader {
    pub(super) fn new(
        client: Client,
        runtime: Handle,
        stream: String,
        from: StartAt,
        waker: Arc<Waker>,
        busy_poll: Duration,
    ) -> Self {
        let (from, resume) = match from {
            StartAt::Resume(token) => (
                StartAt::TrimHorizon,
                serde_json::from_str::<BTreeMap<String, String>>(&token).unwrap_or_default(),
            ),
            other => (other, BTreeMap::new()),
        };
        let finished = resume
            .iter()
            .filter(|(_, v)| v.as_str() == FINISHED)
            .map(|(k, _)| k.clone())
            .collect();
        KinesisReader {
            busy_poll,
            client,
            runtime,
            stream,
            from,
            resume,
            shards: Vec::new(),
            finished,
            listed_at: None,
            relist: false,
            counter: 0,
            waker,
            turn: 0,
            failed: None,
        }
    }

    /// Lists the shards and follows the ones not known yet. A shard from a checkpoint resumes
    /// after its last record; other shards start at the reader's start, except shards created
    /// after the reader started (children of a reshard), which are read from their beginning.
    fn list(&mut self) -> Result<(), PipelineError> {
        let mut listed = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let request = match &token {
                Some(t) => self.client.list_shards().next_token(t),
                None => self.client.list_shards().stream_name(&self.stream),
            };
            let out = self
                .runtime
                .block_on(request.send())
                .map_err(|e| sdk_error(&format!("ListShards of {}", self.stream), &e))?;
            for s in out.shards() {
                let parents = [s.parent_shard_id(), s.adjacent_parent_shard_id()]
                    .into_iter()
                    .flatten()
                    .map(str::to_string)
                    .collect();
                listed.push((s.shard_id().to_string(), parents));
            }
            token = out.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        let first = self.listed_at.is_none();
        for (id, parents) in listed {
            if self.finished.contains(&id) || self.shards.iter().any(|c| c.id == id) {
                continue;
            }
            self.add(id, parents, first);
        }
        self.listed_at = Some(Instant::now());
        Ok(())
    }

    fn add(&mut self, id: String, parents: Vec<String>, at_start: bool) {
        let start = if let Some(seq) = self.resume.get(&id) {
            StartAt::Resume(seq.clone())
        } else if at_start {
            self.from.clone()
        } else {
            StartAt::TrimHorizon
        };
        self.shards.push(ShardCursor {
            id,
            parents,
            start,
            iterator: None,
            last: None,
            next_read: Instant::now(),
            throttled: 0,
            behind_ms: 0,
            drained: None,
        });
    }

    /// A shard may be read once the shards it was split or merged from are finished (or have
    /// aged out of the stream).
    fn ready(&self, c: &ShardCursor) -> bool {
        c.parents
            .iter()
            .all(|p| self.finished.contains(p) || !self.shards.iter().any(|s| &s.id == p))
    }

    async fn iterator(
        client: &Client,
        stream: &str,
        c: &ShardCursor,
    ) -> Result<Option<String>, PipelineError> {
        let r = client
            .get_shard_iterator()
            .stream_name(stream)
            .shard_id(&c.id);
        let r = match (&c.last, &c.start) {
            (Some(seq), _) | (None, StartAt::Resume(seq)) => r
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .starting_sequence_number(seq),
            (None, StartAt::TrimHorizon) => r.shard_iterator_type(ShardIteratorType::TrimHorizon),
            (None, StartAt::Latest) => r.shard_iterator_type(ShardIteratorType::Latest),
            (None, StartAt::AtTimestamp(ms)) => r
                .shard_iterator_type(ShardIteratorType::AtTimestamp)
                .timestamp(DateTime::from_millis(*ms)),
            (None, StartAt::AfterSequence(_)) => {
                r.shard_iterator_type(ShardIteratorType::TrimHorizon)
            }
        };
        match r.send().await {
            Ok(out) => Ok(out.shard_iterator().map(str::to_string)),
            Err(e) if code(&e) == Some("ProvisionedThroughputExceededException") => Ok(None),
            Err(e) => Err(sdk_error(
                &format!("GetShardIterator {} {}", stream, c.id),
                &e,
            )),
        }
    }

    /// One GetRecords on shard `i`, appending to `out`.
    fn read_shard(
        &mut self,
        i: usize,
        max: usize,
        out: &mut Vec<StreamRecord>,
    ) -> Result<(), PipelineError> {
        let client = self.client.clone();
        let stream = self.stream.clone();
        let now = Instant::now();
        let c = &mut self.shards[i];
        if c.iterator.is_none() {
            c.iterator = self.runtime.block_on(Self::iterator(&client, &stream, c))?;
            if c.iterator.is_none() {
                // Throttled, or a shard that has no iterator to give: try again later.
                c.next_read = now + IDLE_POLL;
                return Ok(());
            }
        }
        let iterator = c.iterator.clone().unwrap_or_default();
        let result = self.runtime.block_on(
            client
                .get_records()
                .shard_iterator(iterator)
                .limit(max.clamp(1, GET_MAX_RECORDS) as i32)
                .send(),
        );
        let got = match result {
            Ok(got) => got,
            Err(e) => {
                c.drained = None;
                match code(&e) {
                    Some("ExpiredIteratorException") => {
                        // Renewed from the last record returned (or the start).
                        c.iterator = None;
                        c.next_read = now;
                    }
                    Some("ProvisionedThroughputExceededException")
                    | Some("LimitExceededException") => {
                        c.throttled = c.throttled.saturating_add(1);
                        c.next_read =
                            now + crate::pipeline::backoff(c.throttled).max(self.busy_poll);
                        tracing::info!("GetRecords {} {}: throttled", stream, c.id);
                    }
                    _ => {
                        c.next_read = now + IDLE_POLL;
                        return Err(sdk_error(&format!("GetRecords {} {}", stream, c.id), &e));
                    }
                }
                return Ok(());
            }
        };
        c.throttled = 0;
        let records = got.records();
        for r in records {
            self.counter += 1;
            out.push(StreamRecord {
                sequence: self.counter,
                arrival_ms: r
                    .approximate_arrival_timestamp()
                    .and_then(|t| t.to_millis().ok())
                    .unwrap_or(0),
                data: r.data().as_ref().to_vec(),
            });
            c.last = Some(r.sequence_number().to_string());
        }
        let behind = got.millis_behind_latest().unwrap_or(0);
        c.drained = (records.is_empty() && behind == 0).then_some(now);
        c.behind_ms = behind.max(0) as u64;
        c.next_read = now
            + if records.is_empty() && behind == 0 {
                IDLE_POLL
            } else {
                self.busy_poll
            };
        match got.next_shard_iterator() {
            Some(next) => c.iterator = Some(next.to_string()),
            None => {
                // Closed by a reshard and read to its end: follow its children.
                let id = c.id.clone();
                let children: Vec<(String, Vec<String>)> = got
                    .child_shards()
                    .iter()
                    .map(|s| (s.shard_id().to_string(), s.parent_shards().to_vec()))
                    .collect();
                self.shards.remove(i);
                self.finished.insert(id);
                for (child, parents) in children {
                    if !self.finished.contains(&child) && !self.shards.iter().any(|s| s.id == child)
                    {
                        self.add(child, parents, false);
                    }
                }
                if got.child_shards().is_empty() {
                    // No child list in the response: find the children by listing.
                    self.relist = true;
                }
            }
        }
        Ok(())
    }
}

impl StreamReader for KinesisReader {
    fn next_batch(&mut self, max: usize) -> Result<Vec<StreamRecord>, PipelineError> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        if self.relist || self.listed_at.is_none_or(|t| t.elapsed() >= RELIST_EVERY) {
            self.list()?;
            self.relist = false;
        }
        let mut out = Vec::new();
        let n = self.shards.len();
        let start = self.turn;
        self.turn = self.turn.wrapping_add(1);
        // Each ready shard at most once per call, starting at a different shard each time.
        let ids: Vec<String> = (0..n)
            .map(|k| self.shards[(start + k) % n].id.clone())
            .collect();
        for id in ids {
            if out.len() >= max {
                break;
            }
            let Some(i) = self.shards.iter().position(|c| c.id == id) else {
                continue;
            };
            if self.shards[i].next_read > Instant::now() || !self.ready(&self.shards[i]) {
                continue;
            }
            if let Err(e) = self.read_shard(i, max - out.len(), &mut out) {
                // Records already read from other shards would be lost with the error.
                if out.is_empty() {
                    return Err(e);
                }
                self.failed = Some(e);
                break;
            }
        }
        Ok(out)
    }

    fn wait_for_more(&mut self, timeout: Duration) -> bool {
        let seen = self.waker.current();
        let now = Instant::now();
        let due = self
            .shards
            .iter()
            .filter(|c| self.ready(c))
            .map(|c| c.next_read.saturating_duration_since(now))
            .min()
            .unwrap_or(timeout)
            .min(timeout);
        if !due.is_zero() {
            self.waker.wait(seen, due);
        }
        true
    }

    /// Every shard this reader can read now has been read to its tip, by a GetRecords sent at
    /// or after `since`: a shard found drained earlier may have had records added since (it is
    /// read again after [`IDLE_POLL`]). A child waiting for its parent does not count: the
    /// parent, once read to its end, makes it readable (and not drained) in the same call.
    fn caught_up(&self, since: Option<Instant>) -> bool {
        self.failed.is_none()
            && self.listed_at.is_some()
            && self
                .shards
                .iter()
                .filter(|c| self.ready(c))
                .all(|c| c.drained.is_some_and(|t| since.is_none_or(|s| t >= s)))
    }

    /// The most any shard is behind, from the last GetRecords on each.
    fn behind_ms(&self) -> Option<u64> {
        Some(self.shards.iter().map(|c| c.behind_ms).max().unwrap_or(0))
    }

    /// Every shard's last sequence number read, and the finished shards, as JSON.
    fn position(&self) -> Option<String> {
        let mut map: BTreeMap<String, String> = self
            .finished
            .iter()
            .map(|id| (id.clone(), FINISHED.to_string()))
            .collect();
        for c in &self.shards {
            let seq = c.last.clone().or_else(|| match &c.start {
                StartAt::Resume(seq) => Some(seq.clone()),
                _ => None,
            });
            if let Some(seq) = seq {
                map.insert(c.id.clone(), seq);
            }
        }
        serde_json::to_string(&map).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake Kinesis for the reader's reshard logic, which moto cannot exercise (its
    /// UpdateShardCount keeps writing to the closed parent and never ends it). Shards as real
    /// Kinesis has them after a split: the parent closed, read to its end it returns no next
    /// iterator and names its children. Every `expire_every`-th GetRecords fails with
    /// ExpiredIteratorException, every `kms_every`-th with KMSThrottlingException (an error
    /// the reader returns, as it does any it has no retry of its own for).
    struct FakeKinesis {
        shards: Vec<FakeShard>,
        gets: u64,
        expire_every: u64,
        kms_every: u64,
    }

    struct FakeShard {
        id: &'static str,
        parents: Vec<&'static str>,
        records: Vec<String>,
        closed: bool,
        children: Vec<&'static str>,
    }

    fn base64(bytes: &[u8]) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for c in bytes.chunks(3) {
            let n = (u32::from(c[0]) << 16)
                | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
                | u32::from(*c.get(2).unwrap_or(&0));
            for k in 0..4 {
                if k <= c.len() {
                    out.push(A[(n >> (18 - 6 * k) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    impl FakeKinesis {
        fn shard(&self, id: &str) -> &FakeShard {
            self.shards
                .iter()
                .find(|s| s.id == id)
                .expect("known shard")
        }

        fn answer(&mut self, target: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
            use serde_json::json;
            match target {
                "ListShards" => (
                    200,
                    json!({"Shards": self.shards.iter().map(|s| {
                        let mut v = json!({"ShardId": s.id, "HashKeyRange": {"StartingHashKey": "0", "EndingHashKey": "1"},
                            "SequenceNumberRange": {"StartingSequenceNumber": "0"}});
                        if let Some(p) = s.parents.first() { v["ParentShardId"] = json!(p); }
                        if let Some(p) = s.parents.get(1) { v["AdjacentParentShardId"] = json!(p); }
                        v
                    }).collect::<Vec<_>>()}),
                ),
                "GetShardIterator" => {
                    let id = body["ShardId"].as_str().unwrap_or_default();
                    let shard = self.shard(id);
                    let at = match body["ShardIteratorType"].as_str() {
                        Some("AFTER_SEQUENCE_NUMBER") => {
                            let seq = body["StartingSequenceNumber"].as_str().unwrap_or_default();
                            shard
                                .records
                                .iter()
                                .position(|r| r == seq)
                                .map_or(0, |i| i + 1)
                        }
                        Some("LATEST") => shard.records.len(),
                        _ => 0,
                    };
                    (200, json!({"ShardIterator": format!("{id}@{at}")}))
                }
                "GetRecords" => {
                    self.gets += 1;
                    if self.expire_every > 0 && self.gets.is_multiple_of(self.expire_every) {
                        return (
                            400,
                            json!({"__type": "ExpiredIteratorException", "message": "expired (fake)"}),
                        );
                    }
                    if self.kms_every > 0 && self.gets.is_multiple_of(self.kms_every) {
                        return (
                            400,
                            json!({"__type": "KMSThrottlingException", "message": "throttled (fake)"}),
                        );
                    }
                    let it = body["ShardIterator"].as_str().unwrap_or_default();
                    let (id, at) = it.split_once('@').expect("an iterator we gave");
                    let at: usize = at.parse().expect("iterator index");
                    let limit = body["Limit"].as_u64().unwrap_or(10_000) as usize;
                    let shard = self.shard(id);
                    let end = (at + limit.min(2)).min(shard.records.len());
                    let records: Vec<_> = shard.records[at..end]
                        .iter()
                        .map(|r| {
                            json!({"SequenceNumber": r, "Data": base64(r.as_bytes()),
                            "PartitionKey": "k", "ApproximateArrivalTimestamp": 1.7e9})
                        })
                        .collect();
                    let behind = if end < shard.records.len() { 1_000 } else { 0 };
                    let mut v = json!({"Records": records, "MillisBehindLatest": behind});
                    if shard.closed && end == shard.records.len() {
                        v["ChildShards"] = json!(
                            shard
                                .children
                                .iter()
                                .map(|c| json!({
                            "ShardId": c, "ParentShards": [id],
                            "HashKeyRange": {"StartingHashKey": "0", "EndingHashKey": "1"}}))
                                .collect::<Vec<_>>()
                        );
                    } else {
                        v["NextShardIterator"] = json!(format!("{id}@{end}"));
                    }
                    (200, v)
                }
                other => (
                    400,
                    json!({"__type": "InvalidArgumentException", "message": format!("fake: no {other}")}),
                ),
            }
        }
    }

    /// Serves `fake` over HTTP/1.1 on 127.0.0.1; returns its URL.
    fn serve(fake: Arc<Mutex<FakeKinesis>>) -> String {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let fake = fake.clone();
                std::thread::spawn(move || {
                    let mut r = BufReader::new(conn.try_clone().unwrap());
                    let mut w = conn;
                    loop {
                        let (mut target, mut len) = (String::new(), 0usize);
                        let mut line = String::new();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        loop {
                            line.clear();
                            r.read_line(&mut line).unwrap();
                            let l = line.trim_end();
                            if l.is_empty() {
                                break;
                            }
                            let (k, v) = l.split_once(':').unwrap();
                            match k.to_ascii_lowercase().as_str() {
                                "x-amz-target" => {
                                    target = v.trim().rsplit('.').next().unwrap().to_string();
                                }
                                "content-length" => len = v.trim().parse().unwrap(),
                                _ => {}
                            }
                        }
                        let mut body = vec![0; len];
                        r.read_exact(&mut body).unwrap();
                        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
                        let (status, reply) = fake.lock().unwrap().answer(&target, &body);
                        let reply = reply.to_string();
                        let _ = write!(
                            w,
                            "HTTP/1.1 {status} X\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\n\r\n{reply}",
                            reply.len()
                        );
                    }
                });
            }
        });
        url
    }

    fn reader_on(url: &str, runtime: &tokio::runtime::Runtime, from: StartAt) -> KinesisReader {
        use aws_sdk_kinesis::config::{BehaviorVersion, Credentials, Region};
        let conf = aws_sdk_kinesis::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(url)
            .credentials_provider(Credentials::new("fake", "fake", None, None, "fake"))
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .build();
        KinesisReader::new(
            Client::from_conf(conf),
            runtime.handle().clone(),
            "fake".into(),
            from,
            Arc::default(),
            READINGS_BUSY_POLL,
        )
    }

    /// The records' data as text.
    fn texts(batch: Vec<StreamRecord>) -> Vec<String> {
        batch
            .into_iter()
            .map(|r| String::from_utf8(r.data).unwrap())
            .collect()
    }

    /// `fake` served, and a reader of it from the oldest record (with the runtime it uses).
    fn follow(
        fake: FakeKinesis,
    ) -> (
        Arc<Mutex<FakeKinesis>>,
        String,
        tokio::runtime::Runtime,
        KinesisReader,
    ) {
        let fake = Arc::new(Mutex::new(fake));
        let url = serve(fake.clone());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let reader = reader_on(&url, &runtime, StartAt::TrimHorizon);
        (fake, url, runtime, reader)
    }

    /// Reads until caught up (waiting as the reader says), at most 200 rounds.
    fn drain(reader: &mut KinesisReader) -> Vec<String> {
        let mut got = Vec::new();
        for _ in 0..200 {
            let batch = reader.next_batch(500).expect("reads");
            let empty = batch.is_empty();
            got.extend(texts(batch));
            if empty && reader.caught_up(None) {
                return got;
            }
            if empty {
                reader.wait_for_more(Duration::from_secs(2));
            }
        }
        panic!("not caught up after 200 rounds: {got:?}");
    }

    #[test]
    fn after_a_split_the_parent_is_read_to_its_end_then_its_children_and_expired_iterators_are_renewed()
     {
        let (fake, url, runtime, mut reader) = follow(FakeKinesis {
            shards: vec![
                FakeShard {
                    id: "shard-0",
                    parents: vec![],
                    records: (1..=5).map(|i| format!("a{i}")).collect(),
                    closed: true,
                    children: vec!["shard-1", "shard-2"],
                },
                FakeShard {
                    id: "shard-1",
                    parents: vec!["shard-0"],
                    records: (1..=3).map(|i| format!("b{i}")).collect(),
                    closed: false,
                    children: vec![],
                },
                FakeShard {
                    id: "shard-2",
                    parents: vec!["shard-0"],
                    records: (1..=2).map(|i| format!("c{i}")).collect(),
                    closed: false,
                    children: vec![],
                },
            ],
            gets: 0,
            expire_every: 3,
            kms_every: 0,
        });
        let got = drain(&mut reader);
        // Everything once, the parent's records before any child's.
        let mut sorted = got.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            ["a1", "a2", "a3", "a4", "a5", "b1", "b2", "b3", "c1", "c2"]
        );
        assert_eq!(&got[..5], ["a1", "a2", "a3", "a4", "a5"]);
        assert!(
            fake.lock().unwrap().gets >= 9,
            "expired iterators were injected"
        );

        // The position records the parent as finished and each child's last record; a reader
        // resuming from it reads only what came after.
        let token = reader.position().expect("a position");
        let map: BTreeMap<String, String> = serde_json::from_str(&token).unwrap();
        assert_eq!(map.get("shard-0").map(String::as_str), Some(FINISHED));
        assert_eq!(map.get("shard-1").map(String::as_str), Some("b3"));
        assert_eq!(map.get("shard-2").map(String::as_str), Some("c2"));
        fake.lock().unwrap().shards[1].records.push("b4".into());
        let mut resumed = reader_on(&url, &runtime, StartAt::Resume(token));
        assert_eq!(drain(&mut resumed), ["b4"]);
    }

    fn open_shard(id: &'static str, records: &[&str]) -> FakeShard {
        FakeShard {
            id,
            parents: vec![],
            records: records.iter().map(|r| r.to_string()).collect(),
            closed: false,
            children: vec![],
        }
    }

    #[test]
    fn a_read_failing_after_another_shards_records_were_read_loses_none_of_them() {
        // The second GetRecords fails: shard-b's, after shard-a returned records in the same call.
        let (fake, _url, _runtime, mut reader) = follow(FakeKinesis {
            shards: vec![
                open_shard("shard-a", &["a1", "a2", "a3"]),
                open_shard("shard-b", &["b1", "b2"]),
            ],
            gets: 0,
            expire_every: 0,
            kms_every: 2,
        });
        let first = texts(
            reader
                .next_batch(500)
                .expect("shard-a's records, the error kept"),
        );
        assert_eq!(first, ["a1", "a2"]);
        let err = reader.next_batch(500).expect_err("then shard-b's error");
        assert!(err.to_string().contains("KMSThrottlingException"), "{err}");
        // With reads working again, the rest comes once: nothing returned twice or skipped.
        fake.lock().unwrap().kms_every = 0;
        let mut got = first;
        got.extend(drain(&mut reader));
        got.sort();
        assert_eq!(got, ["a1", "a2", "a3", "b1", "b2"]);
    }

    #[test]
    fn caught_up_since_an_instant_needs_every_shard_read_to_its_tip_after_it() {
        let (fake, _url, _runtime, mut reader) = follow(FakeKinesis {
            shards: vec![
                open_shard("shard-a", &["a1"]),
                open_shard("shard-b", &["b1"]),
            ],
            gets: 0,
            expire_every: 0,
            kms_every: 0,
        });
        let mut got = drain(&mut reader);
        assert!(reader.caught_up(None));
        // A record added after both shards were found at their tips: those reads say nothing
        // about it, so the reader is not caught up since now until shard-a is read again.
        fake.lock().unwrap().shards[0].records.push("a2".into());
        let stop = Instant::now();
        assert!(reader.caught_up(None), "as of the last reads");
        assert!(!reader.caught_up(Some(stop)), "as of `stop`");
        for _ in 0..20 {
            let batch = reader.next_batch(500).expect("reads");
            let empty = batch.is_empty();
            got.extend(texts(batch));
            if empty && reader.caught_up(Some(stop)) {
                break;
            }
            if empty {
                reader.wait_for_more(Duration::from_secs(2));
            }
        }
        got.sort();
        assert_eq!(got, ["a1", "a2", "b1"]);
        assert!(reader.caught_up(Some(stop)));
    }
}
