//! `bootstrap`: the detector function. Reads its configuration from the environment, then
//! serves invocations: Kinesis batches (event source mapping) and Firehose transformations,
//! told apart by the event's shape. One line per invocation on stdout (CloudWatch Logs).

use std::sync::Arc;

use aws_lambda_events::event::firehose::KinesisFirehoseEvent;
use aws_lambda_events::event::kinesis::KinesisEvent;
use iotaa_lambda::aws::{Clients, sdk_config};
use iotaa_lambda::config;
use iotaa_lambda::handler::Handler;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;
use tokio::sync::Mutex;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let config = config::from_vars(|name| std::env::var(name).ok()).map_err(|e| {
        eprintln!("iotaa detector: {e}");
        Error::from(e)
    })?;
    let sdk = sdk_config().await;
    let clients = Clients::new(&sdk, &config);
    println!(
        "iotaa detector: scoring into {} with {:?}, snapshots in s3://{}/{} every {} s",
        config.anomaly_stream,
        config.params,
        config.bucket,
        config.prefix,
        config.snapshot_interval.as_secs()
    );
    let handler = Arc::new(Mutex::new(Handler::new(config, clients)));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let handler = handler.clone();
        async move {
            let mut handler = handler.lock().await;
            handle(&mut handler, event.payload).await
        }
    }))
    .await
}

async fn handle(handler: &mut Handler<Clients>, payload: Value) -> Result<Value, Error> {
    if payload.get("Records").is_some() {
        let event: KinesisEvent = serde_json::from_value(payload)
            .map_err(|e| Error::from(format!("not a Kinesis event: {e}")))?;
        let (response, summary) = handler.kinesis(event).await;
        println!("kinesis {}", serde_json::to_string(&summary)?);
        Ok(serde_json::to_value(response)?)
    } else if payload.get("records").is_some() && payload.get("deliveryStreamArn").is_some() {
        let event: KinesisFirehoseEvent = serde_json::from_value(payload)
            .map_err(|e| Error::from(format!("not a Firehose transformation event: {e}")))?;
        let (response, summary) = handler.firehose(event).await;
        println!("firehose {}", serde_json::to_string(&summary)?);
        Ok(serde_json::to_value(response)?)
    } else {
        Err(Error::from(
            "expected a Kinesis event (Records) or a Firehose transformation event (records, deliveryStreamArn)",
        ))
    }
}
