//! A fault-injecting HTTP proxy in front of moto (Kinesis, Athena and CloudFormation faults).
//! Standard library and serde_json only, so that the Lambda crate's emulator test includes it
//! too (`#[path]`).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Which faults the proxy injects, as probabilities per request (or per entry), drawn from a
/// seeded generator so a run can be repeated.
#[derive(Debug, Clone, Copy)]
pub struct Faults {
    pub seed: u64,
    /// PutRecords refused whole with ProvisionedThroughputExceededException (nothing stored).
    pub put_throttle: f64,
    /// PutRecords where some entries fail (each with `entry_fail`): only the others are stored,
    /// and the reply says which failed, as Kinesis does.
    pub put_partial: f64,
    pub entry_fail: f64,
    /// PutRecords stored, then answered with a 500: the client resends records that are
    /// already on the stream (duplicates, which are allowed; losses are not).
    pub put_reply_lost: f64,
    /// GetRecords refused with ProvisionedThroughputExceededException.
    pub get_throttle: f64,
    /// GetRecords refused with ExpiredIteratorException.
    pub get_expired: f64,
    /// GetRecords refused with KMSThrottlingException (the stream's KMS key throttled): an
    /// error the SDK does not retry and the reader does not know, which must not stop a stage.
    pub get_kms_throttle: f64,
    /// Athena: serve GetQueryResults in pages of at most this many rows with a NextToken, as
    /// Athena does (moto returns every row at once); 0 passes moto's reply through.
    pub athena_page_rows: usize,
    /// Athena: report this DataScannedInBytes (moto reports 0).
    pub athena_scanned: Option<u64>,
    /// Athena: report every query as RUNNING (until it is stopped), to test cancelling.
    pub athena_hold_running: bool,
    /// CloudFormation: report this StackStatus in DescribeStacks (moto cannot be made to roll
    /// back or to stay in progress).
    pub stack_status: Option<&'static str>,
}

impl Faults {
    pub const NONE: Faults = Faults {
        seed: 0,
        put_throttle: 0.0,
        put_partial: 0.0,
        entry_fail: 0.0,
        put_reply_lost: 0.0,
        get_throttle: 0.0,
        get_expired: 0.0,
        get_kms_throttle: 0.0,
        athena_page_rows: 0,
        athena_scanned: None,
        athena_hold_running: false,
        stack_status: None,
    };
}

/// What the proxy did.
#[derive(Debug, Default)]
pub struct FaultCounts {
    pub forwarded: AtomicU64,
    pub puts: AtomicU64,
    pub put_throttled: AtomicU64,
    pub put_partial: AtomicU64,
    pub entries_failed: AtomicU64,
    pub put_replies_lost: AtomicU64,
    pub gets: AtomicU64,
    pub get_throttled: AtomicU64,
    pub get_expired: AtomicU64,
    pub get_kms_throttled: AtomicU64,
    pub athena_pages: AtomicU64,
    pub athena_polls: AtomicU64,
    pub athena_stops: AtomicU64,
}

impl FaultCounts {
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// An HTTP/1.1 proxy on 127.0.0.1 in front of moto that injects Kinesis faults into the
/// requests it forwards (everything else passes unchanged). A test fake of the network
/// between the app and AWS, named as one: the app and moto are real.
pub struct FaultProxy {
    pub url: String,
    pub counts: Arc<FaultCounts>,
    pub faults: Arc<Mutex<Faults>>,
}

impl FaultProxy {
    pub fn start(upstream: &str, faults: Faults) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let counts = Arc::new(FaultCounts::default());
        let shared = Arc::new(Mutex::new(faults));
        let rng = Arc::new(Mutex::new(faults.seed ^ 0x9E37_79B9_7F4A_7C15));
        {
            let counts = counts.clone();
            let shared = shared.clone();
            std::thread::spawn(move || {
                for conn in listener.incoming().flatten() {
                    let upstream = upstream.clone();
                    let counts = counts.clone();
                    let shared = shared.clone();
                    let rng = rng.clone();
                    std::thread::spawn(move || {
                        let _ = serve(conn, &upstream, &counts, &shared, &rng);
                    });
                }
            });
        }
        FaultProxy {
            url,
            counts,
            faults: shared,
        }
    }

    pub fn set(&self, faults: Faults) {
        *self.faults.lock().unwrap() = faults;
    }

    pub fn summary(&self) -> String {
        let c = &self.counts;
        let g = FaultCounts::get;
        format!(
            "{} forwarded; PutRecords {} ({} throttled, {} partial with {} entries failed, {} replies lost); GetRecords {} ({} throttled, {} expired iterators, {} KMS throttled)",
            g(&c.forwarded),
            g(&c.puts),
            g(&c.put_throttled),
            g(&c.put_partial),
            g(&c.entries_failed),
            g(&c.put_replies_lost),
            g(&c.gets),
            g(&c.get_throttled),
            g(&c.get_expired),
            g(&c.get_kms_throttled)
        )
    }
}

/// splitmix64 over the shared state: a uniform draw in [0, 1).
fn draw(rng: &Mutex<u64>) -> f64 {
    let mut s = rng.lock().unwrap();
    *s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *s;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

struct Message {
    head: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// The reply to a HEAD request: its Content-Length is the object's, with no body.
    bodiless: bool,
}

impl Message {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn bytes(&self, close: bool) -> Vec<u8> {
        let mut out = format!("{}\r\n", self.head);
        for (k, v) in &self.headers {
            let drop = if self.bodiless {
                ["connection", "transfer-encoding"].as_slice()
            } else {
                ["content-length", "connection", "transfer-encoding"].as_slice()
            };
            if drop.iter().any(|h| k.eq_ignore_ascii_case(h)) {
                continue;
            }
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        if !self.bodiless {
            out.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        }
        out.push_str(if close {
            "Connection: close\r\n\r\n"
        } else {
            "Connection: keep-alive\r\n\r\n"
        });
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

/// Reads one HTTP/1.1 message; `None` at a clean end of the connection.
fn read_message(
    r: &mut impl BufRead,
    to_eof: bool,
    bodiless: bool,
) -> std::io::Result<Option<Message>> {
    let mut head = String::new();
    if r.read_line(&mut head)? == 0 {
        return Ok(None);
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let mut m = Message {
        head: head.trim_end().to_string(),
        headers,
        body: Vec::new(),
        bodiless,
    };
    if bodiless {
        return Ok(Some(m));
    }
    if let Some(n) = m
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        m.body.resize(n, 0);
        r.read_exact(&mut m.body)?;
    } else if m
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size = String::new();
            r.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk)?;
            if n == 0 {
                break;
            }
            m.body.extend_from_slice(&chunk[..n]);
        }
    } else if to_eof {
        r.read_to_end(&mut m.body)?;
    }
    Ok(Some(m))
}

fn forward(upstream: &str, request: &Message) -> std::io::Result<Message> {
    let mut s = TcpStream::connect(upstream)?;
    s.write_all(&request.bytes(true))?;
    let mut r = BufReader::new(s);
    read_message(&mut r, true, request.head.starts_with("HEAD "))?
        .ok_or_else(|| std::io::Error::other("upstream closed without a response"))
}

fn error_reply(status: &str, kind: &str, message: &str) -> Message {
    Message {
        head: format!("HTTP/1.1 {status}"),
        headers: vec![("Content-Type".into(), "application/x-amz-json-1.1".into())],
        body: format!(r#"{{"__type":"{kind}","message":"{message}"}}"#).into_bytes(),
        bodiless: false,
    }
}

fn serve(
    conn: TcpStream,
    upstream: &str,
    counts: &FaultCounts,
    faults: &Mutex<Faults>,
    rng: &Mutex<u64>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut writer = conn;
    while let Some(request) = read_message(&mut reader, false, false)? {
        let f = *faults.lock().unwrap();
        let target = request
            .header("x-amz-target")
            .unwrap_or_default()
            .to_string();
        let reply = if target.ends_with(".PutRecords") {
            counts.puts.fetch_add(1, Ordering::Relaxed);
            put_records(upstream, request, &f, counts, rng)?
        } else if target.ends_with(".GetRecords") {
            counts.gets.fetch_add(1, Ordering::Relaxed);
            if draw(rng) < f.get_throttle {
                counts.get_throttled.fetch_add(1, Ordering::Relaxed);
                error_reply(
                    "400 Bad Request",
                    "ProvisionedThroughputExceededException",
                    "Rate exceeded for shard (injected)",
                )
            } else if draw(rng) < f.get_expired {
                counts.get_expired.fetch_add(1, Ordering::Relaxed);
                error_reply(
                    "400 Bad Request",
                    "ExpiredIteratorException",
                    "Iterator expired (injected)",
                )
            } else if draw(rng) < f.get_kms_throttle {
                counts.get_kms_throttled.fetch_add(1, Ordering::Relaxed);
                error_reply(
                    "400 Bad Request",
                    "KMSThrottlingException",
                    "KMS throttled the request (injected)",
                )
            } else {
                counts.forwarded.fetch_add(1, Ordering::Relaxed);
                forward(upstream, &request)?
            }
        } else if target.ends_with(".GetQueryResults") && f.athena_page_rows > 0 {
            counts.athena_pages.fetch_add(1, Ordering::Relaxed);
            counts.forwarded.fetch_add(1, Ordering::Relaxed);
            athena_page(upstream, &request, f.athena_page_rows)?
        } else if target.ends_with(".GetQueryExecution") {
            counts.athena_polls.fetch_add(1, Ordering::Relaxed);
            counts.forwarded.fetch_add(1, Ordering::Relaxed);
            let mut reply = forward(upstream, &request)?;
            let mut v: serde_json::Value = serde_json::from_slice(&reply.body).unwrap_or_default();
            let e = &mut v["QueryExecution"];
            if let Some(bytes) = f.athena_scanned
                && e.is_object()
            {
                e["Statistics"]["DataScannedInBytes"] = bytes.into();
            }
            if f.athena_hold_running && e["Status"]["State"] != "CANCELLED" && e.is_object() {
                e["Status"]["State"] = "RUNNING".into();
            }
            reply.body = serde_json::to_vec(&v).unwrap();
            reply
        } else if let Some(status) = f.stack_status
            && request
                .body
                .windows(21)
                .any(|w| w == b"Action=DescribeStacks")
        {
            counts.forwarded.fetch_add(1, Ordering::Relaxed);
            let mut reply = forward(upstream, &request)?;
            let xml = String::from_utf8_lossy(&reply.body).into_owned();
            let rewritten = match (xml.find("<StackStatus>"), xml.find("</StackStatus>")) {
                (Some(a), Some(b)) if a < b => {
                    format!("{}<StackStatus>{status}{}", &xml[..a], &xml[b..])
                }
                _ => xml,
            };
            reply.body = rewritten.into_bytes();
            reply
        } else {
            if target.ends_with(".StopQueryExecution") {
                counts.athena_stops.fetch_add(1, Ordering::Relaxed);
            }
            counts.forwarded.fetch_add(1, Ordering::Relaxed);
            forward(upstream, &request)?
        };
        writer.write_all(&reply.bytes(false))?;
        writer.flush()?;
    }
    Ok(())
}

fn put_records(
    upstream: &str,
    mut request: Message,
    f: &Faults,
    counts: &FaultCounts,
    rng: &Mutex<u64>,
) -> std::io::Result<Message> {
    if draw(rng) < f.put_throttle {
        counts.put_throttled.fetch_add(1, Ordering::Relaxed);
        return Ok(error_reply(
            "400 Bad Request",
            "ProvisionedThroughputExceededException",
            "Rate exceeded for stream (injected)",
        ));
    }
    if draw(rng) < f.put_reply_lost {
        counts.put_replies_lost.fetch_add(1, Ordering::Relaxed);
        counts.forwarded.fetch_add(1, Ordering::Relaxed);
        forward(upstream, &request)?;
        return Ok(error_reply(
            "500 Internal Server Error",
            "InternalFailure",
            "stored, but the reply was lost (injected)",
        ));
    }
    if draw(rng) >= f.put_partial {
        counts.forwarded.fetch_add(1, Ordering::Relaxed);
        return forward(upstream, &request);
    }
    counts.put_partial.fetch_add(1, Ordering::Relaxed);
    let mut body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    let entries = body["Records"].as_array().cloned().unwrap_or_default();
    let fail: Vec<bool> = entries.iter().map(|_| draw(rng) < f.entry_fail).collect();
    let failed = fail.iter().filter(|&&x| x).count();
    counts
        .entries_failed
        .fetch_add(failed as u64, Ordering::Relaxed);
    let kept: Vec<serde_json::Value> = entries
        .iter()
        .zip(&fail)
        .filter(|(_, f)| !**f)
        .map(|(e, _)| e.clone())
        .collect();
    let mut stored = Vec::new().into_iter();
    if !kept.is_empty() {
        body["Records"] = serde_json::Value::Array(kept);
        request.body = serde_json::to_vec(&body).unwrap();
        counts.forwarded.fetch_add(1, Ordering::Relaxed);
        let reply = forward(upstream, &request)?;
        if !reply.head.contains(" 200") {
            return Ok(reply);
        }
        let v: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        stored = v["Records"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter();
    }
    let results: Vec<serde_json::Value> = fail
        .iter()
        .map(|&f| {
            if f {
                serde_json::json!({
                    "ErrorCode": "ProvisionedThroughputExceededException",
                    "ErrorMessage": "Rate exceeded for shard (injected)"
                })
            } else {
                stored.next().unwrap_or(serde_json::Value::Null)
            }
        })
        .collect();
    let reply = serde_json::json!({"FailedRecordCount": failed, "Records": results});
    Ok(Message {
        head: "HTTP/1.1 200 OK".into(),
        headers: vec![("Content-Type".into(), "application/x-amz-json-1.1".into())],
        body: serde_json::to_vec(&reply).unwrap(),
        bodiless: false,
    })
}

/// GetQueryResults in pages, as Athena serves them: at most `page_rows` (and MaxResults) rows,
/// a NextToken while rows remain.
fn athena_page(upstream: &str, request: &Message, page_rows: usize) -> std::io::Result<Message> {
    let asked: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    let offset: usize = asked["NextToken"]
        .as_str()
        .map_or(0, |t| t.parse().unwrap());
    let max = asked["MaxResults"]
        .as_u64()
        .map_or(page_rows, |m| (m as usize).min(page_rows));
    let mut reply = forward(upstream, request)?;
    if !reply.head.contains(" 200") {
        return Ok(reply);
    }
    let mut v: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    let rows = v["ResultSet"]["Rows"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let end = (offset + max).min(rows.len());
    v["ResultSet"]["Rows"] = serde_json::Value::Array(rows[offset.min(end)..end].to_vec());
    if end < rows.len() {
        v["NextToken"] = end.to_string().into();
    }
    reply.body = serde_json::to_vec(&v).unwrap();
    Ok(reply)
}
