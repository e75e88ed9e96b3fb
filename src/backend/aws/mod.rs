//! The AWS backend: the pipeline on a CloudFormation stack built from `infra/iotaa.yaml`
//! (compiled in), against real AWS or any AWS-compatible endpoint (`aws.endpoint_url` or
//! `AWS_ENDPOINT_URL`, e.g. moto).
//!
//! Config names only the stack, region, profile and endpoint; every resource name the app needs
//! comes from the stack's outputs. Credentials and region come from the SDK's default chain
//! (environment, profile, SSO, instance role); `aws.region` and `aws.profile` override it. A
//! missing region or credentials is one line before any request is made.
//!
//! - this module: the SDK configuration, the template's parameters, the deployed stack
//!   ([`deployed_stack`]) and [`open`], which builds the backend on it;
//! - `cloudformation`: describe, deploy, delete (and empty the bucket), events;
//! - `stack`: [`stack::AwsStack`], the stack as a [`crate::stack::Stack`];
//! - `kinesis` and `firehose`: the pipeline's streams; `athena`: queries.

pub mod artifact;
pub mod athena;
pub mod cloudformation;
pub mod firehose;
pub mod function;
pub mod kinesis;
pub mod policy;
pub mod prices;
pub mod stack;
pub mod watch;

use std::sync::Arc;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::ProvideCredentials;
use aws_sdk_cloudformation::Client;
use aws_sdk_cloudformation::error::ProvideErrorMetadata;
use color_eyre::eyre::{Result, eyre};

use super::layout::Layout;
use super::local::LocalStreams;
use super::settings::Plan;
use crate::config::{Compression, DetectorPlace, Ingest, Loaded};
use crate::pipeline::Streams;
use crate::stack::with_reason;
use crate::text::{error_chain, one_line};
use cloudformation::{Described, describe};

/// The template, as shipped in `infra/`.
pub const TEMPLATE: &str = include_str!("../../../infra/iotaa.yaml");

/// Kinesis' write limit per partition key (records a second), the most a device can send.
pub const KEY_RECORDS_PER_SEC: f64 = 1_000.0;

/// How often a deploy or delete polls while the stack is in progress, unless told otherwise.
pub const POLL: Duration = Duration::from_secs(2);

/// The SDK configuration: the default chain with the config's overrides. Fails with one line
/// when no region or no credentials can be found.
pub async fn sdk_config(loaded: &Loaded) -> Result<SdkConfig> {
    let aws = &loaded.config.aws;
    let https = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(https);
    if let Some(region) = &aws.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(profile) = &aws.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(url) = &aws.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    let conf = loader.load().await;
    let file = match &loaded.source {
        crate::config::Source::File(path) => path.display().to_string(),
        crate::config::Source::Defaults => "config.toml".to_string(),
    };
    match conf.region().map(|r| r.as_ref().to_string()) {
        None => {
            return Err(eyre!(
                "no AWS region: set [aws] region in {file}, AWS_REGION, or a region in the AWS profile"
            ));
        }
        Some(r) if r.is_empty() => {
            return Err(eyre!(
                "no AWS region: AWS_REGION is set but empty; set it, or [aws] region in {file}"
            ));
        }
        Some(r)
            if !r
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') =>
        {
            return Err(eyre!(
                "invalid AWS region {r:?}: expected a region name like \"us-east-1\""
            ));
        }
        Some(_) => {}
    }
    let Some(provider) = conf.credentials_provider() else {
        return Err(eyre!("no AWS credentials provider is configured"));
    };
    if let Err(e) = provider.provide_credentials().await {
        return Err(eyre!(
            "no AWS credentials: {} (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or [aws] profile, or run `aws sso login`)",
            error_chain(&e)
        ));
    }
    Ok(conf)
}

/// The template's parameters from the config: the same buffering, compression, threshold,
/// table and detector as the local pipeline. `detector_code` is the key of the detector
/// function's zip in the stack's bucket, or empty for no function (the app scores).
pub fn parameters(loaded: &Loaded, detector_code: &str) -> Vec<(String, String)> {
    let c = &loaded.config;
    let d = &c.detector;
    vec![
        ("DetectorCodeKey".into(), detector_code.to_string()),
        ("DetectorTrees".into(), d.trees.to_string()),
        ("DetectorSampleSize".into(), d.sample_size.to_string()),
        ("DetectorTimeDecay".into(), d.time_decay.to_string()),
        ("DetectorShingleSize".into(), d.shingle_size.to_string()),
        ("DetectorPerDevice".into(), d.per_device.to_string()),
        ("DetectorExplanation".into(), d.explanation.to_string()),
        ("DetectorRandomSeed".into(), d.random_seed.to_string()),
        (
            "SnapshotIntervalSeconds".into(),
            d.snapshot_interval_secs.to_string(),
        ),
        ("ShardCount".into(), c.aws.shard_count.to_string()),
        ("Ingest".into(), c.aws.ingest.as_str().into()),
        (
            "BufferIntervalSeconds".into(),
            c.aws.buffer_interval_secs.to_string(),
        ),
        ("BufferSizeMiB".into(), c.aws.buffer_size_mib.to_string()),
        (
            "Compression".into(),
            match c.delivery.compression {
                Compression::Gzip => "GZIP",
                Compression::None => "UNCOMPRESSED",
            }
            .into(),
        ),
        ("LakeFormat".into(), c.delivery.format.as_str().into()),
        ("Prefix".into(), c.delivery.prefix.clone()),
        (
            "LakeExpirationDays".into(),
            c.aws.lake_expiration_days.to_string(),
        ),
        (
            "BytesScannedCutoffPerQuery".into(),
            c.aws.bytes_scanned_cutoff.to_string(),
        ),
        ("AnomalyThreshold".into(), c.alerts.threshold.to_string()),
        (
            "AlertEmail".into(),
            c.aws.alert_email.clone().unwrap_or_default(),
        ),
        ("DatabaseName".into(), c.query.database.clone()),
    ]
}

/// Errors from the SDK as one line: the service's code and message when there is one, else
/// the whole chain.
pub(crate) fn sdk_error<E>(
    what: &str,
    e: &aws_sdk_cloudformation::error::SdkError<E>,
) -> color_eyre::Report
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    eyre!("{what}: {}", error_line(e))
}

/// An SDK error (any service's: they share one error type) as one line.
pub fn error_line<E>(e: &aws_sdk_cloudformation::error::SdkError<E>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let text = match e.as_service_error() {
        Some(s) if s.message().is_some() || s.code().is_some() => format!(
            "{}: {}",
            s.code().unwrap_or("error"),
            s.message().unwrap_or_default()
        ),
        _ => error_chain(e),
    };
    one_line(&text)
}

/// A deployed stack as the pipeline uses it: the SDK configuration and the stack's outputs.
#[derive(Debug, Clone)]
pub struct Deployed {
    pub sdk: SdkConfig,
    pub stack: String,
    pub outputs: std::collections::BTreeMap<String, String>,
}

impl Deployed {
    /// An output the app needs; one line naming it when the stack lacks it (an older template).
    pub fn output(&self, key: &str) -> Result<&str> {
        self.outputs.get(key).map(String::as_str).ok_or_else(|| {
            eyre!(
                "stack {}: no output {key}; redeploy it with this version (`iotaa stack deploy`)",
                self.stack
            )
        })
    }
}

/// Finds the deployed stack and reads its outputs. One line when it is not deployed, not
/// finished, or deployed with another `Ingest` or `LakeFormat` than the config's.
pub async fn deployed_stack(loaded: &Loaded) -> Result<Deployed> {
    let sdk = sdk_config(loaded).await?;
    let client = Client::new(&sdk);
    let name = loaded.config.aws.stack_name.clone();
    let region = sdk.region().map(|r| r.to_string()).unwrap_or_default();
    let Some(Described {
        status,
        reason,
        outputs,
        ..
    }) = describe(&client, &name).await?
    else {
        return Err(eyre!(
            "stack {name} is not deployed in {region}: run `iotaa --backend aws stack deploy` first"
        ));
    };
    if !matches!(status.as_str(), "CREATE_COMPLETE" | "UPDATE_COMPLETE")
        && !status.starts_with("UPDATE_ROLLBACK_COMPLETE")
    {
        return Err(eyre!(
            "stack {name} is {}: the pipeline needs it CREATE_COMPLETE or UPDATE_COMPLETE",
            with_reason(&status, &reason)
        ));
    }
    let deployed = Deployed {
        sdk,
        stack: name.clone(),
        outputs: outputs.into_iter().collect(),
    };
    // Settings the stack was deployed with that the app must agree with: (output, the
    // config's value, its key, more on a redeploy).
    let c = &loaded.config;
    for (output, want, key, more) in [
        ("Ingest", c.aws.ingest.as_str(), "[aws] ingest", ""),
        (
            "LakeFormat",
            c.delivery.format.as_str(),
            "[delivery] format",
            "; infra/README.md says what a switch means for the lake's older hours",
        ),
    ] {
        if let Some(have) = deployed.outputs.get(output)
            && have != want
        {
            return Err(eyre!(
                "stack {name} was deployed with {output}={have} but {key} is \"{want}\": redeploy (`iotaa stack deploy`{more}) or change the config"
            ));
        }
    }
    Ok(deployed)
}

/// The AWS parts of a backend: the streams on the deployed stack, where this process keeps its
/// state (`<data_dir>/aws/<stack>/`), and the deployed stack itself. One line when the stack is
/// not deployed, not complete, or deployed with another `Ingest` or `LakeFormat`.
pub struct Opened {
    pub streams: Arc<dyn Streams>,
    pub plan: Plan,
    pub deployed: Deployed,
}

pub fn open(loaded: &Loaded, runtime: &tokio::runtime::Runtime) -> Result<Opened> {
    // Kinesis takes at most 1,000 records (and 1 MiB) a second per partition key, even on
    // demand, and both streams are keyed by device id: a faster device throttles forever.
    if loaded.config.producer.rate > KEY_RECORDS_PER_SEC {
        return Err(eyre!(
            "producer.rate is {} readings/s per device, but Kinesis takes at most 1,000 records/s per partition key (iotaa keys readings by device id): set it to 1000 or less and add devices for more",
            loaded.config.producer.rate
        ));
    }
    let deployed = runtime.block_on(deployed_stack(loaded))?;
    let readings = deployed.output("ReadingsStreamName")?.to_string();
    let anomalies = deployed.output("AnomalyStreamName")?.to_string();
    let layout = Layout {
        data_dir: loaded.data_dir.join("aws").join(&deployed.stack),
        readings_stream: readings.clone(),
        anomaly_stream: anomalies.clone(),
    };
    let kinesis = kinesis::KinesisStreams::new(
        aws_sdk_kinesis::Client::new(&deployed.sdk),
        runtime.handle().clone(),
        readings,
        anomalies,
    );
    layout.migrate_legacy();
    let mut plan = Plan::new(layout.clone(), loaded);
    plan.producer.max_rate_per_device = KEY_RECORDS_PER_SEC;
    // Firehose delivers to S3: no delivery stage here.
    plan.delivery = None;
    let function = deployed.outputs.get("DetectorFunctionName");
    match (loaded.config.aws.detector, function) {
        (DetectorPlace::Lambda, Some(name)) => {
            plan.detector_elsewhere = Some(format!("the Lambda function {name}"));
        }
        (DetectorPlace::Lambda, None) => {
            plan.detector.note = Some(format!(
                "stack {} has no detector function yet (`iotaa stack deploy` adds it): scoring here",
                deployed.stack
            ));
        }
        (DetectorPlace::App, Some(name)) => {
            return Err(eyre!(
                "stack {} runs the detector in the Lambda function {name} but [aws] detector is \"app\": both would score every reading; redeploy (`iotaa stack deploy`) to remove the function, or set detector = \"lambda\"",
                deployed.stack
            ));
        }
        (DetectorPlace::App, None) => {}
    }
    plan.lake = match (
        deployed.outputs.get("BucketName"),
        loaded.config.delivery.prefix.as_str(),
    ) {
        (Some(bucket), prefix) => format!("s3://{bucket}/{prefix}"),
        (None, _) => format!("the lake of stack {}", deployed.stack),
    };
    let streams: Arc<dyn Streams> = match loaded.config.aws.ingest {
        Ingest::Kinesis => Arc::new(kinesis),
        Ingest::Firehose => {
            let writer = firehose::FirehoseWriter::new(
                aws_sdk_firehose::Client::new(&deployed.sdk),
                runtime.handle().clone(),
                deployed.output("DeliveryStreamName")?.to_string(),
            );
            // What this machine sent, for the detector (see `firehose`).
            let sent = LocalStreams::open_readings_only(
                &layout.data_dir.join("streams").join("firehose-sent"),
                loaded,
            )?;
            if plan.detector_elsewhere.is_none() {
                plan.detector.note = Some("scores what this machine sends to Firehose".to_string());
            }
            Arc::new(firehose::FirehoseIngest::new(writer, sent, kinesis)?)
        }
    };
    Ok(Opened {
        streams,
        plan,
        deployed,
    })
}
