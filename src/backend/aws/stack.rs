//! The CloudFormation stack as a [`Stack`]: its status and reason, every resource's status,
//! the last events, the outputs, and the Firehose delivery stream's status (what delivers to
//! the lake on AWS), typed the same way as the local stack's.

use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_cloudformation::Client;
use color_eyre::eyre::Result;

use super::cloudformation::{self, describe, describe_event, events, resources};
use super::error_line;
use crate::config::Loaded;
use crate::stack::{Health, Resource, Say, Stack, StackSnapshot, Status};
use crate::text::{one_line, report_chain};

/// Events kept in a snapshot (the pane shows the last that fit; `stack events` prints them).
const EVENTS_KEPT: usize = 40;

pub struct AwsStack {
    loaded: Loaded,
    sdk: SdkConfig,
    name: String,
    /// How often deploy and delete poll while the stack is in progress.
    poll: Duration,
    runtime: tokio::runtime::Runtime,
}

impl AwsStack {
    /// The SDK configuration is loaded here: no region or no credentials is one line.
    pub fn new(loaded: &Loaded, poll: Duration) -> Result<AwsStack> {
        let runtime = crate::backend::runtime("aws-stack")?;
        let sdk = runtime.block_on(super::sdk_config(loaded))?;
        Ok(AwsStack::with_sdk(loaded, sdk, poll, runtime))
    }

    /// With an SDK configuration already loaded (the deployed stack's).
    pub fn with_sdk(
        loaded: &Loaded,
        sdk: SdkConfig,
        poll: Duration,
        runtime: tokio::runtime::Runtime,
    ) -> AwsStack {
        AwsStack {
            loaded: loaded.clone(),
            sdk,
            name: loaded.config.aws.stack_name.clone(),
            poll,
            runtime,
        }
    }
}

impl Stack for AwsStack {
    fn name(&self) -> String {
        format!("stack {}", self.name)
    }

    fn snapshot(&self) -> Result<StackSnapshot, String> {
        self.runtime
            .block_on(snapshot(&self.sdk, &self.name))
            .map_err(|e| report_chain(&e))
    }

    fn deploy(&self, say: &dyn Say) -> Result<bool, String> {
        let artifact =
            super::artifact::detector_artifact(&self.loaded, say).map_err(|e| report_chain(&e))?;
        self.runtime
            .block_on(cloudformation::deploy(
                &self.loaded,
                &self.sdk,
                self.poll,
                say,
                artifact.as_ref(),
            ))
            .map_err(|e| report_chain(&e))
    }

    fn delete_question(&self) -> String {
        if self.loaded.config.aws.delete_lake {
            format!(
                "Delete the CloudFormation stack {} and every resource in it, and then its lake bucket with every object in it (readings, query results, the detector's code and model)?",
                self.name
            )
        } else {
            format!(
                "Delete the CloudFormation stack {} and every resource in it but its lake bucket, which is kept (`stack delete --delete-lake` deletes it too)?",
                self.name
            )
        }
    }

    fn delete(&self, say: &dyn Say) -> Result<bool, String> {
        self.runtime
            .block_on(cloudformation::delete(
                &self.loaded,
                &self.sdk,
                self.poll,
                say,
            ))
            .map_err(|e| report_chain(&e))
    }
}

/// The stack's status, resources, last events, outputs and Firehose status, now.
pub async fn snapshot(sdk: &SdkConfig, name: &str) -> Result<StackSnapshot> {
    let client = Client::new(sdk);
    let region = sdk.region().map(|r| r.to_string()).unwrap_or_default();
    let mut snap = StackSnapshot {
        title: format!("aws (stack {name}, {region})"),
        status: None,
        reason: String::new(),
        resources: Vec::new(),
        events: Vec::new(),
        outputs: Vec::new(),
        delivery: None,
        detector: None,
        detector_figures: None,
        standing_cost: None,
        watch: Vec::new(),
    };
    let Some(described) = describe(&client, name).await? else {
        return Ok(snap);
    };
    snap.status = Some(Status::cloudformation(&described.status));
    snap.reason = one_line(&described.reason);
    let shards: u32 = described
        .parameter("ShardCount")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let output = |key: &str| described.output(key).map(String::from);
    // moto lists some resources it only pretends to create with no logical id: skip those.
    snap.resources = resources(&client, name)
        .await?
        .into_iter()
        .filter(|r| !r[0].is_empty())
        .map(|[logical, kind, status, physical]| Resource {
            name: logical,
            kind,
            status: Status::cloudformation(&status),
            detail: physical,
        })
        .collect();
    let count = |kind: &str| snap.resources.iter().filter(|r| r.kind == kind).count();
    // The alarms from the output that names them (moto creates no alarm resources).
    let alarm_names = output("AlarmNames").unwrap_or_default();
    let alarms = alarm_names
        .split(',')
        .filter(|n| !n.trim().is_empty())
        .count();
    snap.standing_cost = Some(super::prices::standing_cost(
        count("AWS::Kinesis::Stream"),
        shards,
        alarms,
        count("AWS::KMS::Key"),
    ));
    snap.watch
        .extend(super::watch::alarms(sdk, &alarm_names).await);
    for (key, name) in [
        ("AlertFailureQueueUrl", "alert failures"),
        ("DetectorFailureQueueUrl", "detector failures"),
    ] {
        if let Some(url) = output(key) {
            snap.watch.push(super::watch::queue(sdk, name, &url).await);
        }
    }
    let mut events: Vec<String> = events(&client, name)
        .await?
        .iter()
        .take(EVENTS_KEPT)
        .map(describe_event)
        .collect();
    events.reverse();
    snap.events = events;
    if let Some(delivery) = output("DeliveryStreamName") {
        snap.delivery = Some(firehose_status(sdk, &delivery).await);
    }
    if let Some(function) = output("DetectorFunctionName") {
        let mapping = output("DetectorMappingId");
        let (row, figures) =
            super::function::detector_row(sdk, &function, mapping.as_deref()).await;
        snap.detector = Some(row);
        snap.detector_figures = figures;
    }
    snap.outputs = described.outputs;
    Ok(snap)
}

/// The Firehose delivery stream (DescribeDeliveryStream): `ACTIVE` is healthy, `CREATING` and
/// `DELETING` are changing, anything else (or a failure description) is failed.
async fn firehose_status(sdk: &SdkConfig, name: &str) -> Resource {
    let firehose = aws_sdk_firehose::Client::new(sdk);
    let (status, detail) = match firehose
        .describe_delivery_stream()
        .delivery_stream_name(name)
        .send()
        .await
    {
        Ok(out) => match out.delivery_stream_description() {
            None => (
                Status::new("unknown", Health::Missing),
                format!("{name}: no description"),
            ),
            Some(d) => {
                let label = d.delivery_stream_status().as_str().to_string();
                let failure = d.failure_description().map(|f| one_line(f.details()));
                let health = match label.as_str() {
                    _ if failure.is_some() => Health::Failed,
                    "ACTIVE" => Health::Ok,
                    "CREATING" | "DELETING" => Health::InProgress,
                    _ => Health::Failed,
                };
                let detail = match failure {
                    Some(f) => format!("{name} ({f})"),
                    None => name.to_string(),
                };
                (Status::new(label, health), detail)
            }
        },
        Err(e) => (
            Status::new("unknown", Health::Failed),
            format!("{name}: {}", error_line(&e)),
        ),
    };
    Resource {
        name: "delivery".into(),
        kind: "Firehose".into(),
        status,
        detail,
    }
}
