//! CloudFormation: describe the stack, its resources and events; deploy (create or update)
//! and delete it, following its events until it settles; empty its bucket before a delete.

use std::collections::BTreeSet;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_cloudformation::Client;
use aws_sdk_cloudformation::error::ProvideErrorMetadata;
use aws_sdk_cloudformation::types::{Capability, Parameter, StackEvent, StackStatus};
use color_eyre::eyre::{Result, eyre};

use super::artifact::Artifact;
use super::{TEMPLATE, error_line, parameters, sdk_error};
use crate::config::Loaded;
use crate::stack::{Say, Status, with_reason};
use crate::text::one_line;

/// The tag every resource of the stack gets (CloudFormation passes a stack's tags on to its
/// resources): `iotaa:stack = <stack name>`.
fn stack_tag(name: &str) -> aws_sdk_cloudformation::types::Tag {
    aws_sdk_cloudformation::types::Tag::builder()
        .key("iotaa:stack")
        .value(name)
        .build()
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
    /// The parameters it was deployed with, key → value.
    pub parameters: Vec<(String, String)>,
    /// Whether termination protection is on.
    pub protected: bool,
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
    let pairs = |items: Vec<(Option<&str>, Option<&str>)>| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = items
            .into_iter()
            .map(|(k, v)| (k.unwrap_or_default().into(), v.unwrap_or_default().into()))
            .collect();
        v.sort();
        v
    };
    Ok(out.stacks().first().map(|s| Described {
        outputs: pairs(
            s.outputs()
                .iter()
                .map(|o| (o.output_key(), o.output_value()))
                .collect(),
        ),
        parameters: pairs(
            s.parameters()
                .iter()
                .map(|p| (p.parameter_key(), p.parameter_value()))
                .collect(),
        ),
        protected: s.enable_termination_protection().unwrap_or(false),
        status: s
            .stack_status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        reason: s.stack_status_reason().unwrap_or_default().to_string(),
    }))
}

impl Described {
    /// The output `key`'s value, if the stack has it.
    pub fn output(&self, key: &str) -> Option<&str> {
        find(&self.outputs, key)
    }

    /// The parameter `key`'s value, if the stack has it.
    pub fn parameter(&self, key: &str) -> Option<&str> {
        find(&self.parameters, key)
    }
}

fn find<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// The stack's status and its reason, or `None` when there is no such stack.
pub async fn stack_status(client: &Client, name: &str) -> Result<Option<(String, String)>> {
    Ok(describe(client, name).await?.map(|d| (d.status, d.reason)))
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
            Some((s, reason)) if !Status::cloudformation(&s).in_progress() => {
                return Ok(Some((s, reason)));
            }
            None => return Ok(None),
            Some(_) => tokio::time::sleep(poll).await,
        }
    }
}

/// `iotaa stack deploy`: creates the stack, or updates it, and follows it until it settles.
pub async fn deploy(
    loaded: &Loaded,
    conf: &SdkConfig,
    poll: Duration,
    say: &dyn Say,
    artifact: Option<&Artifact>,
) -> Result<bool> {
    let Some(artifact) = artifact else {
        return apply(loaded, conf, poll, say, "").await;
    };
    let client = Client::new(conf);
    let name = &loaded.config.aws.stack_name;
    // The code goes in the stack's own bucket, so a new stack is created without the function
    // first (DetectorCodeKey ''), then updated with it.
    let bucket_of = |d: Option<Described>| d.and_then(|d| d.output("BucketName").map(String::from));
    let mut bucket = bucket_of(describe(&client, name).await?);
    if bucket.is_none() {
        say.out(format!(
            "stack {name}: creating it without the detector function first (its code goes in the stack's bucket)"
        ));
        if !apply(loaded, conf, poll, say, "").await? {
            return Ok(false);
        }
        bucket = bucket_of(describe(&client, name).await?);
    }
    let bucket = bucket.ok_or_else(|| eyre!("stack {name}: no output BucketName"))?;
    upload_artifact(loaded, conf, &bucket, artifact, say).await?;
    apply(loaded, conf, poll, say, &artifact.key).await
}

/// Puts the function's zip at its key in `bucket`, unless it is there already.
async fn upload_artifact(
    loaded: &Loaded,
    sdk: &SdkConfig,
    bucket: &str,
    artifact: &Artifact,
    say: &dyn Say,
) -> Result<()> {
    let s3 = s3_client(loaded, sdk);
    let key = &artifact.key;
    if s3
        .head_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .is_ok()
    {
        say.out(format!("detector: s3://{bucket}/{key} is already uploaded"));
        return Ok(());
    }
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .content_type("application/zip")
        .body(artifact.bytes.clone().into())
        .send()
        .await
        .map_err(|e| {
            eyre!(
                "upload the detector function to s3://{bucket}/{key}: {}",
                error_line(&e)
            )
        })?;
    say.out(format!(
        "detector: uploaded {} to s3://{bucket}/{key}",
        artifact.from.display()
    ));
    Ok(())
}

/// An S3 client; a custom endpoint (moto, MinIO) is addressed path-style.
fn s3_client(loaded: &Loaded, sdk: &SdkConfig) -> aws_sdk_s3::Client {
    let path_style =
        loaded.config.aws.endpoint_url.is_some() || std::env::var_os("AWS_ENDPOINT_URL").is_some();
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(path_style)
            .build(),
    )
}

/// Creates or updates the stack with the config's parameters and `detector_code` as the
/// function's code key, and follows it until it settles.
async fn apply(
    loaded: &Loaded,
    conf: &SdkConfig,
    poll: Duration,
    say: &dyn Say,
    detector_code: &str,
) -> Result<bool> {
    let client = Client::new(conf);
    let name = &loaded.config.aws.stack_name;
    let params: Vec<Parameter> = parameters(loaded, detector_code)
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
                .tags(stack_tag(name))
                .send()
                .await
                .map_err(|e| sdk_error(&format!("create stack {name}"), &e))?;
        }
        Some((status, _)) if status == StackStatus::RollbackComplete.as_str() => {
            return Err(eyre!(
                "stack {name} is in ROLLBACK_COMPLETE (its first create failed) and cannot be updated: run `iotaa stack events` to see why, then `iotaa stack delete` and deploy again"
            ));
        }
        Some((status, _)) if Status::cloudformation(&status).in_progress() => {
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
                .tags(stack_tag(name))
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
        let described = describe(&client, name).await?;
        let want = loaded.config.aws.termination_protection;
        if want != described.as_ref().is_some_and(|d| d.protected) {
            client
                .update_termination_protection()
                .stack_name(name)
                .enable_termination_protection(want)
                .send()
                .await
                .map_err(|e| sdk_error(&format!("termination protection of stack {name}"), &e))?;
            say.out(format!(
                "stack {name}: termination protection {}",
                if want {
                    "on ([aws] termination_protection = false and deploy again before a delete)"
                } else {
                    "off"
                }
            ));
        }
        for (k, v) in described.map(|d| d.outputs).unwrap_or_default() {
            say.out(format!("  {k:<24} {v}"));
        }
    } else {
        say.err(format!("stack {name}: {}", with_reason(&status, &reason)));
    }
    Ok(ok)
}

/// The ids of the events the stack has now, so that following it prints only newer ones.
pub(crate) async fn event_ids(client: &Client, name: &str) -> Result<BTreeSet<String>> {
    Ok(events(client, name)
        .await?
        .iter()
        .filter_map(|e| e.event_id().map(str::to_string))
        .collect())
}

/// `status` or `status: reason`.
/// `iotaa stack delete` (after the caller's confirmation): deletes and follows until gone.
pub async fn delete(
    loaded: &Loaded,
    sdk: &SdkConfig,
    poll: Duration,
    say: &dyn Say,
) -> Result<bool> {
    let client = Client::new(sdk);
    let name = &loaded.config.aws.stack_name;
    let Some(described) = describe(&client, name).await? else {
        say.out(format!("stack {name}: not deployed; nothing to delete"));
        return Ok(true);
    };
    // The lake bucket is kept by the stack (DeletionPolicy Retain): with --delete-lake it is
    // emptied and deleted here once the stack, and so Firehose, is gone.
    let bucket = described.output("BucketName").map(String::from);
    let mut seen = event_ids(&client, name).await?;
    client
        .delete_stack()
        .stack_name(name)
        .send()
        .await
        .map_err(|e| sdk_error(&format!("delete stack {name}"), &e))?;
    say.out(format!("stack {name}: deleting"));
    match follow(&client, name, &mut seen, poll, say).await? {
        None => {}
        Some((s, _)) if s == "DELETE_COMPLETE" => {}
        Some((s, reason)) => {
            say.err(format!(
                "stack {name}: {s}: {} (a stack deployed before the lake bucket was kept cannot delete a bucket with objects in it: `stack delete --delete-lake` empties it first)",
                one_line(&reason)
            ));
            if loaded.config.aws.delete_lake
                && let Some(bucket) = &bucket
            {
                let n = empty_bucket(loaded, sdk, bucket).await?;
                say.out(format!(
                    "bucket {bucket}: {n} objects deleted; deleting the stack again"
                ));
                client
                    .delete_stack()
                    .stack_name(name)
                    .send()
                    .await
                    .map_err(|e| sdk_error(&format!("delete stack {name}"), &e))?;
                if let Some((s, reason)) = follow(&client, name, &mut seen, poll, say).await?
                    && s != "DELETE_COMPLETE"
                {
                    say.err(format!("stack {name}: {}", with_reason(&s, &reason)));
                    return Ok(false);
                }
            } else {
                return Ok(false);
            }
        }
    }
    say.out(format!("stack {name}: deleted"));
    let Some(bucket) = bucket else {
        return Ok(true);
    };
    if !loaded.config.aws.delete_lake {
        say.out(format!(
            "bucket {bucket}: kept (the lake, query results, the detector's code and model); delete it with `aws s3 rb s3://{bucket} --force`"
        ));
        return Ok(true);
    }
    delete_bucket(loaded, sdk, &bucket, say).await
}

/// Empties and deletes `bucket`, again while objects still arrive (a delivery in flight when its
/// stream was deleted), at most 5 times.
async fn delete_bucket(
    loaded: &Loaded,
    sdk: &SdkConfig,
    bucket: &str,
    say: &dyn Say,
) -> Result<bool> {
    let s3 = s3_client(loaded, sdk);
    let mut deleted = 0;
    for attempt in 1..=5 {
        deleted += empty_bucket(loaded, sdk, bucket).await?;
        match s3.delete_bucket().bucket(bucket).send().await {
            Ok(_) => {
                say.out(format!(
                    "bucket {bucket}: {deleted} objects deleted; bucket deleted"
                ));
                return Ok(true);
            }
            Err(e) if attempt < 5 && error_line(&e).contains("BucketNotEmpty") => {
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(e) => {
                say.err(format!("bucket {bucket}: not deleted: {}", error_line(&e)));
                return Ok(false);
            }
        }
    }
    Ok(false)
}

/// Deletes every object in `bucket` (ListObjectsV2, DeleteObjects 1,000 at a time); returns
/// how many. A custom endpoint (moto, MinIO) is addressed path-style.
async fn empty_bucket(loaded: &Loaded, sdk: &SdkConfig, bucket: &str) -> Result<u64> {
    use aws_sdk_s3::types::{Delete, ObjectIdentifier};
    let s3 = s3_client(loaded, sdk);
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
