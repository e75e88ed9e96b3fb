//! The AWS backend's stack operations: CloudFormation with the template in `infra/iotaa.yaml`
//! (compiled in), against real AWS or any AWS-compatible endpoint (`aws.endpoint_url` or
//! `AWS_ENDPOINT_URL`, e.g. moto).
//!
//! Config names only the stack, region, profile and endpoint; every resource name the app needs
//! comes from the stack's outputs. Credentials and region come from the SDK's default chain
//! (environment, profile, SSO, instance role); `aws.region` and `aws.profile` override it. A
//! missing region or credentials is one line before any request is made.
//!
//! The pipeline's streams are in `kinesis` and `firehose`, queries in `athena`; this module
//! also finds the deployed stack for them ([`deployed_stack`]) and describes it for the Stack
//! pane ([`snapshot`], [`watch`]).

use std::collections::BTreeSet;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::ProvideCredentials;
use aws_sdk_cloudformation::Client;
use aws_sdk_cloudformation::error::ProvideErrorMetadata;
use aws_sdk_cloudformation::types::{Capability, Parameter, StackEvent, StackStatus};
use color_eyre::eyre::{Result, eyre};

use crate::config::{Compression, Ingest, Loaded};

/// The template, as shipped in `infra/`.
pub const TEMPLATE: &str = include_str!("../../infra/iotaa.yaml");

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
            chain(&e)
        ));
    }
    Ok(conf)
}

/// The template's parameters from the config: the same buffering, compression, threshold and
/// table as the local pipeline.
pub fn parameters(loaded: &Loaded) -> Vec<(String, String)> {
    let c = &loaded.config;
    vec![
        ("ShardCount".into(), c.aws.shard_count.to_string()),
        (
            "Ingest".into(),
            match c.aws.ingest {
                Ingest::Kinesis => "kinesis",
                Ingest::Firehose => "firehose",
            }
            .into(),
        ),
        (
            "BufferIntervalSeconds".into(),
            c.delivery.buffer_interval_secs.to_string(),
        ),
        (
            "BufferSizeMiB".into(),
            c.delivery.buffer_size_mib.to_string(),
        ),
        (
            "Compression".into(),
            match c.delivery.compression {
                Compression::Gzip => "GZIP",
                Compression::None => "UNCOMPRESSED",
            }
            .into(),
        ),
        ("Prefix".into(), c.delivery.prefix.clone()),
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
fn sdk_error<E>(what: &str, e: &aws_sdk_cloudformation::error::SdkError<E>) -> color_eyre::Report
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
        _ => chain(e),
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
/// finished, or deployed with another `Ingest` than the config's.
pub async fn deployed_stack(loaded: &Loaded) -> Result<Deployed> {
    let sdk = sdk_config(loaded).await?;
    let client = Client::new(&sdk);
    let name = loaded.config.aws.stack_name.clone();
    let region = sdk.region().map(|r| r.to_string()).unwrap_or_default();
    let Some(Described {
        status,
        reason,
        outputs,
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
    let want = match loaded.config.aws.ingest {
        Ingest::Kinesis => "kinesis",
        Ingest::Firehose => "firehose",
    };
    if let Some(have) = deployed.outputs.get("Ingest")
        && have != want
    {
        return Err(eyre!(
            "stack {name} was deployed with Ingest={have} but [aws] ingest is \"{want}\": redeploy (`iotaa stack deploy`) or change the config"
        ));
    }
    Ok(deployed)
}

/// An error and its sources, each message once, joined with ": " on one line (the SDK's
/// `DisplayErrorContext` appends a debug dump, too much for a status line).
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(err) = next {
        let text = one_line(&err.to_string());
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = err.source();
    }
    parts.join(": ")
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn is_missing_stack(message: Option<&str>) -> bool {
    message.is_some_and(|m| m.contains("does not exist"))
}

/// One DescribeStacks: the stack's status, the reason for it, and its outputs.
#[derive(Debug, Clone, Default)]
pub struct Described {
    pub status: String,
    pub reason: String,
    /// Key → value, in key order.
    pub outputs: Vec<(String, String)>,
}

/// The stack as described now, or `None` when there is no such stack.
pub async fn describe(client: &Client, name: &str) -> Result<Option<Described>> {
    let out = match client.describe_stacks().stack_name(name).send().await {
        Ok(out) => out,
        Err(e) if is_missing_stack(e.as_service_error().and_then(|s| s.message())) => {
            return Ok(None);
        }
        Err(e) => return Err(sdk_error(&format!("describe stack {name}"), &e)),
    };
    Ok(out.stacks().first().map(|s| {
        let mut outputs: Vec<(String, String)> = s
            .outputs()
            .iter()
            .map(|o| {
                (
                    o.output_key().unwrap_or_default().to_string(),
                    o.output_value().unwrap_or_default().to_string(),
                )
            })
            .collect();
        outputs.sort();
        Described {
            status: s
                .stack_status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            reason: s.stack_status_reason().unwrap_or_default().to_string(),
            outputs,
        }
    }))
}

/// The stack's status and its reason, or `None` when there is no such stack.
pub async fn stack_status(client: &Client, name: &str) -> Result<Option<(String, String)>> {
    Ok(describe(client, name).await?.map(|d| (d.status, d.reason)))
}

/// The stack's outputs, key → value, in key order (none when there is no such stack).
pub async fn outputs(client: &Client, name: &str) -> Result<Vec<(String, String)>> {
    Ok(describe(client, name)
        .await?
        .map(|d| d.outputs)
        .unwrap_or_default())
}

/// Every resource: (logical id, type, status, physical id).
pub async fn resources(client: &Client, name: &str) -> Result<Vec<[String; 4]>> {
    let out = client
        .describe_stack_resources()
        .stack_name(name)
        .send()
        .await
        .map_err(|e| sdk_error(&format!("list the resources of {name}"), &e))?;
    Ok(out
        .stack_resources()
        .iter()
        .map(|r| {
            [
                r.logical_resource_id().unwrap_or_default().to_string(),
                r.resource_type().unwrap_or_default().to_string(),
                r.resource_status()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
                r.physical_resource_id().unwrap_or_default().to_string(),
            ]
        })
        .collect())
}

/// The newest events first, as CloudFormation returns them (one page).
pub async fn events(client: &Client, name: &str) -> Result<Vec<StackEvent>> {
    let out = client
        .describe_stack_events()
        .stack_name(name)
        .send()
        .await
        .map_err(|e| sdk_error(&format!("events of {name}"), &e))?;
    Ok(out.stack_events().to_vec())
}

/// One line for an event: time, logical id, type, status, reason.
pub fn describe_event(e: &StackEvent) -> String {
    let time = e
        .timestamp()
        .and_then(|t| chrono::DateTime::from_timestamp(t.secs(), 0))
        .map(|t| t.format("%H:%M:%S").to_string())
        .unwrap_or_default();
    let mut line = format!(
        "{time}  {:<28} {:<34} {}",
        e.logical_resource_id().unwrap_or_default(),
        e.resource_type().unwrap_or_default(),
        e.resource_status().map(|s| s.as_str()).unwrap_or_default()
    );
    if let Some(reason) = e.resource_status_reason().filter(|r| !r.is_empty()) {
        line.push_str("  ");
        line.push_str(&one_line(reason));
    }
    line
}

/// Where deploy and delete say what happens: stdout/stderr for the `stack` commands
/// ([`Stdio`]), the status line for the dashboard.
pub trait Say: Sync {
    fn out(&self, line: String);
    fn err(&self, line: String);
}

/// Lines to stdout, errors to stderr.
pub struct Stdio;

impl Say for Stdio {
    fn out(&self, line: String) {
        println!("{line}");
    }
    fn err(&self, line: String) {
        eprintln!("{line}");
    }
}

fn in_progress(status: &str) -> bool {
    status.ends_with("_IN_PROGRESS")
}

/// Prints events not printed yet (oldest first) until the stack leaves its `_IN_PROGRESS`
/// state; returns the final status and reason (`None` once the stack is gone).
async fn follow(
    client: &Client,
    name: &str,
    seen: &mut BTreeSet<String>,
    poll: Duration,
    say: &dyn Say,
) -> Result<Option<(String, String)>> {
    loop {
        let status = stack_status(client, name).await?;
        if status.is_some() {
            let mut new: Vec<StackEvent> = events(client, name)
                .await?
                .into_iter()
                .filter(|e| e.event_id().is_some_and(|id| seen.insert(id.to_string())))
                .collect();
            new.reverse();
            for e in &new {
                say.out(describe_event(e));
            }
        }
        match status {
            Some((s, reason)) if !in_progress(&s) => return Ok(Some((s, reason))),
            None => return Ok(None),
            Some(_) => tokio::time::sleep(poll).await,
        }
    }
}

/// `iotaa stack deploy`: creates the stack, or updates it, and follows it until it settles.
pub async fn deploy(loaded: &Loaded, poll: Duration, say: &dyn Say) -> Result<bool> {
    let conf = sdk_config(loaded).await?;
    let client = Client::new(&conf);
    let name = &loaded.config.aws.stack_name;
    let params: Vec<Parameter> = parameters(loaded)
        .into_iter()
        .map(|(k, v)| {
            Parameter::builder()
                .parameter_key(k)
                .parameter_value(v)
                .build()
        })
        .collect();
    // Events from before this deploy are not printed.
    let existing = stack_status(&client, name).await?;
    let mut seen = if existing.is_some() {
        event_ids(&client, name).await?
    } else {
        BTreeSet::new()
    };
    match existing {
        None => {
            say.out(format!(
                "stack {name}: creating in {}",
                conf.region().map(|r| r.to_string()).unwrap_or_default()
            ));
            client
                .create_stack()
                .stack_name(name)
                .template_body(TEMPLATE)
                .set_parameters(Some(params))
                .capabilities(Capability::CapabilityIam)
                .capabilities(Capability::CapabilityNamedIam)
                .send()
                .await
                .map_err(|e| sdk_error(&format!("create stack {name}"), &e))?;
        }
        Some((status, _)) if status == StackStatus::RollbackComplete.as_str() => {
            return Err(eyre!(
                "stack {name} is in ROLLBACK_COMPLETE (its first create failed) and cannot be updated: run `iotaa stack events` to see why, then `iotaa stack delete` and deploy again"
            ));
        }
        Some((status, _)) if in_progress(&status) => {
            return Err(eyre!(
                "stack {name} is busy ({status}): wait for it to settle (`iotaa stack status`), then deploy again"
            ));
        }
        Some(_) => {
            say.out(format!("stack {name}: updating"));
            let result = client
                .update_stack()
                .stack_name(name)
                .template_body(TEMPLATE)
                .set_parameters(Some(params))
                .capabilities(Capability::CapabilityIam)
                .capabilities(Capability::CapabilityNamedIam)
                .send()
                .await;
            if let Err(e) = result {
                let no_change = e
                    .as_service_error()
                    .and_then(|s| s.message())
                    .is_some_and(|m| m.contains("No updates are to be performed"));
                if !no_change {
                    return Err(sdk_error(&format!("update stack {name}"), &e));
                }
                say.out(format!("stack {name}: already up to date"));
            }
        }
    }
    let (status, reason) = follow(&client, name, &mut seen, poll, say)
        .await?
        .ok_or_else(|| eyre!("stack {name} disappeared while deploying"))?;
    let ok = status == "CREATE_COMPLETE" || status == "UPDATE_COMPLETE";
    if ok {
        say.out(format!("stack {name}: {status}"));
        for (k, v) in outputs(&client, name).await? {
            say.out(format!("  {k:<24} {v}"));
        }
    } else {
        say.err(format!("stack {name}: {}", with_reason(&status, &reason)));
    }
    Ok(ok)
}

/// `iotaa stack status`: the stack's status and every resource's.
pub async fn status(loaded: &Loaded) -> Result<bool> {
    let client = Client::new(&sdk_config(loaded).await?);
    let name = &loaded.config.aws.stack_name;
    let Some((status, reason)) = stack_status(&client, name).await? else {
        println!("stack {name}: not deployed (run `iotaa stack deploy`)");
        return Ok(false);
    };
    println!("stack {name}: {}", with_reason(&status, &reason));
    // moto lists some resources it only pretends to create with no logical id: skip those.
    for [logical, kind, status, physical] in resources(&client, name)
        .await?
        .into_iter()
        .filter(|r| !r[0].is_empty())
    {
        println!("  {logical:<28} {kind:<34} {status:<18} {physical}");
    }
    Ok(true)
}

/// A client and the stack's name when the stack exists; otherwise says so and gives `None`.
async fn deployed(loaded: &Loaded) -> Result<Option<(Client, String)>> {
    let client = Client::new(&sdk_config(loaded).await?);
    let name = loaded.config.aws.stack_name.clone();
    if stack_status(&client, &name).await?.is_none() {
        println!("stack {name}: not deployed (run `iotaa stack deploy`)");
        return Ok(None);
    }
    Ok(Some((client, name)))
}

/// The ids of the events the stack has now, so that following it prints only newer ones.
async fn event_ids(client: &Client, name: &str) -> Result<BTreeSet<String>> {
    Ok(events(client, name)
        .await?
        .iter()
        .filter_map(|e| e.event_id().map(str::to_string))
        .collect())
}

/// `status` or `status: reason`.
fn with_reason(status: &str, reason: &str) -> String {
    if reason.is_empty() {
        status.to_string()
    } else {
        format!("{status}: {}", one_line(reason))
    }
}

/// `iotaa stack events`: the most recent events, oldest first.
pub async fn print_events(loaded: &Loaded) -> Result<bool> {
    let Some((client, name)) = deployed(loaded).await? else {
        return Ok(false);
    };
    let name = &name;
    let mut all = events(&client, name).await?;
    all.truncate(40);
    all.reverse();
    for e in &all {
        println!("{}", describe_event(e));
    }
    Ok(true)
}

/// `iotaa stack outputs`: key and value, one per line.
pub async fn print_outputs(loaded: &Loaded) -> Result<bool> {
    let Some((client, name)) = deployed(loaded).await? else {
        return Ok(false);
    };
    for (k, v) in outputs(&client, &name).await? {
        println!("{k:<24} {v}");
    }
    Ok(true)
}

/// `iotaa stack delete` (after the caller's confirmation): deletes and follows until gone.
pub async fn delete(loaded: &Loaded, poll: Duration, say: &dyn Say) -> Result<bool> {
    let sdk = sdk_config(loaded).await?;
    let client = Client::new(&sdk);
    let name = &loaded.config.aws.stack_name;
    let Some(described) = describe(&client, name).await? else {
        say.out(format!("stack {name}: not deployed; nothing to delete"));
        return Ok(true);
    };
    // CloudFormation cannot delete a bucket with objects in it: empty the lake bucket first
    // (the caller asked, naming it).
    if let Some((_, bucket)) = described
        .outputs
        .into_iter()
        .find(|(k, _)| k == "BucketName")
    {
        let n = empty_bucket(loaded, &sdk, &bucket).await?;
        say.out(format!("bucket {bucket}: {n} objects deleted"));
    }
    let mut seen = event_ids(&client, name).await?;
    client
        .delete_stack()
        .stack_name(name)
        .send()
        .await
        .map_err(|e| sdk_error(&format!("delete stack {name}"), &e))?;
    say.out(format!("stack {name}: deleting"));
    match follow(&client, name, &mut seen, poll, say).await? {
        None => {
            say.out(format!("stack {name}: deleted"));
            Ok(true)
        }
        Some((s, _)) if s == "DELETE_COMPLETE" => {
            say.out(format!("stack {name}: deleted"));
            Ok(true)
        }
        Some((s, reason)) => {
            say.err(format!("stack {name}: {s}: {} (a bucket with objects in it cannot be deleted: empty it first)",
                one_line(&reason)
            ));
            Ok(false)
        }
    }
}

/// Deletes every object in `bucket` (ListObjectsV2, DeleteObjects 1,000 at a time); returns
/// how many. A custom endpoint (moto, MinIO) is addressed path-style.
async fn empty_bucket(loaded: &Loaded, sdk: &SdkConfig, bucket: &str) -> Result<u64> {
    use aws_sdk_s3::types::{Delete, ObjectIdentifier};
    let path_style =
        loaded.config.aws.endpoint_url.is_some() || std::env::var_os("AWS_ENDPOINT_URL").is_some();
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(path_style)
            .build(),
    );
    let mut deleted = 0u64;
    loop {
        let page = s3
            .list_objects_v2()
            .bucket(bucket)
            .send()
            .await
            .map_err(|e| eyre!("list the objects of bucket {bucket}: {}", error_line(&e)))?;
        let keys: Vec<ObjectIdentifier> = page
            .contents()
            .iter()
            .filter_map(|o| o.key())
            .filter_map(|k| ObjectIdentifier::builder().key(k).build().ok())
            .collect();
        if keys.is_empty() {
            return Ok(deleted);
        }
        let n = keys.len() as u64;
        let delete = Delete::builder()
            .set_objects(Some(keys))
            .quiet(true)
            .build()
            .map_err(|e| eyre!("delete objects of bucket {bucket}: {e}"))?;
        let out = s3
            .delete_objects()
            .bucket(bucket)
            .delete(delete)
            .send()
            .await
            .map_err(|e| eyre!("delete objects of bucket {bucket}: {}", error_line(&e)))?;
        if let Some(err) = out.errors().first() {
            return Err(eyre!(
                "delete {} in bucket {bucket}: {}",
                err.key().unwrap_or_default(),
                err.message().unwrap_or_default()
            ));
        }
        deleted += n;
    }
}

/// What the Stack pane shows of the deployed stack, refreshed by [`watch`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StackSnapshot {
    pub stack: String,
    pub region: String,
    /// `CREATE_COMPLETE`, … or `not deployed`.
    pub status: String,
    pub reason: String,
    /// (logical id, type, status, physical id).
    pub resources: Vec<[String; 4]>,
    /// Most recent last.
    pub events: Vec<String>,
    pub outputs: Vec<(String, String)>,
    /// The Firehose delivery stream's status (DescribeDeliveryStream), or why it is unknown.
    pub firehose: Option<String>,
}

impl StackSnapshot {
    pub fn in_progress(&self) -> bool {
        in_progress(&self.status)
    }
}

/// The stack's status, resources, last 20 events, outputs and Firehose status, now.
pub async fn snapshot(sdk: &SdkConfig, name: &str) -> Result<StackSnapshot> {
    let client = Client::new(sdk);
    let mut snap = StackSnapshot {
        stack: name.to_string(),
        region: sdk.region().map(|r| r.to_string()).unwrap_or_default(),
        ..StackSnapshot::default()
    };
    let Some(described) = describe(&client, name).await? else {
        snap.status = "not deployed".into();
        return Ok(snap);
    };
    snap.status = described.status;
    snap.reason = described.reason;
    snap.outputs = described.outputs;
    snap.resources = resources(&client, name)
        .await?
        .into_iter()
        .filter(|r| !r[0].is_empty())
        .collect();
    let mut events: Vec<String> = events(&client, name)
        .await?
        .iter()
        .take(20)
        .map(describe_event)
        .collect();
    events.reverse();
    snap.events = events;
    if let Some((_, delivery)) = snap.outputs.iter().find(|(k, _)| k == "DeliveryStreamName") {
        let firehose = aws_sdk_firehose::Client::new(sdk);
        snap.firehose = Some(
            match firehose
                .describe_delivery_stream()
                .delivery_stream_name(delivery)
                .send()
                .await
            {
                Ok(out) => out.delivery_stream_description().map_or_else(
                    || "no description".to_string(),
                    |d| {
                        let mut text = format!(
                            "{}: {}",
                            d.delivery_stream_name(),
                            d.delivery_stream_status().as_str()
                        );
                        if let Some(f) = d.failure_description() {
                            text.push_str(&format!(" ({})", one_line(f.details())));
                        }
                        text
                    },
                ),
                Err(e) => format!("{delivery}: {}", error_line(&e)),
            },
        );
    }
    Ok(snap)
}

/// Sends a [`snapshot`] of the stack every 3 s while it is in progress, every 30 s otherwise,
/// and at once when `wake` is notified (a deploy or delete started from the dashboard), until
/// `send` returns false (the dashboard has quit). An error is sent as its one line.
pub async fn watch(
    sdk: SdkConfig,
    name: String,
    wake: std::sync::Arc<tokio::sync::Notify>,
    send: impl Fn(std::result::Result<StackSnapshot, String>) -> bool,
) {
    loop {
        let snap = snapshot(&sdk, &name).await.map_err(|e| e.to_string());
        let busy = snap.as_ref().is_ok_and(StackSnapshot::in_progress);
        if !send(snap) {
            return;
        }
        let pause = Duration::from_secs(if busy { 3 } else { 30 });
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = wake.notified() => {}
        }
    }
}
