//! iotaa-lambda: the detector of iot-anomaly-analytics as an AWS Lambda function, so that on
//! AWS scoring runs in AWS, all the time, whoever has a dashboard open (what Kinesis Data
//! Analytics did for the seed until AWS shut it down).
//!
//! One function, two event sources (the stack wires one of them, by `Ingest`):
//! - **Kinesis** (Lambda's event source mapping on the readings stream, ParallelizationFactor 1,
//!   so one invocation at a time per shard, in order): each reading is scored (before it updates
//!   the model, as KDA did) and put on the anomaly stream; the reply's `batchItemFailures` names
//!   the first reading whose score was not stored, so Lambda retries from there.
//! - **Firehose data transformation** (`Ingest = firehose`, the seed's DirectPut topology):
//!   the same scoring; every record goes back unchanged with result `Ok`, so the lake is
//!   exactly what was sent.
//!
//! Model state ([`handler`]): one forest per shard (the detector's `per_device` mode keeps one
//! per device inside it), kept in memory while the execution environment is warm and saved to
//! S3 under `STATE_PREFIX` with the last sequence number it holds. See [`handler`] for the
//! rules that keep a reading from updating a model twice.
//!
//! Configuration is the function's environment ([`config::Config`]), set by the template from
//! its parameters, which `iotaa stack deploy` fills from config.toml's `[detector]`.
//!
//! - `config`: the environment; `seq`: Kinesis sequence numbers in order;
//! - `handler`: the invocations, generic over [`handler::Aws`] (the calls it makes);
//! - `aws`: [`aws::Clients`], those calls on the SDK (S3, Kinesis).

pub mod aws;
pub mod config;
pub mod handler;
pub mod seq;
