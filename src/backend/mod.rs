//! Backends: what the pipeline's traits run on. `local` is the embedded default; `aws` holds
//! the CloudFormation stack operations `kinesis` and `firehose` the pipeline's streams on AWS, `athena` its queries.

#[cfg(feature = "sql")]
pub mod athena;
pub mod aws;
pub mod firehose;
pub mod kinesis;
pub mod local;
