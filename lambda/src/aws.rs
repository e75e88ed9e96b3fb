//! The function's calls on AWS: snapshots in S3 (the position in the object's metadata),
//! PutRecords on the anomaly stream, ListShards for a child shard's parent.

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_kinesis::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use iotaa_detector::batch::failed_entries;

use crate::config::Config;
use crate::handler::Aws;

/// The metadata key (`x-amz-meta-position`) holding a snapshot's position.
pub const POSITION: &str = "position";

/// The SDK clients, from the function's environment (region, credentials, and
/// `AWS_ENDPOINT_URL` when set, e.g. moto in the tests).
#[derive(Clone)]
pub struct Clients {
    s3: aws_sdk_s3::Client,
    kinesis: aws_sdk_kinesis::Client,
    bucket: String,
    stream: String,
}

/// The SDK configuration: the default chain on a rustls (ring) HTTPS client, as the app uses.
pub async fn sdk_config() -> SdkConfig {
    let https = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(https)
        .load()
        .await
}

impl Clients {
    pub fn new(sdk: &SdkConfig, config: &Config) -> Clients {
        // A custom endpoint (moto) is addressed path-style.
        let path_style = std::env::var_os("AWS_ENDPOINT_URL").is_some();
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(sdk)
                .force_path_style(path_style)
                .build(),
        );
        Clients {
            s3,
            kinesis: aws_sdk_kinesis::Client::new(sdk),
            bucket: config.bucket.clone(),
            stream: config.anomaly_stream.clone(),
        }
    }
}

/// An SDK error as one line: the service's code and message, or the error chain.
fn line<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    what: &str,
    e: &SdkError<E, R>,
) -> String {
    let text = match e.as_service_error() {
        Some(s) if s.code().is_some() => {
            format!(
                "{}: {}",
                s.code().unwrap_or("error"),
                s.message().unwrap_or_default()
            )
        }
        _ => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text.push_str(": ");
                text.push_str(&s.to_string());
                source = s.source();
            }
            text
        }
    };
    format!("{what}: {}", text.replace('\n', " "))
}

impl Aws for Clients {
    async fn position(&self, key: &str) -> Result<Option<String>, String> {
        match self
            .s3
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(Some(
                out.metadata()
                    .and_then(|m| m.get(POSITION))
                    .cloned()
                    .unwrap_or_default(),
            )),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
            Err(e) => Err(line(&format!("HeadObject {}", self.location(key)), &e)),
        }
    }

    async fn load(&self, key: &str) -> Result<Option<(Vec<u8>, String)>, String> {
        let out = match self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(line(&format!("GetObject {}", self.location(key)), &e)),
        };
        let position = out
            .metadata()
            .and_then(|m| m.get(POSITION))
            .cloned()
            .unwrap_or_default();
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| format!("GetObject {}: reading the body: {e}", self.location(key)))?
            .into_bytes()
            .to_vec();
        Ok(Some((bytes, position)))
    }

    async fn save(&self, key: &str, bytes: Vec<u8>, position: &str) -> Result<(), String> {
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .metadata(POSITION, position)
            .content_type("application/octet-stream")
            .body(bytes.into())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| line(&format!("PutObject {}", self.location(key)), &e))
    }

    async fn put_records(&self, records: &[(String, Vec<u8>)]) -> Result<Vec<usize>, String> {
        let entries = records
            .iter()
            .map(|(key, data)| {
                PutRecordsRequestEntry::builder()
                    .partition_key(key)
                    .data(Blob::new(data.clone()))
                    .build()
                    .map_err(|e| format!("PutRecords entry: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = self
            .kinesis
            .put_records()
            .stream_name(&self.stream)
            .set_records(Some(entries))
            .send()
            .await
            .map_err(|e| line(&format!("PutRecords to {}", self.stream), &e))?;
        if out.failed_record_count().unwrap_or(0) == 0 {
            return Ok(Vec::new());
        }
        Ok(failed_entries(
            records.len(),
            out.records().iter().map(|r| r.error_code().is_some()),
        ))
    }

    async fn parent_shard(&self, stream_arn: &str, shard: &str) -> Result<Option<String>, String> {
        let mut token: Option<String> = None;
        loop {
            let mut call = self.kinesis.list_shards();
            call = match &token {
                Some(t) => call.next_token(t),
                None => call.stream_arn(stream_arn),
            };
            let out = call
                .send()
                .await
                .map_err(|e| line(&format!("ListShards {stream_arn}"), &e))?;
            if let Some(s) = out.shards().iter().find(|s| s.shard_id() == shard) {
                return Ok(s.parent_shard_id().map(str::to_string));
            }
            match out.next_token() {
                Some(t) => token = Some(t.to_string()),
                None => return Ok(None),
            }
        }
    }

    fn location(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }
}
